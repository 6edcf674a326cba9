r"""Information-theoretic and PAC-Bayesian generalisation bounds.

Every bound is a plain ``float`` in **units of the loss**; every information
argument (mutual information, conditional mutual information, KL complexity)
is in **nats**. ``sigma`` is the sub-Gaussian parameter of the loss: a loss
with values in :math:`[a, b]` is :math:`(b-a)/2`-sub-Gaussian (Hoeffding's
lemma), so the default ``sigma=0.5`` is that of a loss in :math:`[0, 1]`.

The expectation bounds (:func:`xu_raginsky`, :func:`union_bound`,
:func:`individual_sample`, :func:`cmi_bound`, :func:`fcmi_bound`) bound the
absolute expected generalisation gap
:math:`|\mathbb E[L_\mu(W) - L_S(W)]|`; the high-probability bounds
(:func:`kl_bound`, :func:`occam_bound`) bound the population risk itself, with
probability at least :math:`1 - \delta` over the training set.

Extreme arguments. Sizes ``n`` and bank sizes are Python integers of any size
(``n = 10**400`` gives a finite, correct bound near ``1e-200``); ``sigma`` and
the informations may be any finite float (``sigma = 1e200`` is handled in the
log domain). A bound that exceeds float64's range raises :class:`ValueError`
naming the arguments, as does any argument that is not a finite number.

References
----------
.. [1] A. Xu and M. Raginsky, "Information-theoretic analysis of generalization
   capability of learning algorithms", NeurIPS 2017, Theorem 1.
.. [2] Y. Bu, S. Zou and V. V. Veeravalli, "Tightening mutual information-based
   bounds on generalization error", IEEE JSAIT 1(1), 2020, Proposition 1.
.. [3] T. Steinke and L. Zakynthinou, "Reasoning about generalization via
   conditional mutual information", COLT 2020.
.. [4] F. Hellström and G. Durisi, "A new family of generalization bounds using
   samplewise evaluated CMI", NeurIPS 2022; Z. Wang and Y. Mao, "Tighter
   information-theoretic generalization bounds from supersamples", ICML 2023
   (the loss-difference form :math:`\frac1n\sum_i\sqrt{2 I(\Delta_i; U_i)}`).
   H. Harutyunyan et al., "Information-theoretic generalization bounds for
   black-box learning algorithms", NeurIPS 2021 (the f-CMI form).
.. [5] A. Maurer, "A note on the PAC Bayesian theorem", arXiv:cs/0411099, 2004;
   M. Seeger, "PAC-Bayesian generalisation error bounds for Gaussian process
   classification", JMLR 3, 2002.
.. [6] J. Langford, "Tutorial on practical prediction theory for
   classification", JMLR 6, 2005 (the Occam's-razor bound).
"""

from __future__ import annotations

import math
import sys

import numpy as np

from estimators._validation import as_float_array, positive_float, positive_int, probability

__all__ = [
    "xu_raginsky",
    "union_bound",
    "individual_sample",
    "cmi_bound",
    "fcmi_bound",
    "kl_bernoulli",
    "kl_inverse",
    "kl_bound",
    "occam_bound",
]


def _information(value, name: str) -> float:
    """A finite information quantity >= 0 (nats)."""
    return positive_float(value, name, allow_zero=True)


def _informations(values, name: str) -> np.ndarray:
    """A non-empty 1-D array of finite information quantities >= 0 (nats)."""
    arr = as_float_array(values, name, ndim=1)
    if np.any(arr < 0):
        raise ValueError(f"{name} must be >= 0 (mutual informations), min is {arr.min():.3g}")
    return arr


#: ln of the largest float64: a bound above it cannot be returned.
_LOG_MAX = math.log(sys.float_info.max)


def _per_sample(value: float, n: int) -> float:
    """``value / n`` for any integer ``n >= 1``, however large (``value / 10**400`` overflows)."""
    try:
        return value / n
    except OverflowError:  # n beyond float64's range: the quotient is far below any float's resolution
        return 0.0 if value == 0 else math.exp(math.log(value) - math.log(n))


#: The smallest positive normal float64: below it, products keep only some of their digits.
_NORMAL_MIN = 2.2250738585072014e-308


def _root_bound(sigma: float, information: float, n: int, names: str) -> float:
    r""":math:`\sqrt{2\sigma^2 I / n}`, also where ``sigma**2``, ``I`` or ``n`` leave float64's range.

    The plain formula where it is finite and not underflowed, else the same in the
    log domain, :math:`\exp(\tfrac12\ln 2 + \ln\sigma + \tfrac12(\ln I - \ln n))`,
    which is finite and correct for ``n = 10**400`` (about ``1e-200`` for ``I = 1``)
    and ``sigma = 1e200``. A bound above float64's largest number raises
    ``ValueError`` naming ``names``.
    """
    if information == 0.0:
        return 0.0
    try:
        square = sigma**2
        inner = 2.0 * square * information / n
    except OverflowError:
        square = inner = math.inf
    # the plain formula only where no step left the normal range: a subnormal sigma**2 or
    # product keeps a few significant digits (1.1e-308 nats at sigma 1e-3 was off by 4e-11)
    if _NORMAL_MIN <= min(square, inner) and max(square, inner) < math.inf:
        return math.sqrt(inner)
    log_value = 0.5 * math.log(2.0) + math.log(sigma) + 0.5 * (math.log(information) - math.log(n))
    if log_value > _LOG_MAX:
        raise ValueError(f"the bound sqrt(2 sigma^2 I / n) exceeds float64's range for these {names}")
    return math.exp(log_value)


def xu_raginsky(mi, n, *, sigma=0.5) -> float:
    r"""Xu-Raginsky bound on the expected generalisation gap.

    .. math::

        \bigl|\mathbb E[L_\mu(W) - L_S(W)]\bigr| \le \sqrt{\frac{2\sigma^2 I(S;W)}{n}}

    for a :math:`\sigma`-sub-Gaussian loss and a training set of ``n`` i.i.d.
    samples [1]_.

    Parameters
    ----------
    mi : float
        :math:`I(S;W)` in nats, ``>= 0``.
    n : int
        Training-set size, ``>= 1``.
    sigma : float, default 0.5
        Sub-Gaussian parameter of the loss (``(b - a) / 2`` for a loss in ``[a, b]``).

    Returns
    -------
    float
        The bound, in units of the loss.

    Examples
    --------
    >>> round(xu_raginsky(0.5, 100), 6)
    0.05
    """
    mi = _information(mi, "mi")
    n = positive_int(n, "n")
    sigma = positive_float(sigma, "sigma")
    return _root_bound(sigma, mi, n, "mi, n and sigma")


def union_bound(n_hypotheses, n, *, sigma=0.5) -> float:
    r"""The finite-class bound :math:`\sqrt{2\sigma^2 \ln|\mathcal W| / n}`.

    Xu-Raginsky with :math:`I(S;W) \le H(W) \le \ln |\mathcal W|`, valid for any
    selection rule over a bank of ``n_hypotheses`` hypotheses [1]_.

    Parameters
    ----------
    n_hypotheses : int
        Bank size :math:`|\mathcal W| \ge 1`.
    n : int
        Training-set size, ``>= 1``.
    sigma : float, default 0.5
        Sub-Gaussian parameter of the loss.

    Returns
    -------
    float
        The bound, in units of the loss (0 for a single hypothesis).

    Examples
    --------
    >>> round(union_bound(4, 100), 6)
    0.083255
    """
    k = positive_int(n_hypotheses, "n_hypotheses")
    return xu_raginsky(math.log(k), n, sigma=sigma)


def individual_sample(mis, *, sigma=0.5) -> float:
    r"""Individual-sample bound of Bu, Zou and Veeravalli [2]_.

    .. math::

        \bigl|\mathbb E[L_\mu(W) - L_S(W)]\bigr|
        \le \frac1n \sum_{i=1}^n \sqrt{2\sigma^2 I(W; Z_i)}

    For i.i.d. samples :math:`\sum_i I(W;Z_i) \le I(S;W)`, so by Jensen this is
    never larger than :func:`xu_raginsky` at :math:`I(S;W) = \sum_i I(W;Z_i)`.

    Parameters
    ----------
    mis : array_like, shape (n,)
        :math:`I(W; Z_i)` for each training sample, in nats, ``>= 0``; ``n`` is
        its length.
    sigma : float, default 0.5
        Sub-Gaussian parameter of the loss.

    Returns
    -------
    float
        The bound, in units of the loss.

    Examples
    --------
    >>> round(individual_sample([0.02, 0.02, 0.02, 0.02]), 6)
    0.1
    """
    arr = _informations(mis, "mis")
    sigma = positive_float(sigma, "sigma")
    value = math.sqrt(2.0) * sigma * float(np.mean(np.sqrt(arr)))  # sigma**2 * arr may overflow
    if not math.isfinite(value):
        raise ValueError("the bound exceeds float64's range for these mis and sigma")
    return value


def cmi_bound(cmi, n) -> float:
    r"""Conditional-mutual-information bound of Steinke and Zakynthinou [3]_.

    For a loss with values in :math:`[0, 1]` (rescale a loss in :math:`[a, b]`
    and multiply the bound by :math:`b - a`),

    .. math::

        \bigl|\mathbb E[L_\mu(W) - L_S(W)]\bigr| \le \sqrt{\frac{2\,\mathrm{CMI}}{n}},
        \qquad \mathrm{CMI} = I(W; U \mid \tilde Z),

    where :math:`\tilde Z` is a supersample of :math:`n` pairs and :math:`U \in
    \{0,1\}^n` selects the training member of each pair.

    Parameters
    ----------
    cmi : float
        :math:`I(W; U \mid \tilde Z)` in nats, ``>= 0`` (at most :math:`n \ln 2`).
    n : int
        Training-set size (number of pairs), ``>= 1``.

    Returns
    -------
    float
        The bound, in units of a ``[0, 1]`` loss.

    Examples
    --------
    >>> round(cmi_bound(0.5, 100), 6)
    0.1
    """
    cmi = _information(cmi, "cmi")
    n = positive_int(n, "n")
    return _root_bound(1.0, cmi, n, "cmi and n")


def fcmi_bound(per_sample_cmi) -> float:
    r"""Per-sample (loss-difference / f-CMI) supersample bound [4]_.

    For a loss with values in :math:`[0, 1]`,

    .. math::

        \bigl|\mathbb E[L_\mu(W) - L_S(W)]\bigr|
        \le \frac1n \sum_{i=1}^n \sqrt{2\, I_i},

    with :math:`I_i = I(\Delta_i; U_i)` for the loss difference
    :math:`\Delta_i = \ell(W, \tilde Z_{i,1}) - \ell(W, \tilde Z_{i,0})` of pair
    :math:`i` (Wang and Mao, Thm. 3.1), or :math:`I_i = I(f(W,\tilde Z_i); U_i
    \mid \tilde Z)` for the predictions on the pair (Harutyunyan et al.), or the
    samplewise e-CMI :math:`I(L_i; U_i \mid \tilde Z)` of Hellström and Durisi.
    Every one of these enters the same way: :math:`(-1)^{U_i}\Delta_i` lies in
    :math:`[-1, 1]` and is 1-sub-Gaussian given the loss pair.

    Parameters
    ----------
    per_sample_cmi : array_like, shape (n,)
        :math:`I_i` for each of the ``n`` pairs, in nats, ``>= 0``.

    Returns
    -------
    float
        The bound, in units of a ``[0, 1]`` loss.

    Examples
    --------
    >>> round(fcmi_bound([0.005, 0.005]), 6)
    0.1
    """
    arr = _informations(per_sample_cmi, "per_sample_cmi")
    if arr.max() > math.log(2.0) * (1.0 + 1e-12):
        raise ValueError(f"per_sample_cmi must be <= ln 2 (each is an information with the mask bit U_i), "
                         f"max is {arr.max():.6g}")
    return math.sqrt(2.0) * float(np.mean(np.sqrt(arr)))


def kl_bernoulli(q, p) -> float:
    r"""Binary relative entropy :math:`\mathrm{kl}(q \| p)` in nats.

    .. math::

        \mathrm{kl}(q\|p) = q \ln\frac qp + (1-q)\ln\frac{1-q}{1-p}

    with :math:`0 \ln 0 = 0`; ``inf`` when :math:`p \in \{0, 1\}` and :math:`q \ne p`.
    """
    q = probability(q, "q")
    p = probability(p, "p")
    out = 0.0
    for a, b in ((q, p), (1.0 - q, 1.0 - p)):
        if a > 0:
            if b == 0:
                return math.inf
            out += a * math.log(a / b)
    return max(out, 0.0)


def kl_inverse(q, c) -> float:
    r"""Upper inverse of the binary KL divergence.

    .. math::

        \mathrm{kl}^{-1}(q, c) = \sup\{p \in [q, 1] : \mathrm{kl}(q \| p) \le c\}

    computed by bisection until the bracket cannot shrink in floating point
    (machine precision). ``kl_inverse(0, c) = 1 - e^{-c}`` exactly, since
    :math:`\mathrm{kl}(0\|p) = -\ln(1-p)`.

    Parameters
    ----------
    q : float
        Empirical risk in ``[0, 1]``.
    c : float
        Budget in nats, ``>= 0``.

    Returns
    -------
    float
        The largest ``p`` in ``[q, 1]`` with ``kl(q || p) <= c``.

    Examples
    --------
    >>> kl_inverse(0.0, 1.0) == -math.expm1(-1.0)
    True
    """
    q = probability(q, "q")
    c = _information(c, "c")
    if q == 0.0:
        return -math.expm1(-c)
    if q == 1.0 or c == 0.0:
        return q
    lo, hi = q, 1.0
    while True:
        mid = 0.5 * (lo + hi)
        if mid <= lo or mid >= hi:
            return lo
        if kl_bernoulli(q, mid) <= c:
            lo = mid
        else:
            hi = mid


def _check_delta(delta) -> float:
    return probability(delta, "delta", open_interval=True)


def kl_bound(train_risk, complexity, n, *, delta=0.05) -> float:
    r"""PAC-Bayes-kl bound (Seeger; Maurer's form) on the risk of a posterior.

    For a loss with values in :math:`[0, 1]`, with probability at least
    :math:`1-\delta` over an i.i.d. training set of size :math:`n`,
    simultaneously for every posterior :math:`Q` [5]_,

    .. math::

        \mathrm{kl}\bigl(\hat L_S(Q) \,\|\, L_\mu(Q)\bigr)
        \le \frac{\mathrm{KL}(Q\|P) + \ln(2\sqrt n / \delta)}{n},

    so :math:`L_\mu(Q) \le \mathrm{kl}^{-1}(\hat L_S(Q), \cdot)`. The
    :math:`2\sqrt n` bounds Maurer's :math:`\xi(n) = \mathbb E\, e^{n\,
    \mathrm{kl}(\hat L_S \| L_\mu)}`, proved for :math:`n \ge 8` and true for
    every :math:`n \ge 1` (the small :math:`n` are checked in the tests).

    Parameters
    ----------
    train_risk : float
        Empirical (Gibbs) risk :math:`\hat L_S(Q)` in ``[0, 1]``.
    complexity : float
        :math:`\mathrm{KL}(Q \| P)` in nats, ``>= 0`` (for a finite bank with a
        uniform prior, :math:`\ln|\mathcal W| - H(Q)`).
    n : int
        Training-set size, ``>= 1``.
    delta : float, default 0.05
        Failure probability, in ``(0, 1)``.

    Returns
    -------
    float
        Upper bound on the population risk, in ``[train_risk, 1]``.
    """
    train_risk = probability(train_risk, "train_risk")
    complexity = _information(complexity, "complexity")
    n = positive_int(n, "n")
    delta = _check_delta(delta)
    budget = _per_sample(complexity + math.log(2.0) + 0.5 * math.log(n) - math.log(delta), n)
    return kl_inverse(train_risk, budget)


def occam_bound(train_risk, n_hypotheses, n, *, delta=0.05) -> float:
    r"""Occam's-razor bound for a hypothesis chosen from a finite bank.

    For a loss with values in :math:`[0, 1]`, with probability at least
    :math:`1-\delta`, simultaneously for every :math:`h` in a bank of size
    :math:`K` (uniform prior) [6]_,

    .. math::

        L_\mu(h) \le \mathrm{kl}^{-1}\Bigl(\hat L_S(h),
        \frac{\ln K + \ln(1/\delta)}{n}\Bigr).

    It follows from the Chernoff bound :math:`P(\hat L_S \le q) \le
    e^{-n\,\mathrm{kl}(q\|L_\mu)}` (valid for any :math:`[0,1]` loss, whose
    moment generating function is dominated by a Bernoulli one) and a union
    bound over the bank.

    Parameters
    ----------
    train_risk : float
        Empirical risk of the chosen hypothesis, in ``[0, 1]``.
    n_hypotheses : int
        Bank size ``K >= 1``.
    n : int
        Training-set size, ``>= 1``.
    delta : float, default 0.05
        Failure probability, in ``(0, 1)``.

    Returns
    -------
    float
        Upper bound on the population risk.
    """
    train_risk = probability(train_risk, "train_risk")
    k = positive_int(n_hypotheses, "n_hypotheses")
    n = positive_int(n, "n")
    delta = _check_delta(delta)
    return kl_inverse(train_risk, _per_sample(math.log(k) - math.log(delta), n))

