"""Rate-distortion, information-bottleneck and capacity drawings.

Each function draws a result object of :mod:`estimators.blahut_arimoto`
(``RDCurve``, ``IBCurve``, ``CapacityResult``) as it is: the numbers are the
estimator's, in nats, never recomputed here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import numpy as np

from figures._common import PALETTE, as_1d, field, label_axes, new_axes

__all__ = ["plot_capacity", "plot_distortion_rate", "plot_ib_curve", "plot_rd_curve"]


def _curve_arrays(curve, x_name: str, y_name: str):
    x = as_1d(field(curve, x_name), f"curve.{x_name}")
    y = as_1d(field(curve, y_name), f"curve.{y_name}", length=x.size)
    return x, y


def _unconverged(curve, n: int) -> np.ndarray:
    """Boolean mask of the points the solver did not certify (all False if unknown)."""
    try:
        conv = np.asarray(field(curve, "converged"), dtype=bool)
    except ValueError:
        return np.zeros(n, dtype=bool)
    if conv.shape != (n,):
        return np.zeros(n, dtype=bool)
    return ~conv


def plot_rd_curve(curve, *, closed_form: Callable[[float], float] | None = None, ax=None):
    """Draw a rate-distortion curve ``R(D)`` computed by Blahut-Arimoto.

    Parameters
    ----------
    curve : RDCurve
        Anything with arrays ``rates`` (nats) and ``distortions`` of equal length
        (and optionally ``converged``; uncertified points are marked with an x).
    closed_form : callable, optional
        ``D -> R(D)`` in nats, drawn as a dashed line over the curve's range of
        distortions (e.g. ``lambda d: max(0, ln 2 - h(d))`` for a fair bit under
        Hamming distortion).
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; a fresh figure is made when omitted.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import math
    >>> from estimators import rd_curve
    >>> curve = rd_curve([0.5, 0.5], [[0, 1], [1, 0]], [0.5, 1, 2, 4, 8])
    >>> h = lambda d: -(d * math.log(d) + (1 - d) * math.log(1 - d)) if 0 < d < 1 else 0.0
    >>> fig = plot_rd_curve(curve, closed_form=lambda d: max(0.0, math.log(2) - h(d)))
    >>> fig.axes[0].get_ylabel()
    'rate $R(D)$ [nats]'
    """
    fig, ax = new_axes(ax)
    distortions, rates = _curve_arrays(curve, "distortions", "rates")
    order = np.argsort(distortions)
    ax.plot(distortions[order], rates[order], "o-", color=PALETTE[0], ms=3.5,
            label="Blahut-Arimoto $R(D)$")
    bad = _unconverged(curve, distortions.size)
    if bad.any():
        ax.plot(distortions[bad], rates[bad], "x", color="k", ms=7, label="not converged")
    if closed_form is not None:
        grid = np.linspace(distortions.min(), distortions.max(), 200)
        exact = np.array([float(closed_form(float(d))) for d in grid])
        ax.plot(grid, exact, "--", color=PALETTE[1], lw=1.5, label="closed form")
    ax.set_ylim(bottom=0)
    label_axes(ax, title="Rate-distortion function", xlabel="distortion $D$ (expected loss)",
               ylabel="rate $R(D)$ [nats]")
    return fig


def plot_ib_curve(curve, *, mi_xy: float | None = None, ax=None):
    """Draw an information-bottleneck curve: relevance ``I(T;Y)`` against rate ``I(X;T)``.

    Parameters
    ----------
    curve : IBCurve
        Anything with arrays ``rates`` and ``relevances`` (nats).
    mi_xy : float, optional
        ``I(X;Y)`` in nats, drawn as the dashed ceiling that no encoder can pass
        (data processing); the diagonal ``I(T;Y) = I(X;T)`` is drawn dotted.
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = new_axes(ax)
    rates, relevances = _curve_arrays(curve, "rates", "relevances")
    order = np.argsort(rates)
    ax.plot(rates[order], relevances[order], "o-", color=PALETTE[0], ms=3.5, label="IB curve")
    top = float(max(rates.max(), relevances.max()))
    ax.plot([0, top], [0, top], ":", color="grey", label=r"$I(T;Y) = I(X;T)$")
    if mi_xy is not None:
        ax.axhline(float(mi_xy), ls="--", color=PALETTE[1], label=r"$I(X;Y)$")
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    label_axes(ax, title="Information bottleneck", xlabel=r"rate $I(X;T)$ [nats]",
               ylabel=r"relevance $I(T;Y)$ [nats]")
    return fig


def plot_capacity(result, *, ax=None):
    """Draw the capacity-achieving input distribution of a channel.

    Parameters
    ----------
    result : CapacityResult
        Anything with ``capacity``, ``lower``, ``upper`` (nats) and ``input_pmf``.
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = new_axes(ax)
    pmf = as_1d(field(result, "input_pmf"), "result.input_pmf")
    capacity = float(field(result, "capacity"))
    lower, upper = float(field(result, "lower")), float(field(result, "upper"))
    ax.bar(np.arange(pmf.size), pmf, color=PALETTE[0],
           label=f"$p^*(x)$, C = {capacity:.4f} nats = {capacity / math.log(2):.4f} bits")
    ax.set_xticks(np.arange(pmf.size))
    ax.set_ylim(0, max(1.0, float(pmf.max()) * 1.15))
    label_axes(ax, title=f"Channel capacity: {lower:.4f} <= C <= {upper:.4f} nats", xlabel="input symbol $x$",
               ylabel="probability $p^*(x)$", grid_axis="y")
    return fig


def _point_groups(points) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{label: (rates, distortions)}`` from a mapping or an ``(n, 2)`` array."""
    if isinstance(points, Mapping):
        groups = {}
        for label, (r, d) in points.items():
            r = as_1d(r, f"points[{label!r}] rates")
            groups[str(label)] = (r, as_1d(d, f"points[{label!r}] distortions", length=r.size))
        return groups
    arr = np.asarray(points, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"points must be a mapping or an (n, 2) array, got shape {arr.shape}")
    return {"trained gates": (as_1d(arr[:, 0], "points rates"), as_1d(arr[:, 1], "points distortions"))}


def plot_distortion_rate(curve, points, *, unit: str = "nats", rate_label: str = r"gate rate $R_g = I(Z;T)$",
                         curve_label: str = r"$D(R_g)$ (Blahut-Arimoto)", extend_flat: bool = False, ax=None):
    """Draw ``D(R_g)``, the distortion-rate function of the gate, with trained gates.

    Parameters
    ----------
    curve : RDCurve
        Blahut-Arimoto curve of the gate's context/choice problem, arrays
        ``rates`` (in ``unit``) and ``distortions`` (expected loss).
    points : mapping or array
        Trained gates: ``{label: (gate_rates, losses)}`` (one marker style per
        label, e.g. per variant) or an ``(n, 2)`` array of ``(rate, loss)``.
        A trained gate can sit on or above the curve, never below it.
    unit : str
        Name of the rate unit, for the axis label only (values are drawn as given).
    rate_label : str
        The rate axis label, before ``[unit]`` (e.g. ``"routing rate I(X;T)"``).
    curve_label : str
        Legend entry of the curve.
    extend_flat : bool, default False
        Continue the curve's last point horizontally (dotted) to the right
        edge. ``D(R)`` is non-increasing and constant once it reaches its
        minimum distortion, so this is right when the curve's last point is at
        that minimum (a large final ``beta``); the caller vouches for it.
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = new_axes(ax)
    distortions, rates = _curve_arrays(curve, "distortions", "rates")
    order = np.argsort(rates)
    ax.plot(rates[order], distortions[order], "-", color="k", lw=1.5, label=curve_label)
    groups = _point_groups(points)
    markers = "osD^v<>"
    for i, (label, (r, d)) in enumerate(groups.items()):
        ax.plot(r, d, markers[i % len(markers)], color=PALETTE[i % len(PALETTE)], ms=6,
                ls="none", label=label)
    right = 1.08 * max([float(rates.max())] + [float(r.max()) for r, _ in groups.values()])
    if extend_flat and right > rates.max():
        last = order[-1]
        ax.plot([rates[last], right], [distortions[last], distortions[last]], ":", color="k", lw=1.5,
                label="flat: minimum distortion reached")
    ax.set_xlim(0, right if right > 0 else None)
    ax.set_ylim(bottom=0)
    label_axes(ax, title="Distortion-rate function of the gate", xlabel=f"{rate_label} [{unit}]",
               ylabel="distortion (expected 0-1 loss)")
    return fig
