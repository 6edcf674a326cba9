"""The Blahut-Arimoto iterations, written once for every array backend.

Private: :mod:`estimators.blahut_arimoto` validates the inputs and wraps the
outputs in result objects. Every function here takes an
:class:`~estimators._ba_backend.ArrayOps` ``ops`` and arrays of that backend.

Rate-distortion at slope ``beta`` is the convex problem in the reproduction
marginal ``q`` [1]_

.. math:: L(\\beta) = \\min_q F(q), \\qquad
          F(q) = -\\sum_x p(x) \\ln \\sum_{\\hat x} q(\\hat x) e^{-\\beta d(x, \\hat x)} ,

whose Blahut-Arimoto step is ``q <- q * c`` with
``c(xhat) = sum_x p(x) e^{-beta d(x,xhat)} / Z_x``. For any ``q``,
``F(q) - ln max c <= L(beta) <= F(q)`` (Blahut's lower bound), so
``ln max c`` certifies the gap. Plain BA reaches small gaps slowly when the
optimal ``q`` has zeros; after a few BA steps the solver switches to Newton's
method on the active support (a primal active-set method, as mix-SQP [2]_),
adding back any symbol whose ``c`` exceeds one. Rounds are kept monotone in
``F`` (:class:`_Descent`): a round whose guessed support raised ``F`` is
redone from the best iterate with one-at-a-time removals, and if that fails
too, plain Blahut-Arimoto steps take over. The certificate is the same
whichever step produced ``q``. Channel capacity uses the same machinery on
``-I(p; W)`` with the bracket ``max_x D(W_x || pW) - I(p; W)``.

References
----------
.. [1] R. E. Blahut, "Computation of channel capacity and rate-distortion
   functions", IEEE Trans. Inf. Theory 18(4), 1972.
.. [2] Y. Kim, P. Carbonetto, M. Stephens, M. Anitescu, "A fast algorithm for
   maximum likelihood estimation of mixture proportions using sequential
   quadratic programming", J. Comput. Graph. Stat. 29(2), 2020.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from estimators._ba_backend import ArrayOps

#: Symbols whose ``q`` falls below ``exp(-SUPPORT_LOG_CUTOFF)`` times the largest leave the Newton support.
SUPPORT_LOG_CUTOFF = 40.0
#: Mass mixed into every symbol when a stalled Newton phase falls back to plain Blahut-Arimoto steps.
REENTRY_MASS = 1e-3
#: Mass (relative to the largest) given to a violator re-admitted to the Newton support; see :func:`newton_round`.
NEWTON_REENTRY_MASS = 1e-12
#: Plain Blahut-Arimoto steps taken when a Newton round made no progress.
FALLBACK_BA_STEPS = 200
#: Smallest row sum ``(K q)(x)`` for which :func:`rd_encoder` divides in the linear domain.
ENCODER_Z_FLOOR = 1e-200
#: Relative mass below which an input that alone reaches some output may still leave the support.
KEEP_POSITIVE_FLOOR = 1e-30
#: A large finite stand-in for ``log 0`` where a product with zero must stay zero.
LOG_ZERO = -1e30


# --------------------------------------------------------------------------
# rate-distortion


@dataclass(frozen=True)
class Kernel:
    """``exp(A)`` with ``A = -beta d``, stored row-stabilised as ``K = exp(A - a_max)``."""

    a: Any
    a_max: Any
    k: Any

    @classmethod
    def of(cls, ops: ArrayOps, a) -> Kernel:
        a_max = ops.amax(a, axis=1)
        return cls(a, a_max, ops.exp(a - a_max[:, None]))


def log_partition(ops: ArrayOps, kern: Kernel, log_q):
    """``log Z_x = log sum_xhat q(xhat) exp(A[x, xhat])``, stabilised; exact logsumexp if it underflows."""
    mq = ops.amax(log_q)
    z = kern.k @ ops.exp(log_q - mq)
    log_z = ops.log(z) + kern.a_max + mq
    if not ops.all(z > 0):
        log_z = ops.logsumexp(kern.a + log_q[None, :], axis=1)
    return log_z


def log_ratio(ops: ArrayOps, kern: Kernel, log_p, log_z):
    """``log c(xhat) = log sum_x p(x) exp(A[x, xhat]) / Z_x``; ``-inf`` where it underflows."""
    u = log_p - log_z + kern.a_max
    mu = ops.amax(u)
    log_c = ops.log(ops.exp(u - mu) @ kern.k) + mu
    if ops.any(log_c == -math.inf):  # one shift for all rows lost a column: exact logsumexp
        log_c = ops.logsumexp(kern.a + (log_p - log_z)[:, None], axis=0)
    return log_c


@dataclass(frozen=True)
class RDSolution:
    """What :func:`solve_rd` found (arrays of the backend)."""

    log_q: Any
    log_z: Any
    log_c: Any
    iterations: int


def solve_rd(ops: ArrayOps, log_p, kern: Kernel, log_q, *, tol: float, max_iter: int, warmup: int = 30) -> RDSolution:
    """Minimise ``F(q)`` for ``kern = Kernel.of(ops, -beta d)`` until ``max log c <= tol`` or ``max_iter`` steps.

    The kernel is built once by the caller, which reuses it for the encoder (:func:`rd_encoder`).
    """
    p = ops.exp(log_p)
    it, guard = 0, _Descent()
    while True:
        log_z = log_partition(ops, kern, log_q)
        log_c = log_ratio(ops, kern, log_p, log_z)
        if ops.item(ops.amax(log_c)) <= tol or it >= max_iter:
            return RDSolution(log_q, log_z, log_c, it)
        if it < warmup:
            log_q = log_q + ops.where(log_q > -math.inf, log_c, 0.0)
            log_q = log_q - ops.logsumexp(log_q)
            it += 1
            continue
        value = -ops.item(ops.sum(ops.where(p > 0, p * log_z, 0.0)))
        log_q, log_c, mode = guard.check(log_q, log_c, value)
        if mode == "fallback":
            log_q, warmup = _interior(ops, log_q), it + FALLBACK_BA_STEPS
            continue
        log_q, steps = newton_round(
            ops, lambda idx: _RDOracle(ops, kern, p, idx), log_q, log_c, tol=tol, budget=max_iter - it,
            guess_drops=mode == "guess",
        )
        it += steps


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


def _interior(ops: ArrayOps, log_x):
    """``log((1 - eps) x + eps * uniform)``: every coordinate positive again."""
    n = log_x.shape[0]
    mix = ops.stack([log_x + math.log1p(-REENTRY_MASS), ops.full(n, math.log(REENTRY_MASS / n))], axis=0)
    return ops.logsumexp(mix, axis=0)


class _RDOracle:
    """``F`` restricted to the symbols ``idx``: value, ``-grad`` (``c``), Hessian, gap ``ln max c``."""

    def __init__(self, ops: ArrayOps, kern: Kernel, p, idx):
        # rows rescaled by the support's own maxima: c and the Hessian do not see the row scale
        k = kern.k[:, idx]
        top = ops.amax(k, axis=1, keepdims=True)
        if ops.all(top > 1e-250):
            k = k / top
        else:  # some row lives entirely in underflow: rebuild it from the log kernel
            a_s = kern.a[:, idx]
            top = ops.amax(a_s, axis=1, keepdims=True)
            k = ops.exp(a_s - ops.where(top > -math.inf, top, 0.0))
        self.ops, self.p, self.k = ops, p, k
        self.sqrt_p = ops.exp(0.5 * ops.log(p))
        # 0/1 kernel pattern on the rows that carry mass, where the kernel has zeros at all
        self.reach = None if ops.all(k > 0) else ops.where((k > 0) & (p > 0)[:, None], 1.0, 0.0)
        self.row_live = p > 0

    def value(self, q) -> float:
        return -self.ops.item(self.ops.sum(self.ops.xlogy(self.p, self.k @ q)))

    def needed(self, keep, q):
        """Symbols outside ``keep`` without which some ``x`` with ``p(x) > 0`` gets ``Z_x = 0`` (``F`` infinite).

        Only a kernel with zero entries (``beta = inf``, or underflow) has any.
        """
        ops = self.ops
        if self.reach is None:
            return q < 0
        covered = (self.reach @ ops.where(keep, 1.0, 0.0)) > 0
        uncovered = ops.where(self.row_live & ~covered, 1.0, 0.0)
        return ~keep & (q > 0) & ((uncovered @ self.reach) > 0)

    def derivatives(self, q):
        ops = self.ops
        z = self.k @ q
        c = (self.p / z) @ self.k
        g = self.k * (self.sqrt_p / z)[:, None]
        return c, g.T @ g, ops.item(ops.log(ops.amax(c)))


def newton_round(ops: ArrayOps, make_oracle, log_x, excess, *, tol: float, budget: int, guess_drops: bool = True):
    """One active-set round on the simplex: re-admit violators, then Newton on the support.

    ``excess`` scores every coordinate (``> 0`` where moving mass there would
    lower the objective); ``make_oracle(idx)`` gives the objective restricted
    to the coordinates ``idx``. ``guess_drops=False`` (used after a round that
    did not lower the global gap) removes coordinates only one at a time,
    through the line search, which cannot cycle. Returns the new ``log x`` and
    the steps spent.

    Violators re-enter with a tiny mass (``NEWTON_REENTRY_MASS``), so that they
    start below their optimum. The objective can be log-like in a coordinate,
    ``-c ln(a x + b)`` with small ``b`` (an input nearly alone on some output,
    a source symbol nearly alone near some reproduction), with an optimum far
    below any fixed guess: Newton approaches it monotonically from below but
    overshoots past zero from above, and a coordinate re-entering above it is
    dropped at once and re-admitted by the next round, without end. Where the
    objective is smooth at zero, one Newton step restores the mass anyway.
    """
    top = ops.amax(log_x)
    alive = log_x > top - SUPPORT_LOG_CUTOFF
    idx = ops.nonzero(alive | (excess > 0.5 * tol))
    x = ops.where(alive, ops.exp(log_x - top), 0.0)[idx]
    x = ops.where(x > 0, x, NEWTON_REENTRY_MASS * ops.amax(x))
    x = x / ops.sum(x)
    steps = 0
    while steps < budget:
        x, keep, done, used = _newton_steps(
            ops, make_oracle(idx), x, tol=0.25 * tol, budget=budget - steps, guess_drops=guess_drops
        )
        steps += used
        if done or keep is None or keep.shape[0] == 0:  # none kept: the round was lost to overflow
            break
        idx, x = idx[keep], x[keep]
        x = x / ops.sum(x)
    full = ops.full(log_x.shape[0], -math.inf)
    full[idx] = ops.log(x)
    return full, max(steps, 1)


def _newton_steps(ops: ArrayOps, oracle, x, *, tol: float, budget: int, guess_drops: bool = True):
    """Newton's method on the simplex face of ``x``'s support, for a convex ``oracle``.

    The step solves ``H delta = -grad - nu 1`` with ``sum(delta) = 0``. When
    it leaves the simplex at coordinates whose gradient also pushes mass out,
    those all leave the support at once; otherwise the step is cut to the
    boundary and backtracked (Armijo). Returns ``(x, keep, done, steps)``: ``keep`` indexes the
    coordinates still positive when some hit zero (``None`` otherwise),
    ``done`` is whether the oracle's gap fell to ``tol``.
    """
    n = x.shape[0]
    eye, ones = ops.eye(n), ops.full(n, 1.0)
    steps = 0
    f = oracle.value(x)
    while steps < budget:
        ng, h, gap = oracle.derivatives(x)
        if gap <= tol:
            return x, None, True, steps
        h = h + (1e-13 * ops.item(ops.amax(h)) + 1e-300) * eye
        v = ops.solve(h, ops.stack([ng, ones], axis=1))
        delta = v[:, 0] - (ops.sum(v[:, 0]) / ops.sum(v[:, 1])) * v[:, 1]
        slope = -ops.item(ops.sum(ng * delta))
        if not slope < 0:
            delta = x * (ng - ops.sum(x * ng))  # the Blahut-Arimoto direction, a descent direction
            slope = -ops.item(ops.sum(ng * delta))
        steps += 1
        leaving = (x + delta <= 0) & (ng < ops.sum(x * ng))
        if guess_drops and ops.any(leaving):
            leaving = leaving & ~oracle.needed(~leaving, x)
        if guess_drops and ops.any(leaving):
            # Newton and the gradient agree that these should be empty: guess the
            # active set in one go (wrong guesses come back as violators).
            keep = ops.nonzero(~leaving)
            return x, keep, False, steps
        x_new, f_new = _line_search(ops, oracle, x, delta, f, slope)
        x, f = x_new, f_new
        if not ops.all(x > 0):
            return x, ops.nonzero(x > 0), False, steps
    return x, None, False, steps


def _line_search(ops: ArrayOps, oracle, x, delta, f: float, slope: float):
    """Armijo backtracking along ``delta`` from the largest feasible step.

    A step blocked by a coordinate that the objective needs (``oracle.needed``)
    stops halfway to the boundary instead of zeroing that coordinate.
    """
    t, blocking = _step_to_boundary(ops, x, delta)
    if blocking is not None:
        rest = x > 0
        rest[blocking[1]] = False
        if bool(oracle.needed(rest, x)[blocking[1]]):
            t, blocking = 0.5 * t, None
    while True:
        x_new = x + t * delta
        if blocking is not None and t == blocking[0]:
            x_new[blocking[1]] = 0.0
        x_new = ops.where(x_new > 0, x_new, 0.0)
        x_new = x_new / ops.sum(x_new)
        f_new = oracle.value(x_new)
        # the rounding allowance lets quadratic convergence finish below float resolution of f
        if f_new <= f + 1e-4 * t * slope + 8e-16 * (1.0 + abs(f)) or t < 1e-12:
            return x_new, f_new
        t, blocking = 0.5 * t, None


def _step_to_boundary(ops: ArrayOps, q, delta):
    """Largest step in ``(0, 1]`` keeping ``q + t delta >= 0``, and the index that blocks it."""
    neg = delta < 0
    if not ops.any(neg):
        return 1.0, None
    ratios = ops.where(neg, -q / ops.where(neg, delta, -1.0), math.inf)
    j = ops.argmax(-ratios)
    t = ops.item(ratios[j])
    if t >= 1.0:
        return 1.0, None
    return t, (t, j)


def rd_encoder(ops: ArrayOps, kern: Kernel, log_q, log_z):
    """``Q(xhat|x) = q(xhat) exp(A[x, xhat]) / Z_x`` (zero where ``q`` is zero).

    Built from the row-stabilised kernel ``K`` that the solver already holds,
    as ``K * q / (K q)`` with no further exponential; where some row's
    ``K q`` is too small for that quotient to be accurate, from the log domain.
    """
    q = ops.exp(log_q - ops.amax(log_q))
    z = kern.k @ q
    if ops.all(z > ENCODER_Z_FLOOR):
        return kern.k * (q[None, :] / z[:, None])
    return ops.exp(log_q[None, :] + kern.a - log_z[:, None])


# --------------------------------------------------------------------------
# rate-distortion at beta = inf (the D_min end point)

#: Relative ridge of the equilibrated Newton matrix of :func:`solve_min_distortion` (unit diagonal).
END_POINT_RIDGE = 1e-12
#: A Newton step ``u`` in (0, 1) grows a mass by ``1 / (1 - u)`` (exact for ``-p ln q + a q``), ``u`` capped here.
GROWTH_CAP = 0.99
#: Bisection steps of the entering mass (:func:`segment_minimum`): ``t`` in ``[1e-300, 1]`` to a relative ``1e-3``.
ENTER_BISECTIONS = 80


@dataclass(frozen=True)
class EndPointSolution:
    """What :func:`solve_min_distortion` found (numpy): ``q`` on every reproduction symbol."""

    q: np.ndarray
    iterations: int


def solve_min_distortion(p: np.ndarray, best: np.ndarray, *, tol: float, max_iter: int) -> EndPointSolution:
    r"""The least-rate marginal among encoders that reach ``D_min``: ``min_q F(q)`` for a 0/1 kernel.

    Row ``x`` may use only its minimisers ``A_x`` (``best[x]``), so

    .. math:: F(q) = -\sum_x p(x) \ln \sum_{\hat x \in A_x} q(\hat x), \qquad
              c(\hat x) = \sum_{x : \hat x \in A_x} \frac{p(x)}{\sum_{A_x} q}

    and ``ln max c`` is Blahut's certified gap, as at a finite slope. Solved on
    the host in float64 (the problem is combinatorial and small once reduced):

    1. Rows with ``p(x) = 0`` are left out (they cost nothing), identical rows
       merged, and only one of identical columns kept, none that another column
       strictly contains (moving a column's mass to a superset never raises ``F``).
    2. Newton on the support in relative coordinates ``q (1 + u)``, whose
       Hessian ``W^T diag(p) W`` (``W`` the encoder on the support) is
       equilibrated to unit diagonal before it is solved: masses serving rows
       of ``p ~ 1e-60`` alone get steps as accurate as the large ones (a Hessian
       in ``q`` spans 120 decades there).
    3. A column with ``c > 1`` enters with the mass that minimises ``F`` along
       the segment to its vertex (:func:`segment_minimum`), which has the scale of
       the rows it serves, however small. A Newton step that would empty a
       column stops at the minimum of ``F`` on its ray (:func:`_ray_minimum`),
       which empties it only where ``F`` falls all the way; masses grow by
       ``1 / (1 - u)`` rather than ``1 + u`` (``GROWTH_CAP``).

    The certificate is evaluated by the caller on the full alphabet.
    """
    live = p > 0
    rows, inverse = np.unique(best[live], axis=0, return_inverse=True)
    w = np.bincount(inverse.ravel(), weights=p[live], minlength=rows.shape[0])
    w = w / w.sum()
    cols, first = np.unique(rows.T, axis=0, return_index=True)
    k = cols.T.astype(float)
    size = k.sum(axis=0)
    overlap = k.T @ k
    inside = (overlap == size[:, None]) & (size[None, :] > size[:, None])
    keep = (size > 0) & ~inside.any(axis=1)
    q_red, iterations = _end_point_newton(k[:, keep], w, tol=tol, max_iter=max_iter)
    q = np.zeros(best.shape[1])
    q[first[keep]] = q_red
    return EndPointSolution(q, iterations)


def _end_point_newton(k: np.ndarray, w: np.ndarray, *, tol: float, max_iter: int) -> tuple[np.ndarray, int]:
    """Active-set Newton for ``min_q -sum_x w(x) ln (k q)(x)`` over pmfs ``q``, 0/1 ``k`` (see above)."""
    q = np.full(k.shape[1], 1.0 / k.shape[1])
    it = 0
    while it < max_iter:
        z = k @ q
        c = (w / z) @ k
        if math.log(c.max()) <= tol:
            break
        it += 1
        entering = (q == 0) & (c > math.exp(0.5 * tol))
        if entering.any():
            for j in np.argsort(-c):
                if entering[j]:
                    q, z = _enter(k, w, q, z, int(j))
            continue
        q = _end_point_step(k, w, q, z, c)
    return q, it


def _enter(k: np.ndarray, w: np.ndarray, q: np.ndarray, z: np.ndarray, j: int) -> tuple[np.ndarray, np.ndarray]:
    """Move the best mass ``t`` of ``q`` to column ``j`` (``q <- (1 - t) q + t e_j``), if ``c(j) > 1``."""
    col = k[:, j]
    if float((w / z) @ col) <= 1.0:
        return q, z
    t = segment_minimum(w, z, col)
    q = (1.0 - t) * q
    q[j] += t
    return q, (1.0 - t) * z + t * col


def segment_minimum(w: np.ndarray, z: np.ndarray, col: np.ndarray) -> float:
    r"""The minimiser ``t`` of :math:`\phi(t) = -\sum_x w(x) \ln((1 - t) z_x + t k_x)` on ``[0, 1]``.

    ``phi`` is ``F`` along the segment from ``q`` (``z = Kq > 0``) to the
    vertex of the column ``k``. Located from the sign of ``phi'``, which
    resolves rows far below ``phi``'s own float resolution: bisection,
    geometric while the bracket spans orders of magnitude. ``1`` where
    ``phi`` falls all the way, ``1e-300`` where it does not fall (``phi'(0) >= 0``).
    Used by the end point's solver and by :meth:`estimators._ba_slopes.RDSlopes._vertex_step`.
    """

    def slope(t: float) -> float:
        return float(np.sum(w * (z - col) / ((1.0 - t) * z + t * col)))

    if slope(1.0 - 1e-15) <= 0.0:  # the column serves every row: all mass there
        return 1.0
    floor = 1e-300
    if slope(floor) >= 0.0:
        return floor
    return _bisect(lambda t: slope(t) < 0.0, floor, 1.0)[0]


def _bisect(below, lo: float, hi: float) -> tuple[float, float]:
    """A bracket ``[lo, hi]``, relative width ``1e-3``, of where ``below`` turns false (true at ``lo``).

    Geometric while the bracket spans more than a factor 4, so that roots
    down to ``1e-300`` are found in ``ENTER_BISECTIONS`` steps.
    """
    for _ in range(ENTER_BISECTIONS):
        mid = math.sqrt(lo * hi) if hi > 4.0 * lo else 0.5 * (lo + hi)
        if below(mid):
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-3 * lo:
            break
    return lo, hi


def _end_point_step(k: np.ndarray, w: np.ndarray, q: np.ndarray, z: np.ndarray, c: np.ndarray) -> np.ndarray:
    """One Newton step on the support of ``q``, relative coordinates, equilibrated; see :func:`solve_min_distortion`."""
    s = np.flatnonzero(q > 0)
    qs, cs = q[s], c[s]
    enc = k[:, s] * (qs / z[:, None])  # W: rows sum to one
    r = qs * cs
    h = (enc * w[:, None]).T @ enc
    scale = 1.0 / np.sqrt(np.maximum(np.diagonal(h), np.finfo(float).tiny))
    a = h * scale[:, None] * scale[None, :]
    a[np.diag_indices_from(a)] += END_POINT_RIDGE
    sol = np.linalg.solve(a, np.stack([r * scale, qs * scale], axis=1)) * scale[:, None]
    u = sol[:, 0] - (qs @ sol[:, 0]) / (qs @ sol[:, 1]) * sol[:, 1]
    if not r @ u > 0.0:
        u = cs - 1.0  # the Blahut-Arimoto step, a descent direction
    slope = -float(r @ u)
    out = np.zeros_like(q)
    if u.min() < -1.0:  # the full step would empty a column
        out[s] = _ray_minimum(k[:, s], w, qs, u, int(np.argmin(u)))
        return out
    f = -float(w @ np.log(z))
    t = 1.0
    while True:
        step = qs * np.where(u > 0.0, 1.0 / (1.0 - np.minimum(t * u, GROWTH_CAP)), 1.0 + t * u)
        step = np.maximum(step, 0.0)
        step = step / step.sum()
        z_new = k[:, s] @ step
        if np.all(z_new > 0.0):
            f_new = -float(w @ np.log(z_new))
            if f_new <= f + 1e-4 * t * slope + 8e-16 * (1.0 + abs(f)) or t < 1e-12:
                break
        t *= 0.5
    out[s] = step
    return out


def _ray_minimum(k: np.ndarray, w: np.ndarray, q: np.ndarray, u: np.ndarray, block: int) -> np.ndarray:
    r"""The minimiser of ``F`` on the ray ``q (1 + t u)`` before column ``block`` (which some row needs) empties.

    With ``t = t_max - g``, ``t_max = -1 / u[block]``, the column keeps the
    mass ``-q u g``, computed from ``g`` so that it can reach ``1e-300``: a
    row that only this column serves pushes back with ``p(x) / g`` however
    small ``p(x)``, where Newton's model of ``-p(x) ln q`` overshoots past zero
    and halving the step would crawl there. Bisection on the sign of
    :math:`\phi'(t) = -\sum_x w(x) (k \, q u)_x / (k q(t))_x`, geometric in ``g``.
    """
    t_max = -1.0 / u[block]
    dz = k @ (q * u)

    def point(g: float) -> np.ndarray:
        x = q * (1.0 + (t_max - g) * u)
        x[block] = -q[block] * u[block] * g
        return np.maximum(x, 0.0)

    def slope(g: float) -> float:
        z = k @ point(g)
        return -float(np.sum(w * dz / z)) if np.all(z > 0.0) else math.inf

    if slope(0.0) <= 0.0:  # F falls all the way: the column leaves
        x = point(0.0)
        return x / x.sum()
    _, hi = _bisect(lambda g: slope(g) >= 0.0, 1e-300 * t_max, t_max)  # slope(lo) > 0, slope(hi) < 0
    x = point(hi)
    return x / x.sum()


# --------------------------------------------------------------------------
# channel capacity


@dataclass(frozen=True)
class CapacitySolution:
    log_p: Any
    lower: float
    upper: float
    iterations: int


def solve_capacity(ops: ArrayOps, w, log_p, *, tol: float, max_iter: int, warmup: int = 30) -> CapacitySolution:
    """Maximise ``I(p; W)`` with the bounds ``I(p;W) <= C <= max_x D(W_x || pW)``.

    Blahut-Arimoto steps ``p(x) <- p(x) exp(D(W_x || q))`` (normalised, log
    domain), then active-set Newton rounds on ``-I``; the bracket is checked
    on the full input alphabet whichever step produced ``p``. Where
    ``max_x D(W_x || pW)`` is no good (an output reached only by inputs of
    vanishing mass), the upper end uses a slightly mixed output pmf instead
    (:func:`_mixture_upper`).
    """
    neg_h = ops.sum(ops.xlogy(w, w), axis=1)
    used = ops.sum(w, axis=0) > 0
    w_mean = ops.sum(w, axis=0) / w.shape[0]
    it, guard = 0, _Descent()
    while True:
        div = _row_divergences(ops, w, neg_h, used, log_p)
        lower = ops.item(ops.sum(ops.exp(log_p) * ops.where(log_p > -math.inf, div, 0.0)))
        upper = ops.item(ops.amax(div))
        if upper - lower > tol and it >= warmup:  # (plain steps first: no use checking then)
            upper = min(upper, _mixture_upper(ops, w, neg_h, used, w_mean, log_p, min(0.25 * tol, 0.5)))
        if upper - lower <= tol or it >= max_iter:
            # at the optimum every active D equals the max, and the rounded mean can exceed it by an ulp
            return CapacitySolution(log_p, min(lower, upper), upper, it)
        if it < warmup:
            log_p = log_p + div
            log_p = log_p - ops.logsumexp(log_p)
            it += 1
            continue
        log_p, excess, mode = guard.check(log_p, div - lower, -lower)
        if mode == "fallback":
            log_p, warmup = _interior(ops, log_p), it + FALLBACK_BA_STEPS
            continue
        log_p, steps = newton_round(
            ops, lambda idx: _CapacityOracle(ops, w[idx], neg_h[idx]), log_p, excess, tol=tol,
            budget=max_iter - it, guess_drops=mode == "guess",
        )
        it += steps


class _CapacityOracle:
    """``-I(p; W)`` on the inputs of ``w``: value, ``-grad`` (``D(W_x||q)`` up to a constant), Hessian, gap."""

    def __init__(self, ops: ArrayOps, w, neg_h):
        self.ops, self.w, self.neg_h = ops, w, neg_h

    def needed(self, keep, p):
        """Inputs outside ``keep`` that alone reach some output, while above ``KEEP_POSITIVE_FLOOR`` (relative).

        At ``p(x) = 0`` such an input's gradient is infinite, so the optimum
        keeps it; an optimum below the floor is left to the mixed upper bound
        of :func:`_mixture_upper`, which certifies dropping it.
        """
        ops = self.ops
        reach = ops.where(self.w > 0, 1.0, 0.0)
        uncovered = ops.where((ops.where(keep, 1.0, 0.0) @ reach) > 0, 0.0, 1.0)
        return ~keep & (p > KEEP_POSITIVE_FLOOR * ops.amax(p)) & ((reach @ uncovered) > 0)

    def value(self, p) -> float:
        q = p @ self.w
        return -self.ops.item(self.ops.sum(p * self.neg_h) - self.ops.sum(self.ops.xlogy(q, q)))

    def derivatives(self, p):
        ops = self.ops
        q = p @ self.w
        pos = q > 0
        div = self.neg_h - self.w @ ops.where(pos, ops.log(ops.where(pos, q, 1.0)), 0.0)
        g = self.w * ops.where(pos, ops.exp(-0.5 * ops.log(ops.where(pos, q, 1.0))), 0.0)[None, :]
        return div, g @ g.T, ops.item(ops.amax(div) - ops.sum(p * div))


def _mixture_upper(ops: ArrayOps, w, neg_h, used, w_mean, log_p, eta: float) -> float:
    r"""``max_x D(W_x || r)``, ``r = (1 - eta) pW + eta * mean_x W_x``: also an upper bound on ``C``.

    Every output pmf ``r`` gives :math:`C \le \max_x D(W_x \| r)` (the
    minimax form of capacity). Where the optimal input puts a vanishing mass on
    some ``x`` (below float range, so ``pW`` misses an output only that input
    reaches), ``max_x D(W_x || pW)`` is infinite; the slightly mixed ``r`` covers
    every used output and costs at most ``-ln(1 - eta)`` on the other inputs.
    """
    mp = ops.amax(log_p)
    r = (1.0 - eta) * math.exp(ops.item(mp)) * (ops.exp(log_p - mp) @ w) + eta * w_mean
    log_r = ops.where(used, ops.log(ops.where(used, r, 1.0)), 0.0)
    return ops.item(ops.amax(neg_h - w @ log_r))


def _row_divergences(ops: ArrayOps, w, neg_h, used, log_p):
    """``D(W(.|x) || q)`` for every input ``x``, ``q = p W`` computed stably in the log domain."""
    mp = ops.amax(log_p)
    q = ops.exp(log_p - mp) @ w
    if ops.all(q[used] > 0):
        log_q = ops.log(q) + mp
    else:
        log_q = ops.logsumexp(log_p[:, None] + ops.log(w), axis=0)
    log_q = ops.where(used, log_q, 0.0)
    return neg_h - w @ ops.where(log_q > -math.inf, log_q, LOG_ZERO)


# --------------------------------------------------------------------------
# information bottleneck


@dataclass(frozen=True)
class IBSolution:
    log_enc: Any
    lagrangian: float
    rate: float
    relevance: float
    iterations: int
    converged: bool


def ib_measures(ops: ArrayOps, p_xy, log_enc, enc=None):
    """``(I(X;T), I(T;Y), log p(t), log p(y|t))`` of the encoder ``exp(log_enc)[x, t]``.

    Both informations come from entropies with ``0 log 0 = 0``:
    ``I(X;T) = H(T) - H(T|X)`` and ``I(T;Y) = H(T) + H(Y) - H(T,Y)``.
    ``log p(y|t)`` is ``-inf`` where ``p(t, y) = 0`` (rows of unused ``t`` included).
    ``enc``, where the caller has it, is ``exp(log_enc)`` with ``log_enc``
    finite (``LOG_ZERO`` for zeros): ``H(T|X)`` is then a plain product.
    """
    p_x = ops.sum(p_xy, axis=1)
    if enc is None:
        enc = ops.exp(log_enc)
        h_t_x = -ops.sum(p_x * ops.sum(ops.xlogy(enc, enc), axis=1))
    else:
        h_t_x = -ops.sum(p_x * ops.sum(enc * log_enc, axis=1))
    p_t = p_x @ enc
    p_ty = enc.T @ p_xy
    h_t = -ops.sum(ops.xlogy(p_t, p_t))
    p_y = ops.sum(p_xy, axis=0)
    h_y = -ops.sum(ops.xlogy(p_y, p_y))
    h_ty = -ops.sum(ops.xlogy(p_ty, p_ty))
    log_pt = ops.log(p_t)
    log_py_t = ops.log(p_ty) - ops.where(p_t > 0, log_pt, 0.0)[:, None]
    return ops.item(h_t - h_t_x), ops.item(h_t + h_y - h_ty), log_pt, log_py_t


def solve_ib(ops: ArrayOps, p_xy, beta: float, log_enc, *, tol: float, max_iter: int) -> IBSolution:
    """Iterative IB [3]_: ``p(t|x) ∝ p(t) exp(-beta D(p(y|x) || p(y|t)))`` until the Lagrangian settles.

    The Lagrangian ``I(X;T) - beta I(T;Y)`` never increases along these
    iterations; the run has converged when one step lowers it by at most ``tol``.

    .. [3] N. Tishby, F. C. Pereira, W. Bialek, "The information bottleneck
       method", Allerton 1999.
    """
    p_x = ops.sum(p_xy, axis=1)
    live_x = p_x > 0
    p_y_x = p_xy / ops.where(live_x, p_x, 1.0)[:, None]
    neg_h = ops.sum(ops.xlogy(p_y_x, p_y_x), axis=1)
    rate, rel, log_pt, log_py_t = ib_measures(ops, p_xy, log_enc)
    lag = rate - beta * rel
    for it in range(1, max_iter + 1):
        # one exp per iteration: logs of unused t (and of p(y|t) = 0) are LOG_ZERO, not -inf, so
        # that enc * log_enc is 0 there and H(T|X) needs no xlogy
        cross = p_y_x @ ops.where(log_py_t > -math.inf, log_py_t, LOG_ZERO).T
        # a row of p(x) = 0 has p(y|x) = 0 and neg_h = 0: its encoder is p(t), as the Lagrangian wants
        logits = ops.where(log_pt > -math.inf, log_pt, LOG_ZERO)[None, :] - beta * (neg_h[:, None] - cross)
        top = ops.amax(logits, axis=1, keepdims=True)
        e = ops.exp(logits - top)
        total = ops.sum(e, axis=1)[:, None]
        enc = e / total
        log_enc = logits - (top + ops.log(total))
        rate, rel, log_pt, log_py_t = ib_measures(ops, p_xy, log_enc, enc)
        new_lag = rate - beta * rel
        if abs(lag - new_lag) <= tol:
            return IBSolution(log_enc, new_lag, rate, rel, it, True)
        lag = new_lag
    return IBSolution(log_enc, lag, rate, rel, max_iter, False)
