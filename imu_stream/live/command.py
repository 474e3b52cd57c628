"""`imu-stream run`: build a source and sinks, run the live pipeline, summarise."""

from __future__ import annotations

import asyncio
import math
import os
from collections.abc import Coroutine
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

from rich.console import Console
from rich.table import Table

from imu_stream.live.records import LiveUpdate
from imu_stream.live.sinks import BaseSink, InfluxSink, MqttSink, Sink
from imu_stream.live.sources import (
    ReplaySource,
    Source,
    simulated_source,
)
from imu_stream.live.thresholds import Thresholds
from imu_stream.pipeline import Pipeline, PipelineConfig, RunResult
from imu_stream.records import SIDES, Stride
from imu_stream.sinks.journal import SessionEvent, SessionMeta
from imu_stream.sources.virtual_time import run_virtual

T = TypeVar("T")

ACTIVITIES = ("walk", "run", "unknown")
DEMO_CPD_DEG = {"left": 5.0, "right": 7.0}  # the simulated runner drops more in right stance


class UsageError(ValueError):
    """A bad combination of options; one line for the user."""


@dataclass(slots=True)
class RunOptions:
    sensors: list[str] = field(default_factory=list)  # LOCATION=ADDRESS_OR_NAME
    config: Path | None = None  # session.toml with a [sensors] table
    simulate: str | None = None  # walk | run
    replay: Path | None = None
    athlete: str | None = None
    activity: str | None = None
    duration_s: float | None = None
    data_dir: Path = Path("imu-sessions")
    speed: float = 1.0
    view: bool = True
    influx_url: str | None = None
    influx_db: str | None = None
    mqtt_url: str | None = None
    seed: int = 0
    thresholds: Path | None = None
    simulation_duration_s: float = 60.0  # gait seconds when simulating without --duration


@dataclass(slots=True)
class Prepared:
    source: Source
    config: PipelineConfig
    virtual_time: bool  # run on the virtual clock (simulation faster than real time)
    truth: dict[str, float] = field(default_factory=dict)  # simulated mean CPD per side


def _check_modes(opts: RunOptions) -> str:
    modes = [
        m
        for m, on in (
            ("ble", bool(opts.sensors or opts.config)),
            ("simulate", opts.simulate is not None),
            ("replay", opts.replay is not None),
        )
        if on
    ]
    if len(modes) != 1:
        raise UsageError(
            "choose one source: --sensor LOCATION=DEVICE (or --config session.toml), "
            "--simulate walk|run, or --replay SESSION_DIR"
        )
    if not (opts.speed >= 0 and math.isfinite(opts.speed)):
        raise UsageError(f"--speed must be ≥ 0, not {opts.speed:g}")
    if modes[0] == "ble" and opts.speed != 1.0:
        raise UsageError("--speed applies to --simulate and --replay only")
    if opts.duration_s is not None and not opts.duration_s > 0:
        raise UsageError(f"--duration must be positive, not {opts.duration_s:g}")
    if opts.activity is not None and opts.activity not in ACTIVITIES:
        raise UsageError(f"--activity must be walk, run or unknown, not {opts.activity!r}")
    networked = opts.influx_url or opts.influx_db or opts.mqtt_url
    if modes[0] == "simulate" and opts.speed == 0 and networked:
        # Unbounded virtual time would outrun every network timeout.
        raise UsageError("--speed 0 cannot be combined with --influx/--mqtt; give a speed")
    return modes[0]


def prepare(opts: RunOptions) -> Prepared:
    """The source and pipeline settings for OPTS (raises UsageError and the sources' errors)."""
    mode = _check_modes(opts)
    config = PipelineConfig(data_dir=opts.data_dir, duration_s=opts.duration_s)
    if mode == "simulate":
        from imu_stream.sim.config import SimulationConfig

        activity = opts.simulate or "run"
        if activity not in ("walk", "run"):
            raise UsageError(f"--simulate must be walk or run, not {activity!r}")
        gait_s = opts.duration_s if opts.duration_s is not None else opts.simulation_duration_s
        sim_config = SimulationConfig(
            activity=activity,
            duration_s=gait_s,
            rate_hz=416.0,
            seed=opts.seed,
            cpd_left_deg=DEMO_CPD_DEG["left"],
            cpd_right_deg=DEMO_CPD_DEG["right"],
        )
        run = simulated_source(sim_config)
        config.athlete = opts.athlete or "simulated"
        config.activity = opts.activity or activity
        config.duration_s = None  # the simulated session ends by itself
        config.notes = run.simulation.info.notes
        truth = {
            side: _mean([s.pelvic_drop_deg for s in run.simulation.truth_strides if s.side == side])
            for side in SIDES
        }
        return Prepared(run.source, config, virtual_time=opts.speed != 1.0, truth=truth)
    if mode == "replay":
        assert opts.replay is not None
        source = ReplaySource.from_folder(opts.replay, speed=opts.speed)
        if opts.duration_s is not None and source.end_s is not None:
            source.end_s = min(source.end_s, source.t0 + opts.duration_s)
        config.athlete = opts.athlete or source.info.athlete
        config.activity = opts.activity or source.info.activity
        config.notes = f"replay of {opts.replay}"
        return Prepared(source, config, virtual_time=False)
    from imu_stream.live.sources import BleSource
    from imu_stream.sources.ble import resolve_sensor_specs

    specs = resolve_sensor_specs(opts.sensors, opts.config)
    if "sacrum" not in [s.location for s in specs]:
        raise UsageError("a sacrum sensor is required (--sensor sacrum=ADDRESS)")
    config.athlete = opts.athlete or "anonymous"
    config.activity = opts.activity or "unknown"
    return Prepared(BleSource(specs), config, virtual_time=False)


def _mean(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return sum(finite) / len(finite) if finite else math.nan


def network_sinks(opts: RunOptions) -> list[Sink]:
    sinks: list[Sink] = []
    if opts.influx_url or opts.influx_db or os.environ.get("IMU_STREAM_INFLUX_URL"):
        from imu_stream.sinks.influx import InfluxConfig, InfluxWriter

        values: dict[str, Any] = {}
        if opts.influx_url:
            values["url"] = opts.influx_url
        if opts.influx_db:
            values["database"] = opts.influx_db
        influx = InfluxConfig.from_mapping(values, InfluxConfig.from_env())
        if influx.spool_dir is None:
            # Undelivered batches wait here for the next run while the server is away.
            influx = replace(influx, spool_dir=opts.data_dir / ".influx-spool")
        sinks.append(InfluxSink(InfluxWriter(influx)))
    mqtt_url = opts.mqtt_url or os.environ.get("IMU_STREAM_MQTT_URL")
    if mqtt_url:
        from imu_stream.sinks.mqtt import MqttConfig, MqttPublisher

        mqtt = MqttConfig.from_env() if not opts.mqtt_url else MqttConfig.from_url(opts.mqtt_url)
        assert mqtt is not None
        sinks.append(MqttSink(MqttPublisher(mqtt)))
    return sinks


class HeadlessProgress(BaseSink):
    """Without the view: one line every `interval_s` of session time on stderr."""

    name = "progress"

    def __init__(self, console: Console, interval_s: float = 5.0) -> None:
        self.console = console
        self.interval_s = interval_s
        self.next_s = interval_s
        self.strides: list[Stride] = []
        self.samples_time_s = 0.0

    async def start(self, meta: SessionMeta) -> None:
        self.console.print(
            f"recording session {meta.session_id} ({meta.source}); Ctrl-C stops it",
            highlight=False,
        )

    def on_update(self, update: LiveUpdate) -> None:
        self.strides.extend(update.strides)
        t = update.data_time_s
        if math.isfinite(t) and t >= self.next_s and not update.final:
            self.next_s = (t // self.interval_s + 1) * self.interval_s
            recent = [s for s in self.strides[-40:] if s.quality == 0]
            means = {
                side: _mean([s.pelvic_drop_deg for s in recent if s.side == side]) for side in SIDES
            }
            cpd = f"L {means['left']:.1f}°, R {means['right']:.1f}°"
            self.console.print(
                f"{t:7.1f} s · {len(self.strides)} strides · pelvic drop {cpd}", highlight=False
            )

    def on_session_event(self, event: SessionEvent) -> None:
        if event.event in ("gap", "calibrated"):
            self.console.print(
                f"{event.time_s:7.1f} s · {event.event}: {event.detail}", highlight=False
            )


def run_pipeline(
    prepared: Prepared, sinks: list[Sink], speed: float, pipeline_hook: Any = None
) -> RunResult:
    pipeline = Pipeline(prepared.source, prepared.config, sinks)
    if pipeline_hook is not None:
        pipeline_hook(pipeline)
    return run_loop(pipeline.run(), prepared.virtual_time, speed)


def run_loop(coro: Coroutine[Any, Any, T], virtual_time: bool, speed: float) -> T:
    """Real time on asyncio's loop; faster on the virtual clock (`speed` 0: unbounded)."""
    if virtual_time:
        return run_virtual(coro, time_scale=speed if speed > 0 else None)
    return asyncio.run(coro)


def live_sinks(
    opts: RunOptions, out: Console, err: Console, locations: tuple[str, ...]
) -> tuple[list[Sink], Any]:
    """The view (or headless progress) plus the network sinks; and a hook wiring the view's
    counters to the pipeline once it exists."""
    sinks: list[Sink] = []
    hook = None
    if opts.view and out.is_terminal:
        from imu_stream.live.view import LiveView

        thresholds = Thresholds.from_toml(opts.thresholds) if opts.thresholds else Thresholds()
        view = LiveView(out, thresholds, locations=locations)
        sinks.append(view)

        def hook(pipeline: Pipeline) -> None:
            view.state.set_counters(pipeline.counter_line)

    else:
        sinks.append(HeadlessProgress(err))
    return sinks + network_sinks(opts), hook


def summary_table(result: RunResult, truth: dict[str, float] | None = None) -> Table:
    table = Table(title=f"session {result.session_id}", title_justify="left")
    table.add_column("")
    table.add_column("left", justify="right")
    table.add_column("right", justify="right")
    good = [s for s in result.strides if s.quality == 0]
    for label, metric, digits in (
        ("strides", "", 0),
        ("pelvic drop (CPD) °", "pelvic_drop_deg", 2),
        ("thigh adduction °", "thigh_adduction_peak_deg", 2),
        ("hip adduction °", "hip_adduction_peak_deg", 2),
        ("cadence spm", "cadence_spm", 1),
        ("stance time s", "stance_time_s", 3),
    ):
        cells = []
        for side in SIDES:
            own = [s for s in good if s.side == side]
            if not metric:
                cells.append(str(len([s for s in result.strides if s.side == side])))
            else:
                value = _mean([getattr(s, metric) for s in own])
                cells.append("–" if not math.isfinite(value) else f"{value:.{digits}f}")
        table.add_row(label, *cells)
    if truth:
        table.add_row("simulated CPD °", *(f"{truth[side]:.2f}" for side in SIDES), style="dim")
    return table


def report_run(result: RunResult, console: Console, truth: dict[str, float] | None = None) -> None:
    console.print(summary_table(result, truth))
    ingest = result.counters.get("ingest", {})
    journal = result.counters.get("journal", {})
    processor = result.counters.get("processor", {})
    console.print(
        f"stopped: {result.stop_reason} · samples {ingest.get('samples', 0):,} "
        f"(journaled {journal.get('samples_committed', 0):,}) · "
        f"processor waits {ingest.get('queue_full_waits', 0)} · "
        f"core max {1e3 * float(processor.get('update_s_max', 0.0)):.0f} ms",
        highlight=False,
    )
    for name, counters in result.counters.items():
        if name in ("influx", "mqtt") and counters:
            console.print(f"{name}: " + ", ".join(f"{k} {v}" for k, v in counters.items()))
    for name, n in result.sink_errors.items():
        console.print(f"[yellow]warning:[/] {name} sink failed {n} time(s); see the log above")
    console.print(f"session journal: {result.session_dir}", highlight=False, soft_wrap=True)


def run_command(opts: RunOptions) -> RunResult:
    """`imu-stream run`; raises UsageError and the sources' one-line errors."""
    out, err = Console(), Console(stderr=True)
    prepared = prepare(opts)
    sinks, hook = live_sinks(opts, out, err, prepared.source.locations)
    result = run_pipeline(prepared, sinks, opts.speed, hook)
    report_run(result, err, prepared.truth or None)
    err.print(
        f"next: imu-stream export {result.session_id} --out DIR   ·   "
        f"imu-stream report {result.session_id} --out report.html"
        + (f" --data-dir {opts.data_dir}" if opts.data_dir != Path("imu-sessions") else ""),
        highlight=False,
        soft_wrap=True,
    )
    return result
