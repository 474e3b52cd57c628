"""Scale-out over MQTT with the real CLI and a real mosquitto: `collect` for 20 simulated
athletes and two `process --shard` workers; then a broker restart in the middle of a run.

Figures are printed (run with `-s`): athletes, strides, QoS 1 duplicates, wall time.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from pathlib import Path

import pytest

from imu_stream.analyze import analyze_session
from imu_stream.sinks import wire
from imu_stream.sinks.journal import JournalReader, list_sessions
from imu_stream.sinks.mqtt import MqttConfig
from tests.bus_helpers import StrideConsumer, Worker, assert_same_strides, cli, cli_env
from tests.conftest import require_server
from tests.servers import InfluxServer, MosquittoServer, find_mosquitto

pytestmark = pytest.mark.servers

ATHLETES = 20
GAIT_S = 15.0  # seconds of simulated running per athlete (strides start after ~12 s: calibration)
SPEED = 4.0


def _bus(host: str, port: int) -> tuple[str, MqttConfig]:
    prefix = f"t{uuid.uuid4().hex[:8]}/imu-stream/v1"
    config = MqttConfig(
        host=host, port=port, prefix=prefix, backoff_initial_s=0.1, backoff_max_s=1.0
    )
    return f"mqtt://{host}:{port}/{prefix}", config


def _start_collect(
    url: str, data_dir: Path, athlete: str, athletes: int, gait_s: float, seed: int, speed: float
) -> subprocess.Popen[str]:
    """`imu-stream collect --simulate run --athletes N` (seeds seed … seed + N − 1)."""
    return subprocess.Popen(
        cli(
            "collect",
            "--simulate",
            "run",
            "--athletes",
            str(athletes),
            "--athlete",
            athlete,
            "--duration",
            str(gait_s),
            "--speed",
            str(speed),
            "--seed",
            str(seed),
            "--mqtt",
            url,
            "--data-dir",
            str(data_dir),
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=cli_env(),
    )


def _wait(collector: subprocess.Popen[str], timeout_s: float = 240.0) -> None:
    out, _ = collector.communicate(timeout=timeout_s)
    assert collector.returncode == 0, out


def test_twenty_athletes_over_two_shards_equal_the_single_process_result(
    tmp_path: Path, mosquitto: MosquittoServer, influxd: InfluxServer, influx_db: str
) -> None:
    mosquitto.ensure_running()
    started = time.monotonic()
    url, config = _bus(mosquitto.host, mosquitto.port)
    consumer = StrideConsumer(config, f"consumer-{uuid.uuid4().hex[:8]}")
    consumer.start()
    assert consumer.ready.wait(30.0)
    tag = uuid.uuid4().hex[:8]
    influx = ("--influx", influxd.url, "--influx-db", influx_db)
    workers = [Worker(tmp_path, url, f"{i}/2", f"proc-{tag}-{i}", *influx) for i in range(2)]
    data_dir = tmp_path / "sessions"
    try:
        for worker in workers:
            worker.wait_subscribed()
        # Two gateways of ten athletes each (the machine has two cores).
        half = ATHLETES // 2
        collectors = [
            _start_collect(url, data_dir, f"gw{g}", half, GAIT_S, 100 + 100 * g, SPEED)
            for g in range(2)
        ]
        for collector in collectors:
            _wait(collector)
        sessions = {s.session_id: s for s in list_sessions(data_dir)}
        assert len(sessions) == ATHLETES
        consumer.wait_processed(set(sessions), timeout_s=90.0)
        stats = [w.stop() for w in workers]
    finally:
        consumer.done.set()
        for worker in workers:
            worker.kill()
    consumer.join(10.0)
    wall_s = time.monotonic() - started

    # Each session processed by exactly one worker: the one its id hashes to; all of it.
    owner: dict[str, int] = {}
    for shard, result in enumerate(stats):
        for s in result["sessions"]:
            assert s["session"] not in owner, f"{s['session']} processed twice"
            owner[s["session"]] = shard
            assert s["finished"] == "end" and s["raw_blocks_lost"] == 0 and not s["joined_late"]
    assert owner == {sid: wire.shard_of(sid, 2) for sid in sessions}
    assert 0 < sum(owner.values()) < ATHLETES  # both shards had work

    # The workers wrote InfluxDB too (flushed at their shutdown): every stride, the sensors'
    # status and the session events, tagged with the session.
    def counts(q: str) -> dict[str, int]:
        answer = influxd.query(q + ' GROUP BY "session"', db=influx_db)
        return {s["tags"]["session"]: s["values"][0][1] for s in answer["results"][0]["series"]}

    influx_strides = counts("SELECT count(start_s) FROM stride")
    influx_sensor = counts("SELECT count(rate_hz) FROM sensor")
    influx_events = counts("SELECT count(event) FROM session_event")
    assert set(influx_sensor) == set(influx_events) == set(sessions)

    # Each athlete's strides once, equal to `analyze` on the collector's journal.
    total = 0
    per_session = {s["session"]: s for r in stats for s in r["sessions"]}
    for sid, summary in sessions.items():
        with JournalReader(summary.path) as reader:
            reference = analyze_session(reader.recordings(), reader.meta.to_info()).strides
        received = consumer.copies[sid]
        unique = consumer.unique(sid)
        assert len(unique) == len(received), f"{sid}: a stride published twice"
        assert consumer.processed[sid].strides == per_session[sid]["strides"] == len(received)
        assert influx_strides[sid] == len(received)
        assert influx_sensor[sid] >= 3 * GAIT_S and influx_events[sid] >= 4  # start … processed
        assert len(reference) > 20
        assert_same_strides(list(unique.values()), reference, sid)
        total += len(reference)
    print(
        f"\nscale-out: {ATHLETES} athletes × {GAIT_S:g} s from 2 collectors, 2 shards "
        f"({sum(1 for v in owner.values() if v == 0)}/{sum(owner.values())} sessions), "
        f"{total} strides, all equal to the single-process analysis, "
        f"{consumer.duplicates} duplicates; wall {wall_s:.1f} s"
    )


def test_broker_restart_mid_run_loses_no_qos1_stride(tmp_path: Path) -> None:
    """Stop mosquitto (`kill`: SIGTERM, it saves its persistence) while strides flow, start it
    again on the same port: every stride the workers published reaches the consumer, exactly
    once after de-duplication by (session, start, side); duplicates from QoS 1 redelivery are
    counted. (SIGKILL is another matter: mosquitto acknowledges a QoS 1 message before its
    periodic save, so a crash can lose what it had neither delivered nor saved; see README.)"""
    binary = find_mosquitto()
    if binary is None:
        require_server("mosquitto", "binary not found (Debian package `mosquitto`)")
        return
    (tmp_path / "broker").mkdir()
    broker = MosquittoServer(binary, tmp_path / "broker")
    try:
        broker.start()
    except (RuntimeError, OSError) as exc:
        require_server("mosquitto", str(exc))
    started = time.monotonic()
    url, config = _bus(broker.host, broker.port)
    consumer = StrideConsumer(config, "consumer-restart")
    workers: list[Worker] = []
    athletes = 4
    try:
        consumer.start()
        assert consumer.ready.wait(30.0)
        workers = [Worker(tmp_path, url, f"{i}/2", f"proc-restart-{i}") for i in range(2)]
        for worker in workers:
            worker.wait_subscribed()
        data_dir = tmp_path / "sessions"
        collect = _start_collect(url, data_dir, "restart", athletes, 22.0, 300, 2.0)
        deadline = time.monotonic() + 120.0
        while consumer.received < 40:  # strides are flowing
            assert time.monotonic() < deadline and collect.poll() is None, "no strides"
            time.sleep(0.05)
        before = consumer.received
        broker.stop()
        time.sleep(1.5)
        broker.start()
        _wait(collect)
        sessions = {s.session_id for s in list_sessions(data_dir)}
        assert len(sessions) == athletes
        consumer.wait_processed(sessions, timeout_s=90.0)
        stats = [w.stop() for w in workers]
    finally:
        consumer.done.set()
        for worker in workers:
            worker.kill()
        broker.stop()
    consumer.join(10.0)
    published = {s["session"]: s["strides"] for r in stats for s in r["sessions"]}
    assert set(published) == sessions
    lost_raw = sum(s["raw_blocks_lost"] for r in stats for s in r["sessions"])
    for sid in sessions:
        unique = consumer.unique(sid)
        # Every stride the worker published arrived (none lost), once after de-duplication.
        assert len(unique) == published[sid] == consumer.processed[sid].strides, sid
    assert all(r["publisher"]["connects"] >= 2 and r["bus"]["connects"] >= 2 for r in stats)
    assert consumer.connects >= 2
    print(
        f"\nbroker restart: {athletes} athletes, {sum(published.values())} strides published, "
        f"{before} received before the broker stopped and the rest after it; "
        f"{consumer.duplicates} duplicates from QoS 1 redelivery; {lost_raw} raw blocks (QoS 0) "
        f"lost in the outage; wall {time.monotonic() - started:.1f} s"
    )
