"""Rotation utilities on stacks of rotation matrices and quaternions (w, x, y, z)."""

from __future__ import annotations

import numba
import numpy as np

from imu_stream.records import FloatArray


@numba.njit(cache=True, inline="always")
def quat_step(
    w: float,
    x: float,
    y: float,
    z: float,
    gx: float,
    gy: float,
    gz: float,
    h: float,
    normalise: bool = True,
) -> tuple[float, float, float, float]:  # pragma: no cover - compiled
    """q ⊗ exp(h·g/2): one step of a body-frame rate g (rad/s) held over h seconds; `normalise`
    also takes the rounding off |q| (it grows by ~1e-16 a step otherwise)."""
    half_sq = 0.25 * h * h * (gx * gx + gy * gy + gz * gz)  # (half the angle turned)²
    if half_sq < 0.01:
        # Below 0.1 rad, the series to the 8th power are exact to double precision (the next
        # terms < 3e-17) and far cheaper than sin and cos; at 200 Hz, rates up to 2300 °/s.
        a = half_sq
        dw = 1.0 - a * 0.5 * (1.0 - a * (1 / 12) * (1.0 - a * (1 / 30) * (1.0 - a * (1 / 56))))
        s = 0.5 * h * (
            1.0 - a * (1 / 6) * (1.0 - a * (1 / 20) * (1.0 - a * (1 / 42) * (1.0 - a * (1 / 72))))
        )
    else:
        norm = np.sqrt(gx * gx + gy * gy + gz * gz)
        s = np.sin(0.5 * norm * h) / norm
        dw = np.cos(0.5 * norm * h)
    dx, dy, dz = gx * s, gy * s, gz * s
    nw = w * dw - x * dx - y * dy - z * dz
    nx = w * dx + x * dw + y * dz - z * dy
    ny = w * dy - x * dz + y * dw + z * dx
    nz = w * dz + x * dy - y * dx + z * dw
    if not normalise:
        return nw, nx, ny, nz
    # One Newton step for 1/√|q|², exact to double precision since |q|² differs from 1 by
    # rounding only: no square root in the recursion.
    inv = 0.5 * (3.0 - (nw * nw + nx * nx + ny * ny + nz * nz))
    return nw * inv, nx * inv, ny * inv, nz * inv


@numba.njit(cache=True)
def _integrate_gyro(
    gyr_rad_s: np.ndarray, dt: np.ndarray, q0: np.ndarray
) -> np.ndarray:  # pragma: no cover - compiled
    n = gyr_rad_s.shape[0]
    out = np.empty((n, 4))
    w, x, y, z = q0[0], q0[1], q0[2], q0[3]
    out[0, 0], out[0, 1], out[0, 2], out[0, 3] = w, x, y, z
    for i in range(1, n):
        # Mid-point rate over the interval; exact exponential of that constant rate.
        w, x, y, z = quat_step(
            w,
            x,
            y,
            z,
            0.5 * (gyr_rad_s[i - 1, 0] + gyr_rad_s[i, 0]),
            0.5 * (gyr_rad_s[i - 1, 1] + gyr_rad_s[i, 1]),
            0.5 * (gyr_rad_s[i - 1, 2] + gyr_rad_s[i, 2]),
            dt[i - 1],
        )
        out[i, 0], out[i, 1], out[i, 2], out[i, 3] = w, x, y, z
    return out


def integrate_gyro(gyr_dps: FloatArray, time_s: FloatArray, q0: FloatArray) -> FloatArray:
    """Strapdown integration of body rates (deg/s) from q0; returns quaternions (n, 4).

    A first-order recursion that cannot be vectorized, hence the compiled loop (numba).
    """
    dt = np.diff(time_s)
    return np.asarray(
        _integrate_gyro(
            np.ascontiguousarray(np.radians(gyr_dps)),
            np.ascontiguousarray(dt),
            np.asarray(q0, float),
        )
    )


def quat_to_matrix(q: FloatArray) -> FloatArray:
    """(n, 4) unit quaternions (w, x, y, z) → (n, 3, 3) rotation matrices (body → world)."""
    w, x, y, z = q[:, 0], q[:, 1], q[:, 2], q[:, 3]
    out = np.empty((q.shape[0], 3, 3))
    out[:, 0, 0] = 1 - 2 * (y * y + z * z)
    out[:, 0, 1] = 2 * (x * y - w * z)
    out[:, 0, 2] = 2 * (x * z + w * y)
    out[:, 1, 0] = 2 * (x * y + w * z)
    out[:, 1, 1] = 1 - 2 * (x * x + z * z)
    out[:, 1, 2] = 2 * (y * z - w * x)
    out[:, 2, 0] = 2 * (x * z - w * y)
    out[:, 2, 1] = 2 * (y * z + w * x)
    out[:, 2, 2] = 1 - 2 * (x * x + y * y)
    return out


def matrix_to_quat(m: FloatArray) -> FloatArray:
    """Single 3x3 rotation matrix → quaternion (w, x, y, z)."""
    tr = m[0, 0] + m[1, 1] + m[2, 2]
    if tr > 0:
        s = 2.0 * np.sqrt(tr + 1.0)
        q = [0.25 * s, (m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s]
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = 2.0 * np.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
        q = [(m[2, 1] - m[1, 2]) / s, 0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s]
    elif m[1, 1] > m[2, 2]:
        s = 2.0 * np.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
        q = [(m[0, 2] - m[2, 0]) / s, (m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s]
    else:
        s = 2.0 * np.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
        q = [(m[1, 0] - m[0, 1]) / s, (m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s]
    out = np.asarray(q, dtype=float)
    return out / np.linalg.norm(out)


def rotation_aligning(vectors: FloatArray, target: FloatArray) -> FloatArray:
    """Smallest rotations (n, 3, 3) taking each unit vector (n, 3) onto the unit `target` (3,)."""
    v = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    axis = np.cross(v, target)
    sin = np.linalg.norm(axis, axis=1)
    cos = v @ target
    k = np.zeros_like(axis)
    ok = sin > 1e-12
    k[ok] = axis[ok] / sin[ok, None]
    kx = np.zeros((v.shape[0], 3, 3))
    kx[:, 0, 1], kx[:, 0, 2] = -k[:, 2], k[:, 1]
    kx[:, 1, 0], kx[:, 1, 2] = k[:, 2], -k[:, 0]
    kx[:, 2, 0], kx[:, 2, 1] = -k[:, 1], k[:, 0]
    eye = np.broadcast_to(np.eye(3), kx.shape)
    # Rodrigues: I + sinθ K + (1 − cosθ) K²
    return np.asarray(eye + sin[:, None, None] * kx + (1 - cos)[:, None, None] * (kx @ kx))


def rot_z(angle_rad: FloatArray) -> FloatArray:
    c, s = np.cos(angle_rad), np.sin(angle_rad)
    out = np.zeros((np.size(angle_rad), 3, 3))
    out[:, 0, 0], out[:, 0, 1] = c, -s
    out[:, 1, 0], out[:, 1, 1] = s, c
    out[:, 2, 2] = 1.0
    return out


def yaw_rad(rotations: FloatArray) -> FloatArray:
    """Heading of each body x axis about world z, unwrapped."""
    return np.unwrap(np.arctan2(rotations[:, 1, 0], rotations[:, 0, 0]))


def frame_from_up_forward(up: FloatArray, forward: FloatArray) -> FloatArray:
    """Segment axes expressed in the sensor frame: columns x (anterior), y (left), z (up).

    Returned matrix maps segment-frame vectors to sensor-frame vectors.
    """
    z = up / np.linalg.norm(up)
    x = forward - (forward @ z) * z
    x = x / np.linalg.norm(x)
    y = np.cross(z, x)
    return np.column_stack((x, y, z))
