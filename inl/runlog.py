"""Run logs: JSON Lines, one completed run per line, schema version 1.

The schema is read and validated by ``ratebound.runs`` (which ``inl`` does not
import): ``run_id`` (str) and ``n_train`` (int >= 1) are required, every other
field is optional and unknown fields are kept. Records are appended
atomically: the new file (old lines plus the new one) is written to a temporary
file in the same directory, flushed to disk and moved over the log with
:func:`os.replace`, under an advisory lock, so an interrupted or crashed writer
leaves either the old log or the new one, never a torn line.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from pathlib import Path

from estimators._files import atomic_replace

__all__ = ["SCHEMA_VERSION", "append_record", "read_records", "check_record"]

SCHEMA_VERSION = 1


def check_record(record: dict) -> dict:
    """Raise ``ValueError`` unless ``record`` has the required schema-1 fields and is finite JSON."""
    if not isinstance(record, dict):
        raise ValueError(f"record must be a dict, got {type(record).__name__}")
    if record.get("schema_version", SCHEMA_VERSION) != SCHEMA_VERSION:
        raise ValueError(f"record schema_version must be {SCHEMA_VERSION}, got {record['schema_version']!r}")
    if not isinstance(record.get("run_id"), str) or not record["run_id"]:
        raise ValueError(f"record needs a non-empty string run_id, got {record.get('run_id')!r}")
    n_train = record.get("n_train")
    if isinstance(n_train, bool) or not isinstance(n_train, int) or n_train < 1:
        raise ValueError(f"record needs an integer n_train >= 1, got {n_train!r}")
    for key, value in record.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"record field {key!r} is not finite: {value}")
    return record


def _line(record: dict) -> bytes:
    check_record(record)
    try:
        text = json.dumps(record, sort_keys=True, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"record is not finite JSON: {exc}") from None
    return (text + "\n").encode()


@contextlib.contextmanager
def _locked(path: Path):
    """An advisory exclusive lock on ``path.lock`` (POSIX); a no-op elsewhere."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - non-POSIX
        yield
        return
    with open(path.with_name(path.name + ".lock"), "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def append_record(path: str | os.PathLike, record: dict) -> Path:
    """Append ``record`` as one JSON line to the log at ``path``, atomically.

    The directory must exist; the log is created if absent. A log whose last
    line lacks its newline gets one first. Returns the path.
    """
    path = Path(path)
    line = _line(record)
    if not path.parent.is_dir():
        raise OSError(f"log directory {path.parent} does not exist")
    with _locked(path):
        old = path.read_bytes() if path.exists() else b""
        if old and not old.endswith(b"\n"):
            old += b"\n"
        with atomic_replace(path) as fh:
            fh.write(old + line)
    return path


def read_records(path: str | os.PathLike) -> list[dict]:
    """Every record of a log, each checked with :func:`check_record`; errors name the line."""
    path = Path(path)
    records = []
    for number, text in enumerate(path.read_text().splitlines(), start=1):
        if not text.strip():
            continue
        try:
            records.append(check_record(json.loads(text)))
        except ValueError as exc:
            raise ValueError(f"{path}:{number}: {exc}") from None
    return records
