"""MetaWear accounter end to end: the emulated board's data-processing module and the collector
timing MetaWear samples by the board's ticks instead of sample counters."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from bleak import BleakClient

from imu_stream.core.clock import SensorGap, SessionRecorder
from imu_stream.devices import metawear as mw
from imu_stream.devices import metawear_processors as dp
from imu_stream.devices.profiles import metawear_profile
from imu_stream.records import SampleBlock
from imu_stream.sim.config import SimulationConfig
from imu_stream.sim.session import SimulatedSession, simulate
from imu_stream.sources.ble import (
    BleCollector,
    CollectorConfig,
    SensorCounters,
    SensorSpec,
    resolve_sensor_specs,
)
from imu_stream.sources.emulator import (
    EmulatorAir,
    EmulatorKnobs,
    EmulatorStats,
    MetaWearPeripheral,
    MovesensePeripheral,
    SignalSource,
)
from imu_stream.sources.virtual_time import run_virtual

BMI160 = metawear_profile("metawear-bmi160")
TICK_MS = 48.0 / 32768.0 * 1000.0


class Inbox:
    def __init__(self) -> None:
        self.packets: list[bytes] = []

    def __call__(self, _sender: object, data: bytearray) -> None:
        self.packets.append(bytes(data))


async def connect(air: EmulatorAir, address: str) -> BleakClient:
    air.start()
    device = next(d for d, _ in await air.transport().discover(0.3) if d.address == address)
    client = air.transport().make_client(device, lambda c: None)
    await client.connect()
    return client


def test_emulated_board_runs_accounters_like_the_firmware() -> None:
    p = BMI160

    async def main() -> None:
        air = EmulatorAir()
        board = air.add(
            MetaWearPeripheral("AA:00:00:00:00:07", SignalSource.still(), EmulatorKnobs())
        )
        client = await connect(air, board.address)
        inbox = Inbox()
        await client.start_notify(p.notify_uuid, inbox)
        decoder = mw.MetaWearDecoder(p)
        messages: list[mw.MetaWearMessage] = []

        async def write(command: bytes, settle: float = 0.05) -> None:
            decoder.observe_command(command)
            await client.write_gatt_char(p.command_uuid, command, response=False)
            await asyncio.sleep(settle)
            drain()

        def drain() -> None:  # decode what arrived, in order (replies name the last add)
            while len(inbox.packets) > decoder.stats.packets:
                messages.extend(decoder.feed(inbox.packets[decoder.stats.packets]))

        await write(mw.build_module_info_read(p, 0x09))
        assert inbox.packets[-1] == bytes.fromhex("098000021c")
        acc, gyro = dp.motion_source(p, "acc"), dp.motion_source(p, "gyro")
        await write(dp.build_processor_add(p, dp.accounter_spec(p, acc)))
        await write(bytes.fromhex("09020304ffa007a501"))  # rss: not emulated, so no reply
        await write(dp.build_processor_add(p, dp.packer_spec(p, gyro, 2)))
        await write(dp.build_processor_add(p, dp.accounter_spec(p, dp.processor_source(p, 1, 6))))
        assert [x.hex() for x in inbox.packets[1:]] == ["090200", "090201", "090202"]
        for command in [
            mw.build_acc_config(p, 100.0, 4),
            mw.build_gyro_config(p, 100.0, 500),
            dp.build_processor_notify(p, 0, True),
            dp.build_processor_notify(p, 2, True),
            dp.build_processor_notifications(p),
            mw.build_acc_sampling(p, True),
            mw.build_gyro_sampling(p, True),
            mw.build_acc_start(p, 100.0),
            mw.build_gyro_start(p),
        ]:
            await write(command, 0.0)
        await asyncio.sleep(2.0)
        drain()
        assert decoder.stats.rejected == 0
        blocks = messages[4:]
        acc_blocks = [b for b in blocks if isinstance(b, SampleBlock) and b.acc is not None]
        gyro_blocks = [b for b in blocks if isinstance(b, SampleBlock) and b.gyro is not None]
        assert {b.kind for b in acc_blocks} == {"acc_accounter"}
        assert 195 <= len(acc_blocks) <= 201 and 97 <= len(gyro_blocks) <= 101  # 1 and 2 each
        assert all(b.n_samples == 2 for b in gyro_blocks)
        acc_values = np.concatenate([b.acc for b in acc_blocks if b.acc is not None])
        assert abs(np.median(acc_values[:, 2]) - 9.80665) < 0.01  # ±4 g scale learned
        for stream, period_ms in ((acc_blocks, 10.0), (gyro_blocks, 20.0)):
            stamps = np.array([b.device_timestamp_ms for b in stream], dtype=float)
            steps = np.diff(stamps)
            # whole ticks of 48/32768 s, one sample (packet) period apart on average
            assert np.all(np.abs(steps / TICK_MS - np.round(steps / TICK_MS)) < 1e-6)
            assert np.all(np.abs(steps - period_ms) <= TICK_MS)
            assert abs(steps.mean() - period_ms) < 0.05

        # Processors outlive the connection (the board keeps them until removed)
        await write(mw.build_disconnect(p), 2.5)  # then out of range for outage_s
        client = await connect(air, board.address)
        count = len(inbox.packets)
        await client.start_notify(p.notify_uuid, inbox)
        for command in (mw.build_acc_sampling(p, True), mw.build_acc_start(p, 100.0)):
            await write(command, 0.0)
        await asyncio.sleep(0.5)
        again = inbox.packets[count:]
        assert len(again) > 40 and all(x[:3] == bytes.fromhex("090300") for x in again)
        await write(dp.build_processor_remove_all(p), 0.1)
        count = len(inbox.packets)
        await asyncio.sleep(0.5)
        assert len(inbox.packets) == count

    run_virtual(main())


def test_board_without_data_processor_falls_back_to_counters(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def main(knobs: EmulatorKnobs) -> tuple[set[str], list[bytes]]:
        air = EmulatorAir()
        board = air.add(MetaWearPeripheral("AA:00:00:00:00:08", SignalSource.still(), knobs))
        air.start()
        spec = SensorSpec("left_thigh", board.address, accounter=True)
        collector = BleCollector([spec], air.transport(), CollectorConfig(scan_timeout_s=0.5))
        kinds: set[str] = set()

        async def consume() -> None:
            async for event in collector.events():
                if isinstance(event, SampleBlock):
                    kinds.add(event.kind)

        await collector.start()
        task = asyncio.create_task(consume())
        await asyncio.sleep(3.0)
        await collector.stop()
        await task
        return kinds, board.written

    with caplog.at_level(logging.WARNING):
        kinds, written = run_virtual(main(EmulatorKnobs(data_processor=False)))
    assert kinds == {"acc_packed", "gyro_packed"}
    assert "no data-processing module" in caplog.text
    assert not any(w[:2] == b"\x09\x02" for w in written)
    kinds, written = run_virtual(main(EmulatorKnobs()))
    assert kinds == {"acc_accounter", "gyro_accounter"}
    assert written.count(bytes.fromhex("0908")) == 2  # cleared before setting up and at stop


# --- alignment through the collector: ticks as good as counters ---------------------------------

RATES = {"sacrum": 208.0, "left_thigh": 100.0}


@dataclass
class Run:
    recorder: SessionRecorder
    offset_s: float
    counters: dict[str, SensorCounters]
    stats: dict[str, EmulatorStats]
    kinds: set[str]
    gaps: list[SensorGap]


def stream(sim: SimulatedSession, accounter: bool, knobs: dict[str, EmulatorKnobs]) -> Run:
    async def main() -> Run:
        air = EmulatorAir()
        sacrum = MovesensePeripheral(
            "C0:FF:EE:00:00:01",
            SignalSource.from_recording(sim.recordings["sacrum"]),
            knobs["sacrum"],
            serial="000000000001",
        )
        thigh = MetaWearPeripheral(
            "C0:FF:EE:00:00:02",
            SignalSource.from_recording(sim.recordings["left_thigh"]),
            knobs["left_thigh"],
        )
        peripherals = {"sacrum": air.add(sacrum), "left_thigh": air.add(thigh)}
        air.start()
        specs = [
            SensorSpec("sacrum", sacrum.address),
            SensorSpec("left_thigh", thigh.address, accounter=accounter),
        ]
        collector = BleCollector(specs, air.transport(), CollectorConfig(scan_timeout_s=0.5))
        run = Run(SessionRecorder(RATES), 0.0, {}, {}, set(), [])

        async def consume() -> None:
            async for event in collector.events():
                if isinstance(event, SampleBlock):
                    run.recorder.add_block(event)
                    if event.location == "left_thigh":
                        run.kinds.add(event.kind)
                elif isinstance(event, SensorGap):
                    run.recorder.add_gap(event)
                    run.gaps.append(event)

        await collector.start()
        task = asyncio.create_task(consume())
        await asyncio.sleep(float(sim.recordings["sacrum"].time_s[-1]) - air.now())
        await collector.stop()
        await task
        assert air.t0 is not None
        run.offset_s = collector.session_start - air.t0
        run.counters = {loc: collector.counters(loc) for loc in peripherals}
        run.stats = {loc: per.stats for loc, per in peripherals.items()}
        return run

    return run_virtual(main())


def window_errors(run: Run, sim: SimulatedSession, window_s: float = 4.0) -> np.ndarray:
    """Per window, thigh minus sacrum time error (s) of the collected gyro against the truth."""
    per_sensor = []
    for location in RATES:
        channel = run.recorder.channel(location, "gyro")
        assert channel is not None
        t_est, gyro = channel
        truth_rec = sim.recordings[location]
        t_air = t_est + run.offset_s
        truth = np.column_stack(
            [np.interp(t_air, truth_rec.time_s, truth_rec.gyr[:, j]) for j in range(3)]
        )
        slope = np.column_stack(
            [
                np.interp(
                    t_air, truth_rec.time_s, np.gradient(truth_rec.gyr[:, j], truth_rec.time_s)
                )
                for j in range(3)
            ]
        )
        window = np.floor(t_est / window_s).astype(int)
        errors = {}
        for w in np.unique(window)[1:-1]:  # whole windows only
            m = window == w
            resid = gyro[m] - truth[m]
            errors[int(w)] = -np.sum(resid * slope[m]) / np.sum(slope[m] ** 2)
        per_sensor.append(errors)
    common = sorted(set(per_sensor[0]) & set(per_sensor[1]))
    return np.array([per_sensor[1][w] - per_sensor[0][w] for w in common])


def test_ticks_align_as_well_as_counters_and_count_every_loss() -> None:
    sim = simulate(
        SimulationConfig(
            activity="run",
            duration_s=60.0,
            rate_hz=208.0,
            seed=8,
            sensors=("sacrum", "left_thigh"),
        )
    )
    knobs = {
        "sacrum": EmulatorKnobs(
            packet_loss=0.02, jitter_s=0.02, clock_drift_ppm=100.0, seed=1, boot_time_s=-700.0
        ),
        "left_thigh": EmulatorKnobs(
            packet_loss=0.02, jitter_s=0.02, clock_drift_ppm=-100.0, seed=2, boot_time_s=-1400.0
        ),
    }
    counted = stream(sim, False, knobs)
    ticked = stream(sim, True, knobs)
    assert counted.kinds == {"acc_packed", "gyro_packed"}
    assert ticked.kinds == {"acc_accounter", "gyro_accounter"}
    medians = {}
    for name, run in (("counters", counted), ("ticks", ticked)):
        errors = np.abs(window_errors(run, sim)) * 1000.0
        assert len(errors) >= 12
        medians[name] = float(np.median(errors))
        lost = run.counters["left_thigh"].lost_samples
        dropped = run.stats["left_thigh"].samples_dropped
        print(f"\n{name}: alignment median {medians[name]:.3f} ms, lost {lost} of {dropped}")
        assert all(g.reason == "lost" for g in run.gaps)
    assert medians["ticks"] <= 2.0
    assert medians["ticks"] <= medians["counters"] + 0.5
    # Ticks count every dropped sample (bar drops before the first or after the last arrival).
    lost = ticked.counters["left_thigh"].lost_samples
    dropped = ticked.stats["left_thigh"].samples_dropped
    assert dropped > 50 and dropped - 4 <= lost <= dropped


def test_reconnect_recreates_the_accounters_and_keeps_ticks() -> None:
    async def main() -> tuple[list[SampleBlock], list[SensorGap], list[bytes], SensorCounters]:
        air = EmulatorAir()
        knobs = EmulatorKnobs(disconnect_at_s=(8.0,), outage_s=2.0, seed=5)
        board = air.add(MetaWearPeripheral("AA:00:00:00:00:09", SignalSource.still(), knobs))
        air.start()
        spec = SensorSpec("left_thigh", board.address, accounter=True)
        collector = BleCollector([spec], air.transport(), CollectorConfig(scan_timeout_s=0.5))
        blocks: list[SampleBlock] = []
        gaps: list[SensorGap] = []

        async def consume() -> None:
            async for event in collector.events():
                if isinstance(event, SampleBlock):
                    blocks.append(event)
                elif isinstance(event, SensorGap):
                    gaps.append(event)

        await collector.start()
        task = asyncio.create_task(consume())
        await asyncio.sleep(20.0)
        await collector.stop()
        await task
        return blocks, gaps, board.written, collector.counters("left_thigh")

    blocks, gaps, written, counters = run_virtual(main())
    (gap,) = gaps
    assert gap.reason == "disconnect" and 2.0 < gap.end_s - gap.start_s < 6.0
    after = [b for b in blocks if b.host_time_s is not None and b.host_time_s > gap.end_s]
    assert len(after) > 500 and {b.kind for b in after} == {"acc_accounter", "gyro_accounter"}
    adds = [w for w in written if w[:2] == b"\x09\x02"]
    assert len(adds) == 2 * 4  # packer + accounter per signal, on each connection
    # the samples missed while away are skipped (not lost) and sized by the ticks
    assert abs((gap.lost_samples + 1) / 100.0 - (gap.end_s - gap.start_s)) < 0.03
    assert counters.skipped_samples == 2 * gap.lost_samples  # accelerometer and gyroscope
    assert counters.lost_samples == 0


def test_session_toml_turns_the_accounter_on(tmp_path: Path) -> None:
    toml = tmp_path / "session.toml"
    toml.write_text('[sensors.left_thigh]\naddress = "AA:BB"\naccounter = true\n')
    (spec,) = resolve_sensor_specs([], toml)
    assert spec.accounter is True
    assert resolve_sensor_specs(["sacrum=CC"])[0].accounter is None  # off unless asked
