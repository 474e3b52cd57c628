"""A simulated demo session (`run --simulate run --influx …`) written to the real InfluxDB: the
strides there equal the exported `strides.csv` in count and values, and every measurement has
exactly the tags and fields of DESIGN.md §5. Queried with InfluxQL over HTTP."""

from __future__ import annotations

import csv
import math
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from imu_stream.cli import app
from imu_stream.sinks.journal import JournalReader, list_sessions
from tests.servers import InfluxServer

pytestmark = pytest.mark.servers

ATHLETE = "demo runner"
SENSOR_FIELDS = {
    "battery_pct": "float",
    "packet_loss_pct": "float",
    "rate_hz": "float",
    "clock_offset_ms": "float",
    "connected": "integer",
}


def influxql(server: InfluxServer, db: str, q: str) -> list[dict[str, Any]]:
    """The series of one InfluxQL statement (epoch ms), as {"columns", "values", "tags"}."""
    response = httpx.get(
        f"{server.url}/query", params={"db": db, "q": q, "epoch": "ms"}, timeout=30.0
    )
    response.raise_for_status()
    (result,) = response.json()["results"]
    assert "error" not in result, result
    series: list[dict[str, Any]] = result.get("series", [])
    return series


def rows(server: InfluxServer, db: str, q: str) -> list[dict[str, Any]]:
    out = []
    for s in influxql(server, db, q):
        out += [dict(zip(s["columns"], v, strict=True)) for v in s["values"]]
    return out


def keys(server: InfluxServer, db: str, what: str, measurement: str) -> dict[str, str]:
    """SHOW TAG KEYS → {key: ""}; SHOW FIELD KEYS → {key: type}."""
    (s,) = influxql(server, db, f'SHOW {what} KEYS FROM "{measurement}"')
    return {v[0]: (v[1] if len(v) > 1 else "") for v in s["values"]}


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        return list(reader.fieldnames or []), list(reader)


def number(text: str) -> float:
    return float(text) if text != "" else math.nan


def test_demo_session_in_influxdb_equals_the_export(
    tmp_path: Path, influxd: InfluxServer, influx_db: str
) -> None:
    data_dir, out = tmp_path / "sessions", tmp_path / "export"
    runner = CliRunner()
    run = runner.invoke(
        app,
        [
            "run",
            "--simulate",
            "run",
            "--duration",
            "20",
            "--speed",
            "8",
            "--no-view",
            "--athlete",
            ATHLETE,
            "--data-dir",
            str(data_dir),
            "--influx",
            influxd.url,
            "--influx-db",
            influx_db,
        ],
    )
    assert run.exit_code == 0, run.output
    (session,) = list_sessions(data_dir)
    with JournalReader(session.path) as reader:
        start_ms = reader.meta.start_unix_s * 1000.0
    exported = runner.invoke(
        app, ["export", session.session_id, "--out", str(out), "--data-dir", str(data_dir)]
    )
    assert exported.exit_code == 0, exported.output
    where = f"WHERE \"session\" = '{session.session_id}'"

    def epoch_ms(time_s: float) -> int:
        return round(start_ms + 1000.0 * time_s)

    # --- stride: one point per row of strides.csv, every value equal -------------------------
    header, csv_strides = read_csv(out / "strides.csv")
    numeric = [c for c in header if c != "side"]
    assert len(csv_strides) > 20
    points = rows(influxd, influx_db, f"SELECT * FROM stride {where}")
    assert len(points) == len(csv_strides)
    by_key = {(p["time"], p["side"]): p for p in points}
    assert len(by_key) == len(points)
    for row in csv_strides:
        point = by_key[(epoch_ms(float(row["start_s"])), row["side"])]
        assert (point["athlete"], point["session"], point["activity"]) == (
            ATHLETE,
            session.session_id,
            "run",
        )
        for column in numeric:
            want, got = number(row[column]), point.get(column)
            if math.isnan(want):
                assert got is None, column  # NaN is left out, not written as a value
            else:
                assert got is not None and abs(got - want) <= 1e-6, (column, got, want)
    assert set(keys(influxd, influx_db, "TAG", "stride")) == {
        "athlete",
        "session",
        "side",
        "activity",
    }
    written = {c for c in numeric if any(r[c] != "" for r in csv_strides)}
    stride_fields = keys(influxd, influx_db, "FIELD", "stride")
    assert set(stride_fields) == written and "pelvic_drop_deg" in written
    assert all(t == ("integer" if c == "quality" else "float") for c, t in stride_fields.items())

    # --- angles: angles.csv columns, ≤ 50 Hz, values within the 1e-4° fixed point -----------
    header, csv_angles = read_csv(out / "angles.csv")
    by_ms = {epoch_ms(float(r["time_s"])): r for r in csv_angles}
    angles = rows(influxd, influx_db, f"SELECT * FROM angles {where}")
    assert len(angles) > 100
    assert set(keys(influxd, influx_db, "TAG", "angles")) == {"athlete", "session"}
    angle_fields = keys(influxd, influx_db, "FIELD", "angles")
    assert "pelvic_obliquity_deg" in angle_fields
    assert set(angle_fields) <= set(header) - {"time_s"}
    assert set(angle_fields.values()) == {"float"}
    matched: list[float] = []  # exact session times of the points, from angles.csv
    for point in angles:
        row = by_ms.get(point["time"])
        if row is None:
            continue
        matched.append(float(row["time_s"]))
        for column in angle_fields:
            want, got = number(row[column]), point.get(column)
            assert (got is None) == math.isnan(want) and (got is None or abs(got - want) <= 1e-4), (
                column,
                got,
                want,
            )
    assert len(matched) >= 0.9 * len(angles)
    # ≤ 50 Hz: one point per 20 ms bin of session time, also where a bin spans two live chunks.
    per_bin = Counter(round(t * 50.0) for t in matched)
    assert max(per_bin.values()) == 1

    # --- sensor: status of each worn sensor about once a second -------------------------------
    sensor = rows(influxd, influx_db, f"SELECT * FROM sensor {where}")
    assert {p["location"] for p in sensor} == {"sacrum", "left_thigh", "right_thigh"}
    assert len(sensor) >= 3 * 15
    assert set(keys(influxd, influx_db, "TAG", "sensor")) == {"athlete", "session", "location"}
    assert keys(influxd, influx_db, "FIELD", "sensor") == SENSOR_FIELDS
    assert {p["connected"] for p in sensor} <= {0, 1}

    # --- session_event: start, calibrated, stop ------------------------------------------------
    events = rows(influxd, influx_db, f"SELECT * FROM session_event {where}")
    names = [p["event"] for p in events]
    assert names[0] == "start" and names[-1] == "stop" and "calibrated" in names
    assert set(keys(influxd, influx_db, "TAG", "session_event")) == {"athlete", "session"}
    assert keys(influxd, influx_db, "FIELD", "session_event") == {
        "event": "string",
        "detail": "string",
    }
    print(
        f"\nInfluxDB: {len(points)} strides equal to strides.csv, {len(angles)} angle points "
        f"(one per 20 ms), "
        f"{len(sensor)} sensor points, events {names}"
    )
