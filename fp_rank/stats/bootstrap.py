"""Hierarchical (two-stage) bootstrap confidence intervals for macro-averaged per-query scores.

The headline numbers of fp-rank are *macro* means: the mean over groups of the mean over the
group's queries. Queries are not independent: the generated images of one identity share that
identity's difficulty. The bootstrap therefore mirrors the design. Within every group (groups are
fixed, they are the benchmark's strata):

1. draw the group's identities with replacement (as many as it has);
2. for every drawn identity, draw its queries with replacement (as many as it has);
3. the group's replicate mean is the mean over all drawn queries (identities with more queries
   weigh more, exactly as in the point estimate).

The replicate statistic is the mean of the group means; the interval is the percentile interval.
A group with a single identity keeps it in every replicate, so its variability comes from query
resampling only.

Resampling at both stages slightly overstates the variance when query noise dominates identity
differences (Davison and Hinkley 1997, section 3.8), which makes the interval a little
conservative; with few identities per group the percentile interval undercovers (0.85 to 0.90 for
a nominal 95% with 5 identities per group when identities differ a lot; BENCHMARKS.md, section 7).
Both effects are small with 15 or more identities per group. :func:`fp_rank.stats.macro_interval`
is the interval the reports use: an analytic Student-t interval that keeps its coverage at the
benchmark's sizes, with this bootstrap as an option.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from fp_rank.stats._validation import (
    as_labels,
    as_values,
    check_confidence,
    check_positive_int,
    check_seed,
)

#: Upper bound on the number of query draws held in memory at once (per chunk of replicates).
_MAX_DRAWS_PER_CHUNK = 1 << 22


@dataclass(frozen=True)
class ConfidenceInterval:
    """A point estimate with its confidence interval and how the interval was made.

    Attributes:
        estimate: the statistic on the observed data (not the bootstrap mean).
        low: lower end of the interval.
        high: upper end of the interval.
        confidence: nominal coverage, e.g. 0.95.
        n_boot: number of bootstrap replicates (0 for the analytic intervals).
        seed: seed of the random generator that drew the replicates (recorded as passed; the
            analytic intervals draw no random numbers).
        method: the interval method: ``"bootstrap"`` (percentile, hierarchical), ``"t"`` or
            ``"logit_t"`` (Student t with identity-clustered standard error, see
            :func:`fp_rank.stats.macro_interval`).
        df: degrees of freedom of the t quantile (None for the bootstrap or a zero variance).
        se: standard error of ``estimate`` (None for the bootstrap).
        warnings: what limits the interval, e.g. groups with very few identities.
    """

    estimate: float
    low: float
    high: float
    confidence: float
    n_boot: int
    seed: int
    method: str = "bootstrap"
    df: float | None = None
    se: float | None = None
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as a JSON-serialisable dict.

        Example:
            >>> ConfidenceInterval(0.5, 0.4, 0.6, 0.95, 1000, 0).to_dict()["high"]
            0.6
        """
        out = asdict(self)
        out["warnings"] = list(self.warnings)
        return out


@dataclass(frozen=True)
class _GroupData:
    """One group's queries, sorted by identity so each identity is a contiguous slice."""

    name: str
    identities: tuple[str, ...]
    values: np.ndarray  # (n_queries,) sorted by identity
    sizes: np.ndarray  # (n_identities,) queries per identity
    offsets: np.ndarray  # (n_identities,) start of each identity's slice in ``values``

    @property
    def mean(self) -> float:
        return float(self.values.mean())

    def identity_sums(self) -> np.ndarray:
        """Sum of values per identity, in ``identities`` order."""
        return np.add.reduceat(self.values, self.offsets)


def _build_groups(
    values: np.ndarray, identities: np.ndarray, groups: np.ndarray
) -> list[_GroupData]:
    """Split validated per-query arrays into groups, sorted by group name then identity name.

    Identities are keyed within their group: the same identity label in two groups is two
    resampling units. Within an identity, queries are sorted by value, so the replicates drawn
    for a seed do not depend on the order of the input.
    """
    out = []
    group_names, group_index = np.unique(groups, return_inverse=True)
    for position, name in enumerate(group_names):
        members = np.flatnonzero(group_index == position)
        identity_names, identity_index = np.unique(identities[members], return_inverse=True)
        order = np.lexsort((values[members], identity_index))
        sizes = np.bincount(identity_index, minlength=identity_names.size)
        offsets = np.concatenate(([0], np.cumsum(sizes)[:-1]))
        out.append(
            _GroupData(
                name=str(name),
                identities=tuple(str(i) for i in identity_names),
                values=values[members][order],
                sizes=sizes.astype(np.int64),
                offsets=offsets.astype(np.int64),
            )
        )
    return out


def _draw_identity_counts(
    rng: np.random.Generator, n_boot: int, n_identities: int
) -> np.ndarray:
    """How often each identity is drawn in each replicate: (n_boot, n_identities) ints."""
    if n_identities == 1:
        return np.ones((n_boot, 1), dtype=np.int64)
    return rng.multinomial(n_identities, np.full(n_identities, 1.0 / n_identities), size=n_boot)


def _replicate_blocks(n_boot: int, *groups: _GroupData) -> list[slice]:
    """Split the replicates into blocks small enough to keep per-block arrays bounded."""
    widest = max(max(len(g.identities), int(g.values.size)) for g in groups)
    size = max(1, _MAX_DRAWS_PER_CHUNK // widest)
    return [slice(start, min(start + size, n_boot)) for start in range(0, n_boot, size)]


def _resampled_group_means(
    rng: np.random.Generator, counts: np.ndarray, group: _GroupData
) -> np.ndarray:
    """Group mean of every replicate, given how often each identity was drawn.

    An identity drawn ``c`` times contributes ``c`` independent query resamples of its own size,
    that is ``c * size`` draws with replacement from its queries. All draws of a chunk of
    replicates are made in one call and summed per replicate with ``bincount``.
    """
    n_boot, n_identities = counts.shape
    sizes = group.sizes
    means = np.empty(n_boot, dtype=np.float64)
    if np.all(sizes == 1):  # nothing to resample below the identity level
        totals = counts @ group.values
        return totals / counts.sum(axis=1)
    chunk = max(1, _MAX_DRAWS_PER_CHUNK // max(1, int(group.values.size)))
    for start in range(0, n_boot, chunk):
        block = counts[start : start + chunk]  # (b, n_identities)
        draws_per_cell = (block * sizes).ravel()  # (b * n_identities,)
        cell = np.repeat(np.arange(draws_per_cell.size), draws_per_cell)
        identity = cell % n_identities
        picks = group.offsets[identity] + rng.integers(0, sizes[identity])
        replicate = cell // n_identities
        totals = np.bincount(replicate, weights=group.values[picks], minlength=len(block))
        n_drawn = draws_per_cell.reshape(block.shape).sum(axis=1)
        means[start : start + len(block)] = totals / n_drawn
    return means


def _percentile_interval(replicates: np.ndarray, confidence: float) -> tuple[float, float]:
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(replicates, [tail, 1.0 - tail])
    return float(low), float(high)


def _validated(
    values: Any, identities: Any, groups: Any, suffix: str = ""
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    v = as_values(f"values{suffix}", values)
    i = as_labels(f"identities{suffix}", identities, v.size, f"values{suffix}")
    g = as_labels(f"groups{suffix}", groups, v.size, f"values{suffix}")
    return v, i, g


def macro_mean(values: Any, groups: Any) -> float:
    """Mean over groups of the mean of each group's values (the fp-rank headline average).

    Args:
        values: one number per query.
        groups: the group of each query.

    Returns:
        The macro mean.

    Raises:
        InputError: on empty, non-finite or mismatched inputs.

    Example:
        >>> round(macro_mean([1.0, 0.0, 0.0, 0.5], ["a", "a", "a", "b"]), 4)
        0.4167
    """
    v = as_values("values", values)
    g = as_labels("groups", groups, v.size, "values")
    names, index = np.unique(g, return_inverse=True)
    sums = np.bincount(index, weights=v, minlength=names.size)
    counts = np.bincount(index, minlength=names.size)
    return float(np.mean(sums / counts))


def hierarchical_bootstrap(
    values: Any,
    identities: Any,
    groups: Any,
    *,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> ConfidenceInterval:
    """Percentile CI of the macro mean by a two-stage bootstrap (identities, then queries).

    The statistic is the mean over groups of the mean over each group's queries. Each replicate
    resamples, within every group, the identities with replacement and then, within every drawn
    identity, its queries with replacement. Works for AP (mAP), CMC@1 hit probabilities and
    pairwise cosines alike. For a given seed the interval does not depend on the order of the
    queries.

    Args:
        values: one finite number per query (AP, CMC@1 or pairwise cosine).
        identities: the identity of each query (labels; compared as strings, within the group).
        groups: the group of each query.
        n_boot: number of bootstrap replicates (>= 1).
        confidence: nominal coverage of the interval, strictly between 0 and 1.
        seed: seed of ``numpy.random.default_rng``; the same seed gives the same interval.

    Returns:
        A :class:`ConfidenceInterval` whose ``estimate`` is the macro mean of ``values``.

    Raises:
        InputError: when ``values`` is empty, not 1-D or not finite, when ``identities`` or
            ``groups`` do not have one entry per value, or when ``n_boot``, ``confidence`` or
            ``seed`` are out of range. The message names the argument.

    Example:
        >>> ci = hierarchical_bootstrap(
        ...     [0.9, 0.8, 0.4, 0.5, 1.0, 0.2],
        ...     ["a", "a", "b", "b", "c", "c"],
        ...     ["g1", "g1", "g1", "g1", "g2", "g2"],
        ...     n_boot=200,
        ...     seed=1,
        ... )
        >>> round(ci.estimate, 3)
        0.625
        >>> ci.low <= ci.estimate <= ci.high
        True
    """
    v, i, g = _validated(values, identities, groups)
    n_boot = check_positive_int("n_boot", n_boot)
    confidence = check_confidence(confidence)
    seed = check_seed(seed)

    data = _build_groups(v, i, g)
    rng = np.random.default_rng(seed)
    replicates = np.zeros(n_boot, dtype=np.float64)
    for group in data:
        for block in _replicate_blocks(n_boot, group):
            counts = _draw_identity_counts(rng, block.stop - block.start, len(group.identities))
            replicates[block] += _resampled_group_means(rng, counts, group)
    replicates /= len(data)
    estimate = float(np.mean([group.mean for group in data]))
    low, high = _percentile_interval(replicates, confidence)
    return ConfidenceInterval(estimate, low, high, confidence, n_boot, seed)


def hierarchical_bootstrap_by_group(
    values: Any,
    identities: Any,
    groups: Any,
    *,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, ConfidenceInterval]:
    """One :func:`hierarchical_bootstrap` interval per group (the group's mean and its CI).

    Args:
        values: one finite number per query.
        identities: the identity of each query.
        groups: the group of each query.
        n_boot: number of bootstrap replicates (>= 1).
        confidence: nominal coverage, strictly between 0 and 1.
        seed: seed used for every group's bootstrap.

    Returns:
        ``{group: ConfidenceInterval}`` in sorted group order.

    Raises:
        InputError: as :func:`hierarchical_bootstrap`.

    Example:
        >>> cis = hierarchical_bootstrap_by_group([1.0, 0.0, 0.5], ["a", "b", "c"], ["x", "x", "y"])
        >>> {name: ci.estimate for name, ci in cis.items()}
        {'x': 0.5, 'y': 0.5}
    """
    v, i, g = _validated(values, identities, groups)
    n_boot = check_positive_int("n_boot", n_boot)
    confidence = check_confidence(confidence)
    seed = check_seed(seed)
    out = {}
    for name in np.unique(g):
        members = g == name
        out[str(name)] = hierarchical_bootstrap(
            v[members], i[members], g[members], n_boot=n_boot, confidence=confidence, seed=seed
        )
    return out
