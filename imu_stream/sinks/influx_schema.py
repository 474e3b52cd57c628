"""The InfluxDB schema of DESIGN.md §5: strides, angles, sensor status and session events as lines.

| measurement     | tags                              | fields                                   |
|-----------------|-----------------------------------|------------------------------------------|
| `stride`        | athlete, session, side, activity  | every numeric column of strides.csv      |
| `angles`        | athlete, session                  | the angles.csv columns present, ≤ 50 Hz  |
| `sensor`        | athlete, session, location        | battery_pct, packet_loss_pct, rate_hz,   |
|                 |                                   | connected, clock_offset_ms               |
| `session_event` | athlete, session                  | event, detail (strings)                  |

Timestamps are integer milliseconds since the Unix epoch: the session's wall-clock start plus
the session-clock time (a stride at its `start_s`). Field types never change within a
measurement (InfluxDB rejects a type change): stride metrics are floats and `quality` is an
integer (`i`); sensor fields are floats except `connected`, an integer 0/1 (so panels can
average it); `event` and `detail` are strings. NaN fields are left out, as is a point with no
field at all.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from imu_stream.records import STRIDE_METRIC_COLUMNS, AngleSeries, FloatArray, Stride
from imu_stream.sinks.journal.meta import SessionEvent, SessionMeta, StatusRecord
from imu_stream.sinks.line_protocol import encode_lines

STRIDE_MEASUREMENT = "stride"
ANGLES_MEASUREMENT = "angles"
SENSOR_MEASUREMENT = "sensor"
SESSION_EVENT_MEASUREMENT = "session_event"

SENSOR_FLOAT_FIELDS: tuple[str, ...] = (
    "battery_pct",
    "packet_loss_pct",
    "rate_hz",
    "clock_offset_ms",
)
SENSOR_INT_FIELDS: tuple[str, ...] = ("connected",)
SENSOR_FIELDS: tuple[str, ...] = SENSOR_FLOAT_FIELDS + SENSOR_INT_FIELDS

MAX_ANGLE_RATE_HZ = 50.0
# Angles are written in fixed point: 1e-4 degree is far below any sensor's resolution and
# the fixed-point encoder is several times faster than the exact one.
ANGLE_DECIMALS = 4
SENSOR_DECIMALS = 4


@dataclass(frozen=True, slots=True)
class SeriesTags:
    """Who and when: the tags every point of a session carries, and its wall-clock start."""

    athlete: str
    session: str
    activity: str = "unknown"
    start_unix_s: float = 0.0  # wall clock of session time 0

    @classmethod
    def from_meta(cls, meta: SessionMeta) -> SeriesTags:
        return cls(
            athlete=meta.athlete,
            session=meta.session_id,
            activity=meta.activity,
            start_unix_s=meta.start_unix_s,
        )

    def epoch_ms(self, time_s: ArrayLike) -> NDArray[np.int64]:
        """Session-clock seconds → integer epoch milliseconds."""
        t = np.asarray(time_s, dtype=np.float64)
        return np.rint(self.start_unix_s * 1000.0 + t * 1000.0).astype(np.int64)


def stride_lines(strides: Sequence[Stride], tags: SeriesTags) -> bytes:
    """`stride` points, one per stride at its start; values exact (shortest repr)."""
    if not strides:
        return b""
    fields: dict[str, FloatArray | NDArray[np.int64]] = {}
    for column in STRIDE_METRIC_COLUMNS:
        values = [getattr(s, column) for s in strides]
        if column == "quality":
            fields[column] = np.array(values, dtype=np.int64)
        else:
            fields[column] = np.array(values, dtype=np.float64)
    return encode_lines(
        STRIDE_MEASUREMENT,
        tags.epoch_ms(fields["start_s"]),
        fields,
        tags={
            "athlete": tags.athlete,
            "session": tags.session,
            "activity": tags.activity,
            "side": np.array([s.side for s in strides]),
        },
    )


def downsample_index(
    time_s: FloatArray, max_rate_hz: float = MAX_ANGLE_RATE_HZ
) -> NDArray[np.intp]:
    """Indices of the first sample in each 1/max_rate_hz bin of session time.

    Bins are fixed on the session clock (centred on multiples of 1/max_rate_hz, so a stream
    already at max_rate_hz passes unchanged despite float jitter in its times), and chunks of a
    live stream downsample the same way as the whole recording (a chunk boundary inside a bin
    can keep one extra sample).
    """
    t = np.asarray(time_s, dtype=np.float64)
    if t.size == 0:
        return np.zeros(0, dtype=np.intp)
    bins = np.rint(t * max_rate_hz).astype(np.int64)
    keep = np.ones(t.shape[0], dtype=bool)
    keep[1:] = bins[1:] != bins[:-1]
    return np.flatnonzero(keep)


class AngleDownsampler:
    """`downsample_index` across the chunks of a live stream: a chunk boundary inside a bin
    would otherwise keep a second sample there (each chunk's first sample), and a stream cut
    into ~20 ms chunks would keep nearly twice the rate. One per session and destination."""

    def __init__(self, max_rate_hz: float = MAX_ANGLE_RATE_HZ) -> None:
        self.max_rate_hz = max_rate_hz
        self._last_bin: int | None = None  # the bin of the last sample kept

    def __call__(self, series: AngleSeries) -> AngleSeries:
        time_s = np.asarray(series.time_s, dtype=np.float64)
        idx = downsample_index(time_s, self.max_rate_hz)
        bins = np.rint(time_s[idx] * self.max_rate_hz).astype(np.int64)
        if self._last_bin is not None:
            keep = bins > self._last_bin
            idx, bins = idx[keep], bins[keep]
        if idx.size:
            self._last_bin = int(bins[-1])
        return AngleSeries(
            time_s[idx], {name: np.asarray(v)[idx] for name, v in series.columns.items()}
        )


def angle_lines(
    series: AngleSeries, tags: SeriesTags, max_rate_hz: float = MAX_ANGLE_RATE_HZ
) -> bytes:
    """`angles` points, downsampled to ≤ max_rate_hz by keeping the first sample of each bin."""
    idx = downsample_index(series.time_s, max_rate_hz)
    if idx.size == 0:
        return b""
    fields = {name: np.asarray(series.columns[name])[idx] for name in series.column_names()}
    return encode_lines(
        ANGLES_MEASUREMENT,
        tags.epoch_ms(np.asarray(series.time_s)[idx]),
        fields,
        tags={"athlete": tags.athlete, "session": tags.session},
        float_decimals=ANGLE_DECIMALS,
    )


def _status_value(record: StatusRecord, name: str) -> float:
    value = record.fields.get(name)
    if value is None or isinstance(value, str):
        return math.nan
    return float(value)


def sensor_lines(records: Sequence[StatusRecord], tags: SeriesTags) -> bytes:
    """`sensor` points, one per status record; unknown fields left out."""
    if not records:
        return b""
    fields: dict[str, FloatArray | np.ma.MaskedArray] = {}
    for name in SENSOR_FLOAT_FIELDS:
        fields[name] = np.array([_status_value(r, name) for r in records], dtype=np.float64)
    connected = np.array([_status_value(r, "connected") for r in records], dtype=np.float64)
    fields["connected"] = np.ma.masked_array(
        (connected != 0).astype(np.int64), mask=~np.isfinite(connected)
    )
    return encode_lines(
        SENSOR_MEASUREMENT,
        tags.epoch_ms([r.time_s for r in records]),
        fields,
        tags={
            "athlete": tags.athlete,
            "session": tags.session,
            "location": np.array([r.location for r in records]),
        },
        float_decimals=SENSOR_DECIMALS,
    )


def session_event_lines(events: Sequence[SessionEvent], tags: SeriesTags) -> bytes:
    """`session_event` points; events at the same millisecond are spread 1 ms apart so that
    none overwrites another (same series, same timestamp = one point in InfluxDB)."""
    if not events:
        return b""
    stamps = tags.epoch_ms([e.time_s for e in events])
    order = np.argsort(stamps, kind="stable")
    for prev, cur in itertools.pairwise(order):
        if stamps[cur] <= stamps[prev]:
            stamps[cur] = stamps[prev] + 1
    return encode_lines(
        SESSION_EVENT_MEASUREMENT,
        stamps,
        {
            "event": np.array([e.event for e in events], dtype=object),
            "detail": np.array([e.detail for e in events], dtype=object),
        },
        tags={"athlete": tags.athlete, "session": tags.session},
    )
