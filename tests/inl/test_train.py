"""End-to-end training: beats chance, determinism, record contents, config validation."""

import json
import math

import networkx as nx
import numpy as np
import pytest
import torch

from inl._training import INLConfig, INLRun, batch_order, evaluate, prepare, run_id, train

SMALL = dict(n_nodes=6, epochs=6, batch_size=32, latent_width=4, hidden_width=16, threads=1, lr=1e-2,
             dataset_params={"n_train": 400, "n_test": 300, "n_classes": 4})


@pytest.fixture(scope="module")
def runs():
    return {mode: train(INLConfig(mode=mode, **SMALL), progress=False) for mode in ("dense", "tree")}


@pytest.mark.parametrize("mode", ["dense", "tree"])
def test_training_beats_chance(runs, mode):
    run = runs[mode]
    assert isinstance(run, INLRun)
    assert run.test_acc > 0.6  # chance is 0.25
    assert run.history[-1]["ce"] < run.history[0]["ce"]
    assert len(run.history) == SMALL["epochs"]


def test_tree_uses_n_minus_one_edges(runs):
    assert runs["tree"].record["edges_used"] == SMALL["n_nodes"] - 1
    assert runs["dense"].record["edges_used"] == runs["dense"].graph.number_of_edges()
    assert nx.is_tree(runs["tree"].routing.to_undirected())


def test_record_fields(runs):
    for run in runs.values():
        rec = run.record
        json.dumps(rec, allow_nan=False)
        assert rec["schema_version"] == 2 and rec["n_train"] == 400 and rec["loss_range"] == [0.0, 1.0]
        assert rec["test_loss"] == pytest.approx(1 - rec["test_acc"])
        assert rec["train_loss"] == pytest.approx(1 - rec["train_acc"])
        assert rec["train_ce"] > 0 and rec["test_ce"] > 0
        assert 0 <= rec["gate_rate"] <= math.log(SMALL.get("gate_choices", 4)) + 1e-9
        assert rec["gate_rate_kind"] == "hard" and rec["gate_samples"] == "train"
        assert 0 <= rec["gate_rate_soft"] <= math.log(4) + 1e-9
        assert rec["latent_rate"] > 0
        pmf = np.array(rec["context_pmf"])
        table = np.array(rec["gate_distortion"])
        # distinct 0-1 rows over K = 4 choices: at most 2^4, shares are multiples of 1/n_train
        assert 1 <= pmf.size <= 16 and pmf.sum() == pytest.approx(1.0) and np.all(pmf > 0)
        assert np.allclose(pmf * 400, np.round(pmf * 400))
        assert table.shape == (pmf.size, 4) and set(np.unique(table)) <= {0.0, 1.0}
        assert len({tuple(row) for row in table}) == pmf.size
        assert rec["config"] == run.config.to_dict()
        assert rec["run_id"].startswith(f"inl-{run.config.mode}-") and rec["run_id"].endswith("-s0")


def test_forced_root_choices_compose_the_gated_prediction(runs):
    # each training sample's outcome is the outcome of forcing the choice its gate made
    run = runs["dense"]
    views = prepare(run.config).views
    gated = evaluate(run.model, views.train_views, views.train_labels)
    forced = np.stack([
        evaluate(run.model, views.train_views, views.train_labels, force_root_choice=k).correct
        for k in range(run.config.gate_choices)
    ])
    chosen = gated.gate_probs[run.model.root].argmax(1)
    assert np.array_equal(forced[chosen, np.arange(chosen.size)], gated.correct)
    assert gated.error == pytest.approx(run.record["train_loss"])
    # the record's table holds the distinct rows of the per-sample forced losses, with their shares
    pmf, table = np.array(run.record["context_pmf"]), np.array(run.record["gate_distortion"])
    assert table.T @ pmf == pytest.approx(1.0 - forced.mean(1))
    rows, counts = np.unique(1.0 - forced.T, axis=0, return_counts=True)
    assert np.array_equal(rows, table) and np.allclose(counts / counts.sum(), pmf)


@pytest.mark.parametrize("mode", ["dense", "tree"])
def test_training_loss_is_at_least_the_distortion_rate_function_at_the_gate_rate(runs, mode):
    """Regression (audit item 1): D(R_g) came from held-out data and exceeded the training loss."""
    from estimators import distortion_rate

    rec = runs[mode].record
    point = distortion_rate(rec["context_pmf"], rec["gate_distortion"], rec["gate_rate"])
    assert rec["train_loss"] >= point.distortion - 1e-9
    # the hard gate's rate is the entropy of its choices on the training samples
    views = prepare(runs[mode].config).views
    probs = evaluate(runs[mode].model, views.train_views, views.train_labels).gate_probs[runs[mode].model.root]
    share = np.bincount(probs.argmax(1), minlength=probs.shape[1]) / probs.shape[0]
    assert rec["gate_rate"] == pytest.approx(-sum(p * math.log(p) for p in share if p > 0))


def test_supersample_runs_share_the_supersample_and_differ_in_the_mask():
    base = INLConfig(mode="tree", supersample_seed=3, **{**SMALL, "epochs": 2})
    a, b = train(base, progress=False), train(base.replace(seed=1), progress=False)
    other = train(base.replace(supersample_seed=4), progress=False)
    ra, rb = a.record, b.record
    assert ra["n_train"] == 200 and len(ra["mask"]) == 200 and set(ra["mask"]) <= {0, 1}
    assert ra["supersample_id"] == rb["supersample_id"] != other.record["supersample_id"]
    assert ra["mask"] != rb["mask"]
    losses, preds, u = np.array(ra["pair_losses"]), np.array(ra["pair_predictions"]), np.array(ra["mask"])
    assert losses.shape == preds.shape == (200, 2)
    # the training members' losses are the run's training loss
    assert losses[np.arange(200), u].mean() == pytest.approx(ra["train_loss"])
    # the supersample is the same data for both masks: the pairs hold the same examples
    sa, sb = prepare(base).supersample, prepare(base.replace(seed=1)).supersample
    assert np.array_equal(sa.pairs, sb.pairs) and np.array_equal(sa.labels, sb.labels)
    assert not np.array_equal(sa.labels, prepare(base.replace(supersample_seed=4)).supersample.labels)
    # a different supersample is a new draw from the same task (class means of data_seed)
    assert prepare(base).views.test_labels.shape == (300,)


def test_same_config_gives_bit_identical_record():
    config = INLConfig(mode="tree", **{**SMALL, "epochs": 2})
    a, b = train(config, progress=False), train(config, progress=False)
    assert json.dumps(a.record, sort_keys=True) == json.dumps(b.record, sort_keys=True)
    for name, p in a.model.state_dict().items():
        assert torch.equal(p, b.model.state_dict()[name])
    c = train(config.replace(seed=1), progress=False)
    assert c.record["run_id"] != a.record["run_id"]
    assert c.record["test_ce"] != a.record["test_ce"]


@pytest.mark.slow  # a fresh interpreter pays torch's and scikit-learn's imports (~5 s CPU)
def test_record_is_bit_identical_in_another_process():
    # another interpreter, another hash seed: the same config gives the same bytes
    import os
    import subprocess
    import sys
    from pathlib import Path

    config = INLConfig(mode="dense", **{**SMALL, "epochs": 1, "n_nodes": 4,
                                         "dataset_params": {"n_train": 60, "n_test": 30}})
    script = (
        "import json, sys; from inl._training import INLConfig, train; "
        "config = INLConfig.from_dict(json.loads(sys.argv[1])); "
        "print(json.dumps(train(config, progress=False).record, sort_keys=True))"
    )
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(root)}
    out = subprocess.run([sys.executable, "-c", script, json.dumps(config.to_dict())], cwd=root, env=env,
                         capture_output=True, text=True, check=True, timeout=120).stdout
    here = json.dumps(train(config, progress=False).record, sort_keys=True)
    assert out.strip() == here


def test_penalties_lower_their_rates():
    base = INLConfig(mode="tree", **{**SMALL, "epochs": 3})
    free = train(base, progress=False).record
    latent = train(base.replace(beta_latent=0.05), progress=False).record
    gate = train(base.replace(beta_gate=0.5), progress=False).record
    assert latent["latent_rate"] < 0.5 * free["latent_rate"]
    assert gate["gate_rate_total"] < 0.25 * free["gate_rate_total"]


def test_training_leaves_global_torch_state_alone():
    rng = torch.random.get_rng_state()
    threads, det = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    train(INLConfig(mode="tree", **{**SMALL, "epochs": 1, "threads": 1}), progress=False)
    assert torch.equal(rng, torch.random.get_rng_state())
    assert torch.get_num_threads() == threads and torch.are_deterministic_algorithms_enabled() == det


def test_user_graph():
    G = nx.cycle_graph(4)
    nx.set_edge_attributes(G, 1e6, "capacity")
    config = INLConfig(n_nodes=4, mode="tree", epochs=1, threads=1, dataset_params={"n_train": 40, "n_test": 20})
    run = train(config, graph=G, progress=False)
    assert run.graph is G and run.record["edges_used"] == 3
    assert len(run.record["config"]["graph_sha256"]) == 64
    with pytest.raises(ValueError, match="graph has 4 nodes"):
        train(config.replace(n_nodes=5), graph=G, progress=False)


def test_divergence_raises_instead_of_logging_nan():
    config = INLConfig(n_nodes=4, epochs=3, lr=1e30, threads=1, dataset_params={"n_train": 60, "n_test": 30})
    with pytest.raises(FloatingPointError, match=r"training diverged at epoch .*lr=1e\+30") as info:
        train(config, progress=False)
    assert isinstance(info.value, ValueError)  # the command line reports it in one line


def test_batch_order_is_a_seeded_partition():
    batches = batch_order(10, 4, seed=3, epoch=0)
    assert [len(b) for b in batches] == [4, 4, 2]
    assert sorted(np.concatenate(batches).tolist()) == list(range(10))
    again = batch_order(10, 4, seed=3, epoch=0)
    assert all(np.array_equal(x, y) for x, y in zip(batches, again))
    assert not np.array_equal(np.concatenate(batches), np.concatenate(batch_order(10, 4, seed=3, epoch=1)))
    with pytest.raises(ValueError, match="batch_size"):
        batch_order(10, 0, seed=3, epoch=0)


def test_config_round_trip_and_validation():
    config = INLConfig(mode="tree", capacity_range=(1, 2), dataset_params={"n_train": 10})
    assert INLConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    assert len(config.digest()) == 64 and config.payload_bits == 32 * config.latent_width
    with pytest.raises(ValueError, match=r"unknown config keys \['colour'\]"):
        INLConfig.from_dict({"colour": 1})
    with pytest.raises(ValueError, match="mode must be one of"):
        INLConfig(mode="sparse")
    with pytest.raises(ValueError, match="root must be a node"):
        INLConfig(n_nodes=3, root=3)
    with pytest.raises(ValueError, match="gate_choices"):
        INLConfig(gate_choices=1)
    with pytest.raises(ValueError, match="beta_gate"):
        INLConfig(beta_gate=-1.0)
    with pytest.raises(ValueError, match="dataset must be one of"):
        INLConfig(dataset="mnist")
    with pytest.raises(ValueError, match="capacity_range"):
        INLConfig(capacity_range=(5.0, 1.0))
    with pytest.raises(ValueError, match="config must be an INLConfig"):
        train({"n_nodes": 3})
    for bad in (5.0, (1.0, 2.0, 3.0), "ab"):
        with pytest.raises(ValueError, match="capacity_range"):
            INLConfig(capacity_range=bad)
    with pytest.raises(ValueError, match="capacity_range"):
        INLConfig.from_dict({"capacity_range": 7})
    with pytest.raises(ValueError, match="values must be a dict"):
        INLConfig.from_dict([("n_nodes", 3)])
    for name in ("data_seed", "threads", "seed", "epochs"):
        with pytest.raises(ValueError, match=name):
            INLConfig(**{name: -1})
    assert INLConfig(data_seed=None, threads=None).threads is None


def test_run_id_is_the_config_digest():
    config = INLConfig(mode="tree", seed=3)
    assert run_id(config) == f"inl-tree-{config.digest()[:12]}-s3"
    assert run_id(config, graph_sha256="0" * 64) != run_id(config)
    assert run_id(config.replace(lr=1e-3)) != run_id(config)


def test_evaluate_checks_its_arguments(runs):
    run = runs["tree"]
    views = prepare(run.config).views
    with pytest.raises(ValueError, match="labels must be 1-D with one entry per row"):
        evaluate(run.model, views.test_views, views.test_labels[:-1])
    with pytest.raises(ValueError, match="views must hold 5 batches"):
        evaluate(run.model, views.test_views[:-1], views.test_labels)
    with pytest.raises(ValueError, match="force_root_choice|force_choice"):
        evaluate(run.model, views.test_views, views.test_labels, force_root_choice=run.config.gate_choices)


def test_digits_views_train_end_to_end():
    config = INLConfig(n_nodes=5, dataset="digits", epochs=4, batch_size=64, threads=1, lr=1e-2,
                       dataset_params={"test_fraction": 0.3})
    run = train(config, progress=False)
    assert run.record["n_train"] + run.record["n_test"] == 1797
    assert run.test_acc > 0.5  # chance is 0.1


@pytest.mark.slow
def test_default_config_tree_matches_dense_with_less_exchange():
    dense = train(INLConfig(mode="dense", threads=1), progress=False)
    tree = train(INLConfig(mode="tree", threads=1), progress=False)
    assert dense.test_acc > 0.9 and tree.test_acc > 0.9
    assert abs(dense.test_acc - tree.test_acc) < 0.03
    assert tree.exchange_floats < 0.6 * dense.exchange_floats


def test_torch_settings_hold_torch_and_blas_threads_and_restore_them_also_on_an_error():
    """One thread scope for training (the package's hold_threads): torch and the BLAS pools, restored after."""
    import torch
    from threadpoolctl import threadpool_info

    from inl._training import torch_settings

    def blas():
        return sorted(p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas")

    before, torch_before = blas(), torch.get_num_threads()
    det_before = torch.are_deterministic_algorithms_enabled()
    with pytest.raises(RuntimeError, match="inside"):
        with torch_settings(threads=1, deterministic=not det_before):
            assert torch.get_num_threads() == 1
            assert all(n == 1 for n in blas())
            assert torch.are_deterministic_algorithms_enabled() is (not det_before)
            raise RuntimeError("inside")
    assert blas() == before and torch.get_num_threads() == torch_before
    assert torch.are_deterministic_algorithms_enabled() is det_before
