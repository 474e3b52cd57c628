"""Clock model: device time → session clock per sensor stream, gaps, and one common time grid.

Every notification is placed on its stream's device sample grid (sample index k of its first
sample). Movesense packets carry the device timestamp of their first sample, and MetaWear
notifications through the accounter the board's tick when they leave (after their last sample):
there k follows from device-time jumps, so a gap is sized exactly. Plain MetaWear streams (sample
counters) carry no time: k follows from the host receive times against
their median latency over the segment, so a late notification is told apart from a lost one
as long as the latency spread stays under one packet period (beyond that, a wrong call stays
a one-packet error). The session time of sample k is then `a + b·k/rate`: `b` (rate/drift) is
a least-squares slope of receive time against k, and `a` is the lower envelope of the receive
times (the shortest radio latency), fitted per connection segment. Everything here is pure.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from scipy.signal import butter, sosfiltfilt

from imu_stream.records import FloatArray, SampleBlock, SensorRecording

WRAP_MS = 2**32  # Movesense timestamps are uint32 milliseconds
MAX_JUMP_S = 3600.0  # a timestamp jump beyond this (or backwards) is a device clock reset
DEFAULT_MAX_INTERP_GAP_S = 0.1  # holes up to this long are interpolated, longer ones stay gaps
MAX_DRIFT = 1e-3  # a fitted rate further than 1000 ppm from nominal is not a crystal error
WARMUP_NOTIFICATIONS = 16  # notifications of a segment before its latency anchor is trusted
IntArray = NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class SensorGap:
    """A hole in one sensor's data on the session clock (a gap marker of the collector)."""

    location: str
    start_s: float  # last good sample before the hole
    end_s: float  # first good sample after it
    lost_samples: int  # samples that should exist in between (0 if unknown)
    reason: str  # "lost" (dropped notifications) | "disconnect" | "clock_reset"


@dataclass(frozen=True, slots=True)
class Placement:
    """Where one notification's samples sit on the stream's device sample grid."""

    first_index: int
    n_samples: int
    lost_before: int  # samples dropped between the previous notification and this one
    skipped_before: int  # samples never streamed (disconnected) before this one
    segment: int
    new_segment: bool
    reason: str = ""  # why a new segment started: "disconnect" | "clock_reset"


class _Growable:
    """A float64 column that grows by doubling; `view()` is the filled part (no copy)."""

    def __init__(self, capacity: int = 1024) -> None:
        self._data = np.empty(capacity, dtype=np.float64)
        self._n = 0

    def append(self, value: float) -> None:
        if self._n == self._data.shape[0]:
            self._data = np.concatenate([self._data, np.empty_like(self._data)])
        self._data[self._n] = value
        self._n += 1

    def __len__(self) -> int:
        return self._n

    def view(self) -> FloatArray:
        return self._data[: self._n]


def _circular_centre(x: FloatArray, period: float, reference: float) -> float:
    """Circular mean of x modulo `period`, unwrapped to the value nearest `reference`."""
    angle = float(np.angle(np.exp(2j * np.pi * x / period).mean()))
    centre = angle * period / (2 * np.pi)
    return centre + period * round((reference - centre) / period)


def _envelope(resid: FloatArray, packet_s: float) -> float:
    """Lower envelope of receive-time residuals. With inferred indices (packet_s > 0) a
    misplaced notification sits whole packet periods off: fold residuals into one period
    around their circular centre first, so one misplacement cannot drag the envelope."""
    if packet_s <= 0 or len(resid) < 2:
        return float(resid.min())
    phases = np.exp(2j * np.pi * resid / packet_s)
    if abs(phases.mean()) < 0.25:
        # Latency spread of a packet period or more: folding is ambiguous; a low quantile
        # keeps the rare misplaced notifications out instead.
        return float(np.percentile(resid, 2.0))
    centre = _circular_centre(resid, packet_s, float(np.median(resid)))
    folded = centre + np.mod(resid - centre + packet_s / 2, packet_s) - packet_s / 2
    return float(folded.min())


def _pooled_slope(x: FloatArray, y: FloatArray, seg: FloatArray) -> float | None:
    """Least-squares slope of y on x with one intercept per segment; None if degenerate."""
    xc = x.copy()
    yc = y.copy()
    for s in np.unique(seg):
        m = seg == s
        xc[m] -= xc[m].mean()
        yc[m] -= yc[m].mean()
    sxx = float(xc @ xc)
    if sxx <= 0.0:
        return None
    return float(xc @ yc) / sxx


class StreamClock:
    """Place one stream's notifications on its device sample grid and map them to session time.

    `timestamped=True`: notifications carry a device time in ms (Movesense: of their first
    sample, wrapping at 2³² ms; MetaWear accounter: its ticks in ms, of the last sample —
    `stamps_last_sample=True` — wrapping at `wrap_ms`). Otherwise the sample index is inferred
    from receive times (MetaWear sample counters).
    Call `mark_reconnect()` after a reconnection: the next notification starts a new segment
    and the samples missed meanwhile count as skipped, not lost.
    """

    def __init__(
        self,
        rate_hz: float,
        *,
        timestamped: bool,
        fit_window_s: float = 60.0,
        min_fit_span_s: float = 10.0,
        refit_every: int = 32,
        centre_window_s: float = 30.0,
        wrap_ms: float = WRAP_MS,
        stamps_last_sample: bool = False,
    ) -> None:
        if not rate_hz > 0:
            raise ValueError(f"stream rate must be positive, not {rate_hz}")
        if not wrap_ms > 0:
            raise ValueError(f"device time must wrap at a positive period, not {wrap_ms}")
        self.wrap_ms = float(wrap_ms)
        self.stamps_last_sample = stamps_last_sample
        self.rate_hz = float(rate_hz)
        self.period_s = 1.0 / self.rate_hz
        self.timestamped = timestamped
        self.fit_window_s = fit_window_s
        self.min_fit_span_s = min_fit_span_s
        self.refit_every = refit_every
        self.centre_window_s = centre_window_s
        # per notification: host receive time, index of its last sample, segment
        self._host = _Growable()
        self._k_last = _Growable()
        self._seg = _Growable()
        self._seg_start: list[int] = []  # notification position where each segment starts
        self._intercepts: list[float] = []  # online `a` per segment
        self._centres: list[float] = []  # latency anchor of host − k·step per segment
        self._packet_s = 0.0
        self.scale = 1.0  # online `b`: session seconds per nominal device second
        self._next_index: int | None = None
        self._pending_reconnect = False
        # timestamped streams
        self._prev_ts: float = 0.0
        self._prev_n = 0
        self._ts_unwrapped = 0.0
        self.device_period_ms = 1000.0 / self.rate_hz
        self._ts_first = _Growable()  # unwrapped device ms of each notification's first sample
        self._k_first = _Growable()
        self.received_samples = 0
        self.lost_samples = 0
        self.skipped_samples = 0
        self.notifications = 0

    # --- placement ----------------------------------------------------------------------------

    def mark_reconnect(self) -> None:
        self._pending_reconnect = True

    def place(
        self, host_time_s: float, n_samples: int, device_timestamp_ms: float | None = None
    ) -> Placement:
        if n_samples < 1:
            raise ValueError("a notification must carry at least one sample")
        if self.timestamped and device_timestamp_ms is None:
            raise ValueError("a timestamped stream needs the device timestamp of each block")
        if device_timestamp_ms is not None and self.stamps_last_sample:
            # the time of the first sample, one fitted device period per sample earlier
            first_ms = device_timestamp_ms - (n_samples - 1) * self.device_period_ms
            device_timestamp_ms = first_ms % self.wrap_ms
        reconnect = self._pending_reconnect
        self._pending_reconnect = False
        if self._next_index is None:
            placement = Placement(0, n_samples, 0, 0, 0, True)
            self._new_segment(host_time_s)
            if device_timestamp_ms is not None:
                self._prev_ts = float(device_timestamp_ms)
        elif self.timestamped:
            assert device_timestamp_ms is not None
            placement = self._place_timestamped(float(device_timestamp_ms), n_samples, reconnect)
        else:
            placement = self._place_counted(host_time_s, n_samples, reconnect)
        if placement.new_segment and self._next_index is not None:
            self._new_segment(host_time_s)
        if self.timestamped:
            self._prev_n = n_samples
        self._record(host_time_s, placement)
        return placement

    def _new_segment(self, host_time_s: float) -> None:
        self._seg_start.append(len(self._host))
        self._intercepts.append(math.nan)
        self._centres.append(math.nan)

    def _place_timestamped(self, ts: float, n: int, reconnect: bool) -> Placement:
        assert self._next_index is not None
        dt = (ts - self._prev_ts) % self.wrap_ms
        self._prev_ts = ts
        steps = dt / self.device_period_ms
        segment = len(self._seg_start) - 1
        if dt > self.wrap_ms / 2 or steps < self._prev_n - 0.5 or dt > MAX_JUMP_S * 1000.0:
            # the device clock restarted (reboot) or jumped: continue the index, new segment
            self._ts_unwrapped += self._prev_n * self.device_period_ms
            return Placement(self._next_index, n, 0, 0, segment + 1, True, "clock_reset")
        self._ts_unwrapped += dt
        missing = max(0, round(steps - self._prev_n))
        first = self._next_index + missing
        if reconnect:
            return Placement(first, n, 0, missing, segment + 1, True, "disconnect")
        return Placement(first, n, missing, 0, segment, False)

    def _place_counted(self, host: float, n: int, reconnect: bool) -> Placement:
        assert self._next_index is not None
        segment = len(self._seg_start) - 1
        # Nominal sample period: drift (≤ 100s of ppm) only moves the anchor slowly, which it
        # follows; a fitted rate would feed placement errors back into itself.
        step = self.period_s
        packet = n * step
        if reconnect:
            # A new phase: estimate how many samples passed from the last segment's anchor.
            centre = self._centre(segment, packet)
            first = self._next_index
            if centre is not None:
                k_last = (host - centre) / step
                first = max(self._next_index, round(k_last) - n + 1)
            return Placement(first, n, 0, first - self._next_index, segment + 1, True, "disconnect")
        centre = self._centre(segment, packet)
        if centre is None:
            return Placement(self._next_index, n, 0, 0, segment, False)
        # host − k·step is the latency plus a constant, around the segment's anchor; every
        # lost notification adds one packet period: round the excess to whole packets.
        self._packet_s = packet
        excess = host - step * (self._next_index + n - 1) - centre
        if len(self._host) - self._seg_start[-1] < WARMUP_NOTIFICATIONS:
            # The anchor rests on few notifications yet: declare a loss only beyond 3/4 packet
            # (a missed one only misplaces this notification; the next one catches up).
            lost_packets = max(0, math.floor(excess / packet + 0.25))
        else:
            lost_packets = max(0, round(excess / packet))
        lost = lost_packets * n
        return Placement(self._next_index + lost, n, lost, 0, segment, False)

    def _centre(self, segment: int, packet_s: float) -> float | None:
        """Latency anchor of the segment: the circular mean of host − k·step modulo one packet
        period, kept continuous with its previous value. A misplaced notification shifts
        host − k·step by whole packets, which leaves the anchor where it was: the error stays
        one notification's, and the next real loss absorbs it."""
        cached = self._centres[segment] if segment < len(self._centres) else math.nan
        count = len(self._host) - self._seg_start[segment]
        if not math.isnan(cached) and count >= WARMUP_NOTIFICATIONS:
            return cached
        if count <= 0:
            return None
        lo = self._seg_start[segment]
        hi = self._seg_start[segment + 1] if segment + 1 < len(self._seg_start) else len(self._host)
        x = self._host.view()[lo:hi] - self.period_s * self._k_last.view()[lo:hi]
        return _circular_centre(x, packet_s, cached if not math.isnan(cached) else float(x[0]))

    def _record(self, host: float, placement: Placement) -> None:
        k_last = placement.first_index + placement.n_samples - 1
        self._host.append(host)
        self._k_last.append(float(k_last))
        self._seg.append(float(placement.segment))
        if self.timestamped:
            self._ts_first.append(self._ts_unwrapped)
            self._k_first.append(float(placement.first_index))
        self._next_index = k_last + 1
        self.notifications += 1
        self.received_samples += placement.n_samples
        self.lost_samples += placement.lost_before
        self.skipped_samples += placement.skipped_before
        seg = placement.segment
        a = self.scale * self.period_s * k_last
        young = len(self._host) - self._seg_start[seg] <= self.refit_every
        # A running minimum until the first refit of the segment; then refits keep it robust.
        if math.isnan(self._intercepts[seg]) or (young and host - a < self._intercepts[seg]):
            self._intercepts[seg] = host - a
        if self.notifications % self.refit_every == 0:
            self._refit()

    # --- fitting ------------------------------------------------------------------------------

    def _refit(self) -> None:
        host = self._host.view()
        if len(host) < 3:
            return
        lo = int(np.searchsorted(host, host[-1] - self.fit_window_s))
        k = self._k_last.view()[lo:]
        seg = self._seg.view()[lo:]
        h = host[lo:]
        if h[-1] - h[0] >= self.min_fit_span_s:
            slope = _pooled_slope(k * self.period_s, h, seg)
            if slope is not None and abs(slope - 1.0) < MAX_DRIFT:
                self.scale = slope
            if self.timestamped:
                ts = self._ts_first.view()[lo:]
                dev = _pooled_slope(self._k_first.view()[lo:], ts, seg)
                if dev is not None and dev > 0:
                    self.device_period_ms = dev
        current = seg == seg[-1]
        resid = h[current] - self.scale * self.period_s * k[current]
        self._intercepts[int(seg[-1])] = _envelope(resid, self._fold_period())
        if not self.timestamped and self._packet_s > 0:
            recent = h[current] >= h[-1] - self.centre_window_s
            nominal = h[current][recent] - self.period_s * k[current][recent]
            s = int(seg[-1])
            ref = self._centres[s] if not math.isnan(self._centres[s]) else float(nominal[0])
            self._centres[s] = _circular_centre(nominal, self._packet_s, ref)

    @property
    def drift_ppm(self) -> float:
        return (self.scale - 1.0) * 1e6

    @property
    def packet_loss_pct(self) -> float:
        total = self.received_samples + self.lost_samples
        return 100.0 * self.lost_samples / total if total else 0.0

    def session_times(self, placement: Placement) -> FloatArray:
        """Online session times of a placed notification's samples."""
        a = self._intercepts[placement.segment]
        k = placement.first_index + np.arange(placement.n_samples, dtype=np.float64)
        times: FloatArray = a + self.scale * self.period_s * k
        return times

    def sample_time(self, index: int, segment: int) -> float:
        """Online session time of one sample."""
        return self._intercepts[segment] + self.scale * self.period_s * index

    def clock_offset_ms(self) -> float:
        """Session time minus nominal device time of the latest sample, in ms."""
        if not self._intercepts:
            return math.nan
        k = self._k_last.view()[-1]
        a = self._intercepts[-1]
        return 1000.0 * (a + (self.scale - 1.0) * self.period_s * k)

    def final_fit(self) -> tuple[float, list[float]]:
        """(b, intercepts per segment) from every notification: global slope, lower envelopes."""
        host = self._host.view()
        k = self._k_last.view()
        seg = self._seg.view()
        scale = self.scale
        if len(host) >= 3 and host[-1] - host[0] >= self.min_fit_span_s:
            slope = _pooled_slope(k * self.period_s, host, seg)
            if slope is not None and abs(slope - 1.0) < MAX_DRIFT:
                scale = slope
        resid = host - scale * self.period_s * k
        fold = self._fold_period()
        intercepts = [
            _envelope(resid[seg == s], fold) if np.any(seg == s) else math.nan
            for s in range(len(self._seg_start))
        ]
        return scale, intercepts

    def _fold_period(self) -> float:
        """Packet period for folding residuals: only inferred (counted) indices can be off."""
        return 0.0 if self.timestamped else self._packet_s


# --- a whole session: blocks in, recordings on one grid out ----------------------------------


@dataclass(slots=True)
class _StreamData:
    clock: StreamClock
    placements: list[Placement] = field(default_factory=list)
    acc: list[FloatArray] = field(default_factory=list)
    gyro: list[FloatArray] = field(default_factory=list)
    mag: list[FloatArray] = field(default_factory=list)


def stream_name(block: SampleBlock) -> str:
    """Which of a sensor's streams a block belongs to: "imu", "acc" or "gyro"."""
    if block.acc is not None and block.gyro is None:
        return "acc"
    if block.gyro is not None and block.acc is None:
        return "gyro"
    return "imu"


class SessionRecorder:
    """Collect every sensor's decoded blocks and produce recordings on the session clock.

    Blocks must carry `host_time_s`, `location` and `device_timestamp_ms` (the collector fills
    the last one for MetaWear from the sample index it placed: from the accounter ticks, or the
    sample counter inferred from receive times). Gap markers with reason
    "disconnect" start a new clock segment on that sensor.
    """

    def __init__(self, rates_hz: Mapping[str, float] | None = None) -> None:
        self.rates_hz = dict(rates_hz or {})
        self._streams: dict[tuple[str, str], _StreamData] = {}
        self.gaps: list[SensorGap] = []

    def add_block(self, block: SampleBlock, rate_hz: float | None = None) -> Placement | None:
        """Add one block; RATE_HZ (the sensor's nominal rate) is needed with its first block
        unless given to the constructor (the collector's `rate_hz(location)`)."""
        loc = block.location
        if loc is None or block.host_time_s is None or block.n_samples == 0:
            return None
        if rate_hz is not None:
            self.rates_hz.setdefault(loc, rate_hz)
        if loc not in self.rates_hz:
            raise ValueError(f"no sample rate known for sensor {loc!r}")
        key = (loc, stream_name(block))
        data = self._streams.get(key)
        if data is None:
            timestamped = block.device_timestamp_ms is not None
            clock = StreamClock(self.rates_hz[loc], timestamped=timestamped)
            data = self._streams[key] = _StreamData(clock)
        placement = data.clock.place(block.host_time_s, block.n_samples, block.device_timestamp_ms)
        data.placements.append(placement)
        n = block.n_samples
        for name in ("acc", "gyro", "mag"):
            arr = getattr(block, name)
            if arr is not None:
                getattr(data, name).append(np.asarray(arr, dtype=np.float64).reshape(n, 3))
        return placement

    def add_gap(self, gap: SensorGap) -> None:
        self.gaps.append(gap)
        if gap.reason == "disconnect":
            for (loc, _), data in self._streams.items():
                if loc == gap.location:
                    data.clock.mark_reconnect()

    def locations(self) -> list[str]:
        return sorted({loc for loc, _ in self._streams})

    def clock(self, location: str, stream: str) -> StreamClock | None:
        data = self._streams.get((location, stream))
        return data.clock if data is not None else None

    def channel(self, location: str, name: str) -> tuple[FloatArray, FloatArray] | None:
        """(session times, values) of one channel ("acc", "gyro", "mag") with the final fit."""
        for (loc, _), data in self._streams.items():
            if loc != location or not getattr(data, name):
                continue
            scale, intercepts = data.clock.final_fit()
            step = scale * data.clock.period_s
            index = np.concatenate(
                [p.first_index + np.arange(p.n_samples) for p in data.placements]
            )
            seg = np.concatenate([np.full(p.n_samples, p.segment) for p in data.placements])
            times = np.asarray(intercepts)[seg] + step * index
            values = np.concatenate(getattr(data, name))
            order = np.argsort(times, kind="stable")
            return times[order], values[order]
        return None

    def recordings(
        self,
        rate_hz: float | None = None,
        *,
        max_interp_gap_s: float = DEFAULT_MAX_INTERP_GAP_S,
    ) -> dict[str, SensorRecording]:
        """Every sensor resampled onto one grid (holes longer than `max_interp_gap_s` stay)."""
        locations = self.locations()
        if not locations:
            return {}
        fs = rate_hz if rate_hz is not None else min(self.rates_hz[loc] for loc in locations)
        channels: dict[str, dict[str, tuple[FloatArray, FloatArray]]] = {}
        for loc in locations:
            found = {n: self.channel(loc, n) for n in ("acc", "gyro", "mag")}
            channels[loc] = {n: c for n, c in found.items() if c is not None}
        starts = [c[0][0] for ch in channels.values() for c in ch.values()]
        ends = [c[0][-1] for ch in channels.values() for c in ch.values()]
        grid = session_grid(min(starts), max(ends), fs)
        out: dict[str, SensorRecording] = {}
        for loc, chans in channels.items():
            if "acc" not in chans or "gyro" not in chans:
                continue
            valid = np.ones(grid.shape, dtype=bool)
            values: dict[str, FloatArray] = {}
            for name, (t, v) in chans.items():
                res, ok = resample_channel(t, v, grid, self.rates_hz[loc], fs, max_interp_gap_s)
                values[name] = res
                valid &= ok
            if valid.sum() < 2:
                continue
            out[loc] = SensorRecording(
                location=loc,
                time_s=grid[valid],
                acc=values["acc"][valid],
                gyr=values["gyro"][valid],
                mag=values["mag"][valid] if "mag" in values else None,
            )
        return out


def session_grid(start_s: float, end_s: float, rate_hz: float) -> FloatArray:
    """The common grid: multiples of 1/rate on the session clock covering [start, end]."""
    first = math.ceil(start_s * rate_hz - 1e-9)
    last = math.floor(end_s * rate_hz + 1e-9)
    return np.arange(first, last + 1, dtype=np.float64) / rate_hz


def _segments(times: FloatArray, max_gap_s: float) -> list[tuple[int, int]]:
    """[start, stop) index ranges of runs without a hole longer than max_gap_s."""
    breaks = np.flatnonzero(np.diff(times) > max_gap_s) + 1
    edges = [0, *breaks.tolist(), len(times)]
    return [(edges[i], edges[i + 1]) for i in range(len(edges) - 1) if edges[i + 1] > edges[i]]


def resample_channel(
    times: FloatArray,
    values: FloatArray,
    grid: FloatArray,
    source_rate_hz: float,
    target_rate_hz: float,
    max_gap_s: float = DEFAULT_MAX_INTERP_GAP_S,
) -> tuple[FloatArray, NDArray[np.bool_]]:
    """Values on the grid and where they are valid (inside a run without long holes).

    A faster source is low-passed first (zero-phase Butterworth at 0.4 × the target rate,
    applied on a uniform grid at the source rate inside each run) so it does not alias.
    """
    out = np.full((grid.shape[0], values.shape[1]), np.nan)
    valid = np.zeros(grid.shape[0], dtype=bool)
    antialias = source_rate_hz > 1.25 * target_rate_hz
    sos = butter(4, 0.4 * target_rate_hz, fs=source_rate_hz, output="sos") if antialias else None
    for lo, hi in _segments(times, max_gap_s):
        t, v = times[lo:hi], values[lo:hi]
        g_lo = int(np.searchsorted(grid, t[0] - 1e-9))
        g_hi = int(np.searchsorted(grid, t[-1] + 1e-9, side="right"))
        if g_hi <= g_lo:
            continue
        if sos is not None and len(t) > 30:
            uniform = t[0] + np.arange(int((t[-1] - t[0]) * source_rate_hz) + 1) / source_rate_hz
            filled = np.column_stack([np.interp(uniform, t, v[:, j]) for j in range(v.shape[1])])
            t, v = uniform, sosfiltfilt(sos, filled, axis=0)
        g = grid[g_lo:g_hi]
        out[g_lo:g_hi] = np.column_stack([np.interp(g, t, v[:, j]) for j in range(v.shape[1])])
        valid[g_lo:g_hi] = True
    return out, valid
