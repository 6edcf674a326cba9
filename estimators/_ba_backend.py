"""The few array operations the Blahut-Arimoto iterations need, for numpy and torch.

The iterations in :mod:`estimators._ba_solvers` are written once against an
:class:`ArrayOps` object, so ``backend="numpy"`` and ``backend="torch"`` run the
same arithmetic in the same order. Arrays are float64 throughout; the torch
namespace keeps them on ``device`` and converts to numpy only at the boundary.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import special

BACKENDS = ("numpy", "torch")


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
        import torch

        return torch

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
        return np.exp(a) if self.name == "numpy" else self._torch.exp(a)

    def log(self, a):
        """Natural log with ``log 0 = -inf`` and no warning."""
        if self.name == "numpy":
            with np.errstate(divide="ignore"):
                return np.log(a)
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
        return special.xlogy(x, y) if self.name == "numpy" else self._torch.xlogy(x, y)

    # reductions ----------------------------------------------------------
    def logsumexp(self, a, axis: int | None = None):
        """``log(sum(exp(a)))`` along ``axis`` (all of ``a`` when ``None``); ``-inf`` rows stay ``-inf``."""
        if self.name == "numpy":
            top = np.max(a, axis=axis, keepdims=True)
            top = np.where(np.isfinite(top), top, 0.0)
            with np.errstate(divide="ignore"):
                out = np.log(np.sum(np.exp(a - top), axis=axis, keepdims=True)) + top
            return out.reshape(()) if axis is None else np.squeeze(out, axis=axis)
        t = self._torch
        return t.logsumexp(a.reshape(-1), 0) if axis is None else t.logsumexp(a, axis)

    def amax(self, a, axis: int | None = None, keepdims: bool = False):
        if self.name == "numpy":
            return np.max(a, axis=axis, keepdims=keepdims)
        t = self._torch
        return t.amax(a) if axis is None else t.amax(a, dim=axis, keepdim=keepdims)

    def sum(self, a, axis: int | None = None):
        return np.sum(a, axis=axis) if self.name == "numpy" else (a.sum() if axis is None else a.sum(axis))

    def argmax(self, a) -> int:
        return int(np.argmax(a)) if self.name == "numpy" else int(self._torch.argmax(a))

    def any(self, a) -> bool:
        return bool(np.any(a)) if self.name == "numpy" else bool(a.any())

    def any_axis(self, a, axis: int):
        """Logical or of the boolean ``a`` along ``axis``."""
        return np.any(a, axis=axis) if self.name == "numpy" else a.any(dim=axis)

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
        if int(info) != 0 or not bool(t.isfinite(x).all()):
            x = t.linalg.lstsq(a.cpu(), b.cpu()).solution.to(a.device)
        return x


def array_ops(backend: str, device=None) -> ArrayOps:
    """Validate ``backend``/``device`` and return the matching :class:`ArrayOps`."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "numpy":
        if device not in (None, "cpu"):
            raise ValueError(f"device must be None or 'cpu' with backend='numpy', got {device!r}")
        return ArrayOps("numpy")
    import torch

    try:
        dev = torch.device("cpu" if device is None else device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device is not a torch device: {device!r} ({exc})") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} requested but CUDA is not available")
    return ArrayOps("torch", dev)
