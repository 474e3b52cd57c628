"""Clinical angles from segment orientations (METRICS.md), the one definition of each.

All inputs are stacks of rotation matrices (n, 3, 3), body → global, with body frames
x anterior, y left, z up (thigh/shank z along the long axis, pointing proximally) and the
global frame z up. `heading_rad` is the walking direction about global z. Only single elements
`r[:, i, j]` are read, so a stack that is a view of (3, 3, n) rows costs no copies.
"""

from __future__ import annotations

import numpy as np

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


def pelvic_obliquity_deg(pelvis: Rotations) -> FloatArray:
    """Rotation about the anterior axis; positive when the left side is lower."""
    return _degrees(np.arctan2(pelvis[:, 2, 1], pelvis[:, 2, 2]), -1.0)


def pelvic_tilt_deg(pelvis: Rotations) -> FloatArray:
    """Anterior tilt positive."""
    return _degrees(np.arcsin(np.clip(-pelvis[:, 2, 0], -1.0, 1.0)))


def pelvic_rotation_deg(pelvis: Rotations, heading_rad: Angle) -> FloatArray:
    """Left side forward positive: minus the pelvis yaw relative to the heading."""
    c, s = _cos_sin(heading_rad)
    x, y = pelvis[:, 0, 0], pelvis[:, 1, 0]  # the pelvis's anterior axis, horizontally
    # its angle from the heading: atan2(sin, cos) of yaw − heading, wrapped to ±π by atan2
    return _degrees(np.arctan2(y * c - x * s, x * c + y * s), -1.0)


def thigh_adduction_deg(thigh: Rotations, heading_rad: Angle, side: str) -> FloatArray:
    """Thigh long axis vs vertical in the frontal plane of the heading; knee medial positive."""
    c, s = _cos_sin(heading_rad)
    # the axis's left component in the heading frame (rotated by −heading about z)
    left = c * thigh[:, 1, 2] - s * thigh[:, 0, 2]
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
        c, s = _cos_sin(distal_turn_rad)
        x, y = c * x - s * y, s * x + c * y
    r12 = proximal[:, 0, 1] * x + proximal[:, 1, 1] * y + proximal[:, 2, 1] * distal[:, 2, 2]
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
