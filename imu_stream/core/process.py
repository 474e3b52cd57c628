"""Calibration from the start of a session and the per-chunk computations of the core.

Pure: numpy arrays in, arrays and records out. `OnlineProcessor` (core/online.py) strings them
together for both the live and the batch paths.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from imu_stream.core import angles as clinical
from imu_stream.core.calibration import (
    SegmentAlignment,
    align_sacrum,
    align_thigh,
    find_standing,
    gyro_bias_from_standing,
)
from imu_stream.core.events import assign_sides, detect_initial_contacts
from imu_stream.core.orientation import OrientationTracker, OrientedBlock, start_orientation
from imu_stream.core.sides import impact_scores, shock_magnitude, sway_scores
from imu_stream.core.sync import SyncedSignals
from imu_stream.records import STANDARD_GRAVITY, FloatArray

GAIT_CALIBRATION_S = 12.0  # seconds of gait after standing (if any) used to calibrate
MAX_CALIBRATION_WAIT_S = 60.0  # calibrate with what there is after this much gait
MIN_CALIBRATION_CONTACTS = 8


@dataclass(frozen=True, slots=True)
class Calibration:
    """Everything the streaming core freezes from the start of a session."""

    start_rotation: dict[str, FloatArray]  # sensor → world at the first sample
    gyro_bias_dps: dict[str, FloatArray]
    alignment: dict[str, SegmentAlignment]
    notes: tuple[str, ...] = ()


@dataclass(slots=True)
class Readiness:
    ready: bool
    message: str


def calibration_readiness(acc: FloatArray, gyr_dps: FloatArray, fs: float) -> Readiness:
    """Whether the sacrum data so far suffice to calibrate, and what the athlete should do."""
    n = acc.shape[0]
    standing = find_standing(acc, gyr_dps, fs)
    if standing is not None and standing.stop >= n - int(0.5 * fs):
        return Readiness(False, "standing still: now start walking or running")
    motion_start = 0 if standing is None else standing.stop
    gait_s = (n - motion_start) / fs
    if n < fs:
        return Readiness(False, "stand still 3 s, then start moving")
    if gait_s < GAIT_CALIBRATION_S:
        return Readiness(False, f"calibrating: keep moving ({gait_s:.0f}/{GAIT_CALIBRATION_S:g} s)")
    if gait_s >= MAX_CALIBRATION_WAIT_S:
        return Readiness(True, "calibrated")
    oriented = OrientationTracker(rotation_start(acc, fs), np.zeros(3), fs).track(
        _grid(n, fs), acc, gyr_dps
    )
    contacts = detect_initial_contacts(_vertical(oriented.acc_world), fs)
    if contacts.size < MIN_CALIBRATION_CONTACTS:
        return Readiness(False, "calibrating: waiting for steady steps")
    return Readiness(True, "calibrated")


def rotation_start(acc: FloatArray, fs: float) -> FloatArray:
    return start_orientation(acc[: max(1, min(acc.shape[0], round(fs)))])


def _grid(n: int, fs: float) -> FloatArray:
    return np.arange(n) / fs


def _vertical(acc_world: FloatArray) -> FloatArray:
    """Vertical acceleration from the specific force in world (3, n)."""
    return np.asarray(acc_world[2] - STANDARD_GRAVITY)


def calibrate(signals: SyncedSignals) -> Calibration:
    """Biases, start rotations and sensor-to-segment alignments from the start of a session."""
    fs, t = signals.fs, signals.time_s
    notes: list[str] = []
    rot: dict[str, FloatArray] = {}
    acc_world: dict[str, FloatArray] = {}
    standing: dict[str, slice | None] = {}
    bias: dict[str, FloatArray] = {}
    start: dict[str, FloatArray] = {}
    for loc, acc in signals.acc.items():
        gyr = signals.gyr[loc]
        standing[loc] = find_standing(acc, gyr, fs)
        bias[loc] = gyro_bias_from_standing(gyr, standing[loc])
        start[loc] = rotation_start(acc, fs)
        oriented = OrientationTracker(start[loc], bias[loc], fs).track(t, acc, gyr)
        rot[loc], acc_world[loc] = oriented.stack(), oriented.acc_world
    if standing["sacrum"] is None:
        notes.append("no quiet standing at the start: calibrated from gait")
    acc_s = signals.acc["sacrum"]
    contacts = detect_initial_contacts(_vertical(acc_world["sacrum"]), fs)
    alignment = {"sacrum": align_sacrum(acc_s, rot["sacrum"], contacts, fs, standing["sacrum"])}
    pelvis = rot["sacrum"] @ alignment["sacrum"].sensor_to_segment
    scores = side_scores(
        contacts,
        lateral_acceleration(acc_world["sacrum"], np.moveaxis(pelvis, 0, -1)),
        {
            side: shock_magnitude(signals.acc[f"{side}_thigh"], fs)
            for side in ("left", "right")
            if f"{side}_thigh" in signals.acc
        },
        fs,
    )
    is_left, _ = assign_sides(contacts, np.nan_to_num(scores), fs)
    for side in ("left", "right"):
        loc = f"{side}_thigh"
        if loc in signals.acc:
            own = is_left if side == "left" else ~is_left
            alignment[loc] = align_thigh(
                signals.acc[loc],
                signals.gyr[loc],
                rot[loc],
                standing[loc],
                contacts[own],
                contacts[~own],
            )
    if "left_thigh" in signals.acc and "right_thigh" in signals.acc:
        # The thighs' shocks tell the sides for sure; the sway seen along the pelvis's left
        # axis must agree with them, else the braking cue pointed the pelvis backwards.
        sway = np.nan_to_num(
            sway_scores(
                lateral_acceleration(acc_world["sacrum"], np.moveaxis(pelvis, 0, -1)), contacts
            )
        )
        if float(np.sum(np.where(is_left, sway, -sway))) < 0:
            frame = alignment["sacrum"].sensor_to_segment @ np.diag([-1.0, -1.0, 1.0])
            alignment["sacrum"] = SegmentAlignment(frame, alignment["sacrum"].from_standing)
            notes.append("pelvis anterior corrected by the sway against the thighs' sides")
    return Calibration(start, bias, alignment, tuple(notes))


def lateral_acceleration(acc_world: FloatArray, pelvis: FloatArray) -> FloatArray:
    """World acceleration along the pelvis's horizontal left axis; specific force (3, n),
    pelvis → world rotations (3, 3, n)."""
    lx, ly = pelvis[0, 1], pelvis[1, 1]
    norm = np.maximum(np.sqrt(lx * lx + ly * ly), 1e-9)
    return np.asarray((acc_world[0] * lx + acc_world[1] * ly) / norm)


def side_scores(
    contacts: np.ndarray,
    lateral_acc: FloatArray,
    thigh_shock: dict[str, FloatArray],
    fs: float,
) -> FloatArray:
    """Per-contact side cue (> 0: left): the thighs' shocks when both are worn, else the sway."""
    if "left" in thigh_shock and "right" in thigh_shock:
        return impact_scores(thigh_shock["left"], thigh_shock["right"], contacts, fs)
    return sway_scores(lateral_acc, contacts)


@dataclass(slots=True)
class SegmentAngles:
    """The clinical angles of one chunk plus the signals the event stage needs."""

    columns: dict[str, FloatArray] = field(default_factory=dict)
    thigh_pitch_deg: dict[str, FloatArray] = field(default_factory=dict)
    vertical_acc: FloatArray = field(default_factory=lambda: np.zeros(0))
    lateral_acc: FloatArray = field(default_factory=lambda: np.zeros(0))
    pelvis_heading_rad: FloatArray = field(default_factory=lambda: np.zeros(0))


def chunk_angles(oriented: dict[str, OrientedBlock]) -> SegmentAngles:
    """Clinical angles (METRICS.md) and event signals of one chunk of oriented samples
    (segment → world rotations; the sacrum's is the pelvis). The angles.py definitions, their
    arguments written in one compiled pass per segment, then all atan2 and asin at once."""
    sacrum = oriented["sacrum"]
    sides = [side for side in ("left", "right") if f"{side}_thigh" in oriented]
    n = sacrum.heading_rad.size
    y, x, a = (
        np.empty((2 + 2 * len(sides), n)),
        np.empty((2 + 2 * len(sides), n)),
        np.empty((1 + len(sides), n)),
    )
    pc, ps = sacrum.heading_cos, sacrum.heading_sin
    clinical.pelvis_arguments(sacrum.rotation, pc, ps, y[:2], x[:2], a[:1])
    atan_sign, asin_sign = [-1.0, -1.0], [1.0]
    for k, side in enumerate(sides):
        thigh = oriented[f"{side}_thigh"]
        rows = slice(2 + 2 * k, 4 + 2 * k)
        clinical.thigh_arguments(
            sacrum.rotation,
            pc,
            ps,
            thigh.rotation,
            thigh.heading_cos,
            thigh.heading_sin,
            y[rows],
            x[rows],
            a[1 + k : 2 + k],
        )
        atan_sign += [1.0 if side == "left" else -1.0, 1.0]
        asin_sign.append(1.0 if side == "left" else -1.0)
    atan, asin = clinical.finish_angles_deg(y, x, a, np.array(atan_sign), np.array(asin_sign))
    out = SegmentAngles()
    out.columns = {
        "pelvic_obliquity_deg": atan[0],
        "pelvic_tilt_deg": asin[0],
        "pelvic_rotation_deg": atan[1],
    }
    for k, side in enumerate(sides):
        out.columns[f"hip_adduction_{side}_deg"] = asin[1 + k]
        out.columns[f"thigh_adduction_{side}_deg"] = atan[2 + 2 * k]
        out.thigh_pitch_deg[side] = atan[3 + 2 * k]
    out.vertical_acc = _vertical(sacrum.acc_world)
    out.lateral_acc = lateral_acceleration(sacrum.acc_world, sacrum.rotation)
    out.pelvis_heading_rad = sacrum.heading_rad
    return out
