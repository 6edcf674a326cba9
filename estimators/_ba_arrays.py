"""The array operations of the Blahut-Arimoto solvers: one class per array library.

The solvers are written once against these methods, so ``backend="numpy"`` and
``backend="torch"`` run the same arithmetic in the same order (after POT's
``ot/backend.py``). Arrays are float64 (float32 only where a method says so);
:class:`TorchBackend` keeps them on its ``device``. :class:`NumpyBackend` never
imports torch. The solvers call these methods on one thread
(:func:`estimators._threads.serial_but_gram`); only the float64 Gram runs at the
call's thread count (:func:`estimators._threads.gram_threads`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import special
from scipy.linalg import blas, lapack

from estimators._threads import gram_threads, torch_imported

BACKENDS = ("numpy", "torch")
#: A Gram's rows, scaled to a largest entry of 1, are raised to at least this, so that no product is subnormal
#: (float64: ``2^-1022`` is ``2.2e-308``) ...
GRAM_ENTRY_MIN = 1e-150
#: ... and to this in the float32 Gram of ``gram(single=True)`` (``2^-126`` is ``1.2e-38``).
GRAM32_ENTRY_MIN = 2e-19
#: Bytes of a Gram's operand prepared at a time, in float64 (half of a 1 MiB L2 cache): 64 rows of 1024, for
#: which a 525 x 1024 float32 Gram took 0.89x-0.92x of its time with 16 rows a block (the numpy calls' own
#: cost, eight a block, counts there).
GRAM_BLOCK_BYTES = 1 << 19


class NumpyBackend:
    """numpy and scipy (BLAS ``syrk``/``symv``, LAPACK Cholesky); Gram results hold their upper triangle."""

    name = "numpy"
    device = None

    def asarray(self, x):
        return np.asarray(x, dtype=np.float64)

    def to_numpy(self, a) -> np.ndarray:
        return np.array(a, dtype=np.float64)

    def index(self, idx):
        return np.asarray(idx, dtype=np.int64)

    def index_numpy(self, idx) -> np.ndarray:
        return np.asarray(idx, dtype=np.int64)

    def float32(self, a):
        return a.astype(np.float32)

    def from_float32(self, a):
        return a.astype(np.float64)

    exp = staticmethod(np.exp)
    where = staticmethod(np.where)
    xlogy = staticmethod(special.xlogy)

    def log(self, a):
        """Natural log with ``log 0 = -inf`` and no warning."""
        with np.errstate(divide="ignore"):
            return np.log(a)

    def logsumexp(self, a, axis: int | None = None):
        """``log(sum(exp(a)))`` along ``axis`` (all of ``a`` when ``None``); ``-inf`` rows stay ``-inf``."""
        top = np.max(a, axis=axis, keepdims=True)
        top = np.where(np.isfinite(top), top, 0.0)
        with np.errstate(divide="ignore"):
            out = np.log(np.sum(np.exp(a - top), axis=axis, keepdims=True)) + top
        return out.reshape(()) if axis is None else np.squeeze(out, axis=axis)

    # the ufuncs' own reductions: np.max and np.sum add a dispatch layer (1-2 us a call, ~1700 calls a curve)
    def amax(self, a, axis: int | None = None, keepdims: bool = False):
        return np.maximum.reduce(a, axis=axis, keepdims=keepdims)

    def all(self, a) -> bool:
        return bool(np.all(a))

    def any(self, a) -> bool:
        return bool(np.any(a))

    def sum(self, a, axis: int | None = None):
        return np.add.reduce(a, axis=axis)

    def maximum(self, a, value: float):
        return np.maximum(a, value)

    def clip(self, a, lo: float, hi: float):
        return np.clip(a, lo, hi)

    def argsort(self, a):
        return np.argsort(a, kind="stable")

    def argmax(self, a) -> int:
        return int(np.argmax(a))

    def full(self, n: int, value: float):
        return np.full(n, value, dtype=np.float64)

    def zeros(self, *shape: int):
        return np.zeros(shape)

    def ones32(self, *shape: int):
        return np.ones(shape, dtype=np.float32)

    def empty(self, *shape: int):
        return np.empty(shape)

    def take_rows(self, a, idx, out=None):
        """``a[idx]``, into ``out`` (not overlapping ``a``) where given.

        ``mode="clip"`` (the solver's indices are in range): with ``out``, numpy's default ``"raise"`` buffers
        the whole result and copies it, 0.33 ms against 0.10 ms for 500 rows of 1024 here."""
        if out is None:
            return np.take(a, idx, axis=0)
        return np.take(a, idx, axis=0, out=out, mode="clip")

    def arange(self, n: int):
        return np.arange(n)

    def concat(self, arrays):
        return np.concatenate(arrays)

    def stack(self, arrays, axis: int = 0):
        return np.stack(arrays, axis=axis)

    def nonzero(self, mask):
        return np.flatnonzero(mask)

    def mask(self, n: int, idx):
        out = np.zeros(n, dtype=bool)
        out[idx] = True
        return out

    def sum_rows32(self, k32, w32):
        """``k32 @ w32`` in float32 (a non-finite sum is the caller's to check: seen flagged invalid once, in a
        full test run only, where every operand was finite)."""
        with np.errstate(invalid="ignore", over="ignore"):
            return k32 @ w32

    def gram(self, g, weights, single: bool = False):
        """``(g w) @ (g w).T`` for non-negative ``g`` (s, n), weights ``w`` (n,); upper triangle only.

        Each row of ``g w`` is scaled to a largest entry of 1 and its entries
        raised by ``GRAM_ENTRY_MIN`` (``GRAM32_ENTRY_MIN`` with ``single``, the
        products then in float32: twice the speed), so that no product is
        subnormal: at beta 1000 a float64 Gram of 494 x 1024 kernel rows took
        17 ms on subnormal products, 5.7 ms here (3.6 ms of it the product).
        Each entry ``h_jk`` moves by at most ``2 n GRAM_ENTRY_MIN sqrt(h_jj h_kk)``
        (and ``n GRAM_ENTRY_MIN^2``; the scaled diagonal is at least 1). An
        addition, not numpy's ``maximum`` against a scalar, which took 4x its time;
        the entries above ``2^24`` times the floor keep their float32 bits.
        The rows are prepared ``GRAM_BLOCK_BYTES`` at a time, each block's
        element-wise passes in cache (525 x 1024 at beta 1000, float32: 3.1 ms
        against 4.3 ms in whole-matrix passes, the same bits). The result is
        Fortran-ordered, as LAPACK and BLAS take it.
        """
        s, n = g.shape
        floor = GRAM32_ENTRY_MIN if single else GRAM_ENTRY_MIN
        gw = np.empty((s, n), dtype=np.float32 if single else np.float64)
        top = np.empty(s)
        step = max(1, GRAM_BLOCK_BYTES // (8 * n))
        block = np.empty((min(s, step), n)) if single else None
        with np.errstate(over="ignore", invalid="ignore"):  # weights beyond float range: the caller declines
            for i in range(0, s, step):
                j = min(s, i + step)
                rows = gw[i:j] if block is None else block[: j - i]
                np.multiply(g[i:j], weights[None, :], out=rows)
                rows, top[i:j] = _rows_scaled(rows, rows.max(axis=1))
                np.add(rows, floor, out=rows)
                if block is not None:
                    gw[i:j] = rows
            # column scaling on the way out, then rows in place: LAPACK and BLAS take Fortran-ordered h uncopied
            if single:
                h = blas.ssyrk(1.0, gw.T, trans=1)
            else:
                with gram_threads():  # the solve's other products on one thread (see serial_but_gram)
                    h = blas.dsyrk(1.0, gw.T, trans=1)
            h = np.multiply(h, top[None, :], dtype=np.float64, order="F")
            h *= top[:, None]
            return h

    def symv(self, h, x):
        """``h @ x`` for a :meth:`gram` result ``h``."""
        return blas.dsymv(1.0, h, x, lower=0)

    def diagonal(self, h):
        return np.diagonal(h)

    def add_to_diagonal_(self, h, value) -> None:
        h.flat[:: h.shape[0] + 1] += value

    def submatrix(self, h, idx):
        """``h[idx][:, idx]`` for sorted ``idx`` (keeps a :meth:`gram` upper triangle valid)."""
        return h[np.ix_(idx, idx)]

    def kernel(self, dt, beta: float, arg_min: float, dt_max: float = math.inf, overwrite: bool = False, out=None):
        """``exp(max(-beta dt, arg_min))`` for kernel rows ``dt``, in ``dt``'s precision (a new array, computed
        in place, or ``dt`` itself with ``overwrite``, or ``out``); ``dt_max`` bounds ``dt`` from above: no
        clamp where it cannot bind (see :func:`clamps`)."""
        k = np.multiply(dt, -beta, out=dt if overwrite else out)
        if clamps(beta, dt_max, arg_min):
            np.maximum(k, arg_min, out=k)
        return np.exp(k, out=k)

    def cholesky(self, h):
        """A Cholesky factor of the :meth:`gram`-like ``h``, or ``None`` where it is not positive definite."""
        fac, info = lapack.dpotrf(h, lower=0, clean=0)
        return fac if info == 0 else None

    def cholesky_apply(self, factor, b):
        return lapack.dpotrs(factor, b, lower=0)[0]

    def cholesky_half_apply(self, factor, b):
        """``w`` with ``w' w = b' H^-1 b`` for the :meth:`cholesky` factor ``U`` of ``H = U' U``: ``U'^-1 b``."""
        return lapack.dtrtrs(factor, b, lower=0, trans=1)[0]

    def cholesky_back_apply(self, factor, v):
        """``U^-1 v``, so that ``H^-1 b = U^-1 w`` for ``w`` of :meth:`cholesky_half_apply`."""
        return lapack.dtrtrs(factor, v, lower=0, trans=0)[0]

    def solve(self, a, b):
        """Solve ``a x = b``; least squares when ``a`` is singular."""
        try:
            return np.linalg.solve(a, b)
        except np.linalg.LinAlgError:
            return np.linalg.lstsq(a, b, rcond=None)[0]


def clamps(beta: float, dt_max: float, arg_min: float) -> bool:
    """Whether ``max(-beta dt, arg_min)`` can differ from ``-beta dt`` for ``0 <= dt <= dt_max``.

    ``False`` leaves out a pass over the kernel's entries (numpy's ``maximum`` against a scalar: 0.39 ms a
    million float32 entries here, ``exp`` 0.47 ms): a 20-slope curve with distortions in ``[0, 1)`` reaches
    ``beta = 87`` (the float32 screen's ``arg_min``) at its 13th slope. The margin covers the rounding of
    ``-beta dt``, so the kernel is the same to the last bit either way.
    """
    return not beta * dt_max < 0.99 * -arg_min


def _rows_scaled(gw, top):
    """``gw`` with each row divided by its largest entry ``top`` (in place; zero rows stay), and ``top``."""
    top = top + (top <= 0)  # a zero row is divided by 1
    gw *= (1.0 / top)[:, None]
    return gw, top


@dataclass(frozen=True)
class TorchBackend:
    """torch in float64 on ``device`` (CPU or CUDA); arrays become numpy only at the boundary."""

    torch: Any
    device: Any
    name = "torch"

    def asarray(self, x):
        return self.torch.as_tensor(np.asarray(x, dtype=np.float64), device=self.device)

    def to_numpy(self, a) -> np.ndarray:
        return a.detach().cpu().numpy().astype(np.float64)

    def index(self, idx):
        return self.torch.as_tensor(np.asarray(idx), dtype=self.torch.long, device=self.device)

    def index_numpy(self, idx) -> np.ndarray:
        return idx.cpu().numpy().astype(np.int64)

    def float32(self, a):
        return a.to(self.torch.float32)

    def from_float32(self, a):
        return a.to(self.torch.float64)

    def exp(self, a):
        return self.torch.exp(a)

    def log(self, a):
        return self.torch.log(a)

    def xlogy(self, x, y):
        return self.torch.xlogy(x, y)

    def where(self, cond, a, b):
        t = self.torch
        a = a if t.is_tensor(a) else t.tensor(a, dtype=t.float64, device=self.device)
        b = b if t.is_tensor(b) else t.tensor(b, dtype=t.float64, device=self.device)
        return t.where(cond, a, b)

    def logsumexp(self, a, axis: int | None = None):
        return self.torch.logsumexp(a.reshape(-1), 0) if axis is None else self.torch.logsumexp(a, axis)

    def amax(self, a, axis: int | None = None, keepdims: bool = False):
        return self.torch.amax(a) if axis is None else self.torch.amax(a, dim=axis, keepdim=keepdims)

    def all(self, a) -> bool:
        return bool(a.all())

    def any(self, a) -> bool:
        return bool(a.any())

    def sum(self, a, axis: int | None = None):
        return a.sum() if axis is None else a.sum(axis)

    def maximum(self, a, value: float):
        return self.torch.clamp(a, min=value)

    def clip(self, a, lo: float, hi: float):
        return self.torch.clamp(a, min=lo, max=hi)

    def argsort(self, a):
        return self.torch.argsort(a, stable=True)

    def argmax(self, a) -> int:
        return int(self.torch.argmax(a))

    def full(self, n: int, value: float):
        return self.torch.full((n,), value, dtype=self.torch.float64, device=self.device)

    def zeros(self, *shape: int):
        return self.torch.zeros(shape, dtype=self.torch.float64, device=self.device)

    def ones32(self, *shape: int):
        return self.torch.ones(shape, dtype=self.torch.float32, device=self.device)

    def empty(self, *shape: int):
        return self.torch.empty(shape, dtype=self.torch.float64, device=self.device)

    def take_rows(self, a, idx, out=None):
        return self.torch.index_select(a, 0, idx, out=out)

    def arange(self, n: int):
        return self.torch.arange(n, device=self.device)

    def concat(self, arrays):
        return self.torch.cat(arrays)

    def stack(self, arrays, axis: int = 0):
        return self.torch.stack(arrays, dim=axis)

    def nonzero(self, mask):
        return self.torch.nonzero(mask).reshape(-1)

    def mask(self, n: int, idx):
        out = self.torch.zeros(n, dtype=self.torch.bool, device=self.device)
        out[idx] = True
        return out

    def sum_rows32(self, k32, w32):
        """``k32 @ w32`` in float32, as a plain sum of products (no reduced-precision matmul mode)."""
        return (k32 * w32[None, :]).sum(1)

    def gram(self, g, weights, single: bool = False):
        """As :meth:`NumpyBackend.gram`, the full matrix."""
        t = self.torch
        gw = g * weights[None, :]
        gw, top = _rows_scaled(gw, gw.amax(1))
        if single:
            gw = gw.add_(GRAM32_ENTRY_MIN).to(t.float32)
            h = gw @ gw.T
        else:
            gw = gw.add_(GRAM_ENTRY_MIN)
            with gram_threads():
                h = gw @ gw.T
        return h.to(t.float64) * (top[:, None] * top[None, :])

    def symv(self, h, x):
        return h @ x

    def diagonal(self, h):
        return h.diagonal()

    def add_to_diagonal_(self, h, value) -> None:
        h.diagonal().add_(value)

    def submatrix(self, h, idx):
        return h[idx][:, idx]

    def kernel(self, dt, beta: float, arg_min: float, dt_max: float = math.inf, overwrite: bool = False, out=None):
        k = dt.mul_(-beta) if overwrite else self.torch.mul(dt, -beta, out=out)
        if clamps(beta, dt_max, arg_min):
            k.clamp_(min=arg_min)
        return k.exp_()

    def cholesky(self, h):
        fac, info = self.torch.linalg.cholesky_ex(h)
        return fac if int(info) == 0 else None

    def cholesky_apply(self, factor, b):
        return self.torch.cholesky_solve(b, factor)

    def cholesky_half_apply(self, factor, b):
        """As :meth:`NumpyBackend.cholesky_half_apply` for the lower factor ``L`` of ``H = L L'``: ``L^-1 b``."""
        return self.torch.linalg.solve_triangular(factor, b, upper=False)

    def cholesky_back_apply(self, factor, v):
        """``L'^-1 v``."""
        return self.torch.linalg.solve_triangular(factor.mT, v, upper=True)

    def solve(self, a, b):
        """Solve ``a x = b``; least squares when ``a`` is singular; a non-finite system gives non-finite ``x``."""
        t = self.torch
        x, info = t.linalg.solve_ex(a, b)
        finite = bool(t.isfinite(a).all()) and bool(t.isfinite(b).all())  # LAPACK's lstsq rejects the others
        if finite and (int(info) != 0 or not bool(t.isfinite(x).all())):
            x = t.linalg.lstsq(a.cpu(), b.cpu()).solution.to(a.device)
        return x


Backend = NumpyBackend | TorchBackend


def get_backend(backend: str, device=None) -> Backend:
    """Validate ``backend``/``device`` and return the backend object; torch is imported only for ``"torch"``."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "numpy":
        if device not in (None, "cpu"):
            raise ValueError(f"device must be None or 'cpu' with backend='numpy', got {device!r}")
        return NumpyBackend()
    import torch

    torch_imported()  # an open thread scope (estimators._threads) now holds torch's threads too
    try:
        dev = torch.device("cpu" if device is None else device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device is not a torch device: {device!r} ({exc})") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} requested but CUDA is not available")
    return TorchBackend(torch, dev)
