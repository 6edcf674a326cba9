"""The one run-log writer: concurrent appends lose nothing, duplicates are refused under the lock,
numpy/torch values round-trip, and nothing but the log is left beside it."""

import json
import math
import os
import pickle
import subprocess
import sys
import tempfile
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import estimators._runlog
import inl.runlog
import ratebound.runs
from ratebound.runs import DuplicateRunError, RunLogError, append_run, load_runs

ROOT = Path(__file__).resolve().parents[2]

# A worker process: waits for the go file, then appends its records through one of the two public
# faces of the writer; prints one JSON list of outcomes ("ok" or the refusal's message).
WORKER = textwrap.dedent(
    """
    import json, os, sys, time
    face, log, go, ids = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
    if face == "inl":
        from inl.runlog import append_record as write
    else:
        from ratebound.runs import append_run as write
    from ratebound.runs import DuplicateRunError
    while not os.path.exists(go):
        time.sleep(0.001)
    out = []
    for rid in ids:
        try:
            write(log, {"run_id": rid, "n_train": 5, "train_loss": 0.5, "mask": [0, 1, 1, 0, 1]})
            out.append("ok")
        except DuplicateRunError as exc:
            out.append(str(exc))
    print(json.dumps(out))
    """
)


def _race(tmp_path, id_lists):
    """Run one worker per list of run_ids, both faces alternating, started together; their outcomes."""
    log, go = tmp_path / "runs.jsonl", tmp_path.parent / f"{tmp_path.name}.go"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, ("inl", "ratebound")[w % 2], str(log), str(go), json.dumps(ids)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT,
        )
        for w, ids in enumerate(id_lists)
    ]
    go.touch()
    try:
        results = [p.communicate(timeout=240) for p in procs]
    finally:
        go.unlink()
    assert [p.returncode for p in procs] == [0] * len(procs), [err for _, err in results]
    return log, [json.loads(out) for out, _ in results]


def test_concurrent_appends_from_four_processes_lose_nothing(tmp_path):
    """Regression: 4 processes x 50 appends through the unlocked ``append_run`` kept 73 of 200."""
    id_lists = [[f"w{w}-{i}" for i in range(50)] for w in range(4)]
    log, outcomes = _race(tmp_path, id_lists)
    assert all(o == ["ok"] * 50 for o in outcomes)
    runs = load_runs(log)
    assert sorted(r.run_id for r in runs) == sorted(rid for ids in id_lists for rid in ids)
    for ids in id_lists:  # each writer's records in its own order
        mine = [r.run_id for r in runs if r.run_id in set(ids)]
        assert mine == ids
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs.jsonl"]  # no lock or temporary file


def test_processes_racing_one_run_id_exactly_one_wins(tmp_path):
    """Regression: two concurrent ``ratebound train`` of one config both appended the same run_id."""
    shared = [f"r{i}" for i in range(30)]
    log, outcomes = _race(tmp_path, [shared] * 4)
    for i, rid in enumerate(shared):
        column = [o[i] for o in outcomes]
        assert column.count("ok") == 1, (rid, column)
        for refusal in column:
            if refusal != "ok":
                assert f"run_id: {rid!r} is already logged at {log}:" in refusal
    assert [r.run_id for r in load_runs(log)] == shared
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs.jsonl"]


def test_threads_of_one_process_are_serialised_too(tmp_path):
    log = tmp_path / "runs.jsonl"
    errors = []

    def work(t):
        try:
            for i in range(15):
                (append_run if t % 2 else inl.runlog.append_record)(log, {"run_id": f"t{t}-{i}", "n_train": 1})
        except Exception as exc:  # collected: a thread's exception would otherwise only print
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(load_runs(log)) == 90


def test_the_two_faces_are_one_writer_and_one_schema():
    assert inl.runlog.append_record is ratebound.runs.append_run is estimators._runlog.append_run
    assert inl.runlog.SCHEMA_VERSION == ratebound.runs.SCHEMA_VERSION == 2
    assert inl.runlog.check_record is estimators._runlog.check_record
    assert ratebound.runs.RunRecord is estimators._runlog.RunRecord


def test_duplicate_run_id_refused_naming_the_line_and_log_unchanged(tmp_path):
    log = tmp_path / "runs.jsonl"
    append_run(log, {"run_id": "a", "n_train": 3})
    inl.runlog.append_record(log, {"run_id": "b", "n_train": 3})
    before = log.read_bytes()
    with pytest.raises(DuplicateRunError, match=rf"run_id: 'b' is already logged at {log}:2") as info:
        append_run(log, {"run_id": "b", "n_train": 4})
    assert isinstance(info.value, ValueError)
    assert log.read_bytes() == before
    # an escaped spelling of the same run_id in a hand-written line is found too
    log.write_text('{"run_id": "\\u00e9t\\u00e9", "n_train": 1}\n')
    with pytest.raises(DuplicateRunError, match=":1"):
        append_run(log, {"run_id": "été", "n_train": 1})


def test_refusal_pickles_with_its_problems():
    exc = DuplicateRunError(["run_id: 'x' is already logged at log:1"])
    back = pickle.loads(pickle.dumps(exc))
    assert type(back) is DuplicateRunError and back.problems == exc.problems and str(back) == str(exc)


def test_no_lock_or_empty_file_left_behind(tmp_path, monkeypatch):
    """Regression: every log got an empty ``runs.jsonl.lock`` beside it."""
    log = tmp_path / "runs.jsonl"
    with pytest.raises(RunLogError):  # invalid: refused before anything is created
        append_run(log, {"run_id": "a", "n_train": 0})
    assert list(tmp_path.iterdir()) == []

    def interrupted(src, dst):
        raise KeyboardInterrupt

    with monkeypatch.context() as m:  # the very first append interrupted: no empty log stays
        m.setattr(os, "replace", interrupted)
        with pytest.raises(KeyboardInterrupt):
            append_run(log, {"run_id": "a", "n_train": 1})
    assert list(tmp_path.iterdir()) == []
    append_run(log, {"run_id": "a", "n_train": 1})
    with pytest.raises(DuplicateRunError):
        append_run(log, {"run_id": "a", "n_train": 1})
    with monkeypatch.context() as m:  # a later append interrupted: the old log stays, nothing else
        m.setattr(os, "replace", interrupted)
        with pytest.raises(KeyboardInterrupt):
            append_run(log, {"run_id": "b", "n_train": 1})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs.jsonl"]
    assert [r.run_id for r in load_runs(log)] == ["a"]


def test_np_int64_and_np_float32_are_accepted(tmp_path):
    """Regression: np.int64(100) was refused as not an integer; np.float32 raised a raw TypeError."""
    log = tmp_path / "runs.jsonl"
    append_run(log, {"run_id": "a", "n_train": np.int64(100), "train_loss": np.float32(0.25),
                     "test_loss": np.array(0.5), "hypothesis": np.int32(1), "bank_size": torch.tensor(3),
                     "posterior": np.array([0.25, 0.5, 0.25]), "gate_rate": torch.tensor(0.125),
                     "config": {"lr": np.float64(0.01), "widths": np.array([4, 8])}})
    (run,) = load_runs(log)
    assert run.n_train == 100 and type(run.n_train) is int
    assert run.train_loss == 0.25 and run.test_loss == 0.5 and run.gate_rate == 0.125
    assert run.hypothesis == 1 and run.bank_size == 3 and run.posterior == (0.25, 0.5, 0.25)
    assert run.config == {"lr": 0.01, "widths": [4, 8]}
    line = log.read_text()
    assert line == json.dumps(json.loads(line), sort_keys=True, separators=(",", ":")) + "\n"  # sorted keys


def test_arrays_for_list_fields_and_what_stays_refused(tmp_path):
    log = tmp_path / "runs.jsonl"
    n = 4
    append_run(log, {"run_id": "a", "n_train": n, "mask": np.array([0, 1, 1, 0]),
                     "pair_losses": np.array([[0.0, 1.0]] * n), "pair_predictions": torch.tensor([[1, 2]] * n),
                     "loss_range": (0, 1), "gate_distortion": torch.zeros(2, 3, dtype=torch.float64),
                     "context_pmf": np.full(2, 0.5), "n_test": np.uint16(7),
                     "gate_rate_kind": np.str_("soft"), "gate_samples": "train"})
    (run,) = load_runs(log)
    assert run.mask == (0, 1, 1, 0) and run.pair_losses == ((0.0, 1.0),) * n
    assert run.pair_predictions == ((1, 2),) * n and run.n_test == 7 and run.gate_rate_kind == "soft"
    assert run.gate_distortion == ((0.0,) * 3,) * 2 and run.loss_range == (0.0, 1.0)
    bad = [
        ({"train_loss": np.array([0.5])}, "train_loss: must be a finite number"),  # 1-element is a list
        ({"train_loss": np.float32("nan")}, "train_loss: is not finite"),
        ({"train_loss": torch.tensor(float("inf"))}, "train_loss: is not finite"),
        ({"n_train": np.float64(3.0)}, "n_train: must be an integer"),
        ({"mask": np.array([True, False, True, True])}, "mask: must hold only 0 and 1"),
        ({"note": {1, 2}}, "note: is not a JSON value (a set)"),
        ({"note": b"raw"}, "note: is not a JSON value (a bytes)"),
        ({"config": {1: "a"}}, "config: object keys must be strings"),
        ({"deep": [np.float32("inf")]}, "deep: is not finite JSON"),
        ({"pair_predictions": np.array([[0, -1]] * n)}, "pair_predictions: must be integer labels >= 0"),
        ({"pair_predictions": [[0, 1]] * 3}, "pair_predictions: must have n_train = 4 entries"),
        ({"gate_rate_kind": "medium"}, "gate_rate_kind: must be one of 'hard', 'soft'"),
        ({"gate_samples": "val"}, "gate_samples: must be one of 'train', 'test'"),
        ({"n_test": 0}, "n_test: must be an integer >= 1"),
        ({"test_loss": 1e300}, "test_loss: must have magnitude at most 1e+100"),
        ({"schema_version": 3}, "schema_version: unsupported version 3"),
    ]
    before = log.read_bytes()
    for patch, fragment in bad:
        with pytest.raises(RunLogError) as info:
            append_run(log, {"run_id": "b", "n_train": n, **patch})
        assert any(fragment in p for p in info.value.problems), (patch, info.value.problems)
    assert log.read_bytes() == before


def test_writer_names_a_bad_path_or_record(tmp_path):
    with pytest.raises(ValueError, match="path: must be a str or os.PathLike"):
        append_run(None, {"run_id": "a", "n_train": 1})
    with pytest.raises(RunLogError, match="record: must be a mapping"):
        append_run(tmp_path / "runs.jsonl", [("run_id", "a")])
    assert list(tmp_path.iterdir()) == []


def test_check_record_converts_and_names_the_field():
    assert inl.runlog.check_record({"run_id": "a", "n_train": np.int64(2), "x": (np.float32(0.5),)}) == \
        {"run_id": "a", "n_train": 2, "x": [0.5]}
    with pytest.raises(ValueError, match="n_train: must be an integer >= 1"):
        inl.runlog.check_record({"run_id": "a", "n_train": np.int64(0)})


# ------------------------------------------------------------------ fuzz: numpy/torch round trip

def _flavour_int(draw, x):
    kind = draw(st.sampled_from(["py", "np64", "np32", "0d", "torch", "torch0d32"]))
    return {"py": lambda: x, "np64": lambda: np.int64(x), "np32": lambda: np.int32(x), "0d": lambda: np.array(x),
            "torch": lambda: torch.tensor(x), "torch0d32": lambda: torch.tensor(x, dtype=torch.int32)}[kind]()


def _flavour_float(draw, x):
    """``(value as some library gives it, the Python float it stands for)``."""
    kind = draw(st.sampled_from(["py", "np64", "np32", "0d", "0d32", "torch64", "torch32"]))
    if kind in ("np32", "0d32", "torch32"):
        expected = float(np.float32(x))
        value = {"np32": np.float32(x), "0d32": np.array(x, dtype=np.float32),
                 "torch32": torch.tensor(x, dtype=torch.float32)}[kind]
        return value, expected
    value = {"py": x, "np64": np.float64(x), "0d": np.array(x), "torch64": torch.tensor(x, dtype=torch.float64)}[kind]
    return value, x


def _flavour_list(draw, rows, dtype):
    """A (nested) list as a list, an ndarray, a torch tensor or a ``.tolist()`` of either."""
    kind = draw(st.sampled_from(["py", "tuple", "ndarray", "torch", "np_tolist", "torch_tolist", "rows_of_arrays"]))
    if kind == "py":
        return rows
    if kind == "tuple":
        return tuple(tuple(r) if isinstance(r, list) else r for r in rows)
    if kind == "rows_of_arrays" and rows and isinstance(rows[0], list):
        return [np.array(r, dtype=dtype) for r in rows]
    array = np.array(rows, dtype=dtype)
    if kind in ("ndarray", "rows_of_arrays"):
        return array
    if kind == "np_tolist":
        return array.tolist()
    tensor = torch.tensor(rows, dtype=torch.float64 if dtype is float else torch.int64)
    return tensor if kind == "torch" else tensor.tolist()


finite = st.floats(min_value=-1e30, max_value=1e30, allow_nan=False, allow_infinity=False)
unit = st.floats(min_value=0.0, max_value=1.0)


@st.composite
def numeric_records(draw):
    n = draw(st.integers(1, 6))
    record, expected = {"run_id": draw(st.text(min_size=1, max_size=8)), "n_train": _flavour_int(draw, n)}, {}
    expected.update(run_id=record["run_id"], n_train=n)
    for name in draw(st.sets(st.sampled_from(["train_loss", "test_loss", "gate_rate", "train_acc"]))):
        x = draw(unit if name == "train_acc" else st.floats(0, 1e30) if name == "gate_rate" else finite)
        record[name], expected[name] = _flavour_float(draw, x)
    if draw(st.booleans()):
        mask = draw(st.lists(st.integers(0, 1), min_size=n, max_size=n))
        record["mask"], expected["mask"] = _flavour_list(draw, mask, int), tuple(mask)
    if draw(st.booleans()):
        pairs = draw(st.lists(st.lists(finite, min_size=2, max_size=2), min_size=n, max_size=n))
        record["pair_losses"], expected["pair_losses"] = _flavour_list(draw, pairs, float), tuple(map(tuple, pairs))
    if draw(st.booleans()):
        preds = draw(st.lists(st.lists(st.integers(0, 2**31), min_size=2, max_size=2), min_size=n, max_size=n))
        record["pair_predictions"] = _flavour_list(draw, preds, int)
        expected["pair_predictions"] = tuple(map(tuple, preds))
    if draw(st.booleans()):
        k = draw(st.integers(1, 5))
        record["n_test"], expected["n_test"] = _flavour_int(draw, k), k
    if draw(st.booleans()):
        value, x = _flavour_float(draw, draw(finite))
        record["config"], expected["config"] = {"lr": value, "sizes": np.arange(3)}, {"lr": x, "sizes": [0, 1, 2]}
    return record, expected


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(numeric_records(), min_size=1, max_size=3, unique_by=lambda r: r[0]["run_id"]))
def test_fuzz_numpy_and_torch_values_round_trip(drawn):
    with tempfile.TemporaryDirectory() as folder:
        log = Path(folder) / "runs.jsonl"
        for i, (record, _) in enumerate(drawn):
            (append_run if i % 2 else inl.runlog.append_record)(log, record)
        runs = load_runs(log)
        assert sorted(p.name for p in Path(folder).iterdir()) == ["runs.jsonl"]
    assert len(runs) == len(drawn)
    for run, (_, expected) in zip(runs, drawn):
        assert run.schema_version == 2
        for name, value in expected.items():
            got = getattr(run, name)
            assert got == value and type(got) is type(value), name
            if isinstance(value, float):
                assert math.copysign(1, got) == math.copysign(1, value)  # -0.0 stays -0.0


# ------------------------------------------------------------------ the train command under a race

def test_train_whose_run_id_is_logged_meanwhile_says_so(tmp_path, monkeypatch, capsys):
    import inl.cli
    from ratebound.cli import main

    config = tmp_path / "run.toml"
    config.write_text('n_nodes = 3\nepochs = 1\nthreads = 1\nlog = "runs.jsonl"\n'
                      "[dataset_params]\nn_train = 40\nn_test = 20\n")
    assert main(["train", str(config), "--no-progress"]) == 0
    log = tmp_path / "runs.jsonl"
    before = log.read_bytes()
    capsys.readouterr()
    monkeypatch.setattr(inl.cli, "logged_run_ids", lambda log: set())  # as if a concurrent run logged it
    assert main(["train", str(config), "--no-progress"]) == 0
    assert "logged meanwhile" in capsys.readouterr().out
    assert log.read_bytes() == before
