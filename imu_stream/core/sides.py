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

from dataclasses import dataclass, field

import numpy as np

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
FLIP_AGREEMENT = -0.5  # labels flip when the latest FLIP_WINDOW cues disagree this much
FLIP_WINDOW = 4


def impact_scores(
    left_shock: FloatArray, right_shock: FloatArray, ic_idx: np.ndarray, fs: float
) -> FloatArray:
    """log(left / right) shock energy around each contact; `*_shock` is the magnitude of each
    thigh's acceleration derivative (any sensor frame)."""
    lo = np.round(IMPACT_WINDOW_S[0] * fs).astype(int)
    hi = max(lo + 1, round(IMPACT_WINDOW_S[1] * fs))
    n = left_shock.size
    csum_l = np.concatenate([[0.0], np.cumsum(left_shock)])
    csum_r = np.concatenate([[0.0], np.cumsum(right_shock)])
    a = np.clip(ic_idx + lo, 0, n)
    b = np.clip(ic_idx + hi, 0, n)
    energy_l = csum_l[b] - csum_l[a]
    energy_r = csum_r[b] - csum_r[a]
    return np.asarray(np.log((energy_l + 1e-9) / (energy_r + 1e-9)))


def shock_magnitude(acc: FloatArray, fs: float) -> FloatArray:
    """|d acc / dt| (m/s³): large only in impacts; independent of orientation and mounting."""
    jerk = np.diff(acc, axis=0, prepend=acc[:1]) * fs
    return np.asarray(np.linalg.norm(jerk, axis=1))


def sway_scores(lateral_acc: FloatArray, ic_idx: np.ndarray) -> FloatArray:
    """Per contact i, the change of mean lateral (leftward) acceleration from the step before
    the previous contact to the step before this one; NaN for the first two contacts.

    The step from contact i−1 to i is the stance of the other leg, so the body accelerates
    away from it, towards the side of contact i; only past steps are used, so the cue is
    known as soon as contact i is."""
    out = np.full(ic_idx.size, np.nan)
    if ic_idx.size < 3:
        return out
    csum = np.concatenate([[0.0], np.cumsum(lateral_acc)])
    step_mean = (csum[ic_idx[1:]] - csum[ic_idx[:-1]]) / np.maximum(np.diff(ic_idx), 1)
    # step_mean[k] belongs to the step from contact k to k+1.
    out[2:] = (step_mean[1:] - step_mean[:-1]) / 2.0
    return out


@dataclass(slots=True)
class BoutSides:
    """Side labelling of the current walking bout, carried from contact to contact."""

    last_left: bool
    agreement: float = 0.0  # Σ score · (+1 if labelled left else −1)
    total: float = 0.0  # Σ |score|
    votes: int = 0
    recent: list[float] = field(default_factory=list)  # the last signed scores

    @property
    def confidence(self) -> float:
        return self.agreement / self.total if self.total > 0 else 0.0


def start_bout(scores_ahead: FloatArray) -> BoutSides:
    """Side of a bout's first contact from the cues of it and the contacts after it (parity)."""
    finite = np.where(np.isfinite(scores_ahead), scores_ahead, 0.0)
    parity = np.where(np.arange(finite.size) % 2 == 0, 1.0, -1.0)
    first_left = float(np.sum(parity * finite)) >= 0.0
    # `last_left` is the label before the first contact: the opposite.
    return BoutSides(last_left=not first_left)


def next_side(bout: BoutSides, score: float) -> bool:
    """Label the bout's next contact (alternation), flipping the bout if its vote says so."""
    is_left = not bout.last_left
    if np.isfinite(score):
        signed = score if is_left else -score
        # A missed or extra step breaks the alternation: the latest steps' cues then all
        # disagree with the labels, and the labels flip from here on.
        window = [*bout.recent[-(FLIP_WINDOW - 1) :], signed]
        magnitude = sum(abs(v) for v in window)
        if (
            len(window) == FLIP_WINDOW
            and magnitude > 0
            and sum(window) / magnitude < FLIP_AGREEMENT
        ):
            is_left = not is_left
            bout.agreement = -bout.agreement
            bout.recent = [-v for v in bout.recent]
            signed = -signed
        bout.agreement += signed
        bout.total += abs(score)
        bout.votes += 1
        bout.recent = [*bout.recent[-(FLIP_WINDOW - 1) :], signed]
    bout.last_left = is_left
    return is_left


def final_contact_time(
    time_s: FloatArray,
    ic0_s: float,
    ic1_s: float,
    contralateral_ic_s: float,
    thigh_pitch_deg: FloatArray | None,
) -> float | None:
    """Toe-off of the stance from ic0 to the next same-side ic1.

    Running, with that thigh: its greatest extension in stance (the hip extends until
    push-off). Walking, the hip's extension peaks well before toe-off, so the toe-off is put a
    double-support time after the contralateral contact; running without the thigh, a flight
    time before it."""
    stride = ic1_s - ic0_s
    running = 120.0 / stride > RUNNING_CADENCE_SPM
    if running and thigh_pitch_deg is not None:
        search = ic0_s + np.asarray(FC_SEARCH) * stride
        lo, hi = np.searchsorted(time_s, search)
        if hi <= lo:
            return None
        return float(time_s[lo + int(np.argmin(thigh_pitch_deg[lo:hi]))])
    offset = -FLIGHT_FRACTION * stride if running else DOUBLE_SUPPORT_FRACTION * stride
    return contralateral_ic_s + offset
