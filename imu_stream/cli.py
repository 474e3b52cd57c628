"""The `imu-stream` command. Each subcommand imports its heavy parts lazily so `--help` is quick."""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

import typer
from rich.console import Console

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
    console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
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
    out: Path = typer.Option(Path("demo-output"), "--out", help="Folder for the demo outputs."),
    duration: float = typer.Option(60.0, "--duration", help="Seconds of simulated running."),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """The embedded default: a simulated runner with three sensors, analysed and summarised."""
    from imu_stream.demo import demo_command

    demo_command(out=out, duration=duration, seed=seed)


if __name__ == "__main__":
    app()
