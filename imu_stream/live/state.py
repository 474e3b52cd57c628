"""What the live view shows, kept up to date by the pipeline and copied out as snapshots.

The pipeline mutates `LiveState` on the event loop; the view's render thread takes
`snapshot()`: both hold the lock only to copy a few small objects, so rendering (however slow
the terminal) never holds up ingestion.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from imu_stream.core.online import CalibrationState
from imu_stream.live.records import LiveUpdate
from imu_stream.records import SIDES, Stride
from imu_stream.sinks.journal import SessionEvent, SessionMeta, StatusRecord

WINDOW_STRIDES = 20  # "last-20 mean" of the view
KEPT_STRIDES = 4 * WINDOW_STRIDES
KEPT_MESSAGES = 4


@dataclass(frozen=True, slots=True)
class SensorView:
    location: str
    connected: bool = False
    battery_pct: float = math.nan
    rate_hz: float = 0.0
    packet_loss_pct: float = 0.0
    status_time_s: float = math.nan
    device: str = ""


@dataclass(frozen=True, slots=True)
class LiveSnapshot:
    athlete: str
    activity: str
    session_id: str
    source: str
    elapsed_s: float  # wall clock since the view started
    data_time_s: float  # session time of the newest processed sample
    sensors: tuple[SensorView, ...]
    calibration: CalibrationState
    strides: tuple[Stride, ...]  # most recent last
    n_strides: int
    messages: tuple[str, ...]
    counters: dict[str, str] = field(default_factory=dict)


def _number(value: object, default: float = math.nan) -> float:
    if isinstance(value, bool):
        return float(value)
    return float(value) if isinstance(value, int | float) else default


class LiveState:
    """The view's model; every method is cheap and thread-safe."""

    def __init__(
        self,
        locations: Sequence[str] = (),
        counters: Callable[[], dict[str, str]] | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self._meta = SessionMeta()
        self._sensors = {loc: SensorView(loc) for loc in locations}
        self._calibration = CalibrationState(False, "stand still 3 s")
        self._strides: deque[Stride] = deque(maxlen=KEPT_STRIDES)
        self._n_strides = 0
        self._messages: deque[str] = deque(maxlen=KEPT_MESSAGES)
        self._data_time_s = math.nan
        self._started = time.monotonic()
        self._counters = counters

    def set_counters(self, counters: Callable[[], dict[str, str]]) -> None:
        self._counters = counters

    def set_meta(self, meta: SessionMeta) -> None:
        with self._lock:
            self._meta = meta
            for sensor in meta.sensors:
                old = self._sensors.get(sensor.location, SensorView(sensor.location))
                self._sensors[sensor.location] = replace(old, device=sensor.device)
            self._started = time.monotonic()

    def apply_update(self, update: LiveUpdate) -> None:
        with self._lock:
            self._strides.extend(update.strides)
            self._n_strides += len(update.strides)
            self._calibration = update.calibration
            if math.isfinite(update.data_time_s):
                self._data_time_s = update.data_time_s

    def apply_status(self, status: StatusRecord) -> None:
        f = status.fields
        with self._lock:
            old = self._sensors.get(status.location, SensorView(status.location))
            self._sensors[status.location] = replace(
                old,
                connected=bool(f.get("connected", False)),
                battery_pct=_number(f.get("battery_pct")),
                rate_hz=_number(f.get("rate_hz"), 0.0),
                packet_loss_pct=_number(f.get("packet_loss_pct"), 0.0),
                status_time_s=status.time_s,
            )

    def add_message(self, text: str) -> None:
        with self._lock:
            self._messages.append(text)

    def apply_session_event(self, event: SessionEvent) -> None:
        detail = f": {event.detail}" if event.detail else ""
        self.add_message(f"{event.time_s:7.1f} s  {event.event}{detail}")

    def snapshot(self) -> LiveSnapshot:
        with self._lock:
            meta = self._meta
            snap = LiveSnapshot(
                athlete=meta.athlete,
                activity=meta.activity,
                session_id=meta.session_id,
                source=meta.source,
                elapsed_s=time.monotonic() - self._started,
                data_time_s=self._data_time_s,
                sensors=tuple(self._sensors.values()),
                calibration=self._calibration,
                strides=tuple(self._strides),
                n_strides=self._n_strides,
                messages=tuple(self._messages),
            )
        if self._counters is not None:
            snap = replace(snap, counters=self._counters())
        return snap


# --- figures the view shows, from a snapshot -------------------------------------------------


def good_recent(strides: Sequence[Stride], side: str, n: int = WINDOW_STRIDES) -> list[Stride]:
    """The last `n` strides of one side without quality flags."""
    return [s for s in strides if s.side == side and s.quality == 0][-n:]


def mean_of(strides: Sequence[Stride], metric: str) -> float:
    values = [getattr(s, metric) for s in strides]
    finite = [v for v in values if math.isfinite(v)]
    return sum(finite) / len(finite) if finite else math.nan


def last_of(strides: Sequence[Stride], metric: str) -> float:
    return float(getattr(strides[-1], metric)) if strides else math.nan


def symmetry_index(left: float, right: float) -> float:
    """SI = 100·(R − L)/(0.5·(R + L)) (METRICS.md), NaN when undefined."""
    if not (math.isfinite(left) and math.isfinite(right)) or left + right == 0:
        return math.nan
    return 100.0 * (right - left) / (0.5 * (right + left))


@dataclass(frozen=True, slots=True)
class SideFigures:
    last: float
    mean: float
    n: int


def side_figures(snapshot: LiveSnapshot, metric: str) -> dict[str, SideFigures]:
    out = {}
    for side in SIDES:
        recent = good_recent(snapshot.strides, side)
        out[side] = SideFigures(last_of(recent, metric), mean_of(recent, metric), len(recent))
    return out
