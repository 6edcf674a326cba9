"""Hypothesis strategies for information-theoretic objects.

Every strategy draws float64 numpy arrays that are valid inputs of the
:mod:`estimators` functions: probability vectors and row-stochastic matrices
sum to one (each row: ``1 - sum`` is a rounding error of the last place),
distortion matrices are finite and non-negative.

To keep closed forms and iterative algorithms free of purely numerical
failures, a drawn weight is either exactly ``0`` or at least ``min_weight``
(``1e-6`` by default) *before* normalisation; nothing like ``1e-300`` ever
appears. Zeros are drawn on purpose (``allow_zero=True``) because ``0 log 0``
and empty supports are where information code usually breaks.

All options are keyword-only. Two-dimensional strategies share one
vocabulary: ``min_rows``/``max_rows``/``min_cols``/``max_cols`` bound the
shape, ``n_rows``/``n_cols`` pin one side (to match a pmf drawn first).

Examples
--------
>>> from hypothesis import given
>>> from estimators.testing import pmfs
>>> @given(pmfs(max_size=4))
... def test_sums_to_one(p):
...     assert abs(p.sum() - 1.0) < 1e-12
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

__all__ = [
    "pmfs",
    "joints",
    "channels",
    "distortion_matrices",
    "cascades",
    "gate_probabilities",
    "posterior_rows",
    "hard_rd_problem",
]

#: Smallest positive weight drawn before normalisation, by default.
MIN_WEIGHT = 1e-6


def _weights(allow_zero: bool, min_weight: float, max_weight: float = 1.0) -> st.SearchStrategy[float]:
    """One non-negative weight: ``0`` (about one draw in four) or in ``[min_weight, max_weight]``."""
    positive = st.floats(min_value=min_weight, max_value=max_weight, allow_nan=False, allow_infinity=False)
    if not allow_zero:
        return positive
    return st.one_of(st.just(0.0), positive, positive, positive)


def _exact_rows(w: np.ndarray) -> np.ndarray:
    """Normalise each row of ``w`` (last axis) and put the rounding error on its largest entry."""
    p = w / w.sum(axis=-1, keepdims=True)
    rows = p.reshape(-1, p.shape[-1])
    top = rows.argmax(axis=1)
    idx = np.arange(rows.shape[0])
    rows[idx, top] += 1.0 - rows.sum(axis=1)
    return rows.reshape(p.shape)


def _size(draw, fixed: int | None, lo: int, hi: int, name: str) -> int:
    if fixed is not None:
        if fixed < 1:
            raise ValueError(f"{name} must be >= 1, got {fixed}")
        return fixed
    if not 1 <= lo <= hi:
        raise ValueError(f"need 1 <= min <= max for {name}, got {lo} and {hi}")
    return draw(st.integers(min_value=lo, max_value=hi))


def _shape(draw, n_rows, n_cols, min_rows, max_rows, min_cols, max_cols) -> tuple[int, int]:
    """``(rows, cols)`` of a two-dimensional strategy: pinned by ``n_rows``/``n_cols`` or drawn, rows first."""
    return (_size(draw, n_rows, min_rows, max_rows, "n_rows"),
            _size(draw, n_cols, min_cols, max_cols, "n_cols"))


def _nonzero_rows(draw, w: np.ndarray) -> np.ndarray:
    """Give every all-zero row of ``w`` one unit weight at a drawn column."""
    for i in np.flatnonzero(w.sum(axis=1) == 0):
        w[i, draw(st.integers(0, w.shape[1] - 1))] = 1.0
    return w


def _weight_matrix(draw, shape, allow_zero: bool, min_weight: float) -> np.ndarray:
    w = draw(hnp.arrays(np.float64, shape, elements=_weights(allow_zero, min_weight)))
    return np.array(w, dtype=np.float64)  # writable copy


@st.composite
def pmfs(
    draw,
    *,
    min_size: int = 2,
    max_size: int = 8,
    size: int | None = None,
    allow_zero: bool = True,
    min_weight: float = MIN_WEIGHT,
) -> np.ndarray:
    """Probability vectors: 1-D float64 arrays, non-negative, summing to one.

    Parameters
    ----------
    min_size, max_size : int
        Bounds on the alphabet size (ignored when ``size`` is given).
    size : int, optional
        A fixed alphabet size.
    allow_zero : bool
        Whether entries may be exactly zero (at least one entry is always positive).
    min_weight : float
        Smallest positive weight before normalisation.
    """
    n = _size(draw, size, min_size, max_size, "size")
    w = _nonzero_rows(draw, _weight_matrix(draw, (1, n), allow_zero, min_weight))
    return _exact_rows(w)[0]


@st.composite
def joints(
    draw,
    *,
    min_rows: int = 2,
    max_rows: int = 6,
    min_cols: int = 2,
    max_cols: int = 6,
    n_rows: int | None = None,
    n_cols: int | None = None,
    allow_zero: bool = True,
    full_support: bool = False,
    min_weight: float = MIN_WEIGHT,
) -> np.ndarray:
    """Joint pmfs ``p[x, y]``: 2-D float64 arrays summing to one.

    Parameters
    ----------
    min_rows, max_rows, min_cols, max_cols : int
        Bounds on ``|X|`` (rows) and ``|Y|`` (columns).
    n_rows, n_cols : int, optional
        Fixed alphabet sizes.
    allow_zero : bool
        Whether entries may be exactly zero.
    full_support : bool
        If true, both marginals ``p(x)`` and ``p(y)`` are strictly positive
        (every row and every column has a positive entry), as conditionals
        ``p(y|x)`` and ``p(x|y)`` need.
    min_weight : float
        Smallest positive weight before normalisation.
    """
    r, c = _shape(draw, n_rows, n_cols, min_rows, max_rows, min_cols, max_cols)
    w = _weight_matrix(draw, (r, c), allow_zero, min_weight)
    if full_support:
        w = _nonzero_rows(draw, w)
        w = _nonzero_rows(draw, w.T).T.copy()
    elif w.sum() == 0:
        w[draw(st.integers(0, r - 1)), draw(st.integers(0, c - 1))] = 1.0
    return _exact_rows(w.reshape(1, -1)).reshape(r, c)


@st.composite
def channels(
    draw,
    *,
    min_rows: int = 2,
    max_rows: int = 6,
    min_cols: int = 2,
    max_cols: int = 6,
    n_rows: int | None = None,
    n_cols: int | None = None,
    allow_zero: bool = True,
    min_weight: float = MIN_WEIGHT,
) -> np.ndarray:
    """Channels ``W[x, y] = p(y|x)``: row-stochastic 2-D float64 arrays.

    Rows are inputs ``x``, columns outputs ``y``; each row sums to one.
    Options as in :func:`joints`.
    """
    r, c = _shape(draw, n_rows, n_cols, min_rows, max_rows, min_cols, max_cols)
    w = _nonzero_rows(draw, _weight_matrix(draw, (r, c), allow_zero, min_weight))
    return _exact_rows(w)


@st.composite
def distortion_matrices(
    draw,
    *,
    min_rows: int = 2,
    max_rows: int = 6,
    min_cols: int = 2,
    max_cols: int = 6,
    n_rows: int | None = None,
    n_cols: int | None = None,
    max_value: float = 10.0,
    zero_in_each_row: bool = False,
    allow_zero: bool = True,
) -> np.ndarray:
    """Distortion matrices ``d[x, xhat]``: finite, non-negative, any shape.

    Non-square shapes are drawn as often as square ones: the reproduction
    alphabet may be larger or smaller than the source's.

    Parameters
    ----------
    min_rows, max_rows, min_cols, max_cols, n_rows, n_cols : int
        Shape options as in :func:`joints` (rows are ``x``, columns ``xhat``).
    max_value : float
        Largest entry; positive entries lie in ``[1e-3, max_value]``.
    zero_in_each_row : bool
        If true, every row has a zero at a drawn column, so that
        ``D_min = E[min_xhat d(X, xhat)] = 0``.
    allow_zero : bool
        Whether other entries may be exactly zero.
    """
    if not max_value >= 1e-3:
        raise ValueError(f"max_value must be >= 1e-3, got {max_value}")
    r, c = _shape(draw, n_rows, n_cols, min_rows, max_rows, min_cols, max_cols)
    elements = _weights(allow_zero, 1e-3, max_value)
    d = np.array(draw(hnp.arrays(np.float64, (r, c), elements=elements)), dtype=np.float64)
    if zero_in_each_row:
        cols = draw(st.lists(st.integers(0, c - 1), min_size=r, max_size=r))
        d[np.arange(r), cols] = 0.0
    return d


@st.composite
def cascades(
    draw,
    *,
    min_size: int = 2,
    max_size: int = 5,
    allow_zero: bool = True,
    min_weight: float = MIN_WEIGHT,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Markov chains ``X -> Y -> Z`` as ``(p_x, channel1, channel2)``.

    ``p_x`` has shape ``(|X|,)``, ``channel1[x, y] = p(y|x)`` shape
    ``(|X|, |Y|)`` and ``channel2[y, z] = p(z|y)`` shape ``(|Y|, |Z|)``; the
    three alphabet sizes are drawn independently in ``[min_size, max_size]``.
    The joint of ``(X, Z)`` is ``p_x[:, None] * (channel1 @ channel2)``, and
    data processing says ``I(X;Z) <= I(X;Y)``.
    """
    opts = {"allow_zero": allow_zero, "min_weight": min_weight}
    nx, ny, nz = (draw(st.integers(min_size, max_size)) for _ in range(3))
    p_x = draw(pmfs(size=nx, **opts))
    w1 = draw(channels(n_rows=nx, n_cols=ny, **opts))
    w2 = draw(channels(n_rows=ny, n_cols=nz, **opts))
    return p_x, w1, w2


def gate_probabilities(
    *,
    min_rows: int = 1,
    max_rows: int = 12,
    min_cols: int = 2,
    max_cols: int = 6,
    n_rows: int | None = None,
    n_cols: int | None = None,
    allow_zero: bool = True,
    min_weight: float = MIN_WEIGHT,
) -> st.SearchStrategy[np.ndarray]:
    """Gate probabilities: ``n x K`` arrays whose row ``i`` is ``p(t | z_i)``.

    Rows are samples ``z_i`` (``n`` of them, drawn in
    ``[min_rows, max_rows]``), columns the ``K`` gate choices; each row sums
    to one. The input of :func:`estimators.gate_rate`.
    """
    return channels(
        min_rows=min_rows,
        max_rows=max_rows,
        min_cols=min_cols,
        max_cols=max_cols,
        n_rows=n_rows,
        n_cols=n_cols,
        allow_zero=allow_zero,
        min_weight=min_weight,
    )


def posterior_rows(
    *,
    min_rows: int = 1,
    max_rows: int = 20,
    min_cols: int = 2,
    max_cols: int = 8,
    n_rows: int | None = None,
    n_cols: int | None = None,
    allow_zero: bool = True,
    min_weight: float = MIN_WEIGHT,
) -> st.SearchStrategy[np.ndarray]:
    """Bank posteriors: ``n x |W|`` arrays whose row ``j`` is ``q(W | S_j)``.

    Rows are training sets ``S_j``, columns the hypotheses of a finite bank;
    each row sums to one. The input of :func:`estimators.bank_mi`.
    """
    return channels(
        min_rows=min_rows,
        max_rows=max_rows,
        min_cols=min_cols,
        max_cols=max_cols,
        n_rows=n_rows,
        n_cols=n_cols,
        allow_zero=allow_zero,
        min_weight=min_weight,
    )


def hard_rd_problem(rng: np.random.Generator, kind: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded source ``p`` and distortion ``d`` (``n x m``, each side 2..39) where BA solvers break.

    Not a Hypothesis strategy: the stress generator of the Blahut-Arimoto tests,
    drawn from ``rng``. ``kind`` (0..4) picks the distortion: uniform, integers
    0..2 (many ties), ``u^4 * 10``, ``|i/n - j/m|`` (a line), squared
    differences scaled up to 100 (``beta d`` runs far past float range). The
    source is Dirichlet(0.05, 0.3 or 1): masses down to ``1e-200`` occur, and
    smaller ones are set to zero, so rows of zero mass occur too.
    """
    n, m = int(rng.integers(2, 40)), int(rng.integers(2, 40))
    if kind == 0:
        d = rng.random((n, m))
    elif kind == 1:
        d = rng.integers(0, 3, (n, m)).astype(float)
    elif kind == 2:
        d = rng.random((n, m)) ** 4 * 10
    elif kind == 3:
        d = np.abs(np.subtract.outer(np.arange(n) / n, np.arange(m) / m))
    else:
        d = np.subtract.outer(rng.random(n), rng.random(m)) ** 2 * rng.uniform(0.1, 100)
    p = rng.dirichlet(np.full(n, rng.choice([0.05, 0.3, 1.0])))
    p = np.where(p < 1e-200, 0.0, p)
    return p / p.sum(), d
