"""Pelvis-centre translation due to one leg's stance: what the sacral accelerometer feels.

Each curve is a function of the leg's stride phase ψ (0 = its IC, `duty` = its FC), in m·Hz²:
divided by the squared stride frequency it is metres, so its second ψ-derivative is the
acceleration in m/s² whatever the current cadence. Curves are built as accelerations and
integrated twice (zero mean: the pelvis comes back every stride), heading frame x forward,
y left, z up. The two legs' curves add.

Walking
- vertical: an inverted pendulum (highest at mid single stance) plus weight acceptance: from IC
  the acceleration rises sharply to a peak 45–65 ms later. Real sacrum recordings (Mobilise-D
  lab data, `benchmarks/sim_realism.py`) show a mean peak of about +3 m/s² 40–60 ms after IC, a
  trough of −1 to −2 m/s² in mid single stance and the σ 50 ms jerk peak about 10 ms before IC
  (per recording 2–47 ms before); the transient's size relative to the pendulum and its peak
  time are drawn to span that.
  The total excursion comes from the speed (Orendurff et al. 2004, J Rehabil Res Dev 41:829:
  about 2.7 cm at 0.7 m/s to 4.8 cm at 1.6 m/s).
- lateral: the pelvis sways towards the stance leg, furthest over it in mid single stance
  (excursion about 7 cm at 0.7 m/s falling to 4 cm at 1.6 m/s, Orendurff et al. 2004), so its
  acceleration points away from the stance leg through single stance, with a short push away
  from it at weight acceptance (as in the real recordings).
- forward: the speed fluctuates at step frequency.

Running: forces act only in stance (the flight is ballistic).
- vertical: spring–mass loading, a half sine over stance that starts rising at IC, plus the
  heel-strike impact peak 15–30 ms after IC as the pelvis feels it (attenuated).
- forward: braking, then propulsion.
- lateral: the leg force points from the foot, just lateral of the body's line, to the pelvis,
  so it pushes the pelvis away from the stance leg in proportion to the vertical force.

No drawn parameter can flip a sign: the sway always peaks over the stance leg and every
stance transient pushes away from it.
"""

from __future__ import annotations

import numpy as np

from imu_stream.records import STANDARD_GRAVITY, FloatArray
from imu_stream.sim.shapes import PeriodicCurve

PHASE_GRID = 1024  # samples per stride when building the curves
HARMONICS = 40  # enough for a 20 ms impact peak at the fastest running cadence

Translation = tuple[PeriodicCurve, PeriodicCurve, PeriodicCurve]


def _uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def onset_peak(tau_s: FloatArray, peak_s: float, sharpness: float) -> FloatArray:
    """0 before τ = 0, then (τ/τp)^k·e^{k(1 − τ/τp)}: a C2 rise from zero at τ = 0 to 1 at
    τ = τp, decaying after it (a loading transient that starts at contact)."""
    x = np.maximum(np.asarray(tau_s, dtype=np.float64) / peak_s, 0.0)
    return np.asarray(x**sharpness * np.exp(sharpness * (1.0 - x)))


def _displacement(acc: FloatArray) -> PeriodicCurve:
    """m·Hz² curve of the ψ-samples of an acceleration (m/s²), mean removed."""
    return PeriodicCurve.from_samples(acc, HARMONICS).double_integral()


def _both_legs_pp(curve: PeriodicCurve, mirrored: bool) -> float:
    """Peak-to-peak of this leg's curve plus the other leg's, half a stride later (negated
    for lateral motion, which mirrors)."""
    psi = np.arange(PHASE_GRID) / PHASE_GRID
    other = curve(psi - 0.5)
    return float(np.ptp(curve(psi) + (-other if mirrored else other)))


def _scaled_to(
    curve: PeriodicCurve, pp_m: float, stride_hz: float, mirrored: bool
) -> PeriodicCurve:
    return curve.scaled(pp_m * stride_hz * stride_hz / _both_legs_pp(curve, mirrored))


def walking_translation(
    side: str,
    duty: float,
    stride_hz: float,
    speed: float,
    rng: np.random.Generator,
    loading_rng: np.random.Generator,
) -> Translation:
    """Pelvis-centre displacement (m·Hz²) due to one leg in walking (0.8–1.6 m/s)."""
    psi = np.arange(PHASE_GRID) / PHASE_GRID
    mid = 0.5 * duty  # mid single stance
    away = -1.0 if side == "left" else 1.0  # direction (y) away from the stance leg
    frac = (speed - 0.8) / 0.8
    sway_pp = (0.066 - 0.03 * frac) * _uniform(rng, 0.85, 1.15)
    vertical_pp = float(np.clip(0.02 + 0.03 * frac + rng.normal(0.0, 0.003), 0.02, 0.05))
    speed_swing = _uniform(rng, 0.06, 0.12) * (0.7 + 0.6 * frac)  # ± m/s about the mean
    # Weight acceptance: its peak time and its size relative to the pendulum's acceleration.
    load_peak_s = _uniform(loading_rng, 0.045, 0.065)
    load_ratio = _uniform(loading_rng, 3.0, 4.5)
    push_ratio = _uniform(loading_rng, 1.0, 2.0)

    tau = psi / stride_hz  # seconds after this leg's IC
    step_wave = 4.0 * np.pi * (psi - mid)
    loading = onset_peak(tau, load_peak_s, 2.5)
    vertical = -np.cos(step_wave) + load_ratio * loading
    push = onset_peak(tau, 1.6 * load_peak_s, 4.0)  # narrower than the vertical one
    lateral = away * (np.cos(2.0 * np.pi * (psi - mid)) + push_ratio * push)
    forward = -0.5 * speed_swing / (4.0 * np.pi) * stride_hz * np.sin(step_wave)
    return (
        PeriodicCurve.from_samples(forward, 4),
        _scaled_to(_displacement(lateral), sway_pp, stride_hz, mirrored=True),
        _scaled_to(_displacement(vertical), vertical_pp, stride_hz, mirrored=False),
    )


def running_translation(
    side: str,
    duty: float,
    stride_hz: float,
    rng: np.random.Generator,
    loading_rng: np.random.Generator,
) -> Translation:
    """Pelvis-centre displacement (m·Hz²) due to one leg in running (2.5–5 m/s)."""
    psi = np.arange(PHASE_GRID) / PHASE_GRID
    away = -1.0 if side == "left" else 1.0
    sway_pp = _uniform(rng, 0.015, 0.03)
    braking = _uniform(rng, 0.3, 0.5) * STANDARD_GRAVITY
    impact_bw = _uniform(loading_rng, 0.1, 0.5)  # heel strikers high, forefoot strikers low
    impact_peak_s = _uniform(loading_rng, 0.015, 0.03)

    x = np.minimum(psi / duty, 1.0)
    stance = psi < duty
    spring = np.where(stance, np.sin(np.pi * x), 0.0)
    impact = np.where(stance, onset_peak(psi / stride_hz, impact_peak_s, 2.0), 0.0)
    force = spring + impact_bw * impact
    # This leg carries half the body weight on average: zero mean acceleration over the stride;
    # the peak is about π/(4·duty) ≈ 2–2.4 body weights.
    acc_z = STANDARD_GRAVITY * (0.5 * force / force.mean() - 0.5)
    shape = np.where(stance, np.sin(2.0 * np.pi * x) * np.sin(np.pi * x) ** 2, 0.0)
    acc_x = -braking * shape / 0.6495  # braking, then propulsion (peak 1, zero net)
    lateral = away * spring
    # As curves of ψ, the double integrals of these accelerations (m/s²) are in m·Hz².
    return (
        _displacement(acc_x),
        _scaled_to(_displacement(lateral), sway_pp, stride_hz, mirrored=True),
        _displacement(acc_z),
    )
