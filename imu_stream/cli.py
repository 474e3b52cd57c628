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


if __name__ == "__main__":
    app()
