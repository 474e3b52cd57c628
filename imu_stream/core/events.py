"""Gait events: initial contacts from the sacrum, sides, final contacts.

IC: the heel-strike impact makes the sharpest rise of vertical (world-frame) acceleration in
the gait cycle; we take peaks of its derivative (Gaussian-smoothed jerk, σ = 50 ms, refined at
σ = 25 ms), then keep only candidates that form a regular step sequence, which rejects single
jolts, sitting down and shuffling.
"""

from __future__ import annotations

import statistics

import numpy as np
from scipy import signal

from imu_stream.core.filters import gaussian_lowpass
from imu_stream.records import FloatArray

JERK_SIGMA_S = 0.05
JERK_REFINE_SIGMA_S = 0.025
MIN_JERK_PROMINENCE = 10.0  # m/s³
MIN_STEP_S = 0.25
MAX_STEP_S = 1.4  # a longer pause ends a walking bout (slow steps in turns reach 1.2–1.3 s)
CLOSE_STEP_RATIO = 0.65  # a step shorter than this fraction of the local median is spurious
MIN_BOUT_STEPS = 3
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
    lo = np.clip(peaks - half, 0, jerk.size - 1)
    windows = np.clip(lo[:, None] + np.arange(2 * half + 1)[None, :], 0, jerk.size - 1)
    refined = windows[np.arange(peaks.size), np.argmax(fine[windows], axis=1)]
    return refined, np.asarray(props["prominences"], dtype=np.float64)


def step_sequence(peaks: np.ndarray, strength: FloatArray, fs: float) -> np.ndarray:
    """Mask of the candidates that form a regular step sequence (walking bouts)."""
    return step_sequence_masks(peaks, strength, fs)[1]


def step_sequence_masks(
    peaks: np.ndarray, strength: FloatArray, fs: float
) -> tuple[np.ndarray, np.ndarray]:
    """(not a spurious close step, in a regular step sequence) masks of the candidates."""
    regular = drop_close_steps(peaks / fs, strength)
    kept = np.flatnonzero(regular)
    mask = np.zeros(peaks.size, dtype=bool)
    mask[kept[_bout_mask(peaks[kept], fs)]] = True
    return regular, mask


def drop_close_steps(times_s: FloatArray, strength: FloatArray) -> np.ndarray:
    keep = np.ones(times_s.size, dtype=bool)
    while True:
        idx = np.flatnonzero(keep)
        if idx.size < 3:
            return keep
        steps = np.diff(times_s[idx])
        if steps.min() >= CLOSE_STEP_RATIO * steps.max():
            return keep  # no step can be short against its neighbours' median
        local = _local_median(steps, 3)
        bad = np.flatnonzero((steps < CLOSE_STEP_RATIO * local) & (steps < MAX_STEP_S))
        if bad.size == 0:
            return keep
        k = bad[np.argmin(steps[bad] / local[bad])]
        a, b = idx[k], idx[k + 1]
        keep[a if strength[a] < strength[b] else b] = False


def _bout_mask(peaks: np.ndarray, fs: float) -> np.ndarray:
    """Candidates in runs of at least MIN_BOUT_STEPS steps without a long pause."""
    if peaks.size == 0:
        return np.zeros(0, dtype=bool)
    bout_id = np.concatenate([[0], np.cumsum(np.diff(peaks) > MAX_STEP_S * fs)])
    return np.asarray(np.bincount(bout_id)[bout_id] >= MIN_BOUT_STEPS)


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


def _local_median(values: FloatArray, half: int) -> FloatArray:
    """Median over ±half neighbours (fewer at the ends)."""
    n = values.size
    out = np.empty(n)
    if n > 2 * half:
        windows = np.lib.stride_tricks.sliding_window_view(values, 2 * half + 1)
        out[half : n - half] = np.median(windows, axis=1)
    listed = values.tolist()  # the few edge medians: cheaper on lists than via numpy
    for k in (*range(min(half, n)), *range(max(half, n - half), n)):
        out[k] = statistics.median(listed[max(0, k - half) : k + half + 1])
    return out
