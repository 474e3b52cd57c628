"""Drift-free inclination by strapdown integration with low-pass gravity correction.

The gyro integration carries the fast motion; its slow tilt error is found by low-pass
filtering the specific force rotated into the integrated world frame (linear acceleration
averages out over strides, gravity does not) and rotated away. A Gaussian low-pass with
σ ≈ 1 s removes gait harmonics (≥ 0.7 Hz) to < 1e-5 and, being centred, follows a linear gyro
drift exactly, so no stance detection or zero-velocity update is needed. Yaw is left free; every
angle of METRICS.md is taken relative to a heading found by low-pass filtering the yaw.
"""

from __future__ import annotations

import numpy as np

from imu_stream.core.filters import gaussian_lowpass
from imu_stream.core.rotations import (
    integrate_gyro,
    matrix_to_quat,
    quat_to_matrix,
    rotation_aligning,
)
from imu_stream.records import FloatArray

UP = np.array([0.0, 0.0, 1.0])
GRAVITY_SIGMA_S = 1.0


def estimate_orientation(
    time_s: FloatArray,
    acc: FloatArray,
    gyr_dps: FloatArray,
    gyro_bias_dps: FloatArray | None = None,
    gravity_sigma_s: float = GRAVITY_SIGMA_S,
) -> FloatArray:
    """Sensor → world rotations (n, 3, 3): world z up, yaw arbitrary (slowly drifting)."""
    fs = (time_s.size - 1) / (time_s[-1] - time_s[0])
    bias = np.zeros(3) if gyro_bias_dps is None else gyro_bias_dps
    n0 = max(1, min(time_s.size, round(fs)))
    start = rotation_aligning(acc[:n0].mean(axis=0, keepdims=True), UP)[0]
    q = integrate_gyro(gyr_dps - bias, time_s, matrix_to_quat(start))
    rot = quat_to_matrix(q)
    acc_world = np.einsum("nij,nj->ni", rot, acc)
    gravity_world = gaussian_lowpass(acc_world, gravity_sigma_s, fs)
    correction = rotation_aligning(gravity_world, UP)
    return np.asarray(correction @ rot)


def heading_rad(
    yaw_unwrapped: FloatArray, fs: float, sigma_s: float = GRAVITY_SIGMA_S
) -> FloatArray:
    """Walking heading: the yaw with its within-stride oscillation smoothed away."""
    return gaussian_lowpass(yaw_unwrapped, sigma_s, fs)
