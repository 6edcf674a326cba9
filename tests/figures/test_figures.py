"""The figures build from small result objects, are labelled, and save atomically."""

from __future__ import annotations

import math
from dataclasses import dataclass

import networkx as nx
import numpy as np
import pytest
from matplotlib.figure import Figure

import figures


@dataclass(frozen=True)
class _Curve:  # the fields of estimators' RDCurve that the drawings read
    rates: np.ndarray
    distortions: np.ndarray
    converged: np.ndarray


@dataclass(frozen=True)
class _IB:
    rates: np.ndarray
    relevances: np.ndarray


@dataclass(frozen=True)
class _Capacity:
    capacity: float
    input_pmf: np.ndarray
    lower: float
    upper: float


@dataclass(frozen=True)
class _Bound:
    distortion_rate: float
    slack: float
    generalization: float


def _binary_entropy(d):
    return 0.0 if d in (0.0, 1.0) else -(d * math.log(d) + (1 - d) * math.log(1 - d))


def _fair_bit_curve():
    d = np.linspace(0.01, 0.5, 12)
    rates = np.array([math.log(2) - _binary_entropy(x) for x in d])
    conv = np.ones(d.size, dtype=bool)
    conv[3] = False
    return _Curve(rates=rates, distortions=d, converged=conv)


def _assert_readable(fig: Figure):
    assert isinstance(fig, Figure)
    axes = fig.axes
    assert axes, "figure has no axes"
    for ax in axes:
        assert ax.get_title(), "axes without a title"
        assert ax.get_xlabel() and ax.get_ylabel(), "axes without labels"
        assert ax.get_legend() is not None, "axes without a legend"


def test_rd_curve_with_closed_form_overlay():
    curve = _fair_bit_curve()
    fig = figures.plot_rd_curve(curve, closed_form=lambda d: math.log(2) - _binary_entropy(d))
    _assert_readable(fig)
    ax = fig.axes[0]
    dashed = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
    assert len(dashed) == 1
    x, y = dashed[0].get_data()
    assert x.min() == pytest.approx(0.01) and x.max() == pytest.approx(0.5)
    assert y[-1] == pytest.approx(0.0, abs=1e-12)  # R(1/2) = 0 for a fair bit
    assert "nats" in ax.get_ylabel()
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "not converged" in labels and "closed form" in labels


def test_rd_curve_without_overlay_has_no_dashed_line():
    ax = figures.plot_rd_curve(_fair_bit_curve()).axes[0]
    assert not [line for line in ax.get_lines() if line.get_linestyle() == "--"]


def test_rd_curve_draws_on_given_axes():
    fig = figures.plot_rd_curve(_fair_bit_curve())
    again = figures.plot_rd_curve(_fair_bit_curve(), ax=fig.axes[0])
    assert again is fig and len(fig.axes) == 1


def test_rd_curve_rejects_mismatched_arrays():
    bad = _Curve(rates=np.ones(3), distortions=np.ones(4), converged=np.ones(4, bool))
    with pytest.raises(ValueError, match="rates"):
        figures.plot_rd_curve(bad)


def test_ib_curve_with_ceiling():
    curve = _IB(rates=np.array([0.0, 0.2, 0.5, 0.9]), relevances=np.array([0.0, 0.15, 0.3, 0.35]))
    fig = figures.plot_ib_curve(curve, mi_xy=0.4)
    _assert_readable(fig)
    ceiling = [line for line in fig.axes[0].get_lines() if line.get_linestyle() == "--"]
    assert ceiling and ceiling[0].get_ydata()[0] == pytest.approx(0.4)


def test_capacity_bars_are_the_input_pmf():
    res = _Capacity(capacity=math.log(2), input_pmf=np.array([0.5, 0.5]), lower=0.69, upper=0.6932)
    fig = figures.plot_capacity(res)
    _assert_readable(fig)
    heights = [p.get_height() for p in fig.axes[0].patches]
    assert heights == pytest.approx([0.5, 0.5])
    assert "1.0000 bits" in fig.axes[0].get_legend().get_texts()[0].get_text()


def test_distortion_rate_points_per_group():
    curve = _fair_bit_curve()
    fig = figures.plot_distortion_rate(
        curve, {"tree": ([0.1, 0.2], [0.3, 0.25]), "tree_rate": ([0.05], [0.35])}
    )
    _assert_readable(fig)
    texts = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "tree" in texts and "tree_rate" in texts
    fig2 = figures.plot_distortion_rate(curve, np.array([[0.1, 0.3], [0.2, 0.2]]))
    assert "trained gates" in [t.get_text() for t in fig2.axes[0].get_legend().get_texts()]
    with pytest.raises(ValueError, match="points"):
        figures.plot_distortion_rate(curve, np.ones((3, 3)))


def _small_network():
    g = nx.cycle_graph(5)
    g.add_edge(0, 2)
    for n in g.nodes:
        g.nodes[n]["pos"] = (math.cos(n), math.sin(n))
    for u, v in g.edges:
        g.edges[u, v]["capacity"] = 1.0 + u + v
    tree = nx.DiGraph([(1, 0), (2, 0), (3, 2), (4, 0)])
    return g, tree


def test_network_highlights_the_tree():
    g, tree = _small_network()
    fig = figures.plot_network(g, tree)
    _assert_readable(fig)
    ax = fig.axes[0]
    arrows = [c for c in ax.texts if getattr(c, "arrow_patch", None) is not None]
    assert len(arrows) == tree.number_of_edges()
    texts = " ".join(t.get_text() for t in ax.get_legend().get_texts())
    assert "root 0" in texts and "4 edges" in texts
    figures.plot_network(g)  # without a tree


def test_network_rejects_a_forest():
    g, _ = _small_network()
    with pytest.raises(ValueError, match="root"):
        figures.plot_network(g, nx.DiGraph([(1, 0), (3, 2)]))


def test_accuracy_vs_exchange_error_bars():
    variants = {
        "dense": {"accuracy_mean": 0.9, "accuracy_std": 0.02, "exchange_floats_per_sample": 400.0},
        "tree": {"accuracy_mean": 0.88, "accuracy_std": 0.03, "exchange_floats_per_sample": 150.0},
    }
    fig = figures.plot_accuracy_vs_exchange(variants)
    _assert_readable(fig)
    assert len(fig.axes[0].containers) == 2  # one errorbar container per variant
    with pytest.raises(ValueError, match="accuracy_std"):
        figures.plot_accuracy_vs_exchange({"x": {"accuracy_mean": 1.0, "exchange_floats_per_sample": 1}})


def test_bound_terms_stack_to_the_total():
    terms = {"tree": _Bound(0.1, 0.05, 0.2), "dense": {"distortion_rate": 0.12, "slack": 0.0, "generalization": 0.3}}
    fig = figures.plot_bound_terms(terms, {"tree": 0.2, "dense": 0.25})
    _assert_readable(fig)
    bars = fig.axes[0].patches
    tops = {}
    for bar in bars:
        tops[round(bar.get_x(), 6)] = max(tops.get(round(bar.get_x(), 6), 0), bar.get_y() + bar.get_height())
    assert sorted(tops.values()) == pytest.approx([0.35, 0.42])
    with pytest.raises(ValueError, match="measured"):
        figures.plot_bound_terms(terms, {"tree": 0.2})


def test_bank_sweep_two_panels():
    a = [0.0, 1.0, 4.0]
    fig = figures.plot_bank_sweep(a, mi=[0.0, 0.3, 0.9], mi_low=[0, 0.2, 0.8], mi_high=[0.1, 0.4, 1.0],
                                  gap=[0.0, 0.02, 0.05], gap_err=[0.01] * 3,
                                  xu_raginsky=[0.0, 0.1, 0.2], union=0.4)
    _assert_readable(fig)
    assert len(fig.axes) == 2
    union_line = [line for line in fig.axes[1].get_lines() if line.get_linestyle() == ":"]
    assert np.allclose(union_line[0].get_ydata(), 0.4)
    with pytest.raises(ValueError, match="gap"):
        figures.plot_bank_sweep(a, mi=[0, 1, 2], gap=[0, 1], xu_raginsky=[0, 1, 2], union=1)


def test_sum_rate_with_signsgd():
    d = np.logspace(-3, -1, 5)
    fig = figures.plot_sum_rate(d, correlated=np.linspace(3, 1, 5), independent=np.linspace(5, 2, 5),
                                signsgd=4.0, signsgd_distortion=0.01)
    _assert_readable(fig)
    assert "bits" in fig.axes[0].get_ylabel()
    texts = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert any("SignSGD" in t for t in texts)


def test_save_figure_writes_png_and_pdf_atomically(tmp_path):
    fig = figures.plot_rd_curve(_fair_bit_curve())
    paths = figures.save_figure(fig, tmp_path / "sub" / "rd.png")
    assert [p.name for p in paths] == ["rd.png", "rd.pdf"]
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert paths[1].read_bytes()[:5] == b"%PDF-"
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["rd.pdf", "rd.png"]
    with pytest.raises(ValueError, match="Figure"):
        figures.save_figure("not a figure", tmp_path / "x")


def test_bound_terms_every_bar_on_scale_by_default():
    fig = figures.plot_bound_terms({"tree": _Bound(0.02, 0.01, 0.05), "dense": _Bound(0.03, 0.0, 0.06)},
                                   {"tree": 0.06, "dense": 0.07}, gaps={"tree": 0.03, "dense": 0.04})
    ax = fig.axes[0]
    assert ax.get_ylim()[1] >= 0.09 and ax.get_ylim()[1] <= 0.2  # the largest total 0.09, on scale
    texts = [t.get_text() for t in ax.texts]
    assert any("gen/gap 1.7" in t for t in texts) and any("gen/gap 1.5" in t for t in texts)
    assert not any("off scale" in t for t in texts)


def test_gate_points_sit_on_or_above_their_curves():
    curves = [(np.array([0.0, 0.5, 1.0]), np.array([0.3, 0.1, 0.05])), (np.array([0.0, 1.0]), np.array([0.2, 0.0]))]
    fig = figures.plot_gate_points(curves, [(0.5, 0.1, 0.12), (1.0, 0.0, 0.0)], label="tree")
    _assert_readable(fig)
    ax = fig.axes[0]
    assert ax.get_title() == "tree" and "bits" in ax.get_xlabel()
    with pytest.raises(ValueError, match="equal length"):
        figures.plot_gate_points(curves, [(0.5, 0.1, 0.12)])
    with pytest.raises(ValueError, match="triples"):
        figures.plot_gate_points(curves[:1], [(0.5, 0.1)])


def test_bound_terms_vacuous_total_is_written_not_drawn_off_scale():
    fig = figures.plot_bound_terms({"tree": _Bound(0.1, 0.0, 5.0)}, {"tree": 0.2}, ymax=1.0)
    ax = fig.axes[0]
    assert ax.get_ylim() == pytest.approx((0.0, 1.15))
    assert any("5.1" in t.get_text() and "vacuous" in t.get_text() for t in ax.texts)


def test_bound_terms_zoomed_axis():
    fig = figures.plot_bound_terms({"tree": _Bound(0.1, 0.05, 0.2)}, {"tree": 0.12}, ymax=0.2)
    ax = fig.axes[0]
    assert ax.get_ylim()[1] == pytest.approx(0.23)
    texts = [t.get_text() for t in ax.texts]
    assert any("0.35" in t and "vacuous" not in t for t in texts)
    with pytest.raises(ValueError, match="ymax"):
        figures.plot_bound_terms({"tree": _Bound(0.1, 0.05, 0.2)}, {"tree": 0.12}, ymax=0)


def test_sum_rate_axis_scale_follows_the_rates():
    d = np.logspace(-3, -1, 3)
    positive = figures.plot_sum_rate(d, correlated=[3, 1, 0.1], independent=[4, 2, 0.2])
    assert positive.axes[0].get_yscale() == "log"
    with_zero = figures.plot_sum_rate(d, correlated=[3, 1, 0.0], independent=[4, 2, 0.0])
    assert with_zero.axes[0].get_yscale() == "linear" and with_zero.axes[0].get_ylim()[0] == 0


def test_distortion_rate_covers_points_beyond_the_curve_and_extends_flat():
    curve = _Curve(rates=np.array([0.0, 0.2, 0.5]), distortions=np.array([0.3, 0.2, 0.1]),
                   converged=np.ones(3, dtype=bool))
    points = {"gate": ([1.0], [0.15])}
    plain = figures.plot_distortion_rate(curve, points, rate_label="routing rate I(X;T)", unit="bits")
    ax = plain.axes[0]
    assert ax.get_xlim()[1] >= 1.0  # the point is inside the axes
    assert ax.get_xlabel() == "routing rate I(X;T) [bits]"
    assert not [line for line in ax.get_lines() if line.get_linestyle() == ":"]
    flat = figures.plot_distortion_rate(curve, points, extend_flat=True, curve_label="my curve")
    dotted = [line for line in flat.axes[0].get_lines() if line.get_linestyle() == ":"]
    assert len(dotted) == 1
    assert np.allclose(dotted[0].get_ydata(), 0.1) and dotted[0].get_xdata()[0] == 0.5
    assert dotted[0].get_xdata()[1] >= 1.0
    assert "my curve" in [t.get_text() for t in flat.axes[0].get_legend().get_texts()]


def test_bound_terms_legend_sits_below_the_axes():
    fig = figures.plot_bound_terms({"tree": _Bound(0.1, 0.0, 5.0), "dense": _Bound(0.1, 0.0, 6.0)},
                                   {"tree": 0.2, "dense": 0.3}, ymax=1.0)
    fig.canvas.draw()
    ax = fig.axes[0]
    renderer = fig.canvas.get_renderer()
    assert ax.get_legend().get_window_extent(renderer).y1 <= ax.get_window_extent(renderer).y0 + 1e-6
    label = next(t for t in ax.texts if "vacuous" in t.get_text())
    assert label.get_bbox_patch() is not None  # boxed, readable over the bar


def test_bank_sweep_alpha_axis_is_symlog_for_a_geometric_sweep():
    geometric = figures.plot_bank_sweep([0.0, 0.05, 0.2, 1.0, 5.0], mi=[0, 0.01, 0.05, 0.5, 1.2],
                                        gap=[0, 0.003, 0.01, 0.03, 0.036], xu_raginsky=[0, 0.006, 0.02, 0.07, 0.1],
                                        union=0.13)
    assert [ax.get_xscale() for ax in geometric.axes] == ["symlog", "symlog"]
    linear = figures.plot_bank_sweep([0.0, 1.0, 2.0], mi=[0, 1, 2], gap=[0, 0.1, 0.2],
                                     xu_raginsky=[0, 0.2, 0.3], union=0.5)
    assert [ax.get_xscale() for ax in linear.axes] == ["linear", "linear"]


def test_correlation_gain_is_the_ratio_of_the_sum_rates():
    d = np.logspace(-3, -1, 4)
    cor, ind = np.array([4.0, 2.0, 1.0, 0.5]), np.array([6.0, 2.5, 1.1, 0.5])
    fig = figures.plot_correlation_gain(d, correlated=cor, independent=ind, signsgd_distortion=0.01)
    _assert_readable(fig)
    ratio = next(line for line in fig.axes[0].get_lines() if line.get_marker() == "o")
    assert np.allclose(ratio.get_ydata(), ind / cor)
    assert fig.axes[0].get_xscale() == "log"
    with pytest.raises(ValueError, match="correlated"):
        figures.plot_correlation_gain(d, correlated=[1.0, 0.0, 1.0, 1.0], independent=ind)
    with pytest.raises(ValueError, match="independent"):
        figures.plot_correlation_gain(d, correlated=cor, independent=ind[:3])


def test_network_root_label_is_black_on_the_star():
    g, tree = _small_network()
    ax = figures.plot_network(g, tree).axes[0]
    labels = {t.get_text(): t.get_color() for t in ax.texts if getattr(t, "arrow_patch", None) is None}
    assert labels["0"] == "k" and labels["1"] == "w"


def test_distortion_rate_without_points_draws_the_curve_alone():
    fig = figures.plot_distortion_rate(_fair_bit_curve(), {})
    ax = fig.axes[0]
    assert len(ax.get_lines()) == 1
    assert ax.get_xlim()[1] == pytest.approx(1.08 * _fair_bit_curve().rates.max())


def _sweep_rows():
    return [{"avg_degree": d, "exchange_reduction": 1 - 11 / e, "exchange_reduction_std": 0.0,
             "closed_form": 1 - 11 / e, "acc_dense": 0.8, "acc_dense_std": 0.01, "acc_tree": 0.79,
             "acc_tree_std": 0.02} for d, e in ((3.0, 18), (6.0, 36), (9.0, 54))]


def test_exchange_sweep_marks_the_paper_and_where_it_is_met():
    fig = figures.plot_exchange_sweep(_sweep_rows(), paper_reduction=0.704, met_at=6.2)
    _assert_readable(fig)
    left, right = fig.axes
    assert any(np.allclose(line.get_ydata(), 70.4) for line in left.get_lines())
    assert any("6.2" in t.get_text() for t in left.texts)
    assert "%" in left.get_ylabel() and "%" in right.get_ylabel()
    with pytest.raises(ValueError, match="rows"):
        figures.plot_exchange_sweep([])


def test_latent_sweep_is_a_rate_accuracy_trade_off():
    rows = [{"beta_latent": b, "latent_rate_bits": r, "latent_rate_bits_std": 1.0, "acc_mean": a, "acc_std": 0.01}
            for b, r, a in ((0.0, 100.0, 0.8), (1e-3, 50.0, 0.79), (1e-2, 10.0, 0.7))]
    fig = figures.plot_latent_sweep(rows, paper_reduction=0.457, met_at=8e-4)
    _assert_readable(fig)
    left, right = fig.axes
    assert left.get_xscale() == "symlog" and "bits" in left.get_ylabel() and "bits" in right.get_xlabel()
    assert any(np.allclose(line.get_ydata(), 54.3) for line in left.get_lines())  # (1 - 0.457) * 100 bits
