"""Drift-free inclination, causally: strapdown integration with low-pass gravity correction.

The gyro integration carries the fast motion; its slow tilt error is found by low-pass filtering
the specific force rotated into the integrated world frame (linear acceleration averages out over
strides, gravity does not) and rotated away. The low-pass (lowpass.py) removes gait harmonics
≥ 0.8 Hz; it is evaluated where its whole support is known, i.e. delayed by 1.79 s, and
extrapolated linearly over that delay from its slope over the last 4 s, which follows a drifting
gyro bias. Nothing looks ahead, so the live path gets each sample's orientation as soon as the
sample arrives, and the result does not depend on how the data were chunked.

Yaw is left free; every angle of METRICS.md is taken relative to a heading found with the same
causal low-pass of the yaw.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from imu_stream.core import trig
from imu_stream.core.lowpass import LowpassState, lowpass_inplace
from imu_stream.core.rotations import matrix_to_quat, quat_step, rotation_aligning
from imu_stream.records import FloatArray

UP = np.array([0.0, 0.0, 1.0])


@dataclass(slots=True)
class OrientedBlock:
    """One block of samples of one sensor, oriented; sample index last (each row contiguous)."""

    rotation: FloatArray  # (3, 3, n) segment → world (sensor → world without an alignment)
    acc_world: FloatArray  # (3, n) specific force in the world frame (m/s²)
    yaw_rad: FloatArray  # (n,) unwrapped yaw of the segment's x axis
    heading_rad: FloatArray  # (n,) its causal low-pass: the walking heading
    heading_cos: FloatArray  # (n,) cos and sin of the heading
    heading_sin: FloatArray

    def stack(self) -> FloatArray:
        """The rotations as a (n, 3, 3) stack (a view)."""
        return self.rotation.transpose(2, 0, 1)


def start_orientation(acc_first_s: FloatArray) -> FloatArray:
    """Initial sensor → world rotation from the mean specific force of the first second."""
    return np.asarray(rotation_aligning(acc_first_s.mean(axis=0, keepdims=True), UP)[0])


class OrientationTracker:
    """One sensor's orientation and walking heading, block after block (state carried over).

    `sensor_to_segment` maps segment-frame vectors to sensor-frame vectors (calibration.py);
    without it the sensor's own frame is tracked.
    """

    def __init__(
        self,
        start_rotation: FloatArray,
        gyro_bias_dps: FloatArray,
        fs: float,
        sensor_to_segment: FloatArray | None = None,
    ) -> None:
        self._bias_dps = np.ascontiguousarray(gyro_bias_dps, dtype=np.float64)
        self._segment = np.ascontiguousarray(
            np.eye(3) if sensor_to_segment is None else sensor_to_segment, dtype=np.float64
        )
        # quaternion (w, x, y, z), then the previous sample's time and bias-corrected rate
        # (rad/s), its unwrapped yaw and yaw, its heading's cos and sin and the heading; last,
        # the samples seen by _cos_sin and by _integrate. NaN: no sample yet.
        self._carry = np.full(15, np.nan)
        self._carry[13:] = 0.0
        self._carry[:4] = matrix_to_quat(start_rotation)
        self._gravity = LowpassState.for_rate(fs, 3)  # of the specific force in world
        self._yaw = LowpassState.for_rate(fs, 1)

    def track(self, time_s: FloatArray, acc: FloatArray, gyr_dps: FloatArray) -> OrientedBlock:
        n = time_s.shape[0]
        rotation, acc_world = np.empty((3, 3, n)), np.empty((3, n))
        gravity, yaw_lowpass = self._gravity, self._yaw
        _orient(
            np.ascontiguousarray(time_s, dtype=np.float64),
            np.ascontiguousarray(acc, dtype=np.float64),
            np.ascontiguousarray(gyr_dps, dtype=np.float64),
            self._bias_dps,
            self._segment,
            self._carry,
            gravity.widths,
            gravity.windows,
            gravity.sums,
            gravity.smoothed,
            gravity.cursor,
            rotation,
            acc_world,
        )
        yaw = trig.arctan2(rotation[1, 0], rotation[0, 0])
        heading, heading_cs = np.empty((1, n)), np.empty((2, n))
        lp = yaw_lowpass
        _heading(
            yaw, self._carry, lp.widths, lp.windows, lp.sums, lp.smoothed, lp.cursor, heading,
            heading_cs,
        )  # fmt: skip
        return OrientedBlock(rotation, acc_world, yaw, heading[0], heading_cs[0], heading_cs[1])


@numba.njit(cache=True, error_model="numpy")
def _orient(
    time_s: np.ndarray,
    acc: np.ndarray,
    gyr_dps: np.ndarray,
    bias_dps: np.ndarray,
    segment: np.ndarray,
    carry: np.ndarray,
    widths: np.ndarray,
    windows: np.ndarray,
    sums: np.ndarray,
    smoothed: np.ndarray,
    cursor: np.ndarray,
    rotation: np.ndarray,
    acc_world: np.ndarray,
) -> None:  # pragma: no cover - compiled
    """Integrate the rates, rotate the specific force into the integrated frame, low-pass it
    (the gravity estimate), and write the tilt-corrected segment → world rotations and specific
    force. Compiled: the integration and the low-pass are recursions over samples."""
    quat = np.empty((4, time_s.shape[0]))
    _integrate(time_s, gyr_dps, bias_dps, carry, quat)
    _rotate(quat, acc, segment, rotation, acc_world)
    gravity = acc_world.copy()
    lowpass_inplace(widths, windows, sums, smoothed, cursor, gravity)
    _correct(gravity, rotation, acc_world)


@numba.njit(cache=True, error_model="numpy")
def _integrate(
    time_s: np.ndarray,
    gyr_dps: np.ndarray,
    bias_dps: np.ndarray,
    carry: np.ndarray,
    quat: np.ndarray,
) -> None:  # pragma: no cover - compiled
    """Strapdown integration, mid-point rate over each interval, from the carried state. |q| is
    renormalised every 16th sample (by count, whatever the blocks): off the recursion's critical
    path the rest of the time, and |q| − 1 stays below ~1e-15."""
    deg = np.pi / 180.0
    w, x, y, z = carry[0], carry[1], carry[2], carry[3]
    t, px, py, pz = carry[4], carry[5], carry[6], carry[7]
    count = int(carry[14])
    for i in range(time_s.shape[0]):
        rx = (gyr_dps[i, 0] - bias_dps[0]) * deg
        ry = (gyr_dps[i, 1] - bias_dps[1]) * deg
        rz = (gyr_dps[i, 2] - bias_dps[2]) * deg
        if not np.isnan(t):
            w, x, y, z = quat_step(
                w,
                x,
                y,
                z,
                0.5 * (px + rx),
                0.5 * (py + ry),
                0.5 * (pz + rz),
                time_s[i] - t,
                count % 16 == 0,
            )
        t, px, py, pz = time_s[i], rx, ry, rz
        quat[0, i], quat[1, i], quat[2, i], quat[3, i] = w, x, y, z
        count += 1
    carry[0], carry[1], carry[2], carry[3] = w, x, y, z
    carry[4], carry[5], carry[6], carry[7] = t, px, py, pz
    carry[14] = count


@numba.njit(cache=True, error_model="numpy")
def _rotate(
    quat: np.ndarray,
    acc: np.ndarray,
    segment: np.ndarray,
    rotation: np.ndarray,
    acc_world: np.ndarray,
) -> None:  # pragma: no cover - compiled
    """Specific force in the integrated world frame, and segment → integrated world."""
    s00, s01, s02 = segment[0, 0], segment[0, 1], segment[0, 2]
    s10, s11, s12 = segment[1, 0], segment[1, 1], segment[1, 2]
    s20, s21, s22 = segment[2, 0], segment[2, 1], segment[2, 2]
    for i in range(quat.shape[1]):
        w, x, y, z = quat[0, i], quat[1, i], quat[2, i], quat[3, i]
        r00 = 1 - 2 * (y * y + z * z)
        r01 = 2 * (x * y - w * z)
        r02 = 2 * (x * z + w * y)
        r10 = 2 * (x * y + w * z)
        r11 = 1 - 2 * (x * x + z * z)
        r12 = 2 * (y * z - w * x)
        r20 = 2 * (x * z - w * y)
        r21 = 2 * (y * z + w * x)
        r22 = 1 - 2 * (x * x + y * y)
        f0, f1, f2 = acc[i, 0], acc[i, 1], acc[i, 2]
        acc_world[0, i] = r00 * f0 + r01 * f1 + r02 * f2
        acc_world[1, i] = r10 * f0 + r11 * f1 + r12 * f2
        acc_world[2, i] = r20 * f0 + r21 * f1 + r22 * f2
        rotation[0, 0, i] = r00 * s00 + r01 * s10 + r02 * s20
        rotation[0, 1, i] = r00 * s01 + r01 * s11 + r02 * s21
        rotation[0, 2, i] = r00 * s02 + r01 * s12 + r02 * s22
        rotation[1, 0, i] = r10 * s00 + r11 * s10 + r12 * s20
        rotation[1, 1, i] = r10 * s01 + r11 * s11 + r12 * s21
        rotation[1, 2, i] = r10 * s02 + r11 * s12 + r12 * s22
        rotation[2, 0, i] = r20 * s00 + r21 * s10 + r22 * s20
        rotation[2, 1, i] = r20 * s01 + r21 * s11 + r22 * s21
        rotation[2, 2, i] = r20 * s02 + r21 * s12 + r22 * s22


@numba.njit(cache=True, error_model="numpy")
def _correct(
    gravity: np.ndarray, rotation: np.ndarray, acc_world: np.ndarray
) -> None:  # pragma: no cover - compiled
    """Turn each sample by the smallest rotation c taking its gravity estimate v onto up: with
    the axis a = v × up and cos = v · up, c = I + [a]× + [a]×² / (1 + cos) (Rodrigues)."""
    for i in range(gravity.shape[1]):
        g0, g1, g2 = gravity[0, i], gravity[1, i], gravity[2, i]
        inverse = 1.0 / np.sqrt(g0 * g0 + g1 * g1 + g2 * g2)
        ax, ay, cos = g1 * inverse, -g0 * inverse, g2 * inverse
        across = ax * ax + ay * ay  # sin²
        # f = (1 − cos) / sin², in the form that is accurate where it is evaluated
        if cos > 0.0:
            f = 1.0 / (1.0 + cos)
        elif across > 1e-24:
            f = (1.0 - cos) / across
        else:  # pointing straight down: no axis, leave it (as rotation_aligning does)
            f = 0.0
        c00 = 1.0 - f * ay * ay
        c01 = f * ax * ay
        c02 = ay
        c11 = 1.0 - f * ax * ax
        c12 = -ax
        c22 = 1.0 - f * across  # c10 = c01, c20 = −c02, c21 = −c12
        a0, a1, a2 = acc_world[0, i], acc_world[1, i], acc_world[2, i]
        acc_world[0, i] = c00 * a0 + c01 * a1 + c02 * a2
        acc_world[1, i] = c01 * a0 + c11 * a1 + c12 * a2
        acc_world[2, i] = -c02 * a0 - c12 * a1 + c22 * a2
        for col in range(3):
            m0, m1, m2 = rotation[0, col, i], rotation[1, col, i], rotation[2, col, i]
            rotation[0, col, i] = c00 * m0 + c01 * m1 + c02 * m2
            rotation[1, col, i] = c01 * m0 + c11 * m1 + c12 * m2
            rotation[2, col, i] = -c02 * m0 - c12 * m1 + c22 * m2


@numba.njit(cache=True)
def _unwrap(yaw: np.ndarray, carry: np.ndarray) -> None:  # pragma: no cover - compiled
    """Unwrap yaw in place as np.unwrap does (a jump of π or more between consecutive samples
    is a wrap), continuing from the previous sample's yaw carry[9] and unwrapped yaw carry[8].
    Compiled: a recursion over samples."""
    raw, unwrapped = carry[9], carry[8]
    for i in range(yaw.shape[0]):
        step = yaw[i] - raw
        raw = yaw[i]
        if np.isnan(step):  # the first sample
            unwrapped = raw
        else:
            if abs(step) >= np.pi:
                wrapped = (step + np.pi) % (2 * np.pi) - np.pi
                if wrapped == -np.pi and step > 0:
                    wrapped = np.pi
                step = wrapped
            unwrapped += step
        yaw[i] = unwrapped
    carry[8], carry[9] = unwrapped, raw


@numba.njit(cache=True)
def _heading(
    yaw: np.ndarray,
    carry: np.ndarray,
    widths: np.ndarray,
    windows: np.ndarray,
    sums: np.ndarray,
    smoothed: np.ndarray,
    cursor: np.ndarray,
    heading: np.ndarray,
    trig: np.ndarray,
) -> None:  # pragma: no cover - compiled
    """Unwrap the yaw in place, low-pass it into the heading (1, n), and the heading's cos and
    sin into trig (2, n)."""
    _unwrap(yaw, carry)
    heading[0, :] = yaw
    lowpass_inplace(widths, windows, sums, smoothed, cursor, heading)
    _cos_sin(heading[0], carry, trig)


@numba.njit(cache=True, error_model="numpy")
def _cos_sin(angle: np.ndarray, carry: np.ndarray, trig: np.ndarray) -> None:  # pragma: no cover
    """cos and sin of a slowly varying angle: each turned from the previous sample's by the
    small step (series exact to double precision below 0.01 rad: ~4x cheaper than cos and sin),
    evaluated exactly every 64th sample so that rounding cannot build up (< 1e-13). Compiled:
    a recursion over samples."""
    c, s, previous, count = carry[10], carry[11], carry[12], int(carry[13])
    for i in range(angle.shape[0]):
        step = angle[i] - previous
        if count % 64 == 0 or not abs(step) < 0.01:  # also the first sample (NaN)
            c, s = np.cos(angle[i]), np.sin(angle[i])
        else:
            a = step * step
            dc = 1.0 - a * 0.5 * (1.0 - a * (1 / 12) * (1.0 - a * (1 / 30)))
            ds = step * (1.0 - a * (1 / 6) * (1.0 - a * (1 / 20) * (1.0 - a * (1 / 42))))
            c, s = c * dc - s * ds, s * dc + c * ds
        previous = angle[i]
        trig[0, i], trig[1, i] = c, s
        count += 1
    carry[10], carry[11], carry[12], carry[13] = c, s, previous, count
