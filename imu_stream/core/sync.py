"""Synchronised samples: every sensor on one uniform time grid (see core/online.py)."""

from __future__ import annotations

from dataclasses import dataclass, field

from imu_stream.records import FloatArray


@dataclass(slots=True)
class SyncedSignals:
    time_s: FloatArray
    fs: float
    acc: dict[str, FloatArray] = field(default_factory=dict)
    gyr: dict[str, FloatArray] = field(default_factory=dict)
    gaps: list[tuple[float, float]] = field(default_factory=list)
