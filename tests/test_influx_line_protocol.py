"""The vectorized line-protocol encoder against a plain per-point encoder and the real parser."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imu_stream.sinks import line_protocol
from imu_stream.sinks.line_protocol import encode_lines, escape_key, quote_string
from tests.servers import InfluxServer


def reference_line(
    measurement: str,
    tags: dict[str, str],
    fields: dict[str, object],
    stamp: int,
    decimals: int | None,
) -> str | None:
    """One point the obvious way, straight from the spec; None when it has no field."""

    def value_text(v: object) -> str | None:
        if v is None:
            return None
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int):
            return f"{v}i"
        if isinstance(v, float):
            if not math.isfinite(v):
                return None
            if decimals is None:
                return repr(v)
            # Same rounding rule as the encoder (half-even on |v|·10^d), scalar formatting.
            scaled = float(np.rint(abs(v) * 10.0**decimals))
            if scaled >= 2.0**53:
                return repr(v)
            whole, frac = divmod(int(scaled), 10**decimals)
            frac_text = f"{frac:0{decimals}d}".rstrip("0") if decimals else ""
            text = f"{whole}.{frac_text}" if frac_text else f"{whole}"
            return ("-" if v < 0 and scaled > 0 else "") + text
        return quote_string(str(v))

    pairs = [(k, value_text(v)) for k, v in fields.items()]
    present = [f"{escape_key(k)}={t}" for k, t in pairs if t is not None]
    if not present:
        return None
    head = measurement.replace(",", "\\,").replace(" ", "\\ ")
    tag_text = "".join(
        f",{escape_key(k)}={escape_key(v)}" for k, v in sorted(tags.items()) if escape_key(v)
    )
    return f"{head}{tag_text} {','.join(present)} {stamp}"


PATHS = ("byte-matrix", "per-row")


def encode_with_path(path: str, *args: Any, **kwargs: Any) -> bytes:
    """Force one of the encoder's two paths (tables of a few rows normally go per row)."""
    saved = line_protocol.SMALL_TABLE_ROWS
    line_protocol.SMALL_TABLE_ROWS = 0 if path == "byte-matrix" else 10**9
    try:
        return encode_lines(*args, **kwargs)
    finally:
        line_protocol.SMALL_TABLE_ROWS = saved


floats = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.floats(min_value=-1e4, max_value=1e4),
)


@settings(max_examples=150, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            floats,
            floats,
            st.integers(min_value=-(2**63), max_value=2**63 - 1),
            st.booleans(),
            st.sampled_from(["left", "right", "a b", "x,y=z"]),
            st.integers(min_value=0, max_value=2**62),
        ),
        min_size=1,
        max_size=40,
    ),
    decimals=st.sampled_from([None, 0, 3, 6]),
)
def test_matches_per_point_reference(
    rows: list[tuple[float, float, int, bool, str, int]], decimals: int | None
) -> None:
    a, b, q, ok, side, stamps = (list(col) for col in zip(*rows, strict=True))
    got = {
        path: encode_with_path(
            path,
            "stride data",
            np.array(stamps, dtype=np.int64),
            {
                "pelvic_drop_deg": np.array(a),
                "odd key=,": np.array(b),
                "quality": np.array(q, dtype=np.int64),
                "ok": np.array(ok),
            },
            tags={"athlete": "Ann Lee", "side": np.array(side)},
            float_decimals=decimals,
        ).decode()
        for path in PATHS
    }
    expected = [
        reference_line(
            "stride data",
            {"athlete": "Ann Lee", "side": s},
            {"pelvic_drop_deg": x, "odd key=,": y, "quality": qi, "ok": flag},
            t,
            decimals,
        )
        for x, y, qi, flag, s, t in rows
    ]
    want = "".join(line + "\n" for line in expected if line is not None)
    assert got == {path: want for path in PATHS}


@pytest.mark.parametrize("path", PATHS)
def test_lines_without_fields_are_skipped_and_nan_fields_omitted(path: str) -> None:
    out = encode_with_path(
        path,
        "angles",
        np.array([1, 2, 3]),
        {"a": np.array([np.nan, 1.0, np.nan]), "b": np.array([np.nan, np.nan, np.inf])},
        tags={"session": "s"},
    )
    assert out == b"angles,session=s a=1.0 2\n"


@pytest.mark.parametrize("path", PATHS)
def test_masked_integers_and_none_strings_are_omitted(path: str) -> None:
    out = encode_with_path(
        path,
        "sensor",
        np.array([10, 20]),
        {
            "connected": np.ma.masked_array(np.array([1, 0]), mask=[False, True]),
            "detail": np.array([None, 'say "hi"\\'], dtype=object),
        },
    )
    assert out == b'sensor connected=1i 10\nsensor detail="say \\"hi\\"\\\\" 20\n'


@pytest.mark.parametrize("path", PATHS)
def test_fixed_point_rounds_to_the_stated_decimals(path: str) -> None:
    values = np.array([0.00005, -0.00004, 2.5, 1234.56789, -7.0, 1e17])
    out = (
        encode_with_path(path, "m", np.arange(6), {"v": values}, float_decimals=4)
        .decode()
        .splitlines()
    )
    parsed = [float(line.split(" ")[1].removeprefix("v=")) for line in out]
    assert parsed[1] == 0.0 and "-" not in out[1]  # no "-0"
    assert parsed[2:5] == [2.5, 1234.5679, -7.0]
    assert parsed[5] == 1e17  # beyond the fixed-point range: exact repr instead
    assert abs(parsed[0] - 0.00005) <= 0.5e-4


@pytest.mark.parametrize("path", PATHS)
def test_empty_tag_values_are_left_out(path: str) -> None:
    out = encode_with_path(path, "m", np.array([5]), {"v": np.array([1])}, tags={"a": "", "b": "x"})
    assert out == b"m,b=x v=1i 5\n"


def test_rejects_float_timestamps() -> None:
    with pytest.raises(TypeError):
        encode_lines("m", np.array([1.5]), {"v": np.array([1.0])})


@pytest.mark.servers
def test_influxd_parses_escapes_back_to_the_original(influxd: InfluxServer, influx_db: str) -> None:
    athletes = ["Ann Lee", "a,b=c", "tab\there", "ünïcode", "end\\"]
    details = ['quote " and \\ back', "comma, equals= space", "", "é", "x"]
    values = np.array([1.25, -3.5e-7, 1e300, 0.1, 42.0])
    payload = encode_lines(
        "odd measurement,x",
        1_700_000_000_000 + np.arange(5),
        {"value": values, "detail": np.array(details, dtype=object)},
        tags={"athlete": np.array(athletes)},
    )
    influxd.write(influx_db, payload.decode())
    result = influxd.query(
        'SELECT "value", "detail", "athlete" FROM "odd measurement,x"', db=influx_db
    )
    rows = result["results"][0]["series"][0]["values"]
    assert [r[1] for r in rows] == values.tolist()
    assert [r[2] for r in rows] == details
    # A trailing backslash cannot be sent in a tag value: it is dropped.
    assert [r[3] for r in rows] == [*athletes[:4], "end"]
