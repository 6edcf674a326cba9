"""Matplotlib drawings of the toolkit's result objects.

Every function takes result objects or plain numbers and returns a
:class:`matplotlib.figure.Figure` built on the Agg canvas (no pyplot, no global
state); :func:`save_figure` writes it as PNG and PDF atomically. Nothing here
computes an information quantity or imports the trainer.
"""

from figures._common import new_figure, save_figure
from figures.curves import (
    plot_capacity,
    plot_distortion_rate,
    plot_ib_curve,
    plot_rd_curve,
)
from figures.experiments import (
    plot_accuracy_vs_exchange,
    plot_bank_sweep,
    plot_bound_terms,
    plot_correlation_gain,
    plot_exchange_sweep,
    plot_gate_points,
    plot_latent_sweep,
    plot_sum_rate,
)
from figures.network import plot_network

__all__ = [
    "new_figure",
    "plot_accuracy_vs_exchange",
    "plot_bank_sweep",
    "plot_bound_terms",
    "plot_capacity",
    "plot_correlation_gain",
    "plot_distortion_rate",
    "plot_exchange_sweep",
    "plot_gate_points",
    "plot_ib_curve",
    "plot_latent_sweep",
    "plot_network",
    "plot_rd_curve",
    "plot_sum_rate",
    "save_figure",
]
