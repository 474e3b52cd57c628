"""`imu-stream decode` (DESIGN.md §4): one JSON object per complete notification, clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import numpy as np
from typer.testing import CliRunner

from imu_stream.cli import app
from imu_stream.devices import metawear as mw
from imu_stream.devices import movesense as ms
from imu_stream.devices.profiles import metawear_profile

MS04 = (
    "0263aca1020094b578bf399b8840cdb20d4155ff7cbf6a60884092c70c4182627cbfa2e988405da00c418bf871"
    "bf71248940c38c0c4148e17abf713daabf3333b3bec3f568bf713daabf3e0ad7beae4721bff628bcbf3e0ad7beae"
    "4721bf3333b3bf3e0ad7be"
)
runner = CliRunner()


def run(*args: str) -> tuple[int, list[dict[str, Any]], str]:
    result = runner.invoke(app, ["decode", *args])
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    return result.exit_code, lines, result.stderr


def test_movesense_imu6_vector() -> None:
    code, records, _ = run("--device", "movesense", MS04)
    assert code == 0
    (rec,) = records
    assert rec["kind"] == "imu6" and rec["timestamp_ms"] == 172460
    assert set(rec) == {"kind", "timestamp_ms", "acc", "gyro"}
    expected = np.array([-0.9715207, 4.2689481, 8.8561525])
    np.testing.assert_allclose(np.asarray(rec["acc"][0]), expected, rtol=1e-5)


def test_two_part_message_and_nrf_connect_formatting() -> None:
    rng = np.random.default_rng(0)
    blocks = [rng.normal(size=(8, 3)) for _ in range(3)]
    subscribe = ms.build_subscribe(5, "/Meas/IMU9/104").hex()
    parts = ms.encode_data(5, 999, blocks)
    # nRF Connect shows bytes as "(0x) 02-05-…"
    pasted = ["(0x) " + "-".join(f"{b:02X}" for b in p) for p in parts]
    code, records, _ = run("--device", "movesense", subscribe, *pasted)
    assert code == 0
    (rec,) = records  # the two parts make one notification
    assert rec["kind"] == "imu9" and rec["timestamp_ms"] == 999
    np.testing.assert_allclose(np.asarray(rec["mag"]), blocks[2], atol=1e-5)


def test_metawear_packed_gyro_with_range_option() -> None:
    profile = metawear_profile("metawear-bmi270")
    rates = np.array([[100.0, -250.0, 30.0], [0.5, 1.0, -1.5], [400.0, 0.0, -400.0]])
    (packet,) = mw.encode_motion(profile, "gyro_packed", rates, 500)
    code, records, _ = run("--device", "metawear-bmi270", "--gyro-range-dps", "500", packet.hex())
    assert code == 0
    (rec,) = records
    assert rec["kind"] == "gyro_packed"
    np.testing.assert_allclose(np.asarray(rec["gyro"]), rates, atol=1 / 65.6)
    # Decoded with another range the values scale by the range ratio: the option matters.
    _, (wrong,), _ = run("--device", "metawear-bmi270", "--gyro-range-dps", "2000", packet.hex())
    np.testing.assert_allclose(np.asarray(wrong["gyro"]) / 4.0, rates, atol=1 / 65.6)


def test_commands_print_nothing_and_bad_packets_are_reported() -> None:
    packets = ("03032908", "0304", "030416c494a22ad0")  # config, truncated, data
    code, records, stderr = run("--device", "metawear-bmi160", *packets)
    assert code == 0
    assert len(records) == 1 and records[0]["kind"] == "acc"
    assert "skipped packet 2" in stderr


def test_bad_hex_and_unknown_device_are_one_line_errors() -> None:
    for args in (("--device", "movesense", "0xZZ"), ("--device", "polar", "00")):
        result = runner.invoke(app, ["decode", *args])
        assert result.exit_code == 2
        assert result.stderr.strip().startswith("error:")
        assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_console_script_runs() -> None:
    command = [sys.executable, "-m", "imu_stream.cli", "decode", "--device", "movesense"]
    out = subprocess.run(
        [*command, "017b48656c6c6f"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert json.loads(out.stdout) == {"kind": "command_result", "ref": 123, "text": "Hello"}
