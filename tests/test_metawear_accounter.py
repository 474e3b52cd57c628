"""MetaWear accounter: SDK byte vectors, decoding, and the clock model sizing gaps from ticks.

Vectors are the MetaWear C++ SDK's own (mbientlab/MetaWear-SDK-Cpp, test/test_dataprocessor.py:
TestAccounter, TestAccounterCount, TestAccounterPackerChain, TestPackerAccounterChain); the
fixture file has no accounter vectors.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from imu_stream.core.clock import StreamClock
from imu_stream.devices import metawear as mw
from imu_stream.devices import metawear_processors as dp
from imu_stream.devices.decode import decode_packets
from imu_stream.devices.profiles import metawear_profile
from imu_stream.records import STANDARD_GRAVITY, SampleBlock

BMI160 = metawear_profile("metawear-bmi160")
BMI270 = metawear_profile("metawear-bmi270")
TICK_MS = 48.0 / 32768.0 * 1000.0  # the SDK's TICK_TIME_STEP
ACC_ACCOUNTER_ADD = bytes.fromhex("09020304ffa0113103")  # TestAccounter.test_create
SDK_ACC_PACKETS = [  # TestAccounter.test_time_offset (BMI160 at its default ±2 g)
    "090300a6330d00c100b12419cd",
    "090300ad330d00d4001825c0cc",
    "090300b4330d00c7000925b2cc",
    "090300ba330d00c5001725bccc",
    "090300c1330d00d400e924e4cc",
    "090300c8330d00af00f724e3cc",
]


def accounted_decoder(profile: mw.MetaWearProfile = BMI160) -> mw.MetaWearDecoder:
    """A decoder that saw the SDK create an accounter on the accelerometer as processor 0."""
    decoder = mw.MetaWearDecoder(profile)
    assert decoder.observe_command(ACC_ACCOUNTER_ADD)
    assert decoder.feed(bytes.fromhex("090200")) == [mw.ProcessorCreated(0)]
    return decoder


def test_commands_match_the_sdk() -> None:
    for profile in (BMI160, BMI270):
        acc = dp.motion_source(profile, "acc")
        assert dp.build_processor_add(profile, dp.accounter_spec(profile, acc)) == (
            ACC_ACCOUNTER_ADD
        )
        count = dp.accounter_spec(profile, acc, time=False)  # TestAccounterCount.test_create
        assert dp.build_processor_add(profile, count).hex() == "09020304ffa0113003"
    # The SDK's chains over a 2-byte temperature signal (module 04, register c1, channel 1):
    temp = dp.DataSource(0x04, 0xC1, 0x01, 2)
    p = BMI160
    accounter_then_packer = [  # TestAccounterPackerChain.test_create
        dp.build_processor_add(p, dp.accounter_spec(p, temp)),
        dp.build_processor_add(p, dp.packer_spec(p, dp.processor_source(p, 0, 2 + 4), 2)),
    ]
    assert [c.hex() for c in accounter_then_packer] == [
        "090204c10120113103",
        "0902090300a0100501",
    ]
    packer_then_accounter = [  # TestPackerAccounterChain.test_create (a packer's length: one input)
        dp.build_processor_add(p, dp.packer_spec(p, temp, 4)),
        dp.build_processor_add(p, dp.accounter_spec(p, dp.processor_source(p, 0, 2))),
    ]
    assert [c.hex() for c in packer_then_accounter] == [
        "090204c10120100103",
        "090209030020113103",
    ]
    assert dp.build_processor_notify(p, 3, True).hex() == "09070301"  # TestActivityMonitorRPro
    assert dp.build_processor_notifications(p).hex() == "090301"
    assert dp.build_processor_remove(p, 7).hex() == "090607"  # TestGpioFeedback
    assert dp.build_processor_remove_all(p).hex() == "0908"  # mbl_mw_metawearboard_tear_down
    for command in (*accounter_then_packer, ACC_ACCOUNTER_ADD):
        spec = dp.parse_processor_add(p, command)
        assert spec is not None and dp.build_processor_add(p, spec) == command


def test_sdk_accounter_packet_decodes() -> None:
    decoder = accounted_decoder()
    (block,) = decoder.feed(bytes.fromhex(SDK_ACC_PACKETS[0]))
    assert isinstance(block, SampleBlock) and block.kind == "acc_accounter"
    assert block.acc is not None
    # TestAccounter.test_data_extraction: CartesianFloat(x=0.0118, y=0.573, z=-0.795) g
    np.testing.assert_allclose(block.acc[0] / STANDARD_GRAVITY, [0.0118, 0.573, -0.795], atol=1e-3)
    assert block.device_timestamp_ms == 0x000D33A6 * TICK_MS
    assert decoder.stats.decoded == 2 and decoder.stats.samples == 1


def test_tick_period_agrees_with_the_sdk_epochs() -> None:
    """The SDK turns ticks into epoch ms (truncated); its expected offsets for these packets are
    [10, 11, 8, 11, 10] ms. Our tick times (48/32768 s per tick) agree within that 1 ms."""
    decoder = accounted_decoder()
    stamps = []
    for packet in SDK_ACC_PACKETS:
        (block,) = decoder.feed(bytes.fromhex(packet))
        assert isinstance(block, SampleBlock) and block.device_timestamp_ms is not None
        stamps.append(block.device_timestamp_ms)
    sdk = np.array([10, 11, 8, 11, 10], dtype=float)
    ours = np.diff(stamps)
    assert np.all(np.abs(ours - sdk) < 1.0)
    assert abs(np.sum(ours) - np.sum(sdk)) < 1.0
    assert abs(np.sum(ours) - 34 * TICK_MS) < 1e-9  # 34 ticks between first and last
    # A 1/1024 s tick would put those 34 ticks at 33.2 ms, not the SDK's 50 ms.
    assert abs(34 / 1.024 - np.sum(sdk)) > 10


def test_count_mode_decodes_samples_without_time() -> None:
    decoder = mw.MetaWearDecoder(BMI160)
    decoder.observe_command(bytes.fromhex("09020304ffa0113003"))
    decoder.feed(bytes.fromhex("090200"))
    # TestAccounterCount.test_count_extraction: count 492, then an acceleration sample
    (block,) = decoder.feed(bytes.fromhex("090300ec010000010b9a074040"))
    assert isinstance(block, SampleBlock) and block.acc is not None
    assert block.device_timestamp_ms is None and block.kind == "acc_packer"
    raw = np.frombuffer(bytes.fromhex("010b9a074040"), dtype="<i2")
    np.testing.assert_allclose(block.acc[0], raw * STANDARD_GRAVITY / 16384.0)


@pytest.mark.parametrize("packed", [False, True])
def test_accounter_alone_and_over_a_packer_round_trip(packed: bool) -> None:
    """Alone: a tick per sample; over a packer: one tick per notification, when it leaves after
    its last sample. (A packer over an acc/gyro accounter cannot be made: its 10-byte output does
    not fit the 3-bit length of a source byte.)"""
    p = BMI270
    decoder = mw.MetaWearDecoder(p, gyro_range_dps=500)
    gyro = dp.motion_source(p, "gyro")
    specs = [dp.accounter_spec(p, gyro)]
    if packed:
        specs = [dp.packer_spec(p, gyro, 2), dp.accounter_spec(p, dp.processor_source(p, 4, 6))]
    for pid, spec in zip((4, 9), specs, strict=False):
        decoder.observe_command(dp.build_processor_add(p, spec))
        decoder.feed(dp.build_processor_created(p, pid))
    chain = decoder.processor_chain(9 if packed else 4)
    assert chain is not None and chain.timed and chain.signal == "gyro"
    n = chain.samples
    assert n == (2 if packed else 1) and n == (dp.accounter_pack_count(p) if packed else 1)
    values = np.arange(3 * n, dtype=float).reshape(n, 3) * 10.0 - 40.0
    raw = mw.motion_counts(p, "gyro", values, 500)
    payload = dp.encode_payload(chain, raw, lambda i: 2**32 + 1000 + 7 * i)  # wraps to 32 bits
    assert len(payload) + 3 == (19 if packed else 13) <= p.max_notification_bytes
    (block,) = decoder.feed(bytes((0x09, 0x03, 9 if packed else 4)) + payload)
    assert isinstance(block, SampleBlock) and block.gyro is not None
    assert block.device_timestamp_ms == (1000 + 7 * (n - 1)) * TICK_MS
    np.testing.assert_allclose(block.gyro, values, atol=1 / 65.6)
    with pytest.raises(ValueError):
        dp.build_processor_add(p, dp.packer_spec(p, dp.processor_source(p, 4, 10), 1))


def test_unknown_wrong_length_and_removed_processors_are_counted_not_decoded() -> None:
    decoder = accounted_decoder()
    good = bytes.fromhex(SDK_ACC_PACKETS[0])
    assert decoder.feed(good[:-1]) == [] and decoder.stats.truncated == 1
    assert decoder.feed(good + b"\x00") == [] and decoder.stats.malformed == 1
    assert decoder.feed(b"\x09\x03\x05" + good[3:]) == [] and decoder.stats.unknown == 1
    assert decoder.observe_command(dp.build_processor_remove(BMI160, 0))
    assert decoder.feed(good) == [] and decoder.stats.unknown == 2
    decoder = accounted_decoder()
    assert decoder.observe_command(dp.build_processor_remove_all(BMI160))
    assert decoder.feed(good) == [] and decoder.processor_ids() == []
    # an rss (type 07) over the accelerometer is not an accounter chain
    decoder.observe_command(bytes.fromhex("09020304ffa007a501"))
    decoder.feed(bytes.fromhex("090201"))
    assert decoder.processor_chain(1) is None


def test_decode_cli_learns_processors_from_a_pasted_log() -> None:
    packets = [ACC_ACCOUNTER_ADD, bytes.fromhex("090200"), *map(bytes.fromhex, SDK_ACC_PACKETS)]
    report = decode_packets("metawear-bmi160", packets)
    assert report.records[0] == {"kind": "processor_created", "processor_id": 0}
    data = report.records[1:]
    assert len(data) == 6 and all(r["kind"] == "acc_accounter" for r in data)
    assert data[0]["timestamp_ms"] == int(0x0D33A6 * TICK_MS)
    assert report.skipped == []
    # without the add command the packets cannot be attributed: reported, not guessed
    report = decode_packets("metawear-bmi160", [bytes.fromhex(SDK_ACC_PACKETS[0])])
    assert report.records == [] and len(report.skipped) == 1


# --- the clock model: ticks size gaps exactly ---------------------------------------------------

RATE = 100.0
BASE_LATENCY = 0.0075


def board_notifications(
    *, seconds: float, jitter: float, drift_ppm: float, first_tick: int, seed: int
) -> tuple[list[tuple[float, bytes, int]], mw.MetaWearDecoder]:
    """Packed (2 samples) accounter notifications of a board, as received after a lossy link.

    Returns (receive time, packet, true first sample index) of the received ones; 3 % random
    loss plus a burst of 40 lost notifications (0.8 s) a third of the way in."""
    p = BMI160
    decoder = mw.MetaWearDecoder(p, acc_range_g=16)
    acc = dp.motion_source(p, "acc")
    for pid, spec in enumerate(
        [dp.packer_spec(p, acc, 2), dp.accounter_spec(p, dp.processor_source(p, 0, 6))]
    ):
        decoder.observe_command(dp.build_processor_add(p, spec))
        decoder.feed(dp.build_processor_created(p, pid))
    chain = decoder.processor_chain(1)
    assert chain is not None
    rng = np.random.default_rng(seed)
    boot_device_s = first_tick * p.data_processor.tick_s
    k0 = math.ceil(boot_device_s * RATE)
    n_packets = int(seconds * RATE) // 2
    burst = range(n_packets // 3, n_packets // 3 + 40)
    received = []
    last_arrival = -1.0
    raw = mw.motion_counts(p, "acc", np.tile([0.0, 0.0, 9.81], (2, 1)), 16)
    for j in range(n_packets):
        first = 2 * j
        if j in burst or rng.random() < 0.03:
            continue
        last_device_s = (k0 + first + 1) / RATE
        send = (last_device_s - boot_device_s) / (1 + drift_ppm * 1e-6)
        arrival = max(send + BASE_LATENCY + rng.uniform(0, jitter), last_arrival + 1e-6)
        last_arrival = arrival
        payload = dp.encode_payload(
            chain, raw, lambda i, f=first: math.floor((k0 + f + i) / RATE / p.data_processor.tick_s)
        )
        received.append((arrival, bytes((0x09, 0x03, 1)) + payload, first))
    return received, decoder


def place_all(
    clock: StreamClock, received: list[tuple[float, bytes, int]], decoder: mw.MetaWearDecoder
) -> tuple[np.ndarray, int]:
    """Offsets (placed − true first index) of every notification and the samples truly lost
    between the first and the last received one."""
    offsets = []
    for arrival, packet, first in received:
        (block,) = decoder.feed(packet)
        assert isinstance(block, SampleBlock)
        stamp = block.device_timestamp_ms if clock.timestamped else None
        placement = clock.place(arrival, block.n_samples, stamp)
        offsets.append(placement.first_index - first)
    firsts = [first for _, _, first in received]
    truly_lost = firsts[-1] + 2 - firsts[0] - 2 * len(firsts)
    return np.array(offsets), truly_lost


def test_ticks_size_a_burst_loss_exactly_where_counters_cannot() -> None:
    """50 ms of latency spread is 2.5 packet periods: receive times cannot tell how many
    notifications a gap swallowed, the board's ticks can — across the 32-bit tick wrap too."""
    received, decoder = board_notifications(
        seconds=60.0, jitter=0.05, drift_ppm=80.0, first_tick=2**32 - 3000, seed=4
    )
    stamps = [decoder.feed(pkt)[0] for _, pkt, _ in received]  # the tick counter wraps
    ticks = np.array([s.device_timestamp_ms for s in stamps if isinstance(s, SampleBlock)])
    assert np.any(np.diff(ticks) < 0)
    chain = decoder.processor_chain(1)
    assert chain is not None
    wrap = dp.tick_wrap_ms(BMI160, chain)
    ticked = StreamClock(RATE, timestamped=True, wrap_ms=wrap, stamps_last_sample=True)
    offsets, lost = place_all(ticked, received, decoder)
    assert lost > 80 + 100  # the burst and the random losses
    assert np.all(offsets == offsets[0]), "a notification was misplaced despite its tick"
    assert ticked.lost_samples == lost
    assert len(ticked.final_fit()[1]) == 1  # one segment: the wrap is no clock reset

    counted = StreamClock(RATE, timestamped=False)
    c_offsets, _ = place_all(counted, received, decoder)
    print(f"\ntruly lost {lost}: ticks {ticked.lost_samples}, counters {counted.lost_samples}")
    assert counted.lost_samples != lost or not np.all(c_offsets == c_offsets[0])
