"""The bound report: grouping, every bound its fields allow, end-to-end on synthetic bank runs."""

import json
import math

import numpy as np
import pytest

from ratebound.cli import main
from ratebound.generalization import union_bound, xu_raginsky
from ratebound.report import bound_report, group_runs
from ratebound.runs import RunRecord, load_runs


def _by_name(report):
    return {b.name: b for b in report.bounds}, {m.name: m for m in report.missing}


def test_minimal_record_lists_every_bound_as_missing():
    (rep,) = bound_report([RunRecord(run_id="a", n_train=10)])
    assert rep.bounds == ()
    assert rep.sigma == 0.5 and "default" in rep.sigma_source
    names = {m.name for m in rep.missing}
    assert {"union (finite bank)", "xu-raginsky (posterior)", "cmi (Steinke-Zakynthinou)",
            "rate-distortion-generalisation (D-INL)", "occam (finite bank)"} <= names
    assert all(m.needs for m in rep.missing)


def test_groups_by_config_and_sigma_from_loss_range():
    runs = [RunRecord(run_id="a", n_train=10, config={"x": 1}, loss_range=(0.0, 4.0), bank_size=3),
            RunRecord(run_id="b", n_train=20, config={"x": 1}, loss_range=(0.0, 4.0), bank_size=3),
            RunRecord(run_id="c", n_train=5, config={"x": 2}, bank_size=3)]
    assert [len(v) for v in group_runs(runs).values()] == [2, 1]
    first, second = bound_report(runs, sigma=1.0)
    assert first.sigma == 2.0 and first.n_train == 10
    assert second.sigma == 1.0 and second.sigma_source == "given"
    bounds, _ = _by_name(first)
    assert bounds["union (finite bank)"].value == pytest.approx(union_bound(3, 10, sigma=2.0))
    # a given sigma without a loss range: the [0,1]-loss bounds ask for the range
    _, missing = _by_name(second)
    assert "loss_range" in missing["occam (finite bank)"].needs


def test_inconsistent_bank_size_is_an_error():
    runs = [RunRecord(run_id="a", n_train=10, bank_size=3), RunRecord(run_id="b", n_train=10, bank_size=4)]
    with pytest.raises(ValueError, match="bank_size"):
        bound_report(runs)


def test_bad_options():
    with pytest.raises(ValueError, match="delta"):
        bound_report([RunRecord(run_id="a", n_train=1)], delta=1.0)
    with pytest.raises(ValueError, match="sigma"):
        bound_report([RunRecord(run_id="a", n_train=1)], sigma=-2.0)
    with pytest.raises(ValueError, match="records"):
        bound_report([])


def test_posterior_bound_uses_bank_mi_closed_form():
    # two training sets, each selecting a different hypothesis with certainty: I(S;W) = ln 2
    runs = [RunRecord(run_id=str(i), n_train=50, posterior=(1.0, 0.0) if i % 2 else (0.0, 1.0), bank_size=2)
            for i in range(10)]
    (rep,) = bound_report(runs)
    bounds, _ = _by_name(rep)
    xr = bounds["xu-raginsky (posterior)"]
    assert xr.terms["I(S;W)"] == pytest.approx(math.log(2))
    assert xr.value == pytest.approx(xu_raginsky(math.log(2), 50))
    assert xr.kind == "estimate" and bounds["union (finite bank)"].kind == "certificate"


@pytest.mark.parametrize("alpha", [float("inf"), 2.0])
def test_end_to_end_xu_raginsky_bounds_measured_gap(make_bank_runs, write_jsonl, capsys, alpha):
    """Finite-bank selection on independent training sets: logged, reported, bound >= measured gap."""
    records = make_bank_runs(runs=150, n=40, bank_size=9, alpha=alpha, seed=7)
    path = write_jsonl(records)
    assert main(["bound", str(path), "--json"]) == 0
    (group,) = json.loads(capsys.readouterr().out)
    gap = group["measured"]["gap"]
    bounds = {b["name"]: b for b in group["bounds"]}
    assert gap > 0  # selection on the training set does overfit here
    for name in ("xu-raginsky (posterior)", "xu-raginsky (selected hypotheses)", "union (finite bank)"):
        assert bounds[name]["value"] >= gap, name
    # the high-probability risk bounds hold per run at least 1 - delta of the time
    per_run_ok = np.mean([
        r["test_loss"] <= _occam(r) for r in records
    ])
    assert per_run_ok >= 0.95
    assert bounds["occam (finite bank)"]["value"] >= group["measured"]["test_loss"]
    assert bounds["xu-raginsky (posterior)"]["value"] <= bounds["union (finite bank)"]["value"]


def _occam(record):
    from ratebound.generalization import occam_bound

    return occam_bound(record["train_loss"], record["bank_size"], record["n_train"])


def test_supersample_bounds_cover_the_supersample_gap(make_supersample_runs):
    from ratebound.runs import parse_record

    records = [parse_record(r)[0] for r in make_supersample_runs(supersamples=3, masks=24, n=20, bank_size=7, seed=5)]
    (rep,) = bound_report(records)
    bounds, missing = _by_name(rep)
    gap = rep.measured["supersample_gap"]
    assert bounds["cmi (Steinke-Zakynthinou)"].value >= gap
    for name in ("loss-difference cmi (Wang-Mao)", "loss-difference cmi, variance form",
                 "e-cmi linear, fast rate (Hellstrom-Durisi)"):
        assert bounds[name].value >= gap and bounds[name].kind == "estimate"
    assert "pair_predictions" in missing["f-cmi (Harutyunyan et al.)"].needs
    # runs of one supersample are not independent training sets
    assert "xu-raginsky (selected hypotheses)" in missing


def test_text_table_and_missing_list(make_bank_runs, write_jsonl, capsys):
    path = write_jsonl(make_bank_runs(runs=20, n=30, bank_size=5, alpha=float("inf"), seed=1)
                       + make_bank_runs(runs=20, n=30, bank_size=5, alpha=1.0, seed=2))
    assert main(["bound", str(path)]) == 0
    out = capsys.readouterr().out
    assert "group 1 of 2" in out and "group 2 of 2" in out
    assert "not computable:" in out and "needs gate_rate" in out
    assert "certificate" in out and "estimate" in out


def test_load_then_report_on_logs_written_by_append(tmp_path, make_bank_runs):
    from ratebound.runs import append_run

    path = tmp_path / "log.jsonl"
    for rec in make_bank_runs(runs=5, n=10, bank_size=3, alpha=1.0, seed=0):
        append_run(path, rec)
    (rep,) = bound_report(load_runs(path))
    assert len(rep.run_ids) == 5


def _binary_entropy(p):
    return -(p * math.log(p) + (1 - p) * math.log(1 - p))


def test_rdg_bound_from_logged_gate_fields():
    """D(R_g) by Blahut-Arimoto: a uniform context with Hamming gate loss has R(D) = ln 2 - h(D)."""
    rate = math.log(2) - _binary_entropy(0.1)  # so D(R_g) = 0.1
    runs = [
        RunRecord(run_id=str(i), n_train=100, loss_range=(0.0, 1.0), gate_rate=rate,
                  context_pmf=(0.5, 0.5), gate_distortion=((0.0, 1.0), (1.0, 0.0)),
                  train_loss=train, posterior=(1.0, 0.0) if i % 2 else (0.0, 1.0))
        for i, train in enumerate([0.15, 0.05, 0.13, 0.11])
    ]
    (rep,) = bound_report(runs)
    bounds, _ = _by_name(rep)
    rdg = bounds["rate-distortion-generalisation (D-INL)"]
    assert rdg.terms["D(R_g)"] == pytest.approx(0.1, abs=1e-4)
    # delta_m is reported raw, never floored (the run with training loss 0.05 counts -0.05)
    assert rdg.terms["delta_m raw"] == pytest.approx(np.mean([0.15, 0.05, 0.13, 0.11]) - 0.1, abs=1e-4)
    assert rdg.terms["delta_m raw min"] == pytest.approx(-0.05, abs=1e-4)
    assert rdg.terms["generalization source"] == "xu-raginsky (I(S;W) from posterior)"
    assert "need not lie below" in rdg.terms["note"]  # no gate_samples = "train": schema-1 contexts
    assert rdg.value == pytest.approx(rdg.terms["D(R_g)"] + rdg.terms["delta_m raw"]
                                      + xu_raginsky(math.log(2), 100), rel=1e-9)
    assert rdg.kind == "estimate" and rdg.target == "risk"


def test_seeds_are_ignored_when_grouping(write_jsonl, capsys):
    runs = [RunRecord(run_id=str(i), n_train=5, config={"lr": 0.1, "seed": i, "data_seed": 10 + i})
            for i in range(4)] + [RunRecord(run_id="other", n_train=5, config={"lr": 0.2, "seed": 0})]
    reports = bound_report(runs)
    assert [len(r.run_ids) for r in reports] == [4, 1]
    assert reports[0].config == {"lr": 0.1}
    assert [len(r.run_ids) for r in bound_report(runs, ignore=())] == [1, 1, 1, 1, 1]
    path = write_jsonl([r.to_dict() for r in runs])
    assert main(["bound", str(path), "--json", "--ignore-keys", ""]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 5


def test_loss_range_logged_by_some_runs_is_not_overridden_by_the_default():
    # one run logs [0, 2], the other nothing: sigma is 1 (not the default 0.5 of a [0, 1] loss)
    runs = [RunRecord(run_id="a", n_train=10, loss_range=(0.0, 2.0), bank_size=4, train_loss=1.5),
            RunRecord(run_id="b", n_train=10, bank_size=4, train_loss=1.2)]
    (rep,) = bound_report(runs)
    assert rep.sigma == 1.0 and "1 of 2 runs" in rep.sigma_source
    bounds, _ = _by_name(rep)
    assert bounds["union (finite bank)"].value == pytest.approx(union_bound(4, 10, sigma=1.0))
    assert 1.2 < bounds["occam (finite bank)"].value <= 2.0  # rescaled to [0, 2], not clipped to 1


def test_different_loss_ranges_use_the_widest_and_skip_unit_bounds():
    runs = [RunRecord(run_id="a", n_train=10, loss_range=(0.0, 1.0), bank_size=4, train_loss=0.5),
            RunRecord(run_id="b", n_train=10, loss_range=(0.0, 3.0), bank_size=4, train_loss=0.5)]
    (rep,) = bound_report(runs)
    assert rep.sigma == 1.5 and "widest" in rep.sigma_source
    _, missing = _by_name(rep)
    assert "loss_range" in missing["occam (finite bank)"].needs


def test_train_loss_outside_the_assumed_unit_range_is_not_clipped():
    # no loss_range logged: [0, 1] is assumed; a cross-entropy of 2.3 must not become a bound of 1
    runs = [RunRecord(run_id="a", n_train=50, bank_size=4, train_loss=2.3, posterior=(0.25,) * 4)]
    with pytest.raises(ValueError, match="outside \\[0, 1\\].*loss_range"):
        bound_report(runs)  # regression: printed a [0,1]-loss bound beside a gap of 2
    (rep,) = bound_report(runs, sigma=1.0)
    bounds, missing = _by_name(rep)
    assert "occam (finite bank)" not in bounds and "pac-bayes-kl (posterior, uniform prior)" not in bounds
    assert "loss_range" in missing["occam (finite bank)"].needs
    assert "loss_range" in missing["pac-bayes-kl (posterior, uniform prior)"].needs


def test_posteriors_of_one_supersample_are_not_independent_training_sets():
    runs = [RunRecord(run_id=f"r{j}", n_train=2, supersample_id=0, mask=(j % 2, 0),
                      posterior=(1.0, 0.0) if j % 2 else (0.0, 1.0)) for j in range(4)]
    (rep,) = bound_report(runs)
    bounds, missing = _by_name(rep)
    assert "xu-raginsky (posterior)" not in bounds
    assert "supersample" in missing["xu-raginsky (posterior)"].reason


def test_runs_on_one_training_set_are_not_draws_of_s():
    """Regression (audit item 7): three runs on one data set gave Xu-Raginsky 0.0 against a gap of 0.25."""
    runs = [RunRecord(run_id=f"r{j}", n_train=50, loss_range=(0.0, 1.0), hypothesis=2, bank_size=4,
                      train_loss=0.1, test_loss=0.35, config={"lr": 0.1, "seed": j, "data_seed": 7})
            for j in range(3)]
    (rep,) = bound_report(runs)
    bounds, missing = _by_name(rep)
    assert "xu-raginsky (selected hypotheses)" not in bounds
    assert "share 1 training set" in missing["xu-raginsky (selected hypotheses)"].reason
    # on three independent training sets the same selections are counted
    independent = [RunRecord(**{**r.__dict__, "config": {**r.config, "data_seed": j}}) for j, r in enumerate(runs)]
    (rep,) = bound_report(independent)
    assert "xu-raginsky (selected hypotheses)" in _by_name(rep)[0]


def test_group_labels_name_the_config_entries_that_differ():
    runs = [RunRecord(run_id=f"{mode}{j}", n_train=5, config={"mode": mode, "lr": 0.1, "seed": j,
                                                                "dataset_params": {"n_train": 5}})
            for mode in ("dense", "tree") for j in range(2)]
    labels = [r.label for r in bound_report(runs)]
    assert labels == ['group 1 of 2: mode="dense"', 'group 2 of 2: mode="tree"']
    assert bound_report(runs[:2])[0].label == "group 1 of 1: all runs"


def test_held_out_set_bound_of_a_single_run_is_a_certificate():
    from ratebound.generalization import kl_inverse

    run = RunRecord(run_id="a", n_train=100, loss_range=(0.0, 1.0), train_loss=0.0, test_loss=0.1,
                    extra={"n_test": 1000})
    (rep,) = bound_report([run], delta=0.05)
    row = _by_name(rep)[0]["test-set (held-out, binomial kl)"]
    assert row.kind == "certificate" and row.target == "risk"
    assert row.value == pytest.approx(kl_inverse(0.1, math.log(20) / 1000))
    assert 0.1 < row.value < 0.13


def test_pac_bayes_row_is_kl_bound_at_ln_k_minus_the_posterior_entropy():
    from ratebound.generalization import kl_bound

    q = (0.5, 0.25, 0.25, 0.0)
    runs = [RunRecord(run_id=str(i), n_train=200, bank_size=4, train_loss=0.1, loss_range=(0.0, 1.0), posterior=q)
            for i in range(2)]
    (rep,) = bound_report(runs)
    row = {b.name: b for b in rep.bounds}["pac-bayes-kl (posterior, uniform prior)"]
    kl = math.log(4) - (0.5 * math.log(2) + 0.5 * math.log(4))  # ln K - H(Q)
    assert row.terms["mean KL(Q||P)"] == pytest.approx(kl, rel=1e-12)
    assert row.value == pytest.approx(kl_bound(0.1, kl, 200, delta=0.05), rel=1e-9)
