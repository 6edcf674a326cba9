r"""The D-INL sweeps that locate the paper's numbers: density, ``beta_latent``, ``beta_gate``.

The paper states neither its topology nor its penalties, so each headline number
is located on a sweep instead of claimed at one setting:

- **exchange vs density**: dense and tree INL over average degrees from sparse to
  dense, several graph seeds each; the measured exchange reduction beside the
  closed form :math:`1 - (n-1)/|E|` (equal message widths);
- **latent rate vs beta_latent**: tree INL over log-spaced ``beta_latent``
  (0 included): the latent rate and the accuracy, the rate-accuracy trade-off of
  the finite-rate regulariser;
- **gate rate vs beta_gate**: the trained root gates' hard rate and training
  loss against their empirical :math:`D(R_g)`.

Where a paper number falls between two sweep points it is located by linear
interpolation (in :math:`\log\beta` for the betas); a number outside the swept
range is reported as not met. The sweep values are fixed before running and
never chosen from the results.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np

from paper_repro._runs import train_records

__all__ = ["run_sweeps", "locate", "sweep_figures"]

LN2 = math.log(2.0)


def _mean_std(values) -> tuple[float, float]:
    arr = np.asarray(values, dtype=float)
    return float(arr.mean()), float(arr.std(ddof=1)) if arr.size > 1 else 0.0


def locate(xs, ys, target: float, *, log_x: bool = False) -> float | None:
    """The first ``x`` at which the piecewise-linear ``y(x)`` reaches ``target``, or ``None``.

    ``xs`` increasing; with ``log_x`` the interpolation is in ``log x`` between
    positive points (a segment from ``x = 0`` is interpolated linearly).

    Examples
    --------
    >>> locate([1, 2, 3], [0.1, 0.5, 0.9], 0.7)
    2.5
    >>> locate([1, 2], [0.1, 0.2], 0.7) is None
    True
    """
    xs, ys = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
    for i in range(len(xs) - 1):
        y0, y1 = ys[i], ys[i + 1]
        if (y0 - target) * (y1 - target) <= 0 and y0 != y1:
            t = (target - y0) / (y1 - y0)
            x0, x1 = xs[i], xs[i + 1]
            if log_x and x0 > 0:
                return float(math.exp(math.log(x0) + t * (math.log(x1) - math.log(x0))))
            return float(x0 + t * (x1 - x0))
        if y0 == target:
            return float(xs[i])
    return float(xs[-1]) if len(xs) and ys[-1] == target else None


def _interpolate(xs, ys, x: float, *, log_x: bool = False) -> float:
    xs, ys = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
    if log_x and x > 0:
        pos = xs > 0
        if x >= xs[pos].min():
            return float(np.interp(math.log(x), np.log(xs[pos]), ys[pos]))
    return float(np.interp(x, xs, ys))


def _exchange_sweep(settings, records_of) -> dict:
    configs, rows = [], []
    for degree in settings.sweep_degrees:
        for graph_seed in range(settings.sweep_graph_seeds):
            for seed in range(settings.sweep_seeds):
                for mode in ("dense", "tree"):
                    configs.append(replace(settings.plain_config(mode, seed), avg_degree=float(degree),
                                           graph_seed=graph_seed))
    recs = records_of(configs, "exchange vs density")
    by = {}
    for c, r in zip(configs, recs):
        by.setdefault((c.avg_degree, c.graph_seed), {}).setdefault(c.mode, []).append(r)
    for degree in settings.sweep_degrees:
        cells = [by[(float(degree), g)] for g in range(settings.sweep_graph_seeds)]
        dense = [r for cell in cells for r in cell["dense"]]
        tree = [r for cell in cells for r in cell["tree"]]
        reduction = [1.0 - np.mean([r["exchange_floats"] for r in cell["tree"]])
                     / np.mean([r["exchange_floats"] for r in cell["dense"]]) for cell in cells]
        closed = [1.0 - (cell["tree"][0]["edges_used"]) / cell["dense"][0]["edges_used"] for cell in cells]
        acc_d, std_d = _mean_std([r["test_acc"] for r in dense])
        acc_t, std_t = _mean_std([r["test_acc"] for r in tree])
        rows.append({
            "avg_degree": float(degree),
            "edges_dense": float(np.mean([cell["dense"][0]["edges_used"] for cell in cells])),
            "exchange_reduction": float(np.mean(reduction)),
            "exchange_reduction_std": float(np.std(reduction, ddof=1)) if len(reduction) > 1 else 0.0,
            "closed_form": float(np.mean(closed)),
            "acc_dense": acc_d, "acc_dense_std": std_d, "acc_tree": acc_t, "acc_tree_std": std_t,
            "within_std": bool(abs(acc_t - acc_d) <= std_d),
            "runs": len(dense) + len(tree),
        })
    return rows


def _latent_sweep(settings, records_of) -> dict:
    configs = [replace(settings.plain_config("tree", seed), beta_latent=float(beta))
               for beta in settings.sweep_beta_latent for seed in range(settings.sweep_seeds)]
    recs = records_of(configs, "latent rate vs beta_latent")
    rows = []
    for beta in settings.sweep_beta_latent:
        mine = [r for c, r in zip(configs, recs) if c.beta_latent == float(beta)]
        rate, rate_std = _mean_std([r["latent_rate"] / LN2 for r in mine])
        acc, acc_std = _mean_std([r["test_acc"] for r in mine])
        rows.append({"beta_latent": float(beta), "latent_rate_bits": rate, "latent_rate_bits_std": rate_std,
                     "acc_mean": acc, "acc_std": acc_std, "runs": len(mine)})
    return rows


def _gate_sweep(settings, records_of) -> tuple[list[dict], list[dict], list[dict]]:
    from paper_repro.dinl import distortion_at_gate

    configs = [replace(settings.plain_config("tree", seed), beta_gate=float(beta))
               for beta in settings.sweep_beta_gate for seed in range(settings.sweep_seeds)]
    recs = records_of(configs, "gate rate vs beta_gate")
    rows, points = [], []
    for c, r in zip(configs, recs):
        d = distortion_at_gate(r)
        points.append({"beta_gate": c.beta_gate, "seed": c.seed, "gate_rate_bits": r["gate_rate"] / LN2,
                       "train_loss": r["train_loss"], "distortion_rate": d})
    for beta in settings.sweep_beta_gate:
        mine = [p for p, r in zip(points, recs) if p["beta_gate"] == float(beta)]
        accs = [r["test_acc"] for p, r in zip(points, recs) if p["beta_gate"] == float(beta)]
        rows.append({"beta_gate": float(beta),
                     "gate_rate_bits": float(np.mean([p["gate_rate_bits"] for p in mine])),
                     "train_loss": float(np.mean([p["train_loss"] for p in mine])),
                     "distortion_rate": float(np.mean([p["distortion_rate"] for p in mine])),
                     "slack_raw_min": float(min(p["train_loss"] - p["distortion_rate"] for p in mine)),
                     "test_acc": float(np.mean(accs)),
                     "runs": len(mine)})
    return points, rows, recs


def run_sweeps(settings, out_dir: Path, *, paper: dict, progress: bool = True) -> tuple[dict, list[dict]]:
    """Train the three sweeps (one run log each, ``out_dir/sweep_*.jsonl``) and locate the paper's numbers.

    Returns ``(sweeps, gate records)``: the JSON-able ``sweeps`` of ``table.json``
    (``exchange_vs_degree``, ``latent_vs_beta``, ``gate_vs_beta`` (one point per
    run), ``gate_vs_beta_means`` and ``located``) and the records of the
    ``beta_gate`` runs, for the figure.
    """

    def records_in(name: str):
        def records_of(configs, desc):
            return train_records(configs, out_dir / f"sweep_{name}.jsonl", workers=settings.n_workers,
                                 progress=progress, desc=f"dinl: {desc}")

        return records_of

    exchange = _exchange_sweep(settings, records_in("exchange"))
    latent = _latent_sweep(settings, records_in("latent"))
    points, means, gate_records = _gate_sweep(settings, records_in("gate"))
    sweeps = {"exchange_vs_degree": exchange, "latent_vs_beta": latent, "gate_vs_beta": points,
              "gate_vs_beta_means": means, "located": _located(exchange, latent, paper)}
    return sweeps, gate_records


def _located(ex: list[dict], lat: list[dict], paper: dict) -> dict:
    """Where the paper's exchange and latent-rate reductions are met on the sweeps, and the accuracy there."""
    out: dict = {}
    degrees = [r["avg_degree"] for r in ex]
    at = locate(degrees, [r["exchange_reduction"] for r in ex], paper["exchange_reduction"])
    out["exchange_reduction"] = {"avg_degree": at}
    if at is not None:
        acc_d = _interpolate(degrees, [r["acc_dense"] for r in ex], at)
        acc_t = _interpolate(degrees, [r["acc_tree"] for r in ex], at)
        std_d = _interpolate(degrees, [r["acc_dense_std"] for r in ex], at)
        out["exchange_reduction"].update(acc_dense=acc_d, acc_tree=acc_t, acc_dense_std=std_d,
                                         within_std=bool(abs(acc_t - acc_d) <= std_d))
    base = lat[0]["latent_rate_bits"]  # beta_latent = 0 comes first
    betas = [r["beta_latent"] for r in lat]
    reductions = [1.0 - r["latent_rate_bits"] / base for r in lat]
    for r, red in zip(lat, reductions):
        r["reduction_vs_unregularised"] = red
    at = locate(betas, reductions, paper["latent_rate_reduction"], log_x=True)
    out["latent_rate_reduction"] = {"beta_latent": at}
    if at is not None:
        acc = _interpolate(betas, [r["acc_mean"] for r in lat], at, log_x=True)
        out["latent_rate_reduction"].update(acc_mean=acc, acc_cost=lat[0]["acc_mean"] - acc)
    return out


def sweep_figures(out_dir: Path, sweeps: dict, gate_records: list[dict], paper: dict,
                  notes: list[str]) -> list[str]:
    """The three sweep figures; returns their PNG names."""
    import figures

    located = sweeps["located"]
    fig = figures.plot_exchange_sweep(sweeps["exchange_vs_degree"], paper_reduction=paper["exchange_reduction"],
                                      met_at=located["exchange_reduction"]["avg_degree"])
    figures.save_figure(fig, out_dir / "sweep_exchange_vs_degree")
    fig = figures.plot_latent_sweep(sweeps["latent_vs_beta"], paper_reduction=paper["latent_rate_reduction"],
                                    met_at=located["latent_rate_reduction"]["beta_latent"])
    figures.save_figure(fig, out_dir / "sweep_latent_vs_beta")
    figures.save_figure(_gate_figure(sweeps["gate_vs_beta"], gate_records, notes), out_dir / "sweep_gate_vs_beta")
    return ["sweep_exchange_vs_degree.png", "sweep_latent_vs_beta.png", "sweep_gate_vs_beta.png"]


def _gate_figure(points: list[dict], records: list[dict], notes: list[str]):
    import figures
    from paper_repro.dinl import empirical_dr_curve

    betas = sorted({p["beta_gate"] for p in points})
    fig = figures.new_figure(figsize=(3.6 * len(betas), 4.2))
    for ax, beta in zip(np.atleast_1d(fig.subplots(1, len(betas))), betas):
        mine = [(p, r) for p, r in zip(points, records) if p["beta_gate"] == beta]
        curves = [empirical_dr_curve(r, p["distortion_rate"], notes) for p, r in mine]
        triples = [(p["gate_rate_bits"], p["distortion_rate"], p["train_loss"]) for p, _ in mine]
        figures.plot_gate_points(curves, triples, unit="bits", label=f"beta_gate = {beta:g}", legend=beta == betas[0],
                                 ax=ax)
    fig.suptitle("Tree INL root gates across beta_gate, on their empirical D(R) curves (training samples)")
    return fig
