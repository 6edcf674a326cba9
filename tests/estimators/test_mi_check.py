"""Tests of the default's copula check and bias-aware interval (estimators._mi_check and auto_mi_estimate)."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from estimators import auto_mi_estimate, copula_ksg_estimate, copula_mi_estimate, gaussian_mi_estimate
from estimators._mi_check import canonical_order, elliptical_reference, subsample_limit
from estimators.testing import AdditiveUniformTask, beyond_normal_tasks, student_t_mi_correction

# --------------------------------------------------------------------------- the reference sample


def _corr(d: int, r: float) -> np.ndarray:
    return (1 - r) * np.eye(d) + r * np.ones((d, d))


def test_gaussian_reference_has_the_closed_form_mi():
    corr = _corr(4, 0.5)
    sample = elliptical_reference(corr, None, 20_000, np.random.default_rng(0))
    truth = 0.5 * (2 * np.linalg.slogdet(corr[:2, :2])[1] - np.linalg.slogdet(corr)[1])
    est = gaussian_mi_estimate(sample[:, :2], sample[:, 2:])
    assert abs(est.value - truth) < 4 * est.stderr
    assert np.cov(sample, rowvar=False) == pytest.approx(corr, abs=0.03)


def test_student_reference_has_the_closed_form_mi():
    dof = 2.0
    sample = elliptical_reference(np.eye(4), dof, 5000, np.random.default_rng(1))
    truth = student_t_mi_correction(dof, 2, 2)  # identity scatter: the t term alone
    est = copula_mi_estimate(sample[:, :2], sample[:, 2:], family="student", bootstrap=0)
    assert est.value == pytest.approx(truth, rel=0.1)
    assert abs(gaussian_mi_estimate(sample[:, :2], sample[:, 2:]).value) < truth / 2  # not visible to a Gaussian


# --------------------------------------------------------------------------- the subsample extrapolation


def _power_law(limit: float, c: float, a: float):
    return lambda x, y: limit - c * x.shape[0] ** -a


@settings(max_examples=50, deadline=None)
@given(limit=st.floats(-5, 5), c=st.floats(-50, 50), a=st.floats(0.05, 1.5), n=st.integers(400, 3000))
def test_a_power_law_bias_is_extrapolated_exactly(limit, c, a, n):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(n, 1)), rng.normal(size=(n, 2))
    result = subsample_limit(x, y, _power_law(limit, c, a), exponent=a, min_size=50, rng=rng)
    assert result.sizes == tuple(n // m for m in (1, 2, 4, 8))
    assert result.limit == pytest.approx(limit, abs=1e-7 * (1 + abs(c)))


def test_a_slower_bias_than_assumed_is_extrapolated_short():
    x = y = np.zeros((1600, 1))
    result = subsample_limit(x, y, _power_law(1.0, 2.0, 0.25), exponent=0.5, min_size=50,
                             rng=np.random.default_rng(0))
    assert result.values[0] < result.limit < 1.0  # above the estimate at n, below the truth


def test_subsamples_are_disjoint_and_cover_the_rows():
    n = 800
    x = np.arange(n, dtype=float)[:, None]
    seen: dict[int, list] = {}

    def record(a, b):
        seen.setdefault(a.shape[0], []).extend(a[:, 0].tolist())
        return 0.0

    subsample_limit(x, -x, record, exponent=0.5, min_size=50, rng=np.random.default_rng(3))
    assert sorted(seen) == [100, 200, 400, 800]
    for rows in seen.values():
        assert sorted(rows) == list(range(n))


def test_too_few_rows_give_no_limit():
    x = np.zeros((150, 1))
    result = subsample_limit(x, x, lambda a, b: 1.0, exponent=0.5, min_size=100, rng=np.random.default_rng(0))
    assert result.sizes == (150,) and math.isnan(result.limit)


def test_the_split_ignores_row_order_and_monotone_maps():
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(1000, 2)), rng.normal(size=(1000, 1))
    y = y + x[:, :1]
    order = rng.permutation(1000)
    ksg = lambda a, b: copula_ksg_estimate(a, b, seed=0).value  # noqa: E731
    results = [subsample_limit(a, b, ksg, exponent=1 / 3, min_size=100, rng=np.random.default_rng(0))
               for a, b in ((x, y), (x[order], y[order]), (np.exp(x), y**3))]
    assert results[1].values == pytest.approx(results[0].values, abs=1e-6)
    assert results[2].values == pytest.approx(results[0].values, abs=1e-12)
    assert np.array_equal(np.sort(canonical_order(x[order])), np.arange(1000))


# --------------------------------------------------------------------------- the default after a rejection


def _task(name):
    return next(t for t in beyond_normal_tasks() if t.name == name)


def test_default_keeps_a_copula_that_fits():
    task = _task("dense-normal-3x3")
    x, y = task.sample(2000, seed=1)
    est = auto_mi_estimate(np.exp(x), y, seed=0)
    assert est.method == "auto:gaussian-copula"
    assert any("agrees with KSG on the fitted copula" in note for note in est.notes)
    assert est.ci_low < task.mutual_information < est.ci_high


@pytest.mark.parametrize("name", ["additive-uniform-1x1-eps0.1", "swiss-roll-2x1", "spiral(2pair-normal-3x3)"])
def test_default_rejects_a_copula_that_misfits_and_widens_upward(name):
    task = _task(name)
    x, y = task.sample(2000, seed=2)
    est = auto_mi_estimate(x, y, seed=0)
    assert est.method == "auto:copula-ksg(k=5)"
    knn = copula_ksg_estimate(x, y, seed=0).value
    assert any("(bias-corrected)" in note for note in est.notes)
    assert est.ci_low < min(est.value, knn) and est.ci_high > max(est.value, knn)
    # widened toward more MI only: the margin above the larger point is at least the margin below the smaller
    assert est.ci_high - max(est.value, knn) >= min(est.value, knn) - est.ci_low - 1e-12
    assert est.ci_low < task.mutual_information < est.ci_high
    assert all(math.isfinite(v) for v in (est.value, est.stderr, est.ci_low, est.ci_high))


def test_default_after_rejection_is_invariant_to_monotone_maps_and_row_order():
    x, y = _task("spiral(2pair-normal-3x3)").sample(1200, seed=3)
    plain = auto_mi_estimate(x, y, seed=0)
    mapped = auto_mi_estimate(np.exp(x), np.arcsinh(y) * 5 - 2, seed=0)
    order = np.random.default_rng(1).permutation(len(x))
    shuffled = auto_mi_estimate(x[order], y[order], seed=0)
    assert plain.method == mapped.method == shuffled.method == "auto:copula-ksg(k=5)"
    # the row order moves only KSG's tie-breaking jitter (normal scores share one grid, so distances tie)
    for other, tol in ((mapped, 1e-12), (shuffled, 1e-3)):
        assert (other.value, other.ci_low, other.ci_high) == pytest.approx(
            (plain.value, plain.ci_low, plain.ci_high), abs=tol)


def test_default_interval_is_in_the_base_asked_for():
    x, y = AdditiveUniformTask(width=0.5).sample(1000, seed=0)
    nats, bits = auto_mi_estimate(x, y, seed=0), auto_mi_estimate(x, y, seed=0, base=2)
    assert bits.method == nats.method == "auto:copula-ksg(k=5)"
    assert (bits.value, bits.ci_low, bits.ci_high) == pytest.approx(
        (nats.value / math.log(2), nats.ci_low / math.log(2), nats.ci_high / math.log(2)), rel=1e-12)


@pytest.mark.slow
def test_default_interval_covers_over_seeds_where_the_copula_misfits():
    covered = 0
    for task in (AdditiveUniformTask(width=0.2), _task("swiss-roll-2x1")):
        for seed in range(8):
            x, y = task.sample(2000, seed=500 + seed)
            est = auto_mi_estimate(x, y, seed=seed)
            covered += est.ci_low <= task.mutual_information <= est.ci_high
    assert covered >= 14
