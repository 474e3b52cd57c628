"""Store-and-forward against a real outage: influxd is SIGKILLed mid-stream and restarted.

A live-paced stream (several athletes: 50 Hz angles and strides) keeps writing through the
outage; afterwards InfluxDB must hold every stride and angle point exactly once, the spool must
have spilled to disk, and neither `write_*()` nor the event loop may have stalled.

The fast version (about 15 s) runs always; the issue's full scenario (3-minute session, 60 s
outage) runs with IMU_STREAM_SLOW_TESTS=1.
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from imu_stream.records import AngleSeries, Stride
from imu_stream.sinks.influx import InfluxConfig, InfluxWriter
from imu_stream.sinks.influx_schema import SeriesTags
from tests.servers import InfluxServer

pytestmark = pytest.mark.servers

START_UNIX_S = 1_700_000_000.0
TICK_S = 0.1  # the online processor's output cadence
ANGLE_RATE_HZ = 50.0  # angle points per athlete per second (5 per tick)


@dataclass
class Outcome:
    strides: dict[str, list[Stride]] = field(default_factory=dict)
    angle_points: int = 0
    write_s: list[float] = field(default_factory=list)
    max_producer_late_s: float = 0.0
    max_loop_lag_s: float = 0.0
    max_disk_batches: int = 0
    lines_in: int = 0


async def _ticker(stop: asyncio.Event, outcome: Outcome) -> None:
    """How late the loop wakes a 10 ms sleeper: a stalled loop shows up here."""
    while not stop.is_set():
        t0 = time.perf_counter()
        await asyncio.sleep(0.01)
        outcome.max_loop_lag_s = max(outcome.max_loop_lag_s, time.perf_counter() - t0 - 0.01)


async def stream_through_outage(
    influxd: InfluxServer,
    db: str,
    spool: Path,
    athletes: int,
    duration_s: float,
    kill_at_s: float,
    down_for_s: float,
) -> Outcome:
    cfg = InfluxConfig(
        url=influxd.url,
        database=db,
        spool_dir=spool,
        batch_lines=500,
        flush_interval_s=0.25,
        backoff_initial_s=0.1,
        backoff_max_s=1.0,
    )
    tags = [
        SeriesTags(f"athlete{i:02d}", f"s{i:02d}", "run", START_UNIX_S) for i in range(athletes)
    ]
    outcome = Outcome(strides={t.athlete: [] for t in tags})
    rng = np.random.default_rng(17)
    next_stride = [0.5 + 0.05 * i for i in range(athletes)]
    stop = asyncio.Event()
    ticker = asyncio.create_task(_ticker(stop, outcome))

    async def outage() -> None:
        await asyncio.sleep(kill_at_s)
        await asyncio.to_thread(influxd.kill)
        await asyncio.sleep(down_for_s)
        await asyncio.to_thread(influxd.start)

    async with InfluxWriter(cfg) as writer:
        fault = asyncio.create_task(outage())
        t0 = time.perf_counter()
        tick = 0
        while (session_t := tick * TICK_S) < duration_s:
            for i, tag in enumerate(tags):
                t = session_t + np.arange(round(TICK_S * ANGLE_RATE_HZ)) / ANGLE_RATE_HZ
                angle = AngleSeries(
                    time_s=t,
                    columns={
                        "pelvic_obliquity_deg": 4 * np.sin(t * 9 + i),
                        "hip_adduction_left_deg": 10 + 3 * np.cos(t * 9),
                    },
                )
                new_strides = []
                while next_stride[i] <= session_t:
                    stride_time = float(rng.uniform(0.66, 0.76))
                    n = len(outcome.strides[tag.athlete])
                    new_strides.append(
                        Stride(
                            start_s=next_stride[i],
                            end_s=next_stride[i] + stride_time,
                            side="left" if n % 2 == 0 else "right",
                            stride_time_s=stride_time,
                            stance_time_s=0.4 * stride_time,
                            swing_time_s=0.6 * stride_time,
                            cadence_spm=120 / stride_time,
                            pelvic_drop_deg=float(rng.normal(5, 1)),
                            pelvic_obliquity_rom_deg=float(rng.normal(9, 1)),
                            hip_adduction_peak_deg=float(rng.normal(13, 2)),
                            thigh_adduction_peak_deg=float(rng.normal(8, 2)),
                            knee_abduction_peak_deg=math.nan,
                        )
                    )
                    next_stride[i] += stride_time / 2
                w0 = time.perf_counter()
                writer.write_angles(angle, tag)
                if new_strides:
                    writer.write_strides(new_strides, tag)
                outcome.write_s.append(time.perf_counter() - w0)
                outcome.strides[tag.athlete].extend(new_strides)
                outcome.angle_points += t.size
            outcome.max_disk_batches = max(outcome.max_disk_batches, writer.spooled_batches_on_disk)
            tick += 1
            # Live pacing on the wall clock, as sensors deliver.
            due = t0 + tick * TICK_S
            outcome.max_producer_late_s = max(
                outcome.max_producer_late_s, time.perf_counter() - due
            )
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
        await fault
        assert await writer.flush(timeout_s=60.0), "spool not drained after the server returned"
        outcome.lines_in = writer.stats.lines_in
    stop.set()
    await ticker
    return outcome


def _check(influxd: InfluxServer, db: str, outcome: Outcome) -> None:
    total = sum(len(v) for v in outcome.strides.values())
    result = influxd.query("SELECT count(pelvic_drop_deg) FROM stride GROUP BY athlete", db)
    counts = {s["tags"]["athlete"]: s["values"][0][1] for s in result["results"][0]["series"]}
    assert counts == {a: len(v) for a, v in outcome.strides.items()}, "lost or duplicated strides"
    rows = influxd.query(
        "SELECT pelvic_drop_deg, start_s FROM stride GROUP BY athlete ORDER BY time", db
    )["results"][0]["series"]
    for s in rows:
        got = [(r[1], r[2]) for r in s["values"]]
        want = [(x.pelvic_drop_deg, x.start_s) for x in outcome.strides[s["tags"]["athlete"]]]
        assert got == want
    angles = influxd.query("SELECT count(pelvic_obliquity_deg) FROM angles", db)
    assert angles["results"][0]["series"][0]["values"][0][1] == outcome.angle_points
    assert outcome.lines_in == total + outcome.angle_points
    assert outcome.max_disk_batches > 0, "the outage never spilled to disk"
    # write_*() only encodes and appends, the network and disk work run elsewhere: calls stay
    # sub-millisecond and the loop and the producer keep pace through the whole outage. The
    # maxima allow for a loaded 2-core CI machine; the outage itself lasts seconds.
    write_s = np.array(outcome.write_s)
    print(
        f"store-and-forward: {outcome.lines_in} lines ({total} strides), max "
        f"{outcome.max_disk_batches} batches on disk; write_*() median "
        f"{np.median(write_s) * 1e6:.0f} µs, max {write_s.max() * 1e3:.1f} ms; loop lag max "
        f"{outcome.max_loop_lag_s * 1e3:.0f} ms; producer late max "
        f"{outcome.max_producer_late_s * 1e3:.0f} ms"
    )
    assert np.median(write_s) < 0.001, f"median write() {np.median(write_s) * 1e3:.2f} ms"
    assert write_s.max() < 0.25, f"write() took {write_s.max() * 1e3:.1f} ms"
    assert outcome.max_loop_lag_s < 0.5, f"event loop stalled {outcome.max_loop_lag_s:.2f} s"
    assert outcome.max_producer_late_s < 0.5, (
        f"ingestion fell {outcome.max_producer_late_s} s behind"
    )


def test_kill_influxd_mid_stream_loses_nothing(
    influxd: InfluxServer, influx_db: str, tmp_path: Path
) -> None:
    try:
        outcome = asyncio.run(
            stream_through_outage(
                influxd,
                influx_db,
                tmp_path / "spool",
                athletes=8,
                duration_s=10.0,
                kill_at_s=2.5,
                down_for_s=4.0,
            )
        )
    finally:
        influxd.ensure_running()
    _check(influxd, influx_db, outcome)


@pytest.mark.skipif(
    os.environ.get("IMU_STREAM_SLOW_TESTS") != "1" and os.environ.get("CI", "").lower() != "true",
    reason="3-minute session with a 60 s outage: runs under CI=true or IMU_STREAM_SLOW_TESTS=1",
)
def test_sixty_second_outage_in_a_three_minute_session(
    influxd: InfluxServer, influx_db: str, tmp_path: Path
) -> None:
    try:
        outcome = asyncio.run(
            stream_through_outage(
                influxd,
                influx_db,
                tmp_path / "spool",
                athletes=20,
                duration_s=180.0,
                kill_at_s=60.0,
                down_for_s=60.0,
            )
        )
    finally:
        influxd.ensure_running()
    _check(influxd, influx_db, outcome)
