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


def test_json_has_the_sweeps_and_the_data_set(repro):
    table = json.loads((repro / "table.json").read_text())
    assert table["dataset"] == "synthetic"  # the tiny settings; the default is Fashion-MNIST where installed
    sw = table["sweeps"]
    tiny = dinl.Settings.tiny()
    assert [r["avg_degree"] for r in sw["exchange_vs_degree"]] == list(tiny.sweep_degrees)
    for r in sw["exchange_vs_degree"]:
        assert {"avg_degree", "edges_dense", "exchange_reduction", "closed_form", "acc_dense", "acc_tree",
                "acc_tree_std"} <= set(r)
        assert r["exchange_reduction"] == pytest.approx(r["closed_form"], rel=1e-12)  # equal message widths
    assert [r["beta_latent"] for r in sw["latent_vs_beta"]] == list(tiny.sweep_beta_latent)
    for r in sw["latent_vs_beta"]:
        assert {"beta_latent", "latent_rate_bits", "acc_mean", "acc_std"} <= set(r)
    assert len(sw["gate_vs_beta"]) == len(tiny.sweep_beta_gate) * tiny.sweep_seeds
    for p in sw["gate_vs_beta"]:
        assert {"beta_gate", "gate_rate_bits", "train_loss", "distortion_rate"} <= set(p)
        assert p["train_loss"] >= p["distortion_rate"] - 1e-9
    assert set(sw["located"]) == {"exchange_reduction", "latent_rate_reduction"}
    check = table["bound_check"]
    assert check["dataset"] == "synthetic" and set(check["variants"]) == set(dinl.VARIANTS)
    for stem in ("sweep_exchange_vs_degree", "sweep_latent_vs_beta", "sweep_gate_vs_beta", "bound_terms_check"):
        assert (repro / f"{stem}.png").stat().st_size > 0


def test_an_interrupted_reproduction_resumes_from_its_logs(tmp_path, monkeypatch):
    """Ctrl-C after some runs leaves a valid log; the next call trains only the runs that are missing."""
    import paper_repro._runs as runs_module

    settings = dinl.Settings.tiny()
    log = tmp_path / "runs.jsonl"
    calls = []
    real = runs_module._train_one

    def counted(config):
        calls.append(config["seed"])
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real(config)

    monkeypatch.setattr(runs_module, "_train_one", counted)
    with pytest.raises(KeyboardInterrupt):
        dinl.train_all(settings, log, progress=False)
    assert len(load_runs([log])) == 3  # the three finished runs, intact
    calls.clear()
    runs = dinl.train_all(settings, log, progress=False)
    assert len(calls) == 3 * settings.seeds - 3  # only the missing runs were trained
    assert sum(map(len, runs.values())) == 3 * settings.seeds == len(load_runs([log]))


def test_sweep_location_by_interpolation():
    from paper_repro._dinl_sweeps import locate

    assert locate([2.0, 4.0, 6.0], [0.3, 0.6, 0.8], 0.704) == pytest.approx(5.04)
    assert locate([0.0, 1e-3, 1e-2], [0.0, 0.2, 0.6], 0.457, log_x=True) == pytest.approx(
        10 ** (-3 + (0.457 - 0.2) / 0.4))
    assert locate([2.0, 4.0], [0.3, 0.6], 0.704) is None


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
    for stem in ("network", "accuracy_vs_exchange", "distortion_rate", "bound_terms", "bound_terms_check"):
        assert (repro / f"{stem}.png").stat().st_size > 0
        assert (repro / f"{stem}.pdf").stat().st_size > 0
    assert not [p for p in repro.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_dr_curves_reach_the_minimum_distortion(repro):
    """The figure continues each D(R_g) curve flat to the gate's rate; that needs its end at the minimum."""
    for line in (repro / "runs.jsonl").read_text().splitlines():
        record = json.loads(line)
        notes: list[str] = []
        rates, distortions = dinl.empirical_dr_curve(record, dinl.distortion_at_gate(record, notes), notes)
        pmf, dist = np.array(record["context_pmf"]), np.array(record["gate_distortion"])
        assert distortions[-1] == pytest.approx(pmf @ dist.min(axis=1), abs=1e-9)  # reached the minimum
        assert np.all(np.diff(distortions) <= 1e-12)  # non-increasing along the betas
        assert rates[0] == 0.0 and np.all(np.diff(rates) >= -1e-12) and rates[-1] > record["gate_rate"] / np.log(2)
        assert notes == []


@pytest.mark.parametrize("field, value", [("masks", 1), ("supersamples", 0), ("epochs", 0), ("beta_latent", -1.0),
                                          ("n_nodes", 1.5)])
def test_settings_name_the_bad_field(field, value):
    with pytest.raises(ValueError, match=field):
        dinl.Settings(**{field: value})


def test_runs_of_other_settings_are_moved_aside_not_lost(tmp_path):
    from paper_repro._runs import superseded_path, train_records

    settings = dinl.Settings.tiny()
    log = tmp_path / "runs.jsonl"
    first = [settings.config("tree", 0, m) for m in range(2)]
    train_records(first, log, progress=False)
    other = [settings.config("tree", 0, m).replace(epochs=1) for m in range(2)]
    train_records(other, log, progress=False)
    assert [r.config["epochs"] for r in load_runs([log])] == [1, 1]
    moved = load_runs([superseded_path(log)])
    assert [r.config["epochs"] for r in moved] == [2, 2]  # the first settings' runs, kept


def test_an_unguarded_script_gets_one_clear_error(tmp_path):
    """Spawned workers import the caller's script again; without a main guard that is one line, not 14 KB."""
    import subprocess
    import sys

    script = tmp_path / "unguarded.py"
    script.write_text(
        "from pathlib import Path\n"
        "from paper_repro import dinl\n"
        "from paper_repro._runs import train_records\n"
        "s = dinl.Settings.tiny()\n"
        f"train_records([s.config('tree', 0, m) for m in range(2)], Path({str(tmp_path / 'runs.jsonl')!r}), "
        "workers=2, progress=False)\n"
    )
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=240)
    assert out.returncode != 0
    assert 'if __name__ == "__main__":' in out.stderr
    assert len(out.stderr) < 3000
