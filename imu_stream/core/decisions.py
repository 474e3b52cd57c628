"""Which candidate contacts become initial contacts, and of which side: the decision loop.

Each candidate is decided once the signal reaches `delay` samples past it, from the candidates
settled by then (see events.py and online.py): the step rules run on its window, a candidate
they find spurious at its own decision stays out of later windows, a committed contact wins
every later conflict, and a new bout's first contacts are held until enough steps vote on
their sides (or, if the bout ends first, released once no later step can extend it). Sides
alternate within a bout, from the per-step cues of sides.py (`_start_bout`, `_next_side`
below).

The loop runs once per candidate and its state changes from one to the next, so it is
compiled (numba): in Python its per-candidate overhead was most of the core's time.
"""

from __future__ import annotations

import numba
import numpy as np

from imu_stream.core.events import MAX_STEP_S, MIN_STEP_S, step_rules
from imu_stream.core.sides import sway_scores

OPEN, REJECTED, COMMITTED = 0, 1, 2  # states of a candidate contact
BOUT_VOTE_CONTACTS = 5  # a new bout's sides are decided once it has this many contacts
FLIP_AGREEMENT = -0.5  # labels flip when the latest FLIP_WINDOW cues disagree this much
FLIP_WINDOW = 4


class SideState:
    """The running state of the contact sequence, as arrays the compiled loop updates."""

    def __init__(self) -> None:
        # last contact's grid index (−1: none yet), bout number, last contact of the held
        # bout (−1: none)
        self.ints = np.array([-1, 0, -1], dtype=np.int64)
        # has_bout, last_left, agreement, total, votes, n_recent, recent[FLIP_WINDOW − 1]
        self.floats = np.zeros(6 + FLIP_WINDOW - 1)

    def holds_bout(self) -> bool:
        """Whether a new bout's first contacts are held (not yet committed)."""
        return bool(self.ints[2] > self.ints[0])


@numba.njit(cache=True)
def decide(
    cand_index: np.ndarray,
    cand_strength: np.ndarray,
    cand_state: np.ndarray,
    cand_impact: np.ndarray,
    use_impact: bool,
    first: int,
    processed_n: int,
    final: bool,
    delay: int,
    visible_after: int,
    context: int,
    fs: float,
    t0: float,
    lateral: np.ndarray,
    history_start: int,
    gap_start_s: np.ndarray,
    gap_end_s: np.ndarray,
    ints: np.ndarray,
    floats: np.ndarray,
    out_index: np.ndarray,
    out_left: np.ndarray,
    out_bout: np.ndarray,
    out_confidence: np.ndarray,
) -> tuple[int, int]:  # pragma: no cover - compiled
    """Decides candidates from `first` on while their time has come (all of them if `final`).

    Appends new contacts to the `out_*` arrays; returns (next undecided candidate, contacts
    added). `cand_state` is updated in place, as are `ints` / `floats` (see SideState)."""
    n_out = 0
    k = first
    n_cand = cand_index.size
    end_of_data = processed_n + 1
    while k < n_cand:
        c = cand_index[k]
        if not final and c + delay > processed_n:
            break
        n_out = _release_ended_bout(
            k - 1, c, cand_index, cand_strength, cand_state, cand_impact, use_impact,
            visible_after, context, fs, t0, lateral, history_start, gap_start_s, gap_end_s,
            ints, floats, out_index, out_left, out_bout, out_confidence, n_out,
        )  # fmt: skip
        hi = end_of_data if final else c + visible_after
        window = _window(cand_index, cand_state, c - context, hi)
        regular, keep = _step_rules(window, cand_index, cand_state, cand_strength, fs)
        for j in range(window.size):
            if window[j] == k and not regular[j]:
                cand_state[k] = REJECTED
        n_out = _commit(
            window[keep], cand_index, cand_state, cand_impact, use_impact, c, final, fs, t0,
            lateral, history_start, gap_start_s, gap_end_s, ints, floats,
            out_index, out_left, out_bout, out_confidence, n_out,
        )  # fmt: skip
        k += 1
    if not final:
        # No candidate can appear before the settled frontier: a held bout may have ended.
        frontier = cand_index[k] if k < n_cand else processed_n - (delay - visible_after)
        n_out = _release_ended_bout(
            k - 1, frontier, cand_index, cand_strength, cand_state, cand_impact, use_impact,
            visible_after, context, fs, t0, lateral, history_start, gap_start_s, gap_end_s,
            ints, floats, out_index, out_left, out_bout, out_confidence, n_out,
        )  # fmt: skip
    return k, n_out


@numba.njit(cache=True)
def _window(
    cand_index: np.ndarray,
    cand_state: np.ndarray,
    lo: int,
    hi: int,
) -> np.ndarray:  # pragma: no cover - compiled
    """Candidate numbers a decision looks at: not rejected, within [lo, hi)."""
    a = np.searchsorted(cand_index, lo)
    b = np.searchsorted(cand_index, hi)
    window = np.empty(b - a, dtype=np.int64)
    m = 0
    for j in range(a, b):
        if cand_state[j] != REJECTED:
            window[m] = j
            m += 1
    return window[:m]


@numba.njit(cache=True)
def _step_rules(
    window: np.ndarray,
    cand_index: np.ndarray,
    cand_state: np.ndarray,
    cand_strength: np.ndarray,
    fs: float,
) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - compiled
    """(regular, keep) masks of the window's candidates; committed contacts always win."""
    m = window.size
    strength = np.empty(m)
    for j in range(m):
        committed = cand_state[window[j]] == COMMITTED
        strength[j] = np.inf if committed else cand_strength[window[j]]
    regular = np.empty(m, dtype=np.bool_)
    keep = np.empty(m, dtype=np.bool_)
    step_rules(cand_index[window], strength, fs, regular, keep)
    return regular, keep


@numba.njit(cache=True)
def _release_ended_bout(
    k: int,
    next_possible: int,
    cand_index: np.ndarray,
    cand_strength: np.ndarray,
    cand_state: np.ndarray,
    cand_impact: np.ndarray,
    use_impact: bool,
    visible_after: int,
    context: int,
    fs: float,
    t0: float,
    lateral: np.ndarray,
    history_start: int,
    gap_start_s: np.ndarray,
    gap_end_s: np.ndarray,
    ints: np.ndarray,
    floats: np.ndarray,
    out_index: np.ndarray,
    out_left: np.ndarray,
    out_bout: np.ndarray,
    out_confidence: np.ndarray,
    n_out: int,
) -> int:  # pragma: no cover - compiled
    """If a bout is held and no contact can extend it (the next possible one comes after a
    pause longer than MAX_STEP_S), commits it as candidate k (the last decided) saw it, its
    sides voted by its own steps. Chunking cannot change when or how this happens."""
    held_last = ints[2]
    if k < 0 or held_last <= ints[0] or next_possible - held_last <= MAX_STEP_S * fs:
        return n_out
    c = cand_index[k]
    window = _window(cand_index, cand_state, c - context, c + visible_after)
    _, keep = _step_rules(window, cand_index, cand_state, cand_strength, fs)
    accepted = window[keep]
    # Only the held bout: later contacts (after the pause) belong to the next one.
    accepted = accepted[cand_index[accepted] <= held_last]
    n_out = _commit(
        accepted, cand_index, cand_state, cand_impact, use_impact, held_last, True, fs, t0,
        lateral, history_start, gap_start_s, gap_end_s, ints, floats,
        out_index, out_left, out_bout, out_confidence, n_out,
    )  # fmt: skip
    ints[2] = -1
    return n_out


@numba.njit(cache=True)
def _commit(
    accepted: np.ndarray,
    cand_index: np.ndarray,
    cand_state: np.ndarray,
    cand_impact: np.ndarray,
    use_impact: bool,
    up_to: int,
    final: bool,
    fs: float,
    t0: float,
    lateral: np.ndarray,
    history_start: int,
    gap_start_s: np.ndarray,
    gap_end_s: np.ndarray,
    ints: np.ndarray,
    floats: np.ndarray,
    out_index: np.ndarray,
    out_left: np.ndarray,
    out_bout: np.ndarray,
    out_confidence: np.ndarray,
    n_out: int,
) -> int:  # pragma: no cover - compiled
    """Adds the accepted contacts after the last one and up to `up_to` (candidate numbers in
    `accepted`); returns the new count of output contacts."""
    index = cand_index[accepted]
    first_new = -1
    for j in range(index.size):
        if index[j] > ints[0] and index[j] <= up_to:
            first_new = j
            break
    if first_new < 0:
        return n_out
    last_new = first_new
    while last_new + 1 < index.size and index[last_new + 1] <= up_to:
        last_new += 1
    max_gap = MAX_STEP_S * fs
    if not final and _starts_bout(index[first_new], ints, floats, fs, t0, gap_start_s, gap_end_s):
        # Hold a new bout's first contacts until enough steps vote on its sides.
        chain = 1
        while first_new + chain <= last_new and index[first_new + chain] - index[
            first_new + chain - 1
        ] <= max_gap:
            chain += 1
        if chain < BOUT_VOTE_CONTACTS:
            ints[2] = index[first_new + chain - 1]
            return n_out
    scores = cand_impact[accepted] if use_impact else sway_scores(lateral, index - history_start)
    for j in range(first_new, last_new + 1):
        i = index[j]
        if ints[0] >= 0 and i - ints[0] < MIN_STEP_S * fs:
            continue  # the same contact seen again from a later window
        if _starts_bout(i, ints, floats, fs, t0, gap_start_s, gap_end_s):
            _start_bout(scores[j:], floats)
            ints[1] += 1
        is_left = _next_side(floats, scores[j])
        ints[0] = i
        cand_state[accepted[j]] = COMMITTED
        out_index[n_out] = i
        out_left[n_out] = is_left
        out_bout[n_out] = ints[1]
        out_confidence[n_out] = floats[2] / floats[3] if floats[3] > 0 else 0.0
        n_out += 1
    return n_out


@numba.njit(cache=True)
def _starts_bout(
    index: int,
    ints: np.ndarray,
    floats: np.ndarray,
    fs: float,
    t0: float,
    gap_start_s: np.ndarray,
    gap_end_s: np.ndarray,
) -> bool:  # pragma: no cover - compiled
    """Whether a contact at `index` would begin a new walking bout: the first contact, or
    after a pause longer than MAX_STEP_S or a data gap."""
    previous = ints[0]
    if previous < 0 or floats[0] == 0.0:
        return True
    if index - previous > MAX_STEP_S * fs:
        return True
    time_s = t0 + index / fs
    previous_s = t0 + previous / fs
    for g in range(gap_start_s.size):
        if gap_start_s[g] < time_s and gap_end_s[g] > previous_s:
            return True
    return False


@numba.njit(cache=True)
def _start_bout(scores_ahead: np.ndarray, floats: np.ndarray) -> None:  # pragma: no cover
    """Side of a bout's first contact from the cues of it and the contacts after it (parity)."""
    vote = 0.0
    for j in range(scores_ahead.size):
        if np.isfinite(scores_ahead[j]):
            vote += scores_ahead[j] if j % 2 == 0 else -scores_ahead[j]
    first_left = vote >= 0.0
    floats[:] = 0.0
    floats[0] = 1.0  # has a bout
    floats[1] = 0.0 if first_left else 1.0  # the label before the first contact: the opposite


@numba.njit(cache=True)
def _next_side(floats: np.ndarray, score: float) -> bool:  # pragma: no cover - compiled
    """Label the bout's next contact (alternation), flipping the bout if its cues say so: a
    missed or extra step breaks the alternation, and then the latest steps' cues all disagree
    with the labels."""
    is_left = floats[1] == 0.0
    if np.isfinite(score):
        signed = score if is_left else -score
        n_recent = int(floats[5])
        recent = floats[6 : 6 + n_recent]
        total = signed
        magnitude = abs(signed)
        for v in recent:
            total += v
            magnitude += abs(v)
        if n_recent + 1 == FLIP_WINDOW and magnitude > 0 and total / magnitude < FLIP_AGREEMENT:
            is_left = not is_left
            floats[2] = -floats[2]
            for j in range(n_recent):
                floats[6 + j] = -floats[6 + j]
            signed = -signed
        floats[2] += signed  # agreement
        floats[3] += abs(score)  # total
        floats[4] += 1.0  # votes
        if n_recent == FLIP_WINDOW - 1:
            for j in range(n_recent - 1):
                floats[6 + j] = floats[7 + j]
            floats[6 + n_recent - 1] = signed
        else:
            floats[6 + n_recent] = signed
            floats[5] = n_recent + 1
    floats[1] = 1.0 if is_left else 0.0
    return is_left
