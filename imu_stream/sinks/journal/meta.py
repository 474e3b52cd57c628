"""Session metadata kept in the journal: who, what, which sensors, calibration, software."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from imu_stream import __version__
from imu_stream.records import SessionInfo


@dataclass(slots=True)
class SensorMeta:
    """One worn sensor as configured for the session."""

    location: str
    device: str = "unknown"  # movesense | metawear-bmi160 | metawear-bmi270 | simulator | replay
    address: str = ""
    firmware: str = ""
    rate_hz: float | None = None
    acc_range_g: float | None = None
    gyro_range_dps: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class SessionMeta:
    """Everything the journal knows about a session besides its samples and outputs.

    `start_unix_s` is wall-clock time of session-clock zero: sample and event times in the
    journal are seconds after it.
    """

    athlete: str = "anonymous"
    activity: str = "unknown"  # walk | run | unknown
    sensors: list[SensorMeta] = field(default_factory=list)
    source: str = ""  # ble | simulate | replay | …
    notes: str = ""
    calibration: dict[str, Any] = field(default_factory=dict)  # per location, set when known
    software_version: str = __version__
    start_unix_s: float = 0.0
    end_unix_s: float | None = None  # set by a clean close; None after a crash or while open
    session_id: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def start_time(self) -> datetime:
        return datetime.fromtimestamp(self.start_unix_s, tz=UTC)

    def sensor(self, location: str) -> SensorMeta | None:
        return next((s for s in self.sensors if s.location == location), None)

    def to_info(self) -> SessionInfo:
        """The session.toml view (DESIGN.md §4) of this metadata. The sample rate is the one
        the live processor ran at when the pipeline recorded it (`extra["processing_rate_hz"]`),
        so re-analysing an export can use the same grid; else the sensors' median rate."""
        rates = [s.rate_hz for s in self.sensors if s.rate_hz]
        processing = self.extra.get("processing_rate_hz")
        rate = float(processing) if processing else (float(np.median(rates)) if rates else None)
        return SessionInfo(
            athlete=self.athlete,
            activity=self.activity,
            sample_rate_hz=rate,
            notes=self.notes,
            extra={"session_id": self.session_id},
        )

    def to_items(self) -> dict[str, str]:
        """Key → JSON text, one row each in the journal's `meta` table."""
        return {k: json.dumps(v, default=_json_default) for k, v in asdict(self).items()}

    @classmethod
    def from_items(cls, items: dict[str, str]) -> SessionMeta:
        data = {k: json.loads(v) for k, v in items.items()}
        sensors = [SensorMeta(**s) for s in data.pop("sensors", [])]
        known = set(cls.__dataclass_fields__)
        extra = dict(data.pop("extra", {}))
        # Keys written by a newer version land in extra instead of failing.
        extra.update({k: data.pop(k) for k in list(data) if k not in known})
        return cls(sensors=sensors, extra=extra, **data)


def _json_default(value: object) -> object:
    """Calibration may hold numpy arrays (mounting rotations) and numpy scalars."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, SensorMeta):  # update_meta(sensors=[...]) during a session
        return asdict(value)
    raise TypeError(f"cannot store {type(value).__name__} in session metadata")


def meta_value_json(value: object) -> str:
    return json.dumps(value, default=_json_default)


@dataclass(frozen=True, slots=True)
class StatusRecord:
    """One sensor status sample (the `sensor` measurement of DESIGN.md §5)."""

    time_s: float
    location: str
    fields: dict[str, Any]


@dataclass(frozen=True, slots=True)
class SessionEvent:
    """start, calibrated, stop, gap, … with a free-text detail."""

    time_s: float
    event: str
    detail: str = ""
