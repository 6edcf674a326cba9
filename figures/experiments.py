"""The paper figures: exchange against accuracy, bound terms, expert-bank sweeps, sum rates.

Inputs are plain numbers (sequences, mappings, or result objects with the named
attributes); nothing here computes an information quantity.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.ticker import NullLocator

from figures._common import PALETTE, as_1d, field, label_axes, new_axes, new_figure

__all__ = [
    "plot_accuracy_vs_exchange", "plot_bank_sweep", "plot_bound_terms", "plot_correlation_gain", "plot_exchange_sweep",
    "plot_gate_points", "plot_latent_sweep", "plot_sum_rate",
]


def _nonempty_mapping(value, name: str) -> Mapping:
    if not isinstance(value, Mapping) or not value:
        raise ValueError(f"{name} must be a non-empty mapping of label -> values")
    return value


def plot_accuracy_vs_exchange(variants: Mapping, *, ax=None):
    """Test accuracy against training exchange, one point with error bars per variant.

    Parameters
    ----------
    variants : mapping
        ``{name: v}`` where ``v`` has ``accuracy_mean``, ``accuracy_std`` (over
        seeds) and ``exchange_floats_per_sample`` (floats crossing edges per
        training sample, forward plus backward) -- the ``variants`` block of the
        D-INL table.
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    variants = _nonempty_mapping(variants, "variants")
    fig, ax = new_axes(ax)
    markers = "osD^v"
    for i, (name, v) in enumerate(variants.items()):
        mean, std = float(field(v, "accuracy_mean")), float(field(v, "accuracy_std"))
        exchange = float(field(v, "exchange_floats_per_sample"))
        ax.errorbar(exchange, mean, yerr=std, fmt=markers[i % len(markers)], ms=8, capsize=5,
                    color=PALETTE[i % len(PALETTE)], label=f"{name}: {mean:.3f} ± {std:.3f}")
    ax.set_xlim(left=0)
    label_axes(ax, title="Accuracy against communication", ylabel="test accuracy (mean ± std over seeds)",
               xlabel="training exchange per sample [floats, forward + backward]")
    return fig


def plot_bound_terms(terms: Mapping, measured: Mapping, *, ymax: float | None = None, gaps: Mapping | None = None,
                     ax=None):
    """Stacked terms of ``D(R_g) + delta_m + generalisation`` against the measured risk.

    Parameters
    ----------
    terms : mapping
        ``{label: b}`` where ``b`` has ``distortion_rate``, ``slack`` (``delta_m``,
        raw: a negative one is drawn below zero) and ``generalization`` (e.g.
        ``ratebound.RDGBound``), all in loss units, and optionally ``source``
        or ``generalization_source`` naming the generalisation term.
    measured : mapping
        ``{label: risk}``, the measured test risk of each label (same loss).
    ymax : float, optional
        Top of the risk axis. By default every bar and risk is on scale (the
        largest total or risk plus a margin); a given ``ymax`` cuts taller bars
        at the top and writes their value there, marked vacuous above 1.
    gaps : mapping, optional
        ``{label: gap}``, the measured generalisation gap: written beside each
        bar with the ratio of the generalisation term to it.
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    terms = _nonempty_mapping(terms, "terms")
    labels = list(terms)
    missing = [k for k in labels if k not in measured]
    if missing:
        raise ValueError(f"measured has no risk for {missing}")
    fig, ax = new_axes(ax)
    x = np.arange(len(labels))
    sources = {str(field(terms[k], "source", None) or field(terms[k], "generalization_source", None) or "")
               for k in labels} - {""}
    gen_text = "generalisation" + (f" ({sources.pop()})" if len(sources) == 1 else "")
    names = (("distortion_rate", r"$D(R_g)$"), ("slack", r"$\delta_m$"), ("generalization", gen_text))
    bottom = np.zeros(len(labels))
    for i, (attr, text) in enumerate(names):
        height = as_1d([float(field(terms[k], attr)) for k in labels], f"terms.{attr}")
        ax.bar(x, height, 0.55, bottom=bottom, color=PALETTE[i + 2], label=text, edgecolor="k", lw=0.5)
        bottom += height
    risk = as_1d([float(measured[k]) for k in labels], "measured")
    ax.hlines(risk, x - 0.35, x + 0.35, colors="k", lw=3, label="measured test risk")
    ax.set_xticks(x, labels)
    ax.set_xlabel("model (run group)")
    ax.set_ylabel("expected 0-1 risk")
    ax.set_title("Rate-distortion-generalisation bound against measured risk")
    top = float(max(bottom.max(), risk.max()))
    if ymax is None:
        ymax = 1.25 * top if top > 0 else 1.0
    ymax = float(ymax)
    if not ymax > 0:
        raise ValueError(f"ymax must be > 0, got {ymax}")
    for xi, total, label in zip(x, bottom, labels):
        if total > ymax:
            note = " (vacuous)" if total > 1.0 else ""
            ax.annotate(f"total {total:.3g}{note}\noff scale", (xi, ymax), ha="center", va="bottom", fontsize=8,
                        bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "0.6", "alpha": 0.9})
        else:
            text = f"{total:.3g}"
            if gaps is not None and label in gaps and float(gaps[label]) > 0:
                gen = float(field(terms[label], "generalization"))
                text += f"\ngen/gap {gen / float(gaps[label]):.2g}"
            ax.annotate(text, (xi, total), ha="center", va="bottom", fontsize=8, xytext=(0, 2),
                        textcoords="offset points")
    low = min(0.0, float(min(field(terms[k], "slack") for k in labels)))
    ax.set_ylim(low, ymax * 1.15 if float(bottom.max()) > ymax else ymax)
    ax.grid(alpha=0.3, axis="y")
    # Below the axes, so that it never hides a bar or the measured risk.
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False)
    return fig


def plot_gate_points(curves: Sequence, points: Sequence, *, unit: str = "bits", label: str = "", legend: bool = True,
                     ax=None):
    """Trained gates on their empirical distortion-rate curves: every point on or above its curve.

    Parameters
    ----------
    curves : sequence
        One ``(rates, distortions)`` pair of arrays per run: the run's empirical
        ``D(R)`` (its root gate's forced losses on its training samples).
    points : sequence
        One ``(R_g, D(R_g), L_S)`` triple per run: the gate's rate, the curve
        at that rate and the gate's training loss (``L_S >= D(R_g)``).
    unit : str
        The rate unit, for the axis label.
    label : str
        The panel's title (default: what the figure shows).
    legend : bool, default True
        Draw the legend (panels of one figure may share the first one's).
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    if len(curves) == 0 or len(curves) != len(points):
        raise ValueError("curves and points must be non-empty and of equal length (one per run)")
    fig, ax = new_axes(ax)
    right = 0.0
    for i, (rates, distortions) in enumerate(curves):
        rates, distortions = as_1d(rates, "curve rates"), as_1d(distortions, "curve distortions")
        order = np.argsort(rates)
        ax.plot(rates[order], distortions[order], "-", color="0.5", lw=0.8, alpha=0.5,
                label="empirical D(R) of each run" if i == 0 else None)
        right = max(right, float(rates.max()))
    arr = np.asarray(points, dtype=float)
    if arr.ndim != 2 or arr.shape[1] != 3 or not np.isfinite(arr).all():
        raise ValueError("points must hold finite (R_g, D(R_g), L_S) triples")
    ax.vlines(arr[:, 0], arr[:, 1], arr[:, 2], colors=PALETTE[1], lw=1.0, alpha=0.8,
              label=r"slack $\delta_m = L_S - D(R_g)$")
    ax.plot(arr[:, 0], arr[:, 1], "_", color=PALETTE[1], ms=8, mew=1.5, label=r"$D(R_g)$ of the run")
    ax.plot(arr[:, 0], arr[:, 2], "o", color=PALETTE[0], ms=4, label=r"trained gate $(R_g, L_S)$")
    right = 1.08 * max(right, float(arr[:, 0].max()))
    ax.set_xlim(0, right if right > 0 else None)
    top = float(max(arr[:, 1:].max(), max(float(np.max(d)) for _, d in curves)))
    ax.set_ylim(0, 1.1 * top if top > 0 else 1.0)
    title = label or "Trained root gates on their distortion-rate curves"
    label_axes(ax, title=title, xlabel=f"hard gate rate $R_g = H(T)$ [{unit}]",
               ylabel="training 0-1 loss", fontsize=7, loc="lower left")
    if not legend:
        ax.get_legend().remove()
    return fig


def _rows(rows, keys, name: str) -> dict[str, np.ndarray]:
    if len(rows) == 0:
        raise ValueError(f"{name} must hold at least one row")
    return {k: as_1d([float(field(r, k)) for r in rows], f"{name}.{k}") for k in keys}


def plot_exchange_sweep(rows, *, paper_reduction: float | None = None, met_at: float | None = None):
    """Exchange reduction and accuracy of tree vs dense INL over the graph's average degree.

    Parameters
    ----------
    rows : sequence
        One mapping per degree with ``avg_degree``, ``exchange_reduction``
        (measured, with ``exchange_reduction_std`` over graph seeds),
        ``closed_form`` (``1 - (n-1)/|E|``), ``acc_dense``, ``acc_dense_std``,
        ``acc_tree``, ``acc_tree_std``.
    paper_reduction : float, optional
        A reduction to mark (the paper's).
    met_at : float, optional
        The degree at which it is met, marked when given.

    Returns
    -------
    matplotlib.figure.Figure
    """
    keys = ("avg_degree", "exchange_reduction", "exchange_reduction_std", "closed_form", "acc_dense",
            "acc_dense_std", "acc_tree", "acc_tree_std")
    r = _rows(rows, keys, "rows")
    fig = new_figure(figsize=(11.0, 4.4))
    left, right = fig.subplots(1, 2)
    x = r["avg_degree"]
    left.errorbar(x, 100 * r["exchange_reduction"], yerr=100 * r["exchange_reduction_std"], fmt="o",
                  color=PALETTE[0], capsize=3, label="measured (autograd counters), mean +- std over graphs")
    left.plot(x, 100 * r["closed_form"], "--", color="k", lw=1, label="closed form 1 - (n-1)/|E|")
    if paper_reduction is not None:
        left.axhline(100 * paper_reduction, color=PALETTE[3], ls=":", label=f"paper: {100 * paper_reduction:.1f}%")
    if met_at is not None:
        left.axvline(met_at, color=PALETTE[3], ls=":", lw=1)
        left.text(met_at, 0.97, f" met at degree {met_at:.2g}", transform=left.get_xaxis_transform(), fontsize=8,
                  ha="left", va="top", color=PALETTE[3])
    label_axes(left, title="Training exchange: tree vs dense", xlabel="average degree of the network",
               ylabel="exchange reduction [%]", fontsize=8, loc="lower right")
    right.errorbar(x, 100 * r["acc_dense"], yerr=100 * r["acc_dense_std"], fmt="o-", capsize=3,
                   color=PALETTE[1], label="dense INL")
    right.errorbar(x + 0.01 * (x.max() - x.min() + 1), 100 * r["acc_tree"], yerr=100 * r["acc_tree_std"],
                   fmt="s-", capsize=3, color=PALETTE[0], label="tree (Dijkstra) INL")
    if met_at is not None:
        right.axvline(met_at, color=PALETTE[3], ls=":", lw=1)
    label_axes(right, title="Test accuracy (mean +- std over graphs and seeds)",
               xlabel="average degree of the network", ylabel="test accuracy [%]", fontsize=8)
    return fig


def plot_latent_sweep(rows, *, paper_reduction: float | None = None, met_at: float | None = None):
    """Latent rate and accuracy of tree INL over ``beta_latent``: the regulariser's trade-off.

    Parameters
    ----------
    rows : sequence
        One mapping per beta (the first ``beta_latent = 0``) with ``beta_latent``,
        ``latent_rate_bits``, ``latent_rate_bits_std``, ``acc_mean``, ``acc_std``.
    paper_reduction : float, optional
        A reduction of the latent rate against ``beta_latent = 0`` to mark.
    met_at : float, optional
        The beta at which it is met.

    Returns
    -------
    matplotlib.figure.Figure
    """
    r = _rows(rows, ("beta_latent", "latent_rate_bits", "latent_rate_bits_std", "acc_mean", "acc_std"), "rows")
    fig = new_figure(figsize=(11.0, 4.4))
    left, right = fig.subplots(1, 2)
    beta, rate = r["beta_latent"], r["latent_rate_bits"]
    left.errorbar(beta, rate, yerr=r["latent_rate_bits_std"], fmt="o-", capsize=3, color=PALETTE[0],
                  label="latent rate (mean +- std over seeds)")
    positive = beta[beta > 0]
    left.set_xscale("symlog", linthresh=float(positive.min()) if positive.size else 1.0)
    left.set_xlim(left=0)
    if paper_reduction is not None:
        target = (1.0 - paper_reduction) * rate[0]
        left.axhline(target, color=PALETTE[3], ls=":", label=f"paper: -{100 * paper_reduction:.1f}% vs beta 0")
        right.axvline(target, color=PALETTE[3], ls=":", label=f"paper: -{100 * paper_reduction:.1f}% vs beta 0")
    if met_at is not None:
        left.axvline(met_at, color=PALETTE[3], ls=":", lw=1)
        left.text(met_at, 0.97, f" met at beta {met_at:.2g}", transform=left.get_xaxis_transform(), fontsize=8,
                  ha="left", va="top", color=PALETTE[3])
    label_axes(left, title="Latent rate of tree INL", xlabel="beta_latent (symlog)",
               ylabel="latent rate [bits per sample]", fontsize=8)
    right.errorbar(rate, 100 * r["acc_mean"], xerr=r["latent_rate_bits_std"], yerr=100 * r["acc_std"], fmt="o-",
                   capsize=3, color=PALETTE[1], label="tree INL, one point per beta_latent")
    for b, x, y in zip(beta, rate, 100 * r["acc_mean"]):
        right.annotate(f"{b:g}", (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    label_axes(right, title="Rate-accuracy trade-off of the finite-rate regulariser",
               xlabel="latent rate [bits per sample]", ylabel="test accuracy [%]", fontsize=8)
    return fig


def _alpha_axis(ax, alphas: np.ndarray) -> None:
    """Label the ``alpha`` axis; symmetric-log when the positive values span a decade or more.

    The sweep starts at ``alpha = 0`` (data-independent) and grows geometrically,
    so on a linear axis its first points pile up at the origin.
    """
    positive = alphas[alphas > 0]
    if positive.size and positive.max() >= 10 * positive.min():
        ax.set_xscale("symlog", linthresh=float(positive.min()), linscale=0.5)
        # Ticks at the swept values: symlog's own decade ticks crowd the origin.
        ax.set_xticks(alphas, [f"{a:g}" for a in alphas], fontsize=8)
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xlabel(r"selection strength $\alpha$ (symmetric log scale)")
    else:
        ax.set_xlabel(r"selection strength $\alpha$")


def plot_bank_sweep(alphas, *, mi, gap, xu_raginsky, union, mi_low=None, mi_high=None,
                    gap_err=None, unit: str = "nats"):
    """``I(S;W)`` and the generalisation gap against the selection strength ``alpha``.

    Left panel: the estimate of ``I(S;W)`` (with its interval) and ``ln|W|``.
    Right panel: the measured gap (with its standard error) under the
    Xu-Raginsky bound and the union bound.

    Parameters
    ----------
    alphas : array_like, shape (n,)
        Selection strengths.
    mi, mi_low, mi_high : array_like, shape (n,)
        ``I(S;W)`` point estimate and interval, in ``unit``.
    gap, gap_err : array_like, shape (n,)
        Mean generalisation gap (test minus train risk) and its standard error.
    xu_raginsky : array_like, shape (n,)
        The Xu-Raginsky bound at each ``alpha``.
    union : float or array_like
        The union bound ``sqrt(2 sigma^2 ln|W| / m)`` (data-independent).
    unit : str
        Name of the information unit, for labels only.

    Returns
    -------
    matplotlib.figure.Figure
    """
    a = as_1d(alphas, "alphas")
    n = a.size
    mi = as_1d(mi, "mi", length=n)
    gap = as_1d(gap, "gap", length=n)
    xr = as_1d(xu_raginsky, "xu_raginsky", length=n)
    un = np.broadcast_to(as_1d(union, "union"), (n,)) if np.ndim(union) == 0 else as_1d(union, "union", length=n)
    fig = new_figure(figsize=(10.0, 4.2))
    left, right = fig.subplots(1, 2)
    left.plot(a, mi, "o-", color=PALETTE[0], label=r"$\hat I(S;W)$ (bank_mi)")
    if mi_low is not None and mi_high is not None:
        left.fill_between(a, as_1d(mi_low, "mi_low", length=n), as_1d(mi_high, "mi_high", length=n),
                          color=PALETTE[0], alpha=0.2, label="bootstrap interval")
    _alpha_axis(left, a)
    label_axes(left, title="Information the selection keeps about S", ylabel=f"$I(S;W)$ [{unit}]")
    yerr = None if gap_err is None else as_1d(gap_err, "gap_err", length=n)
    right.errorbar(a, gap, yerr=yerr, fmt="o-", color="k", capsize=3, label="measured gap")
    right.plot(a, xr, "s--", color=PALETTE[1], label="Xu-Raginsky bound")
    right.plot(a, un, ":", color=PALETTE[2], lw=2, label="union bound")
    _alpha_axis(right, a)
    label_axes(right, title="Gap and its bounds", ylabel="generalisation gap (0-1 risk)")
    fig.suptitle("Finite expert bank: data-dependent selection")
    return fig


def _sum_rates(distortions, correlated, independent) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(distortions, correlated, independent)`` as validated 1-D arrays of one length."""
    d = as_1d(distortions, "distortions")
    return d, as_1d(correlated, "correlated", length=d.size), as_1d(independent, "independent", length=d.size)


def plot_sum_rate(distortions, *, correlated, independent, signsgd=None, signsgd_distortion=None,
                  unit: str = "bits", distortion_label: str = "distortion (MSE per coordinate)", ax=None):
    """Sum-rate against distortion for model aggregation, with and without correlation.

    Parameters
    ----------
    distortions : array_like, shape (n,)
        Target distortions.
    correlated : array_like, shape (n,)
        Sum rate when the aggregator exploits the workers' correlation (CEO
        coding), in ``unit`` per coordinate.
    independent : array_like, shape (n,)
        Sum rate when each worker is coded alone.
    signsgd : float, optional
        SignSGD's communication (1 bit per coordinate per worker, converted to
        ``unit``), drawn as a horizontal line.
    signsgd_distortion : float, optional
        The measured distortion of the SignSGD aggregate, to place SignSGD as a
        point on the same axes.
    unit : str
        Name of the rate unit, for labels only.
    distortion_label : str
        Label of the horizontal axis (logarithmic). The rate axis is
        logarithmic too when every rate is positive, linear from 0 otherwise.
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = new_axes(ax)
    d, cor, ind = _sum_rates(distortions, correlated, independent)
    ax.plot(d, ind, "s--", color=PALETTE[1], ms=4, label="workers coded independently")
    ax.plot(d, cor, "o-", color=PALETTE[0], ms=4, label="exploiting worker correlation (CEO)")
    if signsgd is not None:
        ax.axhline(float(signsgd), color=PALETTE[2], ls=":", lw=2, label="SignSGD (1 bit/coord/worker)")
        if signsgd_distortion is not None:
            ax.plot([float(signsgd_distortion)], [float(signsgd)], "*", color=PALETTE[2], ms=14,
                    mec="k", label="SignSGD, measured distortion")
    ax.set_xscale("log")
    if min(ind.min(), cor.min()) > 0:  # rates over decades: log axes show their ratio
        ax.set_yscale("log")
    else:
        ax.set_ylim(bottom=0)
    label_axes(ax, title="Rate-distortion of model aggregation", xlabel=distortion_label,
               ylabel=f"sum rate [{unit} per coordinate]", grid_which="both", fontsize=8)
    return fig


def plot_correlation_gain(distortions, *, correlated, independent, signsgd_distortion=None,
                          distortion_label: str = "distortion (MSE per coordinate)", ax=None):
    """The ratio of the two sum rates of :func:`plot_sum_rate`: what exploiting correlation saves.

    Where the two sum-rate curves lie on top of each other on log axes, their
    ratio ``independent / correlated`` (1 = no gain) shows the difference.

    Parameters
    ----------
    distortions : array_like, shape (n,)
        Target distortions.
    correlated, independent : array_like, shape (n,)
        Sum rates with and without exploiting the workers' correlation, in the
        same unit (any; the ratio has none); ``correlated`` must be positive.
    signsgd_distortion : float, optional
        SignSGD's measured distortion, marked as a vertical line.
    distortion_label : str
        Label of the horizontal axis (logarithmic).
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = new_axes(ax)
    d, cor, ind = _sum_rates(distortions, correlated, independent)
    if np.any(cor <= 0):
        raise ValueError("correlated must be positive for a ratio of sum rates")
    ax.plot(d, ind / cor, "o-", color=PALETTE[3], ms=4, label="independent / CEO sum rate")
    ax.axhline(1.0, color="grey", ls="--", lw=1, label="1 = no gain")
    if signsgd_distortion is not None:
        ax.axvline(float(signsgd_distortion), color=PALETTE[2], ls=":", lw=2, label="SignSGD's measured distortion")
    ax.set_xscale("log")
    label_axes(ax, title="Gain from exploiting worker correlation", xlabel=distortion_label,
               ylabel="sum-rate ratio (dimensionless)", grid_which="both", fontsize=8)
    return fig
