r"""Thread scope of the numerical kernels: BLAS/OpenMP pools and torch's intra-op threads.

The Blahut-Arimoto solvers spend their time in many small matrix products and
element-wise passes. On small and medium problems a second BLAS thread costs
more in synchronisation than it saves, and far more on a shared machine where
the pool's threads wait for a core: on the 2-core benchmark machine, one thread
was faster than two at every size from 64 x 64 to 1024 x 1024 (see
``benchmarks/bench_threads.py``). The public entry points therefore run their
kernels inside a *scope*:

- ``threads=n`` (a keyword of every public Blahut-Arimoto function) limits the
  BLAS and OpenMP pools (through ``threadpoolctl``) and, where torch is
  imported, ``torch.set_num_threads``, to ``n`` for the duration of the call;
- :func:`limit_threads` does the same around a block of calls; the functions
  called inside it use its count unless given ``threads=`` themselves;
- otherwise (``threads=None``) the count follows from the problem's size:
  one thread up to :data:`SINGLE_THREAD_ENTRIES` matrix entries, the caller's
  settings untouched above it.

Inside a call, the Newton solves of the Blahut-Arimoto family (and their
evaluation) run on one thread, all but their float64 Hessian Gram, which runs at
the scope's count (:func:`serial_but_gram`): OpenBLAS splits some of their
matrix-vector sums by thread count, and a curve would otherwise move in its last
bits with ``threads=``. Their results do not depend on the count.

A scope never changes the caller's settings permanently: the previous thread
counts come back when it is left, also when it is left by an exception. Scopes
open at the same time in several Python threads are kept together: each count
found before the first was entered comes back when the last is left. While
several are open the libraries decide whose count holds (OpenMP's count is per
thread, OpenBLAS's is per process or per thread depending on the build); the
most recently entered scope still open is applied again whenever one is left.

This module imports neither torch nor anything of the package; it reaches torch
only through ``sys.modules``, and the kernels call :func:`torch_imported` where
they import it.
"""

from __future__ import annotations

import numbers
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from contextvars import ContextVar

__all__ = [
    "limit_threads", "kernel_threads", "hold_threads", "held_at", "torch_imported", "auto_threads", "SINGLE_THREAD_ENTRIES",
    "serial_but_gram", "gram_threads",
]

#: Problems with at most this many matrix entries run on one thread by default (``threads=None``).
#: Measured on the 2-core benchmark machine: one thread was faster at every size to 1024 x 1024,
#: idle and under load; above it the caller's settings apply.
SINGLE_THREAD_ENTRIES = 2048 * 2048

#: The count of the innermost open :func:`limit_threads` block of this context (thread / task).
_REQUESTED: ContextVar[int | None] = ContextVar("estimators_threads", default=None)

_LOCK = threading.Lock()
#: Counts of the scopes entered and not yet left, in order of entry (over all Python threads).
_OPEN: dict[object, int] = {}
#: The settings found before the first open scope changed them: library key -> thread count.
_SAVED: dict[str, int] = {}
#: (len(sys.modules) when scanned, controllers): the scan of loaded libraries takes ~2 ms, so it is
#: repeated only after new modules (which may load new libraries) were imported.
_CONTROLLERS: tuple[int, list] = (-1, [])


def limit_threads(threads: int):
    """Limit the numerical kernels to ``threads`` threads inside a ``with`` block.

    Limits the BLAS and OpenMP thread pools of the process (through
    ``threadpoolctl``) and, where torch is already imported, torch's intra-op
    threads; every public Blahut-Arimoto and kNN function called inside the
    block uses this count unless given ``threads=`` itself. The previous
    settings come back when the block is left, also by an exception.

    Parameters
    ----------
    threads : int
        Thread count, ``>= 1``.

    Examples
    --------
    >>> import numpy as np
    >>> from estimators import limit_threads, rd_curve
    >>> with limit_threads(1):
    ...     curve = rd_curve([0.5, 0.5], 1 - np.eye(2), [1.0, 2.0])
    >>> curve.rates.shape
    (2,)
    """
    return _limit(_thread_count(threads, "threads"))


@contextmanager
def _limit(threads: int) -> Iterator[None]:
    token = _REQUESTED.set(threads)
    try:
        with _scope(threads):
            yield
    finally:
        _REQUESTED.reset(token)


def auto_threads(entries: int) -> int | None:
    """The default thread count for a problem of ``entries`` matrix entries: 1, or ``None`` (leave the settings)."""
    return 1 if entries <= SINGLE_THREAD_ENTRIES else None


def kernel_threads(threads: int | None, *, entries: int):
    """The scope of one public call: ``threads`` if given, else the enclosing :func:`limit_threads`, else by size.

    ``entries`` is the size of the problem's largest matrix.
    """
    if threads is not None:
        threads = _thread_count(threads, "threads")
    else:
        threads = _REQUESTED.get()
        if threads is None:
            threads = auto_threads(entries)
    return _scope(threads)


def torch_imported() -> None:
    """Say that torch has just been imported: an open scope then holds torch's threads too.

    The kernels import torch where they first use it (``estimators._ba_backend``),
    often inside a scope that began before torch was loaded; from here on its
    count is saved and set like the others'. Costs two lookups when nothing changes.
    """
    if not _OPEN or "torch" in _SAVED:
        return
    with _LOCK:
        if _OPEN and "torch" not in _SAVED:
            _apply(next(reversed(_OPEN.values())))


def held_at(threads: int) -> bool:
    """Whether the scope entered last and still open holds ``threads`` (the count the pools were last set to
    by a scope): another at that count would change nothing."""
    with _LOCK:
        return bool(_OPEN) and next(reversed(_OPEN.values())) == threads


def hold_threads(threads: int | None):
    """The scope itself: the pools (and torch, where imported) at ``threads`` inside it; ``None`` leaves them."""
    return _scope(None if threads is None else _thread_count(threads, "threads"))


#: Inside :func:`serial_but_gram`: the thread count of the scope it was entered from, for :func:`gram_threads`.
_GRAM_THREADS: ContextVar[int | None] = ContextVar("estimators_gram_threads", default=None)


@contextmanager
def serial_but_gram() -> Iterator[None]:
    """One thread for the block, except inside :func:`gram_threads`, which runs at the count the pools were at.

    For the Newton solves of the Blahut-Arimoto family: OpenBLAS splits the sum of a float64
    matrix-vector product by thread count at some shapes (``a @ v`` with ``a`` of 450 to 500 rows by 1024,
    on AVX2 and AVX-512 builds), so a solve's iterates, and a curve's last bits, would depend on ``threads=``;
    its Hessian Gram (``dsyrk``, each entry's sum on one thread) is where more threads pay. Nothing
    changes inside a scope already at one thread (the default up to ``SINGLE_THREAD_ENTRIES``).
    """
    with _LOCK:
        outer = next(reversed(_OPEN.values())) if _OPEN else None
    if outer == 1:
        yield
        return
    if outer is None:  # the caller's settings: the largest count among the pools
        outer = _current_count()
    token = _GRAM_THREADS.set(outer)
    try:
        with _scope(1):
            yield
    finally:
        _GRAM_THREADS.reset(token)


def gram_threads():
    """Inside :func:`serial_but_gram`, the pools back at the count it was entered from; elsewhere, no change."""
    threads = _GRAM_THREADS.get()
    return _scope(threads) if threads is not None and threads > 1 else nullcontext()


def _current_count() -> int:
    """The largest thread count among the pools (and torch's, where imported)."""
    return max((current for _, current, _ in _pools()), default=1)


def _thread_count(threads, name: str) -> int:
    if isinstance(threads, bool) or not isinstance(threads, numbers.Integral) or threads < 1:
        raise ValueError(f"{name} must be a positive integer or None, got {threads!r}")
    return int(threads)


@contextmanager
def _scope(threads: int | None) -> Iterator[None]:
    """Hold the thread counts at ``threads`` (``None``: as they are) until the block is left."""
    if threads is None:
        yield
        return
    token = object()
    with _LOCK:
        _OPEN[token] = threads
        try:
            _apply(threads)
        except BaseException:
            _leave(token)
            raise
    try:
        yield
    finally:
        with _LOCK:
            _leave(token)


def _leave(token: object) -> None:
    """Close the scope ``token``: the counts of the last scope still open, or the saved ones if none is."""
    del _OPEN[token]
    if _OPEN:
        _apply(next(reversed(_OPEN.values())))
    else:
        _restore()


def _controllers() -> list:
    global _CONTROLLERS
    if _CONTROLLERS[0] != len(sys.modules):
        from threadpoolctl import ThreadpoolController

        _CONTROLLERS = (len(sys.modules), ThreadpoolController().lib_controllers)
    return _CONTROLLERS[1]


def _pools() -> list:
    """``(key, thread count, setter)`` of every BLAS/OpenMP pool, and of torch where it is imported."""
    pools = [(lib.filepath, lib.num_threads, lib.set_num_threads) for lib in _controllers()]
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "set_num_threads"):
        pools.append(("torch", torch.get_num_threads(), torch.set_num_threads))
    return pools


def _apply(threads: int) -> None:
    """Set every pool to ``threads``, saving first the count of any not seen since the scopes opened.

    All counts are read before any is set: torch's count is its OpenMP pool's.
    """
    pools = _pools()
    for key, current, _ in pools:
        _SAVED.setdefault(key, current)
    for _, current, set_threads in pools:
        if current != threads:
            set_threads(threads)


def _restore() -> None:
    """Put back the counts saved by :func:`_apply` (the last scope was left)."""
    for lib in _controllers():
        saved = _SAVED.get(lib.filepath)
        if saved is not None and lib.num_threads != saved:
            lib.set_num_threads(saved)
    torch = sys.modules.get("torch")
    saved = _SAVED.get("torch")
    if torch is not None and saved is not None and torch.get_num_threads() != saved:
        torch.set_num_threads(saved)
    _SAVED.clear()
