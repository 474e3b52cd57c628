"""Process-wide parts of live processing: the core's worker thread, and the garbage collector.

Every pipeline of the process shares one worker thread for the signal core's *long* steps: the
updates before calibration (one of them calibrates and processes the whole backlog, ≈ 0.5 s of
CPU) and the final `finish()`. More threads would not compute faster — the interpreter
lock lets one run at a time — but each would take turns with the event loop, which does the
ingestion and the steady updates of every athlete already calibrated. When many athletes start
together, their calibrations queue here, first come first served. A sink's own `to_thread` I/O
never waits behind a calibration (it uses asyncio's default pool).
"""

from __future__ import annotations

import asyncio
import gc
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


class CoreWorker:
    """One thread that runs long core steps in turn."""

    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="imu-core")

    async def run(self, step: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, step)


_worker: CoreWorker | None = None
_lock = threading.Lock()
_gc_frozen = False
_gc_frozen_warm = False


def core_worker() -> CoreWorker:
    """The process's core worker (created on first use)."""
    global _worker
    with _lock:
        if _worker is None:
            _worker = CoreWorker()
        return _worker


def freeze_startup_objects() -> None:
    """Exclude what exists before the first session (imported modules: numba, scipy, …; ≈ 10⁵
    objects) from the garbage collector's full passes, once per process: otherwise each full
    pass walks them all and stops the process for 0.1–0.2 s, the tail of the latency."""
    global _gc_frozen
    with _lock:
        if _gc_frozen:
            return
        _gc_frozen = True
    gc.collect()
    gc.freeze()


def freeze_warmed_up_objects() -> None:
    """Once per process, when the first session has calibrated: the core's first calibrated
    step loads its compiled (numba) functions, and with them ≈ 5·10⁴ objects that did not
    exist at `freeze_startup_objects` time; left in the collector, they made every later full
    pass stop the process for ≈ 50 ms (a few times a minute with 30 athletes). This one pass
    costs about that, once, while the calibrations keep everything waiting anyway."""
    global _gc_frozen_warm
    with _lock:
        if _gc_frozen_warm:
            return
        _gc_frozen_warm = True
    gc.collect()
    gc.freeze()
