"""The signal core end to end: synchronised signals → events, angles, strides.

Pure: numpy arrays in, records out. `analyze` (batch) and `OnlineProcessor` (live) both call
`process_signals`, so the two paths share every algorithm.
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
from imu_stream.core.events import (
    assign_sides,
    detect_initial_contacts,
)
from imu_stream.core.filters import gaussian_lowpass
from imu_stream.core.metrics import compute_strides
from imu_stream.core.orientation import estimate_orientation, heading_rad
from imu_stream.core.rotations import rot_z, yaw_rad
from imu_stream.core.sync import SyncedSignals
from imu_stream.records import (
    STANDARD_GRAVITY,
    AngleSeries,
    FloatArray,
    GaitEvent,
    Stride,
    StrideQuality,
)

RUNNING_CADENCE_SPM = 140.0  # above: running (a flight phase) for the sacrum-only FC model
TURN_DEG_PER_STRIDE = 25.0


@dataclass(slots=True)
class CoreResult:
    events: list[GaitEvent]
    strides: list[Stride]
    angles: AngleSeries
    alignments: dict[str, SegmentAlignment] = field(default_factory=dict)
    activity: str = "unknown"
    notes: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Segment:
    rotations: FloatArray  # segment → world (n, 3, 3)
    heading: FloatArray  # rad
    alignment: SegmentAlignment


def _sensor_orientation(
    acc: FloatArray, gyr: FloatArray, time_s: FloatArray, fs: float
) -> tuple[FloatArray, slice | None]:
    standing = find_standing(acc, gyr, fs)
    rotations = estimate_orientation(time_s, acc, gyr, gyro_bias_from_standing(gyr, standing))
    return rotations, standing


def _segment(rotations: FloatArray, alignment: SegmentAlignment, fs: float) -> _Segment:
    seg = rotations @ alignment.sensor_to_segment
    return _Segment(seg, heading_rad(yaw_rad(seg), fs), alignment)


def _final_contacts(
    ic_times: FloatArray,
    is_left: np.ndarray,
    time_s: FloatArray,
    thigh_pitch: dict[str, FloatArray],
    cadence_spm: float,
) -> list[GaitEvent]:
    """FC per stance: the thigh's greatest extension in stance (hip extension peaks at push-off);
    without that thigh, a duty-factor model from the contralateral IC."""
    events: list[GaitEvent] = []
    running = cadence_spm > RUNNING_CADENCE_SPM
    for k in range(ic_times.size - 1):
        side = "left" if is_left[k] else "right"
        t_ic = ic_times[k]
        nxt = np.flatnonzero((ic_times > t_ic) & (is_left == is_left[k]))
        if nxt.size == 0:
            continue
        t_next = ic_times[nxt[0]]
        stride = t_next - t_ic
        pitch = thigh_pitch.get(side)
        if pitch is not None:
            lo, hi = np.searchsorted(time_s, [t_ic + 0.15 * stride, t_ic + 0.8 * stride])
            if hi > lo:
                events.append(GaitEvent(float(time_s[lo + np.argmin(pitch[lo:hi])]), side, "FC"))
            continue
        contra = ic_times[k + 1]
        # Double support after the contralateral IC in walking; flight before it in running.
        offset = -0.12 * stride if running else 0.12 * stride
        events.append(GaitEvent(float(contra + offset), side, "FC"))
    return events


def process_signals(signals: SyncedSignals) -> CoreResult:
    t, fs = signals.time_s, signals.fs
    notes: list[str] = []
    sensor_rot: dict[str, FloatArray] = {}
    standing: dict[str, slice | None] = {}
    for loc in signals.acc:
        sensor_rot[loc], standing[loc] = _sensor_orientation(
            signals.acc[loc], signals.gyr[loc], t, fs
        )
    if standing["sacrum"] is None:
        notes.append("no quiet standing at the start: calibrated from gait (gravity only)")

    acc_world = np.einsum("nij,nj->ni", sensor_rot["sacrum"], signals.acc["sacrum"])
    ic_idx = detect_initial_contacts(acc_world[:, 2] - STANDARD_GRAVITY, fs)
    segments: dict[str, _Segment] = {}
    pelvis_align = align_sacrum(
        signals.acc["sacrum"], sensor_rot["sacrum"], ic_idx, fs, standing["sacrum"]
    )
    segments["sacrum"] = _segment(sensor_rot["sacrum"], pelvis_align, fs)
    for side in ("left", "right"):
        loc = f"{side}_thigh"
        if loc in signals.acc:
            align = align_thigh(signals.acc[loc], signals.gyr[loc], sensor_rot[loc], standing[loc])
            segments[loc] = _segment(sensor_rot[loc], align, fs)

    pelvis = segments["sacrum"]
    columns: dict[str, FloatArray] = {
        "pelvic_obliquity_deg": clinical.pelvic_obliquity_deg(pelvis.rotations),
        "pelvic_tilt_deg": clinical.pelvic_tilt_deg(pelvis.rotations),
        "pelvic_rotation_deg": clinical.pelvic_rotation_deg(pelvis.rotations, pelvis.heading),
    }
    thigh_pitch: dict[str, FloatArray] = {}

    # Sides from the sway: during a step the body accelerates away from the stance leg
    # (it swings over it and back towards the other); the vote runs over whole bouts.
    left_score = -_step_means(_lateral_acc(acc_world, pelvis.rotations, fs), ic_idx)
    is_left, confidence = assign_sides(ic_idx, left_score, fs)
    _orient_thighs(segments, thigh_pitch, columns, pelvis, ic_idx, is_left, fs)
    angle_series = AngleSeries(time_s=t, columns=columns)
    ic_times = t[ic_idx]
    cadence = 60.0 / float(np.median(np.diff(ic_times))) if ic_times.size > 2 else float("nan")
    activity = "run" if cadence > RUNNING_CADENCE_SPM else "walk"
    events = [
        GaitEvent(float(ti), "left" if lft else "right", "IC")
        for ti, lft in zip(ic_times, is_left, strict=True)
    ]
    events += _final_contacts(ic_times, is_left, t, thigh_pitch, cadence)
    events.sort(key=lambda e: (e.time_s, e.side))

    strides = compute_strides(angle_series, events, signals.gaps)
    strides = _flag_strides(strides, pelvis.heading, t, ic_times, confidence)
    return CoreResult(
        events,
        strides,
        angle_series,
        {k: s.alignment for k, s in segments.items()},
        activity,
        notes,
    )


def _orient_thighs(
    segments: dict[str, _Segment],
    thigh_pitch: dict[str, FloatArray],
    columns: dict[str, FloatArray],
    pelvis: _Segment,
    ic_idx: np.ndarray,
    is_left: np.ndarray,
    fs: float,
) -> None:
    """Thigh angles; the thigh's anterior sign is the one for which the leg is flexed at its
    own ICs (reaching forward) more than at the other leg's ICs (trailing behind)."""
    for side in ("left", "right"):
        loc = f"{side}_thigh"
        thigh = segments.get(loc)
        if thigh is None:
            continue
        own = is_left if side == "left" else ~is_left
        pitch = _pitch_deg(thigh.rotations)
        if own.any() and (~own).any() and pitch[ic_idx[own]].mean() < pitch[ic_idx[~own]].mean():
            flip = np.diag([-1.0, -1.0, 1.0])  # half turn about the thigh's long axis
            align = SegmentAlignment(
                thigh.alignment.sensor_to_segment @ flip, thigh.alignment.from_standing
            )
            thigh = _segment(
                thigh.rotations @ thigh.alignment.sensor_to_segment.T @ align.sensor_to_segment,
                align,
                fs,
            )
            segments[loc] = thigh
            pitch = _pitch_deg(thigh.rotations)
        thigh_pitch[side] = pitch
        columns[f"thigh_adduction_{side}_deg"] = clinical.thigh_adduction_deg(
            thigh.rotations, thigh.heading, side
        )
        # Share the pelvis's heading reference: the mean hip rotation is the standing neutral.
        aligned = rot_z(pelvis.heading - thigh.heading) @ thigh.rotations
        columns[f"hip_adduction_{side}_deg"] = clinical.hip_adduction_deg(
            pelvis.rotations, aligned, side
        )


def _pitch_deg(rotations: FloatArray) -> FloatArray:
    """Flexion-positive inclination of a thigh: world up seen in the thigh frame."""
    up = rotations[:, 2, :]
    return np.asarray(np.degrees(np.arctan2(up[:, 0], up[:, 2])))


def _lateral_acc(acc_world: FloatArray, pelvis: FloatArray, fs: float) -> FloatArray:
    """Acceleration along the pelvis's horizontal left axis, slow trends removed."""
    left = pelvis[:, :, 1].copy()
    left[:, 2] = 0.0
    left /= np.maximum(np.linalg.norm(left, axis=1, keepdims=True), 1e-9)
    lateral = np.einsum("ni,ni->n", acc_world, left)
    return lateral - gaussian_lowpass(lateral, 1.0, fs)


def _step_means(values: FloatArray, ic_idx: np.ndarray) -> FloatArray:
    """Mean of `values` from each IC to the next (the last step: its previous length)."""
    if ic_idx.size == 0:
        return np.zeros(0)
    csum = np.concatenate([[0.0], np.cumsum(values)])
    step = np.diff(ic_idx)
    ends = np.append(ic_idx[1:], ic_idx[-1] + (step[-1] if step.size else 1))
    ends = np.minimum(ends, values.size)
    return np.asarray((csum[ends] - csum[ic_idx]) / np.maximum(ends - ic_idx, 1))


def _flag_strides(
    strides: list[Stride],
    heading: FloatArray,
    time_s: FloatArray,
    ic_times: FloatArray,
    confidence: FloatArray,
) -> list[Stride]:
    out: list[Stride] = []
    heading_deg = np.degrees(heading)
    for s in strides:
        i0, i1 = np.searchsorted(time_s, [s.start_s, s.end_s])
        i1 = min(i1, heading_deg.size - 1)
        quality = s.quality
        if abs(heading_deg[i1] - heading_deg[i0]) > TURN_DEG_PER_STRIDE:
            quality |= StrideQuality.TURN
        k = int(np.argmin(np.abs(ic_times - s.start_s)))
        if confidence[k] < 0.2:
            quality |= StrideQuality.LOW_CONFIDENCE
        out.append(s if quality == s.quality else _with_quality(s, quality))
    return out


def _with_quality(stride: Stride, quality: int) -> Stride:
    row = stride.as_row()
    row["quality"] = int(quality)
    return Stride(**row)  # type: ignore[arg-type]
