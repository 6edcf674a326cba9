"""Run logs: validation naming file, line and field; unknown fields kept; atomic append."""

import json
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ratebound.runs import RunLogError, RunRecord, append_run, load_runs, parse_record

GOOD = {"schema_version": 1, "run_id": "a", "n_train": 10, "loss_range": [0, 1], "train_loss": 0.1,
        "test_loss": 0.2, "hypothesis": 2, "bank_size": 4, "posterior": [0.1, 0.2, 0.3, 0.4],
        "config": {"alpha": 1}}


def test_good_records_load_with_unknown_fields_kept(write_jsonl):
    path = write_jsonl([GOOD, {**GOOD, "run_id": "b", "train_ce": 0.7, "note": "x"}, "   "])
    runs = load_runs(path)
    assert [r.run_id for r in runs] == ["a", "b"]
    assert runs[0].posterior == (0.1, 0.2, 0.3, 0.4)
    assert runs[0].loss_range == (0.0, 1.0)
    assert runs[1].extra == {"train_ce": 0.7, "note": "x"}
    assert runs[0].source == f"{path}:1"
    assert runs[1].to_dict()["train_ce"] == 0.7


@pytest.mark.parametrize(
    "patch, field, fragment",
    [
        ({"n_train": 0}, "n_train", ">= 1"),
        ({"n_train": 2.0}, "n_train", "integer"),
        ({"n_train": True}, "n_train", "integer"),
        ({"run_id": ""}, "run_id", "non-empty"),
        ({"train_loss": "0.1"}, "train_loss", "finite number"),
        ({"train_loss": 1.5}, "train_loss", "loss_range"),
        ({"test_acc": 1.2}, "test_acc", "[0, 1]"),
        ({"posterior": [0.5, 0.6, 0.0, 0.0]}, "posterior", "sum to 1"),
        ({"posterior": [0.5, 0.5]}, "posterior", "bank_size"),
        ({"posterior": [1.5, -0.5, 0, 0]}, "posterior", ">= 0"),
        ({"hypothesis": 4}, "hypothesis", "bank_size"),
        ({"loss_range": [1, 0]}, "loss_range", "a < b"),
        ({"mask": [0, 1]}, "mask", "n_train"),
        ({"mask": [2] * 10}, "mask", "0 and 1"),
        ({"pair_losses": [[0, 1]] * 9}, "pair_losses", "n_train"),
        ({"context_pmf": [0.5, 0.5], "gate_distortion": [[0.1, 0.2]]}, "gate_distortion", "one row per context"),
        ({"gate_rate": -0.1}, "gate_rate", ">= 0"),
        ({"config": [1, 2]}, "config", "JSON object"),
        ({"schema_version": 3}, "schema_version", "unsupported"),
        ({"schema_version": 0}, "schema_version", ">= 1"),
        ({"supersample_id": 1.5}, "supersample_id", "string or an integer"),
    ],
)
def test_each_problem_names_file_line_and_field(write_jsonl, patch, field, fragment):
    path = write_jsonl([GOOD, {**GOOD, "run_id": "bad", **patch}])
    with pytest.raises(RunLogError) as info:
        load_runs(path)
    (problem,) = info.value.problems
    assert problem.startswith(f"{path}:2: {field}: ")
    assert fragment in problem


def test_all_problems_listed_and_missing_fields(write_jsonl):
    path = write_jsonl([{"n_train": 3}, "{not json", "[1, 2]", '{"run_id": "x", "n_train": NaN}', GOOD, GOOD])
    with pytest.raises(RunLogError) as info:
        load_runs(path)
    problems = info.value.problems
    assert any(p.startswith(f"{path}:1: run_id: required") for p in problems)
    assert any(p.startswith(f"{path}:2: record: malformed JSON") for p in problems)
    assert any(p.startswith(f"{path}:3: record: must be a JSON object") for p in problems)
    assert any(p.startswith(f"{path}:4: record: malformed JSON") and "NaN" in p for p in problems)
    assert any(p.startswith(f"{path}:6: run_id: duplicate of {path}:5") for p in problems)
    assert len(problems) == 5
    assert "\n" not in str(info.value)


def test_empty_missing_and_binary_files(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n  \n")
    with pytest.raises(RunLogError, match="empty"):
        load_runs(empty)
    with pytest.raises(RunLogError, match="cannot read"):
        load_runs(tmp_path / "absent.jsonl")
    binary = tmp_path / "bin.jsonl"
    binary.write_bytes(b"\xff\xfe\x00garbage\n")
    with pytest.raises(RunLogError, match="UTF-8"):
        load_runs(binary)
    with pytest.raises(RunLogError, match="no run-log"):
        load_runs([])


def test_several_files_in_order(write_jsonl):
    a = write_jsonl([GOOD])
    b = write_jsonl([{**GOOD, "run_id": "z"}])
    assert [r.run_id for r in load_runs([a, b])] == ["a", "z"]


def test_append_run_round_trips_and_is_atomic(tmp_path):
    path = tmp_path / "sub" / "log.jsonl"
    with pytest.raises(FileNotFoundError, match="does not exist"):  # the writer makes no directories
        append_run(path, {"run_id": "r1", "n_train": 5})
    path.parent.mkdir()
    append_run(path, {"run_id": "r1", "n_train": 5, "my_field": [1, 2]})
    path.write_text(path.read_text().rstrip("\n"))  # a log without final newline stays valid
    record = RunRecord(run_id="r2", n_train=7, train_loss=0.25, extra={"k": "v"})
    append_run(path, record)
    runs = load_runs(path)
    assert [r.run_id for r in runs] == ["r1", "r2"]
    assert runs[0].extra == {"my_field": [1, 2]} and runs[0].schema_version == 2
    assert runs[1].train_loss == 0.25 and runs[1].extra == {"k": "v"}
    assert sorted(p.name for p in path.parent.iterdir()) == ["log.jsonl"]  # no temporary left
    before = path.read_bytes()
    with pytest.raises(RunLogError, match="n_train"):
        append_run(path, {"run_id": "r3", "n_train": -1})
    assert path.read_bytes() == before


def test_parse_record_reports_without_raising():
    record, problems = parse_record({**GOOD, "train_loss": float("inf")}, "x:1")
    assert record is None and problems == ["x:1: train_loss: is not finite (inf); must be a finite number"]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=8,
)
field_names = st.sampled_from(["run_id", "n_train", "loss_range", "train_loss", "posterior", "bank_size",
                               "hypothesis", "mask", "pair_losses", "context_pmf", "gate_distortion",
                               "config", "supersample_id", "schema_version", "mi_sw", "other"])
records = st.dictionaries(field_names, json_values, max_size=8)
lines = st.one_of(
    st.text(max_size=60),
    records.map(lambda r: json.dumps(r, allow_nan=True)),
    records.map(lambda r: json.dumps({"run_id": "x", "n_train": 3, **r}, allow_nan=True)),
)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=50)
@given(st.lists(lines, min_size=0, max_size=5))
def test_fuzz_load_runs_never_crashes(tmp_path, text_lines):
    path = tmp_path / "fuzz.jsonl"
    path.write_bytes("\n".join(text_lines).encode("utf-8", errors="replace"))
    try:
        runs = load_runs(path)
    except RunLogError as exc:
        assert exc.problems and all(p.startswith(str(path)) for p in exc.problems)
    else:
        # every non-blank line became a record: nothing dropped silently
        assert len(runs) == sum(1 for line in "\n".join(text_lines).split("\n") if line.strip())


def test_append_run_keeps_permissions(tmp_path):
    # the temporary file that replaces the log must not turn a shared log private (mkstemp's 0600)
    path = tmp_path / "log.jsonl"
    append_run(path, {"run_id": "r1", "n_train": 5})
    umask = os.umask(0o022)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
    os.chmod(path, 0o640)
    append_run(path, {"run_id": "r2", "n_train": 5})
    assert path.stat().st_mode & 0o777 == 0o640
    assert [r.run_id for r in load_runs(path)] == ["r1", "r2"]


def test_hypothesis_must_index_the_posterior_without_bank_size():
    record = {"run_id": "a", "n_train": 3, "posterior": [0.5, 0.5], "hypothesis": 2}
    assert parse_record(record, "x:1")[1] == ["x:1: hypothesis: must index the posterior's 2 entries, got 2"]
    assert parse_record({**record, "hypothesis": 1}, "x:1")[1] == []
