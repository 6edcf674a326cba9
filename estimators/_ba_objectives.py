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

from estimators._ba_screen import Float32Rows

#: The end point's kernel is ``exp(-END_POINT_EXCESS)`` (clamped at ``e^-708``) off each row's minimisers.
END_POINT_EXCESS = 1000.0


@dataclass(frozen=True)
class RDProblem:
    """A source ``p`` and distortion ``d`` on a backend, slope-free: ``dt = (d - row minima).T``, ``(m, n)``."""

    xp: Any
    p: Any
    sqrt_p: Any
    dt: Any
    d_min_mean: float

    @classmethod
    def of(cls, xp, p: np.ndarray, d: np.ndarray) -> RDProblem:
        dt = xp.asarray(np.ascontiguousarray((d - d.min(axis=1, keepdims=True)).T))
        pb = xp.asarray(p)
        return cls(xp, pb, xp.exp(0.5 * xp.log(pb)), dt, float(p @ d.min(axis=1)))

    @property
    def shape(self) -> tuple[int, int]:
        return self.dt.shape[1], self.dt.shape[0]

    def best_vertex(self) -> tuple[int, float]:
        """The column ``j`` of least expected distortion and its largest distortion excess over the row minima."""
        j = int(np.argmin(self.xp.to_numpy(self.dt @ self.p)))
        return j, float(self.xp.amax(self.dt[j]))


@dataclass(frozen=True)
class KernelObjective:
    """``F`` at slope ``beta`` of ``problem``; ``screen`` holds float32 kernel rows at slopes ``<= beta``."""

    problem: RDProblem
    beta: float
    screen: Float32Rows
    kernel_arg_min: float

    @classmethod
    def at(cls, problem: RDProblem, beta: float, screen: Float32Rows | None, kernel_arg_min: float):
        """The objective at ``beta``, with the screen's rows of larger slopes (a root search goes back) recomputed."""
        xp = problem.xp
        screen = Float32Rows.of(xp, problem.dt) if screen is None else screen
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

    def rows(self, idx):
        """float64 kernel rows ``exp(-beta dt[idx])``, the exponent clamped at ``kernel_arg_min``.

        The clamp keeps ``exp`` off its slow subnormal path; it changes no
        entry by more than ``e^-708``, ``1e-57`` of any row sum the solver accepts.
        """
        return self.xp.exp(self.xp.maximum(self.problem.dt[idx] * -self.beta, self.kernel_arg_min))

    def value(self, z) -> float:
        return -float(self.xp.sum(self.xp.xlogy(self.problem.p, z)))

    def ascent(self, ks, z):
        """``c = -grad F`` on the coordinates of ``ks``."""
        return ks @ (self.problem.p / z)

    def hessian(self, ks, z, single: bool):
        """The Hessian on the coordinates of ``ks`` (a backend Gram), or ``None`` where it overflows."""
        h = self.xp.gram(ks, self.problem.sqrt_p / z, single=single)
        return h if math.isfinite(float(self.xp.amax(self.xp.diagonal(h)))) else None

    def outside(self, screen: Float32Rows, idx, z, tol: float, cap: int):
        """``(max c off the support, bounded above; entering columns or None; screen)``.

        Entering columns come as ``(indices, float64 kernel rows, c)``: those
        whose exact ``c`` exceeds ``exp(tol / 2)``, at most ``cap``, most violated first.
        """
        xp = self.xp
        m = self.problem.shape[1]
        inside = xp.mask(m, idx)
        w = self.problem.p / z
        bound, over, screen = screen.screen(w, inside, self.beta, math.exp(tol))
        if over is None:  # every column off the support is checked in float64
            bound, over = xp.where(inside, 0.0, xp.full(m, math.inf)), xp.nonzero(~inside)
        entering = None
        if over.shape[0]:
            k_over = self.rows(over)
            c_over = k_over @ w
            bound[over] = c_over
            joins = xp.nonzero(c_over > math.exp(0.5 * tol))
            if joins.shape[0] > cap:  # the most violated first: a few cheap steps beat one on many columns
                joins = joins[xp.argsort(-c_over[joins])[:cap]]
            if joins.shape[0]:
                entering = (over[joins], k_over[joins], c_over[joins])
        return float(xp.amax(bound)), entering, screen


@dataclass(frozen=True)
class SlopePoint:
    """A solved slope (numpy arrays, floats); see :class:`~estimators.blahut_arimoto.RDPoint`."""

    rate: float
    distortion: float
    gap: float
    support: np.ndarray
    encoder: tuple[np.ndarray, np.ndarray, np.ndarray]  # (K[:, support].T, q on the support, Kq): Q = K q / Kq
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
    # the encoder is formed when read; the numpy backend hands the kernel rows over uncopied
    encoder = tuple(a if xp.name == "numpy" else xp.to_numpy(a) for a in (sol.ks, q, z))
    return SlopePoint(
        rate, d_excess + pr.d_min_mean, gap, xp.index_numpy(sol.idx), encoder, xp.to_numpy(marginal), sol.iterations
    )
