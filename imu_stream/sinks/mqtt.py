"""MQTT publisher for the bus of DESIGN.md §6 (aiomqtt ≥ 2.5, < 3); formats in `sinks/wire.py`.

`publish_*()` never waits: messages go into two in-memory queues and a background task sends
them. QoS 1 messages (strides, events, retained status and session info) wait in an unbounded
FIFO until the broker acknowledges them (PUBACK); a message whose publish did not complete
stays at the head and is sent again after reconnecting, so delivery is at-least-once (the
consumer drops duplicates, see `sources/mqtt_source.py`). QoS 0 messages (raw blocks, angles)
wait in a bounded FIFO that drops the oldest when the broker is away for long; the session
journal keeps the raw data anyway. The connection is re-established with exponential backoff
(`backoff_initial_s` doubling to `backoff_max_s`, with jitter). TLS and username/password are
optional (`MqttConfig`, or an `mqtt://` / `mqtts://` URL).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
import uuid
from collections import deque
from collections.abc import Coroutine, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import aiomqtt

from imu_stream.backoff import Backoff
from imu_stream.records import AngleSeries, FloatArray, GaitEvent, SampleBlock, Stride
from imu_stream.sinks import wire
from imu_stream.sinks.journal.meta import SessionEvent, SessionMeta, StatusRecord

log = logging.getLogger(__name__)

ENV_PREFIX = "IMU_STREAM_MQTT_"
QOS_RAW = 0
QOS_ANGLES = 0
QOS_RELIABLE = 1  # strides, events, status, info


@dataclass(frozen=True, slots=True)
class MqttConfig:
    """Broker address, credentials, TLS, topic prefix and reconnect policy."""

    host: str = "127.0.0.1"
    port: int = 1883
    username: str | None = None
    password: str | None = None
    tls: bool = False
    ca_file: Path | None = None  # None with tls: the system's trusted CAs
    cert_file: Path | None = None  # client certificate (mutual TLS), optional
    key_file: Path | None = None
    tls_insecure: bool = False  # skip hostname/certificate checks (testing only)
    prefix: str = wire.DEFAULT_PREFIX
    client_id: str | None = None
    keepalive_s: int = 30
    timeout_s: float = 10.0
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 10.0

    @classmethod
    def from_url(cls, url: str, **overrides: Any) -> MqttConfig:
        """`mqtt://[user[:password]@]host[:port][/prefix][?client_id=…]`; `mqtts://` = TLS
        (default port 8883)."""
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl") or not parts.hostname:
            raise ValueError(f"MQTT URL must be mqtt[s]://host[:port][/prefix], got {url!r}")
        tls = parts.scheme in ("mqtts", "ssl")
        values: dict[str, Any] = {
            "host": parts.hostname,
            "port": parts.port or (8883 if tls else 1883),
            "tls": tls,
        }
        if parts.username:
            values["username"] = unquote(parts.username)
        if parts.password is not None:
            values["password"] = unquote(parts.password)
        if parts.path.strip("/"):
            values["prefix"] = unquote(parts.path.strip("/"))
        query = parse_qs(parts.query)
        if "client_id" in query:
            values["client_id"] = query["client_id"][0]
        values.update(overrides)
        return cls(**values)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> MqttConfig | None:
        """IMU_STREAM_MQTT_URL (+ _USER, _PASSWORD, _CA_FILE, _PREFIX); None when no URL."""
        env = os.environ if environ is None else environ
        url = env.get(ENV_PREFIX + "URL")
        if not url:
            return None
        overrides: dict[str, Any] = {}
        if ENV_PREFIX + "USER" in env:
            overrides["username"] = env[ENV_PREFIX + "USER"]
        if ENV_PREFIX + "PASSWORD" in env:
            overrides["password"] = env[ENV_PREFIX + "PASSWORD"]
        if ENV_PREFIX + "CA_FILE" in env:
            overrides["ca_file"] = Path(env[ENV_PREFIX + "CA_FILE"])
            overrides["tls"] = True
        if ENV_PREFIX + "PREFIX" in env:
            overrides["prefix"] = env[ENV_PREFIX + "PREFIX"]
        return cls.from_url(url, **overrides)

    @property
    def topics(self) -> wire.Topics:
        return wire.Topics(self.prefix)

    def ssl_context(self) -> ssl.SSLContext | None:
        if not self.tls:
            return None
        context = ssl.create_default_context(
            cafile=str(self.ca_file) if self.ca_file is not None else None
        )
        if self.cert_file is not None:
            context.load_cert_chain(
                str(self.cert_file), str(self.key_file) if self.key_file else None
            )
        if self.tls_insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def client(self, client_id: str | None = None, persistent: bool = False) -> aiomqtt.Client:
        """An aiomqtt client (not yet connected). `persistent`: MQTT 3.1.1 clean session off,
        so the broker keeps subscriptions and queues QoS 1 messages while we are away."""
        identifier = client_id or self.client_id
        if persistent and not identifier:
            raise ValueError("a persistent MQTT session needs a fixed client id")
        return aiomqtt.Client(
            self.host,
            self.port,
            username=self.username,
            password=self.password,
            identifier=identifier or f"imu-stream-{uuid.uuid4().hex[:12]}",
            clean_session=not persistent,
            keepalive=self.keepalive_s,
            timeout=self.timeout_s,
            tls_context=self.ssl_context(),
        )

    def with_client_id(self, client_id: str) -> MqttConfig:
        return replace(self, client_id=client_id)


@dataclass(slots=True)
class PublisherStats:
    published: int = 0
    dropped_qos0: int = 0
    connects: int = 0
    connected: bool = False
    last_error: str = ""


@dataclass(frozen=True, slots=True)
class _Outgoing:
    topic: str
    payload: bytes
    qos: int
    retain: bool


class MqttPublisher:
    """Queues messages and publishes them over a self-healing connection.

    Use as `async with MqttPublisher(cfg) as pub:`; `await pub.flush()` waits until every
    queued message has been handed to the broker (QoS 1: acknowledged).
    """

    def __init__(
        self,
        config: MqttConfig,
        *,
        client_id: str | None = None,
        persistent: bool = False,
        max_queued_qos0: int = 20_000,
    ) -> None:
        self.config = config
        self.topics = config.topics
        self.stats = PublisherStats()
        self._client_id = client_id or config.client_id
        self._persistent = persistent
        self._reliable: deque[_Outgoing] = deque()
        self._best_effort: deque[_Outgoing] = deque(maxlen=max_queued_qos0)
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._outage_logged = False

    # --- lifecycle -----------------------------------------------------------------------------
    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="mqtt-publisher")

    async def __aenter__(self) -> MqttPublisher:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def flush(self, timeout_s: float | None = None) -> bool:
        """Wait until both queues are empty; False on timeout."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    async def close(self, timeout_s: float = 5.0) -> None:
        """Send what can be sent within `timeout_s`, then disconnect."""
        await self.flush(timeout_s)
        self._closing = True
        self._wake.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, 2.0)
            except (TimeoutError, aiomqtt.MqttError):
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                    await self._task
            self._task = None
        pending = len(self._reliable) + len(self._best_effort)
        if pending:
            log.warning("MQTT publisher closed with %d messages unsent", pending)

    @property
    def pending(self) -> int:
        return len(self._reliable) + len(self._best_effort)

    # --- the caller's side (never waits) -------------------------------------------------------
    def publish(self, topic: str, payload: bytes, qos: int = 0, retain: bool = False) -> None:
        if self._closing:
            raise RuntimeError("MqttPublisher is closed")
        message = _Outgoing(topic, payload, qos, retain)
        if qos > 0:
            self._reliable.append(message)
        else:
            if len(self._best_effort) == self._best_effort.maxlen:
                self.stats.dropped_qos0 += 1  # deque drops the oldest
            self._best_effort.append(message)
        self._idle.clear()
        self._wake.set()

    def publish_raw(
        self,
        athlete: str,
        session: str,
        block: SampleBlock,
        seq: int = 0,
        time_s: FloatArray | None = None,
        location: str | None = None,
    ) -> None:
        loc = location or block.location
        if not loc:
            raise ValueError("publish_raw needs a location")
        payload = wire.encode_raw_block(block, seq=seq, time_s=time_s, location=loc)
        self.publish(self.topics.topic(athlete, session, "raw", loc), payload, QOS_RAW)

    def publish_strides(self, athlete: str, session: str, strides: Iterable[Stride]) -> None:
        topic = self.topics.topic(athlete, session, "stride")
        for stride in strides:
            self.publish(topic, wire.encode_stride(stride), QOS_RELIABLE)

    def publish_gait_events(self, athlete: str, session: str, events: Iterable[GaitEvent]) -> None:
        topic = self.topics.topic(athlete, session, "event")
        for event in events:
            self.publish(topic, wire.encode_gait_event(event), QOS_RELIABLE)

    def publish_session_event(self, athlete: str, session: str, event: SessionEvent) -> None:
        topic = self.topics.topic(athlete, session, "event")
        self.publish(topic, wire.encode_session_event(event), QOS_RELIABLE)

    def publish_status(self, athlete: str, session: str, status: StatusRecord) -> None:
        topic = self.topics.topic(athlete, session, "status", status.location)
        self.publish(topic, wire.encode_status(status), QOS_RELIABLE, retain=True)

    def publish_angles(self, athlete: str, session: str, series: AngleSeries) -> None:
        topic = self.topics.topic(athlete, session, "angles")
        self.publish(topic, wire.encode_angles(series), QOS_ANGLES)

    def publish_info(self, meta: SessionMeta) -> None:
        """Retained session metadata (athlete, activity, wall-clock start, sensors)."""
        topic = self.topics.topic(meta.athlete, meta.session_id, "info")
        self.publish(topic, wire.encode_info(meta), QOS_RELIABLE, retain=True)

    def clear_retained(self, athlete: str, session: str, locations: Iterable[str] = ()) -> None:
        """Remove a finished session's retained status/info (empty retained payloads)."""
        for location in locations:
            self.publish(self.topics.topic(athlete, session, "status", location), b"", 1, True)
        self.publish(self.topics.topic(athlete, session, "info"), b"", 1, True)

    # --- sending -------------------------------------------------------------------------------
    async def _run(self) -> None:
        backoff = Backoff(self.config.backoff_initial_s, self.config.backoff_max_s)
        while not (self._closing and not self.pending):
            try:
                async with self.config.client(self._client_id, self._persistent) as client:
                    self._on_connected()
                    backoff.reset()
                    await self._pump(client)
                    return
            except aiomqtt.MqttError as exc:
                self._on_failure(str(exc))
            if self._closing:
                return
            await backoff.wait()

    async def _pump(self, client: aiomqtt.Client) -> None:
        """Send until closing; ends with MqttError when the connection drops."""
        await _until_first_done(_watch_connection(client), self._send_all(client))

    async def _send_all(self, client: aiomqtt.Client) -> None:
        while True:
            queue = self._reliable if self._reliable else self._best_effort
            if not queue:
                self._idle.set()
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            message = queue[0]  # stays queued until the broker has it
            await client.publish(message.topic, message.payload, message.qos, message.retain)
            if queue and queue[0] is message:
                queue.popleft()
            self.stats.published += 1

    def _on_connected(self) -> None:
        self.stats.connects += 1
        self.stats.connected = True
        if self._outage_logged:
            log.warning(
                "MQTT broker %s:%d reachable again; sending %d queued messages",
                self.config.host,
                self.config.port,
                self.pending,
            )
            self._outage_logged = False

    def _on_failure(self, message: str) -> None:
        self.stats.connected = False
        self.stats.last_error = message
        if not self._outage_logged:
            log.warning(
                "MQTT broker %s:%d unavailable (%s); queueing and reconnecting",
                self.config.host,
                self.config.port,
                message,
            )
            self._outage_logged = True


async def _watch_connection(client: aiomqtt.Client) -> None:
    """Raises MqttError as soon as the connection drops (aiomqtt's message iterator does)."""
    async for _ in client.messages:
        pass


async def _until_first_done(*coros: Coroutine[Any, Any, None]) -> None:
    """Run together; when one ends, cancel the others and re-raise the first one's error."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await task
    for task in done:
        task.result()
