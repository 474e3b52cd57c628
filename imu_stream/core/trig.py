"""atan2 and asin for the per-sample angles, compiled and vectorisable.

numpy's arctan2 and arcsin cost 15–27 ns a value on the 2-core reference machine, most of the
core's per-sample time (nine angle rows and three yaw rows per sample); these take 2–3 ns.
atan2 reduces to atan on [−tan(π/8), tan(π/8)], where a degree-9 polynomial in r² is exact
to 1e-15 rad (fitted to numpy's arctan, max error 6e-16 over the interval). For finite
or NaN inputs (rotation entries): NaN in gives NaN out; signed zeros are not distinguished
(atan2(±0, −0) is 0 where numpy says ±π) and infinities are not handled.
"""

from __future__ import annotations

import numba
import numpy as np

from imu_stream.records import FloatArray

_TAN_PI_8 = 0.41421356237309503
_PI = 3.141592653589793
# atan(r) / r as a polynomial in r², |r| ≤ tan(π/8)
_C0, _C1, _C2, _C3, _C4 = (
    0.9999999999999993,
    -0.3333333333322445,
    0.19999999978897537,
    -0.14285712691435284,
    0.11111049738992035,
)
_C5, _C6, _C7, _C8, _C9 = (
    -0.09089544793809937,
    0.07673681770261218,
    -0.06506825262718442,
    0.05027378542777753,
    -0.02535036739051461,
)
# Floating-point contraction (FMA) and reciprocal only: NaN must still propagate.
_FAST = {"contract", "arcp"}


# Branch-free (selects only) and without Python's division check, so that LLVM vectorises it.
@numba.njit(cache=True, inline="always", fastmath=_FAST, error_model="numpy")
def _atan2(y: float, x: float) -> float:  # pragma: no cover - compiled
    ay, ax = abs(y), abs(x)
    largest, smallest = max(ay, ax), min(ay, ax)
    r = smallest / largest
    r = 0.0 if largest == 0.0 else r
    high = r > _TAN_PI_8
    t = (r - 1.0) / (r + 1.0)  # atan(r) = π/4 + atan(t)
    t = t if high else r
    s = t * t
    p = ((((((((_C9 * s + _C8) * s + _C7) * s + _C6) * s + _C5) * s + _C4) * s + _C3) * s + _C2) * s + _C1) * s + _C0  # noqa: E501
    angle = p * t + (0.25 * _PI if high else 0.0)
    angle = 0.5 * _PI - angle if ay > ax else angle
    angle = _PI - angle if x < 0.0 else angle
    angle = -angle if y < 0.0 else angle
    return angle if x == x else x  # max/min drop a NaN x


# In-place kernels read and write one array at the same index: LLVM vectorises that, but not
# two arrays that alias (its runtime overlap check sends them down the scalar loop). Each row is
# scaled as it is written (degrees, sign conventions) to save a pass over the data.
@numba.njit(cache=True, fastmath=_FAST, error_model="numpy")
def _atan2_into_y(y: np.ndarray, x: np.ndarray, scale: np.ndarray) -> None:  # pragma: no cover
    for r in range(y.shape[0]):
        row_y, row_x, factor = y[r], x[r], scale[r]
        for i in range(row_y.size):
            row_y[i] = factor * _atan2(row_y[i], row_x[i])


@numba.njit(cache=True, fastmath=_FAST, error_model="numpy")
def _asin_in_place(a: np.ndarray, scale: np.ndarray) -> None:  # pragma: no cover - compiled
    for r in range(a.shape[0]):
        row, factor = a[r], scale[r]
        for i in range(row.size):
            v = row[i]
            v = -1.0 if v < -1.0 else (1.0 if v > 1.0 else v)  # rounding can pass ±1 a little
            row[i] = factor * _atan2(v, np.sqrt((1.0 - v) * (1.0 + v)))


def _rows(values: FloatArray) -> FloatArray:
    """A C-contiguous float64 array as (rows, last axis), without copying."""
    if values.dtype != np.float64 or not values.flags.c_contiguous:
        raise ValueError("expected a C-contiguous float64 array")
    return values.reshape(-1, values.shape[-1] if values.ndim else 1)


def _row_scale(rows: FloatArray, row_scale: FloatArray | None) -> FloatArray:
    if row_scale is None:
        return np.ones(rows.shape[0])
    scale = np.ascontiguousarray(row_scale, dtype=np.float64).reshape(-1)
    if scale.size != rows.shape[0]:
        raise ValueError(f"{scale.size} row scales for {rows.shape[0]} rows")
    return scale


def arctan2(y: FloatArray, x: FloatArray) -> FloatArray:
    """np.arctan2 of same-shape float arrays, as a new array."""
    out = np.array(y, dtype=np.float64, order="C")
    arctan2_in_place(out, np.ascontiguousarray(x, dtype=np.float64))
    return out


def arctan2_in_place(
    y: FloatArray, x: FloatArray, row_scale: FloatArray | None = None
) -> FloatArray:
    """np.arctan2(y, x) written over `y` (C-contiguous float64, as `x`, not overlapping),
    each row (along the last axis) times its `row_scale` if given."""
    if y.shape != x.shape:
        raise ValueError(f"arctan2: shapes {y.shape} and {x.shape} differ")
    rows = _rows(y)
    _atan2_into_y(rows, _rows(x), _row_scale(rows, row_scale))
    return y


def arcsin_in_place(a: FloatArray, row_scale: FloatArray | None = None) -> FloatArray:
    """np.arcsin of `a` (C-contiguous float64) written over it, its values clipped to
    [−1, 1] first, each row (along the last axis) times its `row_scale` if given."""
    rows = _rows(a)
    _asin_in_place(rows, _row_scale(rows, row_scale))
    return a
