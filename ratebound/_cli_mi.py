"""``ratebound mi X Y [--method ...]``: a mutual-information estimate with its interval.

``X`` and ``Y`` are ``.npy``/``.csv`` files of paired samples (rows are
samples). Without ``--method`` the estimator is chosen from the data alone
(:func:`estimators.estimate_mi` without ``method``: a Gaussian or Student-t
copula, or KSG on normal scores where that finds more dependence); the output
names the estimator chosen and the notes say why. Methods: ``ksg``
(continuous X and Y), ``mixed`` (continuous X, integer labels Y), ``plugin``/``miller-madow``/``jackknife`` (integer labels
both), and the neural bounds ``infonce``, ``nwj``, ``dv``, ``mine``,
``smile``, ``js``. The value is printed in nats (or ``--base``; ``--base 2``
prints bits), with its 95% interval and standard error; ``--json`` gives the
same fields and ``unit``. Neural methods show a progress bar of the training
steps on stderr (``--no-progress`` hides it).
"""

from __future__ import annotations

import argparse
import json
import math

_KNN = ("ksg", "mixed")
_PLUGIN = {"plugin": "none", "miller-madow": "miller-madow", "jackknife": "jackknife"}
_NEURAL = ("infonce", "nwj", "dv", "mine", "smile", "js")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("x", metavar="X", help="samples of X (.npy or .csv; rows are samples)")
    parser.add_argument("y", metavar="Y", help="samples of Y, paired with X")
    parser.add_argument("--method", default=None, choices=(*_KNN, *_PLUGIN, *_NEURAL),
                        help="estimator (default: chosen from the data, for continuous X and Y)")
    parser.add_argument("--k", type=int, default=3, help="neighbours for ksg/mixed (default 3)")
    parser.add_argument("--steps", type=int, default=2000, help="training steps of neural methods")
    parser.add_argument("--batch-size", type=int, default=128, help="batch size of neural methods")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--base", type=float, default=math.e, help="logarithm base (default e: nats; 2: bits)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.add_argument("--no-progress", action="store_true", help="hide the training progress bar of neural methods")


def _estimate(args, x, y):
    if args.method == "ksg":
        from estimators.knn import ksg_mi_estimate

        return ksg_mi_estimate(x, y, k=args.k, base=args.base, seed=args.seed)
    if args.method == "mixed":
        from estimators.knn import mixed_mi_estimate

        return mixed_mi_estimate(x, y, k=args.k, base=args.base, seed=args.seed)
    if args.method in _PLUGIN:
        from estimators.discrete import plugin_mi

        return plugin_mi(x, y, correction=_PLUGIN[args.method], base=args.base)
    from estimators.variational import estimate_mi

    if args.method is None:
        return estimate_mi(x, y, seed=args.seed, base=args.base)
    return estimate_mi(x, y, method=args.method, steps=args.steps, batch_size=args.batch_size,
                       seed=args.seed, base=args.base, progress=not args.no_progress)


def _number(v) -> float | None:
    v = float(v)
    return v if math.isfinite(v) else None


def run(args: argparse.Namespace) -> int:
    from ratebound._cli_curve import load_array

    x = load_array(args.x, "X")
    y = load_array(args.y, "Y")
    est = _estimate(args, x, y)
    unit = "nats" if est.base == math.e else ("bits" if est.base == 2 else f"base-{est.base:g} units")
    out = {"method": est.method, "value": _number(est.value), "stderr": _number(est.stderr),
           "ci_low": _number(est.ci_low), "ci_high": _number(est.ci_high), "n": est.n,
           "base": est.base, "unit": unit, "notes": list(est.notes)}
    if args.json:
        print(json.dumps(out, indent=2, allow_nan=False))
        return 0
    interval = ("no interval" if out["ci_low"] is None
                else f"interval [{est.ci_low:.6g}, {est.ci_high:.6g}]")
    print(f"I(X;Y) = {est.value:.6g} {unit}  ({interval}; stderr {est.stderr:.3g})  "
          f"method {est.method}, n = {est.n}")
    for note in est.notes:
        print(f"note: {note}")
    return 0

