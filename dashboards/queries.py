"""InfluxQL text shared by the dashboards, for the schema of DESIGN.md §5.

Measurements ``stride``, ``angles``, ``sensor``, ``session_event``; tags ``athlete``,
``session``, ``side``, ``activity``, ``location``. Tag filters use Grafana's regex form
``/^$var$/``: Grafana regex-escapes the value and turns a multi-value selection into an
alternation ``(a|b)``, so the same text works for one athlete or several. Everything here runs
on InfluxDB 1.6 (the oldest server the tests use), 1.8/1.11, and 2.x/3 through their v1 API.
"""

from __future__ import annotations

SESSION_FILTER = '"athlete" =~ /^$athlete$/ AND "session" =~ /^$session$/'

# Name of the hidden variable holding the stride count of "the first/last 10 %" (per side).
DECILE_VARIABLE = "stride_n10"


def where(*conditions: str) -> str:
    """``WHERE`` clause: the athlete/session filter, extra conditions, then ``$timeFilter``."""
    return " AND ".join([SESSION_FILTER, *conditions, "$timeFilter"])


def side_is(side: str) -> str:
    return f"\"side\" = '{side}'"


def symmetry_index(field: str, alias: str, group_by: str | None = None) -> str:
    """SI = 100·(R − L)/(0.5·(R + L)) of a stride field (METRICS.md), right minus left.

    Strides of the two sides never share a timestamp, so each side is a subquery with its own
    column and the outer aggregates combine them (per time window when ``group_by`` is given).
    """
    right = f'SELECT "{field}" AS "r" FROM "stride" WHERE {where(side_is("right"))}'
    left = f'SELECT "{field}" AS "l" FROM "stride" WHERE {where(side_is("left"))}'
    select = (
        f'SELECT 100 * (mean("r") - mean("l")) / (0.5 * (mean("r") + mean("l"))) AS "{alias}" '
        f"FROM ({right}), ({left})"
    )
    if group_by is None:
        return select
    # GROUP BY time() needs the time range on the outer query too.
    return f"{select} WHERE $timeFilter GROUP BY {group_by} fill(none)"


def decile_count_query() -> str:
    """Strides in 10 % of the shorter side's strides (at least 1): the hidden variable's query."""
    per_side = (
        f'SELECT ceil(count("stride_time_s") / 10) AS "n" FROM "stride" WHERE {where()} '
        'GROUP BY "side"'
    )
    return f'SELECT min("n") FROM ({per_side})'


def decile_mean(field: str, last: bool) -> str:
    """Mean of ``field`` over each side's first (or last) ``$stride_n10`` strides."""
    order = "DESC" if last else "ASC"
    # InfluxDB wants the outer query ordered like the subquery.
    inner = (
        f'SELECT "{field}" FROM "stride" WHERE {where()} GROUP BY "side" '
        f"ORDER BY time {order} LIMIT ${DECILE_VARIABLE}"
    )
    return f'SELECT mean("{field}") FROM ({inner}) GROUP BY "side" ORDER BY time {order}'
