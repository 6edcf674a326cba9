"""Testing aids shipped with the package.

Hypothesis strategies for pmfs, joints, channels and distortion matrices
(:mod:`estimators._strategies`), and samplers with known mutual information
(:mod:`estimators._samplers`).
"""

from estimators import _samplers, _strategies

__all__ = [*_strategies.__all__, *_samplers.__all__]
globals().update({name: getattr(_strategies, name) for name in _strategies.__all__})
globals().update({name: getattr(_samplers, name) for name in _samplers.__all__})
