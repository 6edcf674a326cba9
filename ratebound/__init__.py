"""Bounds and the command line: runs in, bound reports out.

Information-theoretic generalisation bounds (:mod:`ratebound.generalization`),
the D-INL rate-distortion-generalisation bound (:mod:`ratebound.rdg`), e-CMI
bounds from supersample runs (:mod:`ratebound.ecmi`, with the helpers of
:mod:`ratebound.supersample` for a user's own training loop), the
Gaussian CEO problem of model aggregation (:mod:`ratebound.ceo`), run logs
(:mod:`ratebound.runs`) and the bound report of the ``ratebound bound``
command (:mod:`ratebound.report`). Bounds are in units of the loss, every
information quantity in nats.
"""

from estimators._lazy import lazy_exports

_EXPORTS = {
    # generalization
    "xu_raginsky": "generalization",
    "union_bound": "generalization",
    "individual_sample": "generalization",
    "cmi_bound": "generalization",
    "fcmi_bound": "generalization",
    "kl_bernoulli": "generalization",
    "kl_inverse": "generalization",
    "kl_bound": "generalization",
    "occam_bound": "generalization",
    # rate-distortion-generalisation
    "RDGBound": "rdg",
    "rdg_bound": "rdg",
    "selection_mi": "rdg",
    # e-CMI bounds from supersample runs
    "Supersample": "ecmi",
    "PairInformation": "ecmi",
    "ECMIBound": "ecmi",
    "pair_information": "ecmi",
    "ecmi_bounds": "ecmi",
    "sqrt_cmi_bound": "ecmi",
    "variance_cmi_bound": "ecmi",
    "linear_ecmi_bound": "ecmi",
    "draw_masks": "supersample",
    "supersample_record": "supersample",
    # Gaussian CEO
    "CEOResult": "ceo",
    "GradientStatistics": "ceo",
    "gaussian_ceo_sum_rate": "ceo",
    "vector_gaussian_ceo_sum_rate": "ceo",
    "aggregation_sum_rate": "ceo",
    "independent_sum_rate": "ceo",
    "gradient_statistics": "ceo",
    # run logs
    "SCHEMA_VERSION": "runs",
    "RunRecord": "runs",
    "RunLogError": "runs",
    "load_runs": "runs",
    "parse_record": "runs",
    "append_run": "runs",
    # report
    "BoundValue": "report",
    "MissingBound": "report",
    "GroupReport": "report",
    "bound_report": "report",
    "group_runs": "report",
    "SEED_KEYS": "report",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
