"""Testing aids shipped with the package.

Hypothesis strategies for pmfs, joints, channels, distortion matrices, cascades,
gate probabilities and bank posteriors (:mod:`estimators._strategies`), a
seeded generator of hard rate-distortion problems (``hard_rd_problem``), and
samplers with known mutual information — correlated Gaussians, Student-t,
additive uniform noise, bimodal and embedded variables, and MI-preserving transforms of them
(:mod:`estimators._samplers`).
"""

from estimators._samplers import (
    AdditiveUniformTask,
    GaussianTask,
    NormalMixtureQuantile,
    Spiral,
    StudentTTask,
    SwissRollTask,
    Task,
    TransformedTask,
    asinh,
    benchmark_tasks,
    beyond_normal_tasks,
    dense_gaussian,
    gaussian_mi,
    gaussian_with_mi,
    half_cube,
    normal_cdf,
    sparse_gaussian,
    student_t,
    student_t_mi_correction,
    swiss_roll,
    transform_task,
    wiggly_x,
    wiggly_y,
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
    "SwissRollTask",
    "Spiral",
    "NormalMixtureQuantile",
    "dense_gaussian",
    "sparse_gaussian",
    "gaussian_with_mi",
    "student_t",
    "normal_cdf",
    "half_cube",
    "asinh",
    "wiggly_x",
    "wiggly_y",
    "swiss_roll",
    "transform_task",
    "gaussian_mi",
    "student_t_mi_correction",
    "benchmark_tasks",
    "beyond_normal_tasks",
]
