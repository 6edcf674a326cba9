"""Graphs and routings: Dijkstra trees and dense DAGs oriented to the root."""

import math

import networkx as nx
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from inl.topology import (
    MAX_NODES,
    _geometric_edges,
    dense_routing,
    random_network,
    routing_order,
    shortest_path_tree,
    validate_network,
)


@st.composite
def networks(draw):
    """Connected graphs with random capacities, from geometric draws or arbitrary edges."""
    n = draw(st.integers(2, 14))
    tree_parents = [draw(st.integers(0, i - 1)) for i in range(1, n)]
    extra = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=3 * n))
    G = nx.Graph()
    G.add_nodes_from(range(n))
    G.add_edges_from((i, p) for i, p in zip(range(1, n), tree_parents))
    G.add_edges_from((u, v) for u, v in extra if u != v)
    caps = st.sampled_from([1.0, 2.0, 4.0]) | st.floats(0.1, 100.0)
    for u, v in sorted(G.edges()):
        G.edges[u, v]["capacity"] = draw(caps)
    root = draw(st.integers(0, n - 1))
    payload = draw(st.sampled_from([1.0, 256.0]) | st.floats(0.5, 1e4))
    return G, root, payload


@given(networks())
def test_tree_spans_and_matches_dijkstra(case):
    G, root, payload = case
    T = shortest_path_tree(G, root, payload_bits=payload)
    assert set(T.nodes) == set(G.nodes)
    assert T.number_of_edges() == G.number_of_nodes() - 1
    assert all(T.out_degree(v) == (0 if v == root else 1) for v in T)
    assert all(G.has_edge(u, v) for u, v in T.edges)
    reference = nx.single_source_dijkstra_path_length(
        G, root, weight=lambda u, v, d: payload / d["capacity"]
    )
    for v in G.nodes:
        # cost of the tree path from v to the root
        path = nx.shortest_path(T, v, root)
        tree_cost = sum(T.edges[a, b]["cost"] for a, b in zip(path, path[1:]))
        assert math.isclose(tree_cost, reference[v], rel_tol=1e-9, abs_tol=1e-12)
        assert math.isclose(T.nodes[v]["dist"], reference[v], rel_tol=1e-12, abs_tol=0)


@given(networks())
def test_dense_routing_is_acyclic_reaches_root_and_contains_tree(case):
    G, root, payload = case
    D = dense_routing(G, root, payload_bits=payload)
    T = shortest_path_tree(G, root, payload_bits=payload)
    assert nx.is_directed_acyclic_graph(D)
    assert D.number_of_edges() == G.number_of_edges()
    assert {frozenset(e) for e in D.edges} == {frozenset(e) for e in G.edges}
    assert D.out_degree(root) == 0
    assert all(nx.has_path(D, v, root) for v in D)
    assert set(T.edges) <= set(D.edges)
    order = routing_order(D)
    assert order[-1] == root
    position = {v: i for i, v in enumerate(order)}
    assert all(position[u] < position[v] for u, v in D.edges)


def test_dense_orientation_breaks_ties_by_node_id():
    # a 4-cycle with equal capacities: nodes 1 and 3 are both at distance 1 from 0
    G = nx.cycle_graph(4)
    nx.set_edge_attributes(G, 1.0, "capacity")
    D = dense_routing(G, 0)
    assert D.has_edge(2, 1) and D.has_edge(2, 3)
    assert D.has_edge(1, 0) and D.has_edge(3, 0)


def test_unreachable_nodes_are_named():
    G = nx.Graph()
    G.add_edge(0, 1, capacity=1.0)
    G.add_edge(2, 3, capacity=1.0)
    with pytest.raises(ValueError, match=r"\[2, 3\] cannot reach root 0"):
        shortest_path_tree(G, 0, payload_bits=8.0)
    with pytest.raises(ValueError, match="cannot reach root"):
        dense_routing(G, 0)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("n", [2, 12, 30])
def test_random_network_is_connected_with_capacities(n, seed):
    G = random_network(n, avg_degree=4.0, capacity_range=(2.0, 5.0), seed=seed)
    assert nx.is_connected(G) and G.number_of_nodes() == n
    caps = [c for _, _, c in G.edges(data="capacity")]
    assert all(2.0 <= c <= 5.0 for c in caps)
    assert all(len(G.nodes[v]["pos"]) == 2 for v in G)
    for u, v in G.edges:
        (x1, y1), (x2, y2) = G.nodes[u]["pos"], G.nodes[v]["pos"]
        assert math.hypot(x1 - x2, y1 - y2) <= G.graph["radius"] + 1e-12
    validate_network(G)


def test_random_network_is_a_function_of_the_seed():
    a = random_network(20, avg_degree=5.0, seed=3)
    b = random_network(20, avg_degree=5.0, seed=3)
    c = random_network(20, avg_degree=5.0, seed=4)
    assert nx.to_dict_of_dicts(a) == nx.to_dict_of_dicts(b)
    assert nx.to_dict_of_dicts(a) != nx.to_dict_of_dicts(c)


def test_mean_degree_grows_with_avg_degree():
    low = random_network(60, avg_degree=6.0, seed=0)
    high = random_network(60, avg_degree=15.0, seed=0)
    assert 2 * high.number_of_edges() / 60 > 2 * low.number_of_edges() / 60 + 3


def test_random_network_errors():
    with pytest.raises(ValueError, match="no connected random geometric graph"):
        random_network(200, avg_degree=0.5, seed=0)
    with pytest.raises(ValueError, match="capacity_range"):
        random_network(5, capacity_range=(3.0, 1.0), seed=0)
    with pytest.raises(ValueError, match="n_nodes"):
        random_network(1, seed=0)
    with pytest.raises(ValueError, match="avg_degree"):
        random_network(5, avg_degree=-1.0, seed=0)
    for bad in (5.0, (1.0, 2.0, 3.0), "12", (0.0, 1.0), (1.0, float("inf"))):
        with pytest.raises(ValueError, match="capacity_range"):
            random_network(5, capacity_range=bad, seed=0)
    with pytest.raises(ValueError, match="seed"):
        random_network(5, seed=-1)


def test_validate_network_rejects_bad_graphs():
    G = nx.path_graph(3)
    with pytest.raises(ValueError, match=r"edge \(0, 1\).*capacity"):
        validate_network(G)
    nx.set_edge_attributes(G, 1.0, "capacity")
    validate_network(G)
    H = nx.relabel_nodes(G, {0: "a", 1: "b", 2: "c"})
    with pytest.raises(ValueError, match="integers 0..2"):
        validate_network(H)
    G.add_node(3)
    with pytest.raises(ValueError, match="connected"):
        validate_network(G)
    with pytest.raises(ValueError, match="undirected"):
        validate_network(nx.DiGraph(G))
    multi = nx.MultiGraph([(0, 1), (0, 1)])
    nx.set_edge_attributes(multi, 1.0, "capacity")
    with pytest.raises(ValueError, match="undirected networkx.Graph, got MultiGraph"):
        validate_network(multi)
    with pytest.raises(ValueError, match="undirected"):
        dense_routing(multi, 0)
    pair = nx.path_graph(2)
    nx.set_edge_attributes(pair, 1.0, "capacity")
    with pytest.raises(ValueError, match="root 9"):
        shortest_path_tree(pair, 9, payload_bits=1.0)
    with pytest.raises(ValueError, match="payload_bits"):
        shortest_path_tree(pair, 0, payload_bits=0.0)
    with pytest.raises(ValueError, match="capacity"):
        shortest_path_tree(nx.path_graph(2), 0, payload_bits=1.0)


def test_dense_routing_refuses_costs_lost_to_rounding():
    # 1 -> 2 costs 1e-20 beside a distance of 1: in float64 node 1 ties with its own
    # predecessor, and ordering by (distance, id) would leave node 1 without a parent
    G = nx.Graph()
    G.add_edge(0, 2, capacity=1.0)
    G.add_edge(2, 1, capacity=1e20)
    assert set(shortest_path_tree(G, 0, payload_bits=1.0).edges) == {(1, 2), (2, 0)}
    with pytest.raises(ValueError, match="node 1 is at the same float64 distance"):
        dense_routing(G, 0)


def test_routing_order_needs_a_dag():
    cycle = nx.DiGraph([(0, 1), (1, 2), (2, 0)])
    with pytest.raises(ValueError, match="directed acyclic"):
        routing_order(cycle)
    with pytest.raises(ValueError, match="directed acyclic"):
        routing_order(nx.path_graph(3))
    assert routing_order(nx.DiGraph([(3, 0), (2, 0), (1, 2)])) == [1, 2, 3, 0]


def test_docstring_examples():
    import doctest

    import inl.topology

    result = doctest.testmod(inl.topology, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 2 and result.failed == 0


def test_oversized_networks_are_value_errors_naming_the_argument():
    # was MemoryError: a dense n x n distance matrix
    with pytest.raises(ValueError, match=f"n_nodes must be at most {MAX_NODES}"):
        random_network(10**6)
    with pytest.raises(ValueError, match="avg_degree"):
        random_network(5000, avg_degree=4999.0)  # a complete graph: 12.5 million edges


def test_geometric_edges_are_those_of_the_dense_distance_matrix():
    pos = np.random.default_rng(5).random((300, 2))
    for radius in (0.05, 0.1, 0.3, 1.5):
        diff = pos[:, None, :] - pos[None, :, :]
        rows, cols = np.nonzero(np.triu(np.sqrt((diff**2).sum(-1)) <= radius, k=1))
        assert _geometric_edges(pos, radius) == list(zip(rows.tolist(), cols.tolist()))


def test_a_large_sparse_network_is_built():
    G = random_network(5000, avg_degree=12.0, seed=0)
    assert nx.is_connected(G) and G.number_of_nodes() == 5000
    assert 10 < 2 * G.number_of_edges() / 5000 < 14
