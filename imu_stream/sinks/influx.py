"""Asynchronous InfluxDB writer over the v1 HTTP write API, with store-and-forward.

`POST /write?db=…&rp=…&precision=ms` is understood by InfluxDB 1.x, 2.x (with a DBRP mapping)
and 3 Core, so one writer serves all of them (`influxdb-client` cannot talk to 1.x < 1.8).

How it behaves:

- `write(lines)` never waits: it appends encoded line protocol to a buffer and returns. A batcher
  task cuts the buffer into batches of `batch_lines` lines (or whatever is there every
  `flush_interval_s`), gzips them in a worker thread and queues them in a `BatchSpool`.
- A sender task posts the oldest queued batch. 204 → done. 400 (a partial write: bad line or
  field type conflict; InfluxDB wrote the rest) → logged with the offending line, counted in
  `stats.lines_rejected`, never retried, so one bad point cannot block the stream. Connection
  errors, timeouts, 429, 5xx, and 401/403/404 (credentials or database not there *yet*) →
  the batch stays queued and is retried with exponential backoff (`backoff_initial_s` doubling
  to `backoff_max_s`, with jitter).
- While the server is away the queue spills to disk (`spool_dir`), bounded by
  `spool_max_bytes` (oldest dropped first), and is replayed in order when it answers again.
  A retried batch that the server had in fact stored is harmless: the same point (series and
  timestamp) written twice is one point in InfluxDB.
- `close()` delivers what it can within a timeout and leaves the rest in the spool folder,
  which the next writer on that folder replays first.

Auth: `username`/`password` as the `u`/`p` query parameters (or HTTP basic with
`basic_auth=True`), or `token` as `Authorization: Token …` (2.x, 3.x).
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import logging
import os
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import numpy as np

from imu_stream.backoff import Backoff
from imu_stream.records import AngleSeries, Stride
from imu_stream.sinks.influx_schema import (
    SeriesTags,
    angle_lines,
    sensor_lines,
    session_event_lines,
    stride_lines,
)
from imu_stream.sinks.journal.meta import SessionEvent, StatusRecord
from imu_stream.sinks.spool import DEFAULT_MAX_BYTES, Batch, BatchSpool

log = logging.getLogger(__name__)

ENV_PREFIX = "IMU_STREAM_INFLUX_"
GZIP_LEVEL = 1  # fast; line protocol still shrinks ~8×
_UNPARSABLE = re.compile(r"unable to parse '(.*?)': ")


@dataclass(frozen=True, slots=True)
class InfluxConfig:
    """Where and how to write. `from_env`/`from_mapping` fill it from the environment or a
    `[influx]` table of session.toml; a URL may carry `user:password@`."""

    url: str = "http://127.0.0.1:8086"
    database: str = "imu_stream"
    retention_policy: str | None = None
    username: str | None = None
    password: str | None = None
    token: str | None = None
    basic_auth: bool = False
    create_database: bool = False
    batch_lines: int = 5000
    flush_interval_s: float = 1.0
    gzip: bool = True
    timeout_s: float = 10.0
    spool_dir: Path | None = None
    spool_max_bytes: int = DEFAULT_MAX_BYTES
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 10.0

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"InfluxDB URL must be http(s)://host[:port], got {self.url!r}")
        if parts.username is not None:
            # Credentials in the URL: move them to the fields, keep the URL clean for logs.
            netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
            object.__setattr__(self, "url", urlunsplit(parts._replace(netloc=netloc)))
            if self.username is None:
                object.__setattr__(self, "username", parts.username)
            if self.password is None and parts.password is not None:
                object.__setattr__(self, "password", parts.password)
        if self.batch_lines < 1:
            raise ValueError("batch_lines must be ≥ 1")

    @classmethod
    def from_mapping(
        cls, values: Mapping[str, Any], base: InfluxConfig | None = None
    ) -> InfluxConfig:
        """Keys as the field names (`db` also accepted for `database`); unknown keys rejected."""
        known = set(cls.__dataclass_fields__)
        changes: dict[str, Any] = {}
        for key, value in values.items():
            name = "database" if key in ("db", "influx_db") else key
            if name not in known:
                raise ValueError(f"unknown InfluxDB setting {key!r}")
            changes[name] = value
        if "spool_dir" in changes and changes["spool_dir"] is not None:
            changes["spool_dir"] = Path(changes["spool_dir"])
        for name in ("batch_lines", "spool_max_bytes"):
            if name in changes:
                changes[name] = int(changes[name])
        for name in ("flush_interval_s", "timeout_s", "backoff_initial_s", "backoff_max_s"):
            if name in changes:
                changes[name] = float(changes[name])
        for name in ("gzip", "basic_auth", "create_database"):
            if name in changes and isinstance(changes[name], str):
                changes[name] = changes[name].strip().lower() in ("1", "true", "yes", "on")
        return replace(base or cls(), **changes)

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, base: InfluxConfig | None = None
    ) -> InfluxConfig:
        """IMU_STREAM_INFLUX_URL, _DB, _RP, _USER, _PASSWORD, _TOKEN, _SPOOL_DIR, _CREATE_DB."""
        env = os.environ if environ is None else environ
        names = {
            "URL": "url",
            "DB": "database",
            "RP": "retention_policy",
            "USER": "username",
            "PASSWORD": "password",
            "TOKEN": "token",
            "SPOOL_DIR": "spool_dir",
            "CREATE_DB": "create_database",
        }
        values = {
            field: env[ENV_PREFIX + key] for key, field in names.items() if ENV_PREFIX + key in env
        }
        return cls.from_mapping(values, base)


@dataclass(slots=True)
class WriterStats:
    """Counters for the pipeline's status line and for tests."""

    lines_in: int = 0  # handed to write()
    lines_written: int = 0  # in batches the server accepted (204 or partial 400)
    rejections: int = 0  # 400 answers: lines InfluxDB refused for good (logged)
    lines_dropped: int = 0  # lost to a full spool
    batches_sent: int = 0
    retries: int = 0
    connected: bool = False  # the last request reached the server
    last_error: str = ""
    rejected_lines: list[str] = field(default_factory=list)  # the last few offending lines


class InfluxWriter:
    """Buffered, batching, retrying writer; use as `async with InfluxWriter(cfg) as w:`."""

    def __init__(self, config: InfluxConfig, client: httpx.AsyncClient | None = None) -> None:
        self.config = config
        self.stats = WriterStats()
        self._client = client
        self._own_client = client is None
        self._buffer: list[bytes] = []
        self._buffer_lines = 0
        self._spool = BatchSpool(config.spool_dir, max_bytes=config.spool_max_bytes)
        self._wake_batcher = asyncio.Event()
        self._cut_lock = asyncio.Lock()
        self._wake_sender = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False
        self._closed = False
        self._database_ready = not config.create_database
        self._backoff = Backoff(config.backoff_initial_s, config.backoff_max_s)
        self._outage_logged = False
        self._delivered_seq = -1  # highest batch sequence number delivered
        # Highest batch sequence number queued, including batches left by an earlier run.
        self._enqueued_seq = self._spool.last_seq

    # --- lifecycle -----------------------------------------------------------------------------
    async def start(self) -> None:
        if self._tasks:
            return
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.config.timeout_s)
        self._tasks = [
            asyncio.create_task(self._batcher(), name="influx-batcher"),
            asyncio.create_task(self._sender(), name="influx-sender"),
        ]

    async def __aenter__(self) -> InfluxWriter:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self, timeout_s: float = 5.0) -> None:
        """Deliver what can be delivered within `timeout_s`; keep the rest in the spool."""
        if self._closed:
            return
        await self.flush(timeout_s)
        self._closing = True
        self._wake_batcher.set()
        self._wake_sender.set()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        # Whatever write() still holds goes to the spool with the rest.
        await self._cut_batches(final=True)
        undelivered = self._spool.n_lines
        if undelivered:
            moved = await asyncio.to_thread(self._spool.persist)
            if self.config.spool_dir is not None:
                log.warning(
                    "InfluxDB writer closed with %d lines undelivered; kept in %s (%d batches "
                    "moved from memory) for the next run",
                    undelivered,
                    self.config.spool_dir,
                    moved,
                )
            else:
                log.warning(
                    "InfluxDB writer closed with %d lines undelivered (no spool_dir: lost)",
                    undelivered,
                )
        if self._own_client and self._client is not None:
            await self._client.aclose()
        self._closed = True

    # --- the caller's side (never waits) -------------------------------------------------------
    def write(self, lines: bytes) -> None:
        """Queue line protocol (newline-terminated lines); returns at once."""
        if self._closed:
            raise RuntimeError("InfluxWriter is closed")
        if not lines:
            return
        if not lines.endswith(b"\n"):
            lines += b"\n"
        n = lines.count(b"\n")
        self._buffer.append(lines)
        self._buffer_lines += n
        self.stats.lines_in += n
        if self._buffer_lines >= self.config.batch_lines:
            self._wake_batcher.set()

    def write_strides(self, strides: Sequence[Stride], tags: SeriesTags) -> None:
        self.write(stride_lines(strides, tags))

    def write_angles(self, series: AngleSeries, tags: SeriesTags) -> None:
        self.write(angle_lines(series, tags))

    def write_status(self, records: Sequence[StatusRecord], tags: SeriesTags) -> None:
        self.write(sensor_lines(records, tags))

    def write_session_events(self, events: Sequence[SessionEvent], tags: SeriesTags) -> None:
        self.write(session_event_lines(events, tags))

    @property
    def pending_lines(self) -> int:
        """Lines handed in but not yet delivered (buffered, queued or spooled)."""
        return self._buffer_lines + self._spool.n_lines

    @property
    def spooled_batches_on_disk(self) -> int:
        return self._spool.disk_batches

    async def flush(self, timeout_s: float | None = None) -> bool:
        """Wait until everything written so far is delivered; False on timeout."""
        await self._cut_batches(final=True)
        target = self._enqueued_seq
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        self._wake_sender.set()
        while self._delivered_seq < target and len(self._spool) > 0:
            if not self._tasks:
                return False
            if deadline is not None and time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.02)
        return True

    # --- batching ------------------------------------------------------------------------------
    async def _batcher(self) -> None:
        interval = self.config.flush_interval_s
        last_full_cut = time.monotonic()
        while not self._closing:
            timeout = max(0.0, last_full_cut + interval - time.monotonic())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake_batcher.wait(), timeout)
            self._wake_batcher.clear()
            # Full batches as soon as they are full; the rest once per flush interval.
            final = time.monotonic() >= last_full_cut + interval
            await self._cut_batches(final)
            if final:
                last_full_cut = time.monotonic()

    async def _cut_batches(self, final: bool) -> None:
        """Move the buffer into the spool as batches of ≤ batch_lines lines; without `final`,
        a partial last batch stays in the buffer."""
        async with self._cut_lock:  # one cut at a time keeps the batches in write order
            if not self._buffer:
                return
            data = b"".join(self._buffer)
            chunks = _split_lines(data, self.config.batch_lines)
            if not final and chunks and chunks[-1][1] < self.config.batch_lines:
                rest, rest_lines = chunks.pop()
                self._buffer = [rest]
                self._buffer_lines = rest_lines
            else:
                self._buffer = []
                self._buffer_lines = 0
            for chunk, n_lines in chunks:
                if self.config.gzip:
                    payload = await asyncio.to_thread(gzip.compress, chunk, GZIP_LEVEL)
                else:
                    payload = chunk
                batch = Batch(payload, n_lines, self.config.gzip)
                queued = await asyncio.to_thread(self._push, batch)
                self._enqueued_seq = queued.seq
            if chunks:
                self._wake_sender.set()

    def _push(self, batch: Batch) -> Batch:
        dropped_before = self._spool.dropped_lines
        queued = self._spool.push(batch)
        self.stats.lines_dropped += self._spool.dropped_lines - dropped_before
        return queued

    # --- sending -------------------------------------------------------------------------------
    async def _sender(self) -> None:
        while not self._closing:
            batch = await asyncio.to_thread(self._spool.peek)
            if batch is None:
                self._wake_sender.clear()
                await self._wake_sender.wait()
                continue
            outcome = await self._send(batch)
            if outcome == "retry":
                self.stats.retries += 1
                await self._backoff.wait()
                continue
            self._backoff.reset()
            await asyncio.to_thread(self._spool.pop, batch.seq)
            self._delivered_seq = max(self._delivered_seq, batch.seq)

    def _auth(self) -> tuple[dict[str, str], dict[str, str], httpx.BasicAuth | None]:
        params: dict[str, str] = {}
        headers: dict[str, str] = {}
        basic = None
        cfg = self.config
        if cfg.token:
            headers["Authorization"] = f"Token {cfg.token}"
        elif cfg.username is not None:
            if cfg.basic_auth:
                basic = httpx.BasicAuth(cfg.username, cfg.password or "")
            else:
                params["u"] = cfg.username
                params["p"] = cfg.password or ""
        return params, headers, basic

    async def create_database(self) -> None:
        """`CREATE DATABASE` (idempotent); raises httpx errors / RuntimeError on failure."""
        assert self._client is not None, "start() first"
        params, headers, basic = self._auth()
        params["q"] = f'CREATE DATABASE "{_quote_ident(self.config.database)}"'
        resp = await self._client.post(
            f"{self.config.url}/query",
            params=params,
            headers=headers,
            auth=basic or httpx.USE_CLIENT_DEFAULT,
        )
        if resp.status_code != 200 or "error" in resp.text:
            raise RuntimeError(f"CREATE DATABASE answered {resp.status_code}: {resp.text[:200]}")

    async def _send(self, batch: Batch) -> str:
        """'ok', 'rejected' (some lines refused for good, the rest stored) or 'retry'."""
        assert self._client is not None
        try:
            if not self._database_ready:
                await self.create_database()
                self._database_ready = True
            params, headers, basic = self._auth()
            params.update({"db": self.config.database, "precision": "ms"})
            if self.config.retention_policy:
                params["rp"] = self.config.retention_policy
            headers["Content-Type"] = "text/plain; charset=utf-8"
            if batch.compressed:
                headers["Content-Encoding"] = "gzip"
            resp = await self._client.post(
                f"{self.config.url}/write",
                params=params,
                headers=headers,
                content=batch.payload,
                auth=basic or httpx.USE_CLIENT_DEFAULT,
            )
        except (httpx.HTTPError, RuntimeError, OSError) as exc:
            self._note_failure(f"{type(exc).__name__}: {exc}", reachable=False)
            return "retry"
        status = resp.status_code
        if status == 204:
            self._note_success(batch)
            return "ok"
        if status in (400, 413):
            message = _error_message(resp)
            if message.startswith("partial write") or batch.n_lines == 1:
                # InfluxDB stored every other line of the batch.
                self._note_success(batch)
                self._log_rejection(batch, message)
                return "rejected"
            # The whole batch was refused (a field type conflict inside one batch, or too
            # large): split it until the offending lines are alone, so the rest gets stored.
            return await self._bisect(batch)
        if status == 404 and self.config.create_database:
            self._database_ready = False
        self._note_failure(f"HTTP {status}: {resp.text[:200]}", reachable=True)
        return "retry"

    async def _bisect(self, batch: Batch) -> str:
        data = batch.payload
        if batch.compressed:
            data = await asyncio.to_thread(gzip.decompress, data)
        outcome = "ok"
        for chunk, n_lines in _split_lines(data, (batch.n_lines + 1) // 2):
            part = await self._send(Batch(chunk, n_lines, compressed=False))
            if part == "retry":
                return "retry"  # the whole batch again later: rewriting stored points is harmless
            if part == "rejected":
                outcome = "rejected"
        return outcome

    def _note_success(self, batch: Batch) -> None:
        self.stats.batches_sent += 1
        self.stats.lines_written += batch.n_lines
        self.stats.connected = True
        if self._outage_logged:
            log.warning(
                "InfluxDB at %s answers again; replaying %d queued lines",
                self.config.url,
                self._spool.n_lines,
            )
            self._outage_logged = False

    def _note_failure(self, message: str, reachable: bool) -> None:
        self.stats.connected = reachable
        self.stats.last_error = message
        if not self._outage_logged:
            log.warning(
                "InfluxDB write to %s failed (%s); spooling and retrying with backoff",
                self.config.url,
                message,
            )
            self._outage_logged = True
        else:
            log.debug("InfluxDB write still failing: %s", message)

    def _log_rejection(self, batch: Batch, message: str) -> None:
        self.stats.rejections += 1
        self.stats.last_error = message[:500]
        match = _UNPARSABLE.search(message)
        offending = match.group(1) if match else None
        if offending is None and batch.n_lines == 1 and not batch.compressed:
            offending = batch.payload.decode(errors="replace").rstrip("\n")
        if offending is not None:
            self.stats.rejected_lines = [*self.stats.rejected_lines[-9:], offending]
            log.error("InfluxDB rejected a line (%s): %s", message[:300], offending)
        else:
            log.error("InfluxDB partial write of a %d-line batch: %s", batch.n_lines, message[:500])


def _error_message(resp: httpx.Response) -> str:
    try:
        return str(json.loads(resp.text).get("error", resp.text))
    except (ValueError, AttributeError):
        return resp.text


def _quote_ident(name: str) -> str:
    return name.replace("\\", "\\\\").replace('"', '\\"')


def _split_lines(data: bytes, max_lines: int) -> list[tuple[bytes, int]]:
    """Split newline-terminated lines into chunks of ≤ max_lines lines (vectorized search)."""
    newlines = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 0x0A)
    n = int(newlines.shape[0])
    if n <= max_lines:
        return [(data, n)] if n else []
    chunks = []
    start = 0
    for first in range(0, n, max_lines):
        last = min(first + max_lines, n) - 1
        end = int(newlines[last]) + 1
        chunks.append((data[start:end], last - first + 1))
        start = end
    return chunks
