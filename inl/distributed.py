"""In-network learning across processes: one process per graph node over ``torch.distributed``.

The same training as :func:`inl._training.train`, on the same models
(:class:`inl.model.INLNetwork`, one :class:`inl.model.NodeModule` per node) and
the same routing, but every node lives in its own process: rank ``r`` hosts node
``r``, so ``world_size = n_nodes``. For each mini-batch, along every routing edge
``(c, p)`` (child -> parent),

.. math::

    c \\xrightarrow{\\; m_c \\in \\mathbb R^{B \\times L} \\;} p
    \\qquad\\text{(forward: the latent)}, \\qquad
    p \\xrightarrow{\\; \\partial \\mathcal L / \\partial m_c \\;} c
    \\qquad\\text{(backward: its error)},

with point-to-point ``isend``/``irecv`` of the gloo backend. A node receives its
children's latents, runs :meth:`inl.model.INLNetwork.node_forward`, sends its
message to each parent and waits for the errors; the root computes the loss.
Each node then back-propagates its own share :func:`inl.model.node_objective`
plus the received errors, sends the errors of its inputs to its children and
steps its own Adam optimizer on its own parameters. Summed over the nodes this
is exactly the gradient of the in-process objective, so every rank reproduces
its part of :func:`inl._training.train` step by step:

- initialisation: every rank builds the network with
  :func:`inl._training.build_network` (per-node generators
  ``torch_generator(seed, "init", v)``) and keeps only its node's module;
- sampling noise: node ``v`` draws its reparameterisation and Gumbel noise from
  ``torch_generator(seed, "noise", v)`` (:func:`inl.model.node_generators`), as
  in process;
- data order: :func:`inl._training.batch_order` of ``(seed, epoch)``, the same on
  every rank.

The final parameters therefore equal the in-process ones up to float rounding
(the order of a few gradient sums). Rank 0 gathers the trained node modules, the
exchange counts and the per-node statistics, rebuilds the whole network and
writes the record with :func:`inl._training.build_record`, so the record has the
schema of :func:`inl._training.train`'s plus a ``distributed`` entry (world size,
backend and the bytes handed to the communication layer, per edge). The
exchange accounting is the trainer's own (:class:`inl.accounting.ExchangeCounter`
on the edge tensors); independently, every tensor passed to ``isend`` is counted
(``numel * element_size``) per edge and direction, and the two counts agree.

Failures never hang: every point-to-point operation waits at most ``timeout``
seconds (gloo's own timeout); a rank whose peer died gets an error at once
(closed connection) or at the timeout; the launcher of :func:`run_distributed`
watches the processes, terminates the survivors as soon as one rank fails and
raises :class:`DistributedTrainingError` naming it. The run log is written by
rank 0 only after training finished, atomically (:func:`inl.runlog.append_record`).

Two ways to launch:

- :func:`run_distributed` starts the ranks on this machine as fresh processes
  (``multiprocessing`` fork server or spawn; loopback, ``MASTER_ADDR=127.0.0.1``
  and a free port) and returns the :class:`INLRun`;
- the standard environment (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``,
  ``MASTER_PORT``, e.g. from ``torchrun``) with :func:`worker_main`, for
  ``run.toml`` holding ``n_nodes = 5``; on one machine::

      torchrun --standalone --nproc-per-node 5 -m inl.distributed run.toml --run-log runs.jsonl

  and across two machines, one launcher on each (node 0 at address ``$HOST0``,
  port ``$PORT`` open to the other; ranks 0-2 on the first, 3-4 on the second)::

      torchrun --nnodes 2 --node-rank 0 --nproc-per-node 3 --master-addr $HOST0 --master-port $PORT -m inl.distributed run.toml --run-log runs.jsonl
      torchrun --nnodes 2 --node-rank 1 --nproc-per-node 2 --master-addr $HOST0 --master-port $PORT -m inl.distributed run.toml --run-log runs.jsonl

  Rank 0 (on node 0) appends the record to ``runs.jsonl`` in its working
  directory; the other machines write nothing. No option of the entry point is,
  or abbreviates, an option of ``torchrun`` (hence ``--run-log``, where
  ``ratebound train`` says ``--log``). Every worker runs the same config file and
  code; gloo picks the network interface from the host name unless
  ``GLOO_SOCKET_IFNAME`` names one. ``tests/inl/test_torchrun.py`` runs these
  commands as written (loopback only).

References
----------
.. [1] M. Moldoveanu and A. Zaidi, "In-network learning: distributed training
       and inference in networks", 2021.
.. [2] "Sparse In-Network Learning via Shortest-Path Backpropagation and
       Finite-Rate Gating", arXiv:2605.23424.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import math
import os
import pickle
import socket
import sys
import tempfile
import time
import traceback
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import networkx as nx
import numpy as np
import torch
import torch.distributed as dist
from torch.nn import functional as F

from estimators._files import atomic_replace
from estimators._validation import positive_float, positive_int
from inl.accounting import ExchangeCounter
from inl.model import batch_gate_rate, node_generators, node_objective
from inl._training import (
    INLConfig,
    INLRun,
    Setup,
    batch_order,
    build_network,
    TrainingDiverged,
    build_record,
    float_tensor,
    prepare,
    torch_settings,
)

__all__ = [
    "DistributedTrainingError",
    "EdgeTraffic",
    "run_distributed",
    "train_rank",
    "init_from_env",
    "load_config",
    "worker_main",
]

#: Backends this trainer runs on (CPU tensors, point-to-point send/recv).
BACKENDS = ("gloo",)
#: Seconds the ranks may take to start and meet (imports on a busy machine are slow).
STARTUP_TIMEOUT = 300.0
#: Seconds the launcher lets the other ranks report their own errors after one failed.
FAILURE_GRACE = 3.0
_RESULT, _ERRORS = "result.pkl", "errors"
#: Exit status of a rank that found itself re-running an unguarded main script (see _importing_main).
_UNGUARDED_MAIN = 87
#: Modules the fork server imports once for all ranks: beside this one, what
#: ``torch.use_deterministic_algorithms`` (dynamo, inductor), the first parameter
#: initialisation (``torch.nn.utils.skip_init``: meta tensors, sympy) import lazily,
#: seconds of CPU per process each.
_PRELOAD = ("torch._dynamo", "torch._inductor.config", "torch.fx.experimental.symbolic_shapes")


class DistributedTrainingError(RuntimeError):
    """A rank of a distributed INL run died, hung or raised.

    Attributes
    ----------
    failed_ranks : tuple of int
        Ranks that died or raised, the first to fail first.
    hung_ranks : tuple of int
        Ranks still running when the run was stopped (terminated by the launcher).
    """

    def __init__(self, message: str, *, failed_ranks=(), hung_ranks=()) -> None:
        super().__init__(message)
        self.failed_ranks = tuple(failed_ranks)
        self.hung_ranks = tuple(hung_ranks)


# --------------------------------------------------------------------------- traffic


class EdgeTraffic:
    """Point-to-point traffic of one rank, counted per edge and direction as it is handed to gloo.

    Every tensor given to :meth:`send` adds ``numel * element_size`` bytes to
    ``sent[(phase, (child, parent))]``, ``phase`` one of ``"forward"``,
    ``"backward"`` (training) and ``"eval"`` (the per-epoch held-out pass).
    ``wait_seconds`` accumulates the time spent blocked on the network.
    """

    def __init__(self, *, rank: int, group=None) -> None:
        self.rank = rank
        self.group = group
        self.sent: dict = defaultdict(int)
        self.messages: dict = defaultdict(int)
        self.wait_seconds = 0.0

    def send(self, peer: int, tensor: torch.Tensor, *, edge: tuple, phase: str):
        """Start sending ``tensor`` to ``peer``; returns a handle for :meth:`wait_sent`."""
        payload = tensor.detach().contiguous()
        self.sent[(phase, edge)] += payload.numel() * payload.element_size()
        self.messages[phase] += 1
        work = dist.isend(payload, dst=peer, group=self.group)
        return work, payload, peer, edge, phase

    def receive(self, requests: Sequence[tuple]) -> list[torch.Tensor]:
        """Receive one tensor per ``(peer, shape, edge, phase)``; all are posted, then awaited."""
        posted = []
        for peer, shape, edge, phase in requests:
            buffer = torch.empty(shape, dtype=torch.float32)
            posted.append((dist.irecv(buffer, src=peer, group=self.group), buffer, peer, edge, phase))
        self._wait(posted, "receiving")
        return [buffer for _, buffer, *_ in posted]

    def wait_sent(self, handles: Sequence[tuple]) -> None:
        """Block until the sends of ``handles`` are done."""
        self._wait(handles, "sending")

    def _wait(self, handles, verb: str) -> None:
        tic = time.perf_counter()
        try:
            for work, _, peer, edge, phase in handles:
                try:
                    work.wait()
                except RuntimeError as exc:
                    raise DistributedTrainingError(
                        f"rank {self.rank}: {verb} the {phase} message of edge {edge[0]}->{edge[1]} "
                        f"{'from' if verb == 'receiving' else 'to'} rank {peer} failed: {exc}",
                        failed_ranks=(peer,),
                    ) from exc
        finally:
            self.wait_seconds += time.perf_counter() - tic


# --------------------------------------------------------------------------- one node


@dataclass(frozen=True)
class _Fault:
    """Test hook: rank ``rank`` exits (``os._exit(1)``) or hangs before training step ``step``."""

    rank: int
    step: int
    kind: str = "exit"

    def maybe_trigger(self, rank: int, step: int) -> None:
        if rank != self.rank or step != self.step:
            return
        if self.kind == "exit":
            os._exit(1)
        while True:  # "hang": alive, holding its connections, never communicating
            time.sleep(3600)


class _NodeProcess:
    """The part of the training that happens at one node (one rank)."""

    def __init__(self, config: INLConfig, setup: Setup, node: int, traffic: EdgeTraffic) -> None:
        self.config, self.setup, self.node, self.traffic = config, setup, node, traffic
        self.network = build_network(config, setup.routing, setup.views)  # every node's init, as in process
        self.module = self.network.nodes[str(node)]
        self.optimizer = torch.optim.Adam(self.module.parameters(), lr=config.lr, foreach=True)
        self.generator = node_generators(config.seed, [node])[node]
        self.children = self.network.node_children(node)
        self.parents = self.network.node_parents(node)
        self.is_root = node == self.network.root
        self.counter = ExchangeCounter()
        views = setup.views
        index = None if self.is_root else self.network.view_index[node]
        self.train_view = None if index is None else float_tensor(views.train_views[index])
        self.test_view = None if index is None else float_tensor(views.test_views[index])
        self.train_labels = torch.from_numpy(views.train_labels)
        self.test_labels = torch.from_numpy(views.test_labels)
        self.step = 0

    def _receive_children(self, batch: int, phase: str) -> list[torch.Tensor]:
        width = self.config.latent_width
        return self.traffic.receive(
            [(c, (batch, width), (c, self.node), phase) for c in self.children]
        )

    def train_batch(self, idx: np.ndarray, fault: _Fault | None) -> dict:
        """One optimisation step of this node; returns its batch statistics."""
        if fault is not None:
            fault.maybe_trigger(self.node, self.step)
        self.step += 1
        index = torch.from_numpy(idx)
        received = [m.requires_grad_() for m in self._receive_children(len(idx), "forward")]
        view = None if self.train_view is None else self.train_view[index]
        out = self.network.node_forward(
            self.node, view, received, generator=self.generator, training=True
        )
        labels = self.train_labels[index]
        objective = node_objective(
            out, labels, beta_latent=self.config.beta_latent, beta_gate=self.config.beta_gate
        )
        outputs, errors = self._exchange_message(out.message)
        if objective.requires_grad:
            outputs, errors = [objective, *outputs], [None, *errors]
        self.optimizer.zero_grad(set_to_none=True)
        torch.autograd.backward(outputs, errors)
        sends = [self._send_error(c, m) for c, m in zip(self.children, received)]
        self.optimizer.step()
        self.traffic.wait_sent(sends)
        return _batch_stats(out, objective, labels)

    def _exchange_message(self, message):
        """Send ``message`` to every parent (counted by the trainer's counter) and receive the errors."""
        edges = [(self.node, p) for p in self.parents]
        copies = [self.counter.send(edge, message) for edge in edges]
        sends = [
            self.traffic.send(p, copy, edge=edge, phase="forward")
            for p, copy, edge in zip(self.parents, copies, edges)
        ]
        errors = self.traffic.receive(
            [(p, tuple(message.shape), edge, "backward") for p, edge in zip(self.parents, edges)]
        ) if edges else []
        self.traffic.wait_sent(sends)
        return copies, errors

    def _send_error(self, child: int, received: torch.Tensor):
        if received.grad is None:  # every received latent feeds the gate and the maps
            raise RuntimeError(f"node {self.node}: no error for the message of child {child}")
        return self.traffic.send(child, received.grad, edge=(child, self.node), phase="backward")

    def train_epoch(self, epoch: int, fault: _Fault | None) -> dict:
        """One pass over the training set in the epoch's order; weighted batch means."""
        self.module.train()
        n = self.train_labels.shape[0]
        sums = defaultdict(float)
        for idx in batch_order(n, self.config.batch_size, seed=self.config.seed, epoch=epoch):
            for key, value in self.train_batch(idx, fault).items():
                sums[key] += len(idx) / n * value
        return dict(sums)

    @torch.no_grad()
    def test_accuracy(self) -> float | None:
        """The held-out forward pass (gates hard, latents at their means); accuracy at the root."""
        self.module.eval()
        received = self._receive_children(self.test_labels.shape[0], "eval")
        out = self.network.node_forward(self.node, self.test_view, received, training=False)
        sends = [
            self.traffic.send(p, out.message, edge=(self.node, p), phase="eval") for p in self.parents
        ]
        self.traffic.wait_sent(sends)
        if not self.is_root:
            return None
        return float((out.logits.argmax(dim=-1) == self.test_labels).double().mean())

    def report(self, history: list, seconds: float) -> dict:
        """What rank 0 needs from this node to rebuild the run."""
        return {
            "node": self.node,
            "state": {k: v.detach().clone() for k, v in self.module.state_dict().items()},
            "history": history,
            "seconds": seconds,
            "counter": {
                name: dict(getattr(self.counter, name))
                for name in ("forward", "backward", "forward_bytes", "backward_bytes")
            },
            "sent": dict(self.traffic.sent),
            "messages": dict(self.traffic.messages),
        }


@torch.no_grad()
def _batch_stats(out, objective: torch.Tensor, labels: torch.Tensor) -> dict:
    """This node's share of the history's batch statistics (summed over nodes by rank 0)."""
    stats = {"objective": objective.item()}
    if out.logits is not None:
        stats["ce"] = F.cross_entropy(out.logits, labels).item()
    if out.kl is not None:
        stats["kl"] = out.kl.mean().item()
    if out.gate_probs is not None:
        stats["gate_rate"] = batch_gate_rate(out.gate_probs).item()
    return stats


# --------------------------------------------------------------------------- one rank


def _check_world(config: INLConfig, world_size: int) -> None:
    if world_size != config.n_nodes:
        raise ValueError(
            f"world_size must equal config.n_nodes ({config.n_nodes}): one process per node, "
            f"got {world_size}"
        )


def train_rank(
    config: INLConfig,
    *,
    rank: int,
    world_size: int,
    group=None,
    graph: nx.Graph | None = None,
    backend: str = "gloo",
    progress: bool = False,
    _fault: _Fault | None = None,
) -> INLRun | None:
    """Train node ``rank`` of ``config`` inside an initialised process group.

    Call on every rank of a group of ``config.n_nodes`` processes (after
    :func:`init_from_env` or ``torch.distributed.init_process_group``). Returns
    the whole run (:class:`inl._training.INLRun`, record included) on rank 0 and
    ``None`` elsewhere; nothing is written.

    Parameters
    ----------
    config : INLConfig
    rank, world_size : int
        This process's rank (= the node it hosts) and the number of processes.
    group : ProcessGroup, optional
        The group to communicate in (default: the default group); its ranks must
        be the global ranks ``0 .. world_size - 1``.
    graph : networkx.Graph, optional
        A user network, as in :func:`inl._training.train` (the same on every rank).
    backend : str
        Recorded in the record's ``distributed`` entry.
    progress : bool
        A tqdm bar over epochs on the root's rank.
    """
    _check_world(config, world_size)
    setup = prepare(config, graph=graph)
    with torch_settings(threads=config.threads, deterministic=config.deterministic):
        node = _NodeProcess(config, setup, rank, EdgeTraffic(rank=rank, group=group))
        history, seconds = _fit_node(node, progress and node.is_root, _fault)
        gathered = [None] * world_size if rank == 0 else None
        dist.gather_object(node.report(history, seconds), gathered, dst=0, group=group)
        if rank != 0:
            return None
        return _assemble(config, setup, gathered, backend)


def _epochs(config: INLConfig, progress: bool):
    """The epochs, under a tqdm bar when ``progress`` (no bar, no tqdm lock, otherwise)."""
    if not progress:
        return None, range(config.epochs)
    from tqdm.auto import tqdm

    bar = tqdm(range(config.epochs), desc=f"inl {config.mode} x{config.n_nodes} ranks",
               unit="epoch", leave=False)
    return bar, bar


def _fit_node(node: _NodeProcess, progress: bool, fault: _Fault | None) -> tuple[list, float]:
    config, history = node.config, []
    start = time.perf_counter()
    bar, epochs = _epochs(config, progress)
    for epoch in epochs:
        tic, cpu, waited = time.perf_counter(), time.process_time(), node.traffic.wait_seconds
        stats = node.train_epoch(epoch, fault)
        test_acc = node.test_accuracy()
        stats.update(epoch=epoch, test_acc=test_acc, seconds=time.perf_counter() - tic,
                     cpu_seconds=time.process_time() - cpu, comm_seconds=node.traffic.wait_seconds - waited)
        if node.is_root and not math.isfinite(stats["ce"]):
            raise TrainingDiverged(f"training diverged at epoch {epoch}: ce {stats['ce']}")
        if bar is not None:
            bar.set_postfix(ce=f"{stats['ce']:.3f}", test_acc=f"{test_acc:.3f}")
        history.append(stats)
    if bar is not None:
        bar.close()
    return history, time.perf_counter() - start


def _merged_history(network, reports: dict) -> list[dict]:
    """Per epoch: the in-process history's fields, summed over nodes in routing order."""
    root, epochs = network.root, len(reports[network.root]["history"])
    history = []
    for e in range(epochs):
        rows = {v: reports[v]["history"][e] for v in network.order}
        history.append({
            "objective": sum(rows[v]["objective"] for v in network.order),
            "ce": rows[root]["ce"],
            "kl": sum(rows[v]["kl"] for v in network.view_nodes),
            "gate_rate": sum(rows[v]["gate_rate"] for v in network.gated_nodes()),
            "epoch": e,
            "test_acc": rows[root]["test_acc"],
            "seconds": max(r["seconds"] for r in rows.values()),
            "comm_seconds": [rows[v]["comm_seconds"] for v in sorted(rows)],
            "cpu_seconds": [rows[v]["cpu_seconds"] for v in sorted(rows)],
        })
    return history


def _traffic_summary(reports: dict, exchange, backend: str) -> dict:
    """The record's ``distributed`` entry: bytes handed to the communication layer."""
    sent = defaultdict(int)
    for report in reports.values():
        for key, nbytes in report["sent"].items():
            sent[key] += nbytes
    per_edge = defaultdict(int)
    for (phase, edge), nbytes in sent.items():
        if phase != "eval":
            per_edge[edge] += nbytes
    forward = sum(b for (p, _), b in sent.items() if p == "forward")
    backward = sum(b for (p, _), b in sent.items() if p == "backward")
    return {
        "world_size": len(reports),
        "backend": backend,
        "comm_bytes_total": forward + backward,
        "comm_bytes_forward": forward,
        "comm_bytes_backward": backward,
        "comm_bytes_per_sample": (forward + backward) / exchange.n_samples,
        "comm_bytes_per_edge": [[u, v, b] for (u, v), b in sorted(per_edge.items())],
        "comm_messages": sum(r["messages"].get(p, 0) for r in reports.values() for p in ("forward", "backward")),
        "eval_bytes_total": sum(b for (p, _), b in sent.items() if p == "eval"),
        "accounting_bytes_total": exchange.bytes_total,
    }


def _assemble(config: INLConfig, setup: Setup, gathered: list, backend: str) -> INLRun:
    """Rank 0: the trained network from every node's parameters, the exchange, the record."""
    reports = {r["node"]: r for r in gathered}
    network = build_network(config, setup.routing, setup.views)
    for v, report in reports.items():
        network.nodes[str(v)].load_state_dict(report["state"])
    network.eval()
    counter = ExchangeCounter()
    for report in reports.values():
        for name, counts in report["counter"].items():
            getattr(counter, name).update(counts)
    exchange = counter.summary(setup.views.n_train * config.epochs)
    record = build_record(config, setup, network, exchange)
    record["distributed"] = _traffic_summary(reports, exchange, backend)
    return INLRun(
        config=config, record=record, model=network, graph=setup.graph, routing=setup.routing,
        history=tuple(_merged_history(network, reports)), exchange=exchange,
        seconds=max(r["seconds"] for r in reports.values()),
    )


# --------------------------------------------------------------------------- process groups


def _seconds(value, name: str) -> datetime.timedelta:
    if isinstance(value, datetime.timedelta):
        value = value.total_seconds()
    return datetime.timedelta(seconds=positive_float(value, name))


def _check_backend(backend: str) -> str:
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS} (CPU point-to-point), got {backend!r}")
    return backend


def init_from_env(*, backend: str = "gloo", timeout: float = 60.0) -> tuple[int, int, object]:
    """Join the process group described by ``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``.

    The rendezvous may take up to ``max(timeout, STARTUP_TIMEOUT)`` seconds (the
    ranks start at different times); the returned group, used for all training
    traffic, fails any single send or receive that takes longer than
    ``timeout`` seconds. Returns ``(rank, world_size, group)``.
    """
    backend = _check_backend(backend)
    limit = _seconds(timeout, "timeout")
    missing = [k for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
    if missing:
        raise ValueError(f"environment variables {missing} are not set (torchrun sets them)")
    startup = max(limit, datetime.timedelta(seconds=STARTUP_TIMEOUT))
    dist.init_process_group(backend, init_method="env://", timeout=startup)
    rank, world_size = dist.get_rank(), dist.get_world_size()
    group = dist.new_group(list(range(world_size)), timeout=limit, backend=backend)
    return rank, world_size, group


@dataclass(frozen=True)
class _Job:
    """What every spawned rank needs (pickled to the children)."""

    config: INLConfig
    graph: nx.Graph | None
    backend: str
    timeout: float
    port: int
    folder: str
    log: str | None
    progress: bool
    fault: _Fault | None


def _spawned_rank(rank: int, job: _Job) -> None:
    """Entry point of a rank spawned by :func:`run_distributed` (loopback rendezvous)."""
    torch.set_num_threads(1)
    os.environ.update(
        RANK=str(rank), WORLD_SIZE=str(job.config.n_nodes),
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(job.port),
    )
    try:
        rank, world_size, group = init_from_env(backend=job.backend, timeout=job.timeout)
        run = train_rank(
            job.config, rank=rank, world_size=world_size, group=group, graph=job.graph,
            backend=job.backend, progress=job.progress, _fault=job.fault,
        )
        if run is not None:
            _publish(run, job)
        dist.destroy_process_group()
    except BaseException as exc:  # report, then leave without running exit handlers that could block
        _write_error(Path(job.folder), rank, exc)
        os._exit(1)


def _publish(run: INLRun, job: _Job) -> None:
    """Rank 0: append the record to the log (if any), then hand the run to the launcher."""
    if job.log is not None:
        from inl.runlog import append_record

        append_record(job.log, run.record)
    _atomic_write(Path(job.folder) / _RESULT, pickle.dumps(run))


def _atomic_write(path: Path, data: bytes) -> None:
    with atomic_replace(path) as fh:
        fh.write(data)


def _write_error(folder: Path, rank: int, exc: BaseException) -> None:
    text = str(exc) if isinstance(exc, DistributedTrainingError) else f"{type(exc).__name__}: {exc}"
    if not text.startswith(f"rank {rank}:"):
        text = f"rank {rank}: {text}"
    report = {"rank": rank, "time": time.time(), "error": text,
              "traceback": "".join(traceback.format_exception(exc))}
    with contextlib.suppress(OSError):
        _atomic_write(folder / _ERRORS / f"{rank}.json", json.dumps(report).encode())


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --------------------------------------------------------------------------- launcher


def run_distributed(
    config: INLConfig,
    *,
    world_size: int | None = None,
    backend: str = "gloo",
    timeout: float = 60.0,
    deadline: float | None = None,
    graph: nx.Graph | None = None,
    log: str | os.PathLike | None = None,
    progress: bool = True,
    start_method: str = "forkserver",
    _fail_rank: int | None = None,
    _fail_at_step: int = 0,
    _fail_mode: str = "exit",
) -> INLRun:
    """Train ``config`` with one process per node on this machine; return the run.

    Spawns ``config.n_nodes`` processes (``multiprocessing`` spawn) that meet on
    loopback (``127.0.0.1``, a free port); rank ``r`` hosts node ``r``. The
    result equals :func:`inl._training.train`'s up to float rounding: same
    initialisation, noise, data order and hence parameters, exchange and record,
    plus the record's ``distributed`` entry with the bytes handed to gloo
    (``comm_bytes_total`` equals ``exchange_bytes_total``; ``comm_bytes_per_edge``
    lists them per edge).

    The rank processes import the caller's main script, so a script calls this
    under ``if __name__ == "__main__":`` (without it, the error says so in one line).

    Parameters
    ----------
    config : INLConfig
    world_size : int, optional
        Must equal ``config.n_nodes`` (the default).
    backend : str
        ``"gloo"``.
    timeout : float
        Seconds any single send or receive may wait before its rank fails.
    deadline : float, optional
        Seconds the whole run may take (start-up included); ``None`` for no limit.
    graph : networkx.Graph, optional
        A user network, as in :func:`inl._training.train`.
    log : path, optional
        A JSONL run log to which rank 0 appends the record (atomically, only on success).
    progress : bool
        A tqdm bar over epochs (drawn by the root's process).
    start_method : str
        ``"forkserver"`` (default on POSIX) or ``"spawn"``: how the rank processes
        start. Both give fresh single-threaded processes (never a fork of this,
        possibly multi-threaded, process); the fork server imports torch and this
        module once and forks every rank from there, where ``"spawn"`` imports
        them once per rank (seconds of CPU each). The fork server is this
        process's ``multiprocessing`` one; its preload list gains this module and
        the torch modules imported lazily on the way (:data:`_PRELOAD`).
    _fail_rank, _fail_at_step, _fail_mode
        Test hooks: rank ``_fail_rank`` leaves with ``os._exit(1)``
        (``"exit"``) or blocks forever (``"hang"``) before its training step
        ``_fail_at_step`` (counted from 0 over the run).

    Returns
    -------
    INLRun
        ``model`` is the whole network rebuilt from the nodes' trained
        parameters; ``history`` adds, per rank, ``comm_seconds`` (wall time
        blocked in send/receive) and ``cpu_seconds`` (process CPU time) to
        :func:`inl._training.train`'s fields.

    Raises
    ------
    DistributedTrainingError
        When a rank dies, raises or hangs; the message names the ranks (the
        first to fail first) and the error each reported. No survivor is left
        running and nothing is written to ``log``.
    ValueError
        On a bad argument.

    Examples
    --------
    >>> cfg = INLConfig(n_nodes=4, mode="tree", epochs=1, dataset_params={"n_train": 200, "n_test": 100})
    >>> run = run_distributed(cfg, progress=False)  # doctest: +SKIP
    >>> run.record["distributed"]["comm_bytes_total"] == run.record["exchange_bytes_total"]  # doctest: +SKIP
    True
    """
    if _importing_main():
        os._exit(_UNGUARDED_MAIN)  # a rank re-running the caller's script: the launcher says why
    if not isinstance(config, INLConfig):
        raise ValueError(f"config must be an INLConfig, got {type(config).__name__}")
    fault = _make_fault(config, _fail_rank, _fail_at_step, _fail_mode)
    context = _start_context(start_method)
    if deadline is not None:
        deadline = positive_float(deadline, "deadline")
    with tempfile.TemporaryDirectory(prefix="inl-dist-") as folder:
        job = _job(config, world_size=world_size, backend=backend, timeout=timeout, graph=graph,
                   log=log, progress=progress, fault=fault, folder=folder)
        _launch(job, deadline, context)
        with open(Path(folder) / _RESULT, "rb") as fh:
            return pickle.load(fh)


def _job(config, *, world_size, backend, timeout, graph, log, progress, fault, folder) -> _Job:
    if world_size is not None:
        _check_world(config, positive_int(world_size, "world_size"))
    if log is not None and not Path(log).parent.is_dir():
        raise OSError(f"log directory {Path(log).parent} does not exist")
    prepare(config, graph=graph)  # validate the network and data before starting processes
    return _Job(
        config=config, graph=graph, backend=_check_backend(backend),
        timeout=_seconds(timeout, "timeout").total_seconds(), port=_free_port(), folder=folder,
        log=None if log is None else os.fspath(log), progress=bool(progress), fault=fault,
    )


def _importing_main() -> bool:
    """Whether this process is a rank still importing its parent's main script.

    Fresh rank processes (fork server or spawn) import the script that started
    the run (as ``__mp_main__``); a script without ``if __name__ == "__main__":``
    then calls :func:`run_distributed` again in every rank. ``multiprocessing``
    marks that phase with ``_inheriting`` (its own check, which would raise
    there, reads the same flag).
    """
    import multiprocessing

    return bool(getattr(multiprocessing.current_process(), "_inheriting", False))


def _make_fault(config, rank, step, mode) -> _Fault | None:
    if rank is None:
        return None
    if mode not in ("exit", "hang"):
        raise ValueError(f"_fail_mode must be 'exit' or 'hang', got {mode!r}")
    rank = positive_int(rank, "_fail_rank", minimum=0)
    if rank >= config.n_nodes:
        raise ValueError(f"_fail_rank must be a rank in 0..{config.n_nodes - 1}, got {rank}")
    return _Fault(rank=rank, step=positive_int(step, "_fail_at_step", minimum=0), kind=mode)


def _start_context(method: str):
    import multiprocessing

    if method not in ("forkserver", "spawn"):
        raise ValueError(f"start_method must be 'forkserver' or 'spawn', got {method!r}")
    if method not in multiprocessing.get_all_start_methods():
        method = "spawn"
    context = multiprocessing.get_context(method)
    if method == "forkserver":
        context.set_forkserver_preload([*_PRELOAD, __name__])
    return context


def _launch(job: _Job, deadline: float | None, context) -> None:
    """Start the ranks, wait for all of them, stop every survivor when one fails."""
    from multiprocessing.connection import wait

    (Path(job.folder) / _ERRORS).mkdir()
    procs = [
        context.Process(target=_spawned_rank, args=(r, job), name=f"inl-rank-{r}", daemon=True)
        for r in range(job.config.n_nodes)
    ]
    start = time.monotonic()
    try:
        for p in procs:
            p.start()
        while True:
            running = [p for p in procs if p.exitcode is None]
            failed = any(p.exitcode not in (None, 0) for p in procs)
            late = deadline is not None and time.monotonic() - start > deadline
            if failed or late or not running:
                break
            wait([p.sentinel for p in running], timeout=0.5)
        if failed or late:
            _stop(procs, grace=0.0 if late else FAILURE_GRACE)
            raise _failure(procs, Path(job.folder), deadline if late else None)
    finally:
        _stop(procs, grace=0.0)
    if not (Path(job.folder) / _RESULT).exists():
        raise DistributedTrainingError("rank 0 finished without handing back the run", failed_ranks=(0,))


def _stop(procs, *, grace: float) -> None:
    """Give the ranks ``grace`` seconds to finish on their own, then terminate (and kill) the rest."""
    from multiprocessing.connection import wait

    end = time.monotonic() + grace
    running = lambda: [p.sentinel for p in procs if p.pid is not None and p.exitcode is None]  # noqa: E731
    while grace > 0 and running() and time.monotonic() < end:
        wait(running(), timeout=max(0.0, end - time.monotonic()))
    started = [p for p in procs if p.pid is not None]
    for p in started:
        if p.exitcode is None:
            p.terminate()
    for p in started:
        p.join(timeout=2.0)
        if p.exitcode is None:
            p.kill()
            p.join()


def _failure(procs, folder: Path, deadline: float | None) -> DistributedTrainingError:
    """The error naming the ranks that died, then those still running (hung), then those that
    raised, the first to fail first: when one rank dies or hangs, the others' errors follow from it."""
    if any(p.exitcode == _UNGUARDED_MAIN for p in procs):
        script = getattr(sys.modules.get("__main__"), "__file__", None) or "the main script"
        return DistributedTrainingError(
            f"the rank processes re-ran {script} and called run_distributed again: put the code "
            'that calls it under `if __name__ == "__main__":`',
            failed_ranks=[r for r, p in enumerate(procs) if p.exitcode == _UNGUARDED_MAIN],
        )
    reports = {}
    for path in (folder / _ERRORS).glob("*.json"):
        with contextlib.suppress(OSError, ValueError):
            report = json.loads(path.read_text())
            reports[int(report["rank"])] = report
    dead = [r for r, p in enumerate(procs) if p.exitcode not in (0, None) and r not in reports
            and p.exitcode != -15]
    hung = [r for r, p in enumerate(procs) if p.exitcode == -15 and r not in reports]
    raised = sorted(reports, key=lambda r: reports[r]["time"])
    lines = [f"rank {r} died (exit code {procs[r].exitcode}) without reporting an error" for r in dead]
    lines += [f"rank {r} was still running and was terminated" for r in hung]
    lines += [reports[r]["error"] for r in raised]
    head = (f"distributed INL run exceeded its deadline of {deadline:g} s" if deadline is not None
            else "distributed INL run failed")
    return DistributedTrainingError(
        head + ":\n  " + "\n  ".join(lines), failed_ranks=dead + raised, hung_ranks=hung
    )


# --------------------------------------------------------------------------- torchrun entry


def load_config(path: str | os.PathLike) -> tuple[dict, Path | None]:
    """The config table of a TOML file and its ``log`` path (resolved against the file's folder).

    The file holds the fields of :class:`inl._training.INLConfig` at top level (a
    ``[dataset_params]`` table for the dataset options) and optionally
    ``log = "runs.jsonl"``. Shared by ``ratebound train`` and :func:`worker_main`.
    """
    import tomllib

    path = Path(path)
    try:
        with path.open("rb") as fh:
            table = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"config {path}: {exc}") from None
    log = table.pop("log", None)
    if log is not None and not isinstance(log, str):
        raise ValueError(f"config {path}: log must be a string path, got {log!r}")
    return table, (None if log is None else path.parent / log)


class _WorkerParser(argparse.ArgumentParser):
    """argparse with a one-line error and exit status 2."""

    def error(self, message: str):  # noqa: D401 - argparse API
        self.exit(2, f"{self.prog}: error: {message}\n")


def _worker_parser() -> argparse.ArgumentParser:
    """The options of :func:`worker_main`.

    None of them is, or abbreviates, an option of ``torchrun`` (whose parser
    matches abbreviations even among the script's arguments: ``--log`` would be
    ambiguous there), and abbreviations are off here too.
    """
    parser = _WorkerParser(prog="python -m inl.distributed", allow_abbrev=False,
                           description="One rank of a distributed INL run, under torchrun or "
                           "RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT.")
    parser.add_argument("config", help="TOML file with the INLConfig fields (and optionally log = PATH)")
    parser.add_argument("--run-log", metavar="RUNS.jsonl",
                        help="JSONL run log rank 0 appends to, on rank 0's machine "
                        "(default: the config's `log`, relative to the config file)")
    parser.add_argument("--save-model", metavar="MODEL.pt",
                        help="rank 0 saves the trained network's state_dict here (torch.save)")
    parser.add_argument("--timeout", type=float, default=60.0, metavar="S",
                        help="seconds a send/receive may wait before its rank fails (default 60)")
    parser.add_argument("--backend", default="gloo", choices=BACKENDS)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def worker_main(argv: Sequence[str] | None = None) -> int:
    """Entry point of one rank under the standard environment (e.g. ``torchrun``).

    ``python -m inl.distributed CONFIG.toml [--run-log RUNS.jsonl] [--save-model MODEL.pt]
    [--timeout S]`` on each of ``n_nodes`` processes with ``RANK``, ``WORLD_SIZE``,
    ``MASTER_ADDR`` and ``MASTER_PORT`` set. Rank 0 appends the record to the log
    (``--run-log`` or the config's ``log``), saves the model if asked and prints a
    summary line. Returns the exit status: 0, 1 when the run failed (a peer died
    or timed out: one line on stderr naming it), 2 on bad input (one line).
    """
    parser = _worker_parser()
    args = parser.parse_args(argv)
    prog = parser.prog
    try:
        table, log = load_config(args.config)
        config = INLConfig.from_dict(table)
        log = Path(args.run_log) if args.run_log else log
        model = None if args.save_model is None else Path(args.save_model)
        if os.environ.get("RANK") == "0":  # only rank 0 writes: check its paths before meeting
            for name, path in (("run log", log), ("--save-model", model)):
                if path is not None and not path.parent.is_dir():
                    raise OSError(f"{name} directory {path.parent} does not exist")
        _die_with_launcher()
        rank, world_size, group = init_from_env(backend=args.backend, timeout=args.timeout)
        torch.set_num_threads(1)
    except (ValueError, OSError) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except dist.DistError as exc:  # the rendezvous failed (timed out, refused)
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"{prog}: rank {os.environ.get('RANK')}: joining the process group failed: {first}",
              file=sys.stderr)
        return 1
    try:
        run = train_rank(config, rank=rank, world_size=world_size, group=group,
                         backend=args.backend, progress=not args.no_progress)
        if run is not None:
            _write_outputs(run, log, model, world_size)
    except (DistributedTrainingError, dist.DistError, ValueError, OSError) as exc:
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"{prog}: {text if text.startswith('rank ') else f'rank {rank}: {text}'}", file=sys.stderr)
        return 2 if isinstance(exc, (ValueError, OSError)) else 1
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    return 0


def _write_outputs(run: INLRun, log: Path | None, model: Path | None, world_size: int) -> None:
    """Rank 0: the model saved, the record appended to the log, a summary line on stdout."""
    if model is not None:
        with atomic_replace(model) as fh:
            torch.save(run.model.state_dict(), fh)
    if log is not None:
        from inl.runlog import DuplicateRunError, append_record

        try:
            append_record(log, run.record)
        except DuplicateRunError:  # as ``ratebound train``: the same config gives the same run
            print(f"{run.record['run_id']}: already in {log}, not appended again", flush=True)
            return
    traffic = run.record["distributed"]
    print(f"{run.record['run_id']}: test_acc {run.record['test_acc']:.4f}, "
          f"{traffic['comm_bytes_total']} bytes over {world_size} ranks, {run.seconds:.1f} s"
          + (f" -> {log}" if log is not None else ""), flush=True)


def _die_with_launcher() -> None:
    """Under ``torchrun`` on Linux: this worker is killed when its launcher dies.

    torchrun starts each worker in a session of its own, so a launcher killed
    with SIGKILL (or a lost login shell) would leave its workers training
    with nobody to stop them; ``PR_SET_PDEATHSIG`` asks the kernel to send them
    SIGKILL instead, and the ranks on the other machines then fail at once
    (closed connections) instead of after a timeout.
    """
    if "TORCHELASTIC_RUN_ID" not in os.environ or not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    launcher = os.getppid()
    pr_set_pdeathsig = 1
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(pr_set_pdeathsig, int(signal.SIGKILL), 0, 0, 0) == 0 and os.getppid() != launcher:
        os._exit(1)  # the launcher died before the request took effect


if __name__ == "__main__":
    sys.exit(worker_main())
