"""Reading a journal back: metadata, raw sample streams, per-sensor recordings, outputs.

Safe on a session that is still being written (WAL readers do not block the writer) and on one
whose writer was killed (SQLite recovers the WAL on open: every committed chunk is there).
"""

from __future__ import annotations

import json
import math
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from imu_stream.records import (
    LOCATIONS,
    STRIDE_COLUMNS,
    AngleSeries,
    FloatArray,
    GaitEvent,
    SensorRecording,
    Stride,
)
from imu_stream.session_io import SessionFormatError
from imu_stream.sinks.journal import schema, timebase
from imu_stream.sinks.journal.meta import SessionEvent, SessionMeta, StatusRecord

_FIELD_INDEX = {name: 6 + i for i, name in enumerate(schema.SAMPLE_FIELDS)}
_ROW_SQL = (
    "SELECT kind, n_samples, block_n, block_host_time_s, block_device_ms, time_s, "
    f"{', '.join(schema.SAMPLE_FIELDS)} FROM chunks WHERE location = ? ORDER BY id"
)


class JournalFormatError(SessionFormatError):
    """Not a readable journal; the message is one line for the user."""


@dataclass(slots=True)
class SampleStream:
    """One array field (acc, gyro, …) of one sensor, all blocks concatenated in arrival order."""

    location: str
    field: str
    time_s: FloatArray  # session clock
    values: FloatArray  # (n, width)
    block_n: timebase.IntArray
    block_host_time_s: FloatArray
    block_device_ms: FloatArray
    n_reconstructed: int  # samples whose time came from the fallback clock, not a stamp


def _nan(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _resample(src_t: FloatArray, values: FloatArray, dst_t: FloatArray) -> FloatArray:
    return np.column_stack([np.interp(dst_t, src_t, values[:, k]) for k in range(values.shape[1])])


class JournalReader:
    """Open `<session_dir>/journal.sqlite` (pass the folder or the file)."""

    def __init__(self, path: Path) -> None:
        file = path / schema.JOURNAL_FILENAME if path.is_dir() else path
        if not file.exists():
            raise JournalFormatError(f"{path}: no session journal ({schema.JOURNAL_FILENAME})")
        self.path = file
        self.session_dir = file.parent
        try:
            self._conn = schema.connect(file, create=False)
            items = dict(self._conn.execute("SELECT key, value FROM meta").fetchall())
        except sqlite3.DatabaseError as exc:
            raise JournalFormatError(f"{file}: not a readable journal ({exc})") from exc
        fmt = json.loads(items.pop("journal_format", "null"))
        version = json.loads(items.pop("journal_format_version", "0"))
        if fmt != schema.FORMAT_NAME:
            raise JournalFormatError(f"{file}: not an imu-stream journal")
        if version > schema.FORMAT_VERSION:
            raise JournalFormatError(
                f"{file}: journal format {version} is newer than this imu-stream "
                f"(reads ≤ {schema.FORMAT_VERSION}); upgrade imu-stream"
            )
        self.meta = SessionMeta.from_items(items)
        self._rows_cache: dict[str, list[tuple[Any, ...]]] = {}

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> JournalReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- overview ----------------------------------------------------------------------------

    @property
    def session_id(self) -> str:
        return self.meta.session_id or self.session_dir.name

    @property
    def is_closed(self) -> bool:
        """True after a clean close; False while recording or after a crash."""
        return self.meta.end_unix_s is not None

    def locations(self) -> list[str]:
        found = {r[0] for r in self._conn.execute("SELECT DISTINCT location FROM chunks")}
        return [loc for loc in LOCATIONS if loc in found] + sorted(found - set(LOCATIONS))

    def time_span_s(self) -> tuple[float, float] | None:
        """(first, last) sample time over all sensors, from the first/last chunk of each."""
        starts, ends = [], []
        for loc in self.locations():
            first = self._conn.execute(
                "SELECT t_start_s FROM chunks WHERE location = ? ORDER BY id LIMIT 1", (loc,)
            ).fetchone()
            last = self._conn.execute(
                "SELECT t_end_s FROM chunks WHERE location = ? ORDER BY id DESC LIMIT 1", (loc,)
            ).fetchone()
            if first and first[0] is not None and last and last[0] is not None:
                starts.append(float(first[0]))
                ends.append(float(last[0]))
        return (min(starts), max(ends)) if starts else None

    def duration_s(self) -> float:
        span = self.time_span_s()
        return span[1] - span[0] if span else 0.0

    def n_samples(self) -> dict[str, int]:
        rows = self._conn.execute(
            "SELECT location, SUM(n_samples) FROM chunks GROUP BY location"
        ).fetchall()
        return {loc: int(n) for loc, n in rows}

    def n_strides(self) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM strides").fetchone()[0])

    # --- samples -----------------------------------------------------------------------------

    def _rows(self, location: str) -> list[tuple[Any, ...]]:
        if location not in self._rows_cache:
            self._rows_cache[location] = self._conn.execute(_ROW_SQL, (location,)).fetchall()
        return self._rows_cache[location]

    def stream(self, location: str, field: str) -> SampleStream | None:
        """All samples of one field of one sensor, None if the sensor never sent it."""
        if field not in schema.SAMPLE_FIELDS:
            raise ValueError(f"unknown sample field {field!r}")
        col = _FIELD_INDEX[field]
        rows = [r for r in self._rows(location) if r[col] is not None]
        if not rows:
            return None
        values = schema.f64_from([r[col] for r in rows], schema.SAMPLE_FIELDS[field])
        block_n = schema.i32_from([r[2] for r in rows])
        host = schema.f64_from([r[3] for r in rows])
        device = schema.f64_from([r[4] for r in rows])
        stamped_rows = [r[5] is not None for r in rows]
        n_reconstructed = 0
        if all(stamped_rows):
            time_s = schema.f64_from([r[5] for r in rows])
        else:
            sensor = self.meta.sensor(location)
            rate = sensor.rate_hz if sensor is not None else None
            rebuilt = timebase.reconstruct_times(block_n, host, device, rate)
            row_n = np.array([r[1] for r in rows])
            has_stamp = np.repeat(np.array(stamped_rows), row_n)
            stamps = np.full(values.shape[0], np.nan)
            stamps[has_stamp] = schema.f64_from([r[5] for r in rows if r[5] is not None])
            time_s = timebase.align_to_stamped(rebuilt, stamps, has_stamp)
            n_reconstructed = int(np.count_nonzero(~has_stamp))
        return SampleStream(location, field, time_s, values, block_n, host, device, n_reconstructed)

    def recording(self, location: str) -> SensorRecording | None:
        """acc + gyro (+ mag) of one sensor on the session clock; None without acc and gyro.

        Streams that came in separate notifications (MetaWear acc and gyro) are interpolated
        onto the accelerometer's times over their common span.
        """
        acc = self.stream(location, "acc")
        gyr = self.stream(location, "gyro")
        if acc is None or gyr is None:
            return None
        mag = self.stream(location, "mag")
        t = acc.time_s
        keep = timebase.monotonic_mask(t)
        t, acc_v = t[keep], acc.values[keep]
        gyr_keep = timebase.monotonic_mask(gyr.time_s)
        gyr_t, gyr_v = gyr.time_s[gyr_keep], gyr.values[gyr_keep]
        if gyr_t.shape == t.shape and np.array_equal(gyr_t, t):
            mag_v = None
            if mag is not None and np.array_equal(mag.time_s, acc.time_s):
                mag_v = mag.values[keep]
            return SensorRecording(location, t, acc_v, gyr_v, mag_v)
        inside = (t >= gyr_t[0]) & (t <= gyr_t[-1])
        t, acc_v = t[inside], acc_v[inside]
        mag_out = None
        if mag is not None:
            mag_keep = timebase.monotonic_mask(mag.time_s)
            mag_t = mag.time_s[mag_keep]
            if mag_t.size >= 2 and mag_t[0] <= t[0] and mag_t[-1] >= t[-1]:
                mag_out = _resample(mag_t, mag.values[mag_keep], t)
        return SensorRecording(location, t, acc_v, _resample(gyr_t, gyr_v, t), mag_out)

    def recordings(self) -> dict[str, SensorRecording]:
        """Every sensor with acc and gyro, as `analyze` and export take them."""
        out: dict[str, SensorRecording] = {}
        for loc in self.locations():
            rec = self.recording(loc)
            if rec is not None and rec.n_samples > 0:
                out[loc] = rec
        return out

    # --- processor outputs -------------------------------------------------------------------

    def events(self) -> list[GaitEvent]:
        rows = self._conn.execute("SELECT time_s, side, event FROM events ORDER BY time_s, id")
        return [GaitEvent(float(t), side, event) for t, side, event in rows]

    def strides(self) -> list[Stride]:
        rows = self._conn.execute(
            f"SELECT {', '.join(STRIDE_COLUMNS)} FROM strides ORDER BY start_s, id"
        ).fetchall()
        out = []
        for row in rows:
            values: dict[str, Any] = {}
            for name, value in zip(STRIDE_COLUMNS, row, strict=True):
                if name == "side":
                    values[name] = value
                elif name == "quality":
                    values[name] = int(value or 0)
                else:
                    values[name] = _nan(value)  # SQLite stores NaN as NULL
            out.append(Stride(**values))
        return out

    def angles(self) -> AngleSeries | None:
        """The processor's angle chunks joined in time order; None if it stored none."""
        rows = self._conn.execute("SELECT names, time_s, data FROM angles ORDER BY id").fetchall()
        if not rows:
            return None
        names: list[str] = []
        for r in rows:
            names += [n for n in r[0].split(",") if n and n not in names]
        times = [schema.f64_from([r[1]]) for r in rows]
        t = np.concatenate(times)
        columns = {n: np.full(t.shape[0], np.nan) for n in names}
        at = 0
        for r, ts in zip(rows, times, strict=True):
            chunk_names = [n for n in r[0].split(",") if n]
            if chunk_names:
                data = schema.f64_from([r[2]], len(chunk_names))
                for k, n in enumerate(chunk_names):
                    columns[n][at : at + ts.shape[0]] = data[:, k]
            at += ts.shape[0]
        order = np.argsort(t, kind="stable")
        keep = timebase.monotonic_mask(t[order])
        idx = order[keep]
        return AngleSeries(t[idx], {n: c[idx] for n, c in columns.items()})

    def status(self) -> list[StatusRecord]:
        rows = self._conn.execute("SELECT time_s, location, payload FROM status ORDER BY id")
        return [StatusRecord(float(t), loc, json.loads(p)) for t, loc, p in rows]

    def session_events(self) -> list[SessionEvent]:
        rows = self._conn.execute(
            "SELECT time_s, event, detail FROM session_events ORDER BY time_s, id"
        )
        return [SessionEvent(_nan(t), e, d or "") for t, e, d in rows]
