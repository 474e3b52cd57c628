"""`imu-stream analyze` on bad input: one-line errors, exit code 2, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from imu_stream.cli import app

runner = CliRunner()
HEADER = "time_s,acc_x,acc_y,acc_z,gyr_x,gyr_y,gyr_z\n"


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _rows(times: list[float]) -> str:
    return "".join(f"{t},0,0,9.81,0,0,0\n" for t in times)


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda d: None, "no such folder"),
        (lambda d: d.mkdir(), "missing sacrum.csv"),
        (lambda d: _write(d / "sacrum.csv", "time_s,ax,ay\n0,1,2\n0.01,1,2\n"), "unknown columns"),
        (lambda d: _write(d / "sacrum.csv", HEADER + _rows([0, 0.01, 0.005, 0.02])), "increasing"),
        (lambda d: _write(d / "sacrum.csv", HEADER + _rows([0, 1, 2, 3])), "sample rate"),
        (lambda d: _write(d / "sacrum.csv", HEADER + "0,a,0,0,0,0,0\n"), "non-numeric"),
    ],
)
def test_bad_session_gives_one_line_error(tmp_path: Path, setup: object, message: str) -> None:
    session = tmp_path / "session"
    setup(session)  # type: ignore[operator]
    result = runner.invoke(app, ["analyze", str(session), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    output = result.output
    assert message in output
    assert "Traceback" not in output
