"""Sensor-to-segment alignment: which sensor axes are the segment's up, anterior and left.

Up comes from gravity during quiet standing (or, without standing, the mean gravity direction
over the recording: the pelvis is level on average in gait). Anterior comes from the gait itself:
for the sacrum, the braking jolt right after every initial contact points backwards; for a
thigh, flexion–extension is the dominant rotation (its axis is left–right) and flexion reaches
further from the mean than extension.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from imu_stream.core.events import window_mean_change
from imu_stream.core.rotations import frame_from_up_forward
from imu_stream.records import STANDARD_GRAVITY, FloatArray

STILL_GYRO_DPS = 6.0
STILL_ACC_MPS2 = 0.4
MIN_STILL_S = 1.0


@dataclass(frozen=True, slots=True)
class SegmentAlignment:
    """Columns: the segment's x (anterior), y (left), z (up) axes in the sensor frame."""

    sensor_to_segment: FloatArray  # maps segment-frame vectors to sensor-frame vectors
    from_standing: bool


def find_standing(acc: FloatArray, gyr_dps: FloatArray, fs: float) -> slice | None:
    """The longest initial stretch of quiet standing (≥ 1 s), or None."""
    win = max(1, int(0.25 * fs))
    gyro_mag = np.linalg.norm(gyr_dps - np.median(gyr_dps[: max(win, int(fs))], axis=0), axis=1)
    acc_dev = np.abs(np.linalg.norm(acc, axis=1) - STANDARD_GRAVITY)
    kernel = np.ones(win) / win
    still = (np.convolve(gyro_mag, kernel, "same") < STILL_GYRO_DPS) & (
        np.convolve(acc_dev, kernel, "same") < STILL_ACC_MPS2
    )
    moving = np.flatnonzero(~still)
    end = int(moving[0]) if moving.size else still.size
    # Leave out the last 0.25 s before motion: gait initiation starts before it shows.
    end = max(0, end - win)
    if end < MIN_STILL_S * fs:
        return None
    return slice(0, end)


def gyro_bias_from_standing(gyr_dps: FloatArray, standing: slice | None) -> FloatArray:
    if standing is None:
        return np.zeros(3)
    return np.asarray(gyr_dps[standing].mean(axis=0))


def up_axis(acc: FloatArray, rotations: FloatArray, standing: slice | None) -> FloatArray:
    """Segment up in the sensor frame: gravity while standing, else mean gravity direction."""
    # Without standing: world z expressed in the sensor frame, averaged.
    up = acc[standing].mean(axis=0) if standing is not None else rotations[:, 2, :].mean(axis=0)
    return np.asarray(up / np.linalg.norm(up))


def align_sacrum(
    acc: FloatArray, rotations: FloatArray, ic_idx: np.ndarray, fs: float, standing: slice | None
) -> SegmentAlignment:
    up = up_axis(acc, rotations, standing)
    window = max(1, int(0.06 * fs))
    # Braking right after IC, in the sensor frame; left/right jolts cancel over both sides.
    # (No contacts, e.g. a session stopped while standing: no jolt, the fallback below.)
    jolt = np.zeros(3)
    if ic_idx.size:
        jolt = window_mean_change(acc, ic_idx, window, window).mean(axis=0)
    forward = -(jolt - (jolt @ up) * up)
    if not np.linalg.norm(forward) >= 1e-9:  # also NaN
        forward = np.cross(up, [0.0, 0.0, 1.0]) if abs(up[2]) < 0.9 else np.array([1.0, 0, 0])
    return SegmentAlignment(frame_from_up_forward(up, forward), standing is not None)


def align_thigh(
    acc: FloatArray,
    gyr_dps: FloatArray,
    rotations: FloatArray,
    standing: slice | None,
    own_ic_idx: np.ndarray,
    other_ic_idx: np.ndarray,
) -> SegmentAlignment:
    """Up from gravity; left from the flexion–extension axis (the principal axis of angular
    velocity); anterior sign such that the thigh is more flexed at its own initial contacts
    (reaching forward) than at the other leg's (trailing behind)."""
    up = up_axis(acc, rotations, standing)
    centred = gyr_dps - gyr_dps.mean(axis=0)
    _, _, vt = np.linalg.svd(centred[:: max(1, centred.shape[0] // 20000)], full_matrices=False)
    left = vt[0] - (vt[0] @ up) * up
    left /= np.linalg.norm(left)
    forward = np.cross(left, up)
    frame = frame_from_up_forward(up, forward)
    pitch = thigh_pitch_deg(rotations @ frame)
    flexed_at_own = own_ic_idx.size and other_ic_idx.size
    if flexed_at_own and pitch[own_ic_idx].mean() < pitch[other_ic_idx].mean():
        frame = frame_from_up_forward(up, -forward)
    return SegmentAlignment(frame, standing is not None)


def thigh_pitch_deg(rotations: FloatArray) -> FloatArray:
    """Flexion-positive inclination of a thigh (segment → world): world up in the thigh frame."""
    up = rotations[:, 2, :]
    return np.asarray(np.degrees(np.arctan2(up[:, 0], up[:, 2])))
