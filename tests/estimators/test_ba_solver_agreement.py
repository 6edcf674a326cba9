"""Every Blahut-Arimoto solver and backend agrees with every other, certificate for certificate.

On the same problems, each answer's Lagrangian lies inside every other answer's certified bracket
``[value - gap, value]`` (rate-distortion), or each capacity inside every other's ``[lower, upper]``.
"""

import warnings

import numpy as np
import pytest

from estimators.blahut_arimoto import channel_capacity, rate_distortion, rd_curve

SOLVERS = [("newton", "numpy"), ("plain", "numpy"), ("newton", "torch"), ("plain", "torch")]
TOL = 1e-8


def _problems():
    rng = np.random.default_rng(16)
    for n, m, beta in [(5, 4, 0.5), (8, 12, 2.0), (12, 6, 4.0), (20, 20, 1.0)]:
        yield rng.dirichlet(np.ones(n)), rng.random((n, m)), beta


@pytest.mark.parametrize("case", range(4))
def test_rate_distortion_solvers_agree(case):
    p, d, beta = list(_problems())[case]
    brackets = []
    for method, backend in SOLVERS:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            pt = rate_distortion(p, d, beta, tol=TOL, max_iter=200_000, method=method, backend=backend)
        assert pt.converged and pt.gap <= TOL, (method, backend)
        value = pt.rate + beta * pt.distortion
        brackets.append((value - pt.gap, value))
    for lo, hi in brackets:
        for lo2, hi2 in brackets:
            assert lo - 1e-12 <= hi2 and lo2 - 1e-12 <= hi  # the brackets overlap: the same optimum


def test_curve_solvers_agree():
    p, d, _ = list(_problems())[1]
    betas = [0.5, 2.0, 6.0]
    curves = [rd_curve(p, d, betas, tol=TOL, max_iter=200_000, method=m, backend=b) for m, b in SOLVERS]
    for c in curves:
        assert c.converged.all()
        lag = c.rates + c.betas * c.distortions
        for c2 in curves:
            lag2 = c2.rates + c2.betas * c2.distortions
            assert np.all(lag - c.gaps - 1e-12 <= lag2)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_capacity_solvers_agree(seed):
    w = np.random.default_rng(seed).dirichlet(np.ones(7), size=5)
    results = []
    for method, backend in SOLVERS:
        res = channel_capacity(w, tol=TOL, max_iter=200_000, method=method, backend=backend)
        assert res.converged and res.upper - res.lower <= TOL, (method, backend)
        results.append(res)
    for a in results:
        for b in results:
            assert a.lower <= b.upper + 1e-12 and b.lower <= a.upper + 1e-12
