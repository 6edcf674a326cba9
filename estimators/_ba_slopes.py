r"""Rate-distortion at a run of slopes: Newton on the support, a screened certificate.

Private: :mod:`estimators.blahut_arimoto` validates the inputs, falls back to
the log-domain solver of :mod:`estimators._ba_solvers` where this one declines
(``None``), and wraps the answers in :class:`~estimators.blahut_arimoto.RDPoint`.

At slope ``beta`` the problem is :math:`\min_q F(q) = -\sum_x p(x) \ln (Kq)(x)`
over pmfs ``q`` on the reproduction alphabet, with the row-rescaled kernel
``K[x, xhat] = exp(-beta (d[x, xhat] - min d[x, :]))`` (largest entry of each
row 1; the rescaling shifts ``F`` by a constant). ``q`` is optimal when
``c(xhat) = sum_x p(x) K[x, xhat] / (Kq)(x) <= 1`` for every ``xhat``, with
equality on the support, and Blahut's lower bound makes ``ln max c`` a
certified gap for any ``q`` (see :mod:`estimators._ba_solvers`). Three things make
a curve cheap:

1. Only the support of ``q`` needs the kernel in float64: ``F``, the encoder,
   rate and distortion involve no other column. The other columns need only
   an upper bound on their ``c``. A float32 kernel gives one once its rounding
   is accounted for outwards (:meth:`RDSlopes._bound`); and as the rescaled
   kernel decreases in ``beta`` (its exponent is ``<= 0``), a float32 row
   computed at an earlier, smaller slope still bounds. Rows are recomputed
   only when their bound reaches the tolerance; a column whose fresh bound
   still reaches it is evaluated exactly in float64 and joins the support if
   its ``c`` exceeds one.
2. On the support, sequential quadratic programming: Newton's model of ``F``
   minimised over the simplex by a primal-dual active-set method [2]_, then
   an Armijo search along the segment to the model's minimiser (feasible
   throughout). This is mix-SQP [1]_, warm-started from the previous slope's
   support and marginal; a first slope without ``init`` starts from the single
   best reproduction, and columns join the support at most
   ``max(ENTER_MIN, |support|)`` at a time, most violated first (a Newton
   step on all ``m`` columns at once would cost ``m^3``). Where the model
   fails (a Cholesky breakdown, or no descent: a badly scaled entering column
   can round its step to zero), a Blahut-Arimoto step is taken instead, or,
   where the largest ``c`` sits on a zero mass that such a step cannot
   revive, a step towards that vertex (Frank-Wolfe); either descends whenever
   the gap is positive. Far from the optimum the Blahut-Arimoto step is also
   tried beside Newton's, a crawling Newton step may be lengthened, and a
   start that stalls begins again from the uniform pmf (see the constants
   ``BA_GAP``, ``CRAWL`` and ``STALL_STEPS``). A mass serving only rows too
   light for ``F`` to resolve (``p ~ 1e-25``) moves to the minimum of ``F``
   towards its vertex, located by the sign of ``F``'s derivative
   (:meth:`RDSlopes._vertex_step`).
3. Cost: the Hessian's Gram (``n s^2``) dominates. While the gap is above
   ``GRAM32_GAP`` it is formed in float32 (twice the speed; Newton with a
   Hessian accurate to ~1e-7 converges as fast there), and once few
   coordinates are still off (``BLOCK_GAP``) Newton steps are taken on that
   block alone (``n |A|^2``, :meth:`RDSlopes._block_step`).

The certificate does not depend on how ``q`` was found.

References
----------
.. [1] Y. Kim, P. Carbonetto, M. Stephens, M. Anitescu, "A fast algorithm for
   maximum likelihood estimation of mixture proportions using sequential
   quadratic programming", J. Comput. Graph. Stat. 29(2), 2020.
.. [2] M. Hintermüller, K. Ito, K. Kunisch, "The primal-dual active set
   strategy as a semismooth Newton method", SIAM J. Optim. 13(3), 2002.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from estimators._ba_backend import ArrayOps
from estimators._ba_solvers import segment_minimum

#: Unit roundoff of float32.
U32 = 2.0**-24
#: Largest ``|beta d|`` whose float32 ``exp`` is a normal number (``exp(-87.34) = 2^-126``), rounded up.
F32_NORMAL_ARG = 88.0
#: Relative accuracy assumed of float32 ``exp``, in units of ``2^-23``: measured on [-88, 0] (4M points),
#: numpy 2.4 on AVX2 within 2.15 and torch 2.13 within 0.96; the test suite checks the running build.
F32_EXP_ULPS = 8.0
#: Rows whose ``(Kq)(x)`` falls below this are left to the log-domain solver.
Z_FLOOR = 1e-250
#: Screening weights ``p/(Kq)`` above this could overflow float32; all columns are then checked in float64.
W32_MAX = 1e30
#: Smallest exponent of the float64 kernel: ``exp(-708)`` is still a normal float64.
KERNEL_ARG_MIN = -708.0
#: Primal-dual active-set passes per quadratic model.
QP_PASSES = 8
#: An active-set pass refactors the free block once more than ``1/SCHUR_FRACTION`` of the coordinates are fixed.
SCHUR_FRACTION = 8
#: Relative ridge: each diagonal entry of the Hessian grows by this fraction of itself (plus ``1e-300``).
#: Relative to each entry, not to the largest: the diagonal can span 20 orders of magnitude (a mass of
#: 1e-19 serving a row alone), and a ridge scaled to its top would freeze every other coordinate.
RIDGE = 1e-13
#: Above this certified gap (nats) each step also tries the Blahut-Arimoto step (see ``RDSlopes._step``).
BA_GAP = 1.0
#: Newton steps that shrink the gap by less than this factor, while it is above ``CRAWL_GAP_MIN``,
#: are crawling: the next step may be lengthened (see ``RDSlopes._extend``). Below, F's slope along
#: a step is rounding noise.
CRAWL = 0.3
CRAWL_GAP_MIN = 1e-6
#: A start from which the gap has not halved in this many steps is abandoned (see ``RDSlopes.solve``):
#: seen where rows of mass ~1e-50 are served ~1e-80 and the support's Hessian spans 100 decades.
STALL_STEPS = 30
#: Columns allowed to join the support in one step: the ``max(ENTER_MIN, |support|)`` largest ``c``.
ENTER_MIN = 32
#: A first slope starts from the best single reproduction when ``beta`` times its largest distortion
#: excess stays below this (every ``(Kq)(x) >= e^-30``, so the Hessian's weights ``p/(Kq)^2`` stay far
#: from overflow), else from the uniform pmf (every ``(Kq)(x) >= 1/m``).
VERTEX_ARG_MAX = 30.0
#: Above this certified gap the Hessian's Gram is formed in float32 (see ``ArrayOps.gram``): Newton with a
#: Hessian accurate to ~1e-7 converges as fast until the gap nears the square of that.
GRAM32_GAP = 1e-4
#: Below this gap a step may be taken on a block of coordinates (``RDSlopes._block_step``): those with
#: ``|ln c| > max(tol, gap^2) / 4``, when they are at most ``1/BLOCK_FRACTION`` of the support.
BLOCK_GAP = 0.3
BLOCK_FRACTION = 2


@dataclass(frozen=True)
class SlopePoint:
    """One solved slope (numpy arrays, floats); see :class:`~estimators.blahut_arimoto.RDPoint`."""

    rate: float
    distortion: float
    gap: float
    support: np.ndarray
    encoder: tuple[np.ndarray, np.ndarray, np.ndarray]  # (K[:, support].T, q on the support, Kq): Q = K q / Kq
    marginal: np.ndarray
    iterations: int


class RDSlopes:
    """Rate-distortion points of one source ``p`` and distortion ``d``, each slope warm-started by the last.

    Slopes may come in any order (a root search goes back and forth); the
    float32 rows of slopes larger than the current one are recomputed before
    they are used as bounds.
    """

    def __init__(self, ops: ArrayOps, p: np.ndarray, d: np.ndarray, init: np.ndarray | None = None):
        n, m = d.shape
        self.ops, self.shape = ops, (n, m)
        self.d_min_mean = float(p @ d.min(axis=1))
        dt = np.ascontiguousarray((d - d.min(axis=1, keepdims=True)).T)  # (m, n), >= 0: rows are reproductions
        self.dt = ops.asarray(dt)
        self.dt32 = ops.float32(self.dt)
        self.k32 = ops.float32(ops.asarray(np.ones((m, n))))  # exp(-0 * dt) bounds the kernel at every slope
        self.beta32 = ops.zeros(m)
        self.p = ops.asarray(p)
        self.sqrt_p = ops.exp(0.5 * ops.log(self.p))
        self.float32_screen = n * U32 < 1e-3
        q0 = np.full(m, 1.0 / m) if init is None else np.asarray(init, dtype=np.float64)
        self.restart(q0)
        # the vertex minimising F at every slope (F(e_j) = beta sum_x p dt[j, x] + const); see solve
        self.vertex = None
        if init is None:
            j = int(np.argmin(dt @ p))
            self.vertex = (j, float(dt[j].max()))
        # c <= scale * (float32 sum) + per_w * sum(w) + floor; see _bound
        eps_k = math.exp(F32_NORMAL_ARG * 3.0001 * U32) * (1.0 + F32_EXP_ULPS * 2.0 * U32) - 1.0
        gamma_n = n * U32 / (1.0 - n * U32) if self.float32_screen else 0.0
        self.scale = (1.0 + U32) * (1.0 + eps_k) / (1.0 - gamma_n)
        self.per_w = 2.0**-126 * 1.001 * (1.0 + 4.0 * U32)
        self.floor = n * 2.0**-148

    def restart(self, q: np.ndarray) -> None:
        """Start the next slope from the output marginal ``q`` (a numpy pmf)."""
        ops = self.ops
        idx = np.flatnonzero(q > 0)
        self.support = ops.index_array(idx)
        self.q = ops.asarray(q[idx] / q[idx].sum())

    def log_marginal(self):
        """The current output marginal as a backend array of logs (``-inf`` off the support)."""
        ops = self.ops
        full = ops.full(self.shape[1], -math.inf)
        full[self.support] = ops.log(self.q)
        return full

    # ------------------------------------------------------------------
    def solve(self, beta: float, tol: float, max_iter: int) -> SlopePoint | None:
        """The point at slope ``beta`` with certified gap ``<= tol``, or after ``max_iter`` Newton steps.

        Where the warm start fails (some row's ``(Kq)(x)`` underflows, or the
        gap stalls: see ``STALL_STEPS``), the slope starts again from the
        uniform pmf, under which every ``(Kq)(x) >= 1/m``; ``None`` where that
        fails too (the log-domain solver then takes the slope).
        """
        ops = self.ops
        if self.vertex is not None:
            # a small first support: Newton on all m columns at once would cost m^3
            j, reach = self.vertex
            self.vertex = None
            if beta * reach < VERTEX_ARG_MAX:
                self.support, self.q = ops.index_array(np.array([j])), ops.full(1, 1.0)
        stale = self.beta32 > beta
        if ops.any(stale):
            self._refresh(ops.nonzero(stale), beta)
        point = self._solve_from(self.support, self.q, beta, tol, max_iter)
        m = self.shape[1]
        if point is None and self.support.shape[0] < m:
            point = self._solve_from(ops.arange(m), ops.full(m, 1.0 / m), beta, tol, max_iter)
        return point

    def _solve_from(self, idx, q, beta: float, tol: float, max_iter: int) -> SlopePoint | None:
        """:meth:`solve` from the support ``idx`` with masses ``q``; ``None`` on underflow or a stall."""
        ops = self.ops
        ks = self._kernel_rows(idx, beta)
        it, last_gap, best_gap, best_at = 0, math.inf, math.inf, 0
        while True:
            z = q @ ks
            if not ops.all(z > Z_FLOOR):
                return None
            w = self.p / z
            c = ks @ w
            out_max, entering = self._screen(beta, w, idx, tol)
            gap = math.log(max(ops.item(ops.amax(c)), out_max))
            if gap <= tol or it >= max_iter:
                break
            if gap < 0.5 * best_gap:
                best_gap, best_at = gap, it
            elif it - best_at >= STALL_STEPS:
                return None  # badly scaled beyond what the float64 kernel on the support can resolve
            if entering is not None:
                new, k_new, c_new = entering
                idx, ks = ops.concat([idx, new]), ops.concat([ks, k_new])
                q, c = ops.concat([q, ops.zeros(new.shape[0])]), ops.concat([c, c_new])
            crawling = it > 0 and gap > max(CRAWL * last_gap, CRAWL_GAP_MIN)
            step = None if crawling or gap > BLOCK_GAP else self._block_step(ks, z, c, q, 0.25 * max(tol, gap * gap))
            q, keep = self._step(ks, z, c, q, gap, crawling) if step is None else step
            last_gap = gap
            if keep is not None:
                idx, q, ks = idx[keep], q[keep], ks[keep]
            it += 1
        self.support, self.q = idx, q
        return self._point(beta, idx, q, ks, z, w, c, gap, it)

    # ------------------------------------------------------------------
    def _kernel_rows(self, rows, beta: float):
        """float64 kernel rows ``exp(-beta dt[rows])``, the exponent clamped at ``KERNEL_ARG_MIN``.

        The clamp keeps ``exp`` off its slow subnormal path; it changes no
        entry by more than ``exp(KERNEL_ARG_MIN)``, which is ``1e-57`` of any row
        sum that the solver accepts (``> Z_FLOOR``).
        """
        ops = self.ops
        return ops.exp(ops.maximum(self.dt[rows] * -beta, KERNEL_ARG_MIN))

    def _refresh(self, rows, beta: float) -> None:
        """Recompute the float32 kernel rows ``rows`` at ``beta``."""
        ops = self.ops
        self.k32[rows] = ops.exp(self.dt32[rows] * float(np.float32(-beta)))
        self.beta32[rows] = beta

    def _bound(self, s32, w_sum: float):
        r"""Upper bound on ``c = sum_x w(x) K[x, .]`` from the float32 sums ``s32`` of ``w32 * k32``.

        With ``k32`` a float32 row computed at ``beta' <= beta``: the true
        kernel at ``beta`` is at most the true one at ``beta'``, which is at
        most ``k32 (1 + eps_K) + 2^-126`` (argument rounding ``<= 3u |beta' d|``
        below the underflow point, ``exp`` within ``F32_EXP_ULPS``);
        ``w <= w32 (1 + u) + 2^-149``; and a float32 sum of ``n`` non-negative
        products is at least ``(1 - gamma_n)`` times the exact one.
        """
        ops = self.ops
        s = ops.asarray(s32) if ops.name == "numpy" else s32.to(self.p.dtype)
        return self.scale * s + (self.per_w * w_sum + self.floor)

    def _screen(self, beta: float, w, idx, tol: float):
        """``(max c off the support, bounded above; entering columns or None)``.

        Entering columns come as ``(indices, float64 kernel rows, c)`` and are
        those whose exact ``c`` exceeds ``exp(tol / 2)``.
        """
        ops = self.ops
        m = self.shape[1]
        threshold = math.exp(tol)
        inside = ops.mask(m, idx)
        if self.float32_screen and ops.item(ops.amax(w)) <= W32_MAX:
            w32 = ops.float32(w)
            w_sum = ops.item(ops.sum(w))
            bound = self._bound(ops.sum_rows32(self.k32, w32), w_sum)
            bound = ops.where(inside, 0.0, bound)
            over = ops.nonzero(bound > threshold)
            if over.shape[0]:
                stale = over[self.beta32[over] < beta]
                if stale.shape[0]:
                    self._refresh(stale, beta)
                    bound[stale] = self._bound(ops.sum_rows32(self.k32[stale], w32), w_sum)
                    over = over[bound[over] > threshold]
        else:  # every column off the support is checked in float64
            bound = ops.where(inside, 0.0, ops.full(m, math.inf))
            over = ops.nonzero(~inside)
        entering = None
        if over.shape[0]:
            k_over = self._kernel_rows(over, beta)
            c_over = k_over @ w
            bound[over] = c_over
            joins = ops.nonzero(c_over > math.exp(0.5 * tol))
            cap = max(ENTER_MIN, idx.shape[0])
            if joins.shape[0] > cap:  # the most violated first: a few cheap steps beat one on many columns
                joins = joins[ops.argsort(-c_over[joins])[:cap]]
            if joins.shape[0]:
                entering = (over[joins], k_over[joins], c_over[joins])
        return ops.item(ops.amax(bound)), entering

    def _step(self, ks, z, c, q, gap: float, crawling: bool):
        """One safeguarded SQP step; returns the new ``q`` and the indices to keep (``None``: all).

        Far from the optimum (``gap > BA_GAP``) the Blahut-Arimoto step ``q c``
        is tried as well and the lower ``F`` kept: where some ``(Kq)(x)`` is
        orders of magnitude too small, Newton's model of ``-ln`` only doubles it
        per step, while ``q c`` scales the masses serving it by their ``c``.
        Where the gap shrinks slowly (``crawling``), a full step may be
        lengthened (:meth:`_extend`).
        """
        ops = self.ops
        x = self._model_minimiser(ks, z, c, q, single=gap > GRAM32_GAP and not crawling)
        top = ops.argmax(c)
        if ops.item(q[top]) == 0 and (x is None or ops.item(x[top]) == 0):
            return self._vertex_step(ks, q, top)
        delta = None if x is None else x - q
        slope = math.inf if delta is None else -ops.item(ops.sum(c * delta))
        if not slope < 0:
            j = ops.argmax(c)
            if ops.item(q[j]) > 0:  # the Blahut-Arimoto step q -> q c, a descent direction
                x = q * c
                delta = x / ops.sum(x) - q
            else:  # towards the vertex of the largest c (Frank-Wolfe): revives a zero mass
                delta = -q
                delta[j] += 1.0
            slope = -ops.item(ops.sum(c * delta))
        f = -ops.item(ops.sum(ops.xlogy(self.p, z)))
        t, q_t, z_t, f_t, _ = self._armijo(ks, q, delta, f, slope, mass=False, t_min=1e-12)
        if crawling and t == 1.0:
            t = self._extend(ks, q, delta, z_t, slope)
            if t > 1.0:
                q_t = q + t * delta
                q_t = ops.where(q_t > 0, q_t, 0.0)
                f_t = -ops.item(ops.sum(ops.xlogy(self.p, q_t @ ks)))
        total = ops.item(ops.sum(q_t))
        q_t = q_t / total
        if gap > BA_GAP:
            q_ba = q * c
            q_ba = q_ba / ops.sum(q_ba)
            z_ba = q_ba @ ks
            # only when clearly lower: it keeps entering columns at zero, and a tie would cycle them
            f_ba = -ops.item(ops.sum(ops.xlogy(self.p, z_ba)))
            if f_ba < f_t + math.log(total) - 1e-12 * (1.0 + abs(f)) and ops.all(z_ba > Z_FLOOR):
                q_t = q_ba
            if crawling:  # a mass orders of magnitude short may serve rows below F's resolution
                return self._vertex_step(ks, q_t, top)
        return self._kept(q_t)

    def _block_step(self, ks, z, c, q, threshold: float):
        """A Newton step on the few coordinates whose ``c`` is off, or ``None`` where none is cheap.

        Late in a slope most of the support is settled (``|ln c| <= tol / 4``)
        and the gap sits on a few coordinates: small masses, entering columns.
        Newton's model of ``G(q) = F(q) + sum q`` (minimised over ``q >= 0`` at
        the same pmf: there ``sum q = 1``) over that block ``A`` alone, the rest
        held, costs ``n |A|^2`` instead of ``n s^2``. Without the simplex
        constraint the block's mass may change, so a short mass can grow from
        donors outside it; the result is renormalised (which lowers ``G``).
        """
        ops = self.ops
        s = q.shape[0]
        log_c = ops.log(c)
        block = ops.nonzero((log_c > threshold) | (log_c < -threshold))
        a = block.shape[0]
        if a == 0 or a * BLOCK_FRACTION > s:
            return None
        kb, qb, g = ks[block], q[block], c[block] - 1.0
        h = ops.gram(kb, self.sqrt_p / z, single=False)
        diagonal = ops.diagonal(h)
        if not math.isfinite(ops.item(ops.amax(diagonal))):
            return None
        ops.add_to_diagonal_(h, RIDGE * diagonal + 1e-300)
        x = self._bound_qp(h, g + ops.symv(h, qb))
        if x is None:
            return None
        delta = ops.zeros(s)
        delta[block] = x - qb
        slope = -ops.item(ops.sum(g * (x - qb)))
        if not slope < 0:
            return None
        f = -ops.item(ops.sum(ops.xlogy(self.p, z))) + 1.0
        _, q_t, _, _, accepted = self._armijo(ks, q, delta, f, slope, mass=True, t_min=1e-6)
        return self._kept(q_t / ops.sum(q_t)) if accepted else None

    def _armijo(self, ks, q, delta, f: float, slope: float, *, mass: bool, t_min: float):
        """Backtracking from ``t = 1`` along ``delta``: ``(t, q_t, z_t, f_t, accepted)``.

        ``f_t`` is ``F(q_t)``, plus ``sum q_t`` where ``mass`` (the objective
        ``G`` of :meth:`_block_step`); a point is accepted where it falls by
        Armijo's amount and no row underflows (a row of negligible mass can, at
        no visible cost in ``F``). The rounding allowance lets quadratic
        convergence finish below the float resolution of ``F``. Below ``t_min``
        the last point tried is returned, not accepted.
        """
        ops = self.ops
        t = 1.0
        while True:
            q_t = q + t * delta
            q_t = ops.where(q_t > 0, q_t, 0.0)
            z_t = q_t @ ks
            f_t = -ops.item(ops.sum(ops.xlogy(self.p, z_t))) + (ops.item(ops.sum(q_t)) if mass else 0.0)
            if f_t <= f + 1e-4 * t * slope + 8e-16 * (1.0 + abs(f)) and ops.all(z_t > Z_FLOOR):
                return t, q_t, z_t, f_t, True
            if t < t_min:
                return t, q_t, z_t, f_t, False
            t *= 0.5

    def _kept(self, q):
        """``q`` and the indices of its positive entries (``None``: all are)."""
        live = q > 0
        return q, (None if self.ops.all(live) else self.ops.nonzero(live))

    def _bound_qp(self, h, r):
        """``argmin 1/2 x'Hx - r'x`` over ``x >= 0`` by primal-dual active-set passes, or ``None``."""
        ops = self.ops
        s = r.shape[0]
        fixed = ops.index_array(np.zeros(0, dtype=np.int64))
        for _ in range(QP_PASSES):
            free = ops.nonzero(~ops.mask(s, fixed))
            x = ops.zeros(s)
            if free.shape[0]:
                factor = ops.cholesky(ops.submatrix(h, free))
                if factor is None:
                    return None
                x[free] = ops.cholesky_apply(factor, r[free][:, None])[:, 0]
            mu = (ops.symv(h, x) - r)[fixed]
            now_fixed = ops.nonzero((ops.mask(s, fixed) & ~ops.mask(s, fixed[mu < 0])) | (x < 0))
            if now_fixed.shape[0] == fixed.shape[0] and ops.all(now_fixed == fixed):
                return ops.where(x > 0, x, 0.0)
            fixed = now_fixed
        return None

    def _vertex_step(self, ks, q, j: int):
        """``q -> (1 - t) q + t e_j``, ``t`` minimising ``F`` on that segment; ``j`` has the largest ``c``.

        For a mass that Newton's model leaves at zero, or grows only a few
        times per step (``crawling``) while ``c`` is far above 1: rows of mass
        ``1e-25`` served ``1e-53`` give it a ``c`` of ``1e37`` but move ``F``
        below its float resolution, so neither the model nor an Armijo search
        on ``F`` (nor a comparison with the Blahut-Arimoto step) sees them.
        ``t`` comes from the sign of ``F``'s derivative along the segment,
        which does see them (bisection, geometric over orders of magnitude).
        """
        ops = self.ops
        z = q @ ks
        t = segment_minimum(ops.to_numpy(self.p), ops.to_numpy(z), ops.to_numpy(ks[j]))
        q_t = (1.0 - t) * q
        q_t[j] += t
        return self._kept(q_t)

    def _extend(self, ks, q, delta, z_1, slope: float) -> float:
        """The step length past ``1`` along ``delta`` while ``F`` keeps falling steeply, else ``1``.

        Newton's model of ``-ln`` only doubles a mass that is orders of
        magnitude short (``-a ln(1 + t)`` has its model's minimum at ``t = 1``),
        and ``F`` may change too little to compare in floating point. The
        derivative along ``delta`` does not: where at ``t = 1`` it is still
        below a quarter of its value at 0, the step doubles while the segment
        stays in the simplex and the derivative stays negative (``F`` convex:
        then it fell all the way).
        """
        ops = self.ops

        def derivative(z_t) -> float:
            return -ops.item(ops.sum((ks @ (self.p / z_t)) * delta))

        if not derivative(z_1) < 0.25 * slope:
            return 1.0
        t = 1.0
        while t < 2.0**60:
            q_t = q + 2.0 * t * delta
            if not ops.all(q_t >= 0):
                break
            z_t = q_t @ ks
            if not (ops.all(z_t > Z_FLOOR) and derivative(z_t) < 0):
                break
            t *= 2.0
        return t

    def _model_minimiser(self, ks, z, c, q, single: bool = False):
        r"""Minimiser over the simplex of Newton's model of ``F`` at ``q``, or ``None``.

        The model is :math:`\tfrac12 (x-q)^\top H (x-q) - c^\top (x-q)` with
        :math:`H = \sum_x p(x) K_x K_x^\top / z_x^2` (plus a tiny ridge). Its
        KKT conditions are :math:`Hx = r - \nu 1 + \mu`, ``r = c + Hq``,
        ``sum x = 1``, ``x >= 0``, ``mu >= 0``, ``mu x = 0``. Each
        primal-dual active-set pass fixes a set ``B`` of coordinates at zero
        and solves for the rest through one Cholesky factor of the whole ``H``:
        with ``Y = H^{-1} [r, 1, e_B]``, ``x = Y_r - nu Y_1 + Y_B mu_B`` and the
        ``|B| + 1`` conditions ``x_B = 0``, ``sum x = 1`` fix ``(nu, mu_B)``.
        """
        ops = self.ops
        h = ops.gram(ks, self.sqrt_p / z, single=single)
        diagonal = ops.diagonal(h)
        if not math.isfinite(ops.item(ops.amax(diagonal))):  # weights p/z^2 beyond float range: no usable model
            return None
        ops.add_to_diagonal_(h, RIDGE * diagonal + 1e-300)
        factor = ops.cholesky(h)
        if factor is None:
            return None
        r = c + ops.symv(h, q)
        s = q.shape[0]
        base = ops.cholesky_apply(factor, ops.stack([r, ops.full(s, 1.0)], axis=1))
        fixed = ops.index_array(np.zeros(0, dtype=np.int64))  # none yet
        # a model scaled beyond float range overflows somewhere in the passes: declined below, not warned
        with np.errstate(over="ignore", invalid="ignore"):
            for _ in range(QP_PASSES):
                x, mu = self._pass(h, r, factor, base, fixed, s)
                if x is None:
                    return None
                # keep fixed where the multiplier is >= 0, fix the free coordinates that went negative
                now_fixed = ops.nonzero((ops.mask(s, fixed) & ~ops.mask(s, fixed[mu < 0])) | (x < 0))
                if now_fixed.shape[0] == fixed.shape[0] and ops.all(now_fixed == fixed):
                    break
                if now_fixed.shape[0] >= s:
                    break
                fixed = now_fixed
            else:  # the passes cycle (an ill-conditioned model): the primal active-set method cannot
                x = self._primal_active_set(h, r, factor, base, q)
                if x is None:
                    return None
        if not math.isfinite(ops.item(ops.sum(x))):
            return None
        x = ops.where(x > 0, x, 0.0)
        total = ops.item(ops.sum(x))
        return x / total if total > 0 and math.isfinite(total) else None

    def _primal_active_set(self, h, r, factor, base, q):
        """The model's minimiser by the primal active-set method [3]_ from the feasible ``q``, or ``None``.

        Fixes one coordinate at zero per blocked step and frees the one of most
        negative multiplier per unblocked one, so the model decreases at every
        step and no working set repeats: slower than the primal-dual passes,
        but it does not cycle.

        .. [3] J. Nocedal, S. J. Wright, *Numerical Optimization*, 2nd ed., Springer 2006, Algorithm 16.3.
        """
        ops = self.ops
        s = q.shape[0]
        x = q
        fixed = ops.nonzero(q <= 0)
        for _ in range(4 * s + 8):
            y, mu = self._pass(h, r, factor, base, fixed, s)
            if y is None:
                return None
            step = y - x
            free = ~ops.mask(s, fixed)
            down = free & (step < 0) & (y < 0)
            if not ops.any(down):  # y is feasible: optimal unless a multiplier says release
                x = y
                if mu.shape[0] == 0 or ops.item(ops.amax(-mu)) <= 0:
                    return x
                release = ops.argmax(-mu)
                fixed = ops.concat([fixed[:release], fixed[release + 1:]])
                continue
            # the largest step keeping x >= 0; the coordinate that blocks it joins the fixed set
            ratios = ops.where(down, -x / ops.where(down, step, -1.0), math.inf)
            block = ops.argmax(-ratios)
            x = x + ops.item(ratios[block]) * step
            x[block] = 0.0
            fixed = ops.nonzero(ops.mask(s, fixed) | ops.mask(s, ops.index_array(np.array([block]))))
        return None

    def _pass(self, h, r, factor, base, fixed, s: int):
        """One active-set pass: ``x`` with ``x[fixed] = 0``, and the multipliers of ``fixed``.

        Few fixed coordinates: through the factor of the whole ``H`` (``|B|``
        more triangular solves and a ``|B| + 1`` system). Many: a new factor of
        the free block.
        """
        ops = self.ops
        b = fixed.shape[0]
        if b == 0:
            y_r, y_1 = base[:, 0], base[:, 1]
            nu = _ratio(ops.item(ops.sum(y_r)) - 1.0, ops.item(ops.sum(y_1)))
            return (None, None) if nu is None else (y_r - nu * y_1, fixed[:0])
        if SCHUR_FRACTION * b > s:
            free = ops.nonzero(~ops.mask(s, fixed))
            factor_free = ops.cholesky(ops.submatrix(h, free))
            if factor_free is None:
                return None, None
            y = ops.cholesky_apply(factor_free, ops.stack([r[free], ops.full(free.shape[0], 1.0)], axis=1))
            nu = _ratio(ops.item(ops.sum(y[:, 0])) - 1.0, ops.item(ops.sum(y[:, 1])))
            if nu is None:
                return None, None
            x = ops.zeros(s)
            x[free] = y[:, 0] - nu * y[:, 1]
            return x, (ops.symv(h, x) - r + nu)[fixed]
        unit = ops.zeros2(s, b)
        unit[fixed, ops.arange(b)] = 1.0
        y_b = ops.cholesky_apply(factor, unit)  # (s, b)
        # unknowns (nu, mu): rows x_B = 0 and sum x = 1
        system = ops.zeros2(b + 1, b + 1)
        system[:b, 0] = -base[fixed, 1]
        system[:b, 1:] = y_b[fixed]
        system[b, 0] = -ops.sum(base[:, 1])
        system[b, 1:] = ops.sum(y_b, axis=0)
        rhs = ops.concat([-base[fixed, 0], ops.full(1, 1.0 - ops.item(ops.sum(base[:, 0])))])
        sol = ops.solve(system, rhs)
        nu, mu = sol[0], sol[1:]
        x = base[:, 0] - nu * base[:, 1] + y_b @ mu
        x[fixed] = 0.0
        return x, mu

    def _point(self, beta, idx, q, ks, z, w, c, gap_c: float, iterations: int) -> SlopePoint:
        r"""Rate, distortion and gap of the encoder ``Q = q K / (Kq)``.

        With ``r = q c`` its output marginal (``r = pQ``),
        :math:`I = -\beta D' - \sum_x p \ln z - D(r \| q)` where ``D'`` is the
        distortion above each row's minimum; Blahut's bound is
        :math:`-\sum_x p \ln z - \ln \max c` in the same units.
        """
        ops = self.ops
        m = self.shape[1]
        d_excess = ops.item(ops.sum(q * ((ks * self.dt[idx]) @ w)))
        log_z_mean = ops.item(ops.sum(ops.xlogy(self.p, z)))
        kl = ops.item(ops.sum(ops.xlogy(q * c, c)))
        rate = max(-beta * d_excess - log_z_mean - kl, 0.0)
        gap = max(rate + beta * d_excess + log_z_mean + gap_c, 0.0)
        marginal = ops.zeros(m)
        marginal[idx] = q * c
        # the encoder is formed when read: ks is never written in place, so the numpy backend hands it over uncopied
        encoder = tuple(a if ops.name == "numpy" else ops.to_numpy(a) for a in (ks, q, z))
        return SlopePoint(
            rate, d_excess + self.d_min_mean, gap, ops.index_numpy(idx), encoder, ops.to_numpy(marginal), iterations,
        )


def _ratio(a: float, b: float) -> float | None:
    """``a / b``, or ``None`` where that is not a finite number (a Hessian too badly scaled for its model)."""
    out = a / b if b != 0.0 else math.inf
    return out if math.isfinite(out) else None
