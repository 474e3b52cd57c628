"""Helpers for the scale-out tests: `collect` and `process --shard` as the user runs them
(subprocesses of the real CLI), and a consumer of the bus's strides."""

from __future__ import annotations

import asyncio
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from imu_stream.bus.markers import SessionProcessed, decode_processed
from imu_stream.records import STRIDE_COLUMNS, Stride
from imu_stream.sinks.mqtt import MqttConfig
from imu_stream.sources.mqtt_source import MqttSource

REPO_ROOT = Path(__file__).resolve().parent.parent
StrideKey = tuple[float, str]  # (start_s, side) within a session


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "imu_stream.cli", *args]


def cli_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO_ROOT)}


class Worker:
    """`imu-stream process --shard I/N` in a subprocess; output in a log file."""

    def __init__(self, folder: Path, url: str, shard: str, client_id: str, *extra: str) -> None:
        tag = shard.replace("/", "of")
        self.log = folder / f"process-{tag}.log"
        self.stats_path = folder / f"process-{tag}.json"
        with self.log.open("w") as out:
            self.proc = subprocess.Popen(
                cli(
                    "process",
                    "--shard",
                    shard,
                    "--mqtt",
                    url,
                    "--client-id",
                    client_id,
                    "--stats",
                    str(self.stats_path),
                    "--data-dir",
                    str(folder / "spool"),
                    *extra,
                ),
                stdout=out,
                stderr=subprocess.STDOUT,
                env=cli_env(),
            )

    def wait_subscribed(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"process ended early: {self.output()}"
            if "subscribed to" in self.output():
                return
            time.sleep(0.1)
        raise AssertionError(f"process never subscribed: {self.output()}")

    def stop(self, timeout_s: float = 60.0) -> dict[str, Any]:
        """SIGTERM (a clean shutdown) and the per-session counters it wrote."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError(f"process ignored SIGTERM: {self.output()}") from None
        assert code == 0, self.output()
        result: dict[str, Any] = json.loads(self.stats_path.read_text())
        return result

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10.0)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


class StrideConsumer(threading.Thread):
    """Subscribes to every session's strides and events (persistent MQTT session, so QoS 1
    messages wait for it across a broker restart) and keeps every copy it receives."""

    def __init__(self, config: MqttConfig, client_id: str) -> None:
        super().__init__(daemon=True)
        self.config = config
        self.client_id = client_id
        self.copies: dict[str, list[Stride]] = defaultdict(list)  # session → strides received
        self.processed: dict[str, SessionProcessed] = {}
        self.connects = 0
        self.ready = threading.Event()
        self.done = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        async def main() -> None:
            source = MqttSource(
                self.config,
                kinds=("stride", "event"),
                client_id=self.client_id,
                persistent=True,
                dedupe_strides=False,  # counted here: duplicates are part of the result
            )
            async with source:
                await source.wait_subscribed(30.0)
                self.ready.set()
                while not self.done.is_set():
                    message = await source.get(timeout_s=0.1)
                    if message is None:
                        continue
                    if isinstance(message.data, Stride):
                        self.copies[message.session].append(message.data)
                    elif message.kind == "event":
                        done = decode_processed(message.payload)
                        if done is not None:
                            self.processed[message.session] = done
                self.connects = source.stats.connects

        try:
            asyncio.run(main())
        except BaseException as exc:
            self.error = exc
            raise

    def unique(self, session: str) -> dict[StrideKey, Stride]:
        """De-duplicated by (stride start, side): what a consumer of QoS 1 messages keeps."""
        return {(s.start_s, s.side): s for s in self.copies.get(session, [])}

    @property
    def received(self) -> int:
        return sum(len(v) for v in self.copies.values())

    @property
    def duplicates(self) -> int:
        return self.received - sum(len(self.unique(s)) for s in self.copies)

    def wait_processed(self, sessions: set[str], timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not sessions <= set(self.processed):
            time.sleep(0.1)
        missing = sessions - set(self.processed)
        assert not missing, f"no `processed` marker for {sorted(missing)}"


def _row(stride: Stride) -> list[object]:
    return [stride.as_row()[c] for c in STRIDE_COLUMNS]


def assert_same_strides(got: list[Stride], want: list[Stride], what: str) -> None:
    """Same count; same sides and times; every metric within 1e-6 (NaN where NaN)."""
    assert len(got) == len(want), f"{what}: {len(got)} strides, single process {len(want)}"
    key = lambda s: (s.start_s, s.side)  # noqa: E731
    for a, b in zip(sorted(got, key=key), sorted(want, key=key), strict=True):
        for column, x, y in zip(STRIDE_COLUMNS, _row(a), _row(b), strict=True):
            if isinstance(x, float) and isinstance(y, float):
                assert (math.isnan(x) and math.isnan(y)) or abs(x - y) <= 1e-6, (
                    f"{what}: {column} {x} vs {y}"
                )
            else:
                assert x == y, f"{what}: {column} {x!r} vs {y!r}"
