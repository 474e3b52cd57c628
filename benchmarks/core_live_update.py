"""Cost of one live `OnlineProcessor.update()` on small packets, as the live pipeline calls it.

    .venv/bin/python benchmarks/core_live_update.py [--seconds 60] [--rate 200] [--repeats 3]

Simulates SECONDS of three sensors (sacrum, both thighs) at RATE Hz, then pushes them in blocks
of 4 samples (20 ms, one BLE notification) and calls `update()` after every 5 blocks (0.1 s of
data), as the live pipeline does. Prints the wall time per update, best of REPEATS: over all
updates, and over those after calibration (the steady state of a live session).
"""

from __future__ import annotations

import argparse
import time

from imu_stream.core.online import OnlineProcessor
from imu_stream.records import SensorRecording
from imu_stream.sim import SimulationConfig, simulate

PACKET = 4  # samples per push
PUSHES_PER_UPDATE = 5


def run(recordings: dict[str, SensorRecording], rate_hz: float) -> tuple[list[float], int]:
    """Seconds of each update() call, and the index of the first one after calibration."""
    processor = OnlineProcessor(list(recordings), rate_hz)
    n = min(r.n_samples for r in recordings.values())
    durations: list[float] = []
    first_calibrated = -1
    for k, a in enumerate(range(0, n, PACKET)):
        for loc, rec in recordings.items():
            processor.push(
                loc, rec.time_s[a : a + PACKET], rec.acc[a : a + PACKET], rec.gyr[a : a + PACKET]
            )
        if (k + 1) % PUSHES_PER_UPDATE == 0:
            started = time.perf_counter()
            processor.update()
            durations.append(time.perf_counter() - started)
            if first_calibrated < 0 and processor.calibration is not None:
                first_calibrated = len(durations)
    return durations, first_calibrated


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    config = SimulationConfig(
        activity="run",
        duration_s=args.seconds,
        rate_hz=args.rate,
        seed=args.seed,
        sensors=("sacrum", "left_thigh", "right_thigh"),
    )
    recordings = simulate(config).recordings
    run(recordings, args.rate)  # warm up (numba compilation, caches)
    best_all = best_steady = float("inf")
    calls = 0
    for _ in range(args.repeats):
        durations, first = run(recordings, args.rate)
        steady = durations[first:] if first >= 0 else []
        calls = len(durations)
        best_all = min(best_all, sum(durations) / len(durations))
        if steady:
            best_steady = min(best_steady, sum(steady) / len(steady))
    print(
        f"{calls} updates over {args.seconds:g} s of 3 sensors at {args.rate:g} Hz "
        f"(blocks of {PACKET}, update every {PUSHES_PER_UPDATE}): best of {args.repeats} "
        f"{best_all * 1e6:.0f} µs per update overall, {best_steady * 1e6:.0f} µs after calibration"
    )


if __name__ == "__main__":
    main()
