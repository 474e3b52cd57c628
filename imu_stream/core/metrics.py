"""Per-stride metrics of METRICS.md from gait events and continuous angles.

This is the definition of every stride column; the simulator's ground truth and the estimator
both go through it, so the two can differ only by their events and angles.
"""

from __future__ import annotations

from collections.abc import Sequence

import numba
import numpy as np

from imu_stream.records import (
    STRIDE_ORDER,
    AngleSeries,
    FloatArray,
    GaitEvent,
    Stride,
    StrideQuality,
)

# Physiological limits for walking and running (s); outside them a stride is flagged.
MIN_STRIDE_S = 0.45
MAX_STRIDE_S = 2.5
MIN_STANCE_FRACTION = 0.15
MAX_STANCE_FRACTION = 0.85


# Window statistics for every stride at once: one compiled pass instead of a few numpy calls
# per stride per column, which dominated the core's time.
@numba.njit(cache=True)
def sided_window_max(
    left: np.ndarray,
    right: np.ndarray,
    sign: np.ndarray,
    is_left: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
) -> np.ndarray:
    """Per k, the largest finite value of sign[k]·(left if is_left[k] else right)[lo[k]:hi[k]];
    NaN where there is none (an empty array: that side's column is missing)."""
    out = np.full(lo.size, np.nan)
    for k in range(lo.size):
        values = left if is_left[k] else right
        for i in range(max(lo[k], 0), min(hi[k], values.size)):
            v = sign[k] * values[i]
            if v == v and not v <= out[k]:  # v is not NaN, and out[k] is NaN or smaller
                out[k] = v
    return out


@numba.njit(cache=True)
def window_argmin(values: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Index of the first smallest finite value of values[lo[k]:hi[k]]; −1 where there is none."""
    out = np.full(lo.size, -1, dtype=np.int64)
    for k in range(lo.size):
        best = np.inf
        for i in range(max(lo[k], 0), min(hi[k], values.size)):
            if values[i] < best:
                best, out[k] = values[i], i
    return out


@numba.njit(cache=True)
def window_argmax(values: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Index of the first largest value of values[lo[k]:hi[k]] (clipped to the array)."""
    out = np.empty(lo.size, dtype=np.int64)
    for k in range(lo.size):
        a, b = max(lo[k], 0), min(hi[k], values.size)
        best = a
        for i in range(a + 1, b):
            if values[i] > values[best]:
                best = i
        out[k] = best
    return out


@numba.njit(cache=True)
def window_range(values: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Largest minus smallest finite value of values[lo[k]:hi[k]]; NaN where there is none."""
    out = np.full(lo.size, np.nan)
    for k in range(lo.size):
        top, bottom, seen = -np.inf, np.inf, False
        for i in range(max(lo[k], 0), min(hi[k], values.size)):
            v = values[i]
            if v == v:
                top, bottom, seen = max(top, v), min(bottom, v), True
        if seen:
            out[k] = top - bottom
    return out


def compute_strides(
    angles: AngleSeries,
    events: Sequence[GaitEvent],
    gap_intervals: Sequence[tuple[float, float]] = (),
) -> list[Stride]:
    """One Stride per pair of consecutive ICs of the same side, with that side's FC between.

    `gap_intervals` are (start_s, end_s) spans with missing data: strides overlapping one are
    dropped. Returned strides are sorted by start time.
    """
    sides: list[str] = []
    times: list[tuple[float, float, float]] = []
    for side in ("left", "right"):
        ics = np.sort([e.time_s for e in events if e.side == side and e.event == "IC"])
        fcs = np.sort([e.time_s for e in events if e.side == side and e.event == "FC"])
        if ics.size < 2:
            continue
        # First FC after each IC; valid when it falls before the next IC.
        fc_idx = np.searchsorted(fcs, ics[:-1], side="right")
        for k in range(ics.size - 1):
            ic0, ic1 = float(ics[k]), float(ics[k + 1])
            if fc_idx[k] >= fcs.size or fcs[fc_idx[k]] >= ic1:
                continue  # no toe-off inside: not a complete stride
            if any(g0 < ic1 and g1 > ic0 for g0, g1 in gap_intervals):
                continue  # its samples are partly missing: no stride may span a gap
            sides.append(side)
            times.append((ic0, float(fcs[fc_idx[k]]), ic1))
    table = np.asarray(times, dtype=np.float64).reshape(-1, 3)
    strides = stride_metrics(angles, sides, table[:, 0], table[:, 1], table[:, 2])
    strides.sort(key=STRIDE_ORDER)
    return strides


def stride_metrics(
    angles: AngleSeries,
    sides: Sequence[str],
    ic0: FloatArray,
    fc: FloatArray,
    ic1: FloatArray,
    quality_flags: np.ndarray | None = None,
) -> list[Stride]:
    """The metrics of strides of `sides` (their stance legs) from their events and the angles;
    `quality_flags` (StrideQuality bits per stride) are added to the plausibility flag."""
    t = angles.time_s
    i0, i_fc, i1 = (np.searchsorted(t, x) for x in (ic0, fc, ic1))
    stance_end = i_fc + 1
    stride_time = ic1 - ic0
    stance = fc - ic0
    with np.errstate(invalid="ignore", divide="ignore"):
        plausible = (
            (stride_time >= MIN_STRIDE_S)
            & (stride_time <= MAX_STRIDE_S)
            & (stance / stride_time >= MIN_STANCE_FRACTION)
            & (stance / stride_time <= MAX_STANCE_FRACTION)
        )
    left = np.array([side == "left" for side in sides], dtype=bool)
    missing = np.zeros(0)

    def stance_peak(name: str, sign: FloatArray | float = 1.0) -> FloatArray:
        """Per stride, the stance peak of the stance side's column (`name` with {side})."""
        columns = (angles.get(name.format(side=side)) for side in ("left", "right"))
        values_left, values_right = (missing if c is None else c for c in columns)
        signs = np.broadcast_to(np.asarray(sign, dtype=np.float64), left.shape)
        return sided_window_max(
            values_left, values_right, np.ascontiguousarray(signs), left, i0, stance_end
        )

    # For right stance the left (swing) side drops: obliquity positive; for left, negative.
    drop = stance_peak("pelvic_obliquity_deg", np.where(left, -1.0, 1.0))
    obliquity = angles.get("pelvic_obliquity_deg")
    rom = np.full(left.size, np.nan) if obliquity is None else window_range(obliquity, i0, i1 + 1)
    hip = stance_peak("hip_adduction_{side}_deg")
    thigh = stance_peak("thigh_adduction_{side}_deg")
    knee = stance_peak("knee_abduction_{side}_deg")
    quality = np.where(plausible, int(StrideQuality.GOOD), int(StrideQuality.IMPLAUSIBLE))
    if quality_flags is not None:
        quality = quality | quality_flags
    swing = ic1 - fc
    columns = zip(
        ic0.tolist(), ic1.tolist(), sides, stride_time.tolist(), stance.tolist(),
        swing.tolist(), (120.0 / stride_time).tolist(), drop.tolist(), rom.tolist(),
        hip.tolist(), thigh.tolist(), knee.tolist(), quality.tolist(),
        strict=True,
    )  # fmt: skip
    return [Stride(*row) for row in columns]
