"""The session journal: every decoded sample, journaled first, crash-safe, read back fast.

Format: one SQLite database per session (`<data_dir>/<session_id>/journal.sqlite`) in WAL
mode; samples as little-endian float64 BLOBs, one row per sensor per commit; a commit at least
every 0.25 s from a background thread. Processor outputs (events, strides, angles, sensor status,
session events) and the session metadata live in the same file.

Writing (the pipeline)::

    writer = JournalWriter.create(data_dir, SessionMeta(athlete="anna", activity="run",
                                                        sensors=[SensorMeta("sacrum", ...)]))
    writer.append_block(block, time_s=sample_times)   # cheap; call from the event loop
    writer.add_strides(new_strides); writer.add_angles(chunk); writer.add_events(events)
    writer.close()                                    # or `await writer.aclose()`

Reading (export, report, analyze)::

    with JournalReader(resolve_session("20250101-", data_dir)) as reader:
        recordings = reader.recordings()              # dict[str, SensorRecording]
"""

from imu_stream.sinks.journal.catalog import (
    DATA_DIR_ENV,
    DEFAULT_DATA_DIR,
    SessionNotFoundError,
    SessionSummary,
    default_data_dir,
    list_sessions,
    resolve_session,
    sessions_table,
)
from imu_stream.sinks.journal.meta import SensorMeta, SessionEvent, SessionMeta, StatusRecord
from imu_stream.sinks.journal.reader import JournalFormatError, JournalReader, SampleStream
from imu_stream.sinks.journal.schema import JOURNAL_FILENAME
from imu_stream.sinks.journal.writer import JournalError, JournalStats, JournalWriter

__all__ = [
    "DATA_DIR_ENV",
    "DEFAULT_DATA_DIR",
    "JOURNAL_FILENAME",
    "JournalError",
    "JournalFormatError",
    "JournalReader",
    "JournalStats",
    "JournalWriter",
    "SampleStream",
    "SensorMeta",
    "SessionEvent",
    "SessionMeta",
    "SessionNotFoundError",
    "SessionSummary",
    "StatusRecord",
    "default_data_dir",
    "list_sessions",
    "resolve_session",
    "sessions_table",
]
