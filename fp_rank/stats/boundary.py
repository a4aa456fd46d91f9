"""Intervals that keep their coverage where the data cannot estimate a variance.

A zero-one metric (CMC@k) near the ends of its range, or any score that does not vary, leaves
the identity-clustered t interval with a variance of zero (a zero-width interval) or an
underestimate. :func:`effective_size_interval` is the Clopper-Pearson interval at an effective
sample size (Korn and Graubard, 1998), which :func:`fp_rank.stats.macro_interval` uses there;
``benchmarks/bench_boundary_coverage.py`` measures its coverage at the benchmark's designs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from fp_rank.stats.bootstrap import _GroupData


def no_spread(variance: float, values: Any) -> bool:
    """Whether ``variance`` is zero up to rounding, at the scale of ``values`` (1e-12 of it).

    Example:
        >>> no_spread(3e-34, [0.2, 0.8]), no_spread(1e-6, [0.2, 0.8])
        (True, False)
    """
    scale = max(1.0, float(np.max(np.abs(np.asarray(values, dtype=np.float64)), initial=0.0)))
    return not variance > (1e-12 * scale) ** 2


def effective_queries(data: Sequence[_GroupData]) -> float:
    """Kish's effective number of queries behind the macro mean (each query weighs ``1 / (G N_g)``)."""
    n_groups = len(data)
    return 1.0 / sum(1.0 / (n_groups**2 * group.values.size) for group in data)


def effective_identities(data: Sequence[_GroupData]) -> float:
    """Kish's effective number of identities behind the macro mean.

    The macro mean weighs identity ``i`` of group ``g`` by ``n_i / (G N_g)`` (its share of its
    group's queries over the number of groups); the effective number is ``1 / sum w_i^2``,
    ``G * m`` for ``G`` groups of ``m`` identities with equal counts.

    Example:
        >>> from fp_rank.stats.bootstrap import _build_groups
        >>> data = _build_groups(np.zeros(6), np.array(list("aabbcc"), dtype=object), np.array(["g"] * 6, dtype=object))
        >>> effective_identities(data)
        3.0
    """
    n_groups = len(data)
    total = 0.0
    for group in data:
        w = group.sizes / (group.sizes.sum() * n_groups)
        total += float(w @ w)
    return 1.0 / total


def effective_size_interval(
    estimate: float,
    variance: float,
    df: float | None,
    data: Sequence[_GroupData],
    confidence: float,
    bounds: tuple[float, float],
) -> tuple[float, float]:
    """Clopper-Pearson interval at an effective sample size (Korn and Graubard, 1998).

    On the range ``bounds`` rescaled to [0, 1]: the effective size is
    ``p (1 - p) / variance`` (the design effect of the identity clusters), at most the effective
    number of queries (:func:`effective_queries`); where ``p`` is 0 or 1 or the variance is zero
    the data say nothing of the clustering, and the size is the effective number of identities
    (:func:`effective_identities`: the identities are the independent units, so this holds
    however strongly an identity's images agree). It shrinks by ``(t_{m-1} / t_df)^2`` when the
    variance rests on fewer degrees of freedom than the ``m`` identities give. The exact binomial interval of ``p n`` successes in ``n`` trials
    at that size keeps its coverage where a zero-one metric is near the ends of its range, and is
    never of zero width.

    Example:
        >>> from fp_rank.stats.bootstrap import _build_groups
        >>> ids = np.array([f"i{k // 2}" for k in range(24)], dtype=object)
        >>> data = _build_groups(np.zeros(24), ids, np.array(["g"] * 24, dtype=object))
        >>> low, high = effective_size_interval(0.0, 0.0, None, data, 0.95, (0.0, 1.0))
        >>> low, round(high, 4)  # 12 identities all at 0: 1 - 0.025 ** (1 / 12)
        (0.0, 0.2646)
    """
    from scipy import special  # stdtrit and betaincinv: scipy.stats.t.ppf and beta.ppf, bit for bit, lighter

    low_bound, high_bound = bounds
    width = high_bound - low_bound
    p = min(max((estimate - low_bound) / width, 0.0), 1.0)
    n_max = effective_identities(data)
    scaled = variance / width**2
    n = n_max if scaled <= 0.0 or p in (0.0, 1.0) else min(effective_queries(data), p * (1.0 - p) / scaled)
    if df is not None and df > 0 and n_max > 1:
        tail = 0.5 + confidence / 2.0
        ratio = float(special.stdtrit(max(n_max - 1.0, 1.0), tail)) / float(special.stdtrit(df, tail))
        n *= min(1.0, ratio) ** 2  # only ever shrinks (unequal groups can give df above m - 1)
    n = max(n, 1.0)
    x = p * n
    alpha = 1.0 - confidence
    low = 0.0 if x <= 0.0 else float(special.betaincinv(x, n - x + 1.0, alpha / 2.0))
    high = 1.0 if x >= n else float(special.betaincinv(x + 1.0, n - x, 1.0 - alpha / 2.0))
    return low_bound + width * low, low_bound + width * high
