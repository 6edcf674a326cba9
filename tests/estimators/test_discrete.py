"""Discrete information measures: closed forms, references, properties, validation."""

import math
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from estimators.discrete import (
    bank_mi,
    entropy,
    gate_rate,
    kl_divergence,
    mutual_information,
    plugin_mi,
)
from estimators.interface import MIEstimate
from estimators.testing import cascades, gate_probabilities, joints, pmfs, posterior_rows

LN2 = math.log(2)
TOL = 1e-12


def h2(p):
    """Binary entropy in nats, written out."""
    return -sum(t * math.log(t) for t in (p, 1 - p) if t > 0)


def conditional_entropy(p_xy):
    """H(Y|X) = sum_x p(x) H(Y | X=x), written out row by row."""
    total = 0.0
    for row in p_xy:
        px = row.sum()
        if px > 0:
            total += px * entropy(row / px)
    return total


# --------------------------------------------------------------------------- closed forms


@pytest.mark.parametrize("n", [1, 2, 3, 7, 64])
def test_uniform_entropy_is_log_n(n):
    p = np.full(n, 1.0 / n)
    assert entropy(p) == pytest.approx(math.log(n), abs=TOL)
    assert entropy(p, base=2) == pytest.approx(math.log2(n), abs=TOL)


@pytest.mark.parametrize("q", [0.0, 0.1, 0.5, 0.9, 1.0])
def test_bernoulli_entropy_bits_and_nats(q):
    assert entropy([q, 1 - q]) == pytest.approx(h2(q), abs=TOL)
    assert entropy([q, 1 - q], base=2) == pytest.approx(h2(q) / LN2, abs=TOL)
    assert entropy([q, 1 - q], base=10) == pytest.approx(h2(q) / math.log(10), abs=TOL)


def test_entropy_of_a_joint_uses_every_axis():
    p = np.full((2, 2, 2), 1 / 8)
    assert entropy(p, base=2) == pytest.approx(3.0, abs=TOL)


def test_independent_joint_has_zero_mi():
    p_xy = np.outer([0.2, 0.3, 0.5], [0.1, 0.6, 0.05, 0.25])
    assert mutual_information(p_xy) == pytest.approx(0.0, abs=1e-15)


@pytest.mark.parametrize("eps", [0.0, 0.01, 0.11, 0.3, 0.5])
def test_binary_symmetric_joint(eps):
    p_xy = 0.5 * np.array([[1 - eps, eps], [eps, 1 - eps]])
    assert mutual_information(p_xy) == pytest.approx(LN2 - h2(eps), abs=TOL)
    assert mutual_information(p_xy, base=2) == pytest.approx(1 - h2(eps) / LN2, abs=TOL)


def test_mutual_information_of_a_copy_is_the_entropy():
    p = np.array([0.1, 0.2, 0.3, 0.4])
    assert mutual_information(np.diag(p)) == pytest.approx(entropy(p), abs=TOL)


@pytest.mark.parametrize(("a", "b"), [(0.5, 0.5), (0.1, 0.4), (0.9, 0.2), (0.0, 0.3), (1.0, 0.7)])
def test_kl_of_bernoullis(a, b):
    expected = sum(s * math.log(s / t) for s, t in ((a, b), (1 - a, 1 - b)) if s > 0)
    assert kl_divergence([a, 1 - a], [b, 1 - b]) == pytest.approx(expected, abs=TOL)
    assert kl_divergence([a, 1 - a], [b, 1 - b], base=2) == pytest.approx(expected / LN2, abs=TOL)


def test_kl_is_infinite_without_absolute_continuity():
    assert kl_divergence([0.5, 0.5], [1.0, 0.0]) == math.inf
    assert kl_divergence([1.0, 0.0], [0.5, 0.5]) == pytest.approx(LN2, abs=TOL)


def test_pmf_within_tolerance_is_renormalised():
    p = np.array([0.25, 0.25, 0.25, 0.25 + 5e-7])
    assert entropy(p) == pytest.approx(entropy(p / p.sum()), abs=TOL)


# --------------------------------------------------------------------------- plug-in MI


def slow_plugin(x, y):
    """Plug-in MI from dictionaries of counts: obviously correct, slow."""
    n = len(x)
    joint, cx, cy = Counter(zip(x, y)), Counter(x), Counter(y)
    return sum(c / n * math.log(c * n / (cx[a] * cy[b])) for (a, b), c in joint.items())


def slow_miller_madow(x, y):
    n = len(x)
    m_x, m_y, m_xy = len(set(x)), len(set(y)), len(set(zip(x, y)))
    return slow_plugin(x, y) + ((m_x - 1) + (m_y - 1) - (m_xy - 1)) / (2 * n)


def slow_jackknife(x, y, estimator):
    """(jackknife value, jackknife stderr) by deleting each pair in turn."""
    n = len(x)
    loo = np.array([estimator(x[:i] + x[i + 1 :], y[:i] + y[i + 1 :]) for i in range(n)])
    value = n * estimator(x, y) - (n - 1) * loo.mean()
    stderr = math.sqrt((n - 1) / n * np.sum((loo - loo.mean()) ** 2))
    return value, stderr


def test_plugin_equals_mutual_information_of_the_empirical_joint():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 4, 300)
    y = (x + rng.integers(0, 2, 300)) % 5
    table = np.zeros((4, 5))
    np.add.at(table, (x, y), 1)
    est = plugin_mi(x, y)
    assert isinstance(est, MIEstimate)
    assert est.value == pytest.approx(mutual_information(table / 300), abs=TOL)
    assert est.method == "plugin" and est.n == 300


def test_miller_madow_formula():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 3, 40).tolist()
    y = rng.integers(0, 6, 40).tolist()
    est = plugin_mi(x, y, correction="miller-madow")
    assert est.value == pytest.approx(slow_miller_madow(x, y), abs=TOL)
    assert est.method == "plugin-miller-madow"


@pytest.mark.parametrize("seed", range(3))
def test_jackknife_against_leave_one_out_loop(seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 4, 50).tolist()
    y = [(a + int(rng.integers(0, 3))) % 4 for a in x]
    value, stderr = slow_jackknife(x, y, slow_plugin)
    est = plugin_mi(x, y, correction="jackknife")
    assert est.value == pytest.approx(value, abs=1e-10)
    assert est.stderr == pytest.approx(stderr, abs=1e-10)
    # the stderr of the other corrections is the jackknife stderr of that estimator
    assert plugin_mi(x, y).stderr == pytest.approx(stderr, abs=1e-10)
    _, stderr_mm = slow_jackknife(x, y, slow_miller_madow)
    assert plugin_mi(x, y, correction="miller-madow").stderr == pytest.approx(stderr_mm, abs=1e-10)


def test_bias_corrections_are_closer_on_average():
    rng = np.random.default_rng(2)
    p_xy = rng.dirichlet(np.ones(16)).reshape(4, 4)
    exact = mutual_information(p_xy)
    errors = {c: [] for c in ("none", "miller-madow", "jackknife")}
    for _ in range(200):
        cells = rng.choice(16, size=80, p=p_xy.ravel())
        for c in errors:
            errors[c].append(plugin_mi(cells // 4, cells % 4, correction=c).value - exact)
    bias = {c: abs(np.mean(e)) for c, e in errors.items()}
    assert np.mean(errors["none"]) > 0  # the plug-in is biased upward
    assert bias["miller-madow"] < bias["none"]
    assert bias["jackknife"] < bias["none"]


def test_plugin_interval_and_units():
    rng = np.random.default_rng(3)
    x = rng.integers(0, 3, 200)
    y = (x + (rng.random(200) < 0.2)) % 3
    nats = plugin_mi(x, y, correction="jackknife")
    bits = plugin_mi(x, y, correction="jackknife", base=2)
    assert nats.ci_low < nats.value < nats.ci_high
    for field in ("value", "stderr", "ci_low", "ci_high"):
        assert getattr(bits, field) == pytest.approx(getattr(nats, field) / LN2, abs=TOL)
    assert bits.base == 2.0
    wide = plugin_mi(x, y, correction="jackknife", confidence=0.99)
    assert wide.ci_high - wide.ci_low > nats.ci_high - nats.ci_low
    assert (nats.ci_high - nats.value) == pytest.approx(1.959963984540054 * nats.stderr, rel=1e-12)


def test_two_dimensional_samples_are_joint_symbols():
    rng = np.random.default_rng(4)
    x1, x2 = rng.integers(0, 3, 100), rng.integers(0, 2, 100)
    y = (x1 + x2 + rng.integers(0, 2, 100)) % 3
    joint = plugin_mi(np.column_stack([x1, x2]), y, correction="jackknife")
    coded = plugin_mi(2 * x1 + x2, y, correction="jackknife")
    assert joint.value == pytest.approx(coded.value, abs=TOL)
    assert joint.stderr == pytest.approx(coded.stderr, abs=TOL)


def test_plugin_accepts_whole_floats_and_column_vectors():
    x = np.array([0, 1, 1, 0, 2, 2] * 5)
    y = np.array([1, 1, 0, 0, 1, 0] * 5)
    ref = plugin_mi(x, y).value
    assert plugin_mi(x.astype(float), y[:, None]).value == pytest.approx(ref, abs=TOL)


def test_negative_corrected_value_is_kept_and_noted():
    x = np.array([0, 1] * 10)
    y = np.array([0, 0, 1, 1] * 5)  # independent in the sample: plug-in MI is 0
    est = plugin_mi(x, y, correction="miller-madow")
    assert est.value == pytest.approx(-1 / 40, abs=TOL)
    assert any("negative" in note for note in est.notes)
    assert not any("negative" in note for note in plugin_mi(x, y).notes)


def test_sparse_table_is_noted():
    x = np.arange(20)
    est = plugin_mi(x, x % 7)
    assert any("sparse" in note for note in est.notes)
    assert not any("sparse" in note for note in plugin_mi(x % 2, x % 2).notes)


# --------------------------------------------------------------------------- gates and banks


def test_gate_rate_extremes():
    assert gate_rate(np.eye(4)) == pytest.approx(math.log(4), abs=TOL)
    assert gate_rate(np.tile([0.2, 0.3, 0.5], (6, 1))) == pytest.approx(0.0, abs=1e-15)
    assert gate_rate([[1.0, 0.0], [0.0, 1.0]], base=2) == pytest.approx(1.0, abs=TOL)


def test_gate_rate_is_mi_of_the_implied_joint_example():
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.3, 0.3, 0.4]])
    assert gate_rate(probs) == pytest.approx(mutual_information(probs / 3), abs=TOL)


def test_bank_mi_value_interval_and_seed():
    rng = np.random.default_rng(5)
    rows = rng.dirichlet(0.5 * np.ones(6), size=80)
    est = bank_mi(rows, seed=7)
    assert est.value == pytest.approx(gate_rate(rows), abs=TOL)
    assert est.ci_low <= est.value <= est.ci_high
    assert est.ci_high - est.ci_low > 0 and est.stderr > 0
    assert est.n == 80 and est.method == "bank-closed-form"
    again = bank_mi(rows, seed=7)
    assert (again.ci_low, again.ci_high, again.stderr) == (est.ci_low, est.ci_high, est.stderr)
    bits = bank_mi(rows, seed=7, base=2)
    assert bits.ci_high == pytest.approx(est.ci_high / LN2, abs=TOL)


def test_bank_mi_of_identical_rows_is_zero():
    est = bank_mi(np.tile([0.5, 0.25, 0.25], (10, 1)), seed=0)
    summary = [est.value, est.ci_low, est.ci_high, est.stderr]
    assert summary == pytest.approx([0, 0, 0, 0], abs=1e-15)


def test_bank_mi_interval_covers_the_population_value():
    """Rows are training sets drawn from a known population: the basic interval covers I(S;W)."""
    rng = np.random.default_rng(6)
    p_s = rng.dirichlet(np.ones(40))
    q = rng.dirichlet(0.5 * np.ones(5), size=40)
    exact = mutual_information(p_s[:, None] * q)
    covered = []
    for t in range(80):
        est = bank_mi(q[rng.choice(40, size=60, p=p_s)], n_boot=300, seed=t)
        covered.append(est.ci_low <= exact <= est.ci_high)
    assert np.mean(covered) >= 0.85


@pytest.mark.parametrize("block", [1 << 22, 7])
def test_bank_mi_bootstrap_against_row_resampling_loop(block, monkeypatch):
    """The interval equals one built by resampling rows in a plain loop (blocked or not)."""
    monkeypatch.setattr("estimators.discrete._BOOT_BLOCK", block)
    rows = np.random.default_rng(8).dirichlet(np.ones(4), size=30)
    picks = np.random.default_rng(3).integers(0, 30, size=(200, 30))
    boot = np.array([gate_rate(rows[idx]) for idx in picks])
    q_lo, q_hi = np.quantile(boot, [0.05, 0.95])
    value = gate_rate(rows)
    est = bank_mi(rows, n_boot=200, confidence=0.9, seed=3)
    assert est.ci_low == pytest.approx(max(2 * value - q_hi, 0), abs=1e-12)
    assert est.ci_high == pytest.approx(2 * value - q_lo, abs=1e-12)
    assert est.stderr == pytest.approx(boot.std(ddof=1), abs=1e-12)


# --------------------------------------------------------------------------- properties


@given(pmfs())
def test_entropy_between_zero_and_log_size(p):
    h = entropy(p)
    assert -TOL <= h <= math.log(p.size) + TOL
    assert entropy(p, base=2) == pytest.approx(h / LN2, abs=TOL)


@given(joints())
def test_mi_nonnegative_and_below_both_entropies(p_xy):
    i = mutual_information(p_xy)
    h_x, h_y = entropy(p_xy.sum(axis=1)), entropy(p_xy.sum(axis=0))
    assert i >= 0
    assert i <= min(h_x, h_y) + 1e-12
    assert i == pytest.approx(h_x + h_y - entropy(p_xy), abs=1e-12)


@given(cascades())
def test_data_processing(chain):
    p_x, w1, w2 = chain
    i_xy = mutual_information(p_x[:, None] * w1)
    i_xz = mutual_information(p_x[:, None] * (w1 @ w2))
    assert i_xz <= i_xy + 1e-12


@given(st.integers(2, 8).flatmap(lambda n: st.tuples(pmfs(size=n), pmfs(size=n))))
def test_gibbs_inequality(pq):
    p, q = pq
    d = kl_divergence(p, q)
    assert d >= 0
    assert kl_divergence(p, p) == pytest.approx(0.0, abs=1e-15)
    if np.all(q[p > 0] > 0):
        assert math.isfinite(d)
    else:
        assert d == math.inf


@given(joints())
def test_chain_rule(p_xy):
    h_x = entropy(p_xy.sum(axis=1))
    assert entropy(p_xy) == pytest.approx(h_x + conditional_entropy(p_xy), abs=1e-12)


@given(joints(), st.randoms(use_true_random=False))
def test_invariance_to_relabelling(p_xy, random):
    rows = random.sample(range(p_xy.shape[0]), p_xy.shape[0])
    cols = random.sample(range(p_xy.shape[1]), p_xy.shape[1])
    permuted = p_xy[rows][:, cols]
    assert mutual_information(permuted) == pytest.approx(mutual_information(p_xy), abs=1e-14)
    assert mutual_information(permuted.T) == pytest.approx(mutual_information(p_xy), abs=1e-14)
    assert entropy(permuted) == pytest.approx(entropy(p_xy), abs=1e-14)


@given(joints())
def test_mi_is_kl_from_the_product_of_marginals(p_xy):
    product = np.outer(p_xy.sum(axis=1), p_xy.sum(axis=0))
    assert mutual_information(p_xy) == pytest.approx(kl_divergence(p_xy, product), abs=1e-14)


@given(gate_probabilities())
def test_gate_rate_bounds_and_implied_joint(probs):
    n, k = probs.shape
    r = gate_rate(probs)
    assert 0 <= r <= min(math.log(k), math.log(n)) + 1e-12
    assert r == pytest.approx(mutual_information(probs / n), abs=1e-12)


@given(posterior_rows(min_rows=2, max_rows=12))
def test_bank_mi_value_matches_gate_rate_and_bounds(rows):
    est = bank_mi(rows, n_boot=50, seed=0)
    assert est.value == pytest.approx(gate_rate(rows), abs=1e-15)
    assert 0 <= est.ci_low <= est.ci_high <= math.log(rows.shape[1]) + 1e-12


labels = st.lists(st.tuples(st.integers(0, 3), st.integers(0, 4)), min_size=2, max_size=30)


@given(labels)
def test_plugin_matches_slow_reference(pairs):
    x, y = [list(t) for t in zip(*pairs)]
    assert plugin_mi(x, y).value == pytest.approx(slow_plugin(x, y), abs=1e-12)
    value, stderr = slow_jackknife(x, y, slow_plugin)
    est = plugin_mi(x, y, correction="jackknife")
    assert est.value == pytest.approx(value, abs=1e-9)
    assert est.stderr == pytest.approx(stderr, abs=1e-9)


@given(labels)
def test_plugin_invariant_to_label_values(pairs):
    x, y = (np.array(t) for t in zip(*pairs))
    a = plugin_mi(x, y, correction="miller-madow")
    b = plugin_mi(7 * x - 3, 100 - y, correction="miller-madow")
    assert a.value == pytest.approx(b.value, abs=1e-12)
    assert plugin_mi(y, x).value == pytest.approx(plugin_mi(x, y).value, abs=1e-12)


# --------------------------------------------------------------------------- validation

BAD_PMFS = {
    "negative": [0.5, 0.7, -0.2],
    "nan": [0.5, np.nan, 0.5],
    "inf": [np.inf, 0.5],
    "sum": [0.5, 0.4],
    "empty": [],
    "text": ["a", "b"],
}


@pytest.mark.parametrize("bad", BAD_PMFS.values(), ids=BAD_PMFS.keys())
def test_entropy_rejects(bad):
    with pytest.raises(ValueError, match=r"^p\b"):
        entropy(bad)


@pytest.mark.parametrize(
    "bad",
    [
        [0.5, 0.5],
        [[0.5, -0.1], [0.3, 0.3]],
        [[0.5, np.nan], [0.25, 0.25]],
        [[0.5, 0.4], [0.0, 0.0]],
        np.ones((2, 2, 2)) / 8,
    ],
    ids=["1-D", "negative", "nan", "sum", "3-D"],
)
def test_mutual_information_rejects(bad):
    with pytest.raises(ValueError, match=r"^p_xy\b"):
        mutual_information(bad)


@pytest.mark.parametrize(
    ("p", "q", "name"),
    [
        ([0.5, 0.5], [0.2, 0.3, 0.5], "q"),
        ([0.5, 0.5], [1.2, -0.2], "q"),
        ([0.5, np.nan], [0.5, 0.5], "p"),
        ([0.5, 0.6], [0.5, 0.5], "p"),
        ([0.5, 0.5], [0.5, 0.4], "q"),
    ],
)
def test_kl_rejects(p, q, name):
    with pytest.raises(ValueError, match=rf"^{name}\b"):
        kl_divergence(p, q)


@pytest.mark.parametrize(
    ("x", "y", "kwargs", "name"),
    [
        ([0, 1.5, 1], [0, 1, 1], {}, "x"),
        ([0, 1, 1], [0, np.nan, 1], {}, "y"),
        ([0, 1, 1], [0, 1], {}, "x and y"),
        ([0], [0], {}, "x"),
        (np.zeros((2, 2, 2), int), [0, 1], {}, "x"),
        ([[0, 1], [1, 0.5]], [0, 1], {}, "x"),
        (["a", "b"], [0, 1], {}, "x"),
        ([0, 1, 1], [0, 1, 1], {"correction": "bogus"}, "correction"),
        ([0, 1, 1], [0, 1, 1], {"confidence": 1.0}, "confidence"),
        ([0, 1, 1], [0, 1, 1], {"base": 1}, "base"),
    ],
)
def test_plugin_mi_rejects(x, y, kwargs, name):
    with pytest.raises(ValueError, match=rf"^{name}\b"):
        plugin_mi(x, y, **kwargs)


@pytest.mark.parametrize(
    "bad",
    [[0.5, 0.5], [[0.5, 0.4], [0.5, 0.5]], [[1.5, -0.5], [0.5, 0.5]], [[np.nan, 1.0], [0.5, 0.5]]],
    ids=["1-D", "row-sum", "negative", "nan"],
)
def test_gate_rate_rejects(bad):
    with pytest.raises(ValueError, match=r"^probs\b"):
        gate_rate(bad)


@pytest.mark.parametrize(
    ("rows", "kwargs", "name"),
    [
        ([[0.5, 0.5]], {}, "posteriors"),
        ([[0.5, 0.6], [0.5, 0.5]], {}, "posteriors"),
        ([[0.5, 0.5], [0.5, 0.5]], {"n_boot": 0}, "n_boot"),
        ([[0.5, 0.5], [0.5, 0.5]], {"seed": -1}, "seed"),
        ([[0.5, 0.5], [0.5, 0.5]], {"seed": 1.5}, "seed"),
        ([[0.5, 0.5], [0.5, 0.5]], {"confidence": 0.0}, "confidence"),
        ([[0.5, 0.5], [0.5, 0.5]], {"base": -2}, "base"),
    ],
)
def test_bank_mi_rejects(rows, kwargs, name):
    with pytest.raises(ValueError, match=rf"^{name}\b"):
        bank_mi(rows, **kwargs)


@pytest.mark.parametrize("base", [0, 1, -1, math.inf, "2", True])
def test_bad_base_is_named(base):
    for call in (
        lambda: entropy([0.5, 0.5], base=base),
        lambda: mutual_information([[0.5, 0], [0, 0.5]], base=base),
        lambda: kl_divergence([0.5, 0.5], [0.5, 0.5], base=base),
        lambda: gate_rate([[0.5, 0.5]], base=base),
    ):
        with pytest.raises(ValueError, match=r"^base\b"):
            call()


def test_label_entropy_closed_forms_and_miller_madow():
    from estimators.discrete import label_entropy

    assert label_entropy([7] * 9) == 0.0
    assert label_entropy([0, 1, 2, 3] * 5, base=2) == pytest.approx(2.0, rel=1e-12)
    labels = [0, 0, 0, 1, 2, 2]
    plug = entropy(np.bincount(labels) / 6)
    assert label_entropy(labels) == pytest.approx(plug, rel=1e-12)
    assert label_entropy(labels, correction="miller-madow") == pytest.approx(plug + 2 / 12, rel=1e-12)
    # the entropy is I(W; W): the same as plugin_mi of the labels with themselves, correction and all
    assert label_entropy(labels, correction="miller-madow") == pytest.approx(
        plugin_mi(labels, labels, correction="miller-madow").value, rel=1e-12)
    with pytest.raises(ValueError, match="correction"):
        label_entropy(labels, correction="jackknife")
    with pytest.raises(ValueError, match="labels"):
        label_entropy([0.5, 1.0])


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(2, 30), st.integers(1, 5), st.integers(1, 6))
def test_columnwise_plugin_mi_is_plugin_mi_column_by_column(seed, m, n, k):
    from estimators.discrete import columnwise_plugin_mi

    rng = np.random.default_rng(seed)
    u = rng.integers(0, 2, size=(m, n))
    x = np.where(rng.random((m, n)) < 0.5, u * 3 - 1, rng.integers(-k, k + 1, size=(m, n)))
    got = columnwise_plugin_mi(x, u)
    want = [max(plugin_mi(x[:, j], u[:, j]).value, 0.0) for j in range(n)]
    assert got == pytest.approx(want, abs=1e-12)
    assert np.all(got <= np.log(2) + 1e-15)
    with pytest.raises(ValueError, match="same shape"):
        columnwise_plugin_mi(np.zeros((3, 2), int), np.zeros((3, 1), int))


def test_selection_mi_lives_in_estimators_and_ratebound_serves_the_same_function():
    import ratebound
    from estimators.discrete import selection_mi

    assert ratebound.selection_mi is selection_mi
