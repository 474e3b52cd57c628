"""What both dashboards share: variables, the session filter, colours, thresholds, panel helpers.

The InfluxQL text itself is built in ``dashboards.queries``.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders.dashboard import (
    DashboardLink,
    QueryVariable,
    ThresholdsConfig,
)
from grafana_foundation_sdk.models import common as common_models
from grafana_foundation_sdk.models.dashboard import (
    DynamicConfigValue,
    Threshold,
    ThresholdsMode,
    VariableHide,
    VariableRefresh,
    VariableSort,
)

from dashboards.influxql import DATASOURCE

# Display bands for contralateral pelvic drop, degrees. Display defaults, not diagnostic cut-offs:
# Bramah et al. 2018 (Am J Sports Med 46:3023) report ~80 % higher odds of being in the injured
# group per extra 1° of CPD and give no cut-off. Change them here and regenerate.
CPD_BANDS_DEG: tuple[float, float] = (5.0, 7.0)
# Stance-time symmetry index bands, percent (|SI| beyond these is highlighted).
SYMMETRY_BANDS_PCT: tuple[float, float] = (5.0, 10.0)

LEFT_COLOR = "blue"
RIGHT_COLOR = "orange"

TAGS = ["imu-stream", "gait", "pelvic-stability"]
LIVE_UID = "imu-stream-live"
RUN_REVIEW_UID = "imu-stream-run-review"


def athlete_variable() -> QueryVariable:
    # Every measurement carries the athlete tag; sensors report before the first stride does.
    return (
        QueryVariable("athlete")
        .label("Athlete")
        .datasource(DATASOURCE)
        .query('SHOW TAG VALUES WITH KEY = "athlete"')
        .refresh(VariableRefresh.ON_DASHBOARD_LOAD)
        .sort(VariableSort.ALPHABETICAL_CASE_INSENSITIVE_ASC)
    )


def session_variable() -> QueryVariable:
    # Session ids start with their UTC start time, so descending order puts the newest first.
    return (
        QueryVariable("session")
        .label("Session")
        .datasource(DATASOURCE)
        .query('SHOW TAG VALUES WITH KEY = "session" WHERE "athlete" =~ /^$athlete$/')
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_DESC)
    )


def hidden_variable(name: str, query: str) -> QueryVariable:
    return (
        QueryVariable(name)
        .datasource(DATASOURCE)
        .query(query)
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .hide(VariableHide.HIDE_VARIABLE)
    )


def band_thresholds(bands: tuple[float, float]) -> ThresholdsConfig:
    low, high = bands
    return (
        ThresholdsConfig()
        .mode(ThresholdsMode.ABSOLUTE)
        .steps(
            [
                Threshold(value=None, color="green"),
                Threshold(value=low, color="yellow"),
                Threshold(value=high, color="red"),
            ]
        )
    )


def symmetric_thresholds(bands: tuple[float, float]) -> ThresholdsConfig:
    """Green around zero, yellow then red as |value| grows (symmetry indices)."""
    low, high = bands
    return (
        ThresholdsConfig()
        .mode(ThresholdsMode.ABSOLUTE)
        .steps(
            [
                Threshold(value=None, color="red"),
                Threshold(value=-high, color="yellow"),
                Threshold(value=-low, color="green"),
                Threshold(value=low, color="yellow"),
                Threshold(value=high, color="red"),
            ]
        )
    )


def neutral_thresholds() -> ThresholdsConfig:
    return (
        ThresholdsConfig()
        .mode(ThresholdsMode.ABSOLUTE)
        .steps([Threshold(value=None, color="text")])
    )


def threshold_area() -> common_builders.GraphThresholdsStyleConfig:
    return common_builders.GraphThresholdsStyleConfig().mode(
        common_models.GraphTresholdsStyleMode.LINE_AND_AREA
    )


def side_colours() -> list[tuple[str, list[DynamicConfigValue]]]:
    """(series-name regex, override) pairs: left stance blue, right stance orange."""
    return [("^left.*", fixed_colour(LEFT_COLOR)), ("^right.*", fixed_colour(RIGHT_COLOR))]


def legend_list() -> common_builders.VizLegendOptions:
    return (
        common_builders.VizLegendOptions()
        .display_mode(common_models.LegendDisplayMode.LIST)
        .placement(common_models.LegendPlacement.BOTTOM)
        .show_legend(True)
    )


def last_value() -> common_builders.ReduceDataOptions:
    return common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False)


def mean_value() -> common_builders.ReduceDataOptions:
    return common_builders.ReduceDataOptions().calcs(["mean"]).values(False)


def fixed_colour(colour: str) -> list[DynamicConfigValue]:
    """Override properties that pin a series to one colour (used per stance side)."""
    return [DynamicConfigValue(id_val="color", value={"mode": "fixed", "fixedColor": colour})]


def dashboard_link(title: str, uid: str) -> DashboardLink:
    """Header link to the other dashboard, carrying time range and athlete/session along."""
    return (
        DashboardLink(title).url(f"/d/{uid}").icon("dashboard").include_vars(True).keep_time(True)
    )
