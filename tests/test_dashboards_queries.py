"""Every panel and variable query of both dashboards, expanded as Grafana expands it, runs
against a real InfluxDB (the suite's `influxd`, 1.6.7) without error and returns rows; the
numbers the Run review shows agree with the strides that were written.

Data: simulated sessions written with the project's own line-protocol encoder
(imu_stream.sinks.influx_schema), all four measurements of DESIGN.md §5, timestamps ending just
before "now" so the dashboards' default time ranges cover them. Tag values contain regex
metacharacters (`+ . /`) so Grafana's regex escaping is exercised for real.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from dashboards.expand import (
    PanelTarget,
    Resolution,
    TimeRange,
    dashboard_range,
    expand_target,
    panel_targets,
    resolve_variables,
)
from imu_stream.records import STRIDE_COLUMNS, Stride
from imu_stream.sim.config import SimulationConfig
from imu_stream.sim.session import simulate
from imu_stream.sinks.influx_schema import (
    SeriesTags,
    angle_lines,
    sensor_lines,
    session_event_lines,
    stride_lines,
)
from imu_stream.sinks.journal.meta import SessionEvent, StatusRecord
from tests.servers import InfluxServer

pytestmark = pytest.mark.servers

DASHBOARDS = Path(__file__).resolve().parent.parent / "dashboards"
JSON_DIR = DASHBOARDS / "json"
DATASOURCE_YAML = DASHBOARDS / "provisioning" / "datasources" / "influxdb.yaml"
ATHLETE = "ath+1.x"
OTHER_ATHLETE = "ath-2"
NEWEST = "20250302T101500Z/run.1"  # newest session of ATHLETE: the default selection
OLDER = "20250301T090000Z/run.0"
OTHER = "20250302T100000Z-walk"


@dataclass(frozen=True)
class Written:
    athlete: str
    session: str
    strides: list[Stride]


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((JSON_DIR / name).read_text(encoding="utf-8"))
    return data


def _write_session(
    server: InfluxServer,
    db: str,
    config: SimulationConfig,
    athlete: str,
    session: str,
    ends_before_now_s: float,
) -> Written:
    sim = simulate(config)
    end_s = float(sim.truth_angles.time_s[-1])
    tags = SeriesTags(
        athlete=athlete,
        session=session,
        activity=config.activity,
        start_unix_s=time.time() - ends_before_now_s - end_s,
    )
    status = [
        StatusRecord(
            time_s=float(t),
            location=location,
            fields={
                "battery_pct": 98.0 - 0.02 * t,
                "packet_loss_pct": 0.4 if t % 7 else 2.5,
                "rate_hz": recording.rate_hz,
                "connected": 1,
                "clock_offset_ms": 1.5,
            },
        )
        for location, recording in sim.recordings.items()
        for t in range(int(end_s) + 1)
    ]
    events = [
        SessionEvent(0.0, "start", f"{len(sim.recordings)} sensors"),
        SessionEvent(float(config.standing_s or 0.0), "calibrated", "standing"),
        SessionEvent(end_s, "stop", "end of recording"),
    ]
    payload = b"".join(
        (
            stride_lines(sim.truth_strides, tags),
            angle_lines(sim.truth_angles, tags),
            sensor_lines(status, tags),
            session_event_lines(events, tags),
        )
    )
    server.write(db, payload.decode())
    return Written(athlete, session, list(sim.truth_strides))


@pytest.fixture(scope="module")
def influx(influxd: InfluxServer) -> Iterator[tuple[InfluxServer, str, dict[str, Written]]]:
    influxd.ensure_running()
    db = f"dashboards_{time.monotonic_ns() % 10**9}"
    influxd.create_database(db)
    run = SimulationConfig(activity="run", duration_s=40.0, seed=3, standing_s=2.0)
    sessions = {
        OLDER: _write_session(
            influxd,
            db,
            SimulationConfig(activity="run", duration_s=15.0, seed=7, standing_s=2.0),
            ATHLETE,
            OLDER,
            ends_before_now_s=150.0,
        ),
        NEWEST: _write_session(
            influxd,
            db,
            replace(run, cpd_left_deg=4.0, cpd_right_deg=7.0),
            ATHLETE,
            NEWEST,
            ends_before_now_s=3.0,
        ),
        OTHER: _write_session(
            influxd,
            db,
            SimulationConfig(activity="walk", duration_s=25.0, seed=5, standing_s=2.0),
            OTHER_ATHLETE,
            OTHER,
            ends_before_now_s=60.0,
        ),
    }
    yield influxd, db, sessions
    influxd.query(f'DROP DATABASE "{db}"', method="POST")


def runner(server: InfluxServer, db: str) -> Any:
    def run(query: str) -> Mapping[str, Any]:
        return server.query(query, db=db, method="POST")

    return run


def problems_of(response: Mapping[str, Any]) -> str | None:
    """None when the answer has no error and at least one row with a non-null value."""
    results = response.get("results") or []
    if "error" in response:
        return str(response["error"])
    if not results:
        return "no result"
    for result in results:
        if "error" in result:
            return str(result["error"])
    rows = [
        row[1:]
        for result in results
        for series in result.get("series") or []
        for row in series.get("values") or []
    ]
    if not rows:
        return "no rows"
    if all(v is None for row in rows for v in row):
        return "rows hold only nulls"
    return None


def run_dashboard(
    name: str,
    influx: tuple[InfluxServer, str, dict[str, Written]],
    chosen: Mapping[str, Sequence[str]],
) -> tuple[Resolution, TimeRange, dict[tuple[str, str], Mapping[str, Any]], list[str]]:
    server, db, _ = influx
    dashboard = load(name)
    time_range = dashboard_range(dashboard, int(time.time() * 1000))
    run = runner(server, db)
    resolution = resolve_variables(dashboard, time_range, run, chosen)
    failures = [
        f"variable {v.name}: no values from {v.query}"
        for v in resolution.variables
        if not v.options
    ]
    answers: dict[tuple[str, str], Mapping[str, Any]] = {}
    [source] = yaml.safe_load(DATASOURCE_YAML.read_text())["datasources"]
    targets: list[PanelTarget] = panel_targets(dashboard, source["jsonData"].get("timeInterval"))
    assert targets
    for target in targets:
        query = expand_target(target, resolution.selections, time_range)
        answer = run(query)
        answers[(target.panel_title, target.ref_id)] = answer
        problem = problems_of(answer)
        if problem is not None:
            failures.append(f"{target.panel_title} [{target.ref_id}]: {problem}\n    {query}")
    return resolution, time_range, answers, failures


@pytest.mark.parametrize("name", ["live-session.json", "run-review.json"])
def test_every_query_runs_and_returns_rows(
    name: str, influx: tuple[InfluxServer, str, dict[str, Written]]
) -> None:
    resolution, _, answers, failures = run_dashboard(name, influx, {"athlete": [ATHLETE]})
    assert failures == [], "\n".join(failures)
    by_name = {v.name: v for v in resolution.variables}
    assert {ATHLETE, OTHER_ATHLETE} <= set(by_name["athlete"].options)
    # sessions of the chosen athlete only, newest first, and the newest selected by default
    assert by_name["session"].options == [NEWEST, OLDER]
    assert by_name["session"].selection.values == [NEWEST]
    assert len(answers) == len(panel_targets(load(name)))


@pytest.mark.parametrize("name", ["live-session.json", "run-review.json"])
def test_multi_value_selections_run_as_regex_alternations(
    name: str, influx: tuple[InfluxServer, str, dict[str, Written]]
) -> None:
    chosen = {"athlete": [ATHLETE, OTHER_ATHLETE], "session": [NEWEST, OTHER]}
    _, _, answers, failures = run_dashboard(name, influx, chosen)
    assert failures == [], "\n".join(failures)
    if name == "run-review.json":
        sessions = influx[2]
        counts = side_values(answers[("Strides", "A")])
        for side in ("left", "right"):
            expected = sum(
                1 for s in (NEWEST, OTHER) for x in sessions[s].strides if x.side == side
            )
            assert counts[side] == [expected]


def side_values(answer: Mapping[str, Any], column: int = 1) -> dict[str, list[Any]]:
    """Values of one column per `side` tag of a grouped answer."""
    out: dict[str, list[Any]] = {}
    for series in answer["results"][0].get("series") or []:
        side = (series.get("tags") or {}).get("side", "")
        out.setdefault(side, []).extend(row[column] for row in series["values"])
    return out


def test_run_review_numbers_match_the_written_strides(
    influx: tuple[InfluxServer, str, dict[str, Written]],
) -> None:
    resolution, _, answers, failures = run_dashboard(
        "run-review.json", influx, {"athlete": [ATHLETE]}
    )
    assert failures == [], "\n".join(failures)
    strides = influx[2][NEWEST].strides
    by_side = {
        side: sorted((s for s in strides if s.side == side), key=lambda s: s.start_s)
        for side in ("left", "right")
    }
    cpd = {side: np.array([s.pelvic_drop_deg for s in rows]) for side, rows in by_side.items()}

    counts = side_values(answers[("Strides", "A")])
    assert {k: v[0] for k, v in counts.items()} == {k: len(v) for k, v in by_side.items()}
    means = side_values(answers[("Mean pelvic drop (CPD)", "A")])
    for side in ("left", "right"):
        assert means[side][0] == pytest.approx(cpd[side].mean(), rel=1e-9)
    assert means["right"][0] > means["left"][0]  # simulated with CPD 7° right vs 4° left

    si = answers[("Left/right symmetry index", "A")]["results"][0]["series"][0]["values"][0][1]
    r, left = cpd["right"].mean(), cpd["left"].mean()
    assert si == pytest.approx(100 * (r - left) / (0.5 * (r + left)), rel=1e-9)

    n = min(math.ceil(len(v) / 10) for v in by_side.values())
    assert resolution.selections["stride_n10"].values == [str(n)]
    title = "Pelvic drop: first vs last 10 % of strides"
    first, last = side_values(answers[(title, "A")]), side_values(answers[(title, "B")])
    for side in ("left", "right"):
        assert first[side][0] == pytest.approx(cpd[side][:n].mean(), rel=1e-9)
        assert last[side][0] == pytest.approx(cpd[side][-n:].mean(), rel=1e-9)

    table_title = "Strides (panel menu → Inspect → Data → Download CSV)"
    [series] = answers[(table_title, "A")]["results"][0]["series"]
    assert set(STRIDE_COLUMNS) | {"activity"} <= set(series["columns"])
    column = series["columns"].index("pelvic_drop_deg")
    ordered = sorted(strides, key=lambda s: s.start_s)
    assert [row[column] for row in series["values"]] == pytest.approx(
        [s.pelvic_drop_deg for s in ordered], rel=1e-12
    )

    picker = answers[("Sessions of this athlete (click a session to review it)", "A")]
    listed = {s["tags"]["session"] for s in picker["results"][0]["series"]}
    assert listed == {NEWEST, OLDER}
