"""Wall time per epoch of INL in one process vs one process per node (gloo, loopback).

Run from the repository root::

    python benchmarks/bench_distributed.py              # the default config: 12 nodes, dense, 30 epochs
    python benchmarks/bench_distributed.py --epochs 5 --mode tree

Rows, all in this one run and on the same config:

- ``in-process``: :func:`inl._training.train` (one thread);
- ``distributed (cold)``: :func:`inl.distributed.run_distributed`, the first call
  of this process, so its start-up includes the fork server importing torch;
- ``distributed (warm)``: a second call, ranks forked from the running server.

``s/epoch`` is the median epoch (training pass plus the held-out pass that fills
the history); ``loop s`` the whole training loop; ``other s`` the rest of the
call (processes, rendezvous, data, final gather and record); ``comm wait`` the
share of the epoch a rank spends blocked in send/receive (mean over ranks);
``CPU s/epoch`` the CPU time per epoch, of all ranks together for the
distributed rows and, in process, the difference between this run and a
one-epoch run divided by the extra epochs. On a shared machine CPU time is the
steadier figure: twelve rank processes also win a larger share of contended
cores than one process does, which can make the distributed wall time shorter. A
ping-pong of one message between two ranks gives gloo's latency per message on
loopback, and with the routing's depth the latency the critical path of a batch
cannot avoid. Timings on a shared machine are noisy: compare rows of one run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import networkx as nx  # noqa: E402
import torch  # noqa: E402

from inl.distributed import _free_port, _start_context, run_distributed  # noqa: E402
from inl._training import INLConfig, train  # noqa: E402


def _row(name: str, run, total: float) -> dict:
    per_epoch = statistics.median(h["seconds"] for h in run.history)
    waits = [statistics.mean(w / h["seconds"] for w in h["comm_seconds"])
             for h in run.history if "comm_seconds" in h]
    cpu = statistics.median(sum(h["cpu_seconds"]) for h in run.history) if waits else None
    return {
        "run": name,
        "s/epoch": per_epoch,
        "loop s": run.seconds,
        "other s": total - run.seconds,
        "total s": total,
        "comm wait": f"{statistics.median(waits):.0%}" if waits else "-",
        "cpu s/epoch": cpu,
        "test_acc": run.test_acc,
    }


def _ping_pong(rank: int, port: int, shape: tuple, repeats: int, out) -> None:
    """Two ranks bounce one float32 tensor ``repeats`` times; rank 0 reports round-trip times."""
    import datetime

    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2,
                            timeout=datetime.timedelta(seconds=120))
    x = torch.zeros(shape)
    times = []
    for _ in range(repeats):
        tic = time.perf_counter()
        if rank == 0:
            dist.send(x, dst=1)
            dist.recv(x, src=1)
        else:
            dist.recv(x, src=0)
            dist.send(x, dst=0)
        times.append(time.perf_counter() - tic)
    if rank == 0:
        out.put(times)
    dist.destroy_process_group()


def gloo_latency(shape: tuple, repeats: int = 300) -> tuple[float, float]:
    """One-way time of a ``shape`` float32 message between two ranks (half a round trip), s.

    Returns the median and the 5th percentile: on a contended machine the
    median includes waiting for the receiver to be scheduled, the low
    percentile is closer to gloo's own cost.
    """
    context = _start_context("forkserver")
    queue = context.Queue()
    port = _free_port()
    procs = [context.Process(target=_ping_pong, args=(r, port, shape, repeats, queue)) for r in range(2)]
    for p in procs:
        p.start()
    times = queue.get(timeout=300)
    for p in procs:
        p.join(timeout=60)
    times = sorted(times[repeats // 10:])
    return statistics.median(times) / 2, times[len(times) // 20] / 2


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=INLConfig().epochs)
    parser.add_argument("--mode", choices=("dense", "tree"), default=INLConfig().mode)
    parser.add_argument("--nodes", type=int, default=INLConfig().n_nodes)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    config = INLConfig(n_nodes=args.nodes, mode=args.mode, epochs=args.epochs, threads=1)

    rows = []
    cpu = time.process_time()
    train(config.replace(epochs=1), progress=False)  # also warms up lazy imports
    cpu_one = time.process_time() - cpu
    tic, cpu = time.perf_counter(), time.process_time()
    local = train(config, progress=False)
    rows.append(_row("in-process", local, time.perf_counter() - tic))
    if config.epochs > 1:
        rows[0]["cpu s/epoch"] = (time.process_time() - cpu - cpu_one) / (config.epochs - 1)
    for name in ("distributed (cold)", "distributed (warm)"):
        tic = time.perf_counter()
        remote = run_distributed(config, progress=False)
        rows.append(_row(name, remote, time.perf_counter() - tic))

    difference = max((a - b).abs().max().item() for a, b in
                     zip(local.model.state_dict().values(), remote.model.state_dict().values()))
    traffic = remote.record["distributed"]
    batches = -(-remote.record["n_train"] // config.batch_size)
    depth = nx.dag_longest_path_length(remote.routing)
    latency, fast = gloo_latency((config.batch_size, config.latent_width))

    print(f"config: {config.n_nodes} nodes, mode {config.mode}, {remote.record['edges_used']} edges, "
          f"{config.epochs} epochs x {batches} batches, batch {config.batch_size}, L = {config.latent_width}; "
          f"torch {torch.__version__}, {os.cpu_count()} CPUs")
    print()
    print(f"| {'run':<20} | {'s/epoch':>8} | {'CPU s/epoch':>11} | {'loop s':>7} | {'other s':>7} "
          f"| {'total s':>7} | {'comm wait':>9} | {'test_acc':>8} |")
    print(f"|{'-' * 22}|{'-' * 10}|{'-' * 13}|{'-' * 9}|{'-' * 9}|{'-' * 9}|{'-' * 11}|{'-' * 10}|")
    for r in rows:
        cpu = "-" if r["cpu s/epoch"] is None else f"{r['cpu s/epoch']:.3f}"
        print(f"| {r['run']:<20} | {r['s/epoch']:8.3f} | {cpu:>11} | {r['loop s']:7.2f} | {r['other s']:7.2f} "
              f"| {r['total s']:7.2f} | {r['comm wait']:>9} | {r['test_acc']:8.4f} |")
    print()
    warm, base = rows[2], rows[0]
    if base["cpu s/epoch"] is not None:
        print(f"distributed / in-process, CPU s/epoch (warm): {warm['cpu s/epoch'] / base['cpu s/epoch']:.2f}x")
    print(f"distributed / in-process, s/epoch (warm): {warm['s/epoch'] / base['s/epoch']:.2f}x; "
          f"whole call, cold: {rows[1]['total s'] / base['total s']:.2f}x, warm: "
          f"{warm['total s'] / base['total s']:.2f}x")
    print(f"bytes handed to gloo: {traffic['comm_bytes_total']} (accounting {remote.exchange.bytes_total}, "
          f"equal: {traffic['comm_bytes_total'] == remote.exchange.bytes_total}); "
          f"max |param difference| vs in-process: {difference:.1e}")
    messages = traffic["comm_messages"] // config.epochs
    print(f"messages per epoch: {messages} training + {remote.record['edges_used']} held-out; "
          f"gloo one-way latency of a {config.batch_size}x{config.latent_width} float32 message "
          f"(ping-pong): median {latency * 1e6:.0f} us, 5th percentile {fast * 1e6:.0f} us")
    print(f"critical path per batch: 2 x depth {depth} = {2 * depth} sequential messages "
          f"= {2 * depth * fast * batches * 1e3:.1f} to {2 * depth * latency * batches * 1e3:.1f} ms "
          f"of latency per epoch")
    return 0


if __name__ == "__main__":
    sys.exit(main())
