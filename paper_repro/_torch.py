"""A scoped torch thread setting for the experiments (restored on exit)."""

from __future__ import annotations

import contextlib


@contextlib.contextmanager
def torch_threads(n: int | None):
    """Run a block with ``torch.set_num_threads(n)`` and restore the old count after.

    Small models gain nothing from intra-op threads and lose a lot when the
    cores are shared; ``None`` leaves the setting alone.
    """
    import torch

    old = torch.get_num_threads()
    try:
        if n is not None:
            torch.set_num_threads(n)
        yield
    finally:
        torch.set_num_threads(old)
