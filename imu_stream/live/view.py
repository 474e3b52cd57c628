"""The live terminal view (rich): sensors, calibration, per-stride pelvic drop and friends.

`render_snapshot()` is a pure function of a `LiveSnapshot`. `LiveView` is a sink: the pipeline
updates its `LiveState`, and rich's own refresh thread renders a snapshot a few times a second.
Frames are dropped, never queued: a slow terminal delays only the next frame.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from imu_stream.live.records import LiveUpdate
from imu_stream.live.sinks import BaseSink, Counters
from imu_stream.live.state import (
    WINDOW_STRIDES,
    LiveSnapshot,
    LiveState,
    good_recent,
    mean_of,
    side_figures,
    symmetry_index,
)
from imu_stream.live.thresholds import Thresholds
from imu_stream.records import SIDES
from imu_stream.sinks.journal import SessionEvent, SessionMeta, StatusRecord

RECENT_SHOWN = 12  # strides in the "as it happens" line


def _num(value: float, digits: int = 1, unit: str = "") -> str:
    return "–" if not math.isfinite(value) else f"{value:.{digits}f}{unit}"


def _styled(value: float, style: str, digits: int = 1, unit: str = "") -> Text:
    return Text(_num(value, digits, unit), style=style if math.isfinite(value) else "dim")


def _sensor_table(snapshot: LiveSnapshot) -> Table:
    table = Table(title="sensors", title_justify="left", expand=False, box=None, pad_edge=False)
    for name, justify in (
        ("location", "left"),
        ("device", "left"),
        ("link", "left"),
        ("battery", "right"),
        ("rate", "right"),
        ("loss", "right"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for s in snapshot.sensors:
        link = Text("connected", "green") if s.connected else Text("not connected", "red")
        loss_style = (
            "green" if s.packet_loss_pct < 1 else "yellow" if s.packet_loss_pct < 5 else "red"
        )
        table.add_row(
            s.location,
            s.device or "–",
            link,
            _num(s.battery_pct, 0, " %"),
            _num(s.rate_hz, 0, " Hz") if s.rate_hz else "–",
            Text(_num(s.packet_loss_pct, 1, " %"), loss_style),
        )
    return table


def _stride_table(snapshot: LiveSnapshot, thresholds: Thresholds) -> Table:
    table = Table(
        title=f"per stride (last {WINDOW_STRIDES} good strides per side)",
        title_justify="left",
        box=None,
        pad_edge=False,
    )
    table.add_column("measure")
    table.add_column("left last", justify="right")
    table.add_column("left mean", justify="right")
    table.add_column("right last", justify="right")
    table.add_column("right mean", justify="right")
    table.add_column("SI", justify="right")
    for label, metric, unit in (
        ("pelvic drop (CPD)", "pelvic_drop_deg", "°"),
        ("thigh adduction", "thigh_adduction_peak_deg", "°"),
    ):
        figs = side_figures(snapshot, metric)
        cells: list[Text] = []
        for side in SIDES:
            f = figs[side]
            cells.append(_styled(f.last, thresholds.style(metric, f.last), 1, unit))
            cells.append(_styled(f.mean, thresholds.style(metric, f.mean), 1, unit))
        si = symmetry_index(figs["left"].mean, figs["right"].mean)
        cells.append(_styled(si, thresholds.style("symmetry_index_pct", si), 0, " %"))
        table.add_row(label, *cells)
    stance = side_figures(snapshot, "stance_time_s")
    si = symmetry_index(stance["left"].mean, stance["right"].mean)
    table.add_row(
        "stance time",
        _num(stance["left"].last, 3, " s"),
        _num(stance["left"].mean, 3, " s"),
        _num(stance["right"].last, 3, " s"),
        _num(stance["right"].mean, 3, " s"),
        _styled(si, thresholds.style("symmetry_index_pct", si), 0, " %"),
    )
    recent = [s for side in SIDES for s in good_recent(snapshot.strides, side)]
    cadence = mean_of(recent, "cadence_spm")
    table.add_row("cadence", "", Text(_num(cadence, 0, " spm"), "bold"), "", "", "")
    return table


def _recent_line(snapshot: LiveSnapshot, thresholds: Thresholds) -> Text:
    line = Text("CPD as it happens: ", style="bold")
    shown = list(snapshot.strides)[-RECENT_SHOWN:]
    if not shown:
        return line.append("waiting for strides…", style="dim")
    for s in shown:
        tag = "L" if s.side == "left" else "R"
        style = thresholds.style("pelvic_drop_deg", s.pelvic_drop_deg) if s.quality == 0 else "dim"
        line.append(f"{tag} {_num(s.pelvic_drop_deg)}° ", style=style)
    return line


def render_snapshot(snapshot: LiveSnapshot, thresholds: Thresholds | None = None) -> RenderableType:
    thresholds = thresholds or Thresholds()
    header = Text()
    header.append("imu-stream live", style="bold cyan")
    header.append(
        f"  {snapshot.athlete} · {snapshot.activity} · {snapshot.source} · "
        f"session {snapshot.session_id or '…'} · "
        f"{_clock(snapshot.data_time_s)} of data · {snapshot.n_strides} strides"
    )
    cal = snapshot.calibration
    calibration = Text("calibration: ", style="bold")
    calibration.append(cal.message, style="green" if cal.calibrated else "bold yellow")
    parts: list[RenderableType] = [
        header,
        _sensor_table(snapshot),
        calibration,
        _stride_table(snapshot, thresholds),
        _recent_line(snapshot, thresholds),
    ]
    for message in snapshot.messages:
        parts.append(Text(message, style="dim"))
    if snapshot.counters:
        footer = " · ".join(f"{k} {v}" for k, v in snapshot.counters.items())
        parts.append(Text(footer, style="dim"))
    parts.append(Text("Ctrl-C stops the session (everything recorded so far is kept)", "dim"))
    return Group(*parts)


def _clock(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "0:00"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}:{secs:02d}"


class _ToMessages(logging.Handler):
    """While the view is up, log lines go into it instead of tearing the display."""

    def __init__(self, state: LiveState) -> None:
        super().__init__(logging.WARNING)
        self.state = state

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage().strip().splitlines()
        self.state.add_message(f"{record.levelname.lower()}: {text[0] if text else ''}"[:160])


class LiveView(BaseSink):
    """The rich live display as a pipeline sink (drops frames, never blocks the loop)."""

    name = "view"

    def __init__(
        self,
        console: Console | None = None,
        thresholds: Thresholds | None = None,
        *,
        locations: tuple[str, ...] = (),
        refresh_per_second: float = 4.0,
        counters: Callable[[], dict[str, str]] | None = None,
    ) -> None:
        self.console = console or Console()
        self.thresholds = thresholds or Thresholds()
        self.state = LiveState(locations, counters)
        self.refresh_per_second = refresh_per_second
        self.frames = 0
        self.render_s_max = 0.0
        self._live: Live | None = None
        self._started = 0.0
        self._log_handler = _ToMessages(self.state)

    def render(self) -> RenderableType:
        """One frame (called from rich's refresh thread)."""
        started = time.perf_counter()
        frame = render_snapshot(self.state.snapshot(), self.thresholds)
        self.frames += 1
        self.render_s_max = max(self.render_s_max, time.perf_counter() - started)
        return frame

    async def start(self, meta: SessionMeta) -> None:
        self.state.set_meta(meta)
        self._live = Live(
            get_renderable=self.render,
            console=self.console,
            refresh_per_second=self.refresh_per_second,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._started = time.monotonic()
        await asyncio.to_thread(self._live.start)  # hides the cursor: a write, maybe slow
        logging.getLogger().addHandler(self._log_handler)
        logging.captureWarnings(True)  # numerical warnings too, instead of tearing the display

    def on_update(self, update: LiveUpdate) -> None:
        self.state.apply_update(update)

    def on_status(self, status: StatusRecord) -> None:
        self.state.apply_status(status)

    def on_session_event(self, event: SessionEvent) -> None:
        self.state.apply_session_event(event)

    async def close(self) -> None:
        logging.captureWarnings(False)
        logging.getLogger().removeHandler(self._log_handler)
        if self._live is not None:
            live, self._live = self._live, None
            await asyncio.to_thread(live.stop)  # the last frame may wait on a slow terminal

    def counters(self) -> Counters:
        elapsed = time.monotonic() - self._started if self._started else 0.0
        ticks = int(elapsed * self.refresh_per_second)
        return {
            "frames": self.frames,
            "frames_dropped": max(ticks - self.frames, 0),
            "render_ms_max": round(1e3 * self.render_s_max, 1),
        }
