"""The communication network with its routing tree."""

from __future__ import annotations

import networkx as nx
import numpy as np
from matplotlib.collections import LineCollection

from figures._common import PALETTE, new_axes

__all__ = ["plot_network"]


def _positions(graph: nx.Graph) -> dict:
    """Node positions from the ``pos`` attribute (a circle where any is missing)."""
    pos = nx.get_node_attributes(graph, "pos")
    if len(pos) == graph.number_of_nodes():
        return {n: np.asarray(p, dtype=float)[:2] for n, p in pos.items()}
    return {n: np.asarray(p, dtype=float) for n, p in nx.circular_layout(graph).items()}


def _root_of(tree: nx.DiGraph):
    roots = [n for n in tree.nodes if tree.out_degree(n) == 0]
    if len(roots) != 1:
        raise ValueError(f"tree must have exactly one root (node without parent), found {roots}")
    return roots[0]


def plot_network(graph: nx.Graph, tree: nx.DiGraph | None = None, *, ax=None):
    """Draw a capacity-weighted network and, optionally, its routing tree.

    Parameters
    ----------
    graph : networkx.Graph
        Nodes with a ``pos`` attribute (``(x, y)``; a circular layout is used if
        any node lacks one) and edges with an optional ``capacity``; line width
        grows with capacity.
    tree : networkx.DiGraph, optional
        A child -> parent routing tree (e.g. the Dijkstra tree of
        ``inl.topology.shortest_path_tree``): its edges are drawn as arrows
        toward the root, and the root (the only node without a parent) is
        marked as the fusion node.
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    if not isinstance(graph, nx.Graph) or graph.number_of_nodes() == 0:
        raise ValueError("graph must be a non-empty networkx Graph")
    fig, ax = new_axes(ax, figsize=(6.0, 5.4))
    pos = _positions(graph)
    caps = np.array([float(d.get("capacity", 1.0)) for _, _, d in graph.edges(data=True)])
    widths = 0.6 + 2.4 * (caps / caps.max() if caps.size and caps.max() > 0 else caps)
    segments = [(pos[u], pos[v]) for u, v in graph.edges]
    ax.add_collection(LineCollection(segments, colors="0.7", linewidths=widths, zorder=1,
                                     label=f"network edges ({graph.number_of_edges()}), width ~ capacity"))
    root = None
    if tree is not None:
        root = _root_of(tree)
        for child, parent in tree.edges:
            ax.annotate("", xy=pos[parent], xytext=pos[child], zorder=2,
                        arrowprops={"arrowstyle": "-|>", "color": PALETTE[1], "lw": 2.0,
                                        "shrinkA": 7, "shrinkB": 7})
        ax.plot([], [], color=PALETTE[1], lw=2.0,
                label=f"Dijkstra tree ({tree.number_of_edges()} edges, child -> parent)")
    xy = np.array([pos[n] for n in graph.nodes])
    ax.scatter(xy[:, 0], xy[:, 1], s=160, color=PALETTE[0], zorder=3, edgecolors="k")
    if root is not None:
        ax.scatter(*pos[root], s=320, marker="*", color="gold", edgecolors="k", zorder=4,
                   label=f"fusion node (root {root})")
    for n in graph.nodes:
        ax.annotate(str(n), pos[n], ha="center", va="center", fontsize=7, zorder=5,
                    color="k" if n == root else "w")  # black on the gold star
    ax.set_title(f"Network: {graph.number_of_nodes()} nodes, {graph.number_of_edges()} edges")
    ax.set_xlabel("x position (arbitrary units)")
    ax.set_ylabel("y position (arbitrary units)")
    ax.set_aspect("equal", adjustable="datalim")
    ax.autoscale_view()
    ax.legend(loc="best", fontsize=8)
    return fig
