"""Distributed INL (one process per node over gloo) against the in-process trainer.

The ranks start from a fork server that imports torch once (see
``inl.distributed.run_distributed``); the first run of the session pays that
start-up, the others about a second each.
"""

import json
import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from inl.accounting import closed_form_exchange
from inl.distributed import DistributedTrainingError, run_distributed
from inl.runlog import append_record, read_records
from inl._training import INLConfig, build_network, prepare, train

TINY = dict(n_nodes=5, epochs=2, batch_size=64, latent_width=4, hidden_width=16, threads=1,
            beta_latent=1e-3, beta_gate=1e-2, dataset_params={"n_train": 256, "n_test": 128, "n_classes": 4})


@pytest.fixture(scope="module")
def tree_runs(tmp_path_factory):
    config = INLConfig(mode="tree", **TINY)
    log = tmp_path_factory.mktemp("runs") / "runs.jsonl"
    return train(config, progress=False), run_distributed(config, log=log, progress=False), log


def _max_difference(a, b) -> float:
    sa, sb = a.model.state_dict(), b.model.state_dict()
    assert sa.keys() == sb.keys()
    return max((sa[k] - sb[k]).abs().max().item() for k in sa)


def test_tree_parameters_match_in_process(tree_runs):
    local, remote, _ = tree_runs
    assert _max_difference(local, remote) <= 1e-6
    # ... and training moved them: the match is not the shared initialisation
    config = local.config
    setup = prepare(config)
    init = build_network(config, setup.routing, setup.views).state_dict()
    assert max((init[k] - v).abs().max().item() for k, v in remote.model.state_dict().items()) > 1e-3
    assert remote.test_acc == local.test_acc and remote.train_acc == local.train_acc


def test_bytes_handed_to_gloo_equal_the_accounting(tree_runs):
    local, remote, _ = tree_runs
    traffic = remote.record["distributed"]
    n_samples = remote.exchange.n_samples
    assert traffic["world_size"] == 5 and traffic["backend"] == "gloo"
    assert traffic["comm_bytes_total"] == remote.exchange.bytes_total == local.exchange.bytes_total
    assert traffic["comm_bytes_total"] == remote.record["exchange_bytes_total"]
    assert traffic["comm_bytes_forward"] == traffic["comm_bytes_backward"]
    # per edge: what gloo was handed equals the trainer's count (float32 = 4 bytes)
    per_edge = {(u, v): b for u, v, b in traffic["comm_bytes_per_edge"]}
    assert per_edge.keys() == local.exchange.per_edge.keys() == set(remote.routing.edges)
    for edge, floats_per_sample in local.exchange.per_edge.items():
        assert per_edge[edge] == round(floats_per_sample * n_samples * 4)
    # and the closed form: 2 L floats per used edge per sample
    closed = closed_form_exchange(remote.routing, remote.config.latent_width)
    assert traffic["comm_bytes_per_sample"] == pytest.approx(4 * closed)
    # the per-epoch held-out pass: 4 edges x 128 samples x L floats x 4 bytes, each epoch
    assert traffic["eval_bytes_total"] == 4 * 128 * remote.config.latent_width * 4 * remote.config.epochs


def test_record_matches_in_process_and_is_logged_by_rank_0(tree_runs):
    local, remote, log = tree_runs
    extra = set(remote.record) - set(local.record)
    assert extra == {"distributed"}
    for key, value in local.record.items():
        if isinstance(value, float):
            assert remote.record[key] == pytest.approx(value, rel=1e-6, abs=1e-9), key
        elif key not in ("gate_distortion", "context_pmf", "gate_rates", "exchange_per_edge"):
            assert remote.record[key] == value, key
    assert remote.record["context_pmf"] == pytest.approx(local.record["context_pmf"])
    for ours, theirs in zip(remote.history, local.history):
        for key in ("objective", "ce", "kl", "gate_rate", "test_acc"):
            assert ours[key] == pytest.approx(theirs[key], rel=1e-5), key
        assert len(ours["comm_seconds"]) == 5 and min(ours["comm_seconds"]) >= 0
    assert read_records(log) == [json.loads(json.dumps(remote.record))]


def test_dense_routing_with_several_parents_and_root_2_matches_in_process():
    config = INLConfig(mode="dense", root=2, **{**TINY, "n_nodes": 4, "epochs": 1})
    local = train(config, progress=False)
    remote = run_distributed(config, progress=False)
    assert max(d for _, d in remote.routing.out_degree) >= 2  # errors from two parents are summed
    assert _max_difference(local, remote) <= 1e-6
    assert remote.record["distributed"]["comm_bytes_total"] == local.exchange.bytes_total


def _no_rank_left():
    deadline = time.monotonic() + 5
    while multiprocessing.active_children() and time.monotonic() < deadline:
        time.sleep(0.05)
    return not [p for p in multiprocessing.active_children() if p.name.startswith("inl-rank")]


def test_a_killed_rank_stops_the_run_quickly_and_leaves_the_log_intact(tmp_path):
    log = tmp_path / "runs.jsonl"
    append_record(log, {"run_id": "earlier", "n_train": 1})
    before = log.read_bytes()
    config = INLConfig(mode="tree", **TINY)
    tic = time.monotonic()
    with pytest.raises(DistributedTrainingError, match="rank 2 died") as info:
        # a gloo timeout of 120 s: stopping in seconds is the launcher's doing
        run_distributed(config, log=log, progress=False, timeout=120, _fail_rank=2, _fail_at_step=3)
    elapsed = time.monotonic() - tic
    assert elapsed < 45
    assert info.value.failed_ranks[0] == 2
    assert log.read_bytes() == before
    assert _no_rank_left()


def test_a_hung_rank_times_out_the_others():
    config = INLConfig(mode="tree", **TINY)
    tic = time.monotonic()
    with pytest.raises(DistributedTrainingError, match="Timed out") as info:
        run_distributed(config, progress=False, timeout=3, _fail_rank=3, _fail_at_step=1, _fail_mode="hang")
    assert time.monotonic() - tic < 60
    assert 3 in info.value.hung_ranks
    assert "rank 3 was still running and was terminated" in str(info.value)
    assert _no_rank_left()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"world_size": 3}, "world_size"),
        ({"backend": "nccl"}, "backend"),
        ({"timeout": 0}, "timeout"),
        ({"deadline": -1.0}, "deadline"),
        ({"start_method": "fork"}, "start_method"),
        ({"_fail_rank": 9}, "_fail_rank"),
    ],
)
def test_bad_arguments_raise_before_starting_processes(kwargs, match):
    with pytest.raises(ValueError, match=match):
        run_distributed(INLConfig(mode="tree", **TINY), progress=False, **kwargs)


@pytest.mark.slow
def test_worker_main_under_the_standard_environment(tmp_path):
    """``python -m inl.distributed`` on 3 processes with RANK/WORLD_SIZE/MASTER_* (as torchrun does)."""
    from inl.distributed import _free_port

    config = tmp_path / "tiny.toml"
    config.write_text(
        'n_nodes = 3\nmode = "tree"\nepochs = 1\nbatch_size = 64\nlatent_width = 4\n'
        'hidden_width = 16\nlog = "runs.jsonl"\n[dataset_params]\nn_train = 128\nn_test = 64\n'
    )
    root = Path(__file__).resolve().parents[2]
    port = str(_free_port())
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "inl.distributed", str(config), "--no-progress", "--timeout", "60"],
            cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONPATH": str(root), "RANK": str(r), "WORLD_SIZE": "3",
                 "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port},
        )
        for r in range(3)
    ]
    outputs = [p.communicate(timeout=240) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outputs
    (record,) = read_records(tmp_path / "runs.jsonl")
    local = train(INLConfig.from_dict({k: v for k, v in _toml(config).items() if k != "log"}), progress=False)
    assert record["distributed"]["comm_bytes_total"] == local.exchange.bytes_total
    assert record["test_acc"] == local.test_acc


def _toml(path):
    import tomllib

    return tomllib.loads(path.read_text())


@pytest.mark.slow
@pytest.mark.parametrize("mode, n_nodes, seed", [("dense", 6, 1), ("tree", 7, 2), ("dense", 3, 3)])
def test_other_graphs_and_seeds_match_in_process(mode, n_nodes, seed):
    config = INLConfig(mode=mode, seed=seed, graph_seed=seed, **{**TINY, "n_nodes": n_nodes})
    local, remote = train(config, progress=False), run_distributed(config, progress=False)
    assert _max_difference(local, remote) <= 1e-6
    assert remote.record["distributed"]["comm_bytes_total"] == local.exchange.bytes_total
    assert remote.record["test_acc"] == local.record["test_acc"]


@pytest.mark.slow
def test_spawn_start_method_matches_in_process():
    config = INLConfig(mode="tree", **{**TINY, "n_nodes": 3, "epochs": 1})
    local, remote = train(config, progress=False), run_distributed(config, progress=False, start_method="spawn")
    assert _max_difference(local, remote) <= 1e-6
    assert remote.record["distributed"]["comm_bytes_total"] == local.exchange.bytes_total


def test_train_cli_with_processes_logs_the_distributed_record(tmp_path, tree_runs):
    from ratebound.cli import main

    local, _, _ = tree_runs
    lines = [f"{key} = {json.dumps(value)}" for key, value in TINY.items() if key != "dataset_params"]
    lines += ['mode = "tree"', "", "[dataset_params]"]
    lines += [f"{key} = {value}" for key, value in TINY["dataset_params"].items()]
    config = tmp_path / "run.toml"
    config.write_text("\n".join(lines) + "\n")
    log = tmp_path / "runs.jsonl"
    assert main(["train", str(config), "--processes", "5", "--log", str(log), "--no-progress"]) == 0
    (record,) = read_records(log)
    assert record["distributed"]["world_size"] == 5
    assert record["distributed"]["comm_bytes_total"] == local.exchange.bytes_total
    assert record["test_acc"] == local.test_acc


def test_train_cli_rejects_zero_processes(tmp_path, capsys):
    from ratebound.cli import main

    config = tmp_path / "run.toml"
    config.write_text("n_nodes = 3\n")
    assert main(["train", str(config), "--processes", "0", "--log", str(tmp_path / "r.jsonl")]) == 2
    assert "--processes" in capsys.readouterr().err


def test_a_script_without_a_main_guard_gets_one_line_saying_what_to_add(tmp_path):
    """Rank processes re-run the caller's script; without the guard each called run_distributed again."""
    script = tmp_path / "unguarded.py"
    script.write_text(
        "from inl import INLConfig, run_distributed\n"
        "config = INLConfig(n_nodes=3, mode='tree', epochs=1, dataset_params={'n_train': 64, 'n_test': 32})\n"
        "run_distributed(config, progress=False)\n"
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=240, env={**os.environ, "PYTHONPATH": str(root)})
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert str(script) in last and 'if __name__ == "__main__":' in last, done.stderr
    assert "died" not in done.stderr and "bootstrapping" not in done.stderr
    assert len(done.stderr) < 2000  # the caller's traceback and that line; was 14 KB
