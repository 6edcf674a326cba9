"""The few array operations the Blahut-Arimoto iterations need, for numpy and torch.

The iterations in :mod:`estimators._ba_solvers` are written once against an
:class:`ArrayOps` object, so ``backend="numpy"`` and ``backend="torch"`` run the
same arithmetic in the same order. Arrays are float64 throughout; the torch
namespace keeps them on ``device`` and converts to numpy only at the boundary.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import special
from scipy.linalg import blas, lapack

from estimators._threads import torch_imported

BACKENDS = ("numpy", "torch")
#: Under the numpy backend, ``exp``, ``log`` and ``xlogy`` of float64 arrays at least this large run
#: on torch's kernels (see :func:`_on_torch`).
TORCH_MIN_SIZE = 4096
#: The float32 Gram of :meth:`ArrayOps.gram` drops entries below this (relative to the largest weight), so
#: that no operand or product is subnormal (``2^-126`` is ``1.2e-38``), ...
GRAM32_ENTRY_MIN = 2e-19
#: ... and is declined unless every diagonal entry exceeds this: then each row loses at most
#: ``sqrt(512) * 2e-19 / 1e-8 = 5e-10`` of its norm (``n = 512``; ``1e-7`` at ``n = 10^7``).
GRAM32_DIAG_MIN = 1e-16


def _import_torch():
    """torch, imported where first used; an open thread scope (:mod:`estimators._threads`) then holds its threads."""
    import torch

    torch_imported()
    return torch


def _on_torch(name: str, *arrays: np.ndarray) -> np.ndarray | None:
    """``torch.<name>(*arrays)`` as numpy, for float64 arrays of at least ``TORCH_MIN_SIZE`` entries, else ``None``.

    numpy evaluates float64 ``exp`` and ``log`` one element at a time unless
    the CPU has AVX-512; torch's kernels (SLEEF, within 1 ulp) are vectorised
    on AVX2 too, 2.5-4x faster on a few hundred thousand entries. Small
    arrays stay with numpy, where torch's per-call overhead would dominate.
    """
    if any(a.dtype != np.float64 for a in arrays) or max(a.size for a in arrays) < TORCH_MIN_SIZE:
        return None
    torch = _import_torch()

    # torch warns on read-only arrays: those are copied
    return getattr(torch, name)(*(torch.from_numpy(np.require(a, requirements=["C", "W"])) for a in arrays)).numpy()


@dataclass(frozen=True)
class ArrayOps:
    """numpy-flavoured operations dispatched to numpy or torch.

    Only what the solvers use is here; every method takes and returns arrays
    of the chosen library (floats where it says so).
    """

    name: str
    device: Any = None

    @property
    def _torch(self):
        return _import_torch()

    # conversion ----------------------------------------------------------
    def asarray(self, x) -> Any:
        """``x`` as a float64 array of this backend."""
        if self.name == "numpy":
            return np.asarray(x, dtype=np.float64)
        return self._torch.as_tensor(np.asarray(x, dtype=np.float64), device=self.device)

    def to_numpy(self, a) -> np.ndarray:
        """A float64 numpy copy of ``a``."""
        if self.name == "numpy":
            return np.array(a, dtype=np.float64)
        return a.detach().cpu().numpy().astype(np.float64)

    def item(self, a) -> float:
        """A 0-d array as a Python float."""
        return float(a)

    # elementwise ---------------------------------------------------------
    def exp(self, a):
        if self.name == "numpy":
            a = np.asarray(a)
            out = _on_torch("exp", a)
            return np.exp(a) if out is None else out
        return self._torch.exp(a)

    def log(self, a):
        """Natural log with ``log 0 = -inf`` and no warning."""
        if self.name == "numpy":
            a = np.asarray(a)
            out = _on_torch("log", a)
            if out is None:
                with np.errstate(divide="ignore"):
                    out = np.log(a)
            return out
        return self._torch.log(a)

    def where(self, cond, a, b):
        if self.name == "numpy":
            return np.where(cond, a, b)
        t = self._torch
        a = a if t.is_tensor(a) else t.tensor(a, dtype=t.float64, device=self.device)
        b = b if t.is_tensor(b) else t.tensor(b, dtype=t.float64, device=self.device)
        return t.where(cond, a, b)

    def xlogy(self, x, y):
        """``x * log(y)`` with ``0 * log(0) = 0``."""
        if self.name == "numpy":
            x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
            out = _on_torch("xlogy", x, y)
            return special.xlogy(x, y) if out is None else out
        return self._torch.xlogy(x, y)

    # reductions ----------------------------------------------------------
    def logsumexp(self, a, axis: int | None = None):
        """``log(sum(exp(a)))`` along ``axis`` (all of ``a`` when ``None``); ``-inf`` rows stay ``-inf``."""
        if self.name == "numpy":
            top = np.max(a, axis=axis, keepdims=True)
            top = np.where(np.isfinite(top), top, 0.0)
            with np.errstate(divide="ignore"):
                out = np.log(np.sum(self.exp(a - top), axis=axis, keepdims=True)) + top
            return out.reshape(()) if axis is None else np.squeeze(out, axis=axis)
        t = self._torch
        return t.logsumexp(a.reshape(-1), 0) if axis is None else t.logsumexp(a, axis)

    def amax(self, a, axis: int | None = None, keepdims: bool = False):
        if self.name == "numpy":
            return np.max(a, axis=axis, keepdims=keepdims)
        t = self._torch
        return t.amax(a) if axis is None else t.amax(a, dim=axis, keepdim=keepdims)

    def amin(self, a):
        """The smallest entry of ``a``."""
        return np.min(a) if self.name == "numpy" else self._torch.amin(a)

    def sum(self, a, axis: int | None = None):
        return np.sum(a, axis=axis) if self.name == "numpy" else (a.sum() if axis is None else a.sum(axis))

    def argsort(self, a):
        """Indices that sort the 1-D ``a`` ascending (an index array of this backend)."""
        return np.argsort(a, kind="stable") if self.name == "numpy" else self._torch.argsort(a, stable=True)

    def argmax(self, a) -> int:
        return int(np.argmax(a)) if self.name == "numpy" else int(self._torch.argmax(a))

    def any(self, a) -> bool:
        return bool(np.any(a)) if self.name == "numpy" else bool(a.any())

    def all(self, a) -> bool:
        return bool(np.all(a)) if self.name == "numpy" else bool(a.all())

    # constructors and linear algebra --------------------------------------
    def full(self, n: int, value: float):
        if self.name == "numpy":
            return np.full(n, value, dtype=np.float64)
        return self._torch.full((n,), value, dtype=self._torch.float64, device=self.device)

    def eye(self, n: int):
        if self.name == "numpy":
            return np.eye(n)
        return self._torch.eye(n, dtype=self._torch.float64, device=self.device)

    def stack(self, arrays, axis: int = 0):
        return np.stack(arrays, axis=axis) if self.name == "numpy" else self._torch.stack(arrays, dim=axis)

    def nonzero(self, mask):
        """Indices where the 1-D boolean ``mask`` holds."""
        return np.flatnonzero(mask) if self.name == "numpy" else self._torch.nonzero(mask).reshape(-1)

    def solve(self, a, b):
        """Solve ``a x = b``; least squares when ``a`` is singular."""
        if self.name == "numpy":
            try:
                return np.linalg.solve(a, b)
            except np.linalg.LinAlgError:
                return np.linalg.lstsq(a, b, rcond=None)[0]
        t = self._torch
        x, info = t.linalg.solve_ex(a, b)
        # a non-finite system gives non-finite x, as numpy's does (LAPACK's lstsq rejects it)
        finite = bool(t.isfinite(a).all()) and bool(t.isfinite(b).all())
        if finite and (int(info) != 0 or not bool(t.isfinite(x).all())):
            x = t.linalg.lstsq(a.cpu(), b.cpu()).solution.to(a.device)
        return x


    # what the support-restricted rate-distortion solver needs (:mod:`estimators._ba_slopes`)
    def float32(self, a):
        """A float32 copy of ``a`` (same backend and device)."""
        return a.astype(np.float32) if self.name == "numpy" else a.to(self._torch.float32)

    def index_array(self, idx: np.ndarray):
        """Integer indices ``idx`` (numpy) as an index array of this backend."""
        return idx if self.name == "numpy" else self._torch.as_tensor(idx, dtype=self._torch.long, device=self.device)

    def index_numpy(self, idx) -> np.ndarray:
        """An index array of this backend as numpy int64."""
        return np.asarray(idx, dtype=np.int64) if self.name == "numpy" else idx.cpu().numpy().astype(np.int64)

    def diagonal(self, h):
        return np.diagonal(h) if self.name == "numpy" else h.diagonal()

    def zeros(self, n: int):
        if self.name == "numpy":
            return np.zeros(n)
        return self._torch.zeros(n, dtype=self._torch.float64, device=self.device)

    def arange(self, n: int):
        return np.arange(n) if self.name == "numpy" else self._torch.arange(n, device=self.device)

    def concat(self, arrays):
        return np.concatenate(arrays) if self.name == "numpy" else self._torch.cat(arrays)

    def mask(self, n: int, idx):
        """A length-``n`` boolean array, true at ``idx``."""
        if self.name == "numpy":
            out = np.zeros(n, dtype=bool)
        else:
            out = self._torch.zeros(n, dtype=self._torch.bool, device=self.device)
        out[idx] = True
        return out

    def sum_rows32(self, k32, w32):
        """``k32 @ w32`` in float32, as a plain sum of products (no reduced-precision matmul mode)."""
        if self.name == "numpy":
            return k32 @ w32
        return (k32 * w32[None, :]).sum(1)

    def gram(self, g, weights, single: bool = False):
        """``(g w) @ (g w).T`` for non-negative ``g`` (s, n) and weights ``w`` (n,); the numpy result may
        hold only its upper triangle (BLAS ``syrk``).

        ``single``: the products in float32, about twice the speed. ``w`` is
        scaled to a largest entry of 1 and entries of ``g w`` below
        ``GRAM32_ENTRY_MIN`` are set to zero (subnormal operands and products
        would slow the multiply several-fold); where that could matter, some
        diagonal entry below ``GRAM32_DIAG_MIN``, float64 is used instead. Each
        row then loses at most ``sqrt(n) GRAM32_ENTRY_MIN / sqrt(GRAM32_DIAG_MIN)``
        of its norm, below float32's own rounding.
        """
        if single:
            top = self.item(self.amax(weights))
            if 0.0 < top < math.inf:
                t = self._torch
                if self.name == "numpy":
                    g32 = np.multiply(g, weights / top, dtype=np.float32)
                    t.nn.functional.threshold_(t.from_numpy(g32), GRAM32_ENTRY_MIN, 0.0)
                else:
                    g32 = (g * (weights / top)[None, :]).to(t.float32)
                    t.nn.functional.threshold_(g32, GRAM32_ENTRY_MIN, 0.0)
                h32 = g32 @ g32.T
                if self.item(self.amin(self.diagonal(h32))) > GRAM32_DIAG_MIN:
                    h = self.asarray(h32) if self.name == "numpy" else h32.to(g.dtype)
                    h *= top * top
                    return h
        gw = g * weights[None, :]
        if self.name == "numpy":
            return blas.dsyrk(1.0, gw.T, trans=1)
        return gw @ gw.T

    def symv(self, h, x):
        """``h @ x`` for a :meth:`gram` result ``h``."""
        return blas.dsymv(1.0, h, x, lower=0) if self.name == "numpy" else h @ x

    def add_to_diagonal_(self, h, value):
        """Add ``value`` (a float, or one per entry) to the diagonal of the square ``h``, in place; returns ``h``."""
        if self.name == "numpy":
            h.flat[:: h.shape[0] + 1] += value
        else:
            h.diagonal().add_(value)
        return h

    def submatrix(self, h, idx):
        """``h[idx][:, idx]`` for sorted ``idx`` (keeps :meth:`gram`'s upper triangle valid)."""
        if self.name == "numpy":
            return h[np.ix_(idx, idx)]
        return h[idx][:, idx]

    def maximum(self, a, value: float):
        """Elementwise ``max(a, value)``."""
        return np.maximum(a, value) if self.name == "numpy" else self._torch.clamp(a, min=value)

    def zeros2(self, rows: int, cols: int):
        if self.name == "numpy":
            return np.zeros((rows, cols))
        return self._torch.zeros((rows, cols), dtype=self._torch.float64, device=self.device)

    def cholesky(self, h):
        """A Cholesky factor of the positive definite :meth:`gram`-like ``h``, or ``None``."""
        if self.name == "numpy":
            fac, info = lapack.dpotrf(h, lower=0, clean=0)
            return fac if info == 0 else None
        fac, info = self._torch.linalg.cholesky_ex(h)
        return fac if int(info) == 0 else None

    def cholesky_apply(self, factor, b):
        """``h^{-1} b`` for ``factor = cholesky(h)``."""
        if self.name == "numpy":
            return lapack.dpotrs(factor, b, lower=0)[0]
        return self._torch.cholesky_solve(b, factor)


def array_ops(backend: str, device=None) -> ArrayOps:
    """Validate ``backend``/``device`` and return the matching :class:`ArrayOps`."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "numpy":
        if device not in (None, "cpu"):
            raise ValueError(f"device must be None or 'cpu' with backend='numpy', got {device!r}")
        return ArrayOps("numpy")
    torch = _import_torch()

    try:
        dev = torch.device("cpu" if device is None else device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device is not a torch device: {device!r} ({exc})") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} requested but CUDA is not available")
    return ArrayOps("torch", dev)
