"""Seeds derived from one config seed, so that every process draws the same numbers.

A run has one integer ``seed``. Each random stream (the initialisation of node
``v``, the sampling noise of node ``v``, the data order of epoch ``e``, ...) gets
its own seed, a hash of ``(seed, purpose, index)``; a process hosting a single
node can therefore rebuild exactly its node's streams without drawing anyone
else's. Nothing here touches global random state.
"""

from __future__ import annotations

import hashlib

import torch

__all__ = ["derive_seed", "torch_generator"]


def derive_seed(seed: int, *keys) -> int:
    """A 63-bit seed determined by ``seed`` and the ``keys`` (their ``repr``)."""
    text = repr((int(seed),) + tuple(keys)).encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "big") >> 1


def torch_generator(seed: int, *keys) -> torch.Generator:
    """A CPU :class:`torch.Generator` seeded with ``derive_seed(seed, *keys)``."""
    gen = torch.Generator()
    gen.manual_seed(derive_seed(seed, *keys))
    return gen
