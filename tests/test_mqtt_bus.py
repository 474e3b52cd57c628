"""The MQTT bus on the real mosquitto: raw blocks byte-exact, QoS 1 strides through broker
restarts, retained status, and sessions split over shards."""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import Sequence

import numpy as np
import pytest

from imu_stream.records import SampleBlock, Stride
from imu_stream.sinks import wire
from imu_stream.sinks.journal.meta import SessionEvent, SessionMeta, StatusRecord
from imu_stream.sinks.mqtt import MqttConfig, MqttPublisher
from imu_stream.sources.mqtt_source import BusMessage, MqttSource
from tests.servers import MosquittoServer

pytestmark = pytest.mark.servers


def bus_config(mosquitto: MosquittoServer) -> MqttConfig:
    """A private topic prefix per test: no cross-talk through the shared broker."""
    return MqttConfig(
        host=mosquitto.host,
        port=mosquitto.port,
        prefix=f"t{uuid.uuid4().hex[:8]}/imu-stream/v1",
        backoff_initial_s=0.05,
        backoff_max_s=0.5,
        timeout_s=3.0,
    )


def make_stride(i: int) -> Stride:
    return Stride(
        start_s=1.0 + 0.36 * i,
        end_s=1.72 + 0.36 * i,
        side="left" if i % 2 == 0 else "right",
        stride_time_s=0.72,
        stance_time_s=0.29,
        swing_time_s=0.43,
        cadence_spm=166.7,
        pelvic_drop_deg=5.0 + 0.01 * i,
        pelvic_obliquity_rom_deg=9.0,
        hip_adduction_peak_deg=12.5,
        thigh_adduction_peak_deg=math.nan,
        knee_abduction_peak_deg=math.nan,
    )


async def collect(source: MqttSource, n: int, timeout_s: float) -> list[BusMessage]:
    out: list[BusMessage] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while len(out) < n and (left := deadline - loop.time()) > 0:
        message = await source.get(timeout_s=left)
        if message is not None:
            out.append(message)
    return out


def test_raw_blocks_round_trip_byte_exact(mosquitto: MosquittoServer) -> None:
    mosquitto.ensure_running()
    cfg = bus_config(mosquitto)
    rng = np.random.default_rng(4)
    blocks = []
    for seq in range(60):
        loc = ("sacrum", "left_thigh", "right_thigh")[seq % 3]
        n = int(rng.integers(1, 40))
        blocks.append(
            (
                seq,
                SampleBlock(
                    kind="imu",
                    acc=rng.normal(0, 9.8, (n, 3)),
                    gyro=rng.normal(0, 300, (n, 3)),
                    device_timestamp_ms=float(seq * 100),
                    host_time_s=seq * 0.1,
                    location=loc,
                ),
                np.arange(n) / 208.0 + seq * 0.1,
            )
        )

    async def run() -> list[BusMessage]:
        async with MqttSource(cfg, kinds=("raw",)) as source:
            await source.wait_subscribed()
            async with MqttPublisher(cfg) as publisher:
                for seq, block, times in blocks:
                    publisher.publish_raw("ann", "s1", block, seq=seq, time_s=times)
                assert await publisher.flush(10.0)
            return await collect(source, len(blocks), timeout_s=10.0)

    received = asyncio.run(run())
    assert len(received) == len(blocks)
    by_seq = {m.data.seq: m for m in received if isinstance(m.data, wire.RawBlock)}
    for seq, block, times in blocks:
        message = by_seq[seq]
        assert message.payload == wire.encode_raw_block(block, seq=seq, time_s=times)
        assert (message.athlete, message.session, message.parts.location) == (
            "ann",
            "s1",
            block.location,
        )
        assert isinstance(message.data, wire.RawBlock)
        assert message.data.time_s is not None and np.array_equal(message.data.time_s, times)
        gyro_sent, gyro_got = block.gyro, message.data.block.gyro
        assert gyro_sent is not None and gyro_got is not None
        assert np.array_equal(gyro_got, gyro_sent.astype(np.float32))
    # Per-sensor order is kept.
    for loc in ("sacrum", "left_thigh", "right_thigh"):
        seqs = [
            m.data.seq
            for m in received
            if m.parts.location == loc and isinstance(m.data, wire.RawBlock)
        ]
        assert seqs == sorted(seqs)


def test_qos1_strides_survive_a_broker_restart_mid_stream(mosquitto: MosquittoServer) -> None:
    mosquitto.ensure_running()
    cfg = bus_config(mosquitto)
    strides = [make_stride(i) for i in range(120)]

    async def run() -> tuple[list[BusMessage], MqttSource, MqttPublisher]:
        source = MqttSource(cfg, kinds=("stride",), client_id="proc-restart", persistent=True)
        await source.start()
        await source.wait_subscribed()
        publisher = MqttPublisher(cfg, client_id="collector-restart")
        await publisher.start()
        for i, stride in enumerate(strides):
            publisher.publish_strides("ann", "run-1", [stride])
            if i == 40:
                # No flush first: messages may be in flight while the broker goes down.
                await asyncio.to_thread(mosquitto.stop)
            if i == 80:
                await asyncio.to_thread(mosquitto.start)
            await asyncio.sleep(0.01)
        assert await publisher.flush(15.0), "publisher could not deliver after the restart"
        received = await collect(source, len(strides), timeout_s=15.0)
        await publisher.close()
        await source.close()
        return received, source, publisher

    try:
        received, source, publisher = asyncio.run(run())
    finally:
        mosquitto.ensure_running()
    got = [m.data for m in received]
    assert len(got) == len(strides)  # exactly once after de-duplication
    assert _same_strides(got, strides)
    assert publisher.stats.connects >= 2 and source.stats.connects >= 2


def _same_strides(got: Sequence[object], want: list[Stride]) -> bool:
    """The same strides in any order, compared as rows with NaN equal to NaN."""
    assert all(isinstance(s, Stride) for s in got)

    def rows(strides: list[Stride]) -> list[tuple[object, ...]]:
        return sorted(tuple("nan" if v != v else v for v in s.as_row().values()) for s in strides)

    return len(got) == len(want) and rows(got) == rows(want)  # type: ignore[arg-type]


def test_broker_keeps_queued_strides_for_a_persistent_subscriber_across_restart(
    mosquitto: MosquittoServer,
) -> None:
    """Strides published while the processor is offline wait in the broker (persistence on),
    survive a broker restart, and reach the processor when it comes back."""
    mosquitto.ensure_running()
    cfg = bus_config(mosquitto)
    strides = [make_stride(i) for i in range(30)]

    async def subscribe_then_leave() -> None:
        async with MqttSource(
            cfg, kinds=("stride",), client_id="proc-offline", persistent=True
        ) as s:
            await s.wait_subscribed()

    async def publish() -> None:
        async with MqttPublisher(cfg) as publisher:
            publisher.publish_strides("bob", "walk-2", strides)
            assert await publisher.flush(10.0)

    async def come_back() -> list[BusMessage]:
        async with MqttSource(
            cfg, kinds=("stride",), client_id="proc-offline", persistent=True
        ) as s:
            return await collect(s, len(strides), timeout_s=10.0)

    asyncio.run(subscribe_then_leave())
    asyncio.run(publish())
    try:
        mosquitto.stop()
        mosquitto.start()
    finally:
        mosquitto.ensure_running()
    received = asyncio.run(come_back())
    assert _same_strides([m.data for m in received], strides)


def test_status_is_retained_and_events_arrive(mosquitto: MosquittoServer) -> None:
    mosquitto.ensure_running()
    cfg = bus_config(mosquitto)
    meta = SessionMeta(athlete="cleo", activity="walk", session_id="w-9", start_unix_s=1.7e9)

    async def run() -> list[BusMessage]:
        async with MqttPublisher(cfg) as publisher:
            publisher.publish_info(meta)
            publisher.publish_status(
                "cleo", "w-9", StatusRecord(1.0, "sacrum", {"battery_pct": 77.0, "connected": True})
            )
            assert await publisher.flush(5.0)
        # A processor that starts later still learns the session and its sensor state.
        async with MqttSource(cfg, kinds=("status", "info", "event")) as source:
            await source.wait_subscribed()
            async with MqttPublisher(cfg) as publisher:
                publisher.publish_session_event(
                    "cleo", "w-9", SessionEvent(2.0, "gap", "sacrum 1 s")
                )
                assert await publisher.flush(5.0)
            return await collect(source, 3, timeout_s=5.0)

    received = {m.kind: m for m in asyncio.run(run())}
    assert received["info"].retained and received["status"].retained
    assert not received["event"].retained
    info = received["info"].data
    assert isinstance(info, SessionMeta) and info.start_unix_s == 1.7e9 and info.activity == "walk"
    status = received["status"].data
    assert isinstance(status, StatusRecord) and status.fields["battery_pct"] == 77.0
    assert received["event"].data == SessionEvent(2.0, "gap", "sacrum 1 s")


def test_two_shards_split_sessions_disjointly(mosquitto: MosquittoServer) -> None:
    mosquitto.ensure_running()
    cfg = bus_config(mosquitto)
    sessions = [f"session-{i:02d}" for i in range(20)]
    block = SampleBlock(kind="imu", acc=np.ones((5, 3)), gyro=np.zeros((5, 3)), location="sacrum")

    async def run() -> tuple[list[BusMessage], list[BusMessage]]:
        async with (
            MqttSource(cfg, kinds=("raw",), shard=0, n_shards=2) as first,
            MqttSource(cfg, kinds=("raw",), shard=1, n_shards=2) as second,
        ):
            await first.wait_subscribed()
            await second.wait_subscribed()
            async with MqttPublisher(cfg) as publisher:
                for i, session in enumerate(sessions):
                    publisher.publish_raw(f"athlete{i}", session, block, seq=i)
                assert await publisher.flush(5.0)
            expected_first = sum(wire.shard_of(s, 2) == 0 for s in sessions)
            a = await collect(first, expected_first, timeout_s=5.0)
            b = await collect(second, len(sessions) - expected_first, timeout_s=5.0)
            # Nothing else may trickle in.
            assert await first.get(timeout_s=0.3) is None
            assert await second.get(timeout_s=0.1) is None
            return a, b

    a, b = asyncio.run(run())
    got_a = {m.session for m in a}
    got_b = {m.session for m in b}
    assert got_a.isdisjoint(got_b) and got_a | got_b == set(sessions)
    assert got_a == {s for s in sessions if wire.shard_of(s, 2) == 0}
    assert 0 < len(got_a) < len(sessions)
