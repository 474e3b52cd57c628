"""The Grafana dashboards: committed JSON up to date, valid for the SDK's types, well formed.

No server here: the queries themselves run against a real InfluxDB in
test_dashboards_queries.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models.dashboard import Dashboard

from dashboards import generate, influxql
from dashboards.influxql import DATASOURCE_UID, InfluxQLQuery
from imu_stream.records import ANGLE_COLUMNS, KNEE_ANGLE_COLUMNS, STRIDE_COLUMNS
from imu_stream.sinks.influx_schema import SENSOR_FIELDS

REPO = Path(__file__).resolve().parent.parent
JSON_DIR = REPO / "dashboards" / "json"
PROVISIONING = REPO / "dashboards" / "provisioning"

# DESIGN.md §5: measurement → its tags and fields.
SCHEMA: dict[str, tuple[set[str], set[str]]] = {
    "stride": (
        {"athlete", "session", "side", "activity"},
        {c for c in STRIDE_COLUMNS if c != "side"},
    ),
    "angles": ({"athlete", "session"}, set(ANGLE_COLUMNS[1:]) | set(KNEE_ANGLE_COLUMNS)),
    "sensor": ({"athlete", "session", "location"}, set(SENSOR_FIELDS)),
    "session_event": ({"athlete", "session"}, {"event", "detail"}),
}


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((JSON_DIR / name).read_text(encoding="utf-8"))
    return data


def all_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for panel in dashboard["panels"]:
        out.append(panel)
        out.extend(panel.get("panels") or [])
    return out


def content_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in all_panels(dashboard) if p["type"] != "row"]


def contained(small: Any, big: Any, path: str = "") -> list[str]:
    """Where ``small`` is not reproduced inside ``big`` (extra keys in big are allowed)."""
    if isinstance(small, dict):
        if not isinstance(big, dict):
            return [f"{path}: object became {type(big).__name__}"]
        problems: list[str] = []
        for key, value in small.items():
            if key not in big:
                problems.append(f"{path}/{key}: dropped by the SDK types")
            else:
                problems.extend(contained(value, big[key], f"{path}/{key}"))
        return problems
    if isinstance(small, list):
        if not isinstance(big, list) or len(small) != len(big):
            return [f"{path}: list changed"]
        return [
            p
            for i, (a, b) in enumerate(zip(small, big, strict=True))
            for p in contained(a, b, f"{path}[{i}]")
        ]
    return [] if small == big else [f"{path}: {small!r} became {big!r}"]


DASHBOARD_FILES = sorted(generate.DASHBOARDS)


def test_committed_json_is_what_the_generator_writes() -> None:
    stale = generate.stale_files()
    assert stale == [], f"regenerate with `python -m dashboards.generate`: {stale} out of date"


def test_generator_check_mode_detects_a_hand_edit(tmp_path: Path) -> None:
    assert generate.main(["--out", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == DASHBOARD_FILES
    assert generate.main(["--check", "--out", str(tmp_path)]) == 0
    target = tmp_path / DASHBOARD_FILES[0]
    target.write_text(target.read_text().replace('"1s"', '"5s"', 1))
    assert generate.main(["--check", "--out", str(tmp_path)]) == 1


@pytest.mark.parametrize("name", DASHBOARD_FILES)
def test_json_decodes_into_the_sdk_types_without_loss(name: str) -> None:
    """grafana-foundation-sdk ships no JSON schema; its typed models are the schema. Decoding
    drops every key the types do not know, so nothing may be lost on the way through."""
    register_default_plugins()
    influxql.register()
    original = load(name)
    decoded = Dashboard.from_json(original)
    again = json.loads(JSONEncoder().encode(decoded))
    assert contained(original, again) == []
    targets = [t for p in decoded.panels or [] for t in (getattr(p, "targets", None) or [])]
    assert targets and all(isinstance(t, InfluxQLQuery) for t in targets)


@pytest.mark.parametrize("name", DASHBOARD_FILES)
def test_layout_ids_and_datasources(name: str) -> None:
    dashboard = load(name)
    panels = all_panels(dashboard)
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    cells: dict[tuple[int, int], str] = {}
    for panel in panels:
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24 and pos["h"] >= 1, panel["title"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in cells, f"{panel['title']!r} overlaps {cells[(x, y)]!r}"
                cells[(x, y)] = panel["title"]
    for panel in content_panels(dashboard):
        assert panel["datasource"] == {"type": "influxdb", "uid": DATASOURCE_UID}
        targets = panel["targets"]
        assert targets, f"{panel['title']!r} has no query"
        ref_ids = [t["refId"] for t in targets]
        assert len(ref_ids) == len(set(ref_ids))
        for target in targets:
            assert target["datasource"]["uid"] == DATASOURCE_UID
            assert target["rawQuery"] is True
    for variable in dashboard["templating"]["list"]:
        assert variable["datasource"]["uid"] == DATASOURCE_UID


_FROM = re.compile(r'FROM\s+"(\w+)"')
_IDENT = re.compile(r'"(\w+)"')
_ALIAS = re.compile(r'AS\s+"([^"]+)"')


@pytest.mark.parametrize("name", DASHBOARD_FILES)
def test_queries_use_the_influx_schema_and_filter_the_session(name: str) -> None:
    dashboard = load(name)
    aliases_ok = {"r", "l", "n"}  # subquery columns of the symmetry and decile queries
    for panel in content_panels(dashboard):
        for target in panel["targets"]:
            query = target["query"]
            measurements = set(_FROM.findall(query))
            assert measurements and measurements <= set(SCHEMA), (panel["title"], measurements)
            known = set().union(
                *(tags | fields for tags, fields in (SCHEMA[m] for m in measurements))
            )
            aliases = set(_ALIAS.findall(query)) | aliases_ok
            unknown = set(_IDENT.findall(query)) - known - measurements - aliases
            assert not unknown, f"{panel['title']!r}: not in DESIGN.md §5: {unknown}"
            assert "$timeFilter" in query, panel["title"]
            assert '"athlete" =~ /^$athlete$/' in query, panel["title"]
            if "Sessions" not in panel["title"]:  # the session picker lists them all
                assert '"session" =~ /^$session$/' in query, panel["title"]
    names = [v["name"] for v in dashboard["templating"]["list"]]
    assert names[:2] == ["athlete", "session"]
    for variable in dashboard["templating"]["list"][:2]:
        assert variable["type"] == "query"
        assert variable["query"].startswith("SHOW TAG VALUES WITH KEY = ")


def titles(dashboard: dict[str, Any]) -> str:
    return " | ".join(p["title"].lower() for p in content_panels(dashboard))


def test_live_session_dashboard_content() -> None:
    live = load("live-session.json")
    assert live["refresh"] == "1s"
    assert live["time"] == {"from": "now-5m", "to": "now"}
    text = titles(live)
    for needed in (
        "pelvic obliquity",
        "pelvic drop (cpd) per stride, left vs right",
        "hip adduction",
        "thigh adduction",
        "cadence",
        "symmetry",
        "sensors (last report)",
        "connection",
        "packet loss",
        "sample rate",
    ):
        assert needed in text, needed
    cpd = next(p for p in content_panels(live) if "per stride, left vs right" in p["title"])
    steps = cpd["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert [s["color"] for s in steps] == ["green", "yellow", "red"]
    assert cpd["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"]["mode"] == "line+area"
    sensors = next(p for p in content_panels(live) if p["title"] == "Sensors (last report)")
    for field in ("battery_pct", "packet_loss_pct", "rate_hz", "connected"):
        assert f'last("{field}")' in sensors["targets"][0]["query"]


def test_run_review_dashboard_content() -> None:
    review = load("run-review.json")
    assert review["refresh"] is False
    panels = content_panels(review)
    text = titles(review)
    for needed in ("with trend", "first vs last 10 %", "symmetry index", "cadence"):
        assert needed in text, needed
    assert any(p["type"] == "histogram" and "distribution" in p["title"].lower() for p in panels)
    trend = next(p for p in panels if "with trend" in p["title"])
    assert any("moving_average(" in t["query"] for t in trend["targets"])
    decile = next(p for p in panels if "first vs last" in p["title"])
    assert all("LIMIT $stride_n10" in t["query"] for t in decile["targets"])
    hidden = {v["name"]: v for v in review["templating"]["list"]}["stride_n10"]
    assert hidden["hide"] == 2
    picker = next(p for p in panels if p["title"].startswith("Sessions"))
    links = picker["fieldConfig"]["overrides"][0]["properties"][0]
    assert links["id"] == "links" and "var-session=${__value.raw}" in links["value"][0]["url"]
    table = next(p for p in panels if p["title"].startswith("Strides ("))
    assert table["targets"][0]["resultFormat"] == "table"
    for column in STRIDE_COLUMNS:
        assert f'"{column}"' in table["targets"][0]["query"], column


def test_datasource_provisioning_matches_the_dashboards() -> None:
    config = yaml.safe_load((PROVISIONING / "datasources" / "influxdb.yaml").read_text())
    [source] = config["datasources"]
    assert source["uid"] == DATASOURCE_UID and source["type"] == "influxdb"
    assert source["access"] == "proxy"
    assert source["jsonData"]["dbName"] and source["url"]
    providers = yaml.safe_load((PROVISIONING / "dashboards" / "imu-stream.yaml").read_text())
    [provider] = providers["providers"]
    assert provider["type"] == "file" and provider["options"]["path"].startswith("/")
