r"""Log-domain active-set Newton rounds: channel capacity, and rate-distortion where the SQP solver declines.

Channel capacity: Blahut-Arimoto steps ``p(x) <- p(x) exp(D(W_x || pW))``
(normalised, log domain) [1]_ [2]_, then active-set Newton rounds on
``-I(p; W)`` over the simplex (:func:`newton_round`), kept monotone by
:class:`_Descent`; the bracket ``I(p; W) <= C <= max_x D(W_x || r)`` is
checked on the full input alphabet whichever step produced ``p``.
Where ``max_x D(W_x || pW)`` is no good (an output reached only by inputs of
vanishing mass), the upper end uses a slightly mixed output pmf
(:func:`_mixture_upper`). With ``newton=False`` only the plain steps run (the
reference solver).

Rate-distortion (:func:`solve_rd`): the same rounds on ``F(q) = -sum_x p(x) ln (Kq)(x)``
with the kernel of the support rescaled by its own row maxima, so that no row
underflows however far the support is from it: where the mix-SQP solver of
:mod:`estimators._ba_newton` (kernel rows rescaled once per problem) declines.

References
----------
.. [1] R. E. Blahut, "Computation of channel capacity and rate-distortion
   functions", IEEE Trans. Inf. Theory 18(4), 1972.
.. [2] S. Arimoto, "An algorithm for computing the capacity of arbitrary
   discrete memoryless channels", IEEE Trans. Inf. Theory 18(1), 1972.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from estimators._ba_newton import NewtonOptions
from estimators._ba_plain import LOG_ZERO, Kernel, RDSolution, log_partition, log_ratio


@dataclass(frozen=True)
class CapacitySolution:
    log_p: Any
    lower: float
    upper: float
    iterations: int


def _mixture_upper(xp, w, neg_h, used, w_mean, log_p, eta: float) -> float:
    r"""``max_x D(W_x || r)``, ``r = (1 - eta) pW + eta * mean_x W_x``: also an upper bound on ``C``.

    Every output pmf ``r`` gives :math:`C \le \max_x D(W_x \| r)` (the
    minimax form of capacity). Where the optimal input puts a vanishing mass on
    some ``x`` (below float range, so ``pW`` misses an output only that input
    reaches), ``max_x D(W_x || pW)`` is infinite; the slightly mixed ``r`` covers
    every used output and costs at most ``-ln(1 - eta)`` on the other inputs.
    """
    mp = xp.amax(log_p)
    r = (1.0 - eta) * math.exp(float(mp)) * (xp.exp(log_p - mp) @ w) + eta * w_mean
    log_r = xp.where(used, xp.log(xp.where(used, r, 1.0)), 0.0)
    return float(xp.amax(neg_h - w @ log_r))


def _row_divergences(xp, w, neg_h, used, log_p):
    """``D(W(.|x) || q)`` for every input ``x``, ``q = p W`` computed stably in the log domain."""
    mp = xp.amax(log_p)
    q = xp.exp(log_p - mp) @ w
    if xp.all(q[used] > 0):
        log_q = xp.log(q) + mp
    else:
        log_q = xp.logsumexp(log_p[:, None] + xp.log(w), axis=0)
    log_q = xp.where(used, log_q, 0.0)
    return neg_h - w @ xp.where(log_q > -math.inf, log_q, LOG_ZERO)


def solve_capacity(
    xp, w, log_p, *, tol: float, max_iter: int, options: NewtonOptions, newton: bool = True
) -> CapacitySolution:
    """Maximise ``I(p; W)`` with the bounds ``I(p;W) <= C <= max_x D(W_x || pW)``.

    Blahut-Arimoto steps ``p(x) <- p(x) exp(D(W_x || q))`` (normalised, log
    domain), then active-set Newton rounds on ``-I``; the bracket is checked
    on the full input alphabet whichever step produced ``p``. Where
    ``max_x D(W_x || pW)`` is no good (an output reached only by inputs of
    vanishing mass), the upper end uses a slightly mixed output pmf instead
    (:func:`_mixture_upper`). ``newton=False``: plain steps only.
    """
    neg_h = xp.sum(xp.xlogy(w, w), axis=1)
    used = xp.sum(w, axis=0) > 0
    w_mean = xp.sum(w, axis=0) / w.shape[0]
    it, guard, warmup = 0, _Descent(), options.capacity_warmup if newton else max_iter
    while True:
        div = _row_divergences(xp, w, neg_h, used, log_p)
        lower = float(xp.sum(xp.exp(log_p) * xp.where(log_p > -math.inf, div, 0.0)))
        upper = float(xp.amax(div))
        if upper - lower > tol and it >= warmup:  # (plain steps first: no use checking then)
            upper = min(upper, _mixture_upper(xp, w, neg_h, used, w_mean, log_p, min(0.25 * tol, 0.5)))
        if upper - lower <= tol or it >= max_iter:
            # at the optimum every active D equals the max, and the rounded mean can exceed it by an ulp
            return CapacitySolution(log_p, min(lower, upper), upper, it)
        if it < warmup:
            log_p = log_p + div
            log_p = log_p - xp.logsumexp(log_p)
            it += 1
            continue
        log_p, excess, mode = guard.check(log_p, div - lower, -lower)
        if mode == "fallback":
            log_p, warmup = _interior(xp, log_p, options.reentry_mass), it + options.fallback_steps
            continue
        log_p, steps = newton_round(
            xp, lambda idx: _CapacityOracle(xp, w[idx], neg_h[idx], options.keep_positive_floor), log_p, excess,
            tol=tol, budget=max_iter - it, options=options, guess_drops=mode == "guess",
        )
        it += steps


class _CapacityOracle:
    """``-I(p; W)`` on the inputs of ``w``: value, ``-grad`` (``D(W_x||q)`` up to a constant), Hessian, gap."""

    def __init__(self, xp, w, neg_h, keep_positive_floor: float):
        self.xp, self.w, self.neg_h, self.floor = xp, w, neg_h, keep_positive_floor

    def needed(self, keep, p):
        """Inputs outside ``keep`` that alone reach some output, while above ``keep_positive_floor`` (relative).

        At ``p(x) = 0`` such an input's gradient is infinite, so the optimum
        keeps it; an optimum below the floor is left to the mixed upper bound
        of :func:`_mixture_upper`, which certifies dropping it.
        """
        xp = self.xp
        reach = xp.where(self.w > 0, 1.0, 0.0)
        uncovered = xp.where((xp.where(keep, 1.0, 0.0) @ reach) > 0, 0.0, 1.0)
        return ~keep & (p > self.floor * xp.amax(p)) & ((reach @ uncovered) > 0)

    def value(self, p) -> float:
        q = p @ self.w
        return -float(self.xp.sum(p * self.neg_h) - self.xp.sum(self.xp.xlogy(q, q)))

    def derivatives(self, p):
        xp = self.xp
        q = p @ self.w
        pos = q > 0
        div = self.neg_h - self.w @ xp.where(pos, xp.log(xp.where(pos, q, 1.0)), 0.0)
        g = self.w * xp.where(pos, xp.exp(-0.5 * xp.log(xp.where(pos, q, 1.0))), 0.0)[None, :]
        return div, g @ g.T, float(xp.amax(div) - xp.sum(p * div))


def solve_rd(
    xp, log_p, kern: Kernel, log_q, *, tol: float, max_iter: int, options: NewtonOptions, warmup: int
) -> RDSolution:
    """Minimise ``F(q)`` for ``kern = Kernel.of(xp, -beta d)``: ``warmup`` plain steps, then Newton rounds."""
    p = xp.exp(log_p)
    it, guard = 0, _Descent()
    while True:
        log_z = log_partition(xp, kern, log_q)
        log_c = log_ratio(xp, kern, log_p, log_z)
        if float(xp.amax(log_c)) <= tol or it >= max_iter:
            return RDSolution(log_q, log_z, log_c, it)
        if it < warmup:
            log_q = log_q + xp.where(log_q > -math.inf, log_c, 0.0)
            log_q = log_q - xp.logsumexp(log_q)
            it += 1
            continue
        value = -float(xp.sum(xp.where(p > 0, p * log_z, 0.0)))
        log_q, log_c, mode = guard.check(log_q, log_c, value)
        if mode == "fallback":
            log_q, warmup = _interior(xp, log_q, options.reentry_mass), it + options.fallback_steps
            continue
        log_q, steps = newton_round(
            xp, lambda idx: _RDOracle(xp, kern, p, idx), log_q, log_c, tol=tol, budget=max_iter - it,
            options=options, guess_drops=mode == "guess",
        )
        it += steps


class _RDOracle:
    """``F`` restricted to the symbols ``idx``: value, ``-grad`` (``c``), Hessian, gap ``ln max c``."""

    def __init__(self, xp, kern: Kernel, p, idx):
        # rows rescaled by the support's own maxima: c and the Hessian do not see the row scale
        k = kern.k[:, idx]
        top = xp.amax(k, axis=1, keepdims=True)
        if xp.all(top > 1e-250):
            k = k / top
        else:  # some row lives entirely in underflow: rebuild it from the log kernel
            a_s = kern.a[:, idx]
            top = xp.amax(a_s, axis=1, keepdims=True)
            k = xp.exp(a_s - xp.where(top > -math.inf, top, 0.0))
        self.xp, self.p, self.k = xp, p, k
        self.sqrt_p = xp.exp(0.5 * xp.log(p))
        # 0/1 kernel pattern on the rows that carry mass, where the kernel has zeros at all
        self.reach = None if xp.all(k > 0) else xp.where((k > 0) & (p > 0)[:, None], 1.0, 0.0)
        self.row_live = p > 0

    def value(self, q) -> float:
        return -float(self.xp.sum(self.xp.xlogy(self.p, self.k @ q)))

    def needed(self, keep, q):
        """Symbols outside ``keep`` without which some ``x`` with ``p(x) > 0`` gets ``Z_x = 0`` (``F`` infinite).

        Only a kernel with zero entries (``beta = inf``, or underflow) has any.
        """
        xp = self.xp
        if self.reach is None:
            return q < 0
        covered = (self.reach @ xp.where(keep, 1.0, 0.0)) > 0
        uncovered = xp.where(self.row_live & ~covered, 1.0, 0.0)
        return ~keep & (q > 0) & ((uncovered @ self.reach) > 0)

    def derivatives(self, q):
        xp = self.xp
        z = self.k @ q
        c = (self.p / z) @ self.k
        g = self.k * (self.sqrt_p / z)[:, None]
        return c, g.T @ g, float(xp.log(xp.amax(c)))


class _Descent:
    """Keeps the Newton rounds monotone in the objective.

    A round that guesses the active set may raise the objective; the next
    round then restarts from the best iterate and removes coordinates only
    through the line search. If that careful round fails too, the solver falls
    back to plain Blahut-Arimoto steps, which always make progress.
    """

    def __init__(self):
        self.best = None  # (value, log_x, excess)
        self.careful = False

    def check(self, log_x, excess, value: float):
        if self.best is None or value < self.best[0] - 1e-15 * (1.0 + abs(self.best[0])):
            self.best, self.careful = (value, log_x, excess), False
            return log_x, excess, "guess"
        if not self.careful:
            self.careful = True
            return self.best[1], self.best[2], "careful"
        self.best, self.careful = None, False
        return log_x, excess, "fallback"


def _interior(xp, log_x, mass: float):
    """``log((1 - eps) x + eps * uniform)``: every coordinate positive again."""
    n = log_x.shape[0]
    mix = xp.stack([log_x + math.log1p(-mass), xp.full(n, math.log(mass / n))], axis=0)
    return xp.logsumexp(mix, axis=0)


def newton_round(
    xp, make_oracle, log_x, excess, *, tol: float, budget: int, options: NewtonOptions, guess_drops: bool = True
):
    """One active-set round on the simplex: re-admit violators, then Newton on the support.

    ``excess`` scores every coordinate (``> 0`` where moving mass there would
    lower the objective); ``make_oracle(idx)`` gives the objective restricted
    to the coordinates ``idx``. ``guess_drops=False`` (used after a round that
    did not lower the global gap) removes coordinates only one at a time,
    through the line search, which cannot cycle. Returns the new ``log x`` and
    the steps spent.

    Violators re-enter with a tiny mass (``options.newton_reentry_mass``), so that they
    start below their optimum. The objective can be log-like in a coordinate,
    ``-c ln(a x + b)`` with small ``b`` (an input nearly alone on some output,
    a source symbol nearly alone near some reproduction), with an optimum far
    below any fixed guess: Newton approaches it monotonically from below but
    overshoots past zero from above, and a coordinate re-entering above it is
    dropped at once and re-admitted by the next round, without end. Where the
    objective is smooth at zero, one Newton step restores the mass anyway.
    """
    top = xp.amax(log_x)
    alive = log_x > top - options.support_log_cutoff
    idx = xp.nonzero(alive | (excess > 0.5 * tol))
    x = xp.where(alive, xp.exp(log_x - top), 0.0)[idx]
    x = xp.where(x > 0, x, options.newton_reentry_mass * xp.amax(x))
    x = x / xp.sum(x)
    steps = 0
    while steps < budget:
        x, keep, done, used = _newton_steps(
            xp, make_oracle(idx), x, tol=0.25 * tol, budget=budget - steps, guess_drops=guess_drops
        )
        steps += used
        if done or keep is None or keep.shape[0] == 0:  # none kept: the round was lost to overflow
            break
        idx, x = idx[keep], x[keep]
        x = x / xp.sum(x)
    full = xp.full(log_x.shape[0], -math.inf)
    full[idx] = xp.log(x)
    return full, max(steps, 1)


def _newton_steps(xp, oracle, x, *, tol: float, budget: int, guess_drops: bool = True):
    """Newton's method on the simplex face of ``x``'s support, for a convex ``oracle``.

    The step solves ``H delta = -grad - nu 1`` with ``sum(delta) = 0``. When
    it leaves the simplex at coordinates whose gradient also pushes mass out,
    those all leave the support at once; otherwise the step is cut to the
    boundary and backtracked (Armijo). Returns ``(x, keep, done, steps)``: ``keep`` indexes the
    coordinates still positive when some hit zero (``None`` otherwise),
    ``done`` is whether the oracle's gap fell to ``tol``.
    """
    n = x.shape[0]
    eye, ones = xp.eye(n), xp.full(n, 1.0)
    steps = 0
    f = oracle.value(x)
    while steps < budget:
        ng, h, gap = oracle.derivatives(x)
        if gap <= tol:
            return x, None, True, steps
        h = h + (1e-13 * float(xp.amax(h)) + 1e-300) * eye
        v = xp.solve(h, xp.stack([ng, ones], axis=1))
        delta = v[:, 0] - (xp.sum(v[:, 0]) / xp.sum(v[:, 1])) * v[:, 1]
        slope = -float(xp.sum(ng * delta))
        if not slope < 0:
            delta = x * (ng - xp.sum(x * ng))  # the Blahut-Arimoto direction, a descent direction
            slope = -float(xp.sum(ng * delta))
        steps += 1
        leaving = (x + delta <= 0) & (ng < xp.sum(x * ng))
        if guess_drops and xp.any(leaving):
            leaving = leaving & ~oracle.needed(~leaving, x)
        if guess_drops and xp.any(leaving):
            # Newton and the gradient agree that these should be empty: guess the
            # active set in one go (wrong guesses come back as violators).
            keep = xp.nonzero(~leaving)
            return x, keep, False, steps
        x_new, f_new = _line_search(xp, oracle, x, delta, f, slope)
        x, f = x_new, f_new
        if not xp.all(x > 0):
            return x, xp.nonzero(x > 0), False, steps
    return x, None, False, steps


def _line_search(xp, oracle, x, delta, f: float, slope: float):
    """Armijo backtracking along ``delta`` from the largest feasible step.

    A step blocked by a coordinate that the objective needs (``oracle.needed``)
    stops halfway to the boundary instead of zeroing that coordinate.
    """
    t, blocking = _step_to_boundary(xp, x, delta)
    if blocking is not None:
        rest = x > 0
        rest[blocking[1]] = False
        if bool(oracle.needed(rest, x)[blocking[1]]):
            t, blocking = 0.5 * t, None
    while True:
        x_new = x + t * delta
        if blocking is not None and t == blocking[0]:
            x_new[blocking[1]] = 0.0
        x_new = xp.where(x_new > 0, x_new, 0.0)
        x_new = x_new / xp.sum(x_new)
        f_new = oracle.value(x_new)
        # the rounding allowance lets quadratic convergence finish below float resolution of f
        if f_new <= f + 1e-4 * t * slope + 8e-16 * (1.0 + abs(f)) or t < 1e-12:
            return x_new, f_new
        t, blocking = 0.5 * t, None


def _step_to_boundary(xp, q, delta):
    """Largest step in ``(0, 1]`` keeping ``q + t delta >= 0``, and the index that blocks it."""
    neg = delta < 0
    if not xp.any(neg):
        return 1.0, None
    ratios = xp.where(neg, -q / xp.where(neg, delta, -1.0), math.inf)
    j = xp.argmax(-ratios)
    t = float(ratios[j])
    if t >= 1.0:
        return 1.0, None
    return t, (t, j)

