r"""The rate-distortion-generalisation bound of D-INL and the selection information.

The D-INL template (arXiv 2605.23424, after arXiv 2602.15091) bounds the
expected population risk of a network whose gates have rate
:math:`R_g = I(Z;T)`:

.. math::

    \mathbb E[R(W)] \le D(R_g) + \delta_m + \sqrt{\frac{2\sigma^2 I(S;W)}{m}},

with :math:`D(R_g)` the distortion-rate function of the gate (the least
expected loss any gate of rate :math:`R_g` can reach), :math:`\delta_m \ge 0`
the optimisation slack (training loss above :math:`D(R_g)`) and the last term
the Xu-Raginsky generalisation gap for :math:`m` training samples. Any other
valid bound on the expected gap can take the last term's place (:func:`rdg_bound`
takes it by name): the e-CMI bounds of supersample runs (:mod:`ratebound.ecmi`)
are the ones that are not vacuous for trained networks.

:math:`D(R_g)` is computed on the training samples: the source uniform over
them, ``d[i, t]`` the loss on sample ``i`` with gate choice ``t`` forced; the
gate's own (rate, loss) point is then achievable, so the training loss is at
least :math:`D(R_g)` and :math:`\delta_m` is non-negative by construction.

:func:`selection_mi` (from :mod:`estimators.discrete`) estimates :math:`I(S;W)`
for a finite bank from the hypotheses that independent training runs selected.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from estimators._validation import positive_float
from estimators.discrete import selection_mi
from ratebound.generalization import xu_raginsky

__all__ = ["RDGBound", "rdg_bound", "selection_mi"]


@dataclass(frozen=True)
class RDGBound:
    r"""The terms of the rate-distortion-generalisation bound, in units of the loss.

    Attributes
    ----------
    total : float
        ``distortion_rate + slack + generalization``, a bound on the expected risk.
    distortion_rate : float
        :math:`D(R_g) \ge 0`.
    slack : float
        :math:`\delta_m`, raw: training loss minus :math:`D(R_g)`. Non-negative
        when :math:`D` is the distortion-rate function of the gate on the
        training samples; a negative value is reported, never floored.
    generalization : float
        The expected-gap term.
    source : str
        Which expected-gap bound ``generalization`` is: ``"xu-raginsky"``
        (:math:`\sqrt{2\sigma^2 I(S;W)/m}`) or the name the caller gave (an
        e-CMI bound of :mod:`ratebound.ecmi`, say).
    """

    total: float
    distortion_rate: float
    slack: float
    generalization: float
    source: str = "xu-raginsky"


def _real(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    out = float(value)
    if not math.isfinite(out):
        raise ValueError(f"{name} must be finite, got {out}")
    return out


def _information_named(value, name: str) -> float:
    out = _real(value, name)
    if out < 0.0:
        raise ValueError(f"{name} must be an information >= 0 (nats), got {out}")
    return out


def rdg_bound(*, distortion_rate, slack, mi_sw=None, n=None, sigma=0.5, generalization=None,
              source=None) -> RDGBound:
    r"""The D-INL bound :math:`D(R_g) + \delta_m + \text{(an expected-gap bound)}`.

    The generalisation term is either the Xu-Raginsky form
    :math:`\sqrt{2\sigma^2 I(S;W)/m}` (give ``mi_sw`` and ``n``) or any valid
    bound on the expected generalisation gap, given as ``generalization`` with
    its name in ``source`` (e.g. an e-CMI bound from supersample runs).

    Parameters
    ----------
    distortion_rate : float
        :math:`D(R_g) \ge 0`, e.g. ``estimators.distortion_rate(p, d, R_g).distortion``.
    slack : float
        :math:`\delta_m`: training loss minus :math:`D(R_g)`, raw (the training
        loss ``distortion_rate + slack`` must be ``>= 0``).
    mi_sw : float, optional
        :math:`I(S;W)` in nats, ``>= 0`` (with ``n``; not with ``generalization``).
    n : int, optional
        Training-set size :math:`m \ge 1` for the Xu-Raginsky term.
    sigma : float, default 0.5
        Sub-Gaussian parameter of the loss (Xu-Raginsky term).
    generalization : float, optional
        A bound on the expected gap, ``>= 0``, in units of the loss.
    source : str, optional
        The name of ``generalization``'s bound (required with it).

    Returns
    -------
    RDGBound

    Examples
    --------
    >>> b = rdg_bound(distortion_rate=0.1, slack=0.02, mi_sw=0.5, n=100)
    >>> round(b.total, 6), b.source
    (0.17, 'xu-raginsky')
    >>> round(rdg_bound(distortion_rate=0.1, slack=0.02, generalization=0.03, source="e-cmi linear").total, 6)
    0.15
    """
    d = _real(distortion_rate, "distortion_rate")
    if d < 0.0:
        raise ValueError(f"distortion_rate must be >= 0 (a distortion-rate function of non-negative losses), got {d}")
    slack = _real(slack, "slack")
    if d + slack < 0.0:
        raise ValueError(f"slack must leave the training loss distortion_rate + slack >= 0, got {d + slack}")
    if generalization is not None:
        if mi_sw is not None:
            raise ValueError("give either mi_sw (with n) or generalization (with source), not both")
        if not isinstance(source, str) or not source:
            raise ValueError(f"source must name the generalization bound, got {source!r}")
        gen = positive_float(generalization, "generalization", allow_zero=True)
    else:
        if mi_sw is None or n is None:
            raise ValueError("give mi_sw and n (the Xu-Raginsky term) or generalization with its source")
        if source not in (None, "xu-raginsky"):
            raise ValueError(f"source {source!r} needs generalization; mi_sw gives 'xu-raginsky'")
        gen, source = xu_raginsky(_information_named(mi_sw, "mi_sw"), n, sigma=sigma), "xu-raginsky"
    return RDGBound(total=d + slack + gen, distortion_rate=d, slack=slack, generalization=gen, source=source)
