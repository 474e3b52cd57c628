"""Session summary of METRICS.md: per-side statistics, symmetry indices, fatigue trend."""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence

import numpy as np

from imu_stream.records import STRIDE_COLUMNS, Stride

SUMMARY_METRICS: tuple[str, ...] = tuple(
    c for c in STRIDE_COLUMNS if c not in ("start_s", "end_s", "side", "quality")
)
TREND_FRACTION = 0.10


def _stats(values: np.ndarray) -> dict[str, float | None]:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return {"n": 0.0, "mean": None, "sd": None, "median": None}
    return {
        "n": float(finite.size),
        "mean": float(finite.mean()),
        "sd": float(finite.std(ddof=1)) if finite.size > 1 else 0.0,
        "median": float(np.median(finite)),
    }


def symmetry_index(right: float | None, left: float | None) -> float | None:
    """SI = 100·(R − L)/(0.5·(R + L)); None where undefined."""
    if right is None or left is None or not math.isfinite(right + left) or right + left == 0:
        return None
    return 100.0 * (right - left) / (0.5 * (right + left))


def summarize(strides: Sequence[Stride], notes: Sequence[str] = ()) -> dict[str, object]:
    good = [s for s in strides if s.quality == 0]
    # One row per good stride, one column per metric: an hour holds ~10,000 strides.
    row_of = operator.attrgetter(*SUMMARY_METRICS)
    table = np.array([row_of(s) for s in good], dtype=float).reshape(-1, len(SUMMARY_METRICS))
    sides = np.array([s.side for s in good])
    column = {m: j for j, m in enumerate(SUMMARY_METRICS)}
    per_side: dict[str, dict[str, dict[str, float | None]]] = {}
    for side in ("left", "right"):
        rows = table[sides == side]
        per_side[side] = {m: _stats(rows[:, j]) for m, j in column.items()}
    symmetry = {
        m: symmetry_index(
            per_side["right"][m]["mean"],
            per_side["left"][m]["mean"],
        )
        for m in SUMMARY_METRICS
    }
    trend: dict[str, dict[str, float | None]] = {}
    n_edge = max(1, round(TREND_FRACTION * len(good))) if good else 0
    for side in ("left", "right"):
        rows = table[sides == side]
        k = max(1, round(TREND_FRACTION * len(rows))) if len(rows) else 0
        side_trend: dict[str, float | None] = {}
        for m in (
            "pelvic_drop_deg",
            "hip_adduction_peak_deg",
            "thigh_adduction_peak_deg",
            "cadence_spm",
        ):
            first = _stats(rows[:k, column[m]])["mean"]
            last = _stats(rows[len(rows) - k :, column[m]])["mean"]
            side_trend[f"{m}_first10"] = first
            side_trend[f"{m}_last10"] = last
            side_trend[f"{m}_change"] = (
                None if first is None or last is None else float(last) - float(first)
            )
        trend[side] = side_trend
    quality_counts = {
        "good": len(good),
        "flagged": len(strides) - len(good),
    }
    return {
        "counts": {
            "strides": len(strides),
            "strides_left": sum(s.side == "left" for s in strides),
            "strides_right": sum(s.side == "right" for s in strides),
            "trend_edge_strides": n_edge,
        },
        "quality": quality_counts,
        "per_side": per_side,
        "symmetry_index_pct": symmetry,
        "trend_first_vs_last_10pct": trend,
        "notes": list(notes),
    }
