"""Scoring of detected gait events against a reference (tests and benchmarks use it)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from imu_stream.records import FloatArray, GaitEvent, Stride


@dataclass(frozen=True)
class MatchCounts:
    n_reference: int
    n_detected: int
    n_matched: int

    @property
    def recall(self) -> float:
        return self.n_matched / self.n_reference if self.n_reference else float("nan")

    @property
    def precision(self) -> float:
        return self.n_matched / self.n_detected if self.n_detected else float("nan")


@dataclass(frozen=True)
class EventScore(MatchCounts):
    mean_abs_error_s: float
    side_agreement: float  # fraction of matched events whose side labels agree

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


@dataclass(frozen=True)
class StrideScore(MatchCounts):
    """Detected strides against reference strides (matched by start time and side)."""

    pelvic_drop_error_deg: FloatArray  # detected − reference, per matched stride
    hip_adduction_error_deg: FloatArray
    thigh_adduction_error_deg: FloatArray


def rmse(errors: FloatArray) -> float:
    finite = errors[np.isfinite(errors)]
    return float(np.sqrt(np.mean(finite**2))) if finite.size else float("nan")


def bias(errors: FloatArray) -> float:
    finite = errors[np.isfinite(errors)]
    return float(finite.mean()) if finite.size else float("nan")


def score_strides(
    detected: list[Stride],
    reference: list[Stride],
    tolerance_s: float = 0.1,
    good_only: bool = True,
) -> StrideScore:
    """A detected stride matches a reference stride of the same side whose start and end are
    both within the tolerance. With `good_only`, flagged detected strides are not counted."""
    det = [s for s in detected if s.quality == 0] if good_only else list(detected)
    rows: list[int] = []
    cols: list[int] = []
    for side in ("left", "right"):
        d_idx = [i for i, s in enumerate(det) if s.side == side]
        r_idx = [j for j, s in enumerate(reference) if s.side == side]
        if not d_idx or not r_idx:
            continue
        d_se = np.array([[det[i].start_s, det[i].end_s] for i in d_idx])
        r_se = np.array([[reference[j].start_s, reference[j].end_s] for j in r_idx])
        cost = np.abs(d_se[:, None, :] - r_se[None, :, :]).max(axis=2)
        cost = np.where(cost <= tolerance_s, cost, 1e6)
        a, b = linear_sum_assignment(cost)
        keep = cost[a, b] <= tolerance_s
        rows += [d_idx[i] for i in a[keep]]
        cols += [r_idx[j] for j in b[keep]]

    def errors(name: str) -> FloatArray:
        return np.array(
            [
                getattr(det[i], name) - getattr(reference[j], name)
                for i, j in zip(rows, cols, strict=True)
            ],
            dtype=np.float64,
        )

    return StrideScore(
        n_reference=len(reference),
        n_detected=len(det),
        n_matched=len(rows),
        pelvic_drop_error_deg=errors("pelvic_drop_deg"),
        hip_adduction_error_deg=errors("hip_adduction_peak_deg"),
        thigh_adduction_error_deg=errors("thigh_adduction_peak_deg"),
    )


@dataclass(frozen=True)
class SessionScore:
    """One analysed session against its ground truth (events and strides)."""

    ic: EventScore
    ic_abs_error_s: FloatArray
    fc_abs_error_s: FloatArray
    strides: StrideScore

    @property
    def ic_side_correct(self) -> int:
        return round(self.ic.side_agreement * self.ic.n_matched) if self.ic.n_matched else 0


def _event_times(events: Sequence[GaitEvent], kind: str) -> tuple[FloatArray, np.ndarray]:
    chosen = [e for e in events if e.event == kind]
    return np.array([e.time_s for e in chosen]), np.array([e.side for e in chosen])


def score_session(
    events: Sequence[GaitEvent],
    strides: list[Stride],
    truth_events: Sequence[GaitEvent],
    truth_strides: list[Stride],
    tolerance_s: float = 0.1,
) -> SessionScore:
    ic_t, ic_side = _event_times(events, "IC")
    ref_t, ref_side = _event_times(truth_events, "IC")
    fc_t, _ = _event_times(events, "FC")
    ref_fc, _ = _event_times(truth_events, "FC")
    di, ri = match_events(ic_t, ref_t, tolerance_s)
    fdi, fri = match_events(fc_t, ref_fc, tolerance_s)
    return SessionScore(
        ic=score_events(ic_t, ic_side, ref_t, ref_side, tolerance_s),
        ic_abs_error_s=np.abs(ic_t[di] - ref_t[ri]),
        fc_abs_error_s=np.abs(fc_t[fdi] - ref_fc[fri]),
        strides=score_strides(strides, truth_strides),
    )


@dataclass(frozen=True)
class PooledScore:
    """Several sessions' scores pooled: the figures of the accuracy targets."""

    ic_recall: float
    ic_precision: float
    ic_side_agreement: float
    ic_mae_ms: float
    fc_mae_ms: float
    stride_recall: float
    stride_precision: float
    cpd_rmse_deg: float
    cpd_bias_deg: float
    hip_adduction_rmse_deg: float
    thigh_adduction_rmse_deg: float

    @classmethod
    def of(cls, scores: Sequence[SessionScore]) -> PooledScore:
        def total(values: Sequence[int]) -> int:
            return int(sum(values))

        def cat(arrays: Sequence[FloatArray]) -> FloatArray:
            return np.concatenate([np.zeros(0), *arrays])

        matched = total([s.ic.n_matched for s in scores])
        ic_err, fc_err = (
            cat([s.ic_abs_error_s for s in scores]),
            cat([s.fc_abs_error_s for s in scores]),
        )
        cpd = cat([s.strides.pelvic_drop_error_deg for s in scores])
        return cls(
            ic_recall=matched / max(1, total([s.ic.n_reference for s in scores])),
            ic_precision=matched / max(1, total([s.ic.n_detected for s in scores])),
            ic_side_agreement=total([s.ic_side_correct for s in scores]) / max(1, matched),
            ic_mae_ms=1e3 * float(ic_err.mean()) if ic_err.size else float("nan"),
            fc_mae_ms=1e3 * float(fc_err.mean()) if fc_err.size else float("nan"),
            stride_recall=total([s.strides.n_matched for s in scores])
            / max(1, total([s.strides.n_reference for s in scores])),
            stride_precision=total([s.strides.n_matched for s in scores])
            / max(1, total([s.strides.n_detected for s in scores])),
            cpd_rmse_deg=rmse(cpd),
            cpd_bias_deg=bias(cpd),
            hip_adduction_rmse_deg=rmse(cat([s.strides.hip_adduction_error_deg for s in scores])),
            thigh_adduction_rmse_deg=rmse(
                cat([s.strides.thigh_adduction_error_deg for s in scores])
            ),
        )

    def line(self) -> str:
        return (
            f"IC recall {self.ic_recall:.3f} precision {self.ic_precision:.3f} "
            f"MAE {self.ic_mae_ms:.1f} ms L/R {self.ic_side_agreement:.3f} | "
            f"FC MAE {self.fc_mae_ms:.1f} ms | strides recall {self.stride_recall:.3f} "
            f"precision {self.stride_precision:.3f} | CPD RMSE {self.cpd_rmse_deg:.2f}° "
            f"bias {self.cpd_bias_deg:+.2f}° | hip add RMSE {self.hip_adduction_rmse_deg:.2f}° "
            f"thigh add RMSE {self.thigh_adduction_rmse_deg:.2f}°"
        )
