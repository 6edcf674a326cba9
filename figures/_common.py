"""Shared plumbing of the figures: a fresh Agg figure, field access, atomic saving.

Figures are built with :class:`matplotlib.figure.Figure` and an explicit Agg
canvas, never through :mod:`matplotlib.pyplot`: no global figure registry, no
backend switch, nothing that outlives the call.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from estimators._files import atomic_replace

__all__ = ["PALETTE", "as_1d", "field", "label_axes", "new_axes", "new_figure", "save_figure"]

#: Colours of the three D-INL variants and of the recurring curves, so that one
#: reader sees the same thing in the same colour across figures.
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf")


def new_axes(ax=None, *, figsize=(6.0, 4.2)):
    """Return ``(fig, ax)``: ``ax`` and its figure, or a fresh Agg figure with one axes."""
    if ax is not None:
        return ax.figure, ax
    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def new_figure(*, figsize=(6.0, 4.2)) -> Figure:
    """A fresh Agg figure without axes (for multi-panel drawings)."""
    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def label_axes(ax, *, title: str, ylabel: str, xlabel: str | None = None, grid_axis: str = "both",
               grid_which: str = "major", **legend_kw) -> None:
    """The finish every drawing shares: title, axis labels, a light grid, the legend.

    ``xlabel=None`` keeps a label set before (e.g. one that names the scale);
    ``legend_kw`` go to :meth:`~matplotlib.axes.Axes.legend`.
    """
    ax.set_title(title)
    if xlabel is not None:
        ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3, axis=grid_axis, which=grid_which)
    ax.legend(**legend_kw)


_REQUIRED = object()


def field(obj, name: str, default=_REQUIRED):
    """``obj.name`` or ``obj[name]``: result objects and plain mappings alike.

    A missing field is a ``ValueError`` unless ``default`` is given.
    """
    if isinstance(obj, Mapping):
        if name not in obj:
            if default is not _REQUIRED:
                return default
            raise ValueError(f"missing field {name!r} (have {sorted(obj)})")
        return obj[name]
    if not hasattr(obj, name):
        if default is not _REQUIRED:
            return default
        raise ValueError(f"{type(obj).__name__} has no field {name!r}")
    return getattr(obj, name)


def as_1d(values, name: str, *, length: int | None = None) -> np.ndarray:
    """A finite 1-D float array (NaN allowed only where the caller says so)."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric array-like: {exc}") from None
    arr = np.atleast_1d(arr)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array, got shape {arr.shape}")
    if length is not None and arr.size != length:
        raise ValueError(f"{name} must have length {length}, got {arr.size}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite entries")
    return arr


def save_figure(fig: Figure, path_stem, *, formats=("png", "pdf"), dpi: int = 150) -> tuple[Path, ...]:
    """Write ``fig`` to ``path_stem.png`` and ``path_stem.pdf`` atomically.

    Each file is first written to a temporary file in the target directory and
    then moved into place with :func:`os.replace`, so a reader never sees a
    half-written figure. Missing parent directories are created.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    path_stem : str or os.PathLike
        Path without suffix (a suffix, if given, is replaced).
    formats : tuple of str
        File formats, each also the suffix.
    dpi : int
        Resolution of raster formats.

    Returns
    -------
    tuple of pathlib.Path
        The written files, in the order of ``formats``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from figures import plot_network
    >>> import networkx as nx
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> [p.name for p in save_figure(plot_network(nx.path_graph(3)), folder / "net")]
    ['net.png', 'net.pdf']
    """
    if not isinstance(fig, Figure):
        raise ValueError(f"fig must be a matplotlib Figure, got {type(fig).__name__}")
    stem = Path(path_stem)
    if stem.suffix.lstrip(".") in formats:
        stem = stem.with_suffix("")
    stem.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt in formats:
        target = stem.with_name(f"{stem.name}.{fmt}")
        with atomic_replace(target) as handle:
            fig.savefig(handle, format=fmt, dpi=dpi)
        written.append(target)
    return tuple(written)
