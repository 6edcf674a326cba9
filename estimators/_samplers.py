"""Samplers with known mutual information.

Each *task* is a frozen dataclass describing a joint distribution of a pair
``(X, Y)`` whose mutual information is known in closed form. Every task has

- ``sample(n, seed=None) -> (x, y)``: float64 arrays of shapes ``(n, dim_x)``
  and ``(n, dim_y)``; ``seed`` is an ``int``, a :class:`numpy.random.Generator`
  or ``None`` and is handed to :func:`numpy.random.default_rng` (no global state);
- ``mutual_information``: the true ``I(X;Y)`` in **nats**;
- ``dim_x``, ``dim_y`` and ``name``.

The families follow the benchmark of Czyz et al. [1]_:

- :class:`GaussianTask`: jointly Gaussian ``(X, Y)`` with any covariance,
  built by :func:`dense_gaussian`, :func:`sparse_gaussian` or
  :func:`gaussian_with_mi` (independent pairs sharing a total MI, the
  "staircase" of the benchmarks);
- :class:`StudentTTask`: a multivariate Student-t [2]_;
- :class:`AdditiveUniformTask`: ``Y = X + N`` with uniform ``X`` and ``N``;
- :class:`TransformedTask`: any task seen through invertible maps of ``X`` and
  ``Y`` (:func:`normal_cdf`, :func:`half_cube`, :func:`asinh`,
  :class:`Spiral`), which leave the mutual information unchanged.

:func:`benchmark_tasks` returns a fixed suite of such tasks;
:func:`beyond_normal_tasks` the 40 tasks of Czyz et al.'s benchmark, which also
use :class:`NormalMixtureQuantile` (bimodal margins), :func:`wiggly_x` /
:func:`wiggly_y` and :class:`SwissRollTask`.

References
----------
.. [1] P. Czyz, F. Grabowski, J. E. Vogt, N. Beerenwinkel, A. Marx, "Beyond
   Normal: On the Evaluation of Mutual Information Estimators", NeurIPS 2023.
.. [2] R. B. Arellano-Valle, J. E. Contreras-Reyes, M. G. Genton, "Shannon
   entropy and mutual information for multivariate skew-elliptical
   distributions", Scandinavian Journal of Statistics 40(1), 42-62, 2013.

Examples
--------
>>> from estimators.testing import gaussian_with_mi
>>> task = gaussian_with_mi(2.0, dim=4)
>>> x, y = task.sample(1000, seed=0)
>>> x.shape, y.shape, round(task.mutual_information, 12)
((1000, 4), (1000, 4), 2.0)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
from scipy import special

from estimators._validation import as_float_array, positive_float, positive_int

__all__ = [
    "Task",
    "GaussianTask",
    "StudentTTask",
    "AdditiveUniformTask",
    "TransformedTask",
    "SwissRollTask",
    "Spiral",
    "NormalMixtureQuantile",
    "wiggly_x",
    "wiggly_y",
    "swiss_roll",
    "dense_gaussian",
    "sparse_gaussian",
    "gaussian_with_mi",
    "student_t",
    "normal_cdf",
    "half_cube",
    "asinh",
    "transform_task",
    "gaussian_mi",
    "student_t_mi_correction",
    "benchmark_tasks",
    "beyond_normal_tasks",
]

SeedLike = int | np.random.Generator | None


@runtime_checkable
class Task(Protocol):
    """A joint distribution of ``(X, Y)`` with known mutual information (nats)."""

    name: str

    @property
    def dim_x(self) -> int: ...

    @property
    def dim_y(self) -> int: ...

    @property
    def mutual_information(self) -> float: ...

    def sample(self, n: int, seed: SeedLike = None) -> tuple[np.ndarray, np.ndarray]: ...


# ---------------------------------------------------------------------------
# Closed forms


def gaussian_mi(covariance, dim_x: int) -> float:
    r"""Mutual information (nats) between the blocks of a Gaussian vector.

    For :math:`(X, Y) \sim \mathcal N(\mu, \Sigma)` with :math:`X` the first
    ``dim_x`` coordinates,

    .. math::
        I(X;Y) = \tfrac12\left(\ln\det\Sigma_{XX} + \ln\det\Sigma_{YY}
                 - \ln\det\Sigma\right).

    Parameters
    ----------
    covariance : array_like, shape (d, d)
        Symmetric positive-definite joint covariance.
    dim_x : int
        Number of leading coordinates forming ``X`` (``1 <= dim_x < d``).
    """
    cov = _as_covariance(covariance, "covariance")
    dim_x = _split(dim_x, cov.shape[0])
    logdet = lambda m: np.linalg.slogdet(m)[1]  # noqa: E731 - positive definite checked
    return 0.5 * float(logdet(cov[:dim_x, :dim_x]) + logdet(cov[dim_x:, dim_x:]) - logdet(cov))


def student_t_mi_correction(dof: float, dim_x: int, dim_y: int) -> float:
    r"""The non-Gaussian part (nats) of the MI of a multivariate Student-t.

    For :math:`(X, Y)` multivariate-t with ``dof`` :math:`\nu` degrees of
    freedom and scale matrix :math:`\Sigma`, Arellano-Valle et al. [2]_ give
    :math:`I(X;Y) = I_{\mathcal N}(\Sigma) + c(\nu, d_x, d_y)` with
    :math:`I_{\mathcal N}` the Gaussian formula of :func:`gaussian_mi` and

    .. math::
        c = \ln\Gamma(\tfrac{\nu}{2}) + \ln\Gamma(\tfrac{\nu+d_x+d_y}{2})
            - \ln\Gamma(\tfrac{\nu+d_x}{2}) - \ln\Gamma(\tfrac{\nu+d_y}{2})
            + \tfrac{\nu+d_x}{2}\psi(\tfrac{\nu+d_x}{2})
            + \tfrac{\nu+d_y}{2}\psi(\tfrac{\nu+d_y}{2})
            - \tfrac{\nu}{2}\psi(\tfrac{\nu}{2})
            - \tfrac{\nu+d_x+d_y}{2}\psi(\tfrac{\nu+d_x+d_y}{2}),

    which follows from the entropy of a ``d``-variate t,
    :math:`\tfrac12\ln\det\Sigma + \ln\frac{(\nu\pi)^{d/2}\Gamma(\nu/2)}{\Gamma((\nu+d)/2)}
    + \frac{\nu+d}{2}\left[\psi(\frac{\nu+d}{2}) - \psi(\frac{\nu}{2})\right]`,
    and the fact that its marginals are t with the same :math:`\nu`. The
    correction is positive and tends to 0 as :math:`\nu \to \infty`: even an
    uncorrelated t-pair is dependent through the shared scale.
    """
    nu = positive_float(dof, "dof")
    dim_x = positive_int(dim_x, "dim_x")
    dim_y = positive_int(dim_y, "dim_y")
    half = lambda d: (nu + d) / 2.0  # noqa: E731
    h = lambda d: special.gammaln(half(d)) - half(d) * special.digamma(half(d))  # noqa: E731
    # c = h(0) + h(dx + dy) - h(dx) - h(dy), with h(d) = lnGamma(a) - a psi(a), a = (nu + d) / 2
    return float(h(0) + h(dim_x + dim_y) - h(dim_x) - h(dim_y))


# ---------------------------------------------------------------------------
# Gaussian and Student-t tasks


@dataclass(frozen=True, eq=False)
class GaussianTask:
    r"""Jointly Gaussian ``(X, Y)`` with zero mean and a given joint covariance.

    Parameters
    ----------
    covariance : array_like, shape (dim_x + dim_y, dim_x + dim_y)
        Symmetric positive-definite covariance of the stacked vector ``(X, Y)``.
    dim_x : int
        Number of leading coordinates that form ``X``.
    name : str
        Label used in benchmark tables.

    Notes
    -----
    ``mutual_information`` is :func:`gaussian_mi` of the covariance. Samples
    are ``L z`` with ``L`` the Cholesky factor and ``z`` standard normal.
    """

    covariance: np.ndarray = field(repr=False)
    dim_x: int
    name: str = "gaussian"

    def __post_init__(self):
        _freeze_joint_matrix(self, "covariance")

    @property
    def dim_y(self) -> int:
        """Dimension of ``Y``."""
        return self.covariance.shape[0] - self.dim_x

    @property
    def mutual_information(self) -> float:
        """``I(X;Y)`` in nats (closed form)."""
        return gaussian_mi(self.covariance, self.dim_x)

    def sample(self, n: int, seed: SeedLike = None) -> tuple[np.ndarray, np.ndarray]:
        """Draw ``n`` pairs; returns ``x`` of shape ``(n, dim_x)`` and ``y`` of shape ``(n, dim_y)``."""
        n = positive_int(n, "n")
        z = _gaussian(self.covariance, n, np.random.default_rng(seed))
        return z[:, : self.dim_x].copy(), z[:, self.dim_x :].copy()


@dataclass(frozen=True, eq=False)
class StudentTTask:
    r"""Multivariate Student-t ``(X, Y)`` with ``dof`` degrees of freedom.

    ``(X, Y) = G / \sqrt{V / \nu}`` with ``G ~ N(0, scale)`` and
    ``V ~ chi^2_nu`` independent. The marginals are Student-t with the same
    ``dof``; the MI is :func:`gaussian_mi` of ``scale`` plus
    :func:`student_t_mi_correction` (Arellano-Valle et al. 2013).

    Parameters
    ----------
    scale : array_like, shape (dim_x + dim_y, dim_x + dim_y)
        Symmetric positive-definite scale matrix (the covariance is
        ``scale * dof / (dof - 2)`` when ``dof > 2``).
    dim_x : int
        Number of leading coordinates that form ``X``.
    dof : float
        Degrees of freedom ``nu > 0``.
    name : str
        Label used in benchmark tables.
    """

    scale: np.ndarray = field(repr=False)
    dim_x: int
    dof: float
    name: str = "student-t"

    def __post_init__(self):
        _freeze_joint_matrix(self, "scale")
        object.__setattr__(self, "dof", positive_float(self.dof, "dof"))

    @property
    def dim_y(self) -> int:
        """Dimension of ``Y``."""
        return self.scale.shape[0] - self.dim_x

    @property
    def mutual_information(self) -> float:
        """``I(X;Y)`` in nats (closed form)."""
        gauss = gaussian_mi(self.scale, self.dim_x)
        return gauss + student_t_mi_correction(self.dof, self.dim_x, self.dim_y)

    def sample(self, n: int, seed: SeedLike = None) -> tuple[np.ndarray, np.ndarray]:
        """Draw ``n`` pairs; returns ``x`` of shape ``(n, dim_x)`` and ``y`` of shape ``(n, dim_y)``."""
        n = positive_int(n, "n")
        rng = np.random.default_rng(seed)
        g = _gaussian(self.scale, n, rng)
        z = g / np.sqrt(rng.chisquare(self.dof, size=(n, 1)) / self.dof)
        return z[:, : self.dim_x].copy(), z[:, self.dim_x :].copy()


def dense_gaussian(
    dim_x: int, dim_y: int, *, correlation: float = 0.5, within: float = 0.0, name: str | None = None
) -> GaussianTask:
    r"""Gaussian task where every ``X_i`` is correlated with every ``Y_j``.

    Unit variances; ``corr(X_i, Y_j) = correlation`` for all ``i, j`` and
    ``corr(X_i, X_k) = corr(Y_j, Y_l) = within`` for ``i != k``, ``j != l``.

    Raises
    ------
    ValueError
        If the resulting matrix is not positive definite (the message names
        ``correlation``); e.g. ``within = 0`` needs
        :math:`|\rho| \sqrt{d_x d_y} < 1`.
    """
    dim_x = positive_int(dim_x, "dim_x")
    dim_y = positive_int(dim_y, "dim_y")
    d = dim_x + dim_y
    cov = np.full((d, d), float(correlation))
    cov[:dim_x, :dim_x] = within
    cov[dim_x:, dim_x:] = within
    np.fill_diagonal(cov, 1.0)
    _require_positive_definite(cov, f"correlation={correlation} with within={within}")
    label = name or f"dense-gauss-{dim_x}x{dim_y}-rho{correlation:g}"
    return GaussianTask(cov, dim_x, label)


def _pair_covariance(dim_x: int, dim_y: int, correlations) -> np.ndarray:
    """Unit-variance covariance where ``X_i`` and ``Y_i`` have ``correlations[i]``."""
    cov = np.eye(dim_x + dim_y)
    for i, rho in enumerate(correlations):
        cov[i, dim_x + i] = cov[dim_x + i, i] = rho
    return cov


def sparse_gaussian(
    dim_x: int, dim_y: int, *, n_interacting: int = 1, correlation: float = 0.8, name: str | None = None
) -> GaussianTask:
    r"""Gaussian task where only ``n_interacting`` coordinate pairs are correlated.

    ``corr(X_i, Y_i) = correlation`` for ``i < n_interacting``, all other
    coordinates are independent standard normals, so

    .. math:: I(X;Y) = -\tfrac{k}{2}\ln(1 - \rho^2).
    """
    dim_x = positive_int(dim_x, "dim_x")
    dim_y = positive_int(dim_y, "dim_y")
    k = positive_int(n_interacting, "n_interacting")
    if k > min(dim_x, dim_y):
        raise ValueError(f"n_interacting must be <= min(dim_x, dim_y) = {min(dim_x, dim_y)}, got {k}")
    rho = _open_correlation(correlation, "correlation")
    label = name or f"sparse-gauss-{dim_x}x{dim_y}-k{k}-rho{rho:g}"
    return GaussianTask(_pair_covariance(dim_x, dim_y, [rho] * k), dim_x, label)


def gaussian_with_mi(mi: float, dim: int = 1, *, name: str | None = None) -> GaussianTask:
    r"""``dim`` independent Gaussian pairs whose total MI is exactly ``mi`` nats.

    Each pair ``(X_i, Y_i)`` carries ``mi / dim`` nats, i.e. has correlation

    .. math:: \rho = \sqrt{1 - e^{-2\,\mathrm{mi}/d}}.

    This is the "staircase" task of the variational-bound benchmarks (e.g.
    ``d = 20`` and ``mi`` in 2, 4, ..., 10 nats).
    """
    mi = positive_float(mi, "mi", allow_zero=True)
    dim = positive_int(dim, "dim")
    rho = math.sqrt(-math.expm1(-2.0 * mi / dim))
    if rho >= 1.0:
        raise ValueError(f"mi={mi} is too large for dim={dim}: per-pair correlation rounds to 1")
    label = name or f"gauss-staircase-d{dim}-mi{mi:g}"
    return GaussianTask(_pair_covariance(dim, dim, [rho] * dim), dim, label)


def student_t(
    dim_x: int,
    dim_y: int,
    *,
    dof: float,
    n_interacting: int = 0,
    correlation: float = 0.0,
    name: str | None = None,
) -> StudentTTask:
    """Student-t task with a :func:`sparse_gaussian`-style scale matrix.

    ``n_interacting`` pairs ``(X_i, Y_i)`` have scale correlation
    ``correlation``; with ``n_interacting=0`` the scale is the identity and
    all the dependence comes from the shared chi-square variable.
    """
    dim_x = positive_int(dim_x, "dim_x")
    dim_y = positive_int(dim_y, "dim_y")
    dof = positive_float(dof, "dof")
    k = positive_int(n_interacting, "n_interacting", minimum=0)
    if k > min(dim_x, dim_y):
        raise ValueError(f"n_interacting must be <= min(dim_x, dim_y) = {min(dim_x, dim_y)}, got {k}")
    rho = _open_correlation(correlation, "correlation")
    label = name or f"student-t-{dim_x}x{dim_y}-dof{dof:g}" + (f"-k{k}-rho{rho:g}" if k else "")
    return StudentTTask(_pair_covariance(dim_x, dim_y, [rho] * k), dim_x, dof, label)


# ---------------------------------------------------------------------------
# Additive uniform noise


@dataclass(frozen=True)
class AdditiveUniformTask:
    r"""``Y = X + N`` with ``X ~ U(0, 1)^d`` and ``N ~ U(-w/2, w/2)^d`` independent.

    Coordinates are independent, so the MI is ``dim`` times that of one
    coordinate. For one coordinate :math:`h(Y|X) = \ln w` and the density of
    :math:`Y` is a trapezoid, which gives

    .. math::
        I(X;Y) = \begin{cases} \dfrac{w}{2} - \ln w, & w \le 1,\\[4pt]
                               \dfrac{1}{2w}, & w \ge 1. \end{cases}

    Parameters
    ----------
    width : float
        Width ``w > 0`` of the noise interval.
    dim : int
        Number of independent coordinates (``dim_x = dim_y = dim``).
    name : str, optional
        Label used in benchmark tables.
    """

    width: float = 0.1
    dim: int = 1
    name: str = ""

    def __post_init__(self):
        object.__setattr__(self, "width", positive_float(self.width, "width"))
        object.__setattr__(self, "dim", positive_int(self.dim, "dim"))
        if not self.name:
            object.__setattr__(self, "name", f"additive-uniform-d{self.dim}-w{self.width:g}")

    @property
    def dim_x(self) -> int:
        """Dimension of ``X``."""
        return self.dim

    @property
    def dim_y(self) -> int:
        """Dimension of ``Y``."""
        return self.dim

    @property
    def mutual_information(self) -> float:
        """``I(X;Y)`` in nats (closed form)."""
        w = self.width
        per_coordinate = w / 2.0 - math.log(w) if w <= 1.0 else 1.0 / (2.0 * w)
        return self.dim * per_coordinate

    def sample(self, n: int, seed: SeedLike = None) -> tuple[np.ndarray, np.ndarray]:
        """Draw ``n`` pairs; both arrays have shape ``(n, dim)``."""
        n = positive_int(n, "n")
        rng = np.random.default_rng(seed)
        x = rng.uniform(0.0, 1.0, size=(n, self.dim))
        noise = rng.uniform(-self.width / 2.0, self.width / 2.0, size=(n, self.dim))
        return x, x + noise


# ---------------------------------------------------------------------------
# Invertible transforms (mutual information is invariant under them)


def normal_cdf(v: np.ndarray) -> np.ndarray:
    r"""Coordinate-wise standard normal CDF :math:`\Phi`, a bijection onto ``(0, 1)``.

    In float64 it is injective only for :math:`v \gtrsim -37` and :math:`v < 8.2`
    (beyond, values round to 0 or 1); the tasks here stay well inside.
    """
    return special.ndtr(v)


def half_cube(v: np.ndarray) -> np.ndarray:
    r"""Coordinate-wise :math:`v \mapsto v\sqrt{|v|}` (sign-preserving power 3/2)."""
    return v * np.sqrt(np.abs(v))


def asinh(v: np.ndarray) -> np.ndarray:
    r"""Coordinate-wise :math:`\operatorname{asinh}(v) = \ln(v + \sqrt{v^2 + 1})`."""
    return np.arcsinh(v)


@dataclass(frozen=True)
class Spiral:
    r"""The spiral diffeomorphism :math:`v \mapsto R(s\,\|v\|^2)\, v`.

    :math:`R(\theta)` rotates every coordinate pair ``(0, 1), (2, 3), ...`` by
    the angle :math:`\theta` (an odd last coordinate is left alone), and the
    angle grows with the squared radius at ``speed`` :math:`s`. Rotations keep
    :math:`\|v\|`, so :math:`v = R(-s\|w\|^2)\, w` inverts it; the map is
    volume preserving (Czyz et al. 2023). It needs at least two coordinates.

    Parameters
    ----------
    speed : float
        Angular speed :math:`s` in radians per unit of squared radius.
    plane : tuple of two ints, optional
        Rotate only the coordinate pair ``plane = (i, j)`` (the spiral of
        Czyz et al.'s benchmark: ``(0, 1)`` for ``X``, ``(1, 2)`` for ``Y``,
        speed 1/3); by default every pair ``(0, 1), (2, 3), ...`` turns.
    """

    speed: float = 0.5
    plane: tuple[int, int] | None = None

    def __post_init__(self):
        object.__setattr__(self, "speed", positive_float(self.speed, "speed", allow_zero=True))
        if self.plane is not None:
            i, j = (positive_int(v, "plane", minimum=0) for v in self.plane)
            if i == j:
                raise ValueError(f"plane must name two different coordinates, got {self.plane!r}")
            object.__setattr__(self, "plane", (i, j))

    @property
    def name(self) -> str:
        """Label used in task names."""
        where = "" if self.plane is None else f"@{self.plane[0]}{self.plane[1]}"
        return f"spiral{self.speed:g}{where}"

    def __call__(self, v: np.ndarray) -> np.ndarray:
        v = np.asarray(v, dtype=np.float64)
        if v.ndim != 2 or v.shape[1] < 2:
            raise ValueError(f"the spiral needs samples of shape (n, d >= 2), got shape {v.shape}")
        if self.plane is not None and max(self.plane) >= v.shape[1]:
            raise ValueError(f"the spiral's plane {self.plane} needs more than {v.shape[1]} coordinates")
        theta = self.speed * np.sum(v * v, axis=1)
        cos, sin = np.cos(theta), np.sin(theta)
        out = v.copy()
        pairs = [self.plane] if self.plane is not None else [(a, a + 1) for a in range(0, v.shape[1] - 1, 2)]
        for a, b in pairs:
            out[:, a] = cos * v[:, a] - sin * v[:, b]
            out[:, b] = sin * v[:, a] + cos * v[:, b]
        return out


def wiggly_x(v: np.ndarray) -> np.ndarray:
    r"""Coordinate-wise :math:`v + 0.4\sin v + 0.2\sin(1.7v + 1) + 0.03\sin(3.3v - 2.5)` (Czyz et al.'s "wiggly" map of ``X``).

    Strictly increasing: its derivative is at least :math:`1 - 0.4 - 0.34 - 0.099 > 0.16`.
    """
    v = np.asarray(v, dtype=np.float64)
    return v + 0.4 * np.sin(v) + 0.2 * np.sin(1.7 * v + 1.0) + 0.03 * np.sin(3.3 * v - 2.5)


def wiggly_y(v: np.ndarray) -> np.ndarray:
    r"""Coordinate-wise :math:`v - 0.4\sin 0.4v + 0.17\sin(1.3v + 3.5) + 0.02\sin(4.3v - 2.5)` (the "wiggly" map of ``Y``).

    Strictly increasing: its derivative is at least :math:`1 - 0.16 - 0.221 - 0.086 > 0.53`.
    """
    v = np.asarray(v, dtype=np.float64)
    return v - 0.4 * np.sin(0.4 * v) + 0.17 * np.sin(1.3 * v + 3.5) + 0.02 * np.sin(4.3 * v - 2.5)


@dataclass(frozen=True)
class NormalMixtureQuantile:
    r"""The quantile function of a mixture of unit-variance normals, a bijection from ``(0, 1)`` onto the line.

    :math:`u \mapsto F^{-1}(u)` with :math:`F(t) = \sum_k w_k \Phi(t - \mu_k)`, strictly
    increasing; applied to a uniform coordinate it gives one distributed as the
    mixture (the "bimodal" tasks of Czyz et al. use weights (0.3, 0.7) at 0 and
    5 for ``X``, (0.5, 0.5) at -1 and 3 for ``Y``, on uniform margins). Computed
    by bisection to float resolution.

    Parameters
    ----------
    weights : tuple of float
        Positive mixture weights (normalised to sum 1).
    means : tuple of float
        The components' means, one per weight.
    """

    weights: tuple[float, ...] = (0.5, 0.5)
    means: tuple[float, ...] = (-1.0, 3.0)

    def __post_init__(self):
        w = np.asarray(as_float_array(self.weights, "weights", ndim=1))
        m = np.asarray(as_float_array(self.means, "means", ndim=1))
        if w.shape != m.shape:
            raise ValueError(f"weights and means must have the same length, got {w.size} and {m.size}")
        if np.any(w <= 0):
            raise ValueError("weights must be positive")
        object.__setattr__(self, "weights", tuple(float(v) for v in w / w.sum()))
        object.__setattr__(self, "means", tuple(float(v) for v in m))

    @property
    def name(self) -> str:
        """Label used in task names."""
        return "mixture-quantile(" + ",".join(f"{w:g}@{m:g}" for w, m in zip(self.weights, self.means)) + ")"

    def cdf(self, t: np.ndarray) -> np.ndarray:
        """The mixture's CDF ``F``."""
        t = np.asarray(t, dtype=np.float64)
        return sum(w * special.ndtr(t - m) for w, m in zip(self.weights, self.means))

    def __call__(self, u: np.ndarray) -> np.ndarray:
        u = np.asarray(u, dtype=np.float64)
        lo = np.full(u.shape, min(self.means) - 40.0)
        hi = np.full(u.shape, max(self.means) + 40.0)
        for _ in range(110):  # the bracket of width ~90 shrinks below float64's spacing
            mid = 0.5 * (lo + hi)
            below = self.cdf(mid) < u
            lo = np.where(below, mid, lo)
            hi = np.where(below, hi, mid)
        return 0.5 * (lo + hi)


def swiss_roll(v: np.ndarray) -> np.ndarray:
    r"""The swiss-roll embedding of ``(n, 1)`` values in ``[0, 1]`` into the plane, shape ``(n, 2)``.

    :math:`t = \tfrac{3\pi}{2}(1 + 2v)`, :math:`v \mapsto (t\cos t,\ t\sin t) / 21` (Czyz et al.).
    Injective (the radius ``t / 21`` determines ``v``), so it keeps the mutual
    information; the image is a curve, so the embedded ``X`` has no density in
    the plane.
    """
    v = np.asarray(v, dtype=np.float64)
    if v.ndim != 2 or v.shape[1] != 1:
        raise ValueError(f"swiss_roll needs samples of shape (n, 1), got shape {v.shape}")
    t = 1.5 * np.pi * (1.0 + 2.0 * v[:, 0])
    return np.column_stack([t * np.cos(t), t * np.sin(t)]) / 21.0


_TRANSFORMS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "normal_cdf": normal_cdf,
    "half_cube": half_cube,
    "asinh": asinh,
    "spiral": Spiral(),
}


class _SeenThroughAMap:
    """What a task seen through an injective map keeps of its ``base``: ``Y``'s dimension and the MI.

    ``X``'s dimension is the base's unless the map changes it.
    """

    @property
    def dim_x(self) -> int:
        """Dimension of ``X``."""
        return self.base.dim_x

    @property
    def dim_y(self) -> int:
        """Dimension of ``Y``."""
        return self.base.dim_y

    @property
    def mutual_information(self) -> float:
        """``I(X;Y)`` in nats: the base task's (invariance under injective maps)."""
        return self.base.mutual_information


@dataclass(frozen=True)
class TransformedTask(_SeenThroughAMap):
    r"""A task observed through invertible maps: :math:`(f(X), g(Y))`.

    For injective, measurable :math:`f` and :math:`g` (diffeomorphisms here),
    :math:`I(f(X); g(Y)) = I(X;Y)`, so ``mutual_information`` is the base
    task's. Estimators, however, see a different geometry, which is what
    makes these tasks hard.

    Parameters
    ----------
    base : Task
        The task to transform.
    x_transform, y_transform : callable or None
        Maps from ``(n, d)`` arrays to ``(n, d)`` arrays; ``None`` is the
        identity. They must be injective; that is the caller's promise.
    name : str, optional
        Label; by default built from the base name and the maps' names.
    """

    base: Task
    x_transform: Callable[[np.ndarray], np.ndarray] | None = None
    y_transform: Callable[[np.ndarray], np.ndarray] | None = None
    name: str = ""

    def __post_init__(self):
        if not self.name:
            maps = (("x", self.x_transform), ("y", self.y_transform))
            parts = [f"{label}={_transform_name(f)}" for label, f in maps if f is not None]
            object.__setattr__(self, "name", f"{self.base.name}[{','.join(parts) or 'identity'}]")

    def sample(self, n: int, seed: SeedLike = None) -> tuple[np.ndarray, np.ndarray]:
        """Draw ``n`` pairs from the base task and transform them."""
        x, y = self.base.sample(n, seed)
        if self.x_transform is not None:
            x = np.asarray(self.x_transform(x), dtype=np.float64)
        if self.y_transform is not None:
            y = np.asarray(self.y_transform(y), dtype=np.float64)
        return x, y


@dataclass(frozen=True)
class SwissRollTask(_SeenThroughAMap):
    r"""A task whose one-dimensional ``X`` (values in ``[0, 1]``) is seen through :func:`swiss_roll`.

    ``X`` becomes two-dimensional; the embedding is injective, so the mutual
    information is the base task's. The benchmark's "swiss roll 2 x 1" is this
    over :func:`normal_cdf` of a bivariate normal with correlation 0.75.

    Parameters
    ----------
    base : Task
        A task with ``dim_x == 1`` whose ``X`` lies in ``[0, 1]`` (the caller's promise).
    name : str, optional
    """

    base: Task
    name: str = ""

    def __post_init__(self):
        if self.base.dim_x != 1:
            raise ValueError(f"base must have dim_x == 1 for the swiss roll, got {self.base.dim_x}")
        if not self.name:
            object.__setattr__(self, "name", f"swiss-roll({self.base.name})")

    @property
    def dim_x(self) -> int:
        """Dimension of ``X`` (2)."""
        return 2

    def sample(self, n: int, seed: SeedLike = None) -> tuple[np.ndarray, np.ndarray]:
        """Draw ``n`` pairs from the base task and roll ``X`` up."""
        x, y = self.base.sample(n, seed)
        return swiss_roll(x), y


def transform_task(
    base: Task,
    transform: str | Callable[[np.ndarray], np.ndarray],
    *,
    apply_to: str = "both",
    name: str | None = None,
) -> TransformedTask:
    """Wrap ``base`` in a named MI-preserving transform.

    Parameters
    ----------
    base : Task
        The task to transform.
    transform : {"normal_cdf", "half_cube", "asinh", "spiral"} or callable
        The map (``"spiral"`` is ``Spiral(speed=0.5)``; pass a :class:`Spiral`
        for another speed).
    apply_to : {"both", "x", "y"}
        Which variable(s) to transform.
    """
    if isinstance(transform, str):
        if transform not in _TRANSFORMS:
            raise ValueError(f"transform must be one of {sorted(_TRANSFORMS)} or a callable, got {transform!r}")
        transform = _TRANSFORMS[transform]
    elif not callable(transform):
        raise ValueError(f"transform must be a name or a callable, got {transform!r}")
    if apply_to not in ("both", "x", "y"):
        raise ValueError(f"apply_to must be 'both', 'x' or 'y', got {apply_to!r}")
    if isinstance(transform, Spiral):
        dims = {"x": [base.dim_x], "y": [base.dim_y], "both": [base.dim_x, base.dim_y]}[apply_to]
        if min(dims) < 2:
            raise ValueError(f"transform 'spiral' needs at least 2 dimensions, base has {base.dim_x}x{base.dim_y}")
    fx = transform if apply_to in ("both", "x") else None
    fy = transform if apply_to in ("both", "y") else None
    return TransformedTask(base, fx, fy, name or "")


def benchmark_tasks() -> tuple[Task, ...]:
    """A fixed suite of 14 tasks with known MI, for accuracy tables.

    One- and multi-dimensional Gaussians (dense and sparse), Student-t with
    and without scale correlation, additive uniform noise, and transformed
    versions (normal CDF, half-cube, asinh, spiral) of some of them. True MI
    ranges from about 0.05 to 2.3 nats.
    """
    g1 = gaussian_with_mi(1.0, 1, name="gauss-1x1-mi1")
    g3 = sparse_gaussian(3, 3, n_interacting=2, correlation=0.8, name="sparse-gauss-3x3")
    d2 = dense_gaussian(2, 2, correlation=0.4, name="dense-gauss-2x2")
    t1 = student_t(1, 1, dof=3, n_interacting=1, correlation=0.6, name="student-t-1x1-dof3")
    t2 = student_t(2, 2, dof=2, name="student-t-2x2-dof2-uncorr")
    g5 = gaussian_with_mi(1.0, 5, name="gauss-5x5-mi1")
    return (
        g1,
        g3,
        d2,
        g5,
        t1,
        t2,
        AdditiveUniformTask(width=0.1, name="additive-uniform-w0.1"),
        AdditiveUniformTask(width=0.5, dim=2, name="additive-uniform-2x2-w0.5"),
        transform_task(g1, "normal_cdf", name="normal-cdf(gauss-1x1)"),
        transform_task(g1, "half_cube", name="half-cube(gauss-1x1)"),
        transform_task(t1, "asinh", name="asinh(student-t-1x1)"),
        transform_task(d2, "spiral", name="spiral(dense-gauss-2x2)"),
        transform_task(g3, "half_cube", name="half-cube(sparse-gauss-3x3)"),
        transform_task(g5, "normal_cdf", apply_to="x", name="normal-cdf-x(gauss-5x5)"),
    )


def beyond_normal_tasks() -> tuple[Task, ...]:
    """The 40 tasks of the benchmark of Czyz et al. [1]_ (their ``BENCHMARK_TASKS_LIST``), in its order.

    - one-dimensional (9): bivariate normal with correlation 0.75, its normal
      CDF (uniform margins), additive uniform noise of half-width 0.1 and 0.75
      (``width`` 0.2 and 1.5), bimodal margins (:class:`NormalMixtureQuantile`
      on the uniform margins), the wiggly maps (:func:`wiggly_x`,
      :func:`wiggly_y`) and the half-cube of the normal, Student-t with 1
      degree of freedom and its asinh;
    - the swiss roll 2 x 1 (:class:`SwissRollTask` over the uniform margins);
    - multinormal (9): dense (every correlation 0.5) 2x2, 3x3, 5x5, 25x25,
      50x50; two interacting pairs of correlation 0.8 ("2-pair") 2x2, 3x3, 5x5,
      25x25;
    - Student-t with identity scale (6): 2x2 with 1 and 2 degrees of freedom,
      3x3 with 2 and 3, 5x5 with 2 and 3;
    - transformed (15): normal CDF, half-cube and spiral (:class:`Spiral` of
      speed 1/3 in the plane (0, 1) of ``X`` and (1, 2) of ``Y``) of the 2-pair
      3x3, 5x5 and 25x25; the spiral of their normal CDF; asinh of the
      Student-t 2x2 (1 dof), 3x3 (2 dof) and 5x5 (2 dof).

    True MI from 0.18 to 1.71 nats. Every transform is injective, so each
    transformed task's truth is its base's.
    """
    binormal = dense_gaussian(1, 1, correlation=0.75, name="normal-1x1-rho0.75")
    uniform = transform_task(binormal, "normal_cdf", name="uniform-1x1-rho0.75")
    student_1 = student_t(1, 1, dof=1, name="student-1x1-dof1")
    one_dim = (
        binormal,
        uniform,
        AdditiveUniformTask(width=0.2, name="additive-uniform-1x1-eps0.1"),
        AdditiveUniformTask(width=1.5, name="additive-uniform-1x1-eps0.75"),
        TransformedTask(uniform, NormalMixtureQuantile((0.3, 0.7), (0.0, 5.0)),
                        NormalMixtureQuantile((0.5, 0.5), (-1.0, 3.0)), name="bimodal-1x1-rho0.75"),
        TransformedTask(binormal, wiggly_x, wiggly_y, name="wiggly(normal-1x1-rho0.75)"),
        transform_task(binormal, "half_cube", name="half-cube(normal-1x1-rho0.75)"),
        student_1,
        transform_task(student_1, "asinh", name="asinh(student-1x1-dof1)"),
    )
    embedding = (SwissRollTask(uniform, name="swiss-roll-2x1"),)
    dense = tuple(dense_gaussian(d, d, correlation=0.5, within=0.5, name=f"dense-normal-{d}x{d}")
                  for d in (2, 3, 5, 25, 50))
    pair = {d: sparse_gaussian(d, d, n_interacting=2, correlation=0.8, name=f"2pair-normal-{d}x{d}")
            for d in (2, 3, 5, 25)}
    students = tuple(student_t(d, d, dof=nu, name=f"student-{d}x{d}-dof{nu}")
                     for d, nu in ((2, 1), (2, 2), (3, 2), (3, 3), (5, 2), (5, 3)))
    spiral_x, spiral_y = Spiral(1.0 / 3.0, plane=(0, 1)), Spiral(1.0 / 3.0, plane=(1, 2))
    bases = [pair[d] for d in (3, 5, 25)]
    cdf = [transform_task(b, "normal_cdf", name=f"normal-cdf({b.name})") for b in bases]
    transformed = (
        *cdf,
        *(transform_task(b, "half_cube", name=f"half-cube({b.name})") for b in bases),
        *(TransformedTask(b, spiral_x, spiral_y, name=f"spiral({b.name})") for b in bases),
        *(TransformedTask(c, spiral_x, spiral_y, name=f"spiral({c.name})") for c in cdf),
        *(transform_task(student_t(d, d, dof=nu), "asinh", name=f"asinh(student-{d}x{d}-dof{nu})")
          for d, nu in ((2, 1), (3, 2), (5, 2))),
    )
    return (*one_dim, *embedding, *dense, *pair.values(), *students, *transformed)


# ---------------------------------------------------------------------------
# Helpers


def _as_covariance(matrix, name: str) -> np.ndarray:
    """A symmetric positive-definite float64 copy of ``matrix``."""
    cov = np.array(as_float_array(matrix, name, ndim=2), dtype=np.float64)
    if cov.shape[0] != cov.shape[1] or cov.shape[0] < 2:
        raise ValueError(f"{name} must be a square matrix of size >= 2, got shape {cov.shape}")
    if not np.allclose(cov, cov.T, rtol=0, atol=1e-12 * max(1.0, float(np.abs(cov).max()))):
        raise ValueError(f"{name} must be symmetric")
    _require_positive_definite(cov, name)
    return cov


def _freeze_joint_matrix(task, field_name: str) -> None:
    """Validate a frozen task's joint matrix ``field_name`` and its split at ``dim_x``; store both.

    The matrix is replaced by a read-only symmetric positive-definite float64
    copy (errors name ``field_name``) and ``dim_x`` by an ``int``.
    """
    matrix = _as_covariance(getattr(task, field_name), field_name)
    _split(task.dim_x, matrix.shape[0])
    matrix.setflags(write=False)
    object.__setattr__(task, field_name, matrix)
    object.__setattr__(task, "dim_x", int(task.dim_x))


def _require_positive_definite(cov: np.ndarray, what: str) -> None:
    try:
        np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        raise ValueError(f"{what}: the joint covariance is not positive definite") from None


def _split(dim_x, d: int) -> int:
    dim_x = positive_int(dim_x, "dim_x")
    if dim_x >= d:
        raise ValueError(f"dim_x must be < {d} (the covariance size) so that Y is non-empty, got {dim_x}")
    return dim_x


def _transform_name(f) -> str:
    return getattr(f, "name", None) or getattr(f, "__name__", None) or type(f).__name__


def _open_correlation(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise ValueError(f"{name} must be a real number in (-1, 1), got {value!r}")
    value = float(value)
    if not -1.0 < value < 1.0:
        raise ValueError(f"{name} must lie in (-1, 1), got {value}")
    return value


def _gaussian(cov: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` rows of ``N(0, cov)``."""
    chol = np.linalg.cholesky(cov)
    return rng.standard_normal((n, cov.shape[0])) @ chol.T
