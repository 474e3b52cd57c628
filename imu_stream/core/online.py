"""The signal core as a stream: feed samples as they arrive, get results as soon as they are final.

`OnlineProcessor` is the only way into the core: the live pipeline pushes packets as they come,
`analyze` pushes a whole recording at once. Every computation runs on fixed blocks of the
synchronised sample grid (`HOP_S`) and decides only what its data already settle, so the
results do not depend on how the input was chunked: live and batch give the same strides.

Stages per block: orientation (causal, see orientation.py) → segment angles → initial contacts
on a sliding window, final `DECISION_DELAY_S` after they happen → sides (voted along the walking
bout) → for each completed stride, its toe-off and metrics.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from imu_stream.core.decisions import OPEN, SideState, decide
from imu_stream.core.events import CANDIDATE_SUPPORT_S, ic_candidates
from imu_stream.core.history import SignalHistory
from imu_stream.core.metrics import stride_metrics
from imu_stream.core.orientation import OrientationTracker, OrientedBlock
from imu_stream.core.process import (
    Calibration,
    Readiness,
    SegmentAngles,
    calibrate,
    calibration_readiness,
    chunk_angles,
)
from imu_stream.core.sides import final_contact_times, impact_scores, shock_magnitude
from imu_stream.core.sync import GridSynchroniser, SyncedSeries, SyncedSignals
from imu_stream.records import (
    EVENT_ORDER,
    STRIDE_ORDER,
    AngleSeries,
    FloatArray,
    GaitEvent,
    Stride,
    StrideQuality,
)

HOP_S = 0.5  # before calibration, data are taken in blocks of this length
READINESS_EVERY = 2  # blocks between checks of whether calibration can start
DECISION_DELAY_S = 1.1  # a contact is final once this much signal follows it
CONTEXT_S = 2.0  # signal before the unsettled part that candidate detection looks at
STEP_CONTEXT_S = 5.0  # earlier candidates the step-sequence rules look at
HISTORY_S = 10.0  # kept for strides that are still open
MIN_BLOCK_S = 0.1  # after calibration, process at least this much data at a time
TURN_DEG_PER_STRIDE = 25.0
LOW_CONFIDENCE = 0.2


@dataclass(slots=True)
class CalibrationState:
    """What the live view shows about calibration."""

    calibrated: bool
    message: str  # e.g. "stand still 3 s, then start moving", "calibrated"


@dataclass(slots=True)
class CoreUpdate:
    """Results that became final since the previous update."""

    events: list[GaitEvent] = field(default_factory=list)
    strides: list[Stride] = field(default_factory=list)
    angles: AngleSeries = field(default_factory=lambda: AngleSeries(np.zeros(0), {}))
    calibration: CalibrationState = field(
        default_factory=lambda: CalibrationState(False, "stand still 3 s, then start moving")
    )


_AngleBlocks = list[tuple[FloatArray, dict[str, FloatArray]]]


@dataclass(slots=True)
class _Contacts:
    """Contacts as columns; the processor keeps the last two, all a new stride needs."""

    index: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # grid
    is_left: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    bout: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    confidence: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def extended(self, other: _Contacts) -> _Contacts:
        return _Contacts(
            *(np.concatenate([getattr(self, f), getattr(other, f)]) for f in self.__slots__)
        )

    def last(self, n: int) -> _Contacts:
        return _Contacts(*(getattr(self, f)[-n:] for f in self.__slots__))


class OnlineProcessor:
    """Feeds the core with synchronised blocks and collects what becomes final.

    Samples are on the session clock, sensor frame, SI units (acc m/s², gyro deg/s); each
    location's times increase. `update()` returns what became final; `finish()` flushes.
    """

    def __init__(self, locations: Sequence[str], rate_hz: float) -> None:
        if "sacrum" not in locations:
            raise ValueError("the sacrum sensor is required")
        if not rate_hz > 0:
            raise ValueError(f"rate must be positive, not {rate_hz}")
        self.locations = tuple(locations)
        # Both thighs worn: their heel-strike shocks tell the sides (else the sacrum's sway).
        self._both_thighs = {"left_thigh", "right_thigh"} <= set(self.locations)
        self.fs = float(rate_hz)
        self.hop = max(1, round(HOP_S * self.fs))
        self.calibration: Calibration | None = None
        self._sync = GridSynchroniser(self.locations, self.fs)
        self._queue = SyncedSeries()  # synchronised, not yet processed
        self._prefix = SyncedSeries()  # everything before calibration
        self._readiness = Readiness(False, "stand still 3 s, then start moving")
        self._processed_n = 0
        self._trackers: dict[str, OrientationTracker] = {}  # from calibration on
        self._last_thigh_acc: dict[str, FloatArray] = {}
        self._history_start = 0  # grid index of the history's first sample
        self._signals = SignalHistory()
        self._history: dict[str, FloatArray] = {}  # views of _signals
        self._candidate_index = np.zeros(0, dtype=np.int64)
        self._candidate_strength = np.zeros(0)
        self._candidate_state = np.zeros(0, dtype=np.int8)  # decisions.OPEN, REJECTED, …
        self._candidate_impact = np.zeros(0)  # side cue of both thighs' shocks (> 0: left)
        self._candidates_done = 0
        self._decided_candidates = 0
        self._contacts = _Contacts()
        self._sides = SideState()
        self._finished = False

    # --- input ---------------------------------------------------------------------------

    def push(self, location: str, time_s: FloatArray, acc: FloatArray, gyr: FloatArray) -> None:
        if self._finished:
            raise RuntimeError("push after finish")
        self._sync.push(location, time_s, acc, gyr)

    @property
    def gaps(self) -> list[tuple[float, float]]:
        return self._sync.gaps

    # --- output --------------------------------------------------------------------------

    @property
    def calibration_state(self) -> CalibrationState:
        waiting = self._sync.waiting()
        if waiting:
            return CalibrationState(False, f"waiting for {', '.join(waiting)}")
        return CalibrationState(self.calibration is not None, self._readiness.message)

    def update(self) -> CoreUpdate:
        out = CoreUpdate()
        if self._sync.new_data_s() >= MIN_BLOCK_S:  # less could not change any result yet
            self._synchronise()
            self._advance(out, final=False)
        out.calibration = self.calibration_state
        return out

    def finish(self) -> CoreUpdate:
        """Process everything pushed, deciding the last contacts without look-ahead."""
        out = CoreUpdate()
        if self._finished:
            out.calibration = self.calibration_state
            return out
        self._synchronise()
        self._advance(out, final=True)
        self._finished = True
        out.calibration = self.calibration_state
        return out

    def _synchronise(self) -> None:
        block = self._sync.take()
        if block is not None:
            self._queue.append(block)

    # --- calibration, then blocks --------------------------------------------------------

    def _advance(self, out: CoreUpdate, final: bool) -> None:
        angle_blocks: _AngleBlocks = []
        queued = self._queue.signals(self.fs) if self._queue.n else None
        used = 0
        if queued is not None and self.calibration is None:
            # Before calibration, readiness is judged at whole blocks of the grid only, so
            # the moment of calibration does not depend on how the data arrived.
            usable = self._queue.n if final else self._queue.n // self.hop * self.hop
            while used < usable and self.calibration is None:
                self._prefix.append(queued.slice(used, min(used + self.hop, usable)))
                used = min(used + self.hop, usable)
                if self._prefix.n % (READINESS_EVERY * self.hop) == 0:
                    self._readiness = calibration_readiness(
                        np.concatenate(self._prefix.acc["sacrum"]),
                        np.concatenate(self._prefix.gyr["sacrum"]),
                        self.fs,
                    )
                if self._readiness.ready:
                    self._start(out, angle_blocks)
        # After calibration, any block length gives the same results; very short ones only
        # cost more, so wait for MIN_BLOCK_S of data (except at the end).
        enough = self._queue.n - used >= round(MIN_BLOCK_S * self.fs) or final
        if queued is not None and self.calibration is not None and enough:
            self._process_block(queued.slice(used, self._queue.n), out, angle_blocks)
            used = self._queue.n
        if queued is not None:
            rest = queued.slice(used, self._queue.n)
            self._queue = SyncedSeries()
            if rest.time_s.size:  # an empty block would only make the next join copy
                self._queue.append(rest)
        if final:
            if self.calibration is None and self._prefix.n > 0:
                self._readiness = Readiness(True, "calibrated from the whole (short) recording")
                self._start(out, angle_blocks)
            if self.calibration is not None:
                self._find_candidates(final=True)
                self._decide(out, final=True)
        if angle_blocks:
            names = angle_blocks[0][1].keys()
            out.angles = AngleSeries(
                np.concatenate([t for t, _ in angle_blocks]),
                {n: np.concatenate([c[n] for _, c in angle_blocks]) for n in names},
            )

    def _start(self, out: CoreUpdate, angle_blocks: _AngleBlocks) -> None:
        prefix = self._prefix.signals(self.fs)
        self._prefix = SyncedSeries()
        self.calibration = cal = calibrate(prefix)
        self._trackers = {
            loc: OrientationTracker(
                cal.start_rotation[loc],
                cal.gyro_bias_dps[loc],
                self.fs,
                cal.alignment[loc].sensor_to_segment,
            )
            for loc in self.locations
        }
        self._process_block(prefix, out, angle_blocks)

    def _process_block(
        self, block: SyncedSignals, out: CoreUpdate, angle_blocks: _AngleBlocks
    ) -> None:
        """Orientation and angles of a block (any length: both are causal recursions), then
        the contacts it settles."""
        oriented: dict[str, OrientedBlock] = {
            loc: tracker.track(block.time_s, block.acc[loc], block.gyr[loc])
            for loc, tracker in self._trackers.items()
        }
        chunk = chunk_angles(oriented)
        angle_blocks.append((block.time_s, chunk.columns))
        self._extend_history(block, chunk)
        self._processed_n += block.time_s.size
        self._find_candidates(final=False)
        self._decide(out, final=False)
        self._trim_history()

    def _extend_history(self, block: SyncedSignals, chunk: SegmentAngles) -> None:
        new: dict[str, FloatArray] = {
            "time_s": block.time_s,
            "vertical": chunk.vertical_acc,
            "lateral": chunk.lateral_acc,
            "heading": chunk.pelvis_heading_rad,
            **chunk.columns,
        }
        for side, pitch in chunk.thigh_pitch_deg.items():
            new[f"pitch_{side}"] = pitch
            loc = f"{side}_thigh"
            acc = block.acc[loc]
            previous = self._last_thigh_acc.get(loc, acc[:1])
            new[f"shock_{side}"] = shock_magnitude(np.concatenate([previous, acc]), self.fs)[1:]
            self._last_thigh_acc[loc] = acc[-1:]
        self._signals.append(new)
        self._history = self._signals.views()

    def _trim_history(self) -> None:
        """Keep what open strides and undecided contacts can still need."""
        oldest_needed = min(
            self._processed_n - round(HISTORY_S * self.fs),
            self._next_decision_index() - round(HISTORY_S * self.fs),
        )
        drop = oldest_needed - self._history_start
        if drop > 0:
            self._signals.drop(drop)
            self._history = self._signals.views()
            self._history_start += drop
        # Decided candidates older than the step rules look back are no longer needed.
        oldest = self._next_decision_index() - round(STEP_CONTEXT_S * self.fs)
        stale = min(self._decided_candidates, int(np.searchsorted(self._candidate_index, oldest)))
        if stale > 0:
            self._candidate_index = self._candidate_index[stale:]
            self._candidate_strength = self._candidate_strength[stale:]
            self._candidate_state = self._candidate_state[stale:]
            self._candidate_impact = self._candidate_impact[stale:]
            self._decided_candidates -= stale

    # --- events, sides, strides ----------------------------------------------------------

    def _find_candidates(self, final: bool) -> None:
        """Candidate contacts settled by the signal so far (see events.ic_candidates)."""
        settle_to = self._processed_n - (0 if final else round(CANDIDATE_SUPPORT_S * self.fs))
        if settle_to <= self._candidates_done:
            return
        start = max(self._history_start, self._candidates_done - round(CONTEXT_S * self.fs))
        vertical = self._history["vertical"][start - self._history_start :]
        peaks, strength = ic_candidates(vertical, self.fs)
        peaks = peaks + start
        new = (peaks >= self._candidates_done) & (peaks < settle_to)
        peaks = peaks[new]
        if self._both_thighs:
            # The shocks' ring-down follows the contact by 0.1 s: known for settled candidates.
            local = peaks - self._history_start
            impact = impact_scores(
                self._history["shock_left"], self._history["shock_right"], local, self.fs
            )
        else:
            impact = np.full(peaks.size, np.nan)
        self._candidate_index = np.concatenate([self._candidate_index, peaks])
        self._candidate_strength = np.concatenate([self._candidate_strength, strength[new]])
        self._candidate_state = np.concatenate(
            [self._candidate_state, np.full(peaks.size, OPEN, dtype=np.int8)]
        )
        self._candidate_impact = np.concatenate([self._candidate_impact, impact])
        self._candidates_done = settle_to

    def _next_decision_index(self) -> int:
        """The candidate whose window decisions can still look back from: the next one to
        decide or, while a short bout is held, the last decided (its release uses it)."""
        pending = self._candidate_index[self._decided_candidates :]
        # With none pending, the next candidate can still appear at the settled frontier.
        anchor = int(pending[0]) if pending.size else self._candidates_done
        if self._sides.holds_bout() and self._decided_candidates > 0:
            anchor = min(anchor, int(self._candidate_index[self._decided_candidates - 1]))
        return anchor

    def _decide(self, out: CoreUpdate, final: bool) -> None:
        """Decide each candidate once the signal reaches DECISION_DELAY_S past it, from the
        candidates settled by then; at the end of the data, from all of them."""
        delay = round(DECISION_DELAY_S * self.fs)
        n_cand = self._candidate_index.size
        out_index = np.empty(n_cand, dtype=np.int64)
        out_left = np.empty(n_cand, dtype=np.bool_)
        out_bout = np.empty(n_cand, dtype=np.int64)
        out_confidence = np.empty(n_cand)
        gaps = np.asarray(self.gaps, dtype=np.float64).reshape(-1, 2)
        assert self._sync.t0 is not None
        self._decided_candidates, n_new = decide(
            self._candidate_index,
            self._candidate_strength,
            self._candidate_state,
            self._candidate_impact,
            self._both_thighs,
            self._decided_candidates,
            self._processed_n,
            final,
            delay,
            delay - round(CANDIDATE_SUPPORT_S * self.fs),
            round(STEP_CONTEXT_S * self.fs),
            self.fs,
            float(self._sync.t0),
            self._history["lateral"],
            self._history_start,
            np.ascontiguousarray(gaps[:, 0]),
            np.ascontiguousarray(gaps[:, 1]),
            self._sides.ints,
            self._sides.floats,
            out_index,
            out_left,
            out_bout,
            out_confidence,
        )
        if n_new == 0:
            return
        new = _Contacts(
            out_index[:n_new], out_left[:n_new], out_bout[:n_new], out_confidence[:n_new]
        )
        times = (self._sync.t0 + new.index / self.fs).tolist()
        for time_s, is_left in zip(times, new.is_left.tolist(), strict=True):
            out.events.append(GaitEvent(time_s, "left" if is_left else "right", "IC"))
        contacts = self._contacts.extended(new)
        self._contacts = contacts.last(2)
        self._close_strides(contacts, out)
        out.events.sort(key=EVENT_ORDER)

    def _close_strides(self, contacts: _Contacts, out: CoreUpdate) -> None:
        """Toe-offs and metrics of the strides that the contacts after the first two complete:
        each from the previous contact of its side in the same bout, with exactly one
        contralateral contact in between."""
        if contacts.index.size < 3:
            return
        start, middle, end = slice(0, -2), slice(1, -1), slice(2, None)
        bout, is_left, index = contacts.bout, contacts.is_left, contacts.index
        closes = (
            (bout[start] == bout[end])
            & (bout[middle] == bout[end])
            & (is_left[start] == is_left[end])
            & (is_left[middle] != is_left[end])
            & (index[start] >= self._history_start)
        )
        ends = np.flatnonzero(closes) + 2
        if ends.size == 0:
            return
        assert self._sync.t0 is not None
        ic0, contralateral, ic1 = (self._sync.t0 + index[ends - k] / self.fs for k in (2, 1, 0))
        time_s = self._history["time_s"]
        left = is_left[ends]
        fc = np.full(ends.size, np.nan)
        for side, mine in (("left", left), ("right", ~left)):
            if mine.any():
                fc[mine] = final_contact_times(
                    time_s, ic0[mine], ic1[mine], contralateral[mine],
                    self._history.get(f"pitch_{side}"),
                )  # fmt: skip
        # A toe-off inside and all its samples there: else it is no complete stride.
        valid = (ic0 < fc) & (fc < ic1)
        for g0, g1 in self.gaps:
            valid &= ~((g0 < ic1) & (g1 > ic0))
        keep = np.flatnonzero(valid)
        if keep.size == 0:
            return
        ends = ends[keep]
        sides = ["left" if v else "right" for v in left[keep].tolist()]
        heading = self._history["heading"]
        h0 = index[ends - 2] - self._history_start
        h1 = np.minimum(index[ends] - self._history_start, heading.size - 1)
        confidence = np.minimum(contacts.confidence[ends - 2], contacts.confidence[ends])
        flags = np.where(
            np.abs(np.degrees(heading[h1] - heading[h0])) > TURN_DEG_PER_STRIDE,
            int(StrideQuality.TURN),
            0,
        ) | np.where(confidence < LOW_CONFIDENCE, int(StrideQuality.LOW_CONFIDENCE), 0)
        names = [n for n in self._history if n.endswith("_deg")]
        angles = AngleSeries(time_s, {n: self._history[n] for n in names})
        strides = stride_metrics(angles, sides, ic0[keep], fc[keep], ic1[keep], flags)
        for toe_off_s, stride in zip(fc[keep].tolist(), strides, strict=True):
            out.events.append(GaitEvent(toe_off_s, stride.side, "FC"))
            out.strides.append(stride)


def merge_updates(updates: Sequence[CoreUpdate]) -> CoreUpdate:
    """One update holding everything of several consecutive ones."""
    out = CoreUpdate()
    blocks = [u.angles for u in updates if u.angles.time_s.size]
    for u in updates:
        out.events += u.events
        out.strides += u.strides
    out.events.sort(key=EVENT_ORDER)
    out.strides.sort(key=STRIDE_ORDER)
    if blocks:
        names = blocks[0].columns.keys()
        out.angles = AngleSeries(
            np.concatenate([b.time_s for b in blocks]),
            {n: np.concatenate([b.columns[n] for b in blocks]) for n in names},
        )
    if updates:
        out.calibration = updates[-1].calibration
    return out
