"""Live latency: how long after its data arrives does a stride's result reach the sinks?

Each simulated athlete wears three sensors at 200 Hz (sacrum + both thighs); their recordings are
fed to the live pipeline in real time in blocks of 4 samples (20 ms, one BLE notification's
worth), journaled, processed and handed to the sinks, exactly as in `imu-stream run`. Every
athlete is one `Pipeline` in the same process and event loop (each with its own journal).

Two figures per stride, as the sinks see it:

- **processing latency** (wall clock): from the moment the pipeline received the block whose
  processing made the stride final, to the stride reaching the sinks. The processor works in
  batches; the figure is taken from the *oldest* block of the batch (an upper bound), and the
  newest block's figure is printed beside it (a lower bound).
- **finalisation delay** (session time): from the stride's end (its closing initial contact) to
  the newest sample the processor had when it emitted the stride: the signal core's look-ahead
  (how much later data it needs to decide), which no amount of CPU removes.

    python benchmarks/live_latency.py                    # 1 and 30 athletes, 60 s of running
    python benchmarks/live_latency.py --athletes 1 --duration 120
    python benchmarks/live_latency.py --source emulator  # 1 athlete through the BLE emulator
    python benchmarks/live_latency.py --stub-core        # the pipeline's own cost, no signal core
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import resource
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

import imu_stream.live.processor as processor_module
from imu_stream.core.online import CalibrationState, CoreUpdate
from imu_stream.live.sinks import LatencyProbe, StrideTiming
from imu_stream.live.sources import ReplaySource, Source, simulated_source
from imu_stream.pipeline import Pipeline, PipelineConfig, RunResult
from imu_stream.sim.config import SimulationConfig
from imu_stream.sim.session import simulate

RATE_HZ = 200.0
BLOCK_S = 0.02
STANDING_S = 3.0


@dataclass
class Scenario:
    athletes: int
    results: list[RunResult]
    probes: list[list[StrideTiming]]
    wall_s: float
    cpu_s: float
    loop_cpu_s: float  # of that, the event loop's thread
    load: tuple[float, float]  # the machine's 1-min load average before and after


class PipelineOnlyCore:
    """`--stub-core`: the OnlineProcessor's interface without its signal processing, so the
    figures show what the pipeline itself costs (source, journal, pairing, hand-offs, sinks)."""

    def __init__(self, locations: object, rate_hz: float) -> None:
        self.rate_hz = rate_hz

    def push(self, location: str, time_s: object, acc: object, gyr: object) -> None:
        return None

    def update(self) -> CoreUpdate:
        return CoreUpdate(calibration=CalibrationState(True, "stub core"))

    def finish(self) -> CoreUpdate:
        return self.update()


def make_source(kind: str, seed: int, duration_s: float) -> Source:
    config = SimulationConfig(
        activity="run", duration_s=duration_s, rate_hz=RATE_HZ, seed=seed, standing_s=STANDING_S
    )
    if kind == "emulator":
        emulated = simulated_source(replace(config, rate_hz=416.0))
        return emulated.source
    sim = simulate(config)
    return ReplaySource(sim.recordings, sim.info, speed=1.0, block_s=BLOCK_S, rate_hz=RATE_HZ)


async def run_athletes(pipelines: list[Pipeline]) -> list[RunResult]:
    rng = random.Random(1)

    async def staggered(pipeline: Pipeline) -> RunResult:
        await asyncio.sleep(rng.uniform(0.0, 1.0))  # athletes do not start in lockstep
        return await pipeline.run()

    return list(await asyncio.gather(*(staggered(p) for p in pipelines)))


def scenario(n: int, kind: str, duration_s: float, update_every_s: float) -> Scenario:
    with tempfile.TemporaryDirectory() as tmp:
        # Simulating the athletes is not part of the figures: done before the clocks start.
        probes = [LatencyProbe() for _ in range(n)]
        pipelines = [
            Pipeline(
                make_source(kind, seed, duration_s),
                PipelineConfig(
                    athlete=f"athlete {seed}",
                    activity="run",
                    data_dir=Path(tmp),
                    handle_signals=False,
                    update_every_s=update_every_s,
                ),
                [probe],
            )
            for seed, probe in enumerate(probes)
        ]
        load0 = os.getloadavg()[0]
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        loop0 = time.thread_time()  # asyncio.run's loop runs in this thread
        started = time.perf_counter()
        results = asyncio.run(run_athletes(pipelines))
        wall = time.perf_counter() - started
        loop_cpu = time.thread_time() - loop0
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    load = (load0, os.getloadavg()[0])
    return Scenario(n, results, [p.timings for p in probes], wall, cpu, loop_cpu, load)


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def _split(probes: list[list[StrideTiming]]) -> tuple[list[StrideTiming], list[StrideTiming]]:
    """(calibration backlog, steady state) of the strides emitted live. The core holds strides
    until it is calibrated, then releases that backlog in one update; from then on each stride
    is emitted on its own as soon as it is final."""
    backlog: list[StrideTiming] = []
    steady: list[StrideTiming] = []
    for timings in probes:
        live = [t for t in timings if not t.final]
        if not live:
            continue
        first = live[0].data_time_s
        for t in live:
            (backlog if t.data_time_s == first else steady).append(t)
    return backlog, steady


def _line(label: str, timings: list[StrideTiming]) -> None:
    upper = [1e3 * t.latency_max_s for t in timings]
    lower = [1e3 * t.latency_min_s for t in timings]
    delay = [t.data_time_s - t.end_s for t in timings]
    print(
        f"  {label:<22} n {len(timings):5d} · processing latency ms: p50 {pct(upper, 50):7.2f}, "
        f"p99 {pct(upper, 99):7.2f}, max {max(upper, default=float('nan')):7.2f} "
        f"(newest-block bound p99 {pct(lower, 99):.2f}) · finalisation delay s: "
        f"p50 {pct(delay, 50):.2f}, p99 {pct(delay, 99):.2f}"
    )


def report(s: Scenario, duration_s: float, kind: str) -> None:
    backlog, steady = _split(s.probes)
    at_end = sum(t.final for timings in s.probes for t in timings)
    waits = sum(int(r.counters["ingest"]["queue_full_waits"]) for r in s.results)
    gaps = max(float(r.counters["ingest"]["max_gap_s"]) for r in s.results)
    core_max = max(float(r.counters["processor"]["update_s_max"]) for r in s.results)
    core_total = sum(float(r.counters["processor"]["update_s_total"]) for r in s.results)
    sensors = f"{3 * s.athletes} sensors at {RATE_HZ:g} Hz"
    if kind == "emulator":
        sensors = f"{s.athletes}× (Movesense 208 Hz + 2 MetaMotion 100 Hz) through the emulator"
    print(f"\n{s.athletes} athlete(s), {sensors}, {duration_s:g} s run")
    half = duration_s / 2 + STANDING_S
    _line("all live strides", backlog + steady)
    _line("after calibration", steady)
    _line("second half of the run", [t for t in steady if t.end_s > half])
    _line("calibration backlog", backlog)
    print(f"  ({at_end} strides only at the session end, from finish(): not counted)")
    print(
        f"  wall {s.wall_s:.1f} s, CPU {s.cpu_s:.1f} s ({100 * s.cpu_s / s.wall_s:.0f} % of one "
        f"core, {os.cpu_count()} cores; event-loop thread {100 * s.loop_cpu_s / s.wall_s:.0f} %, "
        f"other threads {100 * (s.cpu_s - s.loop_cpu_s) / s.wall_s:.0f} %); core update max "
        f"{1e3 * core_max:.0f} ms, total {core_total:.1f} s; processor-queue waits {waits}; "
        f"longest ingest gap {1e3 * gaps:.0f} ms; machine load {s.load[0]:.1f} → {s.load[1]:.1f} "
        "(other processes take CPU from this one above about 1)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--athletes", type=int, nargs="+", default=[1, 30])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of running")
    parser.add_argument("--source", choices=("replay", "emulator"), default="replay")
    parser.add_argument(
        "--update-every",
        type=float,
        default=PipelineConfig().update_every_s,
        help="session seconds of new data between core updates (0: after every batch)",
    )
    parser.add_argument(
        "--switch-interval", type=float, default=None, help="sys.setswitchinterval (s)"
    )
    parser.add_argument(
        "--stub-core",
        action="store_true",
        help="replace the signal core by a stub: the pipeline's own cost and latency",
    )
    args = parser.parse_args()
    if args.stub_core:
        processor_module.OnlineProcessor = PipelineOnlyCore  # type: ignore[misc,assignment]
    if args.switch_interval:
        sys.setswitchinterval(args.switch_interval)
    print(
        f"live latency: {args.source} source, real time, blocks of {BLOCK_S * 1e3:.0f} ms; "
        "journal, processor (on the event loop, the core warmed up before the first session) and a "
        "latency probe sink per athlete"
    )
    print(
        f"{'STUB core (pipeline only), ' if args.stub_core else ''}"
        f"core update after every {args.update_every:g} s of new data (0: every batch); "
        f"interpreter switch interval {1e3 * sys.getswitchinterval():g} ms"
    )
    for n in args.athletes:
        result = scenario(n, args.source, args.duration, args.update_every)
        report(result, args.duration, args.source)


if __name__ == "__main__":
    main()
