"""Blahut-Arimoto backends against each other: numpy, torch on the CPU, torch on CUDA (where present).

Same inputs for every backend, in one run: a 50-slope R(D) curve of a random
``n x n`` distortion matrix (uniform entries, source Dirichlet(1), slopes
geometric from 1 to 1000) and the capacity of a random ``n x n`` channel (rows
Dirichlet(1)), for each ``n`` of ``--sizes``. Each answer is certified
(``tol``); the table gives the best of ``--repeat`` wall times, the ratio to
numpy, and the largest difference from numpy's answer.

Run: ``python benchmarks/bench_ba_backends.py [--sizes 512 2048] [--tol 1e-6]``.
BLAS and torch use one CPU thread, as in ``bench_blahut_arimoto.py``.
"""

from __future__ import annotations

import argparse

import numpy as np
from bench_blahut_arimoto import _timed  # the sibling script (run from this folder's path)


def _backends():
    import torch

    out = [("numpy", "numpy", None), ("torch cpu", "torch", "cpu")]
    if torch.cuda.is_available():
        out.append((f"torch cuda ({torch.cuda.get_device_name(0)})", "torch", "cuda"))
    return out


def run(sizes, tol: float, repeat: int) -> list[dict]:
    import torch

    from estimators import channel_capacity, rd_curve

    rows = []
    for n in sizes:
        rng = np.random.default_rng(n)
        p, d = rng.dirichlet(np.ones(n)), rng.random((n, n))
        w = rng.dirichlet(np.ones(n), size=n)
        betas = np.geomspace(1.0, 1000.0, 50)
        tasks = {
            f"R(D) {n}x{n}, 50 slopes": lambda backend, device: rd_curve(
                p, d, betas, tol=tol, backend=backend, device=device
            ),
            f"capacity {n}x{n}": lambda backend, device: channel_capacity(w, tol=tol, backend=backend, device=device),
        }
        for task, fn in tasks.items():
            ref_time, ref = None, None
            for name, backend, device in _backends():

                def call(fn=fn, backend=backend, device=device):
                    out = fn(backend, device)
                    if device == "cuda":
                        torch.cuda.synchronize()
                    return out

                call()  # warm-up: imports, CUDA context, kernels
                t, out = _timed(call, repeat)
                value = out.rates if hasattr(out, "rates") else np.array([out.capacity])
                certified = bool(np.all(out.converged))
                if ref is None:
                    ref_time, ref = t, value
                rows.append(
                    {
                        "task": task,
                        "backend": name,
                        "seconds": t,
                        "vs_numpy": ref_time / t,
                        "max_diff": float(np.max(np.abs(value - ref))),
                        "certified": certified,
                    }
                )
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[512])
    parser.add_argument("--tol", type=float, default=1e-6)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    with threadpool_limits(1):
        rows = run(args.sizes, args.tol, args.repeat)
    print(f"tol={args.tol:g}, best of {args.repeat}")
    print(f"| {'task':<26} | {'backend':<40} | {'s':>8} | {'numpy/this':>10} | {'max |diff|':>10} | certified |")
    for r in rows:
        print(
            f"| {r['task']:<26} | {r['backend']:<40} | {r['seconds']:>8.3f} | {r['vs_numpy']:>9.2f}x "
            f"| {r['max_diff']:>10.1e} | {r['certified']} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
