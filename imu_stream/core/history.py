"""The recent past of the streaming core's signals, kept without re-copying it every block.

Named signals on the sample grid are appended block by block and dropped from the front; they
live in preallocated buffers with room to grow, so a block costs a copy of the block only (the
kept part moves only when the buffer's end is reached, rarely).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from imu_stream.records import FloatArray

MIN_CAPACITY = 4096  # samples


class SignalHistory:
    """Equal-length named signals: `append` at the end, `drop` from the front, `views` now."""

    def __init__(self) -> None:
        self._buffers: dict[str, FloatArray] = {}
        self._first = 0  # buffer index of the oldest kept sample
        self._n = 0  # samples kept

    def __len__(self) -> int:
        return self._n

    def append(self, new: Mapping[str, FloatArray]) -> None:
        if not new:
            return
        m = next(iter(new.values())).shape[0]
        if not self._buffers:
            capacity = max(MIN_CAPACITY, 2 * m)
            self._buffers = {k: np.empty(capacity) for k in new}
        elif new.keys() != self._buffers.keys():
            raise ValueError("every block needs the same signals")
        capacity = next(iter(self._buffers.values())).shape[0]
        if self._first + self._n + m > capacity:
            self._make_room(m, capacity)
        end = self._first + self._n
        for k, values in new.items():
            self._buffers[k][end : end + m] = values
        self._n += m

    def _make_room(self, m: int, capacity: int) -> None:
        keep = slice(self._first, self._first + self._n)
        if self._n + m <= capacity // 2:  # plenty of room: move the kept part to the front
            for buffer in self._buffers.values():
                buffer[: self._n] = buffer[keep]
        else:
            grown = max(2 * (self._n + m), capacity)
            for k, buffer in self._buffers.items():
                bigger = np.empty(grown)
                bigger[: self._n] = buffer[keep]
                self._buffers[k] = bigger
        self._first = 0

    def drop(self, count: int) -> None:
        """Forget the oldest `count` samples."""
        count = min(max(0, count), self._n)
        self._first += count
        self._n -= count

    def views(self) -> dict[str, FloatArray]:
        """The kept samples of each signal; valid until the next `append`."""
        kept = slice(self._first, self._first + self._n)
        return {k: buffer[kept] for k, buffer in self._buffers.items()}
