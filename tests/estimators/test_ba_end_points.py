"""The D_min end point of ``distortion_rate`` (``beta = inf``): certified on sources with tiny and zero masses."""

import math
import warnings

import numpy as np
import pytest

from estimators.blahut_arimoto import distortion_rate
from estimators.testing import hard_rd_problem


def _check_end_point(p, d, tol):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        top = distortion_rate(p, d, 1e6, tol=tol, max_iter=500)
    assert top.converged and top.gap <= tol
    assert top.distortion == pytest.approx(float(p @ d.min(axis=1)), rel=1e-12, abs=1e-15)
    assert np.allclose(top.encoder.sum(axis=1), 1.0)
    minimisers = d <= d.min(axis=1, keepdims=True) + 1e-12 * max(1.0, float(np.abs(d).max()))
    assert np.all(top.encoder[~minimisers] == 0.0)
    return top


@pytest.mark.parametrize("seed", [2, 3])
def test_end_point_certified_on_hard_sources(seed):
    # Before: 0/1 kernel through the log-domain solver; rows of mass 1e-30 .. 1e-60 lost their
    # columns below its support cutoff (gaps up to 12 nats), rows of zero mass gave -inf - -inf.
    rng = np.random.default_rng(seed)
    for i in range(300):
        p, d = hard_rd_problem(rng, i % 5)
        _check_end_point(p, d, 1e-9)


def test_end_point_ignores_rows_of_zero_mass():
    p = np.array([1.0, 0.0])
    d = np.array([[0.0, 1.0], [1.0, 0.0]])
    top = _check_end_point(p, d, 1e-12)
    assert top.rate == pytest.approx(0.0, abs=1e-15)
    assert top.encoder[1].tolist() == [0.0, 1.0]  # an unserved row of zero mass keeps to its minimisers


@pytest.mark.parametrize("eps", [1e-12, 1e-40, 1e-150])
def test_end_point_serves_a_row_of_tiny_mass(eps):
    # zero distortion forces X_hat = X: R(D_min) = H(X), with a column worth eps that must not be dropped
    p = np.array([1.0 - eps, eps])
    d = np.array([[0.0, 1.0, 1.0], [1.0, 0.0, 1.0]])
    top = _check_end_point(p, d, 1e-12)
    assert top.marginal[1] == pytest.approx(eps, rel=1e-9)
    assert top.rate == pytest.approx(-eps * math.log(eps) - math.log1p(-eps) * (1 - eps), rel=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [4, 5, 6])
def test_end_point_certified_on_large_tied_distortions(seed):
    rng = np.random.default_rng(seed)
    for _ in range(5):
        d = rng.integers(0, 3, (100, 100)).astype(float)
        p = rng.dirichlet(np.full(100, 0.05))
        p = np.where(p < 1e-200, 0.0, p)
        _check_end_point(p / p.sum(), d, 1e-9)


@pytest.mark.parametrize(("seed", "index"), [(5, 186), (7, 276)])
def test_end_point_certified_where_the_host_solver_stalls(seed, index):
    # masses of 1e-13 .. 1e-15 block the host solver's relative Newton steps at ~1e-12 of their length
    # (gaps 0.12 and 0.19 at max_iter); the finite-slope solver on the 0/1 kernel takes over
    rng = np.random.default_rng(seed)
    for i in range(index + 1):
        p, d = hard_rd_problem(rng, i % 5)
    _check_end_point(p, d, 1e-9)


def test_end_point_rate_matches_a_conic_solver():
    """R(D_min) is the least -sum_x p(x) ln sum_{A_x} q over the simplex: cvxpy (an exponential-cone
    solver, independent of all three of ours) finds the same value on tied and tiny-mass problems."""
    import cvxpy as cp

    rng = np.random.default_rng(8)
    for i in range(40):
        p, d = hard_rd_problem(rng, 1 if i % 2 else i % 5)
        top = _check_end_point(p, d, 1e-10)
        best = (d <= d.min(axis=1, keepdims=True) + 1e-12 * max(1.0, float(np.abs(d).max()))).astype(float)
        live = p > 1e-12  # rows lighter than the conic solver's accuracy are left out of its objective
        q = cp.Variable(d.shape[1], nonneg=True)
        problem = cp.Problem(cp.Minimize(-p[live] @ cp.log(best[live] @ q)), [cp.sum(q) == 1])
        problem.solve()
        assert top.rate == pytest.approx(problem.value, abs=1e-6)
