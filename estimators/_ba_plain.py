r"""The plain log-domain Blahut-Arimoto iterations: the reference solver, and the information bottleneck.

Rate-distortion at slope ``beta``: ``q <- q c`` with
``c(xhat) = sum_x p(x) e^{-beta d(x,xhat)} / Z_x``, stopped when Blahut's
certificate ``ln max c`` [1]_ reaches ``tol``. Channel capacity:
``p(x) <- p(x) e^{D(W_x || pW)}`` (normalised), stopped when the bracket
``I(p; W) <= C <= max_x D(W_x || r)`` is narrower than ``tol``. Both run in
the log domain (nothing underflows), on any backend of
:mod:`estimators._ba_arrays` (``xp``). They are slow to certify where the
optimum has zeros, which the Newton solver (:mod:`estimators._ba_newton`) is
not; they serve as the reference it is checked against and where it declines.

References
----------
.. [1] R. E. Blahut, "Computation of channel capacity and rate-distortion
   functions", IEEE Trans. Inf. Theory 18(4), 1972.
.. [2] N. Tishby, F. C. Pereira, W. Bialek, "The information bottleneck
   method", Allerton 1999.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

#: Smallest row sum ``(K q)(x)`` for which :func:`rd_encoder` divides in the linear domain.
ENCODER_Z_FLOOR = 1e-200
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
    def of(cls, xp, a) -> Kernel:
        a_max = xp.amax(a, axis=1)
        return cls(a, a_max, xp.exp(a - a_max[:, None]))


def log_partition(xp, kern: Kernel, log_q):
    """``log Z_x = log sum_xhat q(xhat) exp(A[x, xhat])``, stabilised; exact logsumexp if it underflows."""
    mq = xp.amax(log_q)
    z = kern.k @ xp.exp(log_q - mq)
    log_z = xp.log(z) + kern.a_max + mq
    if not xp.all(z > 0):
        log_z = xp.logsumexp(kern.a + log_q[None, :], axis=1)
    return log_z


def log_ratio(xp, kern: Kernel, log_p, log_z):
    """``log c(xhat) = log sum_x p(x) exp(A[x, xhat]) / Z_x``; ``-inf`` where it underflows."""
    u = log_p - log_z + kern.a_max
    mu = xp.amax(u)
    log_c = xp.log(xp.exp(u - mu) @ kern.k) + mu
    if xp.any(log_c == -math.inf):  # one shift for all rows lost a column: exact logsumexp
        log_c = xp.logsumexp(kern.a + (log_p - log_z)[:, None], axis=0)
    return log_c


@dataclass(frozen=True)
class RDSolution:
    """What :func:`solve_rd` found (arrays of the backend)."""

    log_q: Any
    log_z: Any
    log_c: Any
    iterations: int


def solve_rd(xp, log_p, kern: Kernel, log_q, *, tol: float, max_iter: int) -> RDSolution:
    """Blahut-Arimoto steps for ``kern = Kernel.of(xp, -beta d)`` until ``max log c <= tol`` or ``max_iter`` steps."""
    for it in range(max_iter + 1):
        log_z = log_partition(xp, kern, log_q)
        log_c = log_ratio(xp, kern, log_p, log_z)
        if float(xp.amax(log_c)) <= tol or it == max_iter:
            break
        log_q = log_q + xp.where(log_q > -math.inf, log_c, 0.0)
        log_q = log_q - xp.logsumexp(log_q)
    return RDSolution(log_q, log_z, log_c, it)


def rd_encoder(xp, kern: Kernel, log_q, log_z):
    """``Q(xhat|x) = q(xhat) exp(A[x, xhat]) / Z_x`` (zero where ``q`` is zero).

    Built from the row-stabilised kernel ``K`` that the solver already holds,
    as ``K * q / (K q)`` with no further exponential; where some row's
    ``K q`` is too small for that quotient to be accurate, from the log domain.
    """
    q = xp.exp(log_q - xp.amax(log_q))
    z = kern.k @ q
    if xp.all(z > ENCODER_Z_FLOOR):
        return kern.k * (q[None, :] / z[:, None])
    return xp.exp(log_q[None, :] + kern.a - log_z[:, None])

# --------------------------------------------------------------------------
# channel capacity


@dataclass(frozen=True)
class CapacityBracket:
    """``lower = I(p; W) <= C <= upper`` at ``p = exp(log_p)`` (a backend array), after ``iterations`` steps."""

    log_p: Any
    lower: float
    upper: float
    iterations: int


def capacity_bracket(xp, w, log_p, *, tol: float, mixed: bool = True) -> CapacityBracket:
    r"""``I(p; W) <= C <= max_x D(W_x || r)`` on the whole input alphabet, in the log domain.

    ``r = pW``; where that bound is no good (an output reached only by inputs
    of vanishing mass, so some ``D`` is infinite) and ``mixed``, also
    ``r = (1 - eta) pW + eta * mean_x W_x`` with ``eta = min(tol / 4, 1/2)``:
    every output pmf gives :math:`C \le \max_x D(W_x \| r)` (the minimax form
    of capacity), and the mixed one covers every used output at a cost of at
    most ``-ln(1 - eta)`` on the others.
    """
    neg_h = xp.sum(xp.xlogy(w, w), axis=1)
    used = xp.sum(w, axis=0) > 0
    div = _row_divergences(xp, w, neg_h, used, log_p)
    lower = float(xp.sum(xp.exp(log_p) * xp.where(log_p > -math.inf, div, 0.0)))
    upper = float(xp.amax(div))
    if mixed and upper - lower > tol:
        eta = min(0.25 * tol, 0.5)
        mp = xp.amax(log_p)
        r = (1.0 - eta) * math.exp(float(mp)) * (xp.exp(log_p - mp) @ w) + eta * xp.sum(w, axis=0) / w.shape[0]
        log_r = xp.where(used, xp.log(xp.where(used, r, 1.0)), 0.0)
        upper = min(upper, float(xp.amax(neg_h - w @ log_r)))
    # at the optimum every active D equals the max, and the rounded mean can exceed it by an ulp
    return CapacityBracket(log_p, min(lower, upper), upper, 0)


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


def solve_capacity(xp, w, log_p, *, tol: float, max_iter: int) -> CapacityBracket:
    """Blahut-Arimoto steps ``p(x) <- p(x) exp(D(W_x || pW))`` (normalised) until the bracket is within ``tol``.

    The mixed upper bound of :func:`capacity_bracket` is tried at the last step only.
    """
    neg_h = xp.sum(xp.xlogy(w, w), axis=1)
    used = xp.sum(w, axis=0) > 0
    for it in range(max_iter + 1):
        div = _row_divergences(xp, w, neg_h, used, log_p)
        lower = float(xp.sum(xp.exp(log_p) * xp.where(log_p > -math.inf, div, 0.0)))
        if float(xp.amax(div)) - lower <= tol or it == max_iter:
            break
        log_p = log_p + div
        log_p = log_p - xp.logsumexp(log_p)
    return replace(capacity_bracket(xp, w, log_p, tol=tol), iterations=it)


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


def ib_measures(xp, p_xy, log_enc, enc=None):
    """``(I(X;T), I(T;Y), log p(t), log p(y|t))`` of the encoder ``exp(log_enc)[x, t]``.

    Both informations come from entropies with ``0 log 0 = 0``:
    ``I(X;T) = H(T) - H(T|X)`` and ``I(T;Y) = H(T) + H(Y) - H(T,Y)``.
    ``log p(y|t)`` is ``-inf`` where ``p(t, y) = 0`` (rows of unused ``t`` included).
    ``enc``, where the caller has it, is ``exp(log_enc)`` with ``log_enc``
    finite (``LOG_ZERO`` for zeros): ``H(T|X)`` is then a plain product.
    """
    p_x = xp.sum(p_xy, axis=1)
    if enc is None:
        enc = xp.exp(log_enc)
        h_t_x = -xp.sum(p_x * xp.sum(xp.xlogy(enc, enc), axis=1))
    else:
        h_t_x = -xp.sum(p_x * xp.sum(enc * log_enc, axis=1))
    p_t = p_x @ enc
    p_ty = enc.T @ p_xy
    h_t = -xp.sum(xp.xlogy(p_t, p_t))
    p_y = xp.sum(p_xy, axis=0)
    h_y = -xp.sum(xp.xlogy(p_y, p_y))
    h_ty = -xp.sum(xp.xlogy(p_ty, p_ty))
    log_pt = xp.log(p_t)
    log_py_t = xp.log(p_ty) - xp.where(p_t > 0, log_pt, 0.0)[:, None]
    return float(h_t - h_t_x), float(h_t + h_y - h_ty), log_pt, log_py_t


def solve_ib(xp, p_xy, beta: float, log_enc, *, tol: float, max_iter: int) -> IBSolution:
    """Iterative IB [3]_: ``p(t|x) ∝ p(t) exp(-beta D(p(y|x) || p(y|t)))`` until the Lagrangian settles.

    The Lagrangian ``I(X;T) - beta I(T;Y)`` never increases along these
    iterations; the run has converged when one step lowers it by at most ``tol``.

    .. [3] N. Tishby, F. C. Pereira, W. Bialek, "The information bottleneck
       method", Allerton 1999.
    """
    p_x = xp.sum(p_xy, axis=1)
    live_x = p_x > 0
    p_y_x = p_xy / xp.where(live_x, p_x, 1.0)[:, None]
    neg_h = xp.sum(xp.xlogy(p_y_x, p_y_x), axis=1)
    rate, rel, log_pt, log_py_t = ib_measures(xp, p_xy, log_enc)
    lag = rate - beta * rel
    for it in range(1, max_iter + 1):
        # one exp per iteration: logs of unused t (and of p(y|t) = 0) are LOG_ZERO, not -inf, so
        # that enc * log_enc is 0 there and H(T|X) needs no xlogy
        cross = p_y_x @ xp.where(log_py_t > -math.inf, log_py_t, LOG_ZERO).T
        # a row of p(x) = 0 has p(y|x) = 0 and neg_h = 0: its encoder is p(t), as the Lagrangian wants
        logits = xp.where(log_pt > -math.inf, log_pt, LOG_ZERO)[None, :] - beta * (neg_h[:, None] - cross)
        top = xp.amax(logits, axis=1, keepdims=True)
        e = xp.exp(logits - top)
        total = xp.sum(e, axis=1)[:, None]
        enc = e / total
        log_enc = logits - (top + xp.log(total))
        rate, rel, log_pt, log_py_t = ib_measures(xp, p_xy, log_enc, enc)
        new_lag = rate - beta * rel
        if abs(lag - new_lag) <= tol:
            return IBSolution(log_enc, new_lag, rate, rel, it, True)
        lag = new_lag
    return IBSolution(log_enc, lag, rate, rel, max_iter, False)

