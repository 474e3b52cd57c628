"""Process-wide parts of live processing: warming the core up, the garbage collector, and the
worker thread for the final steps.

`prepare_process` runs once before the first session (see there). Every pipeline of the process
shares one worker thread for its session's final `finish()`, which processes what is left
without look-ahead; every other core step is short and runs on the event loop. A sink's own
`to_thread` I/O never waits behind it (it uses asyncio's default pool)."""

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
_prepared = False


def core_worker() -> CoreWorker:
    """The process's core worker (created on first use)."""
    global _worker
    with _lock:
        if _worker is None:
            _worker = CoreWorker()
        return _worker


def prepare_process() -> None:
    """Once per process, before its first session: warm the signal core up, then take what
    exists out of the garbage collector's full passes.

    - The core's compiled (numba) functions load on first use, ≈ 0.1 s in all, which would
      otherwise hold up the strides of the first calibration; a short simulated session
      through an `OnlineProcessor` loads them now.
    - What exists then (imported modules: numba, scipy, …, and what the compiled functions
      brought; ≈ 1.5·10⁵ objects) is frozen: otherwise each full pass walks it all and stops
      the process for 0.05–0.2 s, the tail of the latency."""
    global _prepared
    with _lock:
        if _prepared:
            return
        _prepared = True
    _warm_up_core()
    gc.collect()
    gc.freeze()


def _warm_up_core() -> None:
    from imu_stream.core.online import OnlineProcessor
    from imu_stream.sim import SimulationConfig, simulate

    config = SimulationConfig(
        activity="run", duration_s=14.0, rate_hz=100.0, seed=0, standing_s=2.0,
        sensors=("sacrum", "left_thigh", "right_thigh"),
    )  # fmt: skip
    sim = simulate(config)
    processor = OnlineProcessor(list(sim.recordings), config.rate_hz)
    for location, rec in sim.recordings.items():
        processor.push(location, rec.time_s, rec.acc, rec.gyr)
    processor.update()
    processor.finish()
