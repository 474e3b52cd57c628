"""The journal file: one SQLite database per session, WAL mode, arrays as little-endian BLOBs.

Samples are stored in *chunks*: the blocks of one sensor and one kind that arrived between two
commits, concatenated. Per-block facts (sample count, host receive time, device timestamp) stay
as small per-block arrays in the chunk, so nothing the codec produced is lost, while a one-hour
session is tens of thousands of rows instead of hundreds of thousands (fast reads).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from imu_stream.records import STRIDE_COLUMNS, FloatArray

FORMAT_NAME = "imu-stream-journal"
FORMAT_VERSION = 1
JOURNAL_FILENAME = "journal.sqlite"

# SampleBlock array fields in storage order, with their column count.
SAMPLE_FIELDS: dict[str, int] = {
    "acc": 3,
    "gyro": 3,
    "mag": 3,
    "quaternion": 4,
    "euler_deg": 3,
    "gravity": 3,
    "linear_acc": 3,
}

_STRIDE_SQL_COLUMNS = ", ".join(
    f"{c} TEXT" if c == "side" else f"{c} INTEGER" if c == "quality" else f"{c} REAL"
    for c in STRIDE_COLUMNS
)

DDL = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY,
    location TEXT NOT NULL,
    kind TEXT NOT NULL,
    resource TEXT,
    n_samples INTEGER NOT NULL,
    t_start_s REAL,
    t_end_s REAL,
    block_n BLOB NOT NULL,
    block_host_time_s BLOB NOT NULL,
    block_device_ms BLOB NOT NULL,
    time_s BLOB,
    {", ".join(f"{name} BLOB" for name in SAMPLE_FIELDS)}
);
CREATE INDEX IF NOT EXISTS chunks_by_location ON chunks (location, id);
CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY, time_s REAL, side TEXT, event TEXT);
CREATE TABLE IF NOT EXISTS strides (id INTEGER PRIMARY KEY, {_STRIDE_SQL_COLUMNS});
CREATE TABLE IF NOT EXISTS angles (id INTEGER PRIMARY KEY, names TEXT, time_s BLOB, data BLOB);
CREATE TABLE IF NOT EXISTS status (
    id INTEGER PRIMARY KEY, time_s REAL, location TEXT, payload TEXT
);
CREATE TABLE IF NOT EXISTS session_events (
    id INTEGER PRIMARY KEY, time_s REAL, event TEXT, detail TEXT
);
"""

CHUNK_COLUMNS: tuple[str, ...] = (
    "location",
    "kind",
    "resource",
    "n_samples",
    "t_start_s",
    "t_end_s",
    "block_n",
    "block_host_time_s",
    "block_device_ms",
    "time_s",
    *SAMPLE_FIELDS,
)
INSERT_CHUNK = (
    f"INSERT INTO chunks ({', '.join(CHUNK_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in CHUNK_COLUMNS)})"
)
INSERT_STRIDE = (
    f"INSERT INTO strides ({', '.join(STRIDE_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in STRIDE_COLUMNS)})"
)
INSERT_EVENT = "INSERT INTO events (time_s, side, event) VALUES (?, ?, ?)"
INSERT_ANGLES = "INSERT INTO angles (names, time_s, data) VALUES (?, ?, ?)"
INSERT_STATUS = "INSERT INTO status (time_s, location, payload) VALUES (?, ?, ?)"
INSERT_SESSION_EVENT = "INSERT INTO session_events (time_s, event, detail) VALUES (?, ?, ?)"
UPSERT_META = (
    "INSERT INTO meta (key, value) VALUES (?, ?) "
    "ON CONFLICT(key) DO UPDATE SET value = excluded.value"
)


def connect(path: Path, *, create: bool, durable: bool = False) -> sqlite3.Connection:
    """Open a journal. WAL + synchronous=NORMAL: a committed transaction survives the death of
    the writing process (kill -9); `durable` (FULL) also survives power loss, at some cost."""
    if not create and not path.exists():
        raise FileNotFoundError(path)
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=10.0)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
    if create:
        conn.executescript(DDL)
    return conn


def f64_blob(values: NDArray[np.floating] | NDArray[np.integer]) -> bytes:
    return np.ascontiguousarray(values, dtype="<f8").tobytes()


def i32_blob(values: NDArray[np.integer]) -> bytes:
    return np.ascontiguousarray(values, dtype="<i4").tobytes()


def f64_from(blobs: list[bytes], width: int | None = None) -> FloatArray:
    """Concatenate float64 BLOBs into one array, (n,) or (n, width): one join, one copy."""
    data = np.frombuffer(b"".join(blobs), dtype="<f8").astype(np.float64, copy=True)
    return data if width is None else data.reshape(-1, width)


def i32_from(blobs: list[bytes]) -> NDArray[np.int64]:
    return np.frombuffer(b"".join(blobs), dtype="<i4").astype(np.int64)
