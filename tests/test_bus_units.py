"""The scale-out parts without a broker: shard specs, session markers, the raw samples as the
collector journals and publishes them, and one session worker fed bus messages."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from typing import Any, cast

import numpy as np
import pytest
from typer.testing import CliRunner

from imu_stream.analyze import analyze_session
from imu_stream.bus.collect import as_sent, join_blocks
from imu_stream.bus.markers import (
    EndOfSession,
    SessionProcessed,
    decode_end,
    decode_processed,
    encode_end,
    encode_processed,
)
from imu_stream.bus.outputs import SessionOutputs
from imu_stream.bus.session_worker import SessionWorker, WorkerConfig
from imu_stream.bus.shard import ShardSpec
from imu_stream.cli import app
from imu_stream.core.online import CoreUpdate
from imu_stream.records import AngleSeries, SampleBlock, SensorRecording, Stride
from imu_stream.sim.config import SimulationConfig
from imu_stream.sim.session import simulate
from imu_stream.sinks import wire
from imu_stream.sinks.influx_schema import AngleDownsampler, downsample_index
from imu_stream.sinks.journal.meta import SessionEvent, SessionMeta
from tests.bus_helpers import assert_same_strides


def test_shard_spec_parsing_and_client_ids() -> None:
    assert ShardSpec.parse("1/3") == ShardSpec(1, 3) and str(ShardSpec(1, 3)) == "1/3"
    for bad in ("3/3", "-1/2", "1", "a/b", "0/0", "1/2/3"):
        with pytest.raises(ValueError, match="--shard must be I/N"):
            ShardSpec.parse(bad)
    ids = {ShardSpec(i, 2).client_id(p) for i in range(2) for p in ("a/v1", "b/v1")}
    assert len(ids) == 4  # per shard and per prefix
    assert ShardSpec(0, 2).client_id("a/v1") == ShardSpec(0, 2).client_id("a/v1")


def test_markers_round_trip_and_stay_plain_session_events() -> None:
    end = EndOfSession(12.5, "end", {"sacrum": 41, "left_thigh": 80})
    payload = encode_end(end)
    assert decode_end(payload) == end
    # A reader that knows only wire format v1 sees the session event `stop`.
    assert wire.decode_event(payload) == SessionEvent(12.5, "stop", "end")
    done = SessionProcessed(30.0, 57, 2)
    assert decode_processed(encode_processed(done)) == done
    assert decode_end(encode_processed(done)) is None
    assert decode_processed(payload) is None
    assert decode_end(wire.encode_session_event(SessionEvent(1.0, "gap", "x"))) is None
    assert decode_end(b"not json") is None


def test_journaled_samples_are_those_on_the_wire_and_joining_loses_nothing() -> None:
    rng = np.random.default_rng(3)
    blocks = []
    for i in range(4):
        n = int(rng.integers(1, 9))
        block = SampleBlock(
            "imu6",
            acc=rng.normal(0, 9.8, (n, 3)) / 3.0,
            gyro=rng.normal(0, 200, (n, 3)) / 7.0,
            device_timestamp_ms=100.0 * i,
            host_time_s=0.1 * i + 0.05,
            location="sacrum",
        )
        blocks.append((as_sent(block), 0.1 * i + np.arange(n) / 208.0))
    for block, t in blocks:
        travelled = wire.decode_raw_block(wire.encode_raw_block(block, time_s=t)).block
        assert block.acc is not None and block.gyro is not None
        assert np.array_equal(travelled.acc, block.acc)  # bit-identical: float32 both ways
        assert np.array_equal(travelled.gyro, block.gyro)
    joined, times = join_blocks(blocks)
    decoded = wire.decode_raw_block(wire.encode_raw_block(joined, time_s=times))
    assert decoded.time_s is not None and np.array_equal(
        decoded.time_s, np.concatenate([t for _, t in blocks])
    )
    assert np.array_equal(decoded.block.acc, np.concatenate([b.acc for b, _ in blocks]))
    first, last = blocks[0][0], blocks[-1][0]
    assert decoded.block.device_timestamp_ms == first.device_timestamp_ms
    assert decoded.block.host_time_s == last.host_time_s


class FakeOutputs:
    """Records what a SessionWorker hands to its outputs."""

    def __init__(self) -> None:
        self.strides: list[Stride] = []
        self.events: list[SessionEvent] = []
        self.processed_markers: list[SessionProcessed] = []
        self.collector: list[Any] = []

    def on_update(self, core: CoreUpdate) -> None:
        self.strides += core.strides

    def processor_event(self, event: SessionEvent) -> None:
        self.events.append(event)

    def collector_event(self, event: SessionEvent) -> None:
        self.collector.append(event)

    def status(self, record: Any) -> None:
        self.collector.append(record)

    def processed(self, done: SessionProcessed) -> None:
        self.processed_markers.append(done)


def _raw_messages(recordings: dict[str, SensorRecording], block_s: float) -> list[wire.RawBlock]:
    """Each sensor's samples as raw messages of `block_s`, interleaved in time order."""
    messages = []
    for loc, rec in recordings.items():
        edges = np.arange(rec.time_s[0], rec.time_s[-1] + block_s, block_s)
        bounds = np.searchsorted(rec.time_s, edges)
        for seq, (a, b) in enumerate(itertools.pairwise(bounds)):
            if b > a:
                block = SampleBlock("imu6", acc=rec.acc[a:b], gyro=rec.gyr[a:b], location=loc)
                payload = wire.encode_raw_block(block, seq=seq, time_s=rec.time_s[a:b])
                messages.append(wire.decode_raw_block(payload))
    return sorted(messages, key=lambda m: float(m.time_s[0]) if m.time_s is not None else 0.0)


def test_session_worker_equals_analyze_and_waits_for_announced_blocks() -> None:
    sim = simulate(SimulationConfig(activity="run", duration_s=16.0, rate_hz=200.0, seed=11))
    recordings = {
        loc: dataclasses.replace(
            rec,
            acc=rec.acc.astype(np.float32).astype(np.float64),
            gyr=rec.gyr.astype(np.float32).astype(np.float64),
        )
        for loc, rec in sim.recordings.items()
    }
    reference = analyze_session(recordings, sim.info).strides
    messages = _raw_messages(recordings, 0.05)
    last_seq = {m.block.location: m.seq for m in messages if m.block.location}
    meta = SessionMeta(athlete="ann", activity="run", session_id="s1")
    meta.extra = {"locations": list(recordings), "processing_rate_hz": sim.info.sample_rate_hz}
    outputs = FakeOutputs()

    async def main() -> SessionWorker:
        worker = SessionWorker(
            "ann",
            "s1",
            lambda m: cast(SessionOutputs, outputs),
            WorkerConfig(in_thread=False, end_grace_s=30.0),
        )
        worker.start()
        held, rest = messages[:40], messages[40:]
        for raw in held:  # before the session's info: held, then processed in order
            await worker.on_raw(raw)
        worker.on_info(meta)
        tail = rest[-5:]
        for raw in rest[:-5]:
            await worker.on_raw(raw)
        worker.on_end(EndOfSession(16.0, "end", {k: int(v) for k, v in last_seq.items()}))
        await asyncio.sleep(0.2)
        assert worker.task is not None and not worker.task.done()  # waits for the last blocks
        for raw in tail:
            await worker.on_raw(raw)
        await asyncio.wait_for(worker.task, 60.0)
        return worker

    worker = asyncio.run(main())
    assert worker.stats.finished == "end" and worker.stats.raw_blocks_lost == 0
    assert len(reference) > 20
    assert_same_strides(outputs.strides, reference, "worker")  # live == batch within 1e-6
    assert [p.strides for p in outputs.processed_markers] == [len(reference)]
    assert [e.event for e in outputs.events] == ["calibrated"]


def test_session_worker_gives_up_waiting_for_lost_blocks() -> None:
    sim = simulate(SimulationConfig(activity="walk", duration_s=6.0, rate_hz=100.0, seed=2))
    messages = _raw_messages(dict(sim.recordings), 0.1)
    lost = messages.pop(len(messages) // 2)  # QoS 0: a message that never arrived
    meta = SessionMeta(athlete="bo", activity="walk", session_id="s2")
    meta.extra = {"locations": list(sim.recordings), "processing_rate_hz": 100.0}

    async def main() -> SessionWorker:
        worker = SessionWorker(
            "bo",
            "s2",
            lambda m: cast(SessionOutputs, FakeOutputs()),
            WorkerConfig(in_thread=False, end_grace_s=0.3),
        )
        worker.start()
        worker.on_info(meta)
        for raw in messages:
            await worker.on_raw(raw)
        announced: dict[str, int] = {}
        for m in [*messages, lost]:
            loc = str(m.block.location)
            announced[loc] = max(announced.get(loc, 0), m.seq)
        announced[str(lost.block.location)] += 1  # and the last one never came either
        worker.on_end(EndOfSession(6.0, "end", {k: int(v) for k, v in announced.items()}))
        assert worker.task is not None
        await asyncio.wait_for(worker.task, 10.0)
        return worker

    worker = asyncio.run(main())
    assert worker.stats.finished == "incomplete end"
    assert worker.stats.raw_blocks_lost == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["collect", "--simulate", "run"], "give the broker"),
        (["collect", "--simulate", "run", "--speed", "0", "--mqtt", "mqtt://127.0.0.1:9"], "speed"),
        (
            ["collect", "--sensor", "sacrum=AA", "--athletes", "3", "--mqtt", "mqtt://127.0.0.1:9"],
            "--athletes N needs --simulate",
        ),
        (["process", "--shard", "2/2", "--mqtt", "mqtt://127.0.0.1:9"], "--shard must be I/N"),
        (["process", "--mqtt", "http://127.0.0.1:9"], "MQTT URL must be"),
    ],
)
def test_collect_and_process_usage_errors_are_one_line(
    args: list[str], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("IMU_STREAM_MQTT_URL", raising=False)
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


def test_collect_and_process_help_render() -> None:
    for command in ("collect", "process"):
        result = CliRunner().invoke(app, [command, "--help"])
        assert result.exit_code == 0, result.output
        assert "--mqtt" in result.output


def test_angle_downsampler_keeps_one_sample_per_bin_across_chunks() -> None:
    rng = np.random.default_rng(5)
    t = np.arange(0.0, 3.0, 1 / 208.0) + 1e-7 * rng.standard_normal(624)
    series = AngleSeries(t, {"pelvic_obliquity_deg": np.sin(t)})
    cuts = np.sort(rng.choice(np.arange(1, t.size), 120, replace=False))  # ~ every 5 samples
    downsampler = AngleDownsampler()
    kept = np.concatenate(
        [
            downsampler(AngleSeries(t[a:b], {k: v[a:b] for k, v in series.columns.items()})).time_s
            for a, b in itertools.pairwise([0, *cuts.tolist(), t.size])
        ]
    )
    assert np.array_equal(kept, t[downsample_index(t)])  # as if downsampled in one piece
    assert np.unique(np.rint(kept * 50)).size == kept.size
