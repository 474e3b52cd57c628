"""The stride clock: a smooth stride phase with stride-to-stride variability.

The stride frequency is a cubic spline through random knot values (one knot per nominal stride),
so the phase, its integral, is three times continuously differentiable: stride times vary
without any kink in the kinematics. Left initial contacts sit at integer phase.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.interpolate import CubicSpline

from imu_stream.records import FloatArray

# Knot values with SD σ give stride times with a CV of about σ·0.85 (the spline averages
# neighbouring knots over a stride); measured over many seeds.
_KNOT_SD_PER_STRIDE_CV = 1.0 / 0.85


@dataclass(frozen=True)
class StrideClock:
    frequency: Any  # scipy PPoly, stride frequency (Hz) of time
    integral: Any  # scipy PPoly, its antiderivative
    nominal_hz: float
    t_ref: float
    phase_ref: float

    @classmethod
    def build(
        cls,
        nominal_hz: float,
        t_ref: float,
        phase_ref: float,
        t_end: float,
        stride_cv: float,
        rng: np.random.Generator,
    ) -> StrideClock:
        """Phase `phase_ref` at `t_ref`, valid from a few strides before 0 to after `t_end`."""
        period = 1.0 / nominal_hz
        t0 = min(t_ref, 0.0) - 3.0 * period
        n_knots = int(np.ceil((t_end + 3.0 * period - t0) / period)) + 1
        knots = t0 + period * np.arange(n_knots)
        sd = stride_cv * _KNOT_SD_PER_STRIDE_CV
        values = nominal_hz * (1.0 + sd * np.clip(rng.standard_normal(n_knots), -3.0, 3.0))
        spline = CubicSpline(knots, values, bc_type="natural")
        return cls(
            frequency=spline,
            integral=spline.antiderivative(),
            nominal_hz=nominal_hz,
            t_ref=t_ref,
            phase_ref=phase_ref - float(spline.antiderivative()(t_ref)),
        )

    def frequency_hz(self, t: FloatArray) -> FloatArray:
        return np.asarray(self.frequency(t), dtype=np.float64)

    def phase(self, t: FloatArray) -> FloatArray:
        """Left-leg stride phase (strides): left IC at integers, right IC half a stride later."""
        return np.asarray(self.integral(t), dtype=np.float64) + self.phase_ref

    def time_of_phase(self, phase: FloatArray) -> FloatArray:
        """Inverse of `phase` (Newton; the phase is strictly increasing)."""
        target = np.asarray(phase, dtype=np.float64)
        t = self.t_ref + (target - self.phase(np.array([self.t_ref]))[0]) / self.nominal_hz
        for _ in range(50):
            step = (self.phase(t) - target) / self.frequency_hz(t)
            t = t - step
            if np.all(np.abs(step) < 1e-12):
                break
        return np.asarray(t)
