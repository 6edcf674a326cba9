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

Further sections, each printed as its own table:

- ``--old PATH``: this checkout against another one (the commit before a change),
  both imported into this one process (``sys.modules`` switched between them) and
  run alternately, ``--repeat`` times each; per task the median time ratio
  new/old, the Newton steps (``iterations``) per curve of each, and a gate line
  naming every task more than 10% slower.
- ``--scale``: at 256 x 256 and 1024 x 1024 (256 only with ``--quick``), capacity
  and one R(D) slope at equal certified accuracy (1e-6 nats): ours; dit 2.3 at the
  least number of iterations that brings it within 1e-6 of our certified optimum
  (``max_iters``; for capacity, which has none, its loop stopped after that many),
  counted on the same fixed-point map run in this script, checked on dit's own
  answer and timed alone (dit's own stop on a small change, which would leave its
  R(D) ~1e-4 off, is switched off there); the plain log-domain Blahut-Arimoto of this package (``method="plain"``,
  vectorised, run to the same certified gap); cvxpy (Clarabel, exponential cone) on
  the same convex program. Ratios peer/ours. Beside them, the passes per slope and
  per capacity (issue 18; a pass is one ``exp`` of the ``n x n`` kernel into a
  preallocated buffer and one matrix-vector product, timed right after each of 7
  runs, the median of the paired ratios) for a 20-slope R(D) curve and the
  capacity, with capacity's Newton steps; and the CPU's AVX-512/AVX2 and the cost
  of numpy's float64 ``exp``, on which the pass unit rests (a 1024 x 1024 curve:
  13.5 passes per slope on an AVX-512 machine before the conjugate-gradient
  certificate, 12.0-14.5 after it there, 11.1-11.5 with the mixture step and one-solve active-set
  passes, 9.4-10.8 (median 10.2) with the support rows in a buffer, the longer chord certificate and the cheaper
  screen and Gram of session 11, 9.0-10.6 (median 9.5, sixteen runs) with the quadratic model's half-inverse
  columns solved once per model (session 12), 8.7-10.4 (median 9.2, nine runs) in session 13; 3.2-3.5 on an
  AVX2 one, where a pass costs 6-8x more).
- ``--breakdown``: where the time of a 1024 x 1024 curve goes (the draw of ``--scale``'s curve
  without the channel drawn before it; 256 with
  ``--quick``): the solver's parts (Hessian Gram, quadratic model, certificate and screen, kernel
  ``exp``, conjugate gradients, ...), each timed by a wrapper, in ms per curve and passes per slope.
- ``--large``: a 20-slope R(D) curve and a capacity at 4096 x 4096 (tol 1e-6), wall
  time and peak memory (``tracemalloc`` peak of numpy's allocations; the process's
  peak resident set from ``getrusage`` beside it).

Run: ``python benchmarks/bench_blahut_arimoto.py [--quick] [--old PATH] [--scale] [--breakdown] [--large] [--no-peers]``.
Needs the ``bench`` extra (dit, embo) and cvxpy. BLAS and torch are held to one
thread for every method, so that the comparison is of algorithms, not of thread pools.
"""

from __future__ import annotations

import argparse
import importlib
import math
import resource
import statistics
import sys
import time
import tracemalloc
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
    from estimators import ib_curve

    p_xy = rng.dirichlet(np.ones(128 * 16)).reshape(128, 16)
    betas = np.linspace(0.5, 30.0, 30)
    t_ours, ours = _timed(lambda: ib_curve(p_xy, betas, seed=0, restarts=0, tol=1e-7), repeat=1)
    ours_lag = ours.rates - betas * ours.relevances

    def run_embo():
        from embo import InformationBottleneck

        ib = InformationBottleneck(
            pxy=p_xy.copy(), numbeta=30, minbeta=0.5, maxbeta=30.0, restarts=3, iterations=100,
            processes=1, ensure_monotonic_bound=False,
        )
        return ib.get_bottleneck()

    try:
        np.random.seed(0)  # embo draws its restarts from numpy's global generator
        t_embo, (ix, iy, _, b_embo) = _timed(run_embo)
        embo_lag = np.asarray(ix) * LN2 - np.asarray(b_embo) * np.asarray(iy) * LN2
    except ImportError:  # embo not installed: its row is left out
        embo_lag = None

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
    rows = [
        {
            "task": "IB 128x16, 30 slopes",
            "ours_s": t_ours,
            "peer": "dit (restarts=1)",
            "peer_s": t_dit,
            "scaled": len(sub) < len(betas),
            "accuracy": common + f"min {np.min(dit_lag - ours_lag[sub]):+.1e}, max {np.max(dit_lag - ours_lag[sub]):+.1e}",
            "certified": all(pt.converged for pt in ours.points),
        },
    ]
    if embo_lag is not None:
        rows.append({
            "task": "IB 128x16, 30 slopes",
            "ours_s": t_ours,
            "peer": "embo (restarts=3)",
            "peer_s": t_embo,
            "scaled": False,
            "accuracy": common + f"min {np.min(embo_lag - ours_lag):+.1e}, max {np.max(embo_lag - ours_lag):+.1e}",
            "certified": all(pt.converged for pt in ours.points),
        })
    return rows


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


# --------------------------------------------------------------------------
# this checkout against another, in one process


def load_blahut_arimoto(root: str | None):
    """``estimators.blahut_arimoto`` imported from the checkout ``root`` (``None``: this one) as its own copy.

    The package's modules are taken out of ``sys.modules`` for the import and put back after, so two
    copies live side by side; each function keeps the module globals of its own copy.
    """
    own = {k: m for k, m in sys.modules.items() if k == "estimators" or k.startswith("estimators.")}
    for k in own:
        del sys.modules[k]
    if root is not None:
        sys.path.insert(0, root)
    try:
        return importlib.import_module("estimators.blahut_arimoto")
    finally:
        if root is not None:
            sys.path.remove(root)
        for k in [k for k in sys.modules if k == "estimators" or k.startswith("estimators.")]:
            del sys.modules[k]
        sys.modules.update(own)


def comparison_tasks(quick: bool) -> list[tuple[str, object]]:
    """``(name, run(ba) -> (certified, Newton steps))`` for every task of the old-against-new table."""
    rng = np.random.default_rng(7)
    tasks = []

    def channel(n):
        return rng.dirichlet(np.ones(n), size=n)

    def rd_problem(n):
        return rng.dirichlet(np.ones(n)), rng.random((n, n))

    for n, tol in [(256, 1e-10), (1024, 1e-6)]:
        w = channel(n)

        def cap(ba, w=w, tol=tol):
            res = ba.channel_capacity(w, tol=tol)
            return res.converged, res.iterations

        tasks.append((f"capacity {n}x{n} tol={tol:g}", cap))
    for n, slopes, tol in [(512, 50, 1e-10), (512, 50, 1e-6), (1024, 20, 1e-6)]:
        p, d = rd_problem(n)
        betas = np.geomspace(1.0, 1000.0, slopes)

        def curve(ba, p=p, d=d, betas=betas, tol=tol):
            c = ba.rd_curve(p, d, betas, tol=tol)
            return bool(c.converged.all()), sum(pt.iterations for pt in c.points)

        tasks.append((f"R(D) {n}x{n}, {slopes} slopes, tol={tol:g}", curve))
    p, d = rd_problem(256)

    def d_of_r(ba, p=p, d=d):
        pt = ba.distortion_rate(p, d, 1.0, tol=1e-8)
        return pt.converged, pt.iterations

    tasks.append(("D(R) 256x256, R=1, tol=1e-8", d_of_r))
    tied_p = rng.dirichlet(np.ones(512))
    tied_d = rng.integers(0, 3, (512, 512)).astype(float)

    def d_min(ba, p=tied_p, d=tied_d):
        pt = ba.distortion_rate(p, d, 1e6, tol=1e-9)
        return pt.converged, pt.iterations

    tasks.append(("D_min end point 512x512 tied", d_min))
    p_xy = rng.dirichlet(np.ones(128 * 16)).reshape(128, 16)

    def ib(ba, p_xy=p_xy):
        c = ba.ib_curve(p_xy, np.linspace(0.5, 30.0, 10 if quick else 30), seed=0, restarts=0, tol=1e-7)
        return all(pt.converged for pt in c.points), sum(pt.iterations for pt in c.points)

    tasks.append(("IB 128x16 curve", ib))
    return tasks


def bench_old_vs_new(old_root: str, repeat: int, quick: bool) -> bool:
    """Print the old-against-new table; ``True`` where no task is more than 10% slower."""
    new, old = load_blahut_arimoto(None), load_blahut_arimoto(old_root)
    print(f"old: {old.__file__}\nnew: {new.__file__}")
    print(f"{'task':<38} {'old [s]':>9} {'new [s]':>9} {'new/old':>8} {'steps old':>10} {'steps new':>10}  certified")
    slower = []
    for name, run in comparison_tasks(quick):
        times = {"old": [], "new": []}
        steps = {}
        for _ in range(repeat):
            for label, ba in (("old", old), ("new", new)):  # alternating: both see the same load
                t0 = time.perf_counter()
                ok, steps[label] = run(ba)
                times[label].append(time.perf_counter() - t0)
                steps[label + "_ok"] = ok
        t_old, t_new = statistics.median(times["old"]), statistics.median(times["new"])
        ratio = t_new / t_old
        if ratio > 1.10:
            slower.append(name)
        print(
            f"{name:<38} {t_old:>9.4f} {t_new:>9.4f} {ratio:>8.2f} {steps['old']:>10} {steps['new']:>10}  "
            f"{steps['old_ok']}/{steps['new_ok']}"
        )
    print(f"gate (no task more than 10% slower, medians of {repeat} alternated runs): "
          + ("pass" if not slower else "FAIL: " + ", ".join(slower)))
    return not slower


# --------------------------------------------------------------------------
# equal certified accuracy at scale: dit, plain Blahut-Arimoto, cvxpy


def _pass_time(d: np.ndarray, beta: float, repeat: int = 5) -> float:
    """Seconds of one pass: ``exp`` of the ``n x n`` kernel and one matrix-vector product (best of ``repeat``).

    Into a buffer allocated once: a fresh 8 MB temporary per pass (``np.exp(-beta * d) @ v``) measured
    1.8-4.0 ms at 1024 against a stable 1.6-1.7 ms here, as the page faults of the allocation come and
    go; the arithmetic alone is the smaller, stricter unit."""
    v, buf = np.full(d.shape[1], 1.0 / d.shape[1]), np.empty_like(d)

    def one_pass():
        np.multiply(d, -beta, out=buf)
        np.exp(buf, out=buf)
        return buf @ v

    return _timed(one_pass, repeat=repeat)[0]


def _in_passes(run, d: np.ndarray, beta: float, rounds: int = 7):
    """Median over ``rounds`` of ``run``'s time divided by a pass timed right after it (paired, so that the
    machine's speed, which drifts by 10-20% over minutes here, cancels), the median time, and run's result."""
    ratios, times = [], []
    for _ in range(rounds):
        t, out = _timed(run)
        times.append(t)
        ratios.append(t / _pass_time(d, beta))
    return statistics.median(ratios), statistics.median(times), out


class _NumpyStopping:
    """numpy as a dit module sees it here: ``isclose`` false for the first ``after - 1`` calls (``None``:
    always), so that the number of iterations, not dit's own stop on a small change, ends its loop."""

    def __init__(self, after: int | None):
        self.after, self.calls = after, 0

    def __getattr__(self, name):
        return getattr(np, name)

    def isclose(self, *args, **kwargs):
        self.calls += 1
        return self.after is not None and self.calls >= self.after


def _with_numpy(module, stand_in, run):
    module.np = stand_in
    try:
        return run()
    finally:
        module.np = np


def _ba_iterations_to(step, value, target: float, limit: int) -> int | None:
    """Iterations of the fixed-point map ``step`` from its start until ``value`` reaches ``target``."""
    for k in range(1, limit + 1):
        if value(step()) >= target:
            return k
    return None


def _dit_capacity_at(w: np.ndarray, target: float, acc: float, limit: int = 200_000):
    """dit's capacity run for the least number of iterations whose answer is within ``acc`` of ``target``.

    The count comes from the same map (``p(x) <- p(x) exp(D(W_x || pW))`` from the uniform pmf, which dit's
    alternating updates are) run here, and is then checked on dit's own answer (raised by 5% until it holds);
    dit's loop is stopped after that many iterations by its ``isclose``.
    """
    import dit.algorithms.channelcapacity as dit_cc

    h = np.sum(np.where(w > 0, w * np.log(np.where(w > 0, w, 1.0)), 0.0), axis=1)
    state = {"p": np.full(w.shape[0], 1.0 / w.shape[0])}

    def divergences(p):
        r = p @ w
        return h - w @ np.log(np.where(r > 0, r, 1.0))

    def step():
        p = state["p"] * np.exp(divergences(state["p"]))
        state["p"] = p / p.sum()
        return state["p"]

    k = _ba_iterations_to(step, lambda p: float(p @ divergences(p)), target - acc, limit)
    if k is None:
        return None

    def value(k):
        return _with_numpy(dit_cc, _NumpyStopping(k), lambda: dit_cc.channel_capacity(w, rtol=0.0, atol=0.0))[0] * LN2

    for _ in range(20):
        t, v = _timed(lambda k=k: value(k))
        if v >= target - acc:
            return f"{k} iterations", t, v
        k = int(k * 1.05) + 1
    return None


def _dit_rd_at(p, d, beta: float, lower: float, acc: float, limit: int):
    """dit's R(D) slope (one restart, the uniform start) at the least ``max_iters`` whose Lagrangian is within
    ``acc`` of our certified lower bound ``lower``: counted on the same map run here (``q(y|x) ∝ q(y)
    e^{-beta d}`` from the uniform encoder), checked on dit's answer (raised by 5% until it holds); dit's own
    stop on a small change of the distortion (``isclose``) is switched off."""
    import dit.rate_distortion.blahut_arimoto as dit_ba

    kern = np.exp(-beta * (d - d.min(axis=1, keepdims=True)))
    state = {"enc": np.full(d.shape, 1.0 / d.shape[1])}

    def step():
        enc = (p @ state["enc"])[None, :] * kern
        state["enc"] = enc / enc.sum(axis=1, keepdims=True)
        return state["enc"]

    def lagrangian_of(enc):
        q = p @ enc
        with np.errstate(divide="ignore", invalid="ignore"):
            rate = float(np.nansum(p[:, None] * enc * np.log(enc / q[None, :])))
        return rate + beta * float(p @ np.sum(enc * d, axis=1))

    k = _ba_iterations_to(step, lambda enc: -lagrangian_of(enc), -(lower + acc), limit)
    if k is None:
        return None

    def lagrangian(k):
        (r_bits, dist), _ = _with_numpy(dit_ba, _NumpyStopping(None), lambda: dit_ba.blahut_arimoto(
            p, beta / LN2, distortion=lambda _p, _q: d, max_iters=k, restarts=1))
        return r_bits * LN2 + beta * float(dist)

    for _ in range(20):
        t, v = _timed(lambda k=k: lagrangian(k))
        if v <= lower + acc:
            return f"max_iters={k}", t, v
        k = int(k * 1.05) + 1
    return None


def _cvxpy_capacity(w: np.ndarray) -> float:
    import cvxpy as cp

    h = -np.sum(np.where(w > 0, w * np.log(np.where(w > 0, w, 1.0)), 0.0), axis=1)
    x = cp.Variable(w.shape[0], nonneg=True)
    prob = cp.Problem(cp.Maximize(cp.sum(cp.entr(w.T @ x)) - h @ x), [cp.sum(x) == 1])
    prob.solve(solver="CLARABEL")
    return float(prob.value)


def _cvxpy_rd(p, d, beta: float) -> float:
    """``min_q -sum_x p ln (Kq)(x) + const``: the Lagrangian ``I + beta E d`` at the optimum."""
    import cvxpy as cp

    row_min = d.min(axis=1)
    k = np.exp(-beta * (d - row_min[:, None]))
    q = cp.Variable(d.shape[1], nonneg=True)
    prob = cp.Problem(cp.Minimize(-p @ cp.log(k @ q)), [cp.sum(q) == 1])
    prob.solve(solver="CLARABEL")
    return float(prob.value) + beta * float(p @ row_min)


def _simd_line() -> str:
    """What the pass unit rests on: numpy's SIMD dispatch on this CPU and the cost of its float64 ``exp``
    (about 1 ns an entry with AVX-512, 7-11 ns seen with AVX2 alone, where numpy's float64 ``exp`` is scalar)."""
    from numpy._core._multiarray_umath import __cpu_features__ as features

    a = -np.random.default_rng(0).random(1 << 20)
    out = np.empty_like(a)
    t, _ = _timed(lambda: np.exp(a, out=out), repeat=7)
    flags = ", ".join(f"{name} {'yes' if features.get(name) else 'no'}" for name in ("AVX512F", "AVX2"))
    return f"CPU: {flags}; numpy {np.__version__} float64 exp {t / a.size * 1e9:.1f} ns an entry (best of 7, 2^20 entries)"


def bench_scale(sizes, *, acc: float = 1e-6, cvxpy_max: int = 1024) -> None:
    """The equal-accuracy table at each size, and passes per slope / per capacity."""
    from estimators import channel_capacity, rate_distortion, rd_curve

    print(f"{'task':<26} {'peer':<30} {'ours [s]':>9} {'peer [s]':>9} {'peer/ours':>9}  peer off our optimum")
    notes = []
    for n in sizes:
        rng = np.random.default_rng(n)
        w = rng.dirichlet(np.ones(n), size=n)
        p, d = rng.dirichlet(np.ones(n)), rng.random((n, n))
        beta = 20.0
        t_cap, cap = _timed(lambda: channel_capacity(w, tol=acc), repeat=3)
        t_rd, pt = _timed(lambda: rate_distortion(p, d, beta, tol=acc), repeat=3)
        lag = pt.rate + beta * pt.distortion
        lower = lag - pt.gap
        rows = []
        found = found_cap = _dit_capacity_at(w, cap.lower, acc)
        if found is not None:
            _, t, v = found
            rows.append(("capacity", f"dit ({found[0]})", t_cap, t, f"{cap.upper - v:.1e} below our upper"))
        t, res = _timed(lambda: channel_capacity(w, tol=acc, method="plain", max_iter=10**6))
        rows.append(("capacity", f"plain BA ({res.iterations} it)", t_cap, t, f"gap {res.upper - res.lower:.1e}"))
        if n <= cvxpy_max:
            t, v = _timed(lambda: _cvxpy_capacity(w))
            rows.append(("capacity", "cvxpy (Clarabel)", t_cap, t, f"{cap.upper - v:+.1e} below our upper"))
        found = _dit_rd_at(p, d, beta, lower, acc, limit=40_000)
        if found is not None:
            _, t, v = found
            rows.append((f"R(D) slope beta={beta:g}", f"dit ({found[0]})", t_rd, t, f"{v - lower:.1e} above our lower"))
        else:
            notes.append(f"n={n}: dit's R(D) slope not within {acc:g} of our optimum by 40000 iterations")
        if found_cap is None:
            notes.append(f"n={n}: dit's capacity not within {acc:g} of our optimum by 200000 iterations")
        t, ref = _timed(lambda: rate_distortion(p, d, beta, tol=acc, method="plain", max_iter=10**6))
        rows.append((f"R(D) slope beta={beta:g}", f"plain BA ({ref.iterations} it)", t_rd, t, f"gap {ref.gap:.1e}"))
        if n <= cvxpy_max:
            t, v = _timed(lambda: _cvxpy_rd(p, d, beta))
            rows.append((f"R(D) slope beta={beta:g}", "cvxpy (Clarabel)", t_rd, t, f"{v - lower:+.1e} above our lower"))
        for task, peer, ours, t_peer, off in rows:
            print(f"{task + f' {n}x{n}':<26} {peer:<30} {ours:>9.4f} {t_peer:>9.3f} {t_peer / ours:>8.1f}x  {off}")
        # passes (issue 18): a 20-slope curve and the capacity, in units of one kernel pass
        betas = np.geomspace(1.0, 1000.0, 20)
        rd_curve(p, d, betas, tol=acc)
        curve_passes, t_curve, curve = _in_passes(lambda: rd_curve(p, d, betas, tol=acc), d, beta)
        cap_passes, t_cap, cap = _in_passes(lambda: channel_capacity(w, tol=acc), d, beta)
        notes.append(
            f"n={n}: one pass {_pass_time(d, beta, repeat=21) * 1e3:.3f} ms (best of 21); R(D) curve (20 slopes, 1e-6) "
            f"{t_curve:.3f} s = {curve_passes / 20:.1f} passes and {sum(q.iterations for q in curve.points) / 20:.1f} "
            f"Newton steps per slope; capacity {t_cap:.3f} s = {cap_passes:.0f} passes, {cap.iterations} Newton "
            f"steps ({cap_passes / max(cap.iterations, 1):.1f} passes per step); medians of 7, each run over a pass "
            "timed right after it"
        )
    print()
    for line in [*notes, _simd_line()]:
        print("- " + line)


#: (owner module, class or None, attribute, row label) timed by ``--breakdown``; rows marked ``incl.`` contain others.
_BREAKDOWN = [
    ("estimators._ba_arrays", "NumpyBackend", "gram", "Hessian Gram (syrk, row scaling)"),
    ("estimators._ba_newton", None, "_model_minimiser", "incl. quadratic model (factor, passes)"),
    ("estimators._ba_arrays", "NumpyBackend", "cholesky", "Cholesky (full and free blocks)"),
    ("estimators._ba_arrays", "NumpyBackend", "cholesky_apply", "triangular solves"),
    ("estimators._ba_arrays", "NumpyBackend", "submatrix", "free-block copies"),
    ("estimators._ba_objectives", "KernelObjective", "certificate", "incl. certificate (screen, entering)"),
    ("estimators._ba_arrays", "NumpyBackend", "kernel", "kernel exp (float64 rows, float32 screen)"),
    ("estimators._ba_arrays", "NumpyBackend", "sum_rows32", "float32 screen products"),
    ("estimators._ba_newton", "_NewtonCG", "run", "incl. conjugate gradients (chord)"),
    ("estimators._ba_objectives", "KernelObjective", "chord_certificate", "incl. chord certificate"),
    ("estimators._ba_newton", None, "_grown", "support growth (rows written in place)"),
    ("estimators._ba_newton", None, "_shrunk", "support shrinking (holes filled)"),
    ("estimators._ba_newton", None, "_lead", "incl. Blahut-Arimoto lead steps"),
    ("estimators._ba_newton", None, "_armijo", "incl. line searches"),
    ("estimators._ba_newton", None, "solve", "incl. Newton solver, all of it"),
]


def bench_breakdown(n: int = 1024, acc: float = 1e-6, rounds: int = 7) -> None:
    """Where the time of a 20-slope R(D) curve at ``n x n`` goes, in passes per slope (issue 18).

    Each function of ``_BREAKDOWN`` is wrapped by a timer for the duration (and restored after); medians
    over ``rounds`` curves. The wrappers add a few microseconds a call, so the parts sum to a little more
    than an unwrapped curve; the rows marked ``incl.`` contain other rows."""
    from estimators import rd_curve

    rng = np.random.default_rng(n)
    p, d = rng.dirichlet(np.ones(n)), rng.random((n, n))
    betas = np.geomspace(1.0, 1000.0, 20)
    spent: dict[str, float] = {}
    patched = []
    for module_name, owner_name, attr, label in _BREAKDOWN:
        module = importlib.import_module(module_name)
        owner = module if owner_name is None else getattr(module, owner_name)
        original = getattr(owner, attr)

        def timed(*args, _f=original, _label=label, **kwargs):
            t0 = time.perf_counter()
            try:
                return _f(*args, **kwargs)
            finally:
                spent[_label] = spent.get(_label, 0.0) + time.perf_counter() - t0

        patched.append((owner, attr, original))
        setattr(owner, attr, timed)
    try:
        rd_curve(p, d, betas, tol=acc)
        runs, totals = [], []
        for _ in range(rounds):
            spent.clear()
            t, _ = _timed(lambda: rd_curve(p, d, betas, tol=acc))
            totals.append(t)
            runs.append(dict(spent))
    finally:
        for owner, attr, original in reversed(patched):
            setattr(owner, attr, original)
    unit = _pass_time(d, 20.0, repeat=21) * len(betas)
    total = statistics.median(totals)
    print(f"R(D) {n}x{n}, 20 slopes, {acc:g}: {total:.3f} s = {total / unit:.1f} passes per slope "
          f"(one pass {unit / len(betas) * 1e3:.3f} ms, best of 21; medians of {rounds} curves, timers on)")
    print(f"{'part':<44} {'ms per curve':>12} {'passes/slope':>13}")
    for *_, label in _BREAKDOWN:
        part = statistics.median(run.get(label, 0.0) for run in runs)
        print(f"{label:<44} {part * 1e3:>12.1f} {part / unit:>13.2f}")


def bench_large(n: int = 4096, acc: float = 1e-6) -> None:
    """Wall time and peak memory of a 20-slope R(D) curve and a capacity at ``n x n``."""
    from estimators import channel_capacity, rd_curve

    rng = np.random.default_rng(n)
    p, d = rng.dirichlet(np.ones(n)), rng.random((n, n))
    w = rng.dirichlet(np.ones(n), size=n)
    inputs_mb = (d.nbytes + w.nbytes) / 2**20
    for name, run in [
        (f"R(D) {n}x{n}, 20 slopes", lambda: rd_curve(p, d, np.geomspace(1.0, 1000.0, 20), tol=acc)),
        (f"capacity {n}x{n}", lambda: channel_capacity(w, tol=acc)),
    ]:
        tracemalloc.start()
        t0 = time.perf_counter()
        out = run()
        t = time.perf_counter() - t0
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        ok = bool(np.all(out.converged))
        steps = out.iterations if hasattr(out, "input_pmf") else sum(pt.iterations for pt in out.points)
        print(f"{name:<28} {t:>8.2f} s  peak {peak:>7.0f} MiB traced (inputs {inputs_mb:.0f} MiB)  "
              f"{steps} Newton steps  certified {ok}")
    print(f"process peak resident set: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10:.0f} MiB")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer slopes and repeats, 256 only at scale")
    parser.add_argument("--old", metavar="PATH", help="another checkout to run against, alternating")
    parser.add_argument("--repeat", type=int, default=None, help="alternated runs per task with --old")
    parser.add_argument("--scale", action="store_true", help="dit, plain BA and cvxpy at 256 and 1024")
    parser.add_argument("--large", action="store_true", help="4096 x 4096 timings and peak memory")
    parser.add_argument("--breakdown", action="store_true", help="where a 1024 x 1024 curve's time goes, in passes")
    parser.add_argument("--no-peers", action="store_true", help="skip the dit/embo table")
    args = parser.parse_args(argv)
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    warnings.simplefilter("ignore", RuntimeWarning)  # dit and embo divide by zero on purpose
    ok = True
    with threadpool_limits(1):
        if not args.no_peers:
            rng = np.random.default_rng(0)
            rows = [bench_capacity(rng)]
            rows.extend(bench_rd(rng, peer_slopes=5 if args.quick else 10))
            rows.extend(bench_ib(rng, dit_slopes=1 if args.quick else 2))
            _print_table(rows)
        if args.old:
            print()
            ok = bench_old_vs_new(args.old, args.repeat or (3 if args.quick else 5), args.quick)
        if args.scale:
            print()
            bench_scale([256] if args.quick else [256, 1024])
        if args.breakdown:
            print()
            bench_breakdown(256 if args.quick else 1024)
        if args.large:
            print()
            bench_large()
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
