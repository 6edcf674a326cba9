"""The mathematics of information: numbers in, numbers out.

Discrete measures, Blahut-Arimoto (rate-distortion, capacity, information
bottleneck), kNN estimators, Gaussian and copula estimators, and neural
variational bounds. Every information quantity is in nats unless a ``base=``
keyword says otherwise.
"""

from estimators._lazy import lazy_exports

_EXPORTS = {
    # interface
    "MIEstimate": "interface",
    "MIEstimator": "interface",
    # discrete
    "entropy": "discrete",
    "mutual_information": "discrete",
    "kl_divergence": "discrete",
    "plugin_mi": "discrete",
    "gate_rate": "discrete",
    "bank_mi": "discrete",
    # Blahut-Arimoto
    "rate_distortion": "blahut_arimoto",
    "rd_curve": "blahut_arimoto",
    "distortion_rate": "blahut_arimoto",
    "channel_capacity": "blahut_arimoto",
    "information_bottleneck": "blahut_arimoto",
    "ib_curve": "blahut_arimoto",
    "RDPoint": "blahut_arimoto",
    "RDCurve": "blahut_arimoto",
    "CapacityResult": "blahut_arimoto",
    "IBPoint": "blahut_arimoto",
    "IBCurve": "blahut_arimoto",
    # thread scope of the numerical kernels
    "limit_threads": "_threads",
    # kNN
    "ksg_mi": "knn",
    "mixed_mi": "knn",
    "kl_entropy": "knn",
    "ksg_mi_estimate": "knn",
    "mixed_mi_estimate": "knn",
    "KSGEstimator": "knn",
    "MixedEstimator": "knn",
    # Gaussian, copula and the default's choice
    "normal_scores": "gaussian",
    "gaussian_mi_estimate": "gaussian",
    "copula_mi_estimate": "gaussian",
    "copula_ksg_estimate": "gaussian",
    "auto_mi_estimate": "gaussian",
    "CopulaEstimator": "gaussian",
    # variational
    "dv_bound": "variational",
    "nwj_bound": "variational",
    "infonce_bound": "variational",
    "js_bound": "variational",
    "smile_bound": "variational",
    "SeparableCritic": "variational",
    "ConcatCritic": "variational",
    "estimate_mi": "variational",
    "VariationalEstimator": "variational",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
