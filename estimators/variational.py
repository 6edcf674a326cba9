r"""Neural variational estimators of mutual information (torch).

A critic ``f`` scores pairs; on a batch of ``n`` joint pairs ``(x_i, y_i)`` the
score matrix ``scores[i, j] = f(x_i, y_j)`` holds the joint pairs on its
diagonal and ``n (n - 1)`` pairs from the product of the marginals off it. Each
bound is a small function of that matrix, computed in float64 and in the log
domain (``logsumexp``), so it is finite for every finite score matrix:

=======  ======================  ====================  =========================================
method   trains the critic on    reports               known limits
=======  ======================  ====================  =========================================
infonce  ``infonce_bound``       the same              never exceeds ``ln(batch_size)`` [3]_
nwj      ``nwj_bound``           the same              unbiased batch value; variance ~ ``e^I``
dv       ``dv_bound``            the same              biased batch gradient; variance ~ ``e^I``
mine     DV, moving-average      ``dv_bound``          as dv; the average lags the critic [1]_
         corrected gradient
js       ``js_bound``            ``nwj_bound(f + 1)``  NWJ variance at the JS critic [4]_
smile    ``js_bound``            ``smile_bound``       biased by the clip ``tau``; a smaller
                                                       ``tau`` means less variance [5]_
=======  ======================  ====================  =========================================

For any critic, the InfoNCE and NWJ batch values are lower bounds on
``I(X;Y)`` in expectation over batches. DV (and MINE, SMILE) take the log of a
batch mean, which Jensen's inequality biases upward, so a batch value can exceed
the population bound; SMILE with a finite ``tau`` is no bound at all. The
held-out value of the trained critic is what :func:`estimate_mi` reports.
Units are nats.

References
----------
.. [1] M. I. Belghazi et al., "Mutual Information Neural Estimation", ICML 2018.
.. [2] X. Nguyen, M. J. Wainwright, M. I. Jordan, "Estimating divergence
   functionals and the likelihood ratio by convex risk minimization", IEEE
   Trans. Inf. Theory 56(11), 2010.
.. [3] A. van den Oord, Y. Li, O. Vinyals, "Representation Learning with
   Contrastive Predictive Coding", arXiv:1807.03748, 2018.
.. [4] B. Poole, S. Ozair, A. van den Oord, A. Alemi, G. Tucker, "On Variational
   Bounds of Mutual Information", ICML 2019.
.. [5] J. Song, S. Ermon, "Understanding the Limitations of Variational Mutual
   Information Estimators", ICLR 2020.
.. [6] S. Nowozin, B. Cseke, R. Tomioka, "f-GAN: Training Generative Neural
   Samplers using Variational Divergence Minimization", NeurIPS 2016.
.. [7] C. F. J. Wu, "Jackknife, bootstrap and other resampling methods in
   regression analysis", Annals of Statistics 14(4), 1986 (the delete-d jackknife).
"""

from __future__ import annotations

import inspect
import math
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial

import numpy as np
import torch
import torch.nn.functional as F
from scipy.stats import t as scipy_t
from torch import nn
from tqdm.auto import tqdm

from estimators._critics import ConcatCritic, SeparableCritic
from estimators._training import (
    MIN_IMPROVEMENT,
    SCORE_LIMIT,
    Bound,
    half_sample_values,
    held_out_values,
    make_critic,
    resolve_device,
    seeded_generator,
    split_pairs,
    train,
)
from estimators._validation import (
    as_samples,
    drop_constant_columns,
    learning_rate,
    log_base,
    positive_float,
    positive_int,
    probability,
    same_length,
)
from estimators.interface import MIEstimate

__all__ = [
    "ConcatCritic",
    "SeparableCritic",
    "VariationalEstimator",
    "dv_bound",
    "estimate_mi",
    "infonce_bound",
    "js_bound",
    "nwj_bound",
    "smile_bound",
]

#: Largest exponent passed to ``exp`` (float64 overflows just above 709).
EXP_CAP = 700.0

#: An InfoNCE estimate this close (nats) to its cap ln(batch) gets a note.
INFONCE_MARGIN = 0.5

#: Two-sided 95% normal quantile.
_Z95 = 1.959963984540054

#: Random halves of the one held-out batch behind the standard error of a small sample.
HALF_SAMPLES = 200

# --------------------------------------------------------------------------- #
# Log-domain pieces                                                            #
# --------------------------------------------------------------------------- #


def _as_scores(scores) -> torch.Tensor:
    """``scores`` as a finite float64 ``(n, n)`` tensor, ``n >= 2`` (autograd kept)."""
    if not isinstance(scores, torch.Tensor):
        scores = torch.as_tensor(np.asarray(scores, dtype=np.float64))
    if scores.ndim != 2 or scores.shape[0] != scores.shape[1] or scores.shape[0] < 2:
        raise ValueError(f"scores must be a square (n, n) matrix with n >= 2, got shape {tuple(scores.shape)}")
    if not bool(torch.isfinite(scores).all()):
        raise ValueError("scores contains NaN or infinite entries")
    return scores.to(torch.float64)


def _capped_exp(t: torch.Tensor) -> torch.Tensor:
    """``exp(min(t, EXP_CAP))``: finite in float64; zero gradient above the cap."""
    return torch.exp(torch.clamp(t, max=EXP_CAP))


def _logmeanexp_offdiag(scores: torch.Tensor) -> torch.Tensor:
    r""":math:`\log \frac{1}{n(n-1)} \sum_{i \ne j} e^{s_{ij}}`, the diagonal masked by ``-inf``."""
    n = scores.shape[0]
    eye = torch.eye(n, dtype=torch.bool, device=scores.device)
    masked = scores.masked_fill(eye, -math.inf)
    return torch.logsumexp(masked.reshape(-1), dim=0) - math.log(n * (n - 1))


def _joint_term(scores: torch.Tensor) -> torch.Tensor:
    return torch.diagonal(scores).mean()


# --------------------------------------------------------------------------- #
# Bounds                                                                       #
# --------------------------------------------------------------------------- #


def dv_bound(scores) -> torch.Tensor:
    r"""Donsker-Varadhan lower bound on mutual information, in nats.

    .. math::

        I_{DV} = \frac{1}{n} \sum_i f_{ii}
                 - \log \frac{1}{n(n-1)} \sum_{i \ne j} e^{f_{ij}}

    Tight at ``f = log p(x,y)/(p(x)p(y)) + c`` for any constant ``c`` (the value
    is invariant to adding a constant to every score). The log of a minibatch
    mean makes the batch value biased (upward, by Jensen) and its gradient
    biased; its variance grows like ``e^I`` [5]_.

    Parameters
    ----------
    scores : array-like or torch.Tensor, shape (n, n)
        Critic scores ``f(x_i, y_j)``, joint pairs on the diagonal, ``n >= 2``.

    Returns
    -------
    torch.Tensor
        A float64 scalar (differentiable when ``scores`` is).

    Examples
    --------
    >>> float(dv_bound([[1.0, 0.0], [0.0, 1.0]]))
    1.0
    """
    s = _as_scores(scores)
    return _joint_term(s) - _logmeanexp_offdiag(s)


def nwj_bound(scores) -> torch.Tensor:
    r"""Nguyen-Wainwright-Jordan (f-divergence, "TUBA" with ``a = e``) lower bound, in nats.

    .. math::

        I_{NWJ} = \frac{1}{n} \sum_i f_{ii}
                  - \frac{1}{e} \frac{1}{n(n-1)} \sum_{i \ne j} e^{f_{ij}}

    Tight at ``f = 1 + log p(x,y)/(p(x)p(y))``. Both terms are plain means, so
    the batch value is unbiased for the bound of the critic; its variance grows
    like ``e^I`` [5]_. Since ``log m <= m / e`` for every ``m > 0``,
    ``nwj_bound(s) <= dv_bound(s)`` for every score matrix. The exponent is
    capped at ``EXP_CAP`` (700) so the value stays finite; it is then below
    ``-1e303`` and means a badly scaled critic.

    Parameters
    ----------
    scores : array-like or torch.Tensor, shape (n, n)
        Critic scores, joint pairs on the diagonal, ``n >= 2``.

    Returns
    -------
    torch.Tensor
        A float64 scalar.

    Examples
    --------
    >>> round(float(nwj_bound([[1.0, 1.0], [1.0, 1.0]])), 12)
    0.0
    """
    s = _as_scores(scores)
    return _joint_term(s) - _capped_exp(_logmeanexp_offdiag(s) - 1.0)


def infonce_bound(scores) -> torch.Tensor:
    r"""InfoNCE (contrastive predictive coding) lower bound, in nats.

    .. math::

        I_{NCE} = \log n + \frac{1}{n} \sum_i
                  \Big( f_{ii} - \log \sum_{j} e^{f_{ij}} \Big)

    Low variance, but never above ``log n`` (each summand is at most 0), so it
    is biased far below the truth once ``I`` approaches ``ln(batch_size)`` [3]_,
    [4]_. Invariant to adding a constant to each row of ``scores``.

    Parameters
    ----------
    scores : array-like or torch.Tensor, shape (n, n)
        Critic scores, joint pairs on the diagonal, ``n >= 2``.

    Returns
    -------
    torch.Tensor
        A float64 scalar in ``(-inf, log n]``.

    Examples
    --------
    >>> import math
    >>> round(float(infonce_bound([[50.0, 0.0], [0.0, 50.0]])), 6) == round(math.log(2), 6)
    True
    """
    s = _as_scores(scores)
    per_row = torch.diagonal(s) - torch.logsumexp(s, dim=1)
    return math.log(s.shape[0]) + per_row.mean()


def js_bound(scores) -> torch.Tensor:
    r"""f-GAN Jensen-Shannon objective (a lower bound on a JS divergence, not on MI).

    .. math::

        I_{JS} = -\frac{1}{n} \sum_i \mathrm{softplus}(-f_{ii})
                 - \frac{1}{n(n-1)} \sum_{i \ne j} \mathrm{softplus}(f_{ij})

    This is the logistic-regression objective of a classifier telling joint from
    product pairs; it lower-bounds ``2 JS(p_{XY} || p_X p_Y) - log 4`` [6]_ and is
    at most 0. Its maximiser is the log density ratio ``f* = log p/(p_X p_Y)``,
    which is why it trains critics stably. The *mutual information* reported for
    a JS-trained critic is the NWJ bound at ``f + 1`` (tight exactly at that
    maximiser) [4]_, [5]_:

    .. math::

        I_{NWJ}(f + 1) = 1 + \frac{1}{n} \sum_i f_{ii}
                         - \frac{1}{n(n-1)} \sum_{i \ne j} e^{f_{ij}}

    which :func:`estimate_mi` uses for ``method="js"``.

    Parameters
    ----------
    scores : array-like or torch.Tensor, shape (n, n)
        Critic scores, joint pairs on the diagonal, ``n >= 2``.

    Returns
    -------
    torch.Tensor
        A float64 scalar ``<= 0``.

    Examples
    --------
    >>> import math
    >>> round(float(js_bound([[0.0, 0.0], [0.0, 0.0]])), 12) == round(-2 * math.log(2), 12)
    True
    """
    s = _as_scores(scores)
    n = s.shape[0]
    diag = torch.diagonal(s)
    off_diagonal = (F.softplus(s).sum() - F.softplus(diag).sum()) / (n * (n - 1))
    return -F.softplus(-diag).mean() - off_diagonal


def _js_mutual_information(scores) -> torch.Tensor:
    """The MI reported for a JS-trained critic: ``nwj_bound(scores + 1)``."""
    return nwj_bound(_as_scores(scores) + 1.0)


def smile_bound(scores, clip: float = 5.0) -> torch.Tensor:
    r"""SMILE: the Donsker-Varadhan bound with clipped marginal scores, in nats.

    .. math::

        I_{SMILE} = \frac{1}{n} \sum_i f_{ii}
                    - \log \frac{1}{n(n-1)} \sum_{i \ne j}
                      e^{\mathrm{clip}(f_{ij}, -\tau, \tau)}

    Clipping the density ratio to ``[e^-tau, e^tau]`` bounds the variance of
    the partition term; the price is a bias (the value is no longer a lower
    bound for finite ``tau``). Small ``tau`` lowers variance and raises bias;
    ``tau = inf`` is :func:`dv_bound`. Song & Ermon [5]_ use ``tau = 5`` and a
    JS-trained critic (as :func:`estimate_mi` does).

    Parameters
    ----------
    scores : array-like or torch.Tensor, shape (n, n)
        Critic scores, joint pairs on the diagonal, ``n >= 2``.
    clip : float, default 5.0
        The clip ``tau > 0`` (``math.inf`` allowed).

    Returns
    -------
    torch.Tensor
        A float64 scalar.

    Examples
    --------
    >>> float(smile_bound([[1.0, 0.0], [0.0, 1.0]], clip=0.5))
    1.0
    """
    tau = _positive_or_inf(clip, "clip")
    s = _as_scores(scores)
    return _joint_term(s) - _logmeanexp_offdiag(torch.clamp(s, -tau, tau))


def _positive_or_inf(value, name: str) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value == math.inf:
        return math.inf
    return positive_float(value, name)


# --------------------------------------------------------------------------- #
# Methods: a training objective and a reported bound per name                 #
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class _Options:
    clip: float
    ema_rate: float


class _MineObjective:
    r"""DV with Belghazi et al.'s bias-corrected gradient (MINE).

    The value is the DV bound; the gradient of the partition term
    ``log M`` (``M`` the minibatch mean of ``e^f`` off the diagonal) is replaced
    by ``grad M / M_bar`` with ``M_bar`` an exponential moving average of ``M``,
    kept in the log domain.
    """

    def __init__(self, rate: float) -> None:
        self.log_rate = math.log(rate)
        self.log_keep = math.log1p(-rate)
        self.log_average: torch.Tensor | None = None

    def __call__(self, scores: torch.Tensor) -> torch.Tensor:
        s = _as_scores(scores)
        log_mean = _logmeanexp_offdiag(s)
        current = log_mean.detach()
        if self.log_average is None:
            self.log_average = current
        else:
            self.log_average = torch.logaddexp(self.log_average + self.log_keep, current + self.log_rate)
        ratio = _capped_exp(log_mean - self.log_average)  # value ~1, gradient grad(M) / M_bar
        return _joint_term(s) - (current + ratio - ratio.detach())


@dataclass(frozen=True)
class _Method:
    objective: Callable[[_Options], Bound]  # builds the (possibly stateful) training objective
    report: Callable[[_Options], Bound]  # the held-out value


def _always(bound: Bound) -> Callable[[_Options], Bound]:
    return lambda options: bound


_METHODS: dict[str, _Method] = {
    "infonce": _Method(_always(infonce_bound), _always(infonce_bound)),
    "nwj": _Method(_always(nwj_bound), _always(nwj_bound)),
    "dv": _Method(_always(dv_bound), _always(dv_bound)),
    "mine": _Method(lambda o: _MineObjective(o.ema_rate), _always(dv_bound)),
    "js": _Method(_always(js_bound), _always(_js_mutual_information)),
    "smile": _Method(_always(js_bound), lambda o: partial(smile_bound, clip=o.clip)),
}


def _check_method(method) -> None:
    if method not in _METHODS:
        raise ValueError(f"method must be one of {sorted(_METHODS)}, got {method!r}")


# --------------------------------------------------------------------------- #
# Public entry points                                                          #
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class _Plan:
    """The validated settings of one :func:`estimate_mi` call."""

    method: str
    options: _Options
    steps: int
    batch_size: int
    lr: float
    holdout: float
    patience: int | None
    eval_every: int
    base: float
    divisor: float

    def batches(self, split) -> tuple[int, int]:
        """Training and held-out batch sizes, capped by the split's sizes."""
        return min(self.batch_size, split.x_train.shape[0]), min(self.batch_size, split.x_hold.shape[0])


def _plan(method, steps, batch_size, lr, holdout, patience, eval_every, clip, ema_rate, base) -> _Plan:
    _check_method(method)
    steps = positive_int(steps, "steps")
    return _Plan(
        method=method,
        options=_Options(clip=_positive_or_inf(clip, "clip"), ema_rate=probability(ema_rate, "ema_rate", open_interval=True)),
        steps=steps,
        batch_size=positive_int(batch_size, "batch_size", minimum=2),
        lr=learning_rate(lr, "lr"),
        holdout=probability(holdout, "holdout", open_interval=True),
        patience=None if patience is None else positive_int(patience, "patience"),
        eval_every=max(1, min(50, steps // 20)) if eval_every is None else positive_int(eval_every, "eval_every"),
        base=float(base),
        divisor=log_base(base),
    )


def _notes(trace, plan: _Plan, value_nats: float, batch: int, eval_batch: int, n_batches: int) -> list[str]:
    notes = []
    if trace.diverged_at is not None:
        notes.append(
            f"training diverged at step {trace.diverged_at} (non-finite loss, or critic scores non-finite "
            f"or beyond +-{SCORE_LIMIT:g}); reporting the best held-out value before it (step {trace.best_step})"
        )
    elif trace.last_gain_step == trace.steps_run == plan.steps:
        notes.append(
            f"the held-out value was still rising (by > {MIN_IMPROVEMENT:g} nats) at the last step "
            f"(steps={plan.steps}): more steps may raise the estimate"
        )
    if batch < plan.batch_size:
        notes.append(f"batch_size {plan.batch_size} exceeds the {batch} training pairs; used {batch}")
    if plan.method == "infonce" and value_nats > math.log(eval_batch) - INFONCE_MARGIN:
        notes.append(
            f"InfoNCE cannot exceed ln({eval_batch}) = {math.log(eval_batch):.3f} nats and the estimate "
            f"is within {INFONCE_MARGIN} nats of that cap: the true MI may be larger "
            "(use a larger batch_size or another method)"
        )
    if n_batches < 2:
        notes.append(
            f"one held-out batch of {eval_batch} pairs: the standard error is the delete-half jackknife's "
            f"over {HALF_SAMPLES} random halves of it (Wu 1986), a heuristic spread; 2 batches or more "
            f"({2 * eval_batch} held-out pairs) give the batch-means interval"
        )
    return notes


def estimate_mi(
    x,
    y,
    *,
    method: str | None = None,
    critic: str | nn.Module = "separable",
    steps: int = 2000,
    batch_size: int = 128,
    lr: float = 5e-4,
    holdout: float = 0.2,
    seed: int | None = None,
    device: str | torch.device = "cpu",
    patience: int | None = 500,
    eval_every: int | None = None,
    standardize: bool = True,
    critic_options: Mapping[str, object] | None = None,
    clip: float = 5.0,
    ema_rate: float = 0.01,
    base: float = math.e,
    progress: bool = False,
) -> MIEstimate:
    r"""Estimate ``I(X;Y)``: by default with an estimator chosen from the data, else by a variational bound.

    **Without** ``method`` (and with every training option at its default) the
    estimator is chosen from the data alone, by
    :func:`estimators.gaussian.auto_mi_estimate`: the Gaussian or the Student-t
    copula fitted to the ranks (whichever the likelihood-ratio test prefers),
    replaced by KSG on normal scores where that estimate exceeds the copula's
    by more than 3 standard errors and 5% (dependence no elliptical copula
    holds). No truth is read; ``method`` says which estimator was used
    (``"auto:gaussian-copula"``, ``"auto:student-copula(nu=...)"``,
    ``"auto:copula-ksg(k=5)"``) and ``notes`` why, with the other candidates'
    values. The interval is that estimator's 95% interval (finite); only
    ``seed`` and ``base`` apply, and the result is invariant to strictly
    increasing maps of each coordinate. Measured on the 40 tasks of Czyz et al.
    (``benchmarks/bench_mi_suite.py``), see the README. Without ``method`` but
    with a training option set (``steps``, ``batch_size``, ``lr``, ``critic``,
    ...), the options' method, ``"infonce"``, is trained, as before this
    default existed.

    **With** ``method``, a critic is trained on that variational bound.
    The pairs are split at random into a training part and a held-out part
    (fraction ``holdout``). One loop serves every method: Adam ascends the
    method's training objective on shuffled minibatches of the training pairs;
    every ``eval_every`` steps the method's reported bound is evaluated on
    held-out batches of ``batch_size`` pairs (at most 32 of them); training stops
    after ``steps`` steps, or early when the held-out value has not improved for
    ``patience`` steps. The critic of the best held-out value is restored and its
    bound, averaged over all held-out batches, is the estimate:

    .. math::

        \hat I = \frac{1}{K} \sum_{k=1}^{K} B\big(f(x^{(k)}_i, y^{(k)}_j)\big),
        \qquad \widehat{\mathrm{se}} = \frac{\mathrm{sd}_k(B_k)}{\sqrt{K}}

    and the 95% interval ``value +- t se`` with Student's ``t`` quantile for
    ``K - 1`` degrees of freedom. With a single held-out batch (fewer than
    ``2 * batch_size`` held-out pairs, e.g. under 1280 pairs at the defaults) the
    standard error is the delete-half jackknife's [7]_ over 200 random halves of
    that batch and the quantile 1.96; ``notes`` says so. The interval covers the
    held-out noise of the bound, not the gap between bound and truth, and the
    best-of-trace selection makes it slightly optimistic.

    Each coordinate is divided by a power of two (exactly) before z-scoring, so
    the estimate does not depend on the scale of the data (``x * 1e300`` gives
    that of ``x``); constant coordinates carry no information and are dropped,
    and a constant ``x`` or ``y`` gives exactly 0 with the interval ``[0, 0]``.

    Methods (see the module table): ``"infonce"`` never exceeds ``ln(batch_size)``;
    ``"nwj"``, ``"dv"`` and ``"mine"`` have variance growing like ``e^I``
    (``"mine"`` is DV with the moving-average gradient correction of Belghazi et
    al., rate ``ema_rate``); ``"js"`` trains on the Jensen-Shannon objective and
    reports ``nwj_bound(f + 1)``; ``"smile"`` trains as ``"js"`` and reports
    :func:`smile_bound` with ``clip``, whose bias grows as ``clip`` shrinks.

    Heavy-tailed data (e.g. a Student-t with 2 degrees of freedom, whose
    variance is infinite) defeat z-scoring: a few outliers dominate the
    ``e^f`` terms of NWJ, DV, MINE and the JS report, which then land near 0.
    An invertible map of each variable (``np.arcsinh``, a rank transform)
    leaves ``I(X;Y)`` unchanged and avoids it; InfoNCE is the least affected.

    Parameters
    ----------
    x : array-like, shape (n,) or (n, d_x)
    y : array-like, shape (n,) or (n, d_y)
        Paired samples (finite).
    method : {"infonce", "nwj", "dv", "mine", "smile", "js"} or None, default None
        ``None``: chosen from the data (see above), or ``"infonce"`` when a
        training option is set.
    critic : {"separable", "concat"} or torch.nn.Module, default "separable"
        A module maps ``(x_batch, y_batch)`` to a ``(batch, batch)`` score matrix;
        it is trained in place.
    steps : int, default 2000
        Maximum number of optimiser steps.
    batch_size : int, default 128
        Minibatch size for training and held-out evaluation (at least 2).
    lr : float, default 5e-4
        Adam learning rate, in ``(0, 3.4e38]`` (torch stores it in float32).
    holdout : float in (0, 1), default 0.2
        Fraction of pairs held out for evaluation.
    seed : int, optional
        Seeds the ``torch.Generator`` used for the split, the critic's initial
        weights, and the minibatches. ``None`` draws fresh OS entropy.
    device : str or torch.device, default "cpu"
    patience : int or None, default 500
        Steps without a held-out gain of more than ``MIN_IMPROVEMENT`` (1e-3
        nats) before stopping; ``None`` disables early stopping.
    eval_every : int, optional
        Steps between held-out evaluations (default ``max(1, min(50, steps // 20))``).
    standardize : bool, default True
        Z-score each coordinate with training-split statistics (MI is unchanged).
        ``False`` feeds the raw values to the float32 critic, and refuses data
        that float32 cannot hold.
    critic_options : mapping, optional
        Keywords for :class:`SeparableCritic` / :class:`ConcatCritic`
        (``hidden``, ``depth``, ``embed_dim``, ``activation``).
    clip : float, default 5.0
        SMILE's ``tau`` (``method="smile"`` only).
    ema_rate : float in (0, 1), default 0.01
        MINE's moving-average rate (``method="mine"`` only).
    base : float, default e
        Logarithm base of the result (``2`` for bits).
    progress : bool, default False
        Show a tqdm progress bar of the training steps (on stderr).

    Returns
    -------
    MIEstimate
        Without ``method``: :func:`estimators.gaussian.auto_mi_estimate`'s result.
        Otherwise ``value`` (raw: a poorly trained critic can give a negative bound),
        ``stderr``, ``ci_low``, ``ci_high``, ``method``, ``n`` (all pairs),
        ``base``, ``history`` (held-out values at each evaluation, step 0 first,
        in units of ``base``) and ``notes``.

    Raises
    ------
    ValueError
        Mismatched lengths, non-finite samples, too few samples for the split
        (at least 2 training and 4 held-out pairs),
        an unknown ``method`` or ``critic``, ``holdout`` outside ``(0, 1)``,
        a bad step count, batch size, rate, or device.

    Warns
    -----
    RuntimeWarning
        When training diverges (a non-finite loss, or critic scores that are
        non-finite or exceed ``SCORE_LIMIT = 1e5`` in magnitude): the loop stops, the
        best finite held-out value so far is returned and ``notes`` says so.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=2000)
    >>> y = x + rng.normal(size=2000)       # I = ln(2)/2 = 0.347 nats
    >>> est = estimate_mi(x, y, seed=0)      # chosen from the data
    >>> est.method, est.ci_low < 0.347 < est.ci_high
    ('auto:gaussian-copula', True)
    >>> est = estimate_mi(x, y, method="infonce", steps=200, seed=0)
    >>> 0.1 < est.value < 0.6
    True
    """
    training = dict(critic=critic, steps=steps, batch_size=batch_size, lr=lr, holdout=holdout, device=device,
                    patience=patience, eval_every=eval_every, standardize=standardize,
                    critic_options=critic_options, clip=clip, ema_rate=ema_rate, progress=progress)
    default_note = ()
    if method is None:
        changed = sorted(name for name, value in training.items() if _differs(value, _TRAINING_DEFAULTS[name]))
        if not changed:
            from estimators.gaussian import auto_mi_estimate

            return auto_mi_estimate(x, y, base=base, seed=seed)
        method = "infonce"
        default_note = (f"method not given, training options {changed} given: trained the neural default, "
                        "infonce",)
    plan = _plan(method, steps, batch_size, lr, holdout, patience, eval_every, clip, ema_rate, base)
    x_arr, y_arr = as_samples(x, "x"), as_samples(y, "y")
    same_length("x", x_arr, "y", y_arr)
    resolved = resolve_device(device)
    generator = seeded_generator(seed)
    x_arr, x_notes = drop_constant_columns(x_arr, "x")
    y_arr, y_notes = drop_constant_columns(y_arr, "y")
    if x_arr.shape[1] == 0 or y_arr.shape[1] == 0:
        return MIEstimate(value=0.0, stderr=0.0, ci_low=0.0, ci_high=0.0, method=method, n=x_arr.shape[0],
                          base=plan.base, notes=default_note + x_notes + y_notes)
    split = split_pairs(x_arr, y_arr, plan.holdout, generator, standardize, resolved)
    module = make_critic(critic, x_arr.shape[1], y_arr.shape[1], critic_options, generator, resolved)
    batch, eval_batch = plan.batches(split)
    chosen = _METHODS[method]
    with tqdm(total=plan.steps, disable=not progress, desc=f"{method} MI", leave=False) as bar:
        trace = train(
            module, split, chosen.objective(plan.options), chosen.report(plan.options),
            steps=plan.steps, batch=batch, eval_batch=eval_batch, lr=plan.lr, patience=plan.patience,
            eval_every=plan.eval_every, generator=generator, bar=bar,
        )
    return _result(module, split, trace, plan, generator, default_note + x_notes + y_notes)


def _differs(value, default) -> bool:
    """Whether a training option was set to other than its default (modules and mappings always count)."""
    if isinstance(value, (nn.Module, Mapping)) or isinstance(default, (nn.Module, Mapping)):
        return value is not default
    try:
        return bool(value != default)
    except (TypeError, ValueError):  # e.g. an array-like that compares element-wise
        return True


def _spread(module: nn.Module, report: Bound, split, values: torch.Tensor, eval_batch: int,
            generator: torch.Generator) -> tuple[float, float]:
    """Standard error (nats) of the held-out value and the 95% quantile of its interval.

    ``K >= 2`` held-out batches: batch means, ``sd / sqrt(K)``, Student's ``t``
    quantile with ``K - 1`` degrees of freedom. One batch of ``m`` pairs: the
    delete-d jackknife [7]_ over random halves (``h = m // 2`` pairs, ``d = m - h``
    deleted), variance ``h / d`` times the mean squared deviation of the half values,
    and the normal quantile.
    """
    k = values.numel()
    if k >= 2:
        return float(values.std(correction=1)) / math.sqrt(k), float(scipy_t.ppf(0.975, k - 1))
    halves = half_sample_values(module, report, split.x_hold, split.y_hold, eval_batch, generator, HALF_SAMPLES)
    kept, deleted = eval_batch // 2, eval_batch - eval_batch // 2
    variance = kept / deleted * float(((halves - halves.mean()) ** 2).mean())
    return math.sqrt(variance), _Z95


def _result(module: nn.Module, split, trace, plan: _Plan, generator: torch.Generator,
            input_notes: tuple[str, ...]) -> MIEstimate:
    """Restore the best critic, evaluate it on every held-out batch, package the estimate."""
    module.load_state_dict(trace.best_state)
    batch, eval_batch = plan.batches(split)
    report = _METHODS[plan.method].report(plan.options)
    values = held_out_values(module, report, split.x_hold, split.y_hold, eval_batch)
    value_nats, k = float(values.mean()), values.numel()
    stderr_nats, quantile = _spread(module, report, split, values, eval_batch, generator)
    notes = [*input_notes, *_notes(trace, plan, value_nats, batch, eval_batch, k)]
    if trace.diverged_at is not None:
        warnings.warn(f"estimate_mi(method={plan.method!r}): {notes[len(input_notes)]}", RuntimeWarning,
                      stacklevel=3)
    value, stderr = value_nats / plan.divisor, stderr_nats / plan.divisor
    return MIEstimate(
        value=value,
        stderr=stderr,
        ci_low=value - quantile * stderr,
        ci_high=value + quantile * stderr,
        method=plan.method,
        n=split.x_train.shape[0] + split.x_hold.shape[0],
        base=plan.base,
        history=tuple(v / plan.divisor for v in trace.history),
        notes=tuple(notes),
    )


#: The training options of :func:`estimate_mi` and their defaults: setting one without ``method``
#: means the neural default, InfoNCE.
_TRAINING_DEFAULTS = {
    name: parameter.default for name, parameter in inspect.signature(estimate_mi).parameters.items()
    if name not in ("x", "y", "method", "seed", "base")
}


class VariationalEstimator:
    """A variational MI estimator implementing :class:`estimators.interface.MIEstimator`.

    Parameters
    ----------
    method : str, default "infonce"
        Any method of :func:`estimate_mi`.
    **options
        Any other keyword of :func:`estimate_mi` (``steps``, ``batch_size``,
        ``seed``, ...), applied to every call.

    Notes
    -----
    :meth:`estimate` clips the value at 0 (mutual information is non-negative);
    :meth:`estimate_with_info` returns the raw bound. With ``seed=None`` each
    call trains a fresh, differently initialised critic.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=1000)
    >>> est = VariationalEstimator("nwj", steps=100, seed=0)
    >>> est.estimate(x, x + rng.normal(size=1000)) >= 0
    True
    """

    _KEYWORDS = frozenset(inspect.signature(estimate_mi).parameters) - {"x", "y", "method"}

    def __init__(self, method: str = "infonce", **options) -> None:
        _check_method(method)
        unknown = sorted(set(options) - self._KEYWORDS)
        if unknown:
            raise ValueError(f"options: unknown keyword(s) {unknown} for estimate_mi")
        self.method = method
        self.options = dict(options)

    def __repr__(self) -> str:
        extra = "".join(f", {k}={v!r}" for k, v in self.options.items())
        return f"VariationalEstimator({self.method!r}{extra})"

    def estimate(self, x, y) -> float:
        """``max(0, value)`` of :meth:`estimate_with_info`, in units of ``base``."""
        return max(0.0, float(self.estimate_with_info(x, y).value))

    def estimate_with_info(self, x, y) -> MIEstimate:
        """The full :class:`~estimators.interface.MIEstimate` of :func:`estimate_mi`."""
        return estimate_mi(x, y, method=self.method, **self.options)
