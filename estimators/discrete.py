r"""Discrete information measures: closed forms, plug-in estimates, gate and bank rates.

Every quantity is in nats unless ``base=`` says otherwise (``base=2`` gives
bits). Probability arguments are validated by :mod:`estimators._validation`: an
array with NaN or infinite entries, negative entries, the wrong number of
dimensions, or a total farther than ``PMF_ATOL = 1e-6`` from one raises a
:class:`ValueError` naming the argument; within the tolerance it is
renormalised exactly.

The convention :math:`0 \log 0 = 0` is applied through
:func:`scipy.special.entr`, :func:`scipy.special.rel_entr` and
:func:`scipy.special.xlogy`, never by adding a small constant.

References
----------
.. [1] T. M. Cover and J. A. Thomas, *Elements of Information Theory*, 2nd ed.,
   Wiley, 2006, ch. 2.
.. [2] G. A. Miller, "Note on the bias of information estimates", in
   *Information Theory in Psychology*, Free Press, 1955, pp. 95-100.
.. [3] B. Efron and C. Stein, "The jackknife estimate of variance", *Ann. Statist.*
   9(3), 1981, 586-596.
.. [4] L. Paninski, "Estimation of entropy and mutual information", *Neural
   Computation* 15(6), 2003, 1191-1253.
.. [5] A. Xu and M. Raginsky, "Information-theoretic analysis of generalization
   capability of learning algorithms", *NeurIPS*, 2017.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
from scipy.special import entr, ndtri, rel_entr, xlogy

from estimators._validation import (
    as_joint,
    as_labels,
    as_pmf,
    as_stochastic_matrix,
    log_base,
    positive_int,
    probability,
)
from estimators.interface import MIEstimate

__all__ = [
    "entropy",
    "mutual_information",
    "kl_divergence",
    "plugin_mi",
    "gate_rate",
    "bank_mi",
    "label_entropy",
    "columnwise_plugin_mi",
    "selection_mi",
]

_CORRECTIONS = ("none", "miller-madow", "jackknife")

#: Largest number of bootstrap weights held in memory at once by :func:`bank_mi`.
_BOOT_BLOCK = 1 << 22


# --------------------------------------------------------------------------- closed forms


def entropy(p, *, base: float = math.e) -> float:
    r"""Shannon entropy of a probability mass function.

    .. math:: H(p) = -\sum_x p(x) \log p(x), \qquad 0 \log 0 = 0.

    Parameters
    ----------
    p : array_like
        A pmf of any shape; a multi-dimensional array is a joint pmf and its
        joint entropy over all axes is returned.
    base : float, default e
        Logarithm base of the unit (nats by default, ``2`` for bits).

    Returns
    -------
    float
        :math:`H(p) \in [0, \log |\mathcal X|]` in units of ``base``.

    Raises
    ------
    ValueError
        If ``p`` is empty, has NaN/infinite or negative entries, or does not
        sum to one within ``1e-6``.

    Examples
    --------
    >>> round(entropy([0.5, 0.5], base=2), 12)
    1.0
    """
    scale = log_base(base)
    pmf = as_pmf(p, "p")
    return float(entr(pmf).sum()) / scale


def mutual_information(p_xy, *, base: float = math.e) -> float:
    r"""Mutual information of a 2-D joint pmf ``p_xy[x, y]``.

    .. math::

        I(X;Y) = \sum_{x,y} p(x,y) \log \frac{p(x,y)}{p(x)\,p(y)}
               = D\bigl(p_{XY} \,\|\, p_X \otimes p_Y\bigr).

    Computed in the ratio form above (not as ``H(X) + H(Y) - H(X,Y)``), which
    keeps near-independent joints accurate; a rounding-level negative result
    is returned as ``0``.

    Parameters
    ----------
    p_xy : array_like, shape (|X|, |Y|)
        Joint pmf; zero rows and columns are allowed.
    base : float, default e
        Logarithm base of the unit.

    Returns
    -------
    float
        :math:`0 \le I(X;Y) \le \min(H(X), H(Y))` in units of ``base``.

    Raises
    ------
    ValueError
        If ``p_xy`` is not a valid 2-D pmf (message names ``p_xy``).

    Examples
    --------
    >>> round(mutual_information([[0.5, 0.0], [0.0, 0.5]], base=2), 12)
    1.0
    """
    scale = log_base(base)
    joint = as_joint(p_xy, "p_xy")
    product = np.outer(joint.sum(axis=1), joint.sum(axis=0))
    return max(float(rel_entr(joint, product).sum()), 0.0) / scale


def kl_divergence(p, q, *, base: float = math.e) -> float:
    r"""Kullback-Leibler divergence :math:`D(p \| q)`.

    .. math:: D(p \| q) = \sum_x p(x) \log \frac{p(x)}{q(x)}.

    Terms with :math:`p(x) = 0` contribute ``0``. If :math:`q(x) = 0` at some
    :math:`x` with :math:`p(x) > 0`, ``p`` is not absolutely continuous with
    respect to ``q`` and the divergence is ``inf``: that is its true value
    (not an error and never NaN).

    Parameters
    ----------
    p, q : array_like
        Pmfs of the same shape (any number of dimensions).
    base : float, default e
        Logarithm base of the unit.

    Returns
    -------
    float
        :math:`D(p \| q) \in [0, \infty]` in units of ``base``.

    Raises
    ------
    ValueError
        If ``p`` or ``q`` is not a valid pmf, or their shapes differ.

    Examples
    --------
    >>> round(kl_divergence([1.0, 0.0], [0.5, 0.5], base=2), 12)
    1.0
    >>> kl_divergence([0.5, 0.5], [1.0, 0.0])
    inf
    """
    scale = log_base(base)
    p_arr = as_pmf(p, "p")
    q_arr = as_pmf(q, "q")
    if p_arr.shape != q_arr.shape:
        raise ValueError(f"q must have the same shape as p, got {q_arr.shape} and {p_arr.shape}")
    value = float(rel_entr(p_arr, q_arr).sum())
    return max(value, 0.0) / scale


def _mixture_rate(rows: np.ndarray) -> np.ndarray:
    r"""``H(mean_i rows_i) - mean_i H(rows_i)`` over the last two axes, in nats.

    ``rows`` has shape ``(..., n, K)``; weights over the ``n`` rows are uniform.
    """
    return entr(rows.mean(axis=-2)).sum(axis=-1) - entr(rows).sum(axis=-1).mean(axis=-1)


def gate_rate(probs, *, base: float = math.e) -> float:
    r"""Rate :math:`I(Z;T)` of a stochastic gate from its per-sample probabilities.

    Row ``i`` of ``probs`` is the gate's distribution :math:`p(t \mid z_i)` over
    its ``K`` choices for the sample :math:`z_i`; the samples are equally
    likely, :math:`p(z_i) = 1/n`. Then

    .. math::

        I(Z;T) = H\Bigl(\frac1n \sum_i p(\cdot \mid z_i)\Bigr)
                 - \frac1n \sum_i H\bigl(p(\cdot \mid z_i)\bigr),

    which equals :func:`mutual_information` of the joint
    :math:`p(z_i, t) = p(t \mid z_i) / n`. This is the :math:`R_g` of the D-INL
    bound (per sample).

    Parameters
    ----------
    probs : array_like, shape (n, K)
        Row-stochastic matrix, each row summing to one within ``1e-6``.
    base : float, default e
        Logarithm base of the unit.

    Returns
    -------
    float
        :math:`0 \le I(Z;T) \le \min(\log K, \log n)` in units of ``base``.

    Raises
    ------
    ValueError
        If ``probs`` is not a 2-D row-stochastic matrix (message names ``probs``).

    Examples
    --------
    >>> round(gate_rate([[1.0, 0.0], [0.0, 1.0]], base=2), 12)
    1.0
    """
    scale = log_base(base)
    rows = as_stochastic_matrix(probs, "probs")
    return max(float(_mixture_rate(rows)), 0.0) / scale


# --------------------------------------------------------------------------- plug-in MI


def _symbols(x, name: str) -> np.ndarray:
    """Integer samples as dense codes ``0..k-1``; a 2-D array's rows are joint symbols."""
    arr = np.asarray(x)
    if arr.ndim not in (1, 2):
        raise ValueError(
            f"{name} must be 1-D (labels) or 2-D (rows are joint symbols), got shape {arr.shape}"
        )
    if arr.ndim == 1 or arr.shape[1] == 1:
        return _dense(as_labels(arr, name, min_n=2))
    codes = np.zeros(arr.shape[0], dtype=np.int64)
    for j in range(arr.shape[1]):  # mixed radix, re-densified so that codes stay below n
        column = _dense(as_labels(arr[:, j], name, min_n=2))
        codes = _dense(codes * (int(column.max()) + 1) + column)
    return codes


def _dense(labels: np.ndarray) -> np.ndarray:
    """Relabel integers as ``0..k-1`` in sorted order."""
    return np.unique(labels, return_inverse=True)[1].reshape(-1).astype(np.int64)


def _xlogx(c):
    return xlogy(c, c)


class _Counts:
    """Contingency counts of paired codes, kept sparse (one entry per occupied cell)."""

    def __init__(self, cx: np.ndarray, cy: np.ndarray):
        self.n = cx.size
        ky = int(cy.max()) + 1
        cells, self.n_xy = np.unique(cx * ky + cy, return_counts=True)
        self.n_x = np.bincount(cx)
        self.n_y = np.bincount(cy)
        # marginal counts of the x and y symbols of each occupied cell
        self.cell_x = self.n_x[cells // ky]
        self.cell_y = self.n_y[cells % ky]

    def occupied(self) -> tuple[int, int, int]:
        return self.n_x.size, self.n_y.size, self.n_xy.size

    def sums(self) -> tuple[float, float, float]:
        """``sum c log c`` over x, y and joint counts."""
        return tuple(float(_xlogx(c).sum()) for c in (self.n_x, self.n_y, self.n_xy))


def _plugin_from_sums(n, s_x, s_y, s_xy):
    r"""Plug-in MI in nats from the sums :math:`S = \sum c \log c` of the counts.

    .. math:: \hat I = \log n + (S_{xy} - S_x - S_y) / n.
    """
    return np.log(n) + (s_xy - s_x - s_y) / n


def _miller_madow_term(n, m_x, m_y, m_xy):
    r"""Miller-Madow bias term :math:`((m_x - 1) + (m_y - 1) - (m_{xy} - 1)) / (2n)`."""
    return (m_x + m_y - m_xy - 1) / (2.0 * n)


def _leave_one_out(counts: _Counts, *, miller_madow: bool) -> np.ndarray:
    """Leave-one-out estimates, one per occupied cell (every sample in a cell gives the same)."""
    n = counts.n
    s_x, s_y, s_xy = counts.sums()
    c_x, c_y, c_xy = counts.cell_x, counts.cell_y, counts.n_xy
    loo_x = s_x - _xlogx(c_x) + _xlogx(c_x - 1)
    loo_y = s_y - _xlogx(c_y) + _xlogx(c_y - 1)
    loo_xy = s_xy - _xlogx(c_xy) + _xlogx(c_xy - 1)
    values = _plugin_from_sums(n - 1, loo_x, loo_y, loo_xy)
    if miller_madow:
        m_x, m_y, m_xy = counts.occupied()
        values = values + _miller_madow_term(
            n - 1, m_x - (c_x == 1), m_y - (c_y == 1), m_xy - (c_xy == 1)
        )
    return values


def _jackknife_stderr(loo: np.ndarray, weights: np.ndarray) -> float:
    r"""Jackknife standard error from leave-one-out values ``loo`` with multiplicities ``weights``.

    .. math:: \sqrt{\frac{n-1}{n} \sum_i (\theta_{-i} - \bar\theta)^2}
    """
    n = weights.sum()
    mean = float(np.dot(weights, loo)) / n
    return math.sqrt((n - 1) / n * float(np.dot(weights, (loo - mean) ** 2)))


def _z_value(confidence: float) -> float:
    return float(ndtri(0.5 + confidence / 2.0))


def plugin_mi(
    x,
    y,
    *,
    correction: str = "none",
    base: float = math.e,
    confidence: float = 0.95,
) -> MIEstimate:
    r"""Plug-in (empirical) mutual information of paired discrete samples.

    With :math:`n` pairs and empirical joint :math:`\hat p(x, y) = n_{xy}/n`,

    .. math:: \hat I = \sum_{x,y} \hat p(x,y) \log \frac{\hat p(x,y)}{\hat p(x)\hat p(y)},

    biased upward by about :math:`(m_x - 1)(m_y - 1) / (2n)` for :math:`m`
    occupied cells [4]_. ``correction`` chooses:

    ``"none"``
        :math:`\hat I` itself (never negative).
    ``"miller-madow"``
        Each plug-in entropy gets :math:`(m - 1)/(2n)` added, :math:`m` its
        number of occupied cells [2]_:
        :math:`\hat I_{MM} = \hat I + \frac{(m_x - 1) + (m_y - 1) - (m_{xy} - 1)}{2n}`.
    ``"jackknife"``
        :math:`\hat I_{JK} = n \hat I - \frac{n-1}{n} \sum_i \hat I_{-i}`, with
        :math:`\hat I_{-i}` the plug-in value without pair :math:`i` [3]_.

    Corrected values may be negative and are not clipped.

    The standard error is, for every ``correction``, the **jackknife** standard
    error of the returned estimator,
    :math:`\sqrt{\frac{n-1}{n} \sum_i (\hat\theta_{-i} - \bar\theta)^2}`
    (for ``"jackknife"`` the leave-one-out values are the plug-in ones, the
    usual pseudo-value variance). All :math:`n` leave-one-out values are exact
    and cost :math:`O(m_{xy})`, since removing a pair changes three counts.
    The interval is the normal one, ``value +/- z * stderr``.

    Parameters
    ----------
    x, y : array_like of int, shape (n,) or (n, d)
        Paired samples; a 2-D array's rows are joint symbols (e.g. ``(x1, x2)``).
        Floats are accepted when they are whole numbers. At least 2 pairs.
    correction : {"none", "miller-madow", "jackknife"}, default "none"
        Bias correction, see above.
    base : float, default e
        Logarithm base of the unit.
    confidence : float, default 0.95
        Coverage of the normal interval, in ``(0, 1)``.

    Returns
    -------
    MIEstimate
        ``value``, ``stderr``, ``ci_low``, ``ci_high`` in units of ``base``;
        ``method`` is ``"plugin"``, ``"plugin-miller-madow"`` or
        ``"plugin-jackknife"``; ``notes`` describe the interval and warn when
        the joint table is sparse (fewer than 5 pairs per occupied cell).

    Raises
    ------
    ValueError
        Non-integer or non-finite samples, fewer than 2 pairs, unequal lengths,
        an unknown ``correction`` or a ``confidence`` outside ``(0, 1)``.

    Examples
    --------
    >>> x = [0, 0, 1, 1] * 25
    >>> round(plugin_mi(x, x, base=2).value, 12)
    1.0
    """
    scale = log_base(base)
    if correction not in _CORRECTIONS:
        raise ValueError(f"correction must be one of {_CORRECTIONS}, got {correction!r}")
    confidence = probability(confidence, "confidence", open_interval=True)
    cx, cy = _symbols(x, "x"), _symbols(y, "y")
    if cx.size != cy.size:
        raise ValueError(
            f"x and y must have the same number of samples, got {cx.size} and {cy.size}"
        )

    counts = _Counts(cx, cy)
    n = counts.n
    plugin = max(float(_plugin_from_sums(n, *counts.sums())), 0.0)
    loo = _leave_one_out(counts, miller_madow=correction == "miller-madow")
    if correction == "none":
        value = plugin
    elif correction == "miller-madow":
        value = plugin + _miller_madow_term(n, *counts.occupied())
    else:
        value = n * plugin - (n - 1) * float(np.dot(counts.n_xy, loo)) / n
    stderr = _jackknife_stderr(loo, counts.n_xy)
    half = _z_value(confidence) * stderr
    return MIEstimate(
        value=value / scale,
        stderr=stderr / scale,
        ci_low=(value - half) / scale,
        ci_high=(value + half) / scale,
        method="plugin" if correction == "none" else f"plugin-{correction}",
        n=n,
        base=float(base),
        notes=_plugin_notes(counts, confidence, negative=value < 0),
    )


def _plugin_notes(counts: _Counts, confidence: float, *, negative: bool) -> tuple[str, ...]:
    notes = [f"stderr: jackknife; interval: normal, {confidence:.0%} coverage"]
    if negative:
        notes.append("the bias-corrected value is negative (I >= 0); it is not clipped")
    per_cell = counts.n / counts.n_xy.size
    if per_cell < 5:
        notes.append(
            f"sparse joint table: {per_cell:.2g} pairs per occupied cell; "
            "the plug-in value is strongly biased upward"
        )
    return tuple(notes)


# --------------------------------------------------------------------------- finite banks


def _bootstrap_rates(rows: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Closed-form rate of ``n_boot`` resamples (with replacement) of the rows, in nats.

    A resample is represented by its row multiplicities, so memory is
    ``O(block * n)`` and never ``O(n_boot * n * K)``.
    """
    n = rows.shape[0]
    row_entropy = entr(rows).sum(axis=1)
    block = max(1, _BOOT_BLOCK // n)
    out = np.empty(n_boot)
    for start in range(0, n_boot, block):
        b = min(block, n_boot - start)
        picks = rng.integers(0, n, size=(b, n)) + n * np.arange(b)[:, None]
        weights = np.bincount(picks.ravel(), minlength=b * n).reshape(b, n) / n
        out[start : start + b] = entr(weights @ rows).sum(axis=1) - weights @ row_entropy
    return out


def _check_seed(seed) -> int | None:
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be None or an integer >= 0, got {seed!r}")
    return int(seed)


def bank_mi(
    posteriors,
    *,
    base: float = math.e,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int | None = None,
) -> MIEstimate:
    r"""Mutual information :math:`I(S;W)` of a finite-bank selection rule.

    Row ``j`` of ``posteriors`` is the selection rule's distribution
    :math:`q(W \mid S_j)` over the ``|W|`` hypotheses of a finite bank, for
    the ``j``-th of ``n`` training sets drawn i.i.d.; the training sets are
    given equal weight. The closed form is that of :func:`gate_rate`:

    .. math::

        \hat I(S;W) = H\Bigl(\frac1n \sum_j q(\cdot \mid S_j)\Bigr)
                      - \frac1n \sum_j H\bigl(q(\cdot \mid S_j)\bigr),

    the quantity in the Xu-Raginsky bound
    :math:`\sqrt{2\sigma^2 I(S;W)/m}` [5]_.

    The interval is a **basic (reverse-percentile) bootstrap** over the rows:
    with :math:`q_a` the :math:`a`-quantile of ``n_boot`` resampled values,
    :math:`[2\hat I - q_{1-\alpha/2},\, 2\hat I - q_{\alpha/2}]`, clipped to the
    possible range :math:`[0, \log |W|]`. Because :math:`H` is concave,
    :math:`\hat I` is biased downward for the population :math:`I(S;W)` and
    the resamples are biased downward again by about as much; the basic
    interval corrects for this shift, the plain percentile interval would not.
    ``stderr`` is the standard deviation of the resampled values. When the
    bias is large against the spread (few rows, many hypotheses) the interval
    can lie wholly above ``value``; ``notes`` then says so.

    Parameters
    ----------
    posteriors : array_like, shape (n, |W|)
        Row-stochastic matrix, at least 2 rows.
    base : float, default e
        Logarithm base of the unit.
    n_boot : int, default 1000
        Number of bootstrap resamples.
    confidence : float, default 0.95
        Coverage of the interval, in ``(0, 1)``.
    seed : int or None
        Seed of the bootstrap's :class:`numpy.random.Generator`.

    Returns
    -------
    MIEstimate
        ``method="bank-closed-form"``, ``n`` the number of rows.

    Raises
    ------
    ValueError
        If ``posteriors`` is not a row-stochastic matrix with at least 2 rows,
        or ``n_boot``, ``confidence`` or ``seed`` is invalid.

    Examples
    --------
    >>> est = bank_mi([[1.0, 0.0], [0.0, 1.0]] * 10, base=2, seed=0)
    >>> round(est.value, 12)
    1.0
    """
    scale = log_base(base)
    rows = as_stochastic_matrix(posteriors, "posteriors")
    if rows.shape[0] < 2:
        raise ValueError(f"posteriors needs at least 2 rows (training sets), got {rows.shape[0]}")
    n_boot = positive_int(n_boot, "n_boot", minimum=2)
    confidence = probability(confidence, "confidence", open_interval=True)
    rng = np.random.default_rng(_check_seed(seed))

    value = max(float(_mixture_rate(rows)), 0.0)
    boot = _bootstrap_rates(rows, n_boot, rng)
    alpha = 1.0 - confidence
    q_lo, q_hi = np.quantile(boot, [alpha / 2, 1 - alpha / 2])
    upper = math.log(rows.shape[1])
    ci_low = min(max(2 * value - float(q_hi), 0.0), upper)
    ci_high = min(max(2 * value - float(q_lo), 0.0), upper)
    notes = [
        f"interval: basic bootstrap over {rows.shape[0]} rows, {n_boot} resamples, "
        f"{confidence:.0%} coverage; stderr: bootstrap standard deviation"
    ]
    if not ci_low <= value <= ci_high:
        notes.append(
            "the closed-form value lies outside its bootstrap interval: its finite-row bias "
            "is large compared with its spread; more rows (training sets) are needed"
        )
    return MIEstimate(
        value=value / scale,
        stderr=float(boot.std(ddof=1)) / scale,
        ci_low=ci_low / scale,
        ci_high=ci_high / scale,
        method="bank-closed-form",
        n=rows.shape[0],
        base=float(base),
        notes=tuple(notes),
    )


def _row_entropies(counts: np.ndarray, *, miller_madow: bool) -> np.ndarray:
    """Plug-in entropy (nats) of each row of a count matrix, Miller-Madow corrected if asked."""
    counts = np.atleast_2d(counts)
    total = counts.sum(axis=1)
    plug = entr(counts / total[:, None]).sum(axis=1)
    if not miller_madow:
        return plug
    return plug + ((counts > 0).sum(axis=1) - 1) / (2.0 * total)


def label_entropy(labels, *, correction: str = "none", base: float = math.e) -> float:
    r"""Plug-in entropy of the empirical distribution of integer ``labels``.

    ``correction="miller-madow"`` adds :math:`(m - 1)/(2n)` for :math:`m`
    observed values among :math:`n` labels [2]_ (the plug-in value is biased
    downward by about that much).

    Examples
    --------
    >>> label_entropy([0, 1, 2, 3], base=2)
    2.0
    >>> round(label_entropy([0, 1, 2, 3], correction="miller-madow", base=2), 6)   # + 3/8 nats
    2.541011
    """
    scale = log_base(base)
    if correction not in ("none", "miller-madow"):
        raise ValueError(f"correction must be 'none' or 'miller-madow', got {correction!r}")
    counts = np.bincount(_symbols(labels, "labels"))
    return float(_row_entropies(counts, miller_madow=correction == "miller-madow")[0]) / scale


def columnwise_plugin_mi(x, u) -> np.ndarray:
    r"""Plug-in :math:`I(X_j; U_j)` in nats of every column of ``(m, n)`` integer samples.

    ``x`` and ``u`` hold ``m`` paired draws of ``n`` pairs of variables (column
    ``j`` of each); the values are those of :func:`plugin_mi` column by column,
    computed at once (one ``bincount`` per entropy), clipped at 0 below and at
    :math:`\min(H(X_j), H(U_j))` above against rounding.

    Examples
    --------
    >>> u = np.array([[0, 0], [1, 0], [0, 1], [1, 1]])
    >>> np.round(columnwise_plugin_mi(np.column_stack([u[:, 0], [5, 5, 5, 5]]), u) / np.log(2), 12)
    array([1., 0.])
    """
    x, u = np.asarray(x), np.asarray(u)
    if x.ndim != 2 or u.shape != x.shape or x.shape[0] < 2:
        raise ValueError(f"x and u must be (m, n) arrays of the same shape with m >= 2, got {x.shape} and {u.shape}")
    m, n = x.shape
    cx = _dense(as_labels(x.ravel(), "x")).reshape(m, n)
    cu = _dense(as_labels(u.ravel(), "u")).reshape(m, n)
    kx, ku = int(cx.max()) + 1, int(cu.max()) + 1
    column = np.arange(n)[None, :]

    def entropies(codes, k):
        counts = np.bincount((column * k + codes).ravel(), minlength=n * k)
        occupied = np.flatnonzero(counts)
        return np.bincount(occupied // k, weights=entr(counts[occupied] / m), minlength=n)

    h_x, h_u = entropies(cx, kx), entropies(cu, ku)
    return np.clip(h_x + h_u - entropies(cx * ku + cu, kx * ku), 0.0, np.minimum(h_x, h_u))


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
    value = min(float(_row_entropies(counts, miller_madow=True)[0]), cap)
    picks = rng.integers(0, w.size, size=(n_boot, w.size))
    boot_counts = np.stack([np.bincount(codes[row], minlength=counts.size) for row in picks])
    boot = np.minimum(_row_entropies(boot_counts, miller_madow=True), cap)
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
