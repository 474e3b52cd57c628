"""The live terminal view: what it shows, its colour bands, and that a slow terminal never
holds up ingestion."""

from __future__ import annotations

import asyncio
import io
import math
import re
import time
from pathlib import Path

import pytest
from rich.console import Console

from imu_stream.core.online import CalibrationState
from imu_stream.live.records import LiveUpdate
from imu_stream.live.sinks import BaseSink
from imu_stream.live.sources import ReplaySource
from imu_stream.live.state import LiveState
from imu_stream.live.thresholds import Band, Thresholds
from imu_stream.live.view import LiveView, render_snapshot
from imu_stream.pipeline import Pipeline, PipelineConfig, RunResult
from imu_stream.records import Stride
from imu_stream.sim.config import SimulationConfig
from imu_stream.sim.session import simulate
from imu_stream.sinks.journal import SessionMeta, StatusRecord
from imu_stream.sinks.journal.meta import SensorMeta


def stride(side: str, cpd: float, start: float, thigh: float = 9.0, stance: float = 0.25) -> Stride:
    return Stride(
        start_s=start,
        end_s=start + 0.7,
        side=side,
        stride_time_s=0.7,
        stance_time_s=stance,
        swing_time_s=0.45,
        cadence_spm=120 / 0.7,
        pelvic_drop_deg=cpd,
        pelvic_obliquity_rom_deg=10.0,
        hip_adduction_peak_deg=11.0,
        thigh_adduction_peak_deg=thigh,
        knee_abduction_peak_deg=math.nan,
    )


def test_view_shows_sensors_calibration_and_strides_with_bands() -> None:
    state = LiveState(("sacrum", "left_thigh", "right_thigh"))
    meta = SessionMeta(athlete="anna", activity="run", source="ble", session_id="S1")
    meta.sensors = [SensorMeta("sacrum", "movesense"), SensorMeta("left_thigh", "metawear-bmi160")]
    state.set_meta(meta)
    state.apply_status(
        StatusRecord(
            3.0,
            "sacrum",
            {"connected": True, "battery_pct": 64.0, "rate_hz": 208.0, "packet_loss_pct": 0.4},
        )
    )
    state.apply_status(StatusRecord(3.0, "left_thigh", {"connected": False}))
    strides = [stride("left", 4.0 + 0.1 * i, 2 * i) for i in range(25)]
    strides += [stride("right", 7.6, 2 * i + 1, thigh=18.0, stance=0.3) for i in range(25)]
    update = LiveUpdate(
        strides=strides,
        calibration=CalibrationState(False, "stand still 3 s, then start moving"),
        data_time_s=61.0,
    )
    state.apply_update(update)
    console = Console(record=True, width=120, force_terminal=True, color_system="truecolor")
    console.print(render_snapshot(state.snapshot()))
    ansi = console.export_text(styles=True, clear=False)
    text = console.export_text()
    assert "anna" in text and "S1" in text and "1:01 of data" in text and "50 strides" in text
    assert "connected" in text and "not connected" in text and "64 %" in text
    assert "208 Hz" in text and "0.4 %" in text and "metawear-bmi160" in text
    assert "stand still 3 s" in text
    # last-20 means: left 4.5..6.4 → mean 5.45; right 7.6; the last left stride 6.4
    assert "6.4°" in text and "5.5°" in text and "7.6°" in text
    assert "171 spm" in text  # cadence 120/0.7
    # stance symmetry: SI = 100·(0.30 − 0.25)/0.275 = 18 %
    assert "18 %" in text
    # colour bands (default thresholds): right CPD 7.6° red, left mean 5.5° amber, right thigh
    # adduction 18° red
    red, amber, green = r"\x1b\[1;31m *", r"\x1b\[33m *", r"\x1b\[32m *"
    assert re.search(red + "7.6°", ansi) and re.search(amber + "5.5°", ansi)
    assert re.search(red + "18.0°", ansi) and re.search(green + "9.0°", ansi)
    assert re.search(red + "33 %", ansi)  # CPD symmetry: 100·(7.6 − 5.45)/6.5


def test_thresholds_configurable(tmp_path: Path) -> None:
    default = Thresholds()
    assert default.style("pelvic_drop_deg", 4.9) == "green"
    assert default.style("pelvic_drop_deg", 5.0) == "yellow"
    assert default.style("pelvic_drop_deg", 7.0) == "bold red"
    assert default.style("symmetry_index_pct", -25.0) == "bold red"  # magnitude counts
    assert default.style("pelvic_drop_deg", math.nan) == "dim"
    path = tmp_path / "bands.toml"
    path.write_text("pelvic_drop_deg = [3.0, 4.0]\n")
    custom = Thresholds.from_toml(path)
    assert custom.pelvic_drop_deg == Band(3.0, 4.0)
    assert custom.style("pelvic_drop_deg", 4.5) == "bold red"
    assert custom.thigh_adduction_peak_deg == default.thigh_adduction_peak_deg
    path.write_text("hip_drop = [3.0, 4.0]\n")
    with pytest.raises(ValueError, match="unknown threshold"):
        Thresholds.from_toml(path)
    with pytest.raises(ValueError):
        Band(5.0, 3.0)


class SlowTerminal(io.StringIO):
    """A terminal that takes `delay_s` for every write (a congested SSH link, say)."""

    def __init__(self, delay_s: float) -> None:
        super().__init__()
        self.delay_s = delay_s
        self.writes = 0

    def write(self, s: str) -> int:
        time.sleep(self.delay_s)
        self.writes += 1
        return super().write(s)

    def isatty(self) -> bool:
        return True


class BlockingSink(BaseSink):
    """What the view must not be: a sink that blocks the event loop (once, at one status)."""

    name = "blocking"

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s

    def on_status(self, status: StatusRecord) -> None:
        if self.delay_s:
            time.sleep(self.delay_s)
            self.delay_s = 0.0


def _replay(tmp_path: Path, sinks: list[BaseSink]) -> RunResult:
    sim = simulate(SimulationConfig(activity="walk", duration_s=8.0, rate_hz=200.0, seed=1))
    source = ReplaySource(sim.recordings, sim.info, speed=5.0)
    config = PipelineConfig(data_dir=tmp_path, handle_signals=False)
    return asyncio.run(Pipeline(source, config, sinks).run())


def test_slow_view_does_not_stall_ingestion(tmp_path: Path) -> None:
    terminal = SlowTerminal(delay_s=0.5)
    console = Console(file=terminal, force_terminal=True, width=100)
    view = LiveView(console, refresh_per_second=10)
    result = _replay(tmp_path / "view", [view])
    counters = result.counters
    assert terminal.writes >= 3  # the view really drew, slowly
    assert counters["view"]["frames_dropped"] > 0
    # ingestion kept its pace: no gap between blocks anywhere near one slow write
    assert counters["ingest"]["max_gap_s"] < 0.25
    assert counters["ingest"]["samples"] == counters["journal"]["samples_committed"]
    assert result.strides  # and the session was processed

    # The measure does catch a stall: a sink that blocks the loop shows up in the gap.
    blocked = _replay(tmp_path / "blocked", [BlockingSink(0.5)])
    assert blocked.counters["ingest"]["max_gap_s"] >= 0.5
