"""The D-INL bound and the selection information I(S;W) from selected hypotheses."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from estimators.discrete import bank_mi
from ratebound.generalization import xu_raginsky
from ratebound.rdg import RDGBound, rdg_bound, selection_mi


def test_rdg_bound_terms_add_up():
    b = rdg_bound(distortion_rate=0.1, slack=0.02, mi_sw=0.5, n=100, sigma=0.5)
    assert isinstance(b, RDGBound)
    assert b.generalization == xu_raginsky(0.5, 100)
    assert b.total == pytest.approx(0.1 + 0.02 + 0.05, rel=1e-15)
    assert (b.distortion_rate, b.slack) == (0.1, 0.02)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"slack": -0.2}, "slack"),  # the training loss 0.1 - 0.2 would be negative
        ({"distortion_rate": -0.1}, "distortion_rate"),  # regression: gave a negative risk bound
        ({"mi_sw": -1.0}, "mi_sw"),
        ({"n": 0}, "n"),
        ({"sigma": -1.0}, "sigma"),
        ({"distortion_rate": float("nan")}, "distortion_rate"),
        ({"distortion_rate": "0.1"}, "distortion_rate"),
    ],
)
def test_rdg_bound_validation(kwargs, name):
    args = {"distortion_rate": 0.1, "slack": 0.0, "mi_sw": 0.1, "n": 10, **kwargs}
    with pytest.raises(ValueError, match=name):
        rdg_bound(**args)


def test_rdg_bound_slack_is_raw_and_the_term_is_taken_by_name():
    b = rdg_bound(distortion_rate=0.1, slack=-0.01, generalization=0.05, source="e-cmi linear")
    assert (b.slack, b.source) == (-0.01, "e-cmi linear")
    assert b.total == pytest.approx(0.1 - 0.01 + 0.05, rel=1e-15)
    assert rdg_bound(distortion_rate=0.1, slack=0.0, mi_sw=0.1, n=10).source == "xu-raginsky"
    with pytest.raises(ValueError, match="source"):
        rdg_bound(distortion_rate=0.1, slack=0.0, generalization=0.05)
    with pytest.raises(ValueError, match="not both"):
        rdg_bound(distortion_rate=0.1, slack=0.0, generalization=0.05, source="x", mi_sw=0.1, n=10)
    with pytest.raises(ValueError, match="generalization"):
        rdg_bound(distortion_rate=0.1, slack=0.0, generalization=-0.05, source="x")
    with pytest.raises(ValueError, match="mi_sw"):
        rdg_bound(distortion_rate=0.1, slack=0.0)


def test_rdg_bound_is_keyword_only():
    with pytest.raises(TypeError):
        rdg_bound(0.1, 0.0, 0.1, 10)  # the contract is keyword-only


def test_selection_mi_closed_forms():
    # one hypothesis always: I = 0 exactly
    assert selection_mi([3] * 20, seed=0).value == 0.0
    # K hypotheses equally often: plug-in ln K, Miller-Madow adds (K-1)/(2N), capped at ln K
    k, reps = 4, 50
    est = selection_mi(np.repeat(np.arange(k), reps), seed=0)
    assert est.value == pytest.approx(math.log(k) + (k - 1) / (2 * k * reps), rel=1e-12)
    capped = selection_mi(np.repeat(np.arange(k), reps), bank_size=k, seed=0)
    assert capped.value == pytest.approx(math.log(k), rel=1e-15)
    assert capped.ci_high <= math.log(k) + 1e-15
    assert capped.ci_low <= capped.value <= capped.ci_high


def test_selection_mi_reproducible_and_validated():
    h = np.random.default_rng(1).integers(0, 5, size=40)
    a, b = selection_mi(h, seed=3), selection_mi(h, seed=3)
    assert (a.ci_low, a.ci_high) == (b.ci_low, b.ci_high)
    with pytest.raises(ValueError, match="hypotheses"):
        selection_mi([1])
    with pytest.raises(ValueError, match="bank_size"):
        selection_mi([0, 5], bank_size=5)
    with pytest.raises(ValueError, match="hypotheses"):
        selection_mi([0.5, 1])
    with pytest.raises(ValueError, match="seed"):
        selection_mi([0, 1], seed=-1)


@given(st.lists(st.integers(0, 7), min_size=2, max_size=60))
def test_selection_mi_at_least_plugin_of_one_hot_rows(hyps):
    # deterministic selection: bank_mi of one-hot rows is the plug-in H(W); Miller-Madow only adds
    rows = np.eye(8)[hyps]
    plug = bank_mi(rows, n_boot=2, seed=0).value
    est = selection_mi(hyps, bank_size=8, n_boot=50, seed=0)
    assert est.value >= plug - 1e-12
    assert 0.0 <= est.ci_low <= est.value <= est.ci_high <= math.log(8) + 1e-12
