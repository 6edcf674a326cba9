r"""The rate-distortion program at a slope, as the Newton solver (:mod:`estimators._ba_newton`) sees it.

At slope ``beta`` [1]_

.. math:: \min_q F(q), \qquad F(q) = -\sum_x p(x) \ln (Kq)(x), \qquad
          K[x, \hat x] = e^{-\beta (d(x, \hat x) - \min_{\hat x'} d(x, \hat x'))}

over pmfs ``q`` on the reproduction alphabet (the row rescaling shifts ``F`` by
a constant). ``c(xhat) = sum_x p(x) K[x, xhat] / (Kq)(x)`` is ``-grad F``, the
Hessian is ``sum_x p(x) K_x K_x^T / (Kq)(x)^2``, and for any ``q``

.. math:: F(q) - \ln \max_{\hat x} c(\hat x) \;\le\; \min F \;\le\; F(q)

(Blahut's lower bound), so ``ln max c`` certifies the gap. The same program with
a 0/1 kernel (row ``x`` may use only its minimisers) is the ``D_min`` end point;
it is posed here as the distortion ``0`` on the minimisers and
``END_POINT_EXCESS`` elsewhere at slope 1 (kernel entries ``e^-708`` there).

Only the support of ``q`` needs the kernel in float64; the other columns need
only an upper bound on their ``c``, from the float32 screen
(:mod:`estimators._ba_screen`).

.. [1] R. E. Blahut, "Computation of channel capacity and rate-distortion
   functions", IEEE Trans. Inf. Theory 18(4), 1972.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from estimators._ba_plain import LOG_ZERO
from estimators._ba_screen import Float32Rows

#: The end point's kernel is ``exp(-END_POINT_EXCESS)``, clamped at ``exp(END_POINT_ARG_MIN)`` (the smallest
#: normal exponential), off each row's minimisers.
END_POINT_EXCESS = 1000.0
END_POINT_ARG_MIN = -708.0


@dataclass(frozen=True)
class RDProblem:
    """A source ``p`` and distortion ``d`` on a backend, slope-free: ``dt = (d - row minima).T``, ``(m, n)``,
    also as a numpy array ``dt_host`` (the same one on the numpy backend), and its largest entry ``dt_max``."""

    xp: Any
    p: Any
    sqrt_p: Any
    dt: Any
    d_min_mean: float
    dt_host: np.ndarray
    dt_max: float

    @classmethod
    def of(cls, xp, p: np.ndarray, d: np.ndarray) -> RDProblem:
        row_min = d.min(axis=1)
        dt = _excess_transposed(d, row_min)
        pb = xp.asarray(p)
        return cls(xp, pb, xp.exp(0.5 * xp.log(pb)), xp.asarray(dt), float(p @ row_min), dt, float(dt.max()))

    @property
    def shape(self) -> tuple[int, int]:
        return self.dt.shape[1], self.dt.shape[0]

    def best_vertex(self) -> tuple[int, float]:
        """The column ``j`` of least expected distortion and its largest distortion excess over the row minima."""
        j = int(np.argmin(self.xp.to_numpy(self.dt @ self.p)))
        return j, float(self.xp.amax(self.dt[j]))


def _excess_transposed(d: np.ndarray, row_min: np.ndarray, block: int = 64) -> np.ndarray:
    """``(d - row_min[:, None]).T``, C-ordered, copied in blocks of rows (1024 x 1024: 2 ms, against 9 ms for
    ``np.ascontiguousarray`` of the transpose, which strides through memory)."""
    out = np.empty((d.shape[1], d.shape[0]))
    row_min = row_min[:, None]
    for i in range(0, d.shape[0], block):
        out[:, i:i + block] = (d[i:i + block] - row_min[i:i + block]).T
    return out


@dataclass(frozen=True)
class KernelObjective:
    """``F`` at slope ``beta`` of ``problem``; ``screen`` holds float32 kernel rows at slopes ``<= beta``."""

    problem: RDProblem
    beta: float
    screen: Float32Rows
    kernel_arg_min: float
    block: bool = True  # F(tq) = F(q) - ln t: block steps and the chord dual (Newton for F + sum q) may change the mass

    @classmethod
    def at(cls, problem: RDProblem, beta: float, screen: Float32Rows | None, kernel_arg_min: float):
        """The objective at ``beta``, with the screen's rows of larger slopes (a root search goes back) recomputed."""
        xp = problem.xp
        screen = Float32Rows.of(xp, problem.dt, beta) if screen is None else screen
        stale = screen.beta32 > beta
        if bool(stale.any()):
            screen = screen.at(xp.nonzero(stale), beta)
        return cls(problem, beta, screen, kernel_arg_min)

    @property
    def xp(self):
        return self.problem.xp

    @property
    def p(self):
        return self.problem.p

    @property
    def row_width(self) -> int:
        return self.problem.dt.shape[1]

    @property
    def columns(self) -> int:
        return self.problem.dt.shape[0]

    def rows(self, idx, out=None):
        """float64 kernel rows ``exp(-beta dt[idx])``, the exponent clamped at ``kernel_arg_min`` (into ``out``
        where given).

        The clamp keeps ``exp`` and the products with the rows off their slow
        subnormal paths; it changes no entry by more than ``exp(kernel_arg_min)``
        (``5e-283`` by default), ``5e-33`` of any row sum the solver accepts.
        """
        pr, xp = self.problem, self.xp
        rows = xp.take_rows(pr.dt, idx, out)
        return xp.kernel(rows, self.beta, self.kernel_arg_min, pr.dt_max, overwrite=True)

    def value(self, z) -> float:
        return -float(self.xp.sum(self.xp.xlogy(self.problem.p, z)))

    def ascent(self, ks, z):
        """``c = -grad F`` on the coordinates of ``ks``."""
        return ks @ (self.problem.p / z)

    def hessian(self, ks, z, single: bool):
        """The Hessian on the coordinates of ``ks`` (a backend Gram), or ``None`` where it overflows."""
        h = self.xp.gram(ks, self.problem.sqrt_p / z, single=single)
        return h if math.isfinite(float(self.xp.amax(self.xp.diagonal(h)))) else None

    def excess(self, q, c, c_j: float) -> float:
        """How far, in nats, a coordinate of ascent ``c_j`` is above optimal at the ``q`` of ascent ``c``."""
        return math.log(c_j) if c_j > 0 else -math.inf

    def ba_step(self, q, c):
        """The Blahut-Arimoto step ``q c`` (normalised)."""
        x = q * c
        return x / self.xp.sum(x)

    def segment_slope(self, z: np.ndarray, col: np.ndarray):
        r"""``phi'`` of :math:`\phi(t) = -\sum_x p(x) \ln((1 - t) z_x + t k_x)` (numpy ``z`` and column ``k``)."""
        w = self.xp.to_numpy(self.problem.p)
        return lambda t: float(np.sum(w * (z - col) / ((1.0 - t) * z + t * col)))

    def line_minimum(self, z, col, rel: float = 1e-3) -> float:
        r"""The minimiser on ``[0, 1]`` of :math:`\phi(t) = -\sum_x p(x) \ln((1 - t) z_x + t\,col_x)` (backend
        ``z`` and ``col``, positive), within ``rel`` of it: Newton's method on :math:`t \phi'(t)` kept inside
        a bracket of the sign change of :math:`\phi'` (bisected, geometrically while it spans orders of
        magnitude, where a step leaves it; probed beyond a short step), the bracket's left end once it is
        within ``rel``; 0 where :math:`\phi'(0) \ge 0`, 1 where :math:`\phi'(1) \le 0`. Fewer products of
        length ``n`` than the bisection of :func:`segment_minimum` (which serves rows of mass ``1e-25``,
        whose steps span hundreds of decades).
        """
        xp, p = self.xp, self.problem.p
        dz = col - z

        def derivatives(t: float) -> tuple[float, float]:
            r = dz / ((1.0 - t) * z + t * col)  # (z + t dz rounds to 0 where col is below z's last bit)
            pr = p * r
            return -float(xp.sum(pr)), float(xp.sum(pr * r))

        # masses of 1e-19 serving rows alone: phi'' beyond float range (then steps fall back to bisection);
        # a row col leaves at 0: phi'(1) = +inf
        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
            d, h = derivatives(0.0)
            if not d < 0:
                return 0.0
            if derivatives(1.0)[0] <= 0:
                return 1.0
            # from Newton's step on phi' at 0 (exact where phi' is nearly linear up to the minimum)
            lo, hi, t = 0.0, 1.0, min(0.5, -d / h) if 0 < h < math.inf else 0.5
            for _ in range(100):
                d, h = derivatives(t)
                lo, hi = (t, hi) if d < 0 else (lo, t)
                if hi - lo <= rel * lo:
                    return lo
                # Newton on t phi'(t): each row's part of phi' is p / (t + e) or p / (e - t), so that near 0
                # t phi' is nearly linear where phi' itself is like 1 / t (Newton on phi' only doubles t there)
                slope = d + t * h
                step = -t * d / slope if slope > 0 else math.inf
                if abs(step) <= 0.5 * rel * t:  # a short step proves nothing: probe beyond it
                    step += math.copysign(0.5 * rel * t, step)
                t_next = t + step
                if not lo < t_next < hi:
                    floor = max(lo, 1e-300)
                    t_next = math.sqrt(floor * hi) if hi > 4.0 * floor else 0.5 * (lo + hi)
                t = t_next
        return lo

    def certificate(self, screen: Float32Rows, idx, q, z, c, tol: float, cap: int):
        """``(gap, entering columns or None, screen)``: ``gap = ln max c`` over every column, bounded above
        off the support by the float32 screen.

        Entering columns come as ``(indices, float64 kernel rows, c)``: those
        whose exact ``c`` exceeds ``exp(tol / 2)``, at most ``cap``, most violated first.
        """
        xp = self.xp
        bound, over, k_over, screen = self._off_support(screen, idx, self.problem.p / z, math.exp(tol), 2 * cap)
        entering = None if k_over is None else _most_violated(xp, over, k_over, bound[over], math.exp(0.5 * tol), cap)
        return math.log(max(float(xp.amax(c)), float(xp.amax(bound)))), entering, screen

    def hessian_product(self, ks, z, v):
        """``H v`` for the Hessian on the coordinates of ``ks``, without forming it: two products with ``ks``."""
        return ks @ (self.problem.p / z * ((v @ ks) / z))

    def chord_certificate(self, screen: Float32Rows, idx, ks, z, delta, tol: float):
        r"""``(gap, screen)``: the gap certified by the dual point :math:`w = (p / z) f(u)`,
        ``u = (K delta) / z``, scaled to feasibility; ``inf`` (no certificate) where its part on the support
        alone exceeds ``tol``, and then the screen is not taken.

        For any ``w > 0`` with :math:`\max_{\hat x} (K^\top w)(\hat x) = M`,
        :math:`\sum_x p \ln(w / (M p))` is a lower bound on ``min F`` (Jensen:
        ``sum_x w z' <= M`` for every pmf's ``z'``), so ``F(q)`` minus it,
        ``-sum_x p ln f + ln M``, is a certified gap whatever ``delta`` is. ``f = 1 - u`` is the
        linearised optimality of a Newton step for :math:`F + \sum q`: ``H delta = c - 1`` makes
        ``K^T w = 1`` on the support exactly, and the gap is then about the Newton decrement, second
        order in the distance to the optimum where Blahut's ``ln max c`` is first order. At 1024 x 1024,
        beta 1000, through the exact Newton step: ``1.7e-9`` (``F(q) - min F``: ``1.7e-9``) where
        Blahut's is ``1.2e-3`` and the dual ``f = e^-u`` gives ``1.5e-6``. Where ``u >= 1/2`` (far from
        the optimum), ``f`` is ``e^-u`` scaled to meet ``1 - u`` there: positive for every ``u``.
        """
        xp, p = self.xp, self.problem.p
        with np.errstate(over="ignore", invalid="ignore"):  # a delta beyond float range: no certificate
            u = (delta @ ks) / z
            f = xp.where(u < 0.5, 1.0 - u, xp.exp(-xp.clip(u, 0.5, 50.0)) * (0.5 * math.exp(0.5)))
            w = p / z * f
            shift, top = -float(xp.sum(xp.xlogy(p, f))), float(xp.amax(ks @ w))  # -sum p ln f, max on the support
        on_support = shift + math.log(top) if top > 0 else math.inf
        if not (math.isfinite(on_support) and on_support <= tol):
            return math.inf, screen
        bound, _, _, screen = self._off_support(screen, idx, w, math.exp(tol))
        return shift + math.log(max(top, float(xp.amax(bound)))), screen

    def _off_support(self, screen: Float32Rows, idx, w, threshold: float, limit: int | None = None):
        """``(bound, over, rows of over or None, screen)``: an upper bound on ``c = K^T w`` off the support
        (0 on it), exact in float64 on the columns ``over`` where the float32 screen's exceeds ``threshold``,
        at most ``limit`` of them, those of the largest screen bounds (the others keep theirs: far from the
        optimum, where a first slope from one column finds 1020 of 1024 columns over and 64 may enter)."""
        xp = self.xp
        m = self.problem.shape[1]
        inside = xp.mask(m, idx)
        bound, over, screen = screen.screen(w, inside, self.beta, threshold)
        if over is not None and limit is not None and over.shape[0] > limit:
            over = over[xp.argsort(-bound[over])[:limit]]
        if over is None:  # every column off the support is checked in float64
            bound, over = xp.where(inside, 0.0, xp.full(m, math.inf)), xp.nonzero(~inside)
        if not over.shape[0]:
            return bound, over, None, screen
        k_over = self.rows(over)
        bound[over] = k_over @ w
        return bound, over, k_over, screen


def _most_violated(xp, over, rows, c_over, threshold: float, cap: int):
    """``(indices, rows, c)`` of the columns of ``over`` whose ``c`` exceeds ``threshold``, at most ``cap`` of
    the largest (a few cheap steps beat one on many columns); ``None`` where none does."""
    joins = xp.nonzero(c_over > threshold)
    if joins.shape[0] > cap:
        joins = joins[xp.argsort(-c_over[joins])[:cap]]
    return (over[joins], rows[joins], c_over[joins]) if joins.shape[0] else None


@dataclass(frozen=True)
class CapacityObjective:
    r"""Channel capacity as the Newton solver sees it: :math:`\min_p F(p) = -I(p; W)` over input pmfs.

    .. math:: F(p) = \sum_y r_y \ln r_y + \sum_x p(x) H(W_x), \qquad r = pW,

    evaluated at ``p / sum p`` (the solver's line search leaves the simplex by
    rounding). A row of the solver's kernel is ``[W_x, H(W_x)]``, so that
    ``z = p @ rows = [r, p . H]`` carries all of ``F``. ``-grad F`` is
    ``D(W_x || r)`` up to a constant, the Hessian ``sum_y W_x(y) W_x'(y) / r_y``,
    and :math:`I(p; W) \le C \le \max_x D(W_x \| r)` certifies the gap [1]_.
    Where the largest ``D`` sits on an input of no mass (an output only it
    reaches, its optimal mass below float range), the upper end also tries
    the output pmf mixed with a little of the mean row
    (:func:`estimators._ba_plain.capacity_bracket`).

    .. [1] I. Csiszar, "The method of types", IEEE Trans. Inf. Theory 44(6), 1998 (the minimax form of ``C``).
    """

    xp: Any
    aug: Any  # (n_x, n_y + 1): [W, H(W_x)]
    w_mean: Any
    used: Any
    screen: None = None
    block: bool = False  # block steps and the chord dual need F(tq) = F(q) - ln t, which -I does not have

    @classmethod
    def of(cls, xp, w: np.ndarray) -> CapacityObjective:
        h = -np.sum(np.where(w > 0, w * np.log(np.where(w > 0, w, 1.0)), 0.0), axis=1)
        aug = xp.asarray(np.concatenate([w, h[:, None]], axis=1))
        used = xp.mask(w.shape[1], xp.index(np.flatnonzero(w.sum(axis=0) > 0)))  # a bool mask on either backend
        return cls(xp, aug, xp.asarray(w.mean(axis=0)), used)

    @property
    def row_width(self) -> int:
        return self.aug.shape[1]

    @property
    def columns(self) -> int:
        return self.aug.shape[0]

    def rows(self, idx, out=None):
        return self.xp.take_rows(self.aug, idx, out)

    def _log_r(self, z):
        """``[ln r - ln t, -1]`` with ``r`` the outputs of ``z``, ``t = sum r``; ``ln 0`` is ``LOG_ZERO``."""
        xp, r = self.xp, z[:-1]
        log_r = xp.where(r > 0, xp.log(xp.where(r > 0, r, 1.0)), LOG_ZERO) - math.log(float(xp.sum(r)))
        return xp.concat([-log_r, xp.full(1, -1.0)])

    def value(self, z) -> float:
        xp, t = self.xp, float(self.xp.sum(z[:-1]))
        return float(xp.sum(xp.xlogy(z[:-1], z[:-1] / t))) / t + float(z[-1]) / t

    def ascent(self, ks, z):
        """``D(W_x || r)`` on the inputs of ``ks``."""
        return ks @ self._log_r(z)

    def hessian(self, ks, z, single: bool):
        xp, r = self.xp, z[:-1]
        t = float(xp.sum(r))
        weights = xp.concat([xp.where(r > 0, xp.exp(-0.5 * xp.log(xp.where(r > 0, r / t, 1.0))), 0.0), xp.zeros(1)])
        h = xp.gram(ks, weights, single=single)
        return h if math.isfinite(float(xp.amax(xp.diagonal(h)))) else None

    def excess(self, q, c, c_j: float) -> float:
        """``D(W_j || r) - I``, nats."""
        return c_j - float(self.xp.sum(q * c)) / float(self.xp.sum(q))

    def ba_step(self, q, c):
        """The Blahut-Arimoto step ``q exp(D)`` (normalised), scaled by the largest ``D`` among the inputs of
        positive mass: an input of none (just entered) may have a ``D`` hundreds of nats above the rest,
        which would round every ``exp`` of the others to 0 (the masses it keeps at 0 are still 0)."""
        xp = self.xp
        top = float(xp.amax(xp.where(q > 0, c, -math.inf)))
        x = q * xp.exp(xp.clip(c - top, -math.inf, 0.0))
        return x / xp.sum(x)

    def segment_slope(self, z: np.ndarray, col: np.ndarray):
        """``phi'`` of ``phi(t) = F((1 - t) p + t e_j)``, ``col`` the row of ``j`` (numpy)."""
        def slope(t: float) -> float:
            r = (1.0 - t) * z[:-1] + t * col[:-1]
            log_r = np.log(np.where(r > 0, r, 1.0))
            return float(np.sum((col[:-1] - z[:-1]) * log_r) + col[-1] - z[-1])

        return slope

    def certificate(self, screen, idx, q, z, c, tol: float, cap: int):
        """``(max_x D(W_x || r) - I, entering inputs or None, None)`` over every input; the mixed upper end
        where the largest ``D`` is on an input of no mass."""
        xp = self.xp
        n = self.aug.shape[0]
        lower = float(xp.sum(q * c)) / float(xp.sum(q))
        off = xp.nonzero(~xp.mask(n, idx))
        upper, entering, top_mass = float(xp.amax(c)), None, float(q[xp.argmax(c)])
        if off.shape[0]:
            rows = self.aug[off]
            d_off = rows @ self._log_r(z)
            if float(xp.amax(d_off)) > upper:
                upper, top_mass = float(xp.amax(d_off)), 0.0
            entering = _most_violated(xp, off, rows, d_off, lower + 0.5 * tol, cap)
        if upper - lower > tol and top_mass <= 1e-30 * float(xp.amax(q)):
            eta = min(0.25 * tol, 0.5)
            r = (1.0 - eta) * z[:-1] / float(xp.sum(z[:-1])) + eta * self.w_mean
            log_r = xp.where(self.used, xp.log(xp.where(self.used, r, 1.0)), 0.0)
            upper = min(upper, float(xp.amax(self.aug @ xp.concat([-log_r, xp.full(1, -1.0)]))))
        return upper - lower, entering, None


@dataclass(frozen=True)
class SlopePoint:
    """A solved slope (numpy arrays, floats); see :class:`~estimators.blahut_arimoto.RDPoint`."""

    rate: float
    distortion: float
    gap: float
    support: np.ndarray
    encoder: tuple[np.ndarray, np.ndarray]  # (q on the support, Kq): Q = K[:, support] q / Kq
    marginal: np.ndarray
    iterations: int


def slope_point(obj: KernelObjective, sol) -> SlopePoint:
    r"""Rate, distortion and gap of the encoder ``Q = q K / (Kq)`` of a :class:`~estimators._ba_newton.Solution`.

    With ``r = q c`` its output marginal, :math:`I = -\beta D' - \sum_x p \ln z - D(r \| q)`,
    ``D'`` the distortion above each row's minimum; Blahut's bound is
    :math:`-\sum_x p \ln z - \ln \max c` in the same units.
    """
    xp, pr = obj.xp, obj.problem
    q, c, z = sol.q, sol.c, sol.z
    d_excess = float(xp.sum(q * ((sol.ks * pr.dt[sol.idx]) @ (pr.p / z))))
    log_z_mean = float(xp.sum(xp.xlogy(pr.p, z)))
    kl = float(xp.sum(xp.xlogy(q * c, c)))
    rate = max(-obj.beta * d_excess - log_z_mean - kl, 0.0)
    gap = max(rate + obj.beta * d_excess + log_z_mean + sol.gap, 0.0)
    marginal = xp.zeros(pr.shape[1])
    marginal[sol.idx] = q * c
    encoder = (xp.to_numpy(q), xp.to_numpy(z))  # the kernel rows are formed again when the encoder is read
    return SlopePoint(
        rate, d_excess + pr.d_min_mean, gap, xp.index_numpy(sol.idx), encoder, xp.to_numpy(marginal), sol.iterations
    )
