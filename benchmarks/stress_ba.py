"""Seeded stress run of the Blahut-Arimoto family on :func:`estimators.testing.hard_rd_problem`.

Per problem (warnings are errors): a 4-slope ``rd_curve`` (slopes up to 2000, tolerance 1e-2, 1e-6
or 1e-10, ``max_iter=500``), every point certified and the last equal to a start from the uniform
pmf within twice the tolerance (the check of ``test_rd_curves_of_hard_problems_are_certified``),
and the ``D_min`` end point certified at 1e-9 (the check of ``test_ba_end_points``).

Run: ``python benchmarks/stress_ba.py [--seeds 1 2 ...] [--problems 300]``; prints the failures
and a count, exit status 1 if any.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np


def check(p, d, betas, tol) -> str | None:
    from estimators import distortion_rate, rate_distortion, rd_curve

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        curve = rd_curve(p, d, betas, tol=tol, max_iter=500)
        if not curve.converged.all():
            return f"curve not certified: gaps {curve.gaps}"
        beta = float(betas[-1])
        ref = rate_distortion(p, d, beta, tol=tol, init=np.full(d.shape[1], 1 / d.shape[1]), max_iter=500)
        last = curve.points[-1]
        diff = abs(last.rate + beta * last.distortion - ref.rate - beta * ref.distortion)
        if diff > 2 * tol + 1e-12 * 2 * tol:
            return f"curve and uniform start differ by {diff:.2e} (tol {tol:g})"
        top = distortion_rate(p, d, 1e6, tol=1e-9, max_iter=500)
        if not (top.converged and top.gap <= 1e-9):
            return f"end point gap {top.gap:.2e}"
        # the end point's minimisers are those within 1e-12 max|d| of each row's minimum
        if abs(top.distortion - float(p @ d.min(axis=1))) > 1e-12 * max(1.0, float(np.abs(d).max())):
            return "end point distortion"
    return None


def main(argv=None) -> int:
    from estimators.testing import hard_rd_problem

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(1, 13)))
    parser.add_argument("--problems", type=int, default=300)
    args = parser.parse_args(argv)
    failures, total, t0 = 0, 0, time.perf_counter()
    for seed in args.seeds:
        rng = np.random.default_rng(seed)
        for i in range(args.problems):
            p, d = hard_rd_problem(rng, i % 5)
            betas, tol = np.sort(10 ** rng.uniform(-2, 3.3, 4)), float(rng.choice([1e-2, 1e-6, 1e-10]))
            try:
                why = check(p, d, betas, tol)
            except Exception as exc:  # noqa: BLE001 - a stress run reports every kind of failure
                why = f"{type(exc).__name__}: {exc}"
            total += 1
            if why is not None:
                failures += 1
                print(f"seed {seed} problem {i}: {why}", flush=True)
        print(f"seed {seed} done, {failures} failures so far, {time.perf_counter() - t0:.0f} s", flush=True)
    print(f"{len(args.seeds)} seeds x {args.problems} problems = {total}: {failures} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
