r"""k-nearest-neighbour estimators of mutual information and entropy.

- :func:`ksg_mi` / :func:`ksg_mi_estimate`: the Kraskov-Stoegbauer-Grassberger
  estimator 1 [1]_ of :math:`I(X;Y)` for continuous, possibly multivariate
  ``x`` and ``y`` (max-norm, KD-trees, :math:`O(n \log n)`).
- :func:`mixed_mi` / :func:`mixed_mi_estimate`: Ross's estimator [2]_ of
  :math:`I(Z;T)` for continuous ``z`` and discrete labels ``t``.
- :func:`kl_entropy`: the Kozachenko-Leonenko estimator [3]_ of the
  differential entropy :math:`h(X)`.
- :class:`KSGEstimator`, :class:`MixedEstimator`: the same estimators as
  objects of the :class:`~estimators.interface.MIEstimator` protocol.

All values are in nats unless ``base=`` says otherwise (``base=2``: bits).

Ties. kNN estimators assume a continuous distribution: repeated values make
neighbour distances zero and the digamma terms undefined. Following [1]_ and
scikit-learn, every continuous column gets independent Gaussian noise of
standard deviation ``jitter * mean(|column|)`` (after standardisation, when
enabled), drawn from ``numpy.random.default_rng(seed)``; the default
``jitter=1e-10`` breaks ties without moving any estimate measurably. With
``jitter=0`` and more than ``k`` identical points the functions raise
:class:`ValueError` instead of returning ``nan``.

Scale and constant columns. With ``standardize=True`` (the default) the MI
estimates are invariant to the scale of each column: ``x * s`` gives the
estimate of ``x`` for every ``s`` from 1e-300 to 1e300, up to the rounding
already in ``x * s`` (columns are first divided by a power of two, exactly). A
constant column carries no information and is dropped (the estimate's notes
say so); when every column of one variable is constant the estimate is exactly
0 with the interval ``[0, 0]``.

References
----------
.. [1] A. Kraskov, H. Stoegbauer, P. Grassberger, "Estimating mutual
   information", Physical Review E 69, 066138, 2004.
.. [2] B. C. Ross, "Mutual information between discrete and continuous data
   sets", PLoS ONE 9(2), e87357, 2014.
.. [3] L. F. Kozachenko, N. N. Leonenko, "Sample estimate of the entropy of a
   random vector", Problems of Information Transmission 23(2), 95-101, 1987.

Examples
--------
>>> from estimators.knn import ksg_mi
>>> from estimators.testing import gaussian_with_mi
>>> x, y = gaussian_with_mi(1.0).sample(5000, seed=0)
>>> abs(ksg_mi(x, y, seed=0) - 1.0) < 0.05
True
"""

from __future__ import annotations

import functools
import inspect
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields

import numpy as np
from scipy.spatial import cKDTree
from scipy.special import digamma, gammaln
from sklearn.neighbors import KDTree, NearestNeighbors

from estimators._threads import hold_threads
from estimators._validation import (
    as_labels,
    as_samples,
    drop_constant_columns,
    log_base,
    positive_float,
    positive_int,
    same_length,
    unit_scaled_columns,
)
from estimators.interface import MIEstimate

__all__ = [
    "ksg_mi",
    "ksg_mi_estimate",
    "mixed_mi",
    "mixed_mi_estimate",
    "kl_entropy",
    "KSGEstimator",
    "MixedEstimator",
]

#: Two-sided normal quantile of the 95% intervals.
_Z95 = 1.959963984540054

#: Leaf size of the range-count KD-tree (scikit-learn's default; 20 to 80 were within 10% at n = 20000).
_LEAF_SIZE = 40
#: Max-norm kNN queries in this many dimensions or more use scikit-learn's KD-tree, of this leaf size
#: (n = 20000: 0.55 s against scipy's 0.64 s in 10 dimensions; scipy's was faster below 6).
_SKLEARN_KNN_MIN_DIM = 6
_KNN_LEAF_SIZE = 20
#: From this many dimensions on, max-norm kNN queries are exhaustive (scikit-learn's brute-force
#: k-smallest reduction): one thread, n = 20000, 18 dimensions: 13.7 s against the KD-tree's 23 s;
#: at 16 the two were even, at 12 the KD-tree 3x faster (scikit-learn's own rule switches above 15).
_BRUTE_KNN_MIN_DIM = 16
#: Fewest queries per worker thread of a scikit-learn tree query.
_MIN_CHUNK = 1024

_STDERR_NOTE = (
    "stderr = std(per-sample terms) / sqrt(n): ignores the dependence between the "
    "terms and the estimator's bias; the interval is value +/- 1.96 stderr"
)


# ---------------------------------------------------------------------------
# The options of the MI estimators, written once


@dataclass(frozen=True)
class _Options:
    """Keyword options of :func:`ksg_mi`, :func:`ksg_mi_estimate`, :func:`mixed_mi`, :func:`mixed_mi_estimate`
    (documented in :func:`ksg_mi`), and the fields of :class:`KSGEstimator` and :class:`MixedEstimator`."""

    k: int = 3
    base: float = math.e
    seed: int | np.random.Generator | None = None
    standardize: bool = True
    jitter: float = 1e-10
    workers: int = 1

    def as_keywords(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(_Options)}

    def values(self) -> tuple:
        """The options in field order (as the functions unpack them)."""
        return tuple(self.as_keywords().values())


def _with_options(fn):
    """``fn(a, b, options)`` as the public ``fn(a, b, *, k=3, base=e, ...)`` with the fields of :class:`_Options`."""
    signature = inspect.signature(fn)
    samples = list(signature.parameters.values())[:2]
    keywords = [inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default, annotation=f.type)
                for f in fields(_Options)]
    names = {f.name for f in fields(_Options)}

    @functools.wraps(fn)
    def public(a, b, **options):
        unknown = sorted(set(options) - names)
        if unknown:
            raise TypeError(f"{fn.__name__}() got unexpected keyword arguments {unknown}; it takes {sorted(names)}")
        return fn(a, b, _Options(**options))

    del public.__wrapped__  # the signature below, not fn's
    public.__signature__ = inspect.Signature([*samples, *keywords],
                                             return_annotation=signature.return_annotation)
    return public


# ---------------------------------------------------------------------------
# Public functions


@_with_options
def ksg_mi(x, y, options: _Options) -> float:
    r"""Mutual information :math:`I(X;Y)` by the KSG estimator 1, clipped at 0.

    With :math:`\varepsilon_i` the max-norm distance from
    :math:`(x_i, y_i)` to its ``k``-th nearest neighbour in the joint space,
    and :math:`n_x(i)`, :math:`n_y(i)` the numbers of other points strictly
    closer than :math:`\varepsilon_i` to :math:`x_i` (resp. :math:`y_i`) in
    the marginal spaces (max-norm),

    .. math::
        \hat I = \psi(k) + \psi(n)
                 - \frac1n \sum_{i=1}^n \left[\psi(n_x(i) + 1) + \psi(n_y(i) + 1)\right].

    The raw value can be slightly negative when :math:`I` is near 0; this
    function returns ``max(0, raw)``. :func:`ksg_mi_estimate` returns the raw
    value with a standard error.

    Parameters
    ----------
    x : array_like, shape (n,) or (n, d_x)
        Samples of :math:`X` (continuous).
    y : array_like, shape (n,) or (n, d_y)
        Samples of :math:`Y` (continuous), paired with ``x``.
    k : int
        Number of neighbours (``n >= k + 1`` required). Small ``k`` lowers
        the bias, large ``k`` the variance; 3 is the usual choice.
    base : float
        Logarithm base of the result (``e``: nats, ``2``: bits).
    seed : int, numpy Generator or None
        Seeds the tie-breaking jitter.
    standardize : bool
        Scale every column to unit variance first (as scikit-learn does). The
        max-norm mixes coordinates, so this matters in several dimensions;
        MI itself is invariant to it, and so is the estimate then (to any
        column scale within float64's range). ``False`` uses the raw values.
    jitter : float
        Relative standard deviation of the tie-breaking noise (see the module
        notes); 0 disables it.
    workers : int
        Threads for the KD-tree queries (``-1``: all cores). The BLAS/OpenMP
        pools (and torch's threads, where torch is imported) are held at the
        same count during the call and restored after it, also on an error
        (``-1`` leaves them as they are); see :func:`estimators.limit_threads`.
        The estimate does not depend on it.

    Returns
    -------
    float
        :math:`\max(0, \hat I)` in units of ``base``; exactly 0 when ``x`` or
        ``y`` is constant (constant columns are dropped; see the module notes).

    Notes
    -----
    Cost :math:`O(n \log n)`: one ``k``-nearest-neighbour query in a KD-tree
    of the joint samples, then, per marginal, one strict range count (by
    binary search on the sorted values when the marginal is one-dimensional,
    else a count-only query of scikit-learn's KD-tree, which adds whole nodes
    inside the ball at once). The counts are exact: identical to a
    brute-force loop, ties at the radius included.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=2000)
    >>> ksg_mi(x, x + rng.normal(size=2000), seed=0) > 0.25  # true value ln(2)/2
    True
    """
    return max(0.0, _ksg(x, y, options).value)


@_with_options
def ksg_mi_estimate(x, y, options: _Options) -> MIEstimate:
    r"""The KSG estimate of :math:`I(X;Y)` (unclipped) with a standard error.

    Parameters are those of :func:`ksg_mi`.

    Returns
    -------
    MIEstimate
        ``value`` is the raw KSG mean :math:`\frac1n\sum_i a_i` of the
        per-sample terms :math:`a_i = \psi(k) + \psi(n) - \psi(n_x(i)+1) -
        \psi(n_y(i)+1)` (may be negative); ``stderr`` is
        :math:`\operatorname{sd}(a)/\sqrt n` and the interval ``value +/- 1.96
        stderr``. The terms are weakly dependent, so this is a heuristic
        spread, not a calibrated interval for the true MI: over 60 replicates
        of Gaussian tasks at ``n = 2000`` (I = 0 to 2 nats, 1 to 3
        dimensions) the actual standard deviation of ``value`` was 1.1 to 1.5
        times the mean ``stderr``, and the interval ignores the bias, which
        dominates in high dimension.
    """
    return _ksg(x, y, options)


def _ksg(x, y, options: _Options) -> MIEstimate:
    """:func:`ksg_mi_estimate` with its options."""
    k, base, seed, standardize, jitter, workers = options.values()
    k = positive_int(k, "k")
    scale = log_base(base)
    xs, ys = _paired_samples(x, y, k)
    workers = _workers(workers)
    xs, x_notes = drop_constant_columns(xs, "x")
    ys, y_notes = drop_constant_columns(ys, "y")
    method, notes = f"ksg(k={k})", x_notes + y_notes
    if xs.shape[1] == 0 or ys.shape[1] == 0:
        return _exact_zero(xs.shape[0], method, base, notes)
    rng = np.random.default_rng(seed)
    xs = _prepare(xs, "x", standardize, jitter, rng)
    ys = _prepare(ys, "y", standardize, jitter, rng)
    with _thread_scope(workers):
        terms = _ksg_terms(xs, ys, k, workers)
    return _summarise(terms, scale, method, base, clipped_by="ksg_mi", notes=notes)


@_with_options
def mixed_mi(z, t, options: _Options) -> float:
    r"""Mutual information :math:`I(Z;T)` of continuous ``z`` and discrete ``t``, clipped at 0.

    Ross's estimator [2]_ (as in scikit-learn's ``mutual_info_classif``):
    for sample :math:`i` with label :math:`t_i`, let :math:`N_{t_i}` be the
    number of samples with that label, :math:`k_i = \min(k, N_{t_i} - 1)`,
    :math:`d_i` the max-norm distance from :math:`z_i` to its
    :math:`k_i`-th nearest neighbour *among samples with the same label*, and
    :math:`m_i` the number of samples of any label strictly closer than
    :math:`d_i` (counting :math:`z_i` itself). Then

    .. math::
        \hat I = \psi(n) + \frac1n\sum_i\left[\psi(k_i) - \psi(N_{t_i}) - \psi(m_i)\right].

    Samples whose label occurs only once carry no neighbour information and
    are dropped first (``n`` counts the rest), as in scikit-learn.

    Parameters
    ----------
    z : array_like, shape (n,) or (n, d)
        Continuous samples.
    t : array_like of int, shape (n,)
        Discrete labels (integers, or floats with integer values).
    k, base, seed, standardize, jitter, workers
        As in :func:`ksg_mi` (jitter and standardisation apply to ``z``).

    Returns
    -------
    float
        :math:`\max(0, \hat I)` in units of ``base``; see
        :func:`mixed_mi_estimate` for the raw value and a standard error.
    """
    return max(0.0, _mixed(z, t, options).value)


@_with_options
def mixed_mi_estimate(z, t, options: _Options) -> MIEstimate:
    """Ross's estimate of :math:`I(Z;T)` (unclipped) with a standard error.

    Parameters are those of :func:`mixed_mi`; the standard error is that of
    :func:`ksg_mi_estimate`, from the per-sample terms.
    """
    return _mixed(z, t, options)


def _mixed(z, t, options: _Options) -> MIEstimate:
    """:func:`mixed_mi_estimate` with its options."""
    k, base, seed, standardize, jitter, workers = options.values()
    k = positive_int(k, "k")
    scale = log_base(base)
    zs = as_samples(z, "z", min_n=k + 1)  # as ksg_mi: k neighbours need k + 1 samples
    labels = as_labels(t, "t")
    same_length("z", zs, "t", labels)
    _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    keep = counts[inverse] > 1
    if keep.sum() < 2:
        raise ValueError("t must contain some label at least twice (samples with a unique label are dropped)")
    dropped = int((~keep).sum())
    zs, inverse = zs[keep], inverse[keep]
    workers = _workers(workers)
    method = f"mixed-ross(k={k})"
    notes = (f"{dropped} samples with a label seen only once were dropped",) if dropped else ()
    zs, z_notes = drop_constant_columns(zs, "z")
    notes += z_notes
    if np.unique(inverse).size == 1:
        notes += ("t takes a single label (after the drop): its mutual information with anything is exactly 0",)
    if zs.shape[1] == 0 or np.unique(inverse).size == 1:
        return _exact_zero(zs.shape[0], method, base, notes)
    rng = np.random.default_rng(seed)
    zs = _prepare(zs, "z", standardize, jitter, rng)
    with _thread_scope(workers):
        terms = _mixed_terms(zs, inverse, k, workers)
    return _summarise(terms, scale, method, base, clipped_by="mixed_mi", notes=notes)


def kl_entropy(
    x,
    *,
    k: int = 3,
    base: float = math.e,
    seed: int | np.random.Generator | None = None,
    metric: str = "euclidean",
    jitter: float = 1e-10,
    workers: int = 1,
) -> float:
    r"""Differential entropy :math:`h(X)` by the Kozachenko-Leonenko estimator.

    With :math:`\rho_i` the distance from :math:`x_i` to its ``k``-th nearest
    neighbour (in ``metric``) and :math:`V_d` the volume of the unit ball of
    that metric in :math:`\mathbb R^d`,

    .. math::
        \hat h = \psi(n) - \psi(k) + \ln V_d + \frac dn \sum_{i=1}^n \ln \rho_i,
        \qquad
        V_d = \begin{cases} \pi^{d/2} / \Gamma(d/2 + 1) & \text{euclidean},\\
                            2^d & \text{chebyshev (max-norm)}. \end{cases}

    Both metrics estimate the same quantity; Euclidean (the default) has
    slightly lower bias for smooth densities. Entropy is not scale
    invariant, so nothing is standardised.

    Parameters
    ----------
    x : array_like, shape (n,) or (n, d)
        Samples (continuous), ``n >= k + 1``.
    k : int
        Neighbour order.
    base : float
        Logarithm base of the result (``e``: nats).
    seed : int, numpy Generator or None
        Seeds the tie-breaking jitter.
    metric : {"euclidean", "chebyshev"}
        Distance used for the neighbours and the unit ball.
    jitter, workers
        As in :func:`ksg_mi`.

    Returns
    -------
    float
        :math:`\hat h` in units of ``base`` (can be negative: differential
        entropy is).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).uniform(size=(4000, 2))
    >>> abs(kl_entropy(x, seed=0)) < 0.05  # h(U[0,1]^2) = 0
    True
    """
    k = positive_int(k, "k")
    scale = log_base(base)
    if metric not in ("euclidean", "chebyshev"):
        raise ValueError(f"metric must be 'euclidean' or 'chebyshev', got {metric!r}")
    xs = as_samples(x, "x", min_n=k + 1)
    if np.any(np.ptp(xs, axis=0) == 0):
        raise ValueError("x has a constant column: its differential entropy is -inf (a degenerate distribution)")
    # h(x / 2^e) = h(x) - d e ln 2, exactly: distances of x * 1e300 would overflow
    exponent = int(np.frexp(np.max(np.abs(xs)))[1])
    xs = _prepare(np.ldexp(xs, -exponent), "x", False, jitter, np.random.default_rng(seed))
    p = 2.0 if metric == "euclidean" else np.inf
    workers = _workers(workers)
    with _thread_scope(workers):
        radius = _kth_neighbour_distance(xs, k, p, workers)
    _require_positive(radius, "x", k)
    n, d = xs.shape
    log_volume = 0.5 * d * math.log(math.pi) - gammaln(0.5 * d + 1) if p == 2.0 else d * math.log(2.0)
    value = digamma(n) - digamma(k) + log_volume + d * (np.mean(np.log(radius)) + exponent * math.log(2.0))
    return float(value) / scale


# ---------------------------------------------------------------------------
# Estimator objects (the MIEstimator protocol)


@dataclass(frozen=True)
class _NeighbourEstimator(_Options):
    """Shared methods of the kNN estimator objects; the fields are the options of the functions.

    A subclass names its two functions (``_value`` for ``estimate``,
    ``_info`` for ``estimate_with_info``).
    """

    def estimate(self, x, y) -> float:
        """The point estimate in units of ``base``."""
        return self._value(x, y, **self.as_keywords())

    def estimate_with_info(self, x, y) -> MIEstimate:
        """The estimate with its standard error and interval."""
        return self._info(x, y, **self.as_keywords())


@dataclass(frozen=True)
class KSGEstimator(_NeighbourEstimator):
    """The KSG estimator as an :class:`~estimators.interface.MIEstimator`.

    ``estimate`` is :func:`ksg_mi` (clipped at 0), ``estimate_with_info`` is
    :func:`ksg_mi_estimate`; the fields are their keyword options.
    """

    _value = staticmethod(ksg_mi)
    _info = staticmethod(ksg_mi_estimate)


@dataclass(frozen=True)
class MixedEstimator(_NeighbourEstimator):
    """Ross's continuous-discrete estimator as an :class:`~estimators.interface.MIEstimator`.

    ``x`` is continuous and ``y`` holds integer labels; ``estimate`` is
    :func:`mixed_mi`, ``estimate_with_info`` is :func:`mixed_mi_estimate`.
    """

    _value = staticmethod(mixed_mi)
    _info = staticmethod(mixed_mi_estimate)


# ---------------------------------------------------------------------------
# The estimators' per-sample terms


def _ksg_terms(x: np.ndarray, y: np.ndarray, k: int, workers: int) -> np.ndarray:
    """Per-sample KSG-1 terms ``psi(k) + psi(n) - psi(n_x + 1) - psi(n_y + 1)``."""
    n = x.shape[0]
    radius = _kth_neighbour_distance(np.hstack([x, y]), k, np.inf, workers)
    _require_positive(radius, "x and y", k)
    nx = _count_strictly_within(x, radius, workers)
    ny = _count_strictly_within(y, radius, workers)
    return digamma(k) + digamma(n) - digamma(nx + 1) - digamma(ny + 1)


def _mixed_terms(z: np.ndarray, labels: np.ndarray, k: int, workers: int) -> np.ndarray:
    """Per-sample Ross terms ``psi(n) + psi(k_i) - psi(N_label) - psi(m_i)``."""
    n = z.shape[0]
    radius = np.empty(n)
    k_used = np.empty(n)
    label_count = np.empty(n)
    for label in np.unique(labels):
        mask = labels == label
        count = int(mask.sum())
        k_label = min(k, count - 1)
        radius[mask] = _kth_neighbour_distance(z[mask], k_label, np.inf, workers)
        k_used[mask] = k_label
        label_count[mask] = count
    _require_positive(radius, "z (within a label of t)", k)
    m = _count_strictly_within(z, radius, workers) + 1  # m_i counts z_i itself
    return digamma(n) + digamma(k_used) - digamma(label_count) - digamma(m)


def _summarise(terms: np.ndarray, scale: float, method: str, base: float, *, clipped_by: str,
               notes: tuple[str, ...] = ()) -> MIEstimate:
    """The estimate from per-sample ``terms`` (nats): their mean, its standard error, the notes.

    ``scale`` is ``ln(base)``; ``notes`` follow the standard-error note, and a
    negative mean adds one naming ``clipped_by``, the function that clips it to 0.
    """
    all_notes = [_STDERR_NOTE, *notes]
    if terms.mean() < 0:
        all_notes.append(f"raw estimate is negative (true MI near 0); {clipped_by} clips it to 0")
    terms = terms / scale
    n = terms.shape[0]
    value = float(terms.mean())
    stderr = float(terms.std(ddof=1) / math.sqrt(n))
    return MIEstimate(value=value, stderr=stderr, ci_low=value - _Z95 * stderr, ci_high=value + _Z95 * stderr,
                      method=method, n=n, base=float(base), notes=tuple(all_notes))


def _exact_zero(n: int, method: str, base: float, notes: tuple[str, ...]) -> MIEstimate:
    """The estimate when one variable is constant: exactly 0, with the degenerate interval [0, 0]."""
    return MIEstimate(value=0.0, stderr=0.0, ci_low=0.0, ci_high=0.0, method=method, n=n, base=float(base),
                      notes=notes)


# ---------------------------------------------------------------------------
# Neighbour searches


def _kth_neighbour_distance(points: np.ndarray, k: int, p: float, workers: int) -> np.ndarray:
    """Distance (Minkowski ``p``) from each point to its ``k``-th nearest other point.

    Points are queried in the tree's own order: neighbouring queries then walk
    the same nodes, which is about three times faster for large ``n`` than
    querying in input order. Max-norm queries in :data:`_SKLEARN_KNN_MIN_DIM`
    or more dimensions go to scikit-learn's KD-tree (leaf size 20), 10-15%
    faster there than scipy's, and from :data:`_BRUTE_KNN_MIN_DIM` on to its
    exhaustive search (a tree prunes little there); all give the same
    distances (the max-norm of a difference is computed exactly alike).
    """
    n, dim = points.shape
    dist = np.empty(n)
    if p == np.inf and dim >= _BRUTE_KNN_MIN_DIM:  # its OpenMP threads are held at workers by the caller's scope
        search = NearestNeighbors(n_neighbors=k, algorithm="brute", metric="chebyshev").fit(points)
        return search.kneighbors(return_distance=True)[0][:, k - 1]  # each point's own distance 0 excluded
    if p == np.inf and dim >= _SKLEARN_KNN_MIN_DIM:
        tree = KDTree(points, leaf_size=_KNN_LEAF_SIZE, metric="chebyshev")
        order = np.asarray(tree.get_arrays()[1])
        queries = points[order]
        dist[order] = _in_chunks(lambda s: tree.query(queries[s], k=k + 1)[0][:, k], n, workers)
        return dist
    tree = cKDTree(points)
    order = tree.indices
    dist[order] = tree.query(points[order], k=[k + 1], p=p, workers=workers)[0][:, 0]
    return dist


def _count_strictly_within(points: np.ndarray, radius: np.ndarray, workers: int) -> np.ndarray:
    """For each point ``i``, the number of other points ``j`` with ``max|p_j - p_i| < radius[i]``."""
    if points.shape[1] == 1:
        return _count_sorted(points[:, 0], radius)
    return _count_kdtree(points, radius, workers)


def _count_kdtree(points: np.ndarray, radius: np.ndarray, workers: int) -> np.ndarray:
    """Strict max-norm range counts by scikit-learn's KD-tree, exact.

    Its count-only query adds a whole node at once when the node's box lies
    inside the ball, where scipy's ``cKDTree.query_ball_point`` visits every
    point: at ``n = 20000`` it was 2x (2-D) to 6.5x (10-D) faster with
    identical counts (``benchmarks/bench_mi.py``). The query is inclusive
    (``<=``), hence ``nextafter``: for floats, ``d < r`` is ``d <= nextafter(r, 0)``.
    Its box bounds are exact for the max-norm (``fl(b - p) <= fl(x - p)`` for
    ``b <= x``), so no point is pruned or added by rounding: the counts are those
    of a brute-force loop. Queries run in the tree's own order, in ``workers``
    threads (the query releases the GIL).
    """
    tree = KDTree(points, leaf_size=_LEAF_SIZE, metric="chebyshev")
    order = np.asarray(tree.get_arrays()[1])  # query in tree order, as in _kth_neighbour_distance
    queries, inner = points[order], np.nextafter(radius[order], 0.0)
    counts = np.empty(points.shape[0], dtype=np.int64)
    counts[order] = _in_chunks(lambda s: tree.query_radius(queries[s], inner[s], count_only=True),
                               points.shape[0], workers)
    return counts - 1


def _in_chunks(query, n: int, workers: int) -> np.ndarray:
    """``query(slice)`` over contiguous chunks of ``range(n)`` in ``workers`` threads, concatenated.

    scikit-learn's tree queries release the GIL, so the threads run in parallel.
    """
    chunks = _chunks(n, workers)
    if len(chunks) == 1:
        return query(chunks[0])
    with ThreadPoolExecutor(max_workers=len(chunks)) as pool:
        return np.concatenate(list(pool.map(query, chunks)))


def _chunks(n: int, workers: int) -> list[slice]:
    """Contiguous slices of ``range(n)``, one per worker thread (``-1``: one per core)."""
    count = (os.cpu_count() or 1) if workers == -1 else workers
    count = max(1, min(count, n // _MIN_CHUNK))
    edges = np.linspace(0, n, count + 1).round().astype(int)
    return [slice(a, b) for a, b in zip(edges[:-1], edges[1:])]


def _count_sorted(values: np.ndarray, radius: np.ndarray) -> np.ndarray:
    """Strict range counts on a line by binary search, exact in floating point.

    The wanted set is ``{j : -r < fl(v_j - v_i) < r}``; ``fl(v_j - v_i)`` is
    monotone in ``v_j``, so both ends are prefix counts of the sorted values,
    found by :func:`_prefix_count` with the very comparison a KD-tree or a
    brute-force loop makes; the counts are therefore identical to theirs.
    """
    order = np.argsort(values, kind="stable")
    s, r = values[order], radius[order]  # queries in sorted order: cache-friendly searches
    below_upper = _prefix_count(s, r, strict=True)
    at_or_below_lower = _prefix_count(s, -r, strict=False)
    counts = np.empty(values.shape[0], dtype=np.int64)
    counts[order] = below_upper - at_or_below_lower - 1
    return counts


def _prefix_count(s: np.ndarray, bound: np.ndarray, *, strict: bool) -> np.ndarray:
    """For each ``i``, the number of ``j`` with ``fl(s_j - s_i) < bound_i`` (``<=`` if not ``strict``).

    ``np.searchsorted`` on ``s_i + bound_i`` gives the answer up to rounding;
    a few vectorised one-place moves settle it. Entries still unsettled after
    them (long runs of tied values at a boundary) are finished by a
    vectorised bisection on the exact predicate.
    """
    less = np.less if strict else np.less_equal
    n = s.shape[0]
    idx = np.searchsorted(s, s + bound, side="left" if strict else "right").astype(np.int64)
    for _ in range(4):
        down = (idx > 0) & ~less(s[np.maximum(idx - 1, 0)] - s, bound)
        up = (idx < n) & less(s[np.minimum(idx, n - 1)] - s, bound)
        if not (down.any() or up.any()):
            return idx
        idx += up.astype(np.int64) - down
    rows = np.flatnonzero((idx > 0) & ~less(s[np.maximum(idx - 1, 0)] - s, bound)
                          | (idx < n) & less(s[np.minimum(idx, n - 1)] - s, bound))
    idx[rows] = _bisect_prefix(s, rows, bound[rows], less)
    return idx


def _bisect_prefix(s: np.ndarray, rows: np.ndarray, bound: np.ndarray, less) -> np.ndarray:
    """Vectorised bisection: the number of ``j`` with ``less(s_j - s_row, bound)``."""
    lo = np.zeros(rows.shape[0], dtype=np.int64)
    hi = np.full(rows.shape[0], s.shape[0], dtype=np.int64)
    while np.any(lo < hi):
        mid = (lo + hi) // 2
        holds = less(s[np.minimum(mid, s.shape[0] - 1)] - s[rows], bound) & (lo < hi)
        lo = np.where(holds, mid + 1, lo)
        hi = np.where(holds | (lo >= hi), hi, mid)
    return lo


# ---------------------------------------------------------------------------
# Input handling


def _paired_samples(x, y, k: int) -> tuple[np.ndarray, np.ndarray]:
    xs = as_samples(x, "x", min_n=k + 1)
    ys = as_samples(y, "y", min_n=k + 1)
    same_length("x", xs, "y", ys)
    return xs, ys


def _prepare(values: np.ndarray, name: str, standardize: bool, jitter, rng: np.random.Generator) -> np.ndarray:
    """Optionally scale the (non-constant) columns to unit variance, then add the tie-breaking jitter.

    Standardising first divides each column by a power of two (exact), so that
    its mean and variance cannot overflow (``x * 1e300``) and tiny columns
    (``x * 1e-300``) are not mistaken for constant ones: the estimate of ``x * s``
    is that of ``x`` for every scale ``s`` in float64's range, up to the
    rounding already in ``x * s``.
    """
    jitter = positive_float(jitter, "jitter", allow_zero=True)
    out = np.array(values, dtype=np.float64)
    if standardize:
        out = unit_scaled_columns(out)
        out = (out - out.mean(axis=0)) / out.std(axis=0)
    if jitter > 0:
        size = np.mean(np.abs(out), axis=0)
        size[size == 0] = 1.0
        out += jitter * size * rng.standard_normal(out.shape)
    return out


def _require_positive(radius: np.ndarray, name: str, k: int) -> None:
    if np.any(radius <= 0):
        raise ValueError(
            f"{name}: more than k={k} identical samples (zero neighbour distance); "
            "use jitter > 0 or remove the duplicates"
        )


def _thread_scope(workers: int):
    """The pools (BLAS/OpenMP, torch where imported) at ``workers`` threads during the searches; ``-1`` leaves them."""
    return hold_threads(None if workers == -1 else workers)


def _workers(workers) -> int:
    if isinstance(workers, bool) or not isinstance(workers, int) or workers == 0 or workers < -1:
        raise ValueError(f"workers must be a positive integer or -1 (all cores), got {workers!r}")
    return workers
