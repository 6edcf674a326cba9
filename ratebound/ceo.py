r"""The quadratic Gaussian CEO problem and the rate-distortion of model aggregation.

A source :math:`X \sim \mathcal N(0, \sigma_X^2)` is observed by :math:`L`
workers through independent noise, :math:`Y_i = X + N_i`,
:math:`N_i \sim \mathcal N(0, \sigma_i^2)`; each worker describes its
observation separately and a fusion centre estimates :math:`X`. All rates are
in **nats per source sample** (per parameter per step for gradients);
distortions are mean squared errors.

The Berger-Tung scheme with Gaussian test channels :math:`U_i = Y_i + Q_i`
achieves the sum-rate-distortion function of the scalar problem [1]_ [2]_:

.. math::

    R(D) = \min_{r_i \ge 0}\; \tfrac12 \ln\frac{\sigma_X^2}{D} + \sum_i r_i
    \quad\text{s.t.}\quad
    \frac1D = \frac1{\sigma_X^2} + \sum_i \frac{1 - e^{-2 r_i}}{\sigma_i^2},

where :math:`r_i = I(Y_i; U_i \mid X)`. The KKT conditions give water-filling
on the noise precisions, :func:`gaussian_ceo_sum_rate`.

References
----------
.. [1] Y. Oohama, "Rate-distortion theory for Gaussian multiterminal source
   coding systems with several side informations at the decoder", IEEE Trans.
   Inf. Theory 51(7), 2005; "The rate-distortion function for the quadratic
   Gaussian CEO problem", IEEE Trans. Inf. Theory 44(3), 1998.
.. [2] V. Prabhakaran, D. Tse and K. Ramchandran, "Rate region of the quadratic
   Gaussian CEO problem", ISIT 2004.
.. [3] N. Zhang, M. Tao, J. Wang and F. Xu, "Fundamental limits of
   communication efficiency for model aggregation in distributed learning: a
   rate-distortion approach", arXiv:2206.13984 (IEEE Trans. Commun., 2023).
.. [4] N. Zhang, M. Tao and J. Wang, "Sum-rate-distortion function for
   indirect multiterminal source coding in federated learning", ISIT 2021,
   arXiv:2101.08696.
.. [5] J. Chen, X. Zhang, T. Berger and S. B. Wicker, "An upper bound on the
   sum-rate distortion function and its corresponding rate allocation schemes
   for the CEO problem", IEEE J. Sel. Areas Commun. 22(6), 2004 (unequal
   noise variances).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

from estimators._validation import as_float_array, positive_float, positive_int

__all__ = [
    "CEOResult",
    "GradientStatistics",
    "gaussian_ceo_sum_rate",
    "vector_gaussian_ceo_sum_rate",
    "aggregation_sum_rate",
    "independent_sum_rate",
    "gradient_statistics",
]


@dataclass(frozen=True)
class CEOResult:
    """Sum rate of a Gaussian CEO problem.

    Attributes
    ----------
    sum_rate : float
        Minimum sum rate in nats per source sample (per parameter for scalar
        sources; for a vector source, per source vector).
    rates : numpy.ndarray, shape (L,)
        A corner point of the rate region achieving ``sum_rate``: worker ``k``
        is decoded after workers ``0..k-1``, ``rates[k] = I(Y_k; U_k | U_0..U_{k-1})``;
        ``rates.sum() == sum_rate``. Zero for workers that stay silent.
    water_level : float or None
        The water level :math:`\\mu` of the scalar water-filling (a noise
        variance: workers with :math:`\\sigma_i^2 < \\mu` transmit); ``None``
        for the vector program and ``inf`` when no worker needs to transmit.
    status : str
        ``"exact"`` for closed forms; the cvxpy solver status otherwise.
    slack : float
        Nats between ``sum_rate`` (achieved by the reported Gaussian scheme) and
        the lower bound the convex program certifies for that scheme; 0 when
        exact.
    lmi_slack : float or None
        Smallest eigenvalue of :math:`\\Sigma_E^{-1} - D^{-1}` at the solution
        (how far inside the distortion constraint the scheme lands; >= 0 up to
        the solver's tolerance, about 1e-8); ``None``
        for the scalar closed forms.
    """

    sum_rate: float
    rates: np.ndarray
    water_level: float | None
    status: str = "exact"
    slack: float = 0.0
    lmi_slack: float | None = None


@dataclass(frozen=True)
class GradientStatistics:
    """Source and worker-noise variances of distributed gradients.

    Model: ``grads[t, l, p] = X[t, p] + N[t, l, p]`` with the true gradient
    :math:`X` varying over steps and independent worker noise :math:`N`.

    Attributes
    ----------
    source_var : numpy.ndarray, shape (P,)
        Per-parameter variance of :math:`X` over steps (bias-corrected,
        floored at 0).
    noise_var : numpy.ndarray, shape (P,)
        Per-parameter worker-noise variance (within-step, across-worker,
        unbiased, averaged over steps).
    pooled_source_var, pooled_noise_var : float
        The same averaged over parameters (what an identical-dimension model
        such as :func:`aggregation_sum_rate` takes).
    steps, workers, params : int
        The array's shape.
    """

    source_var: np.ndarray
    noise_var: np.ndarray
    pooled_source_var: float
    pooled_noise_var: float
    steps: int
    workers: int
    params: int


# --------------------------------------------------------------------------- scalar


def _water_level(precisions: np.ndarray, target: float) -> float:
    r"""Solve :math:`\sum_i (a_i - 1/\mu)_+ = \text{target}` for :math:`\mu`.

    ``precisions`` are :math:`a_i = 1/\sigma_i^2`; ``0 <= target < sum(a)``.
    Returns ``inf`` for ``target == 0``.
    """
    if target <= 0:
        return math.inf
    a = np.sort(precisions)[::-1]
    csum = np.cumsum(a)
    for k in range(1, a.size + 1):
        inv_mu = (csum[k - 1] - target) / k  # k most precise workers active
        nxt = a[k] if k < a.size else -math.inf
        if inv_mu >= nxt and inv_mu < a[k - 1]:
            return 1.0 / inv_mu
    raise AssertionError("water level not found")  # unreachable for valid input


def _corner_rates(prior_precision: float, contributions: np.ndarray, cond_rates: np.ndarray):
    r"""Successive-decoding corner point of the Berger-Tung region (scalar).

    ``contributions[i] = 1 / (sigma_i^2 + q_i)`` (precision added by worker i),
    ``cond_rates[i] = I(Y_i; U_i | X)``. Returns ``I(Y_k; U_k | U_<k)``.
    """
    precision = prior_precision + np.concatenate([[0.0], np.cumsum(contributions)])
    return 0.5 * np.diff(np.log(precision)) + cond_rates


def _scalar_ceo(noise_vars: np.ndarray, target: float, prior: float):
    r"""Water-filling for :math:`\sum_i (1-e^{-2r_i})/\sigma_i^2 = \text{target}`."""
    a = 1.0 / noise_vars
    mu = _water_level(a, target)
    cond = 0.5 * np.log(np.maximum(mu * a, 1.0)) if math.isfinite(mu) else np.zeros_like(a)
    contrib = np.maximum(a - 1.0 / mu, 0.0)
    rates = _corner_rates(prior, contrib, cond)
    return rates, mu


def _check_noise_vars(noise_vars) -> np.ndarray:
    arr = as_float_array(noise_vars, "noise_vars", ndim=1)
    if np.any(arr <= 0):
        raise ValueError(f"noise_vars must be > 0, min is {arr.min():.3g}")
    return arr


def gaussian_ceo_sum_rate(source_var, noise_vars, distortion) -> CEOResult:
    r"""Sum-rate-distortion function of the scalar quadratic Gaussian CEO problem.

    Exact, by water-filling [1]_ [2]_ [5]_:

    .. math::

        R(D) = \tfrac12\ln\frac{\sigma_X^2}{D}
               + \sum_i \tfrac12 \ln^+\frac{\mu}{\sigma_i^2},
        \qquad
        \sum_i \Bigl(\frac1{\sigma_i^2} - \frac1\mu\Bigr)_+ = \frac1D - \frac1{\sigma_X^2},

    zero for :math:`D \ge \sigma_X^2`. Distortions at or below the centralised
    MMSE :math:`D_{\min} = (1/\sigma_X^2 + \sum_i 1/\sigma_i^2)^{-1}` are not
    achievable at any finite rate.

    Parameters
    ----------
    source_var : float
        :math:`\sigma_X^2 > 0`.
    noise_vars : array_like, shape (L,)
        Worker noise variances :math:`\sigma_i^2 > 0`.
    distortion : float
        Target mean squared error :math:`D > 0`.

    Returns
    -------
    CEOResult
        ``sum_rate`` in nats per sample, a corner point ``rates``, ``water_level`` :math:`\mu`.

    Raises
    ------
    ValueError
        For invalid inputs or ``distortion <= D_min``.

    Examples
    --------
    >>> res = gaussian_ceo_sum_rate(1.0, [0.5, 0.5], 0.5)
    >>> round(res.sum_rate, 6) == round(0.5 * math.log(2) + math.log(2 / 1.5), 6)
    True
    """
    sx = positive_float(source_var, "source_var")
    noise = _check_noise_vars(noise_vars)
    d = positive_float(distortion, "distortion")
    if d >= sx:
        return CEOResult(0.0, np.zeros(noise.size), math.inf)
    target = 1.0 / d - 1.0 / sx
    d_min = 1.0 / (1.0 / sx + np.sum(1.0 / noise))
    if target >= np.sum(1.0 / noise):
        raise ValueError(
            f"distortion must exceed the centralised minimum {d_min:.6g} "
            f"(all observations sent losslessly), got {d:.6g}"
        )
    rates, mu = _scalar_ceo(noise, target, 1.0 / sx)
    return CEOResult(float(rates.sum()), rates, float(mu))


# --------------------------------------------------------------------------- vector


def _psd(m, name: str, dim: int | None = None, *, strict: bool = True) -> np.ndarray:
    arr = as_float_array(m, name, ndim=(0, 1, 2))
    arr = np.atleast_2d(arr) if arr.ndim < 2 else arr
    if arr.shape[0] != arr.shape[1]:
        raise ValueError(f"{name} must be square, got shape {arr.shape}")
    if dim is not None and arr.shape[0] != dim:
        raise ValueError(f"{name} must be {dim} x {dim}, got shape {arr.shape}")
    if not np.allclose(arr, arr.T, rtol=1e-9, atol=1e-12):
        raise ValueError(f"{name} must be symmetric")
    arr = 0.5 * (arr + arr.T)
    low = float(np.linalg.eigvalsh(arr).min())
    if strict and low <= 0:
        raise ValueError(f"{name} must be positive definite (smallest eigenvalue {low:.3g})")
    return arr


def _sqrtm(m: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh(m)
    return (v * np.sqrt(np.maximum(w, 0.0))) @ v.T


def _vector_inputs(source_cov, gains, noise_covs, distortion_cov):
    kx = _psd(source_cov, "source_cov")
    m = kx.shape[0]
    if len(gains) != len(noise_covs) or len(gains) == 0:
        raise ValueError(
            f"gains and noise_covs must be non-empty and of equal length, "
            f"got {len(gains)} and {len(noise_covs)}"
        )
    hs, sigmas = [], []
    for i, (h, s) in enumerate(zip(gains, noise_covs)):
        h = as_float_array(h, f"gains[{i}]", ndim=(0, 1, 2))
        h = np.reshape(h, (1, 1)) if h.ndim == 0 else (h[None, :] if h.ndim == 1 else h)
        if h.shape[1] != m:
            raise ValueError(f"gains[{i}] must have {m} columns, got shape {h.shape}")
        hs.append(h)
        sigmas.append(_psd(s, f"noise_covs[{i}]", h.shape[0]))
    d = _psd(distortion_cov, "distortion_cov", m)
    return kx, hs, sigmas, d


def _logdet(m: np.ndarray) -> float:
    sign, val = np.linalg.slogdet(m)
    return float(val) if sign > 0 else -math.inf


def _vector_rates(kx_inv, hs, sigmas, bs):
    """Conditional rates ``I(Y_i;U_i|X)`` and the corner point for precisions ``B_i``."""
    cond, contribs = [], []
    for h, s, b in zip(hs, sigmas, bs):
        root = _sqrtm(s)
        inner = np.eye(s.shape[0]) - root @ b @ root
        cond.append(-0.5 * _logdet(inner))
        contribs.append(h.T @ b @ h)
    precision = [kx_inv]
    for c in contribs:
        precision.append(precision[-1] + c)
    logdets = np.array([_logdet(p) for p in precision])
    rates = 0.5 * np.diff(logdets) + np.array(cond)
    return rates, precision[-1]


def _solve_vector(kx_inv, hs, sigmas, d_inv, linear):
    """One convex program: min sum_i r_i(B_i) + 1/2 tr(linear @ M(B)) s.t. M(B) >= D^-1."""
    import cvxpy as cp

    bs = [cp.Variable((s.shape[0], s.shape[0]), symmetric=True) for s in sigmas]
    m_of_b = kx_inv + sum(h.T @ b @ h for h, b in zip(hs, bs))
    cons = [m_of_b >> d_inv]
    objective = 0
    for s, b in zip(sigmas, bs):
        root = _sqrtm(s)
        cons.append(b >> 0)
        objective += -0.5 * cp.log_det(np.eye(s.shape[0]) - root @ b @ root)
    if linear is not None:
        objective += 0.5 * cp.trace(linear @ m_of_b)
    problem = cp.Problem(cp.Minimize(objective), cons)
    with warnings.catch_warnings():
        # cvxpy warns on inaccurate solutions; the status is reported in CEOResult instead
        warnings.filterwarnings("ignore", message="Solution may be inaccurate")
        problem.solve(solver=cp.CLARABEL)
    if problem.status in ("infeasible", "infeasible_inaccurate"):
        raise ValueError(
            "distortion_cov is not achievable: it lies below the error covariance of the "
            f"lossless observations (solver status {problem.status})"
        )
    if problem.status not in ("optimal", "optimal_inaccurate"):
        raise ValueError(f"the convex program did not solve: status {problem.status}")
    return [0.5 * (b.value + b.value.T) for b in bs], problem.status


def vector_gaussian_ceo_sum_rate(source_cov, gains, noise_covs, distortion_cov, *, ccp_steps=10) -> CEOResult:
    r"""Sum rate of the Gaussian Berger-Tung scheme for the vector Gaussian CEO problem.

    Worker :math:`i` observes :math:`Y_i = H_i X + N_i`,
    :math:`N_i \sim \mathcal N(0, \Sigma_i)`, :math:`X \sim \mathcal N(0, K_X)`,
    and the centre must reach an error covariance :math:`\preceq D`. With
    :math:`U_i = Y_i + Q_i` and :math:`B_i = (\Sigma_i + Q_i)^{-1}`
    (:math:`0 \preceq \Sigma_i^{1/2} B_i \Sigma_i^{1/2} \preceq I`), the scheme's
    sum rate is

    .. math::

        R(B) = \tfrac12 \ln\det\bigl(K_X M(B)\bigr)
               - \tfrac12\sum_i \ln\det\bigl(I - \Sigma_i^{1/2} B_i \Sigma_i^{1/2}\bigr),
        \qquad M(B) = K_X^{-1} + \sum_i H_i^\top B_i H_i \succeq D^{-1}.

    The first term is concave in :math:`B`, so the problem is solved as a
    log-det program (cvxpy, Clarabel) in two stages: the relaxation replacing
    :math:`\ln\det M(B)` by its minimum :math:`-\ln\det D` over the feasible set
    gives a **lower bound** on the scheme's optimum; ``ccp_steps`` rounds of the
    convex-concave procedure (the concave term linearised at the current
    :math:`B`) then decrease the exact rate :math:`R(B)`, which is **achieved**.
    ``sum_rate`` is the achieved rate, ``slack`` its distance to the lower bound
    (0 when the distortion constraint is tight, as it always is for 1-D inputs,
    where the result equals :func:`gaussian_ceo_sum_rate`).

    What this certifies: ``sum_rate`` is **achievable**, an upper bound on the
    sum-rate-distortion function of the vector CEO problem under the matrix
    distortion constraint; ``sum_rate - slack`` bounds from below only what
    Gaussian Berger-Tung test channels can do, not every code (Gaussian test
    channels are not known to be optimal for this vector problem in general).

    Parameters
    ----------
    source_cov : array_like, shape (m, m)
        :math:`K_X`, positive definite.
    gains : sequence of array_like, each shape (d_i, m)
        Observation matrices :math:`H_i`.
    noise_covs : sequence of array_like, each shape (d_i, d_i)
        :math:`\Sigma_i`, positive definite.
    distortion_cov : array_like, shape (m, m)
        :math:`D`, positive definite.
    ccp_steps : int, default 10
        Convex-concave refinement rounds (0 keeps the relaxation's solution).

    Returns
    -------
    CEOResult
        ``sum_rate`` (nats per source vector), corner-point ``rates``,
        ``water_level=None``, solver ``status``, ``slack``, ``lmi_slack``.

    Raises
    ------
    ValueError
        For invalid matrices, or when :math:`D` is not achievable (the program
        is infeasible).
    """
    kx, hs, sigmas, d = _vector_inputs(source_cov, gains, noise_covs, distortion_cov)
    ccp_steps = positive_int(ccp_steps, "ccp_steps", minimum=0)
    kx_inv, d_inv = np.linalg.inv(kx), np.linalg.inv(d)
    prior_slack = float(np.linalg.eigvalsh(kx_inv - d_inv).min())
    if prior_slack >= -1e-12:  # D >= K_X: the prior alone meets the target, nothing to send
        return CEOResult(0.0, np.zeros(len(hs)), None, "optimal", 0.0, prior_slack)
    bs, status = _solve_vector(kx_inv, hs, sigmas, d_inv, None)
    rates, m_of_b = _vector_rates(kx_inv, hs, sigmas, bs)
    cond = rates.sum() - 0.5 * (_logdet(m_of_b) - _logdet(kx_inv))
    lower = 0.5 * (_logdet(kx) - _logdet(d)) + cond
    for _ in range(ccp_steps):
        new_bs, new_status = _solve_vector(kx_inv, hs, sigmas, d_inv, np.linalg.inv(m_of_b))
        new_rates, new_m = _vector_rates(kx_inv, hs, sigmas, new_bs)
        if not new_rates.sum() < rates.sum() - 1e-12:
            break
        bs, status, rates, m_of_b = new_bs, new_status, new_rates, new_m
    if not np.all(np.isfinite(rates)):
        raise ValueError("distortion_cov is not achievable: the scheme needs an infinite rate")
    lmi = float(np.linalg.eigvalsh(m_of_b - d_inv).min())
    total = float(rates.sum())
    return CEOResult(total, rates, None, status, float(max(total - lower, 0.0)), lmi)


# ---------------------------------------------------------------------- aggregation


def _aggregation_inputs(source_var, noise_var, n_workers, distortion, dims):
    sx = positive_float(source_var, "source_var")
    sn = positive_float(noise_var, "noise_var")
    workers = positive_int(n_workers, "n_workers")
    d = positive_float(distortion, "distortion")
    dims = positive_int(dims, "dims")
    if d * workers <= sn:
        raise ValueError(
            f"distortion must exceed noise_var / n_workers = {sn / workers:.6g} "
            f"(the variance of the uncompressed average), got {d:.6g}"
        )
    return sx, sn, workers, d, dims


def aggregation_sum_rate(source_var, noise_var, n_workers, distortion, *, dims=1) -> float:
    r"""Sum-rate-distortion function of model aggregation with an unbiased estimator.

    The setting of Zhang, Tao et al. [3]_ [4]_ with identical workers and
    dimensions: ``n_workers`` workers observe the gradient
    :math:`X \sim \mathcal N(0, \sigma_X^2)` per parameter through independent
    noise of variance :math:`\sigma_N^2`, :math:`Y_i = X + N_i`; the server
    needs an **unbiased** estimate (:math:`\mathbb E[\hat X \mid X] = X`) whose
    error variance is at most :math:`D` per parameter. Per parameter

    .. math::

        R(D) = \tfrac12\ln\Bigl(1 + \frac{\sigma_X^2}{D}\Bigr)
               + \frac L2 \ln\frac{L D}{L D - \sigma_N^2},
        \qquad D > \sigma_N^2 / L,

    times ``dims`` independent parameters. It is Oohama's equal-noise CEO
    function [1]_ at the MMSE distortion
    :math:`D' = (1/\sigma_X^2 + 1/D)^{-1}`, i.e.
    ``gaussian_ceo_sum_rate(source_var, [noise_var] * L, D').sum_rate``:

    * converse: the error of an unbiased estimator is uncorrelated with
      :math:`X`, so shrinking it, :math:`\frac{\sigma_X^2}{\sigma_X^2 + D}\hat X`,
      has mean squared error at most :math:`D'`; no code beats the CEO
      function at :math:`D'`;
    * achievability: the Berger-Tung scheme :math:`U_i = Y_i + Q_i`,
      :math:`\sigma_N^2 + q = L D`, decoded as the average of the
      :math:`U_i`, is unbiased with variance :math:`D`, at the rate above: the
      first term is :math:`I(X; U_1..U_L)`, the second
      :math:`\sum_i I(Y_i; U_i \mid X)`.

    Parameters
    ----------
    source_var, noise_var : float
        :math:`\sigma_X^2, \sigma_N^2 > 0` (e.g. from :func:`gradient_statistics`).
    n_workers : int
        :math:`L \ge 1`.
    distortion : float
        Per-parameter estimator variance :math:`D > \sigma_N^2 / L` (the
        variance of the uncompressed average). For a distortion budget on the
        whole vector, pass the budget divided by ``dims``.
    dims : int, default 1
        Number of parameters :math:`P`.

    Returns
    -------
    float
        Sum rate in nats per aggregation round (all ``dims`` parameters).

    Examples
    --------
    >>> round(aggregation_sum_rate(1.0, 1.0, 1, 2.0), 6) == round(0.5 * math.log(1.5) + 0.5 * math.log(2), 6)
    True
    >>> shrunk = 1 / (1 / 2.0 + 1 / 0.5)  # D' for source_var 2 and D = 0.5
    >>> math.isclose(aggregation_sum_rate(2.0, 1.0, 4, 0.5), gaussian_ceo_sum_rate(2.0, [1.0] * 4, shrunk).sum_rate)
    True
    """
    sx, sn, workers, d, dims = _aggregation_inputs(source_var, noise_var, n_workers, distortion, dims)
    per_dim = 0.5 * math.log1p(sx / d) + 0.5 * workers * math.log(workers * d / (workers * d - sn))
    return dims * per_dim


def independent_sum_rate(source_var, noise_var, n_workers, distortion, *, dims=1) -> float:
    r"""Sum rate when each worker codes its gradient alone (no correlation exploited).

    The symmetric scheme of :func:`aggregation_sum_rate` without Wyner-Ziv
    binning: every worker sends the description :math:`U_i = Y_i + Q_i`,
    :math:`\sigma_N^2 + q = L D`, at its full rate :math:`I(Y_i; U_i)`, and the
    server averages the descriptions into the same unbiased estimate of
    variance :math:`D`. Per parameter

    .. math::

        R_{\text{ind}}(D) = \frac L2 \ln\frac{\sigma_X^2 + L D}{L D - \sigma_N^2}.

    The gain of exploiting the correlation,
    ``independent_sum_rate - aggregation_sum_rate``
    :math:`= \frac L2\ln(1 + \frac{\sigma_X^2}{LD}) - \frac12\ln(1 + \frac{\sigma_X^2}{D})`,
    is non-negative (Bernoulli's inequality) and zero for one worker.

    Every worker transmits at the same rate, as identical workers do in
    practice. When :math:`\sigma_N^2 < \sigma_X^2` the per-worker rate is not
    convex in the precision a worker contributes, and letting fewer workers
    send can cost less without binning too; this function does not search
    such asymmetric allocations (the gain above is the binning gain of the
    symmetric scheme).

    Parameters and returns as :func:`aggregation_sum_rate`.

    Examples
    --------
    >>> math.isclose(independent_sum_rate(1.0, 1.0, 1, 2.0), aggregation_sum_rate(1.0, 1.0, 1, 2.0))
    True
    """
    sx, sn, workers, d, dims = _aggregation_inputs(source_var, noise_var, n_workers, distortion, dims)
    per_dim = 0.5 * workers * math.log((sx + workers * d) / (workers * d - sn))
    return dims * per_dim


def gradient_statistics(grads) -> GradientStatistics:
    r"""Source and worker-noise variances from a ``(steps, workers, params)`` array.

    With :math:`\bar g_{t,p} = \frac1L \sum_l g_{t,l,p}`,

    .. math::

        \hat\sigma_N^2 = \frac1T\sum_t \frac1{L-1}\sum_l (g_{t,l,p} - \bar g_{t,p})^2,
        \qquad
        \hat\sigma_X^2 = \bigl(\widehat{\mathrm{Var}}_t(\bar g_{t,p}) - \hat\sigma_N^2/L\bigr)_+,

    since :math:`\mathrm{Var}(\bar g) = \sigma_X^2 + \sigma_N^2 / L` under the
    model ``grads[t, l, p] = X[t, p] + N[t, l, p]``.

    Parameters
    ----------
    grads : array_like, shape (T, L, P)
        Gradients of ``L >= 2`` workers over ``T >= 2`` steps.

    Returns
    -------
    GradientStatistics
    """
    g = as_float_array(grads, "grads", ndim=3)
    steps, workers, params = g.shape
    if steps < 2 or workers < 2:
        raise ValueError(f"grads needs at least 2 steps and 2 workers, got shape {g.shape}")
    noise = g.var(axis=1, ddof=1).mean(axis=0)
    mean_var = g.mean(axis=1).var(axis=0, ddof=1)
    source = np.maximum(mean_var - noise / workers, 0.0)
    return GradientStatistics(
        source_var=source,
        noise_var=noise,
        pooled_source_var=float(source.mean()),
        pooled_noise_var=float(noise.mean()),
        steps=steps,
        workers=workers,
        params=params,
    )
