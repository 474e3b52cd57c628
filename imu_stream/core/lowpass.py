"""Causal low-pass of the orientation tracker: a delayed smoothing extrapolated to the present.

The smoothing is a cascade of four moving averages of odd widths (0.685, 0.825, 0.985,
1.105 s; together close to a Gaussian of σ = 0.53 s). The widths are chosen so that the zeros of
each fill the side lobes of the others: every gait harmonic ≥ 0.8 Hz is removed at least as well
as by a Gaussian of σ = 0.6 s truncated at 3σ (< 4.2e-4 from 0.9 Hz up), with the same delay
(1.79 s) and O(1) work per sample. A smoothed value is known once its whole support is, i.e.
delayed by m = Σ(w − 1)/2 samples; it is extrapolated linearly over that delay from its slope over
the last 4 s, which follows a drifting gyro bias.

Each moving average is a running sum carried from sample to sample, re-added from its window
every 8th time the window has been renewed (at fixed sample counts), so that rounding (and a NaN)
cannot build up over hours;
the output depends on the samples only, never on how they were chunked. Before the first sample
nothing is known: the first value is held.

Compiled (numba): the running sums are a recursion over samples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
from numpy.typing import NDArray

from imu_stream.records import FloatArray

BOX_WIDTHS_S = (0.685, 0.825, 0.985, 1.105)  # four: the kernel below is written for four
EXTRAPOLATION_BASE_S = 4.0  # slope of the delayed estimate measured over this span
READD_EVERY = 8  # windows


def _odd(samples: float) -> int:
    return max(1, 2 * round((samples - 1) / 2) + 1)


@dataclass(slots=True)
class LowpassState:
    """One causal low-pass of `k` channels, advanced in place block by block."""

    widths: NDArray[np.int64]  # (stages,) samples, odd
    windows: FloatArray  # (stages, k, max width): each stage's last inputs (a ring)
    sums: FloatArray  # (stages, k)
    smoothed: FloatArray  # (k, D): the last D smoothed values (a ring), D the slope base
    # Ring positions: one per stage, then the smoothed ring's; last, the samples seen.
    cursor: NDArray[np.int64]

    @classmethod
    def for_rate(cls, fs: float, channels: int) -> LowpassState:
        widths = np.array([_odd(w * fs) for w in BOX_WIDTHS_S], dtype=np.int64)
        base = max(1, round(EXTRAPOLATION_BASE_S * fs))
        return cls(
            widths=widths,
            windows=np.zeros((widths.size, channels, int(widths.max()))),
            sums=np.zeros((widths.size, channels)),
            smoothed=np.zeros((channels, base)),
            cursor=np.zeros(widths.size + 2, dtype=np.int64),
        )

    @property
    def delay(self) -> int:
        """Samples by which the smoothed value lags its input: the span extrapolated over."""
        return int(np.sum(self.widths - 1) // 2)

    def apply(self, values: FloatArray) -> FloatArray:
        """Outputs for the next samples `values` (n, k), advancing the state."""
        out = np.array(np.asarray(values, dtype=np.float64).T, order="C")  # (k, n)
        lowpass_inplace(self.widths, self.windows, self.sums, self.smoothed, self.cursor, out)
        return out.T


@numba.njit(cache=True, inline="always")
def _box_push(
    ring: np.ndarray, w: int, total: float, slot: int, value: float, sample: int
) -> tuple[float, int]:  # pragma: no cover - compiled
    """One moving-average stage: the window's new sum and ring position after `value`, the
    `sample`-th input (counted from the first)."""
    total += value - ring[slot]
    ring[slot] = value
    if slot < w - 1:
        return total, slot + 1
    if sample // w % READD_EVERY == READD_EVERY - 1:  # re-add: no rounding carried further
        return _window_sum(ring, w), 0
    return total, 0


@numba.njit(cache=True, inline="always")
def _window_sum(ring: np.ndarray, w: int) -> float:  # pragma: no cover - compiled
    """Sum of ring[:w] in a fixed order, four partial sums (a quarter of the latency)."""
    a = b = c = d = 0.0
    quarter = w // 4
    for j in range(quarter):
        a += ring[4 * j]
        b += ring[4 * j + 1]
        c += ring[4 * j + 2]
        d += ring[4 * j + 3]
    for j in range(4 * quarter, w):
        a += ring[j]
    return (a + b) + (c + d)


@numba.njit(cache=True, error_model="numpy")
def lowpass_inplace(
    widths: np.ndarray,
    windows: np.ndarray,
    sums: np.ndarray,
    smoothed: np.ndarray,
    cursor: np.ndarray,
    data: np.ndarray,
) -> None:  # pragma: no cover - compiled
    """Replace the next samples `data` (k, n: channel by channel) by their low-passed values.

    The four stages are written out so that their running sums stay in registers."""
    channels, n = data.shape
    if n == 0:
        return
    if cursor[5] == 0:  # nothing known before: as if the first value had always been the input
        for c in range(channels):
            first = data[c, 0]
            for s in range(4):
                total = 0.0
                for j in range(widths[s]):
                    windows[s, c, j] = first
                    total += first
                sums[s, c] = total
            for j in range(smoothed.shape[1]):
                smoothed[c, j] = first
    seen = cursor[5]
    w0, w1, w2, w3 = widths[0], widths[1], widths[2], widths[3]
    i0, i1, i2, i3 = 1.0 / w0, 1.0 / w1, 1.0 / w2, 1.0 / w3
    base = smoothed.shape[1]
    gain = ((w0 - 1) // 2 + (w1 - 1) // 2 + (w2 - 1) // 2 + (w3 - 1) // 2) / base
    for c in range(channels):
        r0, r1, r2, r3 = windows[0, c], windows[1, c], windows[2, c], windows[3, c]
        past = smoothed[c]
        t0, t1, t2, t3 = sums[0, c], sums[1, c], sums[2, c], sums[3, c]
        p0, p1, p2, p3, p4 = cursor[0], cursor[1], cursor[2], cursor[3], cursor[4]
        x = data[c]
        i = 0
        while i < n:
            # A run of samples before any ring's last slot: no wrap, no re-add to check.
            run = min(n - i, w0 - 1 - p0, w1 - 1 - p1, w2 - 1 - p2, w3 - 1 - p3, base - 1 - p4)
            for j in range(run):
                value = x[i + j]
                t0 += value - r0[p0 + j]
                r0[p0 + j] = value
                value = t0 * i0
                t1 += value - r1[p1 + j]
                r1[p1 + j] = value
                value = t1 * i1
                t2 += value - r2[p2 + j]
                r2[p2 + j] = value
                value = t2 * i2
                t3 += value - r3[p3 + j]
                r3[p3 + j] = value
                value = t3 * i3
                before = past[p4 + j]  # smoothed `base` samples ago
                past[p4 + j] = value
                x[i + j] = value + gain * (value - before)
            i, p0, p1, p2, p3, p4 = i + run, p0 + run, p1 + run, p2 + run, p3 + run, p4 + run
            if i == n:
                break
            # the same for one sample where some ring wraps
            k = seen + i
            t0, p0 = _box_push(r0, w0, t0, p0, x[i], k)
            t1, p1 = _box_push(r1, w1, t1, p1, t0 * i0, k)
            t2, p2 = _box_push(r2, w2, t2, p2, t1 * i1, k)
            t3, p3 = _box_push(r3, w3, t3, p3, t2 * i2, k)
            value = t3 * i3
            before = past[p4]
            past[p4] = value
            p4 = p4 + 1 if p4 < base - 1 else 0
            x[i] = value + gain * (value - before)
            i += 1
        sums[0, c], sums[1, c], sums[2, c], sums[3, c] = t0, t1, t2, t3
    for s in range(4):
        cursor[s] = (cursor[s] + n) % widths[s]
    cursor[4] = (cursor[4] + n) % base
    cursor[5] += n
