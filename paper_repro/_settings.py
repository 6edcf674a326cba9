"""Validation of the experiments' ``Settings`` at construction, naming the bad field."""

from __future__ import annotations

from estimators._validation import positive_float, positive_int


def check_fields(settings, *, counts=(), positive=(), non_negative=(), tuples=()) -> None:
    """Raise ``ValueError`` naming the first field of ``settings`` out of its range.

    ``counts``: integers >= 1; ``positive``: finite reals > 0; ``non_negative``:
    finite reals >= 0; ``tuples``: non-empty tuples of finite reals > 0 (an
    ``alpha`` of 0 is allowed, so tuples use ``allow_zero``).
    """
    kind = type(settings).__name__
    for name in counts:
        positive_int(getattr(settings, name), f"{kind}.{name}")
    for name in positive:
        positive_float(getattr(settings, name), f"{kind}.{name}")
    for name in non_negative:
        positive_float(getattr(settings, name), f"{kind}.{name}", allow_zero=True)
    for name in tuples:
        values = getattr(settings, name)
        if len(values) == 0:
            raise ValueError(f"{kind}.{name} must not be empty")
        for i, value in enumerate(values):
            positive_float(value, f"{kind}.{name}[{i}]", allow_zero=True)
