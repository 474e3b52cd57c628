"""What crosses the MQTT bus: topic layout, payload formats (version 1) and session sharding.

Topics (DESIGN.md §6), under a configurable prefix (default ``imu-stream/v1``)::

    {prefix}/{athlete}/{session}/raw/{location}     binary raw block (below)        QoS 0
    {prefix}/{athlete}/{session}/stride             JSON stride                     QoS 1
    {prefix}/{athlete}/{session}/event              JSON gait or session event      QoS 1
    {prefix}/{athlete}/{session}/angles             JSON angle chunk                QoS 0
    {prefix}/{athlete}/{session}/status/{location}  JSON sensor status, retained    QoS 1
    {prefix}/{athlete}/{session}/info               JSON session metadata, retained QoS 1

Athlete, session and location are single topic levels: `%`, `/`, `+`, `#` and NUL in them are
percent-encoded (`%25`, `%2F`, `%2B`, `%23`, `%00`) and decoded again by `parse_topic`.

Raw block, binary format version 1 (all little-endian)::

    offset size type     field
    0      4    bytes    magic b"IMUB"
    4      1    uint8    format version = 1
    5      1    uint8    header size in bytes (48 in v1; readers skip anything beyond 48)
    6      2    uint16   flags: bit i set = array i present, i over RAW_ARRAYS_V1
                         (0 acc, 1 gyro, 2 mag, 3 quaternion, 4 euler_deg, 5 gravity,
                         6 linear_acc); bit 15 = per-sample session times present
    8      4    uint32   n, samples in the block
    12     4    uint32   seq, block counter per sensor (wraps at 2^32; gaps = lost blocks)
    16     8    float64  device timestamp of the first sample, ms (NaN = none)
    24     8    float64  host receive time on the session clock, s (NaN = none)
    32     1    uint8    L, bytes of the location (UTF-8)
    33     1    uint8    K, bytes of the kind (UTF-8)
    34     1    uint8    R, bytes of the resource (UTF-8, 0 = none)
    35     13   -        reserved, zero
    48     L+K+R         location, kind, resource
    then   8n   float64  session-clock time of each sample, s (only with flag bit 15)
    then   4·n·w float32 each present array in bit order, row-major (n, w), w = 3 (4 for
                         quaternion w,x,y,z); units of DESIGN.md §3 (m/s², deg/s, µT, deg)

A reader rejects another magic, a version other than 1 and a size that does not match.
Arrays travel as float32 (sensor data are 16-bit), so decode → encode is byte-exact.

JSON payloads (UTF-8, one object, `"v": 1`; NaN is sent as null):

- stride: ``{"v": 1, <every strides.csv column>}`` (`quality` an integer, `side` a string).
- event: gait event ``{"v": 1, "type": "gait", "time_s", "side", "event": "IC"|"FC"}`` or
  session event ``{"v": 1, "type": "session", "time_s", "event", "detail"}``.
- status: ``{"v": 1, "time_s", "location", "battery_pct", "packet_loss_pct", "rate_hz",
  "connected", "clock_offset_ms"}`` (the keys known at the time).
- angles: ``{"v": 1, "time_s": [...], "columns": {"pelvic_obliquity_deg": [...], ...}}``.
- info: ``{"v": 1, "meta": {<SessionMeta fields>}}`` (athlete, activity, session_id,
  start_unix_s = wall clock of session time 0, sensors, …).

Sharding: a session belongs to shard ``int.from_bytes(sha1(session_id UTF-8)[:8], "big") % N``
(`shard_of`), the same on every machine and Python version, so N processors split sessions
without coordination and each session's stream stays on one processor.
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from imu_stream.records import (
    STRIDE_COLUMNS,
    AngleSeries,
    FloatArray,
    GaitEvent,
    SampleBlock,
    Stride,
)
from imu_stream.sinks.journal.meta import SessionEvent, SessionMeta, StatusRecord

DEFAULT_PREFIX = "imu-stream/v1"
PAYLOAD_VERSION = 1

RAW_MAGIC = b"IMUB"
RAW_VERSION = 1
# Format v1's array order and widths: part of the wire format, never reorder.
RAW_ARRAYS_V1: tuple[tuple[str, int], ...] = (
    ("acc", 3),
    ("gyro", 3),
    ("mag", 3),
    ("quaternion", 4),
    ("euler_deg", 3),
    ("gravity", 3),
    ("linear_acc", 3),
)
RAW_FLAG_TIME = 1 << 15
_HEADER = struct.Struct("<4sBBHIIddBBB13x")
RAW_HEADER_SIZE = _HEADER.size  # 48

TOPIC_KINDS = ("raw", "stride", "event", "angles", "status", "info")
_LEVEL_ESCAPES = (("%", "%25"), ("/", "%2F"), ("+", "%2B"), ("#", "%23"), ("\x00", "%00"))


class WireFormatError(ValueError):
    """A payload that is not a valid version-1 message."""


# --- topics ------------------------------------------------------------------------------------


def quote_level(text: str) -> str:
    """One topic level: escape the characters MQTT gives a meaning to."""
    if not text:
        raise ValueError("topic levels must not be empty")
    for char, code in _LEVEL_ESCAPES:
        text = text.replace(char, code)
    return text


def unquote_level(text: str) -> str:
    for char, code in reversed(_LEVEL_ESCAPES):
        text = text.replace(code, char)
    return text


@dataclass(frozen=True, slots=True)
class TopicParts:
    athlete: str
    session: str
    kind: str  # one of TOPIC_KINDS
    location: str | None = None  # raw and status only


@dataclass(frozen=True, slots=True)
class Topics:
    """Topic names under one prefix."""

    prefix: str = DEFAULT_PREFIX

    def session_base(self, athlete: str, session: str) -> str:
        return f"{self.prefix.rstrip('/')}/{quote_level(athlete)}/{quote_level(session)}"

    def topic(self, athlete: str, session: str, kind: str, location: str | None = None) -> str:
        if kind not in TOPIC_KINDS:
            raise ValueError(f"unknown topic kind {kind!r}")
        base = f"{self.session_base(athlete, session)}/{kind}"
        if kind in ("raw", "status"):
            if location is None:
                raise ValueError(f"{kind} topics need a location")
            return f"{base}/{quote_level(location)}"
        return base

    def subscription(self, kind: str) -> str:
        """Wildcard filter for one kind over all athletes and sessions."""
        suffix = "/+" if kind in ("raw", "status") else ""
        return f"{self.prefix.rstrip('/')}/+/+/{kind}{suffix}"

    def parse(self, topic: str) -> TopicParts | None:
        """The parts of a topic under this prefix, or None for anything else."""
        head = self.prefix.rstrip("/") + "/"
        if not topic.startswith(head):
            return None
        levels = topic[len(head) :].split("/")
        if len(levels) < 3 or levels[2] not in TOPIC_KINDS:
            return None
        kind = levels[2]
        with_location = kind in ("raw", "status")
        if len(levels) != (4 if with_location else 3):
            return None
        return TopicParts(
            athlete=unquote_level(levels[0]),
            session=unquote_level(levels[1]),
            kind=kind,
            location=unquote_level(levels[3]) if with_location else None,
        )


def shard_of(session_id: str, n_shards: int) -> int:
    """Shard (0 … n_shards − 1) of a session: sha1 of its id, first 8 bytes, big-endian, mod N."""
    if n_shards < 1:
        raise ValueError("n_shards must be ≥ 1")
    digest = hashlib.sha1(session_id.encode("utf-8"), usedforsecurity=False).digest()
    return int.from_bytes(digest[:8], "big") % n_shards


# --- raw blocks (binary) -----------------------------------------------------------------------


@dataclass(slots=True)
class RawBlock:
    """A decoded raw-block message: the samples plus the bus-level counters."""

    block: SampleBlock
    seq: int = 0
    time_s: FloatArray | None = None  # per-sample session-clock times when the sender knew them


def _nan_if_none(value: float | None) -> float:
    return float("nan") if value is None else float(value)


def encode_raw_block(
    block: SampleBlock,
    seq: int = 0,
    time_s: FloatArray | None = None,
    location: str | None = None,
) -> bytes:
    """Raw block format v1 (module docstring). `location` defaults to `block.location`."""
    loc = (location or block.location or "").encode()
    kind = block.kind.encode()
    resource = (block.resource or "").encode()
    if not loc:
        raise ValueError("a raw block needs a location")
    if max(len(loc), len(kind), len(resource)) > 255:
        raise ValueError("location, kind and resource are limited to 255 bytes")
    n = block.n_samples
    flags = 0
    arrays: list[bytes] = []
    for bit, (name, width) in enumerate(RAW_ARRAYS_V1):
        arr = getattr(block, name)
        if arr is None:
            continue
        data = np.ascontiguousarray(arr, dtype="<f4").reshape(-1)
        if data.shape[0] != n * width:
            raise ValueError(f"{name} has {data.shape[0]} values, expected {n}×{width}")
        flags |= 1 << bit
        arrays.append(data.tobytes())
    times = b""
    if time_s is not None:
        stamps = np.ascontiguousarray(time_s, dtype="<f8").reshape(-1)
        if stamps.shape[0] != n:
            raise ValueError(f"time_s has {stamps.shape[0]} values, expected {n}")
        flags |= RAW_FLAG_TIME
        times = stamps.tobytes()
    header = _HEADER.pack(
        RAW_MAGIC,
        RAW_VERSION,
        RAW_HEADER_SIZE,
        flags,
        n,
        seq & 0xFFFFFFFF,
        _nan_if_none(block.device_timestamp_ms),
        _nan_if_none(block.host_time_s),
        len(loc),
        len(kind),
        len(resource),
    )
    return b"".join([header, loc, kind, resource, times, *arrays])


def decode_raw_block(payload: bytes) -> RawBlock:
    """Inverse of `encode_raw_block`; arrays come back as float64 (values exact float32)."""
    if len(payload) < RAW_HEADER_SIZE:
        raise WireFormatError("raw block shorter than its header")
    magic, version, header_size, flags, n, seq, device_ms, host_s, n_loc, n_kind, n_res = (
        _HEADER.unpack_from(payload)
    )
    if magic != RAW_MAGIC:
        raise WireFormatError(f"not a raw block (magic {magic!r})")
    if version != RAW_VERSION:
        raise WireFormatError(f"raw block format version {version} (this reader knows 1)")
    if header_size < RAW_HEADER_SIZE:
        raise WireFormatError(f"raw block header size {header_size} < {RAW_HEADER_SIZE}")
    pos = header_size
    texts = []
    for length in (n_loc, n_kind, n_res):
        texts.append(payload[pos : pos + length].decode("utf-8"))
        pos += length
    location, kind, resource = texts
    present = [(name, width) for bit, (name, width) in enumerate(RAW_ARRAYS_V1) if flags >> bit & 1]
    expected = pos + (8 * n if flags & RAW_FLAG_TIME else 0) + sum(4 * n * w for _, w in present)
    if len(payload) != expected:
        raise WireFormatError(f"raw block is {len(payload)} bytes, its header says {expected}")
    time_s: FloatArray | None = None
    if flags & RAW_FLAG_TIME:
        time_s = np.frombuffer(payload, dtype="<f8", count=n, offset=pos).astype(np.float64)
        pos += 8 * n
    arrays: dict[str, FloatArray] = {}
    for name, width in present:
        values = np.frombuffer(payload, dtype="<f4", count=n * width, offset=pos)
        arrays[name] = values.astype(np.float64).reshape(n, width)
        pos += 4 * n * width
    block = SampleBlock(
        kind=kind,
        device_timestamp_ms=None if math.isnan(device_ms) else device_ms,
        host_time_s=None if math.isnan(host_s) else host_s,
        location=location,
        resource=resource or None,
        **arrays,
    )
    return RawBlock(block=block, seq=seq, time_s=time_s)


# --- JSON payloads -----------------------------------------------------------------------------


def _finite_or_none(value: Any) -> Any:
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def _dumps(obj: Mapping[str, Any]) -> bytes:
    return json.dumps(obj, allow_nan=False, separators=(",", ":")).encode()


def _loads(payload: bytes, what: str) -> dict[str, Any]:
    try:
        obj = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise WireFormatError(f"{what}: not JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise WireFormatError(f"{what}: not a JSON object")
    if obj.get("v") != PAYLOAD_VERSION:
        raise WireFormatError(f"{what}: payload version {obj.get('v')!r} (this reader knows 1)")
    return obj


def _float(value: Any) -> float:
    return float("nan") if value is None else float(value)


def encode_stride(stride: Stride) -> bytes:
    row = {c: _finite_or_none(v) for c, v in stride.as_row().items()}
    return _dumps({"v": PAYLOAD_VERSION, **row})


def decode_stride(payload: bytes) -> Stride:
    obj = _loads(payload, "stride")
    try:
        values: dict[str, Any] = {}
        for column in STRIDE_COLUMNS:
            if column == "side":
                values[column] = str(obj[column])
            elif column == "quality":
                values[column] = int(obj.get(column) or 0)
            else:
                values[column] = _float(obj.get(column))
    except (KeyError, TypeError, ValueError) as exc:
        raise WireFormatError(f"stride: {exc}") from None
    return Stride(**values)


def encode_gait_event(event: GaitEvent) -> bytes:
    return _dumps(
        {
            "v": PAYLOAD_VERSION,
            "type": "gait",
            "time_s": _finite_or_none(event.time_s),
            "side": event.side,
            "event": event.event,
        }
    )


def encode_session_event(event: SessionEvent) -> bytes:
    return _dumps(
        {
            "v": PAYLOAD_VERSION,
            "type": "session",
            "time_s": _finite_or_none(event.time_s),
            "event": event.event,
            "detail": event.detail,
        }
    )


def decode_event(payload: bytes) -> GaitEvent | SessionEvent:
    obj = _loads(payload, "event")
    try:
        if obj.get("type") == "gait":
            return GaitEvent(_float(obj["time_s"]), str(obj["side"]), str(obj["event"]))
        if obj.get("type") == "session":
            return SessionEvent(
                _float(obj["time_s"]), str(obj["event"]), str(obj.get("detail", ""))
            )
    except (KeyError, TypeError, ValueError) as exc:
        raise WireFormatError(f"event: {exc}") from None
    raise WireFormatError(f"event: unknown type {obj.get('type')!r}")


def encode_status(status: StatusRecord) -> bytes:
    fields = {k: _finite_or_none(v) for k, v in status.fields.items()}
    return _dumps(
        {
            "v": PAYLOAD_VERSION,
            "time_s": _finite_or_none(status.time_s),
            "location": status.location,
            **fields,
        }
    )


def decode_status(payload: bytes) -> StatusRecord:
    obj = _loads(payload, "status")
    try:
        time_s = _float(obj.pop("time_s"))
        location = str(obj.pop("location"))
    except (KeyError, TypeError, ValueError) as exc:
        raise WireFormatError(f"status: {exc}") from None
    obj.pop("v")
    fields = {k: (float("nan") if v is None else v) for k, v in obj.items()}
    return StatusRecord(time_s=time_s, location=location, fields=fields)


def encode_angles(series: AngleSeries) -> bytes:
    def listed(arr: FloatArray) -> list[float | None]:
        return [v if math.isfinite(v) else None for v in np.asarray(arr, dtype=float).tolist()]

    return _dumps(
        {
            "v": PAYLOAD_VERSION,
            "time_s": listed(series.time_s),
            "columns": {name: listed(series.columns[name]) for name in series.column_names()},
        }
    )


def decode_angles(payload: bytes) -> AngleSeries:
    obj = _loads(payload, "angles")

    def array(values: Any) -> FloatArray:
        return np.array([_float(v) for v in values], dtype=np.float64)

    try:
        time_s = array(obj["time_s"])
        columns = {str(k): array(v) for k, v in dict(obj.get("columns", {})).items()}
    except (KeyError, TypeError, ValueError) as exc:
        raise WireFormatError(f"angles: {exc}") from None
    if any(c.shape != time_s.shape for c in columns.values()):
        raise WireFormatError("angles: columns and time_s differ in length")
    return AngleSeries(time_s=time_s, columns=columns)


def encode_info(meta: SessionMeta) -> bytes:
    items = {k: json.loads(v) for k, v in meta.to_items().items()}
    return _dumps({"v": PAYLOAD_VERSION, "meta": items})


def decode_info(payload: bytes) -> SessionMeta:
    obj = _loads(payload, "info")
    meta = obj.get("meta")
    if not isinstance(meta, dict):
        raise WireFormatError("info: no meta object")
    try:
        return SessionMeta.from_items({k: json.dumps(v) for k, v in meta.items()})
    except (TypeError, ValueError) as exc:
        raise WireFormatError(f"info: {exc}") from None
