"""Run logs: the one schema, its reader and its one writer.

A run log is a JSON Lines file, one completed run per line. This module is the
only definition of the schema; :mod:`ratebound.runs` (the reader's face) and
:mod:`inl.runlog` (the trainer's face) re-export it, so the trainer, a user's
own training loop and ``ratebound bound`` all check and write records the same
way. It lives in the bottom package because ``inl`` and ``ratebound`` may not
import each other; nothing of the mathematics uses it.

Schema
------
Every record needs ``run_id`` (a non-empty string, unique over the logs read
together) and ``n_train`` (an integer >= 1); every other field is optional and
enables the bounds that need it. Unknown fields are kept unchecked (they must
be finite JSON) in :attr:`RunRecord.extra`. Information quantities
(``gate_rate``, ``latent_rate``, ``mi_sw``) are in nats. :data:`FIELDS` lists
each field with its type, unit and use.

Versions. :data:`SCHEMA_VERSION` (2) is written by default. Version 2 adds
``pair_predictions``, ``gate_rate_kind``, ``gate_samples`` and ``n_test``.
Version-1 records are read as before: those four names are not schema fields
there and stay unchecked in ``extra`` (the version-1 trainer logged ``n_test``
so), and their attributes are ``None``. A record without ``schema_version`` is
read as the current version. A version above :data:`SCHEMA_VERSION` is refused.

Losses. Every loss value (``loss_range``, ``train_loss``, ``test_loss``,
``pair_losses``, ``gate_distortion``) must be finite with magnitude at most
:data:`LOSS_MAGNITUDE_MAX` (1e100). The bounds subtract, square and sum losses
over runs: below 1e100 a squared gap is below 1e200 and a sum over any
realistic number of runs stays far from float overflow (1.8e308), whereas
``1e300`` losses made the report print ``gap 1e+300 +- inf``. No real loss
comes near the limit.

numpy and torch values. The writer (and :func:`parse_record`,
:func:`check_record`) first turns numpy scalars (``np.int64``, ``np.float32``,
...), 0-d arrays, torch tensors and any other object with a ``tolist()``
method into Python numbers and (nested) lists, and tuples into lists; so
``n_train=np.int64(100)``, ``train_loss=torch.tensor(0.1)``,
``mask=np.array([...])`` or an ``(n, 2)`` array of ``pair_losses`` are accepted.
A 1-element 1-d array is a list, not a number. Torch is never imported here.

Writing. :func:`append_run` validates the record with the full schema, then,
under an exclusive lock on the log, reads the log, refuses a record whose
``run_id`` is already in it (:class:`DuplicateRunError`, naming the line), and
writes old lines plus the new one (sorted keys, no NaN/Infinity) to a
temporary file in the same directory that :func:`os.replace` moves over the
log. A crash or Ctrl-C at any moment leaves the old log or the new one, never
a torn line, and concurrent writers (processes or threads) lose nothing.

The lock, and why no ``*.lock`` file is left. The lock is :func:`fcntl.flock`
on the log file itself; no separate lock file is made. Because each append
replaces the log by a new file (a new inode), a writer that waited on the old
inode could otherwise enter while another holds the lock on the new one. So a
writer that obtains the lock checks that the path still names the very file it
locked; if not, it closes it and tries again. Only the holder of the lock on
the file the path names may replace or remove it, so at most one writer at a
time passes that check. A log created by a failed first append is removed
again (under the same lock), so no empty log is left either. On platforms
without :mod:`fcntl` the writer does not lock. ``flock`` is an advisory lock
on local file systems; on network file systems it depends on the server.

Reading. :func:`load_runs` checks every line of every file and raises one
:class:`RunLogError` naming each problem as ``file:line: field: what is
wrong``; it never drops a record silently, and reports a duplicate
``run_id`` with the line of its first occurrence.
"""

from __future__ import annotations

import contextlib
import json
import math
import numbers
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

from estimators._files import atomic_replace

__all__ = [
    "SCHEMA_VERSION",
    "SUPPORTED_VERSIONS",
    "LOSS_MAGNITUDE_MAX",
    "FIELDS",
    "RunRecord",
    "RunLogError",
    "DuplicateRunError",
    "parse_record",
    "check_record",
    "load_runs",
    "read_records",
    "append_run",
]

#: The schema version written by default (and the newest one read).
SCHEMA_VERSION = 2
#: Every schema version this module reads.
SUPPORTED_VERSIONS = (1, 2)
#: The largest magnitude a logged loss may have (see the module docstring).
LOSS_MAGNITUDE_MAX = 1e100

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

    def __reduce__(self):  # pickles (across processes) with its problems, not its message
        return type(self), (self.problems,)


class DuplicateRunError(RunLogError):
    """The writer refused a record whose ``run_id`` is already in the log."""


@dataclass(frozen=True)
class RunRecord:
    """One validated run-log record (schema version 1 or 2).

    Lists of the log become tuples; absent fields are ``None``. ``extra`` holds
    unknown fields unchanged; ``source`` is ``"file:line"`` (or ``"<record>"``).
    :data:`FIELDS` describes each field; the version-2 fields
    (``pair_predictions``, ``gate_rate_kind``, ``gate_samples``, ``n_test``)
    are ``None`` in a version-1 record.
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
    pair_predictions: tuple[tuple[int, int], ...] | None = None
    gate_rate_kind: str | None = None
    gate_samples: str | None = None
    n_test: int | None = None
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


# ------------------------------------------------------------ numpy/torch values


class _Bad(Exception):
    """A field's value is wrong; the message says how (without the field name)."""


def _plain(value):
    """``value`` as plain JSON types: numpy/torch scalars and arrays, tuples -> numbers, lists.

    Anything with a ``tolist()`` method (numpy scalars and arrays, torch tensors,
    ...) is converted by it; non-builtin integers and reals become ``int`` and
    ``float``. Other objects (a set, bytes, ...) are refused.
    """
    try:
        return _plain_inner(value)
    except RecursionError:
        raise _Bad("is nested too deeply") from None


def _plain_inner(value):
    kind = type(value)
    if value is None or kind in (str, bool, int, float):
        return value
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise _Bad(f"object keys must be strings, got {_short(key)}")
            out[key] = _plain_inner(item)
        return out
    if isinstance(value, (list, tuple)):
        return [_plain_inner(item) for item in value]
    if isinstance(value, str):
        return str(value)
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        try:
            converted = tolist()
        except Exception as exc:  # a foreign object's own failure, reported as bad input
            raise _Bad(f"could not be converted with tolist(): {exc}") from None
        if type(converted) not in (list, bool, int, float, str) and converted is not None:
            raise _Bad(f"tolist() gave {type(converted).__name__}, not a list or number")
        return _plain_inner(converted)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        try:
            return float(value)
        except OverflowError:
            raise _Bad("is too large for a float") from None
    raise _Bad(f"is not a JSON value (a {kind.__name__}): use numbers, strings, lists and objects")


def _nonfinite(value):
    """The first non-finite float inside a nested JSON value, else ``None`` (iterative)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float):
            if not math.isfinite(item):
                return item
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return None


# ------------------------------------------------------------------ field checks
# Each checker takes a plain JSON value and returns the converted value or raises _Bad.


def _real(v, *, low=None, high=None, what="a finite number", bound=None):
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise _Bad(f"must be {what}, got {_short(v)}")
    try:
        v = float(v)
    except OverflowError:
        raise _Bad(f"must be {what}, got an integer too large for a float") from None
    if not math.isfinite(v):
        raise _Bad(f"is not finite ({v!r}); must be {what}")
    if (low is not None and v < low) or (high is not None and v > high):
        raise _Bad(f"must be {what}, got {v!r}")
    if bound is not None and abs(v) > bound:
        raise _Bad(f"must have magnitude at most {bound:g} (the bounds square and sum losses), got {v!r}")
    return v


def _loss(v, *, low=None, what="a finite number"):
    return _real(v, low=low, what=what, bound=LOSS_MAGNITUDE_MAX)


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


def _choice(*options):
    def check(v):
        if v not in options or not isinstance(v, str):
            raise _Bad(f"must be one of {', '.join(map(repr, options))}, got {_short(v)}")
        return v

    return check


def _short(v) -> str:
    text = json.dumps(v) if _jsonable(v) else repr(v)
    return text if len(text) <= 40 else text[:37] + "..."


def _jsonable(v) -> bool:
    try:
        json.dumps(v, allow_nan=True)
    except (TypeError, ValueError, RecursionError):
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
    a, b = (_loss(x) for x in items)
    if not a < b:
        raise _Bad(f"must satisfy a < b, got [{a!r}, {b!r}]")
    return (a, b)


def _mask(v):
    items = _list(v, "0/1 entries")
    for x in items:
        if isinstance(x, bool) or x not in (0, 1) or not isinstance(x, int):
            raise _Bad(f"must hold only 0 and 1, found {_short(x)}")
    return tuple(items)


def _pairs_of(check, what):
    def pairs(v):
        items = _list(v, f"{what} pairs")
        out = []
        for x in items:
            if not isinstance(x, list) or len(x) != 2:
                raise _Bad(f"must hold {what} pairs, found {_short(x)}")
            out.append((check(x[0]), check(x[1])))
        return tuple(out)

    return pairs


def _label(v):
    return _integer(v, minimum=0, what="integer labels >= 0")


def _matrix(v):
    rows = _list(v, "rows")
    out = []
    for r in rows:
        r = _list(r, "numbers (each row)")
        out.append(tuple(_loss(x, low=0.0, what="a number >= 0") for x in r))
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
    bad = _nonfinite(v)
    if bad is not None:
        raise _Bad(f"is not finite JSON: holds {bad!r}")
    return v


@dataclass(frozen=True)
class FieldSpec:
    """One schema field: its check, the version that introduced it, and what it is."""

    check: Callable
    since: int
    type: str
    unit: str
    enables: str


_LOSS = "loss units"


def _count(v):
    return _integer(v, minimum=1, what="an integer >= 1")


def _index(v):
    return _integer(v, minimum=0, what="an integer >= 0")


def _fraction(v):
    return _real(v, low=0.0, high=1.0, what="a number in [0, 1]")


_CMI = "CMI family (runs grouped by supersample)"
#: Every schema field, by name: its check, the version that introduced it, type, unit and use.
FIELDS: dict[str, FieldSpec] = {
    "schema_version": FieldSpec(_count, 1, "int: 1 or 2", "-", "how the record is read (absent: the current, 2)"),
    "run_id": FieldSpec(_string, 1, "non-empty string", "-", "required; unique over the logs read together"),
    "n_train": FieldSpec(_count, 1, "int >= 1", "samples", "required; the n (or m) of every bound"),
    "loss_range": FieldSpec(_loss_range, 1, "[a, b], a < b", _LOSS,
                            "sigma = (b - a)/2 of the sub-Gaussian bounds; every bounded-loss bound "
                            "(CMI family, test-set, PAC-Bayes-kl, Occam)"),
    "train_loss": FieldSpec(_loss, 1, "number", _LOSS, "measured gap; PAC-Bayes-kl, Occam, D-INL (delta_m)"),
    "test_loss": FieldSpec(_loss, 1, "number", _LOSS, "measured gap; test-set bound (with n_test)"),
    "train_acc": FieldSpec(_fraction, 1, "number in [0, 1]", "fraction", "reported"),
    "test_acc": FieldSpec(_fraction, 1, "number in [0, 1]", "fraction", "reported"),
    "hypothesis": FieldSpec(_index, 1, "int >= 0, < bank_size", "index into the bank",
                            "Xu-Raginsky (selected hypotheses); CMI (Steinke-Zakynthinou)"),
    "bank_size": FieldSpec(_count, 1, "int >= 1", "hypotheses", "union and Occam bounds of a finite bank"),
    "posterior": FieldSpec(_pmf, 1, "pmf (bank_size entries)", "probability",
                           "Xu-Raginsky (posterior: I(S;W) from q(W|S) rows); PAC-Bayes-kl"),
    "supersample_id": FieldSpec(_supersample_id, 1, "string or int", "-", _CMI),
    "mask": FieldSpec(_mask, 1, "n_train entries, each 0 or 1", "-", "CMI family: which member of each pair trained"),
    "pair_losses": FieldSpec(_pairs_of(_loss, "[loss_0, loss_1]"), 1, "n_train pairs [loss_0, loss_1]", _LOSS,
                             "loss-difference CMI, e-CMI; f-CMI with pair_predictions"),
    "gate_rate": FieldSpec(_nonneg, 1, "number >= 0", "nats", "D-INL: R_g = I(Z;T) of the gate"),
    "latent_rate": FieldSpec(_nonneg, 1, "number >= 0", "nats", "reported"),
    "context_pmf": FieldSpec(_pmf, 1, "pmf over contexts", "probability", "D-INL: D(R_g) by Blahut-Arimoto"),
    "gate_distortion": FieldSpec(_matrix, 1, "contexts x gate choices, entries >= 0", _LOSS,
                                 "D-INL: D(R_g) by Blahut-Arimoto (one row per context)"),
    "exchange_floats": FieldSpec(_nonneg, 1, "number >= 0", "floats per sample", "exchange reports"),
    "exchange_bytes": FieldSpec(_nonneg, 1, "number >= 0", "bytes per sample", "exchange reports"),
    "exchange_floats_total": FieldSpec(_nonneg, 1, "number >= 0", "floats per run", "exchange reports"),
    "exchange_bytes_total": FieldSpec(_nonneg, 1, "number >= 0", "bytes per run", "exchange reports"),
    "edges_used": FieldSpec(_index, 1, "int >= 0", "edges", "exchange reports"),
    "config": FieldSpec(_config, 1, "JSON object", "-",
                        "grouping (runs of one setting, seeds ignored); data_seed names the training set"),
    "mi_sw": FieldSpec(_nonneg, 1, "number >= 0", "nats", "Xu-Raginsky (logged mi_sw); D-INL"),
    "mi_sw_method": FieldSpec(_string, 1, "non-empty string", "-", "labels mi_sw"),
    "pair_predictions": FieldSpec(_pairs_of(_label, "[pred_0, pred_1]"), 2, "n_train pairs [pred_0, pred_1], "
                                  "ints >= 0", "class labels", "f-CMI (Harutyunyan et al.)"),
    "gate_rate_kind": FieldSpec(_choice("hard", "soft"), 2, '"hard" or "soft"', "-",
                                "D-INL: which gate gate_rate and gate_distortion describe"),
    "gate_samples": FieldSpec(_choice("train", "test"), 2, '"train" or "test"', "-",
                              "D-INL: the samples behind context_pmf and gate_distortion"),
    "n_test": FieldSpec(_count, 2, "int >= 1", "samples", "test-set bound (binomial kl) with test_loss"),
}
_REQUIRED = ("run_id", "n_train")


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
    for name in ("mask", "pair_losses", "pair_predictions"):
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


# ------------------------------------------------------------------ one record


def _parse(obj, where: str) -> tuple[RunRecord | None, list[str]]:
    """Validate one plain JSON value (see :func:`parse_record`)."""
    if not isinstance(obj, dict):
        return None, [f"{where}: record: must be a JSON object, got {_short(obj)}"]
    try:
        version = FIELDS["schema_version"].check(obj.get("schema_version", SCHEMA_VERSION))
    except _Bad as exc:
        return None, [f"{where}: schema_version: {exc}"]
    if version not in SUPPORTED_VERSIONS:
        known = " and ".join(map(str, SUPPORTED_VERSIONS))
        return None, [f"{where}: schema_version: unsupported version {version} (this reader knows {known}; "
                      "a newer ratebound may read it)"]
    schema = {name: spec.check for name, spec in FIELDS.items() if spec.since <= version}
    problems = [f"{where}: {name}: required field is missing" for name in _REQUIRED if name not in obj]
    values, extra = {}, {}
    for name, value in obj.items():
        check = schema.get(name)
        try:
            if check is not None:
                values[name] = check(value)
                continue
            bad = _nonfinite(value)
            if bad is not None:
                raise _Bad(f"is not finite JSON: holds {bad!r}")
            extra[name] = value
        except _Bad as exc:
            problems.append(f"{where}: {name}: {exc}")
    problems.extend(f"{where}: {name}: {msg}" for name, msg in _cross_checks(values))
    if problems:
        return None, problems
    return RunRecord(**values, extra=extra, source=where), []


def _normalised(record, where: str) -> tuple[dict | None, list[str]]:
    """A record (mapping or :class:`RunRecord`) with every value plain JSON, or the problems."""
    if isinstance(record, RunRecord):
        record = record.to_dict()
    if not isinstance(record, Mapping):
        return None, [f"{where}: record: must be a mapping (or a RunRecord), got {type(record).__name__}"]
    out, problems = {}, []
    for name, value in record.items():
        if not isinstance(name, str):
            problems.append(f"{where}: record: field names must be strings, got {_short(name)}")
            continue
        try:
            out[name] = _plain(value)
        except _Bad as exc:
            problems.append(f"{where}: {name}: {exc}")
    return (None if problems else out), problems


def parse_record(obj, where: str = "<record>") -> tuple[RunRecord | None, list[str]]:
    """Validate one record, given as decoded JSON or with numpy/torch values.

    Returns ``(record, [])`` when valid, else ``(None, problems)`` with every
    problem as ``"where: field: what is wrong"``.
    """
    if isinstance(obj, (Mapping, RunRecord)):
        obj, problems = _normalised(obj, where)
        if problems:
            return None, problems
    return _parse(obj, where)


def check_record(record) -> dict:
    """The record with plain JSON values, or :class:`RunLogError` naming each problem.

    The full schema of :func:`parse_record`; the returned dict is what the
    writer would write (``schema_version`` is not added).
    """
    plain, problems = _normalised(record, "record")
    if not problems:
        problems = _parse(plain, "record")[1]
    if problems:
        raise RunLogError(problems)
    return plain


# ------------------------------------------------------------------ reading


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
    return lines, problems


def _decode(text: str, where: str):
    try:
        return json.loads(text, parse_constant=_reject_constant), None
    except (ValueError, RecursionError) as exc:
        msg = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc) or type(exc).__name__
        return None, f"{where}: record: malformed JSON: {msg}"


def _as_paths(paths) -> list[Path]:
    """``paths`` (one path or an iterable of them) as a list of :class:`Path`, else ``RunLogError``."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    elif isinstance(paths, (bytes, bytearray)) or not isinstance(paths, Iterable):
        raise RunLogError([f"paths: must be a path or an iterable of paths, got {type(paths).__name__}"])
    out = []
    for p in paths:
        if not isinstance(p, (str, os.PathLike)):
            raise RunLogError([f"paths: each entry must be a str or os.PathLike path, got {type(p).__name__}"])
        try:
            out.append(Path(p))
        except TypeError as exc:
            raise RunLogError([f"paths: {p!r} is not a path: {exc}"]) from None
    if not out:
        raise RunLogError(["paths: no run-log files given"])
    return out


def _read(paths: list[Path], *, empty_ok: bool) -> list[tuple[dict, RunRecord]]:
    """Every record of ``paths`` as ``(decoded JSON, RunRecord)``, or one ``RunLogError``."""
    rows, problems, seen = [], [], {}
    for path in paths:
        lines, bad = _read_lines(path)
        problems.extend(bad)
        if not lines and not bad and not empty_ok:
            problems.append(f"{path}: file holds no records (empty)")
        for number, text in lines:
            where = f"{path}:{number}"
            obj, error = _decode(text, where)
            if error:
                problems.append(error)
                continue
            record, bad = _parse(obj, where)
            problems.extend(bad)
            if record is None:
                continue
            if record.run_id in seen:
                problems.append(f"{where}: run_id: duplicate of {seen[record.run_id]} ({record.run_id!r})")
                continue
            seen[record.run_id] = where
            rows.append((obj, record))
    if problems:
        raise RunLogError(problems)
    return rows


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
        ``file:line: field: what is wrong``: ``paths`` that is not a path or
        an iterable of paths, unreadable or empty files, malformed JSON,
        missing required fields, wrong types, non-finite numbers, losses
        beyond :data:`LOSS_MAGNITUDE_MAX`, probabilities that do not sum to
        one, inconsistent lengths, duplicate ``run_id`` values, unsupported
        schema versions.
    """
    return [record for _, record in _read(_as_paths(paths), empty_ok=False)]


def read_records(path: str | os.PathLike) -> list[dict]:
    """Every record of one log as its decoded JSON object, validated as :func:`load_runs` does.

    An empty log gives ``[]``; any problem raises one :class:`RunLogError`
    naming file, line and field.
    """
    return [obj for obj, _ in _read(_as_paths(path), empty_ok=True)]


# ------------------------------------------------------------------ writing


@contextlib.contextmanager
def _locked(path: Path):
    """Hold an exclusive ``flock`` on the file ``path`` names, creating it if absent.

    See the module docstring: after the lock is obtained the path must still
    name the locked file (an append replaces it), else the lock is taken
    again. A file created here and still empty on the way out (the first
    append failed) is removed before the lock is released.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - non-POSIX: no lock
        yield
        return
    while True:
        created = True
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            created = False
            try:
                fd = os.open(path, os.O_RDWR)
            except FileNotFoundError:  # removed meanwhile: create it again
                continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if not _names(path, fd):
                continue  # replaced or removed while we waited; the finally closes fd
            try:
                yield
            finally:
                if created and _names(path, fd) and os.fstat(fd).st_size == 0:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(path)
            return
        finally:
            os.close(fd)  # releases the lock


def _names(path: Path, fd: int) -> bool:
    """Whether ``path`` names the open file ``fd``."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    own = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino)


def _logged_line(old: bytes, run_id: str) -> int | None:
    """The line number of ``old`` that holds ``run_id``, else ``None`` (unparseable lines ignored)."""
    needle = run_id.encode("utf-8")
    for number, line in enumerate(old.split(b"\n"), start=1):
        if needle not in line and b"\\" not in line:  # a JSON line holding run_id spells it or escapes
            continue
        with contextlib.suppress(ValueError, RecursionError):
            obj = json.loads(line)
            if isinstance(obj, dict) and obj.get("run_id") == run_id:
                return number
    return None


def append_run(path: str | os.PathLike, record: Mapping | RunRecord) -> Path:
    """Append one record to a JSON Lines run log; the one writer of run logs.

    Parameters
    ----------
    path : path-like
        The log. Its directory must exist; the log is created if absent. A
        log whose last line lacks its newline gets one first.
    record : mapping or RunRecord
        The run. numpy/torch scalars, 0-d arrays and arrays are converted to
        Python numbers and lists first; ``schema_version`` defaults to
        :data:`SCHEMA_VERSION`.

    Returns
    -------
    Path
        The log.

    Raises
    ------
    RunLogError
        (a :class:`ValueError`) naming each problem of the record under the
        full schema; the log is not touched.
    DuplicateRunError
        (a :class:`RunLogError`) when the log already holds the record's
        ``run_id``; checked under the lock, so of concurrent writers of one
        ``run_id`` exactly one succeeds.
    FileNotFoundError
        When the log's directory does not exist.

    Notes
    -----
    Under an exclusive lock on the log, the old lines and the new one are
    written to a temporary file that :func:`os.replace` moves over the log
    (keeping the log's permission bits), so a reader sees the old or the new
    log and an interrupted writer leaves the old one. Keys are sorted; NaN and
    infinity are refused. No lock file is made (see the module docstring).
    """
    if not isinstance(path, (str, os.PathLike)):
        raise ValueError(f"path: must be a str or os.PathLike path, got {type(path).__name__}")
    obj, problems = _normalised(record, "record")
    if not problems:
        obj.setdefault("schema_version", SCHEMA_VERSION)
        problems = _parse(obj, "record")[1]
    if problems:
        raise RunLogError(problems)
    try:
        text = json.dumps(obj, sort_keys=True, allow_nan=False, separators=(",", ":"))
    except (ValueError, RecursionError) as exc:  # _parse found no non-finite value: too deep
        raise RunLogError([f"record: is not finite JSON: {exc}"]) from None
    line = (text + "\n").encode("utf-8")
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"log directory {path.parent} does not exist")
    with _locked(path):
        old = path.read_bytes()
        number = _logged_line(old, obj["run_id"])
        if number is not None:
            raise DuplicateRunError([f"run_id: {obj['run_id']!r} is already logged at {path}:{number}; "
                                     "not appended (run_id must be unique)"])
        if old and not old.endswith(b"\n"):
            old += b"\n"
        with atomic_replace(path) as fh:
            fh.write(old + line)
    return path
