"""Communication graphs for in-network learning, and the routings over them.

A *network* is an undirected :class:`networkx.Graph` whose nodes are the
integers ``0 .. n-1`` and whose every edge carries a ``capacity`` in bits per
second. A *routing* is a :class:`networkx.DiGraph` on the same nodes whose edges
point from child to parent, towards the fusion node (the root); each routing edge
keeps the ``capacity`` of its network edge and its ``cost``, the transmission
time of one payload:

.. math::

    c(u, v) = \\frac{\\text{payload\\_bits}}{\\text{capacity}(u, v)} \\quad [\\mathrm{s}].

Dense INL [2]_ uses every edge (:func:`dense_routing`); D-INL [1]_ keeps only the
shortest-path tree of these costs (:func:`shortest_path_tree`), found with
networkx's Dijkstra.

References
----------
.. [1] "Sparse In-Network Learning via Shortest-Path Backpropagation and
       Finite-Rate Gating", arXiv:2605.23424.
.. [2] M. Moldoveanu and A. Zaidi, "In-network learning: distributed training
       and inference in networks", 2021.
"""

from __future__ import annotations

import math
import numbers

import networkx as nx
import numpy as np
from scipy.spatial import cKDTree

from estimators._validation import positive_float, positive_int
from inl._validation import positive_range

__all__ = [
    "random_network",
    "validate_network",
    "shortest_path_tree",
    "dense_routing",
    "routing_order",
]

#: How many position draws :func:`random_network` tries before giving up.
MAX_DRAWS = 200

#: Most nodes :func:`random_network` builds (one neural module per node; networkx
#: holds about 1 KB per node and edge, so this keeps a graph within a few hundred MB).
MAX_NODES = 100_000

#: Most edges :func:`random_network` may expect, ``n_nodes * min(avg_degree, n_nodes - 1) / 2``.
MAX_EDGES = 1_000_000


def _geometric_edges(pos: np.ndarray, radius: float) -> list[tuple[int, int]]:
    """Pairs ``i < j`` with ``|pos_i - pos_j| <= radius``, by a KD-tree (memory grows with the edges, not n^2)."""
    pairs = cKDTree(pos).query_pairs(radius, p=2.0, output_type="ndarray")
    pairs = pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]
    return list(zip(pairs[:, 0].tolist(), pairs[:, 1].tolist()))


def _check_size(n_nodes: int, avg_degree: float) -> None:
    """Refuse graphs beyond :data:`MAX_NODES` nodes or :data:`MAX_EDGES` expected edges (naming the argument)."""
    if n_nodes > MAX_NODES:
        raise ValueError(f"n_nodes must be at most {MAX_NODES} (one module per node), got {n_nodes}")
    expected = n_nodes * min(avg_degree, n_nodes - 1) / 2
    if expected > MAX_EDGES:
        raise ValueError(
            f"n_nodes={n_nodes} with avg_degree={avg_degree:g} expects {expected:.3g} edges, more than "
            f"{MAX_EDGES}; lower avg_degree or n_nodes"
        )


def _pair_probability(r: float) -> float:
    """P(|X - Y| <= r) for X, Y uniform in the unit square, ``0 <= r <= 1``."""
    return math.pi * r * r - 8.0 / 3.0 * r**3 + 0.5 * r**4


def _radius_for_degree(p: float) -> float:
    """The radius at which two uniform points are joined with probability ``p`` (bisection)."""
    if p >= _pair_probability(1.0):
        return math.sqrt(2.0)
    low, high = 0.0, 1.0
    for _ in range(60):
        mid = 0.5 * (low + high)
        low, high = (mid, high) if _pair_probability(mid) < p else (low, mid)
    return high


def random_network(
    n_nodes: int,
    *,
    avg_degree: float = 4.0,
    capacity_range: tuple[float, float] = (1e6, 1e7),
    seed: int | None = None,
) -> nx.Graph:
    """A connected random geometric graph with random link capacities.

    ``n_nodes`` points are drawn uniformly in the unit square and joined when
    closer than the radius ``r`` whose expected degree, border effects included,
    is ``avg_degree``:

    .. math::

        (n - 1) \\Big(\\pi r^2 - \\tfrac83 r^3 + \\tfrac12 r^4\\Big) = \\bar d
        \\qquad (r \\le 1;\\ r = \\sqrt 2 \\text{ when } \\bar d \\ge 0.975 (n - 1)).

    Disconnected draws are rejected; up to :data:`MAX_DRAWS` draws from the one
    generator seeded by ``seed`` are tried, so the result is a function of
    ``seed``. Each edge gets a ``capacity`` (bits/s) uniform in
    ``capacity_range``; each node a ``pos`` (x, y).

    Parameters
    ----------
    n_nodes : int
        Number of nodes, from 2 to :data:`MAX_NODES` (100 000); nodes are
        ``0 .. n_nodes - 1``.
    avg_degree : float
        Target mean degree (> 0). Small values (below about ``ln n``) rarely
        give a connected graph. The expected number of edges,
        ``n_nodes * min(avg_degree, n_nodes - 1) / 2``, may not exceed
        :data:`MAX_EDGES` (one million).
    capacity_range : (float, float)
        ``(low, high)`` link capacities in bits per second, ``0 < low <= high``.
    seed : int or None
        Seed of the numpy generator used for positions and capacities.

    Returns
    -------
    networkx.Graph
        Connected; edge attribute ``capacity``, node attribute ``pos``, graph
        attribute ``radius``.

    Raises
    ------
    ValueError
        On bad arguments (a graph beyond :data:`MAX_NODES` or :data:`MAX_EDGES`
        included), or when no connected graph was drawn.

    Examples
    --------
    >>> G = random_network(12, avg_degree=4.0, seed=0)
    >>> nx.is_connected(G), G.number_of_nodes()
    (True, 12)
    """
    n_nodes = positive_int(n_nodes, "n_nodes", minimum=2)
    avg_degree = positive_float(avg_degree, "avg_degree")
    _check_size(n_nodes, avg_degree)
    low, high = positive_range(capacity_range, "capacity_range")
    if seed is not None:
        seed = positive_int(seed, "seed", minimum=0)
    radius = _radius_for_degree(avg_degree / (n_nodes - 1))
    rng = np.random.default_rng(seed)
    for _ in range(MAX_DRAWS):
        pos = rng.random((n_nodes, 2))
        G = nx.Graph(radius=radius)
        G.add_nodes_from((i, {"pos": (float(x), float(y))}) for i, (x, y) in enumerate(pos))
        G.add_edges_from(_geometric_edges(pos, radius))
        if nx.is_connected(G):
            for u, v in sorted(G.edges()):
                G.edges[u, v]["capacity"] = float(rng.uniform(low, high))
            return G
    raise ValueError(
        f"no connected random geometric graph with n_nodes={n_nodes} and "
        f"avg_degree={avg_degree} in {MAX_DRAWS} draws (seed={seed}); raise avg_degree"
    )


def _check_capacities(G) -> None:
    """``G`` is an undirected simple graph with a finite positive ``capacity`` on every edge."""
    if not isinstance(G, nx.Graph) or G.is_directed() or G.is_multigraph():
        raise ValueError(f"G must be an undirected networkx.Graph, got {type(G).__name__}")
    for u, v, cap in G.edges(data="capacity"):
        if isinstance(cap, bool) or not isinstance(cap, numbers.Real) or not (
            math.isfinite(cap) and cap > 0
        ):
            raise ValueError(
                f"G's edge ({u}, {v}) needs a finite positive 'capacity' attribute, got {cap!r}"
            )


def validate_network(G) -> nx.Graph:
    """Check that ``G`` is a usable network and return it.

    A network is an undirected, connected :class:`networkx.Graph` (not a
    multigraph) on the nodes ``0 .. n-1`` (use
    :func:`networkx.convert_node_labels_to_integers` on other labels) with at
    least two nodes, no self-loops, and a finite positive ``capacity`` (bits/s)
    on every edge. Positions are not needed.

    Parameters
    ----------
    G : networkx.Graph

    Returns
    -------
    networkx.Graph
        ``G`` itself.

    Raises
    ------
    ValueError
        Naming the first problem found (type, size, labels, self-loop, edge
        without a valid capacity, or the connected components).
    """
    _check_capacities(G)
    n = G.number_of_nodes()
    if n < 2:
        raise ValueError(f"G must have at least 2 nodes, got {n}")
    labels = set(G.nodes)
    if not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in labels) or (
        labels != set(range(n))
    ):
        raise ValueError(f"G's nodes must be the integers 0..{n - 1}; relabel them first")
    loops = list(nx.selfloop_edges(G))
    if loops:
        raise ValueError(f"G has self-loops, e.g. at node {loops[0][0]}")
    if not nx.is_connected(G):
        parts = sorted(sorted(c) for c in nx.connected_components(G))
        raise ValueError(f"G must be connected; its components are {parts}")
    return G


def _check_root(G: nx.Graph, root) -> int:
    if root not in G:
        raise ValueError(f"root {root!r} is not a node of G")
    return root


def _cost_weight(payload_bits: float):
    def cost(u, v, data):
        return payload_bits / data["capacity"]

    return cost


def _root_distances(G: nx.Graph, root: int, payload_bits: float) -> tuple[dict, dict]:
    """Dijkstra from ``root`` with cost payload/capacity; unreachable nodes raise."""
    dist, paths = nx.single_source_dijkstra(G, root, weight=_cost_weight(payload_bits))
    missing = sorted(set(G.nodes) - set(dist), key=repr)
    if missing:
        raise ValueError(f"nodes {missing} cannot reach root {root!r}")
    return dist, paths


def _routing_graph(G: nx.Graph, root: int, dist: dict, kind: str, payload_bits: float):
    R = nx.DiGraph(root=root, kind=kind, payload_bits=payload_bits)
    R.add_nodes_from((v, {"dist": float(dist[v])}) for v in sorted(G.nodes))
    return R


def _edge_attrs(G: nx.Graph, u, v, payload_bits: float) -> dict:
    cap = float(G.edges[u, v]["capacity"])
    return {"capacity": cap, "cost": payload_bits / cap}


def shortest_path_tree(G: nx.Graph, root: int, *, payload_bits: float) -> nx.DiGraph:
    """The capacity-aware shortest-path tree rooted at the fusion node (D-INL [1]_).

    Every node's parent is its predecessor on a least-cost path to ``root``
    (networkx's :func:`~networkx.single_source_dijkstra`), with the cost of an
    edge the time to send one payload over it, ``payload_bits / capacity``.
    Messages travel child -> parent, so every node's root distance

    .. math::

        d(v) = \\min_{\\text{paths } v \\to r} \\sum_{(a,b)} \\frac{P}{\\text{cap}(a,b)}

    is the tree-path cost from ``v`` to the root.

    Parameters
    ----------
    G : networkx.Graph
        Undirected graph with a positive ``capacity`` on every edge.
    root : node
        The fusion node.
    payload_bits : float
        Bits sent per message (e.g. ``32 * latent_width``), > 0.

    Returns
    -------
    networkx.DiGraph
        Edges child -> parent with attributes ``capacity`` and ``cost``; node
        attribute ``dist`` (seconds to the root); graph attributes ``root``,
        ``kind="tree"``, ``payload_bits``. It has ``n - 1`` edges.

    Raises
    ------
    ValueError
        If ``root`` is not in ``G``, ``payload_bits`` is not positive, a
        capacity is not positive, or some nodes cannot reach the root (named).

    References
    ----------
    .. [1] arXiv:2605.23424, Sec. "Shortest-path backpropagation".
    """
    payload_bits = positive_float(payload_bits, "payload_bits")
    _check_capacities(G)
    root = _check_root(G, root)
    dist, paths = _root_distances(G, root, payload_bits)
    T = _routing_graph(G, root, dist, "tree", payload_bits)
    for v, path in paths.items():
        if v != root:
            parent = path[-2]
            T.add_edge(v, parent, **_edge_attrs(G, v, parent, payload_bits))
    return T


def dense_routing(G: nx.Graph, root: int, *, payload_bits: float = 1.0) -> nx.DiGraph:
    """Every edge of ``G``, oriented toward the root (dense INL [2]_).

    Nodes are ranked by their cost distance to the root (as in
    :func:`shortest_path_tree`), ties broken by node id,

    .. math::

        \\operatorname{rank}(v) = \\big(d(v), v\\big) \\quad \\text{(lexicographic)},

    and each edge points from its higher-ranked end to its lower-ranked end. The
    ranking is a strict total order, so the result is acyclic; every non-root
    node's Dijkstra predecessor is strictly closer to the root, so every node
    reaches the root and the shortest-path tree's edges are all present.
    Orienting by cost distance is scale-free: ``payload_bits`` changes only the
    stored ``cost`` attributes, not the orientation.

    Parameters
    ----------
    G : networkx.Graph
        Undirected graph with a positive ``capacity`` on every edge.
    root : node
        The fusion node.
    payload_bits : float
        Bits per message, > 0; sets the ``cost`` attributes.

    Returns
    -------
    networkx.DiGraph
        Edges child -> parent with ``capacity`` and ``cost``; node attribute
        ``dist``; graph attributes ``root``, ``kind="dense"``, ``payload_bits``.

    Raises
    ------
    ValueError
        As :func:`shortest_path_tree`; also when the capacities span so many
        orders of magnitude that an edge's cost vanishes in a float64 distance
        sum (a node would tie with its own predecessor and the orientation
        could leave it without a way to the root).

    Examples
    --------
    >>> G = nx.cycle_graph(4)
    >>> nx.set_edge_attributes(G, 1.0, "capacity")
    >>> sorted(dense_routing(G, 0).edges)
    [(1, 0), (2, 1), (2, 3), (3, 0)]
    """
    payload_bits = positive_float(payload_bits, "payload_bits")
    _check_capacities(G)
    root = _check_root(G, root)
    dist, paths = _root_distances(G, root, payload_bits)
    for v, path in paths.items():
        if v != root and not dist[path[-2]] < dist[v]:
            raise ValueError(
                f"G's capacities span too wide a range: node {v!r} is at the same float64 "
                f"distance {dist[v]!r} from the root as its predecessor {path[-2]!r}"
            )
    D = _routing_graph(G, root, dist, "dense", payload_bits)
    rank = {v: (dist[v], v) for v in G.nodes}
    for u, v in G.edges():
        child, parent = (u, v) if rank[u] > rank[v] else (v, u)
        D.add_edge(child, parent, **_edge_attrs(G, child, parent, payload_bits))
    return D


def routing_order(routing: nx.DiGraph) -> list:
    """The nodes of a routing in the order messages are computed: leaves first, root last.

    A topological order of the child -> parent DAG, with ties broken by node id
    so that every process derives the same order.

    Parameters
    ----------
    routing : networkx.DiGraph
        Child -> parent edges (:func:`shortest_path_tree`, :func:`dense_routing`).

    Returns
    -------
    list
        Every node once; each node after all of its children.

    Raises
    ------
    ValueError
        If ``routing`` is not a directed acyclic graph.
    """
    if not isinstance(routing, nx.DiGraph) or not nx.is_directed_acyclic_graph(routing):
        raise ValueError("routing must be a directed acyclic graph (child -> parent)")
    return list(nx.lexicographical_topological_sort(routing))
