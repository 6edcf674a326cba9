"""Samplers with known mutual information: shapes, moments, closed forms, invariances."""

import math

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from scipy import integrate, stats

from estimators.testing import (
    AdditiveUniformTask,
    GaussianTask,
    Spiral,
    StudentTTask,
    Task,
    TransformedTask,
    asinh,
    benchmark_tasks,
    dense_gaussian,
    gaussian_mi,
    gaussian_with_mi,
    half_cube,
    normal_cdf,
    sparse_gaussian,
    student_t,
    student_t_mi_correction,
    transform_task,
)

TASKS = benchmark_tasks()


@pytest.mark.parametrize("task", TASKS, ids=lambda t: t.name)
def test_every_task_samples_with_declared_shapes_and_is_reproducible(task):
    assert isinstance(task, Task)
    x, y = task.sample(50, seed=3)
    assert x.shape == (50, task.dim_x) and y.shape == (50, task.dim_y)
    assert x.dtype == np.float64 and np.all(np.isfinite(x)) and np.all(np.isfinite(y))
    x2, y2 = task.sample(50, seed=3)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
    x3, _ = task.sample(50, seed=4)
    assert not np.array_equal(x, x3)
    assert task.mutual_information > 0


def test_seed_accepts_a_generator_and_leaves_global_state_alone():
    task = gaussian_with_mi(1.0, 2)
    state = np.random.get_state()[1].copy()
    a = task.sample(10, seed=np.random.default_rng(7))
    b = task.sample(10, seed=7)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(np.random.get_state()[1], state)


def test_benchmark_suite_has_at_least_ten_distinct_tasks_with_transforms_and_t():
    names = [t.name for t in TASKS]
    assert len(set(names)) == len(names) >= 10
    assert sum(isinstance(t, TransformedTask) for t in TASKS) >= 4
    assert sum(isinstance(t, StudentTTask) for t in TASKS) >= 2


# --- Gaussian -------------------------------------------------------------------


@pytest.mark.parametrize(
    "task",
    [
        dense_gaussian(2, 3, correlation=0.3, within=0.2),
        sparse_gaussian(3, 2, n_interacting=2, correlation=-0.7),
        gaussian_with_mi(3.0, 4),
    ],
    ids=lambda t: t.name,
)
def test_gaussian_empirical_covariance_matches_declared(task):
    x, y = task.sample(40_000, seed=0)
    emp = np.cov(np.hstack([x, y]), rowvar=False)
    np.testing.assert_allclose(emp, task.covariance, atol=0.03)


def test_gaussian_mi_of_one_pair_is_minus_half_log_one_minus_rho_squared():
    for rho in (-0.9, -0.2, 0.0, 0.5, 0.99):
        task = sparse_gaussian(1, 1, correlation=rho) if rho else None
        expected = -0.5 * math.log1p(-rho * rho)
        assert gaussian_mi([[1, rho], [rho, 1]], 1) == pytest.approx(expected, abs=1e-12)
        if task is not None:
            assert task.mutual_information == pytest.approx(expected, abs=1e-12)


def test_gaussian_mi_is_invariant_to_scaling_each_block():
    cov = dense_gaussian(2, 2, correlation=0.3, within=0.1).covariance
    scale = np.diag([2.0, 0.5, 3.0, 7.0])
    assert gaussian_mi(scale @ cov @ scale, 2) == pytest.approx(gaussian_mi(cov, 2), abs=1e-12)


def staircase_accuracy(mi: float, dim: int) -> float:
    r"""How closely float64 can carry ``mi`` nats in ``dim`` Gaussian pairs (derived, not fitted).

    Each pair has :math:`\rho = \sqrt{1 - e^{-2m/d}}`, computed (expm1, sqrt) and
    stored with a relative error :math:`\epsilon` of about one unit roundoff
    :math:`u = 2^{-53}`. A pair's MI :math:`-\frac12\ln(1-\rho^2)` then moves by
    :math:`\frac{\rho^2}{1-\rho^2}\epsilon \le e^{2m/d} u`, summed over the ``d``
    pairs: at ``m = 11.77``, ``d = 1`` that is 1.8e-6 nats, which no sampler storing
    :math:`\rho` in float64 can beat (the draw ``gaussian_with_mi(11.765625, 1)``
    was off by 1.3e-6 and failed the old ``rel=1e-7``). ``gaussian_mi``'s
    log-determinants add about ``u`` per coordinate and per nat of
    :math:`|\ln\det\Sigma| = 2m`. The measured error over 30 000 random ``(m, d)``
    stays below 1.2 times ``(d e^{2m/d} + m + d) u``; the factor 4 is the margin.
    """
    u = 2.0**-53
    return 4 * u * (dim * math.exp(2 * mi / dim) + 2 * mi + 2 * dim)


@given(mi=st.floats(0.0, 12.0), dim=st.integers(1, 25))
@example(mi=11.765625, dim=1)  # failed with rel=1e-7 on a random draw
@example(mi=12.0, dim=1)
def test_staircase_carries_exactly_the_requested_mi(mi, dim):
    task = gaussian_with_mi(mi, dim)
    assert abs(task.mutual_information - mi) <= staircase_accuracy(mi, dim)
    assert task.dim_x == task.dim_y == dim


def test_staircase_accuracy_is_not_loose_where_it_matters():
    # the tolerance is far below any estimator's error, and tight for small correlations
    assert staircase_accuracy(11.765625, 1) < 1e-5
    assert staircase_accuracy(2.0, 20) < 1e-13


def test_sparse_gaussian_mi_counts_only_interacting_pairs():
    rho = 0.6
    task = sparse_gaussian(5, 4, n_interacting=3, correlation=rho)
    assert task.mutual_information == pytest.approx(-1.5 * math.log(1 - rho**2), abs=1e-12)


def test_gaussian_task_rejects_bad_covariances_and_splits():
    with pytest.raises(ValueError, match="correlation"):
        dense_gaussian(3, 3, correlation=0.5)  # |rho| * sqrt(9) > 1
    with pytest.raises(ValueError, match="covariance"):
        GaussianTask([[1.0, 2.0], [2.0, 1.0]], 1)
    with pytest.raises(ValueError, match="symmetric"):
        GaussianTask([[1.0, 0.1], [0.2, 1.0]], 1)
    with pytest.raises(ValueError, match="dim_x"):
        GaussianTask(np.eye(3), 3)
    with pytest.raises(ValueError, match="n_interacting"):
        sparse_gaussian(2, 3, n_interacting=3)
    with pytest.raises(ValueError, match="correlation"):
        sparse_gaussian(2, 2, correlation=1.0)
    with pytest.raises(ValueError, match="mi"):
        gaussian_with_mi(-1.0, 2)
    with pytest.raises(ValueError, match="n"):
        gaussian_with_mi(1.0).sample(0)


def test_task_arrays_are_read_only():
    task = gaussian_with_mi(1.0, 2)
    with pytest.raises(ValueError):
        task.covariance[0, 0] = 5.0


# --- Student-t ------------------------------------------------------------------


def _t_entropy(scale, dof):
    return stats.multivariate_t(shape=scale, df=dof).entropy()


@pytest.mark.parametrize("dof", [1.0, 2.5, 7.0, 40.0])
@pytest.mark.parametrize("dims", [(1, 1), (2, 1), (2, 3)])
def test_student_t_mi_equals_entropy_decomposition_from_scipy(dof, dims):
    dx, dy = dims
    rng = np.random.default_rng(dx * 10 + dy)
    a = rng.normal(size=(dx + dy, dx + dy))
    scale = a @ a.T + 0.5 * np.eye(dx + dy)
    task = StudentTTask(scale, dx, dof)
    expected = _t_entropy(scale[:dx, :dx], dof) + _t_entropy(scale[dx:, dx:], dof) - _t_entropy(scale, dof)
    assert task.mutual_information == pytest.approx(expected, abs=1e-8)


def test_student_t_correction_is_positive_and_vanishes_with_many_dof():
    values = [student_t_mi_correction(nu, 2, 3) for nu in (1, 3, 10, 100, 1e5)]
    assert all(v > 0 for v in values)
    assert all(a > b for a, b in zip(values, values[1:]))
    assert values[-1] < 1e-6


def test_student_t_uncorrelated_pair_has_mi_of_shared_scale_by_numerical_integral():
    """1x1 t with identity scale: I = E[log p(x,y) - log p(x) - log p(y)] by 2-D quadrature."""
    nu = 3.0
    c2 = math.lgamma((nu + 2) / 2) - math.lgamma(nu / 2) - math.log(nu * math.pi)
    c1 = math.lgamma((nu + 1) / 2) - math.lgamma(nu / 2) - 0.5 * math.log(nu * math.pi)

    def integrand(y, x):
        lj = c2 - (nu + 2) / 2 * math.log1p((x * x + y * y) / nu)
        lx = c1 - (nu + 1) / 2 * math.log1p(x * x / nu)
        ly = c1 - (nu + 1) / 2 * math.log1p(y * y / nu)
        return math.exp(lj) * (lj - lx - ly)

    # the integrand is even in x and in y: integrate one quadrant, times 4
    value, _ = integrate.dblquad(integrand, 0, 200, 0, 200, epsabs=1e-10)
    assert 4 * value == pytest.approx(student_t(1, 1, dof=nu).mutual_information, abs=2e-4)


def test_student_t_marginal_is_t_distributed():
    task = student_t(1, 1, dof=4.0, n_interacting=1, correlation=0.5)
    x, y = task.sample(20_000, seed=1)
    assert stats.kstest(x[:, 0], stats.t(df=4.0).cdf).pvalue > 1e-3
    assert stats.kstest(y[:, 0], stats.t(df=4.0).cdf).pvalue > 1e-3


# --- additive uniform noise --------------------------------------------------------


@pytest.mark.parametrize("width", [0.05, 0.3, 1.0, 2.0, 7.5])
def test_additive_uniform_closed_form_matches_numerical_entropy(width):
    """I = h(Y) - ln w with h(Y) integrated from the trapezoidal density of U(0,1) + U(-w/2, w/2)."""

    def density(y):
        overlap = min(1.0, y + width / 2) - max(0.0, y - width / 2)
        return max(overlap, 0.0) / width

    def neg_p_log_p(y):
        p = density(y)
        return -p * math.log(p) if p > 0 else 0.0

    lo, hi = -width / 2, 1 + width / 2
    breaks = sorted({lo, hi, width / 2, 1 - width / 2})
    h_y = sum(integrate.quad(neg_p_log_p, a, b)[0] for a, b in zip(breaks, breaks[1:]) if b > a)
    task = AdditiveUniformTask(width=width)
    assert task.mutual_information == pytest.approx(h_y - math.log(width), abs=1e-8)


def test_additive_uniform_support_and_dimension_scaling():
    task = AdditiveUniformTask(width=0.2, dim=3)
    x, y = task.sample(5000, seed=2)
    assert x.min() >= 0 and x.max() <= 1
    assert np.abs(y - x).max() <= 0.1
    assert task.mutual_information == pytest.approx(3 * AdditiveUniformTask(width=0.2).mutual_information)
    with pytest.raises(ValueError, match="width"):
        AdditiveUniformTask(width=0.0)


# --- transforms -----------------------------------------------------------------


def test_elementwise_transforms_are_strictly_increasing():
    v = np.linspace(-6, 6, 2001)
    for f in (normal_cdf, half_cube, asinh):
        assert np.all(np.diff(f(v)) > 0), f.__name__


def test_spiral_preserves_norm_is_invertible_and_volume_preserving():
    spiral = Spiral(speed=0.7)
    v = np.random.default_rng(0).normal(size=(200, 4))
    w = spiral(v)
    np.testing.assert_allclose(np.linalg.norm(w, axis=1), np.linalg.norm(v, axis=1), rtol=1e-12)
    np.testing.assert_allclose(_unspiral(w, 0.7), v, atol=1e-12)
    # Jacobian determinant by central differences at a few points
    for point in v[:5]:
        jac = np.empty((4, 4))
        for j in range(4):
            step = np.zeros(4)
            step[j] = 1e-6
            jac[:, j] = (spiral(point[None] + step) - spiral(point[None] - step))[0] / 2e-6
        assert np.linalg.det(jac) == pytest.approx(1.0, abs=1e-6)
    assert not np.allclose(w, v)


def _unspiral(w, speed):
    """Inverse spiral: rotate back by the angle of the (unchanged) radius."""
    theta = -speed * np.sum(w * w, axis=1)
    out = w.copy()
    c, s = np.cos(theta), np.sin(theta)
    for a in range(0, w.shape[1] - 1, 2):
        out[:, a] = c * w[:, a] - s * w[:, a + 1]
        out[:, a + 1] = s * w[:, a] + c * w[:, a + 1]
    return out


@pytest.mark.parametrize("kind", ["normal_cdf", "half_cube", "asinh", "spiral"])
def test_transformed_task_keeps_mi_and_changes_the_samples(kind):
    base = dense_gaussian(2, 2, correlation=0.4)
    task = transform_task(base, kind)
    assert task.mutual_information == base.mutual_information
    x0, y0 = base.sample(100, seed=5)
    x, y = task.sample(100, seed=5)
    assert x.shape == x0.shape and not np.allclose(x, x0) and not np.allclose(y, y0)
    assert kind.split("_")[0] in task.name


def test_transform_applied_to_one_side_only():
    base = gaussian_with_mi(1.0, 2)
    task = transform_task(base, "asinh", apply_to="y")
    x0, y0 = base.sample(30, seed=1)
    x, y = task.sample(30, seed=1)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_allclose(y, np.arcsinh(y0))


def test_transform_task_rejects_bad_requests():
    with pytest.raises(ValueError, match="transform"):
        transform_task(gaussian_with_mi(1.0), "cube")
    with pytest.raises(ValueError, match="spiral"):
        transform_task(gaussian_with_mi(1.0, 1), "spiral")
    with pytest.raises(ValueError, match="apply_to"):
        transform_task(gaussian_with_mi(1.0, 2), "asinh", apply_to="z")


# --- KSG sees the same MI through the transforms -----------------------------------


@pytest.mark.parametrize("kind", ["normal_cdf", "half_cube", "asinh"])
def test_ksg_agrees_on_elementwise_transformed_gaussian(kind):
    from estimators.knn import ksg_mi

    base = gaussian_with_mi(1.0, 1)
    x0, y0 = base.sample(5000, seed=21)
    x, y = transform_task(base, kind).sample(5000, seed=21)
    assert ksg_mi(x, y, seed=0) == pytest.approx(base.mutual_information, abs=0.05)
    assert ksg_mi(x, y, seed=0) == pytest.approx(ksg_mi(x0, y0, seed=0), abs=0.03)


def test_ksg_on_spiral_is_biased_down_but_close():
    """The spiral bends the joint density; KSG at n = 5000 loses ~0.1 nats (Czyz et al. 2023)."""
    from estimators.knn import ksg_mi

    task = transform_task(dense_gaussian(2, 2, correlation=0.4), "spiral")
    x, y = task.sample(5000, seed=22)
    estimate = ksg_mi(x, y, seed=0)
    assert task.mutual_information - 0.2 < estimate < task.mutual_information + 0.05


def test_testing_module_exports_every_strategy_and_sampler():
    from estimators import _samplers, _strategies, testing

    assert set(testing.__all__) == set(_samplers.__all__) | set(_strategies.__all__)
    assert all(getattr(testing, name) is not None for name in testing.__all__)


# --- the 40 tasks of Czyz et al. (beyond_normal_tasks) ----------------------------

from estimators.testing import (  # noqa: E402
    NormalMixtureQuantile,
    SwissRollTask,
    beyond_normal_tasks,
    swiss_roll,
    wiggly_x,
    wiggly_y,
)

BEYOND = beyond_normal_tasks()


def test_beyond_normal_has_the_forty_tasks_with_distinct_names_and_declared_shapes():
    assert len(BEYOND) == 40 and len({t.name for t in BEYOND}) == 40
    for task in BEYOND:
        assert isinstance(task, Task)
        x, y = task.sample(64, seed=3)
        x2, _ = task.sample(64, seed=3)
        assert x.shape == (64, task.dim_x) and y.shape == (64, task.dim_y)
        assert np.all(np.isfinite(x)) and np.all(np.isfinite(y)) and np.array_equal(x, x2)
        assert 0.17 < task.mutual_information < 1.72


def test_beyond_normal_truths_are_the_papers_closed_forms():
    truth = {t.name: t.mutual_information for t in BEYOND}
    # bivariate normal 0.75, 2-pair of correlation 0.8, additive noise of half-width eps
    assert truth["normal-1x1-rho0.75"] == pytest.approx(-0.5 * math.log(1 - 0.75**2), rel=1e-12)
    assert truth["2pair-normal-25x25"] == pytest.approx(-math.log(1 - 0.8**2), rel=1e-12)
    assert truth["additive-uniform-1x1-eps0.1"] == pytest.approx(0.1 - math.log(0.2), rel=1e-12)
    assert truth["additive-uniform-1x1-eps0.75"] == pytest.approx(1 / (4 * 0.75), rel=1e-12)
    # dense: every correlation 0.5; eigenvalues of the blocks and of the joint matrix
    for d in (2, 25, 50):
        logdet = lambda m, r: (m - 1) * math.log(1 - r) + math.log(1 + (m - 1) * r)  # noqa: E731
        expected = 0.5 * (2 * logdet(d, 0.5) - logdet(2 * d, 0.5))
        assert truth[f"dense-normal-{d}x{d}"] == pytest.approx(expected, rel=1e-10)
    assert truth["dense-normal-25x25"] == pytest.approx(1.29, abs=0.005)  # as issue 17 quotes


def _bmi_style_student_entropy(k, dof):
    """Differential entropy of a standard k-variate t (Arellano-Valle et al. eq. 7, as bmi writes it)."""
    from scipy.special import digamma, gammaln

    half = 0.5 * (dof + k)
    return (-gammaln(half) + gammaln(0.5 * dof) + 0.5 * k * math.log(dof * math.pi)
            + half * (digamma(half) - digamma(0.5 * dof)))


@pytest.mark.parametrize("dof", [1, 2, 3, 5])
@pytest.mark.parametrize("dims", [(1, 1), (2, 2), (3, 3), (5, 5)])
def test_student_t_correction_equals_the_entropy_difference(dof, dims):
    dx, dy = dims
    expected = (_bmi_style_student_entropy(dx, dof) + _bmi_style_student_entropy(dy, dof)
                - _bmi_style_student_entropy(dx + dy, dof))
    assert student_t_mi_correction(dof, dx, dy) == pytest.approx(expected, rel=1e-10)


def test_student_identity_mi_by_monte_carlo_of_the_log_density_ratio():
    task = student_t(2, 2, dof=1)
    x, y = task.sample(200_000, seed=8)
    joint = stats.multivariate_t(loc=np.zeros(4), shape=np.eye(4), df=1)
    margin = stats.multivariate_t(loc=np.zeros(2), shape=np.eye(2), df=1)
    ratio = joint.logpdf(np.column_stack([x, y])) - margin.logpdf(x) - margin.logpdf(y)
    assert ratio.mean() == pytest.approx(task.mutual_information, abs=4 * ratio.std() / math.sqrt(len(ratio)))


def test_wiggly_maps_are_strictly_increasing():
    v = np.linspace(-30, 30, 200_001)
    for f, floor in ((wiggly_x, 0.16), (wiggly_y, 0.53)):
        slope = np.diff(f(v)) / np.diff(v)
        assert slope.min() > floor


def test_mixture_quantile_inverts_the_mixture_cdf_and_samples_the_mixture():
    q = NormalMixtureQuantile((0.3, 0.7), (0.0, 5.0))
    u = np.linspace(1e-6, 1 - 1e-6, 1001)
    t = q(u)
    assert np.all(np.diff(t) > 0)
    np.testing.assert_allclose(q.cdf(t), u, atol=1e-12)
    draws = q(np.random.default_rng(0).uniform(size=20_000))
    assert stats.kstest(draws, q.cdf).pvalue > 0.01
    with pytest.raises(ValueError, match="weights"):
        NormalMixtureQuantile((0.5, -0.5), (0.0, 1.0))


def test_swiss_roll_is_injective_and_keeps_the_base_truth():
    v = np.random.default_rng(1).uniform(size=(500, 1))
    w = swiss_roll(v)
    t = 21.0 * np.linalg.norm(w, axis=1)  # the radius gives t = 3 pi (1 + 2 v) / 2
    np.testing.assert_allclose((t / (1.5 * np.pi) - 1) / 2, v[:, 0], atol=1e-12)
    base = transform_task(dense_gaussian(1, 1, correlation=0.75), "normal_cdf")
    task = SwissRollTask(base)
    assert task.mutual_information == base.mutual_information and (task.dim_x, task.dim_y) == (2, 1)
    with pytest.raises(ValueError, match="dim_x"):
        SwissRollTask(gaussian_with_mi(1.0, 2))


def test_spiral_in_one_plane_turns_only_that_plane_and_preserves_volume():
    spiral = Spiral(1 / 3, plane=(1, 2))
    v = np.random.default_rng(4).normal(size=(100, 4))
    w = spiral(v)
    np.testing.assert_array_equal(w[:, [0, 3]], v[:, [0, 3]])
    np.testing.assert_allclose(np.linalg.norm(w, axis=1), np.linalg.norm(v, axis=1), rtol=1e-12)
    theta = -spiral.speed * np.sum(w * w, axis=1)  # invert by the (unchanged) radius
    back = w.copy()
    back[:, 1] = np.cos(theta) * w[:, 1] - np.sin(theta) * w[:, 2]
    back[:, 2] = np.sin(theta) * w[:, 1] + np.cos(theta) * w[:, 2]
    np.testing.assert_allclose(back, v, atol=1e-12)
    point = v[0]
    jac = np.column_stack([(spiral(point[None] + e) - spiral(point[None] - e))[0] / 2e-6
                           for e in 1e-6 * np.eye(4)])
    assert np.linalg.det(jac) == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(ValueError, match="plane"):
        Spiral(0.5, plane=(1, 1))
    with pytest.raises(ValueError, match="plane"):
        Spiral(0.5, plane=(0, 5))(v)


def _base_chain(task):
    """The task under all its transforms, and whether every transform on the way is coordinate-wise monotone."""
    monotone = True
    while isinstance(task, (TransformedTask, SwissRollTask)):
        monotone &= isinstance(task, TransformedTask) and not isinstance(task.x_transform, Spiral)
        task = task.base
    return task, monotone


@pytest.mark.parametrize("task", [t for t in BEYOND if isinstance(t, (TransformedTask, SwissRollTask))],
                         ids=lambda t: t.name)
def test_transformed_truth_is_the_base_truth_and_monotone_maps_keep_the_ranks(task):
    """MI invariance: every map is injective, so the truth is the base task's; coordinate-wise
    increasing maps keep every rank, so a rank-based estimate is exactly the base sample's."""
    from estimators import copula_mi_estimate

    base, monotone = _base_chain(task)
    assert task.mutual_information == base.mutual_information
    if monotone:
        x0, y0 = base.sample(400, seed=6)
        x, y = task.sample(400, seed=6)
        assert copula_mi_estimate(x, y).value == pytest.approx(copula_mi_estimate(x0, y0).value, abs=1e-12)
