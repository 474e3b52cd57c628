"""Colour bands of the live view: green / amber / red per measure, configurable.

The defaults are starting points for attention, not diagnoses (METRICS.md, "Reference values"):

- Contralateral pelvic drop (CPD): amber from 5°, red from 7°. METRICS.md anchors the scale:
  each extra 1° of CPD raised the odds of being in the injured group by about 80 % (Bramah et
  al. 2018, Am J Sports Med 46:3023), and 1° is the change the system must resolve (Bramah et
  al. 2019); the bands are two such degrees apart.
- Thigh adduction (peak in stance): amber from 13°, about the peak hip adduction of healthy
  male runners (METRICS.md), red from 17°, i.e. 4° more, the reduction in peak hip adduction a
  10 % step-rate increase produced (Bramah et al. 2019, Am J Sports Med 47:3406). Thigh
  adduction is not hip adduction (it ignores the pelvis); the hip values serve as the nearest
  published reference.
- Symmetry index |SI| = |100·(R − L) / (0.5·(R + L))|: amber from 10 %, red from 20 %; 10 % is
  the rule-of-thumb band the run report draws (`sinks/report.py`, `--si-band`).

Override in a TOML file (`imu-stream run --thresholds FILE`)::

    pelvic_drop_deg = [5.0, 7.0]          # amber, red
    thigh_adduction_peak_deg = [13.0, 17.0]
    symmetry_index_pct = [10.0, 20.0]
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Band:
    """Values below `amber` are green, from `amber` amber, from `red` red (magnitudes)."""

    amber: float
    red: float

    def __post_init__(self) -> None:
        if not (0 <= self.amber <= self.red):
            raise ValueError(f"band must have 0 ≤ amber ≤ red, not {self.amber}, {self.red}")

    def level(self, value: float) -> str:
        """ "ok" | "amber" | "red" | "none" (not a number)."""
        if not math.isfinite(value):
            return "none"
        magnitude = abs(value)
        if magnitude >= self.red:
            return "red"
        return "amber" if magnitude >= self.amber else "ok"


STYLES = {"ok": "green", "amber": "yellow", "red": "bold red", "none": "dim"}


@dataclass(frozen=True, slots=True)
class Thresholds:
    pelvic_drop_deg: Band = Band(5.0, 7.0)
    thigh_adduction_peak_deg: Band = Band(13.0, 17.0)
    symmetry_index_pct: Band = Band(10.0, 20.0)

    def style(self, measure: str, value: float) -> str:
        band: Band = getattr(self, measure)
        return STYLES[band.level(value)]

    @classmethod
    def from_toml(cls, path: Path) -> Thresholds:
        """Read `name = [amber, red]` entries; unknown names and bad values are errors."""
        try:
            data = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ValueError(f"{path}: cannot read thresholds ({exc})") from exc
        data = data.get("thresholds", data)
        known = {f.name for f in fields(cls)}
        changes: dict[str, Band] = {}
        for name, value in data.items():
            if name not in known:
                raise ValueError(f"{path}: unknown threshold {name!r} (known: {sorted(known)})")
            if not (isinstance(value, list) and len(value) == 2):
                raise ValueError(f"{path}: {name} must be [amber, red]")
            try:
                changes[name] = Band(float(value[0]), float(value[1]))
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{path}: {name}: {exc}") from exc
        return replace(cls(), **changes)
