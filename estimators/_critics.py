"""Critic networks for the variational MI bounds.

A critic maps a batch of ``x`` (shape ``(n, d_x)``) and a batch of ``y`` (shape
``(m, d_y)``) to the score matrix ``scores[i, j] = f(x_i, y_j)`` of shape
``(n, m)``. With ``y`` the partners of ``x`` (``m = n``), the diagonal holds the
scores of the joint pairs and the off-diagonal entries those of pairs drawn from
the product of the marginals; every bound of :mod:`estimators.variational` is a
function of that matrix.

Weights are initialised from an explicit :class:`torch.Generator` (never from
torch's global random state), with PyTorch's default ``nn.Linear`` scheme:
weights and biases uniform on ``[-1/sqrt(fan_in), 1/sqrt(fan_in)]``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from estimators._validation import positive_int

#: Activation functions a critic may use, by name.
ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
    "softplus": nn.Softplus,
}


def _linear(n_in: int, n_out: int, generator: torch.Generator) -> nn.Linear:
    """An ``nn.Linear`` initialised from ``generator`` without touching global state."""
    layer = torch.nn.utils.skip_init(nn.Linear, n_in, n_out)
    bound = 1.0 / math.sqrt(n_in)
    with torch.no_grad():
        layer.weight.uniform_(-bound, bound, generator=generator)
        layer.bias.uniform_(-bound, bound, generator=generator)
    return layer


def mlp(
    n_in: int,
    n_out: int,
    *,
    hidden: int,
    depth: int,
    activation: str,
    generator: torch.Generator,
) -> nn.Sequential:
    """A multilayer perceptron with ``depth`` hidden layers of width ``hidden``."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
    layers: list[nn.Module] = []
    width = n_in
    for _ in range(depth):
        layers += [_linear(width, hidden, generator), ACTIVATIONS[activation]()]
        width = hidden
    layers.append(_linear(width, n_out, generator))
    return nn.Sequential(*layers)


def _generator(generator: torch.Generator | None) -> torch.Generator:
    if generator is None:
        fresh = torch.Generator()
        fresh.seed()  # fresh OS entropy; global state untouched
        return fresh
    if not isinstance(generator, torch.Generator):
        raise ValueError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    return generator


def _check_sizes(x_dim, y_dim, hidden, depth) -> tuple[int, int, int, int]:
    return (
        positive_int(x_dim, "x_dim"),
        positive_int(y_dim, "y_dim"),
        positive_int(hidden, "hidden"),
        positive_int(depth, "depth", minimum=0),
    )


class SeparableCritic(nn.Module):
    r"""Separable critic :math:`f(x, y) = g(x)^\top h(y)`.

    Two MLPs embed ``x`` and ``y`` into ``embed_dim`` dimensions; the score matrix
    of a batch is one matrix product, so a batch of ``n`` pairs costs ``O(n)``
    network evaluations for all ``n^2`` scores.

    Parameters
    ----------
    x_dim, y_dim : int
        Dimensions of ``x`` and ``y``.
    hidden : int, default 128
        Width of the hidden layers of each MLP.
    depth : int, default 2
        Number of hidden layers of each MLP (0 gives a linear embedding).
    embed_dim : int, default 32
        Dimension of the embeddings ``g(x)`` and ``h(y)``.
    activation : str, default "relu"
        One of ``relu, leaky_relu, elu, gelu, silu, tanh, softplus``.
    generator : torch.Generator, optional
        Source of the initial weights. ``None`` draws fresh OS entropy.

    Examples
    --------
    >>> import torch
    >>> critic = SeparableCritic(2, 3, generator=torch.Generator().manual_seed(0))
    >>> critic(torch.zeros(5, 2), torch.zeros(4, 3)).shape
    torch.Size([5, 4])
    """

    def __init__(
        self,
        x_dim: int,
        y_dim: int,
        *,
        hidden: int = 128,
        depth: int = 2,
        embed_dim: int = 32,
        activation: str = "relu",
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        x_dim, y_dim, hidden, depth = _check_sizes(x_dim, y_dim, hidden, depth)
        embed_dim = positive_int(embed_dim, "embed_dim")
        gen = _generator(generator)
        options = dict(hidden=hidden, depth=depth, activation=activation, generator=gen)
        self.g = mlp(x_dim, embed_dim, **options)
        self.h = mlp(y_dim, embed_dim, **options)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Scores ``(n, m)`` of every ``x_i`` against every ``y_j``."""
        return self.g(x) @ self.h(y).T


class ConcatCritic(nn.Module):
    r"""Concatenated critic :math:`f(x, y) = \mathrm{MLP}([x, y])`.

    More expressive than :class:`SeparableCritic` (it need not factor through
    an inner product) but the score matrix of ``n`` pairs costs ``n^2`` network
    evaluations.

    Parameters
    ----------
    x_dim, y_dim : int
        Dimensions of ``x`` and ``y``.
    hidden : int, default 128
        Width of the hidden layers.
    depth : int, default 2
        Number of hidden layers.
    activation : str, default "relu"
        One of ``relu, leaky_relu, elu, gelu, silu, tanh, softplus``.
    generator : torch.Generator, optional
        Source of the initial weights. ``None`` draws fresh OS entropy.

    Examples
    --------
    >>> import torch
    >>> critic = ConcatCritic(2, 3, generator=torch.Generator().manual_seed(0))
    >>> critic(torch.zeros(5, 2), torch.zeros(4, 3)).shape
    torch.Size([5, 4])
    """

    def __init__(
        self,
        x_dim: int,
        y_dim: int,
        *,
        hidden: int = 128,
        depth: int = 2,
        activation: str = "relu",
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        x_dim, y_dim, hidden, depth = _check_sizes(x_dim, y_dim, hidden, depth)
        self.net = mlp(
            x_dim + y_dim, 1, hidden=hidden, depth=depth, activation=activation,
            generator=_generator(generator),
        )

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Scores ``(n, m)`` of every ``x_i`` against every ``y_j``."""
        n, m = x.shape[0], y.shape[0]
        pairs = torch.cat(
            [x[:, None, :].expand(n, m, x.shape[1]), y[None, :, :].expand(n, m, y.shape[1])],
            dim=-1,
        )
        return self.net(pairs).squeeze(-1)
