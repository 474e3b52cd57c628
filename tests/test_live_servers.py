"""`imu-stream run --influx … --mqtt …` against the real influxd and mosquitto the suite starts:
every live stride reaches InfluxDB and the MQTT bus, with sensor status and session events."""

from __future__ import annotations

import asyncio
import math
import threading
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from imu_stream.cli import app
from imu_stream.records import Stride
from imu_stream.session_io import write_session_dir
from imu_stream.sim.config import SimulationConfig
from imu_stream.sim.session import simulate
from imu_stream.sinks.journal import JournalReader, list_sessions
from imu_stream.sinks.mqtt import MqttConfig
from imu_stream.sources.mqtt_source import BusMessage, MqttSource
from tests.servers import InfluxServer, MosquittoServer

pytestmark = pytest.mark.servers


class Subscriber(threading.Thread):
    """Collects stride messages on its own event loop while the command runs."""

    def __init__(self, config: MqttConfig) -> None:
        super().__init__(daemon=True)
        self.config = config
        self.messages: list[BusMessage] = []
        self.ready = threading.Event()
        self.done = threading.Event()

    def run(self) -> None:
        async def main() -> None:
            async with MqttSource(self.config, kinds=("stride", "event")) as source:
                await source.wait_subscribed()
                self.ready.set()
                while not self.done.is_set():
                    message = await source.get(timeout_s=0.2)
                    if message is not None:
                        self.messages.append(message)

        asyncio.run(main())


def _rows(strides: list[Stride]) -> list[tuple[object, ...]]:
    return sorted(
        tuple("nan" if isinstance(v, float) and math.isnan(v) else v for v in s.as_row().values())
        for s in strides
    )


def test_run_writes_influx_and_publishes_mqtt(
    tmp_path: Path, influxd: InfluxServer, influx_db: str, mosquitto: MosquittoServer
) -> None:
    mosquitto.ensure_running()
    sim = simulate(SimulationConfig(activity="run", duration_s=15.0, rate_hz=200.0, seed=6))
    folder = tmp_path / "recorded"
    write_session_dir(folder, sim.recordings, sim.info)
    prefix = f"t{uuid.uuid4().hex[:8]}/imu-stream/v1"
    subscriber = Subscriber(
        MqttConfig(host=mosquitto.host, port=mosquitto.port, prefix=prefix, timeout_s=3.0)
    )
    subscriber.start()
    assert subscriber.ready.wait(15.0)
    data_dir = tmp_path / "sessions"
    try:
        result = CliRunner().invoke(
            app,
            [
                "run",
                "--replay",
                str(folder),
                "--speed",
                "0",
                "--no-view",
                "--athlete",
                "influx mqtt",
                "--data-dir",
                str(data_dir),
                "--influx",
                influxd.url,
                "--influx-db",
                influx_db,
                "--mqtt",
                f"mqtt://{mosquitto.host}:{mosquitto.port}/{prefix}",
            ],
        )
        assert result.exit_code == 0, result.output
        (session,) = list_sessions(data_dir)
        with JournalReader(session.path) as reader:
            live = reader.strides()
            session_id = reader.session_id
        assert len(live) > 10
        for _ in range(100):  # QoS 1 messages may still be on their way
            got = [m.data for m in subscriber.messages if isinstance(m.data, Stride)]
            if len(got) >= len(live):
                break
            threading.Event().wait(0.1)
    finally:
        subscriber.done.set()
        subscriber.join(10.0)

    # MQTT: every live stride, exactly (QoS 1, duplicates dropped by the source)
    assert _rows(got) == _rows(live)
    assert {m.session for m in subscriber.messages} == {session_id}

    # InfluxDB: the same strides, sensor status and the session's start/stop events
    where = f"WHERE \"session\" = '{session_id}'"
    answer = influxd.query(f"SELECT pelvic_drop_deg, side FROM stride {where}", db=influx_db)
    values = answer["results"][0]["series"][0]["values"]
    assert len(values) == len(live)
    assert sorted(v[1] for v in values) == sorted(s.pelvic_drop_deg for s in live)
    sensor = influxd.query(f"SELECT count(rate_hz) FROM sensor {where}", db=influx_db)
    assert sensor["results"][0]["series"][0]["values"][0][1] >= 3
    events = influxd.query(f"SELECT event FROM session_event {where}", db=influx_db)
    names = [v[1] for v in events["results"][0]["series"][0]["values"]]
    assert names[0] == "start" and names[-1] == "stop"
