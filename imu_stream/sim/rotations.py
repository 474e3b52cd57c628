"""Stacks of elementary rotations (n, 3, 3) and small helpers on rotation matrices."""

from __future__ import annotations

import numpy as np

from imu_stream.records import FloatArray


def _stack(c: FloatArray, s: FloatArray, axis: int) -> FloatArray:
    n = c.shape[0]
    out = np.zeros((n, 3, 3))
    i, j = [(1, 2), (2, 0), (0, 1)][axis]
    out[:, axis, axis] = 1.0
    out[:, i, i] = c
    out[:, j, j] = c
    out[:, i, j] = -s
    out[:, j, i] = s
    return out


def rot_x(angle_rad: FloatArray) -> FloatArray:
    """Right-handed rotations about x, one per angle."""
    a = np.asarray(angle_rad, dtype=np.float64)
    return _stack(np.cos(a), np.sin(a), 0)


def rot_y(angle_rad: FloatArray) -> FloatArray:
    a = np.asarray(angle_rad, dtype=np.float64)
    return _stack(np.cos(a), np.sin(a), 1)


def rot_z(angle_rad: FloatArray) -> FloatArray:
    a = np.asarray(angle_rad, dtype=np.float64)
    return _stack(np.cos(a), np.sin(a), 2)


def then_rotate(rotations: FloatArray, axis: int, angle_rad: FloatArray) -> FloatArray:
    """rotations · R_axis(angle) for a stack, mixing two columns (cheaper than a matmul)."""
    i, j = [(1, 2), (2, 0), (0, 1)][axis]
    c, s = np.cos(angle_rad)[:, None], np.sin(angle_rad)[:, None]
    col_i, col_j = rotations[:, :, i], rotations[:, :, j]
    out = rotations.copy()
    out[:, :, i] = c * col_i + s * col_j
    out[:, :, j] = c * col_j - s * col_i
    return out


def apply(rotations: FloatArray, vector: FloatArray) -> FloatArray:
    """rotations · vector for a stack and one constant vector: (n, 3)."""
    return np.asarray(rotations.reshape(-1, 3) @ vector).reshape(-1, 3)


def random_rotation(rng: np.random.Generator) -> FloatArray:
    """A rotation matrix drawn uniformly from SO(3) (normalised Gaussian quaternion)."""
    w, x, y, z = rng.normal(size=4)
    norm = np.sqrt(w * w + x * x + y * y + z * z)
    w, x, y, z = w / norm, x / norm, y / norm, z / norm
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )


def angle_between_deg(a: FloatArray, b: FloatArray) -> FloatArray:
    """Rotation angle (deg) of aᵀ·b for stacks of rotations: how far apart two orientations are."""
    trace = np.einsum("nij,nij->n", a, b)
    return np.asarray(np.degrees(np.arccos(np.clip((trace - 1.0) / 2.0, -1.0, 1.0))))
