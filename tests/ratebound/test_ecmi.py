"""e-CMI bounds from supersample runs: closed forms, learners whose gap is known, data processing."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ratebound.ecmi import (
    Supersample,
    ecmi_bounds,
    linear_ecmi_bound,
    pair_information,
    sqrt_cmi_bound,
    variance_cmi_bound,
)
from ratebound.report import bound_report
from ratebound.runs import RunRecord

LN2 = math.log(2.0)


def _nearest_neighbour_runs(*, supersamples, masks, n, dim, seed, labels="random"):
    """A 1-nearest-neighbour learner (it memorises its training set) on supersamples.

    With ``labels="random"`` the labels are fair coins independent of the features:
    the training loss is 0 and every held-out prediction is a coin, so the true
    expected gap is exactly 1/2.
    """
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(supersamples):
        x = rng.standard_normal((n, 2, dim))
        y = rng.integers(0, 2, size=(n, 2))
        us, losses, preds = [], [], []
        for _ in range(masks):
            u = rng.integers(0, 2, size=n)
            idx = np.arange(n)
            xt, yt = x[idx, u], y[idx, u]
            flat = x.reshape(2 * n, dim)
            nearest = np.argmin(((flat[:, None, :] - xt[None]) ** 2).sum(-1), axis=1)
            pred = yt[nearest].reshape(n, 2)
            us.append(u)
            preds.append(pred)
            losses.append((pred != y).astype(float))
        out.append(Supersample(np.array(us), np.array(losses), np.array(preds)))
    return out


def _records(supersamples):
    recs = []
    for s_index, s in enumerate(supersamples):
        for j in range(s.runs):
            u = s.masks[j]
            recs.append(RunRecord(
                run_id=f"s{s_index}-m{j}", n_train=s.n, loss_range=(0.0, 1.0), supersample_id=s_index,
                mask=tuple(int(b) for b in u),
                pair_losses=tuple(map(tuple, s.losses[j].tolist())),
                train_loss=float(s.losses[j][np.arange(s.n), u].mean()),
                extra={"pair_predictions": s.predictions[j].tolist()},
            ))
    return recs


def test_memorising_learner_on_random_labels_gets_every_bound_above_its_gap():
    sups = _nearest_neighbour_runs(supersamples=3, masks=30, n=60, dim=5, seed=0)
    bounds = ecmi_bounds(sups, n_boot=50, seed=0)
    assert {b.name for b in bounds} == {"f-cmi", "ld-cmi", "ld-cmi variance", "e-cmi linear"}
    gap = bounds[0].held_out_risk - bounds[0].train_risk
    assert bounds[0].train_risk == 0.0 and gap == pytest.approx(0.5, abs=0.05)
    for b in bounds:
        assert b.gap >= gap, b.name
        assert b.gap_upper >= b.gap
    # the same through the report, whose rows carry the names of the papers
    (rep,) = bound_report(_records(sups), n_boot=50)
    rows = {b.name: b for b in rep.bounds}
    measured = rep.measured["supersample_gap"]
    for name in ("f-cmi (Harutyunyan et al.)", "loss-difference cmi (Wang-Mao)",
                 "loss-difference cmi, variance form", "e-cmi linear, fast rate (Hellstrom-Durisi)"):
        assert rows[name].value >= measured, name


def test_learner_that_ignores_its_data_gets_terms_near_zero_within_the_bias():
    rng = np.random.default_rng(1)
    masks, n = 40, 80
    sups = []
    for _ in range(3):
        u = rng.integers(0, 2, size=(masks, n))
        preds = rng.integers(0, 2, size=(masks, n, 2))  # its own coin flips, never the data
        y = rng.integers(0, 2, size=(n, 2))
        sups.append(Supersample(u, (preds != y).astype(float), preds))
    info = [pair_information(s) for s in sups]
    # plug-in bias of a quantity with k values against one fair bit: about (k - 1) / (2 masks) nats
    for name, values in (("fcmi", 4), ("ecmi", 4), ("ldcmi", 3)):
        mean = float(np.mean([getattr(i, name).mean() for i in info]))
        assert mean <= 1.5 * (values - 1) / (2 * masks), name
    # the bounds' information terms are those same plug-in means
    bounds = {b.name: b for b in ecmi_bounds(sups, n_boot=20)}
    assert bounds["e-cmi linear"].information == pytest.approx(np.mean([i.ecmi.mean() for i in info]))
    assert bounds["ld-cmi"].information <= 1.5 * 2 / (2 * masks)


def test_a_constant_learner_has_zero_information_and_zero_bound():
    u = np.random.default_rng(2).integers(0, 2, size=(10, 7))
    losses = np.broadcast_to(np.array([[1.0, 0.0]] * 7), (10, 7, 2))
    for b in ecmi_bounds([Supersample(u, losses)], n_boot=5):
        assert b.information == 0.0 and b.gap == 0.0


def test_loss_differences_of_a_zero_one_loss_are_never_binned():
    """Regression (audit item 6): {-1, 0, 0, 1} with masks {0, 1, 1, 0} was binned to 0.216 nats, not ln 2."""
    u = np.array([[0], [1], [1], [0]])
    delta = np.array([-1.0, 0.0, 0.0, 1.0])
    losses = np.stack([np.where(delta < 0, 1.0, 0.0), np.where(delta > 0, 1.0, 0.0)], axis=-1)[:, None, :]
    info = pair_information(Supersample(u, losses))
    assert info.ldcmi[0] == pytest.approx(LN2, rel=1e-12) and info.quantisation == 0.0


def test_bound_formulas_closed_forms():
    # a memoriser whose held-out member is wrong with probability p: I = p ln 2, V = p, gap = p
    p = 0.1
    assert linear_ecmi_bound(0.0, [p * LN2]) == pytest.approx(p, rel=1e-9)
    assert sqrt_cmi_bound([p * LN2]) == pytest.approx(math.sqrt(2 * p * LN2), rel=1e-12)
    lam = np.linspace(1e-3, 5, 200001)
    brute = ((p * LN2 + (np.cosh(lam) - 1) * p) / lam).min()
    assert variance_cmi_bound([p * LN2], [p]) == pytest.approx(brute, rel=1e-6)
    # the linear bound at a positive training loss: brute force over lambda
    lam = np.linspace(1e-6, LN2 - 1e-9, 400001)
    brute = ((-np.log(2 - np.exp(lam)) * 0.05 + 0.02) / lam).min()
    assert linear_ecmi_bound(0.05, [0.02]) == pytest.approx(brute, rel=1e-6)
    assert linear_ecmi_bound(0.3, [0.0]) == 0.3
    with pytest.raises(ValueError, match="train_risk"):
        linear_ecmi_bound(1.5, [0.1])
    with pytest.raises(ValueError, match="ecmi"):
        linear_ecmi_bound(0.1, [-0.1])


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(2, 12), st.integers(1, 6), st.integers(2, 4))
def test_data_processing_order_of_the_plugin_informations(seed, masks, n, classes):
    """ld-CMI <= e-CMI <= f-CMI pair by pair (functions of functions), each <= ln 2."""
    rng = np.random.default_rng(seed)
    u = rng.integers(0, 2, size=(masks, n))
    preds = rng.integers(0, classes, size=(masks, n, 2))
    # predictions that lean on the mask, so the informations are not all zero
    preds[..., 0] = np.where(rng.random((masks, n)) < 0.5, u, preds[..., 0])
    y = rng.integers(0, classes, size=(n, 2))
    info = pair_information(Supersample(u, (preds != y).astype(float), preds))
    assert np.all(info.ldcmi <= info.ecmi + 1e-12)
    assert np.all(info.ecmi <= info.fcmi + 1e-12)
    assert np.all(info.fcmi <= LN2 + 1e-12) and np.all(info.ldcmi >= 0)
    sqrt_ld, sqrt_f = sqrt_cmi_bound(info.ldcmi), sqrt_cmi_bound(info.fcmi)
    assert sqrt_ld <= sqrt_f + 1e-12


def test_continuous_losses_are_floored_to_a_grid_and_pay_its_width():
    rng = np.random.default_rng(3)
    u = rng.integers(0, 2, size=(20, 30))
    losses = rng.random((20, 30, 2))
    info = pair_information(Supersample(u, losses))
    assert info.quantisation == pytest.approx(1 / 16)
    for b in ecmi_bounds([Supersample(u, losses)], n_boot=5):
        assert b.gap >= 1 / 16


def test_supersample_validation():
    with pytest.raises(ValueError, match="masks"):
        Supersample(np.zeros((1, 3)), np.zeros((1, 3, 2)))
    with pytest.raises(ValueError, match="losses"):
        Supersample(np.zeros((2, 3)), np.full((2, 3, 2), 2.0))
    with pytest.raises(ValueError, match="share n"):
        ecmi_bounds([Supersample(np.zeros((2, 3)), np.zeros((2, 3, 2))),
                     Supersample(np.zeros((2, 4)), np.zeros((2, 4, 2)))])


def test_records_from_a_users_own_loop_feed_the_report(tmp_path):
    """The documented helper: masks in, per-pair losses and predictions out, bounded by ratebound bound."""
    from ratebound import draw_masks, supersample_record
    from ratebound.runs import append_run, load_runs

    sups = _nearest_neighbour_runs(supersamples=2, masks=12, n=40, dim=3, seed=4)
    log = tmp_path / "runs.jsonl"
    masks = draw_masks(40, runs=12, seed=0)
    assert masks.shape == (12, 40) and set(np.unique(masks)) == {0, 1}
    assert not np.array_equal(masks, draw_masks(40, runs=12, seed=1))
    for s_index, s in enumerate(sups):
        for j in range(s.runs):
            rec = supersample_record(run_id=f"s{s_index}-{j}", supersample_id=f"ss{s_index}", mask=s.masks[j],
                                     pair_losses=s.losses[j], pair_predictions=s.predictions[j],
                                     config={"learner": "1-nn"})
            append_run(log, rec)
    (rep,) = bound_report(load_runs([log]), n_boot=20)
    rows = {b.name: b for b in rep.bounds}
    assert rows["f-cmi (Harutyunyan et al.)"].value >= rep.measured["supersample_gap"]
    with pytest.raises(ValueError, match="pair_losses"):
        supersample_record(run_id="x", supersample_id=0, mask=[0, 1], pair_losses=[[0, 1]])


def _exact_pair(joint: np.ndarray) -> dict:
    """Exact terms of one pair from ``joint[u, l0, l1]`` = P(U = u, losses = (l0, l1)), 0-1 losses."""
    def mi(pxu):  # pxu[x, u]
        px, pu = pxu.sum(1, keepdims=True), pxu.sum(0, keepdims=True)
        nz = pxu > 0
        return float((pxu[nz] * np.log(pxu[nz] / (px @ pu)[nz])).sum())

    delta = np.zeros((3, 2))  # delta + 1 in {0, 1, 2}
    for u in range(2):
        for l0 in range(2):
            for l1 in range(2):
                delta[l1 - l0 + 1, u] += joint[u, l0, l1]
    train = sum(joint[u, l0, l1] * (l0, l1)[u] for u in range(2) for l0 in range(2) for l1 in range(2))
    held = sum(joint[u, l0, l1] * (l0, l1)[1 - u] for u in range(2) for l0 in range(2) for l1 in range(2))
    return {"ld": mi(delta), "e": mi(joint.reshape(2, 4).T), "v": float(delta[[0, 2]].sum()),
            "train": float(train), "held": float(held)}


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 5), st.floats(0.0, 3.0))
def test_samplewise_fast_rate_bounds_hold_on_exact_pair_distributions(seed, pairs, concentration):
    """With the exact informations (no plug-in), each bound is at least the exact gap or risk it bounds,
    and the samplewise form is never looser than one lambda for the averages."""
    rng = np.random.default_rng(seed)
    terms = []
    for _ in range(pairs):
        given_u = rng.dirichlet(np.full(4, 0.2 + concentration), size=2)  # P(losses | U = u), any dependence on u
        terms.append(_exact_pair(0.5 * given_u.reshape(2, 2, 2)))
    ld, e, v = (np.array([t[k] for t in terms]) for k in ("ld", "e", "v"))
    train, held = np.array([t["train"] for t in terms]), np.array([t["held"] for t in terms])
    gap = float((held - train).mean())
    ld, e = np.minimum(ld, LN2), np.minimum(e, LN2)  # rounding of the exact informations
    assert variance_cmi_bound(ld, v) >= gap - 1e-12
    assert variance_cmi_bound(ld, v) <= variance_cmi_bound([ld.mean()], [v.mean()]) + 1e-12
    assert linear_ecmi_bound(train, e) >= held.mean() - 1e-12
    assert linear_ecmi_bound(train, e) <= linear_ecmi_bound(float(train.mean()), e) + 1e-12


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.just(0.0) | st.floats(1e-6, LN2), st.just(0.0) | st.floats(1e-6, 1.0)), min_size=1,
                max_size=6))
def test_samplewise_minima_match_brute_force_over_lambda(pairs):
    """The roots found by Newton (variance) and bisection (linear) against a fine grid of lambda, pair by pair."""
    info, risk = np.array(pairs).T
    var = np.maximum(risk, 1e-3)
    lam = np.geomspace(1e-7, 40, 400001)[:, None]
    brute_v = np.minimum(((info + (np.cosh(lam) - 1) * var) / lam).min(0), np.sqrt(var))
    brute_v = np.where(info == 0, 0.0, brute_v)
    assert variance_cmi_bound(info, var) == pytest.approx(brute_v.mean(), rel=1e-5, abs=1e-12)
    lam = LN2 - np.geomspace(1e-12, LN2 - 1e-9, 400001)[:, None]
    with np.errstate(over="ignore"):
        brute_l = np.minimum(((-np.log(2 - np.exp(lam)) * risk + info) / lam).min(0), 1.0)
    brute_l = np.where(info == 0, np.minimum(risk, 1.0), np.where(risk == 0, np.minimum(info / LN2, 1.0), brute_l))
    assert linear_ecmi_bound(risk, info) == pytest.approx(brute_l.mean(), rel=1e-5, abs=1e-12)
    with pytest.raises(ValueError, match="train_risk"):
        linear_ecmi_bound(np.append(risk, 0.1), info)
    with pytest.raises(ValueError, match="variance"):
        variance_cmi_bound(info, np.append(var, 0.1))


@pytest.mark.parametrize("masks, supersamples, concentrated", [(4, 1, True), (10, 2, False), (40, 1, True),
                                                             (20, 3, False)])
def test_estimated_samplewise_bounds_stay_above_a_known_gap(masks, supersamples, concentrated):
    """A learner whose held-out member errs more than its training member by a known amount per pair:
    the samplewise estimates (per-pair minima of noisy plug-in terms, which concavity pulls down) stay
    above the true expected gap, from 4 masks on."""
    rng = np.random.default_rng(masks * 10 + supersamples)
    n = 400
    base = rng.uniform(0.0, 0.4, size=n)
    if concentrated:  # the whole gap on a few pairs
        lift = (rng.random(n) < 0.05) * rng.uniform(0.2, 0.8, size=n)
    else:
        lift = rng.uniform(0.0, 0.1, size=n)
    held_rate = np.clip(base + lift, 0.0, 1.0)
    sups = []
    for _ in range(supersamples):
        u = rng.integers(0, 2, size=(masks, n))
        train, held = rng.random((masks, n)) < base, rng.random((masks, n)) < held_rate
        losses = np.stack([np.where(u == 0, train, held), np.where(u == 1, train, held)], axis=-1)
        sups.append(Supersample(u, losses.astype(float)))
    truth = float((held_rate - base).mean())
    for b in ecmi_bounds(sups, n_boot=10):
        assert b.gap >= truth, (b.name, b.gap, truth)


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("tiny", [1e-200, 1e-300, 5e-324])
def test_fast_rate_minima_stay_finite_and_valid_at_extreme_ratios(tiny):
    """I/V or I/t beyond float range: the variance term is its cap sqrt(V) (or the minimum), the linear one
    tends to I / ln 2 from above; never NaN, never a warning."""
    v = variance_cmi_bound([0.5], [tiny])
    assert math.isfinite(v) and 0.0 < v <= math.sqrt(tiny) * (1 + 1e-12)
    lin = linear_ecmi_bound([tiny], [0.5])
    assert 0.5 / LN2 <= lin <= 0.5 / LN2 * (1 + 1e-9)
    if tiny >= 1e-300:  # a normal float: the small-lambda end to full precision
        assert variance_cmi_bound([tiny], [1.0]) == pytest.approx(math.sqrt(2 * tiny), rel=1e-6, abs=0.0)
        assert linear_ecmi_bound([0.2], [tiny]) == pytest.approx(0.2, rel=1e-12, abs=0.0)
