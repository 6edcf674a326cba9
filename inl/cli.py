"""``ratebound train CONFIG.toml``: one INL run, appended to a run log.

The TOML file holds the fields of :class:`inl._training.INLConfig` at top level (a
``[dataset_params]`` table for the dataset options) and optionally
``log = "runs.jsonl"``, relative to the config file. Example::

    n_nodes = 12
    mode = "tree"
    epochs = 30
    beta_gate = 0.01
    log = "runs.jsonl"

    [dataset_params]
    n_train = 2000

The record is appended only when training has finished, atomically, so Ctrl-C
at any moment leaves the log as it was. Runs are deterministic and their
``run_id`` is a function of the config, so a config whose ``run_id`` is already
in the log is not trained again (the log would get a duplicate of a
bit-identical line). Heavy imports happen inside :func:`run`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="TOML file with the INLConfig fields (and optionally log = PATH)")
    parser.add_argument("--log", help="JSONL run log to append to (default: the config's `log`)")
    parser.add_argument("--seed", type=int, help="override the config's seed (a supersample run: its mask)")
    parser.add_argument("--supersample-seed", type=int, dest="supersample_seed",
                        help="override the config's supersample_seed (which supersample a supersample run draws)")
    parser.add_argument("--mode", choices=("dense", "tree"), help="override the config's mode")
    parser.add_argument("--epochs", type=int, help="override the config's epochs")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--json", action="store_true", help="print the record as JSON on stdout")
    parser.add_argument(
        "--processes",
        type=int,
        default=1,
        metavar="N",
        help="1 (default): train in this process; N = n_nodes: one process per node over "
        "torch.distributed (gloo on loopback), rank 0 appending the record",
    )


def logged_run_ids(log: Path) -> set[str]:
    """The ``run_id`` of every parseable line of ``log`` (empty if there is no log)."""
    if not log.exists():
        return set()
    ids = set()
    for line in log.read_text().splitlines():
        try:
            value = json.loads(line).get("run_id")
        except (ValueError, AttributeError):
            continue
        if isinstance(value, str):
            ids.add(value)
    return ids


def run(args: argparse.Namespace) -> int:
    from inl.distributed import load_config  # the one TOML reader; inl.distributed imports no CLI
    from inl.runlog import DuplicateRunError, append_record
    from inl._training import INLConfig, run_id, train

    table, log = load_config(args.config)
    overrides = {k: getattr(args, k) for k in ("seed", "supersample_seed", "mode", "epochs")
                 if getattr(args, k) is not None}
    config = INLConfig.from_dict({**table, **overrides})
    log = Path(args.log) if args.log else log
    if log is None:
        raise ValueError("no run log: pass --log PATH or set log = PATH in the config")
    if not log.parent.is_dir():
        raise OSError(f"log directory {log.parent} does not exist")
    if args.processes < 1:
        raise ValueError(f"--processes must be >= 1, got {args.processes}")
    rid = run_id(config)
    if rid in logged_run_ids(log):
        print(f"{rid}: already in {log}, not trained again")
        return 0
    if args.processes == 1:
        result = train(config, progress=not args.no_progress)
        try:
            append_record(log, result.record)
        except DuplicateRunError:  # a concurrent run of this config logged it while this one trained
            print(f"{rid}: logged meanwhile in {log} by a concurrent run, not appended again")
            return 0
    else:
        from inl.distributed import DistributedTrainingError, run_distributed

        try:  # rank 0 appends the record, atomically, only once every rank has finished
            result = run_distributed(
                config, world_size=args.processes, log=log, progress=not args.no_progress
            )
        except DistributedTrainingError as exc:
            print(f"ratebound train: {exc}", file=sys.stderr)
            return 1
    record = result.record
    if args.json:
        print(json.dumps(record, sort_keys=True))
    else:
        print(
            f"{record['run_id']}: test_acc {record['test_acc']:.4f}, "
            f"exchange {record['exchange_floats']:.0f} floats/sample over {record['edges_used']} edges, "
            f"{result.seconds:.1f} s -> {log}",
            file=sys.stdout,
        )
    return 0
