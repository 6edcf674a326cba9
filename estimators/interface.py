"""The estimator protocol and the shared result type.

This module imports nothing of the package: everything else depends on it.
An MI estimator is an object with ``estimate(x, y) -> float`` and
``estimate_with_info(x, y) -> MIEstimate``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class MIEstimate:
    """An estimate of a mutual information (or of an entropy).

    Attributes
    ----------
    value : float
        The point estimate in units of ``base`` (nats for ``base=e``). For
        estimators that can go below zero (kNN, plug-in corrections) this is the
        raw value; the float APIs document whether they clip.
    stderr : float
        Standard error of ``value`` (``nan`` only when it is undefined, e.g. a
        single sample; then ``ci_low``/``ci_high`` are ``nan`` too and
        ``notes`` says why).
    ci_low, ci_high : float
        A confidence interval for ``value`` (95% unless ``notes`` says otherwise).
    method : str
        Name of the estimator.
    n : int
        Number of samples (or rows) the estimate used.
    base : float
        Logarithm base of the unit.
    history : tuple[float, ...]
        Training trace for iterative estimators (empty otherwise).
    notes : tuple[str, ...]
        Anything the user must know about this number (divergence, clipping,
        bias warnings).
    """

    value: float
    stderr: float
    ci_low: float
    ci_high: float
    method: str
    n: int
    base: float = math.e
    history: tuple[float, ...] = field(default=(), repr=False)
    notes: tuple[str, ...] = ()

    def __float__(self) -> float:
        return float(self.value)


@runtime_checkable
class MIEstimator(Protocol):
    """Anything that estimates ``I(X;Y)`` from paired samples."""

    def estimate(self, x: np.ndarray, y: np.ndarray) -> float:
        """The point estimate, in the estimator's unit."""
        ...

    def estimate_with_info(self, x: np.ndarray, y: np.ndarray) -> MIEstimate:
        """The estimate with its uncertainty and diagnostics."""
        ...
