"""`imu-stream simulate` writes a readable session folder with truth, and rejects bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from imu_stream import session_io
from imu_stream.cli import app
from imu_stream.records import ANGLE_COLUMNS


def test_simulate_writes_session_folder(tmp_path: Path) -> None:
    out = tmp_path / "walk01"
    args = ["simulate", "--out", str(out), "--activity", "walk", "--duration", "12"]
    args += ["--rate", "100", "--seed", "7", "--cpd-left", "3", "--cpd-right", "6"]
    args += ["--sensors", "sacrum,left_thigh,right_thigh,left_shank,right_shank"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert str(out) in result.output and "strides" in result.output

    info, recordings = session_io.read_session_dir(out)
    assert info.activity == "walk" and info.sample_rate_hz == 100.0
    assert set(recordings) == {"sacrum", "left_thigh", "right_thigh", "left_shank", "right_shank"}
    sacrum = recordings["sacrum"]
    assert sacrum.rate_hz == pytest.approx(100.0, rel=1e-6)
    assert sacrum.time_s[-1] > 12.0  # standing period plus 12 s of gait

    events = session_io.read_events_csv(out / "truth_events.csv")
    strides = session_io.read_strides_csv(out / "truth_strides.csv")
    assert events[0].event == "IC" and len(strides) >= 15
    n_strides_said = int(result.output.split(" strides")[0].split()[-1])
    assert n_strides_said == len(strides)
    right_cpd = np.mean([s.pelvic_drop_deg for s in strides if s.side == "right"])
    assert 5.0 < right_cpd < 7.0
    assert all(np.isfinite(s.knee_abduction_peak_deg) for s in strides)

    header = (out / "truth_angles.csv").read_text().splitlines()[0].split(",")
    assert header[: len(ANGLE_COLUMNS)] == list(ANGLE_COLUMNS)
    assert header[len(ANGLE_COLUMNS) :] == ["knee_abduction_left_deg", "knee_abduction_right_deg"]


def test_simulate_without_standing_starts_in_gait(tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["simulate", "--out", str(out), "--duration", "5", "--no-standing"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    _, recordings = session_io.read_session_dir(out)
    assert set(recordings) == {"sacrum", "left_thigh", "right_thigh"}
    first = session_io.read_events_csv(out / "truth_events.csv")[0]
    assert first.time_s < 0.8  # a running stride is < 0.8 s: gait from the first sample


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--rate", "10"], "rate 10 Hz"),
        (["--sensors", "sacrum,left_foot"], "unknown sensor 'left_foot'"),
        (["--sensors", "left_thigh"], "must include sacrum"),
        (["--activity", "swim"], "activity"),
        (["--cpd-left", "20"], "cpd left"),
        (["--duration", "0"], "duration"),
    ],
)
def test_simulate_bad_arguments_give_one_line_error(
    tmp_path: Path, extra: list[str], needle: str
) -> None:
    out = tmp_path / "bad"
    result = CliRunner().invoke(app, ["simulate", "--out", str(out), *extra])
    assert result.exit_code != 0
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error:") and needle in lines[0]
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert not out.exists()


def test_simulate_refuses_a_file_as_output(tmp_path: Path) -> None:
    target = tmp_path / "taken"
    target.write_text("x")
    result = CliRunner().invoke(app, ["simulate", "--out", str(target), "--duration", "2"])
    assert result.exit_code != 0
    assert "not a folder" in result.output
