"""The data directory: where sessions live, how they are named, listed and found again."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from rich.table import Table

from imu_stream.session_io import SessionFormatError
from imu_stream.sinks.journal.schema import JOURNAL_FILENAME

DATA_DIR_ENV = "IMU_STREAM_DATA_DIR"
DEFAULT_DATA_DIR = Path("imu-sessions")


class SessionNotFoundError(SessionFormatError):
    """No session matches what the user typed; the message is one line."""


def default_data_dir() -> Path:
    """`$IMU_STREAM_DATA_DIR`, else `./imu-sessions`."""
    env = os.environ.get(DATA_DIR_ENV, "").strip()
    return Path(env) if env else DEFAULT_DATA_DIR


def _slug(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:24].strip("-") or "session"


def new_session_dir(data_dir: Path, athlete: str, start_unix_s: float) -> Path:
    """Create and return `<data_dir>/<YYYYmmdd-HHMMSS>-<athlete>[-N]` (UTC, never reused)."""
    stamp = datetime.fromtimestamp(start_unix_s, tz=UTC).strftime("%Y%m%d-%H%M%S")
    base = f"{stamp}-{_slug(athlete)}"
    data_dir.mkdir(parents=True, exist_ok=True)
    for n in range(1, 10_000):
        candidate = data_dir / (base if n == 1 else f"{base}-{n}")
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        return candidate
    raise SessionFormatError(f"{data_dir}: too many sessions named {base}")


def _is_session(path: Path) -> bool:
    return (path / JOURNAL_FILENAME).is_file()


def resolve_session(ref: str | Path, data_dir: Path) -> Path:
    """The session folder for a path (folder or journal file), an id, or a unique id prefix."""
    path = Path(ref)
    if path.is_file() and path.name == JOURNAL_FILENAME:
        return path.parent
    if _is_session(path):
        return path
    text = str(ref)
    if "/" not in text and os.sep not in text and data_dir.is_dir():
        if _is_session(data_dir / text):
            return data_dir / text
        matches = sorted(
            p for p in data_dir.iterdir() if p.name.startswith(text) and _is_session(p)
        )
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            names = ", ".join(p.name for p in matches[:4])
            raise SessionNotFoundError(f"{text!r} matches several sessions: {names}")
    if path.is_dir():
        raise SessionNotFoundError(f"{path}: not a session folder (no {JOURNAL_FILENAME})")
    raise SessionNotFoundError(
        f"no session {text!r} in {data_dir} (see `imu-stream sessions --data-dir DIR`)"
    )


@dataclass(slots=True)
class SessionSummary:
    """One line of `imu-stream sessions`."""

    session_id: str
    path: Path
    athlete: str = ""
    activity: str = ""
    start: datetime | None = None
    duration_s: float = 0.0
    sensors: tuple[str, ...] = ()
    n_strides: int = 0
    closed: bool = False
    problem: str = ""  # why the session could not be read, if it could not


def summarize_session(session_dir: Path) -> SessionSummary:
    from imu_stream.sinks.journal.reader import JournalReader

    try:
        with JournalReader(session_dir) as reader:
            meta = reader.meta
            return SessionSummary(
                session_id=reader.session_id,
                path=session_dir,
                athlete=meta.athlete,
                activity=meta.activity,
                start=meta.start_time,
                duration_s=reader.duration_s(),
                sensors=tuple(reader.locations()),
                n_strides=reader.n_strides(),
                closed=reader.is_closed,
            )
    except (SessionFormatError, OSError) as exc:
        return SessionSummary(session_id=session_dir.name, path=session_dir, problem=str(exc))


def list_sessions(data_dir: Path) -> list[SessionSummary]:
    """Every session under `data_dir`, oldest first; unreadable ones carry a `problem`."""
    if not data_dir.is_dir():
        return []
    found = [summarize_session(p) for p in sorted(data_dir.iterdir()) if _is_session(p)]
    return sorted(found, key=lambda s: (s.start is None, s.start or datetime.min, s.session_id))


def _duration_text(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


_SHORT_LOCATION = {
    "sacrum": "sacrum",
    "left_thigh": "L thigh",
    "right_thigh": "R thigh",
    "left_shank": "L shank",
    "right_shank": "R shank",
}


def sessions_table(summaries: list[SessionSummary], data_dir: Path) -> Table:
    table = Table(title=f"Sessions in {data_dir}", title_justify="left")
    table.add_column("id", style="bold", no_wrap=True)
    table.add_column("athlete", no_wrap=True, max_width=16)
    table.add_column("activity", no_wrap=True)
    table.add_column("start (local)", no_wrap=True)
    table.add_column("duration", justify="right", no_wrap=True)
    table.add_column("sensors")
    table.add_column("strides", justify="right", no_wrap=True)
    table.add_column("state", no_wrap=True)
    for s in summaries:
        if s.problem:
            table.add_row(s.session_id, "", "", "", "", f"[red]unreadable: {s.problem}", "", "")
            continue
        start = s.start.astimezone().strftime("%Y-%m-%d %H:%M") if s.start else ""
        state = "complete" if s.closed else "[yellow]open/interrupted"
        table.add_row(
            s.session_id,
            s.athlete,
            s.activity,
            start,
            _duration_text(s.duration_s),
            ", ".join(_SHORT_LOCATION.get(loc, loc) for loc in s.sensors),
            str(s.n_strides),
            state,
        )
    return table
