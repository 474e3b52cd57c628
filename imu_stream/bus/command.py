"""`imu-stream collect` and `imu-stream process`: options, wiring and what is printed."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from imu_stream.bus.collect import CollectResult, CollectSession
from imu_stream.bus.process import ProcessConfig, ProcessResult, ShardProcessor
from imu_stream.bus.shard import ShardSpec
from imu_stream.live.command import Prepared, RunOptions, UsageError, prepare, run_loop
from imu_stream.sinks.influx import InfluxConfig
from imu_stream.sinks.mqtt import MqttConfig

PROGRESS_INTERVAL_S = 5.0
log = logging.getLogger(__name__)


def mqtt_config(url: str | None) -> MqttConfig:
    """`--mqtt URL`, else IMU_STREAM_MQTT_URL (with its _USER/_PASSWORD/… companions)."""
    try:
        config = MqttConfig.from_url(url) if url else MqttConfig.from_env()
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if config is None:
        raise UsageError(
            "give the broker: --mqtt mqtt://host[:port][/prefix] (or IMU_STREAM_MQTT_URL)"
        )
    return config


# --- collect -----------------------------------------------------------------------------------


@dataclass(slots=True)
class CollectOptions:
    run: RunOptions  # source, athlete, duration, speed, data dir (`run`'s options)
    athletes: int = 1  # simulated athletes side by side (seeds seed … seed + N − 1)


def prepare_collect(opts: CollectOptions) -> list[Prepared]:
    run = opts.run
    if opts.athletes < 1:
        raise UsageError("--athletes must be ≥ 1")
    if run.speed == 0:
        # Unbounded virtual time would outrun every network timeout.
        raise UsageError("collect needs a speed > 0 (--speed 0 would outrun the broker)")
    if opts.athletes > 1 and run.simulate is None:
        raise UsageError("--athletes N needs --simulate (one BLE gateway collects one athlete)")
    if opts.athletes == 1:
        return [prepare(run)]
    base = run.athlete or "simulated"
    return [
        prepare(replace(run, seed=run.seed + i, athlete=f"{base}-{i + 1:02d}"))
        for i in range(opts.athletes)
    ]


def collect_command(opts: CollectOptions) -> list[CollectResult]:
    """`imu-stream collect`; raises UsageError and the sources' one-line errors."""
    err = Console(stderr=True)
    mqtt = mqtt_config(opts.run.mqtt_url)
    prepared = prepare_collect(opts)
    sessions = [CollectSession(p.source, p.config, mqtt) for p in prepared]
    outcomes = run_loop(_collect_all(sessions, err), prepared[0].virtual_time, opts.run.speed)
    results = [r for r in outcomes if isinstance(r, CollectResult)]
    failed = [(s, r) for s, r in zip(sessions, outcomes, strict=True) if isinstance(r, Exception)]
    err.print(collect_table(results))
    for result in results:
        if result.unsent or result.dropped_raw:
            err.print(
                f"[yellow]warning:[/] {result.session_id}: {result.dropped_raw} raw blocks "
                f"dropped while the broker was away, {result.unsent} messages unsent",
                highlight=False,
            )
    data_dir = opts.run.data_dir
    err.print(
        f"journals in {data_dir}/ · `imu-stream export ID --out DIR` analyzes one",
        highlight=False,
        soft_wrap=True,
    )
    if failed:
        names = ", ".join(f"{s.session_id or s.config.athlete} ({r!r})" for s, r in failed)
        raise UsageError(f"{len(failed)} of {len(sessions)} sessions failed: {names}")
    return results


async def _collect_all(
    sessions: Sequence[CollectSession], err: Console
) -> list[CollectResult | BaseException]:
    """Every session to its end; one that fails does not stop the others (logged)."""
    loop = asyncio.get_running_loop()

    def stop_all(reason: str) -> None:
        for session in sessions:
            session.request_stop(reason)

    installed = _install_signals(loop, stop_all)
    progress = asyncio.create_task(_collect_progress(sessions, err))
    try:
        outcomes = await asyncio.gather(*(s.run() for s in sessions), return_exceptions=True)
        for session, outcome in zip(sessions, outcomes, strict=True):
            if isinstance(outcome, Exception):
                log.error("session %s failed", session.session_id, exc_info=outcome)
            elif isinstance(outcome, BaseException):
                raise outcome  # cancelled, KeyboardInterrupt: not a session's failure
        return list(outcomes)
    finally:
        progress.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await progress
        for sig in installed:
            loop.remove_signal_handler(sig)


async def _collect_progress(sessions: Sequence[CollectSession], err: Console) -> None:
    started = False
    while True:
        await asyncio.sleep(PROGRESS_INTERVAL_S)
        if not started:
            started = True
            names = ", ".join(s.session_id for s in sessions[:3] if s.session_id)
            more = f" … ({len(sessions)} sessions)" if len(sessions) > 3 else ""
            err.print(f"collecting {names}{more}; Ctrl-C stops", highlight=False)
        blocks = sum(s.counters.blocks for s in sessions)
        pending = sum(s.publisher.pending for s in sessions)
        connected = sum(s.publisher.stats.connected for s in sessions)
        t = max((s.source.session_time() for s in sessions), default=0.0)
        err.print(
            f"{t:7.1f} s · {blocks:,} raw blocks · {pending:,} queued · "
            f"{connected}/{len(sessions)} connected",
            highlight=False,
        )


def collect_table(results: Sequence[CollectResult]) -> Table:
    table = Table(title="collected", title_justify="left")
    for column in ("athlete", "session", "samples", "raw blocks", "published", "stopped"):
        table.add_column(column, justify="right" if column in ("samples", "raw blocks") else "left")
    for r in results:
        table.add_row(
            r.athlete,
            r.session_id,
            f"{r.counters.samples:,}",
            f"{r.counters.blocks:,}",
            f"{r.published:,}",
            r.stop_reason,
        )
    return table


# --- process -----------------------------------------------------------------------------------


@dataclass(slots=True)
class ProcessOptions:
    shard: str = "0/1"
    mqtt_url: str | None = None
    influx_url: str | None = None
    influx_db: str | None = None
    client_id: str | None = None
    data_dir: Path = Path("imu-sessions")  # for the InfluxDB spool
    stats: Path | None = None  # per-session counters as JSON, written at exit
    idle_timeout_s: float = 120.0


def influx_config(url: str | None, db: str | None, spool_dir: Path) -> InfluxConfig | None:
    if not (url or db or os.environ.get("IMU_STREAM_INFLUX_URL")):
        return None
    values: dict[str, Any] = {}
    if url:
        values["url"] = url
    if db:
        values["database"] = db
    try:
        config = InfluxConfig.from_mapping(values, InfluxConfig.from_env())
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if config.spool_dir is None:
        config = replace(config, spool_dir=spool_dir)
    return config


def process_command(opts: ProcessOptions) -> ProcessResult:
    """`imu-stream process`; runs until SIGTERM / Ctrl-C."""
    err = Console(stderr=True)
    try:
        shard = ShardSpec.parse(opts.shard)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    mqtt = mqtt_config(opts.mqtt_url)
    spool = opts.data_dir / f".influx-spool-shard-{shard.index}-of-{shard.count}"
    influx = influx_config(opts.influx_url, opts.influx_db, spool)
    config = ProcessConfig(
        shard=shard, client_id=opts.client_id, idle_timeout_s=opts.idle_timeout_s
    )
    _service_logging()
    processor = ShardProcessor(mqtt, config, influx)
    result = asyncio.run(_serve(processor, mqtt, err))
    err.print(process_table(result))
    if opts.stats is not None:
        opts.stats.write_text(json.dumps(result.to_json(), indent=2) + "\n")
        err.print(f"counters: {opts.stats}", highlight=False, soft_wrap=True)
    return result


async def _serve(processor: ShardProcessor, mqtt: MqttConfig, err: Console) -> ProcessResult:
    run = asyncio.create_task(processor.run())
    announce = asyncio.create_task(_announce(processor, mqtt, err))
    try:
        return await run
    finally:
        announce.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await announce


async def _announce(processor: ShardProcessor, mqtt: MqttConfig, err: Console) -> None:
    """One line once subscribed (scripts wait for it), then progress every few seconds."""
    where = f"mqtt{'s' if mqtt.tls else ''}://{mqtt.host}:{mqtt.port}/{mqtt.prefix}"
    shard = processor.config.shard
    while True:
        with contextlib.suppress(TimeoutError):
            await processor.wait_subscribed(PROGRESS_INTERVAL_S)
            break
        err.print(f"shard {shard}: waiting for the broker at {where}", highlight=False)
    err.print(
        f"shard {shard}: subscribed to {where} as {processor.client_id}; SIGTERM/Ctrl-C stops",
        highlight=False,
        soft_wrap=True,
    )
    while True:
        await asyncio.sleep(PROGRESS_INTERVAL_S * 2)
        strides = sum(w.stats.strides for w in processor.workers.values())
        strides += sum(s.strides for s in processor.done)
        err.print(
            f"shard {shard}: {len(processor.workers)} sessions open, {len(processor.done)} done, "
            f"{strides} strides, {processor.publisher.pending} messages queued",
            highlight=False,
        )


def process_table(result: ProcessResult) -> Table:
    table = Table(title=f"shard {result.shard}: {result.stop_reason}", title_justify="left")
    for column in ("athlete", "session", "strides", "raw blocks", "lost", "finished"):
        table.add_column(
            column, justify="right" if column in ("strides", "raw blocks", "lost") else "left"
        )
    for s in result.sessions:
        table.add_row(
            s.athlete,
            s.session,
            str(s.strides),
            f"{s.raw_blocks:,}",
            str(s.raw_blocks_lost),
            s.finished + (" (joined late)" if s.joined_late else ""),
        )
    return table


def _service_logging() -> None:
    """The processor is a service: its own INFO lines (sessions start/end) on stderr."""
    logger = logging.getLogger("imu_stream")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


def _install_signals(loop: asyncio.AbstractEventLoop, stop: Any) -> list[signal.Signals]:
    if threading.current_thread() is not threading.main_thread():
        return []
    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(
                sig, stop, "interrupted" if sig == signal.SIGINT else "terminated"
            )
            installed.append(sig)
    return installed
