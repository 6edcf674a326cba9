"""Input validation at the boundary, declared once.

Every public function of :mod:`estimators` (and of the packages built on it)
checks its array arguments with these helpers, so that bad input always raises a
:class:`ValueError` whose message names the argument and says what was wrong.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

#: Default absolute tolerance on ``sum(p) == 1`` for a probability vector.
PMF_ATOL = 1e-6


def log_base(base: float) -> float:
    """Return ``ln(base)``, the divisor that converts nats to units of ``base``.

    ``base=math.e`` gives 1 (nats), ``base=2`` gives ``ln 2`` (bits).
    """
    if isinstance(base, bool) or not isinstance(base, numbers.Real):
        raise ValueError(f"base must be a real number > 0 and != 1, got {base!r}")
    base = float(base)
    if not math.isfinite(base) or base <= 0 or base == 1:
        raise ValueError(f"base must be a finite number > 0 and != 1, got {base!r}")
    return math.log(base)


def as_float_array(x, name: str, *, ndim: int | tuple[int, ...] | None = None) -> np.ndarray:
    """``x`` as a finite float64 array, with ``ndim`` checked when given."""
    try:
        arr = np.asarray(x, dtype=np.float64)
    except OverflowError:  # a Python int beyond float64's range
        raise ValueError(f"{name} contains a number beyond the float64 range (about 1.8e308)") from None
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric array-like: {exc}") from None
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else ndim
        if arr.ndim not in allowed:
            want = " or ".join(str(a) for a in allowed)
            raise ValueError(f"{name} must be {want}-dimensional, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite entries")
    return arr


def as_pmf(p, name: str = "p", *, ndim: int | None = None, atol: float = PMF_ATOL) -> np.ndarray:
    """A probability mass function of any shape (or of dimension ``ndim``).

    Entries must be finite and non-negative and sum to one within ``atol``; the
    returned copy is renormalised exactly.
    """
    arr = as_float_array(p, name, ndim=ndim)
    if np.any(arr < 0):
        raise ValueError(f"{name} has negative entries (min {arr.min():.3g})")
    total = float(arr.sum())
    if abs(total - 1.0) > atol:
        raise ValueError(f"{name} must sum to 1 (within {atol:g}), sums to {total:.10g}")
    return arr / total


def as_joint(p_xy, name: str = "p_xy", *, atol: float = PMF_ATOL) -> np.ndarray:
    """A 2-D joint pmf ``p[x, y]``."""
    return as_pmf(p_xy, name, ndim=2, atol=atol)


def as_stochastic_matrix(w, name: str = "channel", *, atol: float = PMF_ATOL) -> np.ndarray:
    """A 2-D row-stochastic matrix (each row a pmf), e.g. ``channel[x, y] = p(y|x)``."""
    arr = as_float_array(w, name, ndim=2)
    if np.any(arr < 0):
        raise ValueError(f"{name} has negative entries (min {arr.min():.3g})")
    sums = arr.sum(axis=1)
    bad = np.flatnonzero(np.abs(sums - 1.0) > atol)
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"{name} rows must each sum to 1 (within {atol:g}); row {i} sums to {sums[i]:.10g}"
        )
    return arr / sums[:, None]


def as_distortion(d, name: str = "distortion", *, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """A finite, non-negative 2-D distortion matrix ``d[x, xhat]``."""
    arr = as_float_array(d, name, ndim=2)
    if np.any(arr < 0):
        raise ValueError(f"{name} must be non-negative (min {arr.min():.3g})")
    if shape is not None and arr.shape[: len(shape)] != tuple(shape):
        raise ValueError(f"{name} must have leading shape {tuple(shape)}, got {arr.shape}")
    return arr


def as_samples(x, name: str = "x", *, min_n: int = 1) -> np.ndarray:
    """Continuous samples as a finite ``(n, d)`` float64 array (1-D input becomes ``(n, 1)``)."""
    arr = as_float_array(x, name, ndim=(1, 2))
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.shape[0] < min_n:
        raise ValueError(f"{name} needs at least {min_n} samples, got {arr.shape[0]}")
    return arr


def as_labels(t, name: str = "t", *, min_n: int = 1) -> np.ndarray:
    """Discrete samples as a 1-D int64 array; floats must be whole numbers."""
    arr = np.asarray(t)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of integer labels, got shape {arr.shape}")
    if arr.shape[0] < min_n:
        raise ValueError(f"{name} needs at least {min_n} samples, got {arr.shape[0]}")
    if arr.dtype.kind in "iub":
        return arr.astype(np.int64)
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} contains NaN or infinite entries")
        if not np.all(arr == np.round(arr)):
            raise ValueError(f"{name} must hold integer labels, found non-integer values")
        return arr.astype(np.int64)
    raise ValueError(f"{name} must hold integer labels, got dtype {arr.dtype}")


def same_length(name_a: str, a: np.ndarray, name_b: str, b: np.ndarray) -> None:
    """Raise unless ``a`` and ``b`` have the same number of samples (first axis)."""
    if a.shape[0] != b.shape[0]:
        raise ValueError(
            f"{name_a} and {name_b} must have the same number of samples, "
            f"got {a.shape[0]} and {b.shape[0]}"
        )


def positive_int(value, name: str, *, minimum: int = 1) -> int:
    """An integer at least ``minimum`` (bools rejected)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    return int(value)


def _real(value, name: str, what: str) -> float:
    """``value`` as a float; ``ValueError`` naming ``name`` for non-reals and ints beyond float64."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be {what}, got {value!r}")
    try:
        return float(value)
    except OverflowError:  # a Python int (or Fraction) beyond float64's range
        raise ValueError(f"{name} must be {what}, got a number beyond the float64 range") from None


def positive_float(value, name: str, *, allow_zero: bool = False, maximum: float | None = None) -> float:
    """A finite real number > 0 (or >= 0 with ``allow_zero``), at most ``maximum`` when given."""
    value = _real(value, name, "a real number")
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a finite number {bound}, got {value}")
    if maximum is not None and value > maximum:
        low = "[0" if allow_zero else "(0"
        raise ValueError(f"{name} must lie in {low}, {maximum:.6g}], got {value:.6g}")
    return value


#: The largest learning rate accepted: float32's largest number. Torch keeps the rate
#: in the parameters' precision, and above this it cannot store it (``RuntimeError``).
#: Rates far below it still diverge; the training loops then stop and say so.
MAX_LEARNING_RATE = float(np.finfo(np.float32).max)


def learning_rate(value, name: str = "lr") -> float:
    """An optimiser learning rate: a finite number in ``(0, MAX_LEARNING_RATE]``."""
    return positive_float(value, name, maximum=MAX_LEARNING_RATE)


def drop_constant_columns(arr: np.ndarray, name: str) -> tuple[np.ndarray, tuple[str, ...]]:
    """The ``(n, d)`` samples ``arr`` without their constant columns, and a note naming those.

    A constant coordinate carries no information: ``I((X_1, c); Y) = I(X_1; Y)``
    exactly, and ``I(c; Y) = 0``. kNN distances and neural critics, on the other
    hand, need spread in every coordinate (a constant column would be reported as
    "constant" or turned into rounding noise), so the estimators drop such columns
    and say so; with none left the mutual information is exactly 0.
    """
    constant = np.ptp(arr, axis=0) == 0
    if not constant.any():
        return arr, ()
    if constant.all():
        note = f"{name} is constant: its mutual information with anything is exactly 0"
    else:
        note = f"{name} columns {np.flatnonzero(constant).tolist()} are constant (no information) and were dropped"
    return arr[:, ~constant], (note,)


def unit_scaled_columns(arr: np.ndarray) -> np.ndarray:
    """Each column of ``arr`` divided by the power of two just above its largest magnitude.

    Dividing by a power of two is exact (short of the subnormal range), so
    ``x * s`` and ``x`` give the same result up to the rounding already in ``x * s``,
    for any scale ``s`` in float64's range; afterwards every entry lies in
    ``[-1, 1]``, where means, variances and differences cannot overflow. Columns of
    zeros are left as they are.
    """
    largest = np.max(np.abs(arr), axis=0)
    exponent = np.frexp(largest)[1]  # largest = m * 2**e with 0.5 <= m < 1 (e = 0 for 0)
    return np.ldexp(arr, -exponent[None, :])


def probability(value, name: str, *, open_interval: bool = False) -> float:
    """A real number in ``[0, 1]`` (or ``(0, 1)`` with ``open_interval``)."""
    value = _real(value, name, "a real number in [0, 1]")
    ok = 0 < value < 1 if open_interval else 0 <= value <= 1
    if not ok:
        interval = "(0, 1)" if open_interval else "[0, 1]"
        raise ValueError(f"{name} must lie in {interval}, got {value}")
    return value
