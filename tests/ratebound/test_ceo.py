"""Gaussian CEO: water-filling against Oohama's closed form, a numeric optimiser and cvxpy."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize

from ratebound.ceo import (
    aggregation_sum_rate,
    gaussian_ceo_sum_rate,
    gradient_statistics,
    independent_sum_rate,
    vector_gaussian_ceo_sum_rate,
)

variances = st.floats(min_value=0.05, max_value=20.0)


def oohama_equal_noise(sx, sn, n_workers, d):
    r"""Equal noise variances: every worker active, 1/mu = 1/sn - (1/D - 1/sx)/L, so

    R = 1/2 ln(sx/D) + L/2 ln( L D sx / (L D sx - sn (sx - D)) ).
    """
    return 0.5 * math.log(sx / d) + 0.5 * n_workers * math.log(
        n_workers * d * sx / (n_workers * d * sx - sn * (sx - d))
    )


def numeric_sum_rate(sx, noise, d):
    """Minimise sum r_i + 1/2 ln(sx/D) under the precision constraint by SLSQP (obvious, slow)."""
    a = 1.0 / np.asarray(noise)
    target = 1.0 / d - 1.0 / sx

    def precision(r):
        return np.sum(a * -np.expm1(-2 * r)) - target

    x0 = np.full(a.size, 5.0)
    res = minimize(lambda r: r.sum(), x0, jac=lambda r: np.ones_like(r), method="SLSQP",
                   bounds=[(0, 50)] * a.size, constraints=[{"type": "ineq", "fun": precision}],
                   options={"ftol": 1e-13, "maxiter": 500})
    # SLSQP may stop on "positive directional derivative" at its tolerance floor: accept
    # any end point feasible to 1e-7 (its value is then within ~1e-7 of an upper bound on the optimum,
    # far inside the comparisons' tolerance); a random draw stopped 6e-9 short of feasible
    assert res.success or precision(res.x) >= -1e-7, res.message
    return 0.5 * math.log(sx / d) + res.fun


def test_matches_oohama_equal_noise_closed_form():
    for sx, sn, workers, d in [(1.0, 0.5, 2, 0.5), (4.0, 2.0, 5, 0.9), (2.0, 10.0, 20, 1.5)]:
        res = gaussian_ceo_sum_rate(sx, [sn] * workers, d)
        assert res.sum_rate == pytest.approx(oohama_equal_noise(sx, sn, workers, d), rel=1e-12)
        assert res.rates.sum() == pytest.approx(res.sum_rate, rel=1e-12)


def test_matches_numeric_optimisation_with_unequal_noise():
    cases = [(2.0, [0.5, 1.0, 3.0], 0.3), (1.0, [0.1, 5.0], 0.2), (3.0, [1.0, 1.0, 8.0, 0.4], 0.25)]
    for sx, noise, d in cases:
        exact = gaussian_ceo_sum_rate(sx, noise, d).sum_rate
        assert exact == pytest.approx(numeric_sum_rate(sx, noise, d), rel=1e-5, abs=1e-7)


def test_water_filling_silences_noisy_workers():
    # a very noisy worker stays silent at a lenient distortion
    res = gaussian_ceo_sum_rate(1.0, [0.1, 100.0], 0.5)
    assert res.rates[1] == 0.0
    assert res.water_level < 100.0
    single = gaussian_ceo_sum_rate(1.0, [0.1], 0.5)
    assert res.sum_rate == pytest.approx(single.sum_rate, rel=1e-12)


def test_zero_rate_above_source_variance_and_error_below_minimum():
    res = gaussian_ceo_sum_rate(2.0, [1.0, 1.0], 2.0)
    assert res.sum_rate == 0.0 and np.all(res.rates == 0)
    d_min = 1 / (1 / 2.0 + 2.0)
    with pytest.raises(ValueError, match="distortion"):
        gaussian_ceo_sum_rate(2.0, [1.0, 1.0], d_min)
    with pytest.raises(ValueError, match="noise_vars"):
        gaussian_ceo_sum_rate(2.0, [1.0, -1.0], 1.0)
    with pytest.raises(ValueError, match="source_var"):
        gaussian_ceo_sum_rate(float("nan"), [1.0], 1.0)


@given(variances, st.lists(variances, min_size=1, max_size=6), st.floats(0.05, 0.95), st.floats(0.05, 0.95))
def test_sum_rate_decreasing_in_distortion(sx, noise, f1, f2):
    d_min = 1 / (1 / sx + sum(1 / s for s in noise))
    d1, d2 = sorted(d_min + f * (sx - d_min) for f in (f1, f2))
    assert gaussian_ceo_sum_rate(sx, noise, d1).sum_rate >= gaussian_ceo_sum_rate(sx, noise, d2).sum_rate - 1e-12


@given(variances, st.lists(variances, min_size=1, max_size=6), variances, st.floats(0.05, 0.95))
def test_sum_rate_decreasing_in_workers(sx, noise, extra, f):
    d_min = 1 / (1 / sx + sum(1 / s for s in noise))
    d = d_min + f * (sx - d_min)
    fewer = gaussian_ceo_sum_rate(sx, noise, d).sum_rate
    more = gaussian_ceo_sum_rate(sx, [*noise, extra], d).sum_rate
    assert more <= fewer * (1 + 1e-12) + 1e-12


@given(variances, variances, st.integers(1, 50), st.floats(0.01, 10.0), st.integers(1, 1000))
def test_aggregation_gain_non_negative(sx, sn, workers, excess, dims):
    d = sn / workers * (1 + excess)
    gain = independent_sum_rate(sx, sn, workers, d, dims=dims) - aggregation_sum_rate(sx, sn, workers, d, dims=dims)
    assert gain >= -1e-9 * dims
    if workers == 1:
        assert gain == pytest.approx(0.0, abs=1e-9 * dims)


def test_aggregation_is_unbiased_water_filling():
    # unbiased: the CEO water-filling with target 1/D (no prior precision), plus 1/2 ln(1 + sx/D)
    sx, sn, workers, d = 2.0, 1.0, 4, 0.5
    mu = 1 / (1 / sn - 1 / (workers * d))
    expected = 0.5 * math.log1p(sx / d) + workers * 0.5 * math.log(mu / sn)
    assert aggregation_sum_rate(sx, sn, workers, d, dims=3) == pytest.approx(3 * expected, rel=1e-13)
    with pytest.raises(ValueError, match="distortion"):
        aggregation_sum_rate(sx, sn, workers, sn / workers)


def test_vector_program_agrees_with_scalar_on_1d():
    for sx, noise, d in [(1.0, [0.5, 0.5], 0.5), (2.0, [0.5, 1.0, 3.0], 0.3), (1.0, [0.1, 100.0], 0.5)]:
        scalar = gaussian_ceo_sum_rate(sx, noise, d)
        vec = vector_gaussian_ceo_sum_rate([[sx]], [[[1.0]]] * len(noise), [[[s]] for s in noise], [[d]])
        assert vec.status.startswith("optimal")
        assert vec.sum_rate == pytest.approx(scalar.sum_rate, rel=1e-5, abs=1e-6)
        assert vec.slack < 1e-5
        assert abs(vec.lmi_slack) < 1e-5


def test_vector_independent_components_add_up():
    # a diagonal problem is two scalar problems side by side
    kx = np.diag([2.0, 1.0])
    noise = [np.diag([0.5, 1.0]), np.diag([1.0, 0.3])]
    d = np.diag([0.3, 0.25])
    vec = vector_gaussian_ceo_sum_rate(kx, [np.eye(2), np.eye(2)], noise, d)
    expected = (gaussian_ceo_sum_rate(2.0, [0.5, 1.0], 0.3).sum_rate
                + gaussian_ceo_sum_rate(1.0, [1.0, 0.3], 0.25).sum_rate)
    assert vec.sum_rate == pytest.approx(expected, rel=1e-5)
    assert vec.rates.sum() == pytest.approx(vec.sum_rate, rel=1e-12)


def test_vector_correlated_source_is_achievable_and_bounded():
    kx = np.array([[2.0, 0.8], [0.8, 1.0]])
    gains = [np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]]), np.eye(2)]
    noise = [[[0.2]], [[0.3]], np.eye(2)]
    d = np.array([[0.4, 0.0], [0.0, 0.3]])
    vec = vector_gaussian_ceo_sum_rate(kx, gains, noise, d)
    assert vec.sum_rate > 0 and vec.slack >= 0
    # the centralised bound: no scheme beats the rate-distortion of the full observation
    assert vec.sum_rate >= 0.5 * math.log(np.linalg.det(kx) / np.linalg.det(d)) - 1e-6
    assert vec.lmi_slack > -1e-6


def test_vector_rejects_bad_input():
    with pytest.raises(ValueError, match="source_cov"):
        vector_gaussian_ceo_sum_rate([[1.0, 2.0], [2.0, 1.0]], [np.eye(2)], [np.eye(2)], np.eye(2))
    with pytest.raises(ValueError, match="gains"):
        vector_gaussian_ceo_sum_rate(np.eye(2), [np.eye(3)], [np.eye(3)], np.eye(2))
    with pytest.raises(ValueError, match="distortion_cov"):
        vector_gaussian_ceo_sum_rate(np.eye(2), [np.eye(2)], [np.eye(2)], np.eye(3))
    with pytest.raises(ValueError, match="achievable|did not solve"):
        vector_gaussian_ceo_sum_rate([[1.0]], [[[1.0]]], [[[1.0]]], [[0.4]])


def test_gradient_statistics_recovers_variances():
    rng = np.random.default_rng(0)
    steps, workers, params = 4000, 8, 3
    source = rng.normal(0, np.sqrt([2.0, 0.5, 1.0]), size=(steps, 1, params))
    grads = source + rng.normal(0, np.sqrt([1.0, 4.0, 0.25]), size=(steps, workers, params))
    stats = gradient_statistics(grads)
    assert stats.source_var == pytest.approx([2.0, 0.5, 1.0], rel=0.1)
    assert stats.noise_var == pytest.approx([1.0, 4.0, 0.25], rel=0.05)
    assert stats.pooled_noise_var == pytest.approx(stats.noise_var.mean())
    assert (stats.steps, stats.workers, stats.params) == (steps, workers, params)
    with pytest.raises(ValueError, match="grads"):
        gradient_statistics(np.zeros((1, 4, 2)))


@settings(max_examples=20)
@given(st.floats(0.2, 5.0), st.lists(st.floats(0.1, 5.0), min_size=1, max_size=4), st.floats(0.1, 0.9))
def test_water_filling_matches_slsqp_on_random_problems(sx, noise, f):
    d_min = 1 / (1 / sx + sum(1 / s for s in noise))
    d = d_min + f * (sx - d_min)
    exact = gaussian_ceo_sum_rate(sx, noise, d).sum_rate
    assert exact == pytest.approx(numeric_sum_rate(sx, noise, d), rel=1e-4, abs=1e-6)


@given(variances, variances, st.integers(1, 40), st.floats(0.01, 10.0))
def test_aggregation_is_oohama_at_the_shrunk_distortion(sx, sn, workers, excess):
    # an unbiased estimate of variance D, shrunk towards 0, has MSE D' = (1/sx + 1/D)^-1, and the
    # Gaussian scheme reaches the CEO function there: both directions of aggregation_sum_rate
    d = sn / workers * (1 + excess)
    mmse = 1 / (1 / sx + 1 / d)
    expected = oohama_equal_noise(sx, sn, workers, mmse)
    assert aggregation_sum_rate(sx, sn, workers, d) == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert aggregation_sum_rate(sx, sn, workers, d) == pytest.approx(
        gaussian_ceo_sum_rate(sx, [sn] * workers, mmse).sum_rate, rel=1e-9, abs=1e-12)


def test_aggregation_matches_numeric_unbiased_scheme():
    # min sum_i I(Y_i;U_i|X) by SLSQP under sum_i (1 - e^{-2 r_i}) / sn = 1/D, plus I(X;U) = 1/2 ln(1 + sx/D)
    for sx, sn, workers, d in [(2.0, 1.0, 4, 0.5), (1.0, 0.5, 10, 0.1), (4.0, 2.0, 3, 1.0)]:
        a = np.full(workers, 1.0 / sn)

        def precision(r):
            return np.sum(a * -np.expm1(-2 * r)) - 1.0 / d

        res = minimize(lambda r: r.sum(), np.full(workers, 5.0), jac=lambda r: np.ones_like(r),
                       method="SLSQP", bounds=[(0, 50)] * workers,
                       constraints=[{"type": "ineq", "fun": precision}], options={"ftol": 1e-13})
        assert precision(res.x) >= -1e-7
        numeric = 0.5 * math.log1p(sx / d) + res.fun
        assert aggregation_sum_rate(sx, sn, workers, d) == pytest.approx(numeric, rel=1e-5)


def test_independent_rate_is_full_rate_of_the_symmetric_descriptions():
    # each worker sends I(Y;U) = 1/2 ln(Var U / Var(U|Y)) with Var U = sx + L D, Var(U|Y) = q = L D - sn
    sx, sn, workers, d = 3.0, 1.0, 5, 0.4
    q = workers * d - sn
    per_worker = 0.5 * math.log((sx + sn + q) / q)
    assert independent_sum_rate(sx, sn, workers, d, dims=2) == pytest.approx(2 * workers * per_worker, rel=1e-13)
