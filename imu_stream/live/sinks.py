"""Where the live results go: the `Sink` protocol and the sinks the pipeline ships with.

A sink's `on_*` methods are called on the event loop and must return at once: a sink that does
I/O hands the work to its own bounded buffer (the journal's commit thread, the InfluxDB
writer's spool, the MQTT publisher's queues, the view's snapshot). What each drops when it
cannot keep up is its own policy, stated in its class; the pipeline never waits for a sink.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from imu_stream.live.records import LiveUpdate
from imu_stream.records import AngleSeries
from imu_stream.sinks.influx import InfluxWriter
from imu_stream.sinks.influx_schema import AngleDownsampler, SeriesTags, downsample_index
from imu_stream.sinks.journal import JournalWriter, SessionEvent, SessionMeta, StatusRecord
from imu_stream.sinks.mqtt import MqttPublisher

log = logging.getLogger(__name__)

Counters = dict[str, float | int | str | bool]


@runtime_checkable
class Sink(Protocol):
    """Receives the session's results as they become final. `on_*` must not block."""

    name: str

    async def start(self, meta: SessionMeta) -> None: ...

    def on_update(self, update: LiveUpdate) -> None: ...

    def on_status(self, status: StatusRecord) -> None: ...

    def on_session_event(self, event: SessionEvent) -> None: ...

    async def close(self) -> None: ...

    def counters(self) -> Counters: ...


class BaseSink:
    """No-op defaults, so a sink implements only what it uses."""

    name = "sink"

    async def start(self, meta: SessionMeta) -> None:
        return None

    def on_update(self, update: LiveUpdate) -> None:
        return None

    def on_status(self, status: StatusRecord) -> None:
        return None

    def on_session_event(self, event: SessionEvent) -> None:
        return None

    async def close(self) -> None:
        return None

    def counters(self) -> Counters:
        return {}


def _finite_fields(status: StatusRecord) -> dict[str, float | bool | str]:
    return {
        k: v
        for k, v in status.fields.items()
        if isinstance(v, bool | str) or (isinstance(v, int | float) and math.isfinite(v))
    }


class JournalOutputs(BaseSink):
    """Processor outputs into the session journal beside the samples. Never drops: appends
    go to the writer's in-memory batch, committed by its thread every ≤ 0.25 s."""

    name = "journal"

    def __init__(self, writer: JournalWriter) -> None:
        self.writer = writer
        self.strides = 0
        self.angle_samples = 0

    def on_update(self, update: LiveUpdate) -> None:
        if update.events:
            self.writer.add_events(update.events)
        if update.strides:
            self.writer.add_strides(update.strides)
            self.strides += len(update.strides)
        if update.angles.time_s.size:
            self.writer.add_angles(update.angles)
            self.angle_samples += int(update.angles.time_s.size)

    def on_status(self, status: StatusRecord) -> None:
        self.writer.add_status(status.location, status.time_s, **_finite_fields(status))

    def on_session_event(self, event: SessionEvent) -> None:
        self.writer.add_session_event(event.event, event.time_s, event.detail)

    def counters(self) -> Counters:
        st = self.writer.stats
        return {
            "samples_committed": st.samples_committed,
            "pending_blocks": st.pending_blocks,
            "commits": st.commits,
            "max_commit_ms": round(st.max_commit_ms, 1),
            "strides": self.strides,
        }


class InfluxSink(BaseSink):
    """Strides, angles (≤ 50 Hz), sensor status and session events to InfluxDB. `write()`
    never waits; while the server is away batches queue in memory, then spill to the spool
    folder (bounded: the oldest batches are dropped first, counted as `lines_dropped`)."""

    name = "influx"

    def __init__(self, writer: InfluxWriter, close_timeout_s: float = 5.0) -> None:
        self.writer = writer
        self.close_timeout_s = close_timeout_s
        self.tags: SeriesTags | None = None
        self._angles = AngleDownsampler()  # ≤ 50 Hz across the live chunks

    async def start(self, meta: SessionMeta) -> None:
        self.tags = SeriesTags.from_meta(meta)
        await self.writer.start()

    def on_update(self, update: LiveUpdate) -> None:
        assert self.tags is not None
        if update.strides:
            self.writer.write_strides(update.strides, self.tags)
        angles = self._angles(update.angles)
        if angles.time_s.size:
            self.writer.write_angles(angles, self.tags)

    def on_status(self, status: StatusRecord) -> None:
        assert self.tags is not None
        self.writer.write_status([status], self.tags)

    def on_session_event(self, event: SessionEvent) -> None:
        assert self.tags is not None
        self.writer.write_session_events([event], self.tags)

    async def close(self) -> None:
        await self.writer.close(self.close_timeout_s)

    def counters(self) -> Counters:
        st = self.writer.stats
        return {
            "lines_in": st.lines_in,
            "lines_written": st.lines_written,
            "lines_dropped": st.lines_dropped,
            "pending_lines": self.writer.pending_lines,
            "connected": st.connected,
        }


def downsampled(series: AngleSeries, max_rate_hz: float = 50.0) -> AngleSeries:
    idx = downsample_index(series.time_s, max_rate_hz)
    return AngleSeries(
        np.asarray(series.time_s)[idx], {k: np.asarray(v)[idx] for k, v in series.columns.items()}
    )


class MqttSink(BaseSink):
    """Strides and gait events (QoS 1), angles (≤ 50 Hz, QoS 0), retained sensor status and
    session info on the topics of DESIGN.md §6. `publish_*()` never waits: QoS 1 messages
    queue until acknowledged (never dropped), QoS 0 ones in a bounded queue that drops the
    oldest while the broker is away (counted as `dropped_qos0`)."""

    name = "mqtt"

    def __init__(
        self, publisher: MqttPublisher, close_timeout_s: float = 5.0, clear_retained: bool = True
    ) -> None:
        self.publisher = publisher
        self.close_timeout_s = close_timeout_s
        self.clear_retained = clear_retained
        self.meta: SessionMeta | None = None
        self._locations: set[str] = set()
        self._angles = AngleDownsampler()  # ≤ 50 Hz across the live chunks

    async def start(self, meta: SessionMeta) -> None:
        self.meta = meta
        await self.publisher.start()
        self.publisher.publish_info(meta)

    def _who(self) -> tuple[str, str]:
        assert self.meta is not None
        return self.meta.athlete, self.meta.session_id

    def on_update(self, update: LiveUpdate) -> None:
        athlete, session = self._who()
        if update.strides:
            self.publisher.publish_strides(athlete, session, update.strides)
        if update.events:
            self.publisher.publish_gait_events(athlete, session, update.events)
        angles = self._angles(update.angles)
        if angles.time_s.size:
            self.publisher.publish_angles(athlete, session, angles)

    def on_status(self, status: StatusRecord) -> None:
        athlete, session = self._who()
        self._locations.add(status.location)
        self.publisher.publish_status(athlete, session, status)

    def on_session_event(self, event: SessionEvent) -> None:
        athlete, session = self._who()
        self.publisher.publish_session_event(athlete, session, event)

    async def close(self) -> None:
        if self.clear_retained and self.meta is not None:
            athlete, session = self._who()
            self.publisher.clear_retained(athlete, session, sorted(self._locations))
        await self.publisher.close(self.close_timeout_s)

    def counters(self) -> Counters:
        st = self.publisher.stats
        return {
            "published": st.published,
            "pending": self.publisher.pending,
            "dropped_qos0": st.dropped_qos0,
            "connected": st.connected,
        }


@dataclass(slots=True)
class StrideTiming:
    """When one stride reached the sinks, against when the data that finalised it arrived."""

    end_s: float  # the stride's end (its closing initial contact), session clock
    data_time_s: float  # session time of the newest sample pushed when it became final
    latency_max_s: float  # emitted − arrival of the oldest block in the finalising batch
    latency_min_s: float  # emitted − arrival of the newest block in it
    final: bool  # only known at finish(): the session's end, not a live result


@dataclass(slots=True)
class LatencyProbe(BaseSink):
    """Records each stride's processing latency (wall clock) and finalisation delay (session
    time) as the sinks see it; for the latency benchmark and the tests."""

    name: str = "latency"
    timings: list[StrideTiming] = field(default_factory=list)

    def on_update(self, update: LiveUpdate) -> None:
        now = time.perf_counter()
        for stride in update.strides:
            self.timings.append(
                StrideTiming(
                    stride.end_s,
                    update.data_time_s,
                    now - update.oldest_arrival_s,
                    now - update.newest_arrival_s,
                    update.final,
                )
            )

    def counters(self) -> Counters:
        live = [t.latency_max_s for t in self.timings if not t.final]
        if not live:
            return {"strides": len(self.timings)}
        return {
            "strides": len(self.timings),
            "p50_ms": round(1e3 * float(np.percentile(live, 50)), 2),
            "p99_ms": round(1e3 * float(np.percentile(live, 99)), 2),
        }
