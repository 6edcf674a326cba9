r"""Gaussian, copula and elliptical-copula estimators of mutual information, and the default choice.

- :func:`gaussian_mi_estimate`: the MI of the Gaussian with the sample covariance
  (canonical correlation analysis), with the exact small-sample bias correction
  of the log-determinants [1]_ and an analytic interval. Exact for Gaussian
  data; for anything else it is the MI of the Gaussian with the same
  covariance, which can be far off (in either direction).
- :func:`copula_mi_estimate`: the same on *normal scores*, each coordinate
  replaced by :math:`\Phi^{-1}(\mathrm{rank}/(n+1))` [2]_. Normal scores are a
  monotone map of each coordinate, so the estimate is invariant to every
  strictly increasing transform of each coordinate (``x`` and ``exp(x)`` give
  the same number, exactly). ``family="gaussian"`` assumes a Gaussian copula;
  ``family="student"`` fits a Student-t copula (scatter by EM, degrees of
  freedom by profile pseudo-likelihood [3]_) and reports its closed-form MI,
  the Gaussian MI of the scatter plus the Student-t term of Arellano-Valle et
  al. [4]_. Biased where the copula is neither (additive uniform noise,
  spirals, embeddings): there the estimate is the MI of the best elliptical
  copula, often below the truth.
- :func:`copula_ksg_estimate`: the KSG estimator on normal scores, as
  invariant to monotone marginal maps, with no model of the copula; biased down
  in high dimension as every kNN estimator [5]_.
- :func:`auto_mi_estimate`: the default of :func:`estimators.estimate_mi`. It
  fits the Gaussian and the Student-t copula, keeps the Student-t where the
  likelihood-ratio test prefers it, and checks the kept copula by comparing the
  kNN estimate on the data's normal scores with the same estimate on a sample
  of the fitted copula; where they differ significantly (dependence that no
  elliptical copula captures) it reports the kNN estimate corrected by KSG's
  bias at the fitted copula, with an interval widened toward larger MI by an
  extrapolation of KSG over subsample sizes. Everything it reads is the data;
  the result says which estimator it used and why.

All values are in nats unless ``base=`` says otherwise. Every estimate is the
raw value (it can be slightly negative near independence) with a finite 95%
interval.

References
----------
.. [1] N. R. Goodman, "The distribution of the determinant of a complex Wishart
   distributed matrix", Ann. Math. Statist. 34, 1963; the expectation
   :math:`E \ln\det S = \ln\det\Sigma + \sum_{i=1}^{d}\psi(\frac{n-i}{2}) + d\ln\frac{2}{n-1}`
   as used by e.g. Ince et al. [2]_.
.. [2] R. A. A. Ince et al., "A statistical framework for neuroimaging data
   analysis based on mutual information estimated via a Gaussian copula",
   Human Brain Mapping 38, 2017.
.. [3] S. Demarta, A. J. McNeil, "The t copula and related copulas",
   International Statistical Review 73(1), 2005.
.. [4] R. B. Arellano-Valle, J. E. Contreras-Reyes, M. G. Genton, "Shannon
   entropy and mutual information for multivariate skew-elliptical
   distributions", Scandinavian Journal of Statistics 40(1), 2013.
.. [5] P. Czyz, F. Grabowski, J. E. Vogt, N. Beerenwinkel, A. Marx, "Beyond
   Normal: On the Evaluation of Mutual Information Estimators", NeurIPS 2023.

Examples
--------
>>> import numpy as np
>>> from estimators.testing import gaussian_with_mi
>>> x, y = gaussian_with_mi(1.0, dim=3).sample(5000, seed=0)
>>> est = copula_mi_estimate(np.exp(x), y ** 3)   # monotone maps of each coordinate
>>> abs(est.value - 1.0) < 0.1
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special
from scipy.linalg import solve_triangular
from scipy.optimize import minimize_scalar
from scipy.stats import chi2, rankdata
from threadpoolctl import threadpool_limits

from estimators._validation import (
    as_samples,
    drop_constant_columns,
    log_base,
    positive_int,
    same_length,
    unit_scaled_columns,
)
from estimators._mi_check import CHECK_STREAM, elliptical_reference, subsample_limit
from estimators.interface import MIEstimate

__all__ = [
    "normal_scores",
    "gaussian_mi_estimate",
    "copula_mi_estimate",
    "copula_ksg_estimate",
    "auto_mi_estimate",
    "bootstrap_count",
    "CopulaEstimator",
]

#: Two-sided 95% normal quantile.
_Z95 = 1.959963984540054

#: Largest squared canonical correlation used (``1 - 2**-40``): beyond it the Gaussian MI
#: (over 13.5 nats per pair) says more about rounding than about the data.
_MAX_R2 = 1.0 - 2.0**-40

#: Degrees of freedom tried first by the Student-t copula fit (then refined by Brent's method).
_DOF_GRID = (0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 10.0, 20.0, 50.0, 200.0)

#: The Student-t copula is preferred to the Gaussian when twice the log-likelihood gain exceeds
#: the 95% point of chi-square with one degree of freedom.
_LR_THRESHOLD = float(chi2.ppf(0.95, 1))

#: The default rejects the elliptical copula when KSG on the data and KSG on a sample of the fitted
#: copula differ by this many standard errors (of the difference) and this fraction of the copula's MI.
_SWITCH_Z = 3.0
_SWITCH_FRACTION = 0.05

#: Bootstrap resamples behind the Student-t copula's standard error (at most; see bootstrap_count).
_BOOTSTRAP = 30
_BOOTSTRAP_WORK = 4_000_000

#: Half-width (in ln dof) of the search of a bootstrap refit.
_REFIT_STEP = 1.0

#: KSG neighbours of the default's nonparametric estimate.
_DEFAULT_K = 5

#: Smallest subsample of the default's extrapolation of KSG in n.
_MIN_SUBSAMPLE = 100

#: Ratio of the actual to the per-sample-term standard error of KSG used in the default's
#: interval: the terms are dependent, and 1.1 to 1.5 was measured (see ``ksg_mi_estimate``).
_KSG_SE_INFLATION = 1.5


# --------------------------------------------------------------------------- #
# Input handling                                                               #
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class _Pairs:
    """Validated samples with their constant columns dropped."""

    x: np.ndarray
    y: np.ndarray
    notes: tuple[str, ...]

    @property
    def n(self) -> int:
        return self.x.shape[0]

    @property
    def degenerate(self) -> bool:
        return self.x.shape[1] == 0 or self.y.shape[1] == 0


def _pairs(x, y, *, min_extra: int = 2) -> _Pairs:
    xs, ys = as_samples(x, "x"), as_samples(y, "y")
    same_length("x", xs, "y", ys)
    xs, x_notes = drop_constant_columns(xs, "x")
    ys, y_notes = drop_constant_columns(ys, "y")
    pairs = _Pairs(xs, ys, x_notes + y_notes)
    d = xs.shape[1] + ys.shape[1]
    if not pairs.degenerate and xs.shape[0] < d + min_extra:
        raise ValueError(
            f"x and y need at least {d + min_extra} samples (dim_x + dim_y + {min_extra}) for a covariance "
            f"estimate, got {xs.shape[0]}"
        )
    return pairs


def _exact_zero(pairs: _Pairs, method: str, base: float) -> MIEstimate:
    return MIEstimate(value=0.0, stderr=0.0, ci_low=0.0, ci_high=0.0, method=method, n=pairs.n,
                      base=float(base), notes=pairs.notes)


def normal_scores(x) -> np.ndarray:
    r"""Each column of ``x`` replaced by its normal scores :math:`\Phi^{-1}(r_i / (n + 1))`.

    ``r_i`` is the rank of the entry in its column (ties get their average
    rank). The map is strictly increasing in each column, so every
    rank-based quantity of the result is unchanged by any strictly increasing
    transform of a column; each column of the result has the same values
    (a standard normal sample's expected order statistics, approximately).

    Parameters
    ----------
    x : array_like, shape (n,) or (n, d)
        Finite samples.

    Returns
    -------
    numpy.ndarray, shape (n, d)

    Examples
    --------
    >>> normal_scores([3.0, -1.0, 10.0]).ravel().round(3).tolist()
    [0.0, -0.674, 0.674]
    """
    arr = as_samples(x, "x")
    ranks = rankdata(arr, method="average", axis=0)
    return special.ndtri(ranks / (arr.shape[0] + 1.0))


# --------------------------------------------------------------------------- #
# Gaussian (CCA) MI                                                            #
# --------------------------------------------------------------------------- #


def _orthonormal_basis(block: np.ndarray) -> np.ndarray:
    """An orthonormal basis of the centred columns of ``block`` (scale-free: columns unit-scaled first)."""
    centred = unit_scaled_columns(block)
    centred = centred - centred.mean(axis=0)
    centred = centred / np.linalg.norm(centred, axis=0)
    u, s, _ = np.linalg.svd(centred, full_matrices=False)
    keep = s > s[0] * 1e-12
    return u[:, keep]


def canonical_correlations(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Sample canonical correlations of the ``(n, d_x)`` and ``(n, d_y)`` blocks, largest first."""
    qx, qy = _orthonormal_basis(x), _orthonormal_basis(y)
    rho = np.linalg.svd(qx.T @ qy, compute_uv=False)
    return np.clip(rho, 0.0, 1.0)


def _log_det_bias(d: int, n: int) -> float:
    r""":math:`E\ln\det S - \ln\det\Sigma` for the unbiased sample covariance of ``n`` Gaussian rows in ``d`` dims."""
    i = np.arange(1, d + 1)
    return float(np.sum(special.digamma((n - i) / 2.0)) + d * math.log(2.0 / (n - 1)))


def _mi_bias(dim_x: int, dim_y: int, n: int) -> float:
    """The expected excess (nats) of the plug-in Gaussian MI over the truth, Gaussian data."""
    return 0.5 * (_log_det_bias(dim_x, n) + _log_det_bias(dim_y, n) - _log_det_bias(dim_x + dim_y, n))


@dataclass(frozen=True)
class _GaussianFit:
    value: float  # nats, bias corrected when asked
    stderr: float
    rho: np.ndarray
    notes: tuple[str, ...]


def _gaussian_fit(x: np.ndarray, y: np.ndarray, bias_correction: bool, *, n_eff: float | None = None) -> _GaussianFit:
    """Gaussian MI of the blocks (nats) with its standard error.

    The standard error is the delta method on Fisher's z of each canonical
    correlation (``var(ln cosh z) ~ rho^2 / (n - 3)``) plus the null spread of the
    plug-in (``n sum r^2`` is about chi-square with ``d_x d_y`` degrees of freedom),
    both summed over the pairs.
    """
    n = x.shape[0]
    rho = canonical_correlations(x, y)
    notes = []
    r2 = rho**2
    if np.any(r2 > _MAX_R2):
        notes.append("a canonical correlation is 1 to float resolution (a linear function of X determines one of Y): "
                     f"the Gaussian MI is infinite; reported with r^2 capped at 1 - 2^-40")
        r2 = np.minimum(r2, _MAX_R2)
    plug_in = float(-0.5 * np.sum(np.log1p(-r2)))
    dx, dy = x.shape[1], y.shape[1]
    value = plug_in - (_mi_bias(dx, dy, n) if bias_correction else 0.0)
    effective = float(n) if n_eff is None else n_eff
    variance = float(np.sum(r2)) / max(effective - 3.0, 1.0) + dx * dy / (2.0 * effective**2)
    return _GaussianFit(value=value, stderr=math.sqrt(variance), rho=rho, notes=tuple(notes))


def _estimate(value_nats: float, stderr_nats: float, method: str, n: int, base: float,
              notes: tuple[str, ...], quantile: float = _Z95) -> MIEstimate:
    scale = log_base(base)
    value, stderr = value_nats / scale, stderr_nats / scale
    return MIEstimate(value=value, stderr=stderr, ci_low=value - quantile * stderr, ci_high=value + quantile * stderr,
                      method=method, n=n, base=float(base), notes=tuple(notes))


def gaussian_mi_estimate(x, y, *, bias_correction: bool = True, base: float = math.e) -> MIEstimate:
    r"""Mutual information of the Gaussian with the sample covariance of ``(x, y)``.

    With :math:`r_1, \dots, r_m` the sample canonical correlations of the blocks,

    .. math::

        \hat I = -\frac12 \sum_{i=1}^{m} \ln(1 - r_i^2) - b,
        \qquad b = \frac12\left[\beta(d_x) + \beta(d_y) - \beta(d_x + d_y)\right],
        \quad \beta(d) = \sum_{i=1}^{d} \psi\!\left(\frac{n-i}{2}\right) + d \ln\frac{2}{n-1},

    where :math:`\beta(d)` is the exact bias of the log-determinant of a
    ``d``-dimensional sample covariance of ``n`` Gaussian rows [1]_, so that
    :math:`\hat I` is unbiased for Gaussian data (``b`` is about
    :math:`d_x d_y / 2n`).

    Assumes a jointly Gaussian ``(X, Y)``. For other data it is the MI of the
    Gaussian with the same covariance: a lower bound when each coordinate is
    Gaussian and ``d_x = d_y = 1``, otherwise off in either direction
    (heavy tails, nonlinear or non-monotone dependence).

    Parameters
    ----------
    x : array_like, shape (n,) or (n, d_x)
    y : array_like, shape (n,) or (n, d_y)
        Paired finite samples, ``n >= d_x + d_y + 2``.
    bias_correction : bool, default True
        Subtract ``b``; ``False`` gives the plug-in value.
    base : float, default e
        Logarithm base of the result.

    Returns
    -------
    MIEstimate
        ``method="gaussian"``; ``stderr`` by the delta method on Fisher's z
        of each canonical correlation plus the null spread of the plug-in
        (:math:`d_x d_y / 2n^2`); the interval ``value +- 1.96 stderr``.
        Invariant to any invertible affine map of ``x`` and of ``y``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=5000)
    >>> est = gaussian_mi_estimate(x, x + rng.normal(size=5000))   # ln(2)/2 = 0.347
    >>> est.ci_low < 0.3466 < est.ci_high
    True
    """
    log_base(base)
    pairs = _pairs(x, y)
    if pairs.degenerate:
        return _exact_zero(pairs, "gaussian", base)
    fit = _gaussian_fit(pairs.x, pairs.y, bool(bias_correction))
    return _estimate(fit.value, fit.stderr, "gaussian", pairs.n, base, pairs.notes + fit.notes)


# --------------------------------------------------------------------------- #
# Student-t copula                                                             #
# --------------------------------------------------------------------------- #


def _mahalanobis(chol: np.ndarray, z: np.ndarray) -> np.ndarray:
    """``z_i' R^-1 z_i`` for each row, ``chol`` the lower Cholesky factor of ``R``."""
    return np.sum(solve_triangular(chol, z.T, lower=True, check_finite=False) ** 2, axis=0)


def _t_scores(u: np.ndarray, dof: float) -> np.ndarray:
    return special.stdtrit(dof, u)


def _cov_to_corr(cov: np.ndarray) -> np.ndarray:
    s = np.sqrt(np.diag(cov))
    corr = cov / np.outer(s, s)
    np.fill_diagonal(corr, 1.0)
    return corr


def _t_scatter(z: np.ndarray, dof: float, start: np.ndarray, iterations: int = 50, tol: float = 1e-5) -> np.ndarray:
    """EM estimate of the correlation (scatter) matrix of a Student-t sample with ``dof`` known."""
    n, d = z.shape
    corr = _regularised(start)
    for _ in range(iterations):
        chol = np.linalg.cholesky(corr)
        m = _mahalanobis(chol, z)
        w = (dof + d) / (dof + m)
        new = _cov_to_corr((z * w[:, None]).T @ z / n)
        if not np.all(np.isfinite(new)):
            return corr
        new = _regularised(new)
        if np.max(np.abs(new - corr)) < tol:
            return new
        corr = new
    return corr


def _t_copula_loglik(z: np.ndarray, corr: np.ndarray, dof: float) -> float:
    """Pseudo-log-likelihood of the Student-t copula at the t-scores ``z``."""
    n, d = z.shape
    chol = np.linalg.cholesky(corr)
    m = _mahalanobis(chol, z)
    logdet = 2.0 * float(np.sum(np.log(np.diag(chol))))
    joint = (special.gammaln((dof + d) / 2) - special.gammaln(dof / 2) - 0.5 * d * math.log(dof * math.pi)
             - 0.5 * logdet - 0.5 * (dof + d) * np.log1p(m / dof))
    half = (dof + 1) / 2
    marg = special.gammaln(half) - special.gammaln(dof / 2) - 0.5 * math.log(dof * math.pi) - half * np.log1p(z**2 / dof)
    return float(np.sum(joint) - np.sum(marg))


def _gaussian_copula_loglik(z: np.ndarray, corr: np.ndarray) -> float:
    chol = np.linalg.cholesky(corr)
    m = _mahalanobis(chol, z)
    logdet = 2.0 * float(np.sum(np.log(np.diag(chol))))
    return float(-0.5 * z.shape[0] * logdet - 0.5 * np.sum(m - np.sum(z**2, axis=1)))


def _student_t_term(dof: float, dim_x: int, dim_y: int) -> float:
    """The Student-t part of the MI (Arellano-Valle et al.): ``h(0) + h(dx+dy) - h(dx) - h(dy)``."""
    h = lambda d: special.gammaln((dof + d) / 2) - (dof + d) / 2 * special.digamma((dof + d) / 2)  # noqa: E731
    return float(h(0) + h(dim_x + dim_y) - h(dim_x) - h(dim_y))


@dataclass(frozen=True)
class _CopulaFit:
    """The elliptical copula fits of one data set (nats)."""

    gaussian: _GaussianFit
    gaussian_loglik: float
    dof: float
    student_value: float
    student_stderr: float  # analytic
    student_loglik: float
    corr: np.ndarray  # the Student-t copula's scatter
    gaussian_corr: np.ndarray  # the Gaussian copula's correlation (of the normal scores)

    @property
    def likelihood_ratio(self) -> float:
        return 2.0 * (self.student_loglik - self.gaussian_loglik)


def _copula_fit(pairs: _Pairs, bias_correction: bool) -> _CopulaFit:
    """Both elliptical copula fits, on one BLAS/OpenMP thread (the products are small; a second
    thread waiting for a core on a shared machine made them 100x slower)."""
    with threadpool_limits(limits=1):
        return _copula_fit_kernel(pairs, bias_correction)


def _copula_fit_kernel(pairs: _Pairs, bias_correction: bool) -> _CopulaFit:
    n = pairs.n
    dx, dy = pairs.x.shape[1], pairs.y.shape[1]
    u = rankdata(np.column_stack([pairs.x, pairs.y]), method="average", axis=0) / (n + 1.0)
    z_gauss = special.ndtri(u)
    gaussian = _gaussian_fit(z_gauss[:, :dx], z_gauss[:, dx:], bias_correction)
    corr_g = _regularised(np.corrcoef(z_gauss, rowvar=False))
    loglik_g = _gaussian_copula_loglik(z_gauss, corr_g)
    t = _t_fit(u, dx, bias_correction, corr_g)
    return _CopulaFit(gaussian=gaussian, gaussian_loglik=loglik_g, dof=t.dof, student_value=t.value,
                      student_stderr=t.stderr, student_loglik=t.loglik, corr=t.corr, gaussian_corr=corr_g)


@dataclass(frozen=True)
class _TFit:
    value: float
    stderr: float  # analytic (delta method): optimistic for rank-based fits, see _student_bootstrap_se
    dof: float
    loglik: float
    corr: np.ndarray


def _t_fit(u: np.ndarray, dx: int, bias_correction: bool, start: np.ndarray,
           around: float | None = None) -> _TFit:
    """Student-t copula of the pseudo-observations ``u``: scatter by EM, ``ln dof`` by profile likelihood.

    Without ``around`` the profile is scanned on ``_DOF_GRID`` and refined by
    Brent's method between the best grid point's neighbours; with it (a value
    of ``ln dof``, for the bootstrap refits), Brent's method within 1 of it.
    """
    n, d = u.shape
    dy = d - dx
    cache: dict[float, tuple[float, np.ndarray]] = {}

    def profile(log_dof: float) -> float:
        dof = float(math.exp(log_dof))
        z = _t_scores(u, dof)
        warm = min(cache.items(), key=lambda kv: abs(kv[0] - log_dof))[1][1] if cache else start
        corr = _regularised(_t_scatter(z, dof, warm))
        value = _t_copula_loglik(z, corr, dof)
        cache[log_dof] = (value, corr)
        return -value

    if around is None:
        grid = [math.log(v) for v in _DOF_GRID]
        values = [profile(g) for g in grid]
        best = int(np.argmin(values))
        lo, hi = grid[max(best - 1, 0)], grid[min(best + 1, len(grid) - 1)]
        log_dof = grid[best]
        if hi > lo:
            res = minimize_scalar(profile, bounds=(lo, hi), method="bounded", options={"xatol": 1e-3})
            log_dof = float(res.x) if res.fun <= values[best] else grid[best]
    else:  # Brent's method within _REFIT_STEP of the given ln dof
        lo = max(around - _REFIT_STEP, math.log(_DOF_GRID[0]))
        hi = min(around + _REFIT_STEP, math.log(_DOF_GRID[-1]))
        log_dof = float(minimize_scalar(profile, bounds=(lo, hi), method="bounded", options={"xatol": 1e-2}).x)
    loglik, corr = cache[log_dof]
    dof = math.exp(log_dof)
    # MI of the t copula: Gaussian MI of the scatter (canonical correlations of its blocks) plus the t term
    bias = _mi_bias(dx, dy, n) if bias_correction else 0.0
    value = _gaussian_mi_of_corr(corr, dx) - bias + _student_t_term(dof, dx, dy)
    if around is not None:
        return _TFit(value=value, stderr=math.nan, dof=dof, loglik=loglik, corr=corr)
    # analytic standard error: the Gaussian part's (scatter ML of a t sample: variance factor (dof+d+2)/(dof+d))
    # and the t term's through the profile-likelihood curvature in ln dof
    rho = _block_canonical(corr, dx)
    factor = (dof + d + 2.0) / (dof + d)
    var_gauss = factor * (float(np.sum(rho**2)) / max(n - 3.0, 1.0) + dx * dy / (2.0 * n**2))
    var_t = _t_term_variance(profile, log_dof, dx, dy)
    return _TFit(value=value, stderr=math.sqrt(var_gauss + var_t), dof=dof, loglik=loglik, corr=corr)


def _student_bootstrap_se(pairs: _Pairs, fit: "_CopulaFit", bias_correction: bool, seed, count: int) -> float:
    """Bootstrap standard error of the Student-t copula MI (:func:`bootstrap_count` resamples of the rows).

    Each resample is ranked afresh and refitted (scatter by EM from the full fit's, ``ln dof`` searched
    within 1 of the full fit's). The analytic standard error of the pseudo-likelihood fit ignores
    that the margins were estimated by ranks: on Student-t tasks at n = 5000 the estimate's actual
    spread over seeds was 1.5 to 3 times it.
    """
    rng = np.random.default_rng(seed)
    joint = np.column_stack([pairs.x, pairs.y])
    n, dx = pairs.n, pairs.x.shape[1]
    values = []
    with threadpool_limits(limits=1):
        for _ in range(count):
            rows = rng.integers(0, n, size=n)
            u = rankdata(joint[rows], method="average", axis=0) / (n + 1.0)
            values.append(_t_fit(u, dx, bias_correction, fit.corr, around=math.log(fit.dof)).value)
    return float(np.std(values, ddof=1))


def bootstrap_count(n: int, d: int) -> int:
    """Bootstrap refits of the Student-t copula for ``n`` rows in ``d`` dimensions: 30, down to 10 for large
    ``n d`` (each refit costs about ``n d`` t-quantiles and ``n d^2`` flops per EM step)."""
    return int(np.clip(_BOOTSTRAP_WORK // max(n * d, 1), 10, _BOOTSTRAP))


def _t_term_variance(profile, log_dof: float, dx: int, dy: int, step: float = 0.05) -> float:
    """Delta-method variance of the t term from the curvature of the profile likelihood in ``ln dof``."""
    f0, fp, fm = profile(log_dof), profile(log_dof + step), profile(log_dof - step)
    curvature = (fp - 2.0 * f0 + fm) / step**2  # of the negative log-likelihood
    if not math.isfinite(curvature) or curvature <= 0:
        return 0.0
    slope = (_student_t_term(math.exp(log_dof + step), dx, dy) - _student_t_term(math.exp(log_dof - step), dx, dy)) \
        / (2.0 * step)
    return slope**2 / curvature


def _regularised(corr: np.ndarray) -> np.ndarray:
    """``corr`` nudged towards the identity just enough for a Cholesky factor (collinear columns)."""
    for shrink in (0.0, 1e-12, 1e-9, 1e-6, 1e-3):
        candidate = (1.0 - shrink) * corr + shrink * np.eye(corr.shape[0])
        try:
            np.linalg.cholesky(candidate)
            return candidate
        except np.linalg.LinAlgError:
            continue
    return 0.9 * corr + 0.1 * np.eye(corr.shape[0])


def _block_canonical(corr: np.ndarray, dx: int) -> np.ndarray:
    """Canonical correlations of the blocks of a correlation matrix."""
    def inv_sqrt(m):
        w, v = np.linalg.eigh(m)
        return (v / np.sqrt(np.maximum(w, 1e-300))) @ v.T
    cross = inv_sqrt(corr[:dx, :dx]) @ corr[:dx, dx:] @ inv_sqrt(corr[dx:, dx:])
    return np.clip(np.linalg.svd(cross, compute_uv=False), 0.0, math.sqrt(_MAX_R2))


def _gaussian_mi_of_corr(corr: np.ndarray, dx: int) -> float:
    return float(-0.5 * np.sum(np.log1p(-_block_canonical(corr, dx) ** 2)))


_FAMILIES = ("gaussian", "student")


def copula_mi_estimate(x, y, *, family: str = "gaussian", bias_correction: bool = True,
                       base: float = math.e, seed: int | np.random.Generator | None = None,
                       bootstrap: int | None = None) -> MIEstimate:
    r"""Mutual information of an elliptical copula fitted to the ranks of ``(x, y)``.

    Each coordinate is replaced by its ranks (pseudo-observations
    :math:`u = r/(n+1)`). ``family="gaussian"`` takes normal scores
    :math:`\Phi^{-1}(u)` and reports :func:`gaussian_mi_estimate` of them: the
    MI of the Gaussian copula, exact (up to sampling) when a strictly
    increasing map of each coordinate makes ``(X, Y)`` jointly Gaussian [2]_.

    ``family="student"`` fits a Student-t copula with ``nu`` degrees of
    freedom and correlation (scatter) matrix ``R`` [3]_: for each ``nu``,
    ``R`` is the EM estimate on the t-scores :math:`t_\nu^{-1}(u)`, and ``nu``
    maximises the copula pseudo-likelihood (a grid from 0.5 to 200, refined by
    Brent's method). Its MI is that of the multivariate t [4]_,

    .. math::

        I = -\tfrac12 \sum_i \ln(1 - \rho_i^2) + c(\nu, d_x, d_y),

    :math:`\rho_i` the canonical correlations of the blocks of ``R`` and ``c``
    the term of :func:`estimators.testing.student_t_mi_correction` (positive,
    0 as ``nu -> inf``: heavy tails shared through one scale are dependence).

    Both are invariant to strictly increasing maps of each coordinate (exactly:
    only ranks are used). Both assume an elliptical copula: where the
    dependence is not of that shape (additive uniform noise, spirals, a
    coordinate that is a non-monotone function of another) the value is the MI
    of the best such copula, usually below the truth.

    Parameters
    ----------
    x : array_like, shape (n,) or (n, d_x)
    y : array_like, shape (n,) or (n, d_y)
        Paired finite samples, ``n >= d_x + d_y + 2``.
    family : {"gaussian", "student"}, default "gaussian"
    bias_correction : bool, default True
        Subtract the small-sample bias of the Gaussian part (see
        :func:`gaussian_mi_estimate`).
    base : float, default e
    seed : int, numpy Generator or None
        Seeds the bootstrap of the Student-t copula's standard error
        (``family="student"`` only).
    bootstrap : int or None, default None
        Bootstrap refits behind the Student-t copula's standard error:
        ``None`` chooses 10 to 30 by the size of the data (see
        :func:`bootstrap_count`), ``0`` gives the analytic (delta-method)
        standard error instead, fast but too small (see below).

    Returns
    -------
    MIEstimate
        ``method`` is ``"gaussian-copula"`` or ``"student-copula(nu=...)"``;
        the interval is ``value +- 1.96 stderr``. The Gaussian copula's
        standard error is the delta method's (see :func:`gaussian_mi_estimate`);
        the Student-t copula's is the standard deviation over 30 bootstrap
        resamples of the rows (10 to 30 for ``n d`` above 133,000), each ranked and refitted (the analytic one of
        the pseudo-likelihood ignores the ranking and was 1.5 to 3 times too
        small on Student-t tasks). ``notes`` give the fitted ``nu`` and the
        likelihood-ratio statistic against the Gaussian copula.

    Examples
    --------
    >>> from estimators.testing import student_t
    >>> task = student_t(2, 2, dof=2)                 # uncorrelated scale: Gaussian MI 0
    >>> x, y = task.sample(5000, seed=0)
    >>> round(task.mutual_information, 3)
    0.193
    >>> abs(copula_mi_estimate(x, y, family="student", seed=0).value - 0.193) < 0.03
    True
    """
    if family not in _FAMILIES:
        raise ValueError(f"family must be one of {list(_FAMILIES)}, got {family!r}")
    log_base(base)
    pairs = _pairs(x, y)
    method = "gaussian-copula" if family == "gaussian" else "student-copula"
    if pairs.degenerate:
        return _exact_zero(pairs, method, base)
    if family == "gaussian":
        z = normal_scores(np.column_stack([pairs.x, pairs.y]))
        dx = pairs.x.shape[1]
        fit = _gaussian_fit(z[:, :dx], z[:, dx:], bool(bias_correction))
        return _estimate(fit.value, fit.stderr, method, pairs.n, base, pairs.notes + fit.notes)
    count = None if bootstrap is None else positive_int(bootstrap, "bootstrap", minimum=0)
    if count == 1:
        raise ValueError("bootstrap must be 0 (analytic standard error) or at least 2, got 1")
    fit = _copula_fit(pairs, bool(bias_correction))
    if count == 0:
        stderr, how = fit.student_stderr, "stderr analytic (delta method; optimistic: the ranks are ignored)"
    else:
        count = bootstrap_count(pairs.n, pairs.x.shape[1] + pairs.y.shape[1]) if count is None else count
        stderr, how = _student_bootstrap_se(pairs, fit, bool(bias_correction), seed, count), \
            f"stderr by {count} bootstrap refits"
    notes = (*pairs.notes, f"Student-t copula: nu = {fit.dof:.3g} by profile pseudo-likelihood; likelihood ratio "
             f"against the Gaussian copula {fit.likelihood_ratio:.3g} (chi-square(1) 95%: {_LR_THRESHOLD:.2f}); {how}")
    return _estimate(fit.student_value, stderr, f"student-copula(nu={fit.dof:.3g})", pairs.n, base, notes)


# --------------------------------------------------------------------------- #
# KSG on normal scores                                                         #
# --------------------------------------------------------------------------- #


def copula_ksg_estimate(x, y, *, k: int = _DEFAULT_K, base: float = math.e,
                        seed: int | np.random.Generator | None = None) -> MIEstimate:
    r"""The KSG estimate (:func:`estimators.knn.ksg_mi_estimate`) on the normal scores of ``(x, y)``.

    Normal scores make every coordinate's marginal standard normal, which
    removes heavy tails and uneven scales that spoil neighbour distances; the
    estimate is invariant to strictly increasing maps of each coordinate and
    assumes nothing about the copula. Like all kNN estimators it is biased
    down when the MI is large or the dimension high (the neighbourhoods are
    not small) [5]_.

    Parameters
    ----------
    x, y : array_like
        Paired finite samples (``n >= k + 1``).
    k : int, default 5
        Neighbours.
    base : float, default e
    seed : int, numpy Generator or None
        Seeds KSG's tie-breaking jitter.

    Returns
    -------
    MIEstimate
        ``method="copula-ksg(k=...)"``; ``stderr`` is KSG's per-sample one (a
        heuristic spread that ignores the bias).
    """
    from estimators.knn import ksg_mi_estimate

    k = positive_int(k, "k")
    log_base(base)
    pairs = _pairs(x, y, min_extra=0)
    method = f"copula-ksg(k={k})"
    if pairs.degenerate:
        return _exact_zero(pairs, method, base)
    if pairs.n < k + 1:
        raise ValueError(f"x needs at least k + 1 = {k + 1} samples, got {pairs.n}")
    est = ksg_mi_estimate(normal_scores(pairs.x), normal_scores(pairs.y), k=k, base=base, seed=seed)
    return MIEstimate(value=est.value, stderr=est.stderr, ci_low=est.ci_low, ci_high=est.ci_high, method=method,
                      n=est.n, base=est.base, notes=pairs.notes + est.notes)


# --------------------------------------------------------------------------- #
# The default: chosen from the data alone                                      #
# --------------------------------------------------------------------------- #


def auto_mi_estimate(x, y, *, base: float = math.e, seed: int | np.random.Generator | None = None) -> MIEstimate:
    r"""The default estimate of ``I(X;Y)``: an elliptical copula, or kNN on normal scores where the copula misfits.

    The rule reads nothing but ``(x, y)``:

    1. Fit the Gaussian and the Student-t copula to the ranks
       (:func:`copula_mi_estimate`). Keep the Student-t one when the
       likelihood-ratio statistic exceeds the 95% point of chi-square(1)
       (3.84), else the Gaussian one: the elliptical model, MI ``E``.
    2. Check the model where it matters, on the scale of the MI (a parametric
       bootstrap): ``K`` is the KSG estimate on the data's normal scores
       (:func:`copula_ksg_estimate`, ``k = 5``), ``R`` the same estimator on
       ``n`` rows simulated from the fitted model. If the model holds, ``K``
       and ``R`` differ by sampling noise only (KSG's own bias is the same
       for both). When ``|K - R|`` exceeds 3 standard errors of the
       difference and 5% of ``E``, the copula is rejected: the dependence has
       another shape (non-monotone or curved maps, additive noise, embeddings).
    3. Copula not rejected: report ``E`` with its interval (the delta
       method's for the Gaussian copula, 10 to 30 bootstrap refits for the
       Student-t one).
    4. Copula rejected: report the kNN estimate with KSG's bias at the fitted
       model removed, ``K + (E - R)`` (``E - R`` is what KSG misses on data
       of that copula, sample size and dimension), with a bias-aware
       interval (below).

    Interval after a rejection. KSG is biased down wherever the joint density
    curves within the neighbourhoods (high MI, high dimension, spirals) and
    the model's correction ``E - R`` underrates that when the data curve
    more than the model. So the upper end also allows for the bias that
    remains at ``n``: the KSG estimate on disjoint subsamples of ``n/2``,
    ``n/4``, ``n/8`` rows is extrapolated to ``n = inf`` assuming a bias
    :math:`c\,n^{-1/d}` (``d = d_x + d_y``; the slow rate of kNN bias for a
    Lipschitz density, see :func:`estimators._mi_check.subsample_limit`),
    giving ``L``. With ``s`` the standard error of ``K + (E - R)`` (KSG's
    per-sample one times 1.5 for ``K`` and ``R``, the copula's for ``E``,
    added in quadrature), the interval is

    .. math::

        [\min(K, K + E - R) - 1.96 s,\ \max(K, K + E - R, L) + 1.96 s].

    It is one-sided where the evidence is (toward larger MI) and finite, but
    it is no guarantee: where KSG's bias decays slower than :math:`n^{-1/d}`
    over ``n/8 .. n`` (spirals in 5 or more dimensions, anything in 25) the
    upper end is still below the truth.

    The reference sample and the subsample split come from a fixed internal
    stream, and the subsamples are drawn from the rows sorted by their
    values, so the choice and the interval are functions of the data alone:
    unchanged by the row order, by ``seed`` (which seeds KSG's tie-breaking
    jitter, of relative size 1e-10, and the Student-t bootstrap) and, as the
    value, by strictly increasing maps of each coordinate (only ranks are read).

    ``method`` names the estimator used (``"auto:gaussian-copula"``,
    ``"auto:student-copula(nu=...)"`` or ``"auto:copula-ksg(k=5)"``, the last
    the bias-corrected kNN value) and ``notes`` say why, with every candidate's
    value, the check's numbers and how the interval was made.

    Parameters
    ----------
    x : array_like, shape (n,) or (n, d_x)
    y : array_like, shape (n,) or (n, d_y)
        Paired finite samples, ``n >= d_x + d_y + 6``.
    base : float, default e
    seed : int, numpy Generator or None

    Returns
    -------
    MIEstimate

    Examples
    --------
    >>> import numpy as np
    >>> from estimators.testing import gaussian_with_mi
    >>> x, y = gaussian_with_mi(0.5, dim=2).sample(3000, seed=1)
    >>> est = auto_mi_estimate(np.arcsinh(x), y, seed=0)
    >>> est.method, abs(est.value - 0.5) < 0.05
    ('auto:gaussian-copula', True)
    """
    log_base(base)
    pairs = _pairs(x, y, min_extra=_DEFAULT_K + 1)
    if pairs.degenerate:
        return _exact_zero(pairs, "auto:constant", base)
    fit = _copula_fit(pairs, True)
    model = _elliptical_model(fit)
    check = _knn_check(pairs, model, seed)
    others = (f"candidates (nats): gaussian-copula {fit.gaussian.value:.4g}, student-copula "
              f"{fit.student_value:.4g}, {check.knn.method} {check.knn.value:.4g} (on the data), "
              f"{check.reference.value:.4g} (on the fitted {model.name})")
    if check.rejects:
        return _knn_after_rejection(pairs, model, check, base, seed, (*pairs.notes, others))
    notes = (*pairs.notes,
             f"chose {model.name}: {model.why}; KSG on normal scores agrees with KSG on the fitted copula "
             f"(difference {check.gap:.3g} nats, {check.z:.1f} standard errors)", others, *fit.gaussian.notes)
    e_se = model.stderr
    if model.dof is not None:
        count = bootstrap_count(pairs.n, pairs.x.shape[1] + pairs.y.shape[1])
        e_se = _student_bootstrap_se(pairs, fit, True, seed, count)
        notes = (*notes, f"interval: stderr by {count} bootstrap refits of the Student-t copula")
    return _estimate(model.value, e_se, f"auto:{model.name}", pairs.n, base, notes)


@dataclass(frozen=True)
class _Elliptical:
    """The elliptical copula the default prefers (nats)."""

    name: str
    value: float
    stderr: float  # analytic
    corr: np.ndarray
    dof: float | None  # None: Gaussian
    why: str


def _elliptical_model(fit: _CopulaFit) -> _Elliptical:
    if fit.likelihood_ratio > _LR_THRESHOLD:
        return _Elliptical(
            f"student-copula(nu={fit.dof:.3g})", fit.student_value, fit.student_stderr, fit.corr, fit.dof,
            f"the Student-t copula (nu = {fit.dof:.3g}) fits the ranks better than the Gaussian one "
            f"(likelihood ratio {fit.likelihood_ratio:.3g} > {_LR_THRESHOLD:.2f})")
    return _Elliptical(
        "gaussian-copula", fit.gaussian.value, fit.gaussian.stderr, fit.gaussian_corr, None,
        f"the Student-t copula does not fit the ranks better than the Gaussian one "
        f"(likelihood ratio {fit.likelihood_ratio:.3g} <= {_LR_THRESHOLD:.2f}, nu = {fit.dof:.3g})")


@dataclass(frozen=True)
class _KnnCheck:
    """KSG on the data's normal scores against KSG on a sample of the fitted copula."""

    knn: MIEstimate  # nats
    reference: MIEstimate  # nats
    threshold: float  # the least |gap| that rejects, besides the z test

    @property
    def knn_se(self) -> float:
        return _KSG_SE_INFLATION * self.knn.stderr

    @property
    def reference_se(self) -> float:
        return _KSG_SE_INFLATION * self.reference.stderr

    @property
    def gap(self) -> float:
        return self.knn.value - self.reference.value

    @property
    def z(self) -> float:
        se = math.hypot(self.knn_se, self.reference_se)
        return self.gap / se if se > 0 else 0.0

    @property
    def rejects(self) -> bool:
        return abs(self.z) > _SWITCH_Z and abs(self.gap) > self.threshold


def _knn_check(pairs: _Pairs, model: _Elliptical, seed) -> _KnnCheck:
    dx = pairs.x.shape[1]
    knn = copula_ksg_estimate(pairs.x, pairs.y, k=_DEFAULT_K, seed=seed)
    sample = elliptical_reference(model.corr, model.dof, pairs.n, np.random.default_rng(CHECK_STREAM))
    reference = copula_ksg_estimate(sample[:, :dx], sample[:, dx:], k=_DEFAULT_K, seed=CHECK_STREAM)
    return _KnnCheck(knn, reference, _SWITCH_FRACTION * abs(model.value))


def _knn_after_rejection(pairs: _Pairs, model: _Elliptical, check: _KnnCheck, base: float, seed,
                         notes: tuple[str, ...]) -> MIEstimate:
    """The bias-corrected kNN estimate with its bias-aware interval (see :func:`auto_mi_estimate`)."""
    knn, correction = check.knn.value, model.value - check.reference.value
    value = knn + correction
    stderr = math.sqrt(check.knn_se**2 + check.reference_se**2 + model.stderr**2)
    d = pairs.x.shape[1] + pairs.y.shape[1]
    limit = subsample_limit(
        pairs.x, pairs.y, lambda a, b: copula_ksg_estimate(a, b, k=_DEFAULT_K, seed=seed).value,
        exponent=1.0 / d, min_size=_MIN_SUBSAMPLE, rng=np.random.default_rng((CHECK_STREAM, 1)))
    upper = max(value, knn, limit.limit) if math.isfinite(limit.limit) else max(value, knn)
    low, high = min(value, knn) - _Z95 * stderr, upper + _Z95 * stderr
    curve = ", ".join(f"{v:.4g} at n = {s}" for s, v in zip(limit.sizes, limit.values))
    scale = log_base(base)
    notes = (*notes,
             f"chose {check.knn.method} (bias-corrected): KSG on the data's normal scores differs from KSG on "
             f"a sample of the fitted {model.name} by {check.gap:.3g} nats ({check.z:.1f} standard errors, "
             f"beyond {_SWITCH_Z:g} and {_SWITCH_FRACTION:.0%} of its MI {model.value:.3g}), so the dependence is "
             f"not of that shape ({model.why})",
             f"value: KSG {knn:.4g} plus KSG's bias at the fitted copula ({correction:.3g} nats)",
             f"interval: from min(KSG, value) - 1.96 se to max(KSG, value, limit) + 1.96 se, se {stderr:.3g} nats; "
             f"limit {limit.limit:.4g} nats extrapolates KSG on subsamples ({curve or 'too few rows'}) to "
             f"n = inf under a bias c n^(-1/{d}); it is no bound: a bias decaying slower leaves the truth above",
             *check.knn.notes)
    return MIEstimate(value=value / scale, stderr=stderr / scale, ci_low=low / scale, ci_high=high / scale,
                      method=f"auto:{check.knn.method}", n=pairs.n, base=float(base), notes=notes)


class CopulaEstimator:
    """:func:`copula_mi_estimate` or :func:`auto_mi_estimate` as an :class:`~estimators.interface.MIEstimator`.

    Parameters
    ----------
    family : {"auto", "gaussian", "student"}, default "auto"
        ``"auto"`` is :func:`auto_mi_estimate`.
    base : float, default e
    seed : int or None
        For ``"auto"``: seeds KSG's tie-breaking jitter.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=2000)
    >>> CopulaEstimator("gaussian").estimate(x, np.exp(x + rng.normal(size=2000))) > 0.25
    True
    """

    def __init__(self, family: str = "auto", *, base: float = math.e, seed: int | None = None) -> None:
        if family not in ("auto", *_FAMILIES):
            raise ValueError(f"family must be one of {['auto', *_FAMILIES]}, got {family!r}")
        log_base(base)
        self.family, self.base, self.seed = family, base, seed

    def __repr__(self) -> str:
        return f"CopulaEstimator({self.family!r}, base={self.base!r}, seed={self.seed!r})"

    def estimate(self, x, y) -> float:
        """``max(0, value)`` of :meth:`estimate_with_info`."""
        return max(0.0, float(self.estimate_with_info(x, y).value))

    def estimate_with_info(self, x, y) -> MIEstimate:
        """The full :class:`~estimators.interface.MIEstimate`."""
        if self.family == "auto":
            return auto_mi_estimate(x, y, base=self.base, seed=self.seed)
        return copula_mi_estimate(x, y, family=self.family, base=self.base)
