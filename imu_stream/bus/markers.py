"""The session markers on the `event` topic that tie collectors and processors together.

Both are version-1 session events (`wire.encode_session_event`) with one extra key, which
readers that do not know it ignore:

- **end of session** (collector → processors), event `stop`, after the collector has handed
  every raw block to the broker: ``"last_seq": {location: seq of its last raw block}``. A
  processor finishes the session once it has seen those blocks (or after a grace period, when
  some were lost), so no sample is cut off by the marker overtaking raw blocks.
- **session processed** (processor → consumers), event `processed`, after the processor's
  final results are published: ``"strides": n, "raw_blocks_lost": k``. Consumers know that
  the session's results on the bus are complete.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from imu_stream.sinks import wire
from imu_stream.sinks.journal.meta import SessionEvent

END_EVENT = "stop"
PROCESSED_EVENT = "processed"


@dataclass(frozen=True, slots=True)
class EndOfSession:
    time_s: float
    reason: str
    last_seq: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SessionProcessed:
    time_s: float
    strides: int
    raw_blocks_lost: int


def _with(event: SessionEvent, extra: Mapping[str, Any]) -> bytes:
    obj = json.loads(wire.encode_session_event(event))
    obj.update(extra)
    return json.dumps(obj, allow_nan=False, separators=(",", ":")).encode()


def _session_event(payload: bytes, name: str) -> dict[str, Any] | None:
    try:
        obj = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(obj, dict) or obj.get("v") != wire.PAYLOAD_VERSION:
        return None
    if obj.get("type") != "session" or obj.get("event") != name:
        return None
    return obj


def _time(obj: Mapping[str, Any]) -> float:
    value = obj.get("time_s")
    return float(value) if isinstance(value, int | float) else math.nan


def encode_end(marker: EndOfSession) -> bytes:
    event = SessionEvent(marker.time_s, END_EVENT, marker.reason)
    return _with(event, {"last_seq": dict(marker.last_seq)})


def decode_end(payload: bytes) -> EndOfSession | None:
    """The end marker in an `event` payload, or None for any other event."""
    obj = _session_event(payload, END_EVENT)
    if obj is None:
        return None
    last = obj.get("last_seq")
    seqs = {str(k): int(v) for k, v in last.items()} if isinstance(last, dict) else {}
    return EndOfSession(_time(obj), str(obj.get("detail", "")), seqs)


def encode_processed(done: SessionProcessed) -> bytes:
    detail = f"{done.strides} strides, {done.raw_blocks_lost} raw blocks lost"
    event = SessionEvent(done.time_s, PROCESSED_EVENT, detail)
    return _with(event, {"strides": done.strides, "raw_blocks_lost": done.raw_blocks_lost})


def decode_processed(payload: bytes) -> SessionProcessed | None:
    obj = _session_event(payload, PROCESSED_EVENT)
    if obj is None:
        return None
    return SessionProcessed(
        _time(obj), int(obj.get("strides") or 0), int(obj.get("raw_blocks_lost") or 0)
    )
