"""The session journal: round trips, clock fallback, outputs, metadata, listing, commit bound."""

from __future__ import annotations

import asyncio
import math
import sqlite3
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from imu_stream.cli import app
from imu_stream.records import AngleSeries, GaitEvent, SampleBlock, Stride
from imu_stream.sinks.journal import (
    DATA_DIR_ENV,
    JOURNAL_FILENAME,
    JournalError,
    JournalFormatError,
    JournalReader,
    JournalWriter,
    SensorMeta,
    SessionMeta,
    SessionNotFoundError,
    default_data_dir,
    list_sessions,
    resolve_session,
)
from imu_stream.sinks.journal.timebase import reconstruct_times

RATE_HZ = 200.0
BLOCK = 4
SENSORS = ("sacrum", "left_thigh", "right_thigh")


def _meta(athlete: str = "Test Runner") -> SessionMeta:
    return SessionMeta(
        athlete=athlete,
        activity="run",
        source="test",
        sensors=[
            SensorMeta(loc, "movesense", firmware="2.3.1", rate_hz=RATE_HZ) for loc in SENSORS
        ],
    )


def _signals(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(0, 9.8, (n, 3)), rng.normal(0, 200, (n, 3))


def test_stamped_blocks_round_trip_exactly(tmp_path: Path) -> None:
    n = 2000
    truth = {loc: _signals(n, i) for i, loc in enumerate(SENSORS)}
    t = 3.0 + np.arange(n) / RATE_HZ
    with JournalWriter.create(tmp_path, _meta()) as writer:
        for k in range(0, n, BLOCK):
            for loc in SENSORS:
                acc, gyr = truth[loc]
                block = SampleBlock("imu6", acc=acc[k : k + BLOCK], gyro=gyr[k : k + BLOCK])
                writer.append_block(block, loc, time_s=t[k : k + BLOCK])
        session_dir = writer.session_dir
    with JournalReader(session_dir) as reader:
        recs = reader.recordings()
        assert list(recs) == list(SENSORS)
        for loc in SENSORS:
            assert np.array_equal(recs[loc].time_s, t)
            assert np.array_equal(recs[loc].acc, truth[loc][0])
            assert np.array_equal(recs[loc].gyr, truth[loc][1])
            assert recs[loc].mag is None
        assert reader.is_closed
        assert reader.n_samples() == {loc: n for loc in SENSORS}
        assert reader.duration_s() == pytest.approx(t[-1] - t[0])
        # Chunks, not blocks: far fewer rows than notifications.
        rows = reader._conn.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
        assert rows < n // BLOCK


def test_unstamped_movesense_blocks_get_device_clock_times(tmp_path: Path) -> None:
    """No stamps: times come from device timestamps (with drift) mapped onto host times."""
    rng = np.random.default_rng(7)
    n_blocks, drift_ppm = 3000, 40.0
    true_first = 1.5 + np.arange(n_blocks) * BLOCK / RATE_HZ  # session clock, first sample
    device_ms = 123456.0 + true_first * 1e3 * (1 + drift_ppm * 1e-6)
    last = true_first + (BLOCK - 1) / RATE_HZ
    host = last + 0.004 + rng.exponential(0.012, n_blocks)  # BLE latency ≥ 4 ms
    acc, gyr = _signals(n_blocks * BLOCK, 1)
    with JournalWriter.create(tmp_path, _meta()) as writer:
        for b in range(n_blocks):
            sl = slice(b * BLOCK, (b + 1) * BLOCK)
            writer.append_block(
                SampleBlock(
                    "imu6",
                    acc=acc[sl],
                    gyro=gyr[sl],
                    device_timestamp_ms=float(device_ms[b]),
                    host_time_s=float(host[b]),
                    location="sacrum",
                )
            )
        session_dir = writer.session_dir
    with JournalReader(session_dir) as reader:
        stream = reader.stream("sacrum", "acc")
        assert stream is not None and stream.n_reconstructed == n_blocks * BLOCK
        rec = reader.recordings()["sacrum"]
    true_t = (true_first[:, None] + np.arange(BLOCK)[None, :] / RATE_HZ).ravel()
    error = rec.time_s - true_t
    # The offset is the minimum BLE latency (4 ms) plus a little; the drift is removed.
    assert np.all(np.abs(error - 0.004) < 0.003), (error.min(), error.max())
    assert np.ptp(error) < 0.002
    assert np.array_equal(rec.acc, acc)


def test_separate_acc_and_gyro_notifications_are_aligned(tmp_path: Path) -> None:
    """MetaWear style: acc and gyro in separate blocks, no device timestamps, stamped times."""
    n = 1000
    t_acc = np.arange(n) / 100.0
    t_gyr = t_acc + 0.004  # the gyro stream runs 4 ms behind
    acc = np.column_stack([t_acc, 2 * t_acc, -t_acc])  # linear: interpolation is exact
    gyr = np.column_stack([10 * t_gyr, -5 * t_gyr, t_gyr + 1])
    with JournalWriter.create(tmp_path, _meta()) as writer:
        for k in range(0, n, 3):
            sl = slice(k, k + 3)
            writer.append_block(SampleBlock("acc", acc=acc[sl]), "left_thigh", time_s=t_acc[sl])
            writer.append_block(SampleBlock("gyro", gyro=gyr[sl]), "left_thigh", time_s=t_gyr[sl])
        session_dir = writer.session_dir
    with JournalReader(session_dir) as reader:
        rec = reader.recordings()["left_thigh"]
    assert rec.time_s[0] >= t_gyr[0] and rec.time_s[-1] <= t_gyr[-1]
    assert rec.n_samples == n - 1  # the first acc sample precedes the gyro stream
    np.testing.assert_allclose(rec.gyr[:, 0], 10 * rec.time_s, atol=1e-9)
    np.testing.assert_allclose(rec.gyr[:, 2], rec.time_s + 1, atol=1e-9)
    np.testing.assert_allclose(rec.acc[:, 1], 2 * rec.time_s, atol=1e-12)


def test_reconstruct_times_counts_samples_without_device_clock() -> None:
    block_n = np.full(500, 3)
    host = (np.arange(500) * 3 + 2) / 100.0 + 0.01  # last sample of block + 10 ms
    t = reconstruct_times(block_n, host, np.full(500, np.nan), rate_hz=None)
    np.testing.assert_allclose(np.diff(t), 0.01, rtol=1e-9)
    assert t[0] == pytest.approx(0.01, abs=1e-9)


def test_processor_outputs_and_metadata_round_trip(tmp_path: Path) -> None:
    stride = Stride(10.0, 10.7, "left", 0.7, 0.25, 0.45, 171.4, 6.2, 9.8, 12.5, 7.0, math.nan, 0)
    events = [GaitEvent(10.0, "left", "IC"), GaitEvent(10.25, "left", "FC")]
    mount = np.eye(3)[[1, 0, 2]]
    with JournalWriter.create(tmp_path, _meta("Zoë O'Neil")) as writer:
        writer.add_events(events)
        writer.add_strides([stride])
        t1, t2 = np.arange(0, 1, 0.02), np.arange(1, 2, 0.02)
        writer.add_angles(AngleSeries(t1, {"pelvic_obliquity_deg": np.sin(t1)}))
        writer.add_angles(
            AngleSeries(t2, {"pelvic_obliquity_deg": np.sin(t2), "pelvic_tilt_deg": t2})
        )
        writer.add_status("sacrum", 1.0, battery_pct=87.0, packet_loss_pct=0.5, connected=True)
        writer.add_session_event("calibrated", 3.2, "standing 3 s")
        writer.set_calibration("sacrum", {"mounting": mount, "gyro_bias_dps": [0.1, 0.2, 0.3]})
        writer.update_meta(notes="new shoes")
        with pytest.raises(ValueError, match="unknown session metadata"):
            writer.update_meta(shoe_size=42)
        session_dir = writer.session_dir
    with JournalReader(session_dir) as reader:
        assert reader.events() == events
        (back,) = reader.strides()
        assert back.as_row().keys() == stride.as_row().keys()
        for key, value in stride.as_row().items():
            got = back.as_row()[key]
            assert got == value or (math.isnan(value) and math.isnan(got))  # type: ignore[arg-type]
        angles = reader.angles()
        assert angles is not None and angles.time_s.size == 100
        assert np.allclose(angles.columns["pelvic_obliquity_deg"], np.sin(angles.time_s))
        tilt = angles.columns["pelvic_tilt_deg"]
        assert np.all(np.isnan(tilt[:50])) and np.allclose(tilt[50:], angles.time_s[50:])
        (status,) = reader.status()
        assert status.location == "sacrum" and status.fields["battery_pct"] == 87.0
        assert [e.event for e in reader.session_events()] == ["calibrated"]
        meta = reader.meta
        assert meta.athlete == "Zoë O'Neil" and meta.notes == "new shoes"
        assert np.array_equal(np.array(meta.calibration["sacrum"]["mounting"]), mount)
        assert meta.sensor("left_thigh") is not None
        assert meta.sensor("left_thigh").firmware == "2.3.1"  # type: ignore[union-attr]
        assert meta.software_version and meta.end_unix_s is not None
        assert meta.end_unix_s >= meta.start_unix_s
        assert reader.n_strides() == 1


def test_commits_reach_a_concurrent_reader_within_half_a_second(tmp_path: Path) -> None:
    """The crash-loss bound in action: without flush(), a second connection sees the data."""
    writer = JournalWriter.create(tmp_path, _meta(), flush_interval_s=0.25)
    try:
        acc, gyr = _signals(BLOCK, 0)
        lags = []
        for k in range(3):
            appended = time.monotonic()
            writer.append_block(
                SampleBlock("imu6", acc=acc, gyro=gyr), "sacrum", time_s=k + np.arange(BLOCK) / 200
            )
            conn = sqlite3.connect(writer.path)
            try:
                while True:
                    count = conn.execute(
                        "SELECT COALESCE(SUM(n_samples), 0) FROM chunks"
                    ).fetchone()
                    if count[0] >= (k + 1) * BLOCK:
                        break
                    assert time.monotonic() - appended < 2.0, "no commit within 2 s"
                    time.sleep(0.005)
            finally:
                conn.close()
            lags.append(time.monotonic() - appended)
        assert max(lags) < 0.5, lags
        assert writer.stats.commits >= 3
    finally:
        writer.close()


def test_journals_of_a_process_share_commit_threads(tmp_path: Path) -> None:
    """Many sessions in one process (one per athlete): not a thread per journal, and each
    still commits within its interval, also while another one closes."""
    import threading

    before = threading.active_count()
    writers = [JournalWriter.create(tmp_path, _meta(f"athlete {k}")) for k in range(6)]
    try:
        assert threading.active_count() <= before + 1
        acc, gyr = _signals(BLOCK, 1)
        appended = time.monotonic()
        for k, writer in enumerate(writers):
            writer.append_block(
                SampleBlock("imu6", acc=acc, gyro=gyr), "sacrum", time_s=k + np.arange(BLOCK) / 200
            )
        writers[0].close()
        while not all(w.stats.samples_committed == BLOCK for w in writers):
            assert time.monotonic() - appended < 0.5, [w.stats.commits for w in writers]
            time.sleep(0.005)
    finally:
        for writer in writers:
            writer.close()
    for writer in writers:
        with JournalReader(writer.session_dir) as reader:
            assert reader.is_closed and reader.n_samples() == {"sacrum": BLOCK}


def test_append_is_cheap_and_works_from_the_event_loop(tmp_path: Path) -> None:
    acc, gyr = _signals(8, 3)

    async def produce(writer: JournalWriter) -> float:
        started = time.perf_counter()
        for k in range(3000):
            writer.append_block(
                SampleBlock("imu6", acc=acc, gyro=gyr, host_time_s=k * 0.04), "sacrum"
            )
            if k % 100 == 0:
                await asyncio.sleep(0)
        elapsed = time.perf_counter() - started
        await writer.aclose()
        return elapsed

    writer = JournalWriter.create(tmp_path, _meta())
    elapsed = asyncio.run(produce(writer))
    assert elapsed / 3000 < 500e-6, f"{elapsed / 3000 * 1e6:.0f} µs per append"
    with JournalReader(writer.session_dir) as reader:
        assert reader.n_samples() == {"sacrum": 24000}
    with pytest.raises(JournalError):
        writer.append_block(SampleBlock("imu6", acc=acc, gyro=gyr), "sacrum")


def test_bad_inputs_are_refused(tmp_path: Path) -> None:
    with JournalWriter.create(tmp_path, _meta()) as writer:
        acc, gyr = _signals(4, 0)
        with pytest.raises(ValueError, match="location"):
            writer.append_block(SampleBlock("imu6", acc=acc, gyro=gyr))
        with pytest.raises(ValueError, match="expected 4"):
            writer.append_block(SampleBlock("imu6", acc=acc, gyro=gyr[:3]), "sacrum")
        with pytest.raises(ValueError, match="time_s"):
            writer.append_block(SampleBlock("imu6", acc=acc, gyro=gyr), "sacrum", np.zeros(3))
        session_dir = writer.session_dir
    with pytest.raises(JournalError, match="already exists"):
        JournalWriter(session_dir, _meta())
    garbage = tmp_path / "garbage"
    garbage.mkdir()
    (garbage / JOURNAL_FILENAME).write_bytes(b"not a database at all" * 100)
    with pytest.raises(JournalFormatError, match="not a readable journal"):
        JournalReader(garbage)
    with pytest.raises(JournalFormatError, match="no session journal"):
        JournalReader(tmp_path / "nowhere")


def test_session_ids_listing_and_resolution(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    start = 1_750_000_000.0
    dirs = []
    for athlete in ("Anna Berg", "Anna Berg", "Bo"):
        meta = _meta(athlete)
        meta.start_unix_s = start
        writer = JournalWriter.create(tmp_path, meta)
        writer.add_strides(
            [Stride(1.0, 1.7, "right", 0.7, 0.25, 0.45, 171.4, 5.0, 9.0, 12.0, 7.0, math.nan)]
        )
        writer.close()
        dirs.append(writer.session_dir)
    names = [d.name for d in dirs]
    assert names[0] != names[1] and names[0].endswith("anna-berg") and names[2].endswith("-bo")
    assert resolve_session(names[2], tmp_path) == dirs[2]
    assert resolve_session(str(dirs[1]), tmp_path) == dirs[1]
    assert resolve_session(str(dirs[1] / JOURNAL_FILENAME), tmp_path) == dirs[1]
    with pytest.raises(SessionNotFoundError, match="several sessions"):
        resolve_session(names[0][:8], tmp_path)
    with pytest.raises(SessionNotFoundError, match="no session"):
        resolve_session("nope", tmp_path)
    listed = list_sessions(tmp_path)
    assert [s.athlete for s in listed] == ["Anna Berg", "Anna Berg", "Bo"]
    assert all(s.n_strides == 1 and s.closed and s.sensors == () for s in listed)

    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / JOURNAL_FILENAME).write_text("x")
    listed = list_sessions(tmp_path)
    assert [s.session_id for s in listed if s.problem] == ["broken"]

    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path))
    assert default_data_dir() == tmp_path
    result = CliRunner().invoke(app, ["sessions"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for name in names:
        assert name in result.output
    assert "unreadable" in result.output and "Anna Berg" in result.output
    monkeypatch.delenv(DATA_DIR_ENV)
    assert default_data_dir() == Path("imu-sessions")
