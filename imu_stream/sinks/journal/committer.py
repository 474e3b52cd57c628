"""One commit thread for every open journal of the process.

A live process may run dozens of sessions (one per athlete), each with its own journal. A thread
per journal costs CPU for nothing: each wakes on its own every interval and takes the
interpreter lock from the event loop at its own moment. This thread instead commits all of
them in one round per interval (the shortest any open journal asks for, so none waits longer
than its own), and at once those whose owner waits in `flush()` or `close()`. SQLite itself
has no shared state between the journals: they are separate files and connections.
"""

from __future__ import annotations

import math
import os
import threading
import time
from typing import Protocol


class Committable(Protocol):
    """What the committer needs from a journal writer."""

    flush_interval_s: float

    def commit_turn(self) -> bool:
        """Commit what is pending; True once the writer is done (closed) and leaves."""
        ...


class JournalCommitter:
    """Commits the registered writers every round, and urgent ones at once."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._writers: list[Committable] = []
        self._urgent: list[Committable] = []
        self._thread = threading.Thread(target=self._run, name="journal-commit", daemon=True)
        self._thread.start()

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def add(self, writer: Committable) -> None:
        with self._cond:
            self._writers.append(writer)
            self._cond.notify()

    def wake(self, writer: Committable) -> None:
        """Commit this writer now (a `flush()` or `close()` is waiting for it)."""
        with self._cond:
            if writer not in self._urgent:
                self._urgent.append(writer)
            self._cond.notify()

    def _run(self) -> None:
        last_round = -math.inf
        while True:
            with self._cond:
                while True:
                    tick = min((w.flush_interval_s for w in self._writers), default=math.inf)
                    wait = last_round + tick - time.monotonic()
                    if self._urgent or (self._writers and wait <= 0):
                        break
                    self._cond.wait(None if math.isinf(wait) else wait)
                if wait <= 0:
                    last_round = time.monotonic()
                    turn = list(self._writers)
                else:
                    turn = list(self._urgent)
                self._urgent.clear()
            done = [w for w in turn if _commit(w)]
            if done:
                with self._cond:
                    self._writers = [w for w in self._writers if w not in done]


def _commit(writer: Committable) -> bool:
    try:
        return writer.commit_turn()
    except Exception:  # a writer bug must not stop every other journal's commits
        return False


_committer: JournalCommitter | None = None
_pid = 0
_lock = threading.Lock()


def journal_committer() -> JournalCommitter:
    """The process's committer (created on first use, again in a forked child)."""
    global _committer, _pid
    with _lock:
        if _committer is None or _pid != os.getpid() or not _committer.is_alive():
            _committer = JournalCommitter()
            _pid = os.getpid()
        return _committer
