"""`imu-stream decode`: hex packets (as pasted from nRF Connect logs) → JSON-ready records.

Commands written to the sensor may be pasted along with the notifications: a Movesense SUBSCRIBE
tells which resource a reference streams, a MetaWear range configuration sets the scale, and a
MetaWear data-processor add (with the board's `[09 02 id]` reply after it) tells what an
accounter's `[09 03 id …]` notifications carry. Commands produce no output themselves.
Pure: the CLI does the printing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from imu_stream.devices.metawear import (
    BatteryState,
    MetaWearDecoder,
    MetaWearMessage,
    ModuleInfo,
    ProcessorCreated,
)
from imu_stream.devices.movesense import GspCommandResult, GspDecoder
from imu_stream.devices.profiles import (
    DEVICE_NAMES,
    MetaWearProfile,
    ProfileError,
    load_profile,
)
from imu_stream.records import SampleBlock

_HEX_SEPARATORS = re.compile(r"[\s:\-,_]")
_ROUND = 6


class HexPacketError(ValueError):
    """A packet that is not hexadecimal bytes; the message is one line for the user."""


def parse_hex(text: str) -> bytes:
    """`02-63-03-DE`, `0x0263…`, `02 63 03 de` → bytes."""
    cleaned = _HEX_SEPARATORS.sub("", text.strip())
    if cleaned.lower().startswith("0x"):
        cleaned = cleaned[2:]
    cleaned = cleaned.replace("(0x)", "")
    if not cleaned or len(cleaned) % 2 or re.fullmatch(r"[0-9a-fA-F]+", cleaned) is None:
        raise HexPacketError(f"not a hex packet: {text!r}")
    return bytes.fromhex(cleaned)


def _rows(arr: Any) -> list[list[float]]:
    return [[round(float(v), _ROUND) for v in row] for row in arr]


def block_record(block: SampleBlock) -> dict[str, Any]:
    """SampleBlock → the JSON object of DESIGN.md §4 (only the keys that apply)."""
    out: dict[str, Any] = {"kind": block.kind}
    if block.device_timestamp_ms is not None:
        out["timestamp_ms"] = int(block.device_timestamp_ms)
    # Gravity and linear acceleration are accelerations: reported under "acc", named by "kind".
    acc = block.acc
    if acc is None:
        acc = block.gravity if block.gravity is not None else block.linear_acc
    for key, arr in (
        ("acc", acc),
        ("gyro", block.gyro),
        ("mag", block.mag),
        ("quaternion", block.quaternion),
        ("euler_deg", block.euler_deg),
    ):
        if arr is not None:
            out[key] = _rows(arr)
    return out


@dataclass(slots=True)
class DecodeReport:
    records: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # one line per packet that gave nothing


def decode_packets(
    device: str,
    packets: Iterable[bytes],
    *,
    acc_range_g: int | None = None,
    gyro_range_dps: int | None = None,
) -> DecodeReport:
    if device not in DEVICE_NAMES:
        raise ProfileError(f"unknown device {device!r} (use one of: {', '.join(DEVICE_NAMES)})")
    profile = load_profile(device)
    report = DecodeReport()
    if isinstance(profile, MetaWearProfile):
        mw = MetaWearDecoder(profile, acc_range_g=acc_range_g, gyro_range_dps=gyro_range_dps)
        for i, packet in enumerate(packets, start=1):
            if mw.observe_command(packet):
                continue
            before = mw.stats.rejected
            messages = mw.feed(packet)
            for msg in messages:
                report.records.append(_metawear_record(msg))
            if not messages:
                reason = "rejected" if mw.stats.rejected > before else "no output"
                report.skipped.append(f"packet {i}: {packet.hex()} {reason}")
        return report
    gsp = GspDecoder(profile, guess_unknown=True)
    for i, packet in enumerate(packets, start=1):
        if gsp.observe_command(packet) is not None:
            continue
        before = gsp.stats.rejected
        out = gsp.feed(packet)
        for message in out:
            if isinstance(message, GspCommandResult):
                rec: dict[str, Any] = {"kind": "command_result", "ref": message.ref}
                if message.status is not None:
                    rec["status"] = message.status
                if message.text is not None:
                    rec["text"] = message.text
                report.records.append(rec)
            else:
                report.records.append(block_record(message))
        if not out and gsp.stats.rejected > before:
            report.skipped.append(f"packet {i}: {packet.hex()} rejected")
    return report


def _metawear_record(message: MetaWearMessage) -> dict[str, Any]:
    if isinstance(message, ProcessorCreated):
        return {"kind": "processor_created", "processor_id": message.processor_id}
    if isinstance(message, ModuleInfo):
        return {
            "kind": "module_info",
            "module": message.module,
            "implementation": message.implementation,
            "revision": message.revision,
        }
    if isinstance(message, BatteryState):
        return {
            "kind": "battery",
            "battery_pct": message.charge_pct,
            "voltage_mv": message.voltage_mv,
        }
    return block_record(message)
