"""BLE collector (bleak ≥ 3): find, connect, configure and stream Movesense and MetaWear sensors.

One asyncio lock serializes scanning and connecting (BLE adapters misbehave when both run at
once); once connected, every sensor streams concurrently. Notification callbacks are sync and
only timestamp (session clock) and enqueue; one consumer task decodes, places every block on
its sensor's clock (`core.clock.StreamClock`) and publishes:

- `SampleBlock` per notification: `location`, `host_time_s` (receive time on the session
  clock) and `device_timestamp_ms` set — the Movesense device time, or for MetaWear the sample
  index the clock model placed, as ms at the nominal rate: from the board's accounter ticks
  when the sensor is configured with `accounter` (exact gap sizes), else inferred from the
  receive times (the board then sends no time);
- `SensorStatus` per sensor about once a second and on every (dis)connection;
- `SensorGap` when samples are missing: dropped notifications (≥ `gap_marker_min_s`), a
  disconnection (after the sensor is back) or a device clock reset.

A dropped link is retried with exponential backoff, and the whole configuration is sent again
(Movesense drops every subscription on disconnect; a MetaWear board stops streaming).
`BleCollector` takes a transport: `BleakTransport` (the real adapter) or the device emulator's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import tomllib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

from bleak import BleakClient, BleakScanner
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak.exc import BleakBluetoothNotAvailableError, BleakDBusError, BleakError

from imu_stream.core.clock import DEFAULT_MAX_INTERP_GAP_S, SensorGap, StreamClock, stream_name
from imu_stream.devices import metawear as mw
from imu_stream.devices import metawear_processors as dp
from imu_stream.devices import movesense as ms
from imu_stream.devices.common import DecodeStats
from imu_stream.devices.profiles import (
    MetaWearProfile,
    MovesenseProfile,
    ProfileError,
    all_profiles,
    metawear_profile,
    movesense_profile,
)
from imu_stream.records import LOCATIONS, SampleBlock, SensorStatus

log = logging.getLogger(__name__)

CollectorEvent = SampleBlock | SensorStatus | SensorGap
FAMILIES: tuple[str, ...] = ("movesense", "metawear", "metawear-bmi160", "metawear-bmi270")
HELLO_REF = 0x7B  # GSP client references: any non-zero byte
DATA_REF = 0x63


class BluetoothUnavailableError(RuntimeError):
    """No usable Bluetooth adapter; the message is one line for the user."""


class SensorProtocolError(RuntimeError):
    """The sensor did not answer as its firmware should (retried like a dropped link)."""


class SensorConfigError(ValueError):
    """A sensor option or session.toml entry that cannot be used; one line for the user."""


def bluetooth_unavailable_reason(exc: BaseException) -> str | None:
    """A one-line reason when EXC means there is no usable Bluetooth adapter, else None."""
    if isinstance(exc, BleakBluetoothNotAvailableError):
        reason = exc.reason.name.lower().replace("_", " ")
        return f"Bluetooth is not available ({reason})"
    if isinstance(exc, FileNotFoundError | ConnectionRefusedError):
        return "no Bluetooth adapter: the BlueZ D-Bus system bus is not reachable"
    if isinstance(exc, BleakDBusError) and (
        "ServiceUnknown" in exc.dbus_error or "org.bluez" in exc.dbus_error
    ):
        return "no Bluetooth adapter: the BlueZ service is not running"
    text = str(exc).lower()
    if isinstance(exc, BleakError) and ("adapter" in text or "bluetooth" in text):
        return f"no Bluetooth adapter ({exc})"
    return None


class BleTransport(Protocol):
    """How the collector reaches sensors: discovery plus a BleakClient per device."""

    async def discover(self, timeout: float) -> list[tuple[BLEDevice, AdvertisementData]]: ...

    def make_client(
        self, device: BLEDevice, disconnected_callback: Callable[[BleakClient], None]
    ) -> BleakClient: ...


class BleakTransport:
    """The machine's Bluetooth adapter through bleak's platform backend."""

    def __init__(self, connect_timeout_s: float = 20.0) -> None:
        self.connect_timeout_s = connect_timeout_s

    async def discover(self, timeout: float) -> list[tuple[BLEDevice, AdvertisementData]]:
        try:
            found = await BleakScanner.discover(timeout=timeout, return_adv=True)
        except Exception as exc:
            reason = bluetooth_unavailable_reason(exc)
            if reason is not None:
                raise BluetoothUnavailableError(reason) from exc
            raise
        return list(found.values())

    def make_client(
        self, device: BLEDevice, disconnected_callback: Callable[[BleakClient], None]
    ) -> BleakClient:
        return BleakClient(device, disconnected_callback, timeout=self.connect_timeout_s)


# --- scanning ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScanResult:
    name: str
    address: str
    rssi: int
    family: str | None  # "movesense" | "metawear" (board variant known after connecting)


def identify_family(name: str | None, service_uuids: Sequence[str]) -> str | None:
    """The sensor family an advertisement belongs to, from its services or name."""
    uuids = {u.lower() for u in service_uuids}
    for profile in all_profiles().values():
        if profile.service_uuid.lower() in uuids:
            return profile.family
    for profile in all_profiles().values():
        if name and any(name.startswith(prefix) for prefix in profile.name_prefixes):
            return profile.family
    return None


async def scan_sensors(
    timeout: float = 5.0,
    *,
    transport: BleTransport | None = None,
    include_unsupported: bool = False,
) -> list[ScanResult]:
    """Nearby sensors, strongest first. Raises BluetoothUnavailableError without an adapter."""
    found = await (transport or BleakTransport()).discover(timeout)
    results = []
    for device, adv in found:
        name = adv.local_name or device.name or ""
        family = identify_family(name, adv.service_uuids)
        if family is not None or include_unsupported:
            results.append(ScanResult(name, device.address, adv.rssi, family))
    return sorted(results, key=lambda r: -r.rssi)


def format_scan_table(results: Sequence[ScanResult]) -> str:
    if not results:
        return "no supported sensors found (Movesense with the GSP firmware, MetaWear/MetaMotion)"
    width = max(4, *(len(r.name) for r in results))
    lines = [f"{'NAME':<{width}}  {'ADDRESS':<36}  {'RSSI':>5}  FAMILY"]
    for r in results:
        lines.append(f"{r.name:<{width}}  {r.address:<36}  {r.rssi:>5}  {r.family or '-'}")
    return "\n".join(lines)


# --- configuration ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SensorSpec:
    """Which sensor sits where, and how to stream it."""

    location: str
    target: str  # Bluetooth address (UUID on macOS) or the end of the advertised name
    family: str | None = None  # movesense | metawear | metawear-bmi160 | metawear-bmi270
    rate_hz: float | None = None
    resource: str | None = None  # Movesense: IMU6 or IMU9
    packed: bool | None = None  # MetaWear: packed notifications (3 samples each; 2 with ticks)
    accounter: bool | None = None  # MetaWear: board ticks on every notification (the accounter)
    acc_range_g: int | None = None
    gyro_range_dps: int | None = None

    def matches(self, device: BLEDevice, adv: AdvertisementData | None = None) -> bool:
        target = self.target.strip().lower()
        if device.address.lower() == target:
            return True
        name = ((adv.local_name if adv else None) or device.name or "").lower()
        return bool(name) and name.endswith(target)


def _check_spec(spec: SensorSpec) -> SensorSpec:
    if spec.location not in LOCATIONS:
        raise SensorConfigError(
            f"unknown sensor location {spec.location!r}; choose from {', '.join(LOCATIONS)}"
        )
    if not spec.target.strip():
        raise SensorConfigError(f"{spec.location}: empty address or name")
    if spec.family is not None and spec.family not in FAMILIES:
        raise SensorConfigError(f"{spec.location}: unknown family {spec.family!r}")
    if spec.family == "movesense" and spec.rate_hz is not None:
        rates = movesense_profile().rates_hz
        if int(spec.rate_hz) not in rates or spec.rate_hz != int(spec.rate_hz):
            raise SensorConfigError(f"{spec.location}: Movesense rate must be one of {rates}")
    return spec


def parse_sensor_option(text: str) -> SensorSpec:
    """`--sensor sacrum=AA:BB:CC:DD:EE:FF` or `--sensor left_thigh=0192` (name suffix)."""
    location, sep, target = text.partition("=")
    if not sep:
        raise SensorConfigError(f"--sensor {text!r}: expected LOCATION=ADDRESS_OR_NAME_SUFFIX")
    return _check_spec(SensorSpec(location.strip(), target.strip()))


def sensors_from_session_toml(path: Path) -> list[SensorSpec]:
    """The `[sensors]` table of session.toml: `sacrum = "ADDRESS"` or `[sensors.sacrum]` tables
    with `address` (or `name`), and optional `family`, `rate_hz`, `resource`, `packed`,
    `accounter`, `acc_range_g`, `gyro_range_dps`."""
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SensorConfigError(f"{path}: cannot read ({exc})") from exc
    table = data.get("sensors", {})
    if not isinstance(table, dict):
        raise SensorConfigError(f"{path}: [sensors] must be a table")
    specs = []
    for location, entry in table.items():
        if isinstance(entry, str):
            specs.append(_check_spec(SensorSpec(location, entry)))
            continue
        if not isinstance(entry, dict):
            raise SensorConfigError(f"{path}: sensors.{location} must be a string or a table")
        target = entry.get("address") or entry.get("name")
        if not isinstance(target, str):
            raise SensorConfigError(f"{path}: sensors.{location} needs address or name")
        try:
            spec = SensorSpec(
                location=location,
                target=target,
                family=entry.get("family"),
                rate_hz=float(entry["rate_hz"]) if "rate_hz" in entry else None,
                resource=entry.get("resource"),
                packed=bool(entry["packed"]) if "packed" in entry else None,
                accounter=bool(entry["accounter"]) if "accounter" in entry else None,
                acc_range_g=int(entry["acc_range_g"]) if "acc_range_g" in entry else None,
                gyro_range_dps=int(entry["gyro_range_dps"]) if "gyro_range_dps" in entry else None,
            )
        except (TypeError, ValueError) as exc:
            raise SensorConfigError(f"{path}: sensors.{location}: {exc}") from exc
        specs.append(_check_spec(spec))
    return specs


def resolve_sensor_specs(
    options: Sequence[str] = (), session_toml: Path | None = None
) -> list[SensorSpec]:
    """session.toml sensors, overridden per location by `--sensor` options."""
    by_location: dict[str, SensorSpec] = {}
    if session_toml is not None and session_toml.exists():
        for spec in sensors_from_session_toml(session_toml):
            by_location[spec.location] = spec
    seen: set[str] = set()
    for text in options:
        spec = parse_sensor_option(text)
        if spec.location in seen:
            raise SensorConfigError(f"--sensor {spec.location} given twice")
        seen.add(spec.location)
        old = by_location.get(spec.location)
        by_location[spec.location] = replace(old, target=spec.target) if old else spec
    if not by_location:
        raise SensorConfigError("no sensors configured (use --sensor LOCATION=ADDRESS)")
    return [by_location[loc] for loc in LOCATIONS if loc in by_location]


@dataclass(frozen=True, slots=True)
class CollectorConfig:
    scan_timeout_s: float = 5.0
    connect_timeout_s: float = 20.0
    command_timeout_s: float = 3.0  # HELLO/module-info replies and the first data after start
    status_interval_s: float = 1.0
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 8.0
    battery_interval_s: float = 60.0
    gap_marker_min_s: float = DEFAULT_MAX_INTERP_GAP_S  # shorter holes are only counted
    raw_queue_size: int = 200_000


@dataclass(slots=True)
class SensorCounters:
    """Per-sensor totals since the collector started."""

    received_samples: int = 0
    lost_samples: int = 0  # missing while streaming (dropped notifications)
    skipped_samples: int = 0  # not streamed while disconnected
    connections: int = 0
    overflow: int = 0  # notifications dropped because the raw queue was full
    decode: DecodeStats = field(default_factory=DecodeStats)

    @property
    def packet_loss_pct(self) -> float:
        total = self.received_samples + self.lost_samples
        return 100.0 * self.lost_samples / total if total else 0.0


# --- the collector ----------------------------------------------------------------------------


class _Sensor:
    """Runtime state of one configured sensor."""

    def __init__(self, spec: SensorSpec) -> None:
        self.spec = spec
        self.location = spec.location
        family = spec.family or None
        self.family: str | None = None if family is None else family.split("-")[0]
        self.variant = family if family and family.startswith("metawear-") else None
        self.device: BLEDevice | None = None
        self.client: BleakClient | None = None
        self.epoch = 0
        self.connected = False
        self.disconnected = asyncio.Event()
        self.battery_pct = math.nan
        self.decoder: ms.GspDecoder | mw.MetaWearDecoder | None = None
        self.profile: MovesenseProfile | MetaWearProfile | None = None
        self.rate_hz = 0.0
        self.clocks: dict[str, StreamClock] = {}
        self.tick_wrap_ms = 0.0  # > 0 while MetaWear notifications carry accounter ticks
        self.acks: dict[str, asyncio.Event] = {}
        self.replies: asyncio.Queue[object] = asyncio.Queue()
        self.last_time: float | None = None  # session time of the latest sample
        self.gap_start: float | None = None  # set at a disconnect, cleared when data resumes
        self.window_samples = 0
        self.counters = SensorCounters()
        self.last_error = ""

    @property
    def primary_stream(self) -> str:
        return "acc" if self.family == "metawear" else "imu"


class BleCollector:
    """Stream several BLE sensors; iterate `events()` for blocks, statuses and gap markers."""

    def __init__(
        self,
        specs: Sequence[SensorSpec],
        transport: BleTransport | None = None,
        config: CollectorConfig | None = None,
    ) -> None:
        if not specs:
            raise SensorConfigError("no sensors configured")
        locations = [s.location for s in specs]
        if len(set(locations)) != len(locations):
            raise SensorConfigError("a sensor location is configured twice")
        self.config = config or CollectorConfig()
        self.transport: BleTransport = transport or BleakTransport(self.config.connect_timeout_s)
        self.sensors = {s.location: _Sensor(_check_spec(s)) for s in specs}
        self._lock = asyncio.Lock()
        self._raw: asyncio.Queue[tuple[str, int, float, bytes] | None] = asyncio.Queue(
            self.config.raw_queue_size
        )
        self._events: asyncio.Queue[CollectorEvent | None] = asyncio.Queue()
        self._consumer: asyncio.Task[None] | None = None
        self._status_task: asyncio.Task[None] | None = None
        self._sensor_tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self._t0 = 0.0
        self._seen: list[tuple[BLEDevice, AdvertisementData]] = []
        self._started = False

    # --- lifecycle ----------------------------------------------------------------------------

    @property
    def session_start(self) -> float:
        """Loop time of session time 0."""
        return self._t0

    def session_time(self) -> float:
        return asyncio.get_running_loop().time() - self._t0

    async def start(self) -> None:
        """Scan once for every sensor (raises BluetoothUnavailableError without an adapter)
        and start connecting and streaming in the background."""
        if self._started:
            return
        self._started = True
        self._t0 = asyncio.get_running_loop().time()
        async with self._lock:
            self._seen = await self.transport.discover(self.config.scan_timeout_s)
        self._consumer = asyncio.create_task(self._consume(), name="ble-consume")
        self._status_task = asyncio.create_task(self._status_loop(), name="ble-status")
        self._sensor_tasks = [
            asyncio.create_task(self._run_sensor(sensor), name=f"ble-{sensor.location}")
            for sensor in self.sensors.values()
        ]

    async def stop(self) -> None:
        """Unsubscribe and disconnect every sensor, flush, and end `events()`."""
        if self._stopping:
            return
        self._stopping = True
        for sensor in self.sensors.values():
            sensor.disconnected.set()
        if self._sensor_tasks:
            done, pending = await asyncio.wait(self._sensor_tasks, timeout=10.0)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    log.warning("sensor task ended with %r", task.exception())
        if self._consumer is not None:
            await self._raw.put(None)  # after everything queued: the consumer drains first
            await asyncio.gather(self._consumer, return_exceptions=True)
        if self._status_task is not None:
            self._status_task.cancel()
            await asyncio.gather(self._status_task, return_exceptions=True)
        for sensor in self.sensors.values():
            self._emit_status(sensor)
        self._events.put_nowait(None)

    async def __aenter__(self) -> BleCollector:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def events(self) -> AsyncIterator[CollectorEvent]:
        while True:
            event = await self._events.get()
            if event is None:
                return
            yield event

    def counters(self, location: str) -> SensorCounters:
        sensor = self.sensors[location]
        c = sensor.counters
        c.received_samples = sum(k.received_samples for k in sensor.clocks.values())
        c.lost_samples = sum(k.lost_samples for k in sensor.clocks.values())
        c.skipped_samples = sum(k.skipped_samples for k in sensor.clocks.values())
        if sensor.decoder is not None:
            c.decode = sensor.decoder.stats
        return c

    def rate_hz(self, location: str) -> float:
        return self.sensors[location].rate_hz

    # --- connection management ----------------------------------------------------------------

    async def _run_sensor(self, sensor: _Sensor) -> None:
        cfg = self.config
        backoff = cfg.backoff_initial_s
        while not self._stopping:
            try:
                client = await self._connect(sensor)
                backoff = cfg.backoff_initial_s
                await self._stream(sensor, client)
            except (BluetoothUnavailableError, ProfileError) as exc:
                # no adapter, or a configuration this sensor cannot stream: retrying won't help
                sensor.last_error = str(exc)
                log.error("%s: %s", sensor.location, exc)
                return
            except (BleakError, TimeoutError, OSError, SensorProtocolError) as exc:
                sensor.last_error = f"{type(exc).__name__}: {exc}"
                log.info("%s: %s", sensor.location, sensor.last_error)
            finally:
                await self._close(sensor)
            if self._stopping:
                break
            await asyncio.sleep(backoff)
            backoff = min(2.0 * backoff, cfg.backoff_max_s)

    async def _connect(self, sensor: _Sensor) -> BleakClient:
        async with self._lock:
            if sensor.device is None:
                sensor.device = await self._find(sensor)
            sensor.epoch += 1
            sensor.disconnected = asyncio.Event()
            event = sensor.disconnected
            client = self.transport.make_client(sensor.device, lambda _c: event.set())
            sensor.client = client
            try:
                await asyncio.wait_for(client.connect(), self.config.connect_timeout_s)
            except (BleakError, TimeoutError, OSError):
                sensor.device = None  # scan again next time: it may have moved or changed
                raise
        sensor.connected = True
        sensor.counters.connections += 1
        self._emit_status(sensor)
        return client

    async def _find(self, sensor: _Sensor) -> BLEDevice:
        for attempt in range(2):
            for device, adv in self._seen:
                if sensor.spec.matches(device, adv):
                    family = identify_family(adv.local_name or device.name, adv.service_uuids)
                    if sensor.family is None:
                        sensor.family = family
                    if sensor.family is None:
                        raise SensorProtocolError(
                            f"{sensor.location}: {device.name or device.address} is not a "
                            "supported sensor (Movesense GSP or MetaWear)"
                        )
                    return device
            if attempt == 0:
                self._seen = await self.transport.discover(self.config.scan_timeout_s)
        raise SensorProtocolError(f"{sensor.location}: no sensor matching {sensor.spec.target!r}")

    async def _close(self, sensor: _Sensor) -> None:
        client, sensor.client = sensor.client, None
        was_connected = sensor.connected
        sensor.connected = False
        if client is not None and client.is_connected:
            if self._stopping:
                with contextlib.suppress(BleakError, TimeoutError, OSError):
                    await asyncio.wait_for(self._unsubscribe(sensor, client), 2.0)
            with contextlib.suppress(BleakError, TimeoutError, OSError):
                await asyncio.wait_for(client.disconnect(), 5.0)
        sensor.epoch += 1  # notifications still queued from this connection are stale
        for clock in sensor.clocks.values():
            clock.mark_reconnect()
        if isinstance(sensor.decoder, ms.GspDecoder):
            sensor.decoder.reset()
        if was_connected:
            if sensor.last_time is not None and sensor.gap_start is None:
                sensor.gap_start = sensor.last_time
            self._emit_status(sensor)

    async def _unsubscribe(self, sensor: _Sensor, client: BleakClient) -> None:
        profile = sensor.profile
        if isinstance(profile, MovesenseProfile):
            await client.write_gatt_char(
                profile.write_uuid, ms.build_unsubscribe(DATA_REF, profile), response=True
            )
        elif isinstance(profile, MetaWearProfile):
            commands = mw.stop_commands(profile, self._packed(sensor))
            if sensor.tick_wrap_ms > 0 and isinstance(sensor.decoder, mw.MetaWearDecoder):
                for pid in sensor.decoder.processor_ids():
                    commands.append(dp.build_processor_notify(profile, pid, False))
                commands.append(dp.build_processor_remove_all(profile))
            for command in commands:
                await client.write_gatt_char(profile.command_uuid, command, response=False)

    # --- configuration and streaming ----------------------------------------------------------

    async def _stream(self, sensor: _Sensor, client: BleakClient) -> None:
        loop = asyncio.get_running_loop()
        location, epoch, raw, t0 = sensor.location, sensor.epoch, self._raw, self._t0

        def on_notify(_sender: object, data: bytearray) -> None:
            # Only timestamp and enqueue: decoding happens in the consumer task.
            try:
                raw.put_nowait((location, epoch, loop.time() - t0, bytes(data)))
            except asyncio.QueueFull:
                sensor.counters.overflow += 1

        if sensor.family == "movesense":
            await self._start_movesense(sensor, client, on_notify)
        else:
            await self._start_metawear(sensor, client, on_notify)
        while not sensor.disconnected.is_set():
            try:
                await asyncio.wait_for(sensor.disconnected.wait(), self.config.battery_interval_s)
            except TimeoutError:
                with contextlib.suppress(BleakError, TimeoutError, OSError):
                    await self._read_battery(sensor, client)

    def _drain_replies(self, sensor: _Sensor) -> None:
        while not sensor.replies.empty():
            sensor.replies.get_nowait()

    async def _reply(
        self, sensor: _Sensor, wanted: Callable[[object], bool], timeout: float
    ) -> object | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return None
            try:
                reply = await asyncio.wait_for(sensor.replies.get(), remaining)
            except TimeoutError:
                return None
            if wanted(reply):
                return reply

    async def _start_movesense(
        self, sensor: _Sensor, client: BleakClient, on_notify: Callable[[object, bytearray], None]
    ) -> None:
        p = movesense_profile(sensor.spec.family or "movesense")
        rate = int(sensor.spec.rate_hz or p.default_rate_hz)
        resource = sensor.spec.resource or p.default_resource
        path = p.resource_path(resource, rate)
        sensor.profile, sensor.rate_hz = p, float(rate)
        if not isinstance(sensor.decoder, ms.GspDecoder):
            sensor.decoder = ms.GspDecoder(p)
        sensor.decoder.subscribe(DATA_REF, path)
        self._drain_replies(sensor)
        sensor.acks = {"imu": asyncio.Event()}
        timeout = self.config.command_timeout_s
        await client.start_notify(p.notify_uuid, on_notify)
        await client.write_gatt_char(p.write_uuid, ms.build_hello(HELLO_REF, p), response=True)
        hello = await self._reply(
            sensor,
            lambda r: isinstance(r, ms.GspCommandResult) and r.ref == HELLO_REF,
            timeout,
        )
        if hello is None:
            raise SensorProtocolError("no GSP HELLO reply (is the gatt_sensordata firmware on?)")
        await client.write_gatt_char(p.write_uuid, ms.build_subscribe(DATA_REF, path, p), True)
        # The first DATA acknowledges the subscription; a refusal comes as a status (507 …).
        ack = asyncio.ensure_future(sensor.acks["imu"].wait())
        refusal = asyncio.ensure_future(
            self._reply(
                sensor,
                lambda r: (
                    isinstance(r, ms.GspCommandResult)
                    and r.ref == DATA_REF
                    and (r.status or 0) >= 400
                ),
                timeout,
            )
        )
        done, pending = await asyncio.wait(
            {ack, refusal}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        if ack not in done:
            result = refusal.result() if refusal in done else None
            if isinstance(result, ms.GspCommandResult):
                raise SensorProtocolError(f"subscription to {path} refused ({result.status})")
            raise SensorProtocolError(f"no data after subscribing to {path}")
        with contextlib.suppress(BleakError, TimeoutError, OSError):
            await self._read_battery(sensor, client)

    async def _start_metawear(
        self, sensor: _Sensor, client: BleakClient, on_notify: Callable[[object, bytearray], None]
    ) -> None:
        p = metawear_profile(sensor.variant or "metawear-bmi160")
        timeout = self.config.command_timeout_s
        self._drain_replies(sensor)
        # Decode replies with a provisional profile until the board says which IMU it has.
        sensor.decoder = mw.MetaWearDecoder(p)
        await client.start_notify(p.notify_uuid, on_notify)
        await client.write_gatt_char(
            p.command_uuid, mw.build_module_info_read(p, p.module_acc), response=False
        )
        info = await self._reply(
            sensor, lambda r: isinstance(r, mw.ModuleInfo) and r.module == p.module_acc, timeout
        )
        if isinstance(info, mw.ModuleInfo) and info.implementation is not None:
            for candidate in all_profiles().values():
                if (
                    isinstance(candidate, MetaWearProfile)
                    and candidate.acc.implementation == info.implementation
                ):
                    p = candidate
        sensor.variant = p.device
        rate = float(sensor.spec.rate_hz or p.default_rate_hz)
        acc_range = sensor.spec.acc_range_g or p.default_acc_range_g
        gyro_range = sensor.spec.gyro_range_dps or p.default_gyro_range_dps
        sensor.profile, sensor.rate_hz = p, rate
        decoder = mw.MetaWearDecoder(p, acc_range_g=acc_range, gyro_range_dps=gyro_range)
        decoder.stats = sensor.decoder.stats
        sensor.decoder = decoder
        sensor.acks = {"acc": asyncio.Event(), "gyro": asyncio.Event()}
        packed = self._packed(sensor)
        commands = [mw.build_connection_parameters(p, 7.5, 15.0, 0, 4000.0)]
        sensor.tick_wrap_ms = 0.0
        if sensor.spec.accounter and await self._has_data_processor(sensor, client, p):
            # Accounters instead of the plain subscriptions, on a board cleared of processors
            # (they outlive connections); then enable and start.
            commands += mw.configure_commands(p, rate, acc_range, gyro_range)
            commands.append(dp.build_processor_remove_all(p))
            for command in commands:
                await self._write_metawear(sensor, client, command)
            sensor.tick_wrap_ms = await self._add_accounters(sensor, client, packed)
            commands = mw.start_commands(p, rate)
        else:
            commands += mw.streaming_commands(p, rate, acc_range, gyro_range, packed)
        for command in commands:
            await self._write_metawear(sensor, client, command)
        try:
            await asyncio.wait_for(
                asyncio.gather(*(e.wait() for e in sensor.acks.values())), timeout
            )
        except TimeoutError as exc:
            raise SensorProtocolError("no accelerometer/gyroscope data after start") from exc
        with contextlib.suppress(BleakError, TimeoutError, OSError):
            await self._read_battery(sensor, client)

    async def _write_metawear(self, sensor: _Sensor, client: BleakClient, command: bytes) -> None:
        assert isinstance(sensor.decoder, mw.MetaWearDecoder)
        assert isinstance(sensor.profile, MetaWearProfile)
        sensor.decoder.observe_command(command)
        await client.write_gatt_char(sensor.profile.command_uuid, command, response=False)

    async def _has_data_processor(
        self, sensor: _Sensor, client: BleakClient, p: MetaWearProfile
    ) -> bool:
        module = p.data_processor.module
        await self._write_metawear(sensor, client, mw.build_module_info_read(p, module))
        info = await self._reply(
            sensor,
            lambda r: isinstance(r, mw.ModuleInfo) and r.module == module,
            self.config.command_timeout_s,
        )
        if isinstance(info, mw.ModuleInfo) and info.implementation is not None:
            return True
        log.warning("%s: no data-processing module, timing by sample counters", sensor.location)
        return False

    async def _add_processor(
        self, sensor: _Sensor, client: BleakClient, spec: dp.ProcessorSpec
    ) -> int:
        assert isinstance(sensor.profile, MetaWearProfile)
        await self._write_metawear(sensor, client, dp.build_processor_add(sensor.profile, spec))
        reply = await self._reply(
            sensor, lambda r: isinstance(r, mw.ProcessorCreated), self.config.command_timeout_s
        )
        if not isinstance(reply, mw.ProcessorCreated):
            raise SensorProtocolError("the board did not create a data processor")
        return reply.processor_id

    async def _add_accounters(self, sensor: _Sensor, client: BleakClient, packed: bool) -> float:
        """An accounter (over a packer when packed) per signal, notifying; the tick wrap in ms."""
        p, decoder = sensor.profile, sensor.decoder
        assert isinstance(p, MetaWearProfile) and isinstance(decoder, mw.MetaWearDecoder)
        wrap_ms = 0.0
        for signal in ("acc", "gyro"):
            source = dp.motion_source(p, signal)
            if packed:
                count = dp.accounter_pack_count(p)
                pid = await self._add_processor(sensor, client, dp.packer_spec(p, source, count))
                source = dp.processor_source(p, pid, source.length)
            pid = await self._add_processor(sensor, client, dp.accounter_spec(p, source))
            chain = decoder.processor_chain(pid)
            if chain is None or not chain.timed:
                raise SensorProtocolError(f"accounter {pid} over {signal} not decodable")
            wrap_ms = dp.tick_wrap_ms(p, chain)
            await self._write_metawear(sensor, client, dp.build_processor_notify(p, pid, True))
        await self._write_metawear(sensor, client, dp.build_processor_notifications(p))
        return wrap_ms

    def _packed(self, sensor: _Sensor) -> bool:
        if sensor.spec.packed is not None:
            return sensor.spec.packed
        profile = sensor.profile
        return profile.default_packed if isinstance(profile, MetaWearProfile) else True

    async def _read_battery(self, sensor: _Sensor, client: BleakClient) -> None:
        profile = sensor.profile
        if isinstance(profile, MovesenseProfile):
            uuid = profile.battery_level_uuid
            if uuid and client.services.get_characteristic(uuid) is not None:
                value = await client.read_gatt_char(uuid)
                if value:
                    sensor.battery_pct = float(value[0])
        elif isinstance(profile, MetaWearProfile):
            await client.write_gatt_char(
                profile.command_uuid, mw.build_battery_read(profile), response=False
            )
            reply = await self._reply(
                sensor, lambda r: isinstance(r, mw.BatteryState), self.config.command_timeout_s
            )
            if isinstance(reply, mw.BatteryState):
                sensor.battery_pct = float(reply.charge_pct)

    # --- decoding, clocks, statuses -----------------------------------------------------------

    async def _consume(self) -> None:
        raw = self._raw
        while True:
            item = await raw.get()
            while True:  # drain what is queued without a wake-up per notification
                if item is None:
                    return  # stop()'s sentinel, queued after every notification
                self._decode(*item)
                if raw.empty():
                    break
                item = raw.get_nowait()

    def _decode(self, location: str, epoch: int, t: float, data: bytes) -> None:
        sensor = self.sensors[location]
        decoder = sensor.decoder
        if epoch != sensor.epoch or decoder is None:
            return
        messages: list[object]
        if isinstance(decoder, ms.GspDecoder):
            messages = list(decoder.feed(data, t))  # two-part messages: their first part's time
        else:
            messages = list(decoder.feed(data))
        for message in messages:
            if isinstance(message, SampleBlock):
                arrival = t if message.host_time_s is None else message.host_time_s
                self._on_block(sensor, message, arrival)
            else:
                if isinstance(message, mw.BatteryState):
                    sensor.battery_pct = float(message.charge_pct)
                sensor.replies.put_nowait(message)

    def _on_block(self, sensor: _Sensor, block: SampleBlock, t: float) -> None:
        stream = stream_name(block)
        clock = sensor.clocks.get(stream)
        if clock is None:
            if sensor.tick_wrap_ms > 0:
                clock = StreamClock(
                    sensor.rate_hz,
                    timestamped=True,
                    wrap_ms=sensor.tick_wrap_ms,
                    stamps_last_sample=True,
                )
            else:
                clock = StreamClock(sensor.rate_hz, timestamped=sensor.family == "movesense")
            sensor.clocks[stream] = clock
        if clock.timestamped != (block.device_timestamp_ms is not None):
            return  # a notification of another timing than the stream's (a stale processor)
        placement = clock.place(t, block.n_samples, block.device_timestamp_ms)
        first, segment = placement.first_index, placement.segment
        first_time = clock.sample_time(first, segment)
        last_time = clock.sample_time(first + block.n_samples - 1, segment)
        if sensor.family == "metawear":
            block.device_timestamp_ms = placement.first_index * 1000.0 / sensor.rate_hz
        block.host_time_s = t
        block.location = sensor.location
        if placement.new_segment and sensor.gap_start is not None:
            self._events.put_nowait(
                SensorGap(
                    sensor.location,
                    sensor.gap_start,
                    first_time,
                    placement.skipped_before,
                    placement.reason or "disconnect",
                )
            )
            sensor.gap_start = None
        elif (
            placement.lost_before
            and sensor.last_time is not None
            and placement.lost_before / sensor.rate_hz >= self.config.gap_marker_min_s
        ):
            gap = SensorGap(
                sensor.location, sensor.last_time, first_time, placement.lost_before, "lost"
            )
            self._events.put_nowait(gap)
        sensor.last_time = last_time
        if stream == sensor.primary_stream:
            sensor.window_samples += block.n_samples
        ack = sensor.acks.get(stream)
        if ack is not None:
            ack.set()
        self._events.put_nowait(block)

    def _emit_status(self, sensor: _Sensor, rate_hz: float = 0.0) -> None:
        counters = self.counters(sensor.location)
        clock = sensor.clocks.get(sensor.primary_stream)
        offset = clock.clock_offset_ms() if clock is not None else math.nan
        self._events.put_nowait(
            SensorStatus(
                location=sensor.location,
                time_s=self.session_time(),
                connected=sensor.connected,
                battery_pct=sensor.battery_pct,
                packet_loss_pct=counters.packet_loss_pct,
                rate_hz=rate_hz,
                clock_offset_ms=offset,
            )
        )

    async def _status_loop(self) -> None:
        interval = self.config.status_interval_s
        while True:
            await asyncio.sleep(interval)
            for sensor in self.sensors.values():
                rate = sensor.window_samples / interval
                sensor.window_samples = 0
                self._emit_status(sensor, rate)


def open_ble_sources(
    specs: Sequence[SensorSpec],
    *,
    transport: BleTransport | None = None,
    config: CollectorConfig | None = None,
) -> BleCollector:
    """A collector for SPECS (not started: `await collector.start()`, or `async with`)."""
    return BleCollector(specs, transport, config)
