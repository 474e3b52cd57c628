"""The run report's figures (matplotlib, Agg, no pyplot: safe in threads and without a display).

Left is drawn in vermilion and right in blue (Okabe–Ito colours, readable with colour-vision
deficiency; red-for-left as in clinical gait reports).
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from imu_stream.records import SIDES, Stride
from imu_stream.sinks.report_stats import (
    REPORT_METRICS,
    STRIDE_PERCENT,
    FirstLast,
    StrideCurve,
    linear_trend,
    metric_values,
    rolling_median,
    side_strides,
)

SIDE_COLOUR = {"left": "#D55E00", "right": "#0072B2"}
SIDE_LABEL = {"left": "Left", "right": "Right"}
NEUTRAL = "#555555"
DPI = 110


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _style(ax: Axes) -> None:
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(True, color="#e5e5e5", linewidth=0.8)
    ax.set_axisbelow(True)
    ax.tick_params(labelsize=9)


def png_bytes(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, facecolor="white")
    return buf.getvalue()


def _curve_panel(
    ax: Axes, curves: Sequence[StrideCurve], ylabel: str, title: str, mark_peak: bool
) -> None:
    for c in curves:
        colour = SIDE_COLOUR[c.side]
        label = f"{SIDE_LABEL[c.side]} stride (n = {c.n})"
        ax.fill_between(
            STRIDE_PERCENT, c.mean - c.sd, c.mean + c.sd, color=colour, alpha=0.18, linewidth=0
        )
        ax.plot(STRIDE_PERCENT, c.mean, color=colour, linewidth=2.2, label=label)
        if math.isfinite(c.toe_off_pct):
            ax.axvline(c.toe_off_pct, color=colour, linestyle="--", linewidth=1.0, alpha=0.8)
            if mark_peak:
                stance = STRIDE_PERCENT - c.toe_off_pct <= 0.0
                i = int(np.argmax(np.where(stance, c.mean, -np.inf)))
                ax.plot(STRIDE_PERCENT[i], c.mean[i], "o", color=colour, markersize=5)
                ax.annotate(
                    f"{c.mean[i]:.1f}°",
                    (STRIDE_PERCENT[i], c.mean[i]),
                    xytext=(6, 2),
                    textcoords="offset points",
                    fontsize=9,
                    color=colour,
                    fontweight="bold",
                )
    ax.plot([], [], color=NEUTRAL, linestyle="--", linewidth=1.0, label="toe-off (mean)")
    ax.axhline(0.0, color=NEUTRAL, linewidth=0.8)
    ax.set_xlim(0, 100)
    ax.set_xlabel("% of stride (initial contact → next initial contact)", fontsize=9)
    ax.set_ylabel(ylabel, fontsize=9)
    ax.set_title(title, fontsize=11, loc="left")
    _style(ax)
    ax.legend(fontsize=8, frameon=False, loc="upper right")


def typical_stride_figure(
    obliquity: Sequence[StrideCurve], adduction: Sequence[StrideCurve], adduction_label: str
) -> Figure | None:
    """Pelvic obliquity (stance side up +) and stance-leg adduction over the normalised stride,
    mean ± 1 SD per side; dashed lines mark mean toe-off (end of stance)."""
    if not obliquity:
        return None
    panels = 2 if adduction else 1
    fig = _figure(5.2 * panels, 4.0)
    axes = fig.subplots(1, panels, squeeze=False)[0]
    _curve_panel(
        axes[0],
        obliquity,
        "pelvic obliquity, stance side up + (°)",
        "Pelvic obliquity over the stride (mean ± SD)",
        mark_peak=True,
    )
    if adduction:
        _curve_panel(
            axes[1],
            adduction,
            f"{adduction_label.lower()} (°)",
            f"Stance-leg {adduction_label.lower()} (mean ± SD)",
            mark_peak=True,
        )
    return fig


def cpd_trend_figure(strides: Sequence[Stride]) -> Figure | None:
    """CPD of every stride against time, per side, with its least-squares trend (fatigue)."""
    fig = _figure(10.4, 3.8)
    ax = fig.subplots()
    plotted = False
    for side in SIDES:
        own = side_strides(strides, side)
        t = metric_values(own, "start_s")
        cpd = metric_values(own, "pelvic_drop_deg")
        if np.count_nonzero(np.isfinite(cpd)) == 0:
            continue
        plotted = True
        colour = SIDE_COLOUR[side]
        ax.scatter(t / 60.0, cpd, s=9, color=colour, alpha=0.45, linewidths=0)
        trend = linear_trend(t, cpd)
        label = f"{SIDE_LABEL[side]} stance"
        if math.isfinite(trend.slope_per_min):
            x = np.array([t.min(), t.max()]) / 60.0
            ax.plot(x, trend.intercept + trend.slope_per_min * x, color=colour, linewidth=2.2)
            label += f": trend {trend.describe()}"
        ax.plot([], [], color=colour, marker="o", linewidth=2.2, label=label)
    if not plotted:
        return None
    ax.set_xlabel("time (min)", fontsize=9)
    ax.set_ylabel("contralateral pelvic drop (°)", fontsize=9)
    ax.set_title("Contralateral pelvic drop per stride over the session", fontsize=11, loc="left")
    _style(ax)
    ax.legend(fontsize=8, frameon=False, loc="upper left", ncols=2)
    return fig


def first_last_figure(
    comparisons: Mapping[str, Sequence[FirstLast]], fraction: float = 0.10
) -> Figure | None:
    """Mean ± SD of each metric over the first and the last `fraction` of strides, per side."""
    metrics = [m for m, rows in comparisons.items() if rows]
    if not metrics:
        return None
    fig = _figure(2.9 * len(metrics) + 0.6, 3.6)
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    width = 0.38
    for ax, metric in zip(axes, metrics, strict=True):
        label, unit = REPORT_METRICS[metric]
        rows = comparisons[metric]
        ticks: list[tuple[float, str]] = []
        for i, row in enumerate(rows):
            colour = SIDE_COLOUR[row.side]
            for j, (part, stat) in enumerate((("first", row.first), ("last", row.last))):
                x = i + (j - 0.5) * width
                ax.bar(
                    x,
                    stat.mean,
                    width * 0.92,
                    color=colour,
                    alpha=0.45 if j == 0 else 0.95,
                    yerr=None if math.isnan(stat.sd) else stat.sd,
                    capsize=3,
                    error_kw={"elinewidth": 1.0, "ecolor": "#333333"},
                )
                ticks.append((x, f"{SIDE_LABEL[row.side]}\n{part}"))
            top = max(row.first.mean + _nz(row.first.sd), row.last.mean + _nz(row.last.sd))
            ax.annotate(
                f"Δ {row.change:+.2f}",
                (i, top),
                xytext=(0, 3),
                textcoords="offset points",
                ha="center",
                fontsize=8,
            )
        ax.set_xticks([x for x, _ in ticks], [text for _, text in ticks], fontsize=8)
        ax.set_title(label, fontsize=10, loc="left")
        ax.set_ylabel("degrees" if unit == "°" else unit, fontsize=9)
        _style(ax)
        ax.grid(False, axis="x")
        ax.margins(y=0.15)
    fig.suptitle(
        f"First vs last {fraction * 100:g} % of strides (light = first, dark = last; mean ± SD)",
        fontsize=11,
        x=0.01,
        ha="left",
    )
    return fig


def _nz(value: float) -> float:
    return 0.0 if math.isnan(value) else value


def cadence_figure(strides: Sequence[Stride], window: int = 15) -> Figure | None:
    """Cadence of every stride over time with a rolling median."""
    ordered = sorted(strides, key=lambda s: s.start_s)
    t = metric_values(ordered, "start_s") / 60.0
    cadence = metric_values(ordered, "cadence_spm")
    if np.count_nonzero(np.isfinite(cadence)) == 0:
        return None
    fig = _figure(10.4, 3.2)
    ax = fig.subplots()
    for side in SIDES:
        mask = np.array([s.side == side for s in ordered])
        ax.scatter(
            t[mask],
            cadence[mask],
            s=8,
            color=SIDE_COLOUR[side],
            alpha=0.4,
            linewidths=0,
            label=f"{SIDE_LABEL[side]} stride",
        )
    ax.plot(
        t,
        rolling_median(cadence, window),
        color="#222222",
        linewidth=2.0,
        label=f"rolling median ({window} strides)",
    )
    ax.set_xlabel("time (min)", fontsize=9)
    ax.set_ylabel("cadence (steps/min)", fontsize=9)
    ax.set_title("Cadence over the session", fontsize=11, loc="left")
    _style(ax)
    ax.legend(fontsize=8, frameon=False, loc="lower left", ncols=3)
    return fig


def symmetry_figure(
    indices: Mapping[str, float], band_pct: float, clip_pct: float = 60.0
) -> Figure | None:
    """Symmetry index per metric (positive = right larger) with the ±band reference."""
    items = [(m, v) for m, v in indices.items() if math.isfinite(v)]
    if not items:
        return None
    fig = _figure(10.4, 0.42 * len(items) + 1.3)
    ax = fig.subplots()
    y = np.arange(len(items))[::-1]
    values = np.array([v for _, v in items])
    shown = np.clip(values, -clip_pct, clip_pct)
    colours = [SIDE_COLOUR["right"] if v > 0 else SIDE_COLOUR["left"] for v in values]
    ax.axvspan(
        -band_pct, band_pct, color="#dddddd", alpha=0.6, linewidth=0, label=f"±{band_pct:g} % band"
    )
    ax.barh(y, shown, color=colours, height=0.6)
    ax.barh([], [], color=SIDE_COLOUR["right"], label="right larger")
    ax.barh([], [], color=SIDE_COLOUR["left"], label="left larger")
    for yi, value, bar_end in zip(y, values, shown, strict=True):
        clipped = "≥" if abs(value) > clip_pct else ""
        ax.text(
            bar_end + (1.0 if bar_end >= 0 else -1.0),
            yi,
            f"{clipped}{value:+.1f} %",
            va="center",
            ha="left" if bar_end >= 0 else "right",
            fontsize=8,
        )
    ax.set_yticks(y, [REPORT_METRICS[m][0] for m, _ in items], fontsize=9)
    ax.axvline(0, color=NEUTRAL, linewidth=0.8)
    ax.set_xlim(-clip_pct * 1.25, clip_pct * 1.25)
    ax.set_xlabel(
        "symmetry index SI = 100·(R − L)/(0.5·(R + L))  (%; + = right larger)", fontsize=9
    )
    ax.set_title("Left–right symmetry", fontsize=11, loc="left")
    _style(ax)
    ax.grid(False, axis="y")
    ax.legend(fontsize=8, frameon=False, loc="lower right")
    return fig
