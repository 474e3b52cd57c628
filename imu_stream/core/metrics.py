"""Per-stride metrics of METRICS.md from gait events and continuous angles.

This is the definition of every stride column; the simulator's ground truth and the estimator
both go through it, so the two can differ only by their events and angles.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from imu_stream.records import AngleSeries, FloatArray, GaitEvent, Stride, StrideQuality

# Physiological limits for walking and running (s); outside them a stride is flagged.
MIN_STRIDE_S = 0.45
MAX_STRIDE_S = 2.5
MIN_STANCE_FRACTION = 0.15
MAX_STANCE_FRACTION = 0.85


def _window_max(values: FloatArray | None, lo: int, hi: int) -> float:
    if values is None or hi <= lo:
        return float("nan")
    window = values[lo:hi]
    peak = float(window.max())
    if np.isnan(peak):  # NaNs in the window: the largest finite value, if any
        return float(np.nanmax(window)) if np.any(np.isfinite(window)) else float("nan")
    return peak


def _window_range(values: FloatArray | None, lo: int, hi: int) -> float:
    if values is None or hi <= lo:
        return float("nan")
    window = values[lo:hi]
    if not np.any(np.isfinite(window)):
        return float("nan")
    return float(np.nanmax(window) - np.nanmin(window))


def compute_strides(
    angles: AngleSeries,
    events: Sequence[GaitEvent],
    gap_intervals: Sequence[tuple[float, float]] = (),
) -> list[Stride]:
    """One Stride per pair of consecutive ICs of the same side, with that side's FC between.

    `gap_intervals` are (start_s, end_s) spans with missing data: strides overlapping one are
    dropped. Returned strides are sorted by start time.
    """
    strides: list[Stride] = []
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
            strides.append(stride_metrics(angles, side, ic0, float(fcs[fc_idx[k]]), ic1))
    strides.sort(key=lambda s: (s.start_s, s.side))
    return strides


def stride_metrics(angles: AngleSeries, side: str, ic0: float, fc: float, ic1: float) -> Stride:
    """The metrics of one stride of `side` (its stance leg) from its events and the angles."""
    t = angles.time_s
    obliquity = angles.get("pelvic_obliquity_deg")
    i0, i_fc, i1 = np.searchsorted(t, [ic0, fc, ic1])
    stride_time = ic1 - ic0
    stance = fc - ic0
    quality = StrideQuality.GOOD
    if not (MIN_STRIDE_S <= stride_time <= MAX_STRIDE_S) or not (
        MIN_STANCE_FRACTION <= stance / stride_time <= MAX_STANCE_FRACTION
    ):
        quality |= StrideQuality.IMPLAUSIBLE
    # For right stance the left (swing) side drops: obliquity positive; for left, negative.
    drop_signal = None
    if obliquity is not None:
        drop_signal = obliquity if side == "right" else -obliquity
    return Stride(
        start_s=ic0,
        end_s=ic1,
        side=side,
        stride_time_s=stride_time,
        stance_time_s=stance,
        swing_time_s=ic1 - fc,
        cadence_spm=120.0 / stride_time,
        pelvic_drop_deg=_window_max(drop_signal, i0, i_fc + 1),
        pelvic_obliquity_rom_deg=_window_range(obliquity, i0, i1 + 1),
        hip_adduction_peak_deg=_window_max(angles.get(f"hip_adduction_{side}_deg"), i0, i_fc + 1),
        thigh_adduction_peak_deg=_window_max(
            angles.get(f"thigh_adduction_{side}_deg"), i0, i_fc + 1
        ),
        knee_abduction_peak_deg=_window_max(
            angles.get(f"knee_abduction_{side}_deg"), i0, i_fc + 1
        ),
        quality=int(quality),
    )
