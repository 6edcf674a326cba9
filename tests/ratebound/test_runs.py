"""Run logs: validation naming file, line and field; unknown fields kept; atomic append."""

import json
import math
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ratebound.runs import SCHEMA_VERSION, RunLogError, RunRecord, append_run, load_runs, parse_record

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


# ------------------------------------------------------------------ bad input to the reader


@pytest.mark.parametrize("paths", [None, 5, 2.5, b"runs.jsonl", [5], ["ok.jsonl", None], object()])
def test_load_runs_of_a_non_path_names_paths(paths):
    """Regression: load_runs(None) and load_runs(5) raised TypeError."""
    with pytest.raises(ValueError, match=r"paths: (must be a path|each entry must be)"):
        load_runs(paths)


def test_load_runs_accepts_one_path_or_several(write_jsonl):
    a, b = write_jsonl([GOOD]), write_jsonl([{**GOOD, "run_id": "z"}])
    assert [r.run_id for r in load_runs(str(a))] == ["a"]
    assert [r.run_id for r in load_runs(p for p in (a, b))] == ["a", "z"]


@pytest.mark.parametrize("name, value", [("train_loss", 1e300), ("test_loss", -1e300), ("train_loss", 1.0000001e100),
                                         ("pair_losses", [[0.0, 1e300]] * 10), ("loss_range", [-1e300, 1e300]),
                                         ("gate_distortion", [[1e200]])])
def test_huge_losses_are_refused_at_load(write_jsonl, name, value):
    """Regression: ±1e300 losses printed ``gap 1e+300 +- inf`` and failed ``--json`` on inf."""
    record = {"run_id": "a", "n_train": 10, name: value}
    if name == "gate_distortion":
        record["context_pmf"] = [1.0]
    path = write_jsonl([record])
    with pytest.raises(RunLogError) as info:
        load_runs(path)
    (problem,) = info.value.problems
    assert problem.startswith(f"{path}:1: {name}: must have magnitude at most 1e+100")


def test_losses_up_to_the_limit_load(write_jsonl):
    path = write_jsonl([{"run_id": "a", "n_train": 10, "train_loss": -1e100, "test_loss": 1e100}])
    (run,) = load_runs(path)
    assert run.test_loss - run.train_loss == 2e100 and math.isfinite((run.test_loss - run.train_loss) ** 2)


def test_huge_losses_are_one_line_at_the_command_line(write_jsonl, run_cli):
    path = write_jsonl([{"run_id": "x", "n_train": 10, "train_loss": -1e300, "test_loss": 1e300},
                        {"run_id": "y", "n_train": 10, "train_loss": 1e300, "test_loss": -1e300}])
    for extra in ([], ["--json"]):
        status, out, err = run_cli(["bound", str(path), *extra])
        assert status == 2 and out == "" and len(err.strip().splitlines()) == 1
        assert "train_loss: must have magnitude at most 1e+100" in err and "inf" not in err


# ------------------------------------------------------------------ schema versions


V2 = {"run_id": "v2", "n_train": 3, "schema_version": 2, "pair_predictions": [[0, 1], [2, 2], [1, 0]],
      "gate_rate_kind": "hard", "gate_samples": "train", "n_test": 40}


def test_version_2_fields_are_record_attributes(write_jsonl):
    (run,) = load_runs(write_jsonl([V2]))
    assert run.schema_version == 2 and run.pair_predictions == ((0, 1), (2, 2), (1, 0))
    assert (run.gate_rate_kind, run.gate_samples, run.n_test) == ("hard", "train", 40)
    assert run.extra == {} and run.to_dict() == V2


def test_version_1_records_read_as_before(write_jsonl):
    # the version-1 trainer logged n_test as an unknown field; version-2 names are not checked there
    old = {**V2, "run_id": "v1", "schema_version": 1, "gate_samples": "validation", "n_test": 0}
    (run,) = load_runs(write_jsonl([old]))
    assert run.schema_version == 1
    assert run.pair_predictions is run.gate_rate_kind is run.gate_samples is run.n_test is None
    assert run.extra == {"pair_predictions": [[0, 1], [2, 2], [1, 0]], "gate_rate_kind": "hard",
                         "gate_samples": "validation", "n_test": 0}


def test_a_record_without_version_is_read_as_the_current_one(write_jsonl):
    (run,) = load_runs(write_jsonl([{k: v for k, v in V2.items() if k != "schema_version"}]))
    assert run.schema_version == SCHEMA_VERSION == 2 and run.n_test == 40


@pytest.mark.parametrize(
    "patch, field, fragment",
    [
        ({"schema_version": 3}, "schema_version", "unsupported version 3 (this reader knows 1 and 2"),
        ({"pair_predictions": [[0, 1]] * 2}, "pair_predictions", "n_train = 3 entries, got 2"),
        ({"pair_predictions": [[0, 1.5]] * 3}, "pair_predictions", "integer labels >= 0"),
        ({"pair_predictions": [[0, 1, 2]] * 3}, "pair_predictions", "[pred_0, pred_1] pairs"),
        ({"gate_rate_kind": "Hard"}, "gate_rate_kind", "one of 'hard', 'soft'"),
        ({"gate_samples": 1}, "gate_samples", "one of 'train', 'test'"),
        ({"n_test": 2.0}, "n_test", "integer >= 1"),
    ],
)
def test_version_2_problems_name_the_field(write_jsonl, patch, field, fragment):
    path = write_jsonl([{**V2, **patch}])
    with pytest.raises(RunLogError) as info:
        load_runs(path)
    (problem,) = info.value.problems
    assert problem.startswith(f"{path}:1: {field}: ") and fragment in problem


def test_writer_defaults_to_version_2(tmp_path):
    path = tmp_path / "log.jsonl"
    append_run(path, {k: v for k, v in V2.items() if k != "schema_version"})
    append_run(path, {"run_id": "old", "n_train": 1, "schema_version": 1, "n_test": "kept as it was"})
    first, second = (json.loads(line) for line in path.read_text().splitlines())
    assert first["schema_version"] == 2 and second["schema_version"] == 1
    assert load_runs(path)[1].extra == {"n_test": "kept as it was"}


def test_duplicate_in_a_log_is_still_reported_by_the_reader(write_jsonl):
    path = write_jsonl([GOOD, {**GOOD, "train_loss": 0.3}])
    with pytest.raises(RunLogError, match=rf"{path}:2: run_id: duplicate of {path}:1 \('a'\)"):
        load_runs(path)
