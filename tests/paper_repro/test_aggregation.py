"""The aggregation reproduction: gradients, the SignSGD placements, and end to end."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from paper_repro import aggregation as ag


def test_softmax_regression_gradient_matches_finite_differences():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(7, 5)), rng.integers(0, 10, size=7)
    w = rng.normal(size=(5, 10)) * 0.1
    task = ag.Task(x=x, y=y, shards=(np.arange(7),))
    grad = ag._gradient(w, x, y).reshape(w.shape)
    eps = 1e-6
    for i, j in [(0, 0), (2, 3), (4, 9)]:
        e = np.zeros_like(w)
        e[i, j] = eps
        numeric = (ag._loss(w + e, task) - ag._loss(w - e, task)) / (2 * eps)
        assert grad[i, j] == pytest.approx(numeric, abs=1e-7)


def _log(seed=0, steps=4, workers=3, params=50):
    rng = np.random.default_rng(seed)
    true = rng.normal(size=(steps, params))
    grads = true[:, None, :] + 0.5 * rng.normal(size=(steps, workers, params))
    return ag.RunLog(grads=grads, true=true, losses=np.zeros(steps))


def test_stochastic_sign_is_unbiased_and_noisier_than_the_mean():
    log = _log()
    bound = np.abs(log.grads).max(axis=2, keepdims=True)
    extra = ((bound ** 2 - log.grads ** 2).sum(axis=1) / log.grads.shape[1] ** 2).mean()
    expected = ag.mean_distortion(log) + extra
    draws = [ag.stochastic_sign_distortion(log, seed) for seed in range(40)]
    assert np.mean(draws) == pytest.approx(expected, rel=0.05)
    assert min(draws) > ag.mean_distortion(log)


def test_sign_point_units_and_feasibility():
    point = ag.sign_point(1.0, 1.0, 4, 1.0)
    assert point.bits == 4.0  # 1 bit per coordinate per worker
    assert point.independent_bits >= point.ceo_bits > 0
    assert ag.sign_point(1.0, 1.0, 4, 0.2).ceo_bits is None  # below sigma_N^2 / L


def test_end_to_end_small(tmp_path):
    settings = ag.Settings(n_workers=2, steps=12, n_distortions=5, cost_factors=(1.05, 8.0),
                           cost_seeds=1, cost_max_steps=40)
    ag.reproduce(tmp_path, settings, progress=False)
    table = json.loads((tmp_path / "table.json").read_text())
    rates = table["sum_rate"]
    assert np.all(np.diff(rates["ceo_bits"]) < 0)  # decreasing in D
    assert np.all(np.asarray(rates["gain_bits"]) >= -1e-12)
    assert table["signsgd"]["bits"] == 2.0
    assert table["min_distortion"] == pytest.approx(table["noise_var"] / 2)
    assert len(table["total_cost"]) == 2
    assert (tmp_path / "sum_rate.png").exists() and (tmp_path / "sum_rate.pdf").exists()
    md = (tmp_path / "table.md").read_text()
    assert "bits per coordinate" in md and "2206.13984" in md
    assert math.isfinite(table["source_var"])


def _cost_row(distortion, total):
    return {"distortion": distortion, "total_ceo_bits_per_coord": total}


def test_cheapest_total_skips_unreached_rows_and_keeps_zero():
    rows = [_cost_row(1.0, 5.0), _cost_row(2.0, None), _cost_row(4.0, 0.0)]
    assert ag._cheapest(rows) == (4.0, 0.0)
    assert ag._cheapest([_cost_row(1.0, None)]) is None


def test_unbracketed_cheapest_cost_is_stated_as_a_difference():
    stats = type("Stats", (), {"params": 650})()
    sign = ag.SignPoint(4.0, 1.0, 1.0, 3.0)  # a large gain: no note about it
    at_edge = [_cost_row(1.0, 5.0), _cost_row(4.0, 1.0)]
    inside = [_cost_row(1.0, 5.0), _cost_row(4.0, 1.0), _cost_row(16.0, 2.0)]
    settings = ag.Settings.quick()
    assert any("not bracketed" in d for d in ag._texts(settings, stats, sign, at_edge)[0])
    assert not any("not bracketed" in d for d in ag._texts(settings, stats, sign, inside)[0])


@pytest.mark.parametrize("field, value", [("n_workers", 0), ("lr", -1.0), ("cost_factors", ()),
                                          ("cost_factors", (0.5,)), ("distortion_span", 1.0)])
def test_settings_name_the_bad_field(field, value):
    with pytest.raises(ValueError, match=field):
        ag.Settings(**{field: value})
