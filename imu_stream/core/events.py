"""Gait events: initial contacts from the sacrum, sides, final contacts.

IC: the heel-strike impact makes the sharpest rise of vertical (world-frame) acceleration in
the gait cycle; we take peaks of its derivative (Gaussian-smoothed jerk, σ = 50 ms, refined at
σ = 25 ms), then keep only candidates that form a regular step sequence, which rejects single
jolts, sitting down and shuffling.
"""

from __future__ import annotations

import numba
import numpy as np
from scipy import signal

from imu_stream.core.filters import gaussian_lowpass
from imu_stream.core.metrics import window_argmax
from imu_stream.records import FloatArray

JERK_SIGMA_S = 0.05
JERK_REFINE_SIGMA_S = 0.025
MIN_JERK_PROMINENCE = 10.0  # m/s³
MIN_STEP_S = 0.25
MAX_STEP_S = 1.4  # a longer pause ends a walking bout (slow steps in turns reach 1.2–1.3 s)
CLOSE_STEP_RATIO = 0.65  # a step shorter than this fraction of the local median is spurious
MIN_BOUT_STEPS = 3
MAX_BREAK_S = 3.0  # Mobilise-D: a break of up to 3 s does not end a walking bout
PROMINENCE_HALF_WINDOW_S = 0.75  # a peak's prominence is judged within ± this
CANDIDATE_SUPPORT_S = 0.95  # a candidate is settled once this much signal follows it


def detect_initial_contacts(vertical_acc: FloatArray, fs: float) -> np.ndarray:
    """Sample indices of ICs (both sides) inside walking bouts, sorted."""
    peaks, strength = ic_candidates(vertical_acc, fs)
    return peaks[step_sequence(peaks, strength, fs)]


def ic_candidates(vertical_acc: FloatArray, fs: float) -> tuple[np.ndarray, FloatArray]:
    """Candidate contacts (sample indices) and their strength (jerk prominence).

    Local: a candidate depends only on the signal within CANDIDATE_SUPPORT_S of it."""
    jerk = gaussian_lowpass(vertical_acc, JERK_SIGMA_S, fs, order=1)
    peaks, props = signal.find_peaks(
        jerk,
        distance=max(1, int(MIN_STEP_S * fs)),
        prominence=MIN_JERK_PROMINENCE,
        wlen=max(3, round(2 * PROMINENCE_HALF_WINDOW_S * fs) | 1),
    )
    if peaks.size == 0:
        return peaks, np.zeros(0)
    fine = gaussian_lowpass(vertical_acc, JERK_REFINE_SIGMA_S, fs, order=1)
    half = max(1, round(0.06 * fs))
    lo = np.maximum(peaks - half, 0)
    hi = lo + 2 * half + 1
    refined = window_argmax(fine, lo, hi)
    return refined, np.asarray(props["prominences"], dtype=np.float64)


def step_sequence(peaks: np.ndarray, strength: FloatArray, fs: float) -> np.ndarray:
    """Mask of the candidates that form a regular step sequence (walking bouts)."""
    return step_sequence_masks(peaks, strength, fs)[1]


def step_sequence_masks(
    peaks: np.ndarray, strength: FloatArray, fs: float
) -> tuple[np.ndarray, np.ndarray]:
    """(not a spurious close step, in a regular step sequence) masks of the candidates."""
    regular = np.empty(peaks.size, dtype=np.bool_)
    mask = np.empty(peaks.size, dtype=np.bool_)
    step_rules(
        np.asarray(peaks, dtype=np.int64), np.asarray(strength, dtype=np.float64), fs, regular, mask
    )
    return regular, mask


# The step rules run once per candidate contact on its window of ~20 candidates: an iterative
# removal with medians, compiled because Python's per-call overhead would dominate.
@numba.njit(cache=True)
def step_rules(
    peaks: np.ndarray, strength: np.ndarray, fs: float, regular: np.ndarray, mask: np.ndarray
) -> None:  # pragma: no cover - compiled
    """Fills `regular` (not a spurious close step) and `mask` (also in a walking bout: a run
    of at least MIN_BOUT_STEPS steps without a pause longer than MAX_STEP_S, or a run of two
    next to such a run across a break of at most MAX_BREAK_S, as the Mobilise-D bout
    definition allows: people stop briefly, e.g. before a turn, and walk on)."""
    n = peaks.size
    _close_step_mask(peaks / fs, strength, regular)
    max_gap = MAX_STEP_S * fs
    mask[:] = False
    # Runs of kept candidates without a pause longer than MAX_STEP_S: (first, last, count).
    run_first = np.empty(n, dtype=np.int64)
    run_last = np.empty(n, dtype=np.int64)
    run_count = np.zeros(n, dtype=np.int64)
    n_runs = 0
    last = -1
    for k in range(n):
        if not regular[k]:
            continue
        if last < 0 or peaks[k] - peaks[last] > max_gap:
            run_first[n_runs] = k
            n_runs += 1
        run_last[n_runs - 1] = k
        run_count[n_runs - 1] += 1
        last = k
    max_break = MAX_BREAK_S * fs
    for r in range(n_runs):
        gait = run_count[r] >= MIN_BOUT_STEPS
        if not gait and run_count[r] >= 2:
            # A short run joins a walking bout that it follows or precedes within MAX_BREAK_S.
            if r > 0 and run_count[r - 1] >= MIN_BOUT_STEPS:
                gait = peaks[run_first[r]] - peaks[run_last[r - 1]] <= max_break
            if not gait and r + 1 < n_runs and run_count[r + 1] >= MIN_BOUT_STEPS:
                gait = peaks[run_first[r + 1]] - peaks[run_last[r]] <= max_break
        if gait:
            for j in range(run_first[r], run_last[r] + 1):
                mask[j] = regular[j]


@numba.njit(cache=True)
def _close_step_mask(
    times_s: np.ndarray, strength: np.ndarray, keep: np.ndarray
) -> None:  # pragma: no cover - compiled
    """Drops, one at a time, the weaker end of the step shortest against its local median."""
    keep[:] = True
    while True:
        idx = np.flatnonzero(keep)
        if idx.size < 3:
            return
        steps = np.diff(times_s[idx])
        if steps.min() >= CLOSE_STEP_RATIO * steps.max():
            return  # no step can be short against its neighbours' median
        worst, worst_ratio = -1, np.inf
        for k in range(steps.size):
            local = np.median(steps[max(0, k - 3) : k + 4])
            if steps[k] < CLOSE_STEP_RATIO * local and steps[k] < MAX_STEP_S:
                ratio = steps[k] / local
                if ratio < worst_ratio:
                    worst, worst_ratio = k, ratio
        if worst < 0:
            return
        a, b = idx[worst], idx[worst + 1]
        keep[a if strength[a] < strength[b] else b] = False


def bout_slices(ic_idx: np.ndarray, fs: float) -> list[np.ndarray]:
    """Split IC indices into walking bouts (runs of steps without a long pause)."""
    if ic_idx.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(ic_idx) > MAX_STEP_S * fs) + 1
    return np.split(np.arange(ic_idx.size), breaks)


def assign_sides(
    ic_idx: np.ndarray, left_score: FloatArray, fs: float
) -> tuple[np.ndarray, FloatArray]:
    """Side of each IC (True = left) from a per-IC score (> 0 means left), using alternation.

    Within a bout, ICs alternate; the parity whose summed score agrees best wins, so one weak
    or wrong per-step cue does not flip a step. Returns (is_left, confidence 0–1 per IC).
    """
    is_left = np.zeros(ic_idx.size, dtype=bool)
    confidence = np.zeros(ic_idx.size)
    for bout in bout_slices(ic_idx, fs):
        parity = np.where(np.arange(bout.size) % 2 == 0, 1.0, -1.0)
        vote = float(np.sum(parity * left_score[bout]))
        first_left = vote >= 0
        is_left[bout] = (parity > 0) == first_left
        total = float(np.sum(np.abs(left_score[bout])))
        confidence[bout] = abs(vote) / total if total > 0 else 0.0
    return is_left, confidence


def window_mean_change(values: FloatArray, idx: np.ndarray, before: int, after: int) -> FloatArray:
    """Mean of `values` over [i, i+after) minus over [i−before, i) for each index i."""
    n = values.shape[0]
    csum = np.concatenate([np.zeros((1, *values.shape[1:])), np.cumsum(values, axis=0)])
    a0 = np.clip(idx - before, 0, n)
    a1 = np.clip(idx, 0, n)
    b1 = np.clip(idx + after, 0, n)
    pre = (csum[a1] - csum[a0]) / np.maximum(a1 - a0, 1).reshape((-1,) + (1,) * (values.ndim - 1))
    post = (csum[b1] - csum[a1]) / np.maximum(b1 - a1, 1).reshape((-1,) + (1,) * (values.ndim - 1))
    return np.asarray(post - pre)
