"""Scoring of detected gait events against a reference (tests and benchmarks use it)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from imu_stream.records import FloatArray


@dataclass(frozen=True)
class EventScore:
    n_reference: int
    n_detected: int
    n_matched: int
    mean_abs_error_s: float
    side_agreement: float  # fraction of matched events whose side labels agree

    @property
    def recall(self) -> float:
        return self.n_matched / self.n_reference if self.n_reference else float("nan")

    @property
    def precision(self) -> float:
        return self.n_matched / self.n_detected if self.n_detected else float("nan")

    @property
    def f1(self) -> float:
        total = self.n_reference + self.n_detected
        return 2.0 * self.n_matched / total if total else float("nan")


def match_events(
    detected_s: FloatArray, reference_s: FloatArray, tolerance_s: float
) -> tuple[np.ndarray, np.ndarray]:
    """One-to-one matching minimising total |Δt| among pairs within the tolerance.

    Returns index arrays (detected_idx, reference_idx) of the matched pairs.
    """
    if detected_s.size == 0 or reference_s.size == 0:
        return np.zeros(0, dtype=int), np.zeros(0, dtype=int)
    cost = np.abs(detected_s[:, None] - reference_s[None, :])
    big = 1e6
    cost = np.where(cost <= tolerance_s, cost, big)
    rows, cols = linear_sum_assignment(cost)
    keep = cost[rows, cols] <= tolerance_s
    return rows[keep], cols[keep]


def score_events(
    detected_s: FloatArray,
    detected_side: np.ndarray,
    reference_s: FloatArray,
    reference_side: np.ndarray,
    tolerance_s: float = 0.25,
) -> EventScore:
    det_idx, ref_idx = match_events(detected_s, reference_s, tolerance_s)
    errors = np.abs(detected_s[det_idx] - reference_s[ref_idx])
    agree = detected_side[det_idx] == reference_side[ref_idx]
    return EventScore(
        n_reference=int(reference_s.size),
        n_detected=int(detected_s.size),
        n_matched=int(det_idx.size),
        mean_abs_error_s=float(errors.mean()) if errors.size else float("nan"),
        side_agreement=float(agree.mean()) if agree.size else float("nan"),
    )


def within_intervals(
    times_s: FloatArray, intervals: FloatArray, margin_s: float = 0.0
) -> np.ndarray:
    """Boolean mask of times inside any [start − margin, end + margin] interval (n, 2)."""
    if intervals.size == 0:
        return np.zeros(times_s.shape, dtype=bool)
    starts = intervals[:, 0] - margin_s
    ends = intervals[:, 1] + margin_s
    return np.any(
        (times_s[:, None] >= starts[None, :]) & (times_s[:, None] <= ends[None, :]), axis=1
    )
