"""Accelerometer/gyroscope pairs per sensor, built incrementally exactly as the journal reads them.

The live processor must see the very samples that `JournalReader.recording()` (and so `export`
and `analyze`) will read back, or live and batch results could differ. That reader keeps, per
stream, only samples whose time exceeds every earlier one (the online clock can step back
after a refit), takes the accelerometer's times, drops accelerometer samples outside the
gyroscope's span and interpolates the gyroscope linearly onto them. Linear interpolation at a
time needs only the two gyroscope samples around it, so each accelerometer sample can be paired
as soon as a later gyroscope sample exists, with bit-identical results.
Movesense IMU6 blocks carry both in one block (same times): they pass straight through.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from imu_stream.records import FloatArray, SampleBlock

EMPTY = np.zeros(0)
SMALL_BLOCK = 16  # samples up to which `_Increasing.keep` checks the order in Python


@dataclass(slots=True)
class Pair:
    """Paired samples of one sensor: session times, acc (m/s²), gyro (deg/s)."""

    time_s: FloatArray
    acc: FloatArray
    gyr: FloatArray


class _Increasing:
    """The running-maximum filter of `timebase.monotonic_mask`, one block at a time."""

    def __init__(self) -> None:
        self.last = -np.inf

    def keep(self, t: FloatArray) -> np.ndarray | None:
        """The mask of the samples to keep; None when all are kept (the usual case: later
        than everything before and increasing), so the caller need not index."""
        n = t.size
        if n == 0:
            return None
        if n <= SMALL_BLOCK:
            # A notification's few samples: comparing Python floats costs less than the
            # numpy calls (this runs for every block). NaN fails `>`, as it does in numpy.
            previous = self.last
            for value in t.tolist():
                if not value > previous:
                    break
                previous = value
            else:
                self.last = previous
                return None
        elif t.item(0) > self.last and bool((t[1:] > t[:-1]).all()):
            self.last = t.item(-1)
            return None
        prior = np.maximum.accumulate(np.concatenate(([self.last], t[:-1])))
        keep = t > prior
        self.last = max(self.last, float(t.max()))
        return keep


class SensorPairing:
    """Feed one sensor's blocks in arrival order; get the acc+gyro samples that became final."""

    def __init__(self) -> None:
        self._acc_order = _Increasing()
        self._gyr_order = _Increasing()
        self._acc_t: FloatArray = EMPTY
        self._acc_v: FloatArray = EMPTY.reshape(0, 3)
        self._gyr_t: FloatArray = EMPTY  # the gyroscope tail still needed for interpolation
        self._gyr_v: FloatArray = EMPTY.reshape(0, 3)
        self._gyr_first: float | None = None
        self._split = False  # this sensor sends acc and gyro in separate blocks
        self.pending_samples = 0

    def add(self, block: SampleBlock, time_s: FloatArray) -> Pair | None:
        acc, gyr = block.acc, block.gyro
        if acc is not None and gyr is not None and not self._split and self._acc_t.size == 0:
            # One block with both (Movesense IMU6): the times are shared, nothing to pair.
            keep = self._acc_order.keep(time_s)
            self._gyr_order.last = self._acc_order.last
            if keep is not None:
                time_s, acc, gyr = time_s[keep], acc[keep], gyr[keep]
            if time_s.size == 0:
                return None
            if self._gyr_first is None:
                self._gyr_first = time_s.item(0)
            return Pair(time_s, np.asarray(acc, np.float64), np.asarray(gyr, np.float64))
        self._split = True
        if acc is not None:
            keep = self._acc_order.keep(time_s)
            t, values = time_s, np.asarray(acc, np.float64)
            if keep is not None:
                t, values = t[keep], values[keep]
            self._acc_t = np.concatenate((self._acc_t, t))
            self._acc_v = np.concatenate((self._acc_v, values))
        if gyr is not None:
            keep = self._gyr_order.keep(time_s)
            t, values = time_s, np.asarray(gyr, np.float64)
            if keep is not None:
                t, values = t[keep], values[keep]
            if t.size:
                if self._gyr_first is None:
                    self._gyr_first = t.item(0)
                self._gyr_t = np.concatenate((self._gyr_t, t))
                self._gyr_v = np.concatenate((self._gyr_v, values))
        return self._release()

    def _release(self) -> Pair | None:
        if self._gyr_first is None or self._acc_t.size == 0:
            self.pending_samples = int(self._acc_t.size)
            return None
        # Accelerometer samples before the first gyroscope sample are never paired (the reader
        # drops them too); those up to the newest gyroscope sample can be paired now.
        start = int(np.searchsorted(self._acc_t, self._gyr_first, side="left"))
        stop = int(np.searchsorted(self._acc_t, self._gyr_t[-1], side="right"))
        stop = max(stop, start)
        t = self._acc_t[start:stop]
        acc = self._acc_v[start:stop]
        self._acc_t, self._acc_v = self._acc_t[stop:], self._acc_v[stop:]
        self.pending_samples = int(self._acc_t.size)
        if t.size == 0:
            return None
        gyr = np.column_stack([np.interp(t, self._gyr_t, self._gyr_v[:, k]) for k in range(3)])
        # Keep the gyroscope sample at or before the last paired time: the next pair's left knot.
        left = max(int(np.searchsorted(self._gyr_t, t[-1], side="right")) - 1, 0)
        self._gyr_t, self._gyr_v = self._gyr_t[left:], self._gyr_v[left:]
        return Pair(t, acc, gyr)
