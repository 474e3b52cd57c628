"""`imu-stream export`: a journaled session → the session folder of DESIGN.md §4 + analysis.

CSV (default): `<location>.csv` in SI units via `session_io`, `session.toml` (with the journal's
metadata appended), then `analyze` run on the folder exactly as `imu-stream analyze` would read
it, so re-analysing the export reproduces its `strides.csv`. Parquet: the same tables as
`.parquet` files (float64 kept exactly), `session.toml` and `summary.json` as they are.
The live outputs the journal holds, if any, are exported beside them as `live_strides.*` and
`live_events.*` for comparison with the batch analysis.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from imu_stream.records import (
    EVENT_COLUMNS,
    MAG_COLUMNS,
    RAW_COLUMNS,
    STRIDE_COLUMNS,
    GaitEvent,
    SensorRecording,
    Stride,
)
from imu_stream.session_io import (
    SessionFormatError,
    read_session_dir,
    read_session_info,
    write_events_csv,
    write_session_dir,
    write_strides_csv,
)
from imu_stream.sinks.journal import JournalReader
from imu_stream.sinks.toml_text import toml_lines

FORMATS = ("csv", "parquet")


@dataclass(slots=True)
class ExportResult:
    out_dir: Path
    files: list[Path] = field(default_factory=list)
    samples: dict[str, int] = field(default_factory=dict)
    n_strides: int | None = None  # from the batch analysis; None when it was skipped
    n_live_strides: int = 0
    analysis_error: str | None = None


def journal_metadata_toml(reader: JournalReader) -> list[str]:
    """Lines appended to session.toml: what the journal knows beyond DESIGN.md §4's keys."""
    meta = reader.meta
    sensors: dict[str, Any] = {}
    for s in meta.sensors:
        sensors[s.location] = {
            "device": s.device,
            "address": s.address or None,
            "firmware": s.firmware or None,
            "rate_hz": s.rate_hz,
            "acc_range_g": s.acc_range_g,
            "gyro_range_dps": s.gyro_range_dps,
            **s.extra,
        }
    values: dict[str, object] = {
        "session_id": reader.session_id,
        "start_time_utc": meta.start_time.isoformat(timespec="milliseconds"),
        "start_unix_s": meta.start_unix_s,
        "software_version": meta.software_version,
        "source": meta.source or None,
        "complete": reader.is_closed,
        "sensors": sensors,
        "calibration": meta.calibration,
    }
    return ["", "# from the session journal", *toml_lines(values)]


def _parquet() -> Any:
    try:
        import pyarrow as pa
        import pyarrow.csv as pa_csv
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise SessionFormatError(
            "parquet export needs pyarrow: pip install 'imu-stream[parquet]'"
        ) from exc
    return pa, pa_csv, pq


def _write_sensor_parquet(path: Path, rec: SensorRecording) -> None:
    pa, _, pq = _parquet()
    columns: dict[str, np.ndarray] = {"time_s": rec.time_s}
    for k, name in enumerate(RAW_COLUMNS[1:4]):
        columns[name] = rec.acc[:, k]
    for k, name in enumerate(RAW_COLUMNS[4:7]):
        columns[name] = rec.gyr[:, k]
    if rec.mag is not None:
        for k, name in enumerate(MAG_COLUMNS):
            columns[name] = rec.mag[:, k]
    pq.write_table(pa.table(columns), path)


def _rows_parquet(
    path: Path, columns: tuple[str, ...], rows: Sequence[Mapping[str, object]]
) -> None:
    pa, _, pq = _parquet()
    pq.write_table(pa.table({c: [r[c] for r in rows] for c in columns}), path)


def _csv_dir_to_parquet(src: Path, dst: Path) -> list[Path]:
    """Convert every CSV of `src` to Parquet in `dst`; copy everything else as it is."""
    _, pa_csv, pq = _parquet()
    written = []
    for path in sorted(src.iterdir()):
        if path.suffix == ".csv":
            target = dst / f"{path.stem}.parquet"
            pq.write_table(pa_csv.read_csv(path), target)
        else:
            target = dst / path.name
            shutil.copyfile(path, target)
        written.append(target)
    return written


def _write_live_outputs(
    out_dir: Path, fmt: str, strides: list[Stride], events: list[GaitEvent]
) -> list[Path]:
    written = []
    if strides:
        path = out_dir / f"live_strides.{fmt}"
        if fmt == "csv":
            write_strides_csv(path, strides)
        else:
            _rows_parquet(path, STRIDE_COLUMNS, [s.as_row() for s in strides])
        written.append(path)
    if events:
        path = out_dir / f"live_events.{fmt}"
        if fmt == "csv":
            write_events_csv(path, events)
        else:
            rows = [{"time_s": e.time_s, "side": e.side, "event": e.event} for e in events]
            _rows_parquet(path, EVENT_COLUMNS, rows)
        written.append(path)
    return written


def export_session(
    reader: JournalReader, out_dir: Path, fmt: str = "csv", *, analyze: bool = True
) -> ExportResult:
    """Write the session folder (+ analysis unless `analyze=False`) into `out_dir`.

    Raises SessionFormatError (one-line message) when there is nothing usable to export;
    an analysis failure after the raw files are written is reported in `analysis_error`.
    """
    if fmt not in FORMATS:
        raise SessionFormatError(f"unknown export format {fmt!r} (use {' or '.join(FORMATS)})")
    if fmt == "parquet":
        _parquet()  # fail before writing anything
    recordings = reader.recordings()
    if not recordings:
        raise SessionFormatError(
            f"session {reader.session_id} has no sensor with accelerometer and gyroscope samples"
        )
    info = reader.meta.to_info()
    out_dir.mkdir(parents=True, exist_ok=True)
    result = ExportResult(out_dir, samples={k: r.n_samples for k, r in recordings.items()})
    if fmt == "csv":
        write_session_dir(out_dir, recordings, info)
        result.files += [out_dir / f"{loc}.csv" for loc in recordings]
    else:
        write_session_dir(out_dir, {}, info)
        for loc, rec in recordings.items():
            _write_sensor_parquet(out_dir / f"{loc}.parquet", rec)
            result.files.append(out_dir / f"{loc}.parquet")
    toml_path = out_dir / "session.toml"
    with toml_path.open("a") as fh:
        fh.write("\n".join(journal_metadata_toml(reader)) + "\n")
    result.files.append(toml_path)
    live_strides = reader.strides()
    result.n_live_strides = len(live_strides)
    result.files += _write_live_outputs(out_dir, fmt, live_strides, reader.events())
    if analyze:
        try:
            result.n_strides, files = _analyze_into(out_dir, fmt, recordings)
            result.files += files
        except (SessionFormatError, ValueError) as exc:
            result.analysis_error = str(exc)
    return result


def _analyze_into(
    out_dir: Path, fmt: str, recordings: dict[str, SensorRecording]
) -> tuple[int, list[Path]]:
    from imu_stream.analyze import analyze_session, write_analysis

    if fmt == "csv":
        # Analyse what was written, as `imu-stream analyze OUT_DIR` reads it: same numbers.
        info, written = read_session_dir(out_dir)
        result = analyze_session(written, info)
        write_analysis(result, out_dir)
        names = ("events.csv", "strides.csv", "angles.csv", "summary.json")
        return len(result.strides), [out_dir / n for n in names if (out_dir / n).exists()]
    result = analyze_session(recordings, read_session_info(out_dir))
    with tempfile.TemporaryDirectory() as tmp:
        write_analysis(result, Path(tmp))
        return len(result.strides), _csv_dir_to_parquet(Path(tmp), out_dir)
