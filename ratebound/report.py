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

Rows. The finite-bank family (union, Xu-Raginsky from posteriors or selected
hypotheses, PAC-Bayes-kl, Occam); Xu-Raginsky from a logged ``mi_sw``; the
supersample family (Steinke-Zakynthinou CMI from hypotheses, and the e-CMI rows of
:mod:`ratebound.ecmi`: f-CMI, loss-difference CMI and its variance form, the linear
fast-rate e-CMI bound); the held-out test-set certificate (binomial-kl inversion
of each run's ``test_loss`` over ``n_test`` samples); and the D-INL bound, whose
generalisation term is the tightest of the expected-gap rows the group allows
(its ``alternatives`` list the others). Runs that share a training set (one
supersample and mask, or one ``config.data_seed``: :func:`training_set`) are never
counted as independent draws of ``S``.

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
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from estimators._validation import positive_float, positive_int, probability
from estimators.discrete import kl_divergence, label_entropy
from ratebound.ecmi import Supersample, ecmi_bounds
from ratebound.generalization import (
    cmi_bound,
    kl_bound,
    kl_inverse,
    occam_bound,
    union_bound,
    xu_raginsky,
)
from ratebound.rdg import rdg_bound, selection_mi
from ratebound.runs import RunRecord

__all__ = ["SEED_KEYS", "BoundValue", "MissingBound", "GroupReport", "bound_report", "group_runs", "training_set"]

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
#: of a run: initialisation, training-set draw, supersample draw); ignored when grouping
#: by default. Which runs share a training set is read separately (:func:`training_set`).
SEED_KEYS = ("seed", "data_seed", "supersample_seed")


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


def _field(rec: RunRecord, name: str):
    """A schema field of ``rec`` (an attribute, or kept in ``extra`` by an older reader)."""
    value = getattr(rec, name, None)
    return rec.extra.get(name) if value is None else value


def training_set(rec: RunRecord) -> tuple:
    """A key naming the training set ``rec`` was trained on: equal keys, same data.

    A supersample run's training set is its supersample and mask; otherwise the
    config's ``data_seed`` names it (an ``inl`` config with ``data_seed`` null
    draws its data with ``seed``); a run with neither is taken to have its own.
    Runs with equal keys are never counted as independent draws of ``S``.
    """
    if rec.supersample_id is not None and rec.mask is not None:
        return ("supersample", str(rec.supersample_id), tuple(rec.mask))
    config = rec.config or {}
    if config.get("data_seed") is not None:
        return ("data_seed", json.dumps(config["data_seed"], sort_keys=True))
    if "data_seed" in config and "seed" in config:
        return ("seed", json.dumps(config["seed"], sort_keys=True))
    return ("run", rec.run_id)


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
        return [r for r in self.runs if all(_field(r, name) is not None for name in names)]

    @cached_property
    def ecmi(self):
        """``(bounds, supersamples used, pairs)`` of :func:`ratebound.ecmi.ecmi_bounds`, or ``None``."""
        if self.unit_range is None:
            return None
        groups = _supersample_groups(self.having("supersample_id", "mask", "pair_losses"))
        if not groups:
            return None
        n = _common((r.n_train for rs in groups for r in rs), "n_train of supersample runs")
        a, b = self.unit_range
        supersamples = []
        for rs in groups:
            preds = [_field(r, "pair_predictions") for r in rs]
            supersamples.append(Supersample(
                masks=np.array([r.mask for r in rs]),
                losses=np.clip((np.array([r.pair_losses for r in rs], dtype=float) - a) / (b - a), 0.0, 1.0),
                predictions=np.array(preds, dtype=np.int64) if all(p is not None for p in preds) else None,
            ))
        return ecmi_bounds(supersamples, n_boot=max(2, self.n_boot // 5), seed=self.seed), groups, n

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
    for r in runs:
        logged = [v for v in (r.train_loss, r.test_loss) if v is not None]
        logged += [x for pair in (r.pair_losses or ()) for x in pair]
        if logged and not 0.0 <= min(logged) <= max(logged) <= 1.0:
            raise ValueError(
                f"run {r.run_id!r} logs losses outside [0, 1] (from {min(logged):g} to {max(logged):g}) and no "
                "loss_range: log loss_range [a, b] or give sigma (--sigma), the bounds' default assumes [0, 1]")
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


def _independent(name: str, field_name: str, runs) -> tuple[list, MissingBound | None]:
    """One run per training set (:func:`training_set`), or why I(S;W) cannot be sampled.

    Runs of a supersample share data, and runs with one ``data_seed`` share a
    training set: neither are independent draws of ``S``.
    """
    if any(r.supersample_id is not None for r in runs):
        return [], _missing(name, [f"{field_name} (runs on independent training sets)"],
                            "runs of one supersample share data; their selections are not independent")
    first: dict = {}
    for r in runs:
        first.setdefault(training_set(r), r)
    if len(first) < 2:
        return [], _missing(name, [f"{field_name} (runs on independent training sets)"],
                            f"the {len(runs)} runs share {len(first)} training set(s) (same data_seed); "
                            "I(S;W) needs runs on at least 2 independent training sets")
    return list(first.values()), None


def _xr_estimated(g: _Group, name: str, field_name: str, reason: str, estimate, assumption: str):
    """Xu-Raginsky with I(S;W) estimated by ``estimate(runs)`` from the runs logging ``field_name``.

    Only one run per training set enters (runs that share one are not
    independent draws of ``S``).
    """
    runs = g.having(field_name)
    if len(runs) < 2:
        return _missing(name, [field_name], reason)
    runs, miss = _independent(name, field_name, runs)
    if miss is not None:
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


def _unit_missing(name: str, g: _Group, needs) -> MissingBound | None:
    if g.unit_range is None:
        return _missing(name, [*needs, *_UNIT_NEEDS], "a bound for bounded losses: needs the loss range")
    return None


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
        per = [min(label_entropy([r.hypothesis for r in rs], correction="miller-madow"), cap) for rs in groups]
        cmi = float(np.mean(per))
        return cmi_bound(cmi, n), {"CMI": cmi}

    return _supersample_bound(g, "cmi (Steinke-Zakynthinou)", ("supersample_id", "mask", "hypothesis"),
                              "needs at least 2 runs (masks) of one supersample, each with its hypothesis",
                              estimate,
                              "loss in loss_range; CMI <= H(W|Z~) by Miller-Madow plug-in per supersample")


#: The e-CMI bounds of :mod:`ratebound.ecmi`: row name, what the information is, needs.
_ECMI_ROWS = {
    "f-cmi": ("f-cmi (Harutyunyan et al.)", "mean I(F_i;U_i|Z~)", ("pair_predictions",)),
    "ld-cmi": ("loss-difference cmi (Wang-Mao)", "mean I(Delta_i;U_i|Z~)", ()),
    "ld-cmi variance": ("loss-difference cmi, variance form", "mean I(Delta_i;U_i|Z~)", ()),
    "e-cmi linear": ("e-cmi linear, fast rate (Hellstrom-Durisi)", "mean I(L_i;U_i|Z~)", ()),
}
_SUPERSAMPLE_NEEDS = ("supersample_id", "mask", "pair_losses")
_ECMI_NOTE = ("plug-in informations over the masks of each supersample (biased up by about "
              "(values-1)/(2 masks) nats per pair that does not depend on its mask), mean over supersamples; "
              "an estimate, not a certificate")


def _ecmi_row(key: str):
    name, info_name, extra = _ECMI_ROWS[key]
    needs = (*_SUPERSAMPLE_NEEDS, *extra)

    def row(g: _Group):
        if (miss := _unit_missing(name, g, needs)) is not None:
            return miss
        if g.ecmi is None:
            return _missing(name, needs, "needs at least 2 runs (masks) of one supersample with pair losses")
        bounds, groups, n = g.ecmi
        found = [b for b in bounds if b.name == key]
        if not found:
            return _missing(name, needs, "needs pair_predictions in every supersample run")
        b = found[0]
        width = g.unit_range[1] - g.unit_range[0]
        terms = {info_name: b.information, "information upper": b.information_upper,
                 "bound at upper": width * b.gap_upper, "train risk": g.scale(b.train_risk),
                 "held-out risk": g.scale(b.held_out_risk), "n": n, "supersamples": len(groups),
                 "runs": sum(map(len, groups))}
        return BoundValue(name, "E[gap]", width * b.gap, ESTIMATE, terms,
                          f"loss in loss_range; {_ECMI_NOTE}")

    return row


def _test_set(g: _Group):
    """The held-out (test-set) bound of each run's own model: binomial-kl inversion."""
    return _per_run_risk(
        g, "test-set (held-out, binomial kl)", ("test_loss", "n_test"),
        "needs each run's held-out loss and the held-out set's size",
        lambda r, risk: kl_inverse(g.to_unit(r.test_loss), math.log(1.0 / g.delta) / _field(r, "n_test")),
        "per run, prob >= 1-delta over a held-out set independent of the run's training; loss in range",
        loss_field="test_loss",
    )


def _per_run_risk(g: _Group, name: str, needs, reason: str, bound_of, assumption: str, summary=None,
                  loss_field: str = "train_loss"):
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
    outside = [r.run_id for r in runs if not a - tol <= getattr(r, loss_field) <= b + tol]
    if outside:
        return _missing(name, [*needs, *_UNIT_NEEDS],
                        f"{loss_field} of run {outside[0]!r} lies outside the assumed range [{a:g}, {b:g}]")
    values = [g.scale(bound_of(r, g.to_unit(getattr(r, loss_field)))) for r in runs]
    terms = summary(runs) if summary is not None else {}
    terms.update({"min": min(values), "max": max(values), "delta": g.delta, "runs": len(runs)})
    return BoundValue(name, "risk", float(np.mean(values)), CERTIFICATE, terms, assumption)


def _uniform_prior_kl(posterior) -> float:
    """KL(Q || uniform) = ln K - H(Q) in nats."""
    q = np.asarray(posterior, dtype=float)
    return kl_divergence(q, np.full(q.size, 1.0 / q.size))


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


def _generalization_terms(g: _Group) -> dict[str, float]:
    """Every expected-gap bound the group allows, by name (units of the loss)."""
    out = {}
    if g.ecmi is not None:
        bounds, _, _ = g.ecmi
        width = g.unit_range[1] - g.unit_range[0]
        out.update({_ECMI_ROWS[b.name][0]: width * b.gap for b in bounds})
    mi, source = _selection_information(g)
    if mi is not None:
        out[f"xu-raginsky (I(S;W) from {source})"] = xu_raginsky(mi, g.n, sigma=g.sigma)
    return out


#: Raw slack below this (units of the loss) is rounding of the Blahut-Arimoto solve, not a bug.
_SLACK_TOL = 1e-6


def _rdg(g: _Group):
    name = "rate-distortion-generalisation (D-INL)"
    needs = ("gate_rate", "context_pmf", "gate_distortion", "train_loss")
    runs = g.having(*needs)
    gens = _generalization_terms(g)
    if not runs or not gens:
        lacking = [*needs] if not runs else []
        lacking += [] if gens else ["supersample runs (e-CMI) | posterior | hypothesis | mi_sw"]
        return _missing(name, lacking, "needs D(R_g) inputs, the training loss and a generalisation term")
    from estimators.blahut_arimoto import distortion_rate

    d = np.array([distortion_rate(r.context_pmf, r.gate_distortion, r.gate_rate).distortion for r in runs])
    raw = np.array([r.train_loss for r in runs]) - d
    on_train = all(_field(r, "gate_samples") == "train" for r in runs)
    source = min(gens, key=gens.get)
    bound = rdg_bound(distortion_rate=float(d.mean()), slack=float(raw.mean()),
                      generalization=gens[source], source=source)
    terms = {"D(R_g)": bound.distortion_rate, "delta_m raw": bound.slack, "delta_m raw min": float(raw.min()),
             "generalization": bound.generalization, "generalization source": source,
             "alternatives": {k: v for k, v in gens.items() if k != source},
             "mean gate_rate": float(np.mean([r.gate_rate for r in runs])), "runs": len(runs)}
    assumption = "D(R_g) by Blahut-Arimoto per run; the generalisation term is the tightest listed (an estimate)"
    if not on_train:
        terms["note"] = ("gate_distortion is not marked as the training samples' (gate_samples != 'train', "
                         "e.g. a schema-1 log of held-out contexts): D(R_g) need not lie below the training "
                         "loss, so delta_m may be negative")
    elif raw.min() < -_SLACK_TOL:
        bad = runs[int(raw.argmin())]
        message = (f"delta_m = train_loss - D(R_g) is {raw.min():.3g} < 0 for run {bad.run_id!r}: D(R_g) on "
                   "the training samples cannot exceed the training loss of the gate; a bug in the logged fields")
        terms["note"] = message
        warnings.warn(message, RuntimeWarning, stacklevel=2)
    return BoundValue(name, "risk", bound.total, ESTIMATE, terms, assumption)


_BOUNDS: tuple[_BoundFn, ...] = (
    _union, _xr_posterior, _xr_hypothesis, _xr_logged, _individual, _cmi,
    *(_ecmi_row(key) for key in _ECMI_ROWS), _kl, _occam, _test_set, _rdg,
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


def _flat(config: dict | None) -> dict:
    """Top-level config items, nested dicts one level down as ``outer.inner``."""
    out = {}
    for k, v in (config or {}).items():
        if isinstance(v, dict):
            out.update({f"{k}.{kk}": vv for kk, vv in v.items()})
        else:
            out[k] = v
    return out


def _labels(keys: list[str]) -> list[str]:
    """One label per group: the config entries in which the groups differ."""
    flats = [_flat(json.loads(k)) if k else {} for k in keys]
    names = sorted({n for f in flats for n in f})
    differ = [n for n in names if len({json.dumps(f.get(n), sort_keys=True) for f in flats}) > 1]
    labels = []
    for index, (key, flat) in enumerate(zip(keys, flats), start=1):
        if not key:
            text = "(no config)"
        elif differ:
            text = ", ".join(f"{n}={json.dumps(flat.get(n))}" for n in differ)
        else:
            text = "all runs"
        text = text if len(text) <= 160 else text[:157] + "..."
        labels.append(f"group {index} of {len(keys)}: {text}")
    return labels


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
    labels = _labels(list(groups))
    reports = []
    for index, (key, runs) in enumerate(groups.items(), start=1):
        s, source, unit = _resolve_sigma(runs, sigma)
        g = _Group(tuple(runs), min(r.n_train for r in runs), s, unit, delta, seed, n_boot)
        bounds, missing = [], []
        for fn in _BOUNDS:
            out = fn(g)
            (bounds if isinstance(out, BoundValue) else missing).append(out)
        reports.append(GroupReport(
            label=labels[index - 1], config=json.loads(key) if key else None,
            run_ids=tuple(r.run_id for r in runs), n_train=g.n, sigma=s, sigma_source=source,
            delta=delta, measured=_measured(runs), bounds=tuple(bounds), missing=tuple(missing),
        ))
    return tuple(reports)
