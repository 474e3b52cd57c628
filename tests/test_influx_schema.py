"""Schema helpers without a server: angle downsampling and session-clock → epoch ms."""

from __future__ import annotations

import numpy as np

from imu_stream.records import AngleSeries
from imu_stream.sinks.influx_schema import SeriesTags, angle_lines, downsample_index


def test_a_50_hz_stream_passes_unchanged_despite_time_jitter() -> None:
    t = 0.1 + np.arange(500) / 50.0 + np.random.default_rng(0).normal(0, 1e-4, 500)
    assert np.array_equal(downsample_index(t), np.arange(500))


def test_faster_streams_keep_one_sample_per_20_ms() -> None:
    t = np.arange(2080) / 208.0  # 10 s at 208 Hz
    kept = t[downsample_index(t)]
    assert abs(kept.size - 501) <= 1
    period = 1 / 208.0  # a kept sample sits within one input period of its bin's start
    assert np.diff(kept).min() > 0.02 - 2 * period and np.diff(kept).max() < 0.02 + 2 * period


def test_chunks_downsample_like_the_whole_recording() -> None:
    t = np.arange(4000) / 200.0
    whole = set(t[downsample_index(t)].tolist())
    chunked: set[float] = set()
    starts = range(0, t.size, 37)
    for start in starts:
        part = t[start : start + 37]
        chunked |= set(part[downsample_index(part)].tolist())
    assert whole <= chunked and len(chunked - whole) <= len(starts)


def test_epoch_ms_and_angle_line_timestamps() -> None:
    tags = SeriesTags("ann", "s1", "walk", start_unix_s=1_700_000_000.25)
    assert tags.epoch_ms([0.0, 1.0005, 2.5]).tolist() == [
        1_700_000_000_250,
        1_700_000_001_250,  # 1.0005 s rounds to the nearest ms (half-even at .5 ms)
        1_700_000_002_750,
    ]
    series = AngleSeries(np.array([0.0, 0.02]), {"pelvic_obliquity_deg": np.array([1.0, -2.5])})
    lines = angle_lines(series, tags).decode().splitlines()
    assert lines == [
        "angles,athlete=ann,session=s1 pelvic_obliquity_deg=1 1700000000250",
        "angles,athlete=ann,session=s1 pelvic_obliquity_deg=-2.5 1700000000270",
    ]
