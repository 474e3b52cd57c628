"""Commit threads shared by the open journals of the process: one per `JOURNALS_PER_THREAD`.

A live process may run dozens of sessions (one per athlete), each with its own journal. A thread
per journal costs CPU for nothing: each wakes on its own every interval and takes the
interpreter lock from the event loop at its own moment. A committer instead commits its
journals in one round per interval (the shortest any of them asks for, so none waits longer
than its own), and at once those whose owner waits in `flush()` or `close()`. Not one thread
for all: each SQLite call of a commit gives the interpreter lock up and, while the event loop is
busy, waits up to a switch interval (5 ms) to get it back, so one round over 30 journals could
outlast the commit interval; a few threads wait side by side. SQLite itself has no shared state
between the journals: they are separate files and connections.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from typing import Protocol

log = logging.getLogger(__name__)

JOURNALS_PER_THREAD = 8


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

    def load(self) -> int:
        """How many journals this thread commits."""
        with self._cond:
            return len(self._writers)

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
    except Exception:  # a writer bug must not stop the other journals' commits
        log.exception("journal commit failed")
        return False


_committers: list[JournalCommitter] = []
_pid = 0
_lock = threading.Lock()


def journal_committer() -> JournalCommitter:
    """A commit thread with room for one more journal (created when none has; again in a
    forked child, which has none of its parent's threads)."""
    global _pid
    with _lock:
        if _pid != os.getpid():
            _committers.clear()
            _pid = os.getpid()
        _committers[:] = [c for c in _committers if c.is_alive()]
        for committer in _committers:
            if committer.load() < JOURNALS_PER_THREAD:
                return committer
        committer = JournalCommitter()
        _committers.append(committer)
        return committer
