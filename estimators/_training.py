"""The training loop shared by every variational MI method.

:func:`estimators.variational.estimate_mi` validates its arguments, picks a
method's training objective and reported bound, and hands them to :func:`train`
here: Adam on shuffled minibatches of the training split, the reported bound
monitored on held-out batches, early stopping on that held-out value, and a stop
(with the best critic so far kept) when training diverges. Randomness comes only
from the ``torch.Generator`` passed in.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import torch
from torch import nn

from estimators._critics import ConcatCritic, SeparableCritic
from estimators._validation import positive_int, unit_scaled_columns

#: Critic scores beyond this magnitude (a density ratio of e^100000) count as divergence.
SCORE_LIMIT = 1e5

#: Held-out gain (nats) that resets the early-stopping patience.
MIN_IMPROVEMENT = 1e-3

#: Held-out batches used to monitor training (the final value uses all of them).
MONITOR_BATCHES = 32

Bound = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Split:
    """Training and held-out pairs, as float32 tensors on the device."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_hold: torch.Tensor
    y_hold: torch.Tensor


@dataclass
class Trace:
    """What the loop learned: the held-out trace and the best critic so far."""

    history: list[float] = field(default_factory=list)
    best_value: float = -math.inf
    best_step: int = 0
    last_gain_step: int = 0
    best_state: dict[str, torch.Tensor] | None = None
    diverged_at: int | None = None
    steps_run: int = 0

    def record(self, step: int, value: float, critic: nn.Module) -> None:
        self.history.append(value)
        if value > self.best_value + MIN_IMPROVEMENT:
            self.last_gain_step = step
        if value > self.best_value:
            self.best_value, self.best_step = value, step
            self.best_state = {k: v.detach().clone() for k, v in critic.state_dict().items()}


def seeded_generator(seed: int | None) -> torch.Generator:
    """A CPU generator seeded from ``seed`` (fresh OS entropy for ``None``)."""
    generator = torch.Generator()
    if seed is None:
        generator.seed()
    else:
        generator.manual_seed(positive_int(seed, "seed", minimum=0))
    return generator


def resolve_device(device) -> torch.device:
    """``device`` as a usable ``torch.device``, else ``ValueError`` naming it."""
    try:
        resolved = torch.device(device)
        torch.empty(0, device=resolved)
    except (RuntimeError, TypeError, AssertionError) as exc:
        raise ValueError(f"device {device!r} is not usable: {exc}") from None
    return resolved


def _standardizer(train: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """Per-coordinate z-scoring fitted on the training split (MI is invariant to it)."""
    mean = train.mean(axis=0)
    std = train.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return lambda a: (a - mean) / std


#: Fewest held-out pairs: a standard error needs two halves of at least 2 pairs.
MIN_HELD_OUT = 4


def _float32_ready(a: np.ndarray, name: str) -> np.ndarray:
    """Raw samples checked to survive the critic's float32: no overflow, no column collapsing to a constant."""
    with np.errstate(over="ignore", under="ignore"):
        single = a.astype(np.float32)
    if not np.all(np.isfinite(single)):
        raise ValueError(f"{name} has entries beyond float32's range (3.4e38); use standardize=True")
    collapsed = (np.ptp(single, axis=0) == 0) & (np.ptp(a, axis=0) > 0)
    if collapsed.any():
        raise ValueError(
            f"{name} column {int(np.flatnonzero(collapsed)[0])} loses all its spread in float32 "
            "(values too small or too close together); use standardize=True"
        )
    return a


def split_pairs(x, y, holdout, generator, standardize, device) -> Split:
    """Shuffle, hold out a fraction ``holdout``, z-score with training statistics.

    With ``standardize`` each column is first divided by a power of two (exact,
    :func:`~estimators._validation.unit_scaled_columns`), so the estimate does not
    depend on the scale of the data (``x * 1e300`` and ``x * 1e-300`` give that of
    ``x``); without it the raw values must survive the critic's float32.
    """
    n = x.shape[0]
    n_hold = int(round(holdout * n))
    if n_hold < MIN_HELD_OUT or n - n_hold < 2:
        raise ValueError(
            f"x and y have {n} samples: with holdout={holdout} that leaves {n - n_hold} "
            f"training and {n_hold} held-out pairs; at least 2 and {MIN_HELD_OUT} are needed"
        )
    if standardize:
        x, y = unit_scaled_columns(x), unit_scaled_columns(y)
    else:
        x, y = _float32_ready(x, "x"), _float32_ready(y, "y")
    order = torch.randperm(n, generator=generator).numpy()
    fit, hold = order[n_hold:], order[:n_hold]
    scale_x = _standardizer(x[fit]) if standardize else (lambda a: a)
    scale_y = _standardizer(y[fit]) if standardize else (lambda a: a)

    def put(a: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(a, dtype=torch.float32).to(device)

    return Split(put(scale_x(x[fit])), put(scale_y(y[fit])), put(scale_x(x[hold])), put(scale_y(y[hold])))


def make_critic(critic, x_dim, y_dim, options, generator, device) -> nn.Module:
    """A critic by name (initialised from ``generator``), or the given module."""
    if isinstance(critic, nn.Module):
        if options:
            raise ValueError("critic_options applies only to critic='separable' or 'concat'")
        return critic.to(device)
    kinds = {"separable": SeparableCritic, "concat": ConcatCritic}
    if critic not in kinds:
        raise ValueError(f"critic must be 'separable', 'concat' or a torch.nn.Module, got {critic!r}")
    try:
        module = kinds[critic](x_dim, y_dim, generator=generator, **dict(options or {}))
    except TypeError as exc:
        raise ValueError(f"critic_options: {exc}") from None
    return module.to(device)


def _batches(n: int, size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    """Endless minibatch indices: shuffled epochs, the last partial batch dropped."""
    while True:
        order = torch.randperm(n, generator=generator)
        for start in range(0, n - size + 1, size):
            yield order[start : start + size]


def held_out_values(critic, bound, x, y, size: int, max_batches: int | None = None) -> torch.Tensor:
    """The bound on consecutive held-out batches of ``size`` pairs (float64, one per batch)."""
    count = x.shape[0] // size
    if max_batches is not None:
        count = min(count, max_batches)
    with torch.no_grad():
        values = []
        for k in range(count):
            rows = slice(k * size, (k + 1) * size)
            scores = critic(x[rows], y[rows])
            _check_scores_shape(scores, size)
            if not _sane(scores):
                return torch.tensor([math.nan], dtype=torch.float64)
            values.append(bound(scores))
    return torch.stack(values).cpu()


def half_sample_values(critic, bound, x, y, size: int, generator: torch.Generator, count: int) -> torch.Tensor:
    """The bound on ``count`` random halves of the first ``size`` held-out pairs (float64).

    The critic scores the ``size`` pairs once; a half is a random subset of
    ``size // 2`` pairs without replacement, and its score matrix is the
    corresponding sub-matrix (``scores[i, j] = f(x_i, y_j)``). These are the
    replicates of the delete-d jackknife with ``d = size - size // 2``.
    """
    half = size // 2
    with torch.no_grad():
        scores = critic(x[:size], y[:size])
        _check_scores_shape(scores, size)
        if not _sane(scores):
            return torch.tensor([math.nan], dtype=torch.float64)
        values = []
        for _ in range(count):
            rows = torch.randperm(size, generator=generator)[:half].to(scores.device)
            values.append(bound(scores[rows][:, rows]))
    return torch.stack(values).cpu()


def _sane(scores: torch.Tensor) -> bool:
    """Finite and within ``SCORE_LIMIT`` (NaN compares false)."""
    return bool((scores.abs() <= SCORE_LIMIT).all())


def _check_scores_shape(scores: torch.Tensor, batch: int) -> None:
    if scores.shape != (batch, batch):
        raise ValueError(
            f"critic must return a (batch, batch) score matrix, got shape {tuple(scores.shape)} for batch {batch}"
        )


def train(critic, split, objective, report, *, steps, batch, eval_batch, lr, patience, eval_every, generator, bar) -> Trace:
    """The one training loop: ascend the objective, monitor the held-out bound, stop early."""
    optimizer = torch.optim.Adam(critic.parameters(), lr=lr, foreach=True)
    monitor = partial(held_out_values, critic, report, split.x_hold, split.y_hold, eval_batch, MONITOR_BATCHES)
    trace = Trace()
    trace.record(0, float(monitor().mean()), critic)
    batches = _batches(split.x_train.shape[0], batch, generator)
    for step in range(1, steps + 1):
        idx = next(batches)
        scores = critic(split.x_train[idx], split.y_train[idx])
        _check_scores_shape(scores, batch)
        loss = -objective(scores) if _sane(scores) else None
        if loss is None or not bool(torch.isfinite(loss)):
            trace.diverged_at = step
            break
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        trace.steps_run = step
        bar.update(1)
        if step % eval_every == 0 or step == steps:
            value = float(monitor().mean())
            if not math.isfinite(value):
                trace.diverged_at = step
                break
            trace.record(step, value, critic)
            bar.set_postfix(held_out=f"{value:.3f}", refresh=False)
            if patience is not None and step - trace.last_gain_step >= patience:
                break
    return trace
