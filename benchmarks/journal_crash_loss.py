"""Samples lost when the journaling process is killed with SIGKILL, over many random kills.

    python benchmarks/journal_crash_loss.py [--runs 20] [--flush-interval 0.25]

Each run starts a process that journals 3 sensors × 200 Hz in real time (4-sample blocks)
and kills it after a random 1–3 s; loss = samples it had appended minus samples readable.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from imu_stream.sinks.journal import JournalReader

RATE_HZ = 200.0
CHILD = """
import sys, time
from pathlib import Path
import numpy as np
from imu_stream.records import SampleBlock
from imu_stream.sinks.journal import JournalWriter, SessionMeta

writer = JournalWriter.create(Path(sys.argv[1]), SessionMeta(athlete="crash"),
                              flush_interval_s=float(sys.argv[2]))
print(writer.session_dir, flush=True)
acc = np.ones((4, 3))
start, k = time.monotonic(), 0
while True:
    t = (k + np.arange(4)) / {rate}
    for loc in ("sacrum", "left_thigh", "right_thigh"):
        writer.append_block(SampleBlock("imu6", acc=acc, gyro=acc), loc, time_s=t)
    k += 4
    print(k, flush=True)
    time.sleep(max(0.0, start + k / {rate} - time.monotonic()))
"""


def one_run(run_s: float, flush_interval: float) -> float:
    repo = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(repo)}
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.Popen(
            [sys.executable, "-c", CHILD.format(rate=RATE_HZ), tmp, str(flush_interval)],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert proc.stdout is not None
        session_dir = Path(proc.stdout.readline().strip())
        started, appended = time.monotonic(), 0
        while time.monotonic() - started < run_s:
            appended = int(proc.stdout.readline())
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        with JournalReader(session_dir) as reader:
            saved = min(reader.n_samples().values(), default=0)
    return (appended - saved) / RATE_HZ


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--flush-interval", type=float, default=0.25)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    losses = np.array([one_run(rng.uniform(1, 3), args.flush_interval) for _ in range(args.runs)])
    print(
        f"{args.runs} SIGKILLs, flush interval {args.flush_interval:g} s: samples lost "
        f"mean {losses.mean() * 1e3:.0f} ms, max {losses.max() * 1e3:.0f} ms (bound: 1000 ms)"
    )


if __name__ == "__main__":
    main()
