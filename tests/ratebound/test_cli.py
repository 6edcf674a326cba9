"""The ``ratebound`` command: exit 0 or 2, one stderr line on bad input, never a traceback."""

import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


def assert_clean_failure(status, err):
    assert status == 2
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err


# ---------------------------------------------------------------------- bound


@pytest.mark.parametrize(
    "content",
    ["", "\n\n", "{bad json\n", '{"run_id": "a"}\n', '{"run_id": "a", "n_train": NaN}\n',
     '{"run_id": "a", "n_train": 3, "posterior": [0.5, 0.6]}\n', "\xff\n", "[]\n",
     '{"run_id": "a", "n_train": 3, "loss_range": [0, 1], "train_loss": 2}\n'],
)
def test_bound_bad_logs_exit_2_with_one_line(tmp_path, content, run_cli):
    path = tmp_path / "runs.jsonl"
    path.write_bytes(content.encode("latin-1"))
    status, out, err = run_cli(["bound", str(path)])
    assert_clean_failure(status, err)
    assert str(path) in err
    assert out == ""


def test_bound_missing_file_and_bad_options(tmp_path, run_cli):
    status, _, err = run_cli(["bound", str(tmp_path / "absent.jsonl")])
    assert_clean_failure(status, err)
    good = tmp_path / "good.jsonl"
    good.write_text('{"run_id": "a", "n_train": 3}\n')
    for argv in (["bound", str(good), "--delta", "1.5"], ["bound", str(good), "--sigma", "-1"],
                 ["bound", str(good), "--sigma", "nan"], ["bound", str(good), "--delta", "abc"], ["bound"]):
        status, _, err = run_cli(argv)
        assert_clean_failure(status, err)
    status, out, _ = run_cli(["bound", str(good), "--json"])
    assert status == 0 and json.loads(out)[0]["bounds"] == []


json_lines = st.one_of(
    st.text(max_size=40),
    st.dictionaries(st.sampled_from(["run_id", "n_train", "bank_size", "hypothesis", "posterior",
                                     "train_loss", "test_loss", "loss_range", "config", "mask"]),
                    st.one_of(st.integers(-3, 40), st.floats(), st.text(max_size=3),
                              st.lists(st.floats(0, 1), max_size=3), st.just({"a": 1})),
                    max_size=7).map(lambda d: json.dumps({"run_id": "r", "n_train": 2, **d}, allow_nan=True)),
)
argv_tail = st.lists(st.sampled_from(["--json", "--sigma", "0.5", "-1", "--delta", "0.1", "2", "--seed", "x",
                                      "--bogus", "nan"]), max_size=4)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=50)
@given(st.lists(json_lines, max_size=4), argv_tail)
def test_fuzz_bound_never_tracebacks(run_cli, tmp_path, lines, tail):
    path = tmp_path / "fuzz.jsonl"
    path.write_bytes("\n".join(lines).encode("utf-8", errors="replace"))
    status, out, err = run_cli(["bound", str(path), *tail])
    assert status in (0, 2)
    assert "Traceback" not in err
    if status == 2:
        assert len(err.strip().splitlines()) == 1
    else:
        assert out


@settings(max_examples=40)
@given(st.lists(st.text(max_size=12), max_size=5))
def test_fuzz_arbitrary_argv_never_tracebacks(run_cli, argv):
    status, _, err = run_cli(argv)
    assert status in (0, 2)
    assert "Traceback" not in err


# ------------------------------------------------------------------------- mi


def test_mi_ksg_and_plugin(tmp_path, run_cli):
    rng = np.random.default_rng(0)
    x = rng.normal(size=1500)
    y = 0.8 * x + 0.6 * rng.normal(size=1500)  # rho = 0.8
    np.save(tmp_path / "x.npy", x)
    np.savetxt(tmp_path / "y.csv", y, delimiter=",")
    status, out, err = run_cli(["mi", str(tmp_path / "x.npy"), str(tmp_path / "y.csv"), "--method", "ksg", "--json"])
    assert status == 0, err
    est = json.loads(out)
    truth = -0.5 * math.log(1 - 0.8**2)
    assert est["value"] == pytest.approx(truth, abs=0.06)
    assert est["ci_low"] <= est["value"] <= est["ci_high"]

    a = rng.integers(0, 2, size=4000)
    b = a ^ (rng.random(4000) < 0.1)
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", b)
    status, out, err = run_cli(["mi", str(tmp_path / "a.npy"), str(tmp_path / "b.npy"), "--method", "plugin",
                                "--base", "2"])
    assert status == 0, err
    value = float(out.split("=")[1].split()[0])
    h = -(0.1 * math.log2(0.1) + 0.9 * math.log2(0.9))
    assert value == pytest.approx(1 - h, abs=0.03)
    assert "bits" in out


@pytest.mark.parametrize(
    "make, method",
    [
        (lambda d: (d / "x.txt").write_text("1,2"), "ksg"),
        (lambda d: (d / "x.npy").write_bytes(b"not numpy"), "ksg"),
        (lambda d: (d / "x.csv").write_text("a,b\nc,d\n"), "ksg"),
        (lambda d: (d / "x.csv").write_text("0.5\n1.5\n2.5\n"), "plugin"),
        (lambda d: (d / "x.csv").write_text(""), "ksg"),
        (lambda d: np.savez(d / "x.npz", a=np.arange(3.0)) or (d / "x.npz").rename(d / "x.npy"), "ksg"),
        (lambda d: np.save(d / "x.npy", np.array(["a", "b", "c"])), "ksg"),
    ],
)
def test_mi_bad_inputs(tmp_path, make, method, run_cli):
    make(tmp_path)
    (x,) = [p for p in tmp_path.iterdir()]
    np.savetxt(tmp_path / "y.csv", np.arange(3.0), delimiter=",")
    status, _, err = run_cli(["mi", str(x), str(tmp_path / "y.csv"), "--method", method])
    assert_clean_failure(status, err)


def test_mi_length_mismatch(tmp_path, run_cli):
    np.save(tmp_path / "x.npy", np.arange(10.0))
    np.save(tmp_path / "y.npy", np.arange(11.0))
    status, _, err = run_cli(["mi", str(tmp_path / "x.npy"), str(tmp_path / "y.npy"), "--method", "ksg"])
    assert_clean_failure(status, err)


@pytest.mark.slow
def test_mi_neural_method_runs(tmp_path, run_cli):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2000, 1))
    y = x + rng.normal(size=(2000, 1))  # I = 1/2 ln 2
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    status, out, err = run_cli(["mi", str(tmp_path / "x.npy"), str(tmp_path / "y.npy"), "--method", "infonce",
                                "--steps", "400", "--json"])
    assert status == 0, err
    assert json.loads(out)["value"] == pytest.approx(0.5 * math.log(2), abs=0.15)
