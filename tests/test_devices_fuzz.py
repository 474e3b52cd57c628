"""Fuzz: ≥ 100 k random and mutated packets per codec; nothing escapes, nothing bad is produced.

Hypothesis drives each example (a seed for a batch of ~1 k packets built from valid encodings
and mutated, plus a few packets of its own choosing); batches keep the run to a few seconds.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imu_stream.devices import metawear as mw
from imu_stream.devices import metawear_processors as dp
from imu_stream.devices import movesense as ms
from imu_stream.devices.profiles import metawear_profile
from imu_stream.records import SampleBlock

EXAMPLES = 100
BATCH = 1024  # generated packets per example → ≥ 102 k per codec with the hypothesis extras
PROFILES = (metawear_profile("metawear-bmi160"), metawear_profile("metawear-bmi270"))
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


SPECIAL_WORDS = [bytes.fromhex(h) for h in ("0000c07f", "0000807f", "ffffffff", "00800000")]


def mutate(rnd: random.Random, packet: bytes) -> bytes:
    data = bytearray(packet)
    op = rnd.randrange(7)
    if op == 0 and data:  # flip bits
        for _ in range(rnd.randrange(1, 4)):
            data[rnd.randrange(len(data))] ^= 1 << rnd.randrange(8)
    elif op == 1 and data:  # truncate
        del data[rnd.randrange(len(data)) :]
    elif op == 2:  # extend with junk
        data += rnd.randbytes(rnd.randrange(1, 40))
    elif op == 3 and data:  # change the packet type / module byte
        data[0] = rnd.randrange(256)
    elif op == 4 and len(data) > 1:  # change the reference / register byte
        data[1] = rnd.randrange(256)
    elif op == 5 and data:  # overwrite a float/int field with NaN/inf/extremes
        i = rnd.randrange(len(data))
        data[i : i + 4] = rnd.choice(SPECIAL_WORDS)
    else:  # splice two halves
        cut = rnd.randrange(len(data) + 1)
        data = data[cut:] + data[:cut]
    return bytes(data)


def random_packet(rnd: random.Random) -> bytes:
    return rnd.randbytes(rnd.randrange(200))


def movesense_valid(rng: np.random.Generator) -> list[bytes]:
    resource, ref = [("IMU6", 1), ("IMU9", 2), ("Acc", 3)][int(rng.integers(0, 3))]
    n = int(rng.integers(1, 9))
    blocks = [rng.normal(0, 50, (n, 3)) for _ in ms.movesense_profile().resources[resource]]
    packets = ms.encode_data(ref, int(rng.integers(0, 2**32)), blocks)
    if rng.random() < 0.1:
        packets.append(ms.build_command_result(ref, status=507))
    return packets


def processor_specs(profile: mw.MetaWearProfile) -> list[dp.ProcessorSpec]:
    """Processors 0–3: accounter(acc); packer(gyro, 2) and an accounter over it; a counting
    accounter over gyro."""
    acc, gyro = dp.motion_source(profile, "acc"), dp.motion_source(profile, "gyro")
    return [
        dp.accounter_spec(profile, acc),
        dp.packer_spec(profile, gyro, 2),
        dp.accounter_spec(profile, dp.processor_source(profile, 1, 6)),
        dp.accounter_spec(profile, gyro, time=False),
    ]


def with_processors(decoder: mw.MetaWearDecoder) -> mw.MetaWearDecoder:
    """Set the processors up as a host does: each add, then the board's reply."""
    for pid, spec in enumerate(processor_specs(decoder.profile)):
        decoder.observe_command(dp.build_processor_add(decoder.profile, spec))
        decoder.feed(dp.build_processor_created(decoder.profile, pid))
    return decoder


def processor_valid(profile: mw.MetaWearProfile, rng: np.random.Generator) -> list[bytes]:
    pid = int(rng.choice([0, 2, 3]))
    specs = dict(enumerate(processor_specs(profile)))
    chain = dp.resolve_chain(profile, specs, pid)
    assert chain is not None
    raw = rng.integers(-(2**15), 2**15, 3 * chain.samples).astype("<i2").tobytes()
    tick = int(rng.integers(0, 2**32))
    packet = bytes((0x09, 0x03, pid)) + dp.encode_payload(chain, raw, lambda i: tick + 7 * i)
    if rng.random() < 0.05:  # setup traffic: an add and the board's answer
        add = dp.build_processor_add(profile, specs[pid])
        return [add, dp.build_processor_created(profile, pid), packet]
    return [packet]


def metawear_valid(rng: np.random.Generator) -> list[bytes]:
    profile = PROFILES[int(rng.integers(0, 2))]
    choice = int(rng.integers(0, 8))
    if choice >= 6:
        return processor_valid(profile, rng)
    if choice < 4:
        signal = ("acc", "acc_packed", "gyro", "gyro_packed")[choice]
        n = 3 if signal.endswith("packed") else 1
        rng_value = 16 if signal.startswith("acc") else 2000
        return mw.encode_motion(profile, signal, rng.normal(0, 100, (n, 3)), rng_value)
    if choice == 4:
        signal = str(rng.choice(list(mw.FUSION_OUTPUT_BITS)))
        count = 4 if signal in ("fusion_quaternion", "fusion_euler") else 3
        return [mw.encode_fusion(profile, signal, rng.normal(0, 10, count))]
    return [mw.build_battery_reply(profile, int(rng.integers(0, 101)), 3900)]


def batch(
    seed: int, extras: list[bytes], make_valid: Callable[[np.random.Generator], list[bytes]]
) -> list[bytes]:
    rng = np.random.default_rng(seed)
    rnd = random.Random(seed)
    packets = list(extras)
    while len(packets) < BATCH + len(extras):
        r = rnd.random()
        if r < 0.3:
            packets.extend(make_valid(rng))
        elif r < 0.8:
            packets.extend(mutate(rnd, p) for p in make_valid(rng))
        else:
            packets.append(random_packet(rnd))
    return packets


def check_blocks(messages: list[object]) -> int:
    samples = 0
    for msg in messages:
        if not isinstance(msg, SampleBlock):
            continue
        fields = (msg.acc, msg.gyro, msg.mag, msg.quaternion, msg.euler_deg, msg.gravity)
        arrays = [a for a in (*fields, msg.linear_acc) if a is not None]
        assert arrays, "a SampleBlock without samples"
        for arr in arrays:
            assert arr.ndim == 2 and arr.shape[0] == msg.n_samples >= 1
            assert arr.shape[1] in (3, 4)
            assert np.isfinite(arr).all()
        samples += msg.n_samples
    return samples


def test_movesense_decoder_survives_fuzz() -> None:
    fed = 0

    @FUZZ_SETTINGS
    @given(
        seed=st.integers(0, 2**32 - 1),
        extras=st.lists(st.binary(max_size=160), max_size=16),
    )
    def fuzz(seed: int, extras: list[bytes]) -> None:
        nonlocal fed
        packets = batch(seed, extras, movesense_valid)
        known = ms.GspDecoder()
        for ref, path in ((1, "/Meas/IMU6/208"), (2, "/Meas/IMU9/104"), (3, "/Meas/Acc/52")):
            known.subscribe(ref, path)
        guessing = ms.GspDecoder(guess_unknown=True)
        produced = 0
        for i, packet in enumerate(packets):
            produced += check_blocks(list(known.feed(packet, 0.001 * i)))
            check_blocks(list(guessing.feed(packet)))
            # Both directions share the characteristic in logs: parsing never raises either.
            ms.parse_command(packet)
        assert known.stats.packets == len(packets)
        assert known.stats.samples == produced
        assert produced > 0  # the valid share of the batch really decodes
        fed += len(packets)

    fuzz()
    assert fed >= 100_000


def test_metawear_decoder_survives_fuzz() -> None:
    fed = 0

    @FUZZ_SETTINGS
    @given(
        seed=st.integers(0, 2**32 - 1),
        extras=st.lists(st.binary(max_size=24), max_size=16),
    )
    def fuzz(seed: int, extras: list[bytes]) -> None:
        nonlocal fed
        packets = batch(seed, extras, metawear_valid)
        decoders = [
            with_processors(mw.MetaWearDecoder(p, acc_range_g=16, gyro_range_dps=2000))
            for p in PROFILES
        ]
        before = [d.stats.packets for d in decoders]
        produced = 0
        for packet in packets:
            for decoder in decoders:
                # random bytes may look like a range change or a processor add/remove
                decoder.observe_command(packet)
                messages = list(decoder.feed(packet))
                produced += check_blocks(messages)
                accounted.update(
                    m.kind for m in messages if isinstance(m, SampleBlock) and "_" in m.kind
                )
        assert all(
            d.stats.packets - b == len(packets) for d, b in zip(decoders, before, strict=True)
        )
        assert produced > 0
        fed += len(packets)

    accounted: set[str] = set()
    fuzz()
    assert fed >= 100_000
    # the accounter form was in the mix and decoded (time: acc, gyro; count mode: gyro)
    assert {"acc_accounter", "gyro_accounter", "gyro_packer"} <= accounted
