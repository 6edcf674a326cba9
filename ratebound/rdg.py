r"""The rate-distortion-generalisation bound of D-INL and the selection information.

The D-INL template (arXiv 2605.23424, after arXiv 2602.15091) bounds the
expected population risk of a network whose gates have rate
:math:`R_g = I(Z;T)`:

.. math::

    \mathbb E[R(W)] \le D(R_g) + \delta_m + \sqrt{\frac{2\sigma^2 I(S;W)}{m}},

with :math:`D(R_g)` the distortion-rate function of the gate (the least
expected loss any gate of rate :math:`R_g` can reach), :math:`\delta_m \ge 0`
the optimisation slack (training loss above :math:`D(R_g)`) and the last term
the Xu-Raginsky generalisation gap for :math:`m` training samples.

:func:`selection_mi` estimates :math:`I(S;W)` for a finite bank from the
hypotheses that independent training runs selected.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from estimators._validation import as_labels, positive_float, positive_int, probability
from estimators.interface import MIEstimate
from ratebound.generalization import xu_raginsky

__all__ = ["RDGBound", "rdg_bound", "selection_mi"]


@dataclass(frozen=True)
class RDGBound:
    """The terms of the rate-distortion-generalisation bound, in units of the loss.

    Attributes
    ----------
    total : float
        ``distortion_rate + slack + generalization``, a bound on the expected risk.
    distortion_rate : float
        :math:`D(R_g)`.
    slack : float
        :math:`\\delta_m \\ge 0`.
    generalization : float
        :math:`\\sqrt{2\\sigma^2 I(S;W)/m}`.
    """

    total: float
    distortion_rate: float
    slack: float
    generalization: float


def rdg_bound(*, distortion_rate, slack, mi_sw, n, sigma=0.5) -> RDGBound:
    r"""The D-INL bound :math:`D(R_g) + \delta_m + \sqrt{2\sigma^2 I(S;W)/m}`.

    Parameters
    ----------
    distortion_rate : float
        :math:`D(R_g)`, e.g. ``estimators.distortion_rate(p, d, R_g).distortion``.
    slack : float
        :math:`\delta_m \ge 0`: training loss minus :math:`D(R_g)`, floored at 0.
    mi_sw : float
        :math:`I(S;W)` in nats, ``>= 0``.
    n : int
        Training-set size :math:`m \ge 1`.
    sigma : float, default 0.5
        Sub-Gaussian parameter of the loss.

    Returns
    -------
    RDGBound

    Examples
    --------
    >>> b = rdg_bound(distortion_rate=0.1, slack=0.02, mi_sw=0.5, n=100)
    >>> round(b.total, 6)
    0.17
    """
    if isinstance(distortion_rate, bool) or not isinstance(distortion_rate, (int, float, np.floating)):
        raise ValueError(f"distortion_rate must be a real number, got {distortion_rate!r}")
    d = float(distortion_rate)
    if not math.isfinite(d):
        raise ValueError(f"distortion_rate must be finite, got {d}")
    slack = positive_float(slack, "slack", allow_zero=True)
    gen = xu_raginsky(mi_sw, n, sigma=sigma)
    return RDGBound(total=d + slack + gen, distortion_rate=d, slack=slack, generalization=gen)


def _miller_madow_entropy(counts: np.ndarray) -> np.ndarray:
    """Miller-Madow entropy (nats) of each row of a count matrix."""
    counts = np.atleast_2d(counts)
    total = counts.sum(axis=1, keepdims=True)
    p = counts / total
    with np.errstate(divide="ignore", invalid="ignore"):
        plug = -np.where(p > 0, p * np.log(p), 0.0).sum(axis=1)
    occupied = (counts > 0).sum(axis=1)
    return plug + (occupied - 1) / (2.0 * total[:, 0])


def selection_mi(hypotheses, *, bank_size=None, n_boot=1000, confidence=0.95, seed=None) -> MIEstimate:
    r"""Estimate :math:`I(S;W)` from the hypotheses selected on independent training sets.

    Each entry of ``hypotheses`` is the bank index :math:`W_j = A(S_j)` a run
    selected from its own training set :math:`S_j`, the :math:`S_j` i.i.d.
    Then

    .. math::

        I(S;W) = H(W) - H(W \mid S) \le H(W),

    with equality when the selection is deterministic given the training set
    (argmin, or a Gibbs rule whose sampling noise is counted as part of
    :math:`S`). The estimate is the Miller-Madow corrected plug-in entropy of
    the empirical distribution of :math:`W`, capped at :math:`\ln|\mathcal W|`
    when ``bank_size`` is given: an estimate of an **upper bound** on
    :math:`I(S;W)`, which is what the Xu-Raginsky bound needs. Plug-in entropy
    is biased downward when the runs are few against the hypotheses actually
    selected; Miller-Madow removes the first-order bias and the interval (a
    basic bootstrap over runs, as :func:`estimators.bank_mi`) shows the rest.

    Parameters
    ----------
    hypotheses : array_like of int, shape (runs,)
        Selected bank indices, at least 2 runs.
    bank_size : int, optional
        :math:`|\mathcal W|`; caps the estimate and its interval at :math:`\ln|\mathcal W|`.
    n_boot : int, default 1000
        Bootstrap resamples.
    confidence : float, default 0.95
        Coverage of the interval.
    seed : int or None
        Seed of the bootstrap generator.

    Returns
    -------
    MIEstimate
        In nats; ``method="selection-entropy"``.
    """
    w = as_labels(hypotheses, "hypotheses", min_n=2)
    if np.any(w < 0):
        raise ValueError("hypotheses must be bank indices >= 0")
    cap = math.inf
    if bank_size is not None:
        k = positive_int(bank_size, "bank_size")
        if np.any(w >= k):
            raise ValueError(f"hypotheses must be < bank_size = {k}, max is {w.max()}")
        cap = math.log(k)
    n_boot = positive_int(n_boot, "n_boot", minimum=2)
    confidence = probability(confidence, "confidence", open_interval=True)
    rng = np.random.default_rng(None if seed is None else positive_int(seed, "seed", minimum=0))
    _, codes = np.unique(w, return_inverse=True)
    counts = np.bincount(codes)
    value = min(float(_miller_madow_entropy(counts)[0]), cap)
    picks = rng.integers(0, w.size, size=(n_boot, w.size))
    boot_counts = np.stack([np.bincount(codes[row], minlength=counts.size) for row in picks])
    boot = np.minimum(_miller_madow_entropy(boot_counts), cap)
    alpha = 1.0 - confidence
    q_lo, q_hi = np.quantile(boot, [alpha / 2, 1 - alpha / 2])
    ci_low = float(np.clip(2 * value - q_hi, 0.0, cap))
    ci_high = float(np.clip(2 * value - q_lo, 0.0, cap))
    notes = (
        "estimates H(W) >= I(S;W) (equal for deterministic selection on independent training sets)",
        f"interval: basic bootstrap over {w.size} runs, {n_boot} resamples, {confidence:.0%} "
        "coverage, widened to contain the estimate",
    )
    return MIEstimate(
        value=value,
        stderr=float(boot.std(ddof=1)),
        ci_low=min(ci_low, value),
        ci_high=max(ci_high, value),
        method="selection-entropy",
        n=int(w.size),
        notes=notes,
    )
