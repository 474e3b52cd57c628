"""Every vector of tests/device_vectors.json (vendors' test suites, a real capture) round-trips."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from imu_stream.devices import metawear as mw
from imu_stream.devices import movesense as ms
from imu_stream.devices.decode import decode_packets, parse_hex
from imu_stream.devices.profiles import metawear_profile, movesense_profile
from imu_stream.records import STANDARD_GRAVITY

VECTORS_PATH = Path(__file__).resolve().parent / "device_vectors.json"
VECTORS: list[dict[str, Any]] = json.loads(VECTORS_PATH.read_text())["vectors"]
BMI160 = metawear_profile("metawear-bmi160")
BMI270 = metawear_profile("metawear-bmi270")
MOVESENSE = movesense_profile()

# Command vectors: the builder call that must reproduce the bytes exactly.
COMMAND_BUILDERS: dict[str, Callable[[], bytes]] = {
    "MW-C1": lambda: mw.build_acc_config(BMI160, 200.0, 8),
    "MW-C2": lambda: mw.build_acc_config(BMI160, 100.0, 16),
    "MW-C3": lambda: mw.build_acc_config(BMI270, 200.0, 8),
    "MW-C4": lambda: mw.build_gyro_config(BMI160, 50.0, 125),
    "MW-C5": lambda: mw.build_subscribe(BMI160, "acc"),
    "MW-C7": lambda: mw.build_connection_parameters(BMI160, 750.0, 1000.0, 128, 16384.0),
    "MW-C8": lambda: mw.build_disconnect(BMI160),
    "MS-C1": lambda: ms.build_subscribe(99, "/Meas/IMU9/104"),
    "MS-C2": lambda: ms.build_unsubscribe(99),
}


def close(actual: float, expected: float) -> bool:
    """The fixture's tolerance: |a-b| <= max(0.001*max(|a|,|b|), 0.001)."""
    return abs(actual - expected) <= max(0.001 * max(abs(actual), abs(expected)), 0.001)


def assert_rows_close(actual: list[list[float]], expected: list[list[float]], label: str) -> None:
    assert len(actual) == len(expected), f"{label}: {len(actual)} rows, expected {len(expected)}"
    for row_a, row_e in zip(actual, expected, strict=True):
        assert len(row_a) == len(row_e), label
        for a, e in zip(row_a, row_e, strict=True):
            assert close(a, e), f"{label}: {row_a} != {row_e}"


def device_of(vector: dict[str, Any]) -> str:
    # "metawear" vectors (fusion, settings) are the same on both boards: decode with each.
    return "metawear-bmi160" if vector["device"] == "metawear" else vector["device"]


def to_fixture_units(kind: str, record: dict[str, Any]) -> list[list[float]]:
    """Our SI output converted to the unit the vector states."""
    if kind in ("acc", "acc_packed", "fusion_corrected_acc", "fusion_gravity", "fusion_linear_acc"):
        return [[v / STANDARD_GRAVITY for v in row] for row in record["acc"]]
    key = {
        "gyro": "gyro",
        "fusion_quaternion": "quaternion",
        "fusion_euler": "euler_deg",
        "fusion_corrected_mag": "mag",
    }[kind]
    rows: list[list[float]] = record[key]
    return rows


@pytest.mark.parametrize("vector", VECTORS, ids=[v["id"] for v in VECTORS])
def test_vector_round_trips(vector: dict[str, Any]) -> None:
    packets = [parse_hex(h) for h in vector["hex"]]
    kind = vector["kind"]
    if kind == "command":
        assert vector["id"] in COMMAND_BUILDERS, f"no builder mapped for {vector['id']}"
        assert COMMAND_BUILDERS[vector["id"]]() == b"".join(packets)
    elif kind == "gsp_command_result":
        decoder = ms.GspDecoder()
        (result,) = decoder.feed(packets[0])
        assert isinstance(result, ms.GspCommandResult)
        rebuilt = ms.build_command_result(result.ref, status=result.status, text=result.text)
        assert rebuilt == packets[0]
    elif kind == "gsp_data":
        state, expected = vector["state"], vector["expected"]
        subscribe = ms.build_subscribe(state["ref"], state["resource"])
        report = decode_packets("movesense", [subscribe, *packets])
        (record,) = report.records
        assert record["timestamp_ms"] == expected["timestamp_ms"]
        for key in ("acc", "gyro", "mag"):
            assert (key in record) == (key in expected), key
            if key in expected:
                assert_rows_close(record[key], expected[key], f"{vector['id']} {key}")
    else:
        state = vector["state"]
        report = decode_packets(
            device_of(vector),
            packets,
            acc_range_g=state.get("acc_range_g"),
            gyro_range_dps=state.get("gyro_range_dps"),
        )
        (record,) = report.records
        assert record["kind"] == kind
        assert_rows_close(to_fixture_units(kind, record), vector["expected"], vector["id"])


def test_every_command_vector_has_a_builder() -> None:
    ids = {v["id"] for v in VECTORS if v["kind"] == "command"}
    assert ids == set(COMMAND_BUILDERS)


def test_sources_kept() -> None:
    assert all(v.get("source") for v in VECTORS)


def test_fusion_vectors_decode_the_same_on_bmi270() -> None:
    for vector in VECTORS:
        if vector["device"] == "metawear" and vector["kind"].startswith("fusion_"):
            packets = [parse_hex(h) for h in vector["hex"]]
            (record,) = decode_packets("metawear-bmi270", packets).records
            assert_rows_close(
                to_fixture_units(vector["kind"], record), vector["expected"], vector["id"]
            )


def test_movesense_layout_guessed_without_subscription() -> None:
    """nRF Connect logs may miss the SUBSCRIBE write: the layout is then inferred."""
    for vector in VECTORS:
        if vector["kind"] != "gsp_data":
            continue
        packets = [parse_hex(h) for h in vector["hex"]]
        (record,) = decode_packets("movesense", packets).records
        resource = vector["state"]["resource"].split("/")[2].lower()
        assert record["kind"] == resource


def test_config_commands_parse_back() -> None:
    assert mw.parse_acc_config(BMI160, bytes.fromhex("2908")) == (200.0, 8)
    assert mw.parse_acc_config(BMI160, bytes.fromhex("280c")) == (100.0, 16)
    assert mw.parse_acc_config(BMI270, bytes.fromhex("a902")) == (200.0, 8)
    assert mw.parse_gyro_config(BMI160, bytes.fromhex("2704")) == (50.0, 125)


def test_range_learned_from_pasted_config_command() -> None:
    # MW-03 is packed data at ±8 g; paste the 200 Hz/±8 g configuration first, no range option.
    mw03 = next(v for v in VECTORS if v["id"] == "MW-03")
    packets = [bytes.fromhex("03032908"), *(parse_hex(h) for h in mw03["hex"])]
    (record,) = decode_packets("metawear-bmi160", packets).records
    assert_rows_close(to_fixture_units("acc_packed", record), mw03["expected"], "MW-03")


def test_movesense_two_part_message_reassembled() -> None:
    """IMU9 with 8 samples (104 Hz) is DATA (152 bytes) + DATA_PART2, as the vendor client."""
    rng = np.random.default_rng(3)
    acc, gyro, mag = (rng.normal(size=(8, 3)) for _ in range(3))
    parts = ms.encode_data(7, 123456, [acc, gyro, mag])
    assert [p[0] for p in parts] == [2, 3]
    assert len(parts[0]) == MOVESENSE.max_part_bytes
    decoder = ms.GspDecoder()
    decoder.subscribe(7, "/Meas/IMU9/104")
    assert decoder.feed(parts[0]) == []
    (block,) = decoder.feed(parts[1])
    assert isinstance(block, ms.SampleBlock)
    assert block.device_timestamp_ms == 123456
    assert block.mag is not None
    np.testing.assert_allclose(block.mag, mag, rtol=1e-6, atol=1e-6)
    # An orphan first part (its part 2 lost) is dropped, and counted.
    decoder.feed(parts[0])
    (again,) = decoder.feed(ms.encode_data(7, 123500, [acc[:4], gyro[:4], mag[:4]])[0])
    assert isinstance(again, ms.SampleBlock) and again.n_samples == 4
    assert decoder.stats.orphans == 1
    # A part 2 without its first part produces nothing.
    assert decoder.feed(parts[1]) == []
    assert decoder.stats.orphans == 2


def test_parts_of_different_messages_are_not_paired() -> None:
    """Part 2 of message 1 and part 1 of message 2 lost: the remaining halves must not be
    glued together (both parts of a message arrive back to back, the next message later)."""
    rng = np.random.default_rng(5)
    decoder = ms.GspDecoder()
    decoder.subscribe(3, "/Meas/IMU6/208")
    messages = [
        ms.encode_data(3, 1000 + 38 * i, [rng.normal(size=(8, 3)), rng.normal(size=(8, 3))])
        for i in range(3)
    ]
    period = 8 / 208
    (m0,) = decoder.feed(messages[0][0], 0.0) + decoder.feed(messages[0][1], 0.001)
    assert isinstance(m0, ms.SampleBlock) and m0.host_time_s == 0.0  # first part's arrival
    assert decoder.feed(messages[1][0], period) == []
    assert decoder.feed(messages[2][1], 2 * period + 0.001) == []  # a later message's part 2
    assert decoder.stats.orphans == 2 and decoder.stats.decoded == 1
