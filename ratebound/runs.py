"""Run logs: JSON Lines, one completed run per line (schema version 2; version 1 read).

The reader's face of the one run-log schema, defined in :mod:`estimators._runlog`
and shared with the trainer (:mod:`inl.runlog`): :func:`load_runs` reads and
validates logs, naming ``file:line: field: what is wrong`` for every problem,
and :func:`append_run` is the one writer (an exclusive lock around
check-and-append, duplicate ``run_id`` refused, numpy/torch values accepted),
the same function as :func:`inl.runlog.append_record`. Every record needs
``run_id`` (str) and ``n_train`` (int >= 1); every other field of the schema is
optional and enables the bounds that need it (see :mod:`ratebound.report` and
:data:`FIELDS`). Unknown fields are kept in :attr:`RunRecord.extra`.
Information quantities (``gate_rate``, ``latent_rate``, ``mi_sw``) are in nats.
"""

from estimators._runlog import (
    FIELDS,
    LOSS_MAGNITUDE_MAX,
    SCHEMA_VERSION,
    SUPPORTED_VERSIONS,
    DuplicateRunError,
    RunLogError,
    RunRecord,
    append_run,
    load_runs,
    parse_record,
)

__all__ = [
    "SCHEMA_VERSION",
    "SUPPORTED_VERSIONS",
    "LOSS_MAGNITUDE_MAX",
    "FIELDS",
    "RunRecord",
    "RunLogError",
    "DuplicateRunError",
    "load_runs",
    "parse_record",
    "append_run",
]
