"""Bus payload formats (version 1), topics and shard assignment, without a broker."""

from __future__ import annotations

import hashlib
import math
import struct

import numpy as np
import pytest

from imu_stream.records import AngleSeries, GaitEvent, SampleBlock, Stride
from imu_stream.sinks import wire
from imu_stream.sinks.journal.meta import SensorMeta, SessionEvent, SessionMeta, StatusRecord
from imu_stream.sinks.mqtt import MqttConfig


def sample_block(n: int, seed: int, with_mag: bool = True) -> SampleBlock:
    rng = np.random.default_rng(seed)
    return SampleBlock(
        kind="imu",
        acc=rng.normal(0, 9.8, (n, 3)),
        gyro=rng.normal(0, 200, (n, 3)),
        mag=rng.normal(0, 50, (n, 3)) if with_mag else None,
        device_timestamp_ms=123456.0 + seed,
        host_time_s=12.5,
        location="left_thigh",
        resource="/Meas/IMU9/208",
    )


def test_raw_block_layout_matches_the_documented_header() -> None:
    block = sample_block(4, seed=1)
    times = np.arange(4) / 208.0
    payload = wire.encode_raw_block(block, seq=77, time_s=times)
    magic, version, header_size, flags, n, seq = struct.unpack_from("<4sBBHII", payload)
    assert (magic, version, header_size, n, seq) == (b"IMUB", 1, 48, 4, 77)
    assert flags == 0b111 | (1 << 15)  # acc, gyro, mag + per-sample times
    device_ms, host_s = struct.unpack_from("<dd", payload, 16)
    assert (device_ms, host_s) == (123457.0, 12.5)
    n_loc, n_kind, n_res = payload[32:35]
    assert payload[35:48] == bytes(13)
    strings = payload[48 : 48 + n_loc + n_kind + n_res].decode()
    assert strings == "left_thigh" + "imu" + "/Meas/IMU9/208"
    pos = 48 + n_loc + n_kind + n_res
    assert np.array_equal(np.frombuffer(payload, "<f8", 4, pos), times)
    acc = np.frombuffer(payload, "<f4", 12, pos + 32).reshape(4, 3)
    assert np.array_equal(acc, block.acc.astype(np.float32))  # type: ignore[union-attr]
    assert len(payload) == pos + 32 + 3 * 4 * 4 * 3


@pytest.mark.parametrize("with_mag", [True, False])
def test_raw_block_round_trip_is_byte_exact(with_mag: bool) -> None:
    block = sample_block(26, seed=2, with_mag=with_mag)
    block.quaternion = np.tile([1.0, 0.0, 0.0, 0.0], (26, 1))
    payload = wire.encode_raw_block(block, seq=2**32 + 5)
    decoded = wire.decode_raw_block(payload)
    assert decoded.seq == 5 and decoded.time_s is None
    assert decoded.block.location == "left_thigh" and decoded.block.kind == "imu"
    assert decoded.block.resource == "/Meas/IMU9/208"
    for name in ("acc", "gyro", "mag", "quaternion"):
        want = getattr(block, name)
        got = getattr(decoded.block, name)
        if want is None:
            assert got is None
        else:
            assert np.array_equal(got, want.astype(np.float32).astype(np.float64))
    assert wire.encode_raw_block(decoded.block, seq=decoded.seq) == payload


def test_raw_block_without_timestamps_decodes_to_none() -> None:
    block = SampleBlock(kind="acc", acc=np.zeros((2, 3)), location="sacrum")
    decoded = wire.decode_raw_block(wire.encode_raw_block(block))
    assert decoded.block.device_timestamp_ms is None and decoded.block.host_time_s is None
    assert decoded.block.gyro is None and decoded.block.resource is None


def test_raw_block_rejects_foreign_or_damaged_payloads() -> None:
    payload = wire.encode_raw_block(sample_block(3, seed=3))
    with pytest.raises(wire.WireFormatError, match="magic"):
        wire.decode_raw_block(b"XXXX" + payload[4:])
    with pytest.raises(wire.WireFormatError, match="version"):
        wire.decode_raw_block(payload[:4] + b"\x02" + payload[5:])
    with pytest.raises(wire.WireFormatError, match="bytes"):
        wire.decode_raw_block(payload[:-4])
    with pytest.raises(wire.WireFormatError):
        wire.decode_raw_block(payload[:20])


def test_json_payloads_round_trip_with_nan_as_null() -> None:
    stride = Stride(1.0, 1.7, "left", 0.7, 0.3, 0.4, 171.4, 5.5, 9.1, math.nan, 8.0, math.nan, 2)
    payload = wire.encode_stride(stride)
    assert b'"v":1' in payload and b"NaN" not in payload
    back = wire.decode_stride(payload)
    assert back.as_row().keys() == stride.as_row().keys()
    for key, value in stride.as_row().items():
        got = back.as_row()[key]
        if isinstance(value, float) and math.isnan(value):
            assert isinstance(got, float) and math.isnan(got), key
        else:
            assert got == value, key

    gait = GaitEvent(3.25, "right", "FC")
    assert wire.decode_event(wire.encode_gait_event(gait)) == gait
    session_event = SessionEvent(0.0, "calibrated", "standing 5 s")
    assert wire.decode_event(wire.encode_session_event(session_event)) == session_event

    status = StatusRecord(
        4.0, "sacrum", {"battery_pct": 81.0, "connected": True, "rate_hz": math.nan}
    )
    back_status = wire.decode_status(wire.encode_status(status))
    assert (back_status.time_s, back_status.location) == (4.0, "sacrum")
    assert back_status.fields["battery_pct"] == 81.0 and back_status.fields["connected"] is True
    assert math.isnan(back_status.fields["rate_hz"])

    angles = AngleSeries(np.array([0.0, 0.02]), {"pelvic_obliquity_deg": np.array([1.5, np.nan])})
    back_angles = wire.decode_angles(wire.encode_angles(angles))
    assert np.array_equal(back_angles.time_s, angles.time_s)
    assert np.array_equal(
        back_angles.columns["pelvic_obliquity_deg"],
        angles.columns["pelvic_obliquity_deg"],
        equal_nan=True,
    )

    meta = SessionMeta(
        athlete="ann",
        activity="run",
        session_id="s-1",
        start_unix_s=1.7e9,
        sensors=[SensorMeta("sacrum", "movesense", rate_hz=208.0)],
    )
    back_meta = wire.decode_info(wire.encode_info(meta))
    assert (back_meta.athlete, back_meta.session_id, back_meta.start_unix_s) == (
        "ann",
        "s-1",
        1.7e9,
    )
    assert back_meta.sensors[0].rate_hz == 208.0


def test_json_payloads_reject_other_versions() -> None:
    with pytest.raises(wire.WireFormatError, match="version"):
        wire.decode_stride(b'{"v": 2, "side": "left"}')
    with pytest.raises(wire.WireFormatError):
        wire.decode_event(b"not json")


def test_topics_escape_levels_and_parse_back() -> None:
    topics = wire.Topics("clinic/imu-stream/v1")
    topic = topics.topic("Ann/Lee+#", "2025-01 run%1", "raw", "left_thigh")
    assert topic == "clinic/imu-stream/v1/Ann%2FLee%2B%23/2025-01 run%251/raw/left_thigh"
    parts = topics.parse(topic)
    assert parts == wire.TopicParts("Ann/Lee+#", "2025-01 run%1", "raw", "left_thigh")
    assert topics.parse(topics.topic("a", "s", "stride")) == wire.TopicParts("a", "s", "stride")
    assert topics.parse("clinic/imu-stream/v1/a/s/raw") is None  # raw needs a location
    assert topics.parse("other/a/s/stride") is None
    assert topics.subscription("raw") == "clinic/imu-stream/v1/+/+/raw/+"
    assert topics.subscription("stride") == "clinic/imu-stream/v1/+/+/stride"


def test_shard_assignment_is_the_documented_hash_and_stable() -> None:
    ids = [f"2025-03-{d:02d}-athlete{a}" for d in range(1, 29) for a in range(40)]
    for n in (1, 2, 3, 7):
        shards = [wire.shard_of(s, n) for s in ids]
        expected = [int.from_bytes(hashlib.sha1(s.encode()).digest()[:8], "big") % n for s in ids]
        assert shards == expected
        counts = np.bincount(shards, minlength=n)
        assert counts.min() > 0.8 * len(ids) / n  # roughly even
    # Stable across calls and processes: no dependence on Python's randomized str hash.
    assert wire.shard_of("athlete-7/session-3", 4) == wire.shard_of("athlete-7/session-3", 4)
    with pytest.raises(ValueError):
        wire.shard_of("x", 0)


def test_mqtt_config_from_url() -> None:
    cfg = MqttConfig.from_url("mqtts://user:p%40ss@broker.example:8884/clinic/v1?client_id=gw1")
    assert (cfg.host, cfg.port, cfg.tls, cfg.username, cfg.password) == (
        "broker.example",
        8884,
        True,
        "user",
        "p@ss",
    )
    assert cfg.prefix == "clinic/v1" and cfg.client_id == "gw1"
    plain = MqttConfig.from_url("mqtt://127.0.0.1")
    assert (plain.port, plain.tls, plain.prefix) == (1883, False, wire.DEFAULT_PREFIX)
    assert MqttConfig.from_env({}) is None
    with pytest.raises(ValueError):
        MqttConfig.from_url("http://127.0.0.1:1883")
