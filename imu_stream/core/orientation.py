"""Drift-free inclination, causally: strapdown integration with low-pass gravity correction.

The gyro integration carries the fast motion; its slow tilt error is found by low-pass filtering
the specific force rotated into the integrated world frame (linear acceleration averages out over
strides, gravity does not) and rotated away. The low-pass is a Gaussian (σ = 0.6 s, removing
gait harmonics ≥ 0.9 Hz to < 1e-3) evaluated where its whole support is known, i.e. delayed
by 3σ, and extrapolated linearly over that delay from its slope over the last 4 s, which follows a
drifting gyro bias. Nothing looks ahead, so the live path gets each sample's orientation as soon
as the sample arrives, and the result does not depend on how the data were chunked.

Yaw is left free; every angle of METRICS.md is taken relative to a heading found with the same
causal low-pass of the yaw.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import oaconvolve

from imu_stream.core.rotations import (
    integrate_gyro,
    matrix_to_quat,
    quat_to_matrix,
    rotation_aligning,
)
from imu_stream.records import FloatArray

UP = np.array([0.0, 0.0, 1.0])
LOWPASS_SIGMA_S = 0.6
LOWPASS_TRUNCATE = 3.0  # kernel half-width in σ: the delay of the estimate
EXTRAPOLATION_BASE_S = 4.0  # slope of the delayed estimate measured over this span
DIRECT_MAX_SAMPLES = 256  # up to this many new samples, convolve directly instead of by FFT


@dataclass(frozen=True, slots=True)
class CausalLowpass:
    """Delayed Gaussian low-pass extrapolated to the present (see the module docstring)."""

    half_width: int  # samples: the delay m
    slope_base: int  # samples: D
    kernel: FloatArray

    @classmethod
    def for_rate(cls, fs: float) -> CausalLowpass:
        m = max(1, int(np.ceil(LOWPASS_TRUNCATE * LOWPASS_SIGMA_S * fs)))
        x = np.arange(-m, m + 1) / (LOWPASS_SIGMA_S * fs)
        kernel = np.exp(-0.5 * x**2)
        return cls(m, max(1, round(EXTRAPOLATION_BASE_S * fs)), kernel / kernel.sum())

    @property
    def history(self) -> int:
        """Samples of past input each output needs."""
        return 2 * self.half_width + self.slope_base

    def apply(self, past: FloatArray, new: FloatArray) -> FloatArray:
        """Outputs for `new` (n, k) given exactly `history` samples `past` (h, k) before it."""
        ext = np.concatenate([past, new])
        h, m, d = self.history, self.half_width, self.slope_base
        n = new.shape[0]
        if n > DIRECT_MAX_SAMPLES:
            smooth = oaconvolve(ext, self.kernel[:, None], mode="valid", axes=0)
            now = smooth[h - 2 * m : h - 2 * m + n]
            before = smooth[h - 2 * m - d : h - 2 * m - d + n]
        else:  # a few new samples: dot products beat an FFT of the whole history
            now = self._smooth_at(ext, h - 2 * m, n)
            before = self._smooth_at(ext, h - 2 * m - d, n)
        return np.asarray(now + (m / d) * (now - before))

    def _smooth_at(self, ext: FloatArray, first: int, n: int) -> FloatArray:
        """The Gaussian-smoothed values whose window starts at ext[first], ext[first+1], …"""
        width = self.kernel.size
        windows = np.lib.stride_tricks.sliding_window_view(
            ext[first : first + n + width - 1], width, axis=0
        )
        return np.asarray(windows @ self.kernel)

    def start_history(self, first: FloatArray) -> FloatArray:
        """History before the first sample: the first value held (nothing is known earlier)."""
        return np.repeat(first[None, :], self.history, axis=0)


@dataclass(slots=True)
class OrientationState:
    """What the tracker carries from one chunk to the next."""

    quaternion: FloatArray  # at `time_s`, integrated frame
    time_s: float
    gyr_dps: FloatArray  # the last (bias-corrected) rate sample
    acc_world_history: FloatArray  # (lowpass.history, 3)
    lowpass: CausalLowpass


def start_orientation(acc_first_s: FloatArray, fs: float) -> tuple[FloatArray, CausalLowpass]:
    """Initial sensor → world rotation from the mean specific force of the first second."""
    start = rotation_aligning(acc_first_s.mean(axis=0, keepdims=True), UP)[0]
    return np.asarray(start), CausalLowpass.for_rate(fs)


def track_orientation(
    state: OrientationState | None,
    time_s: FloatArray,
    acc: FloatArray,
    gyr_dps: FloatArray,
    gyro_bias_dps: FloatArray,
    fs: float,
    start_rotation: FloatArray | None = None,
) -> tuple[FloatArray, OrientationState]:
    """Sensor → world rotations (n, 3, 3), world z up, yaw free, for one chunk of samples.

    Pass `state=None` with `start_rotation` for the first chunk, then the returned state.
    """
    rate = gyr_dps - gyro_bias_dps
    if state is None:
        if start_rotation is None:
            raise ValueError("the first chunk needs a start rotation")
        lowpass = CausalLowpass.for_rate(fs)
        q = integrate_gyro(rate, time_s, matrix_to_quat(start_rotation))
        rot = quat_to_matrix(q)
        acc_world = np.einsum("nij,nj->ni", rot, acc)
        history = lowpass.start_history(acc_world[0])
    else:
        lowpass = state.lowpass
        q = integrate_gyro(
            np.concatenate([state.gyr_dps[None, :], rate]),
            np.concatenate([[state.time_s], time_s]),
            state.quaternion,
        )[1:]
        rot = quat_to_matrix(q)
        acc_world = np.einsum("nij,nj->ni", rot, acc)
        history = state.acc_world_history
    gravity = lowpass.apply(history, acc_world)
    ext = np.concatenate([history, acc_world])
    new_state = OrientationState(
        quaternion=q[-1].copy(),
        time_s=float(time_s[-1]),
        gyr_dps=rate[-1].copy(),
        acc_world_history=ext[-lowpass.history :].copy(),
        lowpass=lowpass,
    )
    return np.asarray(rotation_aligning(gravity, UP) @ rot), new_state


@dataclass(slots=True)
class HeadingState:
    last_yaw_rad: float  # unwrapped
    history: FloatArray  # (lowpass.history, 1)


def track_heading(
    state: HeadingState | None, rotations: FloatArray, lowpass: CausalLowpass
) -> tuple[FloatArray, HeadingState]:
    """Walking heading (rad): the unwrapped yaw of the body x axis, low-passed causally."""
    yaw = np.arctan2(rotations[:, 1, 0], rotations[:, 0, 0])
    previous = yaw[0] if state is None else state.last_yaw_rad
    unwrapped = np.unwrap(np.concatenate([[previous], yaw]))[1:]
    column = unwrapped[:, None]
    history = lowpass.start_history(column[0]) if state is None else state.history
    heading = lowpass.apply(history, column)[:, 0]
    ext = np.concatenate([history, column])
    return heading, HeadingState(float(unwrapped[-1]), ext[-lowpass.history :].copy())
