"""The **Live session** dashboard: what the clinician watches while the athlete walks or runs.

Refreshes every second over the last 5 minutes: live pelvic obliquity, per-stride contralateral
pelvic drop (CPD) left vs right with threshold bands, hip and thigh adduction, cadence, stance
symmetry and sensor health (battery, packet loss, sample rate, connection).
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import stat, statetimeline, table, timeseries
from grafana_foundation_sdk.builders.dashboard import Dashboard, Row, TimePicker
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.cog.variants import Dataquery
from grafana_foundation_sdk.models import common as common_models
from grafana_foundation_sdk.models.dashboard import (
    DashboardCursorSync,
    DashboardSpecialValueMapOptions,
    SpecialValueMap,
    SpecialValueMatch,
    ValueMap,
    ValueMapping,
    ValueMappingResult,
)

from dashboards.common import (
    CPD_BANDS_DEG,
    LIVE_UID,
    RUN_REVIEW_UID,
    SYMMETRY_BANDS_PCT,
    TAGS,
    athlete_variable,
    band_thresholds,
    dashboard_link,
    last_value,
    legend_list,
    neutral_thresholds,
    session_variable,
    side_colours,
    symmetric_thresholds,
    threshold_area,
)
from dashboards.influxql import DATASOURCE, InfluxQL
from dashboards.queries import side_is, symmetry_index, where
from imu_stream.sinks.influx_schema import SENSOR_FIELDS

UID = LIVE_UID
TITLE = "imu-stream · Live session"

# Angles arrive at ≤ 50 Hz, sensor health at 1 Hz: finer $__interval buckets would be empty.
ANGLE_MIN_INTERVAL = "20ms"
SENSOR_MIN_INTERVAL = "1s"
LIVE_WINDOW = "10s"  # window of the big numbers and of the running symmetry index


def _per_side_stride_panel(title: str, field: str, unit: str, description: str) -> timeseries.Panel:
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .with_target(
            InfluxQL(f'SELECT "{field}" FROM "stride" WHERE {where()} GROUP BY "side"')
            .ref_id("A")
            .alias("$tag_side")
        )
        .unit(unit)
        .draw_style(common_models.GraphDrawStyle.LINE)
        .show_points(common_models.VisibilityMode.ALWAYS)
        .point_size(6)
        .line_width(1)
        .legend(legend_list())
        .span(12)
        .height(9)
    )
    for regexp, properties in side_colours():
        panel = panel.override_by_regexp(regexp, properties)
    return panel


def _angle_pair_panel(title: str, stem: str, description: str) -> timeseries.Panel:
    query = (
        f'SELECT mean("{stem}_left_deg") AS "left", mean("{stem}_right_deg") AS "right" '
        f'FROM "angles" WHERE {where()} GROUP BY time($__interval) fill(none)'
    )
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .with_target(InfluxQL(query).ref_id("A"))
        .interval(ANGLE_MIN_INTERVAL)
        .max_data_points(1000)
        .unit("degree")
        .line_width(1)
        .legend(legend_list())
        .span(12)
        .height(8)
    )
    for regexp, properties in side_colours():
        panel = panel.override_by_regexp(regexp, properties)
    return panel


def _connected_mappings() -> list[ValueMapping]:
    # The writer may store `connected` as boolean or 0/1: map both.
    return [
        ValueMap(
            options={
                "0": ValueMappingResult(text="lost", color="red", index=0),
                "1": ValueMappingResult(text="connected", color="green", index=1),
            }
        ),
        SpecialValueMap(
            options=DashboardSpecialValueMapOptions(
                match=SpecialValueMatch.TRUE,
                result=ValueMappingResult(text="connected", color="green", index=2),
            )
        ),
        SpecialValueMap(
            options=DashboardSpecialValueMapOptions(
                match=SpecialValueMatch.FALSE,
                result=ValueMappingResult(text="lost", color="red", index=3),
            )
        ),
    ]


def _now_row(builder: Dashboard) -> Dashboard:
    cadence = (
        stat.Panel()
        .title(f"Cadence (last {LIVE_WINDOW})")
        .description("Steps per minute, mean of both sides' strides.")
        .datasource(DATASOURCE)
        .with_target(
            InfluxQL(
                f'SELECT mean("cadence_spm") FROM "stride" WHERE {where()} '
                f"GROUP BY time({LIVE_WINDOW}) fill(none)"
            ).ref_id("A")
        )
        .unit("suffix: spm")
        .decimals(0)
        .thresholds(neutral_thresholds())
        .reduce_options(last_value())
        .graph_mode(common_models.BigValueGraphMode.AREA)
        .span(5)
        .height(5)
    )
    cpd_targets: list[Builder[Dataquery]] = [
        InfluxQL(
            f'SELECT mean("pelvic_drop_deg") FROM "stride" WHERE {where(side_is(side))} '
            f"GROUP BY time({LIVE_WINDOW}) fill(none)"
        )
        .ref_id(ref)
        .alias(side)
        for ref, side in (("A", "left"), ("B", "right"))
    ]
    cpd = (
        stat.Panel()
        .title(f"Pelvic drop (CPD), last {LIVE_WINDOW}")
        .description(
            "Contralateral pelvic drop per stance side (left = left stance, the right hemipelvis "
            f"drops). Bands at {CPD_BANDS_DEG[0]:g}° and {CPD_BANDS_DEG[1]:g}° are display "
            "defaults, not diagnostic cut-offs."
        )
        .datasource(DATASOURCE)
        .targets(cpd_targets)
        .unit("degree")
        .decimals(1)
        .thresholds(band_thresholds(CPD_BANDS_DEG))
        .color_mode(common_models.BigValueColorMode.BACKGROUND)
        .reduce_options(last_value())
        .graph_mode(common_models.BigValueGraphMode.AREA)
        .span(7)
        .height(5)
    )
    symmetry = (
        stat.Panel()
        .title(f"Stance symmetry (last {LIVE_WINDOW})")
        .description("SI = 100·(R − L)/(0.5·(R + L)) of stance time; 0 = symmetric.")
        .datasource(DATASOURCE)
        .with_target(
            InfluxQL(symmetry_index("stance_time_s", "SI", group_by=f"time({LIVE_WINDOW})")).ref_id(
                "A"
            )
        )
        .unit("percent")
        .decimals(1)
        .thresholds(symmetric_thresholds(SYMMETRY_BANDS_PCT))
        .reduce_options(last_value())
        .graph_mode(common_models.BigValueGraphMode.AREA)
        .span(5)
        .height(5)
    )
    sensors = (
        stat.Panel()
        .title("Sensors")
        .description("Connection state of each sensor (last report).")
        .datasource(DATASOURCE)
        .with_target(
            InfluxQL(f'SELECT last("connected") FROM "sensor" WHERE {where()} GROUP BY "location"')
            .ref_id("A")
            .alias("$tag_location")
        )
        .mappings(_connected_mappings())
        .thresholds(neutral_thresholds())
        .color_mode(common_models.BigValueColorMode.BACKGROUND)
        .graph_mode(common_models.BigValueGraphMode.NONE)
        .reduce_options(last_value())
        .span(7)
        .height(5)
    )
    return builder.with_panel(cadence).with_panel(cpd).with_panel(symmetry).with_panel(sensors)


def _pelvis_row(builder: Dashboard) -> Dashboard:
    obliquity = (
        timeseries.Panel()
        .title("Pelvic obliquity")
        .description("Positive when the left side of the pelvis is lower than the right.")
        .datasource(DATASOURCE)
        .with_target(
            InfluxQL(
                f'SELECT mean("pelvic_obliquity_deg") AS "obliquity" FROM "angles" '
                f"WHERE {where()} GROUP BY time($__interval) fill(none)"
            ).ref_id("A")
        )
        .interval(ANGLE_MIN_INTERVAL)
        .max_data_points(1500)
        .unit("degree")
        .line_width(1)
        .axis_centered_zero(True)
        .legend(legend_list())
        .span(24)
        .height(8)
    )
    cpd = _per_side_stride_panel(
        "Pelvic drop (CPD) per stride, left vs right stance",
        "pelvic_drop_deg",
        "degree",
        f"One point per stride. Bands at {CPD_BANDS_DEG[0]:g}° and {CPD_BANDS_DEG[1]:g}° are "
        "display defaults (set in dashboards/common.py), not diagnostic cut-offs.",
    )
    cpd = cpd.thresholds(band_thresholds(CPD_BANDS_DEG)).thresholds_style(threshold_area())
    cadence = _per_side_stride_panel(
        "Cadence per stride", "cadence_spm", "suffix: spm", "120 / stride time, steps per minute."
    )
    return builder.with_row(Row("Pelvis")).with_panel(obliquity).with_panel(cpd).with_panel(cadence)


def _adduction_row(builder: Dashboard) -> Dashboard:
    hip = _angle_pair_panel(
        "Hip adduction",
        "hip_adduction",
        "Thigh relative to pelvis in the frontal plane, adduction positive.",
    )
    thigh = _angle_pair_panel(
        "Thigh adduction",
        "thigh_adduction",
        "Thigh long axis relative to vertical in the frontal plane, knee medial of hip positive.",
    )
    return builder.with_row(Row("Hip and thigh (frontal plane)")).with_panel(hip).with_panel(thigh)


def _symmetry_row(builder: Dashboard) -> Dashboard:
    index = (
        timeseries.Panel()
        .title(f"Stance time symmetry index ({LIVE_WINDOW} windows)")
        .description("SI = 100·(R − L)/(0.5·(R + L)); positive = longer right stance.")
        .datasource(DATASOURCE)
        .with_target(
            InfluxQL(symmetry_index("stance_time_s", "SI", group_by=f"time({LIVE_WINDOW})")).ref_id(
                "A"
            )
        )
        .unit("percent")
        .thresholds(symmetric_thresholds(SYMMETRY_BANDS_PCT))
        .thresholds_style(threshold_area())
        .show_points(common_models.VisibilityMode.ALWAYS)
        .axis_centered_zero(True)
        .legend(legend_list())
        .span(12)
        .height(8)
    )
    stance = _per_side_stride_panel(
        "Stance time per stride", "stance_time_s", "s", "Initial to final contact of the side."
    ).height(8)
    return builder.with_row(Row("Symmetry")).with_panel(index).with_panel(stance)


def _sensor_row(builder: Dashboard) -> Dashboard:
    last_values = ", ".join(f'last("{f}") AS "{f}"' for f in SENSOR_FIELDS)
    table_query = f'SELECT {last_values} FROM "sensor" WHERE {where()} GROUP BY "location"'
    sensors = (
        table.Panel()
        .title("Sensors (last report)")
        .description("Battery %, packet loss %, sample rate, clock offset and connection.")
        .datasource(DATASOURCE)
        .with_target(InfluxQL(table_query).ref_id("A").table())
        .show_header(True)
        .mappings(_connected_mappings())
        .span(12)
        .height(7)
    )
    connection = (
        statetimeline.Panel()
        .title("Connection")
        .datasource(DATASOURCE)
        .with_target(
            InfluxQL(
                f'SELECT last("connected") FROM "sensor" WHERE {where()} '
                'GROUP BY time($__interval), "location" fill(previous)'
            )
            .ref_id("A")
            .alias("$tag_location")
        )
        .interval(SENSOR_MIN_INTERVAL)
        .max_data_points(300)
        .mappings(_connected_mappings())
        .show_value(common_models.VisibilityMode.NEVER)
        .span(12)
        .height(7)
    )

    def per_location(title: str, field: str, unit: str) -> timeseries.Panel:
        return (
            timeseries.Panel()
            .title(title)
            .datasource(DATASOURCE)
            .with_target(
                InfluxQL(
                    f'SELECT mean("{field}") FROM "sensor" WHERE {where()} '
                    'GROUP BY time($__interval), "location" fill(none)'
                )
                .ref_id("A")
                .alias("$tag_location")
            )
            .interval(SENSOR_MIN_INTERVAL)
            .max_data_points(300)
            .unit(unit)
            .legend(legend_list())
            .span(12)
            .height(7)
        )

    return (
        builder.with_row(Row("Sensor health"))
        .with_panel(sensors)
        .with_panel(connection)
        .with_panel(per_location("Packet loss", "packet_loss_pct", "percent"))
        .with_panel(per_location("Sample rate", "rate_hz", "hertz"))
    )


def _events_row(builder: Dashboard) -> Dashboard:
    events = (
        table.Panel()
        .title("Session events")
        .description("start, calibrated, gap, stop … with details, newest first.")
        .datasource(DATASOURCE)
        .with_target(
            InfluxQL(
                f'SELECT "event", "detail" FROM "session_event" WHERE {where()} ORDER BY time DESC'
            )
            .ref_id("A")
            .table()
        )
        .show_header(True)
        .span(24)
        .height(6)
    )
    return builder.with_row(Row("Session log")).with_panel(events)


def build() -> Dashboard:
    builder = (
        Dashboard(TITLE)
        .uid(UID)
        .description("Live pelvic-stability measures of one athlete's running session.")
        .tags(TAGS)
        .time("now-5m", "now")
        .refresh("1s")
        .timepicker(TimePicker().refresh_intervals(["1s", "2s", "5s", "10s", "30s", "1m"]))
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .readonly()
        .link(dashboard_link("Run review", RUN_REVIEW_UID))
        .with_variable(athlete_variable())
        .with_variable(session_variable())
    )
    for add_row in (_now_row, _pelvis_row, _adduction_row, _symmetry_row, _sensor_row):
        builder = add_row(builder)
    return _events_row(builder)
