"""`imu-stream demo`: the embedded default — a simulated runner, analysed, summarised."""

from __future__ import annotations

from pathlib import Path

from rich.table import Table

from imu_stream.analyze import analyze_session, write_analysis
from imu_stream.sim.config import SimulationConfig
from imu_stream.sim.session import simulate, write_simulated_session


def _fmt(value: object, digits: int = 1) -> str:
    return "–" if value is None else f"{float(value):.{digits}f}"  # type: ignore[arg-type]


def demo_command(out: Path, duration: float, seed: int) -> None:
    from imu_stream.cli import console

    config = SimulationConfig(
        activity="run",
        duration_s=duration,
        rate_hz=200.0,
        seed=seed,
        cpd_left_deg=5.0,
        cpd_right_deg=7.0,
    )
    with console.status("simulating a runner (sacrum + both thighs, 200 Hz)…"):
        session = simulate(config)
        session_dir = out / "session"
        write_simulated_session(session, session_dir)
    with console.status("analysing: orientation, gait events, strides, metrics…"):
        result = analyze_session(session.recordings, session.info)
        analysis_dir = out / "analysis"
        write_analysis(result, analysis_dir)
    per_side = result.summary["per_side"]
    table = Table(title=f"Simulated run, {duration:g} s: per-stride means (SD)")
    table.add_column("metric")
    table.add_column("left", justify="right")
    table.add_column("right", justify="right")
    table.add_column("SI %", justify="right")
    symmetry = result.summary["symmetry_index_pct"]
    for metric in (
        "pelvic_drop_deg",
        "hip_adduction_peak_deg",
        "thigh_adduction_peak_deg",
        "cadence_spm",
        "stance_time_s",
    ):
        cells = []
        for side in ("left", "right"):
            stats = per_side[side][metric]  # type: ignore[index]
            cells.append(f"{_fmt(stats['mean'], 2)} ({_fmt(stats['sd'], 2)})")
        table.add_row(metric, *cells, _fmt(symmetry[metric]))  # type: ignore[index]
    console.print(table)
    console.print(f"strides: {len(result.strides)}; simulated CPD left 5.0°, right 7.0°")
    console.print(f"session (raw CSVs + truth): {session_dir}")
    console.print(f"analysis (events, strides, angles, summary): {analysis_dir}")
