"""Speed of the INL trainer: seconds per epoch and samples/s, dense vs tree, 12/24/48 nodes.

Run from the repository root::

    python benchmarks/bench_inl.py                 # 12 nodes x 30 epochs, 24 and 48 nodes x 5 epochs
    python benchmarks/bench_inl.py --threads 2 --epochs-large 10

Each row is one full ``inl._training.train`` run of the default configuration
(synthetic views, 2000 training samples, batch 128, latent width 8) on the
given number of nodes. ``s/epoch`` is the median epoch (training pass plus the
held-out evaluation that fills the history); ``samples/s`` counts training
samples over the whole training loop (training passes and those per-epoch
evaluations); ``total s`` is the whole call (data, graph,
training, evaluation, contexts) in wall time and ``cpu s`` in process CPU
time, which contention inflates much less. Timings on a shared machine are noisy: compare
rows of one run, e.g. the dense/tree ratio printed at the end.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from inl._training import INLConfig, train  # noqa: E402


def bench(n_nodes: int, mode: str, epochs: int, threads: int) -> dict:
    config = INLConfig(n_nodes=n_nodes, mode=mode, epochs=epochs, threads=threads)
    tic, cpu = time.perf_counter(), time.process_time()
    run = train(config, progress=False)
    total, cpu = time.perf_counter() - tic, time.process_time() - cpu
    per_epoch = statistics.median(h["seconds"] for h in run.history)
    return {
        "nodes": n_nodes,
        "mode": mode,
        "edges": run.record["edges_used"],
        "epochs": epochs,
        "s/epoch": per_epoch,
        "samples/s": run.record["n_train"] * epochs / run.seconds,
        "total s": total,
        "cpu s": cpu,
        "test acc": run.test_acc,
        "floats/sample": run.exchange_floats,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run (default 1)")
    parser.add_argument("--epochs", type=int, default=30, help="epochs of the 12-node runs")
    parser.add_argument("--epochs-large", type=int, default=5, help="epochs of the 24/48-node runs")
    parser.add_argument("--nodes", type=int, nargs="+", default=[12, 24, 48])
    args = parser.parse_args(argv)
    rows = []
    for n in args.nodes:
        epochs = args.epochs if n == 12 else args.epochs_large
        for mode in ("dense", "tree"):
            rows.append(bench(n, mode, epochs, args.threads))
            print(f"done: {n} nodes {mode}", file=sys.stderr)
    cols = list(rows[0])
    print(f"load average at end: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores, threads={args.threads}\n")
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        cells = [f"{r[c]:.3f}" if isinstance(r[c], float) else str(r[c]) for c in cols]
        print("| " + " | ".join(cells) + " |")
    print()
    for n in args.nodes:
        dense, tree = (next(r for r in rows if r["nodes"] == n and r["mode"] == m) for m in ("dense", "tree"))
        print(
            f"{n} nodes: dense/tree time per epoch {dense['s/epoch'] / tree['s/epoch']:.2f}x, "
            f"exchange {dense['floats/sample'] / tree['floats/sample']:.2f}x "
            f"(tree saves {100 * (1 - tree['floats/sample'] / dense['floats/sample']):.1f}%)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
