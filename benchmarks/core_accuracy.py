"""Accuracy of the signal core against the simulator's ground truth: the sweep of issue 2.

Walking and running, 100 and 200 Hz, random sensor mountings, N seeds each, with sacrum +
thighs and with the sacrum alone. Prints each configuration's figures and the pooled ones
beside the targets.

    .venv/bin/python benchmarks/core_accuracy.py              # 20 seeds, 60 s each
    .venv/bin/python benchmarks/core_accuracy.py --seeds 5 --duration 30
"""

from __future__ import annotations

import argparse
import itertools
import time
from concurrent.futures import ProcessPoolExecutor

from imu_stream.analyze import analyze_session
from imu_stream.evaluation import PooledScore, SessionScore, score_session
from imu_stream.sim import SimulationConfig, simulate

FULL = ("sacrum", "left_thigh", "right_thigh")
SACRUM_ONLY = ("sacrum",)
TARGETS = {
    FULL: "targets: stride recall/precision ≥ 0.99, IC and FC MAE ≤ 15 ms, CPD RMSE ≤ 1.0° "
    "and |bias| ≤ 0.3°, hip and thigh adduction RMSE ≤ 1.5°",
    SACRUM_ONLY: "targets: IC recall ≥ 0.98, L/R ≥ 0.98, CPD RMSE ≤ 1.2°",
}


def score_one(
    activity: str, rate_hz: float, seed: int, sensors: tuple[str, ...], duration_s: float
) -> SessionScore:
    config = SimulationConfig(
        activity=activity, rate_hz=rate_hz, seed=seed, sensors=sensors, duration_s=duration_s
    )
    sim = simulate(config)
    result = analyze_session(sim.recordings, sim.info)
    return score_session(result.events, result.strides, sim.truth_events, sim.truth_strides)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--activity", nargs="*", default=["walk", "run"])
    parser.add_argument("--rate", type=float, nargs="*", default=[100.0, 200.0])
    args = parser.parse_args()
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    jobs = list(itertools.product(args.activity, args.rate, seeds, [FULL, SACRUM_ONLY]))
    started = time.perf_counter()
    with ProcessPoolExecutor(args.workers) as pool:
        scores = list(
            pool.map(score_one, *zip(*jobs, strict=True), itertools.repeat(args.duration))
        )
    print(
        f"{len(jobs)} sessions of {args.duration:g} s, seeds {seeds.start}–{seeds.stop - 1}, "
        f"in {time.perf_counter() - started:.0f} s"
    )
    for sensors in (FULL, SACRUM_ONLY):
        print(f"\n== {' + '.join(sensors)} ==  ({TARGETS[sensors]})")
        for activity, rate in itertools.product(args.activity, args.rate):
            chosen = [
                s
                for (a, r, _, k), s in zip(jobs, scores, strict=True)
                if (a, r, k) == (activity, rate, sensors)
            ]
            print(f"{activity:>5} {rate:3.0f} Hz: {PooledScore.of(chosen).line()}")
        pooled = [s for (_, _, _, k), s in zip(jobs, scores, strict=True) if k == sensors]
        print(f"   pooled: {PooledScore.of(pooled).line()}")


if __name__ == "__main__":
    main()
