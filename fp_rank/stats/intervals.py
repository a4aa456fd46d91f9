"""Confidence intervals of macro means that keep their coverage with few identities per group.

The benchmark's designs are small: CUB has 3 groups of 5 species, Stanford Cars 1 group of 15
models, a WildlifeReID species 10 individuals, each with about 10 generated images. The
hierarchical percentile bootstrap undercovers there (a nominal 95% interval covered the true
macro mean 85% of the time on CUB), because resampling 5 identities cannot show how far the mean
of 5 draws strays. The default interval here is analytic:

1. Per group, the group mean is the mean over the group's queries, a ratio
   ``sum_i T_i / sum_i n_i`` of identity totals ``T_i`` over identity query counts ``n_i``. Its
   variance is the cluster-robust (identity as cluster) variance of that ratio,
   ``V_g = sum_i u_i^2 / (m (m - 1))`` with ``u_i = (T_i - R n_i) / mean(n)``: the linearised
   ratio estimator with the usual ``m / (m - 1)`` small-sample factor (CR1). With equal counts it
   is the textbook ``s^2 / m`` of the identity means, so it counts query noise exactly once.
2. The macro mean's variance is ``sum_g V_g / G^2``; its degrees of freedom are Satterthwaite's
   ``(sum_g c_g)^2 / sum_g c_g^2 / (m_g - 1)`` with ``c_g = V_g / G^2``.
3. The interval is ``estimate +- t_{df} * se`` (``"t"``), or the same on the logit scale of the
   metric's range (``"logit_t"``, the default for AP and CMC@1, which live in [0, 1]): the
   back-transformed interval is asymmetric near the ends of the range, where the identity means
   are skewed, and never leaves the range.

Zero-one values (CMC@k) and values that do not vary leave the variance estimate near or at zero,
where the t interval would claim a certainty the sample cannot give: there the interval is joined
with the effective-size Clopper-Pearson interval (:mod:`fp_rank.stats.boundary`), and a bounded
metric never gets a zero-width interval.

A group with a single identity cannot show identity-to-identity variation: its queries become
the units (variance ``s^2 / n``, ``n - 1`` degrees of freedom), so its interval is conditional on
that identity, and the interval says so in its ``warnings``. Groups with fewer than
:data:`FEW_IDENTITIES` identities are flagged too.

Measured coverage of every interval at the benchmark's designs is in ``BENCHMARKS.md``
(``benchmarks/bench_coverage.py``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from fp_rank.errors import InputError
from fp_rank.stats._validation import (
    check_confidence,
    check_positive_int,
    check_seed,
)
from fp_rank.stats.boundary import effective_size_interval, no_spread
from fp_rank.stats.bootstrap import (
    ConfidenceInterval,
    _build_groups,
    _GroupData,
    _validated,
    hierarchical_bootstrap,
)

IntervalMethod = Literal["logit_t", "t", "bootstrap"]

#: The interval methods :func:`macro_interval` accepts, the default first.
INTERVAL_METHODS: tuple[str, ...] = ("logit_t", "t", "bootstrap")

#: One sentence per interval method, for report metadata and captions.
INTERVAL_DESCRIPTIONS = {
    "logit_t": (
        "Student t on the logit scale of the metric's range, identity-clustered standard error "
        "of each group mean (CR1), Satterthwaite degrees of freedom across groups; zero-one metrics (CMC@k) "
        "joined with the effective-size Clopper-Pearson interval"
    ),
    "t": (
        "Student t, identity-clustered standard error of each group mean (CR1), Satterthwaite "
        "degrees of freedom across groups; zero-one metrics (CMC@k) joined with the effective-size "
        "Clopper-Pearson interval"
    ),
    "bootstrap": (
        "hierarchical bootstrap: identities within groups, then queries within identities; "
        "percentile interval"
    ),
}

#: Groups with fewer identities than this get a warning attached to their intervals.
FEW_IDENTITIES = 5

#: Values may leave ``bounds`` by this share of the range (float32 cosines reach 1 + 1e-7).
_BOUNDS_SLACK = 1e-6

#: A variance part: (variance contribution, its degrees of freedom).
VariancePart = tuple[float, float]


def _check_interval(interval: Any, allowed: Sequence[str] = INTERVAL_METHODS) -> str:
    if interval not in allowed:
        raise InputError(f"interval must be one of {list(allowed)}; got {interval!r}")
    return str(interval)


def _check_bounds(bounds: Any, values: np.ndarray, name: str = "values") -> tuple[float, float] | None:
    """Check ``bounds`` is None or (low, high) with low < high, holding every value."""
    if bounds is None:
        return None
    try:
        if isinstance(bounds, (str, bytes)):
            raise TypeError("a string")
        low, high = (float(b) for b in bounds)
    except (TypeError, ValueError):
        raise InputError(
            f"bounds must be None or a pair (low, high) of numbers; got {bounds!r}"
        ) from None
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise InputError(f"bounds must be finite with low < high; got {bounds!r}")
    slack = _BOUNDS_SLACK * (high - low)
    outside = (values < low - slack) | (values > high + slack)
    if outside.any():
        first = int(np.flatnonzero(outside)[0])
        raise InputError(
            f"{name} must lie within bounds ({low:g}, {high:g}); {int(outside.sum())} do not "
            f"(first at index {first}: {values[first]!r}). Pass bounds=(-1.0, 1.0) for cosines, "
            "or bounds=None with interval='t' for unbounded scores"
        )
    return low, high


def _influence(group: _GroupData) -> np.ndarray:
    """Each identity's term of the linearised group mean: ``(T_i - R n_i) / mean(n)``."""
    return (group.identity_sums() - group.mean * group.sizes) / group.sizes.mean()


def _query_part(group: _GroupData) -> VariancePart:
    """Variance of a single identity's mean with its queries as the units (conditional)."""
    n = int(group.values.size)
    if n < 2:
        return 0.0, 0.0
    return float(np.var(group.values, ddof=1)) / n, float(n - 1)


def group_variance_parts(
    group_a: _GroupData, group_b: _GroupData | None = None
) -> list[VariancePart]:
    """Variance parts of a group mean, or of the difference of two methods' group means.

    With two or more identities: one part, the cluster-robust variance with ``m - 1`` degrees of
    freedom (for a difference, the identity terms of A minus those of B: the pairing). With one
    identity: its queries are the units, one part per method (a Welch-type combination).
    """
    m = len(group_a.identities)
    if m >= 2:
        u = _influence(group_a)
        if group_b is not None:
            u = u - _influence(group_b)
        return [(float(u @ u) / (m * (m - 1)), float(m - 1))]
    return [_query_part(group) for group in (group_a, group_b) if group is not None]


def satterthwaite(parts: Sequence[VariancePart]) -> tuple[float, float | None]:
    """Total variance of independent parts and its Satterthwaite degrees of freedom.

    Args:
        parts: ``(variance, df)`` pairs; parts with zero variance are ignored for the df.

    Returns:
        ``(variance, df)``; ``df`` is None when the total variance is zero.

    Example:
        >>> satterthwaite([(1.0, 4.0), (1.0, 4.0)])
        (2.0, 8.0)
    """
    variance = float(sum(v for v, _ in parts))
    if variance <= 0.0:
        return 0.0, None
    return variance, variance**2 / sum(v * v / df for v, df in parts if v > 0.0)


def macro_variance(
    groups_a: Sequence[_GroupData], groups_b: Sequence[_GroupData] | None = None
) -> tuple[float, float | None]:
    """Variance and df of the macro mean over ``groups_a`` (or of A minus B, group by group)."""
    n_groups = len(groups_a)
    pairs = zip(groups_a, groups_b) if groups_b is not None else ((g, None) for g in groups_a)
    parts = [
        (variance / n_groups**2, df)
        for group_a, group_b in pairs
        for variance, df in group_variance_parts(group_a, group_b)
    ]
    return satterthwaite(parts)


def t_interval(
    estimate: float,
    variance: float,
    df: float | None,
    confidence: float,
    *,
    bounds: tuple[float, float] | None = None,
    logit: bool = False,
) -> tuple[float, float]:
    """``estimate +- t_df * se``, on the logit scale of ``bounds`` when ``logit``, clipped to them.

    A zero variance gives the degenerate interval ``(estimate, estimate)``.

    Example:
        >>> low, high = t_interval(0.5, 0.01, 9.0, 0.95)
        >>> round(low, 4), round(high, 4)
        (0.2738, 0.7262)
        >>> low, high = t_interval(0.9, 0.01, 9.0, 0.95, bounds=(0.0, 1.0), logit=True)
        >>> 0.9 - low > high - 0.9 and high < 1.0
        True
    """
    from scipy import special  # stdtrit is what scipy.stats.t.ppf computes, without importing scipy.stats (1 s)

    if variance <= 0.0 or df is None:
        return estimate, estimate
    quantile = float(special.stdtrit(df, 0.5 + confidence / 2.0))
    se = math.sqrt(variance)
    if logit and bounds is not None:
        low_bound, high_bound = bounds
        width = high_bound - low_bound
        x = (estimate - low_bound) / width
        if 0.0 < x < 1.0:
            centre = math.log(x / (1.0 - x))
            spread = quantile * se / (width * x * (1.0 - x))
            return (
                low_bound + width * float(special.expit(centre - spread)),
                low_bound + width * float(special.expit(centre + spread)),
            )
    low, high = estimate - quantile * se, estimate + quantile * se
    if bounds is not None:
        low, high = max(low, bounds[0]), min(high, bounds[1])
    return low, high


def few_identity_warnings(
    groups: Sequence[_GroupData], minimum: int = FEW_IDENTITIES
) -> tuple[str, ...]:
    """One sentence per group whose interval rests on fewer than ``minimum`` identities."""
    out = []
    for group in groups:
        m = len(group.identities)
        if m == 1:
            out.append(
                f"group {group.name!r} has a single identity: its interval reflects only the "
                f"spread of that identity's {group.values.size} queries (another set of images "
                "of the same identity), not how other identities would score"
            )
        elif m < minimum:
            out.append(
                f"group {group.name!r} has only {m} identities: its interval rests on {m - 1} "
                "degree(s) of freedom, so it is wide, its own width is uncertain and its "
                "coverage holds only if the identity means are not strongly skewed; read it as "
                "a rough range"
            )
    return tuple(out)


def macro_interval(
    values: Any,
    identities: Any,
    groups: Any,
    *,
    interval: IntervalMethod = "logit_t",
    confidence: float = 0.95,
    bounds: tuple[float, float] | None = (0.0, 1.0),
    n_boot: int = 1000,
    seed: int = 0,
    min_identities: int = FEW_IDENTITIES,
    zero_one: bool | None = None,
) -> ConfidenceInterval:
    """CI of the macro mean (mean over groups of each group's mean over its queries).

    Identities are the clusters: queries of one identity share its difficulty. See the module
    docstring for the estimator. Deterministic for ``"t"`` and ``"logit_t"``; the bootstrap is
    seeded.

    Args:
        values: one finite number per query (AP, CMC@1 or pairwise cosine).
        identities: the identity of each query (labels, compared as strings within the group).
        groups: the group of each query.
        interval: ``"logit_t"`` (default; needs ``bounds``), ``"t"``, or ``"bootstrap"`` (the
            percentile interval of :func:`~fp_rank.stats.hierarchical_bootstrap`, which
            undercovers with few identities per group).
        confidence: nominal coverage, strictly between 0 and 1.
        bounds: the range the metric can take, ``(0, 1)`` for AP and CMC@1, ``(-1, 1)`` for a
            cosine, None for unbounded scores. ``"t"`` clips its ends to it.
        n_boot: bootstrap replicates (used by ``"bootstrap"`` only).
        seed: bootstrap seed (used by ``"bootstrap"`` only; recorded either way).
        min_identities: groups with fewer identities are named in ``warnings``.
        zero_one: whether the metric is a zero-one one (CMC@k, whose tied queries hold expected
            values in between): its interval is joined with the effective-size Clopper-Pearson
            one. None: when every value is at an end of ``bounds``.

    Returns:
        A :class:`~fp_rank.stats.ConfidenceInterval` with ``method``, ``df``, ``se`` and
        ``warnings`` filled in.

    Raises:
        InputError: on empty, non-finite or mismatched inputs, values outside ``bounds``, an
            unknown ``interval``, ``"logit_t"`` without bounds, or out-of-range options. The
            message names the argument.

    Example:
        >>> ci = macro_interval(
        ...     [0.9, 0.8, 0.4, 0.5, 0.7, 0.6, 1.0, 0.2, 0.6, 0.4],
        ...     ["a", "a", "b", "b", "c", "c", "d", "d", "e", "e"],
        ...     ["g1"] * 6 + ["g2"] * 4,
        ... )
        >>> round(ci.estimate, 3), ci.method, round(ci.df, 2)
        (0.6, 'logit_t', 2.64)
        >>> ci.low < ci.estimate < ci.high
        True
        >>> len(ci.warnings)  # both groups have fewer than 5 identities
        2
    """
    v, i, g = _validated(values, identities, groups)
    interval = _check_interval(interval)
    confidence = check_confidence(confidence)
    n_boot = check_positive_int("n_boot", n_boot)
    seed = check_seed(seed)
    min_identities = check_positive_int("min_identities", min_identities)
    checked_bounds = _check_bounds(bounds, v)
    if interval == "logit_t" and checked_bounds is None:
        raise InputError(
            "interval='logit_t' needs the metric's bounds (e.g. (0.0, 1.0) for AP); pass "
            "bounds, or interval='t' for unbounded scores"
        )

    data = _build_groups(v, i, g)
    notes = few_identity_warnings(data, min_identities)
    estimate = float(np.mean([group.mean for group in data]))
    variance, df = macro_variance(data)
    if no_spread(variance, v):
        variance = 0.0
    if interval == "bootstrap":
        boot = hierarchical_bootstrap(v, i, g, n_boot=n_boot, confidence=confidence, seed=seed)
        low, high = boot.low, boot.high
    else:
        low, high = t_interval(
            estimate, variance, df, confidence, bounds=checked_bounds, logit=interval == "logit_t"
        )
    at_ends = checked_bounds is not None and (
        bool(np.isin(v, checked_bounds).all()) if zero_one is None else bool(zero_one)
    )
    low, high, method, notes = _at_the_ends(
        v, data, (estimate, variance, df), (low, high), interval, confidence, checked_bounds, notes, at_ends
    )
    if interval == "bootstrap":
        return dataclasses.replace(boot, low=low, high=high, method=method, warnings=notes)
    return ConfidenceInterval(
        estimate, low, high, confidence, 0, seed, method, df, math.sqrt(variance), notes
    )


def _at_the_ends(
    values: np.ndarray,
    data: Sequence[_GroupData],
    moments: tuple[float, float, float | None],
    interval_: tuple[float, float],
    interval: str,
    confidence: float,
    bounds: tuple[float, float] | None,
    notes: tuple[str, ...],
    at_ends: bool,
) -> tuple[float, float, str, tuple[str, ...]]:
    """The interval where the data cannot estimate its spread: zero-one values, or none at all.

    Zero-one values (CMC@k) near the ends of the range make the identity-clustered variance
    collapse; the effective-size Clopper-Pearson interval keeps its coverage there, and the
    union with the interval given keeps that one's coverage elsewhere. Values that do not vary
    get the Clopper-Pearson interval alone (bounded metrics) or none (unbounded ones), said in
    ``notes``.
    """
    estimate, variance, df = moments
    low, high = interval_
    if bounds is not None and (variance <= 0.0 or at_ends):
        exact_low, exact_high = effective_size_interval(estimate, variance, df, data, confidence, bounds)
        if variance <= 0.0:
            notes = (*notes, (
                f"the identity means of these {values.size} values do not vary (mean {estimate:g}): the spread between "
                "identities cannot be estimated, so the interval is the exact binomial one at the effective number "
                "of identities (a worst case)"
            ))
            return exact_low, exact_high, f"{interval}+clopper_pearson", notes
        return min(low, exact_low), max(high, exact_high), f"{interval}+clopper_pearson", notes
    if variance <= 0.0:
        notes = (*notes, f"the identity means of these {values.size} values do not vary: no interval can be "
                         "estimated without bounds")
        return float("nan"), float("nan"), interval, notes
    return low, high, interval, notes


def macro_interval_by_group(
    values: Any,
    identities: Any,
    groups: Any,
    **options: Any,
) -> dict[str, ConfidenceInterval]:
    """One :func:`macro_interval` per group: the group's mean and its CI.

    Args:
        values: one finite number per query.
        identities: the identity of each query.
        groups: the group of each query.
        **options: the keyword options of :func:`macro_interval`.

    Returns:
        ``{group: ConfidenceInterval}`` in sorted group order.

    Raises:
        InputError: as :func:`macro_interval`.

    Example:
        >>> cis = macro_interval_by_group(
        ...     [1.0, 0.8, 0.2, 0.0, 0.6], ["a", "b", "c", "d", "e"], ["x", "x", "y", "y", "z"]
        ... )
        >>> {name: round(ci.estimate, 2) for name, ci in cis.items()}
        {'x': 0.9, 'y': 0.1, 'z': 0.6}
    """
    v, i, g = _validated(values, identities, groups)
    return {
        str(name): macro_interval(v[g == name], i[g == name], g[g == name], **options)
        for name in np.unique(g)
    }
