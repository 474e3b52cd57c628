"""`imu-stream process --shard I/N`: process the sessions of one shard from the MQTT bus.

```
 MQTT info/raw/status/event ─▶ MqttSource ─▶ dispatcher ─▶ SessionWorker per session
 (every session's topics)     (keeps shard I)                 │ ProcessorStage (worker thread)
                                    MQTT stride/event/angles ◀─┤ (QoS 1 / 1 / 0)
                         InfluxDB stride/angles/sensor/event ◀─┘
```

Each processor subscribes to every session's topics and keeps those of its shard
(`wire.shard_of`: sha1 of the session id mod N), so N processors split the sessions without
talking to each other and a session's stream is never split. The subscription is an MQTT
persistent session under a fixed client id (`ShardSpec.client_id`, or `--client-id`): while
the processor or the broker restarts, the broker keeps the subscriptions and the QoS 1
messages (end markers, info, status); raw blocks are QoS 0 and the gap is counted. Results go
out through one publisher (QoS 1 strides and events kept until acknowledged, re-sent after a
reconnect, so a consumer may see a stride twice and drops it by (session, start, side)) and
one InfluxDB writer (a stride written twice is the same point: idempotent). Connections heal
with jittered exponential backoff.

A session starts with its first `info` or raw block and ends with the collector's end marker
(or after `idle_timeout_s` without a message: a collector that died); the processor then
keeps running for new sessions. SIGTERM/Ctrl-C: stop receiving, finish the sessions whose end
marker has arrived, stop the others where they are (their collector may still be running),
deliver what is queued and exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import signal
import threading
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from typing import Any

from imu_stream.bus.markers import END_EVENT, PROCESSED_EVENT, EndOfSession, decode_end
from imu_stream.bus.outputs import SessionOutputs
from imu_stream.bus.session_worker import IDLE, SessionStats, SessionWorker, WorkerConfig
from imu_stream.bus.shard import ShardSpec
from imu_stream.live.core_worker import prepare_process
from imu_stream.sinks import wire
from imu_stream.sinks.influx import InfluxConfig, InfluxWriter
from imu_stream.sinks.journal.meta import SessionEvent, SessionMeta, StatusRecord
from imu_stream.sinks.mqtt import MqttConfig, MqttPublisher
from imu_stream.sources.mqtt_source import BusMessage, MqttSource

log = logging.getLogger(__name__)

KINDS = ("info", "raw", "status", "event")  # info first: its retained copy arrives first
FINISHED_MEMORY = 10_000  # ended sessions remembered, so late messages do not restart them
# Our own session events, echoed back by the subscription to `event`: not the collector's.
PROCESSOR_EVENTS = ("calibrated", PROCESSED_EVENT)

Key = tuple[str, str]  # (athlete, session)


@dataclass(slots=True)
class ProcessConfig:
    shard: ShardSpec = field(default_factory=lambda: ShardSpec(0, 1))
    client_id: str | None = None  # default: ShardSpec.client_id(prefix)
    persistent: bool = True
    idle_timeout_s: float = 120.0
    close_timeout_s: float = 10.0
    handle_signals: bool = True
    worker: WorkerConfig = field(default_factory=WorkerConfig)


@dataclass(slots=True)
class ProcessResult:
    shard: str
    stop_reason: str
    sessions: list[SessionStats]
    bus: dict[str, Any]
    publisher: dict[str, Any]
    influx: dict[str, Any] | None

    def to_json(self) -> dict[str, Any]:
        return {
            "shard": self.shard,
            "stop_reason": self.stop_reason,
            "sessions": [asdict(s) for s in self.sessions],
            "bus": self.bus,
            "publisher": self.publisher,
            "influx": self.influx,
        }


class ShardProcessor:
    """`await run()` until `request_stop()`, SIGTERM or Ctrl-C."""

    def __init__(
        self, mqtt: MqttConfig, config: ProcessConfig, influx: InfluxConfig | None = None
    ) -> None:
        self.mqtt = mqtt
        self.config = config
        shard = config.shard
        self.client_id = config.client_id or shard.client_id(mqtt.prefix)
        self.source = MqttSource(
            mqtt,
            kinds=KINDS,
            shard=shard.index,
            n_shards=shard.count,
            client_id=self.client_id,
            persistent=config.persistent,
            dedupe_strides=False,
        )
        self.publisher = MqttPublisher(mqtt, client_id=f"{self.client_id}-out")
        self.writer = InfluxWriter(influx) if influx is not None else None
        self.workers: dict[Key, SessionWorker] = {}
        self.done: list[SessionStats] = []
        self.stop_reason = ""
        self.ignored = 0  # messages of ended or unknown sessions
        self._finished: OrderedDict[Key, None] = OrderedDict()
        self._stop = asyncio.Event()
        self._signals: list[signal.Signals] = []

    def request_stop(self, reason: str = "stopped") -> None:
        if not self._stop.is_set():
            self.stop_reason = reason
            self._stop.set()

    async def wait_subscribed(self, timeout_s: float = 10.0) -> None:
        await self.source.wait_subscribed(timeout_s)

    # --- the service ---------------------------------------------------------------------------

    async def run(self) -> ProcessResult:
        loop = asyncio.get_running_loop()
        self._install_signals(loop)
        prepare_process()  # the core warm before the first session, the GC out of its way
        await self.publisher.start()
        if self.writer is not None:
            await self.writer.start()
        await self.source.start()
        try:
            await self._dispatch()
        finally:
            await self.source.close()
            await self._shutdown()
            self._remove_signals(loop)
        return ProcessResult(
            shard=str(self.config.shard),
            stop_reason=self.stop_reason or "stopped",
            sessions=list(self.done),
            bus=asdict(self.source.stats) | {"ignored": self.ignored},
            publisher=asdict(self.publisher.stats) | {"unsent": self.publisher.pending},
            influx=asdict(self.writer.stats) if self.writer is not None else None,
        )

    async def _dispatch(self) -> None:
        last_check = time.monotonic()
        while not self._stop.is_set():
            message = await self.source.get(timeout_s=0.5)
            if message is not None:
                await self._on_message(message)
            now = time.monotonic()
            if now - last_check >= 0.5 or message is None:
                last_check = now
                self._reap()
                self._end_idle(now)

    async def _on_message(self, message: BusMessage) -> None:
        key: Key = (message.athlete, message.session)
        if key in self._finished:
            self.ignored += 1
            return
        data = message.data
        worker = self.workers.get(key)
        if message.kind == "info" and isinstance(data, SessionMeta):
            self._worker(key).on_info(data)
        elif message.kind == "raw" and isinstance(data, wire.RawBlock):
            await self._worker(key).on_raw(data)
        elif worker is None:
            self.ignored += 1  # status or events of a session we never saw start
        elif isinstance(data, StatusRecord):
            worker.on_status(data)
        elif isinstance(data, SessionEvent):
            if data.event == END_EVENT:
                marker = decode_end(message.payload)
                worker.on_collector_event(data)
                worker.on_end(marker or EndOfSession(data.time_s, data.detail))
            elif data.event not in PROCESSOR_EVENTS:
                worker.on_collector_event(data)
        # Gait events on `event` are processors' output echoed back: nothing to do.

    def _worker(self, key: Key) -> SessionWorker:
        worker = self.workers.get(key)
        if worker is None:
            worker = SessionWorker(key[0], key[1], self._outputs, self.config.worker)
            worker.start()
            self.workers[key] = worker
            log.info("session %s (%s): processing", key[1], key[0])
        return worker

    def _outputs(self, meta: SessionMeta) -> SessionOutputs:
        return SessionOutputs(meta, self.publisher, self.writer)

    def _reap(self) -> None:
        for key, worker in list(self.workers.items()):
            if worker.task is not None and worker.task.done():
                del self.workers[key]
                self.done.append(worker.stats)
                self._finished[key] = None
                if len(self._finished) > FINISHED_MEMORY:
                    self._finished.popitem(last=False)
                st = worker.stats
                log.info(
                    "session %s: %s, %d strides, %d raw blocks lost",
                    st.session,
                    st.finished,
                    st.strides,
                    st.raw_blocks_lost,
                )

    def _end_idle(self, now: float) -> None:
        for worker in self.workers.values():
            if not worker.ended and now - worker.last_message_at > self.config.idle_timeout_s:
                log.warning(
                    "session %s: nothing for %.0f s; finishing it",
                    worker.stats.session,
                    self.config.idle_timeout_s,
                )
                worker.on_end(EndOfSession(math.nan, IDLE))

    async def _shutdown(self) -> None:
        """Finish the sessions that have ended, stop the others, deliver what is queued."""
        for worker in self.workers.values():
            if not worker.ended:
                worker.abandon()
        tasks = [w.task for w in self.workers.values() if w.task is not None]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=self.config.close_timeout_s)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        self._reap()
        for worker in self.workers.values():  # cancelled ones
            worker.stats.finished = worker.stats.finished or "shutdown"
            self.done.append(worker.stats)
        self.workers.clear()
        await self.publisher.close(self.config.close_timeout_s)
        if self.writer is not None:
            await self.writer.close(self.config.close_timeout_s)

    # --- signals -------------------------------------------------------------------------------

    def _install_signals(self, loop: asyncio.AbstractEventLoop) -> None:
        if not self.config.handle_signals or threading.current_thread() is not (
            threading.main_thread()
        ):
            return
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.request_stop, sig.name.lower())
                self._signals.append(sig)

    def _remove_signals(self, loop: asyncio.AbstractEventLoop) -> None:
        for sig in self._signals:
            loop.remove_signal_handler(sig)
        self._signals = []
