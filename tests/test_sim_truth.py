"""Ground truth of the simulator: events, pelvic drop, angles and strides agree with each other."""

from __future__ import annotations

from dataclasses import replace
from itertools import pairwise

import numpy as np
import pytest

from imu_stream.core import angles as clinical
from imu_stream.core.metrics import compute_strides
from imu_stream.records import ANGLE_COLUMNS, SIDES
from imu_stream.sim import SimulatedSession, SimulationConfig, simulate
from imu_stream.sim.kinematics import (
    envelope,
    heading_rad,
    pelvis_angles_deg,
    thigh_angles_deg,
)
from imu_stream.sim.params import draw_gait_params
from imu_stream.sim.session import truth_segment_orientations

ALL_SENSORS = ("sacrum", "left_thigh", "right_thigh", "left_shank", "right_shank")


@pytest.fixture(scope="module", params=["walk", "run"])
def session(request: pytest.FixtureRequest) -> SimulatedSession:
    config = SimulationConfig(
        activity=request.param,
        duration_s=40.0,
        seed=11,
        cpd_left_deg=4.0,
        cpd_right_deg=7.0,
        sensors=ALL_SENSORS,
    )
    return simulate(config)


def _drops(session: SimulatedSession, side: str) -> np.ndarray:
    return np.array([s.pelvic_drop_deg for s in session.truth_strides if s.side == side])


def test_truth_cpd_matches_requested_means(session: SimulatedSession) -> None:
    left, right = _drops(session, "left"), _drops(session, "right")
    assert left.size > 15 and right.size > 15
    # Requested 4° and 7°; the spec allows 1.5°, the model is built to land much closer.
    assert abs(left.mean() - 4.0) < 0.5
    assert abs(right.mean() - 7.0) < 0.5
    # Per-stride peaks vary (SD 0.5° drawn) but never change side or sign.
    assert 0.2 < right.std() < 1.0
    assert np.all(left > 0.0) and np.all(right > 0.0)


def test_events_alternate_and_have_plausible_timing(session: SimulatedSession) -> None:
    events = session.truth_events
    assert events[0].event == "IC"
    assert events[0].time_s >= session.params.gait_start_s
    assert events[-1].time_s <= session.truth_angles.time_s[-1]
    times = [e.time_s for e in events]
    assert times == sorted(times)
    ics = [e for e in events if e.event == "IC"]
    assert all(a.side != b.side for a, b in pairwise(ics))
    # Exactly one FC of a leg between two of its ICs.
    for side in SIDES:
        side_ic = np.array([e.time_s for e in events if e.side == side and e.event == "IC"])
        side_fc = np.array([e.time_s for e in events if e.side == side and e.event == "FC"])
        assert np.all(np.histogram(side_fc, bins=side_ic)[0] == 1)

    strides = session.truth_strides
    stride_t = np.array([s.stride_time_s for s in strides])
    duty = np.array([s.stance_time_s / s.stride_time_s for s in strides])
    cadence = np.array([s.cadence_spm for s in strides])
    if session.info.activity == "walk":
        assert np.all((duty > 0.59) & (duty < 0.64))
        assert np.all((cadence > 90) & (cadence < 135))
    else:
        assert np.all((duty > 0.32) & (duty < 0.41))
        assert np.all((cadence > 150) & (cadence < 195))
    steady = stride_t[[s.start_s > session.params.gait_start_s + 3.0 for s in strides]]
    cv = steady.std() / steady.mean()
    assert 0.008 < cv < 0.04
    assert all(s.quality == 0 for s in strides)

    # Right IC about half a stride after the left IC.
    left_ic = np.array([e.time_s for e in ics if e.side == "left"])
    right_ic = np.array([e.time_s for e in ics if e.side == "right"])
    k = np.searchsorted(right_ic, left_ic[:-1])
    ok = k < right_ic.size
    frac = (right_ic[k[ok]] - left_ic[:-1][ok]) / np.diff(left_ic)[ok]
    assert np.all(np.abs(frac - 0.5) < 0.05)


def test_truth_angles_come_from_the_signal_matrices(session: SimulatedSession) -> None:
    t = session.truth_angles.time_s
    rotations = truth_segment_orientations(session)
    heading = session.truth_heading_rad
    cols = session.truth_angles.columns
    pelvis = rotations["pelvis"]
    np.testing.assert_allclose(
        cols["pelvic_obliquity_deg"], clinical.pelvic_obliquity_deg(pelvis), atol=1e-9
    )
    np.testing.assert_allclose(
        cols["hip_adduction_right_deg"],
        clinical.hip_adduction_deg(pelvis, rotations["right_thigh"], "right"),
        atol=1e-9,
    )
    np.testing.assert_allclose(
        cols["thigh_adduction_left_deg"],
        clinical.thigh_adduction_deg(rotations["left_thigh"], heading, "left"),
        atol=1e-9,
    )
    np.testing.assert_allclose(
        cols["knee_abduction_left_deg"],
        clinical.knee_abduction_deg(rotations["left_thigh"], rotations["left_shank"], "left"),
        atol=1e-9,
    )
    # The frame contract: the angles put into the model are exactly what core.angles reads back.
    params = session.params
    phase, env = params.clock.phase(t), envelope(params, t)
    obliquity, tilt, rotation = pelvis_angles_deg(params, t, phase, env)
    np.testing.assert_allclose(cols["pelvic_obliquity_deg"], obliquity, atol=1e-9)
    np.testing.assert_allclose(cols["pelvic_tilt_deg"], tilt, atol=1e-9)
    np.testing.assert_allclose(cols["pelvic_rotation_deg"], rotation, atol=1e-9)
    for side in SIDES:
        _, adduction, _ = thigh_angles_deg(params.sides[side], params, phase, env)
        np.testing.assert_allclose(cols[f"thigh_adduction_{side}_deg"], adduction, atol=1e-9)
    # Peak hip adduction follows peak thigh adduction + the drop of the other hemipelvis
    # (not exactly: the peaks differ in time and pelvic rotation with a flexed hip adds some).
    right = [st for st in session.truth_strides if st.side == "right"]
    hip = np.array([st.hip_adduction_peak_deg for st in right])
    approx = np.array([st.thigh_adduction_peak_deg + st.pelvic_drop_deg for st in right])
    assert np.corrcoef(hip, approx)[0, 1] > 0.99
    assert abs(np.mean(hip - approx)) < 4.0
    assert set(session.truth_angles.column_names()) == set(ANGLE_COLUMNS[1:]) | {
        "knee_abduction_left_deg",
        "knee_abduction_right_deg",
    }


def test_truth_strides_are_core_metrics_of_truth(session: SimulatedSession) -> None:
    again = compute_strides(session.truth_angles, session.truth_events)
    assert again == session.truth_strides
    # Thigh and knee peaks are present because both sensors of each leg are simulated.
    assert all(np.isfinite(s.knee_abduction_peak_deg) for s in session.truth_strides)
    expected_strides = sum(1 for e in session.truth_events if e.event == "IC") - 2
    assert len(session.truth_strides) == expected_strides


def test_extra_right_stance_obliquity_raises_only_right_cpd() -> None:
    base = SimulationConfig(activity="run", duration_s=25.0, seed=3, cpd_left_deg=5.0)
    plain = simulate(base)
    extra = simulate(replace(base, extra_right_stance_obliquity_deg=3.0))
    d_right = _drops(extra, "right") - _drops(plain, "right")
    d_left = _drops(extra, "left") - _drops(plain, "left")
    assert abs(d_right.mean() - 3.0) < 0.1
    assert np.max(np.abs(d_left)) < 0.1
    # After the gait-initiation ramp every right stride gets exactly the extra 3°.
    steady = [s.start_s > plain.params.gait_start_s + 2.0 for s in plain.truth_strides]
    steady_right = [
        st for st, s in zip(steady, plain.truth_strides, strict=True) if s.side == "right"
    ]
    np.testing.assert_allclose(d_right[steady_right], 3.0, atol=1e-6)
    # Nothing else moved: same events, same thigh angles.
    assert extra.truth_events == plain.truth_events
    np.testing.assert_array_equal(
        extra.truth_angles.columns["thigh_adduction_left_deg"],
        plain.truth_angles.columns["thigh_adduction_left_deg"],
    )


def test_standing_then_gait_initiation() -> None:
    s = simulate(SimulationConfig(activity="walk", duration_s=8.0, seed=4, standing_s=3.0))
    t = s.truth_angles.time_s
    quiet = t < 3.0
    for name, values in s.truth_angles.columns.items():
        assert np.max(np.abs(values[quiet])) < 0.1, name
    assert s.truth_events[0].event == "IC"
    assert 3.0 < s.truth_events[0].time_s < 3.0 + 0.6 / s.params.stride_hz
    # Without standing the gait is in full swing from the first sample.
    s0 = simulate(SimulationConfig(activity="walk", duration_s=8.0, seed=4, standing_s=0.0))
    first_second = s0.truth_angles.time_s < 1.0
    assert np.ptp(s0.truth_angles.columns["pelvic_obliquity_deg"][first_second]) > 3.0


def test_heading_wanders_slowly_within_bound() -> None:
    for seed in (0, 1, 2):
        params = draw_gait_params(SimulationConfig(duration_s=300.0, seed=seed, standing_s=0.0))
        t = np.arange(0.0, 300.0, 0.1)
        heading = np.degrees(heading_rad(params, t, envelope(params, t)))
        assert np.abs(heading).max() <= 10.0
        assert np.ptp(heading) > 1.0  # it does wander
        assert np.abs(np.gradient(heading, t)).max() < 3.0  # slowly: periods ≥ 20 s
