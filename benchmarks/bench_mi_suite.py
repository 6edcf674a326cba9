"""The benchmark-mi suite: 40 tasks with known mutual information, every estimator, one table.

Run from the repository root::

    python benchmarks/bench_mi_suite.py            # 40 tasks x 3 seeds, N = 5000
    python benchmarks/bench_mi_suite.py --quick    # 12 tasks x 1 seed, a few minutes

The tasks are :func:`estimators.testing.beyond_normal_tasks` (Czyz et al.,
"Beyond Normal", NeurIPS 2023), each sampled at ``N = 5000`` pairs per seed; the
truth comes from the closed forms. Estimators (all through the public API):

- ``ksg3``, ``ksg10``: :func:`estimators.ksg_mi_estimate` on the raw samples,
  k = 3 (today's KSG) and 10;
- ``gauss``: :func:`estimators.gaussian_mi_estimate` (CCA, bias corrected);
- ``gcopula``, ``tcopula-analytic``: :func:`estimators.copula_mi_estimate` with
  the Gaussian and the Student-t copula (the latter with ``bootstrap=0``: its
  fast analytic interval, to show how optimistic it is; the default uses the
  bootstrap one);
- ``cksg5``: :func:`estimators.copula_ksg_estimate` (KSG on normal scores, k = 5);
- ``default``: :func:`estimators.estimate_mi` without ``method`` (it chooses from
  the data alone; the table shows which estimator it chose);
- ``infonce`` (only with ``--neural``): the InfoNCE bound at its defaults.

Per task: the truth, every estimator's mean over seeds with the mean interval.
Then, per estimator: the number of tasks whose seed-mean lies within 10% of the
truth, the mean number per seed, and the coverage of the 95% intervals (the
fraction of task-seed runs whose interval holds the truth), that coverage off
the six spiral tasks (where every estimator here is far below the truth), and
the median interval width over the truth (a wide interval covers easily; the
width says at what price). ``--only default`` runs one column. For reference only,
the best estimator per task *chosen knowing the truth* (no estimator here ever
sees it) and the tasks where the default is worse than ``ksg3`` by more than
10% of the truth.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from estimators._files import atomic_replace  # noqa: E402

#: Tasks of ``--quick`` (names from ``beyond_normal_tasks``): every family, the cheap sizes.
QUICK_TASKS = (
    "normal-1x1-rho0.75", "additive-uniform-1x1-eps0.1", "bimodal-1x1-rho0.75", "student-1x1-dof1",
    "swiss-roll-2x1", "dense-normal-5x5", "dense-normal-25x25", "2pair-normal-5x5", "student-3x3-dof2",
    "normal-cdf(2pair-normal-25x25)", "spiral(2pair-normal-3x3)", "asinh(student-5x5-dof2)",
)


@dataclass(frozen=True)
class Settings:
    n: int
    seeds: tuple[int, ...]
    quick: bool


def _estimators(neural: bool, only: tuple[str, ...] | None = None) -> dict:
    from estimators import (
        copula_ksg_estimate,
        copula_mi_estimate,
        estimate_mi,
        gaussian_mi_estimate,
        ksg_mi_estimate,
    )

    table = {
        "ksg3": lambda x, y, s: ksg_mi_estimate(x, y, k=3, seed=s),
        "ksg10": lambda x, y, s: ksg_mi_estimate(x, y, k=10, seed=s),
        "gauss": lambda x, y, s: gaussian_mi_estimate(x, y),
        "gcopula": lambda x, y, s: copula_mi_estimate(x, y, family="gaussian"),
        "tcopula-analytic": lambda x, y, s: copula_mi_estimate(x, y, family="student", bootstrap=0),
        "cksg5": lambda x, y, s: copula_ksg_estimate(x, y, k=5, seed=s),
        "default": lambda x, y, s: estimate_mi(x, y, seed=s),
    }
    if neural:
        table["infonce"] = lambda x, y, s: estimate_mi(x, y, method="infonce", seed=s)
    if only is not None:
        unknown = sorted(set(only) - set(table))
        if unknown:
            raise SystemExit(f"--only: unknown estimators {unknown}; known: {sorted(table)}")
        table = {name: table[name] for name in table if name in only}
    return table


def run(settings: Settings, names: tuple[str, ...] | None, neural: bool, progress: bool,
        only: tuple[str, ...] | None = None) -> dict:
    from estimators.testing import beyond_normal_tasks

    tasks = [t for t in beyond_normal_tasks() if names is None or t.name in names]
    estimators = _estimators(neural, only)
    rows = []
    for index, task in enumerate(tasks):
        cells = {name: [] for name in estimators}
        seconds = {name: 0.0 for name in estimators}
        chosen = []
        for seed in settings.seeds:
            x, y = task.sample(settings.n, seed=10_000 + seed)
            for name, estimate in estimators.items():
                start = time.perf_counter()
                est = estimate(x, y, seed)
                seconds[name] += time.perf_counter() - start
                cells[name].append((float(est.value), float(est.ci_low), float(est.ci_high)))
                if name == "default":
                    chosen.append(est.method)
        rows.append(dict(task=task.name, dims=[task.dim_x, task.dim_y], truth=task.mutual_information,
                         cells=cells, seconds=seconds, chosen=chosen))
        if progress:
            shown = "default" if "default" in cells else next(iter(cells))
            print(f"  [{index + 1}/{len(tasks)}] {task.name}: truth {task.mutual_information:.3f}, {shown} "
                  f"{np.mean([c[0] for c in cells[shown]]):.3f} ({', '.join(sorted(set(chosen)))}), "
                  f"{sum(seconds.values()):.1f} s", file=sys.stderr, flush=True)
    return dict(rows=rows, estimators=list(estimators))


def _within(value: float, truth: float) -> bool:
    return abs(value - truth) <= 0.1 * truth


def _is_spiral(task: str) -> bool:
    """The spiral tasks, reported apart in the coverage (every estimator here is far below their truth)."""
    return task.startswith("spiral(")


def summarise(result: dict) -> dict:
    rows, names = result["rows"], result["estimators"]
    summary = {}
    for name in names:
        means = [np.mean([c[0] for c in r["cells"][name]]) for r in rows]
        per_seed = np.mean([sum(_within(r["cells"][name][s][0], r["truth"]) for r in rows)
                            for s in range(len(rows[0]["cells"][name]))])
        runs = [(c, r["truth"], _is_spiral(r["task"])) for r in rows for c in r["cells"][name]]
        coverage = np.mean([lo <= truth <= hi for (_, lo, hi), truth, _ in runs])
        off = [lo <= truth <= hi for (_, lo, hi), truth, spiral in runs if not spiral]
        summary[name] = dict(
            within=int(sum(_within(m, r["truth"]) for m, r in zip(means, rows))),
            within_per_seed=float(per_seed),
            coverage=float(coverage),
            coverage_off_spirals=float(np.mean(off)) if off else float("nan"),
            median_relative_width=float(np.median([(hi - lo) / truth for (_, lo, hi), truth, _ in runs])),
            seconds=float(sum(r["seconds"][name] for r in rows)),
            mean_abs_error=float(np.mean([abs(m - r["truth"]) for m, r in zip(means, rows)])),
        )
    oracle = sum(any(_within(np.mean([c[0] for c in r["cells"][n]]), r["truth"]) for n in names if n != "default")
                 for r in rows)
    worse = [r["task"] for r in rows if "default" in names and "ksg3" in names
             and abs(np.mean([c[0] for c in r["cells"]["default"]]) - r["truth"])
             - abs(np.mean([c[0] for c in r["cells"]["ksg3"]]) - r["truth"]) > 0.1 * r["truth"]]
    return dict(per_estimator=summary, truth_picked=int(oracle), default_worse_than_ksg3=worse, tasks=len(rows))


def _percent(fraction: float) -> str:
    return f"{100 * fraction:.0f}%" if math.isfinite(fraction) else "-"


def format_tables(result: dict, summary: dict) -> str:
    rows, names = result["rows"], result["estimators"]
    lines = ["| task | dims | truth | " + " | ".join(names) + " | default chose |",
             "|---|---|---:|" + "---:|" * len(names) + "---|"]
    for r in rows:
        cells = []
        for name in names:
            v = np.asarray(r["cells"][name])
            mark = "**" if _within(v[:, 0].mean(), r["truth"]) else ""
            cells.append(f"{mark}{v[:, 0].mean():.3f}{mark} [{v[:, 1].mean():.2f}, {v[:, 2].mean():.2f}]")
        chose = ", ".join(sorted({c.removeprefix("auto:") for c in r["chosen"]}))
        lines.append(f"| {r['task']} | {r['dims'][0]}x{r['dims'][1]} | {r['truth']:.3f} | " + " | ".join(cells)
                     + f" | {chose} |")
    per = summary["per_estimator"]
    n = summary["tasks"]
    lines += ["", "| estimator | within 10% (seed mean) | within 10% (mean per seed) | 95% interval coverage "
              "| coverage off spirals | median width / truth | mean abs. error | seconds |",
              "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name in names:
        s = per[name]
        lines.append(f"| {name} | {s['within']}/{n} | {s['within_per_seed']:.1f}/{n} | {100 * s['coverage']:.0f}% "
                     f"| {_percent(s['coverage_off_spirals'])} | {s['median_relative_width']:.2f} "
                     f"| {s['mean_abs_error']:.3f} | {s['seconds']:.0f} |")
    lines += ["", f"Truth-picked best of the non-default estimators (reference only): {summary['truth_picked']}/{n}.",
              "Tasks where the default is worse than ksg3 by more than 10% of the truth: "
              + (", ".join(summary["default_worse_than_ksg3"]) or "none") + "."]
    return "\n".join(lines)


def _parse(argv) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"{len(QUICK_TASKS)} tasks, 1 seed")
    parser.add_argument("--seeds", type=int, help="number of seeds (default 3; 1 with --quick)")
    parser.add_argument("--first-seed", type=int, default=0, help="seeds start here (default 0; fresh seeds check "
                        "that nothing was tuned to the usual ones)")
    parser.add_argument("--n", type=int, default=5000, help="pairs per sample (default 5000)")
    parser.add_argument("--tasks", nargs="+", help="only these task names")
    parser.add_argument("--neural", action="store_true", help="also the InfoNCE bound (slow on CPU)")
    parser.add_argument("--only", nargs="+", help="only these estimators (e.g. --only default)")
    parser.add_argument("--json", type=Path, help="also write every number to this JSON file")
    parser.add_argument("--no-progress", action="store_true", help="no per-task lines on stderr")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = _parse(argv)
    count = args.seeds if args.seeds is not None else (1 if args.quick else 3)
    seeds = tuple(range(args.first_seed, args.first_seed + count))
    settings = Settings(n=args.n, seeds=seeds, quick=args.quick)
    names = tuple(args.tasks) if args.tasks else (QUICK_TASKS if args.quick else None)
    started = time.perf_counter()
    print(f"# bench_mi_suite ({'quick' if args.quick else 'full'}): N = {settings.n}, seeds {list(seeds)}, "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs visible")
    result = run(settings, names, args.neural, not args.no_progress, tuple(args.only) if args.only else None)
    summary = summarise(result)
    print()
    print(format_tables(result, summary))
    elapsed = time.perf_counter() - started
    print(f"\nTotal wall time {elapsed / 60:.1f} min.")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        with atomic_replace(args.json, mode="w") as handle:
            json.dump(dict(settings=settings.__dict__, result=result, summary=summary, elapsed_s=elapsed), handle,
                      indent=2)
    return 0 if math.isfinite(elapsed) else 1


if __name__ == "__main__":
    raise SystemExit(main())
