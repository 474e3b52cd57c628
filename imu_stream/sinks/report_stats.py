"""The numbers behind the run report: pure functions on strides and angles (no plotting, no I/O)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from imu_stream.records import SIDES, AngleSeries, FloatArray, Stride, StrideQuality

STRIDE_PERCENT = np.linspace(0.0, 100.0, 101)

# Metrics the report summarises, with the label and unit shown to clinicians.
REPORT_METRICS: dict[str, tuple[str, str]] = {
    "pelvic_drop_deg": ("Contralateral pelvic drop", "°"),
    "pelvic_obliquity_rom_deg": ("Pelvic obliquity range", "°"),
    "hip_adduction_peak_deg": ("Peak hip adduction", "°"),
    "thigh_adduction_peak_deg": ("Peak thigh adduction", "°"),
    "knee_abduction_peak_deg": ("Peak knee abduction", "°"),
    "cadence_spm": ("Cadence", "steps/min"),
    "stride_time_s": ("Stride time", "s"),
    "stance_time_s": ("Stance time", "s"),
    "swing_time_s": ("Swing time", "s"),
}


def good_strides(strides: Sequence[Stride]) -> list[Stride]:
    """Strides without quality flags: the ones every statistic of the report uses."""
    return [s for s in strides if s.quality == 0]


def side_strides(strides: Sequence[Stride], side: str) -> list[Stride]:
    return sorted((s for s in strides if s.side == side), key=lambda s: s.start_s)


def metric_values(strides: Sequence[Stride], metric: str) -> FloatArray:
    return np.array([getattr(s, metric) for s in strides], dtype=np.float64)


@dataclass(frozen=True, slots=True)
class Stat:
    mean: float
    sd: float
    median: float
    n: int

    @classmethod
    def of(cls, values: FloatArray) -> Stat:
        v = values[np.isfinite(values)]
        if v.size == 0:
            return cls(math.nan, math.nan, math.nan, 0)
        sd = float(np.std(v, ddof=1)) if v.size > 1 else math.nan
        return cls(float(np.mean(v)), sd, float(np.median(v)), int(v.size))


def side_stats(strides: Sequence[Stride], metric: str) -> dict[str, Stat]:
    return {side: Stat.of(metric_values(side_strides(strides, side), metric)) for side in SIDES}


def symmetry_index(left: float, right: float) -> float:
    """SI = 100·(R − L)/(0.5·(R + L)) (METRICS.md); NaN when undefined."""
    denom = 0.5 * (right + left)
    if not (math.isfinite(left) and math.isfinite(right)) or denom == 0:
        return math.nan
    return 100.0 * (right - left) / denom


def drop_signal(obliquity: FloatArray, side: str) -> FloatArray:
    """Obliquity signed so that positive = stance side up (swing side down) for `side`'s stance:
    the clinical gait-report convention, in which CPD is the stance-phase peak for both legs."""
    return obliquity if side == "right" else -obliquity


def time_normalised(
    time_s: FloatArray, signal: FloatArray, starts: FloatArray, ends: FloatArray
) -> FloatArray:
    """(n_strides, 101) signal at 0…100 % of each stride, one interpolation for all strides."""
    if starts.size == 0:
        return np.empty((0, STRIDE_PERCENT.size))
    query = starts[:, None] + (ends - starts)[:, None] * (STRIDE_PERCENT[None, :] / 100.0)
    ok = np.isfinite(signal)
    values = np.interp(query.ravel(), time_s[ok], signal[ok]).reshape(query.shape)
    # Strides not fully covered by the angle series would be extrapolated flat: drop them.
    covered = (starts >= time_s[ok][0]) & (ends <= time_s[ok][-1])
    return np.asarray(values[covered])


@dataclass(frozen=True, slots=True)
class StrideCurve:
    """Mean ± SD of a signal over the normalised stride of one side."""

    side: str
    mean: FloatArray
    sd: FloatArray
    n: int
    toe_off_pct: float  # mean stance fraction, where the stance phase ends


def typical_stride(
    angles: AngleSeries, strides: Sequence[Stride], column: str, *, as_drop: bool = False
) -> list[StrideCurve]:
    """Per-side typical stride of an angle column. With `as_drop`, the pelvic obliquity is
    signed per stance side (`drop_signal`) so left and right curves are directly comparable;
    side-specific columns (`…_{side}_deg`) are taken for the stride's own side."""
    curves = []
    for side in SIDES:
        own = side_strides(strides, side)
        name = column.format(side=side)
        signal = angles.get(name)
        if signal is None or not own or not np.any(np.isfinite(signal)):
            continue
        if as_drop:
            signal = drop_signal(signal, side)
        starts = metric_values(own, "start_s")
        ends = metric_values(own, "end_s")
        matrix = time_normalised(angles.time_s, signal, starts, ends)
        if matrix.shape[0] == 0:
            continue
        sd = matrix.std(axis=0, ddof=1) if matrix.shape[0] > 1 else np.zeros(matrix.shape[1])
        stance = metric_values(own, "stance_time_s") / metric_values(own, "stride_time_s")
        curves.append(
            StrideCurve(
                side, matrix.mean(axis=0), sd, matrix.shape[0], 100 * float(np.nanmean(stance))
            )
        )
    return curves


@dataclass(frozen=True, slots=True)
class Trend:
    slope_per_min: float
    intercept: float
    n: int
    span_min: float = math.nan  # from the first to the last stride fitted

    def describe(self) -> str:
        """The fitted change over the strides' span: a rate per 10 min would extrapolate a
        short session far beyond what was seen."""
        span_s = 60.0 * self.span_min
        span = f"{span_s:.0f} s" if span_s < 120 else f"{self.span_min:.0f} min"
        return f"{self.slope_per_min * self.span_min:+.2f}° over {span}"


def linear_trend(time_s: FloatArray, values: FloatArray) -> Trend:
    """Least-squares line of a per-stride metric against time (slope per minute)."""
    ok = np.isfinite(time_s) & np.isfinite(values)
    if np.count_nonzero(ok) < 3 or np.ptp(time_s[ok]) <= 0:
        return Trend(math.nan, math.nan, int(np.count_nonzero(ok)))
    slope, intercept = np.polyfit(time_s[ok] / 60.0, values[ok], 1)
    span_min = float(np.ptp(time_s[ok])) / 60.0
    return Trend(float(slope), float(intercept), int(np.count_nonzero(ok)), span_min)


@dataclass(frozen=True, slots=True)
class FirstLast:
    """A metric over the first and the last fraction of one side's strides (fatigue)."""

    side: str
    metric: str
    first: Stat
    last: Stat

    @property
    def change(self) -> float:
        return self.last.mean - self.first.mean


def first_last(
    strides: Sequence[Stride], metric: str, fraction: float = 0.10, min_strides: int = 3
) -> list[FirstLast]:
    """First vs last `fraction` of each side's strides (at least `min_strides` in each part)."""
    out = []
    for side in SIDES:
        values = metric_values(side_strides(strides, side), metric)
        k = max(min_strides, math.ceil(fraction * values.size))
        if values.size < 2 * k:
            continue
        out.append(FirstLast(side, metric, Stat.of(values[:k]), Stat.of(values[-k:])))
    return out


def rolling_median(values: FloatArray, window: int) -> FloatArray:
    """Centred rolling median (shorter windows at the ends), NaN-aware."""
    n = values.size
    if n == 0:
        return values
    half = window // 2
    pad = np.pad(values, half, mode="constant", constant_values=np.nan)
    windows = np.lib.stride_tricks.sliding_window_view(pad, 2 * half + 1)[:n]
    with np.errstate(all="ignore"):
        all_nan = np.all(np.isnan(windows), axis=1)
        safe = np.where(all_nan[:, None], 0.0, windows)
        out = np.nanmedian(safe, axis=1)
    return np.where(all_nan, np.nan, out)


def quality_counts(strides: Sequence[Stride]) -> dict[str, int]:
    """How many strides carry each quality flag (a stride may carry several)."""
    counts = {}
    for flag in StrideQuality:
        if flag == StrideQuality.GOOD:
            continue
        n = sum(1 for s in strides if s.quality & flag)
        if n:
            counts[str(flag.name).lower().replace("_", " ")] = n
    return counts
