"""Batch analysis of a session folder: the `imu-stream analyze` command and its library API."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from imu_stream.core.process import CoreResult, process_signals
from imu_stream.core.summary import summarize
from imu_stream.core.sync import synchronise
from imu_stream.records import AngleSeries, GaitEvent, SensorRecording, SessionInfo, Stride
from imu_stream.session_io import (
    SessionFormatError,
    read_session_dir,
    write_angles_csv,
    write_events_csv,
    write_strides_csv,
)

MIN_DURATION_S = 3.0


@dataclass(slots=True)
class AnalysisResult:
    events: list[GaitEvent]
    strides: list[Stride]
    angles: AngleSeries
    summary: dict[str, object]
    notes: list[str] = field(default_factory=list)
    core: CoreResult | None = None


def analyze_session(
    recordings: Mapping[str, SensorRecording], info: SessionInfo | None = None
) -> AnalysisResult:
    """Events, strides, angles and summary of one session (sensor frame, session clock)."""
    if "sacrum" not in recordings:
        raise SessionFormatError("no sacrum sensor: the sacrum is required")
    signals = synchronise(recordings)
    if signals.time_s.size < 2 or signals.time_s[-1] - signals.time_s[0] < MIN_DURATION_S:
        raise SessionFormatError(f"recording shorter than {MIN_DURATION_S:g} s after sync")
    core = process_signals(signals)
    summary = summarize(core.strides, core.notes)
    summary["sensors"] = sorted(recordings)
    summary["activity_detected"] = core.activity
    if info is not None:
        summary["athlete"] = info.athlete
        summary["activity"] = info.activity
    return AnalysisResult(core.events, core.strides, core.angles, summary, core.notes, core)


def write_analysis(result: AnalysisResult, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    write_events_csv(out_dir / "events.csv", result.events)
    write_strides_csv(out_dir / "strides.csv", result.strides)
    columns, table = result.angles.table()
    write_angles_csv(out_dir / "angles.csv", columns, table)
    (out_dir / "summary.json").write_text(json.dumps(result.summary, indent=2) + "\n")


def analyze_command(session_dir: Path, out: Path) -> None:
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from imu_stream.cli import console, fail

    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console
    ) as progress:
        task = progress.add_task("reading session", total=3)
        try:
            info, recordings = read_session_dir(session_dir)
            progress.update(task, advance=1, description="orientation, events, metrics")
            result = analyze_session(recordings, info)
        except SessionFormatError as exc:
            progress.stop()
            fail(str(exc))
        progress.update(task, advance=1, description=f"writing {out}")
        write_analysis(result, out)
        progress.update(task, advance=1, description="done")
    left = sum(s.side == "left" for s in result.strides)
    right = len(result.strides) - left
    console.print(
        f"[green]analyzed[/] {session_dir} → {out}: {len(result.strides)} strides "
        f"({left} left, {right} right), activity {result.summary['activity_detected']}"
    )
    for note in result.notes:
        console.print(f"[yellow]note:[/] {note}")
