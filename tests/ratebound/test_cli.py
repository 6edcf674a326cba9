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


def test_mi_without_method_chooses_from_the_data_and_says_which(tmp_path, run_cli):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2000, 2))
    y = np.exp(x[:, :1] + rng.normal(size=(2000, 1)))  # a monotone map of a Gaussian pair
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    status, out, err = run_cli(["mi", str(tmp_path / "x.npy"), str(tmp_path / "y.npy"), "--json"])
    assert status == 0, err
    est = json.loads(out)
    assert est["method"] == "auto:gaussian-copula"
    assert est["value"] == pytest.approx(0.5 * math.log(2), abs=0.05)
    assert est["ci_low"] < est["value"] < est["ci_high"] and math.isfinite(est["ci_high"])
    assert any(note.startswith("chose gaussian-copula") for note in est["notes"])
    status, text, err = run_cli(["mi", str(tmp_path / "x.npy"), str(tmp_path / "y.npy")])
    assert status == 0, err
    assert "method auto:gaussian-copula" in text and "note: chose " in text


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


@pytest.mark.parametrize("scale", [1e300, 1e-300])
def test_mi_ksg_of_rescaled_data_is_that_of_the_data(tmp_path, run_cli, scale):
    rng = np.random.default_rng(0)
    x = rng.normal(size=800)
    y = x + rng.normal(size=800)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "xs.npy", x * scale)
    np.save(tmp_path / "y.npy", y)
    values = []
    for name in ("x.npy", "xs.npy"):
        status, out, err = run_cli(["mi", str(tmp_path / name), str(tmp_path / "y.npy"), "--method", "ksg", "--json"])
        assert status == 0 and err == "", err
        values.append(json.loads(out)["value"])
    assert values[1] == pytest.approx(values[0], abs=1e-12) and values[0] > 0.2  # was 1e-16 / 'constant column'


def test_mi_neural_shows_progress_and_a_finite_interval(tmp_path, run_cli):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 1))
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", x + rng.normal(size=(300, 1)))
    argv = ["mi", str(tmp_path / "x.npy"), str(tmp_path / "y.npy"), "--method", "infonce", "--steps", "30", "--json"]
    status, out, err = run_cli(argv)
    assert status == 0
    assert "infonce MI" in err and "Traceback" not in err  # the tqdm bar (was 67 s of silence on big inputs)
    est = json.loads(out)
    assert est["ci_low"] is not None and est["ci_low"] < est["value"] < est["ci_high"]  # was NaN under 1280 pairs
    assert est["unit"] == "nats"
    status, out, err = run_cli([*argv, "--no-progress"])
    assert status == 0 and err == ""


def test_train_with_an_unstorable_lr_is_one_line_naming_lr(tmp_path, run_cli):
    config = tmp_path / "c.toml"
    config.write_text(f'n_nodes = 4\nepochs = 1\nlr = 1e300\nlog = "{tmp_path / "runs.jsonl"}"\n')
    status, out, err = run_cli(["train", str(config), "--no-progress"])
    assert_clean_failure(status, err)  # was a RuntimeError traceback from the optimiser
    assert "lr must lie in" in err and out == ""


@pytest.mark.parametrize(
    "argv, needle",
    [(["repro", "--data-path", "/nonexistent/ratebound-test"], "--data-path"),
     (["repro", "expert-bank", "--data-path", "/nonexistent/ratebound-test", "--tiny"], "no such directory")],
)
def test_repro_refuses_a_data_path_that_is_no_folder(tmp_path, run_cli, argv, needle):
    status, out, err = run_cli([*argv, "--out", str(tmp_path / "out")])
    assert_clean_failure(status, err)  # 'auto' quietly fell back to the digits
    assert needle in err and not (tmp_path / "out").exists()


def test_repro_refuses_an_out_that_is_a_file(tmp_path, run_cli):
    target = tmp_path / "file"
    target.write_text("x")
    status, _, err = run_cli(["repro", "aggregation", "--tiny", "--out", str(target)])
    assert_clean_failure(status, err)
    assert "--out" in err


def test_warnings_are_one_line_naming_the_command(monkeypatch, run_cli):
    import warnings

    import ratebound._cli_curve as curve

    def noisy(args):
        np.array([1e308]) * 10.0  # numpy's RuntimeWarning: overflow encountered in multiply
        warnings.warn("library note\nover two lines", UserWarning)
        warnings.warn("library note\nover two lines", UserWarning)
        return 0

    monkeypatch.setattr(curve, "run", noisy)
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        status, _, err = run_cli(["curve", "rd", "--example", "bernoulli"])
    assert status == 0
    lines = err.splitlines()
    assert lines == ["ratebound curve: warning: floating-point trouble inside the computation "
                     "(overflow encountered in multiply); check the result",
                     "ratebound curve: warning: library note over two lines"]


def test_numpy_warnings_of_a_real_command_are_one_line_each(tmp_path, run_cli):
    import warnings

    np.save(tmp_path / "p.npy", np.array([0.5, 0.5]))
    np.save(tmp_path / "d.npy", np.array([[0.0, 1e308], [1e308, 0.0]]))
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        status, _, err = run_cli(["curve", "rd", str(tmp_path / "p.npy"), str(tmp_path / "d.npy"), "--betas", "1e300"])
    assert status == 0
    assert err and all(line.startswith("ratebound curve: warning: ") for line in err.splitlines()), err


def test_broken_pipe_inside_main_is_quiet(monkeypatch, run_cli):
    import ratebound._cli_curve as curve

    def closed(args):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(curve, "run", closed)
    status, out, err = run_cli(["curve", "rd", "--example", "bernoulli"])
    assert (status, out, err) == (141, "", "")  # was 'ratebound curve: error: [Errno 32] Broken pipe', exit 2


def test_bound_grouping_default_is_the_reports_seed_keys():
    """`--help` must not import numpy, so the CLI spells SEED_KEYS out; the two may not drift apart."""
    from ratebound._cli_bound import DEFAULT_IGNORE
    from ratebound.report import SEED_KEYS

    assert DEFAULT_IGNORE.split(",") == list(SEED_KEYS)
