"""The expert-bank reproduction: the selection sweep against closed forms, and end to end."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest

from paper_repro import expert_bank as eb


def test_gibbs_posterior_limits():
    emp = np.array([[0.1, 0.3, 0.2], [0.5, 0.0, 0.4]])
    assert np.allclose(eb.gibbs_posteriors(emp, 0.0, 50), 1 / 3)
    hard = eb.gibbs_posteriors(emp, 100.0, 50)
    assert np.array_equal(hard.argmax(axis=1), [0, 1]) and hard.max(axis=1) == pytest.approx(1.0)


def _synthetic_losses(k=4, n=400, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.random((k, n)) < np.linspace(0.1, 0.3, k)[:, None]).astype(float)


def test_selection_sweep_information_and_bounds():
    settings = eb.Settings(m=30, n_subsets=800, alphas=(0.0, 0.5, 2.0, 20.0))
    losses = _synthetic_losses()
    sweep = eb.selection_sweep(losses, settings)
    assert sweep[0].mi == pytest.approx(0.0, abs=1e-12)  # alpha = 0: data-independent
    assert sweep[0].gap == pytest.approx(0.0, abs=4 * sweep[0].gap_stderr + 1e-12)
    mis = [p.mi for p in sweep]
    assert all(b > a for a, b in itertools.pairwise(mis))
    union = math.sqrt(2 * 0.25 * math.log(4) / 30)
    for p in sweep:
        assert p.union == pytest.approx(union)
        assert p.mi <= math.log(4) + 1e-12
        assert p.xu_raginsky <= p.union + 1e-12
        assert p.xu_raginsky_high >= p.gap - 3 * p.gap_stderr  # Xu-Raginsky holds (pool = population)
        assert p.risk - p.train_risk == pytest.approx(p.gap)


def test_confidence_gate_rows_and_temperature():
    rng = np.random.default_rng(1)
    probs = rng.dirichlet(np.ones(10), size=(3, 50))
    sharp = eb.confidence_gate(probs, 0.01)
    assert np.allclose(sharp.sum(axis=1), 1.0)
    assert np.array_equal(sharp.argmax(axis=1), probs.max(axis=2).argmax(axis=0))
    assert np.allclose(eb.confidence_gate(probs, 1e6), 1 / 3)


def test_end_to_end_small(tmp_path):
    settings = eb.Settings(n_experts=3, expert_samples=120, expert_epochs=3, n_subsets=60,
                           alphas=(0.0, 1.0), n_contexts=4, betas=(1.0, 10.0, 100.0))
    data = eb.reproduce(tmp_path, settings, progress=False)
    table = json.loads((tmp_path / "table.json").read_text())
    assert table["sweep"][0]["alpha"] == 0.0 and len(table["sweep"]) == 2
    assert table["sweep"][1]["mi"] > table["sweep"][0]["mi"]
    assert 0.0 <= table["gate_rate_bits"] <= math.log2(3) + 1e-9
    assert table["label_rd_max_abs_error_nats"] < 1e-4  # Blahut-Arimoto vs the closed form
    assert data["paper"]["source"].startswith("arXiv 2605.05278")
    for stem in ("bank_sweep", "accuracy_rate", "label_rd_check"):
        assert (tmp_path / f"{stem}.png").exists() and (tmp_path / f"{stem}.pdf").exists()
    assert "Paper versus ours" in (tmp_path / "table.md").read_text()
    assert isinstance(table["warnings"], list)


def _point(alpha, mi, gap, xr, union=0.2, se=0.001):
    return eb.SweepPoint(alpha=alpha, mi=mi, mi_low=mi, mi_high=mi, gap=gap, gap_stderr=se, train_risk=0.1,
                         risk=0.1 + gap, xu_raginsky=xr, xu_raginsky_high=xr, union=union)


def test_claims_detect_a_violated_bound_and_non_monotone_tracking():
    good = eb.check_claims([_point(0, 0.0, 0.0, 0.0), _point(1, 0.2, 0.02, 0.05), _point(2, 0.5, 0.03, 0.08)])
    assert good.spearman_mi_gap == pytest.approx(1.0) and good.xu_raginsky_holds and good.mi_monotone_in_alpha
    assert good.looseness == pytest.approx((2.5, 8 / 3))
    bad = eb.check_claims([_point(0, 0.0, 0.05, 0.0), _point(1, 0.2, 0.01, 0.05), _point(2, 0.1, 0.03, 0.3)])
    assert not bad.xu_raginsky_holds and not bad.mi_monotone_in_alpha and bad.spearman_mi_gap < 0.9


@pytest.mark.parametrize("field, value", [("n_experts", 0), ("m", 0), ("gate_temperature", 0.0),
                                          ("alphas", ()), ("alphas", (0.0, -1.0))])
def test_settings_name_the_bad_field(field, value):
    with pytest.raises(ValueError, match=field):
        eb.Settings(**{field: value})


def _write_idx(path, array):
    import gzip
    import struct

    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as fh:
        fh.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def fake_fashion(tmp_path):
    """Four small idx files laid out as Debian's dataset-fashion-mnist installs them."""
    rng = np.random.default_rng(0)
    for stem, n in (("train", 60), ("t10k", 20)):
        _write_idx(tmp_path / f"{stem}-images-idx3-ubyte.gz", rng.integers(0, 256, size=(n, 28, 28)))
        _write_idx(tmp_path / f"{stem}-labels-idx1-ubyte.gz", np.arange(n) % 10)
    return tmp_path


def test_fashion_mnist_bank_on_28x28_images(fake_fashion):
    settings = eb.Settings(n_experts=2, expert_samples=16, expert_epochs=1).with_dataset("auto", str(fake_fashion))
    assert settings.dataset == "fashion-mnist"
    settings = eb.Settings(**{**settings.__dict__, "n_images": 50})
    splits = eb.load_splits(0, settings)
    assert splits.x_pre.shape == (20, 28, 28) and len(splits.y_pool) == 20 and len(splits.y_hold) == 10
    assert 0.0 <= splits.x_pool.min() and splits.x_pool.max() <= 1.0
    probs = eb.expert_probs(eb.train_bank(splits, settings, progress=False), splits.x_hold)
    assert probs.shape == (2, 10, 10) and np.allclose(probs.sum(axis=2), 1.0)


def test_dataset_choice_and_missing_files(tmp_path):
    assert eb.Settings().with_dataset("auto", str(tmp_path)).dataset == "digits"  # no idx files there
    missing = eb.Settings(dataset="fashion-mnist", data_path=str(tmp_path))
    with pytest.raises(ValueError, match="data_path"):
        eb.load_splits(0, missing)
    with pytest.raises(ValueError, match="dataset"):
        eb.Settings(dataset="mnist")
