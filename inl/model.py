"""The in-network model: one module per graph node, run in routing order.

Every non-root node ``v`` observes a view ``x_v`` and encodes it with a
Gaussian (VIB) encoder [3]_

.. math::

    q(z_v | x_v) = \\mathcal N\\big(\\mu_v(x_v), \\operatorname{diag} \\sigma_v^2(x_v)\\big),
    \\qquad z_v = \\mu_v + \\sigma_v \\odot \\varepsilon,

whose rate is bounded by ``KL(q(z_v|x_v) || N(0, I))`` nats. A node with children
(in the routing DAG) aggregates ``u_v = [z_v, m_{c_1}, ..., m_{c_k}]`` (its own
latent and the messages it received) through a *finite-rate stochastic gate*
[1]_: a choice ``T_v`` among ``K`` aggregation maps ``A_1 .. A_K`` drawn from
``p(t | u_v) = softmax(G_v u_v)``,

.. math::

    m_v = \\sum_{k=1}^K w_k \\, A_k u_v , \\qquad
    w = \\begin{cases}
    \\operatorname{softmax}\\big((\\log p(\\cdot|u_v) + g) / \\tau\\big) & \\text{training (Gumbel-softmax [2]_)}\\\\
    \\operatorname{onehot}\\big(\\arg\\max_t p(t | u_v)\\big) & \\text{evaluation,}
    \\end{cases}

and the gate's rate is ``R_g = I(U; T) = H(E p(.|u)) - E H(p(.|u))``. A leaf
forwards ``m_v = z_v``. Each node sends its message ``m_v`` (width ``L``) on
every outgoing routing edge. The root (the fusion node) has no view: it gates the
messages it receives and decodes the class.

The network is a :class:`torch.nn.ModuleDict` of :class:`NodeModule` keyed by
``str(node)``; :meth:`INLNetwork.node_forward` runs one node given its view and
received messages, so a process hosting a single node needs nothing else.
Parameters are initialised from per-node generators derived from one seed.

References
----------
.. [1] "Sparse In-Network Learning via Shortest-Path Backpropagation and
       Finite-Rate Gating", arXiv:2605.23424.
.. [2] E. Jang, S. Gu, B. Poole, "Categorical reparameterization with
       Gumbel-softmax", ICLR 2017.
.. [3] A. Alemi et al., "Deep variational information bottleneck", ICLR 2017;
       I. E. Aguerri, A. Zaidi, "Distributed variational representation
       learning", IEEE TPAMI 2021.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import networkx as nx
import torch
from torch import nn
from torch.nn import functional as F

from estimators._validation import positive_float, positive_int
from inl.seeding import torch_generator
from inl.topology import routing_order

__all__ = [
    "NodeOutput",
    "NodeModule",
    "INLNetwork",
    "batch_gate_rate",
    "node_objective",
    "node_generators",
]

#: log-variances are clamped to this range to keep exp() finite.
LOGVAR_RANGE = (-12.0, 8.0)


def _linear(n_in: int, n_out: int, generator: torch.Generator) -> nn.Linear:
    """``nn.Linear`` with PyTorch's default init drawn from ``generator`` (not global RNG)."""
    layer = torch.nn.utils.skip_init(nn.Linear, n_in, n_out)
    bound = 1.0 / math.sqrt(n_in)
    with torch.no_grad():
        nn.init.uniform_(layer.weight, -bound, bound, generator=generator)
        nn.init.uniform_(layer.bias, -bound, bound, generator=generator)
    return layer


def _mlp(n_in: int, hidden: int, n_out: int, generator: torch.Generator) -> nn.Sequential:
    return nn.Sequential(_linear(n_in, hidden, generator), nn.ReLU(), _linear(hidden, n_out, generator))


@dataclass(frozen=True)
class NodeOutput:
    """What one node computes for a batch of ``B`` samples.

    Attributes
    ----------
    message : Tensor or None
        ``(B, L)`` latent sent on every outgoing edge; ``None`` at the root.
    logits : Tensor or None
        ``(B, n_classes)`` class scores; only at the root.
    kl : Tensor or None
        ``(B,)`` ``KL(q(z|x) || N(0, I))`` in nats; ``None`` at the root.
    gate_probs : Tensor or None
        ``(B, K)`` gate probabilities ``p(t | u)``; ``None`` at leaves.
    gate_input : Tensor or None
        ``(B, L * inputs)`` the gate's input ``u`` (detached); ``None`` at leaves.
    """

    message: torch.Tensor | None
    logits: torch.Tensor | None
    kl: torch.Tensor | None
    gate_probs: torch.Tensor | None
    gate_input: torch.Tensor | None


def gumbel_softmax(logits: torch.Tensor, tau: float, generator: torch.Generator | None) -> torch.Tensor:
    """Relaxed one-hot sample ``softmax((logits + g) / tau)``, ``g`` Gumbel(0, 1) from ``generator``."""
    u = torch.rand(logits.shape, generator=generator, dtype=logits.dtype)
    tiny = torch.finfo(logits.dtype).tiny
    exponential = -torch.log(u.clamp_min(tiny))
    gumbel = -torch.log(exponential.clamp_min(tiny))
    return F.softmax((logits + gumbel) / tau, dim=-1)


class NodeModule(nn.Module):
    """One node: VIB encoder (if it has a view), gate (if it has children), decoder (root).

    Parameters
    ----------
    view_dim : int or None
        Width of the node's view; ``None`` for the root.
    n_children : int
        Messages the node receives (its in-degree in the routing).
    latent_width, hidden_width, gate_choices : int
        ``L``, the MLP width and ``K``.
    n_classes : int or None
        Number of classes for the root's decoder; ``None`` elsewhere.
    generator : torch.Generator
        Source of the initial parameters.
    """

    def __init__(
        self,
        *,
        view_dim: int | None,
        n_children: int,
        latent_width: int,
        hidden_width: int,
        gate_choices: int,
        n_classes: int | None,
        generator: torch.Generator,
    ) -> None:
        super().__init__()
        if view_dim is None and n_children == 0:
            raise ValueError("a node needs a view or at least one child")
        self.latent_width = latent_width
        self.gate_choices = gate_choices
        self.n_children = n_children
        self.encoder = None if view_dim is None else _mlp(view_dim, hidden_width, 2 * latent_width, generator)
        self.gate = self.maps = None
        if n_children > 0:
            n_in = latent_width * (n_children + (view_dim is not None))
            self.gate = _linear(n_in, gate_choices, generator)
            self.maps = _linear(n_in, gate_choices * latent_width, generator)
        self.decoder = None if n_classes is None else _mlp(latent_width, hidden_width, n_classes, generator)

    def encode(self, view: torch.Tensor, generator, training: bool):
        """Latent sample (the mean at evaluation) and its rate per sample, nats.

        .. math::

            \\mathrm{KL}\\big(\\mathcal N(\\mu, \\operatorname{diag}\\sigma^2) \\,\\|\\, \\mathcal N(0, I)\\big)
            = \\tfrac12 \\sum_j \\big(\\mu_j^2 + \\sigma_j^2 - \\log \\sigma_j^2 - 1\\big),

        an upper bound on ``I(X_v; Z_v)``; ``log sigma^2`` is clamped to :data:`LOGVAR_RANGE`.
        """
        mean, logvar = self.encoder(view).chunk(2, dim=-1)
        logvar = logvar.clamp(*LOGVAR_RANGE)
        kl = 0.5 * (mean.square() + logvar.exp() - logvar - 1.0).sum(dim=-1)
        if not training:
            return mean, kl
        noise = torch.randn(mean.shape, generator=generator, dtype=mean.dtype)
        return mean + (0.5 * logvar).exp() * noise, kl

    def aggregate(self, u: torch.Tensor, *, generator, training: bool, tau: float, force_choice):
        """Gate probabilities and the gated mixture of the ``K`` aggregation maps of ``u``."""
        logits = self.gate(u)
        probs = F.softmax(logits, dim=-1)
        if force_choice is not None:
            force_choice = positive_int(force_choice, "force_choice", minimum=0)
            if force_choice >= self.gate_choices:
                raise ValueError(
                    f"force_choice must be a gate choice in 0..{self.gate_choices - 1}, got {force_choice}"
                )
            weights = F.one_hot(torch.full(probs.shape[:1], force_choice), self.gate_choices)
        elif training:
            weights = gumbel_softmax(F.log_softmax(logits, dim=-1), tau, generator)
        else:
            weights = F.one_hot(probs.argmax(dim=-1), self.gate_choices)
        candidates = self.maps(u).view(u.shape[0], self.gate_choices, self.latent_width)
        return probs, (weights.to(u.dtype).unsqueeze(-1) * candidates).sum(dim=1)

    def forward(
        self,
        view: torch.Tensor | None,
        received: Sequence[torch.Tensor],
        *,
        generator: torch.Generator | None = None,
        training: bool = False,
        tau: float = 1.0,
        force_choice: int | None = None,
    ) -> NodeOutput:
        """Run the node on its view and the messages of its children.

        Parameters
        ----------
        view : torch.Tensor or None
            ``(B, d_v)`` view batch; ``None`` at the root.
        received : sequence of torch.Tensor
            ``n_children`` messages ``(B, L)``, children in increasing id.
        generator : torch.Generator, optional
            Source of the sampling noise (latent and Gumbel); required when training.
        training : bool
            Sample (reparameterised latent, Gumbel-softmax gate) instead of
            taking the mean latent and the most probable gate choice.
        tau : float
            Gumbel-softmax temperature.
        force_choice : int, optional
            Use aggregation map ``force_choice`` for every sample.

        Returns
        -------
        NodeOutput
        """
        if training and generator is None:
            raise ValueError("generator is required when training (sampling noise is never global)")
        if len(received) != self.n_children:
            raise ValueError(f"received must hold {self.n_children} messages, got {len(received)}")
        parts, kl = list(received), None
        if self.encoder is not None:
            if view is None:
                raise ValueError("view is required at a node with an encoder")
            z, kl = self.encode(view, generator, training)
            parts.insert(0, z)
        probs = u = None
        if self.gate is None:
            message = parts[0]
        else:
            u = torch.cat(parts, dim=-1)
            probs, message = self.aggregate(
                u, generator=generator, training=training, tau=tau, force_choice=force_choice
            )
            u = u.detach()
        logits = None
        if self.decoder is not None:
            logits, message = self.decoder(message), None
        return NodeOutput(message=message, logits=logits, kl=kl, gate_probs=probs, gate_input=u)


def node_generators(seed: int, nodes) -> dict:
    """One sampling-noise generator per node (reparameterisation and Gumbel noise)."""
    return {v: torch_generator(seed, "noise", v) for v in nodes}


def _routing_root(routing) -> object:
    """The ``root`` graph attribute of a routing, checked: a node with no parent that all nodes reach."""
    if not isinstance(routing, nx.DiGraph) or "root" not in routing.graph:
        raise ValueError("routing must be a networkx.DiGraph with a 'root' graph attribute")
    root = routing.graph["root"]
    if root not in routing or routing.out_degree(root) != 0:
        raise ValueError(f"routing's root {root!r} must be a node without outgoing edges")
    sinks = sorted((v for v in routing if v != root and routing.out_degree(v) == 0), key=repr)
    if sinks:
        raise ValueError(f"routing: nodes {sinks} have no parent, their messages would reach nobody")
    return root


class INLNetwork(nn.Module):
    """All node modules of an INL network over a routing DAG.

    Parameters
    ----------
    routing : networkx.DiGraph
        Child -> parent edges with graph attribute ``root`` (from
        :func:`inl.topology.shortest_path_tree` or :func:`inl.topology.dense_routing`).
    view_dims : sequence of int
        Width of each view; view ``i`` belongs to the ``i``-th non-root node in
        increasing node id (:attr:`view_nodes`).
    n_classes : int
    latent_width, hidden_width, gate_choices : int
        ``L``, the hidden width of encoders/decoder and ``K``.
    seed : int
        Node ``v`` is initialised from ``torch_generator(seed, "init", v)``.
    tau : float
        Gumbel-softmax temperature during training.

    Attributes
    ----------
    nodes : torch.nn.ModuleDict
        ``str(v) -> NodeModule``.
    root : int
    order : list
        Routing order (leaves first, root last).
    view_nodes : list
        Non-root nodes in increasing id; ``view_nodes[i]`` observes view ``i``.
    """

    def __init__(
        self,
        routing: nx.DiGraph,
        view_dims: Sequence[int],
        n_classes: int,
        *,
        latent_width: int,
        hidden_width: int,
        gate_choices: int,
        seed: int,
        tau: float = 1.0,
    ) -> None:
        super().__init__()
        self.routing = routing
        self.root = _routing_root(routing)
        self.order = routing_order(routing)
        self.view_nodes = sorted(v for v in routing.nodes if v != self.root)
        if len(view_dims) != len(self.view_nodes):
            raise ValueError(
                f"view_dims must give one width per non-root node ({len(self.view_nodes)}), "
                f"got {len(view_dims)}"
            )
        self.view_index = {v: i for i, v in enumerate(self.view_nodes)}
        self.latent_width = positive_int(latent_width, "latent_width")
        self.tau = positive_float(tau, "tau")
        sizes = {
            "latent_width": self.latent_width,
            "hidden_width": positive_int(hidden_width, "hidden_width"),
            "gate_choices": positive_int(gate_choices, "gate_choices"),
        }
        n_classes = positive_int(n_classes, "n_classes", minimum=2)
        self.nodes = nn.ModuleDict({
            str(v): NodeModule(
                view_dim=None if v == self.root else positive_int(view_dims[self.view_index[v]], "view_dims"),
                n_children=len(self.node_children(v)),
                n_classes=n_classes if v == self.root else None,
                generator=torch_generator(seed, "init", v),
                **sizes,
            )
            for v in sorted(routing.nodes)
        })

    def node_children(self, node) -> list:
        """Nodes whose messages ``node`` receives, in increasing id (the order of ``received``)."""
        return sorted(self.routing.predecessors(node))

    def node_parents(self, node) -> list:
        """Nodes ``node`` sends its message to, in increasing id."""
        return sorted(self.routing.successors(node))

    def gated_nodes(self) -> list:
        """Nodes with a gate (those with children), in routing order."""
        return [v for v in self.order if self.routing.in_degree(v) > 0]

    def node_forward(
        self,
        node,
        view: torch.Tensor | None,
        received: Sequence[torch.Tensor],
        *,
        generator: torch.Generator | None = None,
        training: bool = False,
        force_choice: int | None = None,
    ) -> NodeOutput:
        """Run one node on its own view and the messages of :meth:`node_children` (in that order)."""
        return self.nodes[str(node)](
            view, received, generator=generator, training=training, tau=self.tau,
            force_choice=force_choice,
        )

    def forward(
        self,
        views: Sequence[torch.Tensor],
        *,
        generators: Mapping | None = None,
        training: bool = False,
        exchange=None,
        force_root_choice: int | None = None,
    ) -> dict:
        """Run every node in routing order.

        Parameters
        ----------
        views : sequence of torch.Tensor
            ``views[i]`` is the ``(B, d_i)`` batch of view ``i`` (node ``view_nodes[i]``).
        generators : mapping, optional
            ``node -> torch.Generator`` (:func:`node_generators`); required when training.
        training : bool
            Sample latents and relax the gates (see :meth:`NodeModule.forward`).
        exchange : inl.accounting.ExchangeCounter, optional
            Sees every message as it enters an edge (forward) and, through an
            autograd hook, every error that comes back over it.
        force_root_choice : int, optional
            Fix the root gate's choice for every sample.

        Returns
        -------
        dict
            ``node -> NodeOutput``.
        """
        if len(views) != len(self.view_nodes):
            raise ValueError(
                f"views must hold {len(self.view_nodes)} batches (one per view node), got {len(views)}"
            )
        inbox, outputs = {}, {}
        for v in self.order:
            view = None if v == self.root else views[self.view_index[v]]
            out = self.node_forward(
                v, view, [inbox[(c, v)] for c in self.node_children(v)],
                generator=None if generators is None else generators[v],
                training=training,
                force_choice=force_root_choice if v == self.root else None,
            )
            outputs[v] = out
            for p in self.node_parents(v):
                inbox[(v, p)] = out.message if exchange is None else exchange.send((v, p), out.message)
        return outputs


def _entropy(p: torch.Tensor) -> torch.Tensor:
    """``-sum p log p`` over the last axis, nats, with a finite gradient at ``p = 0``.

    ``torch.special.xlogy(p, p)`` has the right value at 0 but a ``0 / 0``
    gradient; clamping inside the logarithm gives ``0 * log(tiny) = 0`` and the
    derivative ``-(log max(p, tiny) + 1[p > tiny])``, finite everywhere.
    """
    tiny = torch.finfo(p.dtype).tiny
    return -(p * torch.log(p.clamp_min(tiny))).sum(dim=-1)


def batch_gate_rate(probs: torch.Tensor) -> torch.Tensor:
    """Differentiable batch estimate of the gate rate ``I(U; T)`` in nats.

    The mutual information between the gate input ``U`` and the choice ``T``
    when ``U`` is uniform over the ``B`` rows of the batch:

    .. math::

        \\hat I = H\\Big(\\frac1B \\sum_{i=1}^B p(\\cdot | u_i)\\Big)
        - \\frac1B \\sum_{i=1}^B H\\big(p(\\cdot|u_i)\\big),
        \\qquad 0 \\le \\hat I \\le \\log K,

    the torch twin of :func:`estimators.discrete.gate_rate`. Gradients flow
    through both terms (the marginal and the conditional entropy) and stay
    finite when a gate saturates (probabilities that underflow to 0). As an
    estimate of the population ``I(U; T)`` it is biased low for small ``B``:
    the entropy is concave, so ``E H(mean of B rows) <= H(E p(.|U))`` while the
    conditional term is unbiased.

    Parameters
    ----------
    probs : torch.Tensor
        ``(B, K)`` rows ``p(t | u_i)``, each summing to 1.

    Returns
    -------
    torch.Tensor
        A scalar, nats.
    """
    if probs.dim() != 2 or probs.shape[0] < 1 or probs.shape[1] < 1:
        raise ValueError(f"probs must be a non-empty (B, K) tensor, got shape {tuple(probs.shape)}")
    return _entropy(probs.mean(dim=0)) - _entropy(probs).mean()


def node_objective(
    out: NodeOutput, labels: torch.Tensor | None, *, beta_latent: float, beta_gate: float
) -> torch.Tensor:
    """One node's share of the training objective (they sum to the network's).

    .. math::

        \\mathcal L_v = [v = r]\\, \\mathrm{CE}(y, \\text{logits})
        + \\beta_{\\text{latent}} \\overline{\\mathrm{KL}_v}
        + \\beta_{\\text{gate}} \\hat I(U_v; T_v).

    The cross-entropy (nats) only at the root ``r``; the mean KL (nats per
    sample) only at nodes with a view; the batch gate rate
    (:func:`batch_gate_rate`, nats) only at gated nodes. A term whose weight is
    0 is left out of the graph.

    Parameters
    ----------
    out : NodeOutput
        The node's output on a batch.
    labels : torch.Tensor or None
        ``(B,)`` classes; needed at the root only.
    beta_latent, beta_gate : float
        Weights of the latent rate and of the gate rate.

    Returns
    -------
    torch.Tensor
        A scalar; ``0`` (no graph) when no term applies.
    """
    if out.logits is not None and labels is None:
        raise ValueError("labels are required at the root (the node with logits)")
    terms = []
    if out.logits is not None:
        terms.append(F.cross_entropy(out.logits, labels))
    if out.kl is not None and beta_latent:
        terms.append(beta_latent * out.kl.mean())
    if out.gate_probs is not None and beta_gate:
        terms.append(beta_gate * batch_gate_rate(out.gate_probs))
    if not terms:
        return torch.zeros(())
    return torch.stack(terms).sum()
