"""Run logs: JSON Lines, one completed run per line (schema version 2; version 1 read).

The trainer's face of the one run-log schema, defined in :mod:`estimators._runlog`
and shared with the reader (:mod:`ratebound.runs`, which ``inl`` does not
import). :func:`append_record` is the one writer, the same function as
:func:`ratebound.runs.append_run`: it validates the record with the full
schema (numpy/torch values accepted), then under an exclusive lock on the log
refuses a duplicate ``run_id`` (:class:`DuplicateRunError`) and replaces the
log atomically by its old lines plus the new one, so an interrupted or crashed
writer leaves either the old log or the new one, never a torn line, and
concurrent writers lose nothing. No lock file is left beside the log.
:func:`read_records` returns the decoded lines of a log, each validated.
"""

import os  # noqa: F401  (kept: tests patch the writer's os.replace as ``inl.runlog.os.replace``)

from estimators._runlog import (
    SCHEMA_VERSION,
    DuplicateRunError,
    RunLogError,
    check_record,
    read_records,
)
from estimators._runlog import append_run as append_record

__all__ = ["SCHEMA_VERSION", "append_record", "read_records", "check_record", "RunLogError", "DuplicateRunError"]
