"""Gait simulator: speed, memory and the consistency of its ground truth over many seeds.

    python benchmarks/sim_speed_truth.py [--seeds 10] [--minutes 30 60]

Prints, per long session, wall time and peak traced memory (3 sensors, 200 Hz, running); then,
over seeds × {walk, run}: truth CPD vs the requested means, stride-time CV, duty factor,
cadence, the extra-right-obliquity sensitivity, noiseless strapdown orientation error over a
stride and the velocity-change error of the specific force over a stride.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
from dataclasses import replace

import numpy as np
from scipy.interpolate import CubicSpline

from imu_stream.records import STANDARD_GRAVITY
from imu_stream.sim import SimulatedSession, SimulationConfig, simulate
from imu_stream.sim.kinematics import evaluate_pose
from imu_stream.sim.rotations import angle_between_deg
from imu_stream.sim.session import truth_sensor_orientation

ALL_SENSORS = ("sacrum", "left_thigh", "right_thigh", "left_shank", "right_shank")


def long_sessions(minutes: list[float]) -> None:
    for m in minutes:
        tracemalloc.start()
        t0 = time.perf_counter()
        s = simulate(SimulationConfig(activity="run", duration_s=60.0 * m, seed=1))
        wall = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        n = s.recordings["sacrum"].n_samples
        print(
            f"{m:g} min run, 3 sensors @ 200 Hz: {wall:.1f} s wall, peak {peak / 2**20:.0f} MiB, "
            f"{n} samples/sensor, {len(s.truth_strides)} strides"
        )


def _skew(w: np.ndarray) -> np.ndarray:
    return np.array([[0.0, -w[2], w[1]], [w[2], 0.0, -w[0]], [-w[1], w[0], 0.0]])


def strapdown_error_deg(s: SimulatedSession, loc: str, i0: int, i1: int) -> float:
    t = s.truth_angles.time_s
    truth = truth_sensor_orientation(s, loc, t[i0 : i1 + 1])
    omega = CubicSpline(t, np.radians(s.recordings[loc].gyr))
    r, worst = truth[0].copy(), 0.0
    for k in range(i0, i1):
        dt, tk = t[k + 1] - t[k], t[k]
        k1 = r @ _skew(omega(tk))
        k2 = (r + 0.5 * dt * k1) @ _skew(omega(tk + 0.5 * dt))
        k3 = (r + 0.5 * dt * k2) @ _skew(omega(tk + 0.5 * dt))
        k4 = (r + dt * k3) @ _skew(omega(tk + dt))
        u, _, vt = np.linalg.svd(r + dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4))
        r = u @ vt
        worst = max(worst, float(angle_between_deg(r[None], truth[k + 1 - i0][None])[0]))
    return worst


def velocity_error_mps(s: SimulatedSession, loc: str, i0: int, i1: int) -> float:
    t = s.truth_angles.time_s
    h = 1e-4
    ends = t[[i0, i1]]
    before = evaluate_pose(s.params, ends - h, (loc,))
    after = evaluate_pose(s.params, ends + h, (loc,))
    now = evaluate_pose(s.params, ends, (loc,))
    vel = (after.sensor_positions[loc] - before.sensor_positions[loc]) / (2 * h)
    vel += now.speed_mps[:, None] * np.column_stack(
        (np.cos(now.heading_rad), np.sin(now.heading_rad), np.zeros(2))
    )
    rot = truth_sensor_orientation(s, loc)
    acc = np.einsum("nij,nj->ni", rot, s.recordings[loc].acc) - [0.0, 0.0, STANDARD_GRAVITY]
    dv = CubicSpline(t, acc).integrate(t[i0], t[i1])
    return float(np.max(np.abs(dv - (vel[1] - vel[0]))))


def truth_consistency(seeds: int) -> None:
    for activity in ("walk", "run"):
        cpd_err, cv, duty, cadence, d_right, d_left = [], [], [], [], [], []
        gyro_err, vel_err = [], []
        for seed in range(seeds):
            rng = np.random.default_rng(seed)
            cpd_l, cpd_r = rng.uniform(2.0, 10.0, 2)
            cfg = SimulationConfig(
                activity=activity,
                duration_s=60.0,
                seed=seed,
                cpd_left_deg=float(cpd_l),
                cpd_right_deg=float(cpd_r),
            )
            s = simulate(cfg)
            extra = simulate(replace(cfg, extra_right_stance_obliquity_deg=3.0))
            for side, want in (("left", cpd_l), ("right", cpd_r)):
                got = [st.pelvic_drop_deg for st in s.truth_strides if st.side == side]
                cpd_err.append(float(np.mean(got)) - want)
            steady = [st for st in s.truth_strides if st.start_s > s.params.gait_start_s + 3]
            times = np.array([st.stride_time_s for st in steady if st.side == "left"])
            cv.append(times.std() / times.mean())
            duty += [st.stance_time_s / st.stride_time_s for st in steady]
            cadence += [st.cadence_spm for st in steady]

            def drops(x: SimulatedSession, side: str) -> np.ndarray:
                return np.array([st.pelvic_drop_deg for st in x.truth_strides if st.side == side])

            d_right.append(float(np.mean(drops(extra, "right") - drops(s, "right"))))
            d_left.append(float(np.max(np.abs(drops(extra, "left") - drops(s, "left")))))

            clean = simulate(
                replace(cfg, duration_s=8.0, sensors=ALL_SENSORS, impact_scale=0.0).noiseless()
            )
            stride = next(
                st for st in clean.truth_strides if st.start_s > clean.params.gait_start_s + 3
            )
            i0, i1 = np.searchsorted(clean.truth_angles.time_s, [stride.start_s, stride.end_s])
            for loc in ALL_SENSORS:
                gyro_err.append(strapdown_error_deg(clean, loc, int(i0), int(i1)))
                vel_err.append(velocity_error_mps(clean, loc, int(i0), int(i1)))
        err = np.array(cpd_err)
        print(f"\n{activity}, {seeds} seeds × 60 s, requested CPD drawn in 2–10°:")
        print(
            f"  truth CPD mean − requested: mean {err.mean():+.3f}°, "
            f"max |.| {np.abs(err).max():.3f}°"
        )
        print(f"  stride-time CV: {np.mean(cv) * 100:.2f} % (SD over seeds {np.std(cv) * 100:.2f})")
        print(f"  duty factor: {np.min(duty):.3f}–{np.max(duty):.3f}")
        print(f"  cadence: {np.min(cadence):.0f}–{np.max(cadence):.0f} steps/min")
        print(
            f"  +3° extra right obliquity: right CPD {np.mean(d_right):+.3f}° "
            f"(min {np.min(d_right):+.3f}), left max |Δ| {np.max(d_left):.4f}°"
        )
        print(f"  noiseless strapdown error over a stride (5 sensors): max {max(gyro_err):.5f}°")
        print(f"  ∫ specific force vs true Δv over a stride: max {max(vel_err) * 1000:.3f} mm/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--minutes", type=float, nargs="*", default=[30.0, 60.0])
    args = parser.parse_args()
    long_sessions(args.minutes)
    truth_consistency(args.seeds)


if __name__ == "__main__":
    main()
