"""Statistics on per-query scores: bootstrap intervals, paired tests, drift and agreement.

Pure functions of plain arrays and dicts; nothing here loads images or models.

* :func:`macro_interval`: CI of a macro mean (mAP, CMC@1, pairwise baseline) that keeps its
  coverage with few identities per group (identity-clustered Student t, on the logit scale by
  default); :func:`hierarchical_bootstrap` is the percentile bootstrap, kept as an option.
* :func:`paired_comparison`: method A minus method B on shared identities, with a paired t (or
  bootstrap) CI and a sign-flip permutation p-value.
* :func:`plan_comparison`: from a pilot, the power of a comparison, the images per identity it
  needs and the smallest difference it can detect.
* :func:`confusion_matrix` and :func:`worst_queries`: where generated identities drift to.
* :func:`kendall_tau_matrix`: whether encoders rank the methods alike.
"""

from __future__ import annotations

from fp_rank.stats.agreement import kendall_tau_matrix
from fp_rank.stats.bootstrap import (
    ConfidenceInterval,
    hierarchical_bootstrap,
    hierarchical_bootstrap_by_group,
    macro_mean,
)
from fp_rank.stats.drift import WORST_QUERY_KEYS, confusion_matrix, worst_queries
from fp_rank.stats.intervals import (
    FEW_IDENTITIES,
    INTERVAL_METHODS,
    macro_interval,
    macro_interval_by_group,
)
from fp_rank.stats.paired import (
    EXACT_PERMUTATION_MAX_IDENTITIES,
    PairedComparison,
    paired_comparison,
    permutation_p_value,
)
from fp_rank.stats.planning import (
    Plan,
    minimum_detectable_difference,
    plan_comparison,
    predicted_power,
    required_queries_per_identity,
)
from fp_rank.stats.variance import VarianceComponents, paired_variance_components, variance_components

__all__ = [
    "EXACT_PERMUTATION_MAX_IDENTITIES",
    "FEW_IDENTITIES",
    "INTERVAL_METHODS",
    "WORST_QUERY_KEYS",
    "ConfidenceInterval",
    "PairedComparison",
    "Plan",
    "VarianceComponents",
    "confusion_matrix",
    "hierarchical_bootstrap",
    "hierarchical_bootstrap_by_group",
    "kendall_tau_matrix",
    "macro_interval",
    "macro_interval_by_group",
    "macro_mean",
    "minimum_detectable_difference",
    "paired_comparison",
    "paired_variance_components",
    "permutation_p_value",
    "plan_comparison",
    "predicted_power",
    "required_queries_per_identity",
    "variance_components",
    "worst_queries",
]
