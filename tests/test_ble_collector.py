"""BLE collector against the device emulator: scan, configure, stream, statuses, failures."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from bleak.exc import BleakBluetoothNotAvailableError, BleakBluetoothNotAvailableReason, BleakError
from typer.testing import CliRunner

from imu_stream.cli import app
from imu_stream.core.clock import SensorGap
from imu_stream.devices.profiles import movesense_profile
from imu_stream.records import SampleBlock, SensorStatus
from imu_stream.sources.ble import (
    BleakTransport,
    BleCollector,
    BluetoothUnavailableError,
    CollectorConfig,
    CollectorEvent,
    SensorConfigError,
    SensorSpec,
    bluetooth_unavailable_reason,
    format_scan_table,
    parse_sensor_option,
    resolve_sensor_specs,
    scan_sensors,
)
from imu_stream.sources.emulator import (
    EmulatorAir,
    EmulatorKnobs,
    MetaWearPeripheral,
    MovesensePeripheral,
    SignalSource,
)
from imu_stream.sources.virtual_time import run_virtual

FAST = CollectorConfig(scan_timeout_s=0.5, status_interval_s=1.0)


def three_sensor_air(knobs: EmulatorKnobs | None = None) -> EmulatorAir:
    knobs = knobs or EmulatorKnobs()
    air = EmulatorAir()
    source = SignalSource.still()
    air.add(MovesensePeripheral("AA:00:00:00:01:01", source, knobs, serial="220330000123"))
    air.add(MetaWearPeripheral("AA:00:00:00:01:02", source, replace(knobs, seed=2)))
    air.add(
        MetaWearPeripheral("AA:00:00:00:01:03", source, replace(knobs, seed=3), variant="bmi270")
    )
    return air


SPECS = [
    SensorSpec("sacrum", "0123"),  # name suffix
    SensorSpec("left_thigh", "aa:00:00:00:01:02"),  # address, any case
    SensorSpec("right_thigh", "AA:00:00:00:01:03"),
]


async def collect(
    collector: BleCollector, seconds: float
) -> list[CollectorEvent]:
    events: list[CollectorEvent] = []

    async def consume() -> None:
        async for event in collector.events():
            events.append(event)

    await collector.start()
    task = asyncio.create_task(consume())
    await asyncio.sleep(seconds)
    await collector.stop()
    await task
    return events


def test_sensor_options_and_session_toml(tmp_path: Path) -> None:
    spec = parse_sensor_option("sacrum=AA:BB:CC:DD:EE:FF")
    assert spec == SensorSpec("sacrum", "AA:BB:CC:DD:EE:FF")
    for bad in ("sacrum", "pelvis=AA", "sacrum="):
        with pytest.raises(SensorConfigError):
            parse_sensor_option(bad)
    toml = tmp_path / "session.toml"
    toml.write_text(
        'athlete = "x"\n[sensors]\nright_thigh = "0192"\n'
        '[sensors.sacrum]\naddress = "AA:BB"\nfamily = "movesense"\nrate_hz = 104\n'
        'resource = "IMU9"\n'
    )
    specs = resolve_sensor_specs(["sacrum=CC:DD", "left_thigh=0007"], toml)
    assert [s.location for s in specs] == ["sacrum", "left_thigh", "right_thigh"]
    assert specs[0] == SensorSpec("sacrum", "CC:DD", "movesense", 104.0, "IMU9")  # CLI target
    with pytest.raises(SensorConfigError, match="rate"):
        toml.write_text('[sensors.sacrum]\naddress = "AA"\nfamily = "movesense"\nrate_hz = 100\n')
        resolve_sensor_specs([], toml)
    with pytest.raises(SensorConfigError, match="twice"):
        resolve_sensor_specs(["sacrum=A", "sacrum=B"])
    with pytest.raises(SensorConfigError, match="no sensors"):
        resolve_sensor_specs([])


def test_scan_lists_supported_sensors() -> None:
    async def main() -> str:
        air = three_sensor_air()
        results = await scan_sensors(1.0, transport=air.transport())
        assert {r.family for r in results} == {"movesense", "metawear"}
        assert [r.address for r in results if r.family == "movesense"] == ["AA:00:00:00:01:01"]
        assert all(-70 < r.rssi < -50 for r in results)
        return format_scan_table(results)

    table = run_virtual(main())
    assert table.splitlines()[0].split() == ["NAME", "ADDRESS", "RSSI", "FAMILY"]
    assert "Movesense 220330000123" in table and table.count("MetaWear") == 2


def test_no_adapter_is_a_clear_error() -> None:
    """On machines without Bluetooth (as the test machines), scan and collect fail cleanly."""
    try:
        asyncio.run(scan_sensors(0.5))
    except BluetoothUnavailableError as exc:
        message = str(exc)
    else:
        pytest.skip("this machine has a working Bluetooth adapter")
    assert "Bluetooth" in message and "\n" not in message
    result = CliRunner().invoke(app, ["scan", "--timeout", "0.5"])
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: {message}"

    async def start_collector() -> None:
        await BleCollector([SensorSpec("sacrum", "AA:BB")], BleakTransport()).start()

    with pytest.raises(BluetoothUnavailableError):
        asyncio.run(start_collector())


def test_unavailable_reasons() -> None:
    off = BleakBluetoothNotAvailableError("off", BleakBluetoothNotAvailableReason.POWERED_OFF)
    assert bluetooth_unavailable_reason(off) == "Bluetooth is not available (powered off)"
    assert "D-Bus" in (bluetooth_unavailable_reason(FileNotFoundError(2, "x")) or "")
    no_adapter = BleakError("No Bluetooth adapters found.")
    assert "adapter" in (bluetooth_unavailable_reason(no_adapter) or "")
    assert bluetooth_unavailable_reason(BleakError("GATT write failed")) is None
    assert bluetooth_unavailable_reason(ValueError("x")) is None


def test_three_sensors_stream_with_statuses() -> None:
    async def main() -> tuple[list[CollectorEvent], BleCollector]:
        air = three_sensor_air(EmulatorKnobs(battery_pct=64))
        collector = BleCollector(SPECS, air.transport(), FAST)
        return await collect(collector, 12.0), collector

    events, collector = run_virtual(main())
    blocks = [e for e in events if isinstance(e, SampleBlock)]
    statuses = [e for e in events if isinstance(e, SensorStatus)]
    assert not [e for e in events if isinstance(e, SensorGap)]
    assert {b.location for b in blocks} == {"sacrum", "left_thigh", "right_thigh"}
    assert all(b.host_time_s is not None and b.device_timestamp_ms is not None for b in blocks)
    assert {b.kind for b in blocks if b.location == "sacrum"} == {"imu6"}
    assert {b.kind for b in blocks if b.location != "sacrum"} == {"acc_packed", "gyro_packed"}
    # MetaWear blocks carry the inferred sample counter as device time (ms at 100 Hz)
    left_acc = [b for b in blocks if b.location == "left_thigh" and b.kind == "acc_packed"]
    steps = np.diff([b.device_timestamp_ms for b in left_acc])
    assert set(np.round(steps, 6)) == {30.0}
    # per sensor: connected, battery, nominal rate, no loss
    for location, rate in (("sacrum", 208.0), ("left_thigh", 100.0), ("right_thigh", 100.0)):
        mine = [s for s in statuses if s.location == location]
        live = [s for s in mine if s.connected and s.rate_hz > 0]
        assert len(live) >= 8
        assert all(s.battery_pct == 64 for s in live)
        assert abs(np.median([s.rate_hz for s in live]) - rate) <= 0.05 * rate
        assert all(s.packet_loss_pct == 0 for s in mine)
        assert np.isfinite(live[-1].clock_offset_ms)
        assert not mine[-1].connected  # stop() disconnects and says so
        counters = collector.counters(location)
        assert counters.connections == 1 and counters.lost_samples == 0
    assert collector.sensors["left_thigh"].variant == "metawear-bmi160"
    assert collector.sensors["right_thigh"].variant == "metawear-bmi270"


def test_refused_subscription_is_retried_and_reported() -> None:
    async def main() -> BleCollector:
        air = EmulatorAir()
        no_slots = replace(movesense_profile(), max_subscriptions=0)
        sensor = MovesensePeripheral(
            "AA:00:00:00:02:01", SignalSource.still(), profile=no_slots
        )
        air.add(sensor)
        collector = BleCollector([SensorSpec("sacrum", "AA:00:00:00:02:01")], air.transport(), FAST)
        events = await collect(collector, 10.0)
        assert not [e for e in events if isinstance(e, SampleBlock)]
        assert sensor.stats.connections >= 3  # backoff: 0.5, 1, 2, 4 s …
        return collector

    collector = run_virtual(main())
    assert "refused (507)" in collector.sensors["sacrum"].last_error


def test_missing_sensor_does_not_stop_the_others_and_garbage_is_skipped() -> None:
    async def main() -> tuple[list[CollectorEvent], BleCollector]:
        air = three_sensor_air(EmulatorKnobs(garbage_rate=0.05, packet_loss=0.01, seed=5))
        specs = [*SPECS[:2], SensorSpec("right_shank", "FF:FF:FF:FF:FF:FF")]
        collector = BleCollector(specs, air.transport(), FAST)
        return await collect(collector, 15.0), collector

    events, collector = run_virtual(main())
    assert {e.location for e in events if isinstance(e, SampleBlock)} == {"sacrum", "left_thigh"}
    assert "no sensor matching" in collector.sensors["right_shank"].last_error
    for location in ("sacrum", "left_thigh"):
        counters = collector.counters(location)
        assert counters.decode.rejected > 0  # garbage counted and skipped
        assert counters.received_samples > 0.95 * 15 * (208 if location == "sacrum" else 200) * 0.8


def test_unstreamable_configuration_is_not_retried() -> None:
    async def main() -> BleCollector:
        air = three_sensor_air()
        spec = SensorSpec("sacrum", "0123", rate_hz=100.0)  # Movesense has no 100 Hz
        collector = BleCollector([spec], air.transport(), FAST)
        await collect(collector, 10.0)
        return collector

    collector = run_virtual(main())
    assert collector.counters("sacrum").connections == 1
    assert "100 Hz" in collector.sensors["sacrum"].last_error
