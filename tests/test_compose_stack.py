"""docker-compose.yml and .env.example, checked offline (no Docker engine runs here).

The compose file is validated against the Compose Specification JSON schema vendored in
tests/schemas/ (source and licence in tests/schemas/README.md); the Mosquitto configuration it
carries is started with the real `mosquitto` binary to prove it parses and admits clients.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.conftest import require_server

REPO = Path(__file__).resolve().parent.parent
COMPOSE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / ".env.example"
SCHEMA = Path(__file__).resolve().parent / "schemas" / "compose-spec.json"
PROVISIONING = REPO / "dashboards" / "provisioning"

_INTERPOLATION = re.compile(r"\$\{(\w+)(?::?([-?])([^}]*))?\}")


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def env_example() -> dict[str, str]:
    values: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def validator() -> jsonschema.Draft7Validator:
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def test_compose_file_is_valid_against_the_compose_spec_schema() -> None:
    errors = [f"{list(e.path)}: {e.message}" for e in validator().iter_errors(compose())]
    assert errors == []


def test_the_schema_rejects_broken_compose_files() -> None:
    """Negative control: the vendored schema is strict enough to catch real mistakes."""
    check = validator()
    for mutate in (
        lambda d: d["services"]["grafana"].update(imagee="x"),  # misspelt key
        lambda d: d["services"]["influxdb"].update(ports="8086:8086"),  # list expected
        lambda d: d["services"]["grafana"]["depends_on"]["influxdb"].update(condition="up"),
        lambda d: d["services"]["mosquitto"]["healthcheck"].update(retries=[3]),
    ):
        broken = copy.deepcopy(compose())
        mutate(broken)
        assert list(check.iter_errors(broken)), "schema accepted a broken compose file"


def test_services_are_pinned_healthchecked_and_persistent() -> None:
    doc = compose()
    services = doc["services"]
    assert {"mosquitto", "influxdb", "grafana"} <= set(services)
    images = {name: svc["image"] for name, svc in services.items()}
    for name, image in images.items():
        repo, _, tag = image.rpartition(":")
        assert repo and re.fullmatch(r"\d+\.\d+\.\d+", tag), f"{name}: pin an exact tag ({image})"
    assert images["mosquitto"].startswith("eclipse-mosquitto:2.")
    assert images["influxdb"].startswith("influxdb:1.")  # 1.x: InfluxQL + v1 API, as tested
    assert images["grafana"].startswith("grafana/grafana")
    for name, svc in services.items():
        test = svc["healthcheck"]["test"]
        assert test[0] in ("CMD", "CMD-SHELL") and len(test) >= 2, name
    named = set(doc["volumes"])
    used: set[str] = set()
    for name, svc in services.items():
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert volume.endswith(":ro"), f"{name}: bind mount {volume} must be read-only"
            else:
                used.add(source)
    assert used == named, "every named volume is used and every data volume is named"
    assert services["grafana"]["depends_on"]["influxdb"]["condition"] == "service_healthy"


def test_grafana_mounts_the_provisioning_and_dashboards_read_only() -> None:
    grafana = compose()["services"]["grafana"]
    mounts = {v.split(":")[0]: v.split(":")[1:] for v in grafana["volumes"]}
    assert mounts["./dashboards/provisioning"] == ["/etc/grafana/provisioning", "ro"]
    target, mode = mounts["./dashboards/json"]
    assert mode == "ro"
    for relative in ("./dashboards/provisioning", "./dashboards/json"):
        assert (REPO / relative).is_dir()
    provider = yaml.safe_load((PROVISIONING / "dashboards" / "imu-stream.yaml").read_text())
    assert provider["providers"][0]["options"]["path"] == target
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home.startswith(target + "/") and (REPO / "dashboards/json" / Path(home).name).exists()
    # every ${VAR} of the data source provisioning reaches Grafana's environment
    datasource = (PROVISIONING / "datasources" / "influxdb.yaml").read_text()
    needed = set(re.findall(r"\$\{(\w+)\}", datasource))
    assert needed and needed <= set(grafana["environment"])


def test_env_example_has_no_default_passwords_and_covers_every_variable() -> None:
    values = env_example()
    assert values["GF_DASHBOARDS_MIN_REFRESH_INTERVAL"] == "1s"
    passwords = {k: v for k, v in values.items() if "PASSWORD" in k}
    assert passwords and all(v == "" for v in passwords.values()), passwords
    text = COMPOSE.read_text()
    referenced = {m.group(1): (m.group(2), m.group(3)) for m in _INTERPOLATION.finditer(text)}
    assert set(referenced) <= set(values), set(referenced) - set(values)
    for name, (kind, _) in referenced.items():
        if "PASSWORD" in name:
            assert kind == "?", f"{name} must be required (${{{name}:?…}}), never defaulted"
    assert ".env" in (REPO / ".gitignore").read_text().split()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _connack(port: int) -> bytes:
    client_id = b"compose-check"
    body = b"\x00\x04MQTT\x04\x02\x00\x0a" + len(client_id).to_bytes(2, "big") + client_id
    with socket.create_connection(("127.0.0.1", port), timeout=2.0) as sock:
        sock.sendall(bytes([0x10, len(body)]) + body)
        reply = sock.recv(4)
        sock.sendall(b"\xe0\x00")
    return reply


def test_mosquitto_config_listens_and_admits_anonymous_clients(tmp_path: Path) -> None:
    content: str = compose()["configs"]["mosquitto_conf"]["content"]
    lines = content.splitlines()
    assert "listener 1883" in lines and "allow_anonymous true" in lines
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(binary).exists():
        require_server("mosquitto", "binary not found (Debian package `mosquitto`)")
    port = _free_port()
    # Same file, but on a free loopback port and with the data folder in tmp_path.
    local = content.replace("listener 1883", f"listener {port} 127.0.0.1")
    local = local.replace("/mosquitto/data/", f"{tmp_path}/")
    assert local != content
    config = tmp_path / "mosquitto.conf"
    config.write_text(local)
    proc = subprocess.Popen(
        [binary, "-c", str(config)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        reply = b""
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                reply = _connack(port)
                break
            except OSError:
                time.sleep(0.05)
        if proc.poll() is not None:
            output = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
            pytest.fail(f"mosquitto rejected the compose configuration: {output}")
        assert reply[:2] == b"\x20\x02" and reply[3:4] == b"\x00", reply  # CONNACK accepted
    finally:
        proc.terminate()
        proc.wait(timeout=10)
