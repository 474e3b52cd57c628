"""Segment orientations and sensor positions of the simulated athlete at any times.

Frames (DESIGN.md §3, the contract with the estimator): global x = walking direction at the
start, y = left, z = up; segment frames x anterior, y left, z up (thigh and shank z along the
long axis, pointing proximally); in quiet standing every segment frame is the heading frame.

    pelvis  R_p = Rz(heading − rotation) · Ry(tilt) · Rx(−obliquity)
    thigh   R_t = Rz(heading) · Rx(±adduction) · Ry(−flexion) · Rz(±internal rotation)
    shank   R_s = R_t · Ry(knee flexion) · Rx(∓valgus)

(upper signs right leg, lower left), so that the clinical angles of `imu_stream.core.angles`
return exactly the pelvic angles and the thigh adduction put in here; hip adduction and knee
abduction follow from the matrices. Positions are global and relative to the forward
progression ∫ speed·(cos heading, sin heading, 0) dt, which is handled analytically.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from imu_stream.records import SIDES, FloatArray
from imu_stream.sim.params import GaitParams, SideParams, stride_values
from imu_stream.sim.rotations import apply, rot_z, then_rotate
from imu_stream.sim.shapes import (
    PeriodicCurve,
    evaluate_together,
    plateau,
    smootherstep,
    stance_bump,
)

SEGMENT_OF_LOCATION: dict[str, str] = {
    "sacrum": "pelvis",
    "left_thigh": "left_thigh",
    "right_thigh": "right_thigh",
    "left_shank": "left_shank",
    "right_shank": "right_shank",
}
# Body geometry (m), in the frame of the segment each vector is attached to.
SACRUM_SENSOR = np.array([-0.10, 0.0, 0.0])  # behind the pelvis centre
HIP_JOINT = {"left": np.array([0.0, 0.09, -0.05]), "right": np.array([0.0, -0.09, -0.05])}
THIGH_SENSOR = {"left": np.array([0.0, 0.07, -0.20]), "right": np.array([0.0, -0.07, -0.20])}
KNEE_JOINT = np.array([0.0, 0.0, -0.42])
SHANK_SENSOR = {"left": np.array([0.0, 0.06, -0.20]), "right": np.array([0.0, -0.06, -0.20])}


@dataclass
class Pose:
    """The body at times `time_s`: what the IMU signals and the truth angles are made from."""

    time_s: FloatArray
    heading_rad: FloatArray
    speed_mps: FloatArray  # forward progression speed along the heading
    rotations: dict[str, FloatArray]  # segment → (n, 3, 3) body → global
    sensor_positions: dict[str, FloatArray]  # location → (n, 3) global, minus the progression


def envelope(params: GaitParams, t: FloatArray) -> FloatArray:
    """Gait amplitude: 0 while standing, C2 ramp to 1 over `ramp_s`, 1 without standing."""
    if params.ramp_s <= 0.0:
        return np.ones_like(t)
    return smootherstep((t - params.standing_s) / params.ramp_s)


def speed_envelope(params: GaitParams, t: FloatArray) -> FloatArray:
    """Forward speed ramps up more slowly than the amplitudes (over `speed_ramp_s`)."""
    if params.ramp_s <= 0.0:
        return np.ones_like(t)
    return smootherstep((t - params.standing_s) / params.speed_ramp_s)


def heading_rad(params: GaitParams, t: FloatArray, env: FloatArray) -> FloatArray:
    """Walking direction: 0 until gait starts, then a slow wander (periods ≥ 20 s)."""
    tau = (t - params.standing_s)[:, None]
    arg = 2.0 * np.pi * tau / params.wander_period_s + params.wander_phase
    wander = np.sin(arg) - np.sin(params.wander_phase)
    return np.asarray(env * np.radians(wander @ params.wander_amp_deg))


def _side_phase(
    params: GaitParams, phase: FloatArray, side: SideParams
) -> tuple[FloatArray, FloatArray]:
    """(ψ in [0, 1), stride number) of one leg."""
    p = phase - side.offset
    k = np.floor(p)
    return p - k, k


def _stride_bump(
    params: GaitParams,
    side: SideParams,
    per_stride: FloatArray,
    psi: FloatArray,
    k: FloatArray,
    start: float,
    end: float,
    peak_at_stance: float,
) -> FloatArray:
    """Sum over strides of per-stride peak × bump over ψ ∈ [start, end] of each stride (start
    may be before IC, in the previous stride), peaking at `peak_at_stance` of the stance."""
    peak_at = (peak_at_stance * side.duty - start) / (end - start)
    peak_at = min(max(peak_at, 0.3), 0.7)
    out = np.zeros_like(psi)
    for ahead in (0.0, 1.0):  # this stride's bump, and the next one's if it starts early
        if ahead and start >= 0.0:
            continue
        peak = stride_values(params, per_stride, k + ahead)
        out += peak * stance_bump((psi - ahead - start) / (end - start), peak_at)
    return out


def pelvis_angles_deg(
    params: GaitParams, t: FloatArray, phase: FloatArray, env: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """(obliquity, tilt, rotation) in degrees, the angles `core.angles` reads back."""
    obliquity = np.zeros_like(t)
    for side in params.sides.values():
        psi, k = _side_phase(params, phase, side)
        sign = 1.0 if side.side == "right" else -1.0  # right stance: left side drops (+)
        margin = side.obliquity_flight_share * max(side.flight_end - side.duty, 0.0)
        obliquity += sign * _stride_bump(
            params,
            side,
            side.cpd_peaks_deg,
            psi,
            k,
            start=-margin,
            end=side.duty + margin,
            peak_at_stance=side.obliquity_peak_at,
        )
        if side.side == "right" and params.extra_right_obliquity_deg != 0.0:
            obliquity += params.extra_right_obliquity_deg * plateau(psi / side.duty)
    still = 1.0 - env
    f_obl, f_tilt = params.sway_hz[0], params.sway_hz[1]
    obliquity = env * obliquity + still * params.sway_deg * np.sin(2 * np.pi * f_obl * t)
    tilt = env * (
        params.tilt_mean_deg
        + params.tilt_amp_deg * np.cos(4.0 * np.pi * (phase - params.tilt_phase))
    ) + still * params.sway_deg * np.sin(2 * np.pi * f_tilt * t + 1.0)
    rotation = env * (
        params.rotation_mean_deg
        + params.rotation_amp_deg * np.cos(2.0 * np.pi * (phase - params.rotation_phase))
    )
    return obliquity, tilt, rotation


# Thigh adduction rises from late swing, peaks in stance and is gone early in swing: a bump
# over [−0.08, duty + 0.1] of the stride (broader than stance, as measured thigh adduction).
_ADDUCTION_LEAD = 0.08
_ADDUCTION_LAG = 0.1
_SWING_END = 0.92


def thigh_angles_deg(
    side: SideParams, params: GaitParams, phase: FloatArray, env: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """(flexion, adduction (knee medial +), internal rotation) of one thigh, degrees."""
    psi, k = _side_phase(params, phase, side)
    start, end = -_ADDUCTION_LEAD, side.duty + _ADDUCTION_LAG
    adduction = _stride_bump(
        params,
        side,
        side.thigh_adduction_peaks_deg,
        psi,
        k,
        start=start,
        end=end,
        peak_at_stance=side.thigh_adduction_peak_at,
    )
    swing = (psi - end) / (_SWING_END - end)
    adduction -= side.thigh_swing_abduction_deg * stance_bump(swing, 0.5)
    rotation = side.thigh_rotation_mean_deg + side.thigh_rotation_amp_deg * np.sin(
        2.0 * np.pi * (psi - side.thigh_rotation_phase)
    )
    return env * side.thigh_flexion_deg(psi), env * adduction, env * rotation


def knee_angles_deg(
    side: SideParams, params: GaitParams, phase: FloatArray, env: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """(flexion, valgus) of one knee, degrees."""
    psi, k = _side_phase(params, phase, side)
    peak = stride_values(params, side.knee_valgus_peaks_deg, k)
    swing = (psi - side.duty) / (1.0 - side.duty)
    valgus = peak * stance_bump(psi / side.duty, 0.4)
    valgus -= side.knee_swing_varus_deg * stance_bump(swing, 0.5)
    return env * side.knee_flexion_deg(psi), env * valgus


def pelvis_translation(params: GaitParams) -> list[PeriodicCurve]:
    """Pelvis-centre displacement (m·Hz², heading frame x, y, z) of both legs' stances, as
    curves of the left-leg stride phase."""
    sides = list(params.sides.values())
    return [
        sum(
            (s.translation[axis].shifted(s.offset) for s in sides[1:]),
            sides[0].translation[axis].shifted(sides[0].offset),
        )
        for axis in range(3)
    ]


def evaluate_pose(params: GaitParams, t: FloatArray, locations: tuple[str, ...]) -> Pose:
    """Orientations of the segments the locations need, and the sensor positions."""
    t = np.asarray(t, dtype=np.float64)
    env = envelope(params, t)
    phase = params.clock.phase(t)
    freq = params.clock.frequency_hz(t)
    heading = heading_rad(params, t, env)
    rz_heading = rot_z(heading)

    obliquity, tilt, rotation = pelvis_angles_deg(params, t, phase, env)
    pelvis = then_rotate(rot_z(heading - np.radians(rotation)), 1, np.radians(tilt))
    pelvis = then_rotate(pelvis, 0, -np.radians(obliquity))
    rotations = {"pelvis": pelvis}

    # Pelvis centre in the heading frame: each leg's stance moves it; sway while standing.
    # A leg's ψ is the left phase minus its offset, so both legs fold into one curve per axis.
    q = evaluate_together(pelvis_translation(params), phase)
    q *= (env / (freq * freq))[:, None]
    still = 1.0 - env
    q[:, 0] += still * params.sway_m * np.sin(2 * np.pi * params.sway_hz[2] * t)
    q[:, 1] += still * params.sway_m * np.sin(2 * np.pi * params.sway_hz[3] * t + 2.0)
    c, s = np.cos(heading), np.sin(heading)
    centre = np.column_stack((c * q[:, 0] - s * q[:, 1], s * q[:, 0] + c * q[:, 1], q[:, 2]))

    positions: dict[str, FloatArray] = {}
    if "sacrum" in locations:
        positions["sacrum"] = centre + apply(pelvis, SACRUM_SENSOR)
    for side_name in SIDES:
        thigh_loc, shank_loc = f"{side_name}_thigh", f"{side_name}_shank"
        if thigh_loc not in locations and shank_loc not in locations:
            continue
        side = params.sides[side_name]
        sign = 1.0 if side_name == "right" else -1.0
        flexion, adduction, internal = thigh_angles_deg(side, params, phase, env)
        thigh = then_rotate(rz_heading, 0, sign * np.radians(adduction))
        thigh = then_rotate(thigh, 1, -np.radians(flexion))
        thigh = then_rotate(thigh, 2, sign * np.radians(internal))
        rotations[thigh_loc] = thigh
        hip = centre + apply(pelvis, HIP_JOINT[side_name])
        if thigh_loc in locations:
            positions[thigh_loc] = hip + apply(thigh, THIGH_SENSOR[side_name])
        if shank_loc in locations:
            knee_flexion, valgus = knee_angles_deg(side, params, phase, env)
            shank = then_rotate(thigh, 1, np.radians(knee_flexion))
            shank = then_rotate(shank, 0, -sign * np.radians(valgus))
            rotations[shank_loc] = shank
            knee = hip + apply(thigh, KNEE_JOINT)
            positions[shank_loc] = knee + apply(shank, SHANK_SENSOR[side_name])

    speed = params.speed_mps * speed_envelope(params, t) * freq / params.stride_hz
    return Pose(
        time_s=t,
        heading_rad=heading,
        speed_mps=np.asarray(speed),
        rotations=rotations,
        sensor_positions=positions,
    )
