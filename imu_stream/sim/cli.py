"""`imu-stream simulate`: write a simulated session folder with its ground truth."""

from __future__ import annotations

from pathlib import Path

import typer


def simulate_command(
    out: Path,
    activity: str,
    duration: float,
    rate: float,
    seed: int,
    cpd_left: float,
    cpd_right: float,
    sensors: str,
    standing: bool,
) -> None:
    from imu_stream.cli import fail
    from imu_stream.sim.config import SimulationConfig
    from imu_stream.sim.session import simulate, write_simulated_session

    locations = tuple(s.strip() for s in sensors.split(",") if s.strip())
    try:
        config = SimulationConfig(
            activity=activity,
            duration_s=duration,
            rate_hz=rate,
            seed=seed,
            cpd_left_deg=cpd_left,
            cpd_right_deg=cpd_right,
            sensors=locations,
            standing_s=None if standing else 0.0,
        )
    except ValueError as exc:
        fail(str(exc))
    if out.exists() and not out.is_dir():
        fail(f"{out}: exists and is not a folder")
    session = simulate(config)
    try:
        write_simulated_session(session, out)
    except OSError as exc:
        fail(f"{out}: cannot write ({exc.strerror})")
    strides = session.truth_strides
    n_left = sum(1 for s in strides if s.side == "left")
    params = session.params
    typer.echo(f"wrote {out}")
    typer.echo(
        f"{activity}: {len(strides)} strides ({n_left} left, {len(strides) - n_left} right), "
        f"{params.standing_s:.1f} s standing + {duration:g} s gait at {rate:g} Hz, "
        f"{params.speed_mps:.2f} m/s, {params.cadence_spm:.0f} steps/min, "
        f"sensors {', '.join(locations)}"
    )
