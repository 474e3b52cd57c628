"""Journal figures: append cost, commit cost, file size and read-back time for a long session.

    python benchmarks/journal_throughput.py [--minutes 60] [--sensors 3] [--rate 200]
                                            [--realtime-s 10]

Writes MINUTES of SENSORS × RATE Hz (4-sample notifications, stamped times, as the pipeline
journals them) as fast as the writer takes them, then reads the session back as recordings.
Then paces REALTIME_S seconds at the real notification rate: the append latency the event
loop sees and the commit time per 0.25 s interval in normal operation.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from imu_stream.records import LOCATIONS, SampleBlock
from imu_stream.sinks.journal import JournalReader, JournalWriter, SensorMeta, SessionMeta

BLOCK = 4


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--sensors", type=int, default=3)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--realtime-s", type=float, default=10.0)
    args = parser.parse_args()
    sensors = LOCATIONS[: args.sensors]
    n_blocks = int(args.minutes * 60 * args.rate / BLOCK)
    rng = np.random.default_rng(0)
    acc = rng.normal(0, 9.8, (BLOCK, 3))
    gyr = rng.normal(0, 100, (BLOCK, 3))
    offsets = np.arange(BLOCK) / args.rate
    meta = SessionMeta(
        athlete="bench", sensors=[SensorMeta(s, "simulator", rate_hz=args.rate) for s in sensors]
    )
    with tempfile.TemporaryDirectory() as tmp:
        writer = JournalWriter.create(Path(tmp), meta)
        append_s = np.empty(n_blocks * len(sensors))
        i = 0
        wall = time.perf_counter()
        for b in range(n_blocks):
            t = b * BLOCK / args.rate + offsets
            for loc in sensors:
                started = time.perf_counter()
                writer.append_block(SampleBlock("imu6", acc=acc, gyro=gyr), loc, time_s=t)
                append_s[i] = time.perf_counter() - started
                i += 1
        writer.close()
        wall = time.perf_counter() - wall
        stats = writer.stats
        size_mb = writer.path.stat().st_size / 1e6
        started = time.perf_counter()
        with JournalReader(writer.session_dir) as reader:
            recs = reader.recordings()
        read_s = time.perf_counter() - started
    samples = sum(r.n_samples for r in recs.values())
    hours = args.minutes / 60
    print(
        f"session: {args.minutes:g} min, {len(sensors)} sensors × {args.rate:g} Hz, "
        f"{n_blocks * len(sensors)} blocks of {BLOCK} samples"
    )
    print(
        f"append: mean {append_s.mean() * 1e6:.1f} µs, p99 {np.percentile(append_s, 99) * 1e6:.1f}"
        f" µs, max {append_s.max() * 1e3:.2f} ms"
    )
    print(
        f"writing took {wall:.1f} s = {args.minutes * 60 / wall:.0f}× real time; "
        f"{stats.commits} commits, longest {stats.max_commit_ms:.0f} ms"
    )
    print(f"file: {size_mb:.1f} MB ({size_mb / hours:.0f} MB per hour)")
    print(f"read back {samples} samples as recordings in {read_s:.2f} s")
    if args.realtime_s > 0:
        realtime(args.realtime_s, sensors, args.rate)


def realtime(seconds: float, sensors: tuple[str, ...], rate: float) -> None:
    rng = np.random.default_rng(1)
    acc = rng.normal(0, 9.8, (BLOCK, 3))
    gyr = rng.normal(0, 100, (BLOCK, 3))
    meta = SessionMeta(athlete="bench")
    n_blocks = int(seconds * rate / BLOCK)
    append_s = []
    with tempfile.TemporaryDirectory() as tmp:
        writer = JournalWriter.create(Path(tmp), meta)
        start = time.perf_counter()
        for b in range(n_blocks):
            t = (b * BLOCK + np.arange(BLOCK)) / rate
            for loc in sensors:
                started = time.perf_counter()
                writer.append_block(SampleBlock("imu6", acc=acc, gyro=gyr), loc, time_s=t)
                append_s.append(time.perf_counter() - started)
            delay = start + (b + 1) * BLOCK / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        stats = writer.stats
        writer.close()
    a = np.array(append_s)
    print(
        f"real time, {seconds:g} s: append mean {a.mean() * 1e6:.1f} µs, "
        f"p99 {np.percentile(a, 99) * 1e6:.1f} µs, max {a.max() * 1e3:.2f} ms; "
        f"{stats.commits} commits, longest {stats.max_commit_ms:.1f} ms"
    )


if __name__ == "__main__":
    main()
