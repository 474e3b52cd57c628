"""One session on a shard processor: raw blocks from the bus → `ProcessorStage` → outputs.

The same processor stage as `run` (pairing → `OnlineProcessor`), fed the very samples the
collector journaled, so the strides equal those of `analyze` on the collector's journal. The
stage is created when the session's retained `info` arrives (worn sensors, processing rate);
blocks that come before it are held. Blocks wait in a bounded queue (the dispatcher waits
when it is full: flow control, no drops); the core runs in a worker thread, batch by batch,
asking for results every `update_every_s` of session time.

The session ends with the collector's end marker: once the blocks it announces have arrived
(or `end_grace_s` after the marker, when some were lost on the way), the stage's `finish()`
flushes the last results and the `processed` marker is published. `abandon()` (processor
shutdown) stops without `finish()`: the session may still be running on its collector, and
an early `finish()` would publish end-of-data results for data that is not at its end.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from imu_stream.bus.markers import EndOfSession, SessionProcessed
from imu_stream.bus.outputs import SessionOutputs
from imu_stream.core.online import CoreUpdate
from imu_stream.live.processor import ProcessorStage
from imu_stream.live.records import StampedBlock
from imu_stream.sinks import wire
from imu_stream.sinks.journal.meta import SessionEvent, SessionMeta, StatusRecord

log = logging.getLogger(__name__)

IDLE = "idle"  # the end reason of a session that went quiet without an end marker
MAX_BATCH_BLOCKS = 1024
MAX_HELD_BLOCKS = 50_000  # raw messages kept while the session's info is unknown (≈ 15 min)
MAX_HELD_RECORDS = 5_000  # status records and events kept meanwhile


@dataclass(slots=True)
class WorkerConfig:
    # Session seconds of new data between core updates. The core's update() has a cost per
    # call whatever the amount of new data; a processor serves many sessions, so it asks less
    # often than `run` (0.02 s). Contacts are final 1.1 s after they happen anyway.
    update_every_s: float = 0.25
    queue_blocks: int = 4096
    end_grace_s: float = 3.0  # wait this long (wall clock) for blocks the end marker announces
    in_thread: bool = True


@dataclass(slots=True)
class SessionStats:
    athlete: str
    session: str
    raw_blocks: int = 0
    raw_blocks_lost: int = 0  # sequence gaps: QoS 0 blocks that never arrived
    samples: int = 0
    strides: int = 0
    events: int = 0
    angle_samples: int = 0
    joined_late: bool = False  # the first block seen was not the session's first
    calibrated: bool = False
    finished: str = ""  # end | incomplete end | idle | shutdown | no info | no data | error


class SessionWorker:
    def __init__(
        self,
        athlete: str,
        session: str,
        outputs: Callable[[SessionMeta], SessionOutputs],
        config: WorkerConfig,
    ) -> None:
        self.stats = SessionStats(athlete, session)
        self.config = config
        self.meta: SessionMeta | None = None
        self.stage: ProcessorStage | None = None
        self.outputs: SessionOutputs | None = None
        self._make_outputs = outputs
        self._queue: asyncio.Queue[StampedBlock | None] = asyncio.Queue(config.queue_blocks)
        self._held: list[StampedBlock] = []
        self._held_records: list[StatusRecord | SessionEvent] = []
        self._last_seq: dict[str, int] = {}
        self._end: EndOfSession | None = None
        self._end_at = math.nan
        self._abandon = False
        self._done = False  # the loop has ended: later blocks are dropped
        self._data_time_s = math.nan
        self._pending: list[StampedBlock] = []  # taken from the queue, not yet processed
        self._processed_to_s = -math.inf  # newest sample time handed to the stage
        self.last_message_at = time.monotonic()
        self.task: asyncio.Task[None] | None = None

    @property
    def key(self) -> tuple[str, str]:
        return self.stats.athlete, self.stats.session

    @property
    def ended(self) -> bool:
        return self._end is not None

    def start(self) -> None:
        self.task = asyncio.create_task(self.run(), name=f"session-{self.stats.session}")

    # --- what the dispatcher hands in (in bus order) ----------------------------------------

    def on_info(self, meta: SessionMeta) -> None:
        self.last_message_at = time.monotonic()
        if self.meta is not None:
            self.meta.extra.update(meta.extra)  # e.g. the processing rate, known later
            return
        locations = list(meta.extra.get("locations") or [s.location for s in meta.sensors])
        if "sacrum" not in locations:
            log.warning("%s: no sacrum in the session info; not processed", self.stats.session)
            return
        self.meta = meta
        self.outputs = self._make_outputs(meta)
        self.stage = ProcessorStage(locations, self._rate, self.config.update_every_s)
        records, self._held_records = self._held_records, []
        for record in records:
            self._record(record)
        self._wake()  # the loop pushes the held blocks

    def _rate(self) -> float | None:
        rate = self.meta.extra.get("processing_rate_hz") if self.meta is not None else None
        return float(rate) if rate else None

    async def on_raw(self, raw: wire.RawBlock) -> None:
        self.last_message_at = time.monotonic()
        block = raw.block
        loc = block.location
        if loc is None or raw.time_s is None or self._done:
            return
        previous = self._last_seq.get(loc)
        if previous is None:
            if raw.seq > 0 and not self.stats.joined_late:
                self.stats.joined_late = True
                log.warning(
                    "%s: joined while the session was running (first %s block #%d); results "
                    "cover the data from here on",
                    self.stats.session,
                    loc,
                    raw.seq,
                )
        elif raw.seq > previous + 1:
            self.stats.raw_blocks_lost += raw.seq - previous - 1
        self._last_seq[loc] = max(raw.seq, previous if previous is not None else -1)
        self.stats.raw_blocks += 1
        self.stats.samples += block.n_samples
        stamped = StampedBlock(block, raw.time_s, time.perf_counter())
        if self.stage is None or self._held:  # behind held blocks: keep each sensor's order
            if self.stage is None and len(self._held) >= MAX_HELD_BLOCKS:
                del self._held[0]
            self._held.append(stamped)
        else:
            await self._queue.put(stamped)  # flow control: waits while the queue is full

    def on_status(self, record: StatusRecord) -> None:
        self._record(record)

    def on_collector_event(self, event: SessionEvent) -> None:
        self.last_message_at = time.monotonic()
        self._record(event)

    def _record(self, record: StatusRecord | SessionEvent) -> None:
        if self.outputs is None:
            if len(self._held_records) >= MAX_HELD_RECORDS:
                del self._held_records[0]
            self._held_records.append(record)
        elif isinstance(record, StatusRecord):
            self.outputs.status(record)
        else:
            self.outputs.collector_event(record)

    def on_end(self, marker: EndOfSession) -> None:
        if self._end is None:
            self._end = marker
            self._end_at = time.monotonic()
            self._wake()

    def abandon(self) -> None:
        self._abandon = True
        self._wake()

    def _wake(self) -> None:
        with contextlib.suppress(asyncio.QueueFull):  # a full queue wakes the loop anyway
            self._queue.put_nowait(None)

    # --- the processing loop ------------------------------------------------------------------

    def _complete(self) -> bool:
        assert self._end is not None
        return all(self._last_seq.get(loc, -1) >= seq for loc, seq in self._end.last_seq.items())

    async def run(self) -> None:
        try:
            await self._loop()
        except Exception:
            log.exception(
                "%s: processing failed; the collector's journal has the samples",
                self.stats.session,
            )
            self.stats.finished = "error"
        finally:
            self._done = True
            self._held.clear()
            while not self._queue.empty():  # frees a dispatcher waiting for room
                self._queue.get_nowait()

    async def _loop(self) -> None:
        queue = self._queue
        while True:
            if queue.empty() and self._held and self.stage is not None:
                for stamped in self._held[: self.config.queue_blocks]:
                    queue.put_nowait(stamped)
                del self._held[: self.config.queue_blocks]
            if queue.empty():
                if self._abandon:
                    await self._process()
                    self.stats.finished = self.stats.finished or "shutdown"
                    return
                if self._end is not None:
                    complete = self._complete()
                    waited = time.monotonic() - self._end_at
                    if complete or waited >= self.config.end_grace_s:
                        idle = self._end.reason == IDLE
                        await self._finish(
                            "idle" if idle else "end" if complete else "incomplete end"
                        )
                        return
                    with contextlib.suppress(TimeoutError):
                        item = await asyncio.wait_for(queue.get(), self.config.end_grace_s - waited)
                        if item is not None:
                            self._pending.append(item)
                    continue
            item = await queue.get()
            if item is not None:
                self._pending.append(item)
            while not queue.empty() and len(self._pending) < MAX_BATCH_BLOCKS:
                more = queue.get_nowait()
                if more is not None:
                    self._pending.append(more)
            if self._due():
                await self._process()

    def _due(self) -> bool:
        """Whether the blocks held back span an update interval (or are many): the core is
        asked for results only that often, so pushing them earlier would only cost a trip
        to the worker thread per block."""
        if not self._pending:
            return False
        if len(self._pending) >= MAX_BATCH_BLOCKS:
            return True
        newest = max(float(b.time_s[-1]) for b in self._pending)
        return not newest - self._processed_to_s < self.config.update_every_s

    async def _call(self, step: Callable[[], CoreUpdate | None]) -> CoreUpdate | None:
        if self.config.in_thread:
            return await asyncio.to_thread(step)
        return step()

    async def _process(self) -> None:
        batch, self._pending = self._pending, []
        if not batch or self.stage is None:
            return
        stage = self.stage
        newest = max(float(b.time_s[-1]) for b in batch)
        if not newest <= self._data_time_s:
            self._data_time_s = newest
        self._processed_to_s = newest
        core = await self._call(lambda: stage.process(batch))
        if core is not None:
            self._emit(core)

    async def _finish(self, how: str) -> None:
        if self.stats.raw_blocks == 0:
            # E.g. the retained info of a session whose collector died: nothing to report.
            self.stats.finished = "no data"
            return
        stage = self.stage
        if stage is None or self.outputs is None:
            self.stats.finished = "no info"
            log.warning("%s: ended before its session info arrived", self.stats.session)
            return
        await self._process()
        core = await self._call(stage.finish)
        if core is not None:
            self._emit(core)
        t = self._data_time_s if math.isfinite(self._data_time_s) else 0.0
        self.outputs.processed(SessionProcessed(t, self.stats.strides, self.stats.raw_blocks_lost))
        self.stats.finished = how

    def _emit(self, core: CoreUpdate) -> None:
        assert self.outputs is not None
        self.outputs.on_update(core)
        self.stats.strides += len(core.strides)
        self.stats.events += len(core.events)
        self.stats.angle_samples += int(core.angles.time_s.size)
        if core.calibration.calibrated and not self.stats.calibrated:
            self.stats.calibrated = True
            t = self._data_time_s if math.isfinite(self._data_time_s) else 0.0
            self.outputs.processor_event(SessionEvent(t, "calibrated", core.calibration.message))
