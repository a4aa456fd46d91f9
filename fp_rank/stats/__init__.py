"""Statistics on per-query scores: bootstrap intervals, paired tests, drift and agreement.

Pure functions of plain arrays and dicts; nothing here loads images or models.

* :func:`hierarchical_bootstrap`: CI of a macro mean (mAP, CMC@1, pairwise baseline) resampling
  identities within groups, then queries within identities.
* :func:`paired_comparison`: method A minus method B on shared identities, with a bootstrap CI
  and a sign-flip permutation p-value.
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
from fp_rank.stats.paired import (
    EXACT_PERMUTATION_MAX_IDENTITIES,
    PairedComparison,
    paired_comparison,
    permutation_p_value,
)

__all__ = [
    "EXACT_PERMUTATION_MAX_IDENTITIES",
    "WORST_QUERY_KEYS",
    "ConfidenceInterval",
    "PairedComparison",
    "confusion_matrix",
    "hierarchical_bootstrap",
    "hierarchical_bootstrap_by_group",
    "kendall_tau_matrix",
    "macro_mean",
    "paired_comparison",
    "permutation_p_value",
    "worst_queries",
]
