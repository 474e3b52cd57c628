"""Put all sensors of a session on one uniform time grid and mark data gaps."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from imu_stream.records import FloatArray, SensorRecording

GAP_FACTOR = 2.5  # a step longer than this many nominal periods is a gap


@dataclass(slots=True)
class SyncedSignals:
    time_s: FloatArray
    fs: float
    acc: dict[str, FloatArray] = field(default_factory=dict)
    gyr: dict[str, FloatArray] = field(default_factory=dict)
    gaps: list[tuple[float, float]] = field(default_factory=list)


def find_gaps(time_s: FloatArray, nominal_dt: float) -> list[tuple[float, float]]:
    steps = np.diff(time_s)
    idx = np.flatnonzero(steps > GAP_FACTOR * nominal_dt)
    return [(float(time_s[i]), float(time_s[i + 1])) for i in idx]


def synchronise(
    recordings: Mapping[str, SensorRecording], fs: float | None = None
) -> SyncedSignals:
    """Linear interpolation of every sensor onto the sacrum's rate over the common time span."""
    sacrum = recordings["sacrum"]
    nominal_dt = float(np.median(np.diff(sacrum.time_s)))
    rate = fs if fs is not None else 1.0 / nominal_dt
    start = max(float(r.time_s[0]) for r in recordings.values())
    end = min(float(r.time_s[-1]) for r in recordings.values())
    n = int(np.floor((end - start) * rate + 1e-9)) + 1
    grid = start + np.arange(n) / rate
    out = SyncedSignals(time_s=grid, fs=rate)
    for loc, rec in recordings.items():
        out.acc[loc] = np.column_stack(
            [np.interp(grid, rec.time_s, rec.acc[:, k]) for k in range(3)]
        )
        out.gyr[loc] = np.column_stack(
            [np.interp(grid, rec.time_s, rec.gyr[:, k]) for k in range(3)]
        )
        dt = float(np.median(np.diff(rec.time_s)))
        out.gaps.extend(find_gaps(rec.time_s, dt))
    out.gaps.sort()
    return out
