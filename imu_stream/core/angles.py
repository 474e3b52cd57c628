"""Clinical angles from segment orientations (METRICS.md), the one definition of each.

All inputs are stacks of rotation matrices (n, 3, 3), body → global, with body frames
x anterior, y left, z up (thigh/shank z along the long axis, pointing proximally) and the
global frame z up. `heading_rad` is the walking direction about global z. Only single elements
`r[:, i, j]` are read, so a stack that is a view of (3, 3, n) rows costs no copies.
"""

from __future__ import annotations

import numba
import numpy as np

from imu_stream.core import trig
from imu_stream.records import FloatArray

Rotations = np.ndarray  # (n, 3, 3) float64
Angle = FloatArray | tuple[FloatArray, FloatArray]  # radians (n,), or their (cos, sin)
DEG = 180.0 / np.pi


def _cos_sin(angle: Angle) -> tuple[FloatArray, FloatArray]:
    if isinstance(angle, tuple):
        return angle
    return np.cos(angle), np.sin(angle)


def _degrees(rad: FloatArray, sign: float = 1.0) -> FloatArray:
    """sign × rad in degrees, in place (`rad` is a fresh temporary)."""
    rad *= sign * DEG
    return rad


# The arithmetic before each angle's atan2 or asin, shared by the numpy definitions below and
# the compiled per-sample kernels of the streaming core (the same operations: the same values).
def _relative_yaw(
    x: FloatArray, y: FloatArray, c: FloatArray, s: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """(sin, cos) × |(x, y)| of the angle of (x, y) from the direction (c, s) = (cos, sin)."""
    return y * c - x * s, x * c + y * s


def _left_of(x: FloatArray, y: FloatArray, c: FloatArray, s: FloatArray) -> FloatArray:
    """The left component of (x, y) in the frame of the direction (c, s)."""
    return c * y - s * x


def _turned(
    x: FloatArray, y: FloatArray, c: FloatArray, s: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """(x, y) turned by the angle of cos c, sin s."""
    return c * x - s * y, s * x + c * y


def _dot(
    a0: FloatArray, a1: FloatArray, a2: FloatArray, b0: FloatArray, b1: FloatArray, b2: FloatArray
) -> FloatArray:
    return a0 * b0 + a1 * b1 + a2 * b2


_relative_yaw_c = numba.njit(cache=True, inline="always")(_relative_yaw)
_left_of_c = numba.njit(cache=True, inline="always")(_left_of)
_turned_c = numba.njit(cache=True, inline="always")(_turned)
_dot_c = numba.njit(cache=True, inline="always")(_dot)


def pelvic_obliquity_deg(pelvis: Rotations) -> FloatArray:
    """Rotation about the anterior axis; positive when the left side is lower."""
    return _degrees(np.arctan2(pelvis[:, 2, 1], pelvis[:, 2, 2]), -1.0)


def pelvic_tilt_deg(pelvis: Rotations) -> FloatArray:
    """Anterior tilt positive."""
    return _degrees(np.arcsin(np.clip(-pelvis[:, 2, 0], -1.0, 1.0)))


def pelvic_rotation_deg(pelvis: Rotations, heading_rad: Angle) -> FloatArray:
    """Left side forward positive: minus the pelvis yaw relative to the heading."""
    c, s = _cos_sin(heading_rad)
    # the angle of the pelvis's anterior axis from the heading, wrapped to ±π by atan2
    return _degrees(np.arctan2(*_relative_yaw(pelvis[:, 0, 0], pelvis[:, 1, 0], c, s)), -1.0)


def thigh_adduction_deg(thigh: Rotations, heading_rad: Angle, side: str) -> FloatArray:
    """Thigh long axis vs vertical in the frontal plane of the heading; knee medial positive."""
    c, s = _cos_sin(heading_rad)
    left = _left_of(thigh[:, 0, 2], thigh[:, 1, 2], c, s)  # of the axis, in the heading frame
    return _degrees(np.arctan2(left, thigh[:, 2, 2]), 1.0 if side == "left" else -1.0)


def _cardan_yxz_second_deg(
    proximal: Rotations, distal: Rotations, distal_turn_rad: Angle | None = None
) -> FloatArray:
    """Second angle (about the floating anterior axis) of the Y-X-Z decomposition of
    proximalᵀ·distal, i.e. −asin(R_rel[1, 2]) without forming R_rel; the distal segment
    turned about global z by `distal_turn_rad` first, if given."""
    # R_rel[1, 2] = (column 1 of proximal) · (column 2 of distal)
    x, y = distal[:, 0, 2], distal[:, 1, 2]
    if distal_turn_rad is not None:
        x, y = _turned(x, y, *_cos_sin(distal_turn_rad))
    r12 = _dot(proximal[:, 0, 1], proximal[:, 1, 1], proximal[:, 2, 1], x, y, distal[:, 2, 2])
    return _degrees(np.arcsin(np.clip(r12, -1.0, 1.0, out=r12)), -1.0)


def hip_adduction_deg(
    pelvis: Rotations, thigh: Rotations, side: str, thigh_turn_rad: Angle | None = None
) -> FloatArray:
    """Thigh relative to pelvis, flexion–adduction–rotation order; adduction positive.

    `thigh_turn_rad`: the thigh turned about global z by this much first (e.g. to share the
    pelvis's heading reference)."""
    beta = _cardan_yxz_second_deg(pelvis, thigh, thigh_turn_rad)
    return beta if side == "right" else -beta


def knee_abduction_deg(thigh: Rotations, shank: Rotations, side: str) -> FloatArray:
    """Shank relative to thigh, same order; valgus (abduction) positive."""
    beta = _cardan_yxz_second_deg(thigh, shank)
    return -beta if side == "right" else beta


# --- the streaming core's angles: rotations as (3, 3, n) rows, one compiled pass per segment
# writing the atan2 and asin arguments, then one vectorised atan2 and asin for all (below).


@numba.njit(cache=True)
def pelvis_arguments(
    pelvis: np.ndarray, c: np.ndarray, s: np.ndarray, y: np.ndarray, x: np.ndarray, a: np.ndarray
) -> None:  # pragma: no cover - compiled
    """atan2 rows y, x: obliquity, rotation (heading cos c, sin s); asin row a: tilt."""
    for i in range(pelvis.shape[2]):
        y[0, i], x[0, i] = pelvis[2, 1, i], pelvis[2, 2, i]
        y[1, i], x[1, i] = _relative_yaw_c(pelvis[0, 0, i], pelvis[1, 0, i], c[i], s[i])
        a[0, i] = -pelvis[2, 0, i]


@numba.njit(cache=True)
def thigh_arguments(
    pelvis: np.ndarray,
    pelvis_c: np.ndarray,
    pelvis_s: np.ndarray,
    thigh: np.ndarray,
    c: np.ndarray,
    s: np.ndarray,
    y: np.ndarray,
    x: np.ndarray,
    a: np.ndarray,
) -> None:  # pragma: no cover - compiled
    """atan2 rows y, x: thigh adduction, thigh pitch (as calibration.thigh_pitch_deg); asin
    row a: hip adduction, the thigh turned by the pelvis's heading minus its own (cos and sin
    by the difference rules)."""
    for i in range(thigh.shape[2]):
        tx, ty, tz = thigh[0, 2, i], thigh[1, 2, i], thigh[2, 2, i]
        y[0, i], x[0, i] = _left_of_c(tx, ty, c[i], s[i]), tz
        y[1, i], x[1, i] = thigh[2, 0, i], tz
        turn_c = pelvis_c[i] * c[i] + pelvis_s[i] * s[i]
        turn_s = pelvis_s[i] * c[i] - pelvis_c[i] * s[i]
        ux, uy = _turned_c(tx, ty, turn_c, turn_s)
        a[0, i] = _dot_c(pelvis[0, 1, i], pelvis[1, 1, i], pelvis[2, 1, i], ux, uy, tz)


def finish_angles_deg(
    y: FloatArray, x: FloatArray, a: FloatArray, atan_sign: FloatArray, asin_sign: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """All atan2 rows and all asin rows in degrees, each row times its sign."""
    atan = trig.arctan2_in_place(y, x, atan_sign * DEG)
    asin = trig.arcsin_in_place(a, asin_sign * DEG)
    return atan, asin
