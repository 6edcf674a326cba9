"""``ratebound bound RUNS.jsonl...``: every bound the logged runs allow."""

from __future__ import annotations

import argparse
import json
import math


#: ``",".join(ratebound.report.SEED_KEYS)``, written out so that ``--help`` imports no numpy.
DEFAULT_IGNORE = "seed,data_seed,supersample_seed"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="+", metavar="RUNS.jsonl", help="run logs (JSON Lines, schema v1 or v2)")
    parser.add_argument("--sigma", type=float, default=None,
                        help="sub-Gaussian parameter of the loss when no loss_range is logged (default 0.5)")
    parser.add_argument("--delta", type=float, default=0.05,
                        help="failure probability of the high-probability bounds (default 0.05)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap intervals (default 0)")
    parser.add_argument("--ignore-keys", default=DEFAULT_IGNORE, metavar="KEYS",
                        help="comma-separated top-level config keys ignored when grouping runs "
                             f"(default: {DEFAULT_IGNORE}; '' groups by the full config)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _fmt(value) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_fmt(v)}" for k, v in value.items()) + "}"
    if isinstance(value, int):
        return str(value)
    return f"{value:.4g}" if math.isfinite(value) else str(value)


def _terms(terms: dict) -> str:
    return "  ".join(f"{k}={_fmt(v)}" for k, v in terms.items())


def format_report(reports) -> str:
    """The reports as a plain-text table (bounds in units of the loss, information in nats)."""
    lines = []
    for rep in reports:
        lines.append(rep.label)
        lines.append(f"  runs {len(rep.run_ids)}  n_train {rep.n_train}  sigma {_fmt(rep.sigma)} "
                     f"({rep.sigma_source})  delta {_fmt(rep.delta)}")
        m = rep.measured
        if "gap" in m:
            lines.append(f"  measured: train {_fmt(m['train_loss'])}  test {_fmt(m['test_loss'])}  "
                         f"gap {_fmt(m['gap'])} +- {_fmt(m['gap_stderr'])} ({m['runs']} runs)")
        if "supersample_gap" in m:
            lines.append(f"  measured supersample gap {_fmt(m['supersample_gap'])}")
        if rep.bounds:
            width = max(len(b.name) for b in rep.bounds)
            lines.append(f"  {'bound':<{width}}  target  {'value':>9}  {'kind':<11}  terms")
            for b in rep.bounds:
                lines.append(f"  {b.name:<{width}}  {b.target:<6}  {b.value:>9.4g}  {b.kind:<11}  {_terms(b.terms)}")
        if rep.missing:
            lines.append("  not computable:")
            for miss in rep.missing:
                lines.append(f"    {miss.name}: needs {', '.join(miss.needs)} ({miss.reason})")
        lines.append("")
    lines.append("bounds in units of the loss; information in nats; 'estimate' rows rest on estimated "
                 "information and are not guaranteed")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from ratebound.report import bound_report
    from ratebound.runs import load_runs

    records = load_runs(args.runs)
    ignore = [k.strip() for k in args.ignore_keys.split(",") if k.strip()]
    reports = bound_report(records, sigma=args.sigma, delta=args.delta, seed=args.seed, ignore=ignore)
    if args.json:
        print(json.dumps([r.to_dict() for r in reports], indent=2, allow_nan=False))
    else:
        print(format_report(reports))
    return 0
