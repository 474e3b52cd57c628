"""Unit checks of the core's building blocks against closed-form cases."""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d

from imu_stream.core import angles, trig
from imu_stream.core.calibration import align_sacrum
from imu_stream.core.events import step_sequence_masks
from imu_stream.core.filters import gaussian_lowpass
from imu_stream.core.lowpass import LowpassState
from imu_stream.core.metrics import compute_strides
from imu_stream.core.rotations import integrate_gyro, quat_to_matrix, rot_z
from imu_stream.core.summary import symmetry_index
from imu_stream.records import AngleSeries, GaitEvent


def _rx(deg: np.ndarray) -> np.ndarray:
    a = np.radians(deg)
    out = np.zeros((a.size, 3, 3))
    out[:, 0, 0] = 1
    out[:, 1, 1], out[:, 1, 2] = np.cos(a), -np.sin(a)
    out[:, 2, 1], out[:, 2, 2] = np.sin(a), np.cos(a)
    return out


def test_gyro_integration_matches_constant_rotation() -> None:
    t = np.arange(0, 2.0, 0.005)
    gyr = np.tile([0.0, 0.0, 45.0], (t.size, 1))  # 45 deg/s about z for 2 s
    rot = quat_to_matrix(integrate_gyro(gyr, t, np.array([1.0, 0, 0, 0])))
    expected = rot_z(np.radians(45.0 * t))
    assert np.max(np.abs(rot - expected)) < 1e-9


def test_causal_lowpass_removes_gait_follows_a_ramp_and_ignores_chunking() -> None:
    fs = 200.0
    t = np.arange(0, 60.0, 1 / fs)
    ramp = 9.81 + 0.01 * t  # a drifting gravity estimate: followed without lag or bias
    gait = sum(np.sin(2 * np.pi * f * t + f) for f in (0.9, 1.4, 2.8, 5.0))
    x = np.column_stack([ramp + gait, ramp])
    whole = LowpassState.for_rate(fs, 2).apply(x)
    settled = t > 10.0
    assert np.max(np.abs(whole[settled, 1] - ramp[settled])) < 1e-9
    # four unit harmonics ≥ 0.9 Hz leave 6.3e-4 together (each < 4.2e-4)
    assert np.max(np.abs(whole[settled, 0] - ramp[settled])) < 1e-3
    state, rng, parts, a = LowpassState.for_rate(fs, 2), np.random.default_rng(0), [], 0
    while a < t.size:
        b = min(t.size, a + int(rng.integers(1, 700)))
        parts.append(state.apply(x[a:b]))
        a = b
    assert np.array_equal(np.concatenate(parts), whole)


def test_obliquity_sign_left_low_positive() -> None:
    # Rotating +5° about the anterior axis lifts the left side: obliquity −5°.
    assert np.allclose(angles.pelvic_obliquity_deg(_rx(np.array([5.0]))), [-5.0])


def test_stride_metrics_follow_the_definitions() -> None:
    t = np.arange(0, 3.0, 0.01)
    obliquity = 4.0 * np.sin(2 * np.pi * t)  # + in the first half of each second
    series = AngleSeries(t, {"pelvic_obliquity_deg": obliquity})
    events = [
        GaitEvent(0.0, "right", "IC"),
        GaitEvent(0.6, "right", "FC"),
        GaitEvent(1.0, "right", "IC"),
        GaitEvent(1.6, "right", "FC"),
        GaitEvent(2.0, "right", "IC"),
        GaitEvent(0.5, "left", "IC"),
        GaitEvent(1.1, "left", "FC"),
        GaitEvent(1.5, "left", "IC"),
    ]
    strides = compute_strides(series, events)
    right = [s for s in strides if s.side == "right"]
    left = [s for s in strides if s.side == "left"]
    assert len(right) == 2 and len(left) == 1
    assert abs(right[0].pelvic_drop_deg - 4.0) < 1e-3
    assert abs(left[0].pelvic_drop_deg - 4.0) < 1e-3  # max of −obliquity over 0.5–1.1 s
    assert abs(right[0].cadence_spm - 120.0) < 1e-9
    assert abs(right[0].stance_time_s - 0.6) < 1e-9
    assert abs(right[0].pelvic_obliquity_rom_deg - 8.0) < 1e-2


def test_symmetry_index() -> None:
    assert symmetry_index(6.0, 4.0) == 40.0
    assert symmetry_index(None, 4.0) is None


def test_a_short_run_across_a_brief_break_belongs_to_the_bout() -> None:
    fs = 100.0
    walk = [0.0, 0.6, 1.2, 1.8]

    def in_bout(times_s: list[float]) -> list[bool]:
        peaks = np.round(np.array(times_s) * fs).astype(np.int64)
        return step_sequence_masks(peaks, np.ones(peaks.size), fs)[1].tolist()

    # Two steps 2.2 s after a bout (within the 3 s break) belong to it; 3.2 s after, not.
    assert in_bout([*walk, 4.0, 4.6]) == [True] * 6
    assert in_bout([*walk, 5.0, 5.6]) == [True] * 4 + [False] * 2
    # Two steps before a bout, within the break, too; a lone step never does.
    assert in_bout([0.0, 0.6, 3.0, 3.6, 4.2, 4.8]) == [True] * 6
    assert in_bout([*walk, 3.5]) == [True] * 4 + [False]


def test_compiled_atan2_and_asin_match_numpy() -> None:
    rng = np.random.default_rng(7)
    y = np.concatenate([rng.normal(size=20_000), rng.normal(size=100) * 1e-200])
    x = np.concatenate([rng.normal(size=20_000), rng.normal(size=100)])
    # the axes, the octant borders, both zeros' quadrants, NaN in either argument
    edges_y = np.array([0.0, 1.0, -1.0, 0.0, 1.0, 1.0, -1.0, -1.0, np.nan, 1.0, 0.0])
    edges_x = np.array([1.0, 0.0, 0.0, -1.0, 1.0, -1.0, 1.0, -1.0, 1.0, np.nan, 0.0])
    y, x = np.concatenate([y, edges_y]), np.concatenate([x, edges_x])
    got = trig.arctan2(y, x)
    want = np.arctan2(y, x)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    assert np.nanmax(np.abs(got - want)) < 4e-15
    rows = rng.normal(size=(3, 1000))
    scale = np.array([1.0, -2.0, 57.0])  # each row times its scale (degrees, signs)
    np.testing.assert_allclose(
        trig.arctan2_in_place(rows.copy(), rows[::-1].copy(), scale),
        np.arctan2(rows, rows[::-1]) * scale[:, None],
        rtol=1e-15,
        atol=1e-13,
    )
    np.testing.assert_allclose(
        trig.arcsin_in_place(np.tanh(rows), scale),
        np.arcsin(np.tanh(rows)) * scale[:, None],
        rtol=1e-15,
        atol=1e-13,
    )
    a = np.concatenate([rng.uniform(-1, 1, 20_000), [1.0, -1.0, 1 + 1e-15, -1 - 1e-15, np.nan]])
    want = np.arcsin(np.clip(a, -1, 1))
    got = trig.arcsin_in_place(a.copy())
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    assert np.nanmax(np.abs(got - want)) < 4e-15


def test_gaussian_lowpass_is_scipys_and_local() -> None:
    fs, sigma_s = 200.0, 0.05
    x = np.random.default_rng(3).normal(size=5000).cumsum()
    for order in (0, 1):
        want = gaussian_filter1d(x, sigma_s * fs, order=order, mode="nearest") * fs**order
        got = gaussian_lowpass(x, sigma_s, fs, order)
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-9)
    # An output depends only on the samples within the kernel's radius, bit for bit: a window
    # of the signal gives the same values away from its edges (the live path's blocks).
    radius = int(4.0 * sigma_s * fs + 0.5)
    whole = gaussian_lowpass(x, sigma_s, fs, 1)
    part = gaussian_lowpass(x[1000:3000], sigma_s, fs, 1)
    np.testing.assert_array_equal(part[radius:-radius], whole[1000 + radius : 3000 - radius])


def test_sacrum_alignment_without_contacts_is_finite() -> None:
    """A session stopped before the first step (standing only) still gets a usable frame."""
    n = 400
    acc = np.tile([0.3, 0.2, 9.8], (n, 1))
    rotations = np.tile(np.eye(3), (n, 1, 1))
    alignment = align_sacrum(acc, rotations, np.zeros(0, dtype=np.int64), 200.0, slice(0, n))
    frame = alignment.sensor_to_segment
    assert np.all(np.isfinite(frame))
    np.testing.assert_allclose(frame @ frame.T, np.eye(3), atol=1e-12)
