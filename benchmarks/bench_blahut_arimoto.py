"""Blahut-Arimoto family against dit 2.3 (and embo for the IB), same inputs, one run.

Three tasks, each timed for this project and its peers on identical inputs:

1. capacity of a random 256 x 256 channel (rows Dirichlet(1));
2. a 50-slope R(D) curve of a random 512 x 512 distortion matrix (uniform
   entries, source Dirichlet(1)); dit runs one restart per slope, ours is
   warm-started along the slopes;
3. a 30-slope IB curve of a random 128 x 16 joint (Dirichlet(1)); ours runs
   from the largest beta down, warm-started, with no extra random restarts
   (``restarts=0``) and stops when one iteration lowers the Lagrangian by
   less than 1e-7 nats; dit runs one restart of 100 iterations per slope,
   embo three restarts of at most 100 iterations.

Accuracy is shown beside the time: for capacity, the distance of each answer to
our certified bracket; for R(D), besides tol=1e-10 and 1e-6, ours is also run
with ``tol`` set to dit's worst measured excess over the optimum (equal
accuracy: every point of ours is certified to at least dit's accuracy); for R(D) and the IB, each method's Lagrangian
(``I + beta E d`` to minimise, resp. ``I(X;T) - beta I(T;Y)``) against ours, and
for R(D) against our certified lower bound. dit works in bits and with slope
``2^{-beta d}``, so its beta is ours divided by ``ln 2``; answers are converted
to nats. Where a peer is too slow for every slope, it is timed on an evenly
spaced subset and its time scaled to the full curve; the table says so.

Run: ``python benchmarks/bench_blahut_arimoto.py [--quick]``. Needs the
``bench`` extra (dit, embo). BLAS and torch are held to one thread for every
method, so that the comparison is of algorithms, not of thread pools.
"""

from __future__ import annotations

import argparse
import math
import time
import warnings

import numpy as np

LN2 = math.log(2.0)


def _timed(fn, repeat: int = 1):
    """Best wall time of ``repeat`` calls, and the last result."""
    best, out = math.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def bench_capacity(rng: np.random.Generator) -> dict:
    from dit.algorithms.channelcapacity import channel_capacity as dit_capacity

    from estimators import channel_capacity

    w = rng.dirichlet(np.ones(256), size=256)
    t_ours, ours = _timed(lambda: channel_capacity(w, tol=1e-10), repeat=3)
    t_dit, (dit_bits, _) = _timed(lambda: dit_capacity(w))
    dit_nats = dit_bits * LN2
    outside = max(ours.lower - dit_nats, dit_nats - ours.upper, 0.0)
    return {
        "task": "capacity 256x256",
        "ours_s": t_ours,
        "peer": "dit",
        "peer_s": t_dit,
        "scaled": False,
        "accuracy": (
            f"ours C in [{ours.lower:.12f}, {ours.upper:.12f}] (width {ours.upper - ours.lower:.1e}); "
            f"dit {dit_nats:.12f}, |dit - ours| = {abs(dit_nats - ours.capacity):.1e}, "
            f"outside bracket by {outside:.1e}"
        ),
        "certified": bool(ours.converged),
    }


def _dit_rd_point(p, d, beta):
    from dit.rate_distortion.blahut_arimoto import blahut_arimoto

    (r_bits, dist), _ = blahut_arimoto(p, beta / LN2, distortion=lambda _p, _q: d, restarts=1)
    return r_bits * LN2, float(dist)


def bench_rd(rng: np.random.Generator, *, peer_slopes: int) -> list[dict]:
    from estimators import rd_curve

    n = 512
    p = rng.dirichlet(np.ones(n))
    d = rng.random((n, n))
    betas = np.geomspace(1.0, 1000.0, 50)
    sub = np.unique(np.linspace(0, len(betas) - 1, peer_slopes).round().astype(int))
    t0 = time.perf_counter()
    dit_pts = [_dit_rd_point(p, d, betas[i]) for i in sub]
    t_dit = (time.perf_counter() - t0) * len(betas) / len(sub)
    dit_lag = np.array([r + betas[i] * dd for (r, dd), i in zip(dit_pts, sub)])
    t_ref, ref = _timed(lambda: rd_curve(p, d, betas, tol=1e-10), repeat=2)
    lower = ref.rates[sub] + betas[sub] * ref.distortions[sub] - ref.gaps[sub]
    rows = [(1e-10, t_ref)]
    curves = {1e-10: ref}
    # 1e-6, then equal accuracy: each point certified to dit's worst excess over the optimum
    for tol in (1e-6, float(f"{np.max(dit_lag - lower):.0e}")):
        t, curves[tol] = _timed(lambda tol=tol: rd_curve(p, d, betas, tol=tol), repeat=2)
        rows.append((tol, t))
    out = []
    for tol, t in rows:
        c = curves[tol]
        ours_lag = c.rates[sub] + betas[sub] * c.distortions[sub]
        out.append(
            {
                "task": f"R(D) 512x512, 50 slopes, tol={tol:g}",
                "ours_s": t,
                "peer": "dit (restarts=1)",
                "peer_s": t_dit,
                "scaled": len(sub) < len(betas),
                "accuracy": (
                    f"Lagrangian above certified optimum: ours max {np.max(ours_lag - lower):.1e}, "
                    f"dit max {np.max(dit_lag - lower):.1e}; "
                    f"max |rate diff| {np.max(np.abs(c.rates[sub] - [r for r, _ in dit_pts])):.1e} nats, "
                    f"max |D diff| {np.max(np.abs(c.distortions[sub] - [dd for _, dd in dit_pts])):.1e}; "
                    f"{sum(pt.iterations for pt in c.points)} Newton steps over the curve"
                ),
                "certified": bool(c.converged.all()),
            }
        )
    return out


def _ib_lagrangian(p_xy, enc, beta):
    p_x = p_xy.sum(axis=1)
    p_t = p_x @ enc
    p_ty = enc.T @ p_xy
    p_y = p_xy.sum(axis=0)

    def ent(v):
        v = v[v > 0]
        return -float(np.sum(v * np.log(v)))

    rate = ent(p_t) - sum(p_x[i] * ent(enc[i]) for i in range(len(p_x)))
    rel = ent(p_t) + ent(p_y) - ent(p_ty.ravel())
    return rate - beta * rel


def bench_ib(rng: np.random.Generator, *, dit_slopes: int) -> list[dict]:
    from embo import InformationBottleneck

    from estimators import ib_curve

    p_xy = rng.dirichlet(np.ones(128 * 16)).reshape(128, 16)
    betas = np.linspace(0.5, 30.0, 30)
    t_ours, ours = _timed(lambda: ib_curve(p_xy, betas, seed=0, restarts=0, tol=1e-7), repeat=1)
    ours_lag = ours.rates - betas * ours.relevances

    def run_embo():
        ib = InformationBottleneck(
            pxy=p_xy.copy(), numbeta=30, minbeta=0.5, maxbeta=30.0, restarts=3, iterations=100,
            processes=1, ensure_monotonic_bound=False,
        )
        return ib.get_bottleneck()

    np.random.seed(0)  # embo draws its restarts from numpy's global generator
    t_embo, (ix, iy, _, b_embo) = _timed(run_embo)
    embo_lag = np.asarray(ix) * LN2 - np.asarray(b_embo) * np.asarray(iy) * LN2

    from dit.rate_distortion.blahut_arimoto import blahut_arimoto_ib

    sub = np.unique(np.linspace(0, len(betas) - 1, dit_slopes).round().astype(int))
    t0 = time.perf_counter()
    dit_lag = []
    for i in sub:
        _, q_xyt = blahut_arimoto_ib(p_xy, betas[i], max_iters=100, restarts=1)
        q_xt = q_xyt.sum(axis=1)
        enc = q_xt / q_xt.sum(axis=1, keepdims=True)
        dit_lag.append(_ib_lagrangian(p_xy, enc, betas[i]))
    t_dit = (time.perf_counter() - t0) * len(betas) / len(sub)
    dit_lag = np.array(dit_lag)
    mi_xy = -_ib_lagrangian(p_xy, np.eye(128), 1.0) + _ib_lagrangian(p_xy, np.eye(128), 0.0)
    ok = bool(np.all(ours.relevances <= ours.rates + 1e-9) and np.all(ours.relevances <= mi_xy + 1e-9))
    common = (
        f"ours IB constraints hold: {ok}; Lagrangian I(X;T)-beta I(T;Y), peer minus ours "
        "(> 0: ours lower/better): "
    )
    return [
        {
            "task": "IB 128x16, 30 slopes",
            "ours_s": t_ours,
            "peer": "dit (restarts=1)",
            "peer_s": t_dit,
            "scaled": len(sub) < len(betas),
            "accuracy": common + f"min {np.min(dit_lag - ours_lag[sub]):+.1e}, max {np.max(dit_lag - ours_lag[sub]):+.1e}",
            "certified": all(pt.converged for pt in ours.points),
        },
        {
            "task": "IB 128x16, 30 slopes",
            "ours_s": t_ours,
            "peer": "embo (restarts=3)",
            "peer_s": t_embo,
            "scaled": False,
            "accuracy": common + f"min {np.min(embo_lag - ours_lag):+.1e}, max {np.max(embo_lag - ours_lag):+.1e}",
            "certified": all(pt.converged for pt in ours.points),
        },
    ]


def _print_table(rows: list[dict]) -> None:
    print(f"{'task':<34} {'peer':<26} {'ours [s]':>9} {'peer [s]':>10} {'peer/ours':>10}  certified")
    for r in rows:
        star = "*" if r["scaled"] else " "
        print(
            f"{r['task']:<34} {r['peer']:<26} {r['ours_s']:>9.3f} {r['peer_s']:>9.2f}{star} "
            f"{r['peer_s'] / r['ours_s']:>9.1f}x  {r['certified']}"
        )
    print("* peer timed on a subset of the slopes, scaled to the full curve")
    print()
    for r in rows:
        print(f"- {r['task']} vs {r['peer']}: {r['accuracy']}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="time dit on fewer slopes")
    args = parser.parse_args(argv)
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    warnings.simplefilter("ignore", RuntimeWarning)  # dit and embo divide by zero on purpose
    rows = []
    with threadpool_limits(1):
        rng = np.random.default_rng(0)
        rows.append(bench_capacity(rng))
        rows.extend(bench_rd(rng, peer_slopes=5 if args.quick else 10))
        rows.extend(bench_ib(rng, dit_slopes=1 if args.quick else 2))
    _print_table(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
