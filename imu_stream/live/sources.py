"""Where a live session's samples come from: BLE sensors, the simulator, or a replay.

Every source yields `StampedBlock`s (decoded samples with their session-clock times),
`SensorStatus` and `SensorGap` events, in arrival order.

- `BleSource`: the BLE collector (`sources/ble.py`) plus the clock model
  (`core.clock.StreamClock`, the same placement `SessionRecorder` does) that stamps every
  sample with its online session time.
- `simulated_source()`: the simulator's recordings played by emulated Movesense and MetaWear
  sensors (`sources/emulator.py`) through that same collector: real packets, real codecs.
- `ReplaySource`: a recorded session (session folder or journal) fed back in blocks, at real
  time, N times faster, or as fast as possible.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from imu_stream.core.clock import SensorGap, StreamClock, stream_name
from imu_stream.live.records import SourceEvent, StampedBlock
from imu_stream.records import SampleBlock, SensorRecording, SensorStatus, SessionInfo
from imu_stream.session_io import SessionFormatError, read_session_dir
from imu_stream.sim.config import SimulationConfig
from imu_stream.sim.session import SimulatedSession, simulate
from imu_stream.sinks.journal import JOURNAL_FILENAME, JournalReader, SensorMeta
from imu_stream.sources.ble import BleCollector, BleTransport, CollectorConfig, SensorSpec
from imu_stream.sources.emulator import (
    EmulatedPeripheral,
    EmulatorAir,
    EmulatorKnobs,
    MetaWearPeripheral,
    MovesensePeripheral,
    SignalSource,
)


class Source(Protocol):
    """A live source. `start()` may raise a one-line user error (no adapter, bad folder)."""

    name: str  # "ble" | "simulate" | "replay": stored as the session's source
    locations: tuple[str, ...]
    end_s: float | None  # session time at which the source is done by itself, if any

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def events(self) -> AsyncIterator[SourceEvent]: ...

    def session_time(self) -> float:
        """The source's current session-clock time."""
        ...

    def processing_rate_hz(self) -> float | None:
        """The rate the processor runs at (None until known, e.g. before the sacrum streams)."""
        ...

    def sensors(self) -> list[SensorMeta]:
        """What is known about the sensors so far (for the session metadata)."""
        ...


# --- BLE ------------------------------------------------------------------------------------


class BleSource:
    """BLE sensors through the collector; samples stamped by a per-stream online clock."""

    def __init__(
        self,
        specs: Sequence[SensorSpec],
        transport: BleTransport | None = None,
        config: CollectorConfig | None = None,
        *,
        name: str = "ble",
        end_s: float | None = None,
    ) -> None:
        self.collector = BleCollector(specs, transport, config)
        self.name = name
        self.locations = tuple(s.location for s in specs)
        self.end_s = end_s
        self._clocks: dict[tuple[str, str], StreamClock] = {}

    async def start(self) -> None:
        await self.collector.start()

    async def stop(self) -> None:
        await self.collector.stop()

    def session_time(self) -> float:
        return self.collector.session_time()

    def processing_rate_hz(self) -> float | None:
        if "sacrum" not in self.collector.sensors:
            return None
        return self.collector.rate_hz("sacrum") or None

    def sensors(self) -> list[SensorMeta]:
        out = []
        for loc, sensor in self.collector.sensors.items():
            device = sensor.variant or sensor.family or sensor.spec.family or "unknown"
            out.append(
                SensorMeta(
                    location=loc,
                    device=device,
                    address=sensor.device.address if sensor.device else sensor.spec.target,
                    rate_hz=sensor.rate_hz or sensor.spec.rate_hz,
                    acc_range_g=sensor.spec.acc_range_g,
                    gyro_range_dps=sensor.spec.gyro_range_dps,
                    extra={"resource": sensor.spec.resource} if sensor.spec.resource else {},
                )
            )
        return out

    async def events(self) -> AsyncIterator[SourceEvent]:
        async for event in self.collector.events():
            if isinstance(event, SampleBlock):
                stamped = self._stamp(event)
                if stamped is not None:
                    yield stamped
            elif isinstance(event, SensorGap):
                if event.reason == "disconnect":
                    for (loc, _), clock in self._clocks.items():
                        if loc == event.location:
                            clock.mark_reconnect()
                yield event
            else:
                yield event

    def _stamp(self, block: SampleBlock) -> StampedBlock | None:
        """Session times of the block's samples from the stream's online clock fit (the
        placement `core.clock.SessionRecorder` makes, without waiting for the final fit)."""
        loc = block.location
        if loc is None or block.host_time_s is None or block.n_samples == 0:
            return None
        key = (loc, stream_name(block))
        clock = self._clocks.get(key)
        if clock is None:
            rate = self.collector.rate_hz(loc)
            clock = StreamClock(rate, timestamped=block.device_timestamp_ms is not None)
            self._clocks[key] = clock
        placement = clock.place(block.host_time_s, block.n_samples, block.device_timestamp_ms)
        return StampedBlock(block, clock.session_times(placement))


# --- the simulator behind the device emulator ----------------------------------------------


@dataclass(frozen=True, slots=True)
class EmulatedSensor:
    """Which emulated device plays a location, at what rate."""

    device: str  # movesense | metawear-bmi160 | metawear-bmi270
    rate_hz: float


# A Movesense (IMU6, 208 Hz) on the sacrum and MetaMotion boards (100 Hz, packed) on the
# thighs: both vendors' codecs and the two clock models (timestamped, counted) in every run.
DEFAULT_EMULATED: dict[str, EmulatedSensor] = {
    "sacrum": EmulatedSensor("movesense", 208.0),
    "left_thigh": EmulatedSensor("metawear-bmi160", 100.0),
    "right_thigh": EmulatedSensor("metawear-bmi270", 100.0),
}
SIMULATION_RATE_HZ = 416.0  # the emulated sensors sample the simulated motion from this
CONNECT_LEAD_S = 1.5  # the recording starts this long after the air clock: sensors connect


@dataclass(slots=True)
class SimulatedRun:
    """A simulated session ready to stream: the source and the simulator's ground truth."""

    source: BleSource
    simulation: SimulatedSession
    air: EmulatorAir
    offset_s: float  # session time = simulation time + offset_s
    peripherals: dict[str, EmulatedPeripheral] = field(default_factory=dict)


def simulated_source(
    config: SimulationConfig,
    sensors: Mapping[str, EmulatedSensor] | None = None,
    knobs: EmulatorKnobs | None = None,
    *,
    lead_s: float = CONNECT_LEAD_S,
) -> SimulatedRun:
    """Simulate a session and put it on the air through emulated sensors.

    The sensors hold still (the first simulated sample) for `lead_s` while the collector scans
    and connects, so the simulated standing period is not cut short."""
    sensors = dict(sensors or DEFAULT_EMULATED)
    missing = [loc for loc in config.sensors if loc not in sensors]
    if missing:
        raise ValueError(f"no emulated device for {', '.join(missing)}")
    sim = simulate(config)
    air = EmulatorAir()
    peripherals: dict[str, EmulatedPeripheral] = {}
    specs = []
    for i, loc in enumerate(config.sensors):
        chosen = sensors[loc]
        signal = SignalSource.from_recording(sim.recordings[loc], time_offset_s=lead_s)
        address = f"C0:FF:EE:00:{config.seed % 256:02X}:{i + 1:02X}"
        sensor_knobs = knobs or EmulatorKnobs(seed=config.seed * 16 + i)
        peripheral: EmulatedPeripheral
        if chosen.device == "movesense":
            peripheral = MovesensePeripheral(
                address, signal, sensor_knobs, serial=f"2024{config.seed:04d}{i:04d}"
            )
        elif chosen.device.startswith("metawear-"):
            variant = chosen.device.removeprefix("metawear-")
            peripheral = MetaWearPeripheral(address, signal, sensor_knobs, variant=variant)
        else:
            raise ValueError(f"{loc}: unknown emulated device {chosen.device!r}")
        peripherals[loc] = air.add(peripheral)
        specs.append(SensorSpec(loc, address, family=chosen.device, rate_hz=chosen.rate_hz))
    end_s = lead_s + float(sim.recordings["sacrum"].time_s[-1])
    collector_config = CollectorConfig(scan_timeout_s=0.3, connect_timeout_s=5.0)
    source = BleSource(specs, air.transport(), collector_config, name="simulate", end_s=end_s)
    return SimulatedRun(source, sim, air, lead_s, peripherals)


# --- replay ---------------------------------------------------------------------------------


def read_replay(folder: Path) -> tuple[SessionInfo, dict[str, SensorRecording]]:
    """A session folder (`<location>.csv`, DESIGN.md §4) or a journaled session folder."""
    if (folder / JOURNAL_FILENAME).is_file():
        with JournalReader(folder) as reader:
            recordings = reader.recordings()
            info = reader.meta.to_info()
        if "sacrum" not in recordings:
            raise SessionFormatError(f"{folder}: the journal has no sacrum samples")
        return info, recordings
    return read_session_dir(folder)


def analysis_rate_hz(recordings: Mapping[str, SensorRecording], info: SessionInfo) -> float:
    """The processing rate `analyze` derives for these recordings: the session's stated rate,
    else the sacrum's median sample interval."""
    if info.sample_rate_hz:
        return float(info.sample_rate_hz)
    return 1.0 / float(np.median(np.diff(recordings["sacrum"].time_s)))


class ReplaySource:
    """Recorded samples fed back in blocks of `block_s`, paced at `speed` × real time
    (`speed` 0: as fast as the pipeline takes them). Times stay those of the recording."""

    name = "replay"

    def __init__(
        self,
        recordings: Mapping[str, SensorRecording],
        info: SessionInfo | None = None,
        *,
        speed: float = 1.0,
        block_s: float = 0.02,
        status_interval_s: float = 1.0,
        label: str = "",
        rate_hz: float | None = None,
    ) -> None:
        if "sacrum" not in recordings:
            raise SessionFormatError("no sacrum recording: the sacrum is required")
        if speed < 0 or not math.isfinite(speed):
            raise ValueError(f"speed must be ≥ 0, not {speed}")
        self.recordings = dict(recordings)
        self.info = info or SessionInfo()
        self.locations = tuple(self.recordings)
        self.speed = speed
        self.block_s = block_s
        self.status_interval_s = status_interval_s
        self.label = label
        self._rate = rate_hz or analysis_rate_hz(self.recordings, self.info)
        self.t0 = min(float(r.time_s[0]) for r in self.recordings.values())
        self.end_s: float | None = max(float(r.time_s[-1]) for r in self.recordings.values())
        self._stopping = asyncio.Event()
        self._loop_start: float | None = None
        self._emitted_to = self.t0

    @classmethod
    def from_folder(cls, folder: Path, speed: float = 1.0) -> ReplaySource:
        info, recordings = read_replay(folder)
        return cls(recordings, info, speed=speed, label=str(folder))

    async def start(self) -> None:
        self._loop_start = asyncio.get_running_loop().time()

    async def stop(self) -> None:
        self._stopping.set()

    def session_time(self) -> float:
        if self._loop_start is None:
            return self.t0
        if self.speed == 0:
            return self._emitted_to
        return self.t0 + (asyncio.get_running_loop().time() - self._loop_start) * self.speed

    def processing_rate_hz(self) -> float | None:
        return self._rate

    def sensors(self) -> list[SensorMeta]:
        extra = {"replay_of": self.label} if self.label else {}
        return [
            SensorMeta(loc, "replay", rate_hz=rec.rate_hz, extra=dict(extra))
            for loc, rec in self.recordings.items()
        ]

    async def events(self) -> AsyncIterator[SourceEvent]:
        loop = asyncio.get_running_loop()
        if self._loop_start is None:
            self._loop_start = loop.time()
        assert self.end_s is not None
        n_blocks = math.ceil((self.end_s - self.t0) / self.block_s) + 2
        edges = self.t0 + np.arange(1, n_blocks + 1) * self.block_s
        # Block boundaries of every sensor at once: the loop below only slices (it runs for
        # every block of every sensor, so its state is in lists, not dicts).
        streams = [
            (loc, rec, np.searchsorted(rec.time_s, edges, side="left").tolist())
            for loc, rec in self.recordings.items()
        ]
        cursors = [0] * len(streams)
        counts = [0] * len(streams)
        next_status = self.t0 + self.status_interval_s
        for k, edge in enumerate(edges.tolist()):
            if self._stopping.is_set():
                break
            if self.speed > 0:
                due = self._loop_start + (edge - self.t0) / self.speed
                delay = due - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            else:
                await asyncio.sleep(0)  # let the rest of the pipeline run
            for i, (loc, rec, bounds) in enumerate(streams):
                lo = cursors[i]
                hi = bounds[k]
                if hi <= lo:
                    continue
                cursors[i] = hi
                counts[i] += hi - lo
                t = rec.time_s[lo:hi]
                block = SampleBlock(
                    "imu6",
                    acc=rec.acc[lo:hi],
                    gyro=rec.gyr[lo:hi],
                    mag=None if rec.mag is None else rec.mag[lo:hi],
                    host_time_s=t.item(-1),
                    location=loc,
                )
                yield StampedBlock(block, t)
            self._emitted_to = edge
            if edge >= next_status:
                for i, (loc, _, _) in enumerate(streams):
                    yield SensorStatus(loc, edge, True, rate_hz=counts[i] / self.status_interval_s)
                    counts[i] = 0
                next_status += self.status_interval_s
            if edge > self.end_s:
                break
        for loc in self.recordings:
            yield SensorStatus(loc, self._emitted_to, False)
