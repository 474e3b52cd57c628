"""The `sessions`, `export` and `report` subcommands (argument handling and user messages)."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from imu_stream.session_io import SessionFormatError


def sessions_command(data_dir: Path) -> None:
    from imu_stream.sinks.journal import list_sessions, sessions_table

    summaries = list_sessions(data_dir)
    out = Console()
    if not summaries:
        out.print(f"no sessions in {data_dir}")
        return
    out.print(sessions_table(summaries, data_dir))


def export_command(session: str, out: Path, fmt: str, data_dir: Path, analyze: bool) -> None:
    from imu_stream.cli import console, fail
    from imu_stream.sinks.export import FORMATS, export_session
    from imu_stream.sinks.journal import JournalReader, resolve_session

    if fmt not in FORMATS:
        fail(f"unknown format {fmt!r}: use {' or '.join(FORMATS)}")
    try:
        with JournalReader(resolve_session(session, data_dir)) as reader:
            result = export_session(reader, out, fmt, analyze=analyze)
            session_id = reader.session_id
    except SessionFormatError as exc:
        fail(str(exc))
    sensors = ", ".join(f"{loc} ({n} samples)" for loc, n in result.samples.items())
    console.print(f"[green]exported[/] {session_id} → {out}: {sensors}")
    if result.analysis_error is not None:
        fail(f"raw files written to {out}, but the analysis failed: {result.analysis_error}", 1)
    if result.n_strides is not None:
        live = f", {result.n_live_strides} stored live" if result.n_live_strides else ""
        console.print(f"strides: {result.n_strides} from the analysis{live}")


def report_command(session: str, out: Path, source: str, si_band: float, data_dir: Path) -> None:
    from imu_stream.cli import console, fail
    from imu_stream.sinks.report import SOURCES, ReportOptions, load_report_data, render_report

    if source not in SOURCES:
        fail(f"unknown source {source!r}: use {', '.join(SOURCES)}")
    if out.suffix.lower() not in (".html", ".htm"):
        fail(f"--out must name an .html file, not {out}")
    if not 0 < si_band < 100:
        fail(f"--si-band must be between 0 and 100 %, not {si_band:g}")
    try:
        data = load_report_data(session, data_dir, source)
    except SessionFormatError as exc:
        fail(str(exc))
    result = render_report(data, out, ReportOptions(si_band_pct=si_band))
    console.print(
        f"[green]report[/] → {out} ({result.n_good} of {result.n_strides} strides; "
        f"{len(result.figures)} figures also saved as PNG beside it)"
    )
