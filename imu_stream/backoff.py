"""Jittered exponential backoff shared by every reconnecting or retrying client."""

from __future__ import annotations

import asyncio
import random


class Backoff:
    """Delays from `initial_s` doubling to `max_s`; each wait is jittered to 50–100 % so many
    clients that lost the same server do not come back in one herd."""

    def __init__(self, initial_s: float, max_s: float) -> None:
        self.initial_s = initial_s
        self.max_s = max_s
        self._next_s = initial_s

    def reset(self) -> None:
        self._next_s = self.initial_s

    def next_delay(self) -> float:
        delay = self._next_s * (0.5 + random.random() / 2)
        self._next_s = min(self._next_s * 2, self.max_s)
        return delay

    async def wait(self) -> None:
        await asyncio.sleep(self.next_delay())
