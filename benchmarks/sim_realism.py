"""Realism of the gait simulator's sacrum signals beside real recordings, around initial contacts.

    .venv/bin/python benchmarks/sim_realism.py [--seeds 6] [--rate 100] [--waveforms] [--bands]
                                               [--noiseless] [--cpd 5]

Real: the Mobilise-D lab recordings in ../shared/datasets/mobilised-lab (sacrum, 100 Hz, INDIP
reference ICs with sides). Simulated: walking and running seeds at the same rate, default noise.
Both are measured the same way, in the world frame:

- vertical: specific force along gravity minus g. Real: gravity from a 1 s Gaussian low-pass of
  the accelerometer; simulated: the true sensor orientation.
- jerk: derivative of the Gaussian-smoothed (σ 50 ms, as the core's IC detector; and σ 20 ms, the
  steepest rise on a short scale) vertical acceleration; its peak offset is the time of its
  highest local maximum within ±40 % of a step of each reference IC, minus the IC.
- lateral: horizontal acceleration along the body's left, 1 s Gaussian trend removed. Real: the
  axis of largest horizontal variance at stride frequency (0.6–1.4 Hz), its sign from the
  dataset's documented axes (x up, z anterior, right-handed, so y points right); the reference
  sides are used only to score it. Simulated: the true heading's left; the pooled "as real" rows
  measure the simulated sensor-frame signals exactly like the real ones (gravity leaks into
  the lateral axis as the pelvis rolls, against the true sway acceleration).
- "away": the share of steps (IC to next IC) whose mean lateral acceleration points away from
  the IC's side (physiology: during single stance the pelvis accelerates towards the swing side).
- phase: stride-harmonic phase (fraction of the left stride, from left IC) of the largest
  leftward lateral acceleration (the pelvis is furthest left half a stride earlier).
"""

from __future__ import annotations

import argparse
import csv
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import numpy as np
from scipy import signal
from scipy.ndimage import gaussian_filter1d

from imu_stream.records import STANDARD_GRAVITY, FloatArray
from imu_stream.sim import SimulationConfig, simulate
from imu_stream.sim.session import truth_sensor_orientation

DATASET = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "mobilised-lab"
JERK_SIGMA_S = 0.05  # the core's IC detector
FINE_JERK_SIGMA_S = 0.02  # the steepest rise on a short scale
BANDS_HZ = ((0.5, 5.0), (5.0, 10.0), (10.0, 25.0), (25.0, 45.0))
TREND_SIGMA_S = 1.0
MAX_STEP_S = 1.2
WAVE_LAGS_S = np.arange(-0.3, 0.3001, 0.02)


@dataclass
class SacrumGait:
    """World-frame sacrum signals of one recording and its reference ICs (inside gait)."""

    name: str
    time_s: FloatArray
    vertical: FloatArray  # m/s², up positive, gravity removed
    lateral: FloatArray  # m/s², left positive, slow trend removed
    obliquity_deg: FloatArray  # roll about the pelvis's forward axis (left side down +), 0.3 Hz HP
    ic_time_s: FloatArray
    ic_left: np.ndarray  # bool per IC


@dataclass
class Realism:
    name: str
    n_ic: int
    cadence_spm: float
    vertical_rms: float  # m/s², over the steps measured
    lateral_rms: float
    obliquity_pp_deg: float  # of the mean obliquity over the left stride
    jerk_offsets_s: FloatArray
    fine_jerk_offsets_s: FloatArray
    band_rms: FloatArray  # vertical acceleration RMS (m/s²) in BANDS_HZ over the steps
    vertical_wave: FloatArray  # mean vertical acceleration at WAVE_LAGS_S from IC
    jerk_wave: FloatArray
    away_share: float
    after_left: float  # mean lateral step mean after left ICs (left positive)
    after_right: float
    leftward_phase: float
    lateral_profile: FloatArray  # mean lateral acceleration over the left stride, 50 points


def _smooth(x: FloatArray, sigma_s: float, fs: float, order: int = 0) -> FloatArray:
    out = gaussian_filter1d(x, sigma_s * fs, axis=0, mode="nearest", order=order)
    return np.asarray(out * fs**order)


def roll_deg(time_s: FloatArray, gyr_dps: FloatArray, anterior_axis: FloatArray) -> FloatArray:
    """Pelvic obliquity from the gyro alone: the integrated rate about −anterior (left side
    down positive), high-passed at 0.3 Hz (stride frequency ≥ 0.8 Hz passes)."""
    fs = 1.0 / float(np.median(np.diff(time_s)))
    angle = np.cumsum(-(gyr_dps @ anterior_axis)) / fs
    sos = signal.butter(2, 0.3, btype="high", fs=fs, output="sos")
    return np.asarray(signal.sosfiltfilt(sos, angle))


def sensor_frame_gait(
    name: str,
    time_s: FloatArray,
    acc: FloatArray,
    gyr: FloatArray,
    anterior_axis: FloatArray,
    in_gait: np.ndarray,
    ic_time_s: FloatArray,
    ic_left: np.ndarray,
) -> SacrumGait:
    """World-frame signals from the sensor frame alone, as for the real recordings: gravity from
    a 1 s low-pass, the lateral axis by PCA at stride frequency in the horizontal plane, its
    sign from `anterior_axis` (the pelvis's forward axis in the sensor frame), never from the
    sides."""
    t = time_s
    fs = 1.0 / float(np.median(np.diff(t)))
    gravity = _smooth(acc, TREND_SIGMA_S, fs)
    g = np.linalg.norm(gravity, axis=1)
    up = gravity / g[:, None]
    vertical = np.einsum("ni,ni->n", acc, up) - g
    # A pelvis-fixed horizontal basis: the anterior axis made horizontal, and left of it.
    anterior = anterior_axis - (up @ anterior_axis)[:, None] * up
    anterior /= np.linalg.norm(anterior, axis=1, keepdims=True)
    left = np.cross(up, anterior)
    horizontal = np.column_stack(
        (np.einsum("ni,ni->n", acc, anterior), np.einsum("ni,ni->n", acc, left))
    )
    sos = signal.butter(2, [0.6, 1.4], btype="band", fs=fs, output="sos")
    stride_band = signal.sosfiltfilt(sos, horizontal, axis=0)[in_gait]
    _, vectors = np.linalg.eigh(np.cov(stride_band.T))
    axis = vectors[:, -1] * np.sign(vectors[1, -1])  # towards `left`
    lateral = horizontal @ axis
    return SacrumGait(
        name,
        t,
        vertical,
        lateral - _smooth(lateral, TREND_SIGMA_S, fs),
        roll_deg(t, gyr, anterior_axis),
        ic_time_s,
        ic_left,
    )


def real_gait(folder: Path) -> SacrumGait:
    table = np.loadtxt(folder / "sacrum.csv", delimiter=",", skiprows=1)
    t, acc, gyr = table[:, 0], table[:, 1:4], table[:, 4:7]
    with (folder / "reference_ic.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    ic = np.array([float(r["time_s"]) for r in rows])
    ic_left = np.array([r["side"] == "left" for r in rows])
    bouts = np.loadtxt(folder / "reference_walking_bouts.csv", delimiter=",", skiprows=1, ndmin=2)
    in_gait = np.zeros(t.size, dtype=bool)
    for start, end in bouts:
        in_gait |= (t >= start) & (t <= end)
    # Documented axes (Mobilise-D, mobgap's coordinate-system guide): x up, z anterior.
    anterior = np.array([0.0, 0.0, 1.0])
    return sensor_frame_gait(folder.name, t, acc, gyr, anterior, in_gait, ic, ic_left)


def simulated_gait(
    activity: str,
    seed: int,
    rate_hz: float,
    noiseless: bool,
    cpd_deg: float,
    as_real: bool = False,
) -> SacrumGait:
    """Truth-frame signals of a simulated session (or, `as_real`, measured from the sensor
    frame exactly as the real recordings, the mounting standing in for the documented axes)."""
    config = SimulationConfig(
        activity=activity,
        duration_s=30.0,
        seed=seed,
        rate_hz=rate_hz,
        sensors=("sacrum",),
        cpd_left_deg=cpd_deg,
        cpd_right_deg=cpd_deg,
    )
    s = simulate(config.noiseless() if noiseless else config)
    t = s.truth_angles.time_s
    rec = s.recordings["sacrum"]
    ics = [e for e in s.truth_events if e.event == "IC"]
    # Steady gait only: after the gait-initiation ramp.
    steady = [e for e in ics if e.time_s > s.params.gait_start_s + s.params.ramp_s + 0.5]
    ic_time = np.array([e.time_s for e in steady])
    ic_left = np.array([e.side == "left" for e in steady])
    name = f"sim {activity} seed {seed}"
    anterior = s.mounting["sacrum"][0]  # sensor → pelvis: row 0 is the pelvis's forward
    if as_real:
        in_gait = t > s.params.gait_start_s + s.params.ramp_s
        return sensor_frame_gait(name, t, rec.acc, rec.gyr, anterior, in_gait, ic_time, ic_left)
    world = np.einsum("nij,nj->ni", truth_sensor_orientation(s, "sacrum"), rec.acc)
    heading = s.truth_heading_rad
    lateral = -np.sin(heading) * world[:, 0] + np.cos(heading) * world[:, 1]
    return SacrumGait(
        name,
        t,
        world[:, 2] - STANDARD_GRAVITY,
        lateral - _smooth(lateral, TREND_SIGMA_S, rate_hz),
        roll_deg(t, rec.gyr, anterior),
        ic_time,
        ic_left,
    )


def jerk_peak_offsets(gait: SacrumGait, sigma_s: float, half_window_s: float) -> FloatArray:
    """Time of the highest local maximum of the σ-smoothed vertical jerk within ±window of
    each IC, minus the IC."""
    t = gait.time_s
    fs = 1.0 / float(np.median(np.diff(t)))
    jerk = _smooth(gait.vertical, sigma_s, fs, order=1)
    offsets = []
    for ti in gait.ic_time_s:
        idx = np.flatnonzero(np.abs(t - ti) <= half_window_s)
        peaks, _ = signal.find_peaks(jerk[idx])
        if peaks.size:
            offsets.append(t[idx[peaks[np.argmax(jerk[idx][peaks])]]] - ti)
    return np.array(offsets)


def measure(gait: SacrumGait) -> Realism:
    t, ic = gait.time_s, gait.ic_time_s
    fs = 1.0 / float(np.median(np.diff(t)))
    jerk = _smooth(gait.vertical, JERK_SIGMA_S, fs, order=1)
    steps = np.diff(ic)
    ok = steps < MAX_STEP_S  # a step inside gait, not across a pause
    half_window = 0.4 * float(np.median(steps[ok]))
    inside = (ic + WAVE_LAGS_S[0] >= t[0]) & (ic + WAVE_LAGS_S[-1] <= t[-1])
    grid = ic[inside, None] + WAVE_LAGS_S[None, :]
    csum = np.concatenate([[0.0], np.cumsum(gait.lateral)])
    i0, i1 = np.searchsorted(t, ic[:-1][ok]), np.searchsorted(t, ic[1:][ok])
    step_mean = (csum[i1] - csum[i0]) / np.maximum(i1 - i0, 1)
    left = gait.ic_left[:-1][ok]
    away = np.where(left, step_mean < 0.0, step_mean > 0.0)
    in_steps = np.zeros(t.size, dtype=bool)
    for a, b in zip(i0, i1, strict=True):
        in_steps[a:b] = True
    bands = []
    for lo, hi in BANDS_HZ:
        sos = signal.butter(4, [lo, min(hi, 0.45 * fs)], btype="band", fs=fs, output="sos")
        bands.append(np.sqrt(np.mean(signal.sosfiltfilt(sos, gait.vertical)[in_steps] ** 2)))
    # Stride profile from left IC to the next left IC (via the right IC between them).
    profiles, roll = [], []
    left_ic = ic[gait.ic_left]
    for a, b in pairwise(left_ic):
        if b - a < 2.0 * MAX_STEP_S:
            u = a + (b - a) * np.arange(50) / 50.0
            profiles.append(np.interp(u, t, gait.lateral))
            roll.append(np.interp(u, t, gait.obliquity_deg))
    profile = np.mean(profiles, axis=0)
    first = np.fft.rfft(profile)[1]
    return Realism(
        name=gait.name,
        n_ic=ic.size,
        cadence_spm=60.0 / float(np.median(steps[ok])),
        vertical_rms=float(np.sqrt(np.mean(gait.vertical[in_steps] ** 2))),
        lateral_rms=float(np.sqrt(np.mean(gait.lateral[in_steps] ** 2))),
        obliquity_pp_deg=float(np.ptp(np.mean(roll, axis=0))),
        jerk_offsets_s=jerk_peak_offsets(gait, JERK_SIGMA_S, half_window),
        fine_jerk_offsets_s=jerk_peak_offsets(gait, FINE_JERK_SIGMA_S, half_window),
        band_rms=np.array(bands),
        vertical_wave=np.interp(grid, t, gait.vertical).mean(axis=0),
        jerk_wave=np.interp(grid, t, jerk).mean(axis=0),
        away_share=float(away.mean()),
        after_left=float(step_mean[left].mean()),
        after_right=float(step_mean[~left].mean()),
        leftward_phase=float((-np.angle(first) / (2.0 * np.pi)) % 1.0),
        lateral_profile=profile,
    )


def pooled(name: str, parts: list[Realism]) -> Realism:
    n = np.array([p.n_ic for p in parts], dtype=float)

    def avg(values: list[float]) -> float:
        return float(np.average(values, weights=n))

    return Realism(
        name=name,
        n_ic=int(n.sum()),
        cadence_spm=avg([p.cadence_spm for p in parts]),
        vertical_rms=avg([p.vertical_rms for p in parts]),
        lateral_rms=avg([p.lateral_rms for p in parts]),
        obliquity_pp_deg=avg([p.obliquity_pp_deg for p in parts]),
        jerk_offsets_s=np.concatenate([p.jerk_offsets_s for p in parts]),
        fine_jerk_offsets_s=np.concatenate([p.fine_jerk_offsets_s for p in parts]),
        band_rms=np.sqrt(np.average([p.band_rms**2 for p in parts], axis=0, weights=n)),
        vertical_wave=np.average([p.vertical_wave for p in parts], axis=0, weights=n),
        jerk_wave=np.average([p.jerk_wave for p in parts], axis=0, weights=n),
        away_share=avg([p.away_share for p in parts]),
        after_left=avg([p.after_left for p in parts]),
        after_right=avg([p.after_right for p in parts]),
        leftward_phase=float(
            np.angle(np.average([np.exp(2j * np.pi * p.leftward_phase) for p in parts], weights=n))
            / (2.0 * np.pi)
            % 1.0
        ),
        lateral_profile=np.average([p.lateral_profile for p in parts], axis=0, weights=n),
    )


HEADER = (
    f"{'source':<24}{'ICs':>4}{'spm':>5}  {'σ50 jerk peak − IC (ms)':>26}  {'σ20':>4}  "
    f"{'acc peak':>15}  {'rms V':>5}  {'rms L':>5}  {'obl':>4}  "
    f"{'away':>5}  {'after L':>7}  {'after R':>7}  {'phase':>5}"
)


def row(r: Realism) -> str:
    off = r.jerk_offsets_s * 1000.0
    k = int(np.argmax(np.where(WAVE_LAGS_S >= -0.05, r.vertical_wave, -np.inf)))
    peak = f"{r.vertical_wave[k]:+.1f} @ {WAVE_LAGS_S[k] * 1000:+.0f} ms"
    jerk = f"mean {off.mean():+5.1f} med {np.median(off):+4.0f} sd {off.std():4.1f}"
    return (
        f"{r.name:<24}{r.n_ic:>4}{r.cadence_spm:>5.0f}  {jerk:>26}  "
        f"{r.fine_jerk_offsets_s.mean() * 1000:+4.0f}  {peak:>15}  "
        f"{r.vertical_rms:5.2f}  {r.lateral_rms:5.2f}  {r.obliquity_pp_deg:4.1f}  "
        f"{r.away_share:5.2f}  "
        f"{r.after_left:+7.2f}  {r.after_right:+7.2f}  {r.leftward_phase:5.2f}"
    )


def waves(r: Realism) -> str:
    lags = " ".join(f"{x * 1000:+5.0f}" for x in WAVE_LAGS_S[::2])
    acc = " ".join(f"{x:+5.1f}" for x in r.vertical_wave[::2])
    jerk = " ".join(f"{x:+5.0f}" for x in r.jerk_wave[::2])
    lateral = " ".join(f"{x:+5.1f}" for x in r.lateral_profile[::2])
    return (
        f"  {r.name}\n    lag ms {lags}\n    acc    {acc}\n    jerk   {jerk}\n"
        f"    lateral over the left stride (every 4 %): {lateral}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=6)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--waveforms", action="store_true", help="print mean waveforms at IC")
    parser.add_argument("--noiseless", action="store_true", help="simulate without sensor errors")
    parser.add_argument("--bands", action="store_true", help="print vertical RMS by band")
    parser.add_argument(
        "--cpd", type=float, default=5.0, help="simulated CPD both sides (deg; default 5)"
    )
    args = parser.parse_args()

    print(
        "spm: steps/min; acc peak: largest mean vertical acceleration (m/s²) from 50 ms before "
        "IC on; rms V/L: vertical/lateral acceleration (m/s²); obl: peak-to-peak of the mean "
        "pelvic obliquity over the stride from the gyro (deg); after L/R: mean lateral "
        "acceleration (m/s², left +) over the step after a left/right IC; away: share of steps "
        "accelerating away from the IC side; phase: of the largest leftward acceleration, "
        "fraction of the left stride"
    )
    print(HEADER)
    tables: list[Realism] = []
    if DATASET.is_dir():
        real = [measure(real_gait(p)) for p in sorted(DATASET.iterdir()) if p.is_dir()]
        for r in real:
            print(row(r))
        tables.append(pooled("REAL pooled", real))
        print(row(tables[-1]))
    else:
        print(f"(real recordings not found at {DATASET})")
    for activity in ("walk", "run"):
        sims = [
            measure(simulated_gait(activity, seed, args.rate, args.noiseless, args.cpd))
            for seed in range(args.seeds)
        ]
        for r in sims:
            print(row(r))
        tables.append(pooled(f"SIM {activity} pooled", sims))
        print(row(tables[-1]))
        as_real = [
            measure(
                simulated_gait(activity, seed, args.rate, args.noiseless, args.cpd, as_real=True)
            )
            for seed in range(args.seeds)
        ]
        tables.append(pooled(f"SIM {activity} as real", as_real))
        print(row(tables[-1]))
    if args.bands:
        names = "  ".join(f"{lo:g}–{hi:g} Hz" for lo, hi in BANDS_HZ)
        print(f"\nvertical acceleration RMS (m/s²) during the steps: {names}")
        for r in tables:
            print(f"  {r.name:<22}" + "".join(f"{x:>10.2f}" for x in r.band_rms))
    if args.waveforms:
        print(
            "\nmean vertical acceleration (m/s²) and σ 50 ms jerk (m/s³) around IC, and mean "
            "lateral acceleration (m/s², left +) from left IC (0 %) to the next:"
        )
        for r in tables:
            print(waves(r))


if __name__ == "__main__":
    main()
