"""Supersample runs from a user's own training loop: the masks, and the run-log records.

The e-CMI bounds of ``ratebound bound`` (:mod:`ratebound.ecmi`) need runs of the
supersample kind: ``2n`` examples cut into ``n`` pairs, and for each run a mask
``U`` in ``{0,1}^n`` choosing the member of each pair to train on. A training
loop needs only two things from here:

- :func:`draw_masks` gives the masks (one per run, seeded);
- :func:`supersample_record` turns what the loop measured on **both** members
  of every pair (losses, and predictions for f-CMI) into a run-log record,
  validated against the schema, ready for :func:`ratebound.runs.append_run`.

Example
-------
>>> import numpy as np
>>> masks = draw_masks(4, runs=3, seed=0)          # 3 runs over 4 pairs
>>> masks.shape
(3, 4)
>>> losses = np.zeros((4, 2)); losses[np.arange(4), 1 - masks[0]] = 1.0   # a memoriser
>>> rec = supersample_record(run_id="run-0", supersample_id="ss0", mask=masks[0], pair_losses=losses)
>>> rec["n_train"], rec["train_loss"], rec["test_loss"]
(4, 0.0, 1.0)
"""

from __future__ import annotations

import numpy as np

from estimators._validation import positive_int

__all__ = ["draw_masks", "supersample_record"]


def draw_masks(n_pairs: int, *, runs: int, seed: int | None = None) -> np.ndarray:
    """``runs`` independent uniform masks over ``n_pairs`` pairs.

    Parameters
    ----------
    n_pairs : int
        Pairs ``n`` in the supersample.
    runs : int
        Masks to draw (one per training run), >= 2 for the e-CMI terms.
    seed : int or None
        Seed of the generator (``numpy.random.default_rng``).

    Returns
    -------
    numpy.ndarray
        ``(runs, n_pairs)`` int64 in ``{0, 1}``: run ``j`` trains on member
        ``masks[j, i]`` of pair ``i``.
    """
    n_pairs = positive_int(n_pairs, "n_pairs")
    runs = positive_int(runs, "runs")
    rng = np.random.default_rng(None if seed is None else positive_int(seed, "seed", minimum=0))
    return rng.integers(0, 2, size=(runs, n_pairs)).astype(np.int64)


def supersample_record(*, run_id: str, supersample_id, mask, pair_losses, pair_predictions=None,
                       loss_range=(0.0, 1.0), **fields) -> dict:
    """A run-log record (schema 2) of one supersample run, checked.

    Parameters
    ----------
    run_id : str
        Unique in the log.
    supersample_id : str or int
        Names the supersample: runs sharing it share the ``2n`` examples.
    mask : array_like, shape (n,)
        The run's mask (0/1 per pair).
    pair_losses : array_like, shape (n, 2)
        The loss of the trained model on both members of every pair, in ``loss_range``.
    pair_predictions : array_like of int, shape (n, 2), optional
        Its predicted labels on both members (enables the f-CMI bound).
    loss_range : (float, float), default (0, 1)
        The range the loss lives in.
    **fields
        Any other schema field (``test_loss``, ``n_test``, ``config``, ...).

    Returns
    -------
    dict
        With ``n_train = n``, ``train_loss`` (the mean loss of the members
        trained on) and, unless given, ``test_loss`` set to the mean loss of
        the held-out members. ``ValueError`` names any field that is wrong.
    """
    from ratebound.runs import parse_record

    u = np.asarray(mask)
    losses = np.asarray(pair_losses, dtype=float)
    if u.ndim != 1 or losses.shape != (u.size, 2):
        raise ValueError(f"pair_losses must have shape (n, 2) = ({u.size}, 2) for a mask of {u.size} pairs, "
                         f"got {losses.shape}")
    if not np.isin(u, (0, 1)).all():
        raise ValueError("mask must hold only 0 and 1")
    idx = np.arange(u.size)
    record = {
        "run_id": run_id, "n_train": int(u.size), "supersample_id": supersample_id,
        "mask": u.astype(int).tolist(), "pair_losses": losses.tolist(), "loss_range": list(loss_range),
        "train_loss": float(losses[idx, u].mean()), "test_loss": float(losses[idx, 1 - u].mean()),
        **fields,
    }
    if pair_predictions is not None:
        record["pair_predictions"] = np.asarray(pair_predictions).astype(int).tolist()
    rec, problems = parse_record(record)
    if problems:
        raise ValueError("; ".join(problems))
    return record
