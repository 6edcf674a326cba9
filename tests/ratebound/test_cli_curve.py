"""``ratebound curve``: examples against closed forms, files in, JSON/table/plot out."""

import json
import math

import numpy as np
import pytest


def h(p):
    return 0.0 if p in (0.0, 1.0) else -(p * math.log(p) + (1 - p) * math.log(1 - p))


def test_rd_example_matches_bernoulli_closed_form(run_cli):
    status, out, err = run_cli(["curve", "rd", "--example", "bernoulli", "--json"])
    assert status == 0, err
    points = json.loads(out)["points"]
    assert len(points) == 30
    for p in points:
        if p["converged"] and 1e-3 < p["distortion"] < 0.299:
            assert p["rate"] == pytest.approx(h(0.3) - h(p["distortion"]), abs=1e-6)
            assert p["rate_bits"] == pytest.approx(p["rate"] / math.log(2))


def test_capacity_example_and_files(tmp_path, run_cli):
    status, out, err = run_cli(["curve", "capacity", "--example", "bsc", "--json"])
    assert status == 0, err
    res = json.loads(out)
    assert res["capacity"] == pytest.approx(math.log(2) - h(0.1), abs=1e-8)
    assert res["lower"] <= res["capacity"] <= res["upper"]
    channel = np.array([[0.9, 0.1], [0.1, 0.9]])
    np.savetxt(tmp_path / "ch.csv", channel, delimiter=",")
    status, out, err = run_cli(["curve", "capacity", str(tmp_path / "ch.csv")])
    assert status == 0, err
    assert "capacity" in out and "nats" in out


def test_rd_from_files_and_ib_example(tmp_path, run_cli):
    np.save(tmp_path / "p.npy", np.array([0.5, 0.5]))
    np.save(tmp_path / "d.npy", 1.0 - np.eye(2))
    status, out, err = run_cli(["curve", "rd", str(tmp_path / "p.npy"), str(tmp_path / "d.npy"),
                                "--betas", "1,2,4", "--json"])
    assert status == 0, err
    points = json.loads(out)["points"]
    assert [p["beta"] for p in points] == [1.0, 2.0, 4.0]
    for p in points:
        assert p["rate"] == pytest.approx(max(math.log(2) - h(min(p["distortion"], 0.5)), 0.0), abs=1e-6)
    status, out, err = run_cli(["curve", "ib", "--example", "binary-symmetric", "--json"])
    assert status == 0, err
    mi_xy = math.log(2) - h(0.1)
    for p in json.loads(out)["points"]:
        assert -1e-9 <= p["relevance"] <= min(p["rate"], mi_xy) + 1e-6


@pytest.mark.parametrize(
    "kind, example, name, magic",
    [("rd", "bernoulli", "rd.png", b"\x89PNG"), ("ib", "binary-symmetric", "ib.pdf", b"%PDF"),
     ("capacity", "bsc", "cap.svg", b"<?xml")],
)
def test_plot_writes_each_kind_through_figures(tmp_path, run_cli, kind, example, name, magic):
    target = tmp_path / name
    betas = [] if kind == "capacity" else ["--betas", "0.5,2,8"]
    status, out, err = run_cli(["curve", kind, "--example", example, *betas, "--plot", str(target), "--json"])
    assert status == 0, err
    assert json.loads(out)["kind"] == kind  # the table is still printed
    assert target.read_bytes().startswith(magic) and target.stat().st_size > 1000
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no temporary left behind


@pytest.mark.parametrize(
    "argv",
    [
        ["curve", "rd", "--example", "bsc"],
        ["curve", "rd"],
        ["curve", "rd", "ONLY_ONE.npy"],
        ["curve", "capacity", "--example", "bsc", "--betas", "1"],
        ["curve", "rd", "--example", "bernoulli", "--betas", "1,-2"],
        ["curve", "rd", "--example", "bernoulli", "--betas", "x"],
        ["curve", "rd", "--example", "bernoulli", "--plot", "out.txt"],
        ["curve", "ib", "missing.npy"],
    ],
)
def test_bad_invocations_exit_2(argv, tmp_path, monkeypatch, run_cli):
    monkeypatch.chdir(tmp_path)
    status, _, err = run_cli(argv)
    assert status == 2
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_bad_matrices_exit_2(tmp_path, run_cli):
    np.save(tmp_path / "p.npy", np.array([0.5, 0.6]))
    np.save(tmp_path / "d.npy", 1.0 - np.eye(2))
    np.save(tmp_path / "ch.npy", np.array([[0.5, 0.6], [0.1, 0.9]]))
    for argv in (["curve", "rd", str(tmp_path / "p.npy"), str(tmp_path / "d.npy")],
                 ["curve", "capacity", str(tmp_path / "ch.npy")],
                 ["curve", "ib", str(tmp_path / "d.npy")]):
        status, _, err = run_cli(argv)
        assert status == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_ib_seed_fixes_the_curve_and_bits_columns_are_printed(tmp_path, run_cli):
    joint = np.random.default_rng(4).dirichlet(np.ones(12)).reshape(4, 3)
    np.save(tmp_path / "j.npy", joint)
    runs = {}
    for seed in ("1", "1", "2"):
        status, out, err = run_cli(["curve", "ib", str(tmp_path / "j.npy"), "--betas", "2,8", "--seed", seed, "--json"])
        assert status == 0, err
        runs.setdefault(seed, []).append(json.loads(out))
    assert runs["1"][0] == runs["1"][1]
    for point in runs["1"][0]["points"]:  # the module docstring promises nats and bits
        assert point["rate_bits"] == pytest.approx(point["rate"] / math.log(2), rel=1e-15)
        assert point["relevance_bits"] == pytest.approx(point["relevance"] / math.log(2), rel=1e-15)
    status, out, _ = run_cli(["curve", "ib", "--example", "binary-symmetric", "--betas", "5"])
    assert status == 0 and "relevance_bits" in out.splitlines()[0] and "in bits" in out


@pytest.mark.parametrize("kind, example", [("rd", "bernoulli"), ("capacity", "bsc")])
def test_seed_is_refused_where_nothing_is_random(run_cli, kind, example):
    status, _, err = run_cli(["curve", kind, "--example", example, "--seed", "3"])
    assert status == 2 and "--seed applies only to ib" in err
