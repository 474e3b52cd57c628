"""Real lower-back recordings (Mobilise-D lab protocol) scored as the dataset README says:
reference ICs inside the reference walking bouts, matched one-to-one to detected ICs within
±0.25 s. The algorithm gets the whole recording and no reference bouts; detections are scored
inside the reference bouts (the reference has no events elsewhere)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from imu_stream.analyze import analyze_session, session_rate_hz
from imu_stream.evaluation import EventScore, score_events, within_intervals
from imu_stream.session_io import read_session_dir
from tests.conftest import require_dataset
from tests.test_core_online import live_update

TOLERANCE_S = 0.25


def _score_recording(folder: Path) -> EventScore:
    info, recordings = read_session_dir(folder)
    result = analyze_session(recordings, info)
    ics = [e for e in result.events if e.event == "IC"]
    det_t = np.array([e.time_s for e in ics])
    det_side = np.array([e.side for e in ics])
    with (folder / "reference_ic.csv").open() as fh:
        ref = list(csv.DictReader(fh))
    ref_t = np.array([float(r["time_s"]) for r in ref])
    ref_side = np.array([r["side"] for r in ref])
    bouts = np.loadtxt(folder / "reference_walking_bouts.csv", delimiter=",", skiprows=1, ndmin=2)
    ref_in = within_intervals(ref_t, bouts)
    det_in = within_intervals(det_t, bouts, TOLERANCE_S)
    return score_events(det_t[det_in], det_side[det_in], ref_t[ref_in], ref_side[ref_in])


def _pooled() -> tuple[float, float, float, int]:
    root = require_dataset("mobilised-lab")
    scores = [_score_recording(p) for p in sorted(root.iterdir()) if p.is_dir()]
    assert scores, "no recordings in mobilised-lab"
    n_ref = sum(s.n_reference for s in scores)
    n_det = sum(s.n_detected for s in scores)
    n_match = sum(s.n_matched for s in scores)
    mae = sum(s.mean_abs_error_s * s.n_matched for s in scores) / n_match
    lr = sum(s.side_agreement * s.n_matched for s in scores) / n_match
    f1 = 2 * n_match / (n_ref + n_det)
    print(f"mobilised-lab: F1 {f1:.3f}, MAE {mae * 1000:.1f} ms, L/R {lr:.3f}, {n_ref} ref ICs")
    return f1, mae, lr, n_ref


@pytest.fixture(scope="module")
def pooled() -> tuple[float, float, float, int]:
    return _pooled()


def test_ic_detection_on_real_recordings(pooled: tuple[float, float, float, int]) -> None:
    f1, mae, _, n_ref = pooled
    assert n_ref == 81
    # Measured F1 0.951, 25.7 ms, L/R 0.974 (the streaming core, contacts final 1.1 s after
    # they happen); mobgap's best lower-back detectors score 0.879, 69 ms on this data when
    # handed the reference bouts.
    assert f1 >= 0.95
    assert mae <= 0.040


def test_left_right_on_real_recordings(pooled: tuple[float, float, float, int]) -> None:
    assert pooled[2] >= 0.95  # measured 0.974


def test_live_equals_batch_on_real_recordings_with_pauses() -> None:
    """Real walking stops and resumes (turns, short bouts across brief breaks), which the
    simulated sessions do not: the live path must still decide exactly as the batch path."""
    root = require_dataset("mobilised-lab")
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        info, recordings = read_session_dir(folder)
        batch = analyze_session(recordings, info)
        live, _ = live_update(recordings, session_rate_hz(recordings["sacrum"], info), seed=4)
        assert [(e.time_s, e.side, e.event) for e in live.events] == [
            (e.time_s, e.side, e.event) for e in batch.events
        ], folder.name
        assert len(live.strides) == len(batch.strides) > 5, folder.name
