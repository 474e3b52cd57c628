"""Clinical angles from segment orientations (METRICS.md), the one definition of each.

All inputs are stacks of rotation matrices (n, 3, 3), body → global, with body frames
x anterior, y left, z up (thigh/shank z along the long axis, pointing proximally) and the
global frame z up. `heading_rad` is the walking direction about global z.
"""

from __future__ import annotations

import numpy as np

from imu_stream.records import FloatArray

Rotations = np.ndarray  # (n, 3, 3) float64


def _to_heading_frame(vectors: FloatArray, heading_rad: FloatArray) -> FloatArray:
    """Express global vectors (n, 3) in the heading frame (rotate by −heading about z)."""
    c, s = np.cos(heading_rad), np.sin(heading_rad)
    x, y = vectors[:, 0], vectors[:, 1]
    return np.column_stack((c * x + s * y, -s * x + c * y, vectors[:, 2]))


def pelvic_obliquity_deg(pelvis: Rotations) -> FloatArray:
    """Rotation about the anterior axis; positive when the left side is lower."""
    return np.asarray(-np.degrees(np.arctan2(pelvis[:, 2, 1], pelvis[:, 2, 2])))


def pelvic_tilt_deg(pelvis: Rotations) -> FloatArray:
    """Anterior tilt positive."""
    return np.asarray(np.degrees(np.arcsin(np.clip(-pelvis[:, 2, 0], -1.0, 1.0))))


def pelvic_rotation_deg(pelvis: Rotations, heading_rad: FloatArray) -> FloatArray:
    """Left side forward positive: minus the pelvis yaw relative to the heading."""
    yaw = np.arctan2(pelvis[:, 1, 0], pelvis[:, 0, 0])
    turn = np.remainder(yaw - heading_rad + np.pi, 2 * np.pi) - np.pi  # wrapped to ±π
    return np.asarray(-np.degrees(turn))


def thigh_adduction_deg(thigh: Rotations, heading_rad: FloatArray, side: str) -> FloatArray:
    """Thigh long axis vs vertical in the frontal plane of the heading; knee medial positive."""
    axis = _to_heading_frame(thigh[:, :, 2], heading_rad)
    lateral = axis[:, 1] if side == "left" else -axis[:, 1]
    return np.asarray(np.degrees(np.arctan2(lateral, axis[:, 2])))


def _cardan_yxz_second_deg(proximal: Rotations, distal_axis: FloatArray) -> FloatArray:
    """Second angle (about the floating anterior axis) of the Y-X-Z decomposition of
    proximalᵀ·distal, i.e. −asin(R_rel[1, 2]) without forming R_rel; `distal_axis` (n, 3) is
    the distal segment's z axis (column 2) in the global frame."""
    # R_rel[1, 2] = (column 1 of proximal) · (column 2 of distal)
    r12 = np.einsum("ni,ni->n", proximal[:, :, 1], distal_axis)
    return np.asarray(-np.degrees(np.arcsin(np.clip(r12, -1.0, 1.0))))


def hip_adduction_deg(
    pelvis: Rotations, thigh: Rotations, side: str, thigh_turn_rad: FloatArray | None = None
) -> FloatArray:
    """Thigh relative to pelvis, flexion–adduction–rotation order; adduction positive.

    `thigh_turn_rad`: the thigh turned about global z by this much first (e.g. to share the
    pelvis's heading reference)."""
    axis = thigh[:, :, 2]
    if thigh_turn_rad is not None:
        c, s = np.cos(thigh_turn_rad), np.sin(thigh_turn_rad)
        x, y = axis[:, 0], axis[:, 1]
        axis = np.column_stack((c * x - s * y, s * x + c * y, axis[:, 2]))
    beta = _cardan_yxz_second_deg(pelvis, axis)
    return beta if side == "right" else -beta


def knee_abduction_deg(thigh: Rotations, shank: Rotations, side: str) -> FloatArray:
    """Shank relative to thigh, same order; valgus (abduction) positive."""
    beta = _cardan_yxz_second_deg(thigh, shank[:, :, 2])
    return -beta if side == "right" else beta
