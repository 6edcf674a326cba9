"""`ratebound train` and the run log: atomic appends, interrupts leave the log intact."""

import json

import pytest

import inl._training
from inl.runlog import append_record, check_record, read_records
from ratebound.cli import main
from ratebound.runs import load_runs

CONFIG = """
n_nodes = 4
mode = "tree"
epochs = 2
batch_size = 32
latent_width = 3
hidden_width = 8
threads = 1
log = "runs.jsonl"

[dataset_params]
n_train = 60
n_test = 30
"""


@pytest.fixture
def config_path(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text(CONFIG)
    return path


def test_train_appends_one_valid_line(config_path, capsys):
    log = config_path.parent / "runs.jsonl"
    assert main(["train", str(config_path), "--no-progress"]) == 0
    lines = log.read_text().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["n_train"] == 60 and record["edges_used"] == 3 and record["config"]["mode"] == "tree"
    assert "test_acc" in capsys.readouterr().out
    # the same config again: bit-identical run, already logged, not duplicated
    assert main(["train", str(config_path), "--no-progress"]) == 0
    assert "already in" in capsys.readouterr().out and len(log.read_text().splitlines()) == 1
    assert main(["train", str(config_path), "--no-progress", "--seed", "1", "--mode", "dense"]) == 0
    records = read_records(log)
    assert len(records) == 2 and records[1]["config"]["seed"] == 1 and records[1]["config"]["mode"] == "dense"
    # the consumer side of the schema accepts what we write
    parsed = load_runs([log])
    assert [r.run_id for r in parsed] == [r["run_id"] for r in records]


def test_interrupt_during_training_leaves_log_intact(config_path, monkeypatch, capsys):
    log = config_path.parent / "runs.jsonl"
    log.write_text('{"n_train":1,"run_id":"old"}\n')
    before = log.read_bytes()
    calls = []

    def interrupted(*args, **kwargs):
        calls.append(1)
        raise KeyboardInterrupt

    monkeypatch.setattr(inl._training, "_train_epoch", interrupted)
    assert main(["train", str(config_path), "--no-progress"]) == 130
    assert calls and log.read_bytes() == before
    assert "interrupted" in capsys.readouterr().err


def test_interrupt_during_write_leaves_log_intact(tmp_path, monkeypatch):
    log = tmp_path / "runs.jsonl"
    append_record(log, {"run_id": "a", "n_train": 3})
    before = log.read_bytes()

    def interrupted(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr("inl.runlog.os.replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        append_record(log, {"run_id": "b", "n_train": 3})
    assert log.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs.jsonl"]  # no lock or temporary file left


def test_append_repairs_missing_newline_and_rejects_bad_records(tmp_path):
    log = tmp_path / "runs.jsonl"
    log.write_text('{"run_id":"a","n_train":1}')
    append_record(log, {"run_id": "b", "n_train": 2, "x": [1.5]})
    assert [r["run_id"] for r in read_records(log)] == ["a", "b"]
    with pytest.raises(ValueError, match="n_train"):
        append_record(log, {"run_id": "c", "n_train": 0})
    with pytest.raises(ValueError, match="not finite"):
        check_record({"run_id": "c", "n_train": 1, "test_loss": float("nan")})
    with pytest.raises(ValueError, match="not finite JSON"):
        append_record(log, {"run_id": "c", "n_train": 1, "deep": [float("inf")]})
    with pytest.raises(OSError, match="does not exist"):
        append_record(tmp_path / "missing" / "runs.jsonl", {"run_id": "c", "n_train": 1})
    log.write_text('{"run_id":"a","n_train":1}\n{"run_id":"b"}\n')
    with pytest.raises(ValueError, match=r"runs.jsonl:2: .*n_train"):
        read_records(log)


def test_cli_errors_are_one_line(tmp_path, config_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("n_nodes = 4\nflavour = 1\n")
    assert main(["train", str(bad), "--log", str(tmp_path / "x.jsonl")]) == 2
    err = capsys.readouterr().err.strip()
    assert "unknown config keys ['flavour']" in err and len(err.splitlines()) == 1
    nolog = tmp_path / "nolog.toml"
    nolog.write_text("n_nodes = 4\n")
    assert main(["train", str(nolog)]) == 2
    assert "no run log" in capsys.readouterr().err
    assert main(["train", str(tmp_path / "missing.toml"), "--log", "x"]) == 2
    broken = tmp_path / "broken.toml"
    broken.write_text("n_nodes = [\n")
    assert main(["train", str(broken), "--log", "x"]) == 2


def test_diverging_config_is_one_line_and_logs_nothing(tmp_path, capsys):
    config = tmp_path / "steep.toml"
    config.write_text(CONFIG.replace("epochs = 2", "epochs = 3\nlr = 1e30"))
    assert main(["train", str(config), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert "training diverged" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "runs.jsonl").exists()


def test_train_then_bound_prints_a_bound(config_path, capsys):
    """Regression: 'ratebound train' then 'ratebound bound' printed 'bounds computed: []'."""
    log = config_path.parent / "runs.jsonl"
    assert main(["train", str(config_path), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["bound", str(log), "--json"]) == 0
    (group,) = json.loads(capsys.readouterr().out)
    names = [b["name"] for b in group["bounds"]]
    assert "test-set (held-out, binomial kl)" in names  # one run: the held-out certificate


def test_supersample_runs_from_the_command_line_give_the_d_inl_bound(tmp_path, capsys):
    """The README's supersample loop: masks by --seed, supersamples by --supersample-seed, then the bound."""
    path = tmp_path / "ss.toml"
    path.write_text(CONFIG.replace('log = "runs.jsonl"', 'log = "runs.jsonl"\nsupersample_seed = 0'))
    for t in (0, 1):
        for s in range(3):
            assert main(["train", str(path), "--supersample-seed", str(t), "--seed", str(s), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["bound", str(tmp_path / "runs.jsonl"), "--json"]) == 0
    (group,) = json.loads(capsys.readouterr().out)
    rows = {b["name"]: b for b in group["bounds"]}
    rdg = rows["rate-distortion-generalisation (D-INL)"]
    assert rdg["terms"]["delta_m raw min"] >= -1e-9
    assert rdg["terms"]["generalization source"] in rows  # an e-CMI row of the same report
    assert group["n_train"] == 30 and group["n_runs"] == 6
