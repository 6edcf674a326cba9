"""Node modules and the network: per-node forward, gates, rates, seeded initialisation."""

import networkx as nx
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from estimators.discrete import gate_rate
from inl.model import INLNetwork, NodeModule, batch_gate_rate, node_generators, node_objective
from inl.seeding import torch_generator
from inl.topology import dense_routing, shortest_path_tree

L, K = 3, 4


def _graph():
    G = nx.Graph()
    G.add_weighted_edges_from([(0, 1, 2.0), (0, 2, 1.0), (1, 2, 5.0), (1, 3, 1.0), (2, 3, 1.0), (3, 4, 3.0)],
                              weight="capacity")
    return G


def _network(routing, seed=0):
    return INLNetwork(routing, [2, 3, 2, 4], 3, latent_width=L, hidden_width=5, gate_choices=K, seed=seed)


def _views(n=7, seed=0):
    g = torch_generator(seed, "views")
    return [torch.randn(n, d, generator=g) for d in (2, 3, 2, 4)]


def test_node_shapes_and_roles():
    net = _network(dense_routing(_graph(), 0))
    outs = net(_views(), training=False)
    root = outs[0]
    assert root.message is None and root.kl is None and root.logits.shape == (7, 3)
    assert root.gate_probs.shape == (7, K) and root.gate_input.shape == (7, L * len(net.node_children(0)))
    leaf = outs[4]
    assert leaf.gate_probs is None and leaf.message.shape == (7, L) and leaf.kl.shape == (7,)
    assert torch.all(leaf.kl >= 0)
    assert net.view_nodes == [1, 2, 3, 4]


def test_per_node_forward_composes_to_network_forward():
    # a process hosting one node needs only node_forward and its own generator
    net = _network(dense_routing(_graph(), 0))
    views = _views()
    gens_a = node_generators(5, net.order)
    gens_b = node_generators(5, net.order)
    full = net(views, generators=gens_a, training=True)
    messages = {}
    for v in net.order:
        view = None if v == net.root else views[net.view_index[v]]
        received = [messages[c] for c in net.node_children(v)]
        out = net.node_forward(v, view, received, generator=gens_b[v], training=True)
        messages[v] = out.message
        ref = full[v]
        assert torch.equal(out.logits if v == net.root else out.message,
                           ref.logits if v == net.root else ref.message)


def test_initialisation_is_per_node_and_seeded():
    tree = shortest_path_tree(_graph(), 0, payload_bits=8.0)
    a, b, c = _network(tree, 1), _network(tree, 1), _network(tree, 2)
    for name, p in a.state_dict().items():
        assert torch.equal(p, b.state_dict()[name])
    assert not torch.equal(a.nodes["4"].encoder[0].weight, c.nodes["4"].encoder[0].weight)
    # a node's parameters do not depend on the rest of the graph
    other = INLNetwork(dense_routing(_graph(), 0), [2, 3, 2, 4], 3, latent_width=L, hidden_width=5,
                       gate_choices=K, seed=1)
    assert torch.equal(a.nodes["4"].encoder[0].weight, other.nodes["4"].encoder[0].weight)


def test_global_rng_untouched():
    state = torch.random.get_rng_state()
    net = _network(dense_routing(_graph(), 0))
    net(_views(), generators=node_generators(0, net.order), training=True)
    assert torch.equal(state, torch.random.get_rng_state())


def test_eval_gates_are_hard_and_force_choice_overrides():
    net = _network(dense_routing(_graph(), 0))
    views = _views()
    node = net.nodes["0"]
    u = net(views)[0].gate_input
    probs, mixed = node.aggregate(u, generator=None, training=False, tau=1.0, force_choice=None)
    candidates = node.maps(u).view(7, K, L)
    chosen = candidates[torch.arange(7), probs.argmax(-1)]
    assert torch.allclose(mixed, chosen)
    _, forced = node.aggregate(u, generator=None, training=False, tau=1.0, force_choice=2)
    assert torch.allclose(forced, candidates[:, 2])


def test_training_gate_is_a_relaxed_sample():
    net = _network(dense_routing(_graph(), 0))
    node = net.nodes["0"]
    u = net(_views())[0].gate_input
    g = torch_generator(0, "gumbel")
    _, mixed = node.aggregate(u, generator=g, training=True, tau=0.5, force_choice=None)
    candidates = node.maps(u).view(7, K, L)
    # the mixture lies in the convex hull: some weight vector reproduces it
    assert mixed.shape == (7, L)
    lo, hi = candidates.min(1).values, candidates.max(1).values
    assert torch.all(mixed >= lo - 1e-6) and torch.all(mixed <= hi + 1e-6)


@st.composite
def gate_rows(draw):
    n, k = draw(st.integers(1, 12)), draw(st.integers(2, 5))
    raw = draw(st.lists(st.floats(0.0, 1.0), min_size=n * k, max_size=n * k))
    p = np.asarray(raw).reshape(n, k) + 1e-3
    return p / p.sum(1, keepdims=True)


@given(gate_rows())
def test_batch_gate_rate_matches_estimators(p):
    ours = batch_gate_rate(torch.as_tensor(p, dtype=torch.float64)).item()
    assert ours == pytest.approx(gate_rate(p), abs=1e-10)
    assert -1e-12 <= ours <= np.log(p.shape[1]) + 1e-12


def test_batch_gate_rate_gradient():
    # the gradient of the batch estimate is the derivative of H(mean p) - mean H(p)
    logits = torch.randn(6, 4, dtype=torch.float64, generator=torch_generator(0, "gate"), requires_grad=True)
    assert torch.autograd.gradcheck(lambda z: batch_gate_rate(torch.softmax(z, -1)), (logits,))
    # a saturated gate (probabilities underflowing to 0) keeps a finite gradient
    saturated = torch.tensor([[0.0, 200.0, 0.0], [0.0, 0.0, 0.0]], requires_grad=True)
    rate = batch_gate_rate(torch.softmax(saturated, -1))
    rate.backward()
    assert torch.isfinite(rate) and torch.all(torch.isfinite(saturated.grad))
    assert saturated.grad[0].abs().max() == 0.0  # a one-hot row is flat in its own logits
    with pytest.raises(ValueError, match="probs must be a non-empty"):
        batch_gate_rate(torch.ones(4))


def test_saturated_gate_gives_finite_parameter_gradients():
    # a gate penalised toward a constant choice ends with huge logits; its rate
    # term must still back-propagate finite errors to the gate and the senders
    net = _network(dense_routing(_graph(), 0))
    with torch.no_grad():
        net.nodes["0"].gate.weight.mul_(1e4)
    outs = net(_views(), generators=node_generators(0, net.order), training=True)
    assert (outs[0].gate_probs == 0).any()
    objective = sum(node_objective(outs[v], torch.zeros(7, dtype=torch.int64), beta_latent=0.0, beta_gate=1.0)
                    for v in net.order)
    objective.backward()
    assert all(torch.all(torch.isfinite(p.grad)) for p in net.parameters() if p.grad is not None)


def test_node_objective_terms():
    net = _network(shortest_path_tree(_graph(), 0, payload_bits=8.0))
    outs = net(_views())
    y = torch.tensor([0, 1, 2, 0, 1, 2, 0])
    leaf = outs[4]
    assert node_objective(leaf, None, beta_latent=0.0, beta_gate=0.0).item() == 0.0
    assert node_objective(leaf, None, beta_latent=0.5, beta_gate=0.0).item() == pytest.approx(
        0.5 * leaf.kl.mean().item())
    root = outs[0]
    ce = torch.nn.functional.cross_entropy(root.logits, y)
    total = node_objective(root, y, beta_latent=1.0, beta_gate=2.0)
    assert total.item() == pytest.approx((ce + 2.0 * batch_gate_rate(root.gate_probs)).item())
    with pytest.raises(ValueError, match="labels are required at the root"):
        node_objective(root, None, beta_latent=0.0, beta_gate=0.0)


def test_node_module_errors():
    g = torch_generator(0, "x")
    with pytest.raises(ValueError, match="view or at least one child"):
        NodeModule(view_dim=None, n_children=0, latent_width=2, hidden_width=2, gate_choices=2,
                   n_classes=2, generator=g)
    node = NodeModule(view_dim=3, n_children=1, latent_width=2, hidden_width=2, gate_choices=2,
                      n_classes=None, generator=g)
    with pytest.raises(ValueError, match="generator is required when training"):
        node(torch.zeros(1, 3), [torch.zeros(1, 2)], training=True)
    with pytest.raises(ValueError, match="received must hold 1"):
        node(torch.zeros(1, 3), [])
    with pytest.raises(ValueError, match="view_dims"):
        INLNetwork(dense_routing(_graph(), 0), [2, 3], 3, latent_width=L, hidden_width=5,
                   gate_choices=K, seed=0)
    with pytest.raises(ValueError, match="force_choice must be a gate choice in 0..1"):
        node.aggregate(torch.zeros(1, 4), generator=None, training=False, tau=1.0, force_choice=2)


@pytest.mark.parametrize("change, message", [
    ({"latent_width": 0}, "latent_width"),
    ({"hidden_width": 0}, "hidden_width"),
    ({"gate_choices": 0}, "gate_choices"),
    ({"tau": 0.0}, "tau"),
    ({"n_classes": 1}, "n_classes"),
    ({"view_dims": [2, 3, 0, 4]}, "view_dims"),
])
def test_network_arguments_are_validated(change, message):
    args = dict(view_dims=[2, 3, 2, 4], n_classes=3, latent_width=L, hidden_width=5, gate_choices=K, seed=0)
    with pytest.raises(ValueError, match=message):
        INLNetwork(dense_routing(_graph(), 0), **{**args, **change})


def test_network_rejects_routings_that_do_not_reach_the_root():
    args = dict(latent_width=L, hidden_width=5, gate_choices=K, seed=0)
    no_root = nx.DiGraph([(1, 0), (2, 0), (3, 1), (4, 3)])
    with pytest.raises(ValueError, match="'root' graph attribute"):
        INLNetwork(no_root, [2, 3, 2, 4], 3, **args)
    stranded = nx.DiGraph([(1, 0), (2, 0), (3, 1), (3, 4)], root=0)  # node 4 keeps 3's message
    with pytest.raises(ValueError, match=r"nodes \[4\] have no parent"):
        INLNetwork(stranded, [2, 3, 2, 4], 3, **args)
    net = _network(shortest_path_tree(_graph(), 0, payload_bits=8.0))
    with pytest.raises(ValueError, match="views must hold 4 batches"):
        net(_views()[:3])
