"""`imu-stream report`: the HTML renders, every figure is embedded, non-empty and not blank."""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import numpy as np
import pytest
from matplotlib import image as mpimg
from typer.testing import CliRunner

from imu_stream.cli import app
from imu_stream.records import AngleSeries, GaitEvent, Stride
from imu_stream.sim.config import SimulationConfig
from imu_stream.sim.session import SimulatedSession, simulate
from imu_stream.sinks.report import ReportData, render_report
from imu_stream.sinks.report_stats import (
    first_last,
    linear_trend,
    rolling_median,
    symmetry_index,
    time_normalised,
    typical_stride,
)
from tests.test_export_session import journal_simulation

FIGURES = ("typical_stride", "cpd_trend", "first_last", "cadence", "symmetry")
IMG = re.compile(r'<figure id="fig-([a-z_]+)"><img src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


@pytest.fixture(scope="module")
def sim() -> SimulatedSession:
    config = SimulationConfig(
        activity="run", duration_s=25.0, seed=5, cpd_left_deg=4.0, cpd_right_deg=7.0
    )
    return simulate(config)


def _check_png(png: bytes, name: str) -> None:
    assert png[:8] == b"\x89PNG\r\n\x1a\n", name
    pixels = mpimg.imread(io.BytesIO(png), format="png")
    height, width = pixels.shape[:2]
    assert width >= 600 and height >= 250, (name, width, height)
    rgb = pixels[..., :3]
    ink = np.any(rgb < 0.9, axis=-1).mean()  # share of pixels that are not (near) white
    assert 0.01 < ink < 0.6, (name, ink)
    rgb8 = (rgb.reshape(-1, 3) * 255).astype(np.uint32)
    colours = np.unique(rgb8[:, 0] << 16 | rgb8[:, 1] << 8 | rgb8[:, 2]).size
    assert colours > 20, (name, colours)  # lines, bands and text, not one flat fill


def _figures(html: str) -> dict[str, bytes]:
    return {name: base64.b64decode(data) for name, data in IMG.findall(html)}


def test_report_from_journal_live_outputs(sim: SimulatedSession, tmp_path: Path) -> None:
    session_dir = journal_simulation(tmp_path / "data", sim)
    out = tmp_path / "out" / "run-report.html"
    result = CliRunner().invoke(
        app, ["report", session_dir.name, "--out", str(out), "--data-dir", str(tmp_path / "data")]
    )
    assert result.exit_code == 0, result.output
    html = out.read_text(encoding="utf-8")
    figures = _figures(html)
    assert sorted(figures) == sorted(FIGURES)
    for name, png in figures.items():
        _check_png(png, name)
        beside = out.with_name(f"run-report_{name}.png")
        assert beside.read_bytes() == png  # the PNG beside the HTML is the embedded one
    # Self-contained: nothing fetched from elsewhere.
    assert not re.search(r'(src|href)="(?!data:)', html)
    # The key numbers are the truth strides' means (the live outputs given to the journal).
    for side, requested in (("left", 4.0), ("right", 7.0)):
        cpd = np.mean([s.pelvic_drop_deg for s in sim.truth_strides if s.side == side])
        assert abs(cpd - requested) < 0.5
        assert f"{cpd:.1f} ±" in html
    si = symmetry_index(
        float(np.mean([s.pelvic_drop_deg for s in sim.truth_strides if s.side == "left"])),
        float(np.mean([s.pelvic_drop_deg for s in sim.truth_strides if s.side == "right"])),
    )
    assert f"+{si:.1f}" in html
    assert "live strides stored during the session" in html
    assert "Sim Runner" in html and "Data quality" in html


def test_report_from_batch_analysis_notes_a_gap(sim: SimulatedSession, tmp_path: Path) -> None:
    """`--source analyze` runs the analysis on the journaled samples; a 1.5 s hole is reported."""
    session_dir = journal_simulation(
        tmp_path / "data", sim, live_outputs=False, drop=slice(3000, 3300)
    )
    out = tmp_path / "report.html"
    result = CliRunner().invoke(
        app, ["report", str(session_dir), "--out", str(out), "--source", "analyze"]
    )
    assert result.exit_code == 0, result.output
    html = out.read_text(encoding="utf-8")
    assert "batch analysis of the journaled samples" in html
    assert re.search(r"sacrum: \d+ samples at 200\.0 Hz; 1 gap\(s\), 1\.50 s missing", html)
    figures = _figures(html)
    assert {"typical_stride", "cpd_trend", "cadence", "symmetry"} <= set(figures)
    for name, png in figures.items():
        _check_png(png, name)


def test_report_cli_errors(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(
        app, ["report", "nothing", "--out", str(tmp_path / "r.html"), "--data-dir", str(tmp_path)]
    )
    assert result.exit_code != 0 and "no session 'nothing'" in result.output
    result = runner.invoke(app, ["report", str(tmp_path), "--out", str(tmp_path / "r.pdf")])
    assert result.exit_code != 0 and ".html" in result.output
    result = runner.invoke(app, ["report", str(tmp_path), "--out", str(tmp_path / "r.html")])
    assert result.exit_code != 0 and "neither strides.csv nor sensor CSVs" in result.output
    assert "Traceback" not in result.output


def test_report_renders_without_angles_or_thighs(sim: SimulatedSession, tmp_path: Path) -> None:
    """Strides only (e.g. a sacrum-only analysis): no typical-stride figure, the rest is there."""
    strides = [
        Stride(
            **{
                **s.as_row(),
                "hip_adduction_peak_deg": float("nan"),  # type: ignore[arg-type]
                "thigh_adduction_peak_deg": float("nan"),
            }
        )
        for s in sim.truth_strides
    ]
    result = render_report(ReportData(strides, athlete="A"), tmp_path / "r.html")
    assert set(result.figures) == {"cpd_trend", "first_last", "cadence", "symmetry"}
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "Peak hip adduction" not in html
    for name, png in _figures(html).items():
        _check_png(png, name)


# --- the numbers behind the figures -----------------------------------------------------------


def test_symmetry_index() -> None:
    assert symmetry_index(4.0, 6.0) == pytest.approx(40.0)
    assert symmetry_index(6.0, 4.0) == pytest.approx(-40.0)
    assert np.isnan(symmetry_index(1.0, -1.0)) and np.isnan(symmetry_index(np.nan, 1.0))


def test_time_normalisation_and_typical_stride() -> None:
    t = np.arange(0, 20, 0.005)
    obliquity = np.sin(2 * np.pi * t / 0.8)  # one period per 0.8 s
    starts = np.arange(1.0, 18.0, 0.8)
    matrix = time_normalised(t, obliquity, starts, starts + 0.8)
    expected = np.sin(2 * np.pi * np.linspace(0, 1, 101) + 2 * np.pi * 1.0 / 0.8)
    assert matrix.shape == (starts.size, 101)
    np.testing.assert_allclose(matrix, np.broadcast_to(expected, matrix.shape), atol=1e-3)
    # A stride beyond the angle series is dropped, not extrapolated.
    assert time_normalised(t, obliquity, np.array([19.5]), np.array([20.3])).shape[0] == 0

    strides = [
        Stride(s, s + 0.8, side, 0.8, 0.3, 0.5, 150.0, 1.0, 1.0, 1.0, 1.0, np.nan)
        for s, side in zip(starts, ["left", "right"] * 20, strict=False)
    ]
    angles = AngleSeries(t, {"pelvic_obliquity_deg": obliquity})
    curves = {
        c.side: c for c in typical_stride(angles, strides, "pelvic_obliquity_deg", as_drop=True)
    }
    # Left stance is shown with obliquity negated (stance side up positive for both legs).
    left_start = strides[0].start_s
    phase = 2 * np.pi * left_start / 0.8
    np.testing.assert_allclose(
        curves["left"].mean, -np.sin(2 * np.pi * np.linspace(0, 1, 101) + phase), atol=1e-3
    )
    assert curves["left"].toe_off_pct == pytest.approx(37.5)
    assert np.all(curves["right"].sd < 1e-3)


def test_trend_first_last_and_rolling_median() -> None:
    t = np.arange(0, 600, 0.7)
    cpd = 5.0 + 0.2 * t / 60.0  # +0.2° per minute
    trend = linear_trend(t, cpd)
    assert trend.slope_per_min == pytest.approx(0.2) and trend.intercept == pytest.approx(5.0)
    # Stated as the fitted change over the strides' span, not extrapolated to another one.
    assert trend.describe() == f"{0.2 * t[-1] / 60:+.2f}° over 10 min"
    assert linear_trend(t[:20], cpd[:20]).describe() == f"{0.2 * t[19] / 60:+.2f}° over 13 s"
    strides = [
        Stride(ti, ti + 0.7, "left", 0.7, 0.3, 0.4, 171.4, c, 1.0, 1.0, 1.0, np.nan)
        for ti, c in zip(t, cpd, strict=True)
    ]
    (fl,) = first_last(strides, "pelvic_drop_deg", 0.10)
    k = int(np.ceil(0.1 * t.size))
    assert fl.first.n == k and fl.first.mean == pytest.approx(cpd[:k].mean())
    assert fl.change == pytest.approx(cpd[-k:].mean() - cpd[:k].mean())
    values = np.array([1.0, 100.0, 2.0, 3.0, np.nan, 4.0])
    np.testing.assert_allclose(rolling_median(values, 3), [50.5, 2.0, 3.0, 2.5, 3.5, 4.0])


def test_events_do_not_affect_stride_statistics(sim: SimulatedSession, tmp_path: Path) -> None:
    """Flagged strides are left out and reported in the quality notes."""
    flagged = [
        Stride(**{**s.as_row(), "quality": 1}) if i % 5 == 0 else s  # type: ignore[arg-type]
        for i, s in enumerate(sim.truth_strides)
    ]
    events = [GaitEvent(1.0, "left", "IC")]
    result = render_report(ReportData(flagged, events, sim.truth_angles), tmp_path / "q.html")
    n_flagged = len(sim.truth_strides[::5])
    assert result.n_good == len(sim.truth_strides) - n_flagged
    html = (tmp_path / "q.html").read_text(encoding="utf-8")
    assert f"{n_flagged} stride(s) flagged &#x27;gap&#x27;" in html
