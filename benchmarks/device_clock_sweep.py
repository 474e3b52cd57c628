"""Clock model sweep: loss counting and timing accuracy against jitter, loss and drift.

    python benchmarks/device_clock_sweep.py [--minutes 10] [--seeds 3]

For MetaWear-like streams (no device time, 100 Hz, 3 samples per notification) and
Movesense-like streams (ms timestamps, 208 Hz, 8 per notification), notifications are sent when
their last sample is taken and arrive after 7.5 ms plus uniform jitter, some lost. Prints per
setting: misplaced notifications, |reported − true| lost samples, and the timing error of the
final fit (median offset, which is the shortest latency, and the 1–99 % spread).
"""

from __future__ import annotations

import argparse

import numpy as np

from imu_stream.core.clock import StreamClock

BASE = 0.0075


def one(
    *, minutes: float, rate: float, per: int, timestamped: bool, jitter: float, loss: float,
    drift: float, seed: int,
) -> tuple[int, int, float, float]:
    rng = np.random.default_rng(seed)
    n = int(minutes * 60 * rate) // per * per
    true_t = 1.0 + np.arange(n) / (rate * (1 + drift * 1e-6))
    clock = StreamClock(rate, timestamped=timestamped)
    pairs = []
    host_prev = -1.0
    lost_true = 0
    pending = 0
    for first in range(0, n, per):
        if rng.random() < loss:
            pending += per
            continue
        host = max(true_t[first + per - 1] + BASE + rng.uniform(0, jitter), host_prev + 1e-6)
        host_prev = host
        ts = (true_t[first] - 1.0) * 1000 * (1 + drift * 1e-6) if timestamped else None
        p = clock.place(host, per, None if ts is None else float(int(ts)))
        if pairs:
            lost_true += pending
        pending = 0
        pairs.append((p.first_index, first))
    assigned = np.array([a for a, _ in pairs])
    truth = np.array([t for _, t in pairs])
    offsets = assigned - truth
    misplaced = int(np.sum(offsets != np.median(offsets)))
    scale, intercepts = clock.final_fit()
    err = intercepts[0] + scale * clock.period_s * assigned - true_t[truth]
    spread = float(np.percentile(err, 99) - np.percentile(err, 1))
    return misplaced, abs(clock.lost_samples - lost_true), float(np.median(err)), spread


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    print("stream      jitter  loss  drift   misplaced  |Δlost|  median err  1–99% spread")
    for name, rate, per, stamped in (("metawear", 100.0, 3, False), ("movesense", 208.0, 8, True)):
        for jitter in (0.005, 0.02, 0.025, 0.04):
            for loss in (0.0, 0.02, 0.05):
                for drift in (-100.0, 100.0):
                    rows = [
                        one(minutes=args.minutes, rate=rate, per=per, timestamped=stamped,
                            jitter=jitter, loss=loss, drift=drift, seed=s)
                        for s in range(args.seeds)
                    ]
                    mis = sum(r[0] for r in rows)
                    dlost = max(r[1] for r in rows)
                    med = np.median([r[2] for r in rows]) * 1000
                    spread = max(r[3] for r in rows) * 1000
                    print(
                        f"{name:<10} {jitter * 1000:5.0f}ms {loss * 100:4.0f}% {drift:+5.0f}ppm "
                        f"{mis:9d} {dlost:8d} {med:9.2f}ms {spread:11.2f}ms"
                    )


if __name__ == "__main__":
    main()
