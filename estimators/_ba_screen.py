r"""The float32 screen: an outward-rounded upper bound on Blahut's ``c`` off the support.

At slope ``beta`` the certificate needs ``max c`` over every reproduction
symbol, ``c(xhat) = sum_x w(x) K[x, xhat]`` with ``w = p / (Kq)`` and the
row-rescaled kernel ``K = exp(-beta dt)`` (``dt >= 0``). Off the support an
upper bound serves: a float32 kernel gives one once its rounding is accounted
for outwards (:meth:`Float32Rows.bound`), and since ``K`` decreases in
``beta``, rows computed at an earlier, smaller slope still bound. Rows are
recomputed only where their bound reaches the tolerance.

:class:`Float32Rows` is a value: :meth:`Float32Rows.screen` returns the rows it
recomputed as a new value (the old one is not changed; within one solve the
solver's own copy is updated in place, see :meth:`Float32Rows.at`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

#: Unit roundoff of float32.
U32 = 2.0**-24
#: Largest ``|beta d|`` whose float32 ``exp`` is a normal number (``exp(-87.34) = 2^-126``), rounded up.
F32_NORMAL_ARG = 88.0
#: float32 kernel exponents are raised to this (``exp(-87) = 1.6e-38`` is normal): a larger entry still bounds,
#: and ``exp`` stays off its subnormal path (5 ns an entry on it, against 1).
F32_ARG_MIN = -87.0
#: Relative accuracy assumed of float32 ``exp``, in units of ``2^-23``: measured on [-88, 0] (4M points),
#: numpy 2.4 on AVX2 within 2.15 and torch 2.13 within 0.96; the test suite checks the running build.
F32_EXP_ULPS = 8.0
#: Screening weights ``p/(Kq)`` above this could overflow float32; all columns are then checked in float64.
W32_MAX = 1e30


@dataclass(frozen=True)
class Float32Rows:
    """float32 kernel rows ``k32[j] = exp(-beta32[j] dt[j])`` with ``beta32[j] <= beta`` of their use.

    ``usable`` is false where ``n`` is too large for a float32 sum to bound
    anything (``n u >= 1e-3``); then every column is checked in float64.
    """

    xp: Any
    dt32: Any
    k32: Any
    beta32: Any
    usable: bool
    dt_max: float = math.inf  # an upper bound on dt's entries (the kernel's clamp is left out where it cannot bind)
    owned: bool = False  # k32 and beta32 belong to this value alone: at() may write them in place
    reference: Any = None  # (w, bound on c at w, off the support then; inf on it, beta) of the last full screen

    @classmethod
    def of(cls, xp, dt, beta: float = 0.0) -> Float32Rows:
        """Rows at ``beta`` (computed as :meth:`at` does), or at ``0`` (all ones, which bound the kernel at every
        slope): a curve's first slope starts from its own rows, not from ones it would replace at once."""
        m, n = dt.shape
        dt32 = xp.float32(dt)
        dt_max = float(xp.amax(dt32))
        if beta > 0:
            k32 = _kernel32(xp, dt32, beta, dt_max)
        else:
            k32 = xp.ones32(m, n)
        return cls(xp, dt32, k32, xp.full(m, beta), n * U32 < 1e-3, dt_max, owned=True)

    def at(self, rows, beta: float) -> Float32Rows:
        """The value with ``rows`` recomputed at ``beta``: a copy, unless this one is ``owned`` (a solver's own,
        or one handed over with its arrays, see :meth:`shared`).

        Where ``rows`` are more than half of them, every row is (into new arrays unless owned: no copy of the
        old; a curve hands its slopes' screens over, and the 4 MiB of new pages a slope cost at 1024 x 1024)."""
        xp = self.xp
        if _most(rows, self.k32):
            if self.owned:  # rows and their slopes written together
                _kernel32(xp, self.dt32, beta, self.dt_max, out=self.k32)
                self.beta32[:] = beta
                return self
            k32 = _kernel32(xp, self.dt32, beta, self.dt_max)
            return replace(self, k32=k32, beta32=xp.full(k32.shape[0], beta), owned=True)
        new = self if self.owned else replace(self, k32=self.k32 * 1.0, beta32=self.beta32 * 1.0, owned=True)
        new.k32[rows] = _kernel32(xp, self.dt32[rows], beta, self.dt_max, overwrite=True)  # a copy
        new.beta32[rows] = beta
        return new

    def shared(self) -> Float32Rows:
        """The same rows as a value that no later :meth:`at` of its own writes into, handed back to a caller that
        may use it again (the owner that made it is done with its arrays); a caller that will not (a curve's
        next slope) takes the owned value itself."""
        return replace(self, owned=False) if self.owned else self

    def bound(self, s32, w_sum: float):
        r"""Upper bound on ``c = sum_x w(x) K[x, .]`` from the float32 sums ``s32`` of ``w32 * k32``.

        With ``k32`` a float32 row computed at ``beta' <= beta``: the true
        kernel at ``beta`` is at most the true one at ``beta'``, which is at
        most ``k32 (1 + eps_K) + 2^-126`` (argument rounding ``<= 3u |beta' d|``
        below the underflow point, ``exp`` within ``F32_EXP_ULPS``);
        ``w <= w32 (1 + u) + 2^-149``; and a float32 sum of ``n`` non-negative
        products is at least ``(1 - gamma_n)`` times the exact one.
        """
        n = self.dt32.shape[1]
        eps_k = math.exp(F32_NORMAL_ARG * 3.0001 * U32) * (1.0 + F32_EXP_ULPS * 2.0 * U32) - 1.0
        gamma_n = n * U32 / (1.0 - n * U32) if self.usable else 0.0
        scale = (1.0 + U32) * (1.0 + eps_k) / (1.0 - gamma_n)
        return scale * self.xp.from_float32(s32) + (2.0**-126 * 1.001 * (1.0 + 4.0 * U32) * w_sum + n * 2.0**-148)

    def screen(self, w, inside, beta: float, threshold: float):
        """``(bound, over, rows)``: a bound on every ``c`` (0 inside), the columns where it exceeds ``threshold``.

        Without a float32 product where it can: with ``rho = max_x w(x) / w'(x)``
        against the weights ``w'`` of the last full screen, at a slope
        ``beta' <= beta`` (``K`` falls in ``beta``), ``rho`` times that screen's
        bound is a bound; only the columns it leaves above ``threshold`` are
        summed again, when they are at most a quarter of them (late in a solve,
        most steps; the full product is most of a certificate's time).
        Stale rows over the threshold are recomputed at ``beta`` and the
        bound taken again; ``rows`` is ``self`` or the new value.
        ``over`` is ``None`` where the float32 screen cannot be used (then every
        column outside is to be checked in float64).
        """
        xp = self.xp
        if not self.usable or float(xp.amax(w)) > W32_MAX:
            return None, None, self
        w32, w_sum = xp.float32(w), float(xp.sum(w))
        rows, bound = self, self._scaled_reference(w, inside, beta, threshold)
        if bound is None:
            s32 = xp.sum_rows32(self.k32, w32)
            if not math.isfinite(float(xp.sum(s32))):  # no bound from a NaN: every column in float64
                return None, None, self
            bound = xp.where(inside, 0.0, self.bound(s32, w_sum))
            rows = replace(self, reference=(w, xp.where(inside, math.inf, bound), beta))
        else:
            again = xp.nonzero(bound > threshold)
            if again.shape[0]:
                s32 = xp.sum_rows32(self.k32[again], w32)
                if not math.isfinite(float(xp.sum(s32))):
                    return None, None, self
                bound[again] = self.bound(s32, w_sum)
        over = xp.nonzero(bound > threshold)
        if over.shape[0]:
            stale = over[rows.beta32[over] < beta]
            if stale.shape[0]:
                rows = rows.at(stale, beta)
                # most rows (a new slope): the whole product, not a copy of the rows gathered first
                whole = _most(stale, rows.k32)
                s32 = xp.sum_rows32(rows.k32, w32)[stale] if whole else xp.sum_rows32(rows.k32[stale], w32)
                if not math.isfinite(float(xp.sum(s32))):
                    return None, None, rows
                bound[stale] = rows.bound(s32, w_sum)
                over = over[bound[over] > threshold]
        return bound, over, rows

    def _scaled_reference(self, w, inside, beta: float, threshold: float):
        """``rho`` times the last full screen's bound (0 inside), or ``None`` where that is not usable: no
        full screen yet, one at a larger slope, or more than a quarter of the columns left above ``threshold``."""
        if self.reference is None or self.reference[2] > beta:
            return None
        xp = self.xp
        w_ref, bound_ref, _ = self.reference
        ratio = xp.where(w_ref > 0, w / xp.where(w_ref > 0, w_ref, 1.0), xp.where(w > 0, math.inf, 0.0))
        rho = float(xp.amax(ratio)) * (1.0 + 1e-15)  # each ratio and the product rounded outwards
        bound = xp.where(inside, 0.0, rho * bound_ref)
        if not math.isfinite(rho) or 4 * int(xp.sum(bound > threshold)) > bound.shape[0]:
            return None
        return bound


def _kernel32(xp, dt32, beta: float, dt_max: float, **into):
    """float32 kernel rows of ``dt32`` at ``beta`` as float32 rounds it (the rounding :meth:`Float32Rows.bound`
    accounts for), raised to ``exp(F32_ARG_MIN)``; ``into``: the kernel's ``overwrite`` or ``out``."""
    return xp.kernel(dt32, float(np.float32(beta)), F32_ARG_MIN, dt_max, **into)


def _most(rows, k32) -> bool:
    """Whether ``rows`` are more than half of the screen's: then every row is recomputed, and summed whole."""
    return 2 * rows.shape[0] > k32.shape[0]
