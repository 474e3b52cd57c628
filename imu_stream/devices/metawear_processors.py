"""MetaWear data processors: the packer and the accounter, as the MetaWear SDK drives them.

The firmware's data-processing module turns a sensor signal into new notifications. Two of its
processors matter for streaming (SDK processor/cpp/dataprocessor.cpp, accounter.cpp, packer.cpp
and the SDK's own tests, test/test_dataprocessor.py):

- the **accounter** prefixes each output with a little-endian counter of `length` bytes (the
  SDK fixes 4): in time mode the board's tick counter, one tick every 48/32768 s (the SDK's
  `TICK_TIME_STEP`), taken when the processor emits — after the last sample it carries; in
  count mode a notification count;
- the **packer** puts `count` outputs of its input into one notification.

A processor is added with `[09 02 src_module src_register src_id src_byte type config...]`,
the board answers `[09 02 id]`, and its output arrives as `[09 03 id payload]` once
`[09 07 id 01]` and `[09 03 01]` are written. Chained, an accounter over a packer gives one tick
for the whole notification; a packer over an accounter, one tick per packed output (only for
inputs of up to 4 bytes: a source's length field has 3 bits).
Everything here is pure; ids, registers, modes and the tick come from the firmware profile.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from imu_stream.devices.profiles import MetaWearProfile

SAMPLE_BYTES = 6  # int16 x, y, z of an accelerometer or gyroscope sample
HEADER_BYTES = 3  # [09 03 id]
MAX_CHAIN = 8  # processors between a notification and its sensor signal (a loop guard)


@dataclass(frozen=True, slots=True)
class DataSource:
    """What a processor reads: a sensor signal or another processor's output."""

    module: int
    register: int
    source_id: int  # the processor id, or the profile's no_source_id for a sensor signal
    length: int  # bytes of one output (for a packer: one output of its input, as the SDK says)
    offset: int = 0

    @property
    def data_byte(self) -> int:
        # 3 bits of length: an accounter's 10-byte acc/gyro output cannot feed another processor
        if not 1 <= self.length <= 8 or not 0 <= self.offset < 32:
            raise ValueError(f"no source byte for {self.length} bytes at offset {self.offset}")
        return (self.length - 1) << 5 | self.offset


@dataclass(frozen=True, slots=True)
class ProcessorSpec:
    """One processor as added to the board: its input, its type and its configuration."""

    source: DataSource
    type: int
    config: bytes


@dataclass(frozen=True, slots=True)
class ProcessorCreated:
    """The board's reply to an add: `[09 02 id]`."""

    processor_id: int


@dataclass(frozen=True, slots=True)
class ChainStep:
    kind: str  # "packer" | "accounter"
    size: int  # packer: outputs per notification; accounter: prefix bytes
    mode: int = 0  # accounter: time or count mode


@dataclass(frozen=True, slots=True)
class ProcessorChain:
    """A processor's output traced back to the accelerometer or gyroscope signal it carries."""

    signal: str  # "acc" | "gyro"
    steps: tuple[ChainStep, ...]  # from the sensor outwards
    time_mode: int = 1

    @property
    def samples(self) -> int:
        """Samples in one notification."""
        return math.prod(s.size for s in self.steps if s.kind == "packer")

    @property
    def payload_bytes(self) -> int:
        size = SAMPLE_BYTES
        for step in self.steps:
            size = size * step.size if step.kind == "packer" else size + step.size
        return size

    @property
    def timed(self) -> bool:
        """Whether the notification carries board ticks (an accounter in time mode)."""
        return any(s.kind == "accounter" and s.mode == self.time_mode for s in self.steps)

    @property
    def tick_bytes(self) -> int:
        return next((s.size for s in self.steps if s.kind == "accounter"), 0)


# --- commands ---------------------------------------------------------------------------------


def motion_source(profile: MetaWearProfile, signal: str) -> DataSource:
    """The plain accelerometer ("acc") or gyroscope ("gyro") data signal as a processor input."""
    dp = profile.data_processor
    if signal == "acc":
        return DataSource(profile.module_acc, profile.acc.data, dp.no_source_id, SAMPLE_BYTES)
    if signal == "gyro":
        return DataSource(profile.module_gyro, profile.gyro.data, dp.no_source_id, SAMPLE_BYTES)
    raise ValueError(f"{signal!r}: only the plain acc and gyro signals feed processors here")


def processor_source(profile: MetaWearProfile, processor_id: int, length: int) -> DataSource:
    dp = profile.data_processor
    return DataSource(dp.module, dp.notify, processor_id, length)


def accounter_spec(
    profile: MetaWearProfile, source: DataSource, *, time: bool = True
) -> ProcessorSpec:
    """An accounter as `mbl_mw_dataprocessor_accounter_create` (time) or `…_create_count`."""
    dp = profile.data_processor
    mode = dp.accounter_time_mode if time else dp.accounter_count_mode
    config = bytes((mode | (dp.accounter_length - 1) << 4, dp.accounter_prescale))
    return ProcessorSpec(source, dp.accounter, config)


def packer_spec(profile: MetaWearProfile, source: DataSource, count: int) -> ProcessorSpec:
    """A packer as `mbl_mw_dataprocessor_packer_create`: COUNT outputs per notification."""
    if not 1 <= count <= 32 or not 1 <= source.length <= 32:
        raise ValueError(f"packer of {count} × {source.length} bytes is not configurable")
    return ProcessorSpec(
        source, profile.data_processor.packer, bytes((source.length - 1, count - 1))
    )


def accounter_pack_count(profile: MetaWearProfile) -> int:
    """The most samples an accounter-over-packer notification can carry (2 in 20 bytes)."""
    dp = profile.data_processor
    room = profile.max_notification_bytes - HEADER_BYTES - dp.accounter_length
    # The SDK's packer check: count × length + 3 < the 20-byte BLE packet.
    sdk_limit = (profile.max_notification_bytes - HEADER_BYTES - 1) // SAMPLE_BYTES
    return max(1, min(room // SAMPLE_BYTES, sdk_limit))


def build_processor_add(profile: MetaWearProfile, spec: ProcessorSpec) -> bytes:
    dp = profile.data_processor
    src = spec.source
    head = (dp.module, dp.add, src.module, src.register, src.source_id, src.data_byte, spec.type)
    return bytes(head) + spec.config


def parse_processor_add(profile: MetaWearProfile, data: bytes) -> ProcessorSpec | None:
    """An add command back to its spec; None if it is not one (or has no configuration)."""
    dp = profile.data_processor
    if len(data) < 8 or data[0] != dp.module or data[1] != dp.add:
        return None
    length, offset = (data[5] >> 5) + 1, data[5] & 0x1F
    return ProcessorSpec(DataSource(data[2], data[3], data[4], length, offset), data[6], data[7:])


def build_processor_notify(profile: MetaWearProfile, processor_id: int, enable: bool) -> bytes:
    dp = profile.data_processor
    return bytes((dp.module, dp.notify_enable, processor_id, 1 if enable else 0))


def build_processor_notifications(profile: MetaWearProfile, enable: bool = True) -> bytes:
    """`[09 03 01]`: the module's notifications on (the SDK sends it after each enable)."""
    dp = profile.data_processor
    return bytes((dp.module, dp.notify, 1 if enable else 0))


def build_processor_remove(profile: MetaWearProfile, processor_id: int) -> bytes:
    dp = profile.data_processor
    return bytes((dp.module, dp.remove, processor_id))


def build_processor_remove_all(profile: MetaWearProfile) -> bytes:
    dp = profile.data_processor
    return bytes((dp.module, dp.remove_all))


def build_processor_created(profile: MetaWearProfile, processor_id: int) -> bytes:
    """The board's reply to an add (used by the device emulator)."""
    dp = profile.data_processor
    return bytes((dp.module, dp.add, processor_id))


# --- chains -----------------------------------------------------------------------------------


def _step(profile: MetaWearProfile, spec: ProcessorSpec) -> ChainStep | None:
    dp = profile.data_processor
    if len(spec.config) != 2:
        return None
    if spec.type == dp.packer:
        return ChainStep("packer", (spec.config[1] & 0x1F) + 1)
    if spec.type == dp.accounter:
        mode = spec.config[0] & 0x0F
        if mode not in (dp.accounter_time_mode, dp.accounter_count_mode):
            return None
        return ChainStep("accounter", ((spec.config[0] >> 4) & 0x03) + 1, mode)
    return None


def resolve_chain(
    profile: MetaWearProfile, processors: Mapping[int, ProcessorSpec], processor_id: int
) -> ProcessorChain | None:
    """The chain behind a processor's notifications, or None when it is not a packer/accounter
    chain over the whole plain acc or gyro signal (at most one accounter, fitting 20 bytes)."""
    dp = profile.data_processor
    steps: list[ChainStep] = []
    pid = processor_id
    for _ in range(MAX_CHAIN):
        spec = processors.get(pid)
        if spec is None:
            return None
        step = _step(profile, spec)
        if step is None:
            return None
        steps.append(step)
        src = spec.source
        if (src.module, src.register) == (dp.module, dp.notify):
            pid = src.source_id
            continue
        roots = {
            (profile.module_acc, profile.acc.data): "acc",
            (profile.module_gyro, profile.gyro.data): "gyro",
        }
        signal = roots.get((src.module, src.register))
        if signal is None or src.length != SAMPLE_BYTES or src.offset != 0:
            return None
        chain = ProcessorChain(signal, tuple(reversed(steps)), dp.accounter_time_mode)
        if sum(s.kind == "accounter" for s in chain.steps) > 1:
            return None
        if not _packer_lengths_match(chain, processors, processor_id):
            return None
        if HEADER_BYTES + chain.payload_bytes > profile.max_notification_bytes:
            return None
        return chain
    return None


def _packer_lengths_match(
    chain: ProcessorChain, processors: Mapping[int, ProcessorSpec], processor_id: int
) -> bool:
    """A packer's configured length must be the length of one output of its input."""
    size = SAMPLE_BYTES
    specs: list[ProcessorSpec] = []
    pid = processor_id
    for _ in chain.steps:
        spec = processors[pid]
        specs.append(spec)
        pid = spec.source.source_id
    for step, spec in zip(chain.steps, reversed(specs), strict=True):
        if step.kind == "packer":
            if (spec.config[0] & 0x1F) + 1 != size:
                return False
            size *= step.size
        else:
            size += step.size
    return True


def split_payload(chain: ProcessorChain, payload: bytes) -> list[tuple[int | None, bytes]] | None:
    """(time-mode prefix or None, raw samples) groups of one notification, in sample order;
    None if the payload does not have the chain's length."""
    if len(payload) != chain.payload_bytes:
        return None
    groups = _split(chain, len(chain.steps), payload)
    merged: list[tuple[int | None, bytes]] = []
    for prefix, raw in groups:
        if merged and prefix is None and merged[-1][0] is None:
            merged[-1] = (None, merged[-1][1] + raw)
        else:
            merged.append((prefix, raw))
    return merged


def _split(chain: ProcessorChain, depth: int, data: bytes) -> list[tuple[int | None, bytes]]:
    if depth == 0:
        return [(None, data)]
    step = chain.steps[depth - 1]
    if step.kind == "accounter":
        prefix = int.from_bytes(data[: step.size], "little")
        inner = _split(chain, depth - 1, data[step.size :])
        if step.mode != chain.time_mode:
            return inner
        return [(prefix, b"".join(raw for _, raw in inner))]
    part = len(data) // step.size
    out: list[tuple[int | None, bytes]] = []
    for i in range(step.size):
        out.extend(_split(chain, depth - 1, data[i * part : (i + 1) * part]))
    return out


def encode_payload(
    chain: ProcessorChain, raw_samples: bytes, prefix_at: Callable[[int], int]
) -> bytes:
    """The board side: the payload of one notification from `chain.samples` raw samples.

    `prefix_at(i)` gives an accounter's prefix when it emits after sample i of the notification
    (the tick counter then, or its notification count)."""
    if len(raw_samples) != SAMPLE_BYTES * chain.samples:
        raise ValueError(f"a notification of this chain carries {chain.samples} samples")
    return _encode(chain, len(chain.steps), raw_samples, 0, prefix_at)


def _encode(
    chain: ProcessorChain, depth: int, raw: bytes, first: int, prefix_at: Callable[[int], int]
) -> bytes:
    if depth == 0:
        return raw
    step = chain.steps[depth - 1]
    n = len(raw) // SAMPLE_BYTES
    if step.kind == "accounter":
        prefix = prefix_at(first + n - 1) % (1 << (8 * step.size))
        return prefix.to_bytes(step.size, "little") + _encode(
            chain, depth - 1, raw, first, prefix_at
        )
    per = n // step.size
    parts = []
    for i in range(step.size):
        chunk = raw[i * per * SAMPLE_BYTES : (i + 1) * per * SAMPLE_BYTES]
        parts.append(_encode(chain, depth - 1, chunk, first + i * per, prefix_at))
    return b"".join(parts)


def tick_ms(profile: MetaWearProfile, tick: int) -> float:
    """Board ticks → ms (exact in binary: a tick is 375/256 ms)."""
    return tick * profile.data_processor.tick_s * 1000.0


def tick_wrap_ms(profile: MetaWearProfile, chain: ProcessorChain) -> float:
    """Where the chain's tick prefix wraps around, in ms."""
    return tick_ms(profile, 1 << (8 * chain.tick_bytes))
