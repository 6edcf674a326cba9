"""Exchange accounting: every float that crosses an edge, counted where it crosses.

In INL a node's latent crosses each routing edge forward, and the error (the
gradient of the objective with respect to that latent) crosses it backward.
:meth:`ExchangeCounter.send` is the one place where a message enters an edge in
the trainer: it counts the forward activation and registers an autograd hook on
the edge tensor (:meth:`torch.Tensor.register_hook`) that counts the backward
error when, and only when, autograd delivers it. With latents of width ``L`` on
``|E|`` used edges, one training sample therefore costs

.. math::

    \\text{exchange} = \\sum_{(u, v) \\in E_{\\text{used}}} 2 L \\quad \\text{floats},

which :func:`closed_form_exchange` gives and the tests check against the count.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import networkx as nx
import torch

from estimators._validation import positive_int

__all__ = ["Exchange", "ExchangeCounter", "closed_form_exchange"]


@dataclass(frozen=True)
class Exchange:
    """Floats and bytes exchanged during training.

    Attributes
    ----------
    floats_per_sample, bytes_per_sample : float
        Forward activations plus backward errors over all used edges, per
        training sample processed (``n_samples`` = training-set size x epochs).
    floats_total, bytes_total : int
        The same, for the whole run.
    forward_floats, backward_floats : int
        Run totals of each direction.
    per_edge : dict
        ``(child, parent) -> floats per sample`` (both directions).
    edges_used : int
        Edges that carried at least one message.
    n_samples : int
    """

    floats_per_sample: float
    bytes_per_sample: float
    floats_total: int
    bytes_total: int
    forward_floats: int
    backward_floats: int
    per_edge: dict
    edges_used: int
    n_samples: int


class ExchangeCounter:
    """Counts the elements and bytes of messages sent over edges, in both directions.

    Attributes
    ----------
    forward, backward : collections.defaultdict
        ``edge -> elements`` of the activations sent (:meth:`send`) and of the
        errors autograd delivered back over each edge.
    forward_bytes, backward_bytes : collections.defaultdict
        The same in bytes (``numel * element_size``).
    """

    def __init__(self) -> None:
        self.forward = defaultdict(int)
        self.backward = defaultdict(int)
        self.forward_bytes = defaultdict(int)
        self.backward_bytes = defaultdict(int)

    def send(self, edge: tuple, tensor: torch.Tensor) -> torch.Tensor:
        """The copy of ``tensor`` that travels over ``edge``, counted both ways.

        Returns a fresh tensor (``clone``), so that the error flowing back over
        this edge is seen separately from the errors on the sender's other edges.
        """
        message = tensor.clone()
        self.forward[edge] += message.numel()
        self.forward_bytes[edge] += message.numel() * message.element_size()
        if message.requires_grad:
            message.register_hook(self._backward_hook(edge))
        return message

    def _backward_hook(self, edge):
        def hook(grad: torch.Tensor) -> None:
            self.backward[edge] += grad.numel()
            self.backward_bytes[edge] += grad.numel() * grad.element_size()

        return hook

    def summary(self, n_samples: int) -> Exchange:
        """Totals and per-sample figures after ``n_samples`` training samples.

        Parameters
        ----------
        n_samples : int
            Training samples processed (training-set size times epochs), >= 1.

        Returns
        -------
        Exchange
        """
        n_samples = positive_int(n_samples, "n_samples")
        edges = sorted(set(self.forward) | set(self.backward))
        fwd, bwd = sum(self.forward.values()), sum(self.backward.values())
        nbytes = sum(self.forward_bytes.values()) + sum(self.backward_bytes.values())
        per_edge = {e: (self.forward[e] + self.backward[e]) / n_samples for e in edges}
        return Exchange(
            floats_per_sample=(fwd + bwd) / n_samples,
            bytes_per_sample=nbytes / n_samples,
            floats_total=fwd + bwd,
            bytes_total=nbytes,
            forward_floats=fwd,
            backward_floats=bwd,
            per_edge=per_edge,
            edges_used=sum(1 for e in edges if per_edge[e] > 0),
            n_samples=n_samples,
        )


def closed_form_exchange(routing: nx.DiGraph, width: int) -> int:
    """Floats per training sample when every routing edge carries a width-``width`` latent both ways.

    .. math::

        \\sum_{(u, v) \\in E} 2 L = 2 L |E|,

    one activation forward and one error backward per edge. The trainer's
    :class:`ExchangeCounter` counts the same thing where it happens; the tests
    check that the two agree.

    Parameters
    ----------
    routing : networkx.DiGraph
        Child -> parent edges ``E``.
    width : int
        Latent width ``L`` (>= 1).

    Returns
    -------
    int
    """
    if not isinstance(routing, nx.DiGraph):
        raise ValueError(f"routing must be a networkx.DiGraph, got {type(routing).__name__}")
    return 2 * positive_int(width, "width") * routing.number_of_edges()
