"""Subscribe to the MQTT bus and yield decoded messages, for the sessions of one shard.

`imu-stream process --shard I/N` runs one of these with `kinds=("raw", "info", "event",
"status")`: it subscribes to the wildcard topics of every session and keeps the messages of
the sessions whose id falls in shard I (`wire.shard_of`, sha1 of the session id mod N), so N
processors split the sessions without coordination and a session's stream is never split.
(Every processor receives all raw traffic and drops the other shards' at once; on a clinic's
LAN that is cheap, and it needs nothing from the broker beyond MQTT 3.1.1.)

The connection heals itself (exponential backoff). With `persistent=True` and a fixed client
id, the session is an MQTT persistent session (clean session off): the broker keeps the
subscriptions and queues QoS 1 messages (strides, events) while the subscriber is away, also
across a broker restart when the broker persists its state. QoS 1 is at-least-once, so strides
are de-duplicated by (athlete, session, side, start_s).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import aiomqtt

from imu_stream.backoff import Backoff
from imu_stream.records import AngleSeries, GaitEvent, Stride
from imu_stream.sinks import wire
from imu_stream.sinks.journal.meta import SessionEvent, SessionMeta, StatusRecord
from imu_stream.sinks.mqtt import MqttConfig

log = logging.getLogger(__name__)

KIND_QOS = {"raw": 0, "angles": 0, "stride": 1, "event": 1, "status": 1, "info": 1}
_DEDUPE_MEMORY = 100_000  # stride keys remembered for de-duplication

Decoded = (
    wire.RawBlock | Stride | GaitEvent | SessionEvent | StatusRecord | AngleSeries | SessionMeta
)


@dataclass(frozen=True, slots=True)
class BusMessage:
    """One decoded message; `data` is None for an empty retained payload (a cleared topic)."""

    parts: wire.TopicParts
    data: Decoded | None
    payload: bytes
    retained: bool = False

    @property
    def athlete(self) -> str:
        return self.parts.athlete

    @property
    def session(self) -> str:
        return self.parts.session

    @property
    def kind(self) -> str:
        return self.parts.kind


@dataclass(slots=True)
class SourceStats:
    received: int = 0
    delivered: int = 0
    other_shards: int = 0
    duplicates: int = 0
    malformed: int = 0
    connects: int = 0
    connected: bool = False
    last_error: str = ""


_DECODERS = {
    "raw": wire.decode_raw_block,
    "stride": wire.decode_stride,
    "event": wire.decode_event,
    "status": wire.decode_status,
    "angles": wire.decode_angles,
    "info": wire.decode_info,
}


class MqttSource:
    """`async with MqttSource(cfg, kinds=("raw",), shard=0, n_shards=2) as src:
    async for msg in src: ...`"""

    def __init__(
        self,
        config: MqttConfig,
        kinds: Sequence[str] = ("raw",),
        *,
        shard: int = 0,
        n_shards: int = 1,
        client_id: str | None = None,
        persistent: bool = False,
        queue_size: int = 50_000,
        dedupe_strides: bool = True,
    ) -> None:
        unknown = set(kinds) - set(KIND_QOS)
        if unknown:
            raise ValueError(f"unknown message kinds {sorted(unknown)}")
        if not 0 <= shard < n_shards:
            raise ValueError(f"shard {shard} is not in 0…{n_shards - 1}")
        self.config = config
        self.kinds = tuple(kinds)
        self.shard = shard
        self.n_shards = n_shards
        self.stats = SourceStats()
        self._client_id = client_id or config.client_id
        self._persistent = persistent
        self._dedupe = dedupe_strides
        self._seen: OrderedDict[tuple[str, str, str, float], None] = OrderedDict()
        self._queue: asyncio.Queue[BusMessage | None] = asyncio.Queue(queue_size)
        self._subscribed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._outage_logged = False
        self._topics = config.topics
        self._shard_cache: dict[str, bool] = {}

    # --- lifecycle -----------------------------------------------------------------------------
    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="mqtt-source")

    async def __aenter__(self) -> MqttSource:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        self._closing = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await self._task
            self._task = None
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait(None)  # ends iteration

    async def wait_subscribed(self, timeout_s: float = 10.0) -> None:
        """Until the subscriptions are confirmed by the broker (after each (re)connect)."""
        await asyncio.wait_for(self._subscribed.wait(), timeout_s)

    @property
    def subscribed(self) -> bool:
        return self._subscribed.is_set()

    def owns(self, session: str) -> bool:
        """Whether `session` belongs to this source's shard."""
        owned = self._shard_cache.get(session)
        if owned is None:
            owned = wire.shard_of(session, self.n_shards) == self.shard
            self._shard_cache[session] = owned
        return owned

    # --- iteration -----------------------------------------------------------------------------
    def __aiter__(self) -> MqttSource:
        return self

    async def __anext__(self) -> BusMessage:
        if self._closing and self._queue.empty():
            raise StopAsyncIteration
        message = await self._queue.get()
        if message is None:
            raise StopAsyncIteration
        return message

    async def get(self, timeout_s: float | None = None) -> BusMessage | None:
        """The next message, or None after `timeout_s` (or when closed)."""
        try:
            return await asyncio.wait_for(self._queue.get(), timeout_s)
        except TimeoutError:
            return None

    # --- the connection ------------------------------------------------------------------------
    async def _run(self) -> None:
        backoff = Backoff(self.config.backoff_initial_s, self.config.backoff_max_s)
        while not self._closing:
            try:
                async with self.config.client(self._client_id, self._persistent) as client:
                    self._on_connected()
                    for kind in self.kinds:
                        await client.subscribe(self._topics.subscription(kind), KIND_QOS[kind])
                    self._subscribed.set()
                    backoff.reset()
                    try:
                        async for message in client.messages:
                            await self._handle(message)
                    except aiomqtt.MqttError:
                        await self._handle_left_over(client)
                        raise
            except aiomqtt.MqttError as exc:
                self._on_failure(str(exc))
            self._subscribed.clear()
            if self._closing:
                return
            await backoff.wait()

    async def _handle_left_over(self, client: aiomqtt.Client) -> None:
        """aiomqtt ends the iteration as soon as the connection drops, even while messages
        that paho has already acknowledged (QoS 1: the broker will not send them again) wait
        in its queue; a burst read together with the disconnect would be lost. Take them."""
        queue: asyncio.Queue[aiomqtt.Message] = client._queue  # private: no public drain
        while not queue.empty():
            await self._handle(queue.get_nowait())

    async def _handle(self, message: aiomqtt.Message) -> None:
        self.stats.received += 1
        parts = self._topics.parse(str(message.topic))
        if parts is None or parts.kind not in self.kinds:
            return
        if not self.owns(parts.session):
            self.stats.other_shards += 1
            return
        raw = message.payload
        payload = bytes(raw) if isinstance(raw, bytes | bytearray) else b""
        data: Any = None
        if payload:
            try:
                data = _DECODERS[parts.kind](payload)
            except (wire.WireFormatError, ValueError) as exc:
                self.stats.malformed += 1
                log.warning(
                    "dropping malformed %s message on %s: %s", parts.kind, message.topic, exc
                )
                return
        if isinstance(data, Stride) and self._dedupe and self._is_duplicate(parts, data):
            self.stats.duplicates += 1
            return
        self.stats.delivered += 1
        # A full queue makes us wait: back-pressure on the socket rather than dropping here.
        await self._queue.put(BusMessage(parts, data, payload, bool(message.retain)))

    def _is_duplicate(self, parts: wire.TopicParts, stride: Stride) -> bool:
        key = (parts.athlete, parts.session, stride.side, stride.start_s)
        if key in self._seen:
            return True
        self._seen[key] = None
        if len(self._seen) > _DEDUPE_MEMORY:
            self._seen.popitem(last=False)
        return False

    def _on_connected(self) -> None:
        self.stats.connects += 1
        self.stats.connected = True
        if self._outage_logged:
            log.warning("MQTT broker %s:%d reachable again", self.config.host, self.config.port)
            self._outage_logged = False

    def _on_failure(self, message: str) -> None:
        self.stats.connected = False
        self.stats.last_error = message
        if not self._outage_logged:
            log.warning(
                "MQTT broker %s:%d unavailable (%s); reconnecting",
                self.config.host,
                self.config.port,
                message,
            )
            self._outage_logged = True
