"""Records shared by every part: sample blocks, gait events, strides, and the file columns.

The column tuples are the file contract of DESIGN.md §4; everything that reads or writes the
session files uses them, so a column is named in exactly one place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntFlag
from operator import attrgetter

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]

LOCATIONS: tuple[str, ...] = ("sacrum", "left_thigh", "right_thigh", "left_shank", "right_shank")
SIDES: tuple[str, str] = ("left", "right")
STANDARD_GRAVITY = 9.80665  # m/s², the MetaWear g

RAW_COLUMNS: tuple[str, ...] = ("time_s", "acc_x", "acc_y", "acc_z", "gyr_x", "gyr_y", "gyr_z")
MAG_COLUMNS: tuple[str, ...] = ("mag_x", "mag_y", "mag_z")

EVENT_COLUMNS: tuple[str, ...] = ("time_s", "side", "event")
STRIDE_COLUMNS: tuple[str, ...] = (
    "start_s",
    "end_s",
    "side",
    "stride_time_s",
    "stance_time_s",
    "swing_time_s",
    "cadence_spm",
    "pelvic_drop_deg",
    "pelvic_obliquity_rom_deg",
    "hip_adduction_peak_deg",
    "thigh_adduction_peak_deg",
    "knee_abduction_peak_deg",
    "quality",
)
# Numeric stride columns: the `stride` measurement's fields in InfluxDB (DESIGN.md §5).
STRIDE_METRIC_COLUMNS: tuple[str, ...] = tuple(
    c for c in STRIDE_COLUMNS if c not in ("side",)
)
ANGLE_COLUMNS: tuple[str, ...] = (
    "time_s",
    "pelvic_obliquity_deg",
    "pelvic_tilt_deg",
    "pelvic_rotation_deg",
    "hip_adduction_left_deg",
    "hip_adduction_right_deg",
    "thigh_adduction_left_deg",
    "thigh_adduction_right_deg",
)
KNEE_ANGLE_COLUMNS: tuple[str, ...] = ("knee_abduction_left_deg", "knee_abduction_right_deg")


class StrideQuality(IntFlag):
    """Bit flags of `strides.csv`'s `quality` column (0 = good)."""

    GOOD = 0
    GAP = 1  # reserved: strides that would span a data gap are dropped instead
    LOW_CONFIDENCE = 2  # events or side assignment uncertain
    TURN = 4  # heading changed too much during the stride
    IMPLAUSIBLE = 8  # duration or phase ratios outside physiological limits


@dataclass(slots=True)
class SampleBlock:
    """Samples decoded from one device notification (or one simulator/replay chunk).

    Units follow DESIGN.md §3: acceleration m/s², angular rate deg/s, magnetic field µT,
    quaternions w, x, y, z. Arrays are (n, 3) or (n, 4); the keys that do not apply are None.
    """

    kind: str
    acc: FloatArray | None = None
    gyro: FloatArray | None = None
    mag: FloatArray | None = None
    quaternion: FloatArray | None = None
    euler_deg: FloatArray | None = None
    gravity: FloatArray | None = None
    linear_acc: FloatArray | None = None
    # Device clock of the first sample (Movesense timestamps, ms); None where the device sends none.
    device_timestamp_ms: float | None = None
    # Host receive time on the session clock (s), stamped by the collector's notify callback.
    host_time_s: float | None = None
    location: str | None = None
    resource: str | None = None

    @property
    def n_samples(self) -> int:
        for arr in (
            self.acc,
            self.gyro,
            self.mag,
            self.quaternion,
            self.euler_deg,
            self.gravity,
            self.linear_acc,
        ):
            if arr is not None:
                return int(arr.shape[0])
        return 0


# GaitEvent and Stride are not frozen: the core makes three of them per step, and a frozen
# dataclass's __init__ (object.__setattr__ per field) costs 4–10× more; treat them as values.
@dataclass(slots=True)
class GaitEvent:
    time_s: float
    side: str  # "left" | "right"
    event: str  # "IC" | "FC"


@dataclass(slots=True)
class Stride:
    """One stride of one leg; side = stance leg; NaN where a metric cannot be computed."""

    start_s: float
    end_s: float
    side: str
    stride_time_s: float
    stance_time_s: float
    swing_time_s: float
    cadence_spm: float
    pelvic_drop_deg: float
    pelvic_obliquity_rom_deg: float
    hip_adduction_peak_deg: float
    thigh_adduction_peak_deg: float
    knee_abduction_peak_deg: float
    quality: int = 0

    def as_row(self) -> dict[str, float | str | int]:
        return {c: getattr(self, c) for c in STRIDE_COLUMNS}


EVENT_ORDER = attrgetter("time_s", "side", "event")  # sort key of gait events
STRIDE_ORDER = attrgetter("start_s", "side")  # sort key of strides


@dataclass(slots=True)
class SensorRecording:
    """Samples of one sensor on the session clock, sensor frame, SI units."""

    location: str
    time_s: FloatArray
    acc: FloatArray  # (n, 3) m/s²
    gyr: FloatArray  # (n, 3) deg/s
    mag: FloatArray | None = None  # (n, 3) µT

    @property
    def n_samples(self) -> int:
        return int(self.time_s.shape[0])

    @property
    def rate_hz(self) -> float:
        if self.n_samples < 2:
            return float("nan")
        return float((self.n_samples - 1) / (self.time_s[-1] - self.time_s[0]))


@dataclass(slots=True)
class SessionInfo:
    """What `session.toml` says about a session; every field optional."""

    athlete: str = "anonymous"
    activity: str = "unknown"  # walk | run | unknown
    sample_rate_hz: float | None = None
    notes: str = ""
    extra: dict[str, object] = field(default_factory=dict)


@dataclass(slots=True)
class AngleSeries:
    """Continuous angles on one time grid (degrees); columns named as in `angles.csv`.

    A column that cannot be computed (missing sensor) is absent from `columns`.
    """

    time_s: FloatArray
    columns: dict[str, FloatArray] = field(default_factory=dict)

    def get(self, name: str) -> FloatArray | None:
        return self.columns.get(name)

    def column_names(self) -> list[str]:
        order = list(ANGLE_COLUMNS[1:]) + list(KNEE_ANGLE_COLUMNS)
        return [c for c in order if c in self.columns]

    def table(self) -> tuple[list[str], FloatArray]:
        names = self.column_names()
        data = np.column_stack([self.time_s] + [self.columns[c] for c in names])
        return ["time_s", *names], data


@dataclass(frozen=True, slots=True)
class SensorStatus:
    """One sensor's collector status at `time_s` (session clock); the InfluxDB `sensor` fields.

    Emitted about once a second and on every connect/disconnect. NaN where not known yet
    (battery before the first read, offset before the first samples).
    """

    location: str
    time_s: float
    connected: bool
    battery_pct: float = float("nan")
    packet_loss_pct: float = 0.0  # lost / (lost + received) samples since the session started
    rate_hz: float = 0.0  # samples per second received over the last status interval
    clock_offset_ms: float = float("nan")  # session time − device time of the latest sample
