"""A bounded FIFO of write batches: a few in memory, the rest spilled to disk (store-and-forward).

While the database answers, batches pass through memory only. When it does not, the first
`memory_batches` wait in memory and every later one is written to its own file in the spool
folder (`<seq>-<lines>.<gz|lp>`, written to a temporary name then renamed, so a crash leaves
either the whole batch or nothing). Memory batches are always older than disk batches (a batch
goes to memory only while the disk part is empty), so popping memory first and then disk in
sequence order replays everything in the order it was written. `persist()` moves the memory
part to disk (on shutdown), and a new spool on the same folder resumes from the files left
by an earlier run.

The disk part is bounded by `max_bytes`: when full, the oldest files are dropped (counted in
`dropped_lines`), so a long outage loses the oldest data rather than stalling the pipeline.
Methods do blocking file I/O: call them from a worker thread (`asyncio.to_thread`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 512 * 1024 * 1024
DEFAULT_MEMORY_BATCHES = 4
_SUFFIXES = {True: ".gz", False: ".lp"}


@dataclass(frozen=True, slots=True)
class Batch:
    """One write request body: line protocol, gzip-compressed or not."""

    payload: bytes
    n_lines: int
    compressed: bool
    seq: int = -1  # assigned by the spool


@dataclass(frozen=True, slots=True)
class _DiskEntry:
    seq: int
    n_lines: int
    compressed: bool
    path: Path
    size: int


class BatchSpool:
    """FIFO of batches; `directory=None` keeps everything in memory (bounded the same way)."""

    def __init__(
        self,
        directory: Path | None,
        max_bytes: int = DEFAULT_MAX_BYTES,
        memory_batches: int = DEFAULT_MEMORY_BATCHES,
        fsync: bool = False,
    ) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.memory_batches = memory_batches
        self.fsync = fsync
        self.dropped_lines = 0
        self.dropped_batches = 0
        self._memory: deque[Batch] = deque()
        self._disk: deque[_DiskEntry] = deque()
        self._disk_bytes = 0
        self._memory_bytes = 0
        self._lock = threading.Lock()
        self._next_seq = 0
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)
            self._load_existing(directory)

    # --- state ---------------------------------------------------------------------------------
    def __len__(self) -> int:
        with self._lock:
            return len(self._memory) + len(self._disk)

    @property
    def n_lines(self) -> int:
        with self._lock:
            return sum(b.n_lines for b in self._memory) + sum(e.n_lines for e in self._disk)

    @property
    def last_seq(self) -> int:
        """Sequence number of the newest batch ever queued (−1 when none)."""
        with self._lock:
            return self._next_seq - 1

    @property
    def disk_batches(self) -> int:
        with self._lock:
            return len(self._disk)

    @property
    def disk_bytes(self) -> int:
        with self._lock:
            return self._disk_bytes

    # --- queue operations ----------------------------------------------------------------------
    def push(self, batch: Batch) -> Batch:
        """Append a batch (returns it with its sequence number)."""
        with self._lock:
            batch = Batch(batch.payload, batch.n_lines, batch.compressed, self._next_seq)
            self._next_seq += 1
            if not self._disk and len(self._memory) < self.memory_batches:
                self._memory.append(batch)
                self._memory_bytes += len(batch.payload)
                return batch
            if self.directory is None:
                self._memory.append(batch)
                self._memory_bytes += len(batch.payload)
                self._enforce_memory_bound()
                return batch
            self._make_room(len(batch.payload))
            if len(batch.payload) <= self.max_bytes:
                self._disk.append(self._write_file(batch))
            else:
                self._count_drop(batch.n_lines)
        return batch

    def peek(self) -> Batch | None:
        """The oldest batch, or None when empty (reads its file when it is on disk)."""
        with self._lock:
            if self._memory:
                return self._memory[0]
            while self._disk:
                entry = self._disk[0]
                try:
                    payload = entry.path.read_bytes()
                except OSError as exc:
                    log.error("spool file %s unreadable (%s); dropping it", entry.path, exc)
                    self._remove_disk_head()
                    self._count_drop(entry.n_lines)
                    continue
                return Batch(payload, entry.n_lines, entry.compressed, entry.seq)
            return None

    def pop(self, seq: int) -> None:
        """Remove the oldest batch once delivered (`seq` guards against popping another)."""
        with self._lock:
            if self._memory:
                if self._memory[0].seq == seq:
                    self._memory_bytes -= len(self._memory.popleft().payload)
                return
            if self._disk and self._disk[0].seq == seq:
                self._remove_disk_head()

    def persist(self) -> int:
        """Move the memory part to disk (shutdown); returns the number of batches moved."""
        if self.directory is None:
            return 0
        with self._lock:
            moved = list(self._memory)
            self._memory.clear()
            self._memory_bytes = 0
            entries = [self._write_file(b) for b in moved]
            self._disk.extendleft(reversed(entries))
            self._disk_bytes_recount()
            return len(entries)

    # --- internals -----------------------------------------------------------------------------
    def _load_existing(self, directory: Path) -> None:
        for leftover in directory.glob("*.tmp"):
            with contextlib.suppress(OSError):
                leftover.unlink()
        entries = []
        for path in directory.iterdir():
            parsed = _parse_name(path)
            if parsed is not None:
                seq, n_lines, compressed = parsed
                entries.append(_DiskEntry(seq, n_lines, compressed, path, path.stat().st_size))
        entries.sort(key=lambda e: e.seq)
        self._disk.extend(entries)
        self._disk_bytes_recount()
        if entries:
            self._next_seq = entries[-1].seq + 1
            log.info(
                "spool %s: %d batches (%d lines) left by an earlier run will be replayed",
                directory,
                len(entries),
                sum(e.n_lines for e in entries),
            )

    def _disk_bytes_recount(self) -> None:
        self._disk_bytes = sum(e.size for e in self._disk)

    def _write_file(self, batch: Batch) -> _DiskEntry:
        assert self.directory is not None
        name = f"{batch.seq:016d}-{batch.n_lines}{_SUFFIXES[batch.compressed]}"
        path = self.directory / name
        tmp = path.with_name(name + ".tmp")
        with tmp.open("wb") as fh:
            fh.write(batch.payload)
            if self.fsync:
                fh.flush()
                os.fsync(fh.fileno())
        tmp.replace(path)
        self._disk_bytes += len(batch.payload)
        return _DiskEntry(batch.seq, batch.n_lines, batch.compressed, path, len(batch.payload))

    def _remove_disk_head(self) -> None:
        entry = self._disk.popleft()
        self._disk_bytes -= entry.size
        with contextlib.suppress(FileNotFoundError):
            entry.path.unlink()

    def _make_room(self, incoming: int) -> None:
        while self._disk and self._disk_bytes + incoming > self.max_bytes:
            n_lines = self._disk[0].n_lines
            self._remove_disk_head()
            self._count_drop(n_lines)

    def _enforce_memory_bound(self) -> None:
        while len(self._memory) > 1 and self._memory_bytes > self.max_bytes:
            dropped = self._memory.popleft()
            self._memory_bytes -= len(dropped.payload)
            self._count_drop(dropped.n_lines)

    def _count_drop(self, n_lines: int) -> None:
        self.dropped_lines += n_lines
        self.dropped_batches += 1
        log.warning("spool full: dropped the oldest batch (%d lines)", n_lines)


def _parse_name(path: Path) -> tuple[int, int, bool] | None:
    suffix = path.suffix
    if suffix not in (".gz", ".lp"):
        return None
    seq_text, _, lines_text = path.stem.partition("-")
    if not (seq_text.isdigit() and lines_text.isdigit()):
        return None
    return int(seq_text), int(lines_text), suffix == ".gz"
