"""Estimates that must not depend on the scale of the data, and degenerate inputs the MI estimators agree on.

Each test here failed on the code before issue 15: ``ksg_mi(x * 1e300, y)``
returned 1e-16 (an overflowed variance), ``ksg_mi(x * 1e-300, y)`` called ``x``
constant, ``estimate_mi`` on fewer than 1280 pairs gave a NaN interval,
``mixed_mi`` with ``k >= n`` returned 0.0 where ``ksg_mi`` raised, and constant
columns gave a ValueError, a NaN interval or -8e-6 depending on the estimator.
"""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from estimators.knn import kl_entropy, ksg_mi, ksg_mi_estimate, mixed_mi, mixed_mi_estimate
from estimators.testing import gaussian_with_mi
from estimators.variational import estimate_mi

#: Decimal exponents of the scales tried: 1e-300 .. 1e300.
exponents = st.floats(-300.0, 300.0, allow_nan=False)


@pytest.fixture(scope="module")
def pairs():
    x, y = gaussian_with_mi(0.38).sample(800, seed=0)
    return x, y


@pytest.fixture(scope="module")
def reference(pairs):
    x, y = pairs
    labels = (y[:, 0] > 0).astype(int)
    return {
        "ksg": ksg_mi_estimate(x, y, seed=0).value,
        "mixed": mixed_mi_estimate(x, labels, seed=0).value,
        "entropy": kl_entropy(x, seed=0),
        "labels": labels,
    }


@settings(max_examples=40)
@given(e=exponents, scale_y=st.booleans())
def test_knn_estimates_do_not_depend_on_the_scale(pairs, reference, e, scale_y):
    x, y = pairs
    s = 10.0**e
    ys = y * s if scale_y else y
    # x * s differs from x by the rounding of the product only: the estimates agree to rounding
    assert ksg_mi_estimate(x * s, ys, seed=0).value == pytest.approx(reference["ksg"], abs=1e-12)
    assert mixed_mi_estimate(x * s, reference["labels"], seed=0).value == pytest.approx(reference["mixed"], abs=1e-12)


@settings(max_examples=40)
@given(e=exponents)
def test_kl_entropy_shifts_by_exactly_log_scale(pairs, reference, e):
    x, _ = pairs
    s = 10.0**e
    assert kl_entropy(x * s, seed=0) == pytest.approx(reference["entropy"] + math.log(s), abs=1e-9)


def test_the_reported_extreme_scales():
    x, y = gaussian_with_mi(0.38).sample(2000, seed=0)
    base = ksg_mi(x, y, seed=0)
    assert base == pytest.approx(0.38, abs=0.05)
    for s in (1e300, 1e-300, 1e-200, 1e200):
        assert ksg_mi(x * s, y, seed=0) == pytest.approx(base, abs=1e-12)
        assert ksg_mi(x, y * s, seed=0) == pytest.approx(base, abs=1e-12)
    t = (y[:, 0] > 0).astype(int)
    assert mixed_mi(x * 1e300, t, seed=0) == pytest.approx(mixed_mi(x, t, seed=0), abs=1e-12)
    assert mixed_mi(x * 1e-300, t, seed=0) == pytest.approx(mixed_mi(x, t, seed=0), abs=1e-12)


NEURAL = dict(steps=20, batch_size=64, seed=0, critic_options=dict(hidden=16, depth=1))


@settings(max_examples=6)
@given(e=st.sampled_from([-300.0, -150.0, -20.0, 20.0, 150.0, 300.0]) | exponents)
def test_estimate_mi_does_not_depend_on_the_scale(pairs, e):
    x, y = pairs
    s = 10.0**e
    ref = estimate_mi(x, y, **NEURAL)
    got = estimate_mi(x * s, y * s, **NEURAL)
    # the float32 critic sees the same standardised values up to a rounding of x * s
    assert got.value == pytest.approx(ref.value, abs=1e-4)
    assert got.stderr == pytest.approx(ref.stderr, abs=1e-4)


def test_estimate_mi_without_standardising_refuses_what_float32_cannot_hold(pairs):
    x, y = pairs
    with pytest.raises(ValueError, match="x has entries beyond float32"):
        estimate_mi(x * 1e300, y, standardize=False, **NEURAL)
    with pytest.raises(ValueError, match="y column 0 loses all its spread in float32"):
        estimate_mi(x, y * 1e-300, standardize=False, **NEURAL)


@pytest.mark.parametrize("n", [40, 300, 1000, 1270])
def test_estimate_mi_on_small_samples_has_a_finite_interval(n):
    x, y = gaussian_with_mi(0.5).sample(n, seed=1)
    est = estimate_mi(x, y, **{**NEURAL, "batch_size": 128})  # under 1280 pairs: one held-out batch
    assert math.isfinite(est.stderr) and est.stderr > 0
    assert est.ci_low < est.value < est.ci_high
    assert any("jackknife" in note for note in est.notes)


def test_two_held_out_batches_use_students_t():
    x, y = gaussian_with_mi(0.5).sample(1300, seed=1)  # 260 held-out pairs: two batches of 128
    est = estimate_mi(x, y, batch_size=128, steps=20, seed=0, critic_options=dict(hidden=16, depth=1))
    assert (est.ci_high - est.value) / est.stderr == pytest.approx(12.7062047, rel=1e-6)  # t(0.975, 1 df)
    assert not any("jackknife" in note for note in est.notes)


def test_too_few_held_out_pairs_is_an_error():
    x, y = gaussian_with_mi(0.5).sample(15, seed=1)  # holdout 0.2: 3 held-out pairs
    with pytest.raises(ValueError, match="held-out pairs"):
        estimate_mi(x, y, **NEURAL)


# ------------------------------------------------------------ degenerate input


def _constant_cases():
    x, y = gaussian_with_mi(0.5).sample(300, seed=2)
    return x, y, np.full(300, 3.0)


def test_a_constant_variable_gives_exactly_zero_in_every_estimator():
    x, y, c = _constant_cases()
    labels = (y[:, 0] > 0).astype(int)
    estimates = [ksg_mi_estimate(c, y), ksg_mi_estimate(x, c), mixed_mi_estimate(c, labels),
                 mixed_mi_estimate(x, np.zeros(300, dtype=int)), estimate_mi(c, y, **NEURAL),
                 estimate_mi(x, c, **NEURAL)]
    for est in estimates:
        assert (est.value, est.stderr, est.ci_low, est.ci_high) == (0.0, 0.0, 0.0, 0.0)
        assert any("exactly 0" in note for note in est.notes)
    assert ksg_mi(c, y) == mixed_mi(c, labels) == 0.0


def test_a_constant_column_is_dropped_in_every_estimator():
    x, y, c = _constant_cases()
    wide = np.column_stack([x, c])
    labels = (y[:, 0] > 0).astype(int)
    assert ksg_mi_estimate(wide, y, seed=0).value == ksg_mi_estimate(x, y, seed=0).value
    assert mixed_mi_estimate(wide, labels, seed=0).value == mixed_mi_estimate(x, labels, seed=0).value
    assert estimate_mi(wide, y, **NEURAL).value == pytest.approx(estimate_mi(x, y, **NEURAL).value, abs=1e-6)
    for est in (ksg_mi_estimate(wide, y), mixed_mi_estimate(wide, labels), estimate_mi(wide, y, **NEURAL)):
        assert any("columns [1] are constant" in note for note in est.notes)


def test_kl_entropy_of_a_constant_column_is_an_error():
    _, _, c = _constant_cases()
    with pytest.raises(ValueError, match="constant column"):
        kl_entropy(c)


@pytest.mark.parametrize("k", [5, 6, 50])
def test_k_at_least_n_is_the_same_error_for_ksg_and_mixed(k):
    x, y = gaussian_with_mi(0.5).sample(5, seed=3)
    with pytest.raises(ValueError, match="x needs at least"):
        ksg_mi(x, y, k=k)
    with pytest.raises(ValueError, match="z needs at least"):
        mixed_mi(x, [0, 0, 1, 1, 1], k=k)


@pytest.mark.parametrize("lr", [1e300, 1e39, math.inf, 10**400])
def test_an_unstorable_learning_rate_is_an_error_naming_lr(lr):
    x, y = gaussian_with_mi(0.5).sample(100, seed=3)
    with pytest.raises(ValueError, match="lr "):
        estimate_mi(x, y, lr=lr, **NEURAL)
