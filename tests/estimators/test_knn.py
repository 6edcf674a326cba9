"""kNN estimators: peers (scikit-learn), closed forms, brute-force references, properties, errors."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import digamma, gammaln
from sklearn.feature_selection import mutual_info_classif, mutual_info_regression

from estimators.interface import MIEstimate, MIEstimator
from estimators.knn import (
    KSGEstimator,
    MixedEstimator,
    _count_kdtree,
    _count_sorted,
    _kth_neighbour_distance,
    kl_entropy,
    ksg_mi,
    ksg_mi_estimate,
    mixed_mi,
    mixed_mi_estimate,
)
from estimators.testing import (
    AdditiveUniformTask,
    dense_gaussian,
    gaussian_with_mi,
    sparse_gaussian,
    student_t,
)

# --- slow, obviously correct references (O(n^2), max-norm) --------------------------


def _chebyshev(a):
    return np.max(np.abs(a[:, None, :] - a[None, :, :]), axis=2)


def _brute_ksg(x, y, k):
    n = x.shape[0]
    dx, dy = _chebyshev(x), _chebyshev(y)
    dz = np.maximum(dx, dy)
    np.fill_diagonal(dz, np.inf)
    eps = np.sort(dz, axis=1)[:, k - 1]
    np.fill_diagonal(dx, np.inf)
    np.fill_diagonal(dy, np.inf)
    nx = np.sum(dx < eps[:, None], axis=1)
    ny = np.sum(dy < eps[:, None], axis=1)
    return digamma(k) + digamma(n) - np.mean(digamma(nx + 1)) - np.mean(digamma(ny + 1))


def _brute_mixed(z, t, k):
    keep = np.array([np.sum(t == label) > 1 for label in t])
    z, t = z[keep], t[keep]
    n = z.shape[0]
    d = _chebyshev(z)
    total = digamma(n)
    for i in range(n):
        same = (t == t[i]) & (np.arange(n) != i)
        k_i = min(k, int(same.sum()))
        radius = np.sort(d[i, same])[k_i - 1]
        m_i = int(np.sum(d[i] < radius))  # includes i itself (distance 0)
        total += (digamma(k_i) - digamma(same.sum() + 1) - digamma(m_i)) / n
    return total


def _brute_kl(x, k, metric):
    n, dim = x.shape
    diff = x[:, None, :] - x[None, :, :]
    dist = np.sqrt((diff**2).sum(axis=2)) if metric == "euclidean" else np.abs(diff).max(axis=2)
    np.fill_diagonal(dist, np.inf)
    rho = np.sort(dist, axis=1)[:, k - 1]
    log_v = dim / 2 * math.log(math.pi) - gammaln(dim / 2 + 1) if metric == "euclidean" else dim * math.log(2)
    return digamma(n) - digamma(k) + log_v + dim * np.mean(np.log(rho))


@pytest.mark.parametrize("k", [1, 3, 7])
@pytest.mark.parametrize("dims", [(1, 1), (2, 1), (2, 3)])
def test_ksg_kdtree_equals_brute_force(k, dims):
    rng = np.random.default_rng(10 * k + dims[0])
    x = rng.normal(size=(300, dims[0]))
    y = x[:, :1] ** 3 + rng.normal(size=(300, dims[1]))
    fast = ksg_mi_estimate(x, y, k=k, standardize=False, jitter=0).value
    assert fast == pytest.approx(_brute_ksg(x, y, k), rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("k", [1, 3, 5])
@pytest.mark.parametrize("dim", [1, 2])
def test_mixed_kdtree_equals_brute_force(k, dim):
    rng = np.random.default_rng(k + 10 * dim)
    t = rng.integers(0, 4, size=250)
    t[:3] = [7, 8, 9]  # three singleton labels, dropped by both
    t[3:5] = 11  # a label seen twice: k_i is clipped to 1
    z = t[:, None] * 0.4 + rng.normal(size=(250, dim))
    fast = mixed_mi_estimate(z, t, k=k, standardize=False, jitter=0)
    assert fast.value == pytest.approx(_brute_mixed(z, t, k), rel=1e-12, abs=1e-12)
    assert fast.n == 247
    assert any("dropped" in note for note in fast.notes)


@pytest.mark.parametrize("metric", ["euclidean", "chebyshev"])
@pytest.mark.parametrize("dim", [1, 3])
def test_kl_entropy_equals_brute_force(metric, dim):
    x = np.random.default_rng(dim).normal(size=(200, dim))
    fast = kl_entropy(x, k=4, metric=metric, jitter=0)
    assert fast == pytest.approx(_brute_kl(x, 4, metric), rel=1e-12)


def test_sorted_counts_equal_kdtree_counts_exactly_even_with_ties():
    rng = np.random.default_rng(0)
    for values in (rng.normal(size=3000), np.round(rng.normal(size=3000), 1), rng.uniform(size=3000) * 1e8):
        # radii equal to actual pairwise distances are the hard boundary case
        partner = rng.permutation(values.size)
        radius = np.abs(values[partner] - values) + (values[partner] == values)
        np.testing.assert_array_equal(_count_sorted(values, radius), _count_kdtree(values[:, None], radius, 1))
        radius2 = rng.exponential(0.1, size=values.size) * np.std(values)
        np.testing.assert_array_equal(_count_sorted(values, radius2), _count_kdtree(values[:, None], radius2, 1))


def test_sorted_counts_settle_long_tied_runs_at_a_rounding_boundary():
    """fl(1.7 - 0.6) == 1.1 but 1.7 < 0.6 + 1.1 in floats: the binary-search guess is off by the run."""
    values = np.array([0.6] + [1.7] * 50 + [0.0, 5.0])
    radius = np.full(values.size, 1.0)
    radius[0] = 1.7 - 0.6
    counts = _count_sorted(values, radius)
    np.testing.assert_array_equal(counts, _count_kdtree(values[:, None], radius, 1))
    assert counts[0] == 1  # only 0.0; the fifty 1.7s sit exactly at distance radius[0]


@pytest.mark.parametrize("dim", [2, 3, 5, 8])
@pytest.mark.parametrize("rounded", [False, True])
def test_kdtree_counts_equal_brute_force_exactly_with_ties_at_the_radius(dim, rounded):
    """Strict counts ``#{j != i : max|p_j - p_i| < r_i}``, radii set to actual distances (the boundary)."""
    rng = np.random.default_rng(dim)
    points = rng.normal(size=(1500, dim))
    if rounded:  # many exact ties in every coordinate
        points = np.round(points, 1)
    dist = _chebyshev(points)
    partner = rng.permutation(points.shape[0])
    radius = dist[np.arange(points.shape[0]), partner]
    radius[radius == 0] = 0.5
    for r in (radius, rng.exponential(0.5, size=points.shape[0])):
        brute = np.sum(dist < r[:, None], axis=1) - 1  # minus the point itself
        np.testing.assert_array_equal(_count_kdtree(points, r, 1), brute)


@pytest.mark.parametrize("dim", [6, 10, 16, 21])
def test_kth_neighbour_distance_in_many_dimensions_equals_brute_force(dim):
    """Max-norm kNN in 6+ dimensions runs on scikit-learn's tree, in 16+ on its exhaustive search: the same
    distances as a sort, any workers."""
    rng = np.random.default_rng(dim)
    points = np.round(rng.normal(size=(3000, dim)), 1)  # ties among the distances
    dist = _chebyshev(points)
    np.fill_diagonal(dist, np.inf)
    brute = np.sort(dist, axis=1)[:, 2]
    for workers in (1, 2):
        np.testing.assert_array_equal(_kth_neighbour_distance(points, 3, np.inf, workers), brute)


def test_kdtree_counts_equal_scipy_ckdtree_and_do_not_depend_on_workers():
    """The previous implementation (scipy's inclusive ball count at nextafter(r, 0)) as a reference."""
    from scipy.spatial import cKDTree

    rng = np.random.default_rng(7)
    points = np.round(rng.normal(size=(6000, 4)), 2)
    radius = rng.exponential(0.3, size=points.shape[0])
    ref = cKDTree(points).query_ball_point(points, np.nextafter(radius, 0.0), p=np.inf, return_length=True) - 1
    for workers in (1, 2, 3, -1):
        np.testing.assert_array_equal(_count_kdtree(points, radius, workers), ref)


# --- agreement with scikit-learn (same k, same scaling, its 1e-10 noise) --------------


@pytest.mark.parametrize("rho", [0.0, 0.3, 0.6, 0.9, 0.99])
def test_ksg_matches_sklearn_mutual_info_regression(rho):
    rng = np.random.default_rng(int(rho * 100))
    x = 3.0 * rng.normal(size=5000) + 1.0
    y = rho * x + math.sqrt(1 - rho**2) * 3.0 * rng.normal(size=5000)
    ours = ksg_mi(x, y, k=3, seed=1)
    theirs = mutual_info_regression(x[:, None], y, n_neighbors=3, random_state=1)[0]
    assert ours == pytest.approx(theirs, abs=0.01)
    # with continuous data the two differ only by the 1e-10 jitter draws
    assert ours == pytest.approx(theirs, abs=1e-6)


@pytest.mark.parametrize("n_labels, shift", [(2, 0.0), (2, 1.0), (3, 0.5), (5, 2.0)])
def test_mixed_matches_sklearn_mutual_info_classif(n_labels, shift):
    rng = np.random.default_rng(n_labels)
    t = rng.integers(0, n_labels, size=5000)
    z = 2.0 * (shift * t + rng.standard_t(5, size=5000))
    ours = mixed_mi(z, t, k=3, seed=0)
    theirs = mutual_info_classif(z[:, None], t, n_neighbors=3, random_state=0)[0]
    assert ours == pytest.approx(theirs, abs=0.01)
    assert ours == pytest.approx(theirs, abs=1e-6)


# --- accuracy against the known-MI samplers --------------------------------------------


@pytest.mark.parametrize(
    "task",
    [
        gaussian_with_mi(0.5),
        gaussian_with_mi(1.5),
        student_t(1, 1, dof=3, n_interacting=1, correlation=0.6),
        student_t(1, 1, dof=5),
        AdditiveUniformTask(width=0.5),
        AdditiveUniformTask(width=2.0),
    ],
    ids=lambda t: t.name,
)
def test_ksg_within_0_05_nats_of_truth_in_1d(task):
    x, y = task.sample(5000, seed=11)
    assert ksg_mi(x, y, seed=0) == pytest.approx(task.mutual_information, abs=0.05)


def test_ksg_multivariate_gaussian_close_to_truth():
    task = dense_gaussian(2, 2, correlation=0.4)
    x, y = task.sample(5000, seed=3)
    assert ksg_mi(x, y, seed=0) == pytest.approx(task.mutual_information, abs=0.05)


def test_mixed_mi_close_to_truth_for_a_gaussian_mixture():
    """T uniform on {0, 1}, Z | T ~ N(2T, 1): I = h(Z) - h(Z|T) by quadrature."""
    from scipy import integrate, stats

    mix = lambda v: 0.5 * stats.norm.pdf(v) + 0.5 * stats.norm.pdf(v, loc=2)  # noqa: E731
    h_z = integrate.quad(lambda v: -mix(v) * math.log(mix(v)), -12, 14)[0]
    truth = h_z - 0.5 * math.log(2 * math.pi * math.e)
    rng = np.random.default_rng(5)
    t = rng.integers(0, 2, size=5000)
    z = 2.0 * t + rng.normal(size=5000)
    assert mixed_mi(z, t, seed=0) == pytest.approx(truth, abs=0.03)


@pytest.mark.parametrize("metric", ["euclidean", "chebyshev"])
def test_kl_entropy_of_gaussian_and_uniform(metric):
    rng = np.random.default_rng(2)
    cov = np.array([[2.0, 0.6], [0.6, 0.5]])
    g = rng.multivariate_normal([0, 0], cov, size=5000)
    h_gauss = 0.5 * math.log((2 * math.pi * math.e) ** 2 * np.linalg.det(cov))
    assert kl_entropy(g, metric=metric, seed=0) == pytest.approx(h_gauss, abs=0.05)
    u = rng.uniform(-1.0, 2.0, size=(5000, 1))  # h = ln 3
    assert kl_entropy(u, metric=metric, seed=0) == pytest.approx(math.log(3.0), abs=0.03)
    assert kl_entropy(u, metric=metric, seed=0, base=2) == pytest.approx(math.log2(3.0), abs=0.05)


# --- properties ---------------------------------------------------------------------


@settings(max_examples=25)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(4, 80), k=st.integers(1, 3), rho=st.floats(-0.99, 0.99))
def test_ksg_properties(seed, n, k, rho):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 1))
    y = rho * x + rng.normal(size=(n, 1))
    est = ksg_mi_estimate(x, y, k=k, seed=seed)
    assert math.isfinite(est.value) and math.isfinite(est.stderr)
    assert ksg_mi(x, y, k=k, seed=seed) == max(0.0, est.value)
    # symmetric (without jitter, whose draws depend on the argument order)
    a = ksg_mi_estimate(x, y, k=k, jitter=0).value
    assert ksg_mi_estimate(y, x, k=k, jitter=0).value == pytest.approx(a, abs=1e-12)
    # invariant to affine maps of each variable when standardising
    assert ksg_mi_estimate(5 * x - 3, -0.1 * y, k=k, jitter=0).value == pytest.approx(a, abs=1e-9)
    # bits are nats / ln 2
    assert ksg_mi_estimate(x, y, k=k, seed=seed, base=2).value == pytest.approx(est.value / math.log(2))


def test_ksg_independent_data_is_near_zero_and_clipped():
    rng = np.random.default_rng(8)
    x, y = rng.normal(size=(2000, 2)), rng.normal(size=(2000, 1))
    raw = ksg_mi_estimate(x, y, seed=0)
    assert abs(raw.value) < 0.03
    assert raw.ci_low < 0 < raw.ci_high
    assert ksg_mi(x, y, seed=0) >= 0


def test_ksg_estimate_fields_and_reproducibility():
    x, y = gaussian_with_mi(1.0, 2).sample(1000, seed=0)
    est = ksg_mi_estimate(x, y, k=4, seed=1)
    assert isinstance(est, MIEstimate)
    assert est.method == "ksg(k=4)" and est.n == 1000 and est.base == math.e
    assert 0 < est.stderr < 0.1
    assert est.ci_low < est.value < est.ci_high
    assert est.ci_high - est.value == pytest.approx(1.959963984540054 * est.stderr)
    assert ksg_mi_estimate(x, y, k=4, seed=1) == est
    assert ksg_mi_estimate(x, y, k=4, seed=1, workers=-1).value == est.value


def test_jitter_breaks_ties_in_discretised_data():
    rng = np.random.default_rng(3)
    x = rng.integers(0, 5, size=(500, 1)).astype(float)
    y = x + rng.integers(0, 2, size=(500, 1))
    assert math.isfinite(ksg_mi(x, y, seed=0))
    with pytest.raises(ValueError, match="identical"):
        ksg_mi(x, y, jitter=0)
    with pytest.raises(ValueError, match="identical"):
        kl_entropy(x, jitter=0)


def test_standardize_matters_only_through_the_geometry():
    x, y = sparse_gaussian(2, 2, n_interacting=1, correlation=0.8).sample(3000, seed=2)
    x = x * np.array([1.0, 1000.0])  # an uninformative coordinate with a huge scale
    truth = sparse_gaussian(2, 2, n_interacting=1, correlation=0.8).mutual_information
    assert ksg_mi(x, y, seed=0) == pytest.approx(truth, abs=0.06)
    assert ksg_mi(x, y, seed=0, standardize=False) < truth - 0.2  # the max-norm only sees the big axis


def test_estimator_objects_follow_the_protocol():
    x, y = gaussian_with_mi(0.7).sample(800, seed=4)
    ksg = KSGEstimator(k=5, seed=2)
    assert isinstance(ksg, MIEstimator)
    assert ksg.estimate(x, y) == ksg_mi(x, y, k=5, seed=2)
    assert ksg.estimate_with_info(x, y).value == ksg_mi_estimate(x, y, k=5, seed=2).value
    t = (x[:, 0] > 0).astype(int)
    mixed = MixedEstimator(base=2)
    assert isinstance(mixed, MIEstimator)
    assert mixed.estimate(y, t) == mixed_mi(y, t, base=2)
    assert mixed.estimate_with_info(y, t).base == 2.0


# --- bad input -------------------------------------------------------------------------


def test_bad_input_raises_value_error_naming_the_argument():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(50, 2)), rng.normal(size=50)
    with pytest.raises(ValueError, match="x and y must have the same number"):
        ksg_mi(x, y[:40])
    with pytest.raises(ValueError, match="y contains NaN"):
        ksg_mi(x, np.where(np.arange(50) == 3, np.nan, y))
    with pytest.raises(ValueError, match="x needs at least 4 samples"):
        ksg_mi(x[:3], y[:3])
    with pytest.raises(ValueError, match="k must be"):
        ksg_mi(x, y, k=0)
    with pytest.raises(ValueError, match="base"):
        ksg_mi(x, y, base=1)
    with pytest.raises(ValueError, match="jitter"):
        ksg_mi(x, y, jitter=-1.0)
    with pytest.raises(ValueError, match="workers"):
        ksg_mi(x, y, workers=0)
    with pytest.raises(ValueError, match="t must hold integer labels"):
        mixed_mi(y, y)
    with pytest.raises(ValueError, match="z and t must have the same number"):
        mixed_mi(y, np.zeros(49, dtype=int))
    with pytest.raises(ValueError, match="t must contain some label at least twice"):
        mixed_mi(y, np.arange(50))
    with pytest.raises(ValueError, match="z contains NaN"):
        mixed_mi(np.full(50, np.nan), np.zeros(50, dtype=int))
    with pytest.raises(ValueError, match="metric"):
        kl_entropy(x, metric="manhattan")
    with pytest.raises(ValueError, match="x needs at least 4 samples"):
        kl_entropy(x[:3])


# --- slow: large-sample checks of the Student-t closed form ------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    "task",
    [student_t(1, 1, dof=3), student_t(1, 1, dof=2, n_interacting=1, correlation=0.5), student_t(2, 1, dof=4)],
    ids=lambda t: t.name,
)
def test_student_t_closed_form_against_large_sample_ksg(task):
    """KSG's bias shrinks with n; at n = 400k it confirms the Arellano-Valle formula to ~0.01."""
    x, y = task.sample(400_000, seed=0)
    # heavy tails make the sample std erratic, so the raw (unit-scale) data are used
    assert ksg_mi(x, y, seed=0, standardize=False) == pytest.approx(task.mutual_information, abs=0.015)


def test_the_option_list_is_one_signature_for_every_function_and_estimator():
    """ksg_mi, ksg_mi_estimate, mixed_mi, mixed_mi_estimate take the same keywords, the estimators' fields."""
    import dataclasses
    import inspect

    from estimators import knn

    keywords = None
    for fn in (knn.ksg_mi, knn.ksg_mi_estimate, knn.mixed_mi, knn.mixed_mi_estimate):
        params = inspect.signature(fn).parameters
        mine = [(p.name, p.default) for p in params.values() if p.kind is inspect.Parameter.KEYWORD_ONLY]
        assert keywords is None or mine == keywords, fn.__name__
        keywords = mine
        assert [p.name for p in params.values()][:2] in (["x", "y"], ["z", "t"])
    assert dict(keywords)["k"] == 3 and dict(keywords)["seed"] is None and dict(keywords)["base"] == math.e
    for cls in (knn.KSGEstimator, knn.MixedEstimator):
        assert [(f.name, f.default) for f in dataclasses.fields(cls)] == keywords
    with pytest.raises(TypeError, match="kk"):
        knn.ksg_mi(np.arange(5.0), np.arange(5.0), kk=3)
