"""Synchronised samples: every sensor linearly interpolated onto one uniform time grid.

The grid is `t0 + k / fs` with t0 the latest first sample of any sensor; each grid sample is
made once every sensor has data beyond it, from the samples that bracket it, so the result
does not depend on how the samples arrived.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numba
import numpy as np

from imu_stream.records import FloatArray

GAP_S = 0.1  # a longer hole in a sensor's samples is a data gap (shorter: interpolated)


@dataclass(slots=True)
class SyncedSignals:
    time_s: FloatArray
    fs: float
    acc: dict[str, FloatArray] = field(default_factory=dict)
    gyr: dict[str, FloatArray] = field(default_factory=dict)
    gaps: list[tuple[float, float]] = field(default_factory=list)

    def slice(self, a: int, b: int) -> SyncedSignals:
        out = SyncedSignals(time_s=self.time_s[a:b], fs=self.fs)
        for loc in self.acc:
            out.acc[loc], out.gyr[loc] = self.acc[loc][a:b], self.gyr[loc][a:b]
        return out


@dataclass(slots=True)
class SyncedSeries:
    """Consecutive blocks of synchronised samples, joined on demand."""

    time_s: list[FloatArray] = field(default_factory=list)
    acc: dict[str, list[FloatArray]] = field(default_factory=dict)
    gyr: dict[str, list[FloatArray]] = field(default_factory=dict)
    n: int = 0

    def append(self, block: SyncedSignals) -> None:
        self.time_s.append(block.time_s)
        for loc in block.acc:
            self.acc.setdefault(loc, []).append(block.acc[loc])
            self.gyr.setdefault(loc, []).append(block.gyr[loc])
        self.n += block.time_s.size

    def signals(self, fs: float) -> SyncedSignals:
        def join(blocks: list[FloatArray]) -> FloatArray:
            return blocks[0] if len(blocks) == 1 else np.concatenate(blocks)  # one: no copy

        out = SyncedSignals(time_s=join(self.time_s), fs=fs)
        for loc in self.acc:
            out.acc[loc] = join(self.acc[loc])
            out.gyr[loc] = join(self.gyr[loc])
        return out


@dataclass(slots=True)
class _RawBuffer:
    """One sensor's not yet synchronised samples."""

    time_s: FloatArray = field(default_factory=lambda: np.zeros(0))
    acc: FloatArray = field(default_factory=lambda: np.zeros((0, 3)))
    gyr: FloatArray = field(default_factory=lambda: np.zeros((0, 3)))
    pending: list[tuple[FloatArray, FloatArray, FloatArray]] = field(default_factory=list)
    first_s: float | None = None
    last_s: float | None = None

    def take_pending(self) -> tuple[FloatArray, FloatArray, FloatArray]:
        """The samples pushed since the last take, joined (one push: not copied)."""
        pending, self.pending = self.pending, []
        if len(pending) == 1:
            return pending[0]
        if not pending:
            return np.zeros(0), np.zeros((0, 3)), np.zeros((0, 3))
        return (
            np.concatenate([p[0] for p in pending]),
            np.concatenate([p[1] for p in pending]),
            np.concatenate([p[2] for p in pending]),
        )

    def interpolate(self, grid: FloatArray) -> tuple[FloatArray, FloatArray]:
        """acc and gyr at the grid points, then keep only the samples from the one bracketing
        the next grid point on. The kept samples and the new ones are read as one sequence
        without being joined."""
        t, acc, gyr = self.take_pending()
        acc_out, gyr_out = np.empty((grid.size, 3)), np.empty((grid.size, 3))
        keep = _interp(grid, self.time_s, self.acc, self.gyr, t, acc, gyr, acc_out, gyr_out)
        old = self.time_s.size
        if keep >= old:
            self.time_s, self.acc, self.gyr = t[keep - old :], acc[keep - old :], gyr[keep - old :]
        else:
            self.time_s = np.concatenate([self.time_s[keep:], t])
            self.acc = np.concatenate([self.acc[keep:], acc])
            self.gyr = np.concatenate([self.gyr[keep:], gyr])
        return acc_out, gyr_out


class GridSynchroniser:
    """Per-sensor samples in (session clock, any chunking), grid samples out."""

    def __init__(self, locations: Sequence[str], fs: float) -> None:
        self.fs = fs
        self.gaps: list[tuple[float, float]] = []
        self.t0: float | None = None
        self.synced_n = 0  # grid samples produced so far
        self._raw = {loc: _RawBuffer() for loc in locations}

    def push(self, location: str, time_s: FloatArray, acc: FloatArray, gyr: FloatArray) -> None:
        if location not in self._raw:
            raise KeyError(f"unknown location {location!r}")
        t = np.asarray(time_s, dtype=np.float64)
        if t.size == 0:
            return
        buf = self._raw[location]
        if buf.last_s is not None and t[0] <= buf.last_s:
            raise ValueError(f"{location}: time does not increase at {t[0]:.6f} s")
        times = t if buf.last_s is None else np.concatenate([[buf.last_s], t])
        for k in np.flatnonzero(np.diff(times) > GAP_S):
            self.gaps.append((float(times[k]), float(times[k + 1])))
        if buf.first_s is None:
            buf.first_s = float(t[0])
        buf.last_s = float(t[-1])
        buf.pending.append(
            (t, np.asarray(acc, dtype=np.float64), np.asarray(gyr, dtype=np.float64))
        )

    def waiting(self) -> list[str]:
        """Sensors that have not delivered a sample yet."""
        return [loc for loc, b in self._raw.items() if b.first_s is None]

    def new_data_s(self) -> float:
        """Seconds of data every sensor has delivered beyond the grid made so far."""
        if self.t0 is None:
            return float("inf")
        end = min(b.last_s if b.last_s is not None else -np.inf for b in self._raw.values())
        return float(end - (self.t0 + (self.synced_n - 1) / self.fs))

    def take(self) -> SyncedSignals | None:
        """The grid samples that every sensor's data now reach, or None."""
        if self.waiting():
            return None
        if self.t0 is None:
            self.t0 = max(b.first_s for b in self._raw.values() if b.first_s is not None)
        end = min(b.last_s for b in self._raw.values() if b.last_s is not None)
        last_k = int(np.floor((end - self.t0) * self.fs + 1e-9))
        if last_k < self.synced_n:
            return None
        grid = self.t0 + np.arange(self.synced_n, last_k + 1) / self.fs
        out = SyncedSignals(time_s=grid, fs=self.fs)
        for loc, buf in self._raw.items():
            out.acc[loc], out.gyr[loc] = buf.interpolate(grid)
        self.synced_n = last_k + 1
        return out


@numba.njit(cache=True)
def _interp(
    grid: np.ndarray,
    t_a: np.ndarray,
    acc_a: np.ndarray,
    gyr_a: np.ndarray,
    t_b: np.ndarray,
    acc_b: np.ndarray,
    gyr_b: np.ndarray,
    acc_out: np.ndarray,
    gyr_out: np.ndarray,
) -> int:  # pragma: no cover - compiled
    """np.interp of the six columns at once from the samples a followed by b (the same
    arithmetic, hence the same values). The grid points before b's first sample are bracketed
    by a and that sample; the others by b alone. Returns the index (in a then b) of the last
    sample at or before the last grid point (0 if none)."""
    ma, mb, n = t_a.shape[0], t_b.shape[0], grid.shape[0]
    split = n
    if mb:
        split = 0
        while split < n and grid[split] < t_b[0]:
            split += 1
    if split:
        bridge = min(mb, 1)
        t = np.concatenate((t_a, t_b[:bridge]))
        _interp_one(
            grid[:split],
            t,
            np.concatenate((acc_a, acc_b[:bridge])),
            np.concatenate((gyr_a, gyr_b[:bridge])),
            acc_out[:split],
            gyr_out[:split],
        )
    if split < n:
        _interp_one(grid[split:], t_b, acc_b, gyr_b, acc_out[split:], gyr_out[split:])
    end = grid[n - 1]
    if mb and end >= t_b[0]:
        return ma + np.searchsorted(t_b, end, side="right") - 1
    return max(0, np.searchsorted(t_a, end, side="right") - 1)


@numba.njit(cache=True)
def _interp_one(
    grid: np.ndarray,
    time_s: np.ndarray,
    acc: np.ndarray,
    gyr: np.ndarray,
    acc_out: np.ndarray,
    gyr_out: np.ndarray,
) -> None:  # pragma: no cover - compiled
    """np.interp of the six columns at once, the bracketing samples found by walking along
    both increasing time axes instead of a binary search per point and column."""
    m = time_s.shape[0]
    j = 0
    for i in range(grid.shape[0]):
        x = grid[i]
        if x < time_s[0]:
            k, exact = 0, True
        elif x >= time_s[m - 1]:
            k, exact = m - 1, True
        else:
            while time_s[j + 1] <= x:
                j += 1
            k, exact = j, time_s[j] == x
        for c in range(3):
            if exact:
                acc_out[i, c], gyr_out[i, c] = acc[k, c], gyr[k, c]
            else:
                span = time_s[k + 1] - time_s[k]
                along = x - time_s[k]
                acc_out[i, c] = (acc[k + 1, c] - acc[k, c]) / span * along + acc[k, c]
                gyr_out[i, c] = (gyr[k + 1, c] - gyr[k, c]) / span * along + gyr[k, c]
