"""`imu-stream collect`: sensors → session journal + MQTT raw blocks and status, no processing.

One `CollectSession` per session (several run side by side in one process for simulated
athletes), each with its own journal and MQTT connection:

1. `info` (retained, QoS 1): the session metadata, published first and again whenever it
   changes (a sensor appears, the processing rate becomes known). It carries what a processor
   needs to start: `extra.locations` (the worn sensors) and `extra.processing_rate_hz`.
2. `raw/{location}` (QoS 0): the decoded samples in the binary raw format with their
   session-clock times and a per-location sequence number. A sensor stream's notifications are
   joined over `raw_block_s` (0.1 s) into one message: an MQTT message costs its receivers far
   more than its bytes, and every processor receives every session's raw topics. The samples
   are journaled *as they travel* (float32, lossless for 16-bit sensor data), so the journal,
   the bus and every processor hold bit-identical samples and `analyze` on the journal
   reproduces the strides a processor computed from the bus.
3. `status/{location}` (retained, QoS 1) about once a second; `event` (QoS 1): `start`, `gap`.
4. At the end: every raw block is handed to the broker first, then the end-of-session marker
   (`markers.EndOfSession`, event `stop` with the last sequence number per location); the
   retained `info` and `status` topics are cleared.

The journal is appended before anything is published, exactly as `run` does: a broker that is
away loses live results (the publisher keeps QoS 1 messages until acknowledged and drops the
oldest raw blocks when its bounded queue is full), never the session.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from imu_stream.bus.markers import EndOfSession, encode_end
from imu_stream.core.clock import SensorGap
from imu_stream.live.records import StampedBlock, gap_event, status_record
from imu_stream.live.sources import Source
from imu_stream.pipeline import PipelineConfig, stop_at_session_end
from imu_stream.records import FloatArray, SampleBlock, SensorStatus
from imu_stream.sinks import wire
from imu_stream.sinks.journal import JournalWriter, SessionEvent, SessionMeta
from imu_stream.sinks.mqtt import QOS_RAW, QOS_RELIABLE, MqttConfig, MqttPublisher

log = logging.getLogger(__name__)

RAW_BLOCK_S = 0.1  # notifications of one sensor stream joined into one raw message
_ARRAYS = tuple(name for name, _ in wire.RAW_ARRAYS_V1)


def as_sent(block: SampleBlock) -> SampleBlock:
    """The block with its arrays rounded to float32, exactly as the raw format carries them."""
    arrays: dict[str, Any] = {
        name: np.asarray(arr, dtype=np.float64).astype(np.float32).astype(np.float64)
        for name in _ARRAYS
        if (arr := getattr(block, name)) is not None
    }
    return replace(block, **arrays)


def join_blocks(blocks: list[tuple[SampleBlock, FloatArray]]) -> tuple[SampleBlock, FloatArray]:
    """Consecutive blocks of one stream (same kind and arrays) as one: the device timestamp
    of the first sample, the host receive time of the last notification."""
    if len(blocks) == 1:
        return blocks[0]
    first, last = blocks[0][0], blocks[-1][0]
    arrays: dict[str, Any] = {
        name: np.concatenate([getattr(b, name) for b, _ in blocks])
        for name in _ARRAYS
        if getattr(first, name) is not None
    }
    joined = SampleBlock(
        first.kind,
        device_timestamp_ms=first.device_timestamp_ms,
        host_time_s=last.host_time_s,
        location=first.location,
        resource=first.resource,
        **arrays,
    )
    return joined, np.concatenate([t for _, t in blocks])


def _stream_key(block: SampleBlock) -> tuple[object, ...]:
    present = tuple(getattr(block, name) is not None for name in _ARRAYS)
    return (block.location, block.kind, block.resource, present)


@dataclass(slots=True)
class CollectCounters:
    blocks: int = 0
    samples: int = 0
    statuses: int = 0
    gaps: int = 0
    info_updates: int = 0


@dataclass(slots=True)
class CollectResult:
    athlete: str
    session_id: str
    session_dir: str
    stop_reason: str
    counters: CollectCounters
    last_seq: dict[str, int] = field(default_factory=dict)
    published: int = 0  # MQTT messages the broker took
    dropped_raw: int = 0  # raw blocks dropped from the publisher's bounded queue
    unsent: int = 0  # still queued when the publisher closed


class CollectSession:
    """One session from `source` to the journal and the bus; `await run()`."""

    def __init__(
        self,
        source: Source,
        config: PipelineConfig,
        mqtt: MqttConfig,
        *,
        raw_block_s: float = RAW_BLOCK_S,
        close_timeout_s: float = 10.0,
    ) -> None:
        if "sacrum" not in source.locations:
            raise ValueError("the sacrum sensor is required")
        self.source = source
        self.config = config
        self.publisher = MqttPublisher(mqtt)
        self.topics = mqtt.topics
        self.raw_block_s = raw_block_s
        self.close_timeout_s = close_timeout_s
        # Per sensor stream: blocks journaled but not yet published (joined every raw_block_s).
        self._unsent: dict[tuple[object, ...], list[tuple[SampleBlock, FloatArray]]] = {}
        self.counters = CollectCounters()
        self.meta: SessionMeta | None = None
        self.writer: JournalWriter | None = None
        self.stop_reason = ""
        self._stop = asyncio.Event()
        self._seq: dict[str, int] = {}
        self._status_locations: set[str] = set()
        self._seen_locations: set[str] = set()

    def request_stop(self, reason: str = "stopped") -> None:
        if not self._stop.is_set():
            self.stop_reason = reason
            self._stop.set()

    @property
    def session_id(self) -> str:
        return self.meta.session_id if self.meta is not None else ""

    def _meta(self) -> SessionMeta:
        meta = SessionMeta(
            athlete=self.config.athlete,
            activity=self.config.activity,
            sensors=self.source.sensors(),
            source=self.source.name,
            notes=self.config.notes,
        )
        meta.start_unix_s = time.time() - self.source.session_time()
        meta.extra["locations"] = list(self.source.locations)
        rate = self.source.processing_rate_hz()
        if rate:
            meta.extra["processing_rate_hz"] = rate
        return meta

    async def run(self) -> CollectResult:
        await self.source.start()
        try:
            meta = self.meta = self._meta()
            writer = self.writer = JournalWriter.create(
                self.config.data_dir, meta, flush_interval_s=self.config.flush_interval_s
            )
        except BaseException:
            await self.source.stop()
            raise
        tasks: list[asyncio.Task[None]] = []
        try:
            await self.publisher.start()
            self.publisher.publish_info(meta)
            self._session_event(SessionEvent(self._now(), "start", self.source.name))
            tasks = [
                asyncio.create_task(self._ingest(), name=f"collect-{meta.session_id}"),
                asyncio.create_task(self._stopper(), name=f"collect-stop-{meta.session_id}"),
                asyncio.create_task(self._sender(), name=f"collect-send-{meta.session_id}"),
            ]
            await tasks[0]
        finally:
            for task in tasks:
                if not task.done():
                    task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            with contextlib.suppress(Exception):
                await self.source.stop()
            await self._finish(writer)
        st = self.publisher.stats
        return CollectResult(
            athlete=meta.athlete,
            session_id=meta.session_id,
            session_dir=str(writer.session_dir),
            stop_reason=self.stop_reason or "source ended",
            counters=self.counters,
            last_seq=self._last_seq(),
            published=st.published,
            dropped_raw=st.dropped_qos0,
            unsent=self.publisher.pending,
        )

    def _now(self) -> float:
        try:
            return float(self.source.session_time())
        except Exception:
            return 0.0

    def _last_seq(self) -> dict[str, int]:
        return {loc: seq - 1 for loc, seq in self._seq.items()}

    async def _finish(self, writer: JournalWriter) -> None:
        """Raw blocks out first, then the end marker, then the retained topics cleared."""
        meta = self.meta
        assert meta is not None
        reason = self.stop_reason or "source ended"
        now = self._now()
        self._publish_unsent()
        writer.add_session_event("stop", now, reason)
        with contextlib.suppress(Exception):
            writer.update_meta(sensors=self.source.sensors())
        try:
            if not await self.publisher.flush(self.close_timeout_s):
                log.warning("%s: raw blocks still queued at the end marker", meta.session_id)
            marker = EndOfSession(now, reason, self._last_seq())
            topic = self.topics.topic(meta.athlete, meta.session_id, "event")
            self.publisher.publish(topic, encode_end(marker), QOS_RELIABLE)
            self.publisher.clear_retained(
                meta.athlete, meta.session_id, sorted(self._status_locations)
            )
            await self.publisher.close(self.close_timeout_s)
        finally:
            await writer.aclose()

    async def _stopper(self) -> None:
        await stop_at_session_end(
            self.source, self.config.duration_s, self._stop, self.request_stop
        )

    async def _ingest(self) -> None:
        async for event in self.source.events():
            if isinstance(event, StampedBlock):
                self._on_block(event)
            elif isinstance(event, SensorStatus):
                self.counters.statuses += 1
                record = status_record(event)
                assert self.writer is not None and self.meta is not None
                self.writer.add_status(
                    record.location,
                    record.time_s,
                    **{
                        k: v
                        for k, v in record.fields.items()
                        if not (isinstance(v, float) and not math.isfinite(v))
                    },
                )
                self._status_locations.add(record.location)
                self.publisher.publish_status(self.meta.athlete, self.meta.session_id, record)
            elif isinstance(event, SensorGap):
                self.counters.gaps += 1
                self._session_event(gap_event(event))

    async def _sender(self) -> None:
        while True:
            await asyncio.sleep(self.raw_block_s)
            self._publish_unsent()

    def _publish_unsent(self) -> None:
        meta = self.meta
        assert meta is not None
        unsent, self._unsent = self._unsent, {}
        for blocks in unsent.values():
            block, time_s = join_blocks(blocks)
            loc = block.location
            assert loc is not None
            seq = self._seq.get(loc, 0)
            self._seq[loc] = seq + 1
            payload = wire.encode_raw_block(block, seq=seq, time_s=time_s)
            topic = self.topics.topic(meta.athlete, meta.session_id, "raw", loc)
            self.publisher.publish(topic, payload, QOS_RAW)

    def _on_block(self, stamped: StampedBlock) -> None:
        writer, meta = self.writer, self.meta
        assert writer is not None and meta is not None
        loc = stamped.location
        # Journal the samples as the bus carries them (float32): one set of samples for all.
        sent = as_sent(stamped.block)
        writer.append_block(sent, time_s=stamped.time_s)  # first, always
        self._unsent.setdefault(_stream_key(sent), []).append((sent, stamped.time_s))
        if self.raw_block_s <= 0:
            self._publish_unsent()
        self.counters.blocks += 1
        self.counters.samples += stamped.n_samples
        changed = False
        if loc not in self._seen_locations:
            self._seen_locations.add(loc)
            meta.sensors = self.source.sensors()
            writer.update_meta(sensors=meta.sensors)
            changed = True
        if "processing_rate_hz" not in meta.extra:
            rate = self.source.processing_rate_hz()
            if rate:
                meta.extra["processing_rate_hz"] = rate
                writer.update_meta(extra=dict(meta.extra))
                changed = True
        if changed:
            self.counters.info_updates += 1
            self.publisher.publish_info(meta)

    def _session_event(self, event: SessionEvent) -> None:
        meta, writer = self.meta, self.writer
        assert meta is not None and writer is not None
        writer.add_session_event(event.event, event.time_s, event.detail)
        self.publisher.publish_session_event(meta.athlete, meta.session_id, event)
