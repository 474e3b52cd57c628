"""`imu-stream demo`: the embedded default — a simulated runner through the live pipeline.

Simulator → emulated Movesense (sacrum) and MetaMotion (thighs) sensors → the BLE collector and
codecs → journal → live processor → live view; then the session is exported (CSV + analysis)
and the run report written. Everything the user needs is printed at the end.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from imu_stream.live.command import DEMO_CPD_DEG, RunOptions, run_command
from imu_stream.pipeline import RunResult


@dataclass(slots=True)
class DemoOutputs:
    result: RunResult
    session_dir: Path  # the journal
    export_dir: Path  # CSVs + analysis
    report_html: Path


def demo_command(
    out: Path,
    duration_s: float,
    seed: int,
    speed: float,
    data_dir: Path,
    view: bool = True,
) -> DemoOutputs:
    """A simulated runner (sacrum + both thighs) through the live pipeline, then export and
    report. Prints where everything is."""
    from imu_stream.sinks.export import export_session
    from imu_stream.sinks.journal import JournalReader
    from imu_stream.sinks.report import load_report_data, render_report

    err = Console(stderr=True)
    opts = RunOptions(
        simulate="run",
        athlete="demo runner",
        data_dir=data_dir,
        speed=speed,
        view=view,
        seed=seed,
        simulation_duration_s=duration_s,
    )
    err.print(
        f"demo: a simulated runner ({duration_s:g} s, CPD left {DEMO_CPD_DEG['left']:g}°, right "
        f"{DEMO_CPD_DEG['right']:g}°) streamed by emulated sensors — Movesense on the sacrum, "
        "MetaMotion on both thighs — through the live pipeline",
        highlight=False,
    )
    result = run_command(opts)
    out.mkdir(parents=True, exist_ok=True)
    export_dir = out / "session"
    with (
        err.status("exporting the session and re-running the analysis on the export…"),
        JournalReader(result.session_dir) as reader,
    ):
        exported = export_session(reader, export_dir, "csv")
    if exported.analysis_error:
        err.print(f"[yellow]warning:[/] analysis of the export failed: {exported.analysis_error}")
    report_html = out / "report.html"
    with err.status("writing the run report…"):
        data = load_report_data(result.session_dir, data_dir, "auto")
        rendered = render_report(data, report_html)
    err.print()
    err.print("[bold]outputs[/]")
    err.print(
        f"  session journal : {result.session_dir}/journal.sqlite", highlight=False, soft_wrap=True
    )
    err.print(
        f"  CSVs            : {export_dir}/ (sacrum.csv, left_thigh.csv, right_thigh.csv in SI "
        "units; events.csv, strides.csv, angles.csv, summary.json; live_strides.csv)",
        highlight=False,
        soft_wrap=True,
    )
    err.print(
        f"  report          : {report_html} (+ {len(rendered.figures)} PNG figures beside it)",
        highlight=False,
        soft_wrap=True,
    )
    sys.stderr.flush()
    return DemoOutputs(result, result.session_dir, export_dir, report_html)
