"""Generalisation bounds: closed forms, validation, and the inequalities between them."""

import math

import numpy as np
import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from ratebound.generalization import (
    cmi_bound,
    fcmi_bound,
    individual_sample,
    kl_bernoulli,
    kl_bound,
    kl_inverse,
    occam_bound,
    union_bound,
    xu_raginsky,
)

infos = st.floats(min_value=0.0, max_value=50.0, allow_nan=False)
sizes = st.integers(min_value=1, max_value=10_000)
sigmas = st.floats(min_value=1e-3, max_value=10.0)
probs = st.floats(min_value=0.0, max_value=1.0)


# ------------------------------------------------------------------ closed forms


def test_xu_raginsky_closed_form():
    assert xu_raginsky(0.5, 100) == pytest.approx(math.sqrt(2 * 0.25 * 0.5 / 100), rel=1e-15)
    assert xu_raginsky(2.0, 8, sigma=2.0) == pytest.approx(math.sqrt(2 * 4 * 2 / 8))
    assert xu_raginsky(0.0, 3) == 0.0


def test_union_is_xu_raginsky_at_log_bank_size():
    assert union_bound(16, 40, sigma=0.7) == pytest.approx(xu_raginsky(math.log(16), 40, sigma=0.7), rel=1e-15)
    assert union_bound(1, 5) == 0.0


def test_individual_sample_closed_form():
    mis = np.array([0.0, 0.02, 0.08])
    expected = (0 + math.sqrt(2 * 0.25 * 0.02) + math.sqrt(2 * 0.25 * 0.08)) / 3
    assert individual_sample(mis) == pytest.approx(expected, rel=1e-14)


def test_cmi_and_fcmi_closed_forms():
    assert cmi_bound(0.5, 100) == pytest.approx(0.1, rel=1e-14)
    assert fcmi_bound([0.005, 0.02]) == pytest.approx((0.1 + 0.2) / 2, rel=1e-14)
    # the trivial CMI n ln 2 gives sqrt(2 ln 2) > 1: never informative, but valid
    assert cmi_bound(10 * math.log(2), 10) == pytest.approx(math.sqrt(2 * math.log(2)))


def test_kl_inverse_at_zero_is_one_minus_exp():
    for c in (0.0, 1e-9, 0.3, 1.0, 5.0, 40.0):
        assert kl_inverse(0.0, c) == -math.expm1(-c)


def test_kl_inverse_edges():
    assert kl_inverse(0.3, 0.0) == 0.3
    assert kl_inverse(1.0, 2.0) == 1.0
    assert kl_inverse(0.5, 1e6) == pytest.approx(1.0, abs=1e-12)


def test_kl_bound_is_kl_inverse_of_maurer_budget():
    n, delta, comp, q = 200, 0.05, 1.3, 0.1
    budget = (comp + math.log(2 * math.sqrt(n) / delta)) / n
    assert kl_bound(q, comp, n, delta=delta) == kl_inverse(q, budget)


def test_occam_bound_budget_and_zero_error_closed_form():
    n, k, delta = 100, 50, 0.01
    eps = (math.log(k) + math.log(1 / delta)) / n
    assert occam_bound(0.0, k, n, delta=delta) == pytest.approx(-math.expm1(-eps), rel=1e-15)
    assert occam_bound(0.2, k, n, delta=delta) == kl_inverse(0.2, eps)


# -------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: xu_raginsky(-0.1, 10), "mi"),
        (lambda: xu_raginsky(float("nan"), 10), "mi"),
        (lambda: xu_raginsky(0.1, 0), "n"),
        (lambda: xu_raginsky(0.1, 2.5), "n"),
        (lambda: xu_raginsky(0.1, 10, sigma=0.0), "sigma"),
        (lambda: union_bound(0, 10), "n_hypotheses"),
        (lambda: individual_sample([0.1, -1.0]), "mis"),
        (lambda: individual_sample([]), "mis"),
        (lambda: cmi_bound(-1, 3), "cmi"),
        (lambda: fcmi_bound([[0.1]]), "per_sample_cmi"),
        (lambda: kl_inverse(1.5, 0.1), "q"),
        (lambda: kl_inverse(0.5, -0.1), "c"),
        (lambda: kl_bound(0.1, 1.0, 10, delta=1.0), "delta"),
        (lambda: kl_bound(0.1, 1.0, 10, delta=0.0), "delta"),
        (lambda: occam_bound(0.1, 3, 10, delta=-0.5), "delta"),
        (lambda: occam_bound(0.1, True, 10), "n_hypotheses"),
    ],
)
def test_bad_input_names_the_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()


# -------------------------------------------------------------------- properties


@given(st.lists(infos, min_size=1, max_size=30), sigmas)
@example([1.1125369292536007e-308], 0.001)  # a random draw: 2 sigma^2 I was subnormal, 4e-11 off
def test_individual_sample_at_most_xu_raginsky(mis, sigma):
    # for i.i.d. samples sum_i I(W;Z_i) <= I(S;W); at equality Jensen gives the ordering
    n = len(mis)
    total = float(np.sum(mis))
    assert individual_sample(mis, sigma=sigma) <= xu_raginsky(total, n, sigma=sigma) * (1 + 1e-12) + 1e-300


@given(st.integers(min_value=1, max_value=10**6), sizes, sigmas, st.floats(0.0, 1.0))
def test_xu_raginsky_at_most_union_when_mi_below_log_bank(k, n, sigma, frac):
    mi = frac * math.log(k)
    assert xu_raginsky(mi, n, sigma=sigma) <= union_bound(k, n, sigma=sigma) * (1 + 1e-12)


@given(probs, st.floats(min_value=0.0, max_value=20.0))
@example(0.0, 20.0)  # 1 - e^-20 is not representable closely enough for a naive check
def test_kl_inverse_is_inverse_of_kl(q, c):
    p = kl_inverse(q, c)
    assert q <= p <= 1.0
    # kl(q||p) <= c up to the rounding of p itself (two ulps back toward q)
    below = max(q, float(np.nextafter(np.nextafter(p, 0.0), 0.0)))
    assert kl_bernoulli(q, below) <= c * (1 + 1e-9) + 1e-12
    if p < 1.0 and c > 0:
        # p is the supremum: a little further exceeds the budget
        assert kl_bernoulli(q, min(1.0, p + 1e-6 * (1 - p) + 1e-12)) > c


@given(probs, st.floats(0.0, 10.0), st.floats(0.0, 10.0))
def test_kl_inverse_monotone_in_budget(q, c1, c2):
    lo, hi = sorted((c1, c2))
    assert kl_inverse(q, lo) <= kl_inverse(q, hi)


@given(probs, probs, st.floats(0.0, 10.0))
def test_kl_inverse_monotone_in_q(q1, q2, c):
    lo, hi = sorted((q1, q2))
    assert kl_inverse(lo, c) <= kl_inverse(hi, c) + 1e-12


@given(probs, st.floats(1e-3, 1.0), st.floats(0.0, 5.0))
def test_kl_inverse_bisection_matches_brute_force(q, width, c):
    p = kl_inverse(q, c)
    grid = np.linspace(q, 1.0, 2001)
    ok = [x for x in grid if kl_bernoulli(q, float(x)) <= c]
    assert p >= max(ok) - 1e-12
    step = (1.0 - q) / 2000
    assert p <= max(ok) + step + 1e-12


@given(probs, st.floats(0.0, 20.0), st.integers(1, 5000), st.floats(0.001, 0.5))
def test_kl_bound_above_train_risk_and_pinsker(q, comp, n, delta):
    bound = kl_bound(q, comp, n, delta=delta)
    budget = (comp + math.log(2 * math.sqrt(n) / delta)) / n
    assert q <= bound <= 1.0
    # Pinsker: kl(q||p) >= 2 (p - q)^2, so the bound is within sqrt(budget / 2) of q
    assert bound <= q + math.sqrt(budget / 2) + 1e-9


@given(probs, st.integers(1, 1000), st.integers(1, 5000))
def test_occam_monotone_in_bank_and_delta(q, k, n):
    assert occam_bound(q, k, n) <= occam_bound(q, k + 1, n)
    assert occam_bound(q, k, n, delta=0.1) <= occam_bound(q, k, n, delta=0.01)
    assume(q < 0.99)
    assert occam_bound(q, k, n) > q


def test_maurer_constant_holds_for_every_n():
    # kl_bound uses ln(2 sqrt(n) / delta): Maurer's xi(n) = sum_k C(n,k) (k/n)^k (1-k/n)^(n-k) <= 2 sqrt(n),
    # which he proves for n >= 8; checked here for the small n too (xi(1) = 2 is the tight case)
    from scipy.special import gammaln, xlogy

    for n in range(1, 300):
        k = np.arange(n + 1)
        log_terms = gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1) + xlogy(k, k / n) + xlogy(n - k, 1 - k / n)
        assert np.exp(log_terms).sum() <= 2 * math.sqrt(n) * (1 + 1e-12)


# ------------------------------------------------ extreme arguments (issue 15)

huge_sizes = st.one_of(st.integers(1, 10**6), st.integers(10**300, 10**1000))
extreme_infos = st.one_of(st.just(0.0), st.floats(1e-300, 1e300))
extreme_sigmas = st.floats(1e-300, 1e300)


def _finite_or_named_error(call, names):
    """The bound is a finite float >= 0, or a ValueError naming one of ``names``."""
    try:
        value = call()
    except ValueError as exc:
        assert any(name in str(exc) for name in names), exc
        return None
    assert isinstance(value, float) and math.isfinite(value) and value >= 0
    return value


def test_the_reported_overflows_now_have_values():
    # sigma = 1e200: sqrt(2 sigma^2 / 100) = sqrt(2) 1e199 (sigma**2 overflowed)
    assert xu_raginsky(1.0, 100, sigma=1e200) == pytest.approx(math.sqrt(2) * 1e199, rel=1e-13)
    # n = 10**400 cannot become a float; the bound sqrt(2 * 0.25 / 10**400) = 0.7071e-200 can
    assert xu_raginsky(1.0, 10**400) == pytest.approx(math.sqrt(0.5) * 1e-200, rel=1e-12)
    assert cmi_bound(1.0, 10**400) == pytest.approx(math.sqrt(2) * 1e-200, rel=1e-12)
    assert union_bound(10**400, 10**400) == pytest.approx(math.sqrt(0.5 * 400 * math.log(10)) * 1e-200, rel=1e-12)
    assert kl_bound(0.1, 1.0, 10**400) == pytest.approx(0.1, abs=1e-300)
    assert occam_bound(0.0, 10**400, 10**400) == pytest.approx(0.0, abs=1e-300)
    assert individual_sample([1e300, 1e300], sigma=1e100) == pytest.approx(math.sqrt(2) * 1e250, rel=1e-13)
    # per-sample informations with one mask bit are at most ln 2: a larger one is refused, not bounded
    with pytest.raises(ValueError, match="per_sample_cmi must be <= ln 2"):
        fcmi_bound([1e308, 1e308])
    assert fcmi_bound([math.log(2)] * 3) == pytest.approx(math.sqrt(2 * math.log(2)), rel=1e-13)


def test_a_bound_beyond_float64_is_a_value_error_naming_the_arguments():
    with pytest.raises(ValueError, match="mi, n and sigma"):
        xu_raginsky(1e300, 1, sigma=1e300)
    with pytest.raises(ValueError, match="mis and sigma"):
        individual_sample([1e300], sigma=1e300)
    with pytest.raises(ValueError, match="mi"):
        xu_raginsky(10**400, 100)  # an integer beyond float64 (was OverflowError)
    with pytest.raises(ValueError, match="train_risk"):
        kl_bound(10**400, 1.0, 10)


@given(mi=extreme_infos, n=huge_sizes, sigma=extreme_sigmas)
def test_xu_raginsky_finite_or_named_error(mi, n, sigma):
    value = _finite_or_named_error(lambda: xu_raginsky(mi, n, sigma=sigma), ["mi, n and sigma"])
    if value is not None and 0 < value < 1e300 and n < 10**6:
        assert value == pytest.approx(math.sqrt(2) * sigma * math.sqrt(mi) / math.sqrt(n), rel=1e-12)


@given(k=huge_sizes, n=huge_sizes, sigma=extreme_sigmas)
def test_union_bound_finite_or_named_error(k, n, sigma):
    _finite_or_named_error(lambda: union_bound(k, n, sigma=sigma), ["mi, n and sigma"])


@given(mis=st.lists(extreme_infos, min_size=1, max_size=5), sigma=extreme_sigmas)
def test_individual_sample_finite_or_named_error(mis, sigma):
    _finite_or_named_error(lambda: individual_sample(mis, sigma=sigma), ["mis and sigma"])


@given(cmi=extreme_infos, n=huge_sizes, per=st.lists(extreme_infos, min_size=1, max_size=5))
def test_cmi_bounds_finite(cmi, n, per):
    assert _finite_or_named_error(lambda: cmi_bound(cmi, n), []) is not None
    assert _finite_or_named_error(lambda: fcmi_bound([min(p, math.log(2)) for p in per]), []) is not None


@given(q=probs, comp=extreme_infos, k=huge_sizes, n=huge_sizes, delta=st.floats(1e-300, 0.999))
def test_pac_bayes_bounds_in_unit_interval(q, comp, k, n, delta):
    for value in (kl_bound(q, comp, n, delta=delta), occam_bound(q, k, n, delta=delta)):
        assert q - 1e-15 <= value <= 1.0
