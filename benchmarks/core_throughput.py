"""Signal-core throughput: sensor-samples per second, beside mobgap's IcdShinImproved.

    .venv/bin/python benchmarks/core_throughput.py [--minutes 60] [--rate 200] [--repeats 3]
                                                   [--activity run] [--profile] [--per-sample]

Simulates MINUTES of three sensors (sacrum, both thighs) at RATE Hz (not timed), then times
`analyze_session` on the in-memory recordings — calibration, orientation, events, metrics: the
whole core — best of REPEATS, as sensor-samples per second (3 × samples per sensor / time).
In the same run, mobgap's `IcdShinImproved` (default settings) detects initial contacts on the
same sacrum data, timed the same way, as sacrum samples per second. mobgap wants a DataFrame in
its body frame (acc_is up, acc_ml right, acc_pa forward, m/s²; gyr_* deg/s) and the rate: the
sacrum samples are rotated into the pelvis frame with the simulator's true mounting (x anterior,
y left, z up) and renamed (is = z, ml = −y, pa = x); building the DataFrame is not timed.
mobgap is the optional extra `bench` (`.venv/bin/pip install -e '.[bench]'`); without it that
part is skipped with a message. `--profile` adds a cProfile of one core run (top functions) and
its per-sample part: the whole run less the per-contact stages (candidates, decisions, strides)
and the summary (the profiler's own overhead makes both a little larger than without it).
`--per-sample` also times, best of REPEATS, a run with the per-contact stages replaced by no-ops
(candidates, decisions, strides; everything per sample still runs): the per-sample part alone.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import time
from collections.abc import Callable
from typing import Any

from imu_stream.analyze import analyze_session
from imu_stream.records import SensorRecording
from imu_stream.sim import SimulatedSession, SimulationConfig, simulate

TARGET = 5e6  # sensor-samples per second (issue 2)


def best_time(run: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(repeats):
        started = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - started)
    return best, result


def mobgap_frame(sim: SimulatedSession) -> Any:
    """The sacrum recording as mobgap's body-frame DataFrame."""
    import pandas as pd

    sacrum: SensorRecording = sim.recordings["sacrum"]
    mount = sim.mounting["sacrum"]  # sensor → pelvis frame (x anterior, y left, z up)
    acc = sacrum.acc @ mount.T
    gyr = sacrum.gyr @ mount.T
    columns = {}
    for name, values in (("acc", acc), ("gyr", gyr)):
        columns[f"{name}_is"] = values[:, 2]
        columns[f"{name}_ml"] = -values[:, 1]
        columns[f"{name}_pa"] = values[:, 0]
    return pd.DataFrame(columns)


def run_mobgap(sim: SimulatedSession, rate_hz: float, repeats: int) -> tuple[float, int] | None:
    try:
        from mobgap.initial_contacts import IcdShinImproved
    except ImportError:
        print("mobgap: not installed, skipped (install the extra: pip install -e '.[bench]')")
        return None
    data = mobgap_frame(sim)
    seconds, detector = best_time(
        lambda: IcdShinImproved().detect(data, sampling_rate_hz=rate_hz), repeats
    )
    return seconds, len(detector.ic_list_)


# Functions whose cumulative time is per contact, not per sample (none calls another).
PER_CONTACT = (
    ("core/online.py", "_find_candidates"),
    ("core/online.py", "_decide"),
    ("core/summary.py", "summarize"),
)


def cumulative_s(stats: pstats.Stats, file_suffix: str, name: str) -> float:
    table: dict[tuple[str, int, str], tuple[Any, ...]] = stats.stats  # type: ignore[attr-defined]
    return sum(
        row[3]
        for (file, _, func), row in table.items()
        if func == name and file.endswith(file_suffix)
    )


def profile_core(recordings: dict[str, SensorRecording], sim: SimulatedSession) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    analyze_session(recordings, sim.info)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    total = cumulative_s(stats, "imu_stream/analyze.py", "analyze_session")
    per_contact = sum(cumulative_s(stats, f, n) for f, n in PER_CONTACT)
    out.write(
        f"profiled run {total:.2f} s: per-contact stages {per_contact:.2f} s, "
        f"per-sample part (sync, calibration, orientation, angles, history) "
        f"{total - per_contact:.3f} s\n"
    )
    stats.sort_stats("tottime").print_stats(15)
    stats.sort_stats("cumulative").print_stats(25)
    return out.getvalue()


def time_per_sample(
    recordings: dict[str, SensorRecording], sim: SimulatedSession, repeats: int
) -> float:
    """analyze_session with the per-contact stages stubbed out (in this process only)."""
    from imu_stream.core.online import OnlineProcessor

    stages = OnlineProcessor._find_candidates, OnlineProcessor._decide
    OnlineProcessor._find_candidates = lambda self, final: None  # type: ignore[method-assign]
    OnlineProcessor._decide = lambda self, out, final: None  # type: ignore[method-assign]
    try:
        return best_time(lambda: analyze_session(recordings, sim.info), repeats)[0]
    finally:
        OnlineProcessor._find_candidates, OnlineProcessor._decide = stages  # type: ignore[method-assign]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--activity", choices=("walk", "run"), default="run")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--per-sample", action="store_true")
    args = parser.parse_args()

    started = time.perf_counter()
    config = SimulationConfig(
        activity=args.activity,
        duration_s=args.minutes * 60.0,
        rate_hz=args.rate,
        seed=args.seed,
        sensors=("sacrum", "left_thigh", "right_thigh"),
    )
    sim = simulate(config)
    recordings = sim.recordings
    sensor_samples = sum(r.n_samples for r in recordings.values())
    sacrum_samples = recordings["sacrum"].n_samples
    print(
        f"simulated {args.minutes:g} min, {len(recordings)} sensors at {args.rate:g} Hz "
        f"({sensor_samples:,} sensor-samples) in {time.perf_counter() - started:.1f} s (untimed)"
    )

    seconds, result = best_time(lambda: analyze_session(recordings, sim.info), args.repeats)
    ours = sensor_samples / seconds
    print(
        f"imu-stream core (analyze_session): best of {args.repeats} {seconds:.2f} s → "
        f"{ours / 1e6:.2f} M sensor-samples/s ({len(result.strides)} strides); "
        f"target {TARGET / 1e6:g} M: {'met' if ours >= TARGET else 'NOT met'}"
    )

    mobgap = run_mobgap(sim, args.rate, args.repeats)
    if mobgap is not None:
        mg_seconds, n_ic = mobgap
        theirs = sacrum_samples / mg_seconds
        print(
            f"mobgap IcdShinImproved (sacrum only, ICs only): best of {args.repeats} "
            f"{mg_seconds:.2f} s → {theirs / 1e6:.2f} M sensor-samples/s ({n_ic} ICs)"
        )
        print(
            f"ratio core / mobgap: {ours / theirs:.2f}× in sensor-samples/s; "
            f"wall time per recording {seconds / mg_seconds:.2f}×"
        )
        ours_ic = sum(1 for e in result.events if e.event == "IC")
        truth_ic = sum(1 for e in sim.truth_events if e.event == "IC")
        print(f"initial contacts: truth {truth_ic}, core {ours_ic}, mobgap {n_ic}")

    if args.per_sample:
        per_sample = time_per_sample(recordings, sim, args.repeats)
        print(
            f"per-sample part alone (per-contact stages stubbed): best of {args.repeats} "
            f"{per_sample:.3f} s → {sensor_samples / per_sample / 1e6:.1f} M sensor-samples/s"
        )

    if args.profile:
        print(profile_core(recordings, sim))


if __name__ == "__main__":
    main()
