"""``ratebound curve rd|ib|capacity``: Blahut-Arimoto curves from ``.npy``/``.csv`` files.

Inputs: ``rd P_X DISTORTION`` (a pmf over sources and a distortion matrix
``d[x, xhat]``), ``ib JOINT`` (a joint pmf ``p[x, y]``), ``capacity CHANNEL``
(``channel[x, y] = p(y|x)``); or ``--example NAME`` for a built-in problem with
a known closed form. Rates, relevances and capacities are printed in nats and
in bits (the ``*_bits`` columns); distortions are in the units of the matrix.
``ib`` starts its iterations from random encoders: ``--seed`` fixes them.
"""

from __future__ import annotations

import argparse
import json
import math
import warnings
from pathlib import Path

import numpy as np

#: Built-in problems with known curves: kind -> {name: description} (inputs in _example).
_EXAMPLES = {
    "rd": {"bernoulli": "Bernoulli(0.3) source, Hamming distortion: R(D) = h(0.3) - h(D)"},
    "ib": {"binary-symmetric": "uniform X, Y = X through a BSC(0.1)"},
    "capacity": {"bsc": "binary symmetric channel, crossover 0.1: C = ln 2 - h(0.1)"},
}


def _h(p: float) -> float:
    """Binary entropy in nats."""
    return 0.0 if p <= 0 or p >= 1 else -(p * math.log(p) + (1 - p) * math.log1p(-p))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("kind", choices=("rd", "ib", "capacity"), help="which curve")
    parser.add_argument("inputs", nargs="*", metavar="INPUT",
                        help="rd: P_X DISTORTION; ib: JOINT; capacity: CHANNEL (.npy or .csv)")
    names = sorted({n for v in _EXAMPLES.values() for n in v})
    parser.add_argument("--example", choices=names, default=None,
                        help="a built-in problem instead of files: " + "; ".join(
                            f"{n} ({d})" for v in _EXAMPLES.values() for n, d in v.items()))
    parser.add_argument("--betas", default=None,
                        help="comma-separated trade-off parameters (default: 30 log-spaced values)")
    parser.add_argument("--seed", type=int, default=None,
                        help="ib only: seed of the random starting encoders (default 0)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--plot", default=None, metavar="FILE", help="also draw the curve to FILE (.png/.pdf/.svg)")


def load_array(path: str, name: str) -> np.ndarray:
    """A numeric array from ``.npy`` or ``.csv`` (comma-separated); ValueError names the file."""
    p = Path(path)
    suffix = p.suffix.lower()
    try:
        if suffix == ".npy":
            arr = np.load(p, allow_pickle=False)
        elif suffix == ".csv":
            with warnings.catch_warnings():  # an empty file is reported below, not warned about
                warnings.filterwarnings("ignore", message="loadtxt: input contained no data")
                arr = np.loadtxt(p, delimiter=",", dtype=np.float64, ndmin=1)
        else:
            raise ValueError(f"{name} {path}: unsupported file type {suffix or '(none)'}; use .npy or .csv")
    except (OSError, EOFError) as exc:
        raise ValueError(f"{name} {path}: cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    except ValueError as exc:
        if str(exc).startswith(f"{name} {path}"):
            raise
        raise ValueError(f"{name} {path}: not a numeric array: {str(exc).splitlines()[0]}") from None
    if not isinstance(arr, np.ndarray):  # e.g. an .npz archive named .npy
        raise ValueError(f"{name} {path}: not a single .npy array")
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{name} {path}: not a numeric array (dtype {arr.dtype})")
    if arr.size == 0:
        raise ValueError(f"{name} {path}: the array is empty")
    return np.asarray(arr, dtype=np.float64)


def _parse_betas(text: str | None, default: np.ndarray) -> np.ndarray:
    if text is None:
        return default
    try:
        betas = np.array([float(b) for b in text.split(",") if b.strip()])
    except ValueError:
        raise ValueError(f"--betas must be comma-separated numbers, got {text!r}") from None
    if betas.size == 0 or not np.all(np.isfinite(betas)) or np.any(betas <= 0):
        raise ValueError(f"--betas must be finite numbers > 0, got {text!r}")
    return betas


def _inputs(args, count: int, names: tuple[str, ...]) -> list[np.ndarray]:
    if args.example is not None:
        if args.inputs:
            raise ValueError("give either input files or --example, not both")
        if args.example not in _EXAMPLES[args.kind]:
            raise ValueError(f"--example {args.example} is not a {args.kind} example; "
                             f"choose from {', '.join(_EXAMPLES[args.kind])}")
        return _example(args.kind)
    if len(args.inputs) != count:
        raise ValueError(f"curve {args.kind} needs {count} input file(s): {' '.join(names)}; "
                         f"got {len(args.inputs)}")
    return [load_array(path, name) for path, name in zip(args.inputs, names)]


def _example(kind: str) -> list[np.ndarray]:
    if kind == "rd":
        return [np.array([0.7, 0.3]), 1.0 - np.eye(2)]
    eps = 0.1
    channel = np.array([[1 - eps, eps], [eps, 1 - eps]])
    if kind == "ib":
        return [0.5 * channel]
    return [channel]


def _closed_form(args):
    """The example's known curve (a callable for figures), or None."""
    if args.example == "bernoulli":
        return lambda d: max(_h(0.3) - _h(min(d, 0.3)), 0.0)
    return None


def _bits(x: float) -> float:
    return x / math.log(2)


def _rd(args) -> tuple[dict, object]:
    from estimators.blahut_arimoto import rd_curve

    if args.seed is not None:
        raise ValueError("--seed applies only to ib (rd is deterministic)")
    p_x, dist = _inputs(args, 2, ("P_X", "DISTORTION"))
    curve = rd_curve(p_x, dist, _parse_betas(args.betas, np.geomspace(0.05, 50.0, 30)))
    rows = [
        {"beta": float(b), "rate": float(r), "rate_bits": _bits(float(r)), "distortion": float(d),
         "gap": float(g), "converged": bool(c)}
        for b, r, d, g, c in zip(curve.betas, curve.rates, curve.distortions, curve.gaps, curve.converged)
    ]
    return {"kind": "rd", "unit": "nats", "points": rows}, curve


def _ib(args) -> tuple[dict, object]:
    from estimators.blahut_arimoto import ib_curve

    (joint,) = _inputs(args, 1, ("JOINT",))
    seed = 0 if args.seed is None else args.seed
    if seed < 0:
        raise ValueError(f"--seed must be >= 0, got {seed}")
    curve = ib_curve(joint, _parse_betas(args.betas, np.geomspace(0.5, 100.0, 30)), seed=seed)
    rows = [
        {"beta": float(b), "rate": float(r), "rate_bits": _bits(float(r)), "relevance": float(v),
         "relevance_bits": _bits(float(v)), "converged": bool(p.converged)}
        for b, r, v, p in zip(curve.betas, curve.rates, curve.relevances, curve.points)
    ]
    return {"kind": "ib", "unit": "nats", "points": rows}, curve


def _capacity(args) -> tuple[dict, object]:
    from estimators.blahut_arimoto import channel_capacity

    if args.betas is not None:
        raise ValueError("--betas does not apply to capacity")
    if args.seed is not None:
        raise ValueError("--seed applies only to ib (capacity is deterministic)")
    (channel,) = _inputs(args, 1, ("CHANNEL",))
    res = channel_capacity(channel)
    out = {"kind": "capacity", "unit": "nats", "capacity": float(res.capacity),
           "capacity_bits": _bits(float(res.capacity)), "lower": float(res.lower),
           "upper": float(res.upper), "input_pmf": [float(p) for p in res.input_pmf],
           "iterations": int(res.iterations), "converged": bool(res.converged)}
    return out, res


def _table(out: dict) -> str:
    if out["kind"] == "capacity":
        pmf = " ".join(f"{p:.4g}" for p in out["input_pmf"])
        return (f"capacity {out['capacity']:.6g} nats ({out['capacity_bits']:.6g} bits)  "
                f"certified in [{out['lower']:.6g}, {out['upper']:.6g}] nats\n"
                f"input pmf: {pmf}\niterations {out['iterations']}  converged {out['converged']}")
    cols = list(out["points"][0])
    widths = [max(12, len(c)) for c in cols]
    lines = ["  ".join(f"{c:>{w}}" for c, w in zip(cols, widths))]
    for row in out["points"]:
        lines.append("  ".join(f"{v!s:>{w}}" if isinstance(v, bool) else f"{v:>{w}.6g}"
                               for v, w in zip(row.values(), widths)))
    lines.append("rate, relevance in nats; *_bits in bits" if out["kind"] == "ib" else "rate in nats; rate_bits in bits")
    return "\n".join(lines)


def _plot_format(path: str) -> str:
    """The file format of ``--plot PATH``, checked before any work is done."""
    fmt = Path(path).suffix.lstrip(".").lower()
    if fmt not in ("png", "pdf", "svg"):
        raise ValueError(f"--plot {path}: use a .png, .pdf or .svg file name")
    return fmt


def _plot(args, result, fmt: str) -> None:
    import figures

    if args.kind == "rd":
        fig = figures.plot_rd_curve(result, closed_form=_closed_form(args))
    elif args.kind == "ib":
        fig = figures.plot_ib_curve(result)
    else:
        fig = figures.plot_capacity(result)
    figures.save_figure(fig, Path(args.plot), formats=(fmt,))


def run(args: argparse.Namespace) -> int:
    fmt = None if args.plot is None else _plot_format(args.plot)
    out, result = {"rd": _rd, "ib": _ib, "capacity": _capacity}[args.kind](args)
    if fmt is not None:
        _plot(args, result, fmt)
    print(json.dumps(out, indent=2, allow_nan=False) if args.json else _table(out))
    return 0
