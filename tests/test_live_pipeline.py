"""The live pipeline end to end: simulator → emulated sensors → collector → journal → processor
→ sinks, on a virtual clock; live results against the batch analysis of the export; replay;
accelerometer/gyroscope pairing against the journal reader."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from imu_stream.analyze import analyze_session
from imu_stream.live.pairing import SensorPairing
from imu_stream.live.sinks import LatencyProbe
from imu_stream.live.sources import ReplaySource, SimulatedRun, simulated_source
from imu_stream.pipeline import Pipeline, PipelineConfig, RunResult
from imu_stream.records import STRIDE_COLUMNS, SampleBlock, Stride
from imu_stream.session_io import read_session_dir, read_strides_csv, write_session_dir
from imu_stream.sim.config import SimulationConfig
from imu_stream.sim.session import simulate
from imu_stream.sinks.export import export_session
from imu_stream.sinks.journal import JournalReader, JournalWriter, SessionMeta
from imu_stream.sources.virtual_time import run_virtual


def assert_same_strides(live: list[Stride], batch: list[Stride], tol: float = 1e-6) -> None:
    assert len(live) == len(batch)
    for a, b in zip(live, batch, strict=True):
        assert a.side == b.side and a.quality == b.quality
        for column in STRIDE_COLUMNS:
            x, y = getattr(a, column), getattr(b, column)
            if isinstance(x, float) and math.isnan(x):
                assert math.isnan(y), column
            elif column not in ("side", "quality"):
                assert abs(x - y) <= tol, (column, x, y)


@dataclass
class SimulatedSession:
    run: SimulatedRun
    result: RunResult
    probe: LatencyProbe
    pipeline: Pipeline


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatedSession]:
    data_dir = tmp_path_factory.mktemp("live")
    config = SimulationConfig(
        activity="run", duration_s=25.0, rate_hz=416.0, seed=4, cpd_left_deg=5.0, cpd_right_deg=7.0
    )
    run = simulated_source(config)
    probe = LatencyProbe()
    pipeline = Pipeline(
        run.source,
        PipelineConfig(athlete="tester", activity="run", data_dir=data_dir, handle_signals=False),
        [probe],
    )
    result = run_virtual(pipeline.run())  # unbounded virtual time: as fast as the CPU goes
    yield SimulatedSession(run, result, probe, pipeline)


def test_simulated_session_through_the_emulator(simulated: SimulatedSession) -> None:
    result = simulated.result
    assert result.stop_reason == "end"
    assert not result.sink_errors
    counters = result.counters
    # every decoded sample journaled, and pushed on to the processor once paired
    assert counters["ingest"]["samples"] == counters["journal"]["samples_committed"]
    end_s = simulated.run.source.end_s
    assert end_s is not None
    # sacrum 208 Hz (acc+gyro per sample) + two thighs at 100 Hz with acc and gyro apart,
    # from about 1 s after the start (scan and connect)
    assert counters["ingest"]["samples"] >= 0.97 * (end_s - 1.2) * (208 + 4 * 100)
    assert counters["processor"]["samples_pushed"] > 0.9 * counters["ingest"]["samples"] / 2
    assert counters["processor"]["samples_held"] == 0
    assert result.processing_rate_hz == 208.0  # the sacrum Movesense's rate
    with JournalReader(result.session_dir) as reader:
        meta = reader.meta
        assert reader.is_closed and meta.source == "simulate" and meta.athlete == "tester"
        assert {s.location: s.device for s in meta.sensors} == {
            "sacrum": "movesense",
            "left_thigh": "metawear-bmi160",
            "right_thigh": "metawear-bmi270",
        }
        assert meta.extra["processing_rate_hz"] == 208.0
        assert meta.to_info().sample_rate_hz == 208.0
        events = [e.event for e in reader.session_events()]
        assert events[0] == "start" and "calibrated" in events and events[-1] == "stop"
        statuses = reader.status()
        assert {s.location for s in statuses} == {"sacrum", "left_thigh", "right_thigh"}
        assert any(s.fields.get("battery_pct") == 87 for s in statuses)
        assert reader.n_strides() == len(result.strides)
        angles = reader.angles()
        assert angles is not None and angles.time_s.size > 200 * 20
    # the runner's asymmetry comes through (simulated CPD left 5°, right 7°)
    good = [s for s in result.strides if s.quality == 0]
    left = np.mean([s.pelvic_drop_deg for s in good if s.side == "left"])
    right = np.mean([s.pelvic_drop_deg for s in good if s.side == "right"])
    assert right - left > 1.0


def test_strides_arrive_while_running(simulated: SimulatedSession) -> None:
    timings = simulated.probe.timings
    assert len(timings) == len(simulated.result.strides) > 40
    live = [t for t in timings if not t.final]
    assert len(live) >= 0.8 * len(timings)  # most strides reach the sinks before the end
    for t in live:
        assert t.data_time_s >= t.end_s  # final only after its closing contact arrived
        assert 0 <= t.latency_min_s <= t.latency_max_s


def test_live_strides_equal_batch_analysis_of_the_export(
    simulated: SimulatedSession, tmp_path: Path
) -> None:
    with JournalReader(simulated.result.session_dir) as reader:
        exported = export_session(reader, tmp_path / "export", "csv")
    assert exported.analysis_error is None
    # `analyze` on the exported folder, exactly as the user would run it
    info, recordings = read_session_dir(tmp_path / "export")
    assert info.sample_rate_hz == 208.0
    batch = analyze_session(recordings, info)
    assert len(simulated.result.strides) > 40
    assert_same_strides(simulated.result.strides, batch.strides)
    # and the export's own strides.csv says the same
    assert_same_strides(
        simulated.result.strides, read_strides_csv(tmp_path / "export" / "strides.csv")
    )


def test_replay_equals_batch_analysis(tmp_path: Path) -> None:
    sim = simulate(SimulationConfig(activity="walk", duration_s=20.0, rate_hz=200.0, seed=2))
    folder = tmp_path / "walk"
    write_session_dir(folder, sim.recordings, sim.info)
    source = ReplaySource.from_folder(folder, speed=0.0)

    async def main() -> RunResult:
        config = PipelineConfig(data_dir=tmp_path / "sessions", handle_signals=False)
        return await Pipeline(source, config).run()

    import asyncio

    result = asyncio.run(main())
    info, recordings = read_session_dir(folder)
    batch = analyze_session(recordings, info)
    assert len(batch.strides) > 10
    assert_same_strides(result.strides, batch.strides)
    with JournalReader(result.session_dir) as reader:  # the journal holds the replayed samples
        back = reader.recordings()
    for loc, rec in recordings.items():
        assert np.array_equal(back[loc].time_s, rec.time_s)
        assert np.array_equal(back[loc].acc, rec.acc) and np.array_equal(back[loc].gyr, rec.gyr)


def test_pairing_matches_the_journal_reader(tmp_path: Path) -> None:
    """Separate acc and gyro notifications with jittered clocks that sometimes step back: the
    incremental pairing gives exactly what the journal reader builds from the whole stream."""
    rng = np.random.default_rng(7)
    writer = JournalWriter(tmp_path / "s", SessionMeta(athlete="pairing"))
    pairing = SensorPairing()
    pairs = []
    k_acc = k_gyr = 0
    for step in range(400):
        which = "acc" if rng.random() < 0.5 else "gyro"
        k = k_acc if which == "acc" else k_gyr
        n = 3
        base = (k + np.arange(n)) / 100.0 + (0.0031 if which == "gyro" else 0.0)
        t = base + rng.normal(0, 0.015)  # an online clock that jitters and steps back
        values = rng.normal(size=(n, 3))
        block = SampleBlock(f"{which}_packed", location="left_thigh", host_time_s=float(t[-1]))
        setattr(block, which, values)
        writer.append_block(block, time_s=t)
        pair = pairing.add(block, t)
        if pair is not None:
            pairs.append(pair)
        if which == "acc":
            k_acc += n
        else:
            k_gyr += n
        if step == 0:
            assert pair is None
    writer.close()
    with JournalReader(tmp_path / "s") as reader:
        rec = reader.recording("left_thigh")
    assert rec is not None
    t = np.concatenate([p.time_s for p in pairs])
    assert t.size == rec.time_s.size > 300
    assert np.array_equal(t, rec.time_s)
    assert np.array_equal(np.concatenate([p.acc for p in pairs]), rec.acc)
    assert np.array_equal(np.concatenate([p.gyr for p in pairs]), rec.gyr)


def test_processor_failure_keeps_recording(tmp_path: Path) -> None:
    """A processor that fails mid-session stops the session, but every sample the source
    delivered is still journaled and the journal closes cleanly."""
    import asyncio

    sim = simulate(SimulationConfig(activity="walk", duration_s=6.0, rate_hz=200.0, seed=3))
    source = ReplaySource(sim.recordings, sim.info, speed=0.0)
    pipeline = Pipeline(source, PipelineConfig(data_dir=tmp_path, handle_signals=False))
    calls = 0
    process = pipeline.stage.process

    def failing(batch: list[object]) -> object:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise RuntimeError("core bug")
        return process(batch)  # type: ignore[arg-type]

    pipeline.stage.process = failing  # type: ignore[method-assign]
    result = asyncio.run(pipeline.run())
    assert result.stop_reason == "processor error" and calls == 3
    with JournalReader(result.session_dir) as reader:
        assert reader.is_closed
        samples = reader.n_samples()
    assert sum(samples.values()) == result.counters["ingest"]["samples"] > 0


def test_core_steps_on_the_event_loop_after_a_warm_up(tmp_path: Path) -> None:
    """Every core update runs on the event loop, the calibrating one too (the core was warmed
    up before the session, its compiled functions loaded), with the same strides as the batch
    analysis; the objects that exist then are out of the garbage collector's way."""
    import asyncio
    import gc
    import threading

    sim = simulate(
        SimulationConfig(activity="run", duration_s=16.0, rate_hz=200.0, seed=5, standing_s=2.0)
    )
    source = ReplaySource(sim.recordings, sim.info, speed=4.0, block_s=0.02)
    pipeline = Pipeline(source, PipelineConfig(data_dir=tmp_path, handle_signals=False))
    calls: list[tuple[bool, bool, str]] = []  # calibrated before, core updated, thread
    process = pipeline.stage.process

    def recorded(batch: list[object]) -> object:
        calibrated = pipeline.stage.calibrated
        core = process(batch)  # type: ignore[arg-type]
        calls.append((calibrated, core is not None, threading.current_thread().name))
        return core

    pipeline.stage.process = recorded  # type: ignore[method-assign]
    result = asyncio.run(pipeline.run())
    loop_thread = threading.current_thread().name
    calibrating = [name for calibrated, updated, name in calls if updated and not calibrated]
    steady = [name for calibrated, _, name in calls if calibrated]
    assert calibrating and len(steady) > 50
    assert all(name == loop_thread for _, _, name in calls)
    assert len(result.strides) > 10
    assert_same_strides(result.strides, analyze_session(sim.recordings, sim.info).strides)
    assert gc.get_freeze_count() > 0


def test_update_cadence_before_and_after_calibration() -> None:
    """20 ms blocks, `update_every_s` 0.02: the core is asked after every block, before
    calibration as after it — not every other one, as float sums of session times would make
    it without a tolerance (20 ms more latency)."""
    from imu_stream.live.processor import ProcessorStage
    from imu_stream.live.records import StampedBlock

    sim = simulate(
        SimulationConfig(activity="run", duration_s=16.0, rate_hz=200.0, seed=2, standing_s=2.0)
    )
    stage = ProcessorStage(tuple(sim.recordings), lambda: 200.0, update_every_s=0.02)
    due: dict[bool, list[bool]] = {False: [], True: []}  # calibrated before the block → due
    n = sim.recordings["sacrum"].time_s.size
    for start in range(0, n - 4, 4):  # 4 samples at 200 Hz: 20 ms
        batch = []
        for loc, rec in sim.recordings.items():
            sl = slice(start, start + 4)
            block = SampleBlock("imu6", acc=rec.acc[sl], gyro=rec.gyr[sl], location=loc)
            batch.append(StampedBlock(block, rec.time_s[sl]))
        calibrated = stage.calibrated
        due[calibrated].append(stage.process(batch) is not None)
    before, after = due[False], due[True]
    assert len(before) > 100 and len(after) > 100
    assert all(before) and all(after)
