"""InfluxDB line protocol, encoded column-wise from numpy arrays.

One call encodes a whole table (one measurement, columns of fields, optional per-row tags) into
newline-terminated lines without building an object per point: every part of a line is laid
out in a byte matrix (rows = points, NUL where a part is absent) and the NUL bytes are dropped
at the end in one pass. Tables of a few rows (a live chunk) take a plain per-row path with the
same rules, since there the fixed cost of the matrices dominates. Rules of the v1 line protocol:

- measurement: `,` and space escaped with a backslash; tag keys, tag values and field keys: `,`,
  `=` and space escaped. Newlines (not allowed in line protocol) become spaces, NUL bytes are
  removed, a trailing backslash is dropped (it would escape the separator), and an empty tag
  value omits the tag (InfluxDB rejects empty tag values). Tags are sorted by key.
- floats: NaN and ±inf are omitted; either shortest round-trip `repr` (exact, the default) or
  fixed-point with `float_decimals` decimals (faster, trailing zeros dropped).
- integers get the `i` suffix, booleans are `true`/`false`, strings are double-quoted with `"`
  and `\\` escaped; `None` in an object column and masked entries of a numpy masked array
  are omitted.
- a line whose fields are all omitted is skipped (a point needs at least one field).
- timestamps are integers in the precision the writer declares (ms in this project).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

U8 = NDArray[np.uint8]
NUL = 0
# Up to this many rows, plain per-row formatting is faster than the byte-matrix set-up.
SMALL_TABLE_ROWS = 48
# Rows encoded per pass: bounds the byte matrix (rows × line width) to a few MB.
CHUNK_ROWS = 32_768
# |x|·10^decimals must stay below 2^53 to be an exact integer in float64.
_EXACT_INT_LIMIT = float(2**53)


def _clean(text: str) -> str:
    return text.replace("\x00", "").replace("\r", " ").replace("\n", " ")


def escape_measurement(name: str) -> str:
    return _clean(name).replace(",", "\\,").replace(" ", "\\ ")


def escape_key(text: str) -> str:
    """Escape a tag key, tag value or field key."""
    cleaned = _clean(text).rstrip("\\")
    return cleaned.replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")


def quote_string(value: str) -> str:
    """A string field value: double-quoted, `\\` and `"` escaped."""
    return '"' + _clean(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _bytes_matrix(items: Sequence[bytes], n_rows: int | None = None) -> U8:
    """Byte strings as a NUL-padded (n, width) uint8 matrix (numpy `S` pads with NUL)."""
    arr = np.array(list(items), dtype=np.bytes_)
    width = max(arr.dtype.itemsize, 1)
    if arr.dtype.itemsize == 0:
        arr = arr.astype("S1")
    out = arr.view(np.uint8).reshape(len(arr), width)
    if n_rows is not None and out.shape[0] != n_rows:
        raise ValueError("row count mismatch")
    return out


def _n_digits(values: NDArray[np.uint64]) -> NDArray[np.int64]:
    """Decimal digits of non-negative integers (1 for 0)."""
    powers = np.array([10**k for k in range(1, 20)], dtype=np.uint64)
    return (1 + np.searchsorted(powers, values, side="right")).astype(np.int64)


def _zero_padded_digits(values: NDArray[np.uint64], width: int) -> U8:
    """Exactly `width` decimal digits per value (leading zeros), values < 10**width."""
    n = values.shape[0]
    out = np.empty((n, width), dtype=np.uint8)
    if width > 9:
        # uint64 division is slow; split into a high part and 9 low digits that fit uint32.
        billion = np.uint64(10**9)
        high = values // billion
        out[:, : width - 9] = _zero_padded_digits(high, width - 9)
        out[:, width - 9 :] = _zero_padded_digits(values - high * billion, 9)
        return out
    rest = values.astype(np.uint32)
    ten = np.uint32(10)
    for k in range(width):
        quotient = rest // ten  # division by a constant is fast; `%` is not
        out[:, width - 1 - k] = (rest - quotient * ten).astype(np.uint8)
        rest = quotient
    out += 48
    return out


def _digit_matrix(values: NDArray[np.uint64], min_digits: int = 1) -> U8:
    """Right-aligned decimal digits of non-negative integers, NUL padded on the left."""
    n = values.shape[0]
    if n == 0:
        return np.zeros((0, min_digits), dtype=np.uint8)
    nd = np.maximum(_n_digits(values), min_digits)
    width = int(nd.max())
    out = _zero_padded_digits(values, width)
    if int(nd.min()) < width:
        cols = np.arange(width)[None, :]
        out[cols < (width - nd)[:, None]] = NUL
    return out


def _int_matrix(values: NDArray[np.int64], suffix: bytes = b"") -> U8:
    """Signed integers as text (optional suffix), NUL padded."""
    neg = values < 0
    # Two's-complement magnitude keeps int64 min exact.
    mag = np.where(neg, -(values + 1), values).astype(np.uint64) + neg.astype(np.uint64)
    digits = _digit_matrix(mag)
    sign = np.where(neg, ord("-"), NUL).astype(np.uint8)[:, None]
    parts = [sign, digits]
    if suffix:
        parts.append(np.broadcast_to(np.frombuffer(suffix, np.uint8), (len(values), len(suffix))))
    return np.hstack(parts)


def _float_fixed_matrix(values: NDArray[np.float64], decimals: int) -> U8:
    """Finite floats in fixed point with at most `decimals` decimals (trailing zeros dropped)."""
    scale = 10.0**decimals
    with np.errstate(over="ignore"):  # huge values overflow to inf: repr below
        scaled_f = np.rint(np.abs(values) * scale)
    too_big = scaled_f >= _EXACT_INT_LIMIT
    scaled = np.where(too_big, 0.0, scaled_f).astype(np.uint64)
    neg = (values < 0) & (scaled > 0)
    # One digit run for integer and fraction digits; at least one integer digit.
    digits = _digit_matrix(scaled, min_digits=decimals + 1)
    n, width = digits.shape
    out = np.empty((n, width + 2), dtype=np.uint8)
    out[:, 0] = np.where(neg, ord("-"), NUL)
    split = width - decimals
    out[:, 1 : split + 1] = digits[:, :split]
    if decimals > 0:
        frac = digits[:, split:]
        # Trailing zeros of the fraction are dropped (and the dot when nothing is left).
        trailing = np.logical_and.accumulate(frac[:, ::-1] == 48, axis=1)[:, ::-1]
        frac[trailing] = NUL
        out[:, split + 1] = np.where(trailing[:, 0], NUL, ord("."))
        out[:, split + 2 :] = frac
    else:
        out = out[:, : split + 1]
    if too_big.any():
        # Out of the exact fixed-point range: fall back to repr for those rows.
        idx = np.flatnonzero(too_big)
        big = _bytes_matrix([repr(float(v)).encode() for v in values[idx]])
        width_all = max(out.shape[1], big.shape[1])
        out = np.pad(out, ((0, 0), (0, width_all - out.shape[1])))
        out[idx] = NUL
        out[idx, : big.shape[1]] = big
    return out


def _float_repr_matrix(values: NDArray[np.float64]) -> U8:
    """Shortest round-trip text of finite floats (what `float.__repr__` gives)."""
    return _bytes_matrix([repr(v).encode() for v in values.tolist()])


def _field_column(
    raw: ArrayLike, n: int, float_decimals: int | None
) -> tuple[U8, NDArray[np.bool_]]:
    """(value text matrix, present mask) of one field column."""
    if isinstance(raw, np.ma.MaskedArray):
        # Masked entries are omitted: the way to leave out integers/booleans (no NaN there).
        mask = np.ma.getmaskarray(raw)
        value, present = _field_column(np.asarray(raw.data), n, float_decimals)
        return value, present & ~mask
    arr = np.asarray(raw)
    if arr.ndim == 0:
        arr = np.full(n, arr.item(), dtype=arr.dtype if arr.dtype.kind != "U" else object)
    if arr.shape != (n,):
        raise ValueError(f"field column has shape {arr.shape}, expected ({n},)")
    kind = arr.dtype.kind
    if kind == "b":
        present = np.ones(n, dtype=bool)
        words = _bytes_matrix([b"false", b"true"])
        return words[arr.astype(np.intp)], present
    if kind in "iu":
        present = np.ones(n, dtype=bool)
        return _int_matrix(arr.astype(np.int64), b"i"), present
    if kind == "f":
        values = arr.astype(np.float64)
        present = np.isfinite(values)
        safe = np.where(present, values, 0.0)
        if float_decimals is None:
            matrix = _float_repr_matrix(safe)
        else:
            matrix = _float_fixed_matrix(safe, float_decimals)
        return matrix, present
    # Strings (U/S/O): few rows in this project (events), so plain Python is fine here.
    items = arr.tolist()
    present = np.array([v is not None for v in items], dtype=bool)
    texts = [
        quote_string(v.decode() if isinstance(v, bytes) else str(v)).encode()
        if v is not None
        else b""
        for v in items
    ]
    return _bytes_matrix(texts), present


def _tag_prefixes(
    measurement: str, tags: Mapping[str, str | ArrayLike], n: int
) -> tuple[list[bytes], NDArray[np.intp]]:
    """Distinct `measurement,tag=value,... ` prefixes (trailing space included) and, per row,
    the index of its prefix. Per-row tags take few distinct values: each is rendered once."""
    head = escape_measurement(measurement)
    scalar: dict[str, str] = {}
    per_row: dict[str, NDArray[np.str_]] = {}
    for key, value in tags.items():
        if isinstance(value, str):
            scalar[key] = value
        else:
            col = np.asarray(value).astype(str)
            if col.shape != (n,):
                raise ValueError(f"tag {key!r} has shape {col.shape}, expected ({n},)")
            per_row[key] = col
    keys = sorted(tags)

    def render(values: Mapping[str, str]) -> bytes:
        pairs = [
            f"{escape_key(k)}={escape_key(values[k])}" for k in keys if escape_key(values[k]) != ""
        ]
        return (",".join([head, *pairs]) + " ").encode()

    if not per_row:
        return [render(scalar)], np.zeros(n, dtype=np.intp)
    row_keys = list(per_row)
    stacked = np.stack([per_row[k] for k in row_keys], axis=1)
    combos, inverse = np.unique(stacked, axis=0, return_inverse=True)
    rendered = [render({**scalar, **dict(zip(row_keys, combo, strict=True))}) for combo in combos]
    return rendered, inverse.reshape(-1).astype(np.intp)


def _prefix_matrix(measurement: str, tags: Mapping[str, str | ArrayLike], n: int) -> U8:
    """The prefix of every row as a byte matrix."""
    rendered, index = _tag_prefixes(measurement, tags, n)
    if len(rendered) == 1:
        line = np.frombuffer(rendered[0], dtype=np.uint8)
        return np.broadcast_to(line, (n, line.shape[0]))
    return _bytes_matrix(rendered)[index]


def _format_fixed(value: float, decimals: int) -> str:
    """One float in fixed point, the same rule as `_float_fixed_matrix`."""
    product = abs(value) * 10.0**decimals
    if not product < _EXACT_INT_LIMIT:  # also inf from an overflowing product
        return repr(value)
    scaled = round(product)  # half-even, like np.rint
    whole, frac = divmod(scaled, 10**decimals)
    frac_text = f"{frac:0{decimals}d}".rstrip("0") if decimals else ""
    text = f"{whole}.{frac_text}" if frac_text else str(whole)
    return "-" + text if value < 0 and scaled > 0 else text


def _format_column_small(raw: ArrayLike, n: int, float_decimals: int | None) -> list[str | None]:
    """Field values as text, None where omitted: the per-row path for small tables."""
    if isinstance(raw, np.ma.MaskedArray):
        mask = np.ma.getmaskarray(raw).tolist()
        texts = _format_column_small(np.asarray(raw.data), n, float_decimals)
        return [None if m else t for t, m in zip(texts, mask, strict=True)]
    arr = np.asarray(raw)
    if arr.ndim == 0:
        arr = np.full(n, arr.item(), dtype=arr.dtype if arr.dtype.kind != "U" else object)
    if arr.shape != (n,):
        raise ValueError(f"field column has shape {arr.shape}, expected ({n},)")
    kind = arr.dtype.kind
    values = arr.tolist()
    if kind == "b":
        return ["true" if v else "false" for v in values]
    if kind in "iu":
        return [f"{int(v)}i" for v in values]
    if kind == "f":
        if float_decimals is None:
            return [repr(float(v)) if math.isfinite(v) else None for v in values]
        return [_format_fixed(v, float_decimals) if math.isfinite(v) else None for v in values]
    return [
        None if v is None else quote_string(v.decode() if isinstance(v, bytes) else str(v))
        for v in values
    ]


def _encode_small(
    measurement: str,
    tags: Mapping[str, str | ArrayLike],
    fields: Mapping[str, ArrayLike],
    stamps: NDArray[np.int64],
    float_decimals: int | None,
) -> bytes:
    """Row by row: for a handful of points this beats the fixed cost of the byte matrices."""
    n = stamps.shape[0]
    rendered, index = _tag_prefixes(measurement, tags, n)
    prefixes = [r.decode() for r in rendered]
    columns = [
        (escape_key(key) + "=", _format_column_small(col, n, float_decimals))
        for key, col in fields.items()
    ]
    lines = []
    for i, (stamp, which) in enumerate(zip(stamps.tolist(), index.tolist(), strict=True)):
        pairs = [key + text for key, texts in columns if (text := texts[i]) is not None]
        if pairs:
            lines.append(f"{prefixes[which]}{','.join(pairs)} {stamp}\n")
    return "".join(lines).encode()


def _encode_chunk(
    prefix: U8,
    fields: Mapping[str, ArrayLike],
    time: NDArray[np.int64],
    float_decimals: int | None,
) -> bytes:
    n = time.shape[0]
    # (comma + "key=", value matrix, present) per field, then one table written in place.
    columns: list[tuple[U8, U8, NDArray[np.bool_]]] = []
    for key, column in fields.items():
        value, present = _field_column(column, n, float_decimals)
        name = np.frombuffer(("," + escape_key(key) + "=").encode(), dtype=np.uint8)
        columns.append((name, value, present))
    stamp = _int_matrix(time)
    width = prefix.shape[1] + sum(len(c[0]) + c[1].shape[1] for c in columns)
    width += 1 + stamp.shape[1] + 1
    table = np.empty((n, width), dtype=np.uint8)
    table[:, : prefix.shape[1]] = prefix
    pos = prefix.shape[1]
    any_before = np.zeros(n, dtype=bool)
    for name, value, present in columns:
        end = pos + len(name) + value.shape[1]
        table[:, pos : pos + len(name)] = name
        table[:, pos + len(name) : end] = value
        if not present.all():
            table[~present, pos:end] = NUL
        # The comma only separates fields: none before the first field present.
        table[:, pos] = np.where(any_before & present, ord(","), NUL)
        any_before |= present
        pos = end
    table[:, pos] = ord(" ")
    table[:, pos + 1 : pos + 1 + stamp.shape[1]] = stamp
    table[:, -1] = ord("\n")
    if not any_before.all():
        table[~any_before] = NUL  # a point needs a field: drop lines without one
    flat = table.reshape(-1)
    return flat[flat != NUL].tobytes()


def encode_lines(
    measurement: str,
    time: ArrayLike,
    fields: Mapping[str, ArrayLike],
    tags: Mapping[str, str | ArrayLike] | None = None,
    float_decimals: int | None = None,
) -> bytes:
    """Encode a table of points as line protocol (one `\\n`-terminated line per point).

    `time`: integer timestamps (n,); `fields`: name → column (n,) of float/int/bool/str
    (NaN/inf/None omitted); `tags`: name → str (same for all rows) or column (n,) of str.
    `float_decimals`: None = exact shortest repr; an integer = fixed point (faster).
    """
    stamps = np.asarray(time)
    if stamps.dtype.kind not in "iu":
        raise TypeError("timestamps must be integers (use to_epoch_ms)")
    stamps = stamps.astype(np.int64).reshape(-1)
    n = stamps.shape[0]
    if n == 0 or not fields:
        return b""
    tag_map = dict(tags or {})
    if n <= SMALL_TABLE_ROWS:
        return _encode_small(measurement, tag_map, fields, stamps, float_decimals)
    out: list[bytes] = []
    for start in range(0, n, CHUNK_ROWS):
        stop = min(start + CHUNK_ROWS, n)
        sl = slice(start, stop)
        chunk_tags = {
            k: (v if isinstance(v, str) else np.asarray(v)[sl]) for k, v in tag_map.items()
        }
        chunk_fields = {k: _slice_column(v, sl) for k, v in fields.items()}
        prefix = _prefix_matrix(measurement, chunk_tags, stop - start)
        out.append(_encode_chunk(prefix, chunk_fields, stamps[sl], float_decimals))
    return b"".join(out)


def _slice_column(column: ArrayLike, sl: slice) -> ArrayLike:
    arr = np.asanyarray(column)  # keeps a masked array's mask
    return arr if arr.ndim == 0 else arr[sl]


def count_lines(payload: bytes) -> int:
    return payload.count(b"\n")
