"""Fixtures for the ratebound tests: synthetic runs of a finite-bank selection rule, for the report and CLI tests.

A bank of ``K`` threshold classifiers ``h_k(x) = 1[x > t_k]``, ``t_k = k/(K-1)``,
on ``x ~ U[0, 1]`` with labels ``y = 1[x > 1/2]`` flipped with probability
``eta``. The population 0-1 risk of ``h_k`` is exact:
``eta + (1 - 2 eta) |t_k - 1/2|``. Each run draws its own training set,
computes the Gibbs posterior ``q(k|S) ~ exp(-alpha n err_S(h_k))`` and samples
the selected hypothesis from it (``alpha = inf`` is argmin).
"""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest

from ratebound.cli import main

ETA = 0.2


def population_risk(thresholds: np.ndarray) -> np.ndarray:
    return ETA + (1 - 2 * ETA) * np.abs(thresholds - 0.5)


def bank_runs(*, runs: int, n: int, bank_size: int, alpha: float, seed: int, config=None) -> list[dict]:
    rng = np.random.default_rng(seed)
    thresholds = np.linspace(0.0, 1.0, bank_size)
    risk = population_risk(thresholds)
    records = []
    for j in range(runs):
        x = rng.random(n)
        y = (x > 0.5) ^ (rng.random(n) < ETA)
        errors = ((x[None, :] > thresholds[:, None]) != y[None, :]).mean(axis=1)
        if np.isinf(alpha):
            post = (errors == errors.min()).astype(float)
        else:
            logits = -alpha * n * errors
            post = np.exp(logits - logits.max())
        post /= post.sum()
        k = int(rng.choice(bank_size, p=post))
        records.append({
            "schema_version": 1, "run_id": f"run-{seed}-{j}", "n_train": n, "loss_range": [0, 1],
            "train_loss": float(errors[k]), "test_loss": float(risk[k]),
            "hypothesis": k, "bank_size": bank_size, "posterior": post.tolist(),
            "config": config if config is not None else {"alpha": alpha if np.isfinite(alpha) else "inf",
                                                          "bank_size": bank_size, "n": n},
        })
    return records


def supersample_runs(*, supersamples: int, masks: int, n: int, bank_size: int, seed: int) -> list[dict]:
    """Argmin runs on supersamples: ``n`` pairs, a random mask per run, pair losses logged."""
    rng = np.random.default_rng(seed)
    thresholds = np.linspace(0.0, 1.0, bank_size)
    records = []
    for s in range(supersamples):
        x = rng.random((n, 2))
        y = (x > 0.5) ^ (rng.random((n, 2)) < ETA)
        losses = (x[None] > thresholds[:, None, None]) != y[None]  # (K, n, 2)
        for j in range(masks):
            u = rng.integers(0, 2, size=n)
            train = losses[:, np.arange(n), u].mean(axis=1)
            k = int(np.argmin(train))
            records.append({
                "run_id": f"ss{s}-m{j}", "n_train": n, "loss_range": [0, 1], "supersample_id": s,
                "mask": u.tolist(), "pair_losses": losses[k].astype(float).tolist(),
                "hypothesis": k, "bank_size": bank_size, "train_loss": float(train[k]),
                "config": {"kind": "supersample"},
            })
    return records


@pytest.fixture
def make_bank_runs():
    return bank_runs


@pytest.fixture
def make_supersample_runs():
    return supersample_runs


@pytest.fixture
def write_jsonl(tmp_path):
    """Write records (dicts or raw strings) as lines of a fresh file; return its path."""
    counter = iter(range(10**6))

    def write(records, name=None):
        path = tmp_path / (name or f"runs{next(counter)}.jsonl")
        lines = [r if isinstance(r, str) else json.dumps(r) for r in records]
        path.write_text("".join(line + "\n" for line in lines))
        return path

    return write


def _run_cli(argv):
    """``(status, stdout, stderr)`` of ``ratebound.cli.main(argv)``, argparse exits included."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = main(argv)
        except SystemExit as exc:
            status = exc.code
    return status, out.getvalue(), err.getvalue()


@pytest.fixture(scope="session")
def run_cli():
    """The ``ratebound`` command in-process: ``run_cli(argv) -> (status, stdout, stderr)``."""
    return _run_cli
