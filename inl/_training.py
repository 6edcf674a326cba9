"""Training one INL configuration, with exchange accounting and a run-log record.

:func:`train` builds the network (:func:`inl.topology.random_network`), its
routing (every edge for ``mode="dense"``, the capacity-aware shortest-path tree
for ``mode="tree"``), the dataset (one view per non-root node) and the per-node
model, then minimises

.. math::

    \\mathcal L = \\mathrm{CE}(y, \\hat y)
    + \\beta_{\\text{latent}} \\sum_{v \\ne r} \\mathrm{KL}\\big(q(z_v|x_v) \\,\\|\\, \\mathcal N(0, I)\\big)
    + \\beta_{\\text{gate}} \\sum_{v \\text{ gated}} \\hat I(U_v; T_v)

with Adam. Every message entering an edge is counted forward and its error
backward (:mod:`inl.accounting`). The result is an :class:`INLRun` whose
``record`` is the run-log line of schema version 2 (:func:`build_record`).

Reproducibility: everything random derives from ``config.seed`` (per-node
initialisation and noise generators, the data order of each epoch, the
mask of a supersample run) and from ``config.graph_seed`` (the network); global
random state is never touched. With ``deterministic=True`` and a fixed
``threads`` the record is bit-identical across runs (and processes).

The pieces are public so that other trainers (one process per node) reuse them
rather than copy them: :func:`prepare` (graph, routing, views),
:func:`build_network` (initialisation from the seed), :func:`batch_order` (the
data order), :func:`inl.model.node_generators` (the sampling noise),
:func:`inl.model.node_objective` (each node's share of the loss) and
:func:`build_record` (the log line of a trained network).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import time
from dataclasses import dataclass, field

import networkx as nx
import numpy as np
import torch
from torch.nn import functional as F

from estimators._threads import hold_threads
from estimators._validation import positive_float, positive_int
from inl._validation import positive_range
from inl.accounting import Exchange, ExchangeCounter
from inl.data import DATASETS, Views, make_views
from inl.model import INLNetwork, batch_gate_rate, node_generators, node_objective
from inl.runlog import SCHEMA_VERSION
from inl.seeding import derive_seed
from inl.topology import dense_routing, random_network, shortest_path_tree, validate_network

__all__ = [
    "INLConfig",
    "INLRun",
    "Evaluation",
    "train",
    "evaluate",
    "build_routing",
    "build_network",
    "batch_order",
    "torch_settings",
    "Setup",
    "Supersample",
    "gate_distortion_fields",
    "supersample_fields",
    "prepare",
    "build_record",
    "run_id",
    "TrainingDiverged",
]

MODES = ("dense", "tree")


class TrainingDiverged(FloatingPointError, ValueError):
    """The training objective became non-finite: the config (usually ``lr``) cannot be trained.

    A :class:`ValueError` too, so that the command line reports it in one line
    (exit status 2) like any other bad config.
    """


@dataclass(frozen=True)
class INLConfig:
    """One INL experiment. Every field is JSON-able; ``to_dict``/``from_dict`` round-trip.

    Attributes
    ----------
    n_nodes : int
        Graph nodes, the fusion node (``root``) included; ``n_nodes - 1`` views.
    avg_degree : float
        Target mean degree of the random geometric graph.
    capacity_range : (float, float)
        Link capacities in bits/s.
    graph_seed : int
        Seed of the random network.
    root : int
        The fusion node.
    dataset : str
        ``"synthetic"``, ``"digits"`` or ``"fashion-mnist"``.
    dataset_params : dict
        Keyword options of the dataset builder (:mod:`inl.data`).
    data_seed : int or None
        Seed of the dataset draw and split; ``None`` uses ``seed``.
    latent_width, hidden_width : int
        Message width ``L`` and MLP width.
    gate_choices : int
        ``K``, the number of aggregation maps per gate.
    tau : float
        Gumbel-softmax temperature.
    beta_latent, beta_gate : float
        Weights of the latent rate (KL) and the gate rate ``I(U;T)``; 0 means
        unregularised.
    epochs, batch_size : int
    lr : float
        Adam's learning rate.
    mode : str
        ``"dense"`` (every edge) or ``"tree"`` (shortest-path tree).
    seed : int
        Seed of initialisation, noise, data order and (for a supersample run)
        the mask.
    supersample_seed : int or None
        ``None`` for an ordinary run. Otherwise the run is one mask of a
        supersample experiment (Steinke and Zakynthinou): the dataset's
        training part (``dataset_params["n_train"]`` examples, the supersample)
        is drawn with this seed and cut at random into ``n = n_train // 2``
        pairs, and the run trains on one member of each pair, chosen by a
        uniform mask ``U`` in ``{0,1}^n`` drawn from ``seed``. The record then
        logs ``supersample_id``, ``mask``, ``pair_losses`` and
        ``pair_predictions`` (both members of every pair) and ``n_train = n``.
        For the synthetic task the class means and noise levels stay those of
        ``data_seed`` (0 when ``None``), so every supersample is an independent
        draw from one distribution; for the finite data sets (digits,
        Fashion-MNIST) the seed draws the supersample from the pool.
    threads : int or None
        torch intra-op threads during training (restored afterwards); ``None``
        leaves the setting alone. The default 1 is fastest for these small
        per-node layers: on a busy 2-core machine 2 threads made a run ~10x
        slower (OpenMP workers waiting on each other).
    deterministic : bool
        Run under ``torch.use_deterministic_algorithms(True)`` (restored afterwards).
    """

    n_nodes: int = 12
    avg_degree: float = 4.0
    capacity_range: tuple[float, float] = (1e6, 1e7)
    graph_seed: int = 0
    root: int = 0
    dataset: str = "synthetic"
    dataset_params: dict = field(default_factory=dict)
    data_seed: int | None = None
    latent_width: int = 8
    hidden_width: int = 32
    gate_choices: int = 4
    tau: float = 1.0
    beta_latent: float = 0.0
    beta_gate: float = 0.0
    epochs: int = 30
    batch_size: int = 128
    lr: float = 5e-3
    mode: str = "dense"
    seed: int = 0
    supersample_seed: int | None = None
    threads: int | None = 1
    deterministic: bool = True

    def __post_init__(self) -> None:
        for name, value in self._checked_numbers().items():
            object.__setattr__(self, name, value)
        if self.root >= self.n_nodes:
            raise ValueError(f"root must be a node in 0..{self.n_nodes - 1}, got {self.root}")
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.dataset not in DATASETS:
            raise ValueError(f"dataset must be one of {DATASETS}, got {self.dataset!r}")
        if not isinstance(self.dataset_params, dict):
            raise ValueError(f"dataset_params must be a dict, got {type(self.dataset_params).__name__}")
        params = {k: _jsonable(v) for k, v in sorted(self.dataset_params.items())}
        object.__setattr__(self, "dataset_params", params)
        if not isinstance(self.deterministic, bool):
            raise ValueError(f"deterministic must be a bool, got {self.deterministic!r}")

    def _checked_numbers(self) -> dict:
        """Every numeric field, validated and normalised (``ValueError`` names the field)."""
        minimum = {"n_nodes": 2, "gate_choices": 2, "graph_seed": 0, "root": 0, "seed": 0, "data_seed": 0,
                   "supersample_seed": 0}
        ints = ("n_nodes", "latent_width", "hidden_width", "gate_choices", "epochs", "batch_size",
                "graph_seed", "root", "seed", "data_seed", "threads", "supersample_seed")
        out = {
            name: positive_int(getattr(self, name), name, minimum=minimum.get(name, 1))
            for name in ints
            if getattr(self, name) is not None  # data_seed, threads and supersample_seed may be None
        }
        out.update((name, positive_float(getattr(self, name), name)) for name in ("avg_degree", "tau"))
        from estimators._validation import learning_rate  # lr <= float32's max: torch stores it so

        out["lr"] = learning_rate(self.lr, "lr")
        out.update(
            (name, positive_float(getattr(self, name), name, allow_zero=True))
            for name in ("beta_latent", "beta_gate")
        )
        out["capacity_range"] = positive_range(self.capacity_range, "capacity_range")
        return out

    @property
    def payload_bits(self) -> float:
        """Bits of one message: ``32 * latent_width`` (float32)."""
        return 32.0 * self.latent_width

    def to_dict(self) -> dict:
        """A JSON-able dict of every field."""
        out = dataclasses.asdict(self)
        out["capacity_range"] = list(self.capacity_range)
        return out

    @classmethod
    def from_dict(cls, values: dict) -> INLConfig:
        """The config from a dict (e.g. a TOML table); unknown keys raise ``ValueError``."""
        if not isinstance(values, dict):
            raise ValueError(f"values must be a dict of config fields, got {type(values).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown config keys {unknown}; known keys are {sorted(known)}")
        return cls(**values)

    def replace(self, **changes) -> INLConfig:
        """A copy with ``changes`` applied (validated)."""
        return dataclasses.replace(self, **changes)

    def digest(self) -> str:
        """SHA-256 (hex) of the canonical JSON of :meth:`to_dict` (:func:`run_id` shows 12 digits)."""
        return _sha256_json(self.to_dict())


def _sha256_json(value) -> str:
    """SHA-256 (hex) of ``json.dumps(value, sort_keys=True)``."""
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def _jsonable(value):
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise ValueError(f"dataset_params values must be JSON-able scalars or lists, got {value!r}")


@dataclass(frozen=True)
class Evaluation:
    """A network evaluated (gates hard, latents at their means) on one dataset split.

    Attributes
    ----------
    accuracy, error, cross_entropy : float
        Mean accuracy, 0-1 error (``1 - accuracy``) and cross-entropy (nats).
    latent_rate : float
        Mean KL summed over the non-root nodes, nats per sample.
    correct : numpy.ndarray
        Boolean, per sample.
    predictions : numpy.ndarray
        Predicted class, per sample.
    gate_probs : dict
        ``node -> (n, K)`` gate probabilities.
    root_input : numpy.ndarray
        The root gate's input, ``(n, L * children)``.
    """

    accuracy: float
    error: float
    cross_entropy: float
    latent_rate: float
    correct: np.ndarray
    predictions: np.ndarray
    gate_probs: dict
    root_input: np.ndarray


@dataclass(frozen=True)
class INLRun:
    """A finished training run.

    Attributes
    ----------
    config : INLConfig
    record : dict
        The run-log line (schema version 2), JSON-able.
    model : INLNetwork
        The trained network (evaluation mode).
    graph : networkx.Graph
        The communication network.
    routing : networkx.DiGraph
        Child -> parent edges used (tree or dense).
    history : tuple of dict
        Per epoch: ``epoch``, ``objective``, ``ce``, ``kl``, ``gate_rate``
        (training-batch means), ``test_acc``, ``seconds``.
    exchange : Exchange
        Training exchange counts.
    seconds : float
        Wall time of the training loop.
    """

    config: INLConfig
    record: dict
    model: INLNetwork
    graph: nx.Graph
    routing: nx.DiGraph
    history: tuple
    exchange: Exchange
    seconds: float

    @property
    def train_acc(self) -> float:
        """Accuracy on the training set (gates hard, latents at their means)."""
        return self.record["train_acc"]

    @property
    def test_acc(self) -> float:
        """Accuracy on the held-out set (gates hard, latents at their means)."""
        return self.record["test_acc"]

    @property
    def exchange_floats(self) -> float:
        """Floats exchanged per training sample."""
        return self.exchange.floats_per_sample

    @property
    def exchange_bytes(self) -> float:
        """Bytes exchanged per training sample."""
        return self.exchange.bytes_per_sample


def build_routing(config: INLConfig, graph: nx.Graph) -> nx.DiGraph:
    """The routing of ``config.mode`` on ``graph``, costs for ``config.payload_bits``.

    :func:`inl.topology.shortest_path_tree` for ``mode="tree"``,
    :func:`inl.topology.dense_routing` for ``mode="dense"``, rooted at ``config.root``.
    """
    if config.mode == "tree":
        return shortest_path_tree(graph, config.root, payload_bits=config.payload_bits)
    return dense_routing(graph, config.root, payload_bits=config.payload_bits)


def batch_order(n_samples: int, batch_size: int, *, seed: int, epoch: int) -> list[np.ndarray]:
    """The mini-batches (index arrays) of one epoch: a permutation drawn from ``(seed, epoch)``.

    Every process that knows ``(seed, epoch)`` derives the same batches
    (:func:`inl.seeding.derive_seed`); the last batch holds the remainder.

    Parameters
    ----------
    n_samples, batch_size : int
        Training-set size and batch size, >= 1.
    seed, epoch : int

    Returns
    -------
    list of numpy.ndarray
        ``ceil(n_samples / batch_size)`` index arrays partitioning ``range(n_samples)``.
    """
    n_samples = positive_int(n_samples, "n_samples")
    batch_size = positive_int(batch_size, "batch_size")
    rng = np.random.default_rng(derive_seed(seed, "order", epoch))
    perm = rng.permutation(n_samples)
    return [perm[i : i + batch_size] for i in range(0, n_samples, batch_size)]


@contextlib.contextmanager
def torch_settings(*, threads: int | None, deterministic: bool):
    """Set torch's thread count and determinism for a block, restoring both afterwards.

    Parameters
    ----------
    threads : int or None
        torch's intra-op threads and the BLAS/OpenMP pools at ``threads`` inside
        the block (:func:`estimators._threads.hold_threads`, the scope every
        numerical kernel of the package uses); ``None`` leaves them.
    deterministic : bool
        ``torch.use_deterministic_algorithms(deterministic)`` inside the block.
    """
    old_det = torch.are_deterministic_algorithms_enabled()
    try:
        with hold_threads(threads):
            torch.use_deterministic_algorithms(deterministic)
            yield
    finally:
        torch.use_deterministic_algorithms(old_det)


def float_tensor(array) -> torch.Tensor:
    """``array`` as a contiguous float32 tensor (the trainer's and the ranks' input format)."""
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))


def _tensors(views_tuple) -> list[torch.Tensor]:
    return [float_tensor(v) for v in views_tuple]


@torch.no_grad()
def evaluate(network: INLNetwork, views, labels, *, force_root_choice: int | None = None) -> Evaluation:
    """Evaluate ``network`` on a dataset split, gates hard and latents at their means.

    Parameters
    ----------
    network : INLNetwork
    views : sequence of array-like
        One ``(n, d_v)`` array (or tensor) per view node, in :attr:`INLNetwork.view_nodes` order.
    labels : array-like
        ``(n,)`` integer classes.
    force_root_choice : int, optional
        Use aggregation map ``force_root_choice`` at the root gate for every
        sample instead of the gate's most probable choice.

    Returns
    -------
    Evaluation
        Accuracy, 0-1 error, cross-entropy (nats), latent rate (nats per
        sample), per-sample correctness, the gates' probabilities and the
        root gate's inputs.
    """
    xs = [torch.as_tensor(v, dtype=torch.float32) for v in views]
    y = torch.as_tensor(labels, dtype=torch.int64)
    if y.dim() != 1 or any(x.shape[0] != y.shape[0] for x in xs):
        raise ValueError(
            f"labels must be 1-D with one entry per row of every view, got labels {tuple(y.shape)} "
            f"and views {[tuple(x.shape) for x in xs]}"
        )
    outs = network(xs, training=False, force_root_choice=force_root_choice)
    logits = outs[network.root].logits
    predictions = logits.argmax(dim=-1)
    correct = (predictions == y).numpy()
    kl = sum(outs[v].kl for v in network.view_nodes)
    return Evaluation(
        accuracy=float(correct.mean()),
        error=float(1.0 - correct.mean()),
        cross_entropy=F.cross_entropy(logits, y).item(),
        latent_rate=kl.mean().item(),
        correct=correct,
        predictions=predictions.numpy(),
        gate_probs={v: outs[v].gate_probs.double().numpy() for v in network.gated_nodes()},
        root_input=outs[network.root].gate_input.double().numpy(),
    )


def _train_epoch(network, optimizer, xs, y, config, generators, counter, epoch) -> dict:
    sums = {"objective": 0.0, "ce": 0.0, "kl": 0.0, "gate_rate": 0.0}
    for idx in batch_order(y.shape[0], config.batch_size, seed=config.seed, epoch=epoch):
        index = torch.from_numpy(idx)
        outs = network(
            [x[index] for x in xs], generators=generators, training=True, exchange=counter
        )
        objective = sum(
            node_objective(outs[v], y[index], beta_latent=config.beta_latent, beta_gate=config.beta_gate)
            for v in network.order
        )
        optimizer.zero_grad(set_to_none=True)
        objective.backward()
        optimizer.step()
        with torch.no_grad():
            weight = len(idx) / y.shape[0]
            sums["objective"] += weight * objective.item()
            sums["ce"] += weight * F.cross_entropy(outs[network.root].logits, y[index]).item()
            sums["kl"] += weight * sum(outs[v].kl.mean() for v in network.view_nodes).item()
            sums["gate_rate"] += weight * sum(
                batch_gate_rate(outs[v].gate_probs) for v in network.gated_nodes()
            ).item()
    return sums


def gate_distortion_fields(network, views: Views, train_eval: Evaluation) -> dict:
    """The root gate's empirical distortion-rate inputs, on the training samples.

    The source is uniform over the ``n`` training samples; ``d[i, t]`` is the
    0-1 loss on sample ``i`` with root-gate choice ``t`` forced (every other
    gate hard, latents at their means, the rest of the network fixed). Samples
    whose rows of ``d`` are equal are merged (exact for the distortion-rate
    function: the optimal encoder treats them alike), giving ``context_pmf``
    (their shares) and ``gate_distortion`` (the distinct rows). The gate is the
    trained **hard** gate: its choice on sample ``i`` is ``argmax_t p(t|z_i)``,
    its loss is ``train_loss = mean_i d[i, choice_i]`` and its rate is the rate
    of that choice, ``gate_rate = I(Z;T_hard) = H(T_hard)`` (nats) on the same
    samples. So ``train_loss >= D(gate_rate)`` holds by construction, with
    ``D(R) = distortion_rate(context_pmf, gate_distortion, R)``.

    Returns
    -------
    dict
        ``context_pmf``, ``gate_distortion``, ``gate_rate`` (hard, nats),
        ``gate_rate_kind`` (``"hard"``), ``gate_samples`` (``"train"``) and
        ``gate_rate_soft`` (the soft gate's ``I(Z;T)`` on the training samples,
        nats, for comparison).
    """
    from estimators.discrete import gate_rate

    probs = train_eval.gate_probs[network.root]
    k = probs.shape[1]
    loss = np.empty((probs.shape[0], k))
    for t in range(k):
        forced = evaluate(network, views.train_views, views.train_labels, force_root_choice=t)
        loss[:, t] = 1.0 - forced.correct
    rows, counts = np.unique(loss, axis=0, return_counts=True)
    hard = np.eye(k)[probs.argmax(axis=1)]
    return {
        "context_pmf": (counts / counts.sum()).tolist(),
        "gate_distortion": rows.tolist(),
        "gate_rate": float(gate_rate(hard)),
        "gate_rate_kind": "hard",
        "gate_samples": "train",
        "gate_rate_soft": float(gate_rate(probs)),
    }


def supersample_fields(network, setup: Setup) -> dict:
    """The supersample fields of a record: id, mask, both members' 0-1 losses and predictions."""
    pool = setup.supersample
    ev = evaluate(network, pool.views, pool.labels)
    loss = 1.0 - ev.correct.astype(float)
    return {
        "supersample_id": pool.supersample_id,
        "mask": pool.mask.tolist(),
        "pair_losses": loss[pool.pairs].tolist(),
        "pair_predictions": ev.predictions[pool.pairs].tolist(),
    }


def _config_dict(config: INLConfig, graph_sha256: str | None) -> dict:
    out = config.to_dict()
    if graph_sha256 is not None:
        out["graph_sha256"] = graph_sha256
    return out


def run_id(config: INLConfig, *, graph_sha256: str | None = None) -> str:
    """The run's id, ``inl-<mode>-<12 hex of the config's SHA-256>-s<seed>``.

    A function of the config (and of the user graph's digest, if any) alone:
    the same config and seed give the same, bit-identical run.
    """
    digest = _sha256_json(_config_dict(config, graph_sha256))
    return f"inl-{config.mode}-{digest[:12]}-s{config.seed}"


def build_record(config: INLConfig, setup: Setup, network: INLNetwork, exchange: Exchange) -> dict:
    """The run-log record (schema version 2) of a trained ``network``.

    Accuracy, 0-1 loss and cross-entropy on the training and held-out sets (gates
    hard, latents at their means); the latent rate on held-out data (nats per
    sample); the root gate's distortion-rate inputs on the **training** samples
    (:func:`gate_distortion_fields`: ``D(R_g) = distortion_rate(context_pmf,
    gate_distortion, gate_rate) <= train_loss``); for a supersample run the
    supersample fields (:func:`supersample_fields`); the exchange figures; the
    config. ``gate_rate_total`` and ``gate_rates`` are the soft gates' ``I(U;T)``
    on held-out data, summed and by node.

    Parameters
    ----------
    config : INLConfig
    setup : Setup
        What :func:`prepare` made of ``config`` (the network was trained on it).
    network : INLNetwork
        The trained network.
    exchange : Exchange
        The training exchange counts.

    Returns
    -------
    dict
        JSON-able, finite; the fields of the run-log contract plus ``train_ce``,
        ``test_ce``, ``gate_rate_soft``, ``gate_rate_total``, ``gate_rates``,
        ``exchange_per_edge`` and ``edges_available``.
    """
    views = setup.views
    train_eval = evaluate(network, views.train_views, views.train_labels)
    test_eval = evaluate(network, views.test_views, views.test_labels)
    record = {
        "schema_version": SCHEMA_VERSION,
        "run_id": run_id(config, graph_sha256=setup.graph_sha256),
        "n_train": views.n_train,
        "n_test": views.n_test,
        **_loss_fields(train_eval, test_eval),
        **_rate_fields(test_eval, network.root),
    }
    if network.root in train_eval.gate_probs:
        record.update(gate_distortion_fields(network, views, train_eval))
    if setup.supersample is not None:
        record.update(supersample_fields(network, setup))
    record.update(
        **_exchange_fields(exchange),
        edges_available=setup.routing.number_of_edges(),
        config=_config_dict(config, setup.graph_sha256),
    )
    return record


def _loss_fields(train_eval: Evaluation, test_eval: Evaluation) -> dict:
    """0-1 loss (the record's ``loss_range [0, 1]``), accuracy and cross-entropy of both splits."""
    return {
        "loss_range": [0.0, 1.0],
        "train_loss": train_eval.error,
        "test_loss": test_eval.error,
        "train_acc": train_eval.accuracy,
        "test_acc": test_eval.accuracy,
        "train_ce": train_eval.cross_entropy,
        "test_ce": test_eval.cross_entropy,
    }


def _rate_fields(held_out: Evaluation, root) -> dict:
    """Latent rate and the soft gates' rates on held-out data, nats per sample."""
    from estimators.discrete import gate_rate

    rates = {v: float(gate_rate(p)) for v, p in held_out.gate_probs.items()}
    return {
        "latent_rate": held_out.latent_rate,
        "gate_rate_total": float(sum(rates.values())),
        "gate_rates": {str(v): r for v, r in rates.items()},
    }


def _exchange_fields(exchange: Exchange) -> dict:
    """Training exchange per sample and per run, per edge, and the edges used."""
    return {
        "exchange_floats": exchange.floats_per_sample,
        "exchange_bytes": exchange.bytes_per_sample,
        "exchange_floats_total": exchange.floats_total,
        "exchange_bytes_total": exchange.bytes_total,
        "exchange_per_edge": [[u, v, f] for (u, v), f in sorted(exchange.per_edge.items())],
        "edges_used": exchange.edges_used,
    }


def _graph_digest(graph: nx.Graph) -> str:
    edges = sorted((min(u, v), max(u, v), float(c)) for u, v, c in graph.edges(data="capacity"))
    return _sha256_json([graph.number_of_nodes(), edges])


@dataclass(frozen=True)
class Supersample:
    """The supersample behind a supersample run (:attr:`INLConfig.supersample_seed`).

    Attributes
    ----------
    supersample_id : str
        Names the supersample (dataset, task seed, supersample seed, size):
        runs with the same id share its ``2n`` examples and differ in the mask.
    views : tuple of numpy.ndarray
        The ``2n`` (or ``2n + 1``) examples, one array per view.
    labels : numpy.ndarray
        Their classes.
    pairs : numpy.ndarray
        ``(n, 2)`` indices into ``views``: the two members of each pair.
    mask : numpy.ndarray
        ``(n,)`` in ``{0, 1}``: the member of each pair the run trains on.
    """

    supersample_id: str
    views: tuple
    labels: np.ndarray
    pairs: np.ndarray
    mask: np.ndarray


def _supersample(config: INLConfig) -> tuple[Views, Supersample]:
    """The training views of one mask of ``config``'s supersample, and the supersample."""
    params = dict(config.dataset_params)
    task = 0 if config.data_seed is None else config.data_seed
    if config.dataset == "synthetic":
        pool = make_views(config.dataset, config.n_nodes - 1, seed=task,
                          params={**params, "sample_seed": config.supersample_seed})
    else:
        pool = make_views(config.dataset, config.n_nodes - 1, seed=config.supersample_seed, params=params)
    n = pool.n_train // 2
    if n < 1:
        raise ValueError(f"dataset_params n_train must be at least 2 for a supersample run, got {pool.n_train}")
    rng = np.random.default_rng(derive_seed(config.supersample_seed, "pairs"))
    pairs = rng.permutation(2 * n).reshape(2, n).T.copy()
    mask = np.random.default_rng(derive_seed(config.seed, "mask")).integers(0, 2, size=n)
    chosen = pairs[np.arange(n), mask]
    views = Views(
        train_views=tuple(np.ascontiguousarray(v[chosen]) for v in pool.train_views),
        train_labels=pool.train_labels[chosen],
        test_views=pool.test_views, test_labels=pool.test_labels,
        n_classes=pool.n_classes, name=pool.name,
    )
    ident = f"{config.dataset}:task{task}:ss{config.supersample_seed}:2n{2 * n}"
    return views, Supersample(ident, pool.train_views, pool.train_labels, pairs, mask)


@dataclass(frozen=True)
class Setup:
    """What a config determines before training: network, routing, data.

    Attributes
    ----------
    graph : networkx.Graph
    routing : networkx.DiGraph
    views : Views
    graph_sha256 : str or None
        Digest of a user-supplied graph (``None`` for the config's random network).
    supersample : Supersample or None
        The supersample of a supersample run (``views`` then holds the masked
        training members), else ``None``.
    """

    graph: nx.Graph
    routing: nx.DiGraph
    views: Views
    graph_sha256: str | None
    supersample: Supersample | None = None


def prepare(config: INLConfig, *, graph: nx.Graph | None = None) -> Setup:
    """What ``config`` determines before training: network, routing and data.

    Parameters
    ----------
    config : INLConfig
    graph : networkx.Graph, optional
        A user network (checked with :func:`inl.topology.validate_network`,
        ``config.n_nodes`` nodes); by default
        ``random_network(config.n_nodes, ..., seed=config.graph_seed)``.

    Returns
    -------
    Setup
        The network, its routing for ``config.mode`` and the dataset with one
        view per non-root node (drawn with ``config.data_seed``, else
        ``config.seed``; for a supersample run the masked members of the
        supersample, see :attr:`INLConfig.supersample_seed`).
    """
    if not isinstance(config, INLConfig):
        raise ValueError(f"config must be an INLConfig, got {type(config).__name__}")
    graph_sha = None
    if graph is None:
        graph = random_network(
            config.n_nodes, avg_degree=config.avg_degree,
            capacity_range=config.capacity_range, seed=config.graph_seed,
        )
    else:
        validate_network(graph)
        if graph.number_of_nodes() != config.n_nodes:
            raise ValueError(
                f"graph has {graph.number_of_nodes()} nodes, config.n_nodes is {config.n_nodes}"
            )
        graph_sha = _graph_digest(graph)
    supersample = None
    if config.supersample_seed is not None:
        views, supersample = _supersample(config)
    else:
        data_seed = config.seed if config.data_seed is None else config.data_seed
        views = make_views(config.dataset, config.n_nodes - 1, seed=data_seed, params=config.dataset_params)
    return Setup(graph=graph, routing=build_routing(config, graph), views=views, graph_sha256=graph_sha,
                 supersample=supersample)


def train(config: INLConfig, *, graph: nx.Graph | None = None, progress: bool = True) -> INLRun:
    """Train one INL configuration and return the run with its log record.

    Parameters
    ----------
    config : INLConfig
    graph : networkx.Graph, optional
        A user network (nodes ``0..n-1``, ``capacity`` on every edge) instead of
        ``random_network(config.n_nodes, ...)``; its digest is added to the
        record's config.
    progress : bool
        Show a tqdm bar over epochs.

    Returns
    -------
    INLRun

    Examples
    --------
    >>> run = train(INLConfig(n_nodes=5, epochs=2, dataset_params={"n_train": 200, "n_test": 100}),
    ...             progress=False)
    >>> run.record["edges_used"] == run.routing.number_of_edges()
    True
    """
    setup = prepare(config, graph=graph)
    with torch_settings(threads=config.threads, deterministic=config.deterministic):
        network, history, exchange, seconds = _fit(config, setup, progress)
        record = build_record(config, setup, network, exchange)
    return INLRun(
        config=config, record=record, model=network, graph=setup.graph, routing=setup.routing,
        history=tuple(history), exchange=exchange, seconds=seconds,
    )


def build_network(config: INLConfig, routing: nx.DiGraph, views: Views) -> INLNetwork:
    """The untrained network of ``config`` on ``routing`` for ``views``.

    Node ``v`` is initialised from ``torch_generator(config.seed, "init", v)``,
    so a process hosting one node rebuilds exactly its part.
    """
    return INLNetwork(
        routing, views.view_dims, views.n_classes,
        latent_width=config.latent_width, hidden_width=config.hidden_width,
        gate_choices=config.gate_choices, seed=config.seed, tau=config.tau,
    )


def _fit(config, setup, progress):
    from tqdm.auto import tqdm

    views = setup.views
    network = build_network(config, setup.routing, views)
    optimizer = torch.optim.Adam(network.parameters(), lr=config.lr, foreach=True)
    generators = node_generators(config.seed, setup.routing.nodes)
    xs, y = _tensors(views.train_views), torch.from_numpy(views.train_labels)
    counter, history = ExchangeCounter(), []
    start = time.perf_counter()
    bar = tqdm(range(config.epochs), desc=f"inl {config.mode}", unit="epoch", disable=not progress, leave=False)
    for epoch in bar:
        network.train()
        tic = time.perf_counter()
        stats = _train_epoch(network, optimizer, xs, y, config, generators, counter, epoch)
        network.eval()
        test_acc = evaluate(network, views.test_views, views.test_labels).accuracy
        stats.update(epoch=epoch, test_acc=test_acc, seconds=time.perf_counter() - tic)
        if not all(math.isfinite(stats[k]) for k in ("objective", "ce")):
            raise TrainingDiverged(
                f"training diverged at epoch {epoch}: objective {stats['objective']}, "
                f"cross-entropy {stats['ce']} (lr={config.lr}; try a smaller lr)"
            )
        history.append(stats)
        bar.set_postfix(ce=f"{stats['ce']:.3f}", test_acc=f"{test_acc:.3f}")
    bar.close()
    seconds = time.perf_counter() - start
    return network, history, counter.summary(views.n_train * config.epochs), seconds
