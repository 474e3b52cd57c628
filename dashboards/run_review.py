"""The **Run review** dashboard: one finished session of one athlete, stride by stride.

Pelvic drop (CPD) over the run with its trend, first vs last 10 % of strides (fatigue), left/right
symmetry indices, cadence, the CPD distribution, a session picker and a table of every stride
(panel menu → Inspect → Data → Download CSV).
"""

from __future__ import annotations

from typing import TypeVar

from grafana_foundation_sdk.builders import bargauge, histogram, stat, table, timeseries
from grafana_foundation_sdk.builders.dashboard import Dashboard, Row
from grafana_foundation_sdk.models import common as common_models
from grafana_foundation_sdk.models.dashboard import DashboardCursorSync, DynamicConfigValue

from dashboards.common import (
    CPD_BANDS_DEG,
    LIVE_UID,
    RUN_REVIEW_UID,
    SYMMETRY_BANDS_PCT,
    TAGS,
    athlete_variable,
    band_thresholds,
    dashboard_link,
    hidden_variable,
    legend_list,
    mean_value,
    neutral_thresholds,
    session_variable,
    side_colours,
    symmetric_thresholds,
    threshold_area,
)
from dashboards.influxql import DATASOURCE, InfluxQL
from dashboards.queries import (
    DECILE_VARIABLE,
    decile_count_query,
    decile_mean,
    symmetry_index,
    where,
)
from imu_stream.records import STRIDE_COLUMNS

UID = RUN_REVIEW_UID
TITLE = "imu-stream · Run review"
TREND_STRIDES = 10  # moving average over this many strides of one side

# Per-stride metrics whose left/right symmetry index the review shows: (field, label).
SYMMETRY_FIELDS: tuple[tuple[str, str], ...] = (
    ("pelvic_drop_deg", "Pelvic drop"),
    ("stance_time_s", "Stance time"),
    ("hip_adduction_peak_deg", "Hip adduction peak"),
    ("thigh_adduction_peak_deg", "Thigh adduction peak"),
)


SidedPanel = TypeVar("SidedPanel", timeseries.Panel, bargauge.Panel, histogram.Panel)


def _colour_sides(panel: SidedPanel) -> SidedPanel:
    for regexp, properties in side_colours():
        panel = panel.override_by_regexp(regexp, properties)
    return panel


def _summary_row(builder: Dashboard) -> Dashboard:
    strides = (
        stat.Panel()
        .title("Strides")
        .datasource(DATASOURCE)
        .with_target(
            InfluxQL(f'SELECT count("stride_time_s") FROM "stride" WHERE {where()} GROUP BY "side"')
            .ref_id("A")
            .alias("$tag_side")
        )
        .thresholds(neutral_thresholds())
        .graph_mode(common_models.BigValueGraphMode.NONE)
        .span(4)
        .height(6)
    )
    cpd = (
        stat.Panel()
        .title("Mean pelvic drop (CPD)")
        .description(
            f"Bands at {CPD_BANDS_DEG[0]:g}° and {CPD_BANDS_DEG[1]:g}° are display defaults, "
            "not diagnostic cut-offs."
        )
        .datasource(DATASOURCE)
        .with_target(
            InfluxQL(
                f'SELECT mean("pelvic_drop_deg") FROM "stride" WHERE {where()} GROUP BY "side"'
            )
            .ref_id("A")
            .alias("$tag_side")
        )
        .unit("degree")
        .decimals(1)
        .thresholds(band_thresholds(CPD_BANDS_DEG))
        .color_mode(common_models.BigValueColorMode.BACKGROUND)
        .graph_mode(common_models.BigValueGraphMode.NONE)
        .span(6)
        .height(6)
    )
    cadence = (
        stat.Panel()
        .title("Mean cadence")
        .datasource(DATASOURCE)
        .with_target(
            InfluxQL(f'SELECT mean("cadence_spm") FROM "stride" WHERE {where()}').ref_id("A")
        )
        .unit("suffix: spm")
        .decimals(0)
        .thresholds(neutral_thresholds())
        .graph_mode(common_models.BigValueGraphMode.NONE)
        .span(4)
        .height(6)
    )
    symmetry = (
        bargauge.Panel()
        .title("Left/right symmetry index")
        .description("SI = 100·(R − L)/(0.5·(R + L)) over the run; 0 = symmetric.")
        .datasource(DATASOURCE)
        .targets(
            [
                InfluxQL(symmetry_index(field, label)).ref_id(chr(ord("A") + i))
                for i, (field, label) in enumerate(SYMMETRY_FIELDS)
            ]
        )
        .unit("percent")
        .decimals(1)
        .min(-20)
        .max(20)
        .thresholds(symmetric_thresholds(SYMMETRY_BANDS_PCT))
        .display_mode(common_models.BarGaugeDisplayMode.BASIC)
        .orientation(common_models.VizOrientation.HORIZONTAL)
        .reduce_options(mean_value())
        .span(10)
        .height(6)
    )
    return builder.with_panel(strides).with_panel(cpd).with_panel(cadence).with_panel(symmetry)


def _cpd_row(builder: Dashboard) -> Dashboard:
    over_run = (
        timeseries.Panel()
        .title("Pelvic drop (CPD) over the run, with trend")
        .description(
            f"Points: each stride. Lines: moving average of {TREND_STRIDES} strides of that side."
        )
        .datasource(DATASOURCE)
        .targets(
            [
                InfluxQL(f'SELECT "pelvic_drop_deg" FROM "stride" WHERE {where()} GROUP BY "side"')
                .ref_id("A")
                .alias("$tag_side"),
                InfluxQL(
                    f'SELECT moving_average("pelvic_drop_deg", {TREND_STRIDES}) FROM "stride" '
                    f'WHERE {where()} GROUP BY "side"'
                )
                .ref_id("B")
                .alias("$tag_side trend"),
            ]
        )
        .unit("degree")
        .thresholds(band_thresholds(CPD_BANDS_DEG))
        .thresholds_style(threshold_area())
        .draw_style(common_models.GraphDrawStyle.POINTS)
        .point_size(4)
        .legend(legend_list())
        .override_by_query(
            "B",
            [
                DynamicConfigValue(id_val="custom.drawStyle", value="line"),
                DynamicConfigValue(id_val="custom.lineWidth", value=3),
            ],
        )
        .span(24)
        .height(9)
    )
    first_last = (
        bargauge.Panel()
        .title("Pelvic drop: first vs last 10 % of strides")
        .description(
            "Mean CPD of each side's first and last 10 % of strides in the time range: "
            "a rise suggests fatigue of the hip abductors."
        )
        .datasource(DATASOURCE)
        .targets(
            [
                InfluxQL(decile_mean("pelvic_drop_deg", last=False))
                .ref_id("A")
                .alias("$tag_side first 10 %"),
                InfluxQL(decile_mean("pelvic_drop_deg", last=True))
                .ref_id("B")
                .alias("$tag_side last 10 %"),
            ]
        )
        .unit("degree")
        .decimals(1)
        .min(0)
        .thresholds(band_thresholds(CPD_BANDS_DEG))
        .display_mode(common_models.BarGaugeDisplayMode.GRADIENT)
        .orientation(common_models.VizOrientation.HORIZONTAL)
        .reduce_options(mean_value())
        .span(12)
        .height(8)
    )
    distribution = (
        histogram.Panel()
        .title("Pelvic drop distribution")
        .datasource(DATASOURCE)
        .with_target(
            InfluxQL(f'SELECT "pelvic_drop_deg" FROM "stride" WHERE {where()} GROUP BY "side"')
            .ref_id("A")
            .alias("$tag_side")
        )
        .unit("degree")
        .bucket_size(1)
        .fill_opacity(40)
        .legend(legend_list())
        .span(12)
        .height(8)
    )
    return (
        builder.with_row(Row("Pelvic drop over the run"))
        .with_panel(over_run)
        .with_panel(_colour_sides(first_last))
        .with_panel(_colour_sides(distribution))
    )


def _cadence_row(builder: Dashboard) -> Dashboard:
    cadence = (
        timeseries.Panel()
        .title("Cadence")
        .datasource(DATASOURCE)
        .with_target(
            InfluxQL(
                f'SELECT mean("cadence_spm") AS "cadence" FROM "stride" WHERE {where()} '
                "GROUP BY time($__interval) fill(none)"
            ).ref_id("A")
        )
        .interval("5s")
        .max_data_points(400)
        .unit("suffix: spm")
        .legend(legend_list())
        .span(12)
        .height(8)
    )
    detected = (
        timeseries.Panel()
        .title("Detected strides per minute")
        .description(
            "Data quality: strides found per minute and side; a dip while running means "
            "strides were dropped (gap, turn, low confidence)."
        )
        .datasource(DATASOURCE)
        .with_target(
            InfluxQL(
                f'SELECT count("stride_time_s") * 60000 / $__interval_ms FROM "stride" '
                f'WHERE {where()} GROUP BY time($__interval), "side" fill(0)'
            )
            .ref_id("A")
            .alias("$tag_side")
        )
        .interval("30s")
        .max_data_points(200)
        .unit("short")
        .legend(legend_list())
        .span(12)
        .height(8)
    )
    adduction = (
        timeseries.Panel()
        .title("Hip and thigh adduction peaks per stride")
        .description("Peak stance-leg adduction during stance, degrees.")
        .datasource(DATASOURCE)
        .with_target(
            InfluxQL(
                'SELECT "hip_adduction_peak_deg" AS "hip", "thigh_adduction_peak_deg" AS "thigh" '
                f'FROM "stride" WHERE {where()} GROUP BY "side"'
            )
            .ref_id("A")
            .alias("$tag_side $col")
        )
        .unit("degree")
        .draw_style(common_models.GraphDrawStyle.POINTS)
        .point_size(4)
        .legend(legend_list())
        .span(24)
        .height(8)
    )
    return (
        builder.with_row(Row("Cadence and adduction"))
        .with_panel(cadence)
        .with_panel(_colour_sides(detected))
        .with_panel(_colour_sides(adduction))
    )


def _strides_row(builder: Dashboard) -> Dashboard:
    sessions_query = (
        'SELECT count("stride_time_s") AS "strides", max("end_s") AS "duration_s" FROM "stride" '
        'WHERE "athlete" =~ /^$athlete$/ AND $timeFilter GROUP BY "session", "activity"'
    )
    pick_session = [
        {
            "title": "Review this session",
            "url": (
                f"/d/{UID}?var-athlete=${{athlete}}&var-session=${{__value.raw}}"
                "&${__url_time_range}"
            ),
        }
    ]
    sessions = (
        table.Panel()
        .title("Sessions of this athlete (click a session to review it)")
        .datasource(DATASOURCE)
        .with_target(InfluxQL(sessions_query).ref_id("A").table())
        .show_header(True)
        .override_by_name("session", [DynamicConfigValue(id_val="links", value=pick_session)])
        .span(8)
        .height(12)
    )
    # `side` and `activity` are tags; selecting them next to fields returns them as columns.
    columns = ", ".join(f'"{c}"' for c in (*STRIDE_COLUMNS, "activity"))
    strides = (
        table.Panel()
        .title("Strides (panel menu → Inspect → Data → Download CSV)")
        .description("Every stride of the session, columns as in strides.csv.")
        .datasource(DATASOURCE)
        .with_target(
            InfluxQL(f'SELECT {columns} FROM "stride" WHERE {where()}').ref_id("A").table()
        )
        .show_header(True)
        .span(16)
        .height(12)
    )
    return builder.with_row(Row("Sessions and strides")).with_panel(sessions).with_panel(strides)


def build() -> Dashboard:
    builder = (
        Dashboard(TITLE)
        .uid(UID)
        .description("Review of one recorded session: pelvic drop, symmetry, cadence, strides.")
        .tags(TAGS)
        .time("now-24h", "now")
        .refresh(False)
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .readonly()
        .link(dashboard_link("Live session", LIVE_UID))
        .with_variable(athlete_variable())
        .with_variable(session_variable())
        .with_variable(hidden_variable(DECILE_VARIABLE, decile_count_query()))
    )
    for add_row in (_summary_row, _cpd_row, _cadence_row):
        builder = add_row(builder)
    return _strides_row(builder)
