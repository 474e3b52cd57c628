"""The device emulator behaves like the sensors' firmware, seen through a real BleakClient."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

import numpy as np
import pytest
from bleak import BleakClient
from bleak.backends.device import BLEDevice
from bleak.exc import BleakError

from imu_stream.devices import metawear as mw
from imu_stream.devices import movesense as ms
from imu_stream.devices.profiles import metawear_profile, movesense_profile
from imu_stream.records import SampleBlock
from imu_stream.sources.emulator import (
    EmulatorAir,
    EmulatorKnobs,
    MetaWearPeripheral,
    MovesensePeripheral,
    SignalSource,
)
from imu_stream.sources.virtual_time import run_virtual

MS = movesense_profile()
BMI160 = metawear_profile("metawear-bmi160")
BMI270 = metawear_profile("metawear-bmi270")


async def connect(air: EmulatorAir, address: str) -> tuple[BleakClient, list[str]]:
    """A bleak client on the emulated device; the list collects disconnect callbacks."""
    air.start()
    events: list[str] = []
    device = next(d for d, _ in await air.transport().discover(0.3) if d.address == address)
    client = air.transport().make_client(device, lambda c: events.append("disconnected"))
    await client.connect()
    return client, events


class Inbox:
    def __init__(self) -> None:
        self.packets: list[tuple[float, bytes]] = []

    def __call__(self, _sender: object, data: bytearray) -> None:
        self.packets.append((asyncio.get_running_loop().time(), bytes(data)))


def test_movesense_gsp_session() -> None:
    async def main() -> None:
        air = EmulatorAir()
        source = SignalSource.still()
        sensor = air.add(MovesensePeripheral("AA:00:00:00:00:01", source, EmulatorKnobs()))
        client, _ = await connect(air, sensor.address)
        inbox = Inbox()
        await client.start_notify(MS.notify_uuid, inbox)
        await client.write_gatt_char(MS.write_uuid, ms.build_hello(9), response=True)
        await client.write_gatt_char(MS.write_uuid, ms.build_subscribe(5, "/Meas/IMU9/104"), True)
        await asyncio.sleep(1.0)
        packets = [p for _, p in inbox.packets]
        assert packets[0] == bytes.fromhex("0109") + b"Hello"
        data = packets[1:]
        # IMU9 at 104 Hz: 8 samples per DATA, split into a 152-byte DATA and a DATA_PART2
        assert {p[0] for p in data} == {2, 3}
        assert all(len(p) == 152 for p in data if p[0] == 2)
        assert all(len(p) == 2 + 4 + 8 * 36 - 150 for p in data if p[0] == 3)
        decoder = ms.GspDecoder()
        decoder.subscribe(5, "/Meas/IMU9/104")
        blocks = [b for p in data for b in decoder.feed(p) if isinstance(b, SampleBlock)]
        stamps = np.array([b.device_timestamp_ms for b in blocks])
        assert np.all(np.diff(stamps) >= 76) and np.all(np.diff(stamps) <= 77)  # 8 × 9.6 ms
        assert blocks[0].acc is not None and abs(blocks[0].acc[0, 2] - 9.80665) < 1e-5
        # unsubscribe: the stream stops
        await client.write_gatt_char(MS.write_uuid, ms.build_unsubscribe(5), response=True)
        count = len(inbox.packets)
        await asyncio.sleep(0.5)
        assert len(inbox.packets) <= count + 2  # at most what was already on air
        assert MS.battery_level_uuid is not None
        battery = await client.read_gatt_char(MS.battery_level_uuid)
        assert battery == bytearray([87])

    run_virtual(main())


def test_movesense_refusals_and_disconnect_drops_subscriptions() -> None:
    async def main() -> None:
        air = EmulatorAir()
        sensor = air.add(MovesensePeripheral("AA:00:00:00:00:02", SignalSource.still()))
        client, _ = await connect(air, sensor.address)
        inbox = Inbox()
        # A bad path fails inside the firmware: no reply, no data.
        await client.start_notify(MS.notify_uuid, inbox)
        await client.write_gatt_char(MS.write_uuid, ms.build_subscribe(3, "/Meas/IMU6/100"), True)
        await asyncio.sleep(0.5)
        assert inbox.packets == []
        # Slots full: the fifth subscription is refused with 507 (01 ref 01 fb).
        for ref in range(10, 15):
            command = ms.build_subscribe(ref, "/Meas/Acc/13")
            await client.write_gatt_char(MS.write_uuid, command, response=True)
        await asyncio.sleep(0.2)
        assert bytes.fromhex("010e01fb") in [p for _, p in inbox.packets]
        # Write without response is not supported by the GSP command characteristic.
        with pytest.raises(BleakError):
            await client.write_gatt_char(MS.write_uuid, ms.build_hello(1), response=False)
        await client.disconnect()
        assert sensor.subscriptions == {}
        # Reconnected: nothing streams until the client subscribes again.
        client, _ = await connect(air, sensor.address)
        inbox2 = Inbox()
        await client.start_notify(MS.notify_uuid, inbox2)
        await asyncio.sleep(1.0)
        assert inbox2.packets == []
        # Without notifications enabled the firmware streams nothing either.
        await client.stop_notify(MS.notify_uuid)
        sent_before = sensor.stats.samples_sent
        await client.write_gatt_char(MS.write_uuid, ms.build_subscribe(7, "/Meas/IMU6/52"), True)
        await asyncio.sleep(0.5)
        assert sensor.stats.samples_unsent > 0 and sensor.stats.samples_sent == sent_before

    run_virtual(main())


@pytest.mark.parametrize("profile", [BMI160, BMI270], ids=["bmi160", "bmi270"])
def test_metawear_streaming_sequence(profile: mw.MetaWearProfile) -> None:
    async def main() -> None:
        air = EmulatorAir()
        source = SignalSource.still()
        variant = profile.device.split("-")[1]
        board = air.add(MetaWearPeripheral("AA:00:00:00:00:03", source, variant=variant))
        client, events = await connect(air, board.address)
        inbox = Inbox()
        await client.start_notify(profile.notify_uuid, inbox)
        p = profile
        for module in (p.module_acc, 0x42):  # 0x42: no such module
            await client.write_gatt_char(
                p.command_uuid, mw.build_module_info_read(p, module), response=False
            )
        for command in mw.streaming_commands(p, 100.0, 8, 500, packed=True):
            await client.write_gatt_char(p.command_uuid, command, response=False)
        await asyncio.sleep(2.0)
        await client.write_gatt_char(p.command_uuid, mw.build_battery_read(p), response=False)
        conn = mw.build_connection_parameters(p, 7.5, 15.0, 0, 4000.0)
        await client.write_gatt_char(p.command_uuid, conn, response=False)
        await asyncio.sleep(0.1)
        decoder = mw.MetaWearDecoder(p, acc_range_g=8, gyro_range_dps=500)
        messages = [m for _, packet in inbox.packets for m in decoder.feed(packet)]
        infos = [m for m in messages if isinstance(m, mw.ModuleInfo)]
        assert infos[0] == mw.ModuleInfo(p.module_acc, p.acc.implementation, 1)
        assert infos[1] == mw.ModuleInfo(0x42, None, None)
        assert any(isinstance(m, mw.BatteryState) and m.charge_pct == 87 for m in messages)
        assert board.connection_parameters == conn[2:]
        blocks = [m for m in messages if isinstance(m, SampleBlock)]
        acc = [b for b in blocks if b.kind == "acc_packed"]
        gyro = [b for b in blocks if b.kind == "gyro_packed"]
        packed_heads = {
            bytes(mw.signal_register(p, "acc_packed")),
            bytes(mw.signal_register(p, "gyro_packed")),
        }
        data = [packet for _, packet in inbox.packets if packet[:2] in packed_heads]
        assert data and all(len(packet) == 20 for packet in data)
        # ~2.1 s at 100 Hz in packets of 3, both sensors
        assert 64 <= len(acc) <= 72 and 64 <= len(gyro) <= 72
        z = np.concatenate([b.acc[:, 2] for b in acc if b.acc is not None])
        assert np.allclose(z, 9.80665, atol=2 * 9.80665 / p.acc.lsb_per_g[8])
        # board-side disconnect: the central gets the disconnected callback
        await client.write_gatt_char(p.command_uuid, mw.build_disconnect(p), response=False)
        await asyncio.sleep(0.1)
        assert events == ["disconnected"] and not client.is_connected
        assert board.acc.streams == {} and not board.acc.powered

    run_virtual(main())


def test_knobs_loss_jitter_drift_garbage() -> None:
    async def main() -> None:
        air = EmulatorAir()
        knobs = EmulatorKnobs(
            packet_loss=0.1, jitter_s=0.02, clock_drift_ppm=500.0, garbage_rate=0.05, seed=7
        )
        board = air.add(MetaWearPeripheral("AA:00:00:00:00:04", SignalSource.still(), knobs))
        client, _ = await connect(air, board.address)
        inbox = Inbox()
        p = board.profile
        await client.start_notify(p.notify_uuid, inbox)
        for command in mw.streaming_commands(p, 100.0, 16, 2000, packed=False):
            await client.write_gatt_char(p.command_uuid, command, response=False)
        await asyncio.sleep(60.0)
        stats = board.stats
        assert 0.08 < stats.notifications_lost / stats.notifications_sent < 0.12
        assert 0.03 < stats.garbage_sent / stats.notifications_sent < 0.07
        times = np.array([t for t, _ in inbox.packets])
        assert np.all(np.diff(times) > 0)  # the link keeps notification order
        # 500 ppm fast device clock: 100 Hz per device second = 100.05 Hz per air second
        produced = stats.samples_sent + stats.samples_dropped
        assert abs(produced / 2 / 60.0 - 100.05) < 0.05 + 2 / 60.0
        decoder = mw.MetaWearDecoder(p, acc_range_g=16, gyro_range_dps=2000)
        for _, packet in inbox.packets:
            decoder.feed(packet)
        assert decoder.stats.rejected > 0 and decoder.stats.decoded > 0

    run_virtual(main())


def test_out_of_range_after_link_drop() -> None:
    async def main() -> None:
        air = EmulatorAir()
        knobs = EmulatorKnobs(disconnect_at_s=(3.0,), outage_s=5.0)
        sensor = air.add(MovesensePeripheral("AA:00:00:00:00:05", SignalSource.still(), knobs))
        client, events = await connect(air, sensor.address)
        await asyncio.sleep(3.0)
        assert events == ["disconnected"] and not client.is_connected
        assert all(d.address != sensor.address for d, _ in await air.transport().discover(1.0))
        device = BLEDevice(sensor.address, sensor.name, sensor)
        retry = air.transport().make_client(device, lambda c: None)
        with pytest.raises(BleakError):
            await retry.connect()
        await asyncio.sleep(4.0)
        assert any(d.address == sensor.address for d, _ in await air.transport().discover(0.5))

    run_virtual(main())


def test_virtual_time_runs_faster_than_real_time() -> None:
    async def main() -> int:
        air = EmulatorAir()
        sensor = air.add(
            MovesensePeripheral("AA:00:00:00:00:06", SignalSource.still(), replace(EmulatorKnobs()))
        )
        client, _ = await connect(air, sensor.address)
        inbox = Inbox()
        await client.start_notify(MS.notify_uuid, inbox)
        await client.write_gatt_char(MS.write_uuid, ms.build_subscribe(1, "/Meas/IMU6/208"), True)
        await asyncio.sleep(120.0)
        return len(inbox.packets)

    start = time.monotonic()
    count = run_virtual(main())
    assert time.monotonic() - start < 20.0
    assert count > 120 * 26 * 2 * 0.95  # 208 Hz / 8 per message, two notifications each
