"""A small TOML writer for session.toml extras (the standard library only reads TOML)."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def toml_key(key: str) -> str:
    return key if _BARE_KEY.match(key) else json.dumps(key)


def toml_value(value: object) -> str:
    """TOML text of a scalar, list or mapping (mappings as inline tables)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, Mapping):
        items = [f"{toml_key(str(k))} = {toml_value(v)}" for k, v in value.items() if v is not None]
        return "{ " + ", ".join(items) + " }" if items else "{}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value if v is not None) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def toml_lines(values: Mapping[str, object]) -> list[str]:
    """`key = value` lines, then `[table]` sections for mapping values (TOML's required order)."""
    lines = [
        f"{toml_key(k)} = {toml_value(v)}"
        for k, v in values.items()
        if v is not None and not isinstance(v, Mapping)
    ]
    for key, table in values.items():
        if not isinstance(table, Mapping) or not table:
            continue
        scalars = {k: v for k, v in table.items() if not isinstance(v, Mapping)}
        subtables = {k: v for k, v in table.items() if isinstance(v, Mapping)}
        if scalars:
            lines += ["", f"[{toml_key(key)}]"]
            lines += [
                f"{toml_key(str(k))} = {toml_value(v)}" for k, v in scalars.items() if v is not None
            ]
        for sub, body in subtables.items():
            lines += ["", f"[{toml_key(key)}.{toml_key(str(sub))}]"]
            lines += [
                f"{toml_key(str(k))} = {toml_value(v)}" for k, v in body.items() if v is not None
            ]
    return lines
