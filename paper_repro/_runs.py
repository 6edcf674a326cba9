"""Training many INL configurations into one run log: resumable, on every core, interrupt-safe.

:func:`train_records` trains each :class:`inl.INLConfig` whose ``run_id`` is not
yet in the log, ``workers`` at a time (one process each, one torch thread per
process), and appends each record with the run-log writer as soon as its run
finishes. A run's ``run_id`` is a function of its config and runs are
deterministic, so a reproduction interrupted with Ctrl-C resumes where it
stopped: the runs already logged are read back, not trained again. Records in
the log that belong to no requested config (an earlier run with other
settings) are moved to ``<log>.superseded.jsonl`` first, never deleted.
"""

from __future__ import annotations

import json
import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from tqdm.auto import tqdm

from paper_repro._table import write_atomic

__all__ = ["default_workers", "superseded_path", "train_records"]

#: Exit status of a worker that found itself importing an unguarded caller script.
_UNGUARDED_MAIN = 87


def default_workers() -> int:
    """Processes for the training runs: the cores this process may use, at most 4."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    return max(1, min(4, cores))


def _train_one(config: dict) -> dict:
    """One run in a worker: the record of ``train(INLConfig.from_dict(config))``."""
    from estimators._threads import hold_threads
    from inl import INLConfig, train

    with hold_threads(1):
        return train(INLConfig.from_dict(config), progress=False).record


def superseded_path(log_path: Path) -> Path:
    """Where :func:`train_records` keeps the lines of ``log_path`` that no requested config wants."""
    return log_path.with_name(log_path.stem + ".superseded" + log_path.suffix)


def _logged(log_path: Path, wanted: set[str]) -> dict[str, dict]:
    """The records of ``log_path`` whose ``run_id`` is wanted; the log is rewritten to hold only those.

    Every other line (a run of other settings, or anything unreadable) is first
    appended to :func:`superseded_path`, so nothing logged is lost.
    """
    if not log_path.exists():
        return {}
    kept, lines, other = {}, [], []
    for line in log_path.read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        rid = record.get("run_id") if isinstance(record, dict) else None
        if rid in wanted and rid not in kept:
            kept[rid] = record
            lines.append(line)
        elif line.strip():
            other.append(line)
    if other:
        with open(superseded_path(log_path), "a") as fh:
            fh.write("".join(line + "\n" for line in other))
            fh.flush()
            os.fsync(fh.fileno())
        write_atomic(log_path, "".join(line + "\n" for line in lines))
    return kept


def train_records(configs: Sequence, log_path: Path, *, workers: int = 1, progress: bool = True,
                  desc: str = "training runs", extra=None) -> list[dict]:
    """Train every config not yet logged in ``log_path``; return all records, in config order.

    Parameters
    ----------
    configs : sequence of inl.INLConfig
        Distinct configs (distinct ``run_id``).
    log_path : pathlib.Path
        The run log (created if absent).
    workers : int
        Training processes; 1 trains in this process.
    progress : bool
        A tqdm bar over the runs.
    desc : str
        The bar's label.
    extra : callable, optional
        ``extra(config) -> dict`` of fields added to each record before it is logged.
    """
    from concurrent.futures.process import BrokenProcessPool

    from inl import run_id
    from inl.runlog import append_record

    if workers > 1 and getattr(multiprocessing.current_process(), "_inheriting", False):
        # a worker re-importing an unguarded caller script: stop quietly, the caller explains
        os._exit(_UNGUARDED_MAIN)

    ids = [run_id(c) for c in configs]
    if len(set(ids)) != len(ids):
        raise ValueError("configs must be distinct (two share a run_id)")
    done = _logged(log_path, set(ids))
    todo = [(rid, c) for rid, c in zip(ids, configs) if rid not in done]
    bar = tqdm(total=len(ids), initial=len(ids) - len(todo), desc=desc, disable=not progress)

    def finish(config, record):
        record = {**record, **(extra(config) if extra else {})}
        append_record(log_path, record)
        done[record["run_id"]] = record
        bar.update(1)

    try:
        if workers <= 1 or len(todo) <= 1:
            for _, config in todo:
                finish(config, _train_one(config.to_dict()))
        else:
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
                futures = {pool.submit(_train_one, c.to_dict()): c for _, c in todo}
                try:
                    for future in as_completed(futures):
                        finish(futures[future], future.result())
                except BrokenProcessPool:
                    raise RuntimeError(
                        "a training process died before finishing its run; called from a script, put the call "
                        "under `if __name__ == \"__main__\":` (the worker processes import that script again)"
                    ) from None
                except BaseException:
                    for future in futures:
                        future.cancel()
                    raise
    finally:
        bar.close()
    return [done[rid] for rid in ids]
