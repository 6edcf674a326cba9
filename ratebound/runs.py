"""Run logs: JSON Lines, one completed run per line, schema version 1.

Every record needs ``run_id`` (str) and ``n_train`` (int >= 1); every other
field of the schema is optional and enables the bounds that need it (see
:mod:`ratebound.report`). Unknown fields are kept in :attr:`RunRecord.extra`.
Information quantities (``gate_rate``, ``latent_rate``, ``mi_sw``) are in nats.

:func:`load_runs` checks every line of every file and raises one
:class:`RunLogError` naming each problem as ``file:line: field: what is wrong``;
it never drops a record silently. :func:`append_run` writes a record atomically.
"""

from __future__ import annotations

import json
import math
import numbers
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

from estimators._files import atomic_replace

__all__ = ["SCHEMA_VERSION", "RunRecord", "RunLogError", "load_runs", "parse_record", "append_run"]

#: The schema version this module reads and writes.
SCHEMA_VERSION = 1

#: Tolerance on ``sum(p) == 1`` for ``posterior`` and ``context_pmf``.
_PMF_ATOL = 1e-6
#: How many problems a :class:`RunLogError` message lists before summarising.
_MAX_LISTED = 20


class RunLogError(ValueError):
    """One or more invalid run-log records; ``problems`` lists every one."""

    def __init__(self, problems: Iterable[str]):
        self.problems = tuple(problems)
        shown = "; ".join(self.problems[:_MAX_LISTED])
        more = len(self.problems) - _MAX_LISTED
        tail = f"; ... and {more} more" if more > 0 else ""
        count = len(self.problems)
        super().__init__(f"{count} problem{'s' if count != 1 else ''} in run logs: {shown}{tail}")


@dataclass(frozen=True)
class RunRecord:
    """One validated run-log record (schema version 1).

    Lists of the log become tuples; absent fields are ``None``. ``extra`` holds
    unknown fields unchanged; ``source`` is ``"file:line"`` (or ``"<record>"``).
    See the module docstring and the schema in DESIGN.md for each field.
    """

    run_id: str
    n_train: int
    schema_version: int = SCHEMA_VERSION
    loss_range: tuple[float, float] | None = None
    train_loss: float | None = None
    test_loss: float | None = None
    train_acc: float | None = None
    test_acc: float | None = None
    hypothesis: int | None = None
    bank_size: int | None = None
    posterior: tuple[float, ...] | None = None
    supersample_id: str | int | None = None
    mask: tuple[int, ...] | None = None
    pair_losses: tuple[tuple[float, float], ...] | None = None
    gate_rate: float | None = None
    latent_rate: float | None = None
    context_pmf: tuple[float, ...] | None = None
    gate_distortion: tuple[tuple[float, ...], ...] | None = None
    exchange_floats: float | None = None
    exchange_bytes: float | None = None
    exchange_floats_total: float | None = None
    exchange_bytes_total: float | None = None
    edges_used: int | None = None
    config: dict | None = field(default=None, hash=False)
    mi_sw: float | None = None
    mi_sw_method: str | None = None
    extra: dict = field(default_factory=dict, hash=False)
    source: str = field(default="<record>", compare=False)

    def to_dict(self) -> dict:
        """The record as a JSON-able dict (absent fields left out, extras kept)."""
        out = {}
        for f in fields(self):
            if f.name in ("extra", "source"):
                continue
            value = getattr(self, f.name)
            if value is not None:
                out[f.name] = _to_json(value)
        out.update(self.extra)
        return out


def _to_json(value):
    if isinstance(value, tuple):
        return [_to_json(v) for v in value]
    return value


# ------------------------------------------------------------------ field checks
# Each checker returns the converted value or raises _Bad(message).


class _Bad(Exception):
    pass


def _real(v, *, low=None, high=None, what="a finite number"):
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise _Bad(f"must be {what}, got {_short(v)}")
    try:
        v = float(v)
    except OverflowError:
        raise _Bad(f"must be {what}, got an integer too large for a float") from None
    if not math.isfinite(v):
        raise _Bad(f"must be {what}, got {v!r}")
    if (low is not None and v < low) or (high is not None and v > high):
        raise _Bad(f"must be {what}, got {v!r}")
    return v


def _nonneg(v):
    return _real(v, low=0.0, what="a finite number >= 0")


def _integer(v, *, minimum, what):
    if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
        raise _Bad(f"must be {what}, got {_short(v)}")
    return v


def _string(v):
    if not isinstance(v, str) or not v:
        raise _Bad(f"must be a non-empty string, got {_short(v)}")
    return v


def _short(v) -> str:
    text = json.dumps(v) if _jsonable(v) else repr(v)
    return text if len(text) <= 40 else text[:37] + "..."


def _jsonable(v) -> bool:
    try:
        json.dumps(v, allow_nan=True)
    except (TypeError, ValueError):
        return False
    return True


def _list(v, what):
    if not isinstance(v, list) or not v:
        raise _Bad(f"must be a non-empty list of {what}, got {_short(v)}")
    return v


def _pmf(v):
    items = _list(v, "probabilities")
    out = tuple(_real(x, low=0.0, what="probabilities >= 0") for x in items)
    total = sum(out)
    if abs(total - 1.0) > _PMF_ATOL:
        raise _Bad(f"must sum to 1 (within {_PMF_ATOL:g}), sums to {total:.10g}")
    return out


def _loss_range(v):
    items = _list(v, "two numbers [a, b]")
    if len(items) != 2:
        raise _Bad(f"must be [a, b], got {len(items)} entries")
    a, b = (_real(x) for x in items)
    if not a < b:
        raise _Bad(f"must satisfy a < b, got [{a!r}, {b!r}]")
    return (a, b)


def _mask(v):
    items = _list(v, "0/1 entries")
    for x in items:
        if isinstance(x, bool) or x not in (0, 1) or not isinstance(x, int):
            raise _Bad(f"must hold only 0 and 1, found {_short(x)}")
    return tuple(items)


def _pairs(v):
    items = _list(v, "[loss_0, loss_1] pairs")
    out = []
    for x in items:
        if not isinstance(x, list) or len(x) != 2:
            raise _Bad(f"must hold [loss_0, loss_1] pairs, found {_short(x)}")
        out.append((_real(x[0]), _real(x[1])))
    return tuple(out)


def _matrix(v):
    rows = _list(v, "rows")
    out = []
    for r in rows:
        r = _list(r, "numbers (each row)")
        out.append(tuple(_real(x, low=0.0, what="a number >= 0") for x in r))
    if len({len(r) for r in out}) != 1:
        raise _Bad("rows must all have the same length")
    return tuple(out)


def _supersample_id(v):
    if isinstance(v, bool) or not isinstance(v, (str, int)) or v == "":
        raise _Bad(f"must be a non-empty string or an integer, got {_short(v)}")
    return v


def _config(v):
    if not isinstance(v, dict):
        raise _Bad(f"must be a JSON object, got {_short(v)}")
    return v


_CHECKS = {
    "schema_version": lambda v: _integer(v, minimum=1, what="an integer"),
    "run_id": _string,
    "n_train": lambda v: _integer(v, minimum=1, what="an integer >= 1"),
    "loss_range": _loss_range,
    "train_loss": _real,
    "test_loss": _real,
    "train_acc": lambda v: _real(v, low=0.0, high=1.0, what="a number in [0, 1]"),
    "test_acc": lambda v: _real(v, low=0.0, high=1.0, what="a number in [0, 1]"),
    "hypothesis": lambda v: _integer(v, minimum=0, what="an integer >= 0"),
    "bank_size": lambda v: _integer(v, minimum=1, what="an integer >= 1"),
    "posterior": _pmf,
    "supersample_id": _supersample_id,
    "mask": _mask,
    "pair_losses": _pairs,
    "gate_rate": _nonneg,
    "latent_rate": _nonneg,
    "context_pmf": _pmf,
    "gate_distortion": _matrix,
    "exchange_floats": _nonneg,
    "exchange_bytes": _nonneg,
    "exchange_floats_total": _nonneg,
    "exchange_bytes_total": _nonneg,
    "edges_used": lambda v: _integer(v, minimum=0, what="an integer >= 0"),
    "config": _config,
    "mi_sw": _nonneg,
    "mi_sw_method": _string,
}


def _cross_checks(rec: dict) -> list[tuple[str, str]]:
    """Consistency between fields of one record: ``(field, message)`` pairs."""
    bad = []
    n = rec.get("n_train")
    k = rec.get("bank_size")
    if rec.get("hypothesis") is not None and k is not None and rec["hypothesis"] >= k:
        bad.append(("hypothesis", f"must be < bank_size {k}, got {rec['hypothesis']}"))
    post, hyp = rec.get("posterior"), rec.get("hypothesis")
    if post is not None and k is not None and len(post) != k:
        bad.append(("posterior", f"must have bank_size = {k} entries, got {len(post)}"))
    elif post is not None and hyp is not None and k is None and hyp >= len(post):
        bad.append(("hypothesis", f"must index the posterior's {len(post)} entries, got {hyp}"))
    for name in ("mask", "pair_losses"):
        if rec.get(name) is not None and n is not None and len(rec[name]) != n:
            bad.append((name, f"must have n_train = {n} entries, got {len(rec[name])}"))
    pmf, dist = rec.get("context_pmf"), rec.get("gate_distortion")
    if pmf is not None and dist is not None and len(dist) != len(pmf):
        bad.append(("gate_distortion", f"must have one row per context ({len(pmf)}), got {len(dist)}"))
    lr = rec.get("loss_range")
    if lr is not None:
        a, b = lr
        tol = 1e-9 * (b - a)
        for name in ("train_loss", "test_loss"):
            v = rec.get(name)
            if v is not None and not a - tol <= v <= b + tol:
                bad.append((name, f"must lie in loss_range [{a:g}, {b:g}], got {v!r}"))
        pairs = rec.get("pair_losses")
        if pairs is not None and any(not a - tol <= x <= b + tol for p in pairs for x in p):
            bad.append(("pair_losses", f"must lie in loss_range [{a:g}, {b:g}]"))
    return bad


def parse_record(obj, where: str = "<record>") -> tuple[RunRecord | None, list[str]]:
    """Validate one decoded JSON value as a run record.

    Returns ``(record, [])`` when valid, else ``(None, problems)`` with every
    problem as ``"where: field: what is wrong"``.
    """
    if not isinstance(obj, dict):
        return None, [f"{where}: record: must be a JSON object, got {_short(obj)}"]
    problems, values = [], {}
    for name in ("run_id", "n_train"):
        if name not in obj:
            problems.append(f"{where}: {name}: required field is missing")
    for name, value in obj.items():
        check = _CHECKS.get(name)
        if check is None:
            continue
        try:
            values[name] = check(value)
        except _Bad as exc:
            problems.append(f"{where}: {name}: {exc}")
    version = values.get("schema_version", SCHEMA_VERSION)
    if version != SCHEMA_VERSION:
        problems.append(f"{where}: schema_version: unsupported version {version} (this reader knows {SCHEMA_VERSION})")
    problems.extend(f"{where}: {name}: {msg}" for name, msg in _cross_checks(values))
    if problems:
        return None, problems
    extra = {k: v for k, v in obj.items() if k not in _CHECKS}
    return RunRecord(**values, extra=extra, source=where), []


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON (use a finite number)")


def _read_lines(path: Path) -> tuple[list[tuple[int, str]], list[str]]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        return [], [f"{path}: cannot read: {exc.strerror or exc}"]
    lines, problems = [], []
    for number, line in enumerate(raw.split(b"\n"), start=1):
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            problems.append(f"{path}:{number}: record: not UTF-8 text")
            continue
        if text.strip():
            lines.append((number, text))
    if not lines and not problems:
        problems.append(f"{path}: file holds no records (empty)")
    return lines, problems


def _decode(text: str, where: str):
    try:
        return json.loads(text, parse_constant=_reject_constant), None
    except (ValueError, RecursionError) as exc:
        msg = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc) or type(exc).__name__
        return None, f"{where}: record: malformed JSON: {msg}"


def load_runs(paths) -> list[RunRecord]:
    """Read and validate run logs.

    Parameters
    ----------
    paths : str, os.PathLike or iterable of them
        JSON Lines files (blank lines are skipped).

    Returns
    -------
    list of RunRecord
        Every record, in file and line order.

    Raises
    ------
    RunLogError
        (a :class:`ValueError`) listing every problem, each as
        ``file:line: field: what is wrong``: unreadable or empty files,
        malformed JSON, missing required fields, wrong types, non-finite
        numbers, probabilities that do not sum to one, inconsistent lengths,
        duplicate ``run_id`` values.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    paths = [Path(p) for p in paths]
    if not paths:
        raise RunLogError(["no run-log files given"])
    records, problems, seen = [], [], {}
    for path in paths:
        lines, bad = _read_lines(path)
        problems.extend(bad)
        for number, text in lines:
            where = f"{path}:{number}"
            obj, error = _decode(text, where)
            if error:
                problems.append(error)
                continue
            record, bad = parse_record(obj, where)
            problems.extend(bad)
            if record is None:
                continue
            if record.run_id in seen:
                problems.append(f"{where}: run_id: duplicate of {seen[record.run_id]} ({record.run_id!r})")
                continue
            seen[record.run_id] = where
            records.append(record)
    if problems:
        raise RunLogError(problems)
    return records


def append_run(path, record: Mapping | RunRecord) -> None:
    """Append one record to a JSON Lines run log, atomically.

    The record is validated first (a :class:`RunLogError` names what is
    wrong); ``schema_version`` is added when missing. The old content and the
    new line are written to a temporary file in the same directory, which then
    replaces the log with :func:`os.replace`, so a reader sees either the old
    or the new file, never a half-written line. An existing log keeps its
    permission bits; a new one gets those of an ordinary new file.
    """
    obj = record.to_dict() if isinstance(record, RunRecord) else dict(record)
    obj.setdefault("schema_version", SCHEMA_VERSION)
    _, problems = parse_record(obj)
    if problems:
        raise RunLogError(problems)
    line = json.dumps(obj, allow_nan=False, separators=(",", ":")) + "\n"
    path = Path(path)
    old = path.read_bytes() if path.exists() else b""
    if old and not old.endswith(b"\n"):
        old += b"\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_replace(path) as fh:
        fh.write(old + line.encode("utf-8"))
