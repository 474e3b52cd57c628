"""What a simulated session looks like: activity, length, sensors, pelvic drop and noise."""

from __future__ import annotations

from dataclasses import dataclass, replace

from imu_stream.records import LOCATIONS

ACTIVITIES: tuple[str, ...] = ("walk", "run")
SPEED_RANGE_MPS: dict[str, tuple[float, float]] = {"walk": (0.8, 1.6), "run": (2.5, 5.0)}
MIN_RATE_HZ = 50.0
MAX_RATE_HZ = 416.0
MAX_CPD_DEG = 12.0
MIN_DURATION_S = 1.0


@dataclass(frozen=True)
class SimulationConfig:
    """Parameters of one simulated session; invalid values raise ValueError (one-line message).

    Every random draw comes from `seed` through separate streams, so changing one knob (CPD,
    sensors, noise, extra obliquity) leaves every other drawn quantity of the session unchanged.
    """

    activity: str = "run"  # "walk" (0.8–1.6 m/s) | "run" (2.5–5 m/s)
    duration_s: float = 60.0  # seconds of gait (after the standing period)
    rate_hz: float = 200.0  # output sample rate
    seed: int = 0
    cpd_left_deg: float = 5.0  # mean contralateral pelvic drop in LEFT stance
    cpd_right_deg: float = 5.0  # mean CPD in RIGHT stance
    sensors: tuple[str, ...] = ("sacrum", "left_thigh", "right_thigh")
    standing_s: float | None = None  # None → random 2–5 s; 0 → gait from t = 0
    speed_mps: float | None = None  # None → random within the activity's range
    random_mounting: bool = True  # each sensor mounted with a uniformly random rotation
    gyro_bias_dps: float = 0.5  # SD of the constant per-axis gyro bias
    gyro_bias_drift_dps_per_sqrt_s: float = 0.002  # random walk of the gyro bias
    acc_noise_mps2: float = 0.03  # white-noise SD
    gyro_noise_dps: float = 0.15
    # Added to obliquity during every RIGHT stance: a smooth bump 0 → extra → 0 with a plateau
    # over the middle 60 % of stance (so the true right CPD rises by exactly this much).
    extra_right_stance_obliquity_deg: float = 0.0
    acc_bias_mps2: float = 0.05  # SD of the constant per-axis accelerometer bias
    stride_cv: float = 0.02  # stride-to-stride coefficient of variation of stride time
    cpd_sd_deg: float = 0.5  # stride-to-stride SD of the CPD peak
    impact_scale: float = 1.0  # 0 switches the foot-strike vibrations off
    heading_wander_deg: float = 10.0  # largest slow change of walking direction

    def __post_init__(self) -> None:
        problem = _problem(self)
        if problem is not None:
            raise ValueError(problem)

    def noiseless(self) -> SimulationConfig:
        """The same session without sensor errors (noise, biases, drift); impacts stay."""
        return replace(
            self,
            gyro_bias_dps=0.0,
            gyro_bias_drift_dps_per_sqrt_s=0.0,
            acc_noise_mps2=0.0,
            gyro_noise_dps=0.0,
            acc_bias_mps2=0.0,
        )


def _problem(c: SimulationConfig) -> str | None:
    """The first thing wrong with a configuration, as a one-line message, or None."""
    if c.activity not in ACTIVITIES:
        return f"activity must be 'walk' or 'run', not {c.activity!r}"
    if c.seed < 0:
        return f"seed must be ≥ 0, not {c.seed}"
    if not (c.duration_s >= MIN_DURATION_S):
        return f"duration must be at least {MIN_DURATION_S:g} s, not {c.duration_s:g}"
    if not (MIN_RATE_HZ <= c.rate_hz <= MAX_RATE_HZ):
        return f"rate {c.rate_hz:g} Hz is outside {MIN_RATE_HZ:g}–{MAX_RATE_HZ:g} Hz"
    for side, cpd in (("left", c.cpd_left_deg), ("right", c.cpd_right_deg)):
        if not (0.0 <= cpd <= MAX_CPD_DEG):
            return f"cpd {side} {cpd:g}° is outside 0–{MAX_CPD_DEG:g}°"
    unknown = [s for s in c.sensors if s not in LOCATIONS]
    if unknown:
        return f"unknown sensor {unknown[0]!r}; choose from {', '.join(LOCATIONS)}"
    if len(set(c.sensors)) != len(c.sensors):
        return "a sensor location is listed twice"
    if "sacrum" not in c.sensors:
        return "sensors must include sacrum"
    if c.standing_s is not None and not (0.0 <= c.standing_s <= 600.0):
        return f"standing time must be 0–600 s, not {c.standing_s:g}"
    lo, hi = SPEED_RANGE_MPS[c.activity]
    if c.speed_mps is not None and not (lo <= c.speed_mps <= hi):
        return f"{c.activity} speed {c.speed_mps:g} m/s is outside {lo:g}–{hi:g} m/s"
    non_negative = {
        "gyro bias": c.gyro_bias_dps,
        "gyro bias drift": c.gyro_bias_drift_dps_per_sqrt_s,
        "acc noise": c.acc_noise_mps2,
        "gyro noise": c.gyro_noise_dps,
        "acc bias": c.acc_bias_mps2,
        "stride cv": c.stride_cv,
        "cpd sd": c.cpd_sd_deg,
        "impact scale": c.impact_scale,
        "heading wander": c.heading_wander_deg,
    }
    for name, value in non_negative.items():
        if not (value >= 0.0):
            return f"{name} must be ≥ 0, not {value:g}"
    if c.stride_cv > 0.1:
        return f"stride cv {c.stride_cv:g} is above 0.1"
    if abs(c.extra_right_stance_obliquity_deg) > MAX_CPD_DEG:
        return f"extra right-stance obliquity must be within ±{MAX_CPD_DEG:g}°"
    return None
