"""Movesense GATT SensorData Protocol (GSP): commands, notifications, DATA + DATA_PART2 reassembly.

Client → sensor (write characteristic): `[command, ref, data...]`; HELLO = 0, SUBSCRIBE = 1 with
the resource path in ASCII, UNSUBSCRIBE = 2. Sensor → client (notify characteristic):
`[response, ref, ...]`; COMMAND_RESULT = 1 ("Hello", or a 16-bit big-endian status such as 507
for a refused subscription), DATA = 2 (uint32 timestamp of the first sample in ms, then N acc,
N gyro and N magnetometer float32 vectors in that order), DATA_PART2 = 3 (the rest of a DATA that
did not fit: a DATA of exactly `max_part_bytes` announces it). Everything here is pure.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from imu_stream.devices.common import DecodeStats
from imu_stream.devices.profiles import MovesenseProfile, movesense_profile
from imu_stream.records import FloatArray, SampleBlock

STANDARD_GRAVITY = 9.80665
_BLOCK_SCALE_ATTR = {"acc": "acc_scale", "gyro": "gyro_scale", "mag": "mag_scale"}


@dataclass(frozen=True, slots=True)
class GspCommand:
    """A client command as written to the sensor."""

    command: str  # "hello" | "subscribe" | "unsubscribe"
    ref: int
    path: str | None = None


@dataclass(frozen=True, slots=True)
class GspCommandResult:
    """A COMMAND_RESULT notification: HELLO reply (text) or a status such as 507 (refused)."""

    ref: int
    status: int | None = None
    text: str | None = None


GspMessage = SampleBlock | GspCommandResult


def _profile(profile: MovesenseProfile | None) -> MovesenseProfile:
    return profile if profile is not None else movesense_profile()


# --- commands (client side) ---------------------------------------------------------------------


def build_hello(ref: int, profile: MovesenseProfile | None = None) -> bytes:
    return bytes((_profile(profile).cmd_hello, _check_ref(ref)))


def build_subscribe(ref: int, path: str, profile: MovesenseProfile | None = None) -> bytes:
    return bytes((_profile(profile).cmd_subscribe, _check_ref(ref))) + path.encode("ascii")


def build_unsubscribe(ref: int, profile: MovesenseProfile | None = None) -> bytes:
    return bytes((_profile(profile).cmd_unsubscribe, _check_ref(ref)))


def _check_ref(ref: int) -> int:
    # Reference 0 marks a free slot in the firmware, so clients must not use it.
    if not 1 <= ref <= 255:
        raise ValueError(f"GSP client reference must be 1..255, got {ref}")
    return ref


def parse_command(data: bytes, profile: MovesenseProfile | None = None) -> GspCommand | None:
    """A client command, or None when DATA is not one (device side and log reading)."""
    p = _profile(profile)
    if len(data) < 2 or data[1] == 0:
        return None
    cmd, ref = data[0], data[1]
    if cmd == p.cmd_hello and len(data) == 2:
        return GspCommand("hello", ref)
    if cmd == p.cmd_unsubscribe and len(data) == 2:
        return GspCommand("unsubscribe", ref)
    if cmd == p.cmd_subscribe and len(data) > 3 and data[2:3] == b"/":
        try:
            path = data[2:].decode("ascii")
        except UnicodeDecodeError:
            return None
        return GspCommand("subscribe", ref, path) if path.isprintable() else None
    return None


# --- notifications (sensor side, used by the device emulator and the tests) ------------------


def build_command_result(
    ref: int,
    *,
    status: int | None = None,
    text: str | None = None,
    profile: MovesenseProfile | None = None,
) -> bytes:
    head = bytes((_profile(profile).resp_command_result, ref))
    if text is not None:
        return head + text.encode("ascii")
    if status is not None:
        return head + struct.pack(">H", status)
    return head


def encode_data(
    ref: int,
    timestamp_ms: int,
    blocks: Sequence[FloatArray],
    profile: MovesenseProfile | None = None,
) -> list[bytes]:
    """DATA notification(s) for N samples: the blocks (each (N, 3)) in resource order.

    Returns one notification, or a DATA of `max_part_bytes` followed by a DATA_PART2 when the
    message does not fit, exactly as the firmware sends them.
    """
    p = _profile(profile)
    n = blocks[0].shape[0]
    if any(b.shape != (n, 3) for b in blocks):
        raise ValueError("all GSP vector blocks must be (N, 3) with the same N")
    floats = np.concatenate([np.asarray(b, dtype="<f4") for b in blocks]).tobytes()
    message = (
        bytes((p.resp_data, ref)) + struct.pack("<I", timestamp_ms & 0xFFFFFFFF) + floats
    )
    if len(message) < p.max_part_bytes:
        return [message]
    rest = message[p.max_part_bytes :]
    if len(rest) + p.header_bytes >= p.max_part_bytes:
        raise ValueError(f"GSP message of {len(message)} bytes needs more than two parts")
    return [message[: p.max_part_bytes], bytes((p.resp_data_part2, ref)) + rest]


# --- decoding ---------------------------------------------------------------------------------


def decode_payload(
    payload: bytes,
    blocks: tuple[str, ...],
    profile: MovesenseProfile | None = None,
    *,
    resource: str | None = None,
    kind: str | None = None,
) -> SampleBlock | None:
    """Timestamp + vector blocks → SampleBlock in SI units; None if the length or values are bad."""
    p = _profile(profile)
    body = len(payload) - p.timestamp_bytes
    n_blocks = len(blocks)
    if n_blocks == 0 or body <= 0 or body % (12 * n_blocks):
        return None
    timestamp = int.from_bytes(payload[: p.timestamp_bytes], "little")
    raw = np.frombuffer(payload, dtype="<f4", offset=p.timestamp_bytes)
    if not np.isfinite(raw).all():  # checked before the cast: NaN payloads would warn there
        return None
    vectors = raw.astype(np.float64).reshape(-1, 3)
    n = vectors.shape[0] // n_blocks
    block = SampleBlock(
        kind=kind or "+".join(blocks),
        device_timestamp_ms=float(timestamp),
        resource=resource,
    )
    for i, name in enumerate(blocks):
        scale = float(getattr(p, _BLOCK_SCALE_ATTR[name]))
        arr = vectors[i * n : (i + 1) * n]
        setattr(block, name, arr * scale if scale != 1.0 else arr)
    return block


def guess_resource(payload: bytes, profile: MovesenseProfile | None = None) -> str | None:
    """Best-guess resource of a DATA payload whose subscription was not seen (log reading only).

    Picks the layout whose accelerometer block looks most like gravity-dominated acceleration,
    preferring layouts with an accelerometer; returns None when no layout fits the length.
    """
    p = _profile(profile)
    body = len(payload) - p.timestamp_bytes
    if body <= 0 or body % 12:
        return None
    raw = np.frombuffer(payload, dtype="<f4", offset=p.timestamp_bytes)
    if not np.isfinite(raw).all():
        return None
    norms = np.linalg.norm(raw.astype(np.float64).reshape(-1, 3), axis=1)
    best: tuple[float, str] | None = None
    for resource, blocks in p.resources.items():
        if len(norms) % len(blocks):
            continue
        n = len(norms) // len(blocks)
        score = 0.0 if "acc" in blocks else 0.2
        for i, name in enumerate(blocks):
            mean = float(norms[i * n : (i + 1) * n].mean())
            near_g = abs(mean - STANDARD_GRAVITY) / STANDARD_GRAVITY
            if name == "acc":
                score += near_g
            elif name == "gyro":
                score += 0.3 if near_g < 0.05 else 0.1
            else:  # the Earth's field is 25–65 µT
                score += 0.0 if 10.0 <= mean <= 100.0 else 0.5
        # Fewer blocks win ties: the simplest layout that explains the data.
        score += 0.001 * len(blocks)
        if best is None or score < best[0]:
            best = (score, resource)
    return best[1] if best is not None else None


class GspDecoder:
    """Stateful GSP notification decoder: subscriptions by reference, two-part reassembly.

    Feed every notification in arrival order; `feed` returns the complete messages it produced.
    Malformed, truncated, unknown and orphan packets are counted in `stats` and skipped.
    """

    def __init__(
        self, profile: MovesenseProfile | None = None, *, guess_unknown: bool = False
    ) -> None:
        self.profile = _profile(profile)
        self.guess_unknown = guess_unknown
        self.stats = DecodeStats()
        self.subscriptions: dict[int, tuple[str, str]] = {}  # ref → (resource, path)
        self._period_s: dict[int, float] = {}  # ref → duration of one message (learned)
        # (ref, first part without header, its arrival time)
        self._pending: tuple[int, bytes, float | None] | None = None

    def subscribe(self, ref: int, path: str) -> bool:
        """Register what reference REF streams (from the SUBSCRIBE the client wrote)."""
        parsed = self.profile.parse_resource_path(path)
        if parsed is None:
            return False
        self.subscriptions[ref] = (parsed[0], path)
        return True

    def unsubscribe(self, ref: int) -> None:
        self.subscriptions.pop(ref, None)

    def observe_command(self, data: bytes) -> GspCommand | None:
        """Learn from a command written to the sensor (subscribe/unsubscribe); None if not one."""
        command = parse_command(data, self.profile)
        if command is None:
            return None
        if command.command == "subscribe" and command.path is not None:
            self.subscribe(command.ref, command.path)
        elif command.command == "unsubscribe":
            self.unsubscribe(command.ref)
        return command

    def reset(self) -> None:
        """Forget pending parts (e.g. after a reconnect); subscriptions are kept."""
        if self._pending is not None:
            self.stats.orphans += 1
        self._pending = None

    def feed(self, packet: bytes, host_time_s: float | None = None) -> list[GspMessage]:
        """Decode one notification; HOST_TIME_S (its arrival) is stamped on the samples — for a
        two-part message the first part's arrival, as both parts leave the sensor together."""
        p = self.profile
        stats = self.stats
        stats.packets += 1
        if len(packet) < p.header_bytes:
            stats.truncated += 1
            return []
        kind, ref = packet[0], packet[1]
        if kind == p.resp_data:
            if self._pending is not None:  # a new DATA while waiting for part 2: drop part 1
                stats.orphans += 1
                self._pending = None
            if len(packet) < p.header_bytes + p.timestamp_bytes:
                stats.truncated += 1
                return []
            if len(packet) == p.max_part_bytes:
                self._pending = (ref, bytes(packet[p.header_bytes :]), host_time_s)
                return []
            return self._data(ref, bytes(packet[p.header_bytes :]), host_time_s)
        if kind == p.resp_data_part2:
            pending = self._pending
            self._pending = None
            if pending is None or pending[0] != ref or self._too_late(ref, pending[2], host_time_s):
                stats.orphans += 1 + (pending is not None)
                return []
            return self._data(ref, pending[1] + bytes(packet[p.header_bytes :]), pending[2])
        if kind == p.resp_command_result:
            return self._command_result(ref, bytes(packet[p.header_bytes :]))
        stats.unknown += 1
        return []

    def _too_late(self, ref: int, first: float | None, second: float | None) -> bool:
        """Both parts leave the sensor back to back. A part 2 arriving half a message period
        after the part 1 is the next message's (when part 2 and the next part 1 were both
        lost): pairing them would invent a message from two halves."""
        period = self._period_s.get(ref)
        if period is None or first is None or second is None:
            return False
        return second - first > 0.5 * period

    def _command_result(self, ref: int, rest: bytes) -> list[GspMessage]:
        stats = self.stats
        if len(rest) == 2:
            result = GspCommandResult(ref, status=(rest[0] << 8) | rest[1])
        elif rest and all(32 <= b < 127 for b in rest):
            result = GspCommandResult(ref, text=rest.decode("ascii"))
        elif not rest:
            result = GspCommandResult(ref)
        else:
            stats.malformed += 1
            return []
        stats.decoded += 1
        return [result]

    def _data(self, ref: int, payload: bytes, host_time_s: float | None) -> list[GspMessage]:
        stats = self.stats
        sub = self.subscriptions.get(ref)
        if sub is None and self.guess_unknown:
            guessed = guess_resource(payload, self.profile)
            sub = (guessed, "") if guessed is not None else None
        if sub is None:
            stats.unknown += 1
            return []
        resource, path = sub
        block = decode_payload(
            payload,
            self.profile.resources[resource],
            self.profile,
            resource=path or None,
            kind=resource.lower(),
        )
        if block is None:
            stats.malformed += 1
            return []
        block.host_time_s = host_time_s
        rate = self.profile.parse_resource_path(path) if path else None
        if rate is not None:
            self._period_s[ref] = block.n_samples / rate[1]
        stats.decoded += 1
        stats.samples += block.n_samples
        return [block]
