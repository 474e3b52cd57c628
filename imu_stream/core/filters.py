"""Small zero-phase filters used across the core."""

from __future__ import annotations

import numpy as np
from scipy import signal
from scipy.ndimage import gaussian_filter1d

from imu_stream.records import FloatArray


def gaussian_lowpass(x: FloatArray, sigma_s: float, fs: float, order: int = 0) -> FloatArray:
    """Zero-phase Gaussian smoothing along axis 0 (edges reflected). A Gaussian kernel has no
    side lobes, so gait harmonics above ~1/(2πσ) vanish instead of leaking as ripple."""
    out = gaussian_filter1d(x, sigma=sigma_s * fs, axis=0, mode="nearest", order=order)
    if order:
        out = out * fs**order
    return np.asarray(out)


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
