"""InfluxDB write path: line-protocol encoding speed and what a local influxd accepts.

Run: `.venv/bin/python benchmarks/influx_write.py [--lines N] [--write-lines N]`

1. Encoding (no server): lines/s for the `angles` measurement (7 float fields, fixed point,
   the high-rate path; target ≥ 200 k lines/s), the `stride` measurement (12 fields, exact
   floats), and live-sized chunks of 5 angle rows.
2. Writing: starts its own influxd (Debian `influxdb`) on a free loopback port in a temporary
   folder, writes `--write-lines` angle lines through `InfluxWriter` (batches of 5,000, gzip),
   waits until all are acknowledged, checks the count with InfluxQL, and prints lines/s.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from imu_stream.records import ANGLE_COLUMNS, AngleSeries, Stride
from imu_stream.sinks.influx import InfluxConfig, InfluxWriter
from imu_stream.sinks.influx_schema import SeriesTags, angle_lines, stride_lines
from imu_stream.sinks.line_protocol import count_lines

TAGS = SeriesTags("athlete-01", "2025-01-01-run", "run", start_unix_s=1_700_000_000.0)


def angle_table(n: int, seed: int = 0) -> AngleSeries:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 50.0  # already 50 Hz: every row becomes a line
    return AngleSeries(t, {c: rng.normal(0, 8, n) for c in ANGLE_COLUMNS[1:]})


def stride_table(n: int, seed: int = 0) -> list[Stride]:
    rng = np.random.default_rng(seed)
    starts = np.cumsum(rng.uniform(0.33, 0.38, n))
    return [
        Stride(
            float(s),
            float(s) + 0.7,
            "left" if i % 2 else "right",
            0.7,
            0.28,
            0.42,
            171.4,
            float(rng.normal(5, 1)),
            float(rng.normal(9, 1)),
            float(rng.normal(13, 2)),
            float(rng.normal(8, 2)),
            math.nan,
            0,
        )
        for i, s in enumerate(starts)
    ]


def best_rate(fn: object, n_lines: int, repeat: int) -> float:
    best = math.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()  # type: ignore[operator]
        best = min(best, time.perf_counter() - t0)
    return n_lines / best


def bench_encoding(n: int, repeat: int) -> None:
    angles = angle_table(n)
    payload = angle_lines(angles, TAGS)
    assert count_lines(payload) == n
    rate = best_rate(lambda: angle_lines(angles, TAGS), n, repeat)
    print(
        f"encode angles  (7 fields, fixed 4 dp): {rate:>12,.0f} lines/s "
        f"({len(payload) / n:.0f} B/line, {n:,} lines, best of {repeat})"
    )

    n_strides = max(n // 4, 1)
    strides = stride_table(n_strides)
    rate = best_rate(lambda: stride_lines(strides, TAGS), n_strides, repeat)
    print(
        f"encode strides (12 fields, exact):     {rate:>12,.0f} lines/s ({n_strides:,} lines; "
        "includes building the columns from Stride objects)"
    )

    chunks = [angle_table(5, seed=i) for i in range(2000)]
    rate = best_rate(lambda: [angle_lines(c, TAGS) for c in chunks], 5 * len(chunks), repeat)
    print(f"encode angles in live chunks of 5 rows:{rate:>12,.0f} lines/s")


async def write_through(url: str, n: int) -> tuple[float, int]:
    cfg = InfluxConfig(url=url, database="bench", create_database=True, timeout_s=30.0)
    angles = angle_table(n, seed=1)
    step = 50_000  # hand over in pieces, as a pipeline would
    async with InfluxWriter(cfg) as writer:
        t0 = time.perf_counter()
        for start in range(0, n, step):
            part = slice(start, start + step)
            writer.write_angles(
                AngleSeries(angles.time_s[part], {k: v[part] for k, v in angles.columns.items()}),
                TAGS,
            )
            await asyncio.sleep(0)
        if not await writer.flush(timeout_s=600.0):
            raise RuntimeError(f"not all lines acknowledged: {writer.stats}")
        elapsed = time.perf_counter() - t0
        return elapsed, writer.stats.lines_written


def bench_server(n: int) -> None:
    from tests.servers import InfluxServer, find_influxd

    binary = find_influxd()
    if binary is None:
        print("write: influxd not found (Debian package `influxdb`); skipped")
        return
    with tempfile.TemporaryDirectory() as folder:
        server = InfluxServer(binary, Path(folder))
        server.start()
        try:
            elapsed, written = asyncio.run(write_through(server.url, n))
            result = server.query('SELECT count("pelvic_obliquity_deg") FROM angles', db="bench")
            stored = result["results"][0]["series"][0]["values"][0][1]
            version = server.query("SHOW DIAGNOSTICS")["results"][0]["series"]
            build = next((s for s in version if s["name"] == "build"), None)
            name = build["values"][0][build["columns"].index("Version")] if build else "?"
        finally:
            server.stop()
    print(
        f"write to local influxd {name}: {written / elapsed:>12,.0f} lines/s accepted "
        f"({written:,} lines in {elapsed:.1f} s, batches of 5,000, gzip; {stored:,} stored)"
    )
    if stored != n:
        raise SystemExit(f"stored {stored} of {n} lines")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=200_000, help="lines per encoding run")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--write-lines", type=int, default=500_000, help="0 = skip the server")
    args = parser.parse_args()
    bench_encoding(args.lines, args.repeat)
    if args.write_lines:
        bench_server(args.write_lines)


if __name__ == "__main__":
    main()
