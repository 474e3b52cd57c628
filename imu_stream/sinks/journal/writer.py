"""The journal writer: cheap appends from the event loop, commits from a thread every ≤ 0.25 s.

`append_block` only copies the block's arrays into an in-memory list under a lock (a few µs), so
the asyncio pipeline calls it directly, before anything else sees the block. A commit thread
(`committer.py`, shared with other open journals) swaps that list out and commits it in one
SQLite transaction every `flush_interval_s`; a commit is what survives a `kill -9`, so at most
one interval plus one commit of samples can be lost.
The journal never drops data: if a commit fails (disk full), the batch is kept and retried, and
`flush()` raises so the caller can tell the user.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import math
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from itertools import groupby
from operator import attrgetter
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from imu_stream.records import AngleSeries, FloatArray, GaitEvent, SampleBlock, Stride
from imu_stream.sinks.journal import schema
from imu_stream.sinks.journal.catalog import new_session_dir
from imu_stream.sinks.journal.committer import journal_committer
from imu_stream.sinks.journal.meta import SessionMeta, meta_value_json

DEFAULT_FLUSH_INTERVAL_S = 0.25
CLOSE_ATTEMPTS = 5  # commits tried at close before giving up (e.g. disk full)

# A block's sample arrays in storage order, in one call (the append runs for every block).
_sample_arrays = attrgetter(*schema.SAMPLE_FIELDS)
_SAMPLE_WIDTHS = tuple(schema.SAMPLE_FIELDS.items())


class JournalError(RuntimeError):
    """The journal could not be written; the message is one line for the user."""


class _Pending(NamedTuple):
    location: str
    kind: str
    resource: str | None
    n: int
    host_time_s: float
    device_ms: float
    time_s: FloatArray | None
    arrays: tuple[FloatArray | None, ...]  # one per schema.SAMPLE_FIELDS, None where absent


@dataclass(slots=True)
class JournalStats:
    """Counters for the pipeline's per-stage report."""

    blocks_appended: int = 0
    samples_appended: int = 0
    blocks_committed: int = 0
    samples_committed: int = 0
    commits: int = 0
    pending_blocks: int = 0
    last_commit_ms: float = 0.0
    max_commit_ms: float = 0.0
    failed_commits: int = 0


def _chunk_rows(blocks: list[_Pending]) -> list[tuple[object, ...]]:
    """Concatenate the blocks of one (sensor, kind, resource, fields, stamped) into one row."""
    groups: dict[tuple[str, str, str | None, tuple[bool, ...], bool], list[_Pending]] = {}
    for b in blocks:
        key = (
            b.location,
            b.kind,
            b.resource,
            tuple(a is not None for a in b.arrays),
            b.time_s is not None,
        )
        groups.setdefault(key, []).append(b)
    rows: list[tuple[object, ...]] = []
    for (location, kind, resource, present, stamped), group in groups.items():
        host = np.array([b.host_time_s for b in group], dtype=np.float64)
        time_blob: bytes | None = None
        if stamped:
            times = np.concatenate([b.time_s for b in group if b.time_s is not None])
            time_blob = schema.f64_blob(times)
            t_start, t_end = float(times[0]), float(times[-1])
        else:
            finite = host[np.isfinite(host)]
            t_start = float(finite[0]) if finite.size else math.nan
            t_end = float(finite[-1]) if finite.size else math.nan
        arrays: list[bytes | None] = []
        for i, is_present in enumerate(present):
            parts = [a for b in group if (a := b.arrays[i]) is not None]
            arrays.append(schema.f64_blob(np.concatenate(parts)) if is_present else None)
        rows.append(
            (
                location,
                kind,
                resource,
                sum(b.n for b in group),
                None if math.isnan(t_start) else t_start,
                None if math.isnan(t_end) else t_end,
                schema.i32_blob(np.array([b.n for b in group])),
                schema.f64_blob(host),
                schema.f64_blob(np.array([b.device_ms for b in group], dtype=np.float64)),
                time_blob,
                *arrays,
            )
        )
    return rows


class JournalWriter:
    """Append-only writer of one session's journal (`<session_dir>/journal.sqlite`).

    Thread-safe; every method except `flush`/`close` returns at once. Times (`time_s`) are
    seconds on the session clock, whose zero is `meta.start_unix_s`.
    """

    def __init__(
        self,
        session_dir: Path,
        meta: SessionMeta,
        *,
        flush_interval_s: float = DEFAULT_FLUSH_INTERVAL_S,
        durable: bool = False,
    ) -> None:
        if not 0.0 < flush_interval_s <= 0.5:
            raise ValueError("flush_interval_s must be in (0, 0.5] s (crash loss bound)")
        self.session_dir = session_dir
        self.path = session_dir / schema.JOURNAL_FILENAME
        if self.path.exists():
            raise JournalError(f"{self.path}: a journal already exists (sessions are append-once)")
        session_dir.mkdir(parents=True, exist_ok=True)
        if not meta.session_id:
            meta.session_id = session_dir.name
        if not meta.start_unix_s:
            meta.start_unix_s = time.time()
        self.meta = meta
        self.flush_interval_s = flush_interval_s
        self._conn = schema.connect(self.path, create=True, durable=durable)
        # Metadata first and synchronously: even a session killed at once is identifiable.
        items = {
            "journal_format": json.dumps(schema.FORMAT_NAME),
            "journal_format_version": json.dumps(schema.FORMAT_VERSION),
            **meta.to_items(),
        }
        with self._conn:
            self._conn.executemany(schema.UPSERT_META, items.items())
        self._lock = threading.Lock()
        self._committed = threading.Condition()
        self._blocks: list[_Pending] = []
        self._ops: list[tuple[str, tuple[object, ...]]] = []
        self._meta_updates: dict[str, str] = {}
        self._enqueued = 0  # generation counters: flush() waits until committed ≥ enqueued
        self._committed_gen = 0
        self._closing = False
        self._closed = False
        self._close_attempts = 0
        self._finished = threading.Event()  # the committer is done with this journal
        self.error: BaseException | None = None
        self.stats = JournalStats()
        self._committer = journal_committer()
        self._committer.add(self)
        atexit.register(self.close)

    @classmethod
    def create(
        cls,
        data_dir: Path,
        meta: SessionMeta,
        *,
        flush_interval_s: float = DEFAULT_FLUSH_INTERVAL_S,
        durable: bool = False,
    ) -> JournalWriter:
        """Start a new session under `data_dir` with a fresh id (`YYYYmmdd-HHMMSS-athlete`)."""
        if not meta.start_unix_s:
            meta.start_unix_s = time.time()
        session_dir = new_session_dir(data_dir, meta.athlete, meta.start_unix_s)
        meta.session_id = session_dir.name
        return cls(session_dir, meta, flush_interval_s=flush_interval_s, durable=durable)

    @property
    def session_id(self) -> str:
        return self.meta.session_id

    # --- appends (cheap, any thread, never block on I/O) ------------------------------------

    def append_block(
        self,
        block: SampleBlock,
        location: str | None = None,
        time_s: FloatArray | None = None,
    ) -> None:
        """Journal one decoded block. `location` defaults to `block.location`; `time_s` are the
        session-clock times of its samples when the caller already knows them (simulator,
        replay, or a clock model applied first); without them the reader reconstructs times
        from the device timestamps and host receive times stored with every block."""
        loc = location or block.location
        if not loc:
            raise ValueError("append_block needs a location (argument or block.location)")
        # One pass over the fields (this runs for every block of every sensor): the sample
        # count is the first present array's, as `SampleBlock.n_samples` says.
        n = 0
        arrays: list[FloatArray | None] = []
        for arr, (name, width) in zip(_sample_arrays(block), _SAMPLE_WIDTHS, strict=True):
            if arr is not None:
                # Copy: the journal owns its data even if the producer reuses its buffers.
                arr = np.array(arr, dtype=np.float64)
                if not n:
                    n = arr.shape[0]
                    if n == 0:
                        return
                if arr.ndim != 2 or arr.shape[1] != width:
                    arr = arr.reshape(-1, width)
                if arr.shape[0] != n:
                    raise ValueError(f"block {name} has {arr.shape[0]} samples, expected {n}")
            arrays.append(arr)
        if not n:
            return
        stamps = None
        if time_s is not None:
            stamps = np.array(time_s, dtype=np.float64)
            if stamps.ndim != 1:
                stamps = stamps.reshape(-1)
            if stamps.shape[0] != n:
                raise ValueError(f"time_s has {stamps.shape[0]} values, expected {n}")
        host, device = block.host_time_s, block.device_timestamp_ms
        pending = _Pending(
            loc,
            block.kind,
            block.resource,
            n,
            math.nan if host is None else float(host),
            math.nan if device is None else float(device),
            stamps,
            tuple(arrays),
        )
        with self._lock:
            self._check_open()
            self._blocks.append(pending)
            self._enqueued += 1
            self.stats.blocks_appended += 1
            self.stats.samples_appended += n

    def add_events(self, events: Iterable[GaitEvent]) -> None:
        self._enqueue_many(schema.INSERT_EVENT, [(e.time_s, e.side, e.event) for e in events])

    def add_strides(self, strides: Iterable[Stride]) -> None:
        rows = [tuple(s.as_row().values()) for s in strides]
        self._enqueue_many(schema.INSERT_STRIDE, rows)

    def add_angles(self, angles: AngleSeries) -> None:
        """A chunk of continuous angles (the processor's output, any downsampling)."""
        if angles.time_s.size == 0:
            return
        names = angles.column_names()
        data = np.column_stack([angles.columns[c] for c in names]) if names else np.empty(0)
        row = (",".join(names), schema.f64_blob(angles.time_s), schema.f64_blob(data))
        self._enqueue_many(schema.INSERT_ANGLES, [row])

    def add_status(self, location: str, time_s: float, **fields: float | bool | str) -> None:
        """Sensor status (battery_pct, packet_loss_pct, rate_hz, connected, clock_offset_ms…)."""
        self._enqueue_many(schema.INSERT_STATUS, [(time_s, location, json.dumps(fields))])

    def add_session_event(self, event: str, time_s: float, detail: str = "") -> None:
        """start, calibrated, stop, gap, … (the `session_event` measurement of DESIGN.md §5)."""
        self._enqueue_many(schema.INSERT_SESSION_EVENT, [(time_s, event, detail)])

    def update_meta(self, **changes: Any) -> None:
        """Change metadata fields (e.g. calibration=…, notes=…); committed with the next batch."""
        known = {f.name for f in fields(SessionMeta)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ValueError(f"unknown session metadata field(s): {', '.join(unknown)}")
        encoded = {k: meta_value_json(v) for k, v in changes.items()}
        with self._lock:
            self._check_open()
            for key, value in changes.items():
                setattr(self.meta, key, value)
            self._meta_updates.update(encoded)
            self._enqueued += 1

    def set_calibration(self, location: str, calibration: Mapping[str, Any]) -> None:
        """Store one sensor's calibration (mounting rotation, biases, …) in the metadata."""
        merged = {**self.meta.calibration, location: dict(calibration)}
        self.update_meta(calibration=merged)

    def _enqueue_many(self, sql: str, rows: Sequence[tuple[object, ...]]) -> None:
        if not rows:
            return
        with self._lock:
            self._check_open()
            self._ops.extend((sql, r) for r in rows)
            self._enqueued += 1

    def _check_open(self) -> None:
        if self._closing:
            raise JournalError(f"journal {self.session_id} is closed")

    # --- commits ------------------------------------------------------------------------------

    def _commit_pending(self) -> None:
        with self._lock:
            blocks, self._blocks = self._blocks, []
            ops, self._ops = self._ops, []
            meta, self._meta_updates = self._meta_updates, {}
            generation = self._enqueued
        if blocks or ops or meta:
            started = time.perf_counter()
            try:
                rows = _chunk_rows(blocks)
                self._conn.execute("BEGIN")
                self._conn.executemany(schema.INSERT_CHUNK, rows)
                for sql, group in groupby(ops, key=lambda op: op[0]):
                    self._conn.executemany(sql, [params for _, params in group])
                self._conn.executemany(schema.UPSERT_META, meta.items())
                self._conn.execute("COMMIT")
            except Exception as exc:  # keep everything for the next attempt, never drop
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                with self._lock:
                    self._blocks[:0] = blocks
                    self._ops[:0] = ops
                    self._meta_updates = {**meta, **self._meta_updates}
                    self.stats.failed_commits += 1
                self.error = exc
                return
            elapsed_ms = (time.perf_counter() - started) * 1e3
            self.error = None
            with self._lock:
                st = self.stats
                st.commits += 1
                st.blocks_committed += len(blocks)
                st.samples_committed += sum(b.n for b in blocks)
                st.last_commit_ms = elapsed_ms
                st.max_commit_ms = max(st.max_commit_ms, elapsed_ms)
        with self._committed:
            self._committed_gen = generation
            self._committed.notify_all()

    def commit_turn(self) -> bool:
        """The committer's call, every interval and on `flush()`/`close()`: commit what is
        pending; True when the journal is closing and done with (committed, or failing at
        close after `CLOSE_ATTEMPTS`: the next ones come an interval apart)."""
        if self._finished.is_set():
            return True
        stopping = self._closing
        self._commit_pending()
        if not stopping:
            return False
        self._close_attempts += 1
        if self.error is None or self._close_attempts >= CLOSE_ATTEMPTS:
            self._finished.set()
            return True
        return False

    def flush(self, timeout_s: float = 10.0) -> None:
        """Block until everything appended so far is committed (bounded by `timeout_s`)."""
        with self._lock:
            target = self._enqueued
        deadline = time.monotonic() + timeout_s
        with self._committed:
            while self._committed_gen < target:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._committer.is_alive():
                    break
                self._committer.wake(self)
                self._committed.wait(min(remaining, self.flush_interval_s))
        if self._committed_gen < target:
            reason = f": {self.error}" if self.error is not None else ""
            raise JournalError(f"journal {self.session_id}: could not commit{reason}")

    def pending_blocks(self) -> int:
        with self._lock:
            return len(self._blocks)

    def close(self) -> None:
        """Commit everything, mark the session cleanly ended, fold the WAL into the file."""
        if self._closed:
            return
        self.update_meta(end_unix_s=time.time())
        with self._lock:
            self._closing = True
        self._committer.wake(self)
        self._finished.wait(timeout=30.0)
        self._closed = True
        atexit.unregister(self.close)
        failed = self.error
        if failed is None:
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._conn.close()
        if failed is not None:
            raise JournalError(f"journal {self.session_id}: last commit failed: {failed}")

    async def aflush(self) -> None:
        await asyncio.to_thread(self.flush)

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)

    def __enter__(self) -> JournalWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
