"""A whole simulated session: sensor recordings plus exact ground truth."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from imu_stream import session_io
from imu_stream.core import angles as clinical
from imu_stream.core.metrics import compute_strides
from imu_stream.records import (
    LOCATIONS,
    SIDES,
    AngleSeries,
    FloatArray,
    GaitEvent,
    SensorRecording,
    SessionInfo,
    Stride,
)
from imu_stream.sim.config import SimulationConfig
from imu_stream.sim.imu import add_sensor_errors, ideal_signals, impact_accelerations
from imu_stream.sim.kinematics import SEGMENT_OF_LOCATION, envelope, evaluate_pose, heading_rad
from imu_stream.sim.params import (
    STREAM_IMPACTS,
    STREAM_MOUNTING,
    STREAM_SENSOR_ERRORS,
    GaitParams,
    draw_gait_params,
    rng_for,
)
from imu_stream.sim.rotations import random_rotation

CHUNK_SAMPLES = 20_000  # bounds memory: a few hundred bytes per sample and segment per chunk


@dataclass
class SimulatedSession:
    """Recordings plus exact truth. Truth angle columns follow the sensors, as the analysis
    would: pelvic angles always, hip/thigh adduction of a side with its thigh sensor, knee
    abduction with both thigh and shank of that side."""

    recordings: dict[str, SensorRecording]  # sensor frame, SI units (records.SensorRecording)
    truth_events: list[GaitEvent]  # IC and FC per side, sorted by time, from the first IC
    truth_angles: AngleSeries  # at the output sample times
    truth_strides: list[Stride]  # core.metrics.compute_strides(truth_angles, truth_events)
    info: SessionInfo
    mounting: dict[str, NDArray[np.float64]]  # 3x3 sensor → segment rotation per location
    # Beyond the contract: what else the simulation knows, for tests and benchmarks.
    params: GaitParams
    truth_heading_rad: FloatArray  # walking direction at the sample times
    gyro_bias_dps: dict[str, FloatArray]  # (3,) sensor frame, at t = 0 (then a random walk)
    acc_bias_mps2: dict[str, FloatArray]  # (3,) sensor frame, constant


def truth_events(params: GaitParams) -> list[GaitEvent]:
    """IC and FC of both legs from the first IC after gait start to the end, sorted by time."""
    clock = params.clock
    phase0, phase1 = clock.phase(np.array([0.0, params.end_s]))
    times: list[FloatArray] = []
    labels: list[tuple[str, str]] = []
    for side in params.sides.values():
        k = np.arange(np.floor(phase0 - side.offset) - 1, np.ceil(phase1 - side.offset) + 2)
        for event, shift in (("IC", 0.0), ("FC", side.duty)):
            times.append(clock.time_of_phase(k + side.offset + shift))
            labels.extend([(side.side, event)] * k.size)
    t = np.concatenate(times)
    ic_times = [ti for ti, (_, ev) in zip(t, labels, strict=True) if ev == "IC"]
    first_ic = min(
        (ti for ti in ic_times if params.gait_start_s <= ti <= params.end_s), default=np.inf
    )
    events = [
        GaitEvent(float(ti), side, ev)
        for ti, (side, ev) in zip(t, labels, strict=True)
        if first_ic <= ti <= params.end_s
    ]
    events.sort(key=lambda e: (e.time_s, e.side))
    return events


def _mounting(config: SimulationConfig) -> dict[str, NDArray[np.float64]]:
    rng = rng_for(config.seed, STREAM_MOUNTING)
    drawn = {loc: random_rotation(rng) for loc in LOCATIONS}  # all drawn: stable per location
    return {loc: drawn[loc] if config.random_mounting else np.eye(3) for loc in config.sensors}


def _angle_columns(sensors: tuple[str, ...]) -> list[str]:
    names = ["pelvic_obliquity_deg", "pelvic_tilt_deg", "pelvic_rotation_deg"]
    for side in SIDES:
        if f"{side}_thigh" in sensors:
            names += [f"hip_adduction_{side}_deg", f"thigh_adduction_{side}_deg"]
            if f"{side}_shank" in sensors:
                names.append(f"knee_abduction_{side}_deg")
    return names


def _truth_angles(
    rotations: dict[str, FloatArray], heading: FloatArray, names: list[str]
) -> dict[str, FloatArray]:
    """Clinical angles from the very matrices that made the signals (core.angles)."""
    pelvis = rotations["pelvis"]
    out = {
        "pelvic_obliquity_deg": clinical.pelvic_obliquity_deg(pelvis),
        "pelvic_tilt_deg": clinical.pelvic_tilt_deg(pelvis),
        "pelvic_rotation_deg": clinical.pelvic_rotation_deg(pelvis, heading),
    }
    for side in SIDES:
        thigh = rotations.get(f"{side}_thigh")
        if thigh is None:
            continue
        out[f"hip_adduction_{side}_deg"] = clinical.hip_adduction_deg(pelvis, thigh, side)
        out[f"thigh_adduction_{side}_deg"] = clinical.thigh_adduction_deg(thigh, heading, side)
        shank = rotations.get(f"{side}_shank")
        if shank is not None:
            out[f"knee_abduction_{side}_deg"] = clinical.knee_abduction_deg(thigh, shank, side)
    return {k: v for k, v in out.items() if k in names}


def simulate(config: SimulationConfig) -> SimulatedSession:
    """Simulate one session (see SimulationConfig); deterministic for a given config."""
    params = draw_gait_params(config)
    n = round((params.standing_s + config.duration_s) * config.rate_hz)
    time_s = np.arange(n) / config.rate_hz
    params = replace(params, end_s=float(time_s[-1]))
    events = truth_events(params)
    mounting = _mounting(config)
    heading = heading_rad(params, time_s, envelope(params, time_s))
    impacts = impact_accelerations(
        params,
        time_s,
        events,
        config.sensors,
        heading,
        config.impact_scale,
        rng_for(config.seed, STREAM_IMPACTS),
    )

    names = _angle_columns(config.sensors)
    pose_locations = tuple(loc for loc in config.sensors if loc != "sacrum")
    acc = {loc: np.empty((n, 3)) for loc in config.sensors}
    gyr = {loc: np.empty((n, 3)) for loc in config.sensors}
    columns = {name: np.empty(n) for name in names}
    for start in range(0, n, CHUNK_SAMPLES):
        sl = slice(start, min(start + CHUNK_SAMPLES, n))
        chunk = ideal_signals(
            params,
            time_s[sl],
            mounting,
            impacts={loc: a[sl] for loc, a in impacts.items()},
            pose_locations=pose_locations,
        )
        for loc in config.sensors:
            acc[loc][sl] = chunk.acc[loc]
            gyr[loc][sl] = chunk.gyr[loc]
        for name, values in _truth_angles(
            chunk.pose.rotations, chunk.pose.heading_rad, names
        ).items():
            columns[name][sl] = values

    recordings: dict[str, SensorRecording] = {}
    gyro_bias: dict[str, FloatArray] = {}
    acc_bias: dict[str, FloatArray] = {}
    for loc in config.sensors:
        rng = rng_for(config.seed, STREAM_SENSOR_ERRORS + LOCATIONS.index(loc))
        noisy_acc, noisy_gyr, acc_bias[loc], gyro_bias[loc] = add_sensor_errors(
            acc[loc],
            gyr[loc],
            config.rate_hz,
            acc_noise=config.acc_noise_mps2,
            gyro_noise=config.gyro_noise_dps,
            acc_bias_sd=config.acc_bias_mps2,
            gyro_bias_sd=config.gyro_bias_dps,
            gyro_drift=config.gyro_bias_drift_dps_per_sqrt_s,
            rng=rng,
        )
        recordings[loc] = SensorRecording(
            location=loc, time_s=time_s.copy(), acc=noisy_acc, gyr=noisy_gyr
        )

    angles = AngleSeries(time_s=time_s.copy(), columns=columns)
    info = SessionInfo(
        athlete="simulated",
        activity=config.activity,
        sample_rate_hz=config.rate_hz,
        notes=(
            f"simulated: seed {config.seed}, {params.speed_mps:.2f} m/s, "
            f"{params.cadence_spm:.0f} steps/min, standing {params.standing_s:.1f} s"
        ),
        extra={
            "seed": config.seed,
            "speed_mps": params.speed_mps,
            "cadence_spm": params.cadence_spm,
            "standing_s": params.standing_s,
        },
    )
    return SimulatedSession(
        recordings=recordings,
        truth_events=events,
        truth_angles=angles,
        truth_strides=compute_strides(angles, events),
        info=info,
        mounting=mounting,
        params=params,
        truth_heading_rad=heading,
        gyro_bias_dps=gyro_bias,
        acc_bias_mps2=acc_bias,
    )


def truth_segment_orientations(
    session: SimulatedSession, time_s: FloatArray | None = None
) -> dict[str, FloatArray]:
    """Segment orientations (n, 3, 3), body → global, of the simulated sensors' segments at
    the sample times (or at `time_s`): the matrices the signals and truth angles came from."""
    t = session.truth_angles.time_s if time_s is None else np.asarray(time_s, dtype=np.float64)
    return evaluate_pose(session.params, t, tuple(session.mounting)).rotations


def truth_sensor_orientation(
    session: SimulatedSession, location: str, time_s: FloatArray | None = None
) -> FloatArray:
    """Sensor orientation R_s = R_segment · R_mount (sensor → global), (n, 3, 3)."""
    t = session.truth_angles.time_s if time_s is None else np.asarray(time_s, dtype=np.float64)
    segment = SEGMENT_OF_LOCATION[location]
    rotations = evaluate_pose(session.params, t, (location,)).rotations
    return np.asarray(rotations[segment] @ session.mounting[location])


def write_simulated_session(session: SimulatedSession, out_dir: Path) -> None:
    """Session folder of DESIGN.md §4 plus truth_events.csv, truth_strides.csv and
    truth_angles.csv (same columns as events.csv, strides.csv and angles.csv)."""
    session_io.write_session_dir(out_dir, session.recordings, session.info)
    session_io.write_events_csv(out_dir / "truth_events.csv", session.truth_events)
    session_io.write_strides_csv(out_dir / "truth_strides.csv", session.truth_strides)
    names, table = session.truth_angles.table()
    session_io.write_angles_csv(out_dir / "truth_angles.csv", names, table)
