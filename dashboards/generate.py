"""Write the Grafana dashboard JSON from the Python definitions.

    python -m dashboards.generate            # rewrite dashboards/json/*.json
    python -m dashboards.generate --check    # exit 1 if the committed JSON is out of date

The JSON is committed so Grafana can provision it without Python; a test fails when it differs
from what this module generates.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from grafana_foundation_sdk.builders.dashboard import Dashboard as DashboardBuilder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import Dashboard, RowPanel

from dashboards import live_session, run_review

JSON_DIR = Path(__file__).resolve().parent / "json"

DASHBOARDS: dict[str, Callable[[], DashboardBuilder]] = {
    "live-session.json": live_session.build,
    "run-review.json": run_review.build,
}


def _number_panels(dashboard: Dashboard) -> None:
    """Panel ids in layout order (Grafana needs them unique within a dashboard)."""
    next_id = 1
    for panel in dashboard.panels or []:
        panel.id_val = next_id
        next_id += 1
        if isinstance(panel, RowPanel):
            for child in panel.panels:
                child.id_val = next_id
                next_id += 1


def render(builder: DashboardBuilder) -> str:
    """The dashboard as stable, sorted, indented JSON text ending in a newline."""
    dashboard = builder.build()
    _number_panels(dashboard)
    text = JSONEncoder(sort_keys=True, indent=2, ensure_ascii=False).encode(dashboard)
    # Round-trip through json so the text depends on values only, never on encoder internals.
    return json.dumps(json.loads(text), sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def render_all() -> dict[str, str]:
    return {name: render(build()) for name, build in DASHBOARDS.items()}


def stale_files(out_dir: Path = JSON_DIR) -> list[str]:
    """Names of dashboard files that are missing or differ from what would be generated."""
    return [
        name
        for name, text in render_all().items()
        if not (out_dir / name).exists() or (out_dir / name).read_text(encoding="utf-8") != text
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dashboards.generate", description=__doc__)
    parser.add_argument("--out", type=Path, default=JSON_DIR, help="folder for the JSON files")
    parser.add_argument(
        "--check", action="store_true", help="only compare; exit 1 if a file is out of date"
    )
    args = parser.parse_args(argv)
    out_dir: Path = args.out
    if args.check:
        stale = stale_files(out_dir)
        for name in stale:
            print(f"out of date: {out_dir / name} (run: python -m dashboards.generate)")
        return 1 if stale else 0
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, text in render_all().items():
        (out_dir / name).write_text(text, encoding="utf-8")
        print(f"wrote {out_dir / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
