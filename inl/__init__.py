"""In-network learning: graphs, node models, training with exchange accounting, run logs.

The trainer behind the empirical points of ``ratebound``: distributed Gaussian
(VIB) encoders on the nodes of a communication graph exchange latents towards a
fusion node (forward) and errors back (backward), over every edge (dense INL) or
over a capacity-aware shortest-path tree (D-INL), with finite-rate stochastic
gates aggregating at the nodes. ``inl`` writes run logs (JSON Lines, schema
version 2) and does not import ``ratebound``.

``from inl import INLConfig, train`` gives the config class and the trainer
function (the implementation lives in the private module ``inl._training``).
"""

from estimators._lazy import lazy_exports

_EXPORTS = {
    # topology
    "random_network": "topology",
    "validate_network": "topology",
    "shortest_path_tree": "topology",
    "dense_routing": "topology",
    "routing_order": "topology",
    # data
    "Views": "data",
    "synthetic_views": "data",
    "digits_views": "data",
    "fashion_mnist_views": "data",
    "make_views": "data",
    # model
    "INLNetwork": "model",
    "NodeModule": "model",
    "NodeOutput": "model",
    "batch_gate_rate": "model",
    "node_objective": "model",
    "node_generators": "model",
    # accounting
    "Exchange": "accounting",
    "ExchangeCounter": "accounting",
    "closed_form_exchange": "accounting",
    # training
    "INLConfig": "_training",
    "train": "_training",
    "INLRun": "_training",
    "evaluate": "_training",
    "build_routing": "_training",
    "run_id": "_training",
    "build_network": "_training",
    "batch_order": "_training",
    "TrainingDiverged": "_training",
    # one process per node
    "run_distributed": "distributed",
    "DistributedTrainingError": "distributed",
    # run logs
    "append_record": "runlog",
    "read_records": "runlog",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
