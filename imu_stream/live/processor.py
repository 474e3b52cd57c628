"""The processor stage: stamped blocks → acc/gyro pairs → `OnlineProcessor` → updates.

The `OnlineProcessor` is created when the processing rate is known (for BLE, once the sacrum
sensor is configured); pairs that arrive before are held and pushed then, in order.

Every update runs where it is asked for (the pipeline: on the event loop), before calibration
as after it: an update costs about what its new data do, a few ms for a fraction of a second,
and the one that calibrates and processes the whole backlog (12–15 s of three sensors) about
10 ms once the core is warm (`live.core_worker.prepare_process`) — less than a thread hop and
the wait for the interpreter lock would add when many athletes calibrate at once.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from imu_stream.core.online import CoreUpdate, OnlineProcessor
from imu_stream.live.pairing import Pair, SensorPairing
from imu_stream.live.records import StampedBlock
from imu_stream.records import FloatArray, SampleBlock


@dataclass(slots=True)
class ProcessorCounters:
    blocks: int = 0
    samples_pushed: int = 0  # paired samples handed to the OnlineProcessor
    samples_held: int = 0  # paired but waiting for the processing rate
    updates: int = 0
    update_s_total: float = 0.0
    update_s_max: float = 0.0
    events: int = 0
    strides: int = 0
    angle_samples: int = 0


class ProcessorStage:
    """Owns the pairing and the OnlineProcessor of one session (use from one thread at a time)."""

    def __init__(
        self,
        locations: Sequence[str],
        rate_provider: Callable[[], float | None],
        update_every_s: float = 0.0,
    ) -> None:
        if "sacrum" not in locations:
            raise ValueError("the sacrum sensor is required")
        self.locations = tuple(locations)
        self._rate_provider = rate_provider
        self._pairing = {loc: SensorPairing() for loc in self.locations}
        self.processor: OnlineProcessor | None = None
        self.rate_hz: float | None = None
        self._held: list[tuple[str, Pair]] = []
        # The core's update() has a cost per call whatever the amount of new data: asking at
        # most every `update_every_s` of session time bounds it (at that much added latency).
        self.update_every_s = update_every_s
        self._updated_at_s = -math.inf
        # Session times of 20 ms blocks are sums of floats: without this slack an update
        # every 0.02 s would fall due only every other block.
        self._due_slack_s = 1e-6
        self.newest_s = -math.inf  # newest sample time handed to `process()`
        self.calibrated = False  # as of the last update
        self.counters = ProcessorCounters()

    def push(self, stamped: StampedBlock) -> None:
        pairing = self._pairing.get(stamped.location)
        if pairing is None:
            return  # a sensor the session was not configured with
        self.counters.blocks += 1
        pair = pairing.add(stamped.block, stamped.time_s)
        if pair is None:
            return
        if self.processor is None and not self._create():
            self._held.append((stamped.location, pair))
            self.counters.samples_held += pair.time_s.size
            return
        self._push(stamped.location, pair)

    def _create(self) -> bool:
        rate = self._rate_provider()
        if not rate:
            return False
        self.rate_hz = float(rate)
        self.processor = OnlineProcessor(self.locations, self.rate_hz)
        held, self._held = self._held, []
        self.counters.samples_held = 0
        for location, pair in held:
            self._push(location, pair)
        return True

    def _push(self, location: str, pair: Pair) -> None:
        assert self.processor is not None
        self.processor.push(location, pair.time_s, pair.acc, pair.gyr)
        self.counters.samples_pushed += pair.time_s.size

    def update(self) -> CoreUpdate:
        if self.processor is None:
            return CoreUpdate()
        return self._timed(self.processor.update)

    def _due(self, newest_s: float) -> bool:
        return newest_s - self._updated_at_s >= self.update_every_s - self._due_slack_s

    def process(self, batch: Sequence[StampedBlock]) -> CoreUpdate | None:
        """Push a batch and, when `update_every_s` of new data has arrived since the last
        update, ask the core what became final; else None.

        A sensor's blocks of one kind are joined first: the pairing's result does not depend
        on how its input is cut, and one call per sensor costs less than one per block."""
        if not batch:
            return None
        groups: dict[tuple[str, bool, bool], list[StampedBlock]] = {}
        newest = self.newest_s
        for stamped in batch:
            b = stamped.block
            key = (stamped.location, b.acc is not None, b.gyro is not None)
            group = groups.get(key)
            if group is None:
                groups[key] = [stamped]
            else:
                group.append(stamped)
            last = stamped.time_s.item(-1)
            if last > newest:
                newest = last
        self.newest_s = newest
        for blocks in groups.values():
            self.push(blocks[0] if len(blocks) == 1 else _joined(blocks))
        self.counters.blocks += len(batch) - len(groups)
        if self.processor is None or not self._due(newest):
            return None
        self._updated_at_s = newest
        return self.update()

    def finish(self) -> CoreUpdate:
        if self.processor is None and not self._create():
            return CoreUpdate()
        assert self.processor is not None
        try:
            return self._timed(self.processor.finish)
        except ValueError:
            # Too little data for the core (e.g. a session stopped within seconds): nothing final.
            return CoreUpdate()

    def _timed(self, step: Callable[[], CoreUpdate]) -> CoreUpdate:
        started = time.perf_counter()
        result = step()
        elapsed = time.perf_counter() - started
        c = self.counters
        c.updates += 1
        c.update_s_total += elapsed
        c.update_s_max = max(c.update_s_max, elapsed)
        self.calibrated = result.calibration.calibrated
        c.events += len(result.events)
        c.strides += len(result.strides)
        c.angle_samples += int(result.angles.time_s.size)
        return result


def _joined(blocks: Sequence[StampedBlock]) -> StampedBlock:
    """Consecutive blocks of one sensor and kind as one (the fields the processor uses)."""
    first = blocks[0].block

    def cat(name: str) -> FloatArray | None:
        if getattr(first, name) is None:
            return None
        return np.concatenate([getattr(b.block, name) for b in blocks])

    block = SampleBlock(first.kind, acc=cat("acc"), gyro=cat("gyro"), location=first.location)
    return StampedBlock(block, np.concatenate([b.time_s for b in blocks]), blocks[0].arrival_s)
