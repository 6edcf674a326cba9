"""Testing aids shipped with the package.

Hypothesis strategies for pmfs, joints, channels, distortion matrices, cascades,
gate probabilities and bank posteriors (:mod:`estimators._strategies`), a
seeded generator of hard rate-distortion problems (``hard_rd_problem``), and
samplers with known mutual information — correlated Gaussians, Student-t,
additive uniform noise and MI-preserving transforms of them
(:mod:`estimators._samplers`).
"""

from estimators._samplers import (
    AdditiveUniformTask,
    GaussianTask,
    Spiral,
    StudentTTask,
    Task,
    TransformedTask,
    asinh,
    benchmark_tasks,
    dense_gaussian,
    gaussian_mi,
    gaussian_with_mi,
    half_cube,
    normal_cdf,
    sparse_gaussian,
    student_t,
    student_t_mi_correction,
    transform_task,
)
from estimators._strategies import (
    cascades,
    channels,
    distortion_matrices,
    gate_probabilities,
    hard_rd_problem,
    joints,
    pmfs,
    posterior_rows,
)

__all__ = [
    # Hypothesis strategies
    "pmfs",
    "joints",
    "channels",
    "distortion_matrices",
    "cascades",
    "gate_probabilities",
    "posterior_rows",
    # seeded stress problems for the Blahut-Arimoto solvers
    "hard_rd_problem",
    # samplers with known mutual information
    "Task",
    "GaussianTask",
    "StudentTTask",
    "AdditiveUniformTask",
    "TransformedTask",
    "Spiral",
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
]
