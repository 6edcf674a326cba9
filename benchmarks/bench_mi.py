"""Mutual-information estimators: speed against scikit-learn, accuracy against the truth.

Run from the repository root::

    python benchmarks/bench_mi.py            # full tables
    python benchmarks/bench_mi.py --quick    # a smoke run in a few minutes

(a) ``estimators.ksg_mi`` against scikit-learn's ``mutual_info_regression`` (the
same KSG estimator 1, k = 3) on the same 1-D Gaussian samples, n = 10k, 100k, 1M:
wall time of each and the ratio, timed in one run.

(a2) ``ksg_mi`` with x and y both d-dimensional (d = 1..10) against scikit-learn's
KSG code path (``feature_selection._mutual_info._compute_mi_cc``: a chebyshev
``NearestNeighbors`` query, then ``KDTree`` count-only range queries; it takes
1-D variables only, so its steps are run here on the d-dimensional arrays), and
the strict range counts of x alone against scikit-learn's count query. Both see
the same standardised samples; counts and estimates are checked identical. Each
time is the median of alternating runs (ours first, then theirs first, ...).

(b) Bias and spread of every variational method of ``estimators.estimate_mi``
(same critic, batch 128, the same step budget and no early stopping for all) and
of KSG, over several seeds, on the Gaussian staircase (20 independent pairs,
x, y in R^20, true MI 2..10 nats) and on the known-MI tasks of
``estimators.testing.benchmark_tasks`` (Gaussian, Student-t, additive noise,
and MI-preserving transforms of them). Each cell is ``mean +- std`` over seeds;
the truth is in its own column.

Timings on a shared machine are noisy; the ratios of (a) and (a2) come from one run.
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

METHODS = ("infonce", "nwj", "dv", "mine", "js", "smile")


@dataclass(frozen=True)
class Settings:
    """One benchmark configuration."""

    sizes: tuple[int, ...]
    staircase: tuple[float, ...]
    n: int
    steps: int
    seeds: tuple[int, ...]
    task_seeds: tuple[int, ...]
    ksg_staircase_n: int
    dims_cases: tuple[tuple[int, int], ...] = ()
    dims_repeats: int = 3


FULL = Settings(
    sizes=(10_000, 100_000, 1_000_000),
    staircase=(2.0, 4.0, 6.0, 8.0, 10.0),
    n=10_000,
    steps=400,
    seeds=(0, 1, 2),
    task_seeds=(0, 1),
    ksg_staircase_n=2_000,
    dims_cases=tuple((20_000, d) for d in range(1, 11)) + ((100_000, 1), (100_000, 5)),
)
QUICK = Settings(
    sizes=(10_000, 100_000),
    staircase=(2.0, 6.0, 10.0),
    n=4_000,
    steps=150,
    seeds=(0,),
    task_seeds=(0,),
    ksg_staircase_n=1_000,
    dims_cases=tuple((5_000, d) for d in (1, 2, 5, 10)),
    dims_repeats=1,
)


# --------------------------------------------------------------------------- #
# (a) KSG timing                                                               #
# --------------------------------------------------------------------------- #


def _timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def ksg_timing(sizes) -> list[dict]:
    """Time ``ksg_mi`` and scikit-learn's ``mutual_info_regression`` on the same data."""
    from sklearn.feature_selection import mutual_info_regression

    from estimators.knn import ksg_mi
    from estimators.testing import gaussian_with_mi

    task = gaussian_with_mi(1.0, 1)
    rows = []
    for n in sizes:
        x, y = task.sample(n, seed=n)
        ours, t_ours = _timed(lambda: ksg_mi(x, y, k=3, seed=0))
        theirs, t_theirs = _timed(lambda: float(mutual_info_regression(x, y[:, 0], n_neighbors=3, random_state=0)[0]))
        rows.append(dict(n=n, ours_s=t_ours, sklearn_s=t_theirs, ours=ours, sklearn=theirs, truth=1.0))
        print(f"  n={n:>9,}: ksg_mi {t_ours:7.2f} s, scikit-learn {t_theirs:7.2f} s", file=sys.stderr)
    return rows


def format_timing(rows) -> str:
    lines = [
        "| n | ksg_mi (s) | sklearn (s) | sklearn / ksg_mi | ksg_mi (nats) | sklearn (nats) | truth |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['n']:,} | {r['ours_s']:.2f} | {r['sklearn_s']:.2f} | {r['sklearn_s'] / r['ours_s']:.2f}x "
            f"| {r['ours']:.4f} | {r['sklearn']:.4f} | {r['truth']:.4f} |"
        )
    return "\n".join(lines)


def _sklearn_ksg_path(x, y, k):
    """scikit-learn's ``_compute_mi_cc`` steps on d-dimensional x and y (its own code takes 1-D only)."""
    from scipy.special import digamma
    from sklearn.neighbors import NearestNeighbors

    n = x.shape[0]
    nn = NearestNeighbors(metric="chebyshev", n_neighbors=k).fit(np.hstack([x, y]))
    radius = np.nextafter(nn.kneighbors()[0][:, -1], 0)
    nx, ny = _sklearn_counts(x, radius), _sklearn_counts(y, radius)
    return max(0.0, digamma(n) + digamma(k) - np.mean(digamma(nx + 1)) - np.mean(digamma(ny + 1)))


def _sklearn_counts(points, inner_radius):
    """scikit-learn's strict range counts as ``_compute_mi_cc`` makes them (KDTree count query at nextafter(r, 0))."""
    from sklearn.neighbors import KDTree

    return np.array(KDTree(points, metric="chebyshev").query_radius(points, inner_radius, count_only=True)) - 1.0


def _alternating(a, b, repeats):
    """Median seconds of ``a`` and ``b``, run alternately (``a b``, ``b a``, ...) ``repeats`` times each."""
    times: dict = {0: [], 1: []}
    values = {}
    for r in range(repeats):
        for which in ((0, 1) if r % 2 == 0 else (1, 0)):
            values[which], t = _timed((a, b)[which])
            times[which].append(t)
    return values[0], float(np.median(times[0])), values[1], float(np.median(times[1]))


def ksg_dims_timing(cases, repeats) -> list[dict]:
    """``ksg_mi`` against scikit-learn's KSG path, and the range counts alone, d-dim x and y, alternating."""
    from estimators import knn
    from estimators.testing import gaussian_with_mi

    rows = []
    for n, d in cases:
        x, y = gaussian_with_mi(1.0, d).sample(n, seed=d)
        rng = np.random.default_rng(0)
        xs, ys = knn._prepare(x, "x", True, 1e-10, rng), knn._prepare(y, "y", True, 1e-10, rng)
        ours, t_ours, theirs, t_theirs = _alternating(lambda: knn.ksg_mi(xs, ys, k=3, jitter=0.0),
                                                      lambda: _sklearn_ksg_path(xs, ys, 3), repeats)
        radius = knn._kth_neighbour_distance(np.hstack([xs, ys]), 3, np.inf, 1)
        c_ours, t_c_ours, c_theirs, t_c_theirs = _alternating(
            lambda: knn._count_strictly_within(xs, radius, 1), lambda: _sklearn_counts(xs, np.nextafter(radius, 0)),
            repeats)
        rows.append(dict(n=n, d=d, ours_s=t_ours, sklearn_s=t_theirs, count_ours_s=t_c_ours,
                         count_sklearn_s=t_c_theirs, same_counts=bool(np.array_equal(c_ours, c_theirs)),
                         same_estimates=bool(abs(ours - theirs) <= 1e-9 * max(1.0, ours)), ours=ours, truth=1.0))
        print(f"  n={n:,} d={d}: ksg_mi {t_ours:.2f} s, scikit-learn path {t_theirs:.2f} s; counts {t_c_ours:.2f} "
              f"vs {t_c_theirs:.2f} s", file=sys.stderr)
    return rows


def format_dims(rows) -> str:
    lines = [
        "| n | d_x = d_y | ksg_mi (s) | sklearn path (s) | sklearn / ksg_mi | range counts (s) | sklearn counts (s) "
        "| sklearn / ours (counts) | same counts | same estimate | ksg_mi (nats) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['n']:,} | {r['d']} | {r['ours_s']:.2f} | {r['sklearn_s']:.2f} | {r['sklearn_s'] / r['ours_s']:.2f}x "
            f"| {r['count_ours_s']:.2f} | {r['count_sklearn_s']:.2f} | {r['count_sklearn_s'] / r['count_ours_s']:.2f}x "
            f"| {r['same_counts']} | {r['same_estimates']} | {r['ours']:.4f} |"
        )
    return "\n".join(lines)


# --------------------------------------------------------------------------- #
# (b) accuracy                                                                 #
# --------------------------------------------------------------------------- #


def _variational(task, method, seeds, settings) -> list[float]:
    from estimators.variational import estimate_mi

    values = []
    for seed in seeds:
        x, y = task.sample(settings.n, seed=1000 + seed)
        est = estimate_mi(x, y, method=method, steps=settings.steps, batch_size=128, seed=seed, patience=None)
        values.append(est.value)
    return values


def _ksg(task, seeds, n) -> list[float]:
    from estimators.knn import ksg_mi_estimate

    return [ksg_mi_estimate(*task.sample(n, seed=1000 + seed), k=3, seed=seed).value for seed in seeds]


def accuracy(tasks, settings, seeds, *, ksg_n, label, bar) -> list[dict]:
    """Every method on every task over ``seeds``: a row per task."""
    rows = []
    for task in tasks:
        cells = {}
        for method in METHODS:
            cells[method] = _variational(task, method, seeds, settings)
            bar.update(len(seeds))
        cells["ksg"] = _ksg(task, seeds, ksg_n)
        rows.append(dict(task=task.name, truth=task.mutual_information, dims=(task.dim_x, task.dim_y), cells=cells))
        print(f"  {label}: {task.name} done", file=sys.stderr)
    return rows


def format_accuracy(rows, ksg_label: str) -> str:
    columns = [*METHODS, "ksg"]
    names = [*METHODS, ksg_label]
    lines = [
        "| task | dims | truth | " + " | ".join(names) + " |",
        "|---|---|---:|" + "---:|" * len(columns),
    ]
    for r in rows:
        cells = []
        for c in columns:
            v = np.asarray(r["cells"][c])
            spread = f" ± {v.std(ddof=1):.2f}" if v.size > 1 else ""
            cells.append(f"{v.mean():.2f}{spread}")
        lines.append(f"| {r['task']} | {r['dims'][0]}x{r['dims'][1]} | {r['truth']:.2f} | " + " | ".join(cells) + " |")
    bias = [np.mean([abs(np.mean(r["cells"][c]) - r["truth"]) for r in rows]) for c in columns]
    lines.append("| mean abs. bias | | | " + " | ".join(f"{b:.2f}" for b in bias) + " |")
    return "\n".join(lines)


# --------------------------------------------------------------------------- #
# Driver                                                                       #
# --------------------------------------------------------------------------- #


def _write_json(path: Path, payload: dict) -> None:
    """Atomically write ``payload`` as JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_replace(path, mode="w") as handle:
        json.dump(payload, handle, indent=2)


def _parse(argv) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, fewer steps and seeds")
    parser.add_argument("--steps", type=int, help="override the step budget of the variational methods")
    parser.add_argument("--seeds", type=int, help="override the number of seeds of table (b)")
    parser.add_argument(
        "--sections", nargs="+", choices=("timing", "dims", "staircase", "tasks"),
        default=("timing", "dims", "staircase", "tasks"),
        help="which tables to produce (default all)",
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--json", type=Path, help="also write all numbers to this JSON file")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = _parse(argv)
    import torch
    from tqdm.auto import tqdm

    from estimators.testing import benchmark_tasks, gaussian_with_mi

    torch.set_num_threads(args.threads)
    settings = QUICK if args.quick else FULL
    if args.steps is not None:
        settings = Settings(**{**settings.__dict__, "steps": args.steps})
    if args.seeds is not None:
        seeds = tuple(range(args.seeds))
        settings = Settings(**{**settings.__dict__, "seeds": seeds, "task_seeds": seeds})
    started = time.perf_counter()
    print(f"# bench_mi ({'quick' if args.quick else 'full'}): {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs visible, torch threads {args.threads}")
    payload: dict = {"settings": settings.__dict__}

    if "timing" in args.sections:
        print("\n## (a) KSG estimator 1: ksg_mi vs scikit-learn mutual_info_regression (1-D Gaussian, I = 1 nat, k = 3)\n")
        payload["timing"] = ksg_timing(settings.sizes)
        print(format_timing(payload["timing"]), flush=True)

    if "dims" in args.sections:
        print(f"\n## (a2) KSG with d-dimensional x and y (Gaussian, I = 1 nat, k = 3): ksg_mi (workers=1) and "
              f"scikit-learn's KSG path (its default threads), and the strict range counts of x alone; medians of "
              f"{settings.dims_repeats} alternating runs\n")
        payload["dims"] = ksg_dims_timing(settings.dims_cases, settings.dims_repeats)
        print(format_dims(payload["dims"]), flush=True)

    staircase = [gaussian_with_mi(mi, 20, name=f"staircase d=20, I={mi:g}") for mi in settings.staircase]
    tasks = benchmark_tasks()
    runs = len(METHODS) * (
        len(staircase) * len(settings.seeds) * ("staircase" in args.sections)
        + len(tasks) * len(settings.task_seeds) * ("tasks" in args.sections)
    )
    with tqdm(total=runs, desc="variational runs", disable=args.no_progress or not runs, file=sys.stderr) as bar:
        if "staircase" in args.sections:
            payload["staircase"] = accuracy(
                staircase, settings, settings.seeds, ksg_n=settings.ksg_staircase_n, label="staircase", bar=bar)
            print(f"\n## (b1) Gaussian staircase, x, y in R^20: mean ± std over {len(settings.seeds)} seeds, "
                  f"n = {settings.n:,} (20% held out), batch 128, {settings.steps} steps for every method; "
                  f"KSG on n = {settings.ksg_staircase_n:,}\n")
            print(format_accuracy(payload["staircase"], f"KSG (n={settings.ksg_staircase_n:,})"), flush=True)
        if "tasks" in args.sections:
            payload["tasks"] = accuracy(tasks, settings, settings.task_seeds, ksg_n=settings.n, label="tasks", bar=bar)
            print(f"\n## (b2) Known-MI tasks: mean ± std over {len(settings.task_seeds)} seeds, n = {settings.n:,}, "
                  f"batch 128, {settings.steps} steps; KSG on the same n\n")
            print(format_accuracy(payload["tasks"], "KSG"), flush=True)
    elapsed = time.perf_counter() - started
    payload["elapsed_s"] = elapsed
    print(f"\nTotal wall time {elapsed / 60:.1f} min.")
    if args.json is not None:
        _write_json(args.json, payload)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
