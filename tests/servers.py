"""Real InfluxDB 1.x and Mosquitto servers for the tests, started on free loopback ports.

Session-scoped fixtures (each pytest-xdist worker gets its own servers):

- ``influxd``   → :class:`InfluxServer` (``.url``, ``.port``, ``.stop()``, ``.kill()``,
  ``.start()``, ``.ensure_running()``, ``.query()``, ``.write()``, ``.create_database()``);
  Debian package ``influxdb`` (1.6.7).
- ``influx_db`` → name of a fresh database on that server (function scope).
- ``mosquitto`` → :class:`MosquittoServer` (``.host``, ``.port``, ``.stop()``, ``.kill()``,
  ``.start()``, ``.ensure_running()``), persistence on, so a graceful restart keeps the QoS 1
  queues of persistent sessions.

Config and data live in a temporary folder; every listener binds 127.0.0.1 only. A missing binary
or a server that does not come up goes through ``require_server`` (a skip locally, a failure
under CI=true). Restarting reuses the same port and data folder. A test that stops or kills a
shared server brings it back (``ensure_running()`` in a ``finally``).

Extra servers for one test: ``InfluxServer(find_influxd(), folder, auth_enabled=True)`` (create
the admin user first, as InfluxDB allows while none exists) and ``MosquittoServer(
find_mosquitto(), folder, tls=(cert, key), password_file=...)``.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require_server

HOST = "127.0.0.1"
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


_RUNNING: set[subprocess.Popen[bytes]] = set()


@atexit.register
def _kill_leftovers() -> None:
    """A run that ends without fixture teardown (Ctrl-C, crash) still leaves no server behind."""
    for proc in list(_RUNNING):
        if proc.poll() is None:
            proc.kill()


def _die_with_parent() -> None:
    """Child-side: SIGKILL the server if the test process dies, so no server outlives a run.

    Linux sends this signal when the *thread* that started the child ends, so it is only set
    for servers started from the main thread (a restart from `asyncio.to_thread` must not die
    with its worker thread); `_kill_leftovers` covers the others at exit."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            pr_set_pdeathsig = 1
            libc.prctl(pr_set_pdeathsig, signal.SIGKILL)


def find_influxd() -> str | None:
    return _find_binary("influxd", "/usr/bin/influxd")


def find_mosquitto() -> str | None:
    return _find_binary("mosquitto", "/usr/sbin/mosquitto")


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _find_binary(name: str, *extra: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for candidate in extra:
        if os.access(candidate, os.X_OK):
            return candidate
    return None


class _ServerProcess:
    """A server binary run with a config file, its output in a log file in its folder."""

    name = "server"

    def __init__(self, binary: str, folder: Path) -> None:
        self.binary = binary
        self.folder = folder
        self.log_path = folder / f"{self.name}.log"
        self._proc: subprocess.Popen[bytes] | None = None

    # --- to be provided by subclasses ------------------------------------------------------
    def _command(self) -> list[str]:
        raise NotImplementedError

    def _healthy(self) -> bool:
        raise NotImplementedError

    def repick_ports(self) -> None:
        raise NotImplementedError

    # --- lifecycle ---------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Start (or restart) on the same port and data folder; wait until healthy."""
        if self.running:
            return
        log = self.log_path.open("ab")
        try:
            self._proc = subprocess.Popen(
                self._command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.folder,
                preexec_fn=_die_with_parent if _in_main_thread() else None,
            )
            _RUNNING.add(self._proc)
        finally:
            log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with code {self._proc.returncode}: {self.log_tail()}"
                )
            if self._healthy():
                return
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"{self.name} not healthy after {timeout_s:.0f} s: {self.log_tail()}")

    def stop(self) -> None:
        """Graceful stop (SIGTERM), SIGKILL if it does not exit in time."""
        if self._proc is None or self._proc.poll() is not None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(timeout=STOP_TIMEOUT_S)
            _RUNNING.discard(self._proc)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """Abrupt death (SIGKILL), as in a crash or power loss."""
        if self._proc is None or self._proc.poll() is not None:
            return
        self._proc.kill()
        self._proc.wait(timeout=STOP_TIMEOUT_S)
        _RUNNING.discard(self._proc)

    def ensure_running(self) -> None:
        """Start again if an earlier test left the server down."""
        if not self.running:
            self.start()

    def log_tail(self, n_chars: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n_chars:]
        except OSError:
            return "(no log)"


class InfluxServer(_ServerProcess):
    """``influxd`` (InfluxDB 1.x) with HTTP and RPC listeners on free 127.0.0.1 ports."""

    name = "influxd"

    def __init__(self, binary: str, folder: Path, auth_enabled: bool = False) -> None:
        super().__init__(binary, folder)
        self.auth_enabled = auth_enabled
        self.host = HOST
        self.port = free_port()
        self.rpc_port = free_port()
        self.config_path = folder / "influxdb.conf"
        self._write_config()

    def repick_ports(self) -> None:
        """New free ports (only before the first start: a lost race for a port)."""
        self.port = free_port()
        self.rpc_port = free_port()
        self._write_config()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _write_config(self) -> None:
        d = self.folder
        self.config_path.write_text(
            f"""reporting-disabled = true
bind-address = "{HOST}:{self.rpc_port}"

[meta]
  dir = "{d / "meta"}"
  logging-enabled = false

[data]
  dir = "{d / "data"}"
  wal-dir = "{d / "wal"}"
  query-log-enabled = false

[monitor]
  store-enabled = false

[http]
  enabled = true
  bind-address = "{HOST}:{self.port}"
  auth-enabled = {"true" if self.auth_enabled else "false"}
  log-enabled = false
  pprof-enabled = false

[ifql]
  enabled = false

[continuous_queries]
  enabled = false

[logging]
  level = "warn"
  suppress-logo = true
"""
        )

    def _command(self) -> list[str]:
        return [self.binary, "run", "-config", str(self.config_path)]

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/ping", timeout=1.0) as resp:
                return int(resp.status) == 204
        except (urllib.error.URLError, OSError):
            return False

    def query(
        self,
        q: str,
        db: str | None = None,
        method: str = "GET",
        auth: tuple[str, str] | None = None,
    ) -> dict[str, Any]:
        """Run InfluxQL over /query and return the decoded JSON (epoch=ms timestamps)."""
        params = {"q": q, "epoch": "ms"}
        if auth is not None:
            params["u"], params["p"] = auth
        if db is not None:
            params["db"] = db
        data = urllib.parse.urlencode(params).encode()
        if method == "GET":
            req = urllib.request.Request(f"{self.url}/query?{data.decode()}")
        else:
            req = urllib.request.Request(f"{self.url}/query", data=data, method="POST")
        with urllib.request.urlopen(req, timeout=30.0) as resp:
            result: dict[str, Any] = json.loads(resp.read())
        return result

    def write(self, db: str, lines: str) -> None:
        """Write line protocol (ms precision) directly, for test setup."""
        query = urllib.parse.urlencode({"db": db, "precision": "ms"})
        req = urllib.request.Request(
            f"{self.url}/write?{query}", data=lines.encode(), method="POST"
        )
        with urllib.request.urlopen(req, timeout=30.0) as resp:
            if int(resp.status) != 204:
                raise RuntimeError(f"influxd /write answered {resp.status}")

    def create_database(self, name: str) -> None:
        self.query(f'CREATE DATABASE "{name}"', method="POST")


class MosquittoServer(_ServerProcess):
    """Mosquitto with one 127.0.0.1 listener, anonymous access and on-disk persistence.

    With `tls=(certfile, keyfile)` the listener speaks TLS only; with `password_file` (made by
    `mosquitto_passwd`) anonymous access is off.
    """

    name = "mosquitto"

    def __init__(
        self,
        binary: str,
        folder: Path,
        tls: tuple[Path, Path] | None = None,
        password_file: Path | None = None,
    ) -> None:
        super().__init__(binary, folder)
        self.tls = tls
        self.password_file = password_file
        self.host = HOST
        self.port = free_port()
        self.config_path = folder / "mosquitto.conf"
        (folder / "persist").mkdir(exist_ok=True)
        self._write_config()

    def repick_ports(self) -> None:
        """A new free port (only before the first start: a lost race for a port)."""
        self.port = free_port()
        self._write_config()

    def _write_config(self) -> None:
        folder = self.folder
        # Started as root, mosquitto drops to user `mosquitto`, which cannot write to a
        # private temp folder (no persistence, no log): stay the user that owns the folder.
        user = "user root\n" if os.geteuid() == 0 else ""
        security = "allow_anonymous true\n"
        if self.password_file is not None:
            security = f"allow_anonymous false\npassword_file {self.password_file}\n"
        if self.tls is not None:
            security += f"certfile {self.tls[0]}\nkeyfile {self.tls[1]}\n"
        self.config_path.write_text(
            f"""{user}listener {self.port} {HOST}
{security}persistence true
persistence_location {folder / "persist"}/
autosave_interval 1
max_queued_messages 100000
log_dest file {folder / "mosquitto-broker.log"}
log_type error
log_type warning
log_type notice
"""
        )

    def _command(self) -> list[str]:
        return [self.binary, "-c", str(self.config_path)]

    def _healthy(self) -> bool:
        """A real MQTT 3.1.1 CONNECT answered by CONNACK 'accepted' (for a TLS or password
        listener: that it accepts connections)."""
        if self.tls is not None or self.password_file is not None:
            try:
                with socket.create_connection((self.host, self.port), timeout=1.0):
                    return True
            except OSError:
                return False
        client_id = b"imu-stream-probe"
        variable = b"\x00\x04MQTT\x04\x02\x00\x0a"  # protocol 3.1.1, clean session, keepalive 10
        payload = len(client_id).to_bytes(2, "big") + client_id
        body = variable + payload
        packet = bytes([0x10, len(body)]) + body
        try:
            with socket.create_connection((self.host, self.port), timeout=1.0) as sock:
                sock.sendall(packet)
                connack = sock.recv(4)
                sock.sendall(b"\xe0\x00")  # DISCONNECT
            return connack[:2] == b"\x20\x02" and connack[3:4] == b"\x00"
        except OSError:
            return False


def _start_or_report(server: _ServerProcess, attempts: int = 3) -> None:
    """First start; another process may grab a picked port first, so retry on fresh ports."""
    for attempt in range(attempts):
        try:
            server.start()
            return
        except (RuntimeError, OSError) as exc:
            if attempt == attempts - 1:
                require_server(server.name, str(exc))
            server.repick_ports()


@pytest.fixture(scope="session")
def influxd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxServer]:
    binary = find_influxd()
    if binary is None:
        require_server("influxd", "binary not found (Debian package `influxdb`)")
        raise AssertionError("unreachable")  # require_server skips or fails
    server = InfluxServer(binary, tmp_path_factory.mktemp("influxd"))
    _start_or_report(server)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MosquittoServer]:
    binary = find_mosquitto()
    if binary is None:
        require_server("mosquitto", "binary not found (Debian package `mosquitto`)")
        raise AssertionError("unreachable")
    server = MosquittoServer(binary, tmp_path_factory.mktemp("mosquitto"))
    _start_or_report(server)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture()
def influx_db(influxd: InfluxServer, request: pytest.FixtureRequest) -> str:
    """A fresh, empty database on the session's influxd, named after the test."""
    influxd.ensure_running()
    safe = "".join(c if c.isalnum() else "_" for c in request.node.name)[:40]
    name = f"t_{safe}_{time.monotonic_ns() % 1_000_000}"
    influxd.create_database(name)
    return name
