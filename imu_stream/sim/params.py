"""Drawing one simulated athlete and session: timing, joint patterns, pelvic motion.

Every quantity is drawn from its own random stream of the seed, in a fixed order and whether or
not it is then overridden by the configuration, so a knob changes only what it names.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from imu_stream.records import SIDES, FloatArray
from imu_stream.sim.config import SPEED_RANGE_MPS, SimulationConfig
from imu_stream.sim.shapes import PeriodicCurve
from imu_stream.sim.timing import StrideClock
from imu_stream.sim.translation import Translation, running_translation, walking_translation

# Random streams of one seed (second entropy word); fixed forever so seeds stay reproducible.
STREAM_SESSION = 1
STREAM_CLOCK = 2
STREAM_STRIDES = 3
STREAM_MOUNTING = 4
STREAM_IMPACTS = 5
STREAM_LOADING = 6  # weight-acceptance and impact transients of the pelvis
STREAM_SENSOR_ERRORS = 100  # + index of the location in records.LOCATIONS


def rng_for(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, stream]))


@dataclass(frozen=True)
class SideParams:
    """What one leg does over its stride phase ψ ∈ [0, 1) (0 = its IC, `duty` = its FC)."""

    side: str
    offset: float  # left-stride phase of this side's IC (left 0, right ≈ 0.5)
    duty: float  # stance / stride
    flight_end: float  # ψ of the other side's IC (> duty when there is a flight phase)
    # Pelvic obliquity contributed by this side's stance: peak = CPD (deg) per stride.
    cpd_peaks_deg: FloatArray
    obliquity_peak_at: float  # fraction of stance
    # The obliquity bump starts this fraction of the flight before IC and ends as much after
    # FC (running: the pelvis is already moving at contact); 0 when walking.
    obliquity_flight_share: float
    thigh_flexion_deg: PeriodicCurve
    thigh_adduction_peaks_deg: FloatArray  # per stride, knee-medial positive
    thigh_adduction_peak_at: float
    thigh_swing_abduction_deg: float
    thigh_rotation_mean_deg: float  # internal positive
    thigh_rotation_amp_deg: float
    thigh_rotation_phase: float
    knee_flexion_deg: PeriodicCurve
    knee_valgus_peaks_deg: FloatArray  # per stride
    knee_swing_varus_deg: float
    # Pelvis-centre displacement of this leg's ground contact, heading frame (x fwd, y left,
    # z up), in m·Hz²: divided by the squared stride frequency it is metres, so its second
    # time derivative is the contact's acceleration whatever the current cadence
    # (see `translation`).
    translation: Translation


@dataclass(frozen=True)
class GaitParams:
    activity: str
    speed_mps: float
    cadence_spm: float
    stride_hz: float
    standing_s: float
    ramp_s: float  # amplitude ramp-in after standing (0 = gait from t = 0 at full amplitude)
    speed_ramp_s: float  # forward speed ramp-in after standing
    end_s: float  # time of the last sample
    clock: StrideClock
    stride_index0: int  # stride number of element 0 of the per-stride arrays
    sides: dict[str, SideParams]
    # Pelvis (deg): tilt at step frequency, rotation at stride frequency, of the left phase.
    tilt_mean_deg: float
    tilt_amp_deg: float
    tilt_phase: float
    rotation_mean_deg: float
    rotation_amp_deg: float
    rotation_phase: float
    extra_right_obliquity_deg: float
    # Slow change of walking direction: Σ amp·(sin(2π t/period + phase) − sin(phase)).
    wander_amp_deg: FloatArray
    wander_period_s: FloatArray
    wander_phase: FloatArray
    # Quiet-standing sway (deg, m, Hz).
    sway_deg: float
    sway_m: float
    sway_hz: FloatArray  # (4,) obliquity, tilt, x, y

    @property
    def gait_start_s(self) -> float:
        return self.standing_s


def _uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def _cadence_spm(activity: str, speed: float, noise: float) -> float:
    lo, hi = SPEED_RANGE_MPS[activity]
    frac = (speed - lo) / (hi - lo)
    if activity == "walk":
        return float(np.clip(100.0 + 25.0 * frac + 3.0 * noise, 98.0, 126.0))
    return float(np.clip(160.0 + 25.0 * frac + 4.0 * noise, 157.0, 186.0))


def _thigh_flexion_curve(activity: str, duty: float, rng: np.random.Generator) -> PeriodicCurve:
    """Sagittal thigh angle vs vertical (deg, flexion positive) over the stride."""
    if activity == "walk":
        ic = _uniform(rng, 22.0, 28.0)
        ext = -_uniform(rng, 12.0, 18.0)
        late = ic + _uniform(rng, 3.0, 7.0)
        points = [
            (0.0, ic),
            (0.5 * duty, 0.5 * (ic + ext) + 2.0),
            (duty - 0.08, ext),
            (duty + 0.1, ext + 0.5 * (late - ext)),
            (0.87, late),
        ]
    else:
        ic = _uniform(rng, 35.0, 45.0)
        ext = -_uniform(rng, 15.0, 25.0)
        late = _uniform(rng, 47.0, 53.0)
        points = [
            (0.0, ic),
            (0.5 * duty, 0.5 * (ic + ext) + 3.0),
            (duty + 0.01, ext),
            (duty + 0.15, ext + 0.45 * (late - ext)),
            (0.8, late),
        ]
    return PeriodicCurve.from_control_points(points, harmonics=10)


def _knee_flexion_curve(activity: str, duty: float, rng: np.random.Generator) -> PeriodicCurve:
    """Knee flexion (deg) over the stride; used only when shank sensors are simulated."""
    if activity == "walk":
        ic = _uniform(rng, 2.0, 6.0)
        points = [
            (0.0, ic),
            (0.15, _uniform(rng, 15.0, 20.0)),
            (0.40, _uniform(rng, 4.0, 8.0)),
            (duty, _uniform(rng, 35.0, 40.0)),
            (0.72, _uniform(rng, 58.0, 66.0)),
            (0.88, 28.0),
        ]
    else:
        ic = _uniform(rng, 15.0, 22.0)
        points = [
            (0.0, ic),
            (0.45 * duty, _uniform(rng, 38.0, 45.0)),
            (duty + 0.02, _uniform(rng, 18.0, 24.0)),
            (0.68, _uniform(rng, 90.0, 105.0)),
            (0.9, 40.0),
        ]
    return PeriodicCurve.from_control_points(points, harmonics=10)


def draw_gait_params(config: SimulationConfig) -> GaitParams:
    rng = rng_for(config.seed, STREAM_SESSION)
    activity = config.activity
    lo, hi = SPEED_RANGE_MPS[activity]
    speed = _uniform(rng, lo, hi)
    if config.speed_mps is not None:
        speed = config.speed_mps
    cadence = _cadence_spm(activity, speed, float(np.clip(rng.normal(), -2.0, 2.0)))
    stride_hz = cadence / 120.0
    standing = _uniform(rng, 2.0, 5.0)
    if config.standing_s is not None:
        standing = config.standing_s
    end_s = standing + config.duration_s
    leading_right = bool(rng.integers(2))
    right_offset = 0.5 + _uniform(rng, -0.015, 0.015)

    if activity == "walk":
        base_duty = _uniform(rng, 0.605, 0.625)
    else:
        frac = (speed - lo) / (hi - lo)
        base_duty = float(np.clip(0.395 - 0.055 * frac + rng.normal(0.0, 0.01), 0.335, 0.395))
    duties = {s: base_duty + _uniform(rng, -0.005, 0.005) for s in SIDES}
    offsets = {"left": 0.0, "right": right_offset}

    # Stride clock: with standing, the leading leg's first IC comes 0.45 stride after gait
    # start (the other leg's previous IC is then before the start, so the first event is an IC).
    random_phase = _uniform(rng, 0.0, 1.0)
    if standing > 0.0:
        lead_offset = offsets["right"] if leading_right else offsets["left"]
        phase_at_start = lead_offset - 0.45
        ramp_s = 1.2 / stride_hz
    else:
        phase_at_start = random_phase
        ramp_s = 0.0
    speed_ramp_s = 2.0 / stride_hz if ramp_s > 0.0 else 0.0
    clock = StrideClock.build(
        stride_hz,
        t_ref=standing,
        phase_ref=phase_at_start,
        t_end=end_s,
        stride_cv=config.stride_cv,
        rng=rng_for(config.seed, STREAM_CLOCK),
    )
    phases = clock.phase(np.array([0.0, end_s]))
    stride_index0 = int(np.floor(phases[0])) - 3
    n_strides = int(np.ceil(phases[1])) + 3 - stride_index0

    walk = activity == "walk"
    per_stride = rng_for(config.seed, STREAM_STRIDES)
    loading = rng_for(config.seed, STREAM_LOADING)
    sides: dict[str, SideParams] = {}
    for side in SIDES:
        cpd_mean = config.cpd_left_deg if side == "left" else config.cpd_right_deg
        cpd_noise = per_stride.standard_normal(n_strides)
        thigh_noise = per_stride.standard_normal(n_strides)
        knee_noise = per_stride.standard_normal(n_strides)
        duty = duties[side]
        other = "right" if side == "left" else "left"
        flight_end = (offsets[other] - offsets[side]) % 1.0
        thigh_add_mean = _uniform(rng, 2.0, 6.0) if walk else _uniform(rng, 5.0, 10.0)
        knee_valgus_mean = _uniform(rng, 0.0, 3.0)
        sides[side] = SideParams(
            side=side,
            offset=offsets[side],
            duty=duty,
            flight_end=flight_end,
            cpd_peaks_deg=np.maximum(cpd_mean + config.cpd_sd_deg * cpd_noise, 0.0),
            obliquity_peak_at=_uniform(rng, 0.3, 0.38) if walk else _uniform(rng, 0.35, 0.5),
            obliquity_flight_share=0.0 if walk else _uniform(rng, 0.25, 0.4),
            thigh_flexion_deg=_thigh_flexion_curve(activity, duty, rng),
            thigh_adduction_peaks_deg=np.maximum(thigh_add_mean + 0.6 * thigh_noise, 0.5),
            thigh_adduction_peak_at=_uniform(rng, 0.3, 0.45),
            thigh_swing_abduction_deg=_uniform(rng, 0.5, 1.5),
            thigh_rotation_mean_deg=_uniform(rng, -2.0, 2.0),
            thigh_rotation_amp_deg=_uniform(rng, 3.0, 5.0),
            thigh_rotation_phase=_uniform(rng, 0.0, 1.0),
            knee_flexion_deg=_knee_flexion_curve(activity, duty, rng),
            knee_valgus_peaks_deg=knee_valgus_mean + 0.5 * knee_noise,
            knee_swing_varus_deg=_uniform(rng, 0.0, 2.0),
            translation=(
                walking_translation(side, duty, stride_hz, speed, rng, loading)
                if walk
                else running_translation(side, duty, stride_hz, rng, loading)
            ),
        )

    return GaitParams(
        activity=activity,
        speed_mps=speed,
        cadence_spm=cadence,
        stride_hz=stride_hz,
        standing_s=standing,
        ramp_s=ramp_s,
        speed_ramp_s=speed_ramp_s,
        end_s=end_s,
        clock=clock,
        stride_index0=stride_index0,
        sides=sides,
        tilt_mean_deg=_uniform(rng, -1.0, 1.0) if walk else _uniform(rng, 0.0, 3.0),
        tilt_amp_deg=_uniform(rng, 1.0, 2.0) if walk else _uniform(rng, 1.5, 3.0),
        # Most anterior tilt (of two per stride) late in single stance when walking (Kadaba
        # et al. 1990) and just after toe-off when running (Schache et al. 1999).
        tilt_phase=_uniform(rng, 0.38, 0.46) if walk else _uniform(rng, 0.36, 0.46),
        rotation_mean_deg=float(np.clip(rng.normal(0.0, 1.0), -2.0, 2.0)),
        rotation_amp_deg=_uniform(rng, 3.0, 6.0) if walk else _uniform(rng, 4.0, 8.0),
        rotation_phase=_uniform(rng, -0.05, 0.05),
        extra_right_obliquity_deg=config.extra_right_stance_obliquity_deg,
        # |sin(a) − sin(b)| ≤ 2, so three terms of at most wander/6 stay within ±wander.
        wander_amp_deg=rng.uniform(0.2, 1.0, 3) * config.heading_wander_deg / 6.0,
        wander_period_s=rng.uniform(20.0, 90.0, 3),
        wander_phase=rng.uniform(0.0, 2.0 * np.pi, 3),
        sway_deg=0.05,
        sway_m=0.002,
        sway_hz=rng.uniform(0.15, 0.4, 4),
    )


def stride_values(params: GaitParams, per_stride: FloatArray, index: FloatArray) -> FloatArray:
    """Per-stride values at integer stride numbers (clipped to the drawn range)."""
    i = np.clip(index.astype(np.int64) - params.stride_index0, 0, per_stride.size - 1)
    return per_stride[i]
