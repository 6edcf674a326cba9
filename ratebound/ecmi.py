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
  x^2(\cosh\lambda - 1)` on :math:`|x| \le 1` and :math:`\ln(1+a) \le a`, pair
  by pair :math:`\mathbb E[(-1)^{U_i}\Delta_i] \le \min_{\lambda_i > 0} \bigl(I_i
  + (\cosh\lambda_i - 1)\, V_i\bigr)/\lambda_i` with :math:`V_i =
  \mathbb E[\Delta_i^2]` (and :math:`\le \sqrt{V_i}`, as
  :math:`\mathbb E|\Delta_i| \le \sqrt{V_i}`): small when the two members'
  losses rarely differ. The minimum is :math:`V_i \sinh\lambda_i^*` at the
  root of :math:`\lambda\sinh\lambda - \cosh\lambda + 1 = I_i/V_i`.
- e-CMI linear (fast rate, after Hellström and Durisi [4]_): for
  :math:`0 < \lambda < \ln 2` and :math:`\mu(\lambda) = -\ln(2 - e^\lambda)`,
  the function :math:`\lambda\Lambda_{1-U} - \mu\Lambda_U` has
  :math:`\mathbb E_{U' \sim \mathrm{Bern}(1/2)} e^{(\cdot)} \le 1` on every
  loss pair in :math:`[0,1]^2` (convex in the pair, checked at the four
  vertices), so pair by pair :math:`\mathbb E[\bar L_i] \le \min_{\lambda_i}
  (\mu(\lambda_i) \mathbb E[\hat L_i] + I_i)/\lambda_i`, the minimum
  :math:`\mathbb E[\hat L_i]\,\mu'(\lambda_i^*)` at the root of
  :math:`\lambda\mu'(\lambda) - \mu(\lambda) = I_i/\mathbb E[\hat L_i]`. At
  zero training loss this is :math:`I_i / \ln 2`, which is exact for a learner
  that memorises.

Both fast-rate bounds are **samplewise** (Hellström and Durisi [4]_): each pair
(and each supersample, as everything is disintegrated on :math:`\tilde Z`) has
its own :math:`\lambda_i`, which is never looser than one :math:`\lambda` for
the averages (the mean of minima is at most the minimum of the mean) and much
tighter when the information sits on few pairs. With one :math:`\lambda` the
same formulas are taken at the averaged :math:`(\bar I, \bar V)` or
:math:`(\mathbb E[\hat L], \bar I)`.

**These are estimates, not certificates**: the informations are plug-in values
over the masks of each supersample (biased upward by about
:math:`(k-1)/(2m)` nats per pair for a quantity with :math:`k` observed values
and :math:`m` masks when it does not depend on the mask; downward only through
values never observed), and the expectations over :math:`\tilde Z` are means
over the supersamples. Each comes with an upper confidence value from a
(percentile) bootstrap over supersamples and over the masks within each.

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

from estimators._validation import positive_int, probability
from estimators.discrete import columnwise_plugin_mi
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


def _in_unit_interval(values: np.ndarray) -> bool:
    """Whether ``values`` is non-empty with every entry finite and in ``[0, 1]``."""
    return values.size > 0 and bool(np.isfinite(values).all()) and values.min() >= 0.0 and values.max() <= 1.0


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
        if not _in_unit_interval(losses):
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
    pair_train_risk : numpy.ndarray
        ``(n,)``: mean over the runs of the training member's loss.
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
    pair_train_risk: np.ndarray
    held_out_risk: float
    quantisation: float

    @property
    def train_risk(self) -> float:
        """Mean over the runs and pairs of the training member's loss."""
        return float(self.pair_train_risk.mean())


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
    ecmi = columnwise_plugin_mi(lam[..., 0] * (scale + 1) + lam[..., 1], u)
    ldcmi = columnwise_plugin_mi(lam[..., 1] - lam[..., 0], u)
    fcmi = None
    if supersample.predictions is not None:
        p = supersample.predictions
        big = int(p.max()) + 1
        fcmi = columnwise_plugin_mi(p[..., 0] * big + p[..., 1], u)
    idx = np.arange(supersample.n)
    rows = np.arange(supersample.runs)[:, None]
    train = supersample.losses[rows, idx, u]
    held = supersample.losses[rows, idx, 1 - u]
    delta = losses[..., 1] - losses[..., 0]
    return PairInformation(
        fcmi=fcmi, ecmi=ecmi, ldcmi=ldcmi, variance=(delta**2).mean(axis=0), pair_train_risk=train.mean(axis=0),
        held_out_risk=float(held.mean()), quantisation=error,
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


def _variance_minimum(info: np.ndarray, var: np.ndarray) -> np.ndarray:
    r""":math:`\min_{\lambda>0} (I + (\cosh\lambda - 1)V)/\lambda`, elementwise, capped at :math:`\sqrt V`.

    The minimiser solves :math:`g(\lambda) = \lambda\sinh\lambda - \cosh\lambda + 1
    = I/V` (where the value is :math:`V\sinh\lambda`); :math:`g` is increasing and
    convex with :math:`g(\lambda) \ge \lambda^2/2` and :math:`g(\lambda) \ge
    (\lambda - 1)e^\lambda/2`, so Newton from the smaller of :math:`\sqrt{2I/V}` and
    :math:`1 + \ln(2I/V)` (both at or right of the root; the second keeps
    :math:`\cosh` finite for any ratio) decreases monotonically onto it. The
    value returned is the objective at the final :math:`\lambda`: an upper bound
    on the minimum whatever the iteration reached.
    """
    out = np.zeros(np.broadcast(info, var).shape)
    live = (info > 0.0) & (var > 0.0)
    i, v = np.broadcast_to(info, out.shape)[live], np.broadcast_to(var, out.shape)[live]
    with np.errstate(over="ignore"):
        r = i / v
    beyond = ~np.isfinite(r)  # V below ~1e-308 I: the cap sqrt(V) is the smaller
    r[beyond] = 1.0
    lam = np.sqrt(2.0 * r)
    big = r > 1.0
    lam[big] = np.minimum(lam[big], 1.0 + np.log(2.0 * r[big]))
    def cosh_m1(x):  # cosh(x) - 1 without cancellation at small x
        return 2.0 * np.sinh(0.5 * x) ** 2

    for _ in range(200):
        step = (lam * np.sinh(lam) - cosh_m1(lam) - r) / (lam * np.cosh(lam))
        lam = lam - step
        if np.all(np.abs(step) <= 1e-14 * lam):
            break
    out[live] = np.where(beyond, np.sqrt(v), np.minimum((i + cosh_m1(lam) * v) / lam, np.sqrt(v)))
    return out


def variance_cmi_bound(ldcmi, variance) -> float:
    r"""The samplewise loss-difference variance bound on the expected gap ([0,1] loss).

    .. math::

        \mathbb E[\bar L - \hat L] \le \frac1n \sum_i \min\Bigl(\min_{\lambda_i > 0}
        \frac{I_i + (\cosh\lambda_i - 1)\,V_i}{\lambda_i},\ \sqrt{V_i}\Bigr),

    :math:`I_i` the entries of ``ldcmi`` (nats) and :math:`V_i` those of
    ``variance`` (:math:`\mathbb E[\Delta_i^2] \in [0, 1]`), one per pair and
    supersample (any shape, the same for both). Pass the means to get the bound
    with one :math:`\lambda` for all pairs (never tighter).

    Examples
    --------
    A pair whose held-out member is wrong with probability p = 0.1 and whose
    training member is always right (I = p ln 2, V = p, true gap p):

    >>> round(variance_cmi_bound([0.1 * np.log(2)], [0.1]), 4)
    0.1235

    The information on one pair of two: each pair has its own lambda.

    >>> round(variance_cmi_bound([0.1 * np.log(2), 0.0], [0.1, 0.1]), 4), round(variance_cmi_bound([0.05 * np.log(2)], [0.1]), 4)
    (0.0618, 0.0854)
    """
    info = _informations(ldcmi, "ldcmi")
    v = np.ravel(np.asarray(variance, dtype=float))
    if v.shape != info.shape or not _in_unit_interval(v):
        raise ValueError(f"variance must hold {info.size} mean squared loss differences in [0, 1] (one per "
                         "entry of ldcmi)")
    return float(min(_variance_minimum(info, v).mean(), 1.0))


def _linear_minimum(risk: np.ndarray, info: np.ndarray) -> np.ndarray:
    r""":math:`\min_{0<\lambda<\ln 2} (\mu(\lambda) t + I)/\lambda`, elementwise, capped at 1.

    The objective is unimodal in :math:`\lambda` (its derivative has the sign of
    :math:`t(\lambda\mu' - \mu) - I`, and :math:`\lambda\mu' - \mu` increases from
    0 to infinity), so a golden-section search on :math:`\ln\lambda` finds it,
    from :math:`10^{-300}` (the minimiser is about :math:`\sqrt{I/t}` when
    :math:`I \ll t`) to the last float below :math:`\ln 2` (about :math:`I/\ln 2`
    when :math:`t \ll I`), with :math:`\mu = -\mathrm{log1p}(-\mathrm{expm1}(\lambda))`
    accurate at both ends. The value returned is the objective at a feasible
    :math:`\lambda`, so it is an upper bound on the minimum in any case.
    """
    t, i = np.broadcast_arrays(np.atleast_1d(np.asarray(risk, dtype=float)),
                               np.atleast_1d(np.asarray(info, dtype=float)))
    out = np.minimum(np.where(t > 0.0, t, i / LN2), 1.0)  # I = 0: the training risk; t = 0: I / ln 2
    live = (t > 0.0) & (i > 0.0)
    tl, il = t[live], i[live]

    def objective(x):
        lam = np.exp(x)
        return (-np.log1p(-np.expm1(lam)) * tl + il) / lam

    lo = np.full(tl.shape, math.log(1e-300))
    hi = np.full(tl.shape, math.log(np.nextafter(LN2, 0.0)))
    golden = (math.sqrt(5.0) - 1.0) / 2.0
    a, b = hi - golden * (hi - lo), lo + golden * (hi - lo)
    fa, fb = objective(a), objective(b)
    for _ in range(100):  # the bracket shrinks to ~1e-18 in ln(lambda): below float resolution
        left = fa <= fb  # the minimum lies in [lo, b]: b becomes a, and a new a is taken; else the mirror
        hi, lo = np.where(left, b, hi), np.where(left, lo, a)
        a_new = np.where(left, hi - golden * (hi - lo), b)
        b_new = np.where(left, a, lo + golden * (hi - lo))
        f_new = objective(np.where(left, a_new, b_new))
        fa, fb = np.where(left, f_new, fb), np.where(left, fa, f_new)
        a, b = a_new, b_new
    out[live] = np.minimum(np.minimum(fa, fb), 1.0)
    return out


def linear_ecmi_bound(train_risk, ecmi) -> float:
    r"""The linear (fast-rate) e-CMI bound on the expected **risk** ([0,1] loss).

    .. math::

        \mathbb E[\bar L] \le \frac1n \sum_i \min_{0 < \lambda_i < \ln 2}
        \frac{\mu(\lambda_i)\,\mathbb E[\hat L_i] + I_i}{\lambda_i},
        \qquad \mu(\lambda) = -\ln(2 - e^{\lambda}),

    samplewise when ``train_risk`` holds the training risk of each pair (the
    shape of ``ecmi``); with one ``train_risk`` for all pairs, one
    :math:`\lambda` at the mean information :math:`\bar I`. Each term capped at 1.

    Examples
    --------
    >>> round(linear_ecmi_bound(0.0, [0.1 * np.log(2)]), 6)   # memorising learner: exact
    0.1
    """
    info = _informations(ecmi, "ecmi")
    if np.ndim(train_risk) == 0:
        return float(_linear_minimum(probability(train_risk, "train_risk"), info.mean()).mean())
    risk = np.ravel(np.asarray(train_risk, dtype=float))
    if risk.shape != info.shape or not _in_unit_interval(risk):
        raise ValueError(f"train_risk must be one risk in [0, 1] or {info.size} per-pair risks in [0, 1] (one "
                         "per entry of ecmi)")
    return float(_linear_minimum(risk, info).mean())


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
    ecmi = np.stack([i.ecmi for i in infos])
    ld = np.stack([i.ldcmi for i in infos])
    var = np.stack([i.variance for i in infos])
    pair_train = np.stack([i.pair_train_risk for i in infos])
    train = float(pair_train.mean())  # the mean of the per-pair risks, so a bound equal to them has gap 0
    out = {
        "ld-cmi": (sqrt_cmi_bound(ld) + q, float(ld.mean())),
        "ld-cmi variance": (variance_cmi_bound(ld, var) + q, float(ld.mean())),
        "e-cmi linear": (linear_ecmi_bound(pair_train, ecmi) - train + q, float(ecmi.mean())),
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
        One-sided level of the upper values (percentile bootstrap: the
        resamples' ``confidence`` quantile, at least the point value; repeated
        masks in a resample raise a plug-in information, so it errs high).
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
        # percentile upper value: the resamples repeat masks, which biases a plug-in information up for a pair
        # whose quantity does not depend on its mask, so it errs on the high side
        gap_hi, info_hi = np.quantile(values, confidence, axis=0)
        gap, info = point[name]
        out.append(ECMIBound(name=name, gap=gap, gap_upper=float(max(gap_hi, gap)),
                             information=info, information_upper=float(max(info_hi, info)),
                             train_risk=train, held_out_risk=held))
    return tuple(out)
