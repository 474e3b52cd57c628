"""Session-clock sample times for journaled blocks that were not stamped by their source.

Pure numpy. The pipeline normally stamps every block with the times its clock model gave the
samples (`JournalWriter.append_block(..., time_s=...)`), and those are what the reader returns.
This module is the reader's fallback for blocks journaled without stamps (a collector without
a clock model, or blocks after the last stamp before a crash): device time (or the sample count
when the device sends no timestamps) mapped onto the host receive times by the lower envelope,
since a notification can arrive late but never before its last sample was measured.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from imu_stream.records import FloatArray

IntArray = NDArray[np.int64]

MIN_BLOCKS_FOR_DRIFT = 20  # fewer blocks: fit the offset only


def _sample_offsets(block_n: IntArray) -> tuple[IntArray, IntArray]:
    """(index of each sample's block, position of each sample inside its block)."""
    block_of_sample = np.repeat(np.arange(block_n.size), block_n)
    starts = np.cumsum(block_n) - block_n
    return block_of_sample, np.arange(int(block_n.sum())) - starts[block_of_sample]


def estimate_rate_hz(block_n: IntArray, host_time_s: FloatArray, device_ms: FloatArray) -> float:
    """Sample rate from device timestamps (samples per second of device time), else from the
    host receive times over the whole stream; NaN when neither tells."""
    if block_n.size >= 2 and np.all(np.isfinite(device_ms)):
        dt = np.diff(device_ms) / 1e3
        ok = dt > 0
        if np.any(ok):
            return float(np.median(block_n[:-1][ok] / dt[ok]))
    finite = np.flatnonzero(np.isfinite(host_time_s))
    if finite.size >= 2:
        span = host_time_s[finite[-1]] - host_time_s[finite[0]]
        samples = int(block_n[finite[0] + 1 : finite[-1] + 1].sum())
        if span > 0 and samples > 0:
            return float(samples / span)
    return float("nan")


def _lower_envelope_map(local_s: FloatArray, host_s: FloatArray) -> tuple[float, float]:
    """(slope, offset) with host ≈ local·(1 + slope) + offset, fitted so that no block arrives
    before it was measured (all residuals ≥ 0): least-squares drift, minimum-residual offset."""
    ok = np.isfinite(host_s)
    x, lag = local_s[ok], host_s[ok] - local_s[ok]
    slope = 0.0
    if x.size >= MIN_BLOCKS_FOR_DRIFT and np.ptp(x) > 0:
        slope = float(np.polyfit(x, lag, 1)[0])
    offset = float(np.min(lag - slope * x))
    return slope, offset


def reconstruct_times(
    block_n: IntArray,
    host_time_s: FloatArray,
    device_ms: FloatArray,
    rate_hz: float | None = None,
) -> FloatArray:
    """Per-sample session-clock times of a stream of blocks (in arrival order).

    `block_n`: samples per block; `host_time_s`: receive time of each block on the session clock
    (NaN when unknown); `device_ms`: device timestamp of each block's first sample (NaN when
    the device sends none); `rate_hz`: the configured rate, estimated when None.
    """
    block_n = np.asarray(block_n, dtype=np.int64)
    if block_n.size == 0:
        return np.empty(0)
    rate = rate_hz if rate_hz else estimate_rate_hz(block_n, host_time_s, device_ms)
    if not np.isfinite(rate) or rate <= 0:
        raise ValueError("cannot tell the sample rate of an unstamped stream")
    block_of_sample, position = _sample_offsets(block_n)
    if np.all(np.isfinite(device_ms)):
        block_start = (device_ms - device_ms[0]) / 1e3
    else:
        # No device clock: count samples (exact while no notification is lost).
        block_start = (np.cumsum(block_n) - block_n) / rate
    local = block_start[block_of_sample] + position / rate
    if not np.any(np.isfinite(host_time_s)):
        return np.asarray(local)
    block_last = block_start + (block_n - 1) / rate
    slope, offset = _lower_envelope_map(block_last, host_time_s)
    return np.asarray(local * (1.0 + slope) + offset)


def align_to_stamped(
    reconstructed: FloatArray, stamped: FloatArray, has_stamp: NDArray[np.bool_]
) -> FloatArray:
    """Use the stamps where present; shift the reconstruction onto them elsewhere."""
    if not np.any(has_stamp):
        return reconstructed
    shift = float(np.median(stamped[has_stamp] - reconstructed[has_stamp]))
    return np.where(has_stamp, stamped, reconstructed + shift)


def monotonic_mask(time_s: FloatArray) -> NDArray[np.bool_]:
    """Samples to keep so that time strictly increases (drops repeats after reconnects)."""
    keep = np.ones(time_s.shape[0], dtype=bool)
    if time_s.shape[0] > 1:
        running_max = np.maximum.accumulate(time_s)
        keep[1:] = time_s[1:] > running_max[:-1]
    return keep
