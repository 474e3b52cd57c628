"""Smooth building blocks of the gait patterns: C2 steps, stance bumps and periodic curves.

Everything here is at least twice continuously differentiable where it is glued together, so
the accelerations derived from the patterns have no artificial spikes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.interpolate import CubicSpline

from imu_stream.records import FloatArray


def smootherstep(x: FloatArray) -> FloatArray:
    """0 for x ≤ 0, 1 for x ≥ 1, C2 in between (6x⁵ − 15x⁴ + 10x³)."""
    u = np.clip(x, 0.0, 1.0)
    return np.asarray(u * u * u * (u * (6.0 * u - 15.0) + 10.0))


def stance_bump(x: FloatArray, peak_at: float) -> FloatArray:
    """Bump on 0 < x < 1 (zero outside, C3 at the ends) with its maximum 1 at x = peak_at.

    sin⁴(π·w(x)) with the smooth monotone warp w(x) = x + c·x(1 − x) that puts the peak at
    `peak_at` (0.3–0.7); used per stance or swing, with x the fraction of that phase.
    """
    if not 0.3 <= peak_at <= 0.7:
        raise ValueError(f"bump peak must lie in 0.3–0.7, not {peak_at}")
    c = (0.5 - peak_at) / (peak_at * (1.0 - peak_at))
    inside = (x > 0.0) & (x < 1.0)
    u = np.where(inside, x, 0.5)
    return np.where(inside, np.sin(np.pi * (u + c * u * (1.0 - u))) ** 4, 0.0)


def plateau(x: FloatArray, ramp: float = 0.2) -> FloatArray:
    """0 → 1 over [0, ramp], 1 over [ramp, 1 − ramp], 1 → 0 over [1 − ramp, 1]; C2."""
    return smootherstep(x / ramp) * smootherstep((1.0 - x) / ramp)


@dataclass(frozen=True)
class PeriodicCurve:
    """A smooth curve of the stride phase ψ (period 1): mean + Re Σₖ cₖ·e^{2πikψ}, k = 1..K."""

    mean: float
    coefs: NDArray[np.complex128]

    @classmethod
    def from_samples(cls, values: FloatArray, harmonics: int) -> PeriodicCurve:
        """Band-limit samples taken on a uniform grid of one period to `harmonics` harmonics."""
        spectrum = np.fft.rfft(values) / values.size
        coefs = 2.0 * spectrum[1 : harmonics + 1]
        return cls(mean=float(spectrum[0].real), coefs=np.asarray(coefs, dtype=np.complex128))

    @classmethod
    def from_control_points(
        cls, points: Sequence[tuple[float, float]], harmonics: int = 10, grid: int = 512
    ) -> PeriodicCurve:
        """Periodic cubic spline through (ψ, value) points, ψ rising from 0 to below 1, then
        band-limited."""
        if points[0][0] != 0.0:
            raise ValueError("the first control point must be at ψ = 0")
        psi = np.array([p for p, _ in points] + [1.0])
        vals = np.array([v for _, v in points] + [points[0][1]])
        spline = CubicSpline(psi, vals, bc_type="periodic")
        samples = np.asarray(spline(np.arange(grid) / grid))
        return cls.from_samples(samples, harmonics)

    def __call__(self, psi: FloatArray) -> FloatArray:
        z = np.exp(2j * np.pi * np.asarray(psi, dtype=np.float64))
        zk = z.copy()
        out = np.full(z.shape, self.mean)
        for c in self.coefs:
            out += (c * zk).real
            zk *= z
        return out

    def scaled(self, factor: float) -> PeriodicCurve:
        return PeriodicCurve(self.mean * factor, self.coefs * factor)

    def shifted(self, delta: float) -> PeriodicCurve:
        """The curve of ψ − delta (a leg's curve as a curve of the other leg's phase)."""
        k = np.arange(1, self.coefs.size + 1)
        return PeriodicCurve(self.mean, self.coefs * np.exp(-2j * np.pi * k * delta))

    def __add__(self, other: PeriodicCurve) -> PeriodicCurve:
        size = max(self.coefs.size, other.coefs.size)
        coefs = np.zeros(size, dtype=np.complex128)
        coefs[: self.coefs.size] += self.coefs
        coefs[: other.coefs.size] += other.coefs
        return PeriodicCurve(self.mean + other.mean, coefs)

    def double_integral(self) -> PeriodicCurve:
        """The zero-mean periodic curve whose second ψ-derivative is this curve minus its mean."""
        k = np.arange(1, self.coefs.size + 1)
        return PeriodicCurve(0.0, self.coefs / (-((2.0 * np.pi * k) ** 2)))


def evaluate_together(curves: Sequence[PeriodicCurve], psi: FloatArray) -> FloatArray:
    """(n, len(curves)): several curves at the same phases, sharing the powers of e^{2πiψ}
    (the cost of one curve with the most harmonics, plus one multiply-add per coefficient)."""
    z = np.exp(2j * np.pi * np.asarray(psi, dtype=np.float64))
    out = np.empty((z.size, len(curves)))
    for j, curve in enumerate(curves):
        out[:, j] = curve.mean
    zk = z.copy()
    for k in range(max(c.coefs.size for c in curves)):
        for j, curve in enumerate(curves):
            if k < curve.coefs.size:
                out[:, j] += (curve.coefs[k] * zk).real
        zk *= z
    return out
