r"""Two data-driven checks behind the default MI estimate's choice and interval.

- :func:`elliptical_reference`: a sample of the fitted elliptical copula (Gaussian
  or Student-t scatter), the same size as the data. A kNN estimate computed on it
  is what the kNN estimator gives *if the fitted copula were the truth*; the gap
  between that and the kNN estimate on the data is a goodness-of-fit statistic of
  the copula on the scale of the MI (a parametric bootstrap), and the gap between
  the copula's MI and the reference's kNN estimate is the kNN estimator's bias
  at the fitted model.
- :func:`subsample_limit`: the kNN estimate on disjoint subsamples of sizes
  ``n, n/2, n/4, n/8`` (averaged over the subsamples of each size) and its limit
  as ``n -> inf`` under a bias that decays like :math:`n^{-a}`: the intercept of
  the least-squares line of the estimates against :math:`n^{-a}`.

Both are plain functions of numbers; the estimator they run is passed in, so this
module imports nothing of the package.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

__all__ = ["elliptical_reference", "subsample_limit", "SubsampleLimit", "canonical_order"]

#: Fixed stream of the reference sample and of the subsample split: the default's choice and
#: interval are then functions of the data alone (no caller's seed changes them).
CHECK_STREAM = 20_231_217

#: Subsample fractions of :func:`subsample_limit`.
_LEVELS = (1, 2, 4, 8)


def elliptical_reference(corr: np.ndarray, dof: float | None, n: int, rng: np.random.Generator) -> np.ndarray:
    r"""``n`` rows of the elliptical distribution with scatter ``corr`` (Gaussian, or Student-t with ``dof``).

    Its copula is the Gaussian (``dof=None``) or Student-t copula with
    correlation ``corr``; rank-based estimators see nothing else of it.

    Parameters
    ----------
    corr : numpy.ndarray, shape (d, d)
        Positive-definite correlation (scatter) matrix.
    dof : float or None
        Degrees of freedom of the Student-t; ``None`` for the Gaussian.
    n : int
        Rows.
    rng : numpy.random.Generator

    Returns
    -------
    numpy.ndarray, shape (n, d)
    """
    chol = np.linalg.cholesky(corr)
    sample = rng.standard_normal((n, corr.shape[0])) @ chol.T
    if dof is not None:
        sample *= np.sqrt(dof / rng.chisquare(dof, size=n))[:, None]
    return sample


def canonical_order(joint: np.ndarray) -> np.ndarray:
    """Row indices sorting ``joint`` by its first column, ties by the next ones.

    The order depends on the rows' values only (not on their order in the
    array) and is unchanged by strictly increasing maps of each column.
    """
    return np.lexsort(joint.T[::-1])


@dataclass(frozen=True)
class SubsampleLimit:
    """kNN estimates by subsample size and their extrapolated limit (nats).

    ``sizes[j]`` rows per subsample, ``values[j]`` the mean estimate over the
    ``n // sizes[j]`` disjoint subsamples of that size; ``limit`` the intercept at
    ``n = inf`` of the least-squares line of ``values`` against ``sizes**-exponent``
    (``nan`` when fewer than two sizes were possible).
    """

    sizes: tuple[int, ...]
    values: tuple[float, ...]
    exponent: float
    limit: float


def subsample_limit(x: np.ndarray, y: np.ndarray, estimate: Callable[[np.ndarray, np.ndarray], float], *,
                    exponent: float, min_size: int, rng: np.random.Generator) -> SubsampleLimit:
    r"""The kNN estimate's limit in ``n`` under a bias :math:`c\, n^{-a}` (``a = exponent``).

    Rows are put in :func:`canonical_order` and then permuted by ``rng``; the
    subsamples of size ``n/m`` (``m = 1, 2, 4, 8`` while ``n/m >= min_size``) are
    every ``m``-th row of that order, so each row is in one subsample per size.
    ``estimate`` runs on each; the mean per size is regressed on
    :math:`(n/m)^{-a}`, and the intercept is the limit.

    Assumes the estimator's bias is a power of ``n`` over ``n/8 .. n`` (its
    pre-asymptotic regime can decay faster or slower) and that the subsample
    estimates' spread is small next to the differences between sizes.
    """
    n = x.shape[0]
    rows = canonical_order(np.column_stack([x, y]))[rng.permutation(n)]
    sizes, values = [], []
    for m in _LEVELS:
        if n // m < min_size:
            break
        parts = [rows[j::m][: n // m] for j in range(m)]
        values.append(float(np.mean([estimate(x[p], y[p]) for p in parts])))
        sizes.append(n // m)
    if len(sizes) < 2:
        return SubsampleLimit(tuple(sizes), tuple(values), float(exponent), float("nan"))
    design = np.column_stack([np.ones(len(sizes)), np.asarray(sizes, dtype=float) ** -exponent])
    intercept = float(np.linalg.lstsq(design, np.asarray(values), rcond=None)[0][0])
    return SubsampleLimit(tuple(sizes), tuple(values), float(exponent), intercept)
