"""Exchange accounting: counted at the edges, equal to the closed form 2 L |E| per sample."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from inl.accounting import ExchangeCounter, closed_form_exchange
from inl.topology import dense_routing, random_network, shortest_path_tree
from inl._training import INLConfig, train

TINY = dict(n_nodes=6, epochs=2, batch_size=16, latent_width=3, hidden_width=8, threads=1,
            dataset_params={"n_train": 50, "n_test": 30, "view_dim": 2})


def test_counter_counts_forward_and_delivered_errors():
    counter = ExchangeCounter()
    x = torch.ones(5, 3, requires_grad=True)
    used = counter.send((1, 0), x * 2)
    unused = counter.send((2, 0), x * 3)  # its error never comes back
    (used.sum() * 4).backward()
    assert counter.forward == {(1, 0): 15, (2, 0): 15}
    assert counter.backward == {(1, 0): 15}
    summary = counter.summary(5)
    assert summary.floats_total == 45 and summary.bytes_total == 45 * 4
    assert summary.per_edge == {(1, 0): 6.0, (2, 0): 3.0}
    assert torch.equal(x.grad, torch.full((5, 3), 8.0))
    assert unused.shape == (5, 3)


@pytest.mark.parametrize("mode", ["dense", "tree"])
def test_training_exchange_equals_closed_form(mode):
    # 50 samples in batches of 16: the last batch is partial, the count is still exact
    run = train(INLConfig(mode=mode, **TINY), progress=False)
    width = run.config.latent_width
    expected = closed_form_exchange(run.routing, width)
    assert expected == sum(2 * width for _ in run.routing.edges)
    assert run.exchange.floats_per_sample == expected
    assert run.exchange.bytes_per_sample == 4 * expected
    assert run.exchange.floats_total == expected * 50 * 2
    assert run.exchange.forward_floats == run.exchange.backward_floats
    assert set(run.exchange.per_edge) == set(run.routing.edges)
    assert all(f == 2 * width for f in run.exchange.per_edge.values())
    rec = run.record
    assert rec["exchange_floats"] == expected and rec["exchange_bytes_total"] == 4 * expected * 100
    assert rec["edges_used"] == run.routing.number_of_edges()


def test_tree_exchanges_no_more_than_dense_in_training():
    dense = train(INLConfig(mode="dense", **TINY), progress=False)
    tree = train(INLConfig(mode="tree", **TINY), progress=False)
    assert tree.record["edges_used"] == TINY["n_nodes"] - 1
    assert tree.exchange_floats <= dense.exchange_floats
    assert tree.exchange_bytes <= dense.exchange_bytes


@given(st.integers(2, 30), st.floats(4.0, 10.0), st.integers(0, 10_000), st.integers(1, 16))
def test_tree_exchange_at_most_dense(n, degree, seed, width):
    G = random_network(n, avg_degree=degree, seed=seed)
    tree = shortest_path_tree(G, 0, payload_bits=32.0 * width)
    dense = dense_routing(G, 0, payload_bits=32.0 * width)
    assert closed_form_exchange(tree, width) == 2 * width * (n - 1)
    assert closed_form_exchange(tree, width) <= closed_form_exchange(dense, width)


def test_argument_errors():
    with pytest.raises(ValueError, match="n_samples"):
        ExchangeCounter().summary(0)
    with pytest.raises(ValueError, match="width"):
        closed_form_exchange(shortest_path_tree(random_network(3, seed=0), 0, payload_bits=1.0), 0)
    with pytest.raises(ValueError, match="routing must be a networkx.DiGraph"):
        closed_form_exchange(random_network(3, seed=0), 2)
