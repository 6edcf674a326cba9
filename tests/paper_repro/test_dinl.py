"""End to end: ``ratebound repro dinl`` (the tiny configuration of the quick run)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from inl.topology import dense_routing, random_network, shortest_path_tree
from paper_repro import dinl
from ratebound.cli import main
from ratebound.runs import load_runs

VARIANT_FIELDS = {"accuracy_mean", "accuracy_std", "exchange_floats_per_sample", "latent_rate_bits",
                  "gate_rate_bits", "bound", "test_risk", "seeds"}


@pytest.fixture(scope="module")
def repro(tmp_path_factory):
    out = tmp_path_factory.mktemp("repro")
    assert main(["repro", "dinl", "--quick", "--tiny", "--no-progress", "--out", str(out)]) == 0
    return out / "dinl"


def test_json_has_the_issue_fields(repro):
    table = json.loads((repro / "table.json").read_text())
    assert set(table["variants"]) == {"dense", "tree", "tree_rate"}
    for name, v in table["variants"].items():
        assert VARIANT_FIELDS <= set(v), name
        assert v["seeds"] == list(range(dinl.Settings.tiny().masks))
        assert v["runs"] == dinl.Settings.tiny().seeds
        t = v["bound_terms"]
        assert {"generalization", "measured_gap", "generalization_source", "slack_raw"} <= set(t)
        assert t["generalization_source"] not in t["alternatives"]
        assert t["slack_raw"] >= -1e-9 and t["slack_raw_min"] >= -1e-9  # L_S >= D(R_g) by construction
        assert 0.0 <= v["accuracy_mean"] <= 1.0 and v["accuracy_std"] >= 0.0
        assert 0.0 <= v["test_risk"] <= 1.0
        assert v["bound"] >= v["bound_terms"]["distortion_rate"]  # terms are non-negative
        assert v["bound"] == pytest.approx(v["train_risk"] + v["bound_terms"]["generalization"])
        assert v["latent_rate_bits"] > 0 and v["gate_rate_bits"] >= 0
    assert table["paper"] == {"exchange_reduction": 0.704, "latent_rate_reduction": 0.457}
    assert isinstance(table["accuracy_within_std"], bool)
    assert isinstance(table["warnings"], list)  # numerical notes, reported rather than raised
    assert 0.0 < table["exchange_reduction"] < 1.0
    assert table["latent_rate_reduction"] < 1.0


def test_exchange_reduction_matches_the_edge_counts(repro):
    """Equal widths: exchange is 2 * width per used edge, so the reduction is 1 - (n - 1) / |E_dense|."""
    table = json.loads((repro / "table.json").read_text())
    config = dinl.Settings.tiny().config("tree", 0)
    graph = random_network(config.n_nodes, avg_degree=config.avg_degree,
                           capacity_range=config.capacity_range, seed=config.graph_seed)
    tree = shortest_path_tree(graph, config.root, payload_bits=config.payload_bits)
    dense = dense_routing(graph, config.root, payload_bits=config.payload_bits)
    assert tree.number_of_edges() == config.n_nodes - 1
    expected = 1.0 - tree.number_of_edges() / dense.number_of_edges()
    assert table["exchange_reduction"] == pytest.approx(expected, rel=1e-12)
    v = table["variants"]
    assert v["dense"]["exchange_floats_per_sample"] == 2 * config.latent_width * dense.number_of_edges()
    assert v["tree"]["exchange_floats_per_sample"] == 2 * config.latent_width * tree.number_of_edges()
    assert v["tree_rate"]["exchange_floats_per_sample"] == v["tree"]["exchange_floats_per_sample"]


def test_reductions_are_computed_from_the_variants(repro):
    table = json.loads((repro / "table.json").read_text())
    v = table["variants"]
    assert table["latent_rate_reduction"] == pytest.approx(
        1 - v["tree_rate"]["latent_rate_bits"] / v["tree"]["latent_rate_bits"])
    within = abs(v["tree"]["accuracy_mean"] - v["dense"]["accuracy_mean"]) <= v["dense"]["accuracy_std"]
    assert table["accuracy_within_std"] is within


def test_run_log_is_valid_and_bounded_by_ratebound(repro):
    records = load_runs([repro / "runs.jsonl"])
    settings = dinl.Settings.tiny()
    assert len(records) == 3 * settings.seeds
    assert all(r.context_pmf is not None and r.mask is not None and r.pair_losses is not None for r in records)
    assert all(r.mi_sw is None for r in records)  # no vacuous description-length I(S;W) any more
    assert len({r.supersample_id for r in records}) == settings.supersamples
    table = json.loads((repro / "table.json").read_text())
    for v in table["variants"].values():
        t = v["bound_terms"]
        assert v["bound"] == pytest.approx(t["distortion_rate"] + t["slack"] + t["generalization"])
        assert t["vacuous"] is (v["bound"] >= 1.0)
        assert t["generalization"] == pytest.approx(min([t["generalization"], *t["alternatives"].values()]))


def test_table_and_figures_written(repro):
    md = (repro / "table.md").read_text()
    assert "70.4%" in md and "45.7%" in md and "Choices that are ours" in md
    for stem in ("network", "accuracy_vs_exchange", "distortion_rate", "bound_terms"):
        assert (repro / f"{stem}.png").stat().st_size > 0
        assert (repro / f"{stem}.pdf").stat().st_size > 0
    assert not [p for p in repro.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_dr_curves_reach_the_minimum_distortion(repro):
    """The figure continues each D(R_g) curve flat to the gate's rate; that needs its end at the minimum."""
    from types import SimpleNamespace

    for line in (repro / "runs.jsonl").read_text().splitlines():
        record = json.loads(line)
        notes: list[str] = []
        curve = dinl._dr_curve(SimpleNamespace(record=record), notes)
        assert curve["at_minimum"], record["run_id"]
        assert np.all(np.diff(curve["distortions"]) <= 1e-12)  # non-increasing along the betas
        assert curve["rates"][0] == 0.0 and np.all(np.diff(curve["rates"]) >= -1e-12)
        assert notes == []


@pytest.mark.parametrize("field, value", [("masks", 1), ("supersamples", 0), ("epochs", 0), ("beta_latent", -1.0),
                                          ("n_nodes", 1.5)])
def test_settings_name_the_bad_field(field, value):
    with pytest.raises(ValueError, match=field):
        dinl.Settings(**{field: value})
