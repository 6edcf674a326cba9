"""Tests of the Gaussian, copula and copula-KSG estimators and of the default's data-driven choice."""

import inspect
import math

import numpy as np
import pytest
from scipy import special

from estimators import (
    CopulaEstimator,
    auto_mi_estimate,
    copula_ksg_estimate,
    copula_mi_estimate,
    estimate_mi,
    gaussian_mi_estimate,
    normal_scores,
)
from estimators.gaussian import _mi_bias, _student_t_term, canonical_correlations
from estimators.interface import MIEstimator
from estimators.testing import (
    AdditiveUniformTask,
    gaussian_with_mi,
    sparse_gaussian,
    student_t,
    student_t_mi_correction,
)


def _exactly_correlated(n: int, rho: float, seed: int = 0):
    """Samples whose sample correlation is exactly ``rho`` (centred, orthogonal, equal norms)."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((n, 3)))
    a, b = q[:, 1], q[:, 2]  # orthogonal to q[:, 0]; centre them exactly below
    a, b = a - a.mean(), b - b.mean()
    b = b - (a @ b) / (a @ a) * a
    a, b = a / np.linalg.norm(a), b / np.linalg.norm(b)
    return a, rho * a + math.sqrt(1 - rho**2) * b


def _finite(est):
    return all(math.isfinite(v) for v in (est.value, est.stderr, est.ci_low, est.ci_high))


# --------------------------------------------------------------------------- closed forms


@pytest.mark.parametrize("rho", [0.0, 0.3, 0.8, -0.95])
def test_gaussian_plug_in_is_the_closed_form_of_the_sample_correlation(rho):
    x, y = _exactly_correlated(400, rho)
    plug = gaussian_mi_estimate(x, y, bias_correction=False)
    assert plug.value == pytest.approx(-0.5 * math.log1p(-rho**2), abs=1e-12)
    corrected = gaussian_mi_estimate(x, y)
    assert corrected.value == pytest.approx(plug.value - _mi_bias(1, 1, 400), abs=1e-12)
    assert corrected.method == "gaussian" and _finite(corrected)


def test_bias_correction_is_the_wishart_log_determinant_expectation():
    n = 300
    # E ln det S - ln det Sigma = sum_i psi((n - i)/2) + d ln(2/(n-1)), written out for d = 1, 2, 3
    beta = {d: sum(special.digamma((n - i) / 2) for i in range(1, d + 1)) + d * math.log(2 / (n - 1))
            for d in (1, 2, 3)}
    assert _mi_bias(1, 2, n) == pytest.approx(0.5 * (beta[1] + beta[2] - beta[3]), rel=1e-12)
    assert _mi_bias(3, 4, 100_000) == pytest.approx(3 * 4 / (2 * 100_000), rel=0.01)  # ~ d_x d_y / 2n


def test_bias_corrected_gaussian_mi_is_unbiased_and_its_interval_covers():
    task = sparse_gaussian(3, 3, n_interacting=2, correlation=0.6)
    truth, n = task.mutual_information, 120
    plug, corrected, covered = [], [], 0
    for seed in range(300):
        x, y = task.sample(n, seed=seed)
        corrected_est = gaussian_mi_estimate(x, y)
        plug.append(gaussian_mi_estimate(x, y, bias_correction=False).value)
        corrected.append(corrected_est.value)
        covered += corrected_est.ci_low <= truth <= corrected_est.ci_high
    se_mean = np.std(corrected) / math.sqrt(len(corrected))
    assert abs(np.mean(corrected) - truth) < 3 * se_mean + 0.003
    assert np.mean(plug) - truth > 0.5 * 9 / (2 * n)  # the plug-in is biased up by ~ d_x d_y / 2n
    assert 0.88 <= covered / 300 <= 0.99


def test_gaussian_estimate_is_affine_invariant():
    x, y = gaussian_with_mi(0.7, dim=3).sample(2000, seed=1)
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(3, 3)), rng.normal(size=(3, 3))
    ref = gaussian_mi_estimate(x, y).value
    assert gaussian_mi_estimate(x @ a + 5.0, 1e-8 * (y @ b) - 3.0).value == pytest.approx(ref, abs=1e-9)


def test_canonical_correlations_of_independent_pairs_are_their_correlations():
    x, y = _exactly_correlated(500, 0.6, seed=3)
    x2, y2 = _exactly_correlated(500, 0.2, seed=4)
    rho = canonical_correlations(np.column_stack([x, x2]), np.column_stack([y, y2]))
    assert rho[0] == pytest.approx(0.6, abs=0.1) and rho.shape == (2,)


def test_student_t_term_is_the_samplers_closed_form():
    for dof in (0.5, 1.0, 2.0, 3.7, 50.0):
        for dims in ((1, 1), (2, 3), (5, 5)):
            assert _student_t_term(dof, *dims) == pytest.approx(student_t_mi_correction(dof, *dims), rel=1e-12)


# --------------------------------------------------------------------------- copulas


def test_normal_scores_are_rank_based_with_average_ties():
    z = normal_scores([3.0, -1.0, 10.0, 3.0])
    # ranks 2.5, 1, 4, 2.5 of n + 1 = 5
    assert z.ravel() == pytest.approx(special.ndtri(np.array([2.5, 1, 4, 2.5]) / 5))
    x = np.random.default_rng(0).normal(size=(50, 2))
    assert np.array_equal(normal_scores(x), normal_scores(np.exp(x)))


MONOTONE = {
    "exp": np.exp,
    "cube": lambda v: v**3,
    "asinh-scaled": lambda v: 1e6 * np.arcsinh(v) - 7.0,
    "logistic": lambda v: 1 / (1 + np.exp(-v)),
}


@pytest.mark.parametrize("name", sorted(MONOTONE))
def test_copula_estimates_are_invariant_to_monotone_marginal_maps(name):
    f = MONOTONE[name]
    x, y = student_t(2, 2, dof=3, n_interacting=1, correlation=0.5).sample(800, seed=5)
    for family in ("gaussian", "student"):
        transformed, plain = copula_mi_estimate(f(x), y, family=family, seed=1), copula_mi_estimate(
            x, y, family=family, seed=1)
        assert transformed.value == pytest.approx(plain.value, abs=1e-12)
        assert transformed.stderr == pytest.approx(plain.stderr, abs=1e-12)
    assert copula_ksg_estimate(f(x), f(y), seed=0).value == pytest.approx(
        copula_ksg_estimate(x, y, seed=0).value, abs=1e-12)
    auto, auto_f = auto_mi_estimate(x, y, seed=0), auto_mi_estimate(f(x), f(y), seed=0)
    assert (auto_f.method, auto_f.value) == (auto.method, pytest.approx(auto.value, abs=1e-12))


def test_gaussian_copula_recovers_a_transformed_gaussian():
    task = sparse_gaussian(3, 3, n_interacting=2, correlation=0.8)
    x, y = task.sample(5000, seed=7)
    est = copula_mi_estimate(special.ndtr(x), y * np.abs(y), family="gaussian")
    assert est.value == pytest.approx(task.mutual_information, rel=0.05)
    assert est.ci_low < task.mutual_information < est.ci_high


@pytest.mark.parametrize("dims,dof", [((1, 1), 1.0), ((2, 2), 2.0), ((3, 3), 3.0)])
def test_student_copula_recovers_the_student_t_closed_form(dims, dof):
    task = student_t(*dims, dof=dof)
    x, y = task.sample(5000, seed=11)
    est = copula_mi_estimate(np.arcsinh(x), y, family="student")
    assert est.value == pytest.approx(task.mutual_information, rel=0.1)
    assert est.method.startswith("student-copula(nu=")
    nu = float(est.method.split("nu=")[1].rstrip(")"))
    assert nu == pytest.approx(dof, rel=0.25)
    # the Gaussian copula sees no correlation at all: the shared scale is invisible to it
    assert abs(copula_mi_estimate(x, y).value) < 0.02


# --------------------------------------------------------------------------- the default


def test_default_reads_nothing_but_the_data():
    assert list(inspect.signature(auto_mi_estimate).parameters) == ["x", "y", "base", "seed"]
    x, y = student_t(2, 2, dof=2).sample(1500, seed=3)
    first, second = auto_mi_estimate(x, y, seed=1), auto_mi_estimate(x.copy(), y.copy(), seed=1)
    assert first == second  # same data, same choice, same number
    assert auto_mi_estimate(x, y).method == first.method  # the jitter seed does not make the choice
    order = np.random.default_rng(0).permutation(len(x))
    shuffled = auto_mi_estimate(x[order], y[order], seed=1)
    assert shuffled.method == first.method and shuffled.value == pytest.approx(first.value, abs=1e-6)


@pytest.mark.parametrize("task,chosen", [
    (gaussian_with_mi(0.5, dim=2), "auto:gaussian-copula"),
    (student_t(2, 2, dof=1), "auto:student-copula"),
    (AdditiveUniformTask(width=1.5), "auto:copula-ksg"),
])
def test_default_chooses_by_the_shape_of_the_dependence(task, chosen):
    x, y = task.sample(3000, seed=2)
    est = auto_mi_estimate(x, y, seed=0)
    assert est.method.startswith(chosen)
    assert any(note.startswith("chose ") for note in est.notes)
    assert any(note.startswith("candidates") for note in est.notes)
    assert _finite(est) and est.ci_low < est.value < est.ci_high
    assert est.value == pytest.approx(task.mutual_information, rel=0.12)


def test_estimate_mi_without_method_is_the_default_and_with_training_options_infonce():
    x, y = gaussian_with_mi(0.4).sample(800, seed=0)
    assert estimate_mi(x, y, seed=0) == auto_mi_estimate(x, y, seed=0)
    neural = estimate_mi(x, y, steps=5, seed=0, critic_options=dict(hidden=8, depth=1))
    assert neural.method == "infonce"
    assert any("training options ['critic_options', 'steps']" in note for note in neural.notes)


def test_copula_estimator_follows_the_protocol():
    est = CopulaEstimator()
    assert isinstance(est, MIEstimator)
    x, y = gaussian_with_mi(0.4).sample(500, seed=0)
    assert est.estimate_with_info(x, y).method.startswith("auto:")
    assert CopulaEstimator("student").estimate(x, y) >= 0.0
    with pytest.raises(ValueError, match="family"):
        CopulaEstimator("vine")


# --------------------------------------------------------------------------- extreme and bad input


def _extreme_cases():
    rng = np.random.default_rng(9)
    x = rng.normal(size=(600, 2))
    y = x[:, :1] + rng.normal(size=(600, 1))
    cauchy = rng.standard_cauchy(size=(600, 2)) * 1e300
    return {
        "huge": (x * 1e300, y),
        "tiny": (x * 1e-300, y * 1e-300),
        "cauchy-1e300": (cauchy, cauchy[:, :1] + rng.standard_cauchy(size=(600, 1))),
        "ties": (np.round(x), np.round(y)),
        "identical": (x[:, :1], x[:, :1].copy()),
        "collinear": (x, x @ np.array([[1.0], [2.0]])),
        "independent": (x, rng.normal(size=(600, 3))),
    }


ESTIMATORS = {
    "gaussian": lambda x, y: gaussian_mi_estimate(x, y),
    "gaussian-copula": lambda x, y: copula_mi_estimate(x, y),
    "student-copula": lambda x, y: copula_mi_estimate(x, y, family="student"),
    "copula-ksg": lambda x, y: copula_ksg_estimate(x, y, seed=0),
    "auto": lambda x, y: auto_mi_estimate(x, y, seed=0),
}


@pytest.mark.parametrize("case", sorted(_extreme_cases()))
@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_extreme_inputs_give_finite_estimates_and_intervals(case, name):
    x, y = _extreme_cases()[case]
    est = ESTIMATORS[name](x, y)
    assert _finite(est), est
    assert est.ci_low <= est.value <= est.ci_high


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_a_constant_variable_gives_exactly_zero(name):
    x = np.random.default_rng(0).normal(size=(100, 2))
    est = ESTIMATORS[name](x, np.full(100, 2.5))
    assert (est.value, est.stderr, est.ci_low, est.ci_high) == (0.0, 0.0, 0.0, 0.0)
    assert any("exactly 0" in note for note in est.notes)


def test_bad_input_names_the_argument():
    x = np.random.default_rng(0).normal(size=(20, 3))
    with pytest.raises(ValueError, match="family"):
        copula_mi_estimate(x, x, family="clayton")
    with pytest.raises(ValueError, match="x and y need at least"):
        gaussian_mi_estimate(x[:5], x[:5])
    with pytest.raises(ValueError, match="same number of samples"):
        auto_mi_estimate(x, x[:-1])
    with pytest.raises(ValueError, match="x contains NaN"):
        copula_mi_estimate(np.where(x > 1, np.nan, x), x)
    with pytest.raises(ValueError, match="base"):
        gaussian_mi_estimate(x, x, base=1.0)


@pytest.mark.slow
def test_student_copula_bootstrap_interval_covers_over_seeds():
    task = student_t(2, 2, dof=2)
    covered = 0
    for seed in range(16):
        x, y = task.sample(2000, seed=200 + seed)
        est = copula_mi_estimate(x, y, family="student", seed=seed)
        covered += est.ci_low <= task.mutual_information <= est.ci_high
    assert covered >= 12


def test_docstring_examples():
    import doctest

    import estimators.gaussian as module

    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0
