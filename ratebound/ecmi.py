r"""Evaluated conditional-mutual-information (e-CMI) bounds from supersample runs.

The supersample setting (Steinke and Zakynthinou [1]_): :math:`\tilde Z` holds
:math:`n` pairs of examples drawn i.i.d. from the data distribution; a uniform
mask :math:`U \in \{0,1\}^n` picks one member of each pair for training, the
other is held out. A learner trained on one mask gives, for each pair
:math:`i`, the losses :math:`\Lambda_i = (\ell(W, \tilde Z_{i,0}), \ell(W,
\tilde Z_{i,1}))` of both members (losses in :math:`[0, 1]`) and their
predictions :math:`F_i`. With :math:`\hat L = \frac1n\sum_i \Lambda_{i,U_i}`
(training loss) and :math:`\bar L = \frac1n\sum_i \Lambda_{i,1-U_i}` (the
held-out members' loss, whose mean is the population risk), every bound here
controls :math:`\mathbb E[\bar L]` or :math:`\mathbb E[\bar L - \hat L]` through
the per-pair informations, each disintegrated on :math:`\tilde Z` (computed
within one supersample, then averaged over supersamples):

- f-CMI [2]_ :math:`I(F_i; U_i \mid \tilde Z)` of the predictions,
- e-CMI [4]_ :math:`I(\Lambda_i; U_i \mid \tilde Z)` of the loss pair,
- loss-difference CMI [3]_ :math:`I(\Delta_i; U_i \mid \tilde Z)` with
  :math:`\Delta_i = \Lambda_{i,1} - \Lambda_{i,0}`.

:math:`\Delta_i` is a function of :math:`\Lambda_i`, which is a function of
:math:`F_i` and the labels, so (data processing) ld-CMI <= e-CMI <= f-CMI, pair
by pair, and each is at most :math:`\ln 2` (:math:`U_i` is one bit). The
plug-in estimates obey the same order exactly (they are the informations of the
empirical joint).

The bounds (all with the Donsker-Varadhan inequality against
:math:`P_{X_i} \otimes \mathrm{Bern}(1/2)`, :math:`X_i` the evaluated quantity):

- square root [2]_ [3]_: :math:`\mathbb E[\bar L - \hat L] \le \frac1n \sum_i
  \mathbb E_{\tilde Z} \sqrt{2 I_i^{\tilde Z}}` (:math:`(-1)^{U_i}\Delta_i \in
  [-1, 1]` is 1-sub-Gaussian under the product).
- loss-difference variance (fast rate): with :math:`\cosh(\lambda x) - 1 \le
  x^2(\cosh\lambda - 1)` on :math:`|x| \le 1` and :math:`\ln(1+a) \le a`,
  :math:`\mathbb E[\bar L - \hat L] \le \min_{\lambda > 0} \bigl(\bar I +
  (\cosh\lambda - 1)\, \bar V\bigr)/\lambda` with :math:`\bar V = \frac1n\sum_i
  \mathbb E[\Delta_i^2]`: small when the two members' losses rarely differ.
- e-CMI linear (fast rate, after Hellström and Durisi [4]_): for
  :math:`0 < \lambda < \ln 2` and :math:`\mu(\lambda) = -\ln(2 - e^\lambda)`,
  the function :math:`\lambda\Lambda_{1-U} - \mu\Lambda_U` has
  :math:`\mathbb E_{U' \sim \mathrm{Bern}(1/2)} e^{(\cdot)} \le 1` on every
  loss pair in :math:`[0,1]^2` (convex in the pair, checked at the four
  vertices), so :math:`\mathbb E[\bar L] \le \min_\lambda (\mu(\lambda)
  \mathbb E[\hat L] + \bar I)/\lambda`. At zero training loss this is
  :math:`\bar I / \ln 2`, which is exact for a learner that memorises.

**These are estimates, not certificates**: the informations are plug-in values
over the masks of each supersample (biased upward by about
:math:`(k-1)/(2m)` nats per pair for a quantity with :math:`k` observed values
and :math:`m` masks when it does not depend on the mask; downward only through
values never observed), and the expectations over :math:`\tilde Z` are means
over the supersamples. Each comes with an upper confidence value from a
(basic) bootstrap over supersamples and over the masks within each.

References
----------
.. [1] T. Steinke and L. Zakynthinou, "Reasoning about generalization via
   conditional mutual information", COLT 2020.
.. [2] H. Harutyunyan, M. Raginsky, G. Ver Steeg and A. Galstyan,
   "Information-theoretic generalization bounds for black-box learning
   algorithms", NeurIPS 2021.
.. [3] Z. Wang and Y. Mao, "Tighter information-theoretic generalization bounds
   from supersamples", ICML 2023.
.. [4] F. Hellström and G. Durisi, "A new family of generalization bounds using
   samplewise evaluated CMI", NeurIPS 2022.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize_scalar

from estimators._validation import positive_int, probability
from ratebound import generalization

__all__ = [
    "Supersample",
    "PairInformation",
    "ECMIBound",
    "pair_information",
    "ecmi_bounds",
    "sqrt_cmi_bound",
    "variance_cmi_bound",
    "linear_ecmi_bound",
    "ECMI_BOUNDS",
]

LN2 = math.log(2.0)

#: The bounds :func:`ecmi_bounds` computes, by name.
ECMI_BOUNDS = ("f-cmi", "ld-cmi", "ld-cmi variance", "e-cmi linear")

#: Distinct per-pair loss values up to which losses are taken as they are;
#: above it, losses are floored to a grid and the grid width is added to the bounds.
_MAX_EXACT_VALUES = 16
_GRID = 16


@dataclass(frozen=True)
class Supersample:
    """The runs of one supersample: ``m`` masks over ``n`` pairs.

    Attributes
    ----------
    masks : numpy.ndarray
        ``(m, n)`` in ``{0, 1}``: which member of each pair each run trained on.
    losses : numpy.ndarray
        ``(m, n, 2)`` losses of both members, in ``[0, 1]``.
    predictions : numpy.ndarray or None
        ``(m, n, 2)`` integer predictions of both members (for f-CMI).
    """

    masks: np.ndarray
    losses: np.ndarray
    predictions: np.ndarray | None = None

    def __post_init__(self):
        masks = np.asarray(self.masks)
        losses = np.asarray(self.losses, dtype=float)
        if masks.ndim != 2 or masks.shape[0] < 2 or not np.isin(masks, (0, 1)).all():
            raise ValueError(f"masks must be an (m, n) 0/1 array with m >= 2 runs, got shape {masks.shape}")
        if losses.shape != (*masks.shape, 2):
            raise ValueError(f"losses must have shape {(*masks.shape, 2)}, got {losses.shape}")
        if not np.isfinite(losses).all() or losses.min() < 0.0 or losses.max() > 1.0:
            raise ValueError("losses must lie in [0, 1] (rescale a loss in [a, b] first)")
        object.__setattr__(self, "masks", masks.astype(np.int64))
        object.__setattr__(self, "losses", losses)
        if self.predictions is not None:
            preds = np.asarray(self.predictions)
            if preds.shape != losses.shape or not np.issubdtype(preds.dtype, np.integer):
                raise ValueError(f"predictions must be an integer array of shape {losses.shape}")
            object.__setattr__(self, "predictions", preds.astype(np.int64))

    @property
    def n(self) -> int:
        """Pairs."""
        return int(self.masks.shape[1])

    @property
    def runs(self) -> int:
        """Masks (training runs)."""
        return int(self.masks.shape[0])

    def resampled(self, rows: np.ndarray) -> Supersample:
        """The runs ``rows`` (a bootstrap resample of the masks)."""
        preds = None if self.predictions is None else self.predictions[rows]
        return Supersample(self.masks[rows], self.losses[rows], preds)


def _column_entropies(keys: np.ndarray, stride: int, m: int, n: int) -> np.ndarray:
    """Plug-in entropy (nats) of each column, from keys ``column * stride + value`` of ``m`` draws per column."""
    counts = np.bincount(keys.ravel(), minlength=n * stride)
    occupied = np.flatnonzero(counts)
    p = counts[occupied] / m
    return -np.bincount(occupied // stride, weights=p * np.log(p), minlength=n)


def _plugin_mi_columns(codes: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Plug-in :math:`I(X_i; U_i) = H(X_i) + H(U_i) - H(X_i, U_i)` in nats for every column of ``(m, n)`` codes and bits."""
    m, n = codes.shape
    _, dense = np.unique(codes, return_inverse=True)
    k = int(dense.max()) + 1
    x = np.arange(n)[None, :] * k + dense.reshape(m, n)
    h_x = _column_entropies(x, k, m, n)
    h_u = _column_entropies(np.arange(n)[None, :] * 2 + u, 2, m, n)
    h_xu = _column_entropies(x * 2 + u, 2 * k, m, n)
    return np.clip(h_x + h_u - h_xu, 0.0, LN2)


def _quantised(losses: np.ndarray) -> tuple[np.ndarray, float]:
    """Losses as they are when few distinct values occur, else floored to a grid: ``(losses, error)``."""
    if np.unique(losses).size <= _MAX_EXACT_VALUES:
        return losses, 0.0
    h = 1.0 / _GRID
    return np.floor(losses / h) * h, h


@dataclass(frozen=True)
class PairInformation:
    """Per-pair plug-in informations of one supersample, in nats.

    Attributes
    ----------
    fcmi, ecmi, ldcmi : numpy.ndarray
        ``(n,)``: :math:`I(F_i;U_i)`, :math:`I(\\Lambda_i;U_i)`,
        :math:`I(\\Delta_i;U_i)` (``fcmi`` is ``None`` without predictions).
    variance : numpy.ndarray
        ``(n,)``: mean over the runs of :math:`\\Delta_i^2`.
    train_risk, held_out_risk : float
        Means over the runs of :math:`\\hat L` and :math:`\\bar L`.
    quantisation : float
        Added to every bound: 0 for losses with at most 16 distinct values,
        else the grid width the losses were floored to.
    """

    fcmi: np.ndarray | None
    ecmi: np.ndarray
    ldcmi: np.ndarray
    variance: np.ndarray
    train_risk: float
    held_out_risk: float
    quantisation: float


def pair_information(supersample: Supersample) -> PairInformation:
    """The per-pair plug-in informations of one supersample's runs.

    Parameters
    ----------
    supersample : Supersample

    Returns
    -------
    PairInformation

    Examples
    --------
    A learner that memorises: the training member always right, the held-out
    member always wrong, so the loss pair reveals the mask bit (ln 2 nats).

    >>> u = np.array([[0, 1], [1, 0], [0, 0], [1, 1]])
    >>> losses = np.stack([u, 1 - u], axis=-1).astype(float)  # loss 1 on the member not trained on
    >>> info = pair_information(Supersample(u, losses))
    >>> bool(np.allclose(info.ecmi, np.log(2))), info.train_risk, info.held_out_risk
    (True, 0.0, 1.0)
    """
    if not isinstance(supersample, Supersample):
        raise ValueError(f"supersample must be a Supersample, got {type(supersample).__name__}")
    u = supersample.masks
    losses, error = _quantised(supersample.losses)
    scale = _GRID * 4  # integer codes of grid (or exact binary) losses
    lam = np.round(losses * scale).astype(np.int64)
    ecmi = _plugin_mi_columns(lam[..., 0] * (scale + 1) + lam[..., 1], u)
    ldcmi = _plugin_mi_columns(lam[..., 1] - lam[..., 0], u)
    fcmi = None
    if supersample.predictions is not None:
        p = supersample.predictions
        big = int(p.max()) + 1
        fcmi = _plugin_mi_columns(p[..., 0] * big + p[..., 1], u)
    idx = np.arange(supersample.n)
    rows = np.arange(supersample.runs)[:, None]
    train = supersample.losses[rows, idx, u]
    held = supersample.losses[rows, idx, 1 - u]
    delta = losses[..., 1] - losses[..., 0]
    return PairInformation(
        fcmi=fcmi, ecmi=ecmi, ldcmi=ldcmi, variance=(delta**2).mean(axis=0),
        train_risk=float(train.mean()), held_out_risk=float(held.mean()), quantisation=error,
    )


# ------------------------------------------------------------------ bound formulas


def _informations(values, name: str) -> np.ndarray:
    """Informations >= 0 (nats) of any shape, as one flat array (the checks of :mod:`ratebound.generalization`)."""
    return generalization._informations(np.ravel(values), name)


def sqrt_cmi_bound(per_pair) -> float:
    r"""The square-root bound :math:`\frac1n\sum_i \sqrt{2 I_i}` on the expected gap ([0,1] loss).

    ``per_pair`` is ``(n,)`` or ``(supersamples, n)`` informations in nats (any of
    f-CMI, e-CMI, ld-CMI, disintegrated on the supersample); the root is taken
    per supersample and per pair, then averaged: :func:`ratebound.fcmi_bound` over
    all of them (every supersample has the same ``n``).

    Examples
    --------
    >>> round(sqrt_cmi_bound([0.005, 0.005]), 6)
    0.1
    """
    return generalization.fcmi_bound(np.ravel(per_pair))


def variance_cmi_bound(ldcmi, variance) -> float:
    r"""The loss-difference variance bound on the expected gap ([0,1] loss).

    .. math::

        \mathbb E[\bar L - \hat L] \le \min_{\lambda > 0}
        \frac{\bar I + (\cosh\lambda - 1)\,\bar V}{\lambda},

    :math:`\bar I` the mean of ``ldcmi`` (nats) and :math:`\bar V` the mean of
    ``variance`` (:math:`\mathbb E[\Delta_i^2] \in [0, 1]`).

    Examples
    --------
    A pair whose held-out member is wrong with probability p = 0.1 and whose
    training member is always right (I = p ln 2, V = p, true gap p):

    >>> round(variance_cmi_bound([0.1 * np.log(2)], [0.1]), 4)
    0.1235
    """
    i_bar = float(_informations(ldcmi, "ldcmi").mean())
    v = np.asarray(variance, dtype=float)
    if v.size == 0 or not np.isfinite(v).all() or v.min() < 0.0 or v.max() > 1.0:
        raise ValueError("variance must hold mean squared loss differences in [0, 1]")
    v_bar = float(v.mean())
    if i_bar == 0.0:
        return 0.0
    if v_bar == 0.0:  # no pair's losses ever differ: no gap
        return 0.0
    f = lambda lam: (i_bar + (math.cosh(lam) - 1.0) * v_bar) / lam  # noqa: E731
    hi = max(1.0, 2.0 * math.acosh(1.0 + i_bar / v_bar) + 1.0)
    res = minimize_scalar(f, bounds=(1e-9, hi), method="bounded", options={"xatol": 1e-10})
    return float(min(res.fun, f(hi), 1.0))


def _mu(lam: float) -> float:
    return -math.log(2.0 - math.exp(lam))


def linear_ecmi_bound(train_risk, ecmi) -> float:
    r"""The linear (fast-rate) e-CMI bound on the expected **risk** ([0,1] loss).

    .. math::

        \mathbb E[\bar L] \le \min_{0 < \lambda < \ln 2}
        \frac{\mu(\lambda)\,\mathbb E[\hat L] + \bar I}{\lambda},
        \qquad \mu(\lambda) = -\ln(2 - e^{\lambda}),

    :math:`\bar I` the mean per-pair e-CMI (nats). Capped at 1.

    Examples
    --------
    >>> round(linear_ecmi_bound(0.0, [0.1 * np.log(2)]), 6)   # memorising learner: exact
    0.1
    """
    risk = probability(train_risk, "train_risk")
    i_bar = float(_informations(ecmi, "ecmi").mean())
    if i_bar == 0.0:
        return risk
    if risk == 0.0:
        return min(i_bar / LN2, 1.0)
    f = lambda lam: (_mu(lam) * risk + i_bar) / lam  # noqa: E731
    res = minimize_scalar(f, bounds=(1e-9, LN2 * (1 - 1e-12)), method="bounded", options={"xatol": 1e-12})
    return float(min(res.fun, 1.0))


# ------------------------------------------------------------------ from runs


@dataclass(frozen=True)
class ECMIBound:
    """One e-CMI bound on the expected generalisation gap, from supersample runs.

    Attributes
    ----------
    name : str
        One of :data:`ECMI_BOUNDS`.
    gap : float
        The bound on :math:`\\mathbb E[\\bar L - \\hat L]` (units of a [0,1] loss).
    gap_upper : float
        The same at the bootstrap's upper confidence value.
    information : float
        Mean per-pair information used, nats (plug-in).
    information_upper : float
        Its bootstrap upper confidence value.
    train_risk, held_out_risk : float
        Means over every run of every supersample.
    """

    name: str
    gap: float
    gap_upper: float
    information: float
    information_upper: float
    train_risk: float
    held_out_risk: float


def _bound_values(infos: Sequence[PairInformation]) -> dict[str, tuple[float, float]]:
    """``name -> (gap bound, mean information)`` over the supersamples ``infos``."""
    q = max(i.quantisation for i in infos)
    train = float(np.mean([i.train_risk for i in infos]))
    ecmi = np.stack([i.ecmi for i in infos])
    ld = np.stack([i.ldcmi for i in infos])
    var = np.stack([i.variance for i in infos])
    out = {
        "ld-cmi": (sqrt_cmi_bound(ld) + q, float(ld.mean())),
        "ld-cmi variance": (variance_cmi_bound(ld, var) + q, float(ld.mean())),
        "e-cmi linear": (linear_ecmi_bound(train, ecmi) - train + q, float(ecmi.mean())),
    }
    if all(i.fcmi is not None for i in infos):
        f = np.stack([i.fcmi for i in infos])
        out["f-cmi"] = (sqrt_cmi_bound(f) + q, float(f.mean()))
    return out


def ecmi_bounds(supersamples: Sequence[Supersample], *, n_boot: int = 200, confidence: float = 0.95,
                seed: int | None = 0) -> tuple[ECMIBound, ...]:
    """Every e-CMI bound that ``supersamples`` allow, with bootstrap upper values.

    Parameters
    ----------
    supersamples : sequence of Supersample
        One per supersample, all with the same number of pairs ``n``.
    n_boot : int, default 200
        Bootstrap resamples: supersamples with replacement, and the masks of
        each with replacement.
    confidence : float, default 0.95
        One-sided level of the upper values (basic bootstrap: twice the point
        value minus the resamples' ``1 - confidence`` quantile, at least the
        point value).
    seed : int or None, default 0
        Seed of the bootstrap.

    Returns
    -------
    tuple of ECMIBound
        In the order of :data:`ECMI_BOUNDS` (f-CMI only when every supersample
        has predictions).
    """
    supersamples = list(supersamples)
    if not supersamples or not all(isinstance(s, Supersample) for s in supersamples):
        raise ValueError("supersamples must be a non-empty sequence of Supersample")
    if len({s.n for s in supersamples}) != 1:
        raise ValueError(f"supersamples must share n, got {sorted({s.n for s in supersamples})}")
    n_boot = positive_int(n_boot, "n_boot", minimum=2)
    confidence = probability(confidence, "confidence", open_interval=True)
    rng = np.random.default_rng(seed)
    infos = [pair_information(s) for s in supersamples]
    point = _bound_values(infos)
    boot: dict[str, list] = {name: [] for name in point}
    for _ in range(n_boot):
        picks = rng.integers(0, len(supersamples), size=len(supersamples))
        resampled = [pair_information(supersamples[j].resampled(rng.integers(0, supersamples[j].runs,
                                                                             size=supersamples[j].runs)))
                     for j in picks]
        for name, value in _bound_values(resampled).items():
            boot[name].append(value)
    train = float(np.mean([i.train_risk for i in infos]))
    held = float(np.mean([i.held_out_risk for i in infos]))
    out = []
    for name in ECMI_BOUNDS:
        if name not in point:
            continue
        values = np.array(boot[name])
        # basic bootstrap: resampled masks repeat, which biases a plug-in information (down for a pair that
        # reveals its mask, up for one that does not); 2 * point - lower quantile corrects for that bias
        gap_lo, info_lo = np.quantile(values, 1.0 - confidence, axis=0)
        gap, info = point[name]
        out.append(ECMIBound(name=name, gap=gap, gap_upper=float(max(2 * gap - gap_lo, gap)),
                             information=info, information_upper=float(max(2 * info - info_lo, info)),
                             train_risk=train, held_out_risk=held))
    return tuple(out)
