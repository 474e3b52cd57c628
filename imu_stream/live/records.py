"""What flows between the live pipeline's stages."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from imu_stream.core.clock import SensorGap
from imu_stream.core.online import CalibrationState
from imu_stream.records import AngleSeries, FloatArray, GaitEvent, SampleBlock, SensorStatus, Stride
from imu_stream.sinks.journal.meta import SessionEvent, StatusRecord


@dataclass(slots=True)
class StampedBlock:
    """One decoded block and the session-clock time of each of its samples."""

    block: SampleBlock
    time_s: FloatArray
    arrival_s: float = math.nan  # time.perf_counter() when the pipeline received it

    @property
    def location(self) -> str:
        assert self.block.location is not None
        return self.block.location

    @property
    def n_samples(self) -> int:
        return self.block.n_samples


SourceEvent = StampedBlock | SensorStatus | SensorGap


@dataclass(slots=True)
class LiveUpdate:
    """What the processor finalised after one batch of blocks, with its timing."""

    events: list[GaitEvent] = field(default_factory=list)
    strides: list[Stride] = field(default_factory=list)
    angles: AngleSeries = field(default_factory=lambda: AngleSeries(np.zeros(0), {}))
    calibration: CalibrationState = field(
        default_factory=lambda: CalibrationState(False, "stand still 3 s")
    )
    # perf_counter() arrival of the oldest and newest block of the batch behind this update:
    # the latency of a result is bounded by (emitted − oldest), at least (emitted − newest).
    oldest_arrival_s: float = math.nan
    newest_arrival_s: float = math.nan
    data_time_s: float = math.nan  # session time of the newest sample pushed before it
    final: bool = False  # from the processor's finish() at the end of the session

    @property
    def empty(self) -> bool:
        return not self.events and not self.strides and self.angles.time_s.size == 0


def status_record(status: SensorStatus) -> StatusRecord:
    """A collector status as the journal/InfluxDB/MQTT `sensor` record."""
    return StatusRecord(
        time_s=status.time_s,
        location=status.location,
        fields={
            "connected": bool(status.connected),
            "battery_pct": status.battery_pct,
            "packet_loss_pct": status.packet_loss_pct,
            "rate_hz": status.rate_hz,
            "clock_offset_ms": status.clock_offset_ms,
        },
    )


def gap_event(gap: SensorGap) -> SessionEvent:
    detail = (
        f"{gap.location}: {gap.end_s - gap.start_s:.2f} s without data "
        f"({gap.lost_samples} samples, {gap.reason})"
    )
    return SessionEvent(gap.start_s, "gap", detail)
