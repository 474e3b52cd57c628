"""Simulated IMU signals are physically consistent with the simulated body motion."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from scipy.interpolate import CubicSpline

from imu_stream.records import STANDARD_GRAVITY, FloatArray
from imu_stream.sim import SimulatedSession, SimulationConfig, simulate
from imu_stream.sim.kinematics import evaluate_pose
from imu_stream.sim.rotations import angle_between_deg
from imu_stream.sim.session import truth_sensor_orientation

ALL_SENSORS = ("sacrum", "left_thigh", "right_thigh", "left_shank", "right_shank")
G_UP = np.array([0.0, 0.0, STANDARD_GRAVITY])


@pytest.fixture(scope="module", params=["walk", "run"])
def clean(request: pytest.FixtureRequest) -> SimulatedSession:
    """Noiseless, no foot-strike vibrations: the signals are the kinematics alone."""
    config = SimulationConfig(
        activity=request.param,
        duration_s=8.0,
        seed=21,
        rate_hz=200.0,
        sensors=ALL_SENSORS,
        impact_scale=0.0,
    ).noiseless()
    return simulate(config)


def _steady_stride(session: SimulatedSession) -> tuple[int, int]:
    t = session.truth_angles.time_s
    stride = next(s for s in session.truth_strides if s.start_s > session.params.gait_start_s + 3)
    i0, i1 = np.searchsorted(t, [stride.start_s, stride.end_s])
    return int(i0), int(i1)


def _skew(w: FloatArray) -> FloatArray:
    return np.array([[0.0, -w[2], w[1]], [w[2], 0.0, -w[0]], [-w[1], w[0], 0.0]])


def _integrate_gyro(
    start: FloatArray, t: FloatArray, gyr_dps: FloatArray, i0: int, i1: int
) -> FloatArray:
    """Body-rate strapdown: RK4 on Ṙ = R·[ω]×, ω cubic-interpolated between samples."""
    omega = CubicSpline(t, np.radians(gyr_dps))
    out = [start]
    r = start.copy()
    for k in range(i0, i1):
        dt, tk = t[k + 1] - t[k], t[k]
        k1 = r @ _skew(omega(tk))
        k2 = (r + 0.5 * dt * k1) @ _skew(omega(tk + 0.5 * dt))
        k3 = (r + 0.5 * dt * k2) @ _skew(omega(tk + 0.5 * dt))
        k4 = (r + dt * k3) @ _skew(omega(tk + dt))
        r = r + dt / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
        u, _, vt = np.linalg.svd(r)
        r = u @ vt
        out.append(r)
    return np.array(out)


def test_integrated_gyro_reproduces_orientation(clean: SimulatedSession) -> None:
    i0, i1 = _steady_stride(clean)
    for loc, rec in clean.recordings.items():
        truth = truth_sensor_orientation(clean, loc)
        est = _integrate_gyro(truth[i0], rec.time_s, rec.gyr, i0, i1)
        err = angle_between_deg(est, truth[i0 : i1 + 1])
        assert err.max() < 0.01, loc  # spec: < 0.05° over a stride
        # ...and the sensor really turned during that stride.
        assert angle_between_deg(truth[i0 : i0 + 1], truth[(i0 + i1) // 2][None])[0] > 2.0


def test_specific_force_integrates_to_velocity_change(clean: SimulatedSession) -> None:
    """∫ (R_s·f − g) dt over a stride equals the change of the sensor's true velocity."""
    i0, i1 = _steady_stride(clean)
    t = clean.truth_angles.time_s
    h = 1e-4
    locations = tuple(clean.recordings)
    before = evaluate_pose(clean.params, t[[i0, i1]] - h, locations)
    after = evaluate_pose(clean.params, t[[i0, i1]] + h, locations)
    now = evaluate_pose(clean.params, t[[i0, i1]], locations)
    heading = now.heading_rad
    progression = now.speed_mps[:, None] * np.column_stack(
        (np.cos(heading), np.sin(heading), np.zeros(2))
    )
    for loc, rec in clean.recordings.items():
        rot = truth_sensor_orientation(clean, loc)
        acc_global = np.einsum("nij,nj->ni", rot, rec.acc) - G_UP
        dv = CubicSpline(t, acc_global).integrate(t[i0], t[i1])
        vel = (after.sensor_positions[loc] - before.sensor_positions[loc]) / (2 * h)
        vel = vel + progression
        np.testing.assert_allclose(dv, vel[1] - vel[0], atol=2e-3, err_msg=loc)


def test_specific_force_averages_to_gravity_over_strides() -> None:
    s = simulate(SimulationConfig(activity="run", duration_s=30.0, seed=5))
    strides = [st for st in s.truth_strides if st.side == "left"]
    t = s.truth_angles.time_s
    i0, i1 = np.searchsorted(t, [strides[2].start_s, strides[-1].end_s])
    for loc, rec in s.recordings.items():
        rot = truth_sensor_orientation(s, loc, t[i0:i1])
        mean_global = np.einsum("nij,nj->ni", rot, rec.acc[i0:i1]).mean(axis=0)
        np.testing.assert_allclose(mean_global, G_UP, atol=0.1, err_msg=loc)
    # The sacrum turns only a few degrees: even in its own frame the mean is about g (once the
    # drawn accelerometer bias, SD 0.05 m/s² per axis, is taken off).
    sacrum_mean = s.recordings["sacrum"].acc[i0:i1].mean(axis=0) - s.acc_bias_mps2["sacrum"]
    assert abs(np.linalg.norm(sacrum_mean) - STANDARD_GRAVITY) < 0.1
    # Running: the sacrum sees 2–3.5 g in stance and about 0 in flight.
    norm = np.linalg.norm(s.recordings["sacrum"].acc[i0:i1], axis=1)
    assert 2.0 * STANDARD_GRAVITY < norm.max() < 4.0 * STANDARD_GRAVITY
    assert norm.min() < 0.3 * STANDARD_GRAVITY


def test_standing_still_reads_gravity_and_gyro_bias() -> None:
    s = simulate(SimulationConfig(activity="walk", duration_s=5.0, seed=8, standing_s=4.0))
    quiet = s.truth_angles.time_s < 3.8
    for loc, rec in s.recordings.items():
        norm = np.linalg.norm(rec.acc[quiet], axis=1)
        assert abs(norm.mean() - STANDARD_GRAVITY) < 0.2, loc
        assert norm.std() < 0.1
        np.testing.assert_allclose(
            rec.gyr[quiet].mean(axis=0), s.gyro_bias_dps[loc], atol=0.1, err_msg=loc
        )
        assert np.abs(s.gyro_bias_dps[loc]).max() > 0.05  # a real bias was drawn
        assert rec.gyr[quiet].std(axis=0).max() < 0.4  # noise 0.15 dps + tiny sway


def test_random_mounting_rotates_sensor_frames() -> None:
    base = SimulationConfig(activity="walk", duration_s=3.0, seed=2, standing_s=2.0).noiseless()
    fixed = simulate(replace(base, random_mounting=False))
    rotated = simulate(base)
    quiet = fixed.truth_angles.time_s < 1.8
    for loc in base.sensors:
        mount = rotated.mounting[loc]
        np.testing.assert_allclose(mount @ mount.T, np.eye(3), atol=1e-12)
        assert np.linalg.det(mount) == pytest.approx(1.0)
        np.testing.assert_array_equal(fixed.mounting[loc], np.eye(3))
        # Identity mounting: standing reads +g on the segment's up axis.
        f_fixed = fixed.recordings[loc].acc[quiet].mean(axis=0)
        np.testing.assert_allclose(f_fixed, G_UP, atol=0.02)
        # Random mounting: the same specific force seen through the mount, not along z.
        f_rot = rotated.recordings[loc].acc[quiet].mean(axis=0)
        np.testing.assert_allclose(f_rot, mount.T @ G_UP, atol=0.02)
        assert f_rot[2] < 0.95 * STANDARD_GRAVITY
    # Locations get different mounts.
    assert not np.allclose(rotated.mounting["sacrum"], rotated.mounting["left_thigh"])


def test_gyro_axes_and_signs_in_the_segment_frame(clean: SimulatedSession) -> None:
    """Through the mount, the sensor reads segment axes x anterior, y left, z up."""
    t = clean.truth_angles.time_s
    steady = t > clean.params.gait_start_s + 2.0
    gyr_pelvis = clean.recordings["sacrum"].gyr @ clean.mounting["sacrum"].T
    # Obliquity positive = left side down = rotation about −x of the pelvis.
    obliquity_rate = np.gradient(clean.truth_angles.columns["pelvic_obliquity_deg"], t)
    assert np.corrcoef(gyr_pelvis[steady, 0], -obliquity_rate[steady])[0, 1] > 0.95
    # Anterior tilt = rotation about +y; rotation (left side forward) = about −z.
    tilt_rate = np.gradient(clean.truth_angles.columns["pelvic_tilt_deg"], t)
    assert np.corrcoef(gyr_pelvis[steady, 1], tilt_rate[steady])[0, 1] > 0.95
    rotation_rate = np.gradient(clean.truth_angles.columns["pelvic_rotation_deg"], t)
    assert np.corrcoef(gyr_pelvis[steady, 2], -rotation_rate[steady])[0, 1] > 0.9
    assert np.degrees(np.abs(clean.truth_heading_rad)).max() <= 10.0 + 1e-9


def test_same_seed_same_session_and_sensor_set_independent() -> None:
    cfg = SimulationConfig(activity="run", duration_s=4.0, seed=9)
    a, b = simulate(cfg), simulate(cfg)
    np.testing.assert_array_equal(a.recordings["sacrum"].acc, b.recordings["sacrum"].acc)
    fewer = simulate(replace(cfg, sensors=("sacrum",)))
    np.testing.assert_array_equal(a.recordings["sacrum"].gyr, fewer.recordings["sacrum"].gyr)
    assert fewer.truth_events == a.truth_events
    assert "hip_adduction_left_deg" not in fewer.truth_angles.columns
    other = simulate(replace(cfg, seed=10))
    assert not np.allclose(other.recordings["sacrum"].acc[:100], a.recordings["sacrum"].acc[:100])
