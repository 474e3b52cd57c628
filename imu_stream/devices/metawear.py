"""MbientLab MetaWear protocol (MetaMotion boards): command builders and notification decoding.

Every packet, in both directions, is `[module, register, data...]`; a register with bit 7 set is
a read (and its reply). Accelerometer and gyroscope data are int16 counts scaled by the current
range (LSB per g, LSB per deg/s); "packed" notifications carry three samples. Sensor-fusion
outputs are float32. Module/register ids, code tables and scales come from the firmware profile.
Everything here is pure.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from imu_stream.devices import metawear_processors as dp
from imu_stream.devices.common import DecodeStats
from imu_stream.devices.profiles import MetaWearProfile, metawear_profile
from imu_stream.records import STANDARD_GRAVITY, FloatArray, SampleBlock

PACKED_SAMPLES = 3
SIGNALS: tuple[str, ...] = (
    "acc",
    "acc_packed",
    "gyro",
    "gyro_packed",
    "fusion_corrected_acc",
    "fusion_corrected_gyro",
    "fusion_corrected_mag",
    "fusion_quaternion",
    "fusion_euler",
    "fusion_gravity",
    "fusion_linear_acc",
)
# Sensor-fusion output → (float count, trailing accuracy byte, SampleBlock field)
_FUSION_LAYOUT: dict[str, tuple[int, bool, str]] = {
    "fusion_corrected_acc": (3, True, "acc"),
    "fusion_corrected_gyro": (3, True, "gyro"),
    "fusion_corrected_mag": (3, True, "mag"),
    "fusion_quaternion": (4, False, "quaternion"),
    "fusion_euler": (4, False, "euler_deg"),
    "fusion_gravity": (3, False, "gravity"),
    "fusion_linear_acc": (3, False, "linear_acc"),
}
# Bit of each output in the sensor-fusion output-enable mask (SDK MblMwSensorFusionData order).
FUSION_OUTPUT_BITS: dict[str, int] = {
    "fusion_corrected_acc": 0,
    "fusion_corrected_gyro": 1,
    "fusion_corrected_mag": 2,
    "fusion_quaternion": 3,
    "fusion_euler": 4,
    "fusion_gravity": 5,
    "fusion_linear_acc": 6,
}


@dataclass(frozen=True, slots=True)
class ModuleInfo:
    """Reply to a module-info read `[module, 0x80]`; implementation None = module absent."""

    module: int
    implementation: int | None
    revision: int | None


@dataclass(frozen=True, slots=True)
class BatteryState:
    charge_pct: int
    voltage_mv: int


@dataclass(frozen=True, slots=True)
class MetaWearCommand:
    module: int
    register: int
    data: bytes

    @property
    def is_read(self) -> bool:
        return bool(self.register & 0x80)


ProcessorCreated = dp.ProcessorCreated
MetaWearMessage = SampleBlock | ModuleInfo | BatteryState | ProcessorCreated


def _profile(profile: MetaWearProfile | None) -> MetaWearProfile:
    return profile if profile is not None else metawear_profile()


# --- configuration codes ----------------------------------------------------------------------


def acc_odr_code(profile: MetaWearProfile, odr_hz: float) -> int:
    """Accelerometer ODR code of the closest supported rate (as the SDK rounds)."""
    table = profile.acc.odr_hz
    index = int(np.argmin([abs(f - odr_hz) for f in table]))
    return index + 1


def acc_config_bytes(profile: MetaWearProfile, odr_hz: float, range_g: int) -> bytes:
    acc = profile.acc
    if range_g not in acc.range_codes:
        raise ValueError(f"accelerometer range ±{range_g} g not in {sorted(acc.range_codes)}")
    code = acc_odr_code(profile, odr_hz)
    low = acc.odr_hz[code - 1] < acc.low_odr_hz
    bandwidth = acc.bandwidth_below_low_odr if low else acc.bandwidth
    bit7 = acc.bit7_below_low_odr if low else acc.bit7
    return bytes((code | (bandwidth << 4) | (bit7 << 7), acc.range_codes[range_g]))


def parse_acc_config(profile: MetaWearProfile, data: bytes) -> tuple[float, int] | None:
    """`[acc_conf, acc_range]` → (odr_hz, range_g), None if the codes are not in the profile."""
    if len(data) != 2:
        return None
    code = data[0] & 0x0F
    by_code = {c: g for g, c in profile.acc.range_codes.items()}
    if not 1 <= code <= len(profile.acc.odr_hz) or (data[1] & 0x0F) not in by_code:
        return None
    return profile.acc.odr_hz[code - 1], by_code[data[1] & 0x0F]


def gyro_config_bytes(profile: MetaWearProfile, odr_hz: float, range_dps: int) -> bytes:
    gyro = profile.gyro
    if range_dps not in gyro.range_codes:
        raise ValueError(f"gyro range ±{range_dps} deg/s not in {sorted(gyro.range_codes)}")
    rate = min(gyro.odr_codes, key=lambda r: abs(r - odr_hz))
    return bytes((gyro.odr_codes[rate] | (gyro.bandwidth << 4), gyro.range_codes[range_dps]))


def parse_gyro_config(profile: MetaWearProfile, data: bytes) -> tuple[float, int] | None:
    if len(data) != 2:
        return None
    by_odr = {c: r for r, c in profile.gyro.odr_codes.items()}
    by_range = {c: r for r, c in profile.gyro.range_codes.items()}
    odr, rng = data[0] & 0x0F, data[1] & 0x07
    if odr not in by_odr or rng not in by_range:
        return None
    return float(by_odr[odr]), by_range[rng]


# --- commands (client side) -------------------------------------------------------------------


def build_acc_config(profile: MetaWearProfile, odr_hz: float, range_g: int) -> bytes:
    return bytes((profile.module_acc, profile.acc.data_config)) + acc_config_bytes(
        profile, odr_hz, range_g
    )


def build_gyro_config(profile: MetaWearProfile, odr_hz: float, range_dps: int) -> bytes:
    return bytes((profile.module_gyro, profile.gyro.config)) + gyro_config_bytes(
        profile, odr_hz, range_dps
    )


def signal_register(profile: MetaWearProfile, signal: str) -> tuple[int, int]:
    """(module, register) of a data signal."""
    if signal == "acc":
        return profile.module_acc, profile.acc.data
    if signal == "acc_packed":
        return profile.module_acc, profile.acc.packed_data
    if signal == "gyro":
        return profile.module_gyro, profile.gyro.data
    if signal == "gyro_packed":
        return profile.module_gyro, profile.gyro.packed_data
    if signal in _FUSION_LAYOUT:
        return profile.module_fusion, int(getattr(profile.fusion, signal.removeprefix("fusion_")))
    raise ValueError(f"unknown MetaWear signal {signal!r}")


def build_subscribe(profile: MetaWearProfile, signal: str, enable: bool = True) -> bytes:
    module, register = signal_register(profile, signal)
    return bytes((module, register, 1 if enable else 0))


def build_acc_sampling(profile: MetaWearProfile, enable: bool) -> bytes:
    return bytes((profile.module_acc, profile.acc.data_interrupt_enable, *_mask(enable)))


def build_gyro_sampling(profile: MetaWearProfile, enable: bool) -> bytes:
    return bytes((profile.module_gyro, profile.gyro.data_interrupt_enable, *_mask(enable)))


def _mask(enable: bool) -> tuple[int, int]:
    # (set mask, clear mask) of the interrupt-enable registers
    return (1, 0) if enable else (0, 1)


def build_acc_start(profile: MetaWearProfile, odr_hz: float) -> bytes:
    low = profile.acc.odr_hz[acc_odr_code(profile, odr_hz) - 1] < profile.acc.low_odr_hz
    mode = profile.acc.start_power_mode_low_odr if low else profile.acc.start_power_mode
    return bytes((profile.module_acc, profile.acc.power_mode, mode))


def build_acc_stop(profile: MetaWearProfile) -> bytes:
    return bytes((profile.module_acc, profile.acc.power_mode, 0))


def build_gyro_start(profile: MetaWearProfile) -> bytes:
    return bytes((profile.module_gyro, profile.gyro.power_mode, 1))


def build_gyro_stop(profile: MetaWearProfile) -> bytes:
    return bytes((profile.module_gyro, profile.gyro.power_mode, 0))


def build_fusion_mode(
    profile: MetaWearProfile, mode: int, acc_range: int, gyro_range: int
) -> bytes:
    """Sensor-fusion MODE register; ranges are SDK enum indices (gyro shifted by one, as SDK)."""
    ranges = acc_range | (gyro_range + 1) << 4
    return bytes((profile.module_fusion, profile.fusion.mode, mode, ranges))


def build_fusion_outputs(profile: MetaWearProfile, outputs: tuple[str, ...]) -> bytes:
    mask = 0
    for name in outputs:
        mask |= 1 << FUSION_OUTPUT_BITS[name]
    return bytes((profile.module_fusion, profile.fusion.output_enable, mask, 0))


def build_fusion_start(profile: MetaWearProfile, start: bool = True) -> bytes:
    return bytes((profile.module_fusion, profile.fusion.enable, 1 if start else 0))


def build_connection_parameters(
    profile: MetaWearProfile,
    min_interval_ms: float,
    max_interval_ms: float,
    latency: int,
    timeout_ms: float,
) -> bytes:
    """Settings CONNECTION_PARAMS: intervals in 1.25 ms units, supervision timeout in 10 ms."""
    values = (
        round(min_interval_ms / 1.25),
        round(max_interval_ms / 1.25),
        int(latency),
        round(timeout_ms / 10.0),
    )
    return bytes((profile.module_settings, profile.settings_connection_params)) + struct.pack(
        "<4H", *values
    )


def build_battery_read(profile: MetaWearProfile) -> bytes:
    return bytes((profile.module_settings, profile.settings_battery_state | profile.read_flag))


def build_module_info_read(profile: MetaWearProfile, module: int) -> bytes:
    return bytes((module, profile.read_flag))


def build_disconnect(profile: MetaWearProfile) -> bytes:
    return bytes((profile.module_debug, profile.debug_disconnect))


def streaming_commands(
    profile: MetaWearProfile,
    rate_hz: float,
    acc_range_g: int,
    gyro_range_dps: int,
    packed: bool,
) -> list[bytes]:
    """Configure, subscribe, enable and start accelerometer + gyroscope streaming (SDK order)."""
    acc_signal, gyro_signal = ("acc_packed", "gyro_packed") if packed else ("acc", "gyro")
    return [
        *configure_commands(profile, rate_hz, acc_range_g, gyro_range_dps),
        build_subscribe(profile, acc_signal),
        build_subscribe(profile, gyro_signal),
        *start_commands(profile, rate_hz),
    ]


def configure_commands(
    profile: MetaWearProfile, rate_hz: float, acc_range_g: int, gyro_range_dps: int
) -> list[bytes]:
    """Accelerometer and gyroscope rate and range."""
    return [
        build_acc_config(profile, rate_hz, acc_range_g),
        build_gyro_config(profile, rate_hz, gyro_range_dps),
    ]


def start_commands(profile: MetaWearProfile, rate_hz: float) -> list[bytes]:
    """Enable sampling and start both sensors (after their subscriptions or processors)."""
    return [
        build_acc_sampling(profile, True),
        build_gyro_sampling(profile, True),
        build_acc_start(profile, rate_hz),
        build_gyro_start(profile),
    ]


def stop_commands(profile: MetaWearProfile, packed: bool) -> list[bytes]:
    acc_signal, gyro_signal = ("acc_packed", "gyro_packed") if packed else ("acc", "gyro")
    return [
        build_acc_stop(profile),
        build_gyro_stop(profile),
        build_acc_sampling(profile, False),
        build_gyro_sampling(profile, False),
        build_subscribe(profile, acc_signal, False),
        build_subscribe(profile, gyro_signal, False),
    ]


def parse_command(data: bytes) -> MetaWearCommand | None:
    if len(data) < 2:
        return None
    return MetaWearCommand(data[0], data[1], bytes(data[2:]))


# --- notifications (board side, used by the device emulator and the tests) --------------------


def _counts(values: FloatArray, lsb: float) -> bytes:
    # A handful of values per notification: plain Python beats numpy's call overhead here.
    flat = np.asarray(values, dtype=np.float64).ravel().tolist()
    counts = [min(32767, max(-32768, round(v * lsb))) for v in flat]
    return struct.pack(f"<{len(counts)}h", *counts)


def motion_counts(
    profile: MetaWearProfile, signal: str, values: FloatArray, range_value: int
) -> bytes:
    """(N, 3) samples as the sensor's int16 counts: acc in m/s² (range in g), gyro in deg/s."""
    if signal.startswith("acc"):
        return _counts(values / STANDARD_GRAVITY, profile.acc.lsb_per_g[range_value])
    if signal.startswith("gyro"):
        return _counts(values, profile.gyro.lsb_per_dps[range_value])
    raise ValueError(f"{signal!r} is not an accelerometer or gyroscope signal")


def encode_motion(
    profile: MetaWearProfile,
    signal: str,
    values: FloatArray,
    range_value: int,
) -> list[bytes]:
    """Notifications for (N, 3) samples: acc in m/s² (range in g), gyro in deg/s (range in dps).

    Plain signals give one notification per sample; packed ones one per three samples (N must be
    a multiple of three). Values beyond the range saturate like the sensor.
    """
    module, register = signal_register(profile, signal)
    raw = motion_counts(profile, signal, values, range_value)
    per = PACKED_SAMPLES if signal.endswith("_packed") else 1
    n = len(raw) // 6
    if n % per:
        raise ValueError(f"{signal} needs a multiple of {per} samples, got {n}")
    head = bytes((module, register))
    step = 6 * per
    return [head + raw[i : i + step] for i in range(0, len(raw), step)]


def encode_fusion(
    profile: MetaWearProfile, signal: str, values: FloatArray, accuracy: int = 3
) -> bytes:
    """One sensor-fusion notification from SI values (corrected acc in m/s², converted to mg)."""
    count, has_accuracy, _ = _FUSION_LAYOUT[signal]
    vec = np.asarray(values, dtype=np.float64).reshape(count)
    if signal == "fusion_corrected_acc":
        vec = vec / profile.fusion.corrected_acc_scale
    module, register = signal_register(profile, signal)
    body = vec.astype("<f4").tobytes() + (bytes((accuracy,)) if has_accuracy else b"")
    return bytes((module, register)) + body


def build_module_info_reply(
    profile: MetaWearProfile,
    module: int,
    implementation: int | None,
    revision: int = 0,
    extra: bytes = b"",
) -> bytes:
    head = bytes((module, profile.read_flag))
    return head if implementation is None else head + bytes((implementation, revision)) + extra


def build_battery_reply(profile: MetaWearProfile, charge_pct: int, voltage_mv: int) -> bytes:
    register = profile.settings_battery_state | profile.read_flag
    return bytes((profile.module_settings, register, charge_pct)) + struct.pack("<H", voltage_mv)


# --- decoding ---------------------------------------------------------------------------------


class MetaWearDecoder:
    """Decode MetaWear notifications to SampleBlocks (SI units) and replies.

    The accelerometer and gyroscope scales depend on the configured range: pass the ranges in use,
    or feed the configuration commands written to the board to `observe_command`.
    """

    def __init__(
        self,
        profile: MetaWearProfile | None = None,
        *,
        acc_range_g: int | None = None,
        gyro_range_dps: int | None = None,
    ) -> None:
        p = _profile(profile)
        self.profile = p
        self.stats = DecodeStats()
        self.acc_range_g = acc_range_g if acc_range_g is not None else p.acc.default_range_g
        self.gyro_range_dps = (
            gyro_range_dps if gyro_range_dps is not None else p.gyro.default_range_dps
        )
        if self.acc_range_g not in p.acc.lsb_per_g:
            raise ValueError(f"accelerometer range ±{self.acc_range_g} g not supported")
        if self.gyro_range_dps not in p.gyro.lsb_per_dps:
            raise ValueError(f"gyro range ±{self.gyro_range_dps} deg/s not supported")
        fusion = p.fusion
        # register → (signal, per-sample bytes, samples per notification) for the fixed layouts
        self._motion: dict[tuple[int, int], tuple[str, int]] = {
            (p.module_acc, p.acc.data): ("acc", 1),
            (p.module_acc, p.acc.packed_data): ("acc_packed", PACKED_SAMPLES),
            (p.module_gyro, p.gyro.data): ("gyro", 1),
            (p.module_gyro, p.gyro.packed_data): ("gyro_packed", PACKED_SAMPLES),
        }
        self._fusion: dict[int, str] = {
            int(getattr(fusion, name.removeprefix("fusion_"))): name for name in _FUSION_LAYOUT
        }
        self._processors: dict[int, dp.ProcessorSpec] = {}
        # The add awaiting the board's id: hosts add one processor at a time and give up on
        # one that got no reply (the SDK times out), so only the latest add can be answered.
        self._pending: dp.ProcessorSpec | None = None
        self._chains: dict[int, dp.ProcessorChain | None] = {}

    # --- data processors --------------------------------------------------------------------

    def register_processor(self, processor_id: int, spec: dp.ProcessorSpec) -> None:
        """Declare a processor the board has (as its add reply would)."""
        self._processors[processor_id] = spec
        self._chains.clear()

    def processor_chain(self, processor_id: int) -> dp.ProcessorChain | None:
        """The acc/gyro chain behind a processor's notifications, None if not decodable."""
        if processor_id not in self._chains:
            self._chains[processor_id] = dp.resolve_chain(
                self.profile, self._processors, processor_id
            )
        return self._chains[processor_id]

    def processor_ids(self) -> list[int]:
        return sorted(self._processors)

    def _observe_processor_command(self, data: bytes) -> bool:
        table = self.profile.data_processor
        spec = dp.parse_processor_add(self.profile, data)
        if spec is not None:
            self._pending = spec
            return True
        if len(data) == 3 and data[1] == table.remove:
            self._processors.pop(data[2], None)
            self._chains.clear()
            return True
        if len(data) == 2 and data[1] == table.remove_all:
            self._processors.clear()
            self._pending = None
            self._chains.clear()
            return True
        return False

    def observe_command(self, data: bytes) -> bool:
        """Track range changes from a command written to the board; True if it was a config."""
        p = self.profile
        if data[:1] == bytes((p.data_processor.module,)) and self._observe_processor_command(data):
            return True
        if len(data) != 4:
            return False
        if data[0] == p.module_acc and data[1] == p.acc.data_config:
            parsed = parse_acc_config(p, data[2:])
            if parsed is not None:
                self.acc_range_g = parsed[1]
                return True
        if data[0] == p.module_gyro and data[1] == p.gyro.config:
            parsed = parse_gyro_config(p, data[2:])
            if parsed is not None:
                self.gyro_range_dps = parsed[1]
                return True
        return False

    def feed(self, packet: bytes) -> list[MetaWearMessage]:
        stats = self.stats
        stats.packets += 1
        if len(packet) < 2:
            stats.truncated += 1
            return []
        key = (packet[0], packet[1])
        motion = self._motion.get(key)
        if motion is not None:
            return self._motion_block(motion[0], motion[1], packet)
        p = self.profile
        if key[0] == p.data_processor.module:
            if key[1] == p.data_processor.notify and len(packet) > 3:
                return self._processor_block(packet)
            if key[1] == p.data_processor.add and len(packet) == 3:
                if self._pending is not None:
                    self.register_processor(packet[2], self._pending)
                    self._pending = None
                return self._reply(ProcessorCreated(packet[2]))
        if key[0] == p.module_fusion and key[1] in self._fusion:
            return self._fusion_block(self._fusion[key[1]], packet)
        if key[1] == p.read_flag:
            if len(packet) == 2:
                return self._reply(ModuleInfo(key[0], None, None))
            if len(packet) >= 4:
                return self._reply(ModuleInfo(key[0], packet[2], packet[3]))
            stats.truncated += 1
            return []
        if key == (p.module_settings, p.settings_battery_state | p.read_flag):
            if len(packet) != 5:
                stats.truncated += len(packet) < 5
                stats.malformed += len(packet) > 5
                return []
            charge = packet[2]
            if charge > 100:
                stats.malformed += 1
                return []
            return self._reply(BatteryState(charge, struct.unpack_from("<H", packet, 3)[0]))
        stats.unknown += 1
        return []

    def _reply(self, reply: ModuleInfo | BatteryState | ProcessorCreated) -> list[MetaWearMessage]:
        self.stats.decoded += 1
        return [reply]

    def _motion_block(self, signal: str, per: int, packet: bytes) -> list[MetaWearMessage]:
        stats = self.stats
        expected = 2 + 6 * per
        if len(packet) != expected:
            if len(packet) < expected:
                stats.truncated += 1
            else:
                stats.malformed += 1
            return []
        counts = np.frombuffer(packet, dtype="<i2", offset=2).astype(np.float64).reshape(per, 3)
        block = SampleBlock(kind=signal)
        if signal.startswith("acc"):
            block.acc = counts * (STANDARD_GRAVITY / self.profile.acc.lsb_per_g[self.acc_range_g])
        else:
            block.gyro = counts / self.profile.gyro.lsb_per_dps[self.gyro_range_dps]
        stats.decoded += 1
        stats.samples += per
        return [block]

    def _processor_block(self, packet: bytes) -> list[MetaWearMessage]:
        stats = self.stats
        chain = self.processor_chain(packet[2])
        if chain is None:
            stats.unknown += 1
            return []
        groups = dp.split_payload(chain, packet[3:])
        if groups is None:
            if len(packet) - 3 < chain.payload_bytes:
                stats.truncated += 1
            else:
                stats.malformed += 1
            return []
        if chain.signal == "acc":
            scale = STANDARD_GRAVITY / self.profile.acc.lsb_per_g[self.acc_range_g]
        else:
            scale = 1.0 / self.profile.gyro.lsb_per_dps[self.gyro_range_dps]
        kind = f"{chain.signal}_accounter" if chain.timed else f"{chain.signal}_packer"
        out: list[MetaWearMessage] = []
        for tick, raw in groups:
            values = np.frombuffer(raw, dtype="<i2").astype(np.float64).reshape(-1, 3) * scale
            block = SampleBlock(kind=kind)
            setattr(block, chain.signal, values)
            if tick is not None:
                block.device_timestamp_ms = dp.tick_ms(self.profile, tick)
            out.append(block)
        stats.decoded += 1
        stats.samples += chain.samples
        return out

    def _fusion_block(self, signal: str, packet: bytes) -> list[MetaWearMessage]:
        stats = self.stats
        count, has_accuracy, field = _FUSION_LAYOUT[signal]
        expected = 2 + 4 * count + (1 if has_accuracy else 0)
        if len(packet) != expected:
            if len(packet) < expected:
                stats.truncated += 1
            else:
                stats.malformed += 1
            return []
        raw = np.frombuffer(packet, dtype="<f4", count=count, offset=2)
        if not np.isfinite(raw).all():  # checked before the cast: NaN payloads would warn there
            stats.malformed += 1
            return []
        values = raw.astype(np.float64)
        if signal == "fusion_corrected_acc":
            values = values * self.profile.fusion.corrected_acc_scale
        block = SampleBlock(kind=signal)
        setattr(block, field, values.reshape(1, count))
        stats.decoded += 1
        stats.samples += 1
        return [block]
