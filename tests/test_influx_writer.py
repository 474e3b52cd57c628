"""InfluxWriter against the real influxd: DESIGN.md §5 schema read back with InfluxQL, bad lines,
credentials, and a spool left by one writer replayed by the next."""

from __future__ import annotations

import asyncio
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from imu_stream.records import (
    ANGLE_COLUMNS,
    STRIDE_METRIC_COLUMNS,
    AngleSeries,
    Stride,
)
from imu_stream.sinks.influx import InfluxConfig, InfluxWriter
from imu_stream.sinks.influx_schema import SeriesTags
from imu_stream.sinks.journal.meta import SessionEvent, StatusRecord
from tests.conftest import require_server
from tests.servers import InfluxServer, find_influxd, free_port

pytestmark = pytest.mark.servers

START_UNIX_S = 1_700_000_000.0
TAGS = SeriesTags(
    athlete="Ann Lee", session="20250101-run,1", activity="run", start_unix_s=START_UNIX_S
)


def make_strides(n: int, seed: int) -> list[Stride]:
    """Plausible running strides, alternating sides, some metrics missing (NaN)."""
    rng = np.random.default_rng(seed)
    strides = []
    t = 3.0
    for i in range(n):
        stride_time = float(rng.uniform(0.65, 0.8))
        stance = stride_time * float(rng.uniform(0.35, 0.45))
        strides.append(
            Stride(
                start_s=t,
                end_s=t + stride_time,
                side="left" if i % 2 == 0 else "right",
                stride_time_s=stride_time,
                stance_time_s=stance,
                swing_time_s=stride_time - stance,
                cadence_spm=120.0 / stride_time,
                pelvic_drop_deg=float(rng.normal(5.0, 1.5)),
                pelvic_obliquity_rom_deg=float(rng.normal(9.0, 2.0)),
                hip_adduction_peak_deg=float(rng.normal(13.0, 3.0)) if i % 7 else math.nan,
                thigh_adduction_peak_deg=float(rng.normal(8.0, 2.0)),
                knee_abduction_peak_deg=math.nan,  # no shank sensors
                quality=int(rng.choice([0, 0, 0, 1, 2])),
            )
        )
        t += stride_time / 2
    return strides


def config(influxd: InfluxServer, db: str, **overrides: Any) -> InfluxConfig:
    base: dict[str, Any] = {
        "url": influxd.url,
        "database": db,
        "flush_interval_s": 0.1,
        "backoff_initial_s": 0.05,
        "backoff_max_s": 0.5,
    }
    base.update(overrides)
    return InfluxConfig(**base)


def series(result: dict[str, Any]) -> list[dict[str, Any]]:
    return list(result["results"][0].get("series", []))


def rows_as_dicts(result: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for s in series(result):
        cols = s["columns"]
        for values in s["values"]:
            out.append(dict(zip(cols, values, strict=True)))
    return out


async def write_all(cfg: InfluxConfig, *payloads: bytes) -> InfluxWriter:
    async with InfluxWriter(cfg) as writer:
        for payload in payloads:
            writer.write(payload)
        assert await writer.flush(timeout_s=20.0)
    return writer


def test_strides_read_back_equal_with_every_tag_and_field(
    influxd: InfluxServer, influx_db: str
) -> None:
    strides = make_strides(60, seed=3)

    async def run() -> None:
        async with InfluxWriter(config(influxd, influx_db)) as writer:
            writer.write_strides(strides[:25], TAGS)
            writer.write_strides(strides[25:], TAGS)
            assert await writer.flush(timeout_s=20.0)

    asyncio.run(run())
    tag_keys = {
        v[0]
        for s in series(influxd.query("SHOW TAG KEYS FROM stride", influx_db))
        for v in s["values"]
    }
    assert tag_keys == {"athlete", "session", "side", "activity"}
    field_types = {
        v[0]: v[1]
        for s in series(influxd.query("SHOW FIELD KEYS FROM stride", influx_db))
        for v in s["values"]
    }
    written = {c for c in STRIDE_METRIC_COLUMNS if c != "knee_abduction_peak_deg"}
    assert set(field_types) == written  # knee: all NaN, never written
    assert field_types["quality"] == "integer"
    assert {field_types[c] for c in written - {"quality"}} == {"float"}

    rows = rows_as_dicts(influxd.query("SELECT * FROM stride ORDER BY time", influx_db))
    assert len(rows) == len(strides)
    for stride, row in zip(strides, rows, strict=True):
        assert row["time"] == round((START_UNIX_S + stride.start_s) * 1000)
        assert (row["athlete"], row["session"], row["activity"], row["side"]) == (
            TAGS.athlete,
            TAGS.session,
            TAGS.activity,
            stride.side,
        )
        for column in written:
            expected = getattr(stride, column)
            if isinstance(expected, float) and math.isnan(expected):
                assert row[column] is None, column
            else:
                assert row[column] == expected, column  # exact: shortest repr round trip
    left = influxd.query("SELECT count(pelvic_drop_deg) FROM stride WHERE side = 'left'", influx_db)
    assert series(left)[0]["values"][0][1] == sum(s.side == "left" for s in strides)


def test_angles_are_downsampled_to_50_hz(influxd: InfluxServer, influx_db: str) -> None:
    rate = 200.0
    t = np.arange(0, 10.0, 1 / rate)
    rng = np.random.default_rng(5)
    columns = {c: rng.normal(0, 8, t.size) for c in ANGLE_COLUMNS[1:]}
    columns["hip_adduction_left_deg"][100:140] = np.nan  # a gap in one column

    async def run() -> None:
        async with InfluxWriter(config(influxd, influx_db)) as writer:
            # Fed in live-sized chunks, as the online processor does.
            for start in range(0, t.size, 37):
                chunk = slice(start, start + 37)
                writer.write_angles(
                    AngleSeries(t[chunk], {k: v[chunk] for k, v in columns.items()}), TAGS
                )
            assert await writer.flush(timeout_s=20.0)

    asyncio.run(run())
    rows = rows_as_dicts(influxd.query("SELECT * FROM angles ORDER BY time", influx_db))
    stamps = np.array([r["time"] for r in rows])
    assert np.diff(stamps).min() >= 5  # ms; distinct points
    assert 500 <= len(rows) <= 500 + t.size // 37  # ≤ 50 Hz (+1 per chunk boundary at most)
    index = np.rint((stamps - START_UNIX_S * 1000) / 1000 * rate).astype(int)
    for name, values in columns.items():
        got = np.array([np.nan if r[name] is None else r[name] for r in rows])
        want = values[index]
        assert np.array_equal(np.isnan(got), np.isnan(want)), name
        ok = ~np.isnan(want)
        assert np.max(np.abs(got[ok] - want[ok])) <= 0.5e-4 + 1e-9, name
    assert {r["athlete"] for r in rows} == {TAGS.athlete}


def test_sensor_status_and_session_events(influxd: InfluxServer, influx_db: str) -> None:
    status = [
        StatusRecord(
            time_s=float(i),
            location=loc,
            fields={
                "battery_pct": 90.0 - i if loc != "right_thigh" else None,
                "packet_loss_pct": 0.5 * i,
                "rate_hz": 208.0,
                "connected": i != 3,
                "clock_offset_ms": -1.25,
            },
        )
        for i in range(5)
        for loc in ("sacrum", "left_thigh", "right_thigh")
    ]
    events = [
        SessionEvent(0.0, "start", "3 sensors"),
        SessionEvent(0.0, "calibrated", 'standing 5 s, "good"'),
        SessionEvent(42.5, "gap", "left_thigh 1.2 s"),
        SessionEvent(60.0, "stop"),
    ]

    async def run() -> None:
        async with InfluxWriter(config(influxd, influx_db)) as writer:
            writer.write_status(status, TAGS)
            writer.write_session_events(events, TAGS)
            assert await writer.flush(timeout_s=20.0)

    asyncio.run(run())
    field_types = {
        v[0]: v[1]
        for s in series(influxd.query("SHOW FIELD KEYS FROM sensor", influx_db))
        for v in s["values"]
    }
    assert field_types == {
        "battery_pct": "float",
        "packet_loss_pct": "float",
        "rate_hz": "float",
        "connected": "integer",
        "clock_offset_ms": "float",
    }
    rows = rows_as_dicts(influxd.query("SELECT * FROM sensor", influx_db))
    assert len(rows) == len(status)
    by_key = {(r["location"], r["time"]): r for r in rows}
    for rec in status:
        row = by_key[(rec.location, round((START_UNIX_S + rec.time_s) * 1000))]
        assert row["connected"] == int(bool(rec.fields["connected"]))
        assert row["battery_pct"] == rec.fields["battery_pct"]
        assert row["packet_loss_pct"] == rec.fields["packet_loss_pct"]
        assert (row["athlete"], row["session"]) == (TAGS.athlete, TAGS.session)
    ev_rows = rows_as_dicts(influxd.query("SELECT * FROM session_event ORDER BY time", influx_db))
    assert [(r["event"], r["detail"]) for r in ev_rows] == [(e.event, e.detail) for e in events]
    assert ev_rows[1]["time"] == ev_rows[0]["time"] + 1  # same instant: kept apart by 1 ms


def test_bad_lines_are_logged_and_do_not_block_the_rest(
    influxd: InfluxServer, influx_db: str, caplog: pytest.LogCaptureFixture
) -> None:
    good = [f"m,run=1 v={i}.5 {1_700_000_000_000 + i}\n".encode() for i in range(30)]
    unparsable = b"m,run=1 v=oops 1700000000500\n"
    type_conflict = b"m,run=1 v=7i 1700000000600\n"  # v is a float field
    caplog.set_level(logging.ERROR, logger="imu_stream.sinks.influx")

    async def run() -> InfluxWriter:
        cfg = config(influxd, influx_db, batch_lines=10)
        async with InfluxWriter(cfg) as writer:
            writer.write(b"".join(good[:12]) + unparsable + b"".join(good[12:20]))
            writer.write(type_conflict + b"".join(good[20:]))
            assert await writer.flush(timeout_s=20.0)
        return writer

    writer = asyncio.run(run())
    count = series(influxd.query("SELECT count(v) FROM m", influx_db))[0]["values"][0][1]
    assert count == len(good)
    assert writer.stats.rejections == 2
    assert unparsable.decode().strip() in caplog.text
    assert 'input field \\"v\\"' in caplog.text or 'input field "v"' in caplog.text
    assert unparsable.decode().strip() in writer.stats.rejected_lines


def test_type_conflict_inside_one_batch_is_bisected(influxd: InfluxServer, influx_db: str) -> None:
    # In one fresh batch InfluxDB refuses every line when two disagree on a field's type.
    lines = [f"q,s=a n={i}i {1_700_000_000_000 + i}\n".encode() for i in range(40)]
    lines[17] = b"q,s=a n=1.5 1700000000017\n"
    writer = asyncio.run(write_all(config(influxd, influx_db, batch_lines=100), b"".join(lines)))
    count = series(influxd.query("SELECT count(n) FROM q", influx_db))[0]["values"][0][1]
    assert count == 39
    assert writer.stats.rejections >= 1


def test_credentials_user_password_and_basic(tmp_path: Path) -> None:
    binary = find_influxd()
    if binary is None:
        require_server("influxd", "binary not found")
        return
    folder = tmp_path / "auth"
    folder.mkdir()
    server = InfluxServer(binary, folder, auth_enabled=True)
    try:
        server.start()
    except RuntimeError as exc:
        require_server("influxd (auth)", str(exc))
    try:
        server.query("CREATE USER admin WITH PASSWORD 's3cret' WITH ALL PRIVILEGES", method="POST")
        good = b"a v=1 1700000000000\n"

        async def run(**auth: Any) -> InfluxWriter:
            cfg = config(server, "secured", create_database=True, **auth)
            writer = InfluxWriter(cfg)
            await writer.start()
            writer.write(good)
            await writer.flush(timeout_s=1.5)
            await writer.close(timeout_s=0.1)
            return writer

        params = asyncio.run(run(username="admin", password="s3cret"))
        assert params.stats.lines_written == 1
        basic = asyncio.run(run(username="admin", password="s3cret", basic_auth=True))
        assert basic.stats.lines_written == 1
        in_url = asyncio.run(run(url=server.url.replace("//", "//admin:s3cret@")))
        assert in_url.stats.lines_written == 1
        wrong = asyncio.run(run(username="admin", password="nope"))
        assert wrong.stats.lines_written == 0
        assert "401" in wrong.stats.last_error or "authorization" in wrong.stats.last_error
        assert wrong.stats.retries >= 1
        result = server.query("SELECT count(v) FROM a", "secured", auth=("admin", "s3cret"))
        assert series(result)[0]["values"][0][1] == 1  # three writes of one point: one point
    finally:
        server.stop()


def test_spool_left_while_unreachable_is_replayed_by_the_next_writer(
    influxd: InfluxServer, influx_db: str, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    strides = make_strides(40, seed=11)
    nowhere = f"http://127.0.0.1:{free_port()}"  # nothing listens there

    async def offline() -> InfluxWriter:
        cfg = config(influxd, influx_db, url=nowhere, spool_dir=spool, batch_lines=7)
        writer = InfluxWriter(cfg)
        await writer.start()
        writer.write_strides(strides, TAGS)
        assert not await writer.flush(timeout_s=0.5)
        await writer.close(timeout_s=0.1)
        return writer

    first = asyncio.run(offline())
    assert first.stats.lines_written == 0 and not first.stats.connected
    files = sorted(p.name for p in spool.iterdir())
    assert len(files) == 6  # 40 lines in batches of 7, all kept on disk

    replayer = asyncio.run(write_all(config(influxd, influx_db, spool_dir=spool)))
    assert replayer.stats.lines_written == 40
    assert not list(spool.iterdir())
    rows = rows_as_dicts(influxd.query("SELECT * FROM stride ORDER BY time", influx_db))
    assert [r["pelvic_drop_deg"] for r in rows] == [s.pelvic_drop_deg for s in strides]


def test_config_from_env_and_mapping(tmp_path: Path) -> None:
    cfg = InfluxConfig.from_env(
        {
            "IMU_STREAM_INFLUX_URL": "http://u:p@127.0.0.1:9999",
            "IMU_STREAM_INFLUX_DB": "clinic",
            "IMU_STREAM_INFLUX_CREATE_DB": "true",
            "IMU_STREAM_INFLUX_SPOOL_DIR": str(tmp_path),
        }
    )
    assert (cfg.url, cfg.database, cfg.username, cfg.password) == (
        "http://127.0.0.1:9999",
        "clinic",
        "u",
        "p",
    )
    assert cfg.create_database is True and cfg.spool_dir == tmp_path
    toml_like = InfluxConfig.from_mapping({"db": "other", "batch_lines": "100"}, base=cfg)
    assert (toml_like.database, toml_like.batch_lines, toml_like.url) == ("other", 100, cfg.url)
    with pytest.raises(ValueError):
        InfluxConfig.from_mapping({"no_such_setting": 1})
    with pytest.raises(ValueError):
        InfluxConfig(url="udp://127.0.0.1:8089")


def test_full_batches_go_at_once_and_the_rest_within_the_interval(
    influxd: InfluxServer, influx_db: str
) -> None:
    lines = b"".join(f"b v={i} {1_700_000_000_000 + i}\n".encode() for i in range(250))

    async def run() -> tuple[float, float, InfluxWriter]:
        cfg = config(influxd, influx_db, batch_lines=100, flush_interval_s=1.0)
        loop = asyncio.get_running_loop()
        async with InfluxWriter(cfg) as writer:
            await asyncio.sleep(0.05)
            t0 = loop.time()
            writer.write(lines)
            while writer.stats.batches_sent < 2:
                await asyncio.sleep(0.005)
            full = loop.time() - t0
            assert writer.stats.lines_written == 200  # two full batches, the rest waits
            while writer.stats.batches_sent < 3:
                await asyncio.sleep(0.005)
            rest = loop.time() - t0
        return full, rest, writer

    full, rest, writer = asyncio.run(run())
    assert full < 0.5 <= rest < 1.5
    assert writer.stats.lines_written == 250 and writer.stats.batches_sent == 3
