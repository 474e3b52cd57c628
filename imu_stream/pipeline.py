"""The live session pipeline: source → journal → processor → sinks, in one asyncio process.

```
 source ──events──▶ ingest ──(1) journal.append_block──▶ session journal (commit thread, ≤ 0.25 s)
 (BLE collector,     │
  simulator, replay) └──(2) bounded processor queue──▶ processor: pairing → OnlineProcessor
                                                             │
                               sinks ◀──LiveUpdate───────────┘
        journal outputs · live view · InfluxDB · MQTT · … (any `Sink`)
```

Backpressure, stage by stage:

1. **Journal: never blocks, never drops.** The ingest task appends every decoded block to the
   journal *before anything else sees it*; an append is an in-memory copy (µs) and a commit
   thread (one per few journals of the process) commits, so a `kill -9` loses at most the last
   commit interval.
2. **Processor queue: bounded (`processor_queue_blocks`), flow control, no drops.** The
   processor must see every sample (its results must equal the batch analysis), so when it falls
   that far behind the ingest task waits for room; the block in hand is already journaled, and
   the wait propagates to the source (the BLE collector's notification queue absorbs minutes of
   data and counts any overflow; replay and simulation simply slow down). Waits are counted.
   The processor takes everything queued at once (one batch per turn of the event loop).
   Core updates run on the event loop: a few ms each, the calibrating one (it processes the
   whole backlog) about 10 ms once the core is warm (`live.core_worker.prepare_process` loads
   its compiled functions before the first session), less than a thread hop would cost (CPU,
   and a hand-over of the interpreter lock each way); only the final `finish()` runs in the
   process's core worker thread.
3. **Sinks: never waited for.** Each `on_*` call returns at once; a slow consumer is the sink's
   own bounded buffer: the live view keeps only the latest state and drops frames, the InfluxDB
   writer spills to its spool (bounded, oldest dropped first), the MQTT publisher keeps QoS 1
   messages until acknowledged and drops the oldest QoS 0 ones.

Shutdown (Ctrl-C, SIGTERM, `--duration`, or the source's end): the source stops (sensors are
unsubscribed and disconnected), everything it delivered is journaled and processed, the
processor's `finish()` flushes the last results to the sinks, the sinks deliver what they can
within a timeout, and the journal commits and closes. A second Ctrl-C skips `finish()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from imu_stream.core.clock import SensorGap
from imu_stream.core.online import CoreUpdate
from imu_stream.live.core_worker import (
    core_worker,
    prepare_process,
)
from imu_stream.live.processor import ProcessorStage
from imu_stream.live.records import (
    LiveUpdate,
    SourceEvent,
    StampedBlock,
    gap_event,
    status_record,
)
from imu_stream.live.sinks import Counters, JournalOutputs, Sink
from imu_stream.live.sources import Source
from imu_stream.records import SensorStatus, Stride
from imu_stream.sinks.journal import (
    DEFAULT_DATA_DIR,
    JournalWriter,
    SessionEvent,
    SessionMeta,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_BATCH_BLOCKS = 256  # blocks pushed before the processor is asked for results


@dataclass(slots=True)
class PipelineConfig:
    athlete: str = "anonymous"
    activity: str = "unknown"
    data_dir: Path = DEFAULT_DATA_DIR
    duration_s: float | None = None  # session seconds, then stop (None: until the source ends)
    notes: str = ""
    processor_queue_blocks: int = 4096  # ≈ 25 s of three BLE sensors
    processor_in_thread: bool = True  # the final core step in the core worker thread
    # Session seconds of new data between core updates: each call has a cost, so asking after
    # every notification (≈ 150/s for three sensors) would waste CPU; every 20 ms adds at most
    # that much latency. (When the process is busy, batches grow and calls get rarer anyway.)
    update_every_s: float = 0.02
    flush_interval_s: float = 0.25  # journal commit interval: the crash-loss bound
    handle_signals: bool = True  # Ctrl-C / SIGTERM stop the session cleanly
    prepare_process: bool = True  # warm the core up, freeze the GC (`live.core_worker`)
    sink_close_timeout_s: float = 10.0


@dataclass(slots=True)
class IngestCounters:
    blocks: int = 0
    samples: dict[str, int] = field(default_factory=dict)
    statuses: int = 0
    gaps: int = 0
    queue_high_water: int = 0  # most blocks waiting for the processor at once
    queue_full_waits: int = 0  # times the ingest waited for room (backpressure)
    queue_wait_s: float = 0.0
    max_gap_s: float = 0.0  # longest time between two consecutive blocks (stalls show here)


@dataclass(slots=True)
class RunResult:
    session_id: str
    session_dir: Path
    strides: list[Stride]
    n_events: int
    stop_reason: str
    processing_rate_hz: float | None
    counters: dict[str, Counters]
    sink_errors: dict[str, int]


class Pipeline:
    """One live session. `await run()`; `request_stop()` (or Ctrl-C/SIGTERM) ends it cleanly."""

    def __init__(
        self,
        source: Source,
        config: PipelineConfig | None = None,
        sinks: Sequence[Sink] = (),
    ) -> None:
        self.source = source
        self.config = config or PipelineConfig()
        if "sacrum" not in source.locations:
            raise ValueError("the sacrum sensor is required")
        self.extra_sinks = list(sinks)
        self.sinks: list[Sink] = []
        self.stage = ProcessorStage(
            source.locations, source.processing_rate_hz, self.config.update_every_s
        )
        self.ingest = IngestCounters()
        self.writer: JournalWriter | None = None
        self.strides: list[Stride] = []
        self.n_events = 0
        self.sink_errors: dict[str, int] = {}
        self.stop_reason = ""
        self._queue: asyncio.Queue[StampedBlock | None] = asyncio.Queue(
            self.config.processor_queue_blocks
        )
        self._stop = asyncio.Event()
        self._force = False
        self._calibrated = False
        self._data_time_s = math.nan
        self._seen_locations: set[str] = set()
        self._rate_recorded = False
        self._signals: list[signal.Signals] = []

    # --- control -------------------------------------------------------------------------------

    def request_stop(self, reason: str = "stopped") -> None:
        if not self._stop.is_set():
            self.stop_reason = reason
            self._stop.set()

    def _on_signal(self, sig: signal.Signals) -> None:
        if self._stop.is_set():
            self._force = True  # a second Ctrl-C: skip the final processing, just close
            log.warning("stopping without the final processing step")
        self.request_stop("interrupted" if sig == signal.SIGINT else "terminated")

    def _install_signals(self, loop: asyncio.AbstractEventLoop) -> None:
        if (
            not self.config.handle_signals
            or threading.current_thread() is not threading.main_thread()
        ):
            return
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, self._on_signal, sig)
            except (NotImplementedError, RuntimeError):  # not on this platform / loop
                continue
            self._signals.append(sig)

    def _remove_signals(self, loop: asyncio.AbstractEventLoop) -> None:
        for sig in self._signals:
            loop.remove_signal_handler(sig)
        self._signals = []

    # --- the run ---------------------------------------------------------------------------------

    def _meta(self) -> SessionMeta:
        meta = SessionMeta(
            athlete=self.config.athlete,
            activity=self.config.activity,
            sensors=self.source.sensors(),
            source=self.source.name,
            notes=self.config.notes,
        )
        # Session-clock zero on the wall clock (the journal's and InfluxDB's time base).
        meta.start_unix_s = time.time() - self.source.session_time()
        rate = self.source.processing_rate_hz()
        if rate:
            meta.extra["processing_rate_hz"] = rate
            self._rate_recorded = True
        return meta

    async def run(self) -> RunResult:
        loop = asyncio.get_running_loop()
        if self.config.prepare_process:
            prepare_process()  # before the sensors stream: it holds the loop for ≈ 0.5 s
        await self.source.start()  # user errors (no adapter, bad folder) surface here
        try:
            meta = self._meta()
            self.writer = JournalWriter.create(
                self.config.data_dir, meta, flush_interval_s=self.config.flush_interval_s
            )
        except BaseException:
            await self.source.stop()
            raise
        writer = self.writer
        self.sinks = [JournalOutputs(writer), *self.extra_sinks]
        self._install_signals(loop)
        tasks: list[asyncio.Task[None]] = []
        try:
            for sink in self.sinks:
                try:
                    await sink.start(meta)
                except Exception as exc:  # a sink that cannot start must not lose the session
                    log.error("%s sink did not start: %s", sink.name, exc)
                    self.sink_errors[sink.name] = self.sink_errors.get(sink.name, 0) + 1
            self._session_event("start", self._now(), self.source.name)
            ingest = asyncio.create_task(self._ingest(), name="pipeline-ingest")
            processor = asyncio.create_task(self._process(), name="pipeline-process")
            stopper = asyncio.create_task(self._stopper(), name="pipeline-stopper")
            tasks = [ingest, processor, stopper]
            await ingest
            await processor
        finally:
            for task in tasks:
                if not task.done():
                    task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            with contextlib.suppress(Exception):
                await self.source.stop()
            self._session_event("stop", self._now(), self.stop_reason or "source ended")
            await self._close_sinks()
            with contextlib.suppress(Exception):
                writer.update_meta(sensors=self.source.sensors())
            await writer.aclose()
            self._remove_signals(loop)
        return RunResult(
            session_id=writer.session_id,
            session_dir=writer.session_dir,
            strides=list(self.strides),
            n_events=self.n_events,
            stop_reason=self.stop_reason or "source ended",
            processing_rate_hz=self.stage.rate_hz,
            counters=self.counters(),
            sink_errors=dict(self.sink_errors),
        )

    def _now(self) -> float:
        try:
            return float(self.source.session_time())
        except Exception:
            return self._data_time_s if math.isfinite(self._data_time_s) else 0.0

    async def _stopper(self) -> None:
        await stop_at_session_end(
            self.source, self.config.duration_s, self._stop, self.request_stop
        )

    async def _ingest(self) -> None:
        writer = self.writer
        assert writer is not None
        queue, counters = self._queue, self.ingest
        previous = math.nan
        try:
            async for event in self.source.events():
                if isinstance(event, StampedBlock):
                    event.arrival_s = now = time.perf_counter()
                    writer.append_block(event.block, time_s=event.time_s)  # first, always
                    counters.blocks += 1
                    if now - previous > counters.max_gap_s:
                        counters.max_gap_s = now - previous
                    previous = now
                    loc = event.location
                    counters.samples[loc] = counters.samples.get(loc, 0) + event.time_s.size
                    if loc not in self._seen_locations:
                        self._seen_locations.add(loc)
                        writer.update_meta(sensors=self.source.sensors())
                    if queue.full():
                        counters.queue_full_waits += 1
                        waited = time.perf_counter()
                        await queue.put(event)
                        counters.queue_wait_s += time.perf_counter() - waited
                    else:
                        queue.put_nowait(event)
                    counters.queue_high_water = max(counters.queue_high_water, queue.qsize())
                else:
                    self._on_source_event(event)
        finally:
            await queue.put(None)

    def _on_source_event(self, event: SourceEvent) -> None:
        if isinstance(event, SensorStatus):
            self.ingest.statuses += 1
            self._to_sinks("on_status", status_record(event))
        elif isinstance(event, SensorGap):
            self.ingest.gaps += 1
            self._to_sinks("on_session_event", gap_event(event))

    async def _long_step(self, step: Callable[[], T]) -> T:
        """The final core step: in the core worker thread, unless configured not to."""
        if self.config.processor_in_thread:
            return await core_worker().run(step)
        return step()

    async def _process(self) -> None:
        queue, stage = self._queue, self.stage
        # Arrival of the oldest and newest block pushed since the last update (blocks arrive
        # in order): any of them may be the one that made a result final.
        oldest = newest = math.nan
        done = False
        try:
            while not done:
                item = await queue.get()
                batch: list[StampedBlock] = []
                while True:
                    if item is None:
                        done = True
                        break
                    batch.append(item)
                    if queue.empty() or len(batch) >= MAX_BATCH_BLOCKS:
                        break
                    item = queue.get_nowait()
                if not batch:
                    continue
                if math.isnan(oldest):  # the first batch since the last update
                    oldest = batch[0].arrival_s
                newest = batch[-1].arrival_s
                core = stage.process(batch)  # short: no coroutine, no thread hop
                if not stage.newest_s <= self._data_time_s:  # also when still NaN
                    self._data_time_s = stage.newest_s
                if core is not None:
                    self._note_rate()
                    self._emit(core, oldest, newest, final=False)
                    oldest = newest = math.nan
            if not self._force:
                core = await self._long_step(stage.finish)
                self._note_rate()
                now = time.perf_counter()
                self._emit(core, now, now, final=True)
        except Exception:
            log.exception("the processor failed; samples are still journaled")
            self.request_stop()
            self.stop_reason = "processor error"  # whatever else ended the session too
            while not done:  # keep the ingest (and so the journal) flowing until it ends
                done = await queue.get() is None

    def _note_rate(self) -> None:
        if self._rate_recorded:
            return
        if self.stage.rate_hz and self.writer is not None:
            extra = {**self.writer.meta.extra, "processing_rate_hz": self.stage.rate_hz}
            self.writer.update_meta(extra=extra)
            self._rate_recorded = True

    def _emit(self, core: CoreUpdate, oldest_s: float, newest_s: float, final: bool) -> None:
        update = LiveUpdate(
            events=core.events,
            strides=core.strides,
            angles=core.angles,
            calibration=core.calibration,
            oldest_arrival_s=oldest_s,
            newest_arrival_s=newest_s,
            data_time_s=self._data_time_s,
            final=final,
        )
        self.strides.extend(update.strides)
        self.n_events += len(update.events)
        if update.calibration.calibrated and not self._calibrated:
            self._calibrated = True
            self._session_event("calibrated", self._data_time_s, update.calibration.message)
        self._to_sinks("on_update", update)

    def _session_event(self, event: str, time_s: float, detail: str = "") -> None:
        t = time_s if math.isfinite(time_s) else 0.0
        self._to_sinks("on_session_event", SessionEvent(t, event, detail))

    def _to_sinks(self, method: str, item: Any) -> None:
        for sink in self.sinks:
            try:
                getattr(sink, method)(item)
            except Exception:
                errors = self.sink_errors.get(sink.name, 0)
                if errors == 0:
                    log.exception(
                        "%s sink failed on %s (further errors only counted)", sink.name, method
                    )
                self.sink_errors[sink.name] = errors + 1

    async def _close_sinks(self) -> None:
        async def close(sink: Sink) -> None:
            try:
                await asyncio.wait_for(sink.close(), self.config.sink_close_timeout_s)
            except Exception as exc:
                log.warning("%s sink did not close cleanly: %s", sink.name, exc)

        # The journal outputs last: the other sinks may still report session events.
        await asyncio.gather(*(close(s) for s in self.sinks[1:]))
        await close(self.sinks[0])

    # --- counters --------------------------------------------------------------------------------

    def counters(self) -> dict[str, Counters]:
        ingest = asdict(self.ingest)
        samples = ingest.pop("samples")
        out: dict[str, Counters] = {
            "ingest": {
                **ingest,
                "samples": sum(samples.values()),
                "queue_depth": self._queue.qsize(),
            },
            "processor": asdict(self.stage.counters),
        }
        for sink in self.sinks:
            out[sink.name] = sink.counters()
        if self.writer is not None:
            st = self.writer.stats
            out["journal"] = {
                **out.get("journal", {}),
                "samples_appended": st.samples_appended,
                "samples_committed": st.samples_committed,
            }
        return out

    def counter_line(self) -> dict[str, str]:
        """A few counters for the live view's footer (read from its thread: plain ints)."""
        st = self.writer.stats if self.writer is not None else None
        return {
            "samples": f"{sum(self.ingest.samples.values()):,}",
            "journaled": f"{st.samples_committed:,}" if st else "0",
            "queue": str(self._queue.qsize()),
            "waits": str(self.ingest.queue_full_waits),
            "core": f"{1e3 * self.stage.counters.update_s_max:.0f} ms max",
        }


END_TOLERANCE_S = 1e-3  # a session this close to its end has reached it


async def stop_at_session_end(
    source: Source,
    duration_s: float | None,
    stop: asyncio.Event,
    request_stop: Callable[[str], None],
) -> None:
    """Ask to stop when the session reaches its duration or the source its end, then stop the
    source (after `stop` is set, whoever set it)."""
    ends = [e for e in (source.end_s, duration_s) if e is not None]
    end = min(ends) if ends else None
    while not stop.is_set():
        timeout = None
        if end is not None:
            remaining = end - source.session_time()
            # Not `<= 0`: on the virtual clock a timeout under asyncio's clock resolution
            # fires without moving the clock, and this loop would spin forever.
            if remaining <= END_TOLERANCE_S:
                request_stop("duration reached" if end == duration_s else "end")
                break
            timeout = min(remaining, 0.25)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout)
    await source.stop()
