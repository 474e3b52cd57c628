"""Device layer throughput: codec decoding, clock placement and the emulated BLE pipeline.

    python benchmarks/device_codecs.py [--seconds 120]

Prints notifications decoded per second for each codec, clock placements per second, and how
much faster than real time the emulator + collector run three sensors (Movesense IMU6 208 Hz,
two MetaMotion 100 Hz packed) on the virtual clock.
"""

from __future__ import annotations

import argparse
import asyncio
import time

import numpy as np

from imu_stream.core.clock import StreamClock
from imu_stream.devices import metawear as mw
from imu_stream.devices import movesense as ms
from imu_stream.devices.profiles import metawear_profile
from imu_stream.sources.ble import BleCollector, CollectorConfig, SensorSpec
from imu_stream.sources.emulator import (
    EmulatorAir,
    EmulatorKnobs,
    MetaWearPeripheral,
    MovesensePeripheral,
    SignalSource,
)
from imu_stream.sources.virtual_time import run_virtual


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds:,.0f}/s"


def codecs() -> None:
    rng = np.random.default_rng(0)
    packets: list[bytes] = []
    for i in range(5000):
        packets += ms.encode_data(1, 38 * i, [rng.normal(size=(8, 3)), rng.normal(size=(8, 3))])
    decoder = ms.GspDecoder()
    decoder.subscribe(1, "/Meas/IMU6/208")
    arrivals = [k // 2 * 8 / 208 + k % 2 * 0.001 for k in range(len(packets))]
    start = time.perf_counter()
    for packet, arrival in zip(packets, arrivals, strict=True):
        decoder.feed(packet, arrival)
    took = time.perf_counter() - start
    assert decoder.stats.decoded == len(packets) // 2
    print(f"Movesense GSP (IMU6, 2 parts): {rate(len(packets), took)} notifications")

    profile = metawear_profile("metawear-bmi160")
    mw_packets: list[bytes] = []
    for _ in range(5000):
        mw_packets += mw.encode_motion(profile, "acc_packed", rng.normal(size=(3, 3)), 16)
    mw_decoder = mw.MetaWearDecoder(profile, acc_range_g=16)
    start = time.perf_counter()
    for packet in mw_packets:
        mw_decoder.feed(packet)
    took = time.perf_counter() - start
    print(f"MetaWear packed acc: {rate(len(mw_packets), took)} notifications")

    for timestamped in (True, False):
        clock = StreamClock(100.0, timestamped=timestamped)
        n = 50_000
        hosts = 0.0075 + (np.arange(n) * 3 + 2) / 100.0 + rng.uniform(0, 0.02, n)
        hosts = np.maximum.accumulate(hosts)
        start = time.perf_counter()
        for i in range(n):
            clock.place(float(hosts[i]), 3, 30.0 * i if timestamped else None)
        took = time.perf_counter() - start
        kind = "device timestamps" if timestamped else "sample counters"
        print(f"clock placement ({kind}): {rate(n, took)} notifications")


def emulated(seconds: float) -> None:
    async def main() -> int:
        air = EmulatorAir()
        knobs = EmulatorKnobs(packet_loss=0.02, jitter_s=0.02, clock_drift_ppm=50.0)
        source = SignalSource.still(duration_s=seconds + 10)
        air.add(MovesensePeripheral("B0:00:00:00:00:01", source, knobs))
        air.add(MetaWearPeripheral("B0:00:00:00:00:02", source, knobs))
        air.add(MetaWearPeripheral("B0:00:00:00:00:03", source, knobs, variant="bmi270"))
        specs = [
            SensorSpec("sacrum", "B0:00:00:00:00:01"),
            SensorSpec("left_thigh", "B0:00:00:00:00:02"),
            SensorSpec("right_thigh", "B0:00:00:00:00:03"),
        ]
        collector = BleCollector(specs, air.transport(), CollectorConfig(scan_timeout_s=0.5))
        blocks = 0

        async def consume() -> None:
            nonlocal blocks
            async for _ in collector.events():
                blocks += 1

        air.start()
        await collector.start()
        task = asyncio.create_task(consume())
        await asyncio.sleep(seconds)
        await collector.stop()
        await task
        return blocks

    start = time.perf_counter()
    events = run_virtual(main())
    took = time.perf_counter() - start
    print(
        f"emulated 3-sensor session: {seconds:.0f} s in {took:.1f} s wall "
        f"({seconds / took:.0f}× real time, {rate(events, took)} collector events)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0, help="emulated session length")
    args = parser.parse_args()
    codecs()
    emulated(args.seconds)


if __name__ == "__main__":
    main()
