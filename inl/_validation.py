"""Argument checks shared by the ``inl`` modules (beside ``estimators._validation``)."""

from __future__ import annotations

import math

__all__ = ["positive_range"]


def positive_range(value, name: str) -> tuple[float, float]:
    """``value`` as a pair ``(low, high)`` of finite numbers with ``0 < low <= high``.

    Raises ``ValueError`` naming ``name`` for anything else (a scalar, a string,
    three numbers, a reversed or non-positive pair).
    """
    try:
        low, high = value
        low, high = float(low), float(high)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair (low, high) of numbers, got {value!r}") from None
    if isinstance(value, (str, bytes)) or not (
        math.isfinite(low) and math.isfinite(high) and 0 < low <= high
    ):
        raise ValueError(f"{name} must satisfy 0 < low <= high < inf, got {value!r}")
    return low, high
