"""dashboards.expand reproduces Grafana's InfluxQL expansion (documented behaviour, by example)."""

from __future__ import annotations

import pytest

from dashboards.expand import (
    PanelTarget,
    Selection,
    TimeRange,
    apply_macros,
    expand,
    expand_target,
    format_interval,
    interpolate,
    metric_find_values,
    panel_interval_ms,
    panel_targets,
    parse_time,
    regex_escape,
    resolve_variables,
    sort_options,
)

RANGE = TimeRange(1_700_000_000_000, 1_700_000_300_000)  # 5 minutes


def test_regex_escape_is_grafanas() -> None:
    # kbn.regexEscape escapes \ ^ $ * + ? . ( ) | [ ] { } /, and nothing else.
    assert regex_escape("s1.run/2024-05-01") == r"s1\.run\/2024-05-01"
    assert regex_escape("a+b*(c)|[d]{e}^$?\\") == r"a\+b\*\(c\)\|\[d\]\{e\}\^\$\?\\"
    assert regex_escape("plain_name-1 x") == "plain_name-1 x"


def test_single_and_multi_value_regex_format() -> None:
    one = {"session": Selection(["s.1"])}
    two = {"session": Selection(["s.1", "s2"])}
    assert interpolate('"session" =~ /^$session$/', one) == r'"session" =~ /^s\.1$/'
    assert interpolate('"session" =~ /^$session$/', two) == r'"session" =~ /^(s\.1|s2)$/'
    # a custom all-value goes in as it is (not escaped)
    assert interpolate("/^$session$/", {"session": Selection(["a"], raw=".*")}) == "/^.*$/"


def test_variable_syntaxes_and_unknown_names() -> None:
    sel = {"athlete": Selection(["ann", "bo"])}
    assert interpolate("[[athlete]] ${athlete} ${athlete:pipe} ${athlete:glob}", sel) == (
        "(ann|bo) (ann|bo) ann|bo {ann,bo}"
    )
    # macros are not variables: the front end leaves them for the back end
    text = "WHERE $timeFilter GROUP BY time($__interval) $__interval_ms $unknown"
    assert interpolate(text, sel) == text


def test_macros_do_not_clobber_each_other() -> None:
    out = apply_macros("$timeFilter time($__interval) $__interval_ms $interval", RANGE, 200)
    assert out == ("time >= 1700000000000ms and time <= 1700000300000ms time(200ms) 200 200ms")


@pytest.mark.parametrize(
    ("max_points", "min_interval", "expected_ms", "text"),
    [
        (1500, None, 200, "200ms"),  # 300 s / 1500 = 200 ms, already a ladder step
        (1000, None, 200, "200ms"),  # 300 ms rounds down to 200 ms (< 350)
        (300, "1s", 1000, "1s"),  # the minimum interval wins
        (100, None, 2000, "2s"),  # 3 s is below 3.5 s: rounds to 2 s
        (60, None, 5000, "5s"),  # 5 s
    ],
)
def test_interval_ladder(
    max_points: float, min_interval: str | None, expected_ms: int, text: str
) -> None:
    interval = panel_interval_ms(RANGE, max_points, min_interval)
    assert interval == expected_ms
    assert format_interval(interval) == text


def test_interval_text_uses_whole_units() -> None:
    assert format_interval(300_000) == "5m"
    assert format_interval(86_400_000) == "1d"
    assert format_interval(20) == "20ms"
    day = TimeRange(0, 86_400_000)
    assert format_interval(panel_interval_ms(day, 400, "5s")) == "5m"  # 216 s → 5 min step


def test_relative_times() -> None:
    now = 1_700_000_000_000
    assert parse_time("now", now) == now
    assert parse_time("now-5m", now) == now - 300_000
    assert parse_time("now-24h", now) == now - 86_400_000
    assert parse_time("1690000000000", now) == 1_690_000_000_000
    with pytest.raises(ValueError):
        parse_time("yesterday", now)


def test_metric_find_values_reads_like_grafana() -> None:
    show_tag_values = {
        "results": [
            {
                "series": [
                    {"name": "angles", "columns": ["key", "value"], "values": [["a", "x"]]},
                    {
                        "name": "stride",
                        "columns": ["key", "value"],
                        "values": [["a", "y"], ["a", "x"]],
                    },
                ]
            }
        ]
    }
    assert metric_find_values("SHOW TAG VALUES", show_tag_values) == ["x", "y"]
    select = {"results": [{"series": [{"columns": ["time", "min"], "values": [[0, 4.0]]}]}]}
    assert metric_find_values("SELECT min(n) FROM x", select) == ["4"]
    assert metric_find_values("SHOW TAG VALUES", {"results": [{"statement_id": 0}]}) == []


def test_sort_options() -> None:
    values = ["b", "A", "c10", "c9"]
    assert sort_options(values, 0) == values
    assert sort_options(values, 2) == ["c9", "c10", "b", "A"]
    assert sort_options(values, 5) == ["A", "b", "c10", "c9"]
    assert sort_options(["c10", "c9"], 3) == ["c9", "c10"]


def test_variables_resolve_in_order_and_feed_each_other() -> None:
    dashboard = {
        "templating": {
            "list": [
                {"type": "query", "name": "athlete", "query": "Q1", "sort": 1},
                {"type": "query", "name": "session", "query": "Q2 /^$athlete$/", "sort": 2},
            ]
        }
    }
    answers = {
        "Q1": ["zed", "a.b"],
        r"Q2 /^a\.b$/": ["2024-01", "2025-01"],
    }
    sent: list[str] = []

    def run(query: str) -> dict[str, object]:
        sent.append(query)
        rows = [["k", v] for v in answers.get(query, [])]
        return {"results": [{"series": [{"columns": ["key", "value"], "values": rows}]}]}

    resolved = resolve_variables(dashboard, RANGE, run)
    assert sent == ["Q1", r"Q2 /^a\.b$/"]
    assert resolved.selections["athlete"].values == ["a.b"]  # first after sorting
    assert resolved.selections["session"].values == ["2025-01"]  # newest first (desc)
    chosen = resolve_variables(dashboard, RANGE, run, chosen={"athlete": ["zed"]})
    assert chosen.selections["session"].values == []


def test_expand_target_end_to_end() -> None:
    target = PanelTarget(
        panel_title="t",
        panel_type="timeseries",
        ref_id="A",
        query='SELECT mean("x") FROM "angles" WHERE "session" =~ /^$session$/ AND $timeFilter '
        "GROUP BY time($__interval)",
        result_format="time_series",
        max_data_points=1500,
        min_interval="20ms",
        hidden=False,
    )
    out = expand_target(target, {"session": Selection(["s.1"])}, RANGE)
    assert out == expand(target.query, {"session": Selection(["s.1"])}, RANGE, 200)
    assert out == (
        r'SELECT mean("x") FROM "angles" WHERE "session" =~ /^s\.1$/ AND '
        "time >= 1700000000000ms and time <= 1700000300000ms GROUP BY time(200ms)"
    )


def test_panel_minimum_interval_wins_over_the_data_source() -> None:
    dashboard = {
        "panels": [
            {"type": "row", "title": "r", "panels": [{"title": "inner", "targets": [{}]}]},
            {"title": "own", "interval": "5s", "maxDataPoints": 100, "targets": [{"refId": "A"}]},
        ]
    }
    inner, own = panel_targets(dashboard, datasource_min_interval="20ms")
    assert (inner.panel_title, inner.min_interval) == ("inner", "20ms")
    assert (own.panel_title, own.min_interval, own.max_data_points) == ("own", "5s", 100.0)
