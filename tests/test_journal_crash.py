"""Crash safety for real: a process appends in real time and is SIGKILLed mid-session.

The killed session must open, list as interrupted, read back bit-exact up to what was saved,
export, and have lost at most 1 s of samples (the commit interval is 0.25 s).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from imu_stream.session_io import read_session_dir
from imu_stream.sinks.export import export_session
from imu_stream.sinks.journal import JournalReader, list_sessions

REPO_ROOT = Path(__file__).resolve().parent.parent
RATE_HZ = 200.0
BLOCK = 4  # samples per notification: one every 20 ms per sensor

# The writing process: three sensors at 200 Hz paced in real time; after every appended block
# it reports how many samples per sensor it has handed to the journal.
CHILD = """
import sys, time
from pathlib import Path
import numpy as np
from imu_stream.records import SampleBlock
from imu_stream.sinks.journal import JournalWriter, SensorMeta, SessionMeta

SENSORS = ("sacrum", "left_thigh", "right_thigh")
RATE, BLOCK = {rate}, {block}

def signals(k0, n, j):
    k = np.arange(k0, k0 + n, dtype=float)[:, None]
    acc = np.sin(k * 0.01 * (j + 1) + np.arange(3)) * 9.8
    gyr = np.cos(k * 0.013 * (j + 1) + np.arange(3)) * 300.0
    return acc, gyr

meta = SessionMeta(athlete="crash test", activity="run", source="test",
                   sensors=[SensorMeta(s, "simulator", rate_hz=RATE) for s in SENSORS])
writer = JournalWriter.create(Path(sys.argv[1]), meta, flush_interval_s=0.25)
print(writer.session_dir, flush=True)
start = time.monotonic()
k = 0
while True:
    for j, loc in enumerate(SENSORS):
        acc, gyr = signals(k, BLOCK, j)
        t = (k + np.arange(BLOCK)) / RATE
        writer.append_block(SampleBlock("imu6", acc=acc, gyro=gyr, host_time_s=float(t[-1])),
                            loc, time_s=t)
    k += BLOCK
    print(k, flush=True)
    delay = start + k / RATE - time.monotonic()
    if delay > 0:
        time.sleep(delay)
"""


def _expected(k0: int, n: int, j: int) -> tuple[np.ndarray, np.ndarray]:
    k = np.arange(k0, k0 + n, dtype=float)[:, None]
    return np.sin(k * 0.01 * (j + 1) + np.arange(3)) * 9.8, np.cos(
        k * 0.013 * (j + 1) + np.arange(3)
    ) * 300.0


@pytest.mark.parametrize("run_s", [1.3, 2.05])
def test_sigkill_mid_session_loses_under_one_second(tmp_path: Path, run_s: float) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    code = CHILD.format(rate=RATE_HZ, block=BLOCK)
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        session_dir = Path(proc.stdout.readline().strip())
        reported = 0
        started = time.monotonic()
        while time.monotonic() - started < run_s:
            line = proc.stdout.readline()
            assert line, f"writer died early: {proc.stderr.read() if proc.stderr else ''}"
            reported = int(line)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert reported >= run_s * RATE_HZ * 0.5, "the writer did not keep real-time pace"

    (summary,) = list_sessions(tmp_path)
    assert summary.problem == "" and not summary.closed
    assert summary.sensors == ("sacrum", "left_thigh", "right_thigh")

    with JournalReader(session_dir) as reader:
        assert not reader.is_closed and reader.meta.athlete == "crash test"
        recs = reader.recordings()
        assert set(recs) == {"sacrum", "left_thigh", "right_thigh"}
        for j, loc in enumerate(("sacrum", "left_thigh", "right_thigh")):
            rec = recs[loc]
            lost_s = (reported - rec.n_samples) / RATE_HZ
            assert lost_s <= 1.0, f"{loc}: lost {lost_s:.3f} s of samples"
            # What was saved is exactly what was appended, in order, with its times.
            acc, gyr = _expected(0, rec.n_samples, j)
            assert np.array_equal(rec.acc, acc) and np.array_equal(rec.gyr, gyr)
            assert np.array_equal(rec.time_s, np.arange(rec.n_samples) / RATE_HZ)
        export = export_session(reader, tmp_path / "export", analyze=False)
    _, exported = read_session_dir(export.out_dir)
    assert {loc: r.n_samples for loc, r in exported.items()} == export.samples
    assert (export.out_dir / "session.toml").read_text().count("complete = false") == 1
