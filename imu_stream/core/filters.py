"""Small zero-phase filters used across the core."""

from __future__ import annotations

import functools

import numba
import numpy as np
from scipy import signal
from scipy.ndimage import gaussian_filter1d

from imu_stream.records import FloatArray


def gaussian_lowpass(x: FloatArray, sigma_s: float, fs: float, order: int = 0) -> FloatArray:
    """Zero-phase Gaussian smoothing of a 1-D signal (edges held), as scipy's
    gaussian_filter1d. A Gaussian kernel has no side lobes, so gait harmonics above ~1/(2πσ)
    vanish instead of leaking as ripple."""
    weights = _gaussian_weights(sigma_s * fs, order)
    if order:
        weights = weights * fs**order
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"gaussian_lowpass takes a 1-D signal, not shape {x.shape}")
    radius = weights.size // 2
    padded = np.concatenate([np.full(radius, x[0]), x, np.full(radius, x[-1])]) if x.size else x
    out = np.zeros(x.size)
    _correlate(padded, weights, out)
    return out


@numba.njit(cache=True, error_model="numpy")
def _correlate(
    padded: np.ndarray, weights: np.ndarray, out: np.ndarray
) -> None:  # pragma: no cover - compiled
    """out[i] = Σ_j weights[j]·padded[i + j], tap by tap over all i: each output sums its taps
    in the same order whatever the block (so results do not depend on chunking), and the loop
    over i vectorises (scipy's correlate1d runs about 3× slower on the core's blocks)."""
    n = out.size
    for j in range(weights.size):
        w = weights[j]
        for i in range(n):
            out[i] += w * padded[i + j]


def butter_lowpass(x: FloatArray, cutoff_hz: float, fs: float, order: int = 4) -> FloatArray:
    cutoff = min(cutoff_hz, 0.45 * fs)
    sos = signal.butter(order, cutoff, btype="low", fs=fs, output="sos")
    padlen = min(3 * (2 * len(sos) + 1), x.shape[0] - 1)
    return np.asarray(signal.sosfiltfilt(sos, x, axis=0, padlen=padlen))


def butter_bandpass(
    x: FloatArray, low_hz: float, high_hz: float, fs: float, order: int = 2
) -> FloatArray:
    sos = signal.butter(order, [low_hz, min(high_hz, 0.45 * fs)], btype="band", fs=fs, output="sos")
    padlen = min(3 * (2 * len(sos) + 1), x.shape[0] - 1)
    return np.asarray(signal.sosfiltfilt(sos, x, axis=0, padlen=padlen))


@functools.lru_cache(maxsize=32)
def _gaussian_weights(sigma: float, order: int) -> FloatArray:
    """The correlation weights of gaussian_filter1d (its default 4σ radius), read off its
    response to an impulse: building them is most of its cost on the live path's short
    windows, so they are made once."""
    radius = int(4.0 * sigma + 0.5)
    impulse = np.zeros(2 * radius + 1)
    impulse[radius] = 1.0
    response = gaussian_filter1d(impulse, sigma, order=order, mode="constant")
    return np.ascontiguousarray(response[::-1])
