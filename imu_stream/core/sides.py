"""Left or right for each initial contact, and the final contact of each stance.

Per step, a cue says which leg landed (score > 0: left):
- with both thigh sensors, the heel-strike shock: it travels up the landing leg, so that thigh's
  sensor rings far harder than the swinging one's right after the contact (independent of how the
  sensors are mounted);
- from the sacrum alone, the sway: during a step the body accelerates away from the stance leg
  (it swings over the foot and back towards the other side).
Within a walking bout the contacts alternate, so the cues are voted over the bout's steps.
"""

from __future__ import annotations

import numba
import numpy as np

from imu_stream.core.metrics import window_argmin
from imu_stream.records import FloatArray

IMPACT_WINDOW_S = (-0.02, 0.10)  # around the contact: the shock's ring-down
FC_SEARCH = (0.15, 0.80)  # fraction of the stride where the stance leg's toe-off is searched
# Toe-off this fraction of a stride after the other leg's contact in walking (each double
# support is ~10 % of the gait cycle at self-selected speed, stance ~60 %: Perry & Burnfield,
# Gait Analysis), before it in running (flight: a duty factor of ~0.35 at 3–5 m/s leaves
# ~15 % of the cycle).
DOUBLE_SUPPORT_FRACTION = 0.10
FLIGHT_FRACTION = 0.15
RUNNING_CADENCE_SPM = 140.0  # above: running (a flight phase)


def impact_scores(
    left_shock: FloatArray, right_shock: FloatArray, ic_idx: np.ndarray, fs: float
) -> FloatArray:
    """log(left / right) shock energy around each contact; `*_shock` is the magnitude of each
    thigh's acceleration derivative (any sensor frame)."""
    lo = round(IMPACT_WINDOW_S[0] * fs)
    hi = max(lo + 1, round(IMPACT_WINDOW_S[1] * fs))
    return _impact_scores(
        np.ascontiguousarray(left_shock, dtype=np.float64),
        np.ascontiguousarray(right_shock, dtype=np.float64),
        np.asarray(ic_idx, dtype=np.int64),
        lo,
        hi,
    )


# Summed window by window, not from a cumulative sum of the whole signal: each score then
# depends on its window's samples alone (the same however the signal was chunked), and the
# live path's few contacts per call cost a few windows, not a pass over its history.
@numba.njit(cache=True)
def _impact_scores(
    left_shock: np.ndarray, right_shock: np.ndarray, ic_idx: np.ndarray, lo: int, hi: int
) -> np.ndarray:  # pragma: no cover - compiled
    n = left_shock.size
    out = np.empty(ic_idx.size)
    for k in range(ic_idx.size):
        energy_l, energy_r = 0.0, 0.0
        for i in range(min(max(ic_idx[k] + lo, 0), n), min(max(ic_idx[k] + hi, 0), n)):
            energy_l += left_shock[i]
            energy_r += right_shock[i]
        out[k] = np.log((energy_l + 1e-9) / (energy_r + 1e-9))
    return out


def shock_magnitude(acc: FloatArray, fs: float) -> FloatArray:
    """|d acc / dt| (m/s³): large only in impacts; independent of orientation and mounting."""
    step = np.empty_like(acc)
    step[0] = 0.0
    np.subtract(acc[1:], acc[:-1], out=step[1:])
    return np.asarray(np.sqrt(np.einsum("ij,ij->i", step, step)) * fs)


@numba.njit(cache=True)
def sway_scores(lateral_acc: np.ndarray, ic_idx: np.ndarray) -> np.ndarray:  # pragma: no cover
    """Per contact i, the change of mean lateral (leftward) acceleration from the step before
    the previous contact to the step before this one; NaN for the first two contacts.

    The step from contact i−1 to i is the stance of the other leg, so the body accelerates
    away from it, towards the side of contact i; only past steps are used, so the cue is
    known as soon as contact i is."""
    out = np.full(ic_idx.size, np.nan)
    if ic_idx.size < 3:
        return out
    step_mean = np.empty(ic_idx.size - 1)
    for j in range(ic_idx.size - 1):
        a, b = ic_idx[j], ic_idx[j + 1]
        total = 0.0
        for i in range(a, b):
            total += lateral_acc[i]
        step_mean[j] = total / max(b - a, 1)
    for j in range(2, ic_idx.size):
        out[j] = (step_mean[j - 1] - step_mean[j - 2]) / 2.0
    return out


def final_contact_times(
    time_s: FloatArray,
    ic0_s: FloatArray,
    ic1_s: FloatArray,
    contralateral_ic_s: FloatArray,
    thigh_pitch_deg: FloatArray | None,
) -> FloatArray:
    """Toe-off of each stance from ic0 to the next same-side ic1 (NaN: none found).

    Running, with that thigh: its greatest extension in stance (the hip extends until
    push-off). Walking, the hip's extension peaks well before toe-off, so the toe-off is put a
    double-support time after the contralateral contact; running without the thigh, a flight
    time before it."""
    stride = ic1_s - ic0_s
    running = 120.0 / stride > RUNNING_CADENCE_SPM
    offset = np.where(running, -FLIGHT_FRACTION * stride, DOUBLE_SUPPORT_FRACTION * stride)
    fc = contralateral_ic_s + offset
    if thigh_pitch_deg is not None and running.any():
        lo = np.searchsorted(time_s, ic0_s + FC_SEARCH[0] * stride)
        hi = np.searchsorted(time_s, ic0_s + FC_SEARCH[1] * stride)
        extension = window_argmin(thigh_pitch_deg, lo, hi)
        at_extension = np.where(extension >= 0, time_s[np.maximum(extension, 0)], np.nan)
        fc = np.where(running, at_extension, fc)
    return np.asarray(fc, dtype=np.float64)
