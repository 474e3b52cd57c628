"""Clock model: sample placement, loss counting, drift/offset fit, gaps, resampling."""

from __future__ import annotations

import numpy as np
import pytest

from imu_stream.core.clock import (
    SensorGap,
    SessionRecorder,
    StreamClock,
    resample_channel,
    session_grid,
)
from imu_stream.records import SampleBlock

BASE_LATENCY = 0.0075


def stream(
    *,
    rate: float,
    per: int,
    seconds: float,
    drift_ppm: float,
    jitter: float,
    loss: float,
    seed: int,
    timestamped: bool,
    ts_origin_ms: float = 1_234_567.0,
) -> tuple[StreamClock, list[tuple[int, int]], int, np.ndarray]:
    """Feed a StreamClock notifications as a sensor would send them.

    Returns the clock, (assigned first index, true first index) per received notification,
    the number of samples really lost between the first and last received notification, and
    the true time of every sample index.
    """
    rng = np.random.default_rng(seed)
    n_samples = int(seconds * rate) // per * per
    true_t = 0.37 + np.arange(n_samples) / (rate * (1 + drift_ppm * 1e-6))
    clock = StreamClock(rate, timestamped=timestamped)
    pairs: list[tuple[int, int]] = []
    last_host = -1.0
    lost_in_view = 0
    pending_lost = 0
    for first in range(0, n_samples, per):
        if rng.random() < loss:
            pending_lost += per
            continue
        send = true_t[first + per - 1]
        host = max(send + BASE_LATENCY + rng.uniform(0, jitter), last_host + 1e-6)
        last_host = host
        ts = None
        if timestamped:  # ms-truncated device clock of the first sample, uint32 wrap
            device_ms = (true_t[first] - 0.37) * 1000 * (1 + drift_ppm * 1e-6)
            ts = float(int(ts_origin_ms + device_ms) % 2**32)
        placement = clock.place(host, per, ts)
        if pairs:
            lost_in_view += pending_lost
        pending_lost = 0
        pairs.append((placement.first_index, first))
    return clock, pairs, lost_in_view, true_t


@pytest.mark.parametrize("seed,drift", [(0, -100.0), (1, 100.0), (2, 35.0)])
def test_counted_stream_places_every_notification(seed: int, drift: float) -> None:
    """MetaWear packed stream (no device time): 2 % loss, 20 ms jitter, ±100 ppm drift."""
    clock, pairs, lost, true_t = stream(
        rate=100.0, per=3, seconds=180.0, drift_ppm=drift, jitter=0.02, loss=0.02,
        seed=seed, timestamped=False,
    )
    assigned = np.array([a for a, _ in pairs])
    truth = np.array([t for _, t in pairs])
    offsets = assigned - truth
    assert np.all(offsets == offsets[0]), "a notification was misplaced on the sample grid"
    assert clock.lost_samples == lost > 0
    scale, intercepts = clock.final_fit()
    est = intercepts[0] + scale * clock.period_s * assigned
    err = est - true_t[truth]
    assert abs(np.median(err) - BASE_LATENCY) < 1e-3  # the shortest latency stays as offset
    assert np.percentile(np.abs(err - np.median(err)), 99) < 0.5e-3
    assert abs(clock.drift_ppm + drift) < 15.0  # host seconds per device second


def test_timestamped_stream_with_wraparound_and_truncated_ms() -> None:
    """Movesense IMU6 at 208 Hz, 8 samples per DATA, timestamps wrapping past 2^32 ms."""
    clock, pairs, lost, true_t = stream(
        rate=208.0, per=8, seconds=120.0, drift_ppm=80.0, jitter=0.02, loss=0.04,
        seed=4, timestamped=True, ts_origin_ms=2**32 - 30_000.0,
    )
    offsets = np.array([a - t for a, t in pairs])
    assert np.all(offsets == offsets[0])
    assert clock.lost_samples == lost > 0
    scale, intercepts = clock.final_fit()
    assigned = np.array([a for a, _ in pairs])
    err = intercepts[0] + scale * clock.period_s * assigned - true_t[[t for _, t in pairs]]
    assert np.ptp(err[len(err) // 10 :]) < 1e-3
    assert clock.notifications == len(pairs)


def test_reconnect_skips_instead_of_losing_and_starts_a_segment() -> None:
    clock = StreamClock(100.0, timestamped=True)
    for i in range(100):
        clock.place(1.0 + 0.03 * i + 0.005, 3, 30.0 * i)
    clock.mark_reconnect()
    placement = clock.place(10.0 + 0.005, 3, 30.0 * 300)  # 6 s later on the device clock
    assert placement.new_segment and placement.reason == "disconnect"
    # last notification: samples 297–299 at 2970 ms; now the first sample is at 9000 ms (900)
    assert placement.first_index == 900
    assert placement.lost_before == 0 and placement.skipped_before == 600
    assert clock.lost_samples == 0 and clock.skipped_samples == 600
    after = clock.place(10.03 + 0.005, 3, 30.0 * 301)
    assert not after.new_segment and after.segment == 1


def test_device_clock_reset_starts_a_new_segment() -> None:
    clock = StreamClock(52.0, timestamped=True)
    clock.place(1.0, 4, 500_000.0)
    clock.place(1.077, 4, 500_077.0)
    reset = clock.place(1.154, 4, 12.0)  # rebooted sensor: its clock restarts near zero
    assert reset.new_segment and reset.reason == "clock_reset"
    assert reset.first_index == 8 and reset.lost_before == 0


def test_resample_fills_short_holes_keeps_long_ones_and_antialiases() -> None:
    rate = 208.0
    t = np.arange(0, 20, 1 / rate)
    slow = np.sin(2 * np.pi * 2.0 * t)
    fast = 0.5 * np.sin(2 * np.pi * 95.0 * t)  # would alias to 5 Hz on a 100 Hz grid
    values = np.column_stack([slow + fast, slow, -slow])
    keep = np.ones(t.shape, dtype=bool)
    keep[(t > 5.0) & (t < 5.04)] = False  # 40 ms: interpolated
    keep[(t > 10.0) & (t < 11.0)] = False  # 1 s: stays a gap
    grid = session_grid(t[0], t[-1], 100.0)
    out, valid = resample_channel(t[keep], values[keep], grid, rate, 100.0)
    in_long_hole = (grid > 10.0) & (grid < 11.0)
    assert not valid[in_long_hole].any()
    assert valid[(grid > 5.0) & (grid < 5.04)].all()
    ok = valid & (grid > 1.0) & (grid < 19.0) & ~((grid > 9.8) & (grid < 11.2))
    expected = np.sin(2 * np.pi * 2.0 * grid[ok])
    assert np.max(np.abs(out[ok, 1] - expected)) < 0.01
    # The 95 Hz tone is removed before decimation instead of folding onto 5 Hz (except next
    # to the short hole, where the filled-in line cannot carry it).
    away = ~((grid[ok] > 4.9) & (grid[ok] < 5.15))
    assert np.max(np.abs(out[ok, 0] - expected)[away]) < 0.01


def test_session_recorder_produces_one_grid() -> None:
    rec = SessionRecorder({"sacrum": 208.0, "left_thigh": 100.0})
    rng = np.random.default_rng(0)

    def signal(t: np.ndarray) -> np.ndarray:
        return np.column_stack([np.sin(t), np.cos(t), 9.81 + 0 * t])

    # sacrum: Movesense-like IMU blocks of 8 samples with device time
    for i in range(1300):
        k = 8 * i
        t = 0.5 + (k + np.arange(8)) / 208.0
        block = SampleBlock(
            kind="imu6", acc=signal(t), gyro=signal(t) * 10, device_timestamp_ms=k * 1000 / 208,
            host_time_s=float(t[-1] + 0.01 + rng.uniform(0, 0.01)), location="sacrum",
        )
        rec.add_block(block)
    # left thigh: separate acc and gyro blocks of 3 samples
    for i in range(1600):
        k = 3 * i
        t = 0.3 + (k + np.arange(3)) / 100.0
        for name in ("acc", "gyro"):
            block = SampleBlock(kind=f"{name}_packed", device_timestamp_ms=k * 10.0,
                                host_time_s=float(t[-1] + 0.01 + rng.uniform(0, 0.01)),
                                location="left_thigh")
            setattr(block, name, signal(t) * (1 if name == "acc" else 10))
            rec.add_block(block)
    rec.add_gap(SensorGap("left_thigh", 10.0, 11.0, 100, "lost"))
    out = rec.recordings()
    assert set(out) == {"sacrum", "left_thigh"}
    for r in out.values():
        steps = np.diff(r.time_s)
        assert np.allclose(steps, 0.01)  # one 100 Hz grid, no holes here
        assert np.allclose(np.round(r.time_s * 100), r.time_s * 100)
        # estimated times carry the constant 10 ms latency offset: compare against shifted truth
        expected = signal(r.time_s - 0.01)
        assert np.median(np.abs(r.acc[:, 0] - expected[:, 0])) < 0.02
        assert np.allclose(r.gyr, 10 * r.acc, atol=0.01)  # acc and gyro fitted separately


def test_latency_spread_beyond_a_packet_degrades_gracefully() -> None:
    """40 ms jitter on 30 ms packets is ambiguous: errors stay one packet, counts stay close."""
    clock, pairs, lost, true_t = stream(
        rate=100.0, per=3, seconds=180.0, drift_ppm=-100.0, jitter=0.04, loss=0.02,
        seed=9, timestamped=False,
    )
    offsets = np.array([a - t for a, t in pairs])
    typical = np.median(offsets)
    assert np.all(np.abs(offsets - typical) <= 3)  # never more than one packet off
    assert np.mean(offsets != typical) < 0.15
    assert abs(clock.lost_samples - lost) <= 9
    scale, intercepts = clock.final_fit()
    assigned = np.array([a for a, _ in pairs])
    err = intercepts[0] + scale * clock.period_s * assigned - true_t[[t for _, t in pairs]]
    assert abs(np.median(err) - BASE_LATENCY) < 2e-3
