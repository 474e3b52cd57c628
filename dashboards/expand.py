"""Expand dashboard queries the way Grafana does before they reach InfluxDB.

Grafana (10.x/11.x, InfluxQL in "proxy" access, the default) sends a raw InfluxQL target through
two steps, reproduced here so the queries can be run against a real InfluxDB without Grafana:

1. **Template variables** (front end, ``templateSrv.replace(query, vars, 'regex')``): ``$var``,
   ``[[var]]``, ``${var}`` and ``${var:format}``. The InfluxDB data source formats values as
   *regex*: each value is regex-escaped, several values become ``(a|b)``. "All" is the custom
   all-value when one is set (not escaped), otherwise every option.
2. **Macros** (back end, ``pkg/tsdb/influxdb`` ``Query.Build``): ``$timeFilter`` →
   ``time >= {from}ms and time <= {to}ms``, then ``$interval``, ``$__interval_ms`` and
   ``$__interval``. The interval is range / max data points rounded to Grafana's ladder, and
   never below the panel's (or data source's) minimum interval.

Variable queries (``SHOW TAG VALUES …``) go through the same steps; their answers are read as
Grafana's InfluxDB response parser reads them and sorted as the variable asks.

Pure functions only; running queries is the caller's business (a callable is passed in).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# --- time range and interval -----------------------------------------------------------------

_UNIT_MS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_RELATIVE = re.compile(r"^now(?:-(\d+)(ms|s|m|h|d|w))?$")
_DURATION = re.compile(r"^(\d+)(ms|s|m|h|d|w)$")

# Grafana's interval ladder (rangeutil.roundInterval): (below this many ms, use this many ms).
_LADDER: tuple[tuple[int, int], ...] = (
    (10, 1),
    (15, 10),
    (35, 20),
    (75, 50),
    (150, 100),
    (350, 200),
    (750, 500),
    (1_500, 1_000),
    (3_500, 2_000),
    (7_500, 5_000),
    (12_500, 10_000),
    (17_500, 15_000),
    (25_000, 20_000),
    (45_000, 30_000),
    (90_000, 60_000),
    (210_000, 120_000),
    (450_000, 300_000),
    (750_000, 600_000),
    (1_050_000, 900_000),
    (1_500_000, 1_200_000),
    (2_700_000, 1_800_000),
    (5_400_000, 3_600_000),
    (9_000_000, 7_200_000),
    (16_200_000, 10_800_000),
    (32_400_000, 21_600_000),
    (86_400_000, 43_200_000),
    (172_800_000, 86_400_000),
    (604_800_000, 86_400_000),
    (1_814_400_000, 604_800_000),
    (3_628_800_000, 2_592_000_000),
)
_YEAR_MS = 31_536_000_000


@dataclass(frozen=True, slots=True)
class TimeRange:
    """Absolute dashboard time range, epoch milliseconds."""

    from_ms: int
    to_ms: int


def parse_time(expr: str, now_ms: int) -> int:
    """``now``, ``now-5m`` … or epoch milliseconds, to epoch milliseconds."""
    if expr.isdigit():
        return int(expr)
    match = _RELATIVE.match(expr)
    if match is None:
        raise ValueError(f"unsupported time expression {expr!r}")
    amount, unit = match.groups()
    return now_ms if amount is None else now_ms - int(amount) * _UNIT_MS[unit]


def dashboard_range(dashboard: Mapping[str, Any], now_ms: int) -> TimeRange:
    """The dashboard's default time range (``time.from``/``time.to``) at ``now_ms``."""
    time = dashboard.get("time") or {"from": "now-6h", "to": "now"}
    return TimeRange(parse_time(str(time["from"]), now_ms), parse_time(str(time["to"]), now_ms))


def parse_duration_ms(text: str) -> int:
    """A Grafana interval string such as ``20ms``, ``1s``, ``5m`` (``>1s`` allowed) in ms."""
    match = _DURATION.match(text.strip().lstrip("<>"))
    if match is None:
        raise ValueError(f"unsupported interval {text!r}")
    return int(match.group(1)) * _UNIT_MS[match.group(2)]


def round_interval_ms(interval_ms: float) -> int:
    for below, value in _LADDER:
        if interval_ms < below:
            return value
    return _YEAR_MS


def panel_interval_ms(
    time_range: TimeRange, max_data_points: float, min_interval: str | None = None
) -> int:
    """``$__interval_ms`` of a panel: range / max data points, rounded, at least the minimum."""
    interval = round_interval_ms((time_range.to_ms - time_range.from_ms) / max_data_points)
    low = parse_duration_ms(min_interval) if min_interval else 1
    return max(interval, low)


def format_interval(interval_ms: int) -> str:
    """``$__interval`` text as the back end writes it (gtime.FormatInterval: whole units)."""
    for unit, size in (("y", _YEAR_MS), ("d", 86_400_000), ("h", 3_600_000), ("m", 60_000)):
        if interval_ms >= size:
            return f"{interval_ms // size}{unit}"
    if interval_ms >= 1_000:
        return f"{interval_ms // 1_000}s"
    return f"{max(interval_ms, 1)}ms"


def time_filter(time_range: TimeRange) -> str:
    return f"time >= {time_range.from_ms}ms and time <= {time_range.to_ms}ms"


def apply_macros(query: str, time_range: TimeRange, interval_ms: int) -> str:
    """Back-end step: ``$timeFilter``, ``$interval``, ``$__interval_ms``, ``$__interval``."""
    text = format_interval(interval_ms)
    query = query.replace("$timeFilter", time_filter(time_range))
    query = query.replace("$interval", text)
    query = query.replace("$__interval_ms", str(interval_ms))
    return query.replace("$__interval", text)


# --- template variables ----------------------------------------------------------------------

_REGEX_SPECIAL = re.compile(r"[\\^$*+?.()|\[\]{}/]")
# Grafana's variable syntax: $var, [[var]] / [[var:fmt]], ${var} / ${var:fmt}.
_VARIABLE = re.compile(r"\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?::([^}]+))?\}")


def regex_escape(value: str) -> str:
    """Grafana's ``kbn.regexEscape``."""
    return _REGEX_SPECIAL.sub(lambda m: "\\" + m.group(0), value)


@dataclass(slots=True)
class Selection:
    """The current value(s) of one variable; ``raw`` is a custom all-value (used unescaped)."""

    values: list[str]
    raw: str | None = None


def format_values(values: Sequence[str], fmt: str) -> str:
    if fmt == "regex":
        escaped = [regex_escape(v) for v in values]
        return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"
    if fmt == "raw":
        return ",".join(values)
    if fmt == "pipe":
        return "|".join(values)
    if fmt == "csv":
        return ",".join(values)
    if fmt == "glob":
        return values[0] if len(values) == 1 else "{" + ",".join(values) + "}"
    raise ValueError(f"unsupported variable format {fmt!r}")


def interpolate(query: str, selections: Mapping[str, Selection], fmt: str = "regex") -> str:
    """Front-end step: replace known variables; unknown ``$names`` (macros) stay as they are."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2) or match.group(4)
        chosen_format = match.group(3) or match.group(5) or fmt
        selection = selections.get(name)
        if selection is None:
            return match.group(0)
        if selection.raw is not None:
            return selection.raw
        return format_values(selection.values, chosen_format)

    return _VARIABLE.sub(replace, query)


def expand(
    query: str, selections: Mapping[str, Selection], time_range: TimeRange, interval_ms: int
) -> str:
    """The InfluxQL Grafana would send to InfluxDB for this target."""
    return apply_macros(interpolate(query, selections), time_range, interval_ms)


# --- variable queries --------------------------------------------------------------------------


def metric_find_values(query: str, response: Mapping[str, Any]) -> list[str]:
    """Values of a variable query's answer, as Grafana's InfluxDB ResponseParser reads them."""
    results = response.get("results") or []
    if not results or "series" not in results[0]:
        return []
    lowered = query.lower()
    value_first = "show field keys" in lowered or "show retention policies" in lowered
    found: dict[str, None] = {}  # insertion-ordered set
    for series in results[0]["series"]:
        for row in series.get("values") or []:
            if not isinstance(row, list):
                value: Any = row
            elif value_first or len(row) < 2:
                value = row[0]
            else:
                value = row[1]
            found[_js_string(value)] = None
    return list(found)


def _js_string(value: Any) -> str:
    """``value.toString()`` as JavaScript would print a JSON value (2.0 → "2")."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def sort_options(values: Sequence[str], sort: int) -> list[str]:
    """Grafana's variable ``sort``: 0 none, 1/2 alphabetical, 3/4 numerical, 5/6 no case."""
    if sort in (1, 2):
        return sorted(values, reverse=sort == 2)
    if sort in (3, 4):

        def number(v: str) -> float:
            digits = re.search(r"-?\d+(?:\.\d+)?", v)
            return float(digits.group(0)) if digits else float("-inf")

        return sorted(values, key=number, reverse=sort == 4)
    if sort in (5, 6):
        return sorted(values, key=str.lower, reverse=sort == 6)
    return list(values)


@dataclass(slots=True)
class ResolvedVariable:
    name: str
    query: str  # as sent to InfluxDB
    options: list[str]
    selection: Selection


@dataclass(slots=True)
class Resolution:
    """Every variable of a dashboard resolved in order, like Grafana does on load."""

    variables: list[ResolvedVariable] = field(default_factory=list)

    @property
    def selections(self) -> dict[str, Selection]:
        return {v.name: v.selection for v in self.variables}


def resolve_variables(
    dashboard: Mapping[str, Any],
    time_range: TimeRange,
    run_query: Callable[[str], Mapping[str, Any]],
    chosen: Mapping[str, Sequence[str]] | None = None,
) -> Resolution:
    """Run each query variable (in order, later ones see earlier values) and pick its value.

    ``chosen`` sets a variable's value(s) as a user (or the URL) would; otherwise Grafana's
    default applies: the first option after sorting, or "All" when the variable includes it.
    """
    chosen = chosen or {}
    resolution = Resolution()
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") != "query":
            continue
        name = str(variable["name"])
        raw_query = variable.get("query")
        text = raw_query if isinstance(raw_query, str) else str((raw_query or {}).get("query", ""))
        sent = expand(text, resolution.selections, time_range, 1)
        found = metric_find_values(text, run_query(sent))
        options = sort_options(found, int(variable.get("sort") or 0))
        if name in chosen:
            selection = Selection(list(chosen[name]))
        elif variable.get("includeAll"):
            all_value = variable.get("allValue")
            selection = Selection(options, raw=all_value if all_value else None)
        else:
            selection = Selection(options[:1])
        resolution.variables.append(ResolvedVariable(name, sent, options, selection))
    return resolution


# --- panel targets -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PanelTarget:
    panel_title: str
    panel_type: str
    ref_id: str
    query: str  # the raw InfluxQL as stored in the dashboard
    result_format: str
    max_data_points: float
    min_interval: str | None
    hidden: bool


# Grafana's default max data points when a panel sets none is its width in pixels; a full-width
# panel on a 1920-px screen is about this wide.
DEFAULT_MAX_DATA_POINTS = 1_800.0


def panel_targets(
    dashboard: Mapping[str, Any], datasource_min_interval: str | None = None
) -> list[PanelTarget]:
    """Every query target of every panel (rows' collapsed panels included), in layout order.

    A panel's own minimum interval wins over the data source's (``jsonData.timeInterval``).
    """
    out: list[PanelTarget] = []

    def visit(panel: Mapping[str, Any]) -> None:
        for child in panel.get("panels") or []:
            visit(child)
        for target in panel.get("targets") or []:
            out.append(
                PanelTarget(
                    panel_title=str(panel.get("title", "")),
                    panel_type=str(panel.get("type", "")),
                    ref_id=str(target.get("refId", "")),
                    query=str(target.get("query", "")),
                    result_format=str(target.get("resultFormat", "time_series")),
                    max_data_points=float(panel.get("maxDataPoints") or DEFAULT_MAX_DATA_POINTS),
                    min_interval=panel.get("interval") or datasource_min_interval,
                    hidden=bool(target.get("hide", False)),
                )
            )

    for panel in dashboard.get("panels") or []:
        visit(panel)
    return out


def expand_target(
    target: PanelTarget, selections: Mapping[str, Selection], time_range: TimeRange
) -> str:
    interval_ms = panel_interval_ms(time_range, target.max_data_points, target.min_interval)
    return expand(target.query, selections, time_range, interval_ms)
