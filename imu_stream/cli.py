"""The `imu-stream` command. Each subcommand imports its heavy parts lazily so `--help` is quick."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape

app = typer.Typer(
    name="imu-stream",
    help="Live pelvic-stability measures (hip drop, frontal-plane knee motion) from wearable IMUs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)


def fail(message: str, code: int = 2) -> NoReturn:
    """Print a one-line error for the user and exit (no traceback)."""
    # Escaped: messages quote URLs like mqtt://host[:port][/prefix], which rich reads as markup.
    console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


@app.callback()
def main() -> None:
    """imu-stream: live pelvic-stability measures from wearable IMUs."""


# --- signal core (issue: signal core) -------------------------------------------------------


@app.command()
def simulate(
    out: Path = typer.Option(..., "--out", help="Session folder to write."),
    activity: str = typer.Option("run", "--activity", help="walk | run"),
    duration: float = typer.Option(60.0, "--duration", help="Seconds of gait."),
    rate: float = typer.Option(200.0, "--rate", help="Sample rate in Hz (50–416)."),
    seed: int = typer.Option(0, "--seed"),
    cpd_left: float = typer.Option(5.0, "--cpd-left", help="CPD in left stance (deg)."),
    cpd_right: float = typer.Option(5.0, "--cpd-right", help="CPD in right stance (deg)."),
    sensors: str = typer.Option("sacrum,left_thigh,right_thigh", "--sensors"),
    no_standing: bool = typer.Option(False, "--no-standing", help="Start walking at once."),
) -> None:
    """Write a simulated session folder with ground truth (truth_events.csv, truth_strides.csv)."""
    from imu_stream.sim.cli import simulate_command

    simulate_command(
        out=out,
        activity=activity,
        duration=duration,
        rate=rate,
        seed=seed,
        cpd_left=cpd_left,
        cpd_right=cpd_right,
        sensors=sensors,
        standing=not no_standing,
    )


@app.command()
def analyze(
    session_dir: Path = typer.Argument(..., help="Session folder (sacrum.csv, thighs, …)."),
    out: Path = typer.Option(..., "--out", help="Folder for events/strides/angles/summary."),
) -> None:
    """Analyze a recorded session: gait events, strides, angles and a summary."""
    from imu_stream.analyze import analyze_command

    analyze_command(session_dir=session_dir, out=out)


# --- session journal, export, report (issue: live session pipeline) -------------------------

DATA_DIR_OPTION = typer.Option(
    Path("imu-sessions"),
    "--data-dir",
    envvar="IMU_STREAM_DATA_DIR",
    help="Where sessions live (env IMU_STREAM_DATA_DIR).",
)


@app.command()
def sessions(data_dir: Path = DATA_DIR_OPTION) -> None:
    """List recorded sessions: id, athlete, start, duration, sensors, strides."""
    from imu_stream.sinks.commands import sessions_command

    sessions_command(data_dir)


@app.command()
def export(
    session: str = typer.Argument(..., help="Session id (or a unique prefix) or folder."),
    out: Path = typer.Option(..., "--out", help="Folder to write the session files into."),
    fmt: str = typer.Option("csv", "--format", help="csv | parquet"),
    no_analysis: bool = typer.Option(False, "--no-analysis", help="Raw files only."),
    data_dir: Path = DATA_DIR_OPTION,
) -> None:
    """Export a session: per-sensor files, session.toml, events, strides, angles, summary."""
    from imu_stream.sinks.commands import export_command

    export_command(session, out, fmt, data_dir, analyze=not no_analysis)


@app.command()
def report(
    session: str = typer.Argument(..., help="Session id/prefix/folder, or an analysis folder."),
    out: Path = typer.Option(..., "--out", help="HTML file to write (PNGs go beside it)."),
    source: str = typer.Option("auto", "--source", help="auto | live | analyze"),
    si_band: float = typer.Option(10.0, "--si-band", help="Symmetry band shown, in %."),
    data_dir: Path = DATA_DIR_OPTION,
) -> None:
    """Write a self-contained HTML run report with its figures."""
    from imu_stream.sinks.commands import report_command

    report_command(session, out, source, si_band, data_dir)


# --- device layer (issue: device layer) ------------------------------------------------------


@app.command()
def decode(
    hex_packets: list[str] = typer.Argument(..., metavar="HEX...", help="Packets, arrival order."),
    device: str = typer.Option(
        ..., "--device", help="movesense | metawear-bmi160 | metawear-bmi270"
    ),
    acc_range_g: int | None = typer.Option(None, "--acc-range-g", help="MetaWear acc range (g)."),
    gyro_range_dps: int | None = typer.Option(
        None, "--gyro-range-dps", help="MetaWear gyro range (deg/s)."
    ),
) -> None:
    """Decode notifications pasted from a BLE log: one JSON object per complete notification."""
    import json

    from imu_stream.devices.decode import HexPacketError, decode_packets, parse_hex
    from imu_stream.devices.profiles import ProfileError

    try:
        packets = [parse_hex(h) for h in hex_packets]
        report = decode_packets(
            device, packets, acc_range_g=acc_range_g, gyro_range_dps=gyro_range_dps
        )
    except (HexPacketError, ProfileError, ValueError) as exc:
        fail(str(exc))
    for record in report.records:
        print(json.dumps(record))
    for line in report.skipped:
        console.print(f"skipped {line}", highlight=False, soft_wrap=True)


@app.command()
def scan(
    timeout: float = typer.Option(5.0, "--timeout", help="Seconds to listen."),
    show_all: bool = typer.Option(False, "--all", help="Also list unsupported devices."),
) -> None:
    """List nearby supported sensors: name, address, RSSI, family."""
    import asyncio

    from imu_stream.sources.ble import BluetoothUnavailableError, format_scan_table, scan_sensors

    try:
        found = asyncio.run(scan_sensors(timeout, include_unsupported=show_all))
    except BluetoothUnavailableError as exc:
        fail(str(exc))
    print(format_scan_table(found))


@app.command()
def demo(
    out: Path = typer.Option(Path("demo-output"), "--out", help="Folder for the CSVs and report."),
    duration: float = typer.Option(60.0, "--duration", help="Seconds of simulated running."),
    seed: int = typer.Option(0, "--seed"),
    speed: float = typer.Option(1.0, "--speed", help="Times real time (0: as fast as possible)."),
    no_view: bool = typer.Option(False, "--no-view", help="No live view (progress lines)."),
    data_dir: Path = DATA_DIR_OPTION,
) -> None:
    """The embedded default: a simulated runner with three sensors through the live pipeline,
    then export (CSVs + analysis) and the run report."""
    from imu_stream.demo import demo_command

    with _user_errors():
        demo_command(
            out=out,
            duration_s=duration,
            seed=seed,
            speed=speed,
            data_dir=data_dir,
            view=not no_view,
        )


# --- live pipeline (issue: live session pipeline) -------------------------------------------


@contextlib.contextmanager
def _user_errors() -> Iterator[None]:
    """The live commands' expected failures as one-line errors."""
    from imu_stream.live.command import UsageError
    from imu_stream.session_io import SessionFormatError
    from imu_stream.sinks.journal import JournalError
    from imu_stream.sources.ble import BluetoothUnavailableError, SensorConfigError

    try:
        yield
    except (
        UsageError,
        BluetoothUnavailableError,
        SensorConfigError,
        SessionFormatError,
        JournalError,
    ) as exc:
        fail(str(exc))


# Options `run` and `collect` share.
SENSOR_OPTION = typer.Option(
    [], "--sensor", help="LOCATION=ADDRESS or name suffix, e.g. sacrum=AA:BB:…; repeat."
)
SIMULATE_OPTION = typer.Option(
    None, "--simulate", help="walk | run: the simulator through emulated sensors."
)
REPLAY_OPTION = typer.Option(
    None, "--replay", help="Session folder (CSV) or journaled session to replay."
)


@app.command()
def run(
    sensor: list[str] = SENSOR_OPTION,
    config: Path | None = typer.Option(
        None, "--config", help="session.toml with a [sensors] table (--sensor overrides)."
    ),
    simulate: str | None = SIMULATE_OPTION,
    replay: Path | None = REPLAY_OPTION,
    athlete: str | None = typer.Option(None, "--athlete"),
    activity: str | None = typer.Option(None, "--activity", help="walk | run | unknown"),
    duration: float | None = typer.Option(
        None, "--duration", help="Seconds to record (simulate: seconds of gait, default 60)."
    ),
    speed: float = typer.Option(
        1.0, "--speed", help="Replay/simulate: times real time (0: as fast as possible)."
    ),
    no_view: bool = typer.Option(False, "--no-view", help="Headless: progress lines only."),
    influx: str | None = typer.Option(
        None, "--influx", help="InfluxDB URL (also IMU_STREAM_INFLUX_* variables)."
    ),
    influx_db: str | None = typer.Option(None, "--influx-db", help="InfluxDB database."),
    mqtt: str | None = typer.Option(
        None,
        "--mqtt",
        help="MQTT broker URL: mqtt://host:port/prefix (mqtts:// for TLS, user:pass@ optional).",
    ),
    thresholds: Path | None = typer.Option(
        None, "--thresholds", help="TOML with the view's colour bands (see README)."
    ),
    seed: int = typer.Option(0, "--seed", help="Simulate: random seed."),
    data_dir: Path = DATA_DIR_OPTION,
) -> None:
    """Record a live session: sensors → journal → live analysis → view (+ InfluxDB, MQTT)."""
    from imu_stream.live.command import RunOptions, run_command

    options = RunOptions(
        sensors=list(sensor),
        config=config,
        simulate=simulate,
        replay=replay,
        athlete=athlete,
        activity=activity,
        duration_s=duration,
        data_dir=data_dir,
        speed=speed,
        view=not no_view,
        influx_url=influx,
        influx_db=influx_db,
        mqtt_url=mqtt,
        seed=seed,
        thresholds=thresholds,
    )
    with _user_errors():
        run_command(options)


# --- scale-out over MQTT (issue: InfluxDB, MQTT and Grafana) -----------------------------------


@app.command()
def collect(
    sensor: list[str] = SENSOR_OPTION,
    config: Path | None = typer.Option(
        None, "--config", help="session.toml with a sensors table (--sensor overrides)."
    ),
    simulate: str | None = SIMULATE_OPTION,
    replay: Path | None = REPLAY_OPTION,
    athletes: int = typer.Option(
        1, "--athletes", help="Simulate: this many athletes side by side (seeds seed…seed+N−1)."
    ),
    athlete: str | None = typer.Option(None, "--athlete"),
    activity: str | None = typer.Option(None, "--activity", help="walk | run | unknown"),
    duration: float | None = typer.Option(
        None, "--duration", help="Seconds to record (simulate: seconds of gait, default 60)."
    ),
    speed: float = typer.Option(1.0, "--speed", help="Replay/simulate: times real time (> 0)."),
    mqtt: str | None = typer.Option(
        None,
        "--mqtt",
        help="MQTT broker URL, e.g. mqtt://host:1883/prefix (mqtts:// = TLS; user:pass@host).",
    ),
    seed: int = typer.Option(0, "--seed", help="Simulate: random seed."),
    data_dir: Path = DATA_DIR_OPTION,
) -> None:
    """Collect sessions onto the MQTT bus: sensors → journal + raw blocks, status and session
    info (no processing; `imu-stream process` does that)."""
    from imu_stream.bus.command import CollectOptions, collect_command
    from imu_stream.live.command import RunOptions

    options = RunOptions(
        sensors=list(sensor),
        config=config,
        simulate=simulate,
        replay=replay,
        athlete=athlete,
        activity=activity,
        duration_s=duration,
        data_dir=data_dir,
        speed=speed,
        view=False,
        mqtt_url=mqtt,
        seed=seed,
    )
    with _user_errors():
        collect_command(CollectOptions(options, athletes=athletes))


@app.command()
def process(
    shard: str = typer.Option("0/1", "--shard", help="I/N: process the sessions of shard I of N."),
    mqtt: str | None = typer.Option(
        None,
        "--mqtt",
        help="MQTT broker URL, e.g. mqtt://host:1883/prefix (mqtts:// = TLS; user:pass@host).",
    ),
    influx: str | None = typer.Option(
        None, "--influx", help="InfluxDB URL (also IMU_STREAM_INFLUX_* variables)."
    ),
    influx_db: str | None = typer.Option(None, "--influx-db", help="InfluxDB database."),
    client_id: str | None = typer.Option(
        None, "--client-id", help="MQTT client id (default: derived from shard and prefix)."
    ),
    idle_timeout: float = typer.Option(
        120.0, "--idle-timeout", help="Finish a session after this many seconds without data."
    ),
    stats: Path | None = typer.Option(
        None, "--stats", help="Write per-session counters as JSON here at exit."
    ),
    data_dir: Path = typer.Option(
        Path("imu-sessions"),
        "--data-dir",
        envvar="IMU_STREAM_DATA_DIR",
        help="InfluxDB batches wait in DATA_DIR/.influx-spool-shard-I-of-N while it is away.",
    ),
) -> None:
    """Process the sessions of one shard from the MQTT bus: strides, events and angles back on
    the bus and into InfluxDB. Runs until SIGTERM or Ctrl-C."""
    from imu_stream.bus.command import ProcessOptions, process_command

    options = ProcessOptions(
        shard=shard,
        mqtt_url=mqtt,
        influx_url=influx,
        influx_db=influx_db,
        client_id=client_id,
        data_dir=data_dir,
        stats=stats,
        idle_timeout_s=idle_timeout,
    )
    with _user_errors():
        process_command(options)


if __name__ == "__main__":
    app()
