"""The real test servers themselves: healthy, loopback-only, restartable on the same port/data."""

from __future__ import annotations

import socket

from tests.servers import InfluxServer, MosquittoServer


def test_influxd_restarts_on_same_port_and_keeps_data(
    influxd: InfluxServer, influx_db: str
) -> None:
    influxd.write(influx_db, "probe value=1 1700000000000")
    port = influxd.port
    influxd.kill()
    assert not influxd.running
    influxd.start()
    assert influxd.port == port
    result = influxd.query('SELECT count("value") FROM "probe"', db=influx_db)
    assert result["results"][0]["series"][0]["values"][0][1] == 1


def test_servers_listen_on_loopback_only(influxd: InfluxServer, mosquitto: MosquittoServer) -> None:
    influxd.ensure_running()
    for port in (influxd.port, influxd.rpc_port, mosquitto.port):
        with socket.create_connection(("127.0.0.1", port), timeout=2.0):
            pass
    config = influxd.config_path.read_text()
    assert ":8086" not in config and ":8088" not in config
    assert "reporting-disabled = true" in config


def test_mosquitto_restart(mosquitto: MosquittoServer) -> None:
    mosquitto.stop()
    assert not mosquitto.running
    mosquitto.start()
    assert mosquitto.running
