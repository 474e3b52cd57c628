"""IMU signals from the kinematics: specific force and angular rate in the sensor frame.

    R_s = R_segment · R_mount            sensor → global
    f   = R_sᵀ (a + (0, 0, g))           a = second derivative of the sensor position
    ω   = vee(R_sᵀ dR_s/dt)               deg/s

Derivatives are central differences of the exact kinematics over ±`FD_STEP_S` (0.25 ms; the
kinematics are smooth to well beyond that, the relative truncation error is < 1e-4 and the
rounding error, on positions of about a metre, < 1e-7 m/s²). The forward progression is
differentiated analytically. Foot-strike vibrations and sensor errors are added on top.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from imu_stream.records import STANDARD_GRAVITY, FloatArray, GaitEvent
from imu_stream.sim.kinematics import SEGMENT_OF_LOCATION, Pose, envelope, evaluate_pose
from imu_stream.sim.params import GaitParams

FD_STEP_S = 2.5e-4
GRAVITY_UP = np.array([0.0, 0.0, STANDARD_GRAVITY])


@dataclass
class IdealSignals:
    """Noiseless signals of one chunk of samples and the pose they were made from."""

    pose: Pose
    acc: dict[str, FloatArray]  # location → (n, 3) m/s², sensor frame
    gyr: dict[str, FloatArray]  # location → (n, 3) deg/s, sensor frame


def _body_rate(rot: FloatArray, rate: FloatArray) -> FloatArray:
    """vee(Rᵀ·Ṙ) (rad/s) for stacks; (Rᵀ·Ṙ)[a, b] = Σ_k R[k, a]·Ṙ[k, b], skew part only."""

    def entry(a: int, b: int) -> FloatArray:
        return np.asarray(np.einsum("nk,nk->n", rot[:, :, a], rate[:, :, b]))

    return 0.5 * np.column_stack(
        (entry(2, 1) - entry(1, 2), entry(0, 2) - entry(2, 0), entry(1, 0) - entry(0, 1))
    )


def ideal_signals(
    params: GaitParams,
    t: FloatArray,
    mounting: dict[str, FloatArray],
    impacts: dict[str, FloatArray] | None = None,
    pose_locations: Sequence[str] = (),
) -> IdealSignals:
    """Specific force and angular rate at times `t` for every location in `mounting`.

    `impacts` (location → (n, 3) global accelerations at `t`) are added before the rotation to
    the sensor frame. `pose_locations` adds segments to the returned pose (for truth angles).
    """
    locations = tuple(dict.fromkeys([*mounting, *pose_locations]))
    h = FD_STEP_S
    now = evaluate_pose(params, t, locations)
    before = evaluate_pose(params, t - h, tuple(mounting))
    after = evaluate_pose(params, t + h, tuple(mounting))

    # Progression v·u(heading): its derivative is v̇·u + v·ψ̇·u⊥.
    speed_rate = (after.speed_mps - before.speed_mps) / (2.0 * h)
    heading_rate = (after.heading_rad - before.heading_rad) / (2.0 * h)
    c, s = np.cos(now.heading_rad), np.sin(now.heading_rad)
    zeros = np.zeros_like(c)
    forward = np.column_stack((c, s, zeros))
    leftward = np.column_stack((-s, c, zeros))
    progression_acc = (
        speed_rate[:, None] * forward + (now.speed_mps * heading_rate)[:, None] * leftward
    )

    # Body angular rate of each segment; the sensor's is its mountᵀ image.
    segment_rate = {
        seg: _body_rate(
            now.rotations[seg], (after.rotations[seg] - before.rotations[seg]) / (2.0 * h)
        )
        for seg in {SEGMENT_OF_LOCATION[loc] for loc in mounting}
    }

    acc: dict[str, FloatArray] = {}
    gyr: dict[str, FloatArray] = {}
    for loc, mount in mounting.items():
        seg = SEGMENT_OF_LOCATION[loc]
        pos = (
            after.sensor_positions[loc]
            - 2.0 * now.sensor_positions[loc]
            + before.sensor_positions[loc]
        )
        accel = pos / (h * h) + progression_acc
        if impacts is not None and loc in impacts:
            accel = accel + impacts[loc]
        specific = accel + GRAVITY_UP
        # Segment frame: Rᵀ·f; sensor frame: mountᵀ·(segment frame) = (segment row) · mount.
        specific_segment = np.einsum("nji,nj->ni", now.rotations[seg], specific)
        acc[loc] = specific_segment @ mount
        gyr[loc] = np.degrees(segment_rate[seg] @ mount)
    return IdealSignals(pose=now, acc=acc, gyr=gyr)


# Foot-strike vibration amplitudes (m/s²; the sampled first lobe peaks at about half of this):
# (vertical, posterior) for the stance side and the other side. Running ≈ 3 × walking. The
# walking sacrum's matches real recordings: vertical acceleration of about 0.2 m/s² RMS in
# 10–25 Hz and under 0.1 above 25 Hz during gait (`benchmarks/sim_realism.py --bands`).
_IMPACT_AMPLITUDE: dict[str, dict[str, tuple[tuple[float, float], tuple[float, float]]]] = {
    "run": {
        "sacrum": ((14.0, 6.0), (14.0, 6.0)),
        "thigh": ((40.0, 10.0), (8.0, 2.0)),
        "shank": ((80.0, 20.0), (12.0, 3.0)),
    },
    "walk": {
        "sacrum": ((2.5, 1.5), (2.5, 1.5)),
        "thigh": ((12.0, 4.0), (3.0, 1.0)),
        "shank": ((25.0, 6.0), (4.0, 1.0)),
    },
}
# In walking the sacrum's vibration also has a lateral part, first towards the IC side (the
# foot lands lateral of the body's line: a brief lateral force at contact); real recordings show
# about 0.7 times the vertical RMS laterally in 10–25 Hz. No running recordings size it there.
_SACRUM_LATERAL_IMPACT: dict[str, float] = {"run": 0.0, "walk": 1.75}
_IMPACT_DECAYS = 6.0  # vibrations are cut after this many decay times


def _vibration(tau: FloatArray, freq_hz: FloatArray, decay_s: float) -> FloatArray:
    """d/dτ [e^{−τ/τd} sin²(π f τ)/(π f)]: starts at 0, rises sharply, first lobe +1·e^{−τ/τd},
    and integrates to ~0 (a vibration, not a change of velocity)."""
    damp = np.exp(-tau / decay_s)
    pf = np.pi * freq_hz
    wave = damp * (np.sin(2.0 * pf * tau) - np.sin(pf * tau) ** 2 / (pf * decay_s))
    return np.where(tau >= 0.0, wave, 0.0)


def impact_accelerations(
    params: GaitParams,
    time_s: FloatArray,
    events: Sequence[GaitEvent],
    locations: Sequence[str],
    heading: FloatArray,
    scale: float,
    rng: np.random.Generator,
) -> dict[str, FloatArray]:
    """Global accelerations (n, 3) of the foot-strike vibrations at every location.

    At each IC: a damped 10–25 Hz vibration with a sharp vertical rise, strongest at the
    stance side's thigh and shank, with a brief posterior (braking) component, and at the
    sacrum a lateral one.
    """
    ics = [e for e in events if e.event == "IC"]
    n_ic = len(ics)
    ic_time = np.array([e.time_s for e in ics])
    ic_right = np.array([e.side == "right" for e in ics], dtype=bool)
    strength = scale * rng.uniform(0.75, 1.25, n_ic) * np.sqrt(envelope(params, ic_time))
    rate = (time_s.size - 1) / (time_s[-1] - time_s[0]) if time_s.size > 1 else 1.0
    out: dict[str, FloatArray] = {}
    for loc in ("sacrum", "left_thigh", "right_thigh", "left_shank", "right_shank"):
        # Draw for every location so the sensor set does not change the other draws.
        base_freq = rng.uniform(12.0, 22.0)
        decay = rng.uniform(0.02, 0.04)
        freq = np.clip(base_freq + rng.normal(0.0, 1.5, n_ic), 10.0, 25.0)
        if loc not in locations or n_ic == 0:
            continue
        part = "sacrum" if loc == "sacrum" else loc.split("_")[1]
        stance_amp, other_amp = _IMPACT_AMPLITUDE[params.activity][part]
        on_right = loc.startswith("right")
        same_side = ic_right == on_right if loc != "sacrum" else np.ones(n_ic, dtype=bool)
        vertical = np.where(same_side, stance_amp[0], other_amp[0]) * strength
        posterior = np.where(same_side, stance_amp[1], other_amp[1]) * strength

        length = int(np.ceil(_IMPACT_DECAYS * decay * rate)) + 2
        first = np.searchsorted(time_s, ic_time)
        idx = first[:, None] + np.arange(length)[None, :]
        valid = idx < time_s.size
        idx_c = np.minimum(idx, time_s.size - 1)
        tau = time_s[idx_c] - ic_time[:, None]
        wave = np.where(valid, _vibration(tau, freq[:, None], decay), 0.0)
        # The braking pulse is slower than the vertical ring-down.
        brake = np.where(valid, _vibration(tau, 0.6 * freq[:, None], decay), 0.0)
        hd = heading[idx_c]
        acc = np.zeros((time_s.size, 3))
        flat = idx_c.ravel()
        # Towards the IC side: the heading's left for a left IC, its right for a right one.
        lateral = np.where(ic_right, -1.0, 1.0) * strength
        lateral *= _SACRUM_LATERAL_IMPACT[params.activity] if loc == "sacrum" else 0.0
        vals_x = -posterior[:, None] * brake * np.cos(hd) - lateral[:, None] * wave * np.sin(hd)
        vals_y = -posterior[:, None] * brake * np.sin(hd) + lateral[:, None] * wave * np.cos(hd)
        vals_z = (vertical[:, None] * wave).ravel()
        np.add.at(acc[:, 0], flat, vals_x.ravel())
        np.add.at(acc[:, 1], flat, vals_y.ravel())
        np.add.at(acc[:, 2], flat, vals_z)
        out[loc] = acc
    return out


def add_sensor_errors(
    acc: FloatArray,
    gyr: FloatArray,
    rate_hz: float,
    acc_noise: float,
    gyro_noise: float,
    acc_bias_sd: float,
    gyro_bias_sd: float,
    gyro_drift: float,
    rng: np.random.Generator,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Noisy copies of the signals plus the constant accelerometer bias and the gyro bias at
    the first sample: (acc, gyr, acc_bias (3,), gyro_bias0 (3,))."""
    n = acc.shape[0]
    acc_bias = acc_bias_sd * rng.standard_normal(3)
    gyro_bias0 = gyro_bias_sd * rng.standard_normal(3)
    walk = gyro_drift * np.sqrt(1.0 / rate_hz) * rng.standard_normal((n, 3))
    walk[0] = 0.0
    gyro_bias = gyro_bias0 + np.cumsum(walk, axis=0)
    noisy_acc = acc + acc_bias + acc_noise * rng.standard_normal((n, 3))
    noisy_gyr = gyr + gyro_bias + gyro_noise * rng.standard_normal((n, 3))
    return noisy_acc, noisy_gyr, acc_bias, gyro_bias0
