"""Batch analysis of a session folder: the `imu-stream analyze` command and its library API."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from imu_stream.core.online import CoreUpdate, OnlineProcessor, merge_updates
from imu_stream.core.sides import RUNNING_CADENCE_SPM
from imu_stream.core.summary import summarize
from imu_stream.records import AngleSeries, GaitEvent, SensorRecording, SessionInfo, Stride
from imu_stream.session_io import (
    SessionFormatError,
    read_session_dir,
    write_angles_csv,
    write_events_csv,
    write_strides_csv,
)

MIN_DURATION_S = 3.0
PROGRESS_CHUNK_S = 60.0  # analysis is pushed through the core in chunks of this length


@dataclass(slots=True)
class AnalysisResult:
    events: list[GaitEvent]
    strides: list[Stride]
    angles: AngleSeries
    summary: dict[str, object]
    notes: list[str] = field(default_factory=list)
    processor: OnlineProcessor | None = None


def analyze_session(
    recordings: Mapping[str, SensorRecording],
    info: SessionInfo | None = None,
    progress: Callable[[float], None] | None = None,
) -> AnalysisResult:
    """Events, strides, angles and summary of one session (sensor frame, session clock).

    The recording goes through the same `OnlineProcessor` as the live path, in chunks (which
    cannot change the result), so `progress` can be told the fraction done.
    """
    if "sacrum" not in recordings:
        raise SessionFormatError("no sacrum sensor: the sacrum is required")
    start = max(float(r.time_s[0]) for r in recordings.values())
    end = min(float(r.time_s[-1]) for r in recordings.values())
    if end - start < MIN_DURATION_S:
        raise SessionFormatError(f"recording shorter than {MIN_DURATION_S:g} s after sync")
    rate = session_rate_hz(recordings["sacrum"], info)
    processor = OnlineProcessor(list(recordings), rate)
    updates: list[CoreUpdate] = []
    for chunk_start in np.arange(start, end + PROGRESS_CHUNK_S, PROGRESS_CHUNK_S):
        for loc, rec in recordings.items():
            a, b = np.searchsorted(rec.time_s, [chunk_start, chunk_start + PROGRESS_CHUNK_S])
            if chunk_start == start:
                a = 0
            processor.push(loc, rec.time_s[a:b], rec.acc[a:b], rec.gyr[a:b])
        updates.append(processor.update())
        if progress is not None:
            progress(min(1.0, (chunk_start + PROGRESS_CHUNK_S - start) / (end - start)))
    updates.append(processor.finish())
    core = merge_updates(updates)
    notes = list(processor.calibration.notes) if processor.calibration else []
    summary = summarize(core.strides, notes)
    summary["sensors"] = sorted(recordings)
    summary["activity_detected"] = _activity(core.strides)
    if info is not None:
        summary["athlete"] = info.athlete
        summary["activity"] = info.activity
    return AnalysisResult(core.events, core.strides, core.angles, summary, notes, processor)


def session_rate_hz(sacrum: SensorRecording, info: SessionInfo | None) -> float:
    """The grid rate: the session's stated sample rate, else the sacrum's median rate."""
    if info is not None and info.sample_rate_hz and info.sample_rate_hz > 0:
        return float(info.sample_rate_hz)
    return float(1.0 / np.median(np.diff(sacrum.time_s)))


def _activity(strides: list[Stride]) -> str:
    cadence = [s.cadence_spm for s in strides if s.quality == 0]
    if not cadence:
        return "unknown"
    return "run" if float(np.median(cadence)) > RUNNING_CADENCE_SPM else "walk"


def write_analysis(result: AnalysisResult, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    write_events_csv(out_dir / "events.csv", result.events)
    write_strides_csv(out_dir / "strides.csv", result.strides)
    columns, table = result.angles.table()
    write_angles_csv(out_dir / "angles.csv", columns, table)
    (out_dir / "summary.json").write_text(json.dumps(result.summary, indent=2) + "\n")


def analyze_command(session_dir: Path, out: Path) -> None:
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from imu_stream.cli import console, fail

    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("reading session", total=1.0)
        try:
            info, recordings = read_session_dir(session_dir)
            progress.update(task, description="orientation, events, metrics", completed=0.0)
            result = analyze_session(
                recordings, info, lambda done: progress.update(task, completed=done)
            )
        except SessionFormatError as exc:
            progress.stop()
            fail(str(exc))
        progress.update(task, description=f"writing {out}")
        write_analysis(result, out)
        progress.update(task, description="done", completed=1.0)
    left = sum(s.side == "left" for s in result.strides)
    right = len(result.strides) - left
    console.print(
        f"[green]analyzed[/] {session_dir} → {out}: {len(result.strides)} strides "
        f"({left} left, {right} right), activity {result.summary['activity_detected']}"
    )
    for note in result.notes:
        console.print(f"[yellow]note:[/] {note}")
