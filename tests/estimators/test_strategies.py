"""The shipped Hypothesis strategies draw valid inputs."""

import numpy as np
import pytest
from hypothesis import find, given, settings
from hypothesis import strategies as st

from estimators.testing import (
    cascades,
    channels,
    distortion_matrices,
    gate_probabilities,
    joints,
    pmfs,
    posterior_rows,
)

def _assert_clean_probabilities(p, *, n_weights):
    assert p.dtype == np.float64
    assert np.all(np.isfinite(p))
    assert np.all(p >= 0)
    positive = p[p > 0]
    assert positive.min() >= 1e-6 / n_weights * (1 - 1e-12)


@given(pmfs())
def test_pmfs_sum_to_one(p):
    assert p.ndim == 1 and 2 <= p.size <= 8
    assert abs(p.sum() - 1.0) <= 4e-16
    _assert_clean_probabilities(p, n_weights=p.size)


@given(pmfs(size=3, allow_zero=False))
def test_pmfs_fixed_size_without_zeros(p):
    assert p.shape == (3,)
    assert np.all(p > 0)


@given(joints(full_support=True))
def test_joints_full_support_has_positive_marginals(p):
    assert p.ndim == 2
    assert abs(p.sum() - 1.0) <= 1e-15
    assert np.all(p.sum(axis=0) > 0) and np.all(p.sum(axis=1) > 0)
    _assert_clean_probabilities(p, n_weights=p.size + p.shape[0] + p.shape[1])


@given(channels(n_rows=4))
def test_channels_are_row_stochastic(w):
    assert w.shape[0] == 4
    np.testing.assert_allclose(w.sum(axis=1), 1.0, rtol=0, atol=4e-16)
    _assert_clean_probabilities(w, n_weights=w.shape[1])


@given(distortion_matrices(zero_in_each_row=True, max_value=5.0))
def test_distortion_matrices_zero_in_each_row(d):
    assert np.all(np.isfinite(d)) and np.all(d >= 0) and d.max() <= 5.0
    assert np.all(d.min(axis=1) == 0)


@given(cascades())
def test_cascades_shapes_chain(c):
    p_x, w1, w2 = c
    assert w1.shape[0] == p_x.size and w2.shape[0] == w1.shape[1]
    p_xz = p_x[:, None] * (w1 @ w2)
    assert abs(p_xz.sum() - 1.0) < 1e-12


@given(gate_probabilities(), posterior_rows())
def test_gate_and_posterior_rows_are_stochastic(g, q):
    for arr in (g, q):
        np.testing.assert_allclose(arr.sum(axis=1), 1.0, rtol=0, atol=4e-16)


def test_strategies_reach_the_edge_cases():
    settings_ = settings(database=None, max_examples=200)
    d = find(distortion_matrices(), lambda d: d.shape[0] != d.shape[1], settings=settings_)
    assert d.shape[0] != d.shape[1]
    p = find(pmfs(), lambda p: np.any(p == 0), settings=settings_)
    assert np.any(p == 0)


@given(st.data())
def test_bad_options_raise(data):
    with pytest.raises(ValueError, match="size"):
        data.draw(pmfs(min_size=5, max_size=2))
