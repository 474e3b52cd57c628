"""An asyncio event loop on a virtual clock, so emulated sessions run faster than real time.

`loop.time()` is virtual: whenever nothing is ready to run, the loop jumps straight to its next
timer instead of waiting. Every `asyncio.sleep`, `wait_for` timeout and `call_at` (the device
emulator's notification schedule, the collector's receive timestamps, backoffs) then follows
the same clock, exactly and deterministically. Real I/O (sockets, pipes) still works: it is
polled without blocking, and the loop blocks on it only when no timer is pending.
With `time_scale`, virtual time advances at most that many times faster than wall time.
"""

from __future__ import annotations

import asyncio
import selectors
import time
from collections.abc import Coroutine, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from _typeshed import FileDescriptorLike

T = TypeVar("T")
MAX_BEHIND_S = 0.05  # wall seconds the scaled clock may lag before pacing restarts from now


class _VirtualSelector(selectors.BaseSelector):
    """Delegates to a real selector, but turns waits for timers into virtual clock jumps."""

    def __init__(self, loop: VirtualTimeLoop) -> None:
        self._inner = selectors.DefaultSelector()
        self._loop = loop

    def register(
        self, fileobj: FileDescriptorLike, events: int, data: Any = None
    ) -> selectors.SelectorKey:
        return self._inner.register(fileobj, events, data)

    def unregister(self, fileobj: FileDescriptorLike) -> selectors.SelectorKey:
        return self._inner.unregister(fileobj)

    def modify(
        self, fileobj: FileDescriptorLike, events: int, data: Any = None
    ) -> selectors.SelectorKey:
        return self._inner.modify(fileobj, events, data)

    def get_map(self) -> Mapping[FileDescriptorLike, selectors.SelectorKey]:
        return self._inner.get_map()

    def close(self) -> None:
        self._inner.close()

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        events = self._inner.select(0)
        if events or timeout == 0:
            return events
        if timeout is None:  # no timer at all: only real I/O can wake us
            return self._inner.select(None)
        wait_s = self._loop.wall_wait_s(timeout)
        if wait_s > 0:
            events = self._inner.select(wait_s)
            if events:
                return events
        self._loop.advance(timeout)
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """A selector event loop whose `time()` is a virtual clock starting at `start`."""

    def __init__(self, time_scale: float | None = None, start: float = 0.0) -> None:
        if time_scale is not None and time_scale <= 0:
            raise ValueError("time_scale must be positive")
        self.time_scale = time_scale
        self._virtual_now = float(start)
        self.wall_started = time.monotonic()
        # Pacing with `time_scale` is kept against this anchor, not per step: waiting
        # step/scale before each of many small timer steps would add the selector's
        # millisecond rounding every time and run slower than asked.
        self._anchor = (self.wall_started, self._virtual_now)
        super().__init__(_VirtualSelector(self))

    def time(self) -> float:
        return self._virtual_now

    def wall_wait_s(self, step: float) -> float:
        """Wall seconds to wait before the clock may jump `step` ahead (0: at once)."""
        if self.time_scale is None:
            return 0.0
        now = time.monotonic()
        wall0, virtual0 = self._anchor
        due = wall0 + (self._virtual_now + step - virtual0) / self.time_scale
        if due < now - MAX_BEHIND_S:
            # Fell behind (a busy CPU): carry on from here rather than race to catch up.
            self._anchor = (now, self._virtual_now)
            due = now + step / self.time_scale
        return due - now

    def advance(self, seconds: float) -> None:
        if seconds > 0:
            self._virtual_now += seconds


def run_virtual(
    main: Coroutine[Any, Any, T], *, time_scale: float | None = None, start: float = 0.0
) -> T:
    """Run a coroutine to completion on a fresh virtual-time loop (like `asyncio.run`)."""
    loop = VirtualTimeLoop(time_scale=time_scale, start=start)
    try:
        asyncio.set_event_loop(loop)
        return loop.run_until_complete(main)
    finally:
        try:
            _cancel_all(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            asyncio.set_event_loop(None)
            loop.close()


def _cancel_all(loop: asyncio.AbstractEventLoop) -> None:
    tasks = asyncio.all_tasks(loop)
    if not tasks:
        return
    for task in tasks:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
