"""Reading and writing the session folder and the analysis CSVs of DESIGN.md §4."""

from __future__ import annotations

import csv
import json
import math
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from imu_stream.records import (
    EVENT_COLUMNS,
    LOCATIONS,
    MAG_COLUMNS,
    RAW_COLUMNS,
    STRIDE_COLUMNS,
    FloatArray,
    GaitEvent,
    SensorRecording,
    SessionInfo,
    Stride,
)

FULL_PRECISION = "%.17g"  # float64 → text → float64 without loss
MIN_RATE_HZ = 20.0
MAX_RATE_HZ = 2000.0


class SessionFormatError(ValueError):
    """A session folder or file that cannot be used; the message is one line for the user."""


def read_session_info(session_dir: Path) -> SessionInfo:
    path = session_dir / "session.toml"
    if not path.exists():
        return SessionInfo()
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise SessionFormatError(f"{path}: not valid TOML ({exc})") from exc
    known = {"athlete", "activity", "sample_rate_hz", "notes"}
    return SessionInfo(
        athlete=str(data.get("athlete", "anonymous")),
        activity=str(data.get("activity", "unknown")),
        sample_rate_hz=float(data["sample_rate_hz"]) if "sample_rate_hz" in data else None,
        notes=str(data.get("notes", "")),
        extra={k: v for k, v in data.items() if k not in known},
    )


def read_sensor_csv(path: Path, location: str) -> SensorRecording:
    """Read `<location>.csv`, checking header, numbers, monotonic time and sample rate."""
    try:
        with path.open(newline="") as fh:
            header = next(csv.reader(fh), None)
    except OSError as exc:
        raise SessionFormatError(f"{path}: cannot read ({exc.strerror})") from exc
    if header is None:
        raise SessionFormatError(f"{path}: empty file")
    header = [h.strip() for h in header]
    allowed = (list(RAW_COLUMNS), list(RAW_COLUMNS) + list(MAG_COLUMNS))
    if header not in allowed:
        unknown = [h for h in header if h not in RAW_COLUMNS + MAG_COLUMNS]
        detail = f"unknown columns {unknown}" if unknown else f"columns {header}"
        raise SessionFormatError(
            f"{path}: {detail}; expected {','.join(RAW_COLUMNS)}[,{','.join(MAG_COLUMNS)}]"
        )
    try:
        table = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2, dtype=np.float64)
    except ValueError as exc:
        raise SessionFormatError(f"{path}: non-numeric value ({exc})") from exc
    if table.shape[0] < 2:
        raise SessionFormatError(f"{path}: fewer than 2 samples")
    if not np.all(np.isfinite(table)):
        bad = int(np.argwhere(~np.isfinite(table))[0, 0]) + 2
        raise SessionFormatError(f"{path}: NaN or infinite value on line {bad}")
    time_s = np.ascontiguousarray(table[:, 0])
    steps = np.diff(time_s)
    if np.any(steps <= 0):
        bad = int(np.argmax(steps <= 0)) + 3
        raise SessionFormatError(f"{path}: time_s is not strictly increasing (line {bad})")
    rate = 1.0 / float(np.median(steps))
    if not (MIN_RATE_HZ <= rate <= MAX_RATE_HZ):
        raise SessionFormatError(
            f"{path}: unusable sample rate {rate:.1f} Hz (need {MIN_RATE_HZ:g}–{MAX_RATE_HZ:g} Hz)"
        )
    mag = np.ascontiguousarray(table[:, 7:10]) if table.shape[1] == 10 else None
    return SensorRecording(
        location=location,
        time_s=time_s,
        acc=np.ascontiguousarray(table[:, 1:4]),
        gyr=np.ascontiguousarray(table[:, 4:7]),
        mag=mag,
    )


def read_session_dir(session_dir: Path) -> tuple[SessionInfo, dict[str, SensorRecording]]:
    """Read a session folder; raises SessionFormatError with a one-line reason."""
    if not session_dir.exists():
        raise SessionFormatError(f"{session_dir}: no such folder")
    if not session_dir.is_dir():
        raise SessionFormatError(f"{session_dir}: not a folder")
    if not (session_dir / "sacrum.csv").exists():
        raise SessionFormatError(f"{session_dir}: missing sacrum.csv (required)")
    info = read_session_info(session_dir)
    recordings = {
        loc: read_sensor_csv(session_dir / f"{loc}.csv", loc)
        for loc in LOCATIONS
        if (session_dir / f"{loc}.csv").exists()
    }
    return info, recordings


def _fmt(value: object) -> str:
    # repr: the shortest text that reads back to the same float, so re-reading is exact.
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(float(value))
    return str(value)


def write_sensor_csv(path: Path, rec: SensorRecording) -> None:
    cols = [rec.time_s[:, None], rec.acc, rec.gyr]
    header = list(RAW_COLUMNS)
    if rec.mag is not None:
        cols.append(rec.mag)
        header += list(MAG_COLUMNS)
    table = np.hstack(cols)
    # Full precision (17 significant digits round-trip float64 exactly): re-analysing an
    # exported session must reproduce the live results bit for bit.
    header_line = ",".join(header)
    np.savetxt(path, table, delimiter=",", header=header_line, comments="", fmt=FULL_PRECISION)


def write_session_dir(
    session_dir: Path, recordings: Mapping[str, SensorRecording], info: SessionInfo | None = None
) -> None:
    session_dir.mkdir(parents=True, exist_ok=True)
    for loc, rec in recordings.items():
        write_sensor_csv(session_dir / f"{loc}.csv", rec)
    if info is not None:
        lines = [
            f"athlete = {json.dumps(info.athlete)}",
            f"activity = {json.dumps(info.activity)}",
        ]
        if info.sample_rate_hz is not None:
            lines.append(f"sample_rate_hz = {info.sample_rate_hz}")
        if info.notes:
            lines.append(f"notes = {json.dumps(info.notes)}")
        (session_dir / "session.toml").write_text("\n".join(lines) + "\n")


def write_rows(path: Path, columns: Sequence[str], rows: Iterable[Mapping[str, object]]) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_fmt(row[c]) for c in columns])


def write_events_csv(path: Path, events: Iterable[GaitEvent]) -> None:
    write_rows(
        path,
        EVENT_COLUMNS,
        ({"time_s": e.time_s, "side": e.side, "event": e.event} for e in events),
    )


def write_strides_csv(path: Path, strides: Iterable[Stride]) -> None:
    write_rows(path, STRIDE_COLUMNS, (s.as_row() for s in strides))


def write_angles_csv(path: Path, columns: Sequence[str], table: FloatArray) -> None:
    header_line = ",".join(columns)
    np.savetxt(path, table, delimiter=",", header=header_line, comments="", fmt=FULL_PRECISION)


def _parse_float(text: str) -> float:
    return float(text) if text != "" else float("nan")


def read_events_csv(path: Path) -> list[GaitEvent]:
    with path.open(newline="") as fh:
        return [
            GaitEvent(float(r["time_s"]), r["side"], r["event"]) for r in csv.DictReader(fh)
        ]


def read_strides_csv(path: Path) -> list[Stride]:
    out: list[Stride] = []
    with path.open(newline="") as fh:
        for r in csv.DictReader(fh):
            values: dict[str, object] = {}
            for c in STRIDE_COLUMNS:
                if c == "side":
                    values[c] = r[c]
                elif c == "quality":
                    values[c] = int(r[c] or 0)
                else:
                    values[c] = _parse_float(r[c])
            out.append(Stride(**values))  # type: ignore[arg-type]
    return out
