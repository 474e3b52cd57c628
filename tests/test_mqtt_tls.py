"""TLS and username/password on the bus: a mosquitto with a TLS-only listener and a password
file, certificates from a throw-away CA made with the openssl command."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from imu_stream.records import Stride
from imu_stream.sinks.mqtt import MqttConfig, MqttPublisher
from imu_stream.sources.mqtt_source import MqttSource
from tests.conftest import require_server
from tests.servers import MosquittoServer, find_mosquitto

pytestmark = pytest.mark.servers


def _run(*cmd: str | Path) -> None:
    subprocess.run([str(c) for c in cmd], check=True, capture_output=True, timeout=60)


def make_certificates(folder: Path) -> tuple[Path, Path, Path]:
    """(ca.pem, server.pem, server.key): a CA and a server certificate for 127.0.0.1."""
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    ca_key, ca = folder / "ca.key", folder / "ca.pem"
    key, csr, cert = folder / "server.key", folder / "server.csr", folder / "server.pem"
    _run("openssl", "req", "-x509", *ec, "-keyout", ca_key, "-out", ca, "-days", "2",
         "-subj", "/CN=imu-stream test CA",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign")  # fmt: skip
    _run("openssl", "req", *ec, "-keyout", key, "-out", csr, "-subj", "/CN=127.0.0.1")
    ext = folder / "server.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    _run("openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
         "-out", cert, "-days", "2", "-extfile", ext)  # fmt: skip
    key.chmod(0o644)
    return ca, cert, key


@pytest.fixture(scope="module")
def secured_broker(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[MosquittoServer, Path]]:
    binary = find_mosquitto()
    tools = [shutil.which("openssl"), shutil.which("mosquitto_passwd")]
    if binary is None or None in tools:
        require_server("mosquitto with TLS", "mosquitto, mosquitto_passwd or openssl not found")
        raise AssertionError("unreachable")
    folder = tmp_path_factory.mktemp("mosquitto-tls")
    ca, cert, key = make_certificates(folder)
    passwords = folder / "passwd"
    _run("mosquitto_passwd", "-b", "-c", passwords, "clinic", "s3cret pass")
    server = MosquittoServer(binary, folder, tls=(cert, key), password_file=passwords)
    try:
        server.start()
    except RuntimeError as exc:
        require_server("mosquitto with TLS", str(exc))
    try:
        yield server, ca
    finally:
        server.stop()


def stride(i: int) -> Stride:
    return Stride(1.0 + i, 1.7 + i, "left", 0.7, 0.3, 0.4, 171.0, 5.0 + i, 9.0, 12.0, 8.0, 1.0, 0)


def test_tls_with_password_round_trip(secured_broker: tuple[MosquittoServer, Path]) -> None:
    server, ca = secured_broker
    cfg = MqttConfig.from_url(
        f"mqtts://clinic:s3cret%20pass@127.0.0.1:{server.port}/t{uuid.uuid4().hex[:6]}/v1",
        ca_file=ca,
        timeout_s=5.0,
    )
    strides = [stride(i) for i in range(5)]

    async def run() -> list[Stride]:
        async with MqttSource(cfg, kinds=("stride",)) as source:
            await source.wait_subscribed()
            async with MqttPublisher(cfg) as publisher:
                publisher.publish_strides("ann", "s1", strides)
                assert await publisher.flush(5.0)
            got: list[Stride] = []
            while len(got) < len(strides) and (m := await source.get(timeout_s=5.0)) is not None:
                assert isinstance(m.data, Stride)
                got.append(m.data)
            return got

    assert asyncio.run(run()) == strides


@pytest.mark.parametrize(
    ("password", "use_ca", "reason"),
    [("wrong", True, "Not authorized"), ("s3cret pass", False, "CERTIFICATE_VERIFY_FAILED")],
    ids=["wrong-password", "untrusted-certificate"],
)
def test_refused_without_valid_credentials_or_trust(
    secured_broker: tuple[MosquittoServer, Path], password: str, use_ca: bool, reason: str
) -> None:
    server, ca = secured_broker
    cfg = MqttConfig(
        host="127.0.0.1",
        port=server.port,
        tls=True,
        ca_file=ca if use_ca else None,  # None: system CAs, which do not know our test CA
        username="clinic",
        password=password,
        timeout_s=2.0,
        backoff_initial_s=0.05,
    )

    async def run() -> MqttSource:
        source = MqttSource(cfg, kinds=("stride",))
        await source.start()
        with pytest.raises(TimeoutError):
            await source.wait_subscribed(timeout_s=1.0)
        await source.close()
        return source

    source = asyncio.run(run())
    assert not source.stats.connected
    assert reason.lower() in source.stats.last_error.lower(), source.stats.last_error
