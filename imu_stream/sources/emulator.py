"""Device emulator: Movesense (GSP) and MetaWear peripherals behind a real bleak client.

The emulated peripherals implement the vendors' GATT command protocols as the firmware does
(see `devices/`): Movesense HELLO/SUBSCRIBE/UNSUBSCRIBE with DATA + DATA_PART2 packetization,
refused subscriptions (507) and silently failing bad paths, all subscriptions dropped on
disconnect; MetaWear module-info reads, accelerometer/gyroscope configure-subscribe-enable-start
sequences with plain and packed notifications, the data-processing module's packer and
accounter (tick-prefixed notifications; processors outlive a connection, as on the board),
battery reads, connection parameters and the board-side disconnect. Samples come from a
`SignalSource` (the simulator's recordings) on the sensor's own sample grid: the device clock
runs `clock_drift_ppm` off the air clock, and each notification is sent when its last sample is
taken, then delivered after the radio latency (`base_latency_s` plus up to `jitter_s`, order
kept as on a BLE link). Knobs drop notifications, inject garbage and cut the link at given times.

The collector talks to these peripherals through `bleak.BleakClient` / `BleakScanner` with the
custom backends below (`EmulatorTransport` builds them), so everything above the codec runs the
same code as with hardware. Time is the event loop's clock: run on `virtual_time.run_virtual`
to go faster than real time.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
from bleak import BleakClient, BleakScanner
from bleak.args import SizedBuffer
from bleak.assigned_numbers import CharacteristicPropertyName
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient, NotifyCallback
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import (
    AdvertisementData,
    AdvertisementDataCallback,
    BaseBleakScanner,
)
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import BleakDeviceNotFoundError, BleakError

from imu_stream.devices import metawear as mw
from imu_stream.devices import metawear_processors as dp
from imu_stream.devices import movesense as ms
from imu_stream.devices.profiles import (
    MetaWearProfile,
    MovesenseProfile,
    metawear_profile,
    movesense_profile,
)
from imu_stream.records import FloatArray, SensorRecording

GattTable = list[tuple[str, list[tuple[str, list[CharacteristicPropertyName]]]]]
EARTH_FIELD_UT = np.array([18.0, 0.0, -45.0])  # stand-in magnetometer field when none simulated
BUFFER_TICKS = 512  # samples generated per vectorized refill of a stream
PART_SPACING_S = 0.001  # between notifications of one message (same connection event)


@dataclass(frozen=True, slots=True)
class EmulatorKnobs:
    """How an emulated sensor and its radio link misbehave."""

    packet_loss: float = 0.0  # probability that a notification is lost
    jitter_s: float = 0.0  # latency spread above base_latency_s (uniform; link order kept)
    base_latency_s: float = 0.0075  # shortest sample-to-host latency
    clock_drift_ppm: float = 0.0  # device clock error: + runs fast
    disconnect_at_s: tuple[float, ...] = ()  # air times at which the link drops
    outage_s: float = 2.0  # after a drop the sensor is unreachable this long
    garbage_rate: float = 0.0  # probability of a junk notification before each real one
    battery_pct: int = 87
    boot_time_s: float = -1234.567  # device power-on on the air clock (device clock origin)
    connection_interval_s: float = 0.015  # one command round trip
    connect_time_s: float = 0.4
    advertising_interval_s: float = 0.1
    rssi_dbm: int = -62
    battery_service: bool = True  # Movesense: standard Battery Service present
    # MetaWear: firmware with the data-processing module, so a host can set up the accounter
    # (tick-prefixed notifications) and packer; off, module info reports the module absent.
    data_processor: bool = True
    seed: int = 0


@dataclass(slots=True)
class EmulatorStats:
    """What the emulated sensor did: the truth the collector's statistics are checked against."""

    connections: int = 0
    link_drops: int = 0
    notifications_sent: int = 0
    notifications_lost: int = 0
    garbage_sent: int = 0
    samples_sent: int = 0  # samples whose notification(s) all arrived
    samples_dropped: int = 0  # samples in a notification (or message part) that was lost
    samples_unsent: int = 0  # produced while notifications were off (never on air)


class SignalSource:
    """The motion a sensor experiences: SI signals (sensor frame) on the air clock."""

    def __init__(
        self,
        time_s: FloatArray,
        acc: FloatArray,
        gyr: FloatArray,
        mag: FloatArray | None = None,
    ) -> None:
        if time_s.ndim != 1 or len(time_s) < 2 or np.any(np.diff(time_s) <= 0):
            raise ValueError("signal time must be 1-D and strictly increasing")
        self.time_s = np.ascontiguousarray(time_s, dtype=np.float64)
        if mag is None:
            mag = np.tile(EARTH_FIELD_UT, (len(time_s), 1))
        # Axis-major copies: np.interp needs contiguous columns (else it copies on every call).
        self._axes = [
            np.ascontiguousarray(np.asarray(v, dtype=np.float64).T) for v in (acc, gyr, mag)
        ]

    @classmethod
    def from_recording(cls, rec: SensorRecording, time_offset_s: float = 0.0) -> SignalSource:
        return cls(rec.time_s + time_offset_s, rec.acc, rec.gyr, rec.mag)

    @classmethod
    def still(cls, duration_s: float = 3600.0, rate_hz: float = 100.0) -> SignalSource:
        """A sensor lying flat (gravity on +z), with a slow sway so samples differ."""
        t = np.arange(0.0, duration_s, 1.0 / rate_hz)
        sway = np.sin(2 * np.pi * 0.5 * t)
        acc = np.column_stack([0.3 * sway, np.zeros_like(t), np.full_like(t, 9.80665)])
        gyr = np.column_stack([np.zeros_like(t), 20.0 * sway, np.zeros_like(t)])
        return cls(t, acc, gyr)

    def sample(self, t: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Linear interpolation at air times t; outside the recording the edge values hold."""

        ts = self.time_s
        acc, gyr, mag = (
            np.column_stack([np.interp(t, ts, axis) for axis in axes]) for axes in self._axes
        )
        return acc, gyr, mag


PeripheralT = TypeVar("PeripheralT", bound="EmulatedPeripheral")


class EmulatorAir:
    """The radio environment: the emulated peripherals and the air clock (loop clock − t0)."""

    def __init__(self) -> None:
        self.peripherals: list[EmulatedPeripheral] = []
        self.t0: float | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()

    def start(self) -> None:
        """Fix air time 0 at the current loop time (the recordings' t = 0) and arm the knobs."""
        if self.t0 is None:
            self.t0 = self.loop.time()
            for p in self.peripherals:
                p.arm()

    def now(self) -> float:
        self.start()
        assert self.t0 is not None
        return self.loop.time() - self.t0

    def loop_time(self, air_time: float) -> float:
        self.start()
        assert self.t0 is not None
        return air_time + self.t0

    def add(self, peripheral: PeripheralT) -> PeripheralT:
        peripheral.air = self
        self.peripherals.append(peripheral)
        if self.t0 is not None:
            peripheral.arm()
        return peripheral

    def find(self, address: str) -> EmulatedPeripheral | None:
        for p in self.peripherals:
            if p.address.lower() == address.lower():
                return p
        return None

    def transport(self) -> EmulatorTransport:
        return EmulatorTransport(self)


class EmulatedLink:
    """One BLE connection between a peripheral and an emulated bleak client backend."""

    def __init__(self, peripheral: EmulatedPeripheral, backend: EmulatedClientBackend) -> None:
        self.peripheral = peripheral
        self.backend = backend
        self.connected = True
        self.callbacks: dict[str, NotifyCallback] = {}
        self.last_delivery = -math.inf

    def deliver(self, uuid: str, payload: bytes) -> None:
        callback = self.callbacks.get(uuid) if self.connected else None
        if callback is not None:
            callback(bytearray(payload))

    def drop(self) -> None:
        """The peripheral ends the connection (out of range, board-side disconnect)."""
        if self.connected:
            self.connected = False
            self.backend.remote_disconnect()


class _Stream:
    """One notification stream of a peripheral on its device sample grid (ticks of 1/rate)."""

    def __init__(
        self,
        peripheral: EmulatedPeripheral,
        rate_hz: float,
        per_packet: int,
        uuid: str,
        encode: Callable[[int, FloatArray, FloatArray, FloatArray], list[bytes]],
    ) -> None:
        self.peripheral = peripheral
        self.rate_hz = rate_hz
        self.per_packet = per_packet
        self.uuid = uuid
        self.encode = encode
        start = peripheral.device_time(peripheral.air_now())
        self.next_tick = math.floor(start * rate_hz) + 1  # first sample after the command
        self.active = True
        self._handle: asyncio.TimerHandle | None = None
        self._buf_tick = self.next_tick
        self._buf: tuple[FloatArray, FloatArray, FloatArray] | None = None
        self._schedule()

    def _schedule(self) -> None:
        last = self.next_tick + self.per_packet - 1
        send_air = self.peripheral.air_time(last / self.rate_hz)
        air = self.peripheral.air
        assert air is not None
        self._handle = air.loop.call_at(air.loop_time(send_air), self._emit)

    def _samples(self, first: int, n: int) -> tuple[FloatArray, FloatArray, FloatArray]:
        buf = self._buf
        if buf is None or first + n > self._buf_tick + len(buf[0]) or first < self._buf_tick:
            ticks = first + np.arange(max(BUFFER_TICKS, n))
            air_t = self.peripheral.air_time(ticks / self.rate_hz)
            buf = self._buf = self.peripheral.source.sample(air_t)
            self._buf_tick = first
        i = first - self._buf_tick
        return buf[0][i : i + n], buf[1][i : i + n], buf[2][i : i + n]

    def _emit(self) -> None:
        if not self.active:
            return
        n = self.per_packet
        acc, gyr, mag = self._samples(self.next_tick, n)
        payloads = self.encode(self.next_tick, acc, gyr, mag)
        self.peripheral.transmit(self.uuid, payloads, n)
        self.next_tick += n
        self._schedule()

    def stop(self) -> None:
        self.active = False
        if self._handle is not None:
            self._handle.cancel()


class EmulatedPeripheral:
    """Common radio/clock behaviour; subclasses implement a vendor's GATT protocol."""

    family = "unknown"

    def __init__(self, address: str, name: str, source: SignalSource, knobs: EmulatorKnobs) -> None:
        self.address = address
        self.name = name
        self.source = source
        self.knobs = knobs
        self.air: EmulatorAir | None = None
        self.link: EmulatedLink | None = None
        self.stats = EmulatorStats()
        self.rng = np.random.default_rng(knobs.seed)
        self.unreachable_until = -math.inf
        self.written: list[bytes] = []  # every command received, for tests and logs
        self._drop_handles: list[asyncio.TimerHandle] = []

    # --- clocks ---------------------------------------------------------------------------------

    def air_now(self) -> float:
        assert self.air is not None, "peripheral not added to an EmulatorAir"
        return self.air.now()

    def device_time(self, air_time: Any) -> Any:
        return (air_time - self.knobs.boot_time_s) * (1.0 + self.knobs.clock_drift_ppm * 1e-6)

    def air_time(self, device_time: Any) -> Any:
        return self.knobs.boot_time_s + device_time / (1.0 + self.knobs.clock_drift_ppm * 1e-6)

    def arm(self) -> None:
        """Schedule the knob's link drops (called when the air clock starts)."""
        assert self.air is not None
        for t in self.knobs.disconnect_at_s:
            self._drop_handles.append(self.air.loop.call_at(self.air.loop_time(t), self.drop_link))

    # --- radio ----------------------------------------------------------------------------------

    def advertising(self) -> bool:
        return self.link is None and self.air_now() >= self.unreachable_until

    def advertisement(self) -> AdvertisementData:
        rssi = self.knobs.rssi_dbm + int(self.rng.integers(-3, 4))
        return AdvertisementData(
            local_name=self.name,
            manufacturer_data={},
            service_data={},
            service_uuids=self.advertised_services(),
            tx_power=None,
            rssi=rssi,
            platform_data=(),
        )

    def advertised_services(self) -> list[str]:
        return []

    def accept(self, backend: EmulatedClientBackend) -> EmulatedLink:
        if self.link is not None:
            raise BleakError(f"{self.address}: already connected to another central")
        if self.air_now() < self.unreachable_until:
            raise BleakDeviceNotFoundError(self.address, f"{self.address}: out of range")
        self.link = EmulatedLink(self, backend)
        self.stats.connections += 1
        return self.link

    def central_disconnect(self) -> None:
        """The central closed the connection (no disconnected callback for it)."""
        if self.link is not None:
            self.link.connected = False
            self.link = None
            self.reset()

    def drop_link(self) -> None:
        """The link fails (sensor out of range): the central sees an unsolicited disconnect."""
        self.unreachable_until = self.air_now() + self.knobs.outage_s
        link, self.link = self.link, None
        if link is not None:
            self.stats.link_drops += 1
            link.drop()
        self.reset()

    def transmit(self, uuid: str, payloads: list[bytes], n_samples: int) -> None:
        """Send notifications now: loss, garbage and latency applied, link order kept."""
        link = self.link
        if link is None or uuid not in link.callbacks:
            self.stats.samples_unsent += n_samples
            return
        air = self.air
        assert air is not None
        knobs, rng = self.knobs, self.rng
        now = air.loop.time()
        # One latency per message: its parts leave back to back and share the connection event.
        jitter = rng.random() * knobs.jitter_s if knobs.jitter_s else 0.0
        arrival = now + knobs.base_latency_s + jitter
        message_lost = False
        for payload in payloads:
            if knobs.garbage_rate and rng.random() < knobs.garbage_rate:
                self._deliver_at(link, uuid, self.garbage(), arrival)
                self.stats.garbage_sent += 1
            self.stats.notifications_sent += 1
            if knobs.packet_loss and rng.random() < knobs.packet_loss:
                self.stats.notifications_lost += 1
                message_lost = True
            else:
                self._deliver_at(link, uuid, payload, arrival)
            arrival += PART_SPACING_S
        if message_lost:
            self.stats.samples_dropped += n_samples
        else:
            self.stats.samples_sent += n_samples

    def _deliver_at(self, link: EmulatedLink, uuid: str, payload: bytes, arrival: float) -> None:
        at = max(arrival, link.last_delivery + 1e-6)  # a BLE link never reorders
        link.last_delivery = at
        assert self.air is not None
        self.air.loop.call_at(at, link.deliver, uuid, payload)

    def send_reply(self, uuid: str, payload: bytes) -> None:
        """A command reply: one connection interval later, never lost (link-layer retries)."""
        link = self.link
        if link is None or uuid not in link.callbacks:
            return
        assert self.air is not None
        now = self.air.loop.time()
        at = max(now + self.knobs.connection_interval_s, link.last_delivery + 1e-6)
        link.last_delivery = at
        self.air.loop.call_at(at, link.deliver, uuid, payload)

    def garbage(self) -> bytes:
        size = int(self.rng.integers(0, self.max_notification()))
        return self.rng.integers(0, 256, size, dtype=np.uint8).tobytes()

    # --- GATT -----------------------------------------------------------------------------------

    def max_notification(self) -> int:
        return 20

    def gatt(self) -> GattTable:
        """[(service uuid, [(characteristic uuid, properties)])]."""
        return []

    def services(self) -> BleakGATTServiceCollection:
        collection = BleakGATTServiceCollection()
        handle = 1
        for service_uuid, chars in self.gatt():
            service = BleakGATTService(None, handle, service_uuid)
            collection.add_service(service)
            handle += 1
            for char_uuid, props in chars:
                size = self.max_notification()
                char = BleakGATTCharacteristic(
                    None,
                    handle,
                    char_uuid,
                    props,
                    lambda s=size: s,  # type: ignore[misc]
                    service,
                )
                collection.add_characteristic(char)  # also adds it to its service
                handle += 2
        return collection

    def on_write(self, uuid: str, data: bytes) -> None:
        self.written.append(data)

    def on_read(self, uuid: str) -> bytes:
        raise BleakError(f"characteristic {uuid} is not readable")

    def reset(self) -> None:
        """Forget the connection state (subclasses stop their streams)."""


class MovesensePeripheral(EmulatedPeripheral):
    """A Movesense sensor running the GATT SensorData (GSP) sample firmware."""

    family = "movesense"

    def __init__(
        self,
        address: str,
        source: SignalSource,
        knobs: EmulatorKnobs | None = None,
        *,
        serial: str = "174630000192",
        profile: MovesenseProfile | None = None,
    ) -> None:
        super().__init__(address, f"Movesense {serial}", source, knobs or EmulatorKnobs())
        self.profile = profile or movesense_profile()
        self.subscriptions: dict[int, list[_Stream]] = {}

    def max_notification(self) -> int:
        return self.profile.max_part_bytes

    def gatt(self) -> GattTable:
        p = self.profile
        table: GattTable = [
            (p.service_uuid, [(p.write_uuid, ["write"]), (p.notify_uuid, ["notify"])])
        ]
        if self.knobs.battery_service and p.battery_service_uuid and p.battery_level_uuid:
            table.append((p.battery_service_uuid, [(p.battery_level_uuid, ["read", "notify"])]))
        return table

    def on_read(self, uuid: str) -> bytes:
        if uuid == self.profile.battery_level_uuid and self.knobs.battery_service:
            return bytes((self.knobs.battery_pct,))
        return super().on_read(uuid)

    def on_write(self, uuid: str, data: bytes) -> None:
        super().on_write(uuid, data)
        p = self.profile
        if uuid != p.write_uuid:
            return
        command = ms.parse_command(data, p)
        if command is None:
            return  # the firmware ignores what it cannot parse
        if command.command == "hello":
            self.send_reply(p.notify_uuid, ms.build_command_result(command.ref, text="Hello"))
        elif command.command == "unsubscribe":
            for stream in self.subscriptions.pop(command.ref, []):
                stream.stop()
        elif command.command == "subscribe" and command.path is not None:
            if len(self.subscriptions) >= p.max_subscriptions:
                reply = ms.build_command_result(command.ref, status=507, profile=p)
                self.send_reply(p.notify_uuid, reply)
                return
            parsed = p.parse_resource_path(command.path)
            if parsed is None:
                return  # the subscription fails inside the firmware: no reply at all
            resource, rate = parsed
            stream = self._stream(command.ref, resource, rate)
            self.subscriptions.setdefault(command.ref, []).append(stream)

    def _stream(self, ref: int, resource: str, rate: int) -> _Stream:
        p = self.profile
        blocks = p.resources[resource]

        def encode(tick: int, acc: FloatArray, gyr: FloatArray, mag: FloatArray) -> list[bytes]:
            ms_since_boot = int(tick * 1000 // rate)  # device clock of the first sample
            by_name = {"acc": acc, "gyro": gyr, "mag": mag}
            return ms.encode_data(ref, ms_since_boot, [by_name[b] for b in blocks], p)

        per = p.samples_per_notification[rate]
        return _Stream(self, float(rate), per, p.notify_uuid, encode)

    def reset(self) -> None:
        # The firmware unsubscribes every stream when the connection drops.
        for streams in self.subscriptions.values():
            for stream in streams:
                stream.stop()
        self.subscriptions.clear()


@dataclass(slots=True)
class _Processor:
    spec: dp.ProcessorSpec
    notify: bool = False
    outputs: int = 0  # notifications so far (an accounter in count mode sends this)


@dataclass(slots=True)
class _MotionState:
    odr_hz: float
    range_value: int
    powered: bool = False
    interrupt: bool = False
    subscribed: set[str] = field(default_factory=set)  # "acc" / "acc_packed" / …
    streams: dict[str, _Stream] = field(default_factory=dict)


class MetaWearPeripheral(EmulatedPeripheral):
    """A MetaWear/MetaMotion board (BMI160 or BMI270) speaking the MetaWear protocol."""

    family = "metawear"

    def __init__(
        self,
        address: str,
        source: SignalSource,
        knobs: EmulatorKnobs | None = None,
        *,
        variant: str = "bmi160",
        name: str = "MetaWear",
    ) -> None:
        super().__init__(address, name, source, knobs or EmulatorKnobs())
        self.profile: MetaWearProfile = metawear_profile(f"metawear-{variant}")
        self.connection_parameters: bytes | None = None
        # Processors live in the board until removed, across connections.
        self.processors: dict[int, _Processor] = {}
        self.processor_notifications = False
        self._init_state()

    def _init_state(self) -> None:
        p = self.profile
        self.acc = _MotionState(100.0, p.acc.default_range_g)
        self.gyro = _MotionState(100.0, p.gyro.default_range_dps)

    def advertised_services(self) -> list[str]:
        return [self.profile.service_uuid]

    def gatt(self) -> GattTable:
        p = self.profile
        command_props: list[CharacteristicPropertyName] = ["write-without-response", "write"]
        return [(p.service_uuid, [(p.command_uuid, command_props), (p.notify_uuid, ["notify"])])]

    def on_write(self, uuid: str, data: bytes) -> None:
        super().on_write(uuid, data)
        p = self.profile
        cmd = mw.parse_command(data) if uuid == p.command_uuid else None
        if cmd is None:
            return
        if cmd.register == p.read_flag and not cmd.data:
            self.send_reply(p.notify_uuid, self._module_info(cmd.module))
        elif cmd.module == p.module_acc:
            self._motion_command(self.acc, "acc", cmd)
        elif cmd.module == p.module_gyro:
            self._motion_command(self.gyro, "gyro", cmd)
        elif cmd.module == p.data_processor.module and self.knobs.data_processor:
            self._processor_command(cmd)
        elif cmd.module == p.module_settings:
            if cmd.register == p.settings_connection_params and len(cmd.data) == 8:
                self.connection_parameters = cmd.data
            elif cmd.register == p.settings_battery_state | p.read_flag:
                reply = mw.build_battery_reply(p, self.knobs.battery_pct, 3950)
                self.send_reply(p.notify_uuid, reply)
        elif cmd.module == p.module_debug and cmd.register == p.debug_disconnect:
            assert self.air is not None
            self.air.loop.call_later(self.knobs.connection_interval_s, self.drop_link)

    def _module_info(self, module: int) -> bytes:
        p = self.profile
        implementations = {
            p.module_acc: p.acc.implementation,
            p.module_gyro: p.gyro.implementation,
            p.module_settings: 0,
            p.module_fusion: 0,
            p.module_debug: 0,
        }
        if self.knobs.data_processor:
            implementations[p.data_processor.module] = 0
        if module == p.data_processor.module and self.knobs.data_processor:
            # revision 2 and the processor capacity byte, as the SDK's test boards report
            extra = bytes((p.data_processor.max_processors,))
            return mw.build_module_info_reply(p, module, 0, 2, extra)
        return mw.build_module_info_reply(p, module, implementations.get(module), 1)

    def _motion_command(self, state: _MotionState, sensor: str, cmd: mw.MetaWearCommand) -> None:
        p = self.profile
        table = p.acc if sensor == "acc" else p.gyro
        config_register = p.acc.data_config if sensor == "acc" else p.gyro.config
        if cmd.register == config_register and len(cmd.data) == 2:
            parsed = (
                mw.parse_acc_config(p, cmd.data)
                if sensor == "acc"
                else mw.parse_gyro_config(p, cmd.data)
            )
            if parsed is not None:
                state.odr_hz, state.range_value = parsed
        elif cmd.register == table.power_mode and len(cmd.data) == 1:
            state.powered = cmd.data[0] != 0
        elif cmd.register == table.data_interrupt_enable and len(cmd.data) == 2:
            if cmd.data[0] & 1:
                state.interrupt = True
            if cmd.data[1] & 1:
                state.interrupt = False
        elif cmd.register in (table.data, table.packed_data) and len(cmd.data) == 1:
            signal = sensor if cmd.register == table.data else f"{sensor}_packed"
            if cmd.data[0]:
                state.subscribed.add(signal)
            else:
                state.subscribed.discard(signal)
        else:
            return
        self._update_streams(state, sensor)

    def _processor_command(self, cmd: mw.MetaWearCommand) -> None:
        """The data-processing module; only the packer and the accounter are emulated (other
        processor types get no reply, so a host times out as on a board without them)."""
        p = self.profile
        table = p.data_processor
        if cmd.register == table.add:
            spec = dp.parse_processor_add(p, bytes((cmd.module, cmd.register)) + cmd.data)
            free = sorted(set(range(table.max_processors)) - set(self.processors))
            if spec is None or not free:
                return
            candidate = {pid: proc.spec for pid, proc in self.processors.items()}
            candidate[free[0]] = spec
            if dp.resolve_chain(p, candidate, free[0]) is None:
                return
            self.processors[free[0]] = _Processor(spec)
            self.send_reply(p.notify_uuid, dp.build_processor_created(p, free[0]))
        elif cmd.register == table.notify_enable and len(cmd.data) == 2:
            proc = self.processors.get(cmd.data[0])
            if proc is not None:
                proc.notify = bool(cmd.data[1])
        elif cmd.register == table.notify and len(cmd.data) == 1:
            self.processor_notifications = bool(cmd.data[0])
        elif cmd.register == table.remove and len(cmd.data) == 1:
            self.processors.pop(cmd.data[0], None)
        elif cmd.register == table.remove_all and not cmd.data:
            self.processors.clear()
        else:
            return
        self._update_streams(self.acc, "acc")
        self._update_streams(self.gyro, "gyro")

    def _processor_chains(self, sensor: str) -> dict[str, tuple[int, dp.ProcessorChain]]:
        """Notifying processors over this sensor's signal, by stream key."""
        if not self.processor_notifications:
            return {}
        specs = {pid: proc.spec for pid, proc in self.processors.items()}
        out = {}
        for pid, proc in self.processors.items():
            chain = dp.resolve_chain(self.profile, specs, pid) if proc.notify else None
            if chain is not None and chain.signal == sensor:
                out[f"processor-{pid}"] = (pid, chain)
        return out

    def _update_streams(self, state: _MotionState, sensor: str) -> None:
        running = state.powered and state.interrupt
        chains = self._processor_chains(sensor) if running else {}
        wanted = (state.subscribed | set(chains)) if running else set()
        for signal in list(state.streams):
            if signal not in wanted:
                state.streams.pop(signal).stop()
        for signal in wanted - set(state.streams):
            if signal in chains:
                state.streams[signal] = self._processor_stream(state, *chains[signal])
            else:
                state.streams[signal] = self._stream(state, signal)

    def _stream(self, state: _MotionState, signal: str) -> _Stream:
        p = self.profile
        range_value = state.range_value
        per = mw.PACKED_SAMPLES if signal.endswith("_packed") else 1
        use_acc = signal.startswith("acc")

        def encode(tick: int, acc: FloatArray, gyr: FloatArray, mag: FloatArray) -> list[bytes]:
            return mw.encode_motion(p, signal, acc if use_acc else gyr, range_value)

        return _Stream(self, state.odr_hz, per, p.notify_uuid, encode)

    def _processor_stream(
        self, state: _MotionState, processor_id: int, chain: dp.ProcessorChain
    ) -> _Stream:
        p = self.profile
        range_value, rate = state.range_value, state.odr_hz
        tick_s = p.data_processor.tick_s
        proc = self.processors[processor_id]
        head = bytes((p.data_processor.module, p.data_processor.notify, processor_id))
        counting = any(s.kind == "accounter" for s in chain.steps) and not chain.timed

        def encode(tick: int, acc: FloatArray, gyr: FloatArray, mag: FloatArray) -> list[bytes]:
            values = acc if chain.signal == "acc" else gyr
            raw = mw.motion_counts(p, chain.signal, values, range_value)

            def prefix_at(i: int) -> int:
                if counting:
                    proc.outputs += 1
                    return proc.outputs - 1
                # the board's tick counter when the sample's output leaves (device clock)
                return math.floor((tick + i) / rate / tick_s)

            return [head + dp.encode_payload(chain, raw, prefix_at)]

        return _Stream(self, rate, chain.samples, p.notify_uuid, encode)

    def reset(self) -> None:
        # Streaming needs a connection: a dropped link leaves the board idle, unsubscribed.
        for state in (self.acc, self.gyro):
            for stream in state.streams.values():
                stream.stop()
        self._init_state()


# --- bleak backends --------------------------------------------------------------------------


class EmulatedClientBackend(BaseBleakClient):
    """A bleak client backend whose radio is an `EmulatorAir` (pass `air=` to BleakClient)."""

    def __init__(
        self,
        address_or_ble_device: BLEDevice | str,
        *,
        disconnected_callback: Callable[[], None] | None = None,
        timeout: float = 30.0,
        air: EmulatorAir | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            address_or_ble_device, disconnected_callback=disconnected_callback, timeout=timeout
        )
        peripheral: EmulatedPeripheral | None = None
        if isinstance(address_or_ble_device, BLEDevice) and isinstance(
            address_or_ble_device.details, EmulatedPeripheral
        ):
            peripheral = address_or_ble_device.details
        elif air is not None:
            peripheral = air.find(self.address)
        self._peripheral = peripheral
        self._link: EmulatedLink | None = None

    @property
    def name(self) -> str:
        return self._peripheral.name if self._peripheral is not None else self.address

    @property
    def mtu_size(self) -> int:
        return 3 + (self._peripheral.max_notification() if self._peripheral else 20)

    @property
    def is_connected(self) -> bool:
        return self._link is not None and self._link.connected

    def _interval(self) -> float:
        return self._peripheral.knobs.connection_interval_s if self._peripheral else 0.015

    async def connect(self, pair: bool, **kwargs: Any) -> None:
        peripheral = self._peripheral
        if peripheral is None:
            raise BleakDeviceNotFoundError(self.address, f"Device {self.address} not found")
        await asyncio.sleep(peripheral.knobs.connect_time_s)
        self._link = peripheral.accept(self)
        self.services = peripheral.services()

    async def disconnect(self) -> None:
        if self._link is not None and self._link.connected and self._peripheral is not None:
            await asyncio.sleep(self._interval())
            self._peripheral.central_disconnect()
        self._link = None

    def remote_disconnect(self) -> None:
        callback = self._disconnected_callback
        if callback is not None:
            asyncio.get_running_loop().call_soon(callback)

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        return None

    async def unpair(self) -> None:
        return None

    def _require_link(self) -> tuple[EmulatedLink, EmulatedPeripheral]:
        if self._link is None or not self._link.connected or self._peripheral is None:
            raise BleakError("Not connected")
        return self._link, self._peripheral

    async def read_gatt_char(
        self, characteristic: BleakGATTCharacteristic, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        _, peripheral = self._require_link()
        if "read" not in characteristic.properties:
            raise BleakError(f"characteristic {characteristic.uuid} does not support read")
        await asyncio.sleep(self._interval())
        self._require_link()
        return bytearray(peripheral.on_read(characteristic.uuid))

    async def read_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        raise BleakError("the emulator has no descriptors to read")

    async def write_gatt_char(
        self, characteristic: BleakGATTCharacteristic, data: SizedBuffer, response: bool
    ) -> None:
        _, peripheral = self._require_link()
        wanted = "write" if response else "write-without-response"
        if wanted not in characteristic.properties:
            raise BleakError(f"characteristic {characteristic.uuid} does not support {wanted}")
        # The command reaches the device half a connection interval later; with response the
        # call returns after the acknowledgement comes back.
        await asyncio.sleep(0.5 * self._interval())
        self._require_link()
        peripheral.on_write(characteristic.uuid, bytes(data))
        if response:
            await asyncio.sleep(0.5 * self._interval())

    async def write_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, data: SizedBuffer
    ) -> None:
        raise BleakError("the emulator has no descriptors to write")

    async def start_notify(
        self, characteristic: BleakGATTCharacteristic, callback: NotifyCallback, **kwargs: Any
    ) -> None:
        link, _ = self._require_link()
        props = characteristic.properties
        if "notify" not in props and "indicate" not in props:
            raise BleakError(f"characteristic {characteristic.uuid} does not notify")
        await asyncio.sleep(self._interval())  # CCCD write
        link.callbacks[characteristic.uuid] = callback

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        link, _ = self._require_link()
        await asyncio.sleep(self._interval())
        link.callbacks.pop(characteristic.uuid, None)


class EmulatedScannerBackend(BaseBleakScanner):
    """A bleak scanner backend that hears the advertising peripherals of an `EmulatorAir`."""

    def __init__(
        self,
        detection_callback: AdvertisementDataCallback | None,
        service_uuids: list[str] | None,
        scanning_mode: str = "active",
        *,
        air: EmulatorAir | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(detection_callback, service_uuids)
        if air is None:
            raise BleakError("the emulated scanner needs air=EmulatorAir")
        self._air = air
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.seen_devices = {}
        self._task = asyncio.create_task(self._listen())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _listen(self) -> None:
        interval = min((p.knobs.advertising_interval_s for p in self._air.peripherals), default=0.1)
        while True:
            for p in self._air.peripherals:
                if not p.advertising():
                    continue
                adv = p.advertisement()
                if not self.is_allowed_uuid(adv.service_uuids):
                    continue
                device = self.create_or_update_device(p.address, p.address, p.name, p, adv)
                self.call_detection_callbacks(device, adv)
            await asyncio.sleep(interval)


class EmulatorTransport:
    """The collector's BLE transport onto emulated peripherals (bleak's own client and scanner)."""

    def __init__(self, air: EmulatorAir) -> None:
        self.air = air

    async def discover(self, timeout: float) -> list[tuple[BLEDevice, AdvertisementData]]:
        self.air.start()
        scanner = BleakScanner(backend=EmulatedScannerBackend, air=self.air)
        async with scanner:
            await asyncio.sleep(timeout)
        return list(scanner.discovered_devices_and_advertisement_data.values())

    def make_client(
        self, device: BLEDevice, disconnected_callback: Callable[[BleakClient], None]
    ) -> BleakClient:
        return BleakClient(
            device, disconnected_callback, backend=EmulatedClientBackend, air=self.air
        )
