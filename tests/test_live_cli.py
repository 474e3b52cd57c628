"""`imu-stream run` and `demo` as the user runs them: the demo end to end, a `kill -9` mid-session,
Ctrl-C / SIGTERM flushing everything, and one-line errors."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from imu_stream.analyze import analyze_session
from imu_stream.cli import app
from imu_stream.session_io import read_session_dir
from imu_stream.sinks.export import export_session
from imu_stream.sinks.journal import JournalReader, list_sessions

REPO_ROOT = Path(__file__).resolve().parent.parent


def _output(result: object) -> str:
    out = getattr(result, "stdout", "") or ""
    try:
        err = getattr(result, "stderr", "") or ""
    except ValueError:  # older click: stderr not captured separately
        err = ""
    return out + err


def test_demo_runs_end_to_end_and_prints_where_everything_is(tmp_path: Path) -> None:
    out, data_dir = tmp_path / "demo-output", tmp_path / "sessions"
    result = CliRunner().invoke(
        app,
        [
            "demo",
            "--duration",
            "8",
            "--speed",
            "0",
            "--no-view",
            "--out",
            str(out),
            "--data-dir",
            str(data_dir),
        ],
    )
    text = _output(result)
    assert result.exit_code == 0, text
    (session,) = list_sessions(data_dir)
    assert session.closed and session.n_strides > 5 and session.athlete == "demo runner"
    journal = session.path / "journal.sqlite"
    export_dir = out / "session"
    report = out / "report.html"
    for path in (journal, export_dir, report):
        assert str(path) in text.replace("\n", "")  # printed for the user
        assert path.exists()
    for name in (
        "sacrum.csv",
        "left_thigh.csv",
        "right_thigh.csv",
        "strides.csv",
        "events.csv",
        "angles.csv",
        "summary.json",
        "live_strides.csv",
        "session.toml",
    ):
        assert (export_dir / name).stat().st_size > 0, name
    assert list(out.glob("report_*.png"))
    html = report.read_text()
    assert "<img" in html and "data:image/png;base64," in html


def _start_run(data_dir: Path, *extra: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "imu_stream.cli",
            "run",
            "--simulate",
            "run",
            "--no-view",
            "--data-dir",
            str(data_dir),
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _wait_for_data(proc: subprocess.Popen[str], data_dir: Path, seconds: float) -> Path:
    """Poll the journal (readable while written) until it holds SECONDS of sacrum data."""
    deadline = time.monotonic() + 60.0
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"run ended early: {proc.communicate()[1]}"
        sessions = list_sessions(data_dir)
        if sessions and not sessions[0].problem:
            with JournalReader(sessions[0].path) as reader:
                span = reader.time_span_s()
            if span is not None and span[1] >= seconds:
                return sessions[0].path
        time.sleep(0.1)
    raise AssertionError("no data in time")


def test_kill_9_mid_session_loses_under_one_second(tmp_path: Path) -> None:
    data_dir = tmp_path / "sessions"
    proc = _start_run(data_dir, "--duration", "60")  # real time
    try:
        session_dir = _wait_for_data(proc, data_dir, 6.0)
        killed_at = time.time()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL

    (summary,) = list_sessions(data_dir)
    assert summary.problem == "" and not summary.closed
    with JournalReader(session_dir) as reader:
        assert reader.meta.source == "simulate" and not reader.is_closed
        recordings = reader.recordings()
        elapsed = killed_at - reader.meta.start_unix_s  # session time at the kill
        assert set(recordings) == {"sacrum", "left_thigh", "right_thigh"}
        for loc, rec in recordings.items():
            lost_s = elapsed - float(rec.time_s[-1])
            assert lost_s <= 1.0, f"{loc}: {lost_s:.3f} s of samples lost"
            # and no hole before that: the samples saved are contiguous
            assert np.max(np.diff(rec.time_s)) < 0.05, loc
        exported = export_session(reader, tmp_path / "export", "csv")
    assert exported.analysis_error is None and exported.n_strides is not None
    info, written = read_session_dir(tmp_path / "export")
    analyze_session(written, info)  # analyzes as the user would
    assert "complete = false" in (tmp_path / "export" / "session.toml").read_text()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_and_sigterm_flush_everything(tmp_path: Path, sig: signal.Signals) -> None:
    data_dir = tmp_path / "sessions"
    proc = _start_run(data_dir, "--duration", "40", "--speed", "6")
    try:
        session_dir = _wait_for_data(proc, data_dir, 10.0)
        signalled = time.time()
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    reason = "interrupted" if sig == signal.SIGINT else "terminated"
    assert f"stopped: {reason}" in err and "error" not in err.lower()
    with JournalReader(session_dir) as reader:
        assert reader.is_closed  # the writer committed everything and closed cleanly
        events = reader.session_events()
        assert events[-1].event == "stop" and events[-1].detail == reason
        strides = reader.strides()
        assert len(strides) >= 4  # including those the final processing step flushed
        span = reader.time_span_s()
        assert span is not None and span[1] >= 10.0
        assert reader.angles() is not None and reader.status()
    assert time.time() - signalled < 30.0


def test_usage_errors_are_one_line(tmp_path: Path) -> None:
    runner = CliRunner()
    for args, expected in (
        ([], "choose one source"),
        (["--simulate", "run", "--replay", str(tmp_path)], "choose one source"),
        (["--simulate", "jog"], "walk or run"),
        (["--replay", str(tmp_path / "missing")], "no such folder"),
        (["--sensor", "pelvis=AA:BB"], "unknown sensor location"),
    ):
        result = runner.invoke(app, ["run", "--no-view", "--data-dir", str(tmp_path), *args])
        text = _output(result).strip()
        assert result.exit_code == 2, (args, text)
        assert text.startswith("error:") and expected in text and "\n" not in text, text
    assert list_sessions(tmp_path) == []  # nothing half-created


def test_no_bluetooth_adapter_is_a_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["run", "--sensor", "sacrum=AA:BB:CC:DD:EE:FF", "--no-view", "--data-dir", str(tmp_path)],
    )
    text = _output(result).strip()
    if result.exit_code == 0 or "Bluetooth" not in text:
        pytest.skip("this machine has a working Bluetooth adapter")
    assert result.exit_code == 2 and text.startswith("error:") and "\n" not in text
    assert list_sessions(tmp_path) == []
