"""`imu-stream export`: journal → session folder (DESIGN.md §4) + analysis, CSV and Parquet."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from imu_stream.cli import app
from imu_stream.records import RAW_COLUMNS, SampleBlock
from imu_stream.session_io import read_session_dir, read_strides_csv
from imu_stream.sim.config import SimulationConfig
from imu_stream.sim.session import SimulatedSession, simulate
from imu_stream.sinks.journal import JournalWriter, SensorMeta, SessionMeta

BLOCK = 4


def journal_simulation(
    data_dir: Path, sim: SimulatedSession, *, live_outputs: bool = True, drop: slice | None = None
) -> Path:
    """Journal a simulated session the way the pipeline does: 4-sample blocks per sensor,
    interleaved, stamped with their session-clock times; the simulator's truth stands in for
    the live processor's outputs. `drop` removes a range of samples from every sensor (a gap)."""
    meta = SessionMeta(
        athlete="Sim Runner",
        activity=sim.info.activity,
        source="simulate",
        sensors=[
            SensorMeta(loc, "simulator", firmware="sim-1", rate_hz=200.0) for loc in sim.recordings
        ],
    )
    writer = JournalWriter.create(data_dir, meta)
    n = min(r.n_samples for r in sim.recordings.values())
    keep = np.ones(n, dtype=bool)
    if drop is not None:
        keep[drop] = False
    for k in range(0, n, BLOCK):
        for loc, rec in sim.recordings.items():
            idx = np.arange(k, min(k + BLOCK, n))[keep[k : k + BLOCK]]
            if idx.size:
                block = SampleBlock("imu6", acc=rec.acc[idx], gyro=rec.gyr[idx])
                writer.append_block(block, loc, time_s=rec.time_s[idx])
    if live_outputs:
        writer.add_events(sim.truth_events)
        writer.add_strides(sim.truth_strides)
        writer.add_angles(sim.truth_angles)
        writer.add_status("sacrum", 1.0, battery_pct=90.0, packet_loss_pct=0.4, connected=True)
        writer.add_session_event("start", 0.0)
    writer.close()
    return writer.session_dir


@pytest.fixture(scope="module")
def sim() -> SimulatedSession:
    return simulate(SimulationConfig(activity="run", duration_s=20.0, seed=11, cpd_right_deg=7.0))


@pytest.fixture(scope="module")
def journaled(sim: SimulatedSession, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return journal_simulation(tmp_path_factory.mktemp("data"), sim)


def test_csv_export_is_a_session_folder_that_reanalyses_identically(
    sim: SimulatedSession, journaled: Path, tmp_path: Path
) -> None:
    out = tmp_path / "export"
    runner = CliRunner()
    data_dir = str(journaled.parent)
    result = runner.invoke(
        app, ["export", journaled.name[:15], "--out", str(out), "--data-dir", data_dir]
    )
    assert result.exit_code == 0, result.output
    assert "exported" in result.output
    for name in (
        "sacrum.csv",
        "left_thigh.csv",
        "right_thigh.csv",
        "session.toml",
        "events.csv",
        "strides.csv",
        "angles.csv",
        "summary.json",
        "live_strides.csv",
        "live_events.csv",
    ):
        assert (out / name).is_file(), name

    info, recs = read_session_dir(out)
    assert info.athlete == "Sim Runner" and info.activity == "run" and info.sample_rate_hz == 200.0
    for loc, rec in sim.recordings.items():
        n = recs[loc].n_samples
        assert n == rec.n_samples
        np.testing.assert_allclose(recs[loc].time_s, rec.time_s, atol=1e-6)
        np.testing.assert_allclose(recs[loc].acc, rec.acc, rtol=1e-5, atol=1e-4)
        np.testing.assert_allclose(recs[loc].gyr, rec.gyr, rtol=1e-5, atol=1e-3)
    toml = tomllib.loads((out / "session.toml").read_text())
    assert toml["session_id"] == journaled.name and toml["complete"] is True
    assert toml["sensors"]["left_thigh"] == {
        "device": "simulator",
        "firmware": "sim-1",
        "rate_hz": 200.0,
    }
    assert isinstance(toml["software_version"], str) and toml["source"] == "simulate"

    # Re-running analyze on the exported folder reproduces the exported analysis exactly.
    again = tmp_path / "again"
    result = runner.invoke(app, ["analyze", str(out), "--out", str(again)])
    assert result.exit_code == 0, result.output
    for name in ("strides.csv", "events.csv", "angles.csv"):
        assert (again / name).read_text() == (out / name).read_text(), name
    strides = read_strides_csv(out / "strides.csv")
    assert len(strides) >= 0.8 * len(sim.truth_strides)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["sensors"] == ["left_thigh", "right_thigh", "sacrum"]

    # The live outputs come out as they went in.
    live = read_strides_csv(out / "live_strides.csv")
    assert len(live) == len(sim.truth_strides)
    for a, b in zip(live, sim.truth_strides, strict=True):
        assert a.side == b.side
        assert a.pelvic_drop_deg == pytest.approx(b.pelvic_drop_deg, abs=1e-6)
        assert a.start_s == pytest.approx(b.start_s, abs=1e-6)


def test_parquet_export_keeps_float64_exactly(
    sim: SimulatedSession, journaled: Path, tmp_path: Path
) -> None:
    import pyarrow.parquet as pq

    out = tmp_path / "pq"
    result = CliRunner().invoke(
        app, ["export", str(journaled), "--format", "parquet", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    table = pq.read_table(out / "sacrum.parquet")
    assert table.column_names == list(RAW_COLUMNS)
    rec = sim.recordings["sacrum"]
    assert np.array_equal(table.column("time_s").to_numpy(), rec.time_s)
    assert np.array_equal(table.column("gyr_y").to_numpy(), rec.gyr[:, 1])
    strides = pq.read_table(out / "strides.parquet")
    assert strides.num_rows >= 0.8 * len(sim.truth_strides)
    assert "pelvic_drop_deg" in strides.column_names
    assert pq.read_table(out / "live_strides.parquet").num_rows == len(sim.truth_strides)
    assert pq.read_table(out / "angles.parquet").num_rows > 1000
    assert (out / "summary.json").is_file() and (out / "session.toml").is_file()
    assert not list(out.glob("*.csv"))


def test_export_errors_are_one_line(journaled: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    data_dir = str(journaled.parent)
    result = runner.invoke(
        app,
        [
            "export",
            journaled.name,
            "--format",
            "xlsx",
            "--out",
            str(tmp_path / "x"),
            "--data-dir",
            data_dir,
        ],
    )
    assert result.exit_code != 0 and "unknown format" in result.output
    assert "Traceback" not in result.output
    result = runner.invoke(
        app, ["export", "20990101", "--out", str(tmp_path / "y"), "--data-dir", data_dir]
    )
    assert result.exit_code != 0 and "no session '20990101'" in result.output
    assert len(result.output.strip().splitlines()) <= 2

    empty = JournalWriter.create(tmp_path / "data", SessionMeta(athlete="nobody"))
    empty.close()
    result = runner.invoke(app, ["export", str(empty.session_dir), "--out", str(tmp_path / "z")])
    assert result.exit_code != 0 and "no sensor with accelerometer" in result.output
