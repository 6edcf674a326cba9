"""Warnings of a computation kept as notes for the tables, not raised mid-run."""

from __future__ import annotations

import contextlib
import warnings


@contextlib.contextmanager
def recorded_warnings():
    """Collect the warnings of a block (e.g. Blahut-Arimoto stopping at ``max_iter``) as strings.

    Yields a list that holds ``"Category: message"`` for each distinct warning
    once the block ends; the tables report them instead of the run stopping.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        messages: list[str] = []
        yield messages
    messages.extend(sorted({f"{w.category.__name__}: {w.message}" for w in caught}))
