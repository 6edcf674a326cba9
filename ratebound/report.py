r"""Every bound a group of logged runs allows, with its terms.

:func:`bound_report` groups validated run records (:mod:`ratebound.runs`) by
their ``config`` (leaving out the seed keys, so that repetitions of one setting
on independent training sets form one group) and, for each group, computes each bound whose fields are
logged and says, for each other bound, which fields it would need.

Kinds. A bound is a **certificate** when every term is either logged exactly
or a proven inequality (union, Occam, PAC-Bayes-kl: given that the loss obeys
the stated range). It is an **estimate** when a term is estimated from a
finite number of runs (:math:`I(S;W)` from posteriors or selected hypotheses,
CMI from supersample runs, an externally logged ``mi_sw``): the estimate can
fall below the true information, so the bound is not guaranteed. ``target``
says what is bounded: ``"E[gap]"`` (the expected generalisation gap, the
Xu-Raginsky family) or ``"risk"`` (the population risk: Occam, PAC-Bayes-kl
per run with probability :math:`\ge 1-\delta`; the D-INL bound in expectation).

Units: bounds and losses in units of the logged loss; information in nats.
``sigma`` comes from the ``loss_range`` :math:`[a, b]` the runs of a group log,
as :math:`(b-a)/2` (the widest when they log several), else from the caller,
else 0.5 (a loss in :math:`[0, 1]`). Bounds stated for :math:`[0,1]` losses
(CMI, f-CMI, kl, Occam) are rescaled to a logged :math:`[a, b]`; without a
logged range they assume :math:`[0, 1]` unless the caller gave a ``sigma``
(then they need ``loss_range``), and a training loss outside the assumed range
makes them not computable rather than clipped.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from estimators._validation import positive_float, positive_int, probability
from ratebound.generalization import (
    cmi_bound,
    fcmi_bound,
    kl_bound,
    occam_bound,
    union_bound,
    xu_raginsky,
)
from ratebound.rdg import _miller_madow_entropy, rdg_bound, selection_mi
from ratebound.runs import RunRecord

__all__ = ["SEED_KEYS", "BoundValue", "MissingBound", "GroupReport", "bound_report", "group_runs"]

CERTIFICATE = "certificate"
ESTIMATE = "estimate"


@dataclass(frozen=True)
class BoundValue:
    """One computed bound.

    Attributes
    ----------
    name : str
        Bound and the source of its information term, e.g. ``"xu-raginsky (posterior)"``.
    target : str
        ``"E[gap]"`` or ``"risk"``.
    value : float
        The bound, in units of the loss.
    kind : str
        ``"certificate"`` or ``"estimate"``.
    terms : dict
        Every term, named (information in nats).
    assumption : str
        What the bound assumes.
    """

    name: str
    target: str
    value: float
    kind: str
    terms: dict = field(hash=False)
    assumption: str


@dataclass(frozen=True)
class MissingBound:
    """A bound the logs do not allow, with the fields it needs."""

    name: str
    needs: tuple[str, ...]
    reason: str


@dataclass(frozen=True)
class GroupReport:
    """The bounds of one group of runs (one ``config``, seeds left out)."""

    label: str
    config: dict | None = field(hash=False)
    run_ids: tuple[str, ...]
    n_train: int
    sigma: float
    sigma_source: str
    delta: float
    measured: dict = field(hash=False)
    bounds: tuple[BoundValue, ...]
    missing: tuple[MissingBound, ...]

    def to_dict(self) -> dict:
        """A JSON-able dict of the report."""
        return {
            "label": self.label,
            "config": self.config,
            "run_ids": list(self.run_ids),
            "n_runs": len(self.run_ids),
            "n_train": self.n_train,
            "sigma": self.sigma,
            "sigma_source": self.sigma_source,
            "delta": self.delta,
            "measured": dict(self.measured),
            "bounds": [
                {"name": b.name, "target": b.target, "value": b.value, "kind": b.kind,
                 "terms": dict(b.terms), "assumption": b.assumption}
                for b in self.bounds
            ],
            "missing": [{"name": m.name, "needs": list(m.needs), "reason": m.reason} for m in self.missing],
        }


# ----------------------------------------------------------------------- grouping


#: Top-level config keys that vary between repetitions of one setting (the randomness
#: of a run: initialisation, training-set draw); ignored when grouping by default.
SEED_KEYS = ("seed", "data_seed")


def _config_key(config, ignore) -> str:
    if config is None:
        return ""
    kept = {k: v for k, v in config.items() if k not in ignore}
    return json.dumps(kept, sort_keys=True, separators=(",", ":"))


def group_runs(records: Sequence[RunRecord], *, ignore=SEED_KEYS) -> dict[str, list[RunRecord]]:
    """Group records by their ``config``, first-seen order.

    The key is the canonical JSON of ``config`` without the top-level keys in
    ``ignore`` (by default the seeds, so that repetitions of one setting on
    independent training sets form one group); ``""`` for runs without config.
    """
    ignore = frozenset(ignore)
    groups: dict[str, list[RunRecord]] = {}
    for rec in records:
        groups.setdefault(_config_key(rec.config, ignore), []).append(rec)
    return groups


@dataclass(frozen=True)
class _Group:
    """What every bound of one group needs to know."""

    runs: tuple[RunRecord, ...]
    n: int
    sigma: float
    unit_range: tuple[float, float] | None  # [a, b] for the [0,1]-loss bounds, None if unknown
    delta: float
    seed: int | None
    n_boot: int

    def having(self, *names: str) -> list[RunRecord]:
        return [r for r in self.runs if all(getattr(r, name) is not None for name in names)]

    def scale(self, value01: float) -> float:
        a, b = self.unit_range
        return a + (b - a) * value01

    def to_unit(self, loss: float) -> float:
        a, b = self.unit_range
        return min(max((loss - a) / (b - a), 0.0), 1.0)


def _resolve_sigma(runs, sigma) -> tuple[float, str, tuple[float, float] | None]:
    """``(sigma, where it came from, [a, b] for the [0,1]-loss bounds or None)``.

    A logged ``loss_range`` wins over the caller's ``sigma``; runs of one group
    that log no range are taken to share the range the others log. Only when
    no run logs a range does the caller's ``sigma`` (or the default 0.5, a loss
    in ``[0, 1]``) apply.
    """
    logged = {r.loss_range for r in runs} - {None}
    if len(logged) == 1:
        a, b = logged.pop()
        count = sum(r.loss_range is not None for r in runs)
        share = "" if count == len(runs) else f", logged by {count} of {len(runs)} runs"
        unused = "" if sigma is None or sigma == (b - a) / 2.0 else f"; the given sigma {sigma:g} is not used"
        return (b - a) / 2.0, f"loss_range [{a:g}, {b:g}]{share}{unused}", (a, b)
    if len(logged) > 1:
        if sigma is not None:
            return float(sigma), "given (runs log different loss ranges)", None
        a, b = max(logged, key=lambda ab: ab[1] - ab[0])
        return (b - a) / 2.0, f"widest logged loss_range [{a:g}, {b:g}] (runs log different ranges)", None
    if sigma is not None:
        return float(sigma), "given", None
    return 0.5, "default: loss assumed in [0, 1]", (0.0, 1.0)


# ------------------------------------------------------------------------- bounds

_BoundFn = Callable[[_Group], "BoundValue | MissingBound"]
_UNIT_NEEDS = ("loss_range",)


def _missing(name: str, needs, reason: str) -> MissingBound:
    return MissingBound(name, tuple(needs), reason)


def _common(values, field_name: str):
    distinct = set(values)
    if len(distinct) != 1:
        raise ValueError(f"{field_name} differs between runs of one config: {sorted(distinct)}")
    return distinct.pop()


def _union(g: _Group):
    name = "union (finite bank)"
    runs = g.having("bank_size")
    if not runs:
        return _missing(name, ["bank_size"], "needs the size of the finite bank")
    k = _common((r.bank_size for r in runs), "bank_size")
    value = union_bound(k, g.n, sigma=g.sigma)
    terms = {"ln|W|": math.log(k), "n": g.n, "sigma": g.sigma}
    return BoundValue(name, "E[gap]", value, CERTIFICATE, terms,
                      "loss sigma-sub-Gaussian; W chosen from a bank of bank_size hypotheses")


def _xr_terms(est, g: _Group, runs: int) -> dict:
    return {
        "I(S;W)": est.value, "I ci_low": est.ci_low, "I ci_high": est.ci_high,
        "bound at ci_high": xu_raginsky(est.ci_high, g.n, sigma=g.sigma),
        "n": g.n, "sigma": g.sigma, "runs": runs,
    }


def _shared_data(name: str, field_name: str, runs) -> MissingBound | None:
    """Runs of a supersample share data: their selections do not sample I(S;W)."""
    if any(r.supersample_id is not None for r in runs):
        return _missing(name, [f"{field_name} (runs on independent training sets)"],
                        "runs of one supersample share data; their selections are not independent")
    return None


def _xr_estimated(g: _Group, name: str, field_name: str, reason: str, estimate, assumption: str):
    """Xu-Raginsky with I(S;W) estimated by ``estimate(runs)`` from the runs logging ``field_name``."""
    runs = g.having(field_name)
    if len(runs) < 2:
        return _missing(name, [field_name], reason)
    if (miss := _shared_data(name, field_name, runs)) is not None:
        return miss
    est = estimate(runs)
    value = xu_raginsky(est.value, g.n, sigma=g.sigma)
    return BoundValue(name, "E[gap]", value, ESTIMATE, _xr_terms(est, g, len(runs)), assumption)


def _xr_posterior(g: _Group):
    def estimate(runs):
        from estimators.discrete import bank_mi

        _common((len(r.posterior) for r in runs), "posterior length")
        return bank_mi([r.posterior for r in runs], n_boot=g.n_boot, seed=g.seed)

    return _xr_estimated(g, "xu-raginsky (posterior)", "posterior",
                         "needs q(W|S) rows from at least 2 runs (training sets)", estimate,
                         "training sets of the runs i.i.d.; I(S;W) by the closed form of bank_mi")


def _xr_hypothesis(g: _Group):
    def estimate(runs):
        sizes = {r.bank_size for r in runs} - {None}
        k = _common(sizes, "bank_size") if sizes else None
        return selection_mi([r.hypothesis for r in runs], bank_size=k, n_boot=g.n_boot, seed=g.seed)

    return _xr_estimated(g, "xu-raginsky (selected hypotheses)", "hypothesis",
                         "needs the selected bank index from at least 2 runs", estimate,
                         "each run on its own i.i.d. training set; I(S;W) <= H(W), Miller-Madow plug-in")


def _xr_logged(g: _Group):
    name = "xu-raginsky (logged mi_sw)"
    runs = g.having("mi_sw")
    if not runs:
        return _missing(name, ["mi_sw"], "needs an externally estimated I(S;W)")
    mi = float(np.mean([r.mi_sw for r in runs]))
    methods = sorted({r.mi_sw_method or "unspecified" for r in runs})
    value = xu_raginsky(mi, g.n, sigma=g.sigma)
    terms = {"I(S;W)": mi, "n": g.n, "sigma": g.sigma, "runs": len(runs), "method": ", ".join(methods)}
    return BoundValue(name, "E[gap]", value, ESTIMATE, terms, "mi_sw as logged (mean over runs)")


def _individual(g: _Group):
    return _missing(
        "individual-sample (Bu-Zou-Veeravalli)",
        ["per-sample I(W;Z_i)"],
        "per-sample informations are not a schema-v1 field; call ratebound.individual_sample(mis)",
    )


def _supersample_groups(runs) -> list[list[RunRecord]]:
    groups: dict = {}
    for r in runs:
        groups.setdefault((type(r.supersample_id).__name__, r.supersample_id), []).append(r)
    return [v for v in groups.values() if len(v) >= 2]


def _plugin_mi(a: np.ndarray, b: np.ndarray) -> float:
    """Plug-in I(A;B) in nats of two discrete sample vectors (columns of labels)."""
    _, ia = np.unique(a, return_inverse=True)
    _, ib = np.unique(b, return_inverse=True)
    joint = np.zeros((ia.max() + 1, ib.max() + 1))
    np.add.at(joint, (ia, ib), 1.0)
    joint /= joint.sum()
    pa, pb = joint.sum(axis=1, keepdims=True), joint.sum(axis=0, keepdims=True)
    nz = joint > 0
    return float(max((joint[nz] * np.log(joint[nz] / (pa @ pb)[nz])).sum(), 0.0))


def _discretise(values: np.ndarray, runs: int) -> np.ndarray:
    """Loss differences as labels: exact values if few, else quantile bins (about sqrt(runs))."""
    rounded = np.round(values, 12)
    if np.unique(rounded).size <= max(2, int(math.sqrt(runs))):
        return rounded
    edges = np.quantile(values, np.linspace(0, 1, max(2, int(math.sqrt(runs))) + 1)[1:-1])
    return np.searchsorted(edges, values, side="right")


def _unit_missing(name: str, g: _Group, needs) -> MissingBound | None:
    if g.unit_range is None:
        return _missing(name, [*needs, *_UNIT_NEEDS], "a bound for bounded losses: needs the loss range")
    return None


def _entropy_of_labels(labels) -> float:
    """Miller-Madow entropy (nats) of the empirical distribution of ``labels``."""
    _, counts = np.unique(np.asarray(labels), return_counts=True)
    return float(_miller_madow_entropy(counts)[0])


def _supersample_bound(g: _Group, name: str, needs, reason: str, estimate, assumption: str):
    """An expected-gap bound from supersample runs, for a loss in ``g.unit_range``.

    ``estimate(groups, n, width)`` gets the runs grouped by supersample (at
    least 2 each), their common ``n_train`` and the loss range's width, and
    returns the bound for a ``[0, 1]`` loss with its leading terms; the bound is
    scaled by ``width``.
    """
    if (miss := _unit_missing(name, g, needs)) is not None:
        return miss
    groups = _supersample_groups(g.having(*needs))
    if not groups:
        return _missing(name, needs, reason)
    n = _common((r.n_train for rs in groups for r in rs), "n_train of supersample runs")
    width = g.unit_range[1] - g.unit_range[0]
    unit_bound, terms = estimate(groups, n, width)
    terms.update({"n": n, "supersamples": len(groups), "runs": sum(map(len, groups))})
    return BoundValue(name, "E[gap]", width * unit_bound, ESTIMATE, terms, assumption)


def _cmi(g: _Group):
    def estimate(groups, n, width):
        k = {r.bank_size for rs in groups for r in rs} - {None}
        cap = min(n * math.log(2), math.log(_common(k, "bank_size")) if k else math.inf)
        per = [min(_entropy_of_labels([r.hypothesis for r in rs]), cap) for rs in groups]
        cmi = float(np.mean(per))
        return cmi_bound(cmi, n), {"CMI": cmi}

    return _supersample_bound(g, "cmi (Steinke-Zakynthinou)", ("supersample_id", "mask", "hypothesis"),
                              "needs at least 2 runs (masks) of one supersample, each with its hypothesis",
                              estimate,
                              "loss in loss_range; CMI <= H(W|Z~) by Miller-Madow plug-in per supersample")


def _fcmi(g: _Group):
    def estimate(groups, n, width):
        per_pair = np.zeros(n)
        for rs in groups:
            u = np.array([r.mask for r in rs])
            pairs = np.array([r.pair_losses for r in rs]) / width
            diff = pairs[:, :, 1] - pairs[:, :, 0]
            per_pair += [_plugin_mi(_discretise(diff[:, i], len(rs)), u[:, i]) for i in range(n)]
        per_pair /= len(groups)
        return fcmi_bound(per_pair), {"mean I(Delta_i;U_i|Z~)": float(per_pair.mean())}

    return _supersample_bound(g, "loss-difference cmi (per pair)", ("supersample_id", "mask", "pair_losses"),
                              "needs at least 2 runs (masks) of one supersample with pair losses",
                              estimate,
                              "loss in loss_range; plug-in I(Delta_i;U_i) within each supersample (biased up)")


def _per_run_risk(g: _Group, name: str, needs, reason: str, bound_of, assumption: str, summary=None):
    """A high-probability risk bound, run by run, reported as the mean over runs.

    ``bound_of(run, train_risk)`` bounds a ``[0, 1]`` loss (the training loss
    mapped from ``g.unit_range``); ``summary(runs)`` adds terms.
    """
    if (miss := _unit_missing(name, g, needs)) is not None:
        return miss
    runs = g.having(*needs)
    if not runs:
        return _missing(name, needs, reason)
    a, b = g.unit_range
    tol = 1e-9 * (b - a)  # the tolerance of ratebound.runs' range check
    outside = [r.run_id for r in runs if not a - tol <= r.train_loss <= b + tol]
    if outside:
        return _missing(name, [*needs, *_UNIT_NEEDS],
                        f"train_loss of run {outside[0]!r} lies outside the assumed range [{a:g}, {b:g}]")
    values = [g.scale(bound_of(r, g.to_unit(r.train_loss))) for r in runs]
    terms = summary(runs) if summary is not None else {}
    terms.update({"min": min(values), "max": max(values), "delta": g.delta, "runs": len(runs)})
    return BoundValue(name, "risk", float(np.mean(values)), CERTIFICATE, terms, assumption)


def _uniform_prior_kl(posterior) -> float:
    """KL(Q || uniform) = ln K - H(Q) in nats."""
    q = np.asarray(posterior)
    nz = q[q > 0]
    return max(math.log(q.size) + float((nz * np.log(nz)).sum()), 0.0)


def _kl(g: _Group):
    return _per_run_risk(
        g, "pac-bayes-kl (posterior, uniform prior)", ("posterior", "train_loss"),
        "needs q(W|S) and its training (Gibbs) risk",
        lambda r, risk: kl_bound(risk, _uniform_prior_kl(r.posterior), r.n_train, delta=g.delta),
        "per run, prob >= 1-delta; train_loss is the Gibbs risk of q(W|S); loss in range",
        summary=lambda runs: {"mean KL(Q||P)": float(np.mean([_uniform_prior_kl(r.posterior) for r in runs]))},
    )


def _occam(g: _Group):
    return _per_run_risk(
        g, "occam (finite bank)", ("bank_size", "train_loss"),
        "needs the bank size and each run's training loss",
        lambda r, risk: occam_bound(risk, r.bank_size, r.n_train, delta=g.delta),
        "per run, prob >= 1-delta; uniform prior over the bank; loss in range",
    )


def _selection_information(g: _Group):
    """Best available I(S;W) for the D-INL bound: posterior, then hypothesis, then mi_sw."""
    for fn, source in ((_xr_posterior, "posterior"), (_xr_hypothesis, "hypothesis"), (_xr_logged, "mi_sw")):
        out = fn(g)
        if isinstance(out, BoundValue):
            return out.terms["I(S;W)"], source
    return None, None


def _rdg(g: _Group):
    name = "rate-distortion-generalisation (D-INL)"
    needs = ("gate_rate", "context_pmf", "gate_distortion", "train_loss")
    runs = g.having(*needs)
    mi, source = _selection_information(g)
    if not runs or mi is None:
        lacking = [*needs] if not runs else []
        lacking += [] if mi is not None else ["posterior | hypothesis | mi_sw"]
        return _missing(name, lacking, "needs D(R_g) inputs, the training loss and an I(S;W) source")
    from estimators.blahut_arimoto import distortion_rate

    d = np.array([distortion_rate(r.context_pmf, r.gate_distortion, r.gate_rate).distortion for r in runs])
    raw = np.array([r.train_loss for r in runs]) - d
    bound = rdg_bound(distortion_rate=float(d.mean()), slack=float(np.maximum(raw, 0.0).mean()),
                      mi_sw=mi, n=g.n, sigma=g.sigma)
    terms = {"D(R_g)": bound.distortion_rate, "delta_m raw": float(raw.mean()),
             "delta_m": bound.slack, "generalization": bound.generalization, "I(S;W)": mi,
             "I source": source, "mean gate_rate": float(np.mean([r.gate_rate for r in runs])),
             "runs": len(runs)}
    return BoundValue(name, "risk", bound.total, ESTIMATE, terms,
                      "gate_distortion in the train_loss's loss; D(R_g) by Blahut-Arimoto per run")


_BOUNDS: tuple[_BoundFn, ...] = (
    _union, _xr_posterior, _xr_hypothesis, _xr_logged, _individual, _cmi, _fcmi, _kl, _occam, _rdg,
)


# ------------------------------------------------------------------------ report


def _measured(runs) -> dict:
    out: dict = {}
    both = [r for r in runs if r.train_loss is not None and r.test_loss is not None]
    if both:
        gaps = np.array([r.test_loss - r.train_loss for r in both])
        out.update(
            runs=len(both),
            train_loss=float(np.mean([r.train_loss for r in both])),
            test_loss=float(np.mean([r.test_loss for r in both])),
            gap=float(gaps.mean()),
            gap_stderr=float(gaps.std(ddof=1) / math.sqrt(gaps.size)) if gaps.size > 1 else 0.0,
        )
    pairs = [r for r in runs if r.pair_losses is not None and r.mask is not None]
    if pairs:
        gaps = []
        for r in pairs:
            losses = np.array(r.pair_losses)
            u = np.array(r.mask)
            idx = np.arange(u.size)
            gaps.append(float((losses[idx, 1 - u] - losses[idx, u]).mean()))
        out["supersample_gap"] = float(np.mean(gaps))
    return out


def _label(key: str, index: int, total: int) -> str:
    text = key if key else "(no config)"
    text = text if len(text) <= 100 else text[:97] + "..."
    return f"group {index} of {total}: {text}"


def bound_report(records: Sequence[RunRecord], *, sigma=None, delta=0.05, seed: int | None = 0,
                 n_boot: int = 1000, ignore=SEED_KEYS) -> tuple[GroupReport, ...]:
    """Every bound each ``config`` group of ``records`` allows.

    Parameters
    ----------
    records : sequence of RunRecord
        Validated runs (:func:`ratebound.load_runs`), at least one.
    sigma : float, optional
        Sub-Gaussian parameter of the loss when no common ``loss_range`` is logged.
    delta : float, default 0.05
        Failure probability of the high-probability bounds.
    seed : int or None, default 0
        Seed of the bootstrap intervals (fixed by default so reports are reproducible).
    n_boot : int, default 1000
        Bootstrap resamples of each information estimate.
    ignore : iterable of str, default ("seed", "data_seed")
        Top-level config keys left out of the grouping (see :func:`group_runs`).

    Returns
    -------
    tuple of GroupReport
        One per distinct ``config``, in first-seen order. ``n_train`` of a group
        is the smallest logged (the bounds then hold for every run).

    Raises
    ------
    ValueError
        For invalid ``sigma``/``delta``, no records, or runs of one config that
        disagree on ``bank_size`` or on the length of their posteriors.
    """
    if not records:
        raise ValueError("records must hold at least one run")
    if sigma is not None:
        sigma = positive_float(sigma, "sigma")
    delta = probability(delta, "delta", open_interval=True)
    n_boot = positive_int(n_boot, "n_boot", minimum=2)
    groups = group_runs(records, ignore=ignore)
    reports = []
    for index, (key, runs) in enumerate(groups.items(), start=1):
        s, source, unit = _resolve_sigma(runs, sigma)
        g = _Group(tuple(runs), min(r.n_train for r in runs), s, unit, delta, seed, n_boot)
        bounds, missing = [], []
        for fn in _BOUNDS:
            out = fn(g)
            (bounds if isinstance(out, BoundValue) else missing).append(out)
        reports.append(GroupReport(
            label=_label(key, index, len(groups)), config=json.loads(key) if key else None,
            run_ids=tuple(r.run_id for r in runs), n_train=g.n, sigma=s, sigma_source=source,
            delta=delta, measured=_measured(runs), bounds=tuple(bounds), missing=tuple(missing),
        ))
    return tuple(reports)
