r"""Blahut-Arimoto: rate-distortion, channel capacity and the information bottleneck.

Every function is stable against underflow (rows rescaled, or the log
domain), takes any alphabet sizes (the
reproduction alphabet of a distortion matrix may be larger or smaller than the
source's), reports its information in **nats**, and stops on a certified gap
(an upper minus a lower bound on the optimum) rather than on a small change.
A run that hits ``max_iter`` first returns its last iterate with
``converged=False`` and raises a :class:`RuntimeWarning`.

Inside, one convex program per problem and one solver over them: the
rate-distortion program at a slope, its ``D_min`` end point and channel
capacity (:mod:`estimators._ba_objectives`) are solved by one active-set Newton
(mix-SQP) solver (:mod:`estimators._ba_newton`); the rate-distortion
certificate off the support comes from a float32 screen
(:mod:`estimators._ba_screen`). The plain log-domain iteration
(:mod:`estimators._ba_plain`) is the reference (``method="plain"``) and takes
over where the Newton solver declines. Solver knobs travel as one frozen options object
(:class:`NewtonOptions`).
``backend="torch"`` runs the very same iterations (written once against one
backend class per array library, :mod:`estimators._ba_arrays`) in float64
torch, on ``device``; the numpy backend never imports torch.

Threads. Every function runs its kernels in a thread scope
(:mod:`estimators._threads`): ``threads=n`` holds the BLAS/OpenMP pools (and
torch's intra-op threads, where torch is in use) at ``n`` for the call; by
default an enclosing :func:`estimators.limit_threads` block decides, else one
thread up to ``2048 x 2048`` entries, where a second thread only costs time,
and the caller's settings above. The caller's settings come back after the
call, also on an error.

References
----------
.. [1] R. E. Blahut, "Computation of channel capacity and rate-distortion
   functions", IEEE Trans. Inf. Theory 18(4):460-473, 1972.
.. [2] S. Arimoto, "An algorithm for computing the capacity of arbitrary
   discrete memoryless channels", IEEE Trans. Inf. Theory 18(1):14-20, 1972.
.. [3] T. M. Cover, J. A. Thomas, *Elements of Information Theory*, 2nd ed.,
   Wiley 2006, sections 10.8 and 13.
.. [4] N. Tishby, F. C. Pereira, W. Bialek, "The information bottleneck
   method", Allerton 1999.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from scipy import optimize

from estimators import _ba_newton, _ba_plain
from estimators._ba_arrays import NumpyBackend, get_backend
from estimators._ba_newton import NewtonOptions
from estimators._ba_objectives import (
    END_POINT_ARG_MIN,
    END_POINT_EXCESS,
    CapacityObjective,
    KernelObjective,
    RDProblem,
    slope_point,
)
from estimators._threads import kernel_threads, serial_but_gram
from estimators._validation import (
    as_distortion,
    as_float_array,
    as_joint,
    as_pmf,
    as_stochastic_matrix,
    positive_float,
    positive_int,
)

__all__ = [
    "RDPoint",
    "RDCurve",
    "CapacityResult",
    "IBPoint",
    "IBCurve",
    "NewtonOptions",
    "rate_distortion",
    "rd_curve",
    "distortion_rate",
    "channel_capacity",
    "information_bottleneck",
    "ib_curve",
]

#: Solvers that ``method=`` selects: active-set Newton (the default) or the plain log-domain iteration.
METHODS = ("newton", "plain")


# --------------------------------------------------------------------------
# result objects


@dataclass(frozen=True)
class SupportEncoder:
    """An encoder stored by its non-zero columns, in factored form, its kernel rows formed when read.

    ``Q[x, support[j]] = K[j, x] * q[j] / z[x]``, zero off the support, ``K`` the solver's kernel rows
    ``exp(max(-beta dt[support], arg_min))`` of the curve's ``dt`` (shared by its points). A point keeps
    ``O(|support| + n_x)`` numbers, not its ``|support| x n_x`` rows (a 20-slope curve at 1024 x 1024 kept
    30 MB of them, most never read).
    """

    support: np.ndarray
    q: np.ndarray
    z: np.ndarray
    beta: float
    dt: np.ndarray  # (n_xhat, n_x): d minus its row minima, transposed
    arg_min: float
    dt_max: float

    def dense(self) -> np.ndarray:
        kernel = NumpyBackend().kernel(self.dt[self.support], self.beta, self.arg_min, self.dt_max, overwrite=True)
        out = np.zeros(self.dt.shape)  # filled by contiguous rows, returned transposed
        out[self.support] = kernel * self.q[:, None] / self.z[None, :]
        return out.T


class _DenseOnRead:
    """A dataclass field holding an array or a :class:`SupportEncoder`, read as a dense array.

    A curve keeps one encoder per slope; most columns of each are zero, and
    most are never read. The dense ``(n_x, n_xhat)`` array is built on first
    read and kept.
    """

    def __set_name__(self, owner, name: str) -> None:
        self.slot = "_" + name

    def __get__(self, obj, owner=None):
        if obj is None:
            raise AttributeError(self.slot)  # no default value for the dataclass field
        value = obj.__dict__[self.slot]
        if isinstance(value, SupportEncoder):
            value = obj.__dict__[self.slot] = value.dense()
        return value

    def __set__(self, obj, value) -> None:
        obj.__dict__[self.slot] = value


@dataclass(frozen=True)
class RDPoint:
    """A point of the rate-distortion curve, at slope ``-beta``.

    Attributes
    ----------
    rate : float
        ``I(X; Xhat)`` of ``encoder``, nats. The true ``R(distortion)`` lies in
        ``[rate - gap, rate]``.
    distortion : float
        ``E d(X, Xhat)`` under ``encoder``.
    beta : float
        The slope parameter (``0`` for the zero-rate end point, ``inf`` for the
        minimum-distortion end point of :func:`distortion_rate`).
    encoder : ndarray, shape (n_x, n_xhat)
        ``Q(xhat | x)``; each row sums to one.
    marginal : ndarray, shape (n_xhat,)
        The output marginal ``sum_x p(x) Q(xhat | x)``.
    iterations : int
        Iterations spent (Blahut-Arimoto and Newton steps).
    gap : float
        Certified bound on ``rate + beta * distortion - min_Q (I + beta E d)``, nats.
    converged : bool
        Whether ``gap <= tol``.
    """

    rate: float
    distortion: float
    beta: float
    encoder: np.ndarray = _DenseOnRead()
    marginal: np.ndarray
    iterations: int
    gap: float
    converged: bool


@dataclass(frozen=True)
class RDCurve:
    """Points of ``R(D)`` at increasing slopes ``betas`` (so decreasing distortion).

    Attributes
    ----------
    betas, rates, distortions, gaps : ndarray, shape (n,)
        Per point, as in :class:`RDPoint` (nats).
    converged : ndarray of bool, shape (n,)
    points : tuple of RDPoint
    """

    betas: np.ndarray
    rates: np.ndarray
    distortions: np.ndarray
    gaps: np.ndarray
    converged: np.ndarray
    points: tuple[RDPoint, ...]


@dataclass(frozen=True)
class CapacityResult:
    """Capacity of a discrete memoryless channel, bracketed.

    Attributes
    ----------
    capacity : float
        ``I(input_pmf; W)``, nats: an achievable rate, within ``upper - lower`` of capacity.
    input_pmf : ndarray, shape (n_x,)
    lower, upper : float
        ``lower = I(p; W) <= C <= upper = max_x D(W(.|x) || r)``, ``r = pW`` or that
        output pmf mixed with a little of the mean row (see :func:`channel_capacity`).
    iterations : int
    converged : bool
        Whether ``upper - lower <= tol``.
    """

    capacity: float
    input_pmf: np.ndarray
    lower: float
    upper: float
    iterations: int
    converged: bool


@dataclass(frozen=True)
class IBPoint:
    """An information-bottleneck encoder at trade-off ``beta``.

    Attributes
    ----------
    rate : float
        ``I(X; T)``, nats.
    relevance : float
        ``I(T; Y)``, nats; ``relevance <= rate`` and ``relevance <= I(X; Y)``.
    beta : float
    encoder : ndarray, shape (n_x, n_clusters)
        ``p(t | x)``.
    iterations : int
        Iterations of the restart that won.
    converged : bool
        Whether that restart's Lagrangian settled to within ``tol``.
    """

    rate: float
    relevance: float
    beta: float
    encoder: np.ndarray
    iterations: int
    converged: bool


@dataclass(frozen=True)
class IBCurve:
    """IB points at increasing ``betas``; arrays ``betas, rates, relevances`` and ``points``."""

    betas: np.ndarray
    rates: np.ndarray
    relevances: np.ndarray
    points: tuple[IBPoint, ...]


# --------------------------------------------------------------------------
# validation helpers


def _rd_inputs(p_x, distortion) -> tuple[np.ndarray, np.ndarray]:
    p = as_pmf(p_x, "p_x", ndim=1)
    d = as_distortion(distortion, "distortion")
    if d.shape[0] != p.shape[0]:
        raise ValueError(
            f"distortion must have one row per symbol of p_x: p_x has {p.shape[0]} entries, "
            f"distortion has shape {d.shape}"
        )
    return p, d


def _betas(betas, name: str = "betas") -> np.ndarray:
    b = as_float_array(betas, name, ndim=1)
    if np.any(b <= 0):
        raise ValueError(f"{name} must all be > 0 (min {b.min():.3g})")
    return np.sort(b)


def _init_marginal(init, n_xhat: int) -> np.ndarray:
    if init is None:
        return np.full(n_xhat, 1.0 / n_xhat)
    q = as_pmf(init, "init", ndim=1)
    if q.shape[0] != n_xhat:
        raise ValueError(f"init must have {n_xhat} entries (columns of distortion), got {q.shape[0]}")
    return q


def _warn_unconverged(what: str, gap: float, tol: float, max_iter: int) -> None:
    warnings.warn(
        f"{what} stopped at max_iter={max_iter} with certified gap {gap:.3g} > tol={tol:.3g}",
        RuntimeWarning,
        stacklevel=3,
    )


def _method(method) -> str:
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    return method


def _options(options, kind: type, name: str):
    if options is None:
        return kind()
    if not isinstance(options, kind):
        raise ValueError(f"{name} must be a {kind.__name__}, got {type(options).__name__}")
    return options


def _log(x: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.log(x)


# --------------------------------------------------------------------------
# rate-distortion


@dataclass(frozen=True)
class _Start:
    """Where the Newton solver starts a slope: support ``idx``, masses ``q``, the float32 screen rows so far.

    A value: each slope takes one and returns the next (the root search of
    :func:`distortion_rate` may hand the same one out twice).
    """

    idx: Any
    q: Any
    screen: Any = None


def _first_start(problem: RDProblem, beta: float, init: np.ndarray | None, opt: NewtonOptions) -> _Start:
    """From ``init``'s support; without it, from the best single column where no row can underflow, else uniform."""
    xp = problem.xp
    if init is not None:
        idx = np.flatnonzero(init > 0)
        return _Start(xp.index(idx), xp.asarray(init[idx] / init[idx].sum()))
    j, reach = problem.best_vertex()
    if beta * reach < opt.vertex_arg_max:  # a small first support: Newton on all m columns would cost m^3
        return _Start(xp.index(np.array([j])), xp.full(1, 1.0))
    d_excess = xp.to_numpy(problem.dt).T
    return _plain_start(xp, xp.to_numpy(problem.p), np.exp(-beta * d_excess), opt.start_steps, opt.end_point_cutoff)


def _newton_solution(obj: KernelObjective, start: _Start, tol: float, max_iter: int, opt: NewtonOptions):
    """The Newton solver from ``start``, else from the uniform pmf (every ``(Kq)(x) >= 1/m``), else from there
    with full steps only (no block steps); ``None`` if all decline."""
    xp, m = obj.xp, obj.problem.shape[1]
    sol = _ba_newton.solve(obj, start.idx, start.q, tol=tol, max_iter=max_iter, options=opt)
    if sol is None and start.idx.shape[0] < m:
        sol = _ba_newton.solve(obj, xp.arange(m), xp.full(m, 1.0 / m), tol=tol, max_iter=max_iter, options=opt)
    if sol is None and opt.block_gap > 0:  # block steps are an acceleration: full steps only, from the uniform pmf
        full_steps = replace(opt, block_gap=-math.inf)
        sol = _ba_newton.solve(obj, xp.arange(m), xp.full(m, 1.0 / m), tol=tol, max_iter=max_iter, options=full_steps)
    return sol


@serial_but_gram()  # results independent of the thread count (see estimators._threads)
def _slope_point(
    problem: RDProblem, p: np.ndarray, d: np.ndarray, beta: float, start: _Start, tol: float, max_iter: int,
    opt: NewtonOptions, hand_over: bool = False,
) -> tuple[RDPoint, _Start]:
    """The point at ``beta`` from ``start``, and the start of the next slope (``hand_over``: its screen's arrays
    for the next slope to write into, where ``start`` is not used again).

    Where the Newton solver declines from every start (some ``(Kq)(x)``
    underflows, or the gap stalls; not seen in the stress runs), the plain
    log-domain iteration takes the slope from the start's marginal.
    """
    obj = KernelObjective.at(problem, beta, start.screen, opt.kernel_arg_min)
    sol = _newton_solution(obj, start, tol, max_iter, opt)
    if sol is None:
        xp = problem.xp
        log_q = xp.full(d.shape[1], -math.inf)
        log_q[start.idx] = xp.log(start.q)
        point = _plain_point(xp, p, d, beta, log_q, tol, max_iter)
        idx = np.flatnonzero(point.marginal > 0)
        return point, _Start(xp.index(idx), xp.asarray(point.marginal[idx] / point.marginal[idx].sum()), obj.screen)
    sp = slope_point(obj, sol)
    encoder = SupportEncoder(sp.support, *sp.encoder, beta, problem.dt_host, opt.kernel_arg_min, problem.dt_max)
    point = RDPoint(sp.rate, sp.distortion, beta, encoder, sp.marginal, sp.iterations, sp.gap, sp.gap <= tol)
    return point, _Start(sol.idx, sol.q, sol.screen if hand_over else sol.screen.shared())


def _plain_point(xp, p: np.ndarray, d: np.ndarray, beta: float, log_q, tol: float, max_iter: int) -> RDPoint:
    """The point at ``beta`` from ``log q`` (a backend array) by the plain log-domain iteration."""
    kern, log_p = _ba_plain.Kernel.of(xp, xp.asarray(-beta * d)), xp.asarray(_log(p))
    sol = _ba_plain.solve_rd(xp, log_p, kern, log_q, tol=tol, max_iter=max_iter)
    enc = xp.to_numpy(_ba_plain.rd_encoder(xp, kern, sol.log_q, sol.log_z))
    return _evaluate_rd(
        p, d, beta, enc, xp.to_numpy(sol.log_q), xp.to_numpy(sol.log_z), xp.to_numpy(sol.log_c), sol.iterations, tol
    )


def _evaluate_rd(p, d, beta, enc, log_q, log_z, log_c, iterations, tol) -> RDPoint:
    r"""Rate, distortion and certified gap of the encoder ``Q = q e^{-beta d} / Z``.

    The rate needs no logarithm of the matrix: with ``r = pQ`` the output marginal,

    .. math:: I(X;\hat X) = \sum_x p(x) \sum_{\hat x} Q \ln\frac{Q}{q} - D(r \| q)
              = -\beta D - \sum_x p(x) \ln Z_x - D(r \| q).

    Blahut's bound: ``min_Q (I + beta E d) >= -sum_x p(x) ln Z_x - max_xhat ln c(xhat)``.
    """
    marginal = p @ enc
    distortion = float(np.sum(p * np.einsum("ij,ij->i", enc, d)))
    log_z_mean = float(np.sum(p * np.where(p > 0, log_z, 0.0)))
    live = marginal > 0
    q = np.exp(log_q - log_q.max())
    log_q_norm = log_q - log_q.max() - math.log(q.sum())
    kl = float(np.sum(marginal[live] * (np.log(marginal[live]) - log_q_norm[live])))
    bias = -beta * distortion if math.isfinite(beta) else 0.0
    rate = max(bias - log_z_mean - kl, 0.0)
    lower = -log_z_mean - float(np.max(log_c))
    if math.isinf(beta):
        gap = max(float(np.max(log_c)), 0.0)
    else:
        gap = max(rate + beta * distortion - lower, 0.0)
    return RDPoint(rate, distortion, beta, enc, marginal, iterations, gap, gap <= tol)


def rate_distortion(
    p_x,
    distortion,
    beta: float,
    *,
    tol: float = 1e-10,
    max_iter: int = 10_000,
    backend: str = "numpy",
    device=None,
    init=None,
    threads: int | None = None,
    method: str = "newton",
    options: NewtonOptions | None = None,
) -> RDPoint:
    r"""The point of the rate-distortion curve where its slope is ``-beta``.

    Minimises the Lagrangian over encoders :math:`Q(\hat x | x)`

    .. math:: \min_Q \; I(X; \hat X) + \beta \, \mathbb E\, d(X, \hat X)

    over the output marginal: active-set Newton (mix-SQP) steps on its support
    (:mod:`estimators._ba_newton`), with the kernel of the support in float64
    and every other column screened by an outward-rounded float32 bound
    (:mod:`estimators._ba_screen`); the plain log-domain iteration takes
    over where it declines. Stops when Blahut's lower bound

    .. math:: L = -\sum_x p(x) \ln Z_x - \max_{\hat x} \ln c(\hat x), \quad
              Z_x = \sum_{\hat x} q(\hat x) e^{-\beta d(x,\hat x)}, \quad
              c(\hat x) = \sum_x \frac{p(x) e^{-\beta d(x, \hat x)}}{Z_x}

    is within ``tol`` of the Lagrangian of the returned encoder. Then
    :math:`R(D) \in [\text{rate} - \text{gap}, \text{rate}]` at
    :math:`D = \text{distortion}`.

    Parameters
    ----------
    p_x : array_like, shape (n_x,)
        Source pmf.
    distortion : array_like, shape (n_x, n_xhat)
        Non-negative distortion ``d[x, xhat]``; ``n_xhat`` is free.
    beta : float
        Slope, ``> 0`` (nats per unit of distortion).
    tol : float
        Certified gap at which to stop, nats.
    max_iter : int
        Most iterations; a :class:`RuntimeWarning` is raised if they run out.
    backend : {"numpy", "torch"}
    device : str or torch.device, optional
        Torch device (``"cuda"`` where available).
    init : array_like, shape (n_xhat,), optional
        Starting output marginal (uniform by default).
    threads : int, optional
        Threads of the BLAS/OpenMP pools (and of torch, for the torch backend or
        where torch is imported) during the call; the caller's settings come back
        after it, also on an error. ``None`` (default): the count of an enclosing
        :func:`estimators.limit_threads` block, else one thread for problems up
        to ``2048 x 2048`` entries (on the 2-core benchmark machine one thread
        was 1.3x to 60x faster than two there, the larger ratios under load),
        and the caller's settings above that. The result does not depend on it.
    method : {"newton", "plain"}
        The solver: active-set Newton, or the plain log-domain iteration (the reference; slow
        to certify where the optimal marginal has zeros).
    options : NewtonOptions, optional
        Knobs of the Newton solver (defaults: ``NewtonOptions()``).

    Returns
    -------
    RDPoint

    Examples
    --------
    >>> import numpy as np
    >>> pt = rate_distortion([0.5, 0.5], 1 - np.eye(2), beta=np.log(9.0))
    >>> round(pt.distortion, 6), round(pt.rate, 6)  # D = 1/(1+e^beta) = 0.1
    (0.1, 0.368064)
    """
    p, d = _rd_inputs(p_x, distortion)
    beta = positive_float(beta, "beta")
    tol = positive_float(tol, "tol")
    max_iter = positive_int(max_iter, "max_iter")
    method, opt = _method(method), _options(options, NewtonOptions, "options")
    init = None if init is None else _init_marginal(init, d.shape[1])
    with kernel_threads(threads, entries=d.size):
        xp = get_backend(backend, device)
        if method == "plain":
            log_q = xp.asarray(_log(np.full(d.shape[1], 1.0 / d.shape[1]) if init is None else init))
            point = _plain_point(xp, p, d, beta, log_q, tol, max_iter)
        else:
            problem = RDProblem.of(xp, p, d)
            point, _ = _slope_point(problem, p, d, beta, _first_start(problem, beta, init, opt), tol, max_iter, opt)
    if not point.converged:
        _warn_unconverged("rate_distortion", point.gap, tol, max_iter)
    return point


def rd_curve(
    p_x,
    distortion,
    betas: Sequence[float],
    *,
    tol: float = 1e-10,
    max_iter: int = 10_000,
    backend: str = "numpy",
    device=None,
    progress: bool = False,
    threads: int | None = None,
    method: str = "newton",
    options: NewtonOptions | None = None,
) -> RDCurve:
    """Rate-distortion points at each slope of ``betas``, warm-started along them.

    ``betas`` are sorted increasingly; each point starts from the output
    marginal of the previous one, which is close to optimal, so a curve costs
    little more than its hardest point. Each point is certified as in
    :func:`rate_distortion`; one :class:`RuntimeWarning` names the points that
    were not.

    Parameters
    ----------
    p_x, distortion, tol, max_iter, backend, device, threads, method, options
        As in :func:`rate_distortion`.
    betas : array_like, shape (n,)
        Slopes, each ``> 0``.
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    RDCurve
        Points in increasing ``beta`` (decreasing distortion, increasing rate).
    """
    p, d = _rd_inputs(p_x, distortion)
    b = _betas(betas)
    tol = positive_float(tol, "tol")
    max_iter = positive_int(max_iter, "max_iter")
    method, opt = _method(method), _options(options, NewtonOptions, "options")
    points = []
    with kernel_threads(threads, entries=d.size):
        xp = get_backend(backend, device)
        problem, start = RDProblem.of(xp, p, d), None
        for beta in _progress(b, progress, "R(D) slopes"):
            beta = float(beta)
            if method == "plain":
                log_q = xp.asarray(_log(points[-1].marginal if points else np.full(d.shape[1], 1.0 / d.shape[1])))
                points.append(_plain_point(xp, p, d, beta, log_q, tol, max_iter))
                continue
            start = _first_start(problem, beta, None, opt) if start is None else start
            point, start = _slope_point(problem, p, d, beta, start, tol, max_iter, opt, hand_over=True)
            points.append(point)
    curve = _rd_curve_of(points)
    if not curve.converged.all():
        bad = b[~curve.converged]
        _warn_unconverged(f"rd_curve at betas {bad.tolist()}", float(curve.gaps.max()), tol, max_iter)
    return curve


def _rd_curve_of(points: list[RDPoint]) -> RDCurve:
    return RDCurve(
        betas=np.array([pt.beta for pt in points]),
        rates=np.array([pt.rate for pt in points]),
        distortions=np.array([pt.distortion for pt in points]),
        gaps=np.array([pt.gap for pt in points]),
        converged=np.array([pt.converged for pt in points], dtype=bool),
        points=tuple(points),
    )


def _progress(items, enabled: bool, desc: str):
    if not enabled:
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc=desc)


def distortion_rate(
    p_x,
    distortion,
    rate: float,
    *,
    tol: float = 1e-10,
    max_iter: int = 10_000,
    backend: str = "numpy",
    device=None,
    threads: int | None = None,
    options: NewtonOptions | None = None,
) -> RDPoint:
    r"""The point of the curve whose rate is ``rate``: its distortion is :math:`D(R)`.

    :math:`D(R) = \min \{ \mathbb E d : I(X;\hat X) \le R \}` is the inverse of
    :math:`R(D)`. The slope ``beta`` with :math:`R(\beta) = R` is found by
    bracketing and Brent's method on :math:`\ln \beta`, warm-starting each
    evaluation. End points are exact: ``rate = 0`` gives the zero-rate point
    :math:`D_{\max} = \min_{\hat x} \mathbb E d(X, \hat x)` (``beta=0``); a
    rate at or above :math:`R(D_{\min})` gives the least-rate encoder reaching
    :math:`D_{\min} = \sum_x p(x) \min_{\hat x} d(x, \hat x)` (``beta=inf``). Where
    the curve has a straight piece at the root slope, the returned point time-shares
    its two ends so that its rate is ``rate``.

    This is the :math:`D(R_g)` term of the D-INL bound.

    Parameters
    ----------
    p_x, distortion, tol, max_iter, backend, device, threads, options
        As in :func:`rate_distortion`.
    rate : float
        Target rate, nats (finite, ``>= 0``; a negative rate is a ``ValueError``).

    Returns
    -------
    RDPoint
        With ``|point.rate - rate| <= max(tol, 1e-9)`` inside the curve's range.
    """
    p, d = _rd_inputs(p_x, distortion)
    if isinstance(rate, bool) or not isinstance(rate, (int, float, np.floating, np.integer)):
        raise ValueError(f"rate must be a real number, got {rate!r}")
    rate = float(rate)
    if not math.isfinite(rate) or rate < 0:
        raise ValueError(f"rate must be a finite number >= 0 (nats), got {rate}")
    tol = positive_float(tol, "tol")
    max_iter = positive_int(max_iter, "max_iter")
    opt = _options(options, NewtonOptions, "options")
    with kernel_threads(threads, entries=d.size):
        xp = get_backend(backend, device)
        if rate == 0:
            return _zero_rate_point(p, d)
        top = _min_distortion_point(xp, p, d, tol, max_iter, opt)
        if rate >= top.rate - tol:
            return top
        return _DRSearch(RDProblem.of(xp, p, d), p, d, tol, max_iter, opt).solve(rate)


def _zero_rate_point(p: np.ndarray, d: np.ndarray) -> RDPoint:
    """Rate 0: every ``x`` maps to the single ``xhat`` of least expected distortion."""
    expected = p @ d
    j = int(np.argmin(expected))
    enc = np.zeros_like(d)
    enc[:, j] = 1.0
    return RDPoint(0.0, float(expected[j]), 0.0, enc, enc[0].copy(), 0, 0.0, True)


@serial_but_gram()  # results independent of the thread count (see estimators._threads)
def _min_distortion_point(xp, p: np.ndarray, d: np.ndarray, tol: float, max_iter: int, opt: NewtonOptions) -> RDPoint:
    """``beta -> inf``: the least ``I`` over encoders supported on each row's minimisers.

    The mix-SQP solver on the program whose kernel is ``1`` on each row's
    minimisers and ``e^-708`` (``END_POINT_ARG_MIN``) elsewhere (distortion ``0`` there and
    ``END_POINT_EXCESS`` elsewhere, slope 1), from the support that a few plain
    steps on the 0/1 kernel pick (:func:`_end_point_start`). The certificate
    ``ln max c`` is evaluated here on the whole alphabet and the true 0/1 kernel.
    """
    row_min = d.min(axis=1, keepdims=True)
    best = d <= row_min + 1e-12 * max(1.0, float(np.abs(d).max()))
    kern = best.astype(float)
    live = p > 0
    problem = RDProblem.of(xp, p, np.where(best, 0.0, END_POINT_EXCESS))
    obj = KernelObjective.at(problem, 1.0, None, END_POINT_ARG_MIN)
    # certified below on the true 0/1 kernel: Blahut's bound there, not the solver's chord dual
    end_point = replace(opt, z_floor=opt.end_point_z_floor, stall_steps=opt.end_point_stall_steps, chord_ratio=0.0)
    sol = _newton_solution(obj, _end_point_start(xp, p, best, opt), tol, max_iter, end_point)
    q, iterations = None, 0 if sol is None else sol.iterations
    if sol is not None:
        q = np.zeros(d.shape[1])
        q[xp.index_numpy(sol.idx)] = xp.to_numpy(sol.q)
    log_c = _end_point_log_c(p, kern, q) if q is not None else np.array([math.inf])
    if q is None:  # neither found a finite marginal: the uniform pmf, uncertified
        q = np.full(d.shape[1], 1.0 / d.shape[1])
        log_c = _end_point_log_c(p, kern, q)
    z = kern @ q
    # a row of zero mass that q does not reach copies the uniform pmf on its minimisers
    served = np.where(z[:, None] > 0, kern * q, kern)
    enc = served / served.sum(axis=1, keepdims=True)
    log_z = np.where(live, _log(z), 0.0)
    point = _evaluate_rd(p, d, math.inf, enc, _log(q), log_z, log_c, iterations, tol)
    if not point.converged:
        _warn_unconverged("distortion_rate (D_min end point)", point.gap, tol, max_iter)
    return point


def _end_point_start(xp, p: np.ndarray, best: np.ndarray, opt: NewtonOptions) -> _Start:
    """The end point's first support: :func:`_plain_start` on the 0/1 kernel."""
    return _plain_start(xp, p, best.astype(float), opt.end_point_warmup, opt.end_point_cutoff)


def _plain_start(xp, p: np.ndarray, k: np.ndarray, steps: int, cutoff: float) -> _Start:
    """Up to ``steps`` plain steps ``q <- q c`` on the kernel ``k`` (numpy, rows of ``p > 0`` used) from the
    uniform pmf, kept where ``q`` is at least ``cutoff`` of its largest entry or not falling
    (``c >= 1 - 1e-3``): a first Newton step on every column costs a primal active-set pass per column it
    drops (10x the time at 512 x 512 tied distortions, 40x at a 1024 x 1024 slope); dropped columns re-enter
    where the certificate asks."""
    live = p > 0
    k, w = k[live], p[live]
    q, c = np.full(k.shape[1], 1.0 / k.shape[1]), np.zeros(k.shape[1])
    with np.errstate(divide="ignore", under="ignore"):
        for it in range(steps + 1):
            z = k @ q
            c = np.where(z > 0, w / np.where(z > 0, z, 1.0), 0.0) @ k
            if it == steps or np.all((c > 1.0 - 1e-9) | (q == 0)):  # settled (single minimisers: one step)
                break
            q = q * c
            q /= q.sum()
    idx = np.flatnonzero((q >= cutoff * q.max()) | ((c >= 1.0 - 1e-3) & (q > 0)))
    return _Start(xp.index(idx), xp.asarray(q[idx] / q[idx].sum()))


def _end_point_log_c(p: np.ndarray, kern: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``ln c`` of the 0/1 kernel at ``q``: Blahut's certificate of the end point (``inf`` where a row is unserved)."""
    z = kern @ q
    live = p > 0
    with np.errstate(divide="ignore"):
        return np.log((p[live] / z[live]) @ kern[live])


class _DRSearch:
    """Root of ``R(beta) = rate`` in ``log beta``, each evaluation warm-started."""

    def __init__(self, problem: RDProblem, p, d, tol: float, max_iter: int, opt: NewtonOptions):
        self.problem, self.p, self.d, self.tol, self.max_iter, self.opt = problem, p, d, tol, max_iter, opt
        self.start: _Start | None = None  # the last evaluation's answer, which starts the next
        self.cache: dict[float, RDPoint] = {}

    def point(self, log_beta: float) -> RDPoint:
        if log_beta not in self.cache:
            beta = math.exp(log_beta)
            start = _first_start(self.problem, beta, None, self.opt) if self.start is None else self.start
            self.cache[log_beta], self.start = _slope_point(
                self.problem, self.p, self.d, beta, start, self.tol, self.max_iter, self.opt
            )
        return self.cache[log_beta]

    def solve(self, rate: float) -> RDPoint:
        point = self._solve(rate)
        if not point.converged:  # only the answer is checked; bracketing evaluations may be rough
            _warn_unconverged("distortion_rate", point.gap, self.tol, self.max_iter)
        return point

    def _solve(self, rate: float) -> RDPoint:
        spread = float(np.ptp(self.d)) or 1.0
        lo = hi = math.log(1.0 / spread)
        while self.point(lo).rate > rate:
            lo -= 2.0
        while self.point(hi).rate < rate:
            hi += 1.0
            if hi > 745.0:
                raise ValueError(f"rate={rate} is not reached by any finite slope")
        if lo == hi:
            return self.point(lo)
        root = optimize.brentq(lambda s: self.point(s).rate - rate, lo, hi, xtol=1e-12, rtol=1e-14)
        best = self.point(root)
        if abs(best.rate - rate) <= max(self.tol, 1e-9):
            return best
        below = max((s for s, pt in self.cache.items() if pt.rate <= rate), default=lo)
        above = min((s for s, pt in self.cache.items() if pt.rate >= rate), default=hi)
        return _time_share(self.point(below), self.point(above), rate)


def _time_share(a: RDPoint, b: RDPoint, rate: float) -> RDPoint:
    """The point on the chord from ``a`` to ``b`` with rate ``rate`` (a straight piece of the curve)."""
    lam = (b.rate - rate) / (b.rate - a.rate) if b.rate > a.rate else 0.0
    enc = lam * a.encoder + (1 - lam) * b.encoder
    return RDPoint(
        rate=rate,
        distortion=lam * a.distortion + (1 - lam) * b.distortion,
        beta=b.beta,
        encoder=enc,
        marginal=lam * a.marginal + (1 - lam) * b.marginal,
        iterations=a.iterations + b.iterations,
        gap=max(a.gap, b.gap),
        converged=a.converged and b.converged,
    )


# --------------------------------------------------------------------------
# channel capacity


def channel_capacity(
    channel,
    *,
    tol: float = 1e-10,
    max_iter: int = 100_000,
    backend: str = "numpy",
    device=None,
    threads: int | None = None,
    method: str = "newton",
    options: NewtonOptions | None = None,
) -> CapacityResult:
    r"""Capacity :math:`C = \max_p I(p; W)` of a discrete memoryless channel, in nats.

    Active-set Newton (mix-SQP) steps on :math:`-I(p; W)` over the inputs
    (:mod:`estimators._ba_newton`), whose Blahut-Arimoto [1]_ [2]_ step is
    :math:`p(x) \leftarrow p(x)\, e^{D(W(\cdot|x) \| pW)} / \text{norm}`;
    stopped when the bracket

    .. math:: I(p; W) \;\le\; C \;\le\; \max_x D\big(W(\cdot|x) \,\|\, r\big)

    is narrower than ``tol``, for :math:`r = pW` or, where some output is
    reached only by inputs whose optimal mass is below float range (so that
    :math:`D(W(\cdot|x) \| pW)` is infinite), the output pmf
    :math:`r = (1 - \eta) pW + \eta \bar W` mixed with the mean row
    :math:`\bar W`, :math:`\eta = \min(\text{tol}/4, 1/2)`; any output pmf
    :math:`r` bounds :math:`C` this way.

    Parameters
    ----------
    channel : array_like, shape (n_x, n_y)
        Row-stochastic, ``channel[x, y] = p(y | x)``.
    tol : float
        Width of the certified bracket at which to stop, nats.
    max_iter : int
        Most iterations; a :class:`RuntimeWarning` is raised if they run out.
    backend : {"numpy", "torch"}
    device : str or torch.device, optional
    threads : int, optional
        As in :func:`rate_distortion` (the size is that of ``channel``).
    method : {"newton", "plain"}
        Active-set Newton (default), or plain log-domain Blahut-Arimoto steps only (the reference).
    options : NewtonOptions, optional
        Knobs of the Newton solver (block steps and ``z_floor`` do not apply to capacity).

    Returns
    -------
    CapacityResult

    Examples
    --------
    >>> res = channel_capacity([[0.9, 0.1], [0.1, 0.9]])  # BSC(0.1)
    >>> round(res.capacity, 6)
    0.368064
    """
    w = as_stochastic_matrix(channel, "channel")
    tol = positive_float(tol, "tol")
    max_iter = positive_int(max_iter, "max_iter")
    method, opt = _method(method), _options(options, NewtonOptions, "options")
    with kernel_threads(threads, entries=w.size):
        xp = get_backend(backend, device)
        sol = _capacity(xp, w, tol, max_iter, opt, method)
        log_p = xp.to_numpy(sol.log_p)
    p = np.exp(log_p - log_p.max())
    p /= p.sum()
    lower, upper = max(sol.lower, 0.0), max(sol.upper, 0.0)
    converged = upper - lower <= tol
    if not converged:
        _warn_unconverged("channel_capacity", upper - lower, tol, max_iter)
    return CapacityResult(lower, p, lower, upper, sol.iterations, converged)


@serial_but_gram()  # results independent of the thread count (see estimators._threads)
def _capacity(xp, w: np.ndarray, tol: float, max_iter: int, opt: NewtonOptions, method: str):
    """The input pmf by the Newton solver on :class:`CapacityObjective` from the uniform pmf (or plain steps,
    also where the solver declines), bracketed on the whole alphabet whichever found it."""
    n, wb = w.shape[0], xp.asarray(w)
    uniform = xp.asarray(np.full(n, -math.log(n)))
    if method == "plain":
        return _ba_plain.solve_capacity(xp, wb, uniform, tol=tol, max_iter=max_iter)
    obj = CapacityObjective.of(xp, w)
    opt = replace(opt, z_floor=-math.inf)  # outputs that no input of the support reaches are fine
    start = _capacity_start(xp, w, opt.start_steps)
    sol = _ba_newton.solve(obj, start.idx, start.q, tol=tol, max_iter=max_iter, options=opt)
    if sol is None:
        return _ba_plain.solve_capacity(xp, wb, uniform, tol=tol, max_iter=max_iter)
    log_p = xp.full(n, -math.inf)
    log_p[sol.idx] = xp.log(sol.q)
    return replace(_ba_plain.capacity_bracket(xp, wb, log_p, tol=tol), iterations=sol.iterations)


def _capacity_start(xp, w: np.ndarray, steps: int) -> _Start:
    """Up to ``steps`` plain steps ``p <- p e^{D(W_x || pW)}`` from the uniform pmf, the inputs kept where
    ``p`` is not falling (``D >= I - 1e-3``, ``p > 0``) or where some output has no other input; dropped
    inputs re-enter where the certificate asks.

    Twenty plain steps barely separate the inputs of a large channel (4096 x 4096, rows Dirichlet(1): the
    smallest mass 0.29 of the largest), so a cut on the mass kept all 4096 and the first two Newton steps
    were on all of them (Gram and Cholesky 7.5 s of 10.7 s). The rising half holds the optimal support
    (1966 inputs, all 254 of the support; 379 at 1024 with all 115): capacities of six channel kinds at
    1e-6, in total 0.52x of the time at 1024, 0.36x at 256, 0.2x-0.43x at 4096, 1.06x at 64 (where some
    support inputs fall early and re-enter, a Newton step each).
    """
    h = np.sum(np.where(w > 0, w * np.log(np.where(w > 0, w, 1.0)), 0.0), axis=1)
    p, div = np.full(w.shape[0], 1.0 / w.shape[0]), np.zeros(w.shape[0])
    with np.errstate(divide="ignore", under="ignore"):
        for it in range(steps + 1):
            r = p @ w
            div = h - w @ np.where(r > 0, np.log(np.where(r > 0, r, 1.0)), 0.0)
            if it == steps:
                break
            p = p * np.exp(div - div.max())
            p /= p.sum()
    alone = (w > 0).sum(axis=0) == 1
    needed = (w[:, alone] > 0).any(axis=1)
    idx = np.flatnonzero(((div >= float(p @ div) - 1e-3) & (p > 0)) | needed)
    return _Start(xp.index(idx), xp.asarray(p[idx] / p[idx].sum()))


# --------------------------------------------------------------------------
# information bottleneck


def information_bottleneck(
    p_xy,
    beta: float,
    *,
    n_clusters: int | None = None,
    seed: int | None = None,
    restarts: int = 8,
    tol: float = 1e-10,
    max_iter: int = 5_000,
    backend: str = "numpy",
    device=None,
    init=None,
    threads: int | None = None,
) -> IBPoint:
    r"""An information-bottleneck encoder :math:`p(t|x)` at trade-off ``beta``.

    Minimises, over encoders with ``n_clusters`` values of ``T`` (Markov chain
    ``T - X - Y``),

    .. math:: I(X; T) - \beta\, I(T; Y)

    by the iterative IB algorithm [4]_,
    :math:`p(t|x) \propto p(t)\, e^{-\beta D(p(y|x) \| p(y|t))}`, in the log
    domain, from ``restarts`` random encoders (Dirichlet rows drawn from
    ``seed``), a near-identity encoder and ``init`` if given, returning the
    lowest Lagrangian. The
    problem is not convex: the result is the best local optimum found, and
    ``converged`` says its Lagrangian settled within ``tol`` per step.

    Parameters
    ----------
    p_xy : array_like, shape (n_x, n_y)
        Joint pmf.
    beta : float
        Trade-off, ``> 0``.
    n_clusters : int, optional
        ``|T|``; defaults to ``n_x``.
    seed : int, optional
        Seed of the restarts; the same seed gives the same result.
    restarts : int
        Random starting encoders (``>= 0``; the near-identity start always runs).
    tol, max_iter : float, int
        Stopping rule per restart.
    backend, device
        As in :func:`rate_distortion`.
    init : array_like, shape (n_x, n_clusters), optional
        An extra starting encoder (rows are pmfs), e.g. a neighbouring solution.
    threads : int, optional
        As in :func:`rate_distortion`; the size is the larger of ``p_xy`` and
        the encoder (``n_x x n_clusters``).

    Returns
    -------
    IBPoint
    """
    p, k, restarts, tol, max_iter = _ib_inputs(p_xy, n_clusters, restarts, tol, max_iter)
    beta = positive_float(beta, "beta")
    with kernel_threads(threads, entries=max(p.size, p.shape[0] * k)):
        ops = get_backend(backend, device)
        rng = np.random.default_rng(seed)
        starts = _ib_starts(p.shape[0], k, restarts, rng, init) + [_near_identity(p.shape[0], k)]
        point = _best_ib(ops, p, beta, starts, tol, max_iter)
    if not point.converged:
        warnings.warn(
            f"information_bottleneck did not settle within max_iter={max_iter} at beta={beta}",
            RuntimeWarning,
            stacklevel=2,
        )
    return point


def ib_curve(
    p_xy,
    betas: Sequence[float],
    *,
    n_clusters: int | None = None,
    seed: int | None = None,
    restarts: int = 4,
    tol: float = 1e-10,
    max_iter: int = 5_000,
    backend: str = "numpy",
    device=None,
    progress: bool = False,
    threads: int | None = None,
) -> IBCurve:
    """Information-bottleneck points at each of ``betas`` (returned in increasing order).

    The slopes are visited from the largest down, the first starting from a
    near-identity encoder; each runs ``restarts`` seeded random starts plus
    the previous slope's encoder (a warm start), keeping the lowest
    Lagrangian; see :func:`information_bottleneck`, whose keywords (``threads``
    included) it takes.

    Returns
    -------
    IBCurve
    """
    p, k, restarts, tol, max_iter = _ib_inputs(p_xy, n_clusters, restarts, tol, max_iter)
    b = _betas(betas)
    rng = np.random.default_rng(seed)
    points: list[IBPoint] = []
    prev = _near_identity(p.shape[0], k)
    with kernel_threads(threads, entries=max(p.size, p.shape[0] * k)):
        ops = get_backend(backend, device)
        # from the largest beta down: a richer encoder merges its clusters as beta falls,
        # while a collapsed (rate-0) encoder would be a fixed point at every beta
        for beta in _progress(b[::-1], progress, "IB slopes"):
            starts = _ib_starts(p.shape[0], k, restarts, rng, prev)
            points.append(_best_ib(ops, p, float(beta), starts, tol, max_iter))
            prev = points[-1].encoder
    points.reverse()
    if not all(pt.converged for pt in points):
        bad = [pt.beta for pt in points if not pt.converged]
        warnings.warn(f"ib_curve did not settle at betas {bad}", RuntimeWarning, stacklevel=2)
    return IBCurve(
        betas=b,
        rates=np.array([pt.rate for pt in points]),
        relevances=np.array([pt.relevance for pt in points]),
        points=tuple(points),
    )


def _near_identity(n_x: int, k: int) -> np.ndarray:
    """Each ``x`` mostly on its own cluster ``x mod k`` (the high-beta end of the curve)."""
    enc = np.full((n_x, k), 0.1 / k)
    enc[np.arange(n_x), np.arange(n_x) % k] += 0.9
    return enc


def _ib_inputs(p_xy, n_clusters, restarts, tol, max_iter):
    p = as_joint(p_xy, "p_xy")
    k = p.shape[0] if n_clusters is None else positive_int(n_clusters, "n_clusters")
    return (
        p,
        k,
        positive_int(restarts, "restarts", minimum=0),
        positive_float(tol, "tol"),
        positive_int(max_iter, "max_iter"),
    )


def _ib_starts(n_x: int, k: int, restarts: int, rng: np.random.Generator, init) -> list[np.ndarray]:
    starts = [rng.dirichlet(np.ones(k), size=n_x) for _ in range(restarts)]
    if init is not None:
        enc = as_stochastic_matrix(init, "init")
        if enc.shape != (n_x, k):
            raise ValueError(f"init must have shape {(n_x, k)}, got {enc.shape}")
        starts.insert(0, enc)
    return starts


def _best_ib(ops, p: np.ndarray, beta: float, starts, tol: float, max_iter: int) -> IBPoint:
    p_dev = ops.asarray(p)
    best = None
    for enc in starts:
        sol = _ba_plain.solve_ib(ops, p_dev, beta, ops.asarray(_log(enc)), tol=tol, max_iter=max_iter)
        if best is None or sol.lagrangian < best.lagrangian:
            best = sol
    enc = np.exp(ops.to_numpy(best.log_enc))
    enc /= enc.sum(axis=1, keepdims=True)
    return IBPoint(
        rate=max(best.rate, 0.0),
        relevance=max(best.relevance, 0.0),
        beta=beta,
        encoder=enc,
        iterations=best.iterations,
        converged=best.converged,
    )
