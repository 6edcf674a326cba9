"""Thread policy of the Blahut-Arimoto functions: one thread, two threads and the default, one run.

Every task is solved with ``threads=1``, ``threads=2`` (what the library did
before it had a policy: the pools' own count, all cores on the 2-core benchmark
machine) and the default (``threads=None``), on the same inputs at the same
certified accuracy (``tol``), the three interleaved in rounds so that a change
in the machine's load hits them alike (see :func:`measure`: samples of several
solves, ratios paired within a round). Times are medians over the rounds. The
last columns say whether the default's answer is the one-thread answer to the
last bit, and how far the two-thread answer is from it (a threaded BLAS may
sum in another order).

Tasks, for each size ``n``: the capacity of a random ``n x n`` channel (rows
Dirichlet(1)); a 20-slope R(D) curve of a random ``n x n`` distortion (uniform
entries, source Dirichlet(1)); a 10-slope IB curve of a random ``n x 16`` joint
with 16 clusters (``restarts=0``).

``--load K`` starts ``K`` busy-looping processes of its own for the duration
(ended when the run ends): the machine's other users come on top, so say what
else was running. Run::

    python benchmarks/bench_threads.py [--quick] [--load K] [--sizes 64 256 1024] [--rounds R] [--sample S]
        [--no-two]

The loaded table of issue 18: ``--quick --load 2 --rounds 40 --sample 1 --no-two`` (about 20 minutes).
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CONFIGS = (("1 thread", 1), ("2 threads", 2), ("default", None))


def _tasks(n: int, tol: float, rng: np.random.Generator) -> list[tuple[str, object]]:
    from estimators import channel_capacity, ib_curve, rd_curve

    w = rng.dirichlet(np.ones(n), size=n)
    p = rng.dirichlet(np.ones(n))
    d = rng.random((n, n))
    p_xy = rng.dirichlet(np.ones(n * 16)).reshape(n, 16)
    rd_betas = np.geomspace(1.0, 1000.0, 20)
    ib_betas = np.linspace(0.5, 30.0, 10)
    return [
        (f"capacity {n}x{n}", lambda threads: channel_capacity(w, tol=tol, threads=threads).capacity),
        (f"R(D) {n}x{n}, 20 slopes", lambda threads: rd_curve(p, d, rd_betas, tol=tol, threads=threads).rates),
        (f"IB {n}x16, 16 clusters, 10 slopes", lambda threads: ib_curve(
            p_xy, ib_betas, n_clusters=16, restarts=0, seed=0, tol=tol, threads=threads).rates),
    ]


def measure(solve, rounds: int, budget_s: float, sample_s: float, configs=CONFIGS) -> dict:
    """Paired timings of the configurations over interleaved rounds (fewer rounds once ``budget_s`` is spent).

    One sample is ``reps`` solves in a row, ``reps`` chosen so that a one-thread
    sample lasts at least ``sample_s`` (a millisecond task under load is mostly
    scheduler noise). Each round takes one sample of every configuration, in an
    order that rotates from round to round (a run after a two-thread run can be
    slowed by the pool's threads still spinning); a configuration's ratio to one
    thread is taken within each round, so that a change of the load between
    rounds cancels, and the median and quartiles of these paired ratios are reported.
    """
    t0 = time.perf_counter()
    solve(1)
    reps = max(1, math.ceil(sample_s / max(time.perf_counter() - t0, 1e-6)))
    times: dict[str, list[float]] = {name: [] for name, _ in configs}
    answers: dict[str, np.ndarray] = {}
    started = time.perf_counter()
    for r in range(rounds):
        for name, threads in configs[r % len(configs):] + configs[:r % len(configs)]:
            t0 = time.perf_counter()
            for _ in range(reps):
                answers[name] = np.asarray(solve(threads))
            times[name].append((time.perf_counter() - t0) / reps)
        if time.perf_counter() - started > budget_s and r >= 2:
            break
    one = np.array(times["1 thread"])
    ratios = {name: np.array(v) / one for name, v in times.items()}
    return dict(
        median={name: float(np.median(v)) for name, v in times.items()},
        ratio={name: np.percentile(v, [25, 50, 75]) for name, v in ratios.items()},
        same_default=bool(np.array_equal(answers["default"], answers["1 thread"])),
        diff_2=(float(np.max(np.abs(answers["2 threads"] - answers["1 thread"])))
                if "2 threads" in answers else math.nan),
        rounds=len(one),
        reps=reps,
    )


def _busy(k: int) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(k)]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="sizes 64, 256, 1024 and 2 rounds")
    parser.add_argument("--sizes", type=int, nargs="+", help="problem sizes n (default 64 128 256 512 1024)")
    parser.add_argument("--rounds", type=int, help="rounds of the three configurations (default 3)")
    parser.add_argument("--tol", type=float, default=1e-6, help="certified gap of every solve (nats)")
    parser.add_argument("--load", type=int, default=0, help="busy-looping processes to start for the run")
    parser.add_argument("--budget", type=float, default=60.0, help="seconds per task before rounds are cut")
    parser.add_argument("--sample", type=float, default=0.0,
                        help="seconds one timing sample lasts at least (solves repeated; default one solve)")
    parser.add_argument("--no-two", action="store_true", help="leave the two-thread configuration out")
    args = parser.parse_args(argv)
    sizes = args.sizes or ((64, 256, 1024) if args.quick else (64, 128, 256, 512, 1024))
    rounds = args.rounds or (2 if args.quick else 3)
    configs = tuple(c for c in CONFIGS if not (args.no_two and c[1] == 2))
    import warnings

    from threadpoolctl import threadpool_info

    warnings.simplefilter("ignore", RuntimeWarning)  # a slow unconverged point is timed all the same
    pools = ", ".join(f"{p['internal_api']} {p['num_threads']}" for p in threadpool_info())
    load = os.getloadavg()[0]
    print(f"# bench_threads: {os.cpu_count()} CPUs, pools before the run: {pools}; load average {load:.2f}; "
          f"{args.load} busy processes of ours; tol={args.tol:g}; {rounds} interleaved rounds, samples of at "
          f"least {args.sample:g} s; ratios are medians [quartiles] of the per-round ratios to one thread\n")
    print("| task | solves per sample | 1 thread (s) | default (s) | **default / 1** | 2 threads / 1 | rounds "
          "| default = 1 thread | max abs diff 2 vs 1 (nats) |")
    print("|---|---:|---:|---:|---|---|---:|---|---:|")
    busy = _busy(args.load)
    try:
        rng = np.random.default_rng(0)
        for n in sizes:
            for task, solve in _tasks(n, args.tol, rng):
                solve(1)  # warm-up: imports, first-call costs
                m = measure(solve, rounds, args.budget, args.sample, configs)
                med, ratio = m["median"], m["ratio"]

                def cell(name):
                    if name not in ratio:
                        return "-"
                    lo, mid, hi = ratio[name]
                    return f"{mid:.3f}x [{lo:.3f}, {hi:.3f}]"

                print(f"| {task} | {m['reps']} | {med['1 thread']:.4f} | {med['default']:.4f} | {cell('default')} "
                      f"| {cell('2 threads')} | {m['rounds']} | {m['same_default']} | {m['diff_2']:.1e} |", flush=True)
    finally:
        for proc in busy:
            proc.kill()
            proc.wait()
    print(f"\nload average at the end {os.getloadavg()[0]:.2f}")
    return 0 if math.isfinite(load) else 1


if __name__ == "__main__":
    raise SystemExit(main())
