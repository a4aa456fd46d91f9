"""Do a score and people agree? Rank correlations and their clustered intervals.

Pure functions of arrays and dicts (no report, no files):

* :func:`kendall_tau_b` and :func:`spearman_rho`: rank correlation of per-image scores with
  people's ratings, ties handled (tau-b; Spearman on average ranks).
* :func:`rank_correlation_interval`: either correlation with a percentile bootstrap interval that
  resamples whole clusters (the images of one identity share its difficulty, so identities, not
  images, set the uncertainty).
* :func:`check_bootstrap`, :func:`percentile_interval`: the settings and the interval rules
  shared with :mod:`fp_rank.stats.pair_accuracy` (fewer than :data:`MIN_CLUSTERS` identities, or
  a zero-width interval: the estimate alone, with a note).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from fp_rank.errors import InputError
from fp_rank.stats._validation import (
    as_labels,
    as_values,
    check_confidence,
    check_seed,
)

Statistic = Literal["kendall", "spearman"]
#: Preference values of a rated pair: the first image, the second, or neither.
PREFERENCES = ("a", "b", "tie")
#: Fewest clusters (identities) an interval is given for: with fewer, the bootstrap cannot see
#: how identities vary, and its interval is far narrower than the truth.
MIN_CLUSTERS = 10
#: Bootstrap replicates allowed: fewer than MIN_BOOT give percentile ends that need not hold the
#: estimate; more than MAX_BOOT add nothing but time and memory.
MIN_BOOT, MAX_BOOT = 100, 1_000_000


def _pair(x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    a = as_values("x", x, allow_empty=True)
    b = as_values("y", y, allow_empty=True)
    if a.size != b.size:
        raise InputError(f"x has {a.size} values but y has {b.size}; they must pair up one to one")
    return a, b


def _tied_pairs(counts: np.ndarray) -> int:
    """Pairs within runs of equal values, from the run lengths: sum of t (t - 1) / 2."""
    t = counts.astype(np.int64)
    return int((t * (t - 1) // 2).sum())


def _inversions(seq: np.ndarray, n_values: int) -> int:
    """Pairs i < j with ``seq[i] > seq[j]`` (equal values never count), in O(n log n).

    ``seq`` holds integers in ``[0, n_values)``. Bit by bit from the most significant, the
    sequence is stably sorted by the bits seen so far. The sequence is already grouped by the
    higher bits, so each level only moves the 0s of a group before its 1s; a pair whose first
    differing bit is this one is an inversion exactly when its 1 came first, and each such pair
    moves its 0 one place left and its 1 one place right: the level's inversions are half the sum
    of how far the elements move. Keys of up to 16 bits sort by NumPy's radix sort (linear).
    """
    order = seq.astype(np.int64, copy=True)
    positions = np.arange(order.size)
    moved = 0
    for level in range(max(int(n_values - 1).bit_length(), 1) - 1, -1, -1):
        key = order >> level
        if n_values >> level < 1 << 16:
            key = key.astype(np.uint16)
        perm = np.argsort(key, kind="stable")
        moved += int(np.abs(perm - positions).sum())
        order = order[perm]
    return moved // 2


def _codes(values: np.ndarray) -> tuple[np.ndarray, int]:
    """Dense integer codes of ``values`` (equal values share one, order kept) and how many there are."""
    distinct, codes = np.unique(values, return_inverse=True)
    return codes.astype(np.int64).reshape(-1), int(distinct.size)


def _run_lengths(sorted_codes: np.ndarray) -> np.ndarray:
    edges = np.flatnonzero(np.concatenate(([True], sorted_codes[1:] != sorted_codes[:-1], [True])))
    return np.diff(edges)


def _tau_from_codes(a: np.ndarray, n_a: int, b: np.ndarray, n_b: int) -> float:
    """tau-b of two samples given as dense codes (see :func:`kendall_tau_b`)."""
    a_counts = np.bincount(a, minlength=n_a)
    b_counts = np.bincount(b, minlength=n_b)
    if a.size < 2 or np.count_nonzero(a_counts) < 2 or np.count_nonzero(b_counts) < 2:
        return math.nan
    key = np.sort(a * n_b + b)
    n0 = a.size * (a.size - 1) // 2
    n1, n2, n3 = _tied_pairs(a_counts), _tied_pairs(b_counts), _tied_pairs(_run_lengths(key))
    discordant = _inversions(key % n_b, n_b)
    concordant = n0 - n1 - n2 + n3 - discordant
    tau = (concordant - discordant) / math.sqrt(n0 - n1) / math.sqrt(n0 - n2)
    return float(min(1.0, max(-1.0, tau)))


def _ranks_from_codes(codes: np.ndarray, n_codes: int) -> np.ndarray:
    """Average ranks (1..n, ties share their mean rank) of a sample given as dense codes."""
    counts = np.bincount(codes, minlength=n_codes)
    ends = np.cumsum(counts)
    return ((ends - counts + 1 + ends) / 2.0)[codes]


def _rho_from_codes(a: np.ndarray, n_a: int, b: np.ndarray, n_b: int) -> float:
    """Spearman's rho of two samples given as dense codes (see :func:`spearman_rho`)."""
    if a.size < 2:
        return math.nan
    da = _ranks_from_codes(a, n_a)
    db = _ranks_from_codes(b, n_b)
    da -= da.mean()
    db -= db.mean()
    ssa, ssb = float(da @ da), float(db @ db)
    if ssa == 0.0 or ssb == 0.0:
        return math.nan
    return float(min(1.0, max(-1.0, float(da @ db) / math.sqrt(ssa * ssb))))


def kendall_tau_b(x: Any, y: Any) -> float:
    """Kendall's tau-b of two paired samples, ties accounted for, in O(n log n).

    With n0 = n (n - 1) / 2 pairs, n1 pairs tied in ``x``, n2 tied in ``y``, n3 tied in both,
    C concordant and D discordant pairs: tau-b = (C - D) / sqrt((n0 - n1) (n0 - n2)).
    D is the number of inversions of ``y`` once the pairs are sorted by ``x`` then ``y``; C follows
    as n0 - n1 - n2 + n3 - D.

    Args:
        x: the first sample (finite numbers).
        y: the second sample, paired with ``x``.

    Returns:
        tau-b in [-1, 1]; NaN when fewer than two pairs or either sample is constant.

    Raises:
        InputError: a value is not a finite number, or the samples differ in length.

    Example:
        >>> round(kendall_tau_b([1, 2, 3, 4], [1, 3, 2, 4]), 4)  # C = 5, D = 1: 4 / 6
        0.6667
        >>> kendall_tau_b([1, 1, 1], [1, 2, 3])
        nan
    """
    a, b = _pair(x, y)
    return _tau_from_codes(*_codes(a), *_codes(b))


def average_ranks(values: Any) -> np.ndarray:
    """Ranks 1..n of ``values``; tied values share the mean of the ranks they span.

    Example:
        >>> average_ranks([10, 20, 20, 5]).tolist()
        [2.0, 3.5, 3.5, 1.0]
    """
    return _ranks_from_codes(*_codes(as_values("values", values, allow_empty=True)))


def spearman_rho(x: Any, y: Any) -> float:
    """Spearman's rho: the Pearson correlation of the average ranks of two paired samples.

    Args:
        x: the first sample (finite numbers).
        y: the second sample, paired with ``x``.

    Returns:
        rho in [-1, 1]; NaN when fewer than two pairs or either sample is constant.

    Raises:
        InputError: a value is not a finite number, or the samples differ in length.

    Example:
        >>> spearman_rho([1, 2, 3, 4], [10, 30, 20, 40])  # ranks 1 2 3 4 vs 1 3 2 4
        0.8
    """
    a, b = _pair(x, y)
    return _rho_from_codes(*_codes(a), *_codes(b))


_STATISTICS = {"kendall": _tau_from_codes, "spearman": _rho_from_codes}
_NAMES = {"kendall": "Kendall's tau-b", "spearman": "Spearman's rho (average ranks)"}


@dataclass(frozen=True)
class RankCorrelation:
    """A rank correlation with its cluster-bootstrap interval.

    Attributes:
        statistic: ``"kendall"`` or ``"spearman"``.
        estimate: the statistic on the data (NaN when undefined: a constant sample).
        low, high: the percentile interval (None when none could be made; ``note`` says why).
        confidence: nominal coverage.
        n: items (images).
        n_clusters: clusters (identities), the units resampled.
        n_boot: replicates drawn.
        n_dropped: replicates left out because the statistic was undefined on them.
        seed: seed of the generator that drew the replicates.
        method: how the interval was made, in words.
        note: why there is no interval, or what limits it ('' when nothing).
    """

    statistic: str
    estimate: float
    low: float | None
    high: float | None
    confidence: float
    n: int
    n_clusters: int
    n_boot: int
    n_dropped: int
    seed: int
    method: str
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The fields as JSON-serialisable data (NaN becomes None).

        Example:
            >>> r = rank_correlation_interval([1, 2, 3, 4], [1, 3, 2, 4], ["a", "a", "b", "b"], "kendall", n_boot=100)
            >>> r.to_dict()["n_clusters"], r.to_dict()["statistic"]
            (2, 'kendall')
        """
        out = asdict(self)
        if not math.isfinite(self.estimate):
            out["estimate"] = None
        return out


def _cluster_index(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Items ordered by cluster, each cluster's start in that order, and its size."""
    _, codes, sizes = np.unique(labels, return_inverse=True, return_counts=True)
    order = np.argsort(codes, kind="stable")
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    return order, starts, sizes


def check_n_boot(n_boot: Any, name: str = "n_boot") -> int:
    """``n_boot`` as an int after checking it is an integer from :data:`MIN_BOOT` to :data:`MAX_BOOT`.

    Example:
        >>> check_n_boot(2000), check_n_boot(10**6)
        (2000, 1000000)
    """
    if isinstance(n_boot, bool) or not isinstance(n_boot, numbers.Integral) or not MIN_BOOT <= n_boot <= MAX_BOOT:
        raise InputError(f"{name} must be an integer from {MIN_BOOT} to {MAX_BOOT:,} (bootstrap replicates; fewer "
                         f"than {MIN_BOOT} give an interval that need not hold its estimate); got {n_boot!r}")
    return int(n_boot)


def check_bootstrap(n_boot: Any, confidence: Any, seed: Any, min_clusters: Any) -> tuple[int, float, int, int]:
    """The settings of a clustered bootstrap, checked: replicates, coverage, seed, fewest clusters."""
    if isinstance(min_clusters, bool) or not isinstance(min_clusters, numbers.Integral) or min_clusters < 2:
        raise InputError(f"min_clusters must be an integer >= 2; got {min_clusters!r}")
    return check_n_boot(n_boot), check_confidence(confidence), check_seed(seed), int(min_clusters)


def percentile_interval(replicates: np.ndarray, confidence: float) -> tuple[float, float] | None:
    """The percentile interval of ``replicates``; None when its ends coincide (a zero-width interval
    would claim a certainty that resampling a few identities cannot give)."""
    tail = (1.0 - confidence) / 2.0
    low, high = (float(v) for v in np.quantile(replicates, [tail, 1.0 - tail]))
    return None if low == high else (low, high)


#: Why a zero-width interval is left out.
ZERO_WIDTH_NOTE = "no interval: its two ends coincide (a zero-width interval would claim certainty)"


def few_clusters_note(n_clusters: int, min_clusters: int) -> str:
    """Why there is no interval with ``n_clusters`` clusters, fewer than ``min_clusters``."""
    return (f"no interval: {n_clusters} cluster(s) (identities); an interval needs at least {min_clusters}, as the "
            "bootstrap cannot see how identities vary with fewer")


def _check_statistic(statistic: Any) -> str:
    if statistic not in _STATISTICS:
        raise InputError(f"statistic must be one of {sorted(_STATISTICS)}; got {statistic!r}")
    return str(statistic)


def rank_correlation_interval(
    x: Any, y: Any, clusters: Any, statistic: Statistic, *, n_boot: int = 2000, confidence: float = 0.95, seed: int = 0,
    min_clusters: int = MIN_CLUSTERS,
) -> RankCorrelation:
    """A rank correlation with a percentile bootstrap interval over clusters.

    Each replicate draws as many clusters as there are, with replacement, and keeps all items of
    every cluster drawn (a cluster drawn twice comes in twice: ties the statistic accounts for).
    A replicate on which the statistic is undefined (a constant sample) is left out and counted;
    when more than half are, there is no interval. Nor is there one with fewer than
    ``min_clusters`` clusters, or when both ends coincide: then the estimate comes with a note.

    Args:
        x: per-item scores (finite numbers).
        y: per-item ratings, paired with ``x``.
        clusters: per-item cluster labels (identities).
        statistic: ``"kendall"`` (:func:`kendall_tau_b`) or ``"spearman"`` (:func:`spearman_rho`).
        n_boot: replicates, from :data:`MIN_BOOT` to :data:`MAX_BOOT`.
        confidence: nominal coverage, strictly between 0 and 1.
        seed: seed of ``numpy.random.default_rng``.
        min_clusters: fewest clusters an interval is given for (:data:`MIN_CLUSTERS`).

    Returns:
        :class:`RankCorrelation`; ``note`` says why there is no interval.

    Raises:
        InputError: mismatched lengths, non-finite values, an unknown statistic or invalid settings.

    Example:
        >>> x = [0.1, 0.2, 0.4, 0.3, 0.8, 0.9]
        >>> r = rank_correlation_interval(x, [1, 2, 3, 3, 4, 5], ["a", "a", "b", "b", "c", "c"], "spearman",
        ...                               n_boot=200, min_clusters=3)
        >>> round(r.estimate, 3), r.n_clusters, r.low <= r.estimate <= r.high
        (0.986, 3, True)
        >>> rank_correlation_interval(x, [1, 2, 3, 3, 4, 5], ["a", "a", "b", "b", "c", "c"], "spearman").note[:30]
        'no interval: 3 cluster(s) (ide'
    """
    name = _check_statistic(statistic)
    a, b = _pair(x, y)
    labels = as_labels("clusters", clusters, a.size, "x")
    n_boot, confidence, seed, min_clusters = check_bootstrap(n_boot, confidence, seed, min_clusters)
    n_clusters = int(np.unique(labels).size)
    method = (f"percentile bootstrap of {_NAMES[name]}, resampling whole clusters (identities) with replacement, "
              f"{n_boot} replicates")
    function = _STATISTICS[name]
    (a_codes, n_a), (b_codes, n_b) = _codes(a), _codes(b)
    estimate = function(a_codes, n_a, b_codes, n_b)
    common = {"statistic": name, "estimate": estimate, "confidence": confidence, "n": int(a.size),
              "n_clusters": n_clusters, "n_boot": n_boot, "seed": seed, "method": method}
    if not math.isfinite(estimate):
        why = "fewer than 2 items" if a.size < 2 else "the scores or the ratings are all equal"
        return RankCorrelation(low=None, high=None, n_dropped=0, note=f"undefined: {why}", **common)
    if n_clusters < min_clusters:
        return RankCorrelation(low=None, high=None, n_dropped=0, note=few_clusters_note(n_clusters, min_clusters), **common)
    order, starts, sizes = _cluster_index(labels)
    rng = np.random.default_rng(seed)
    replicates = np.empty(n_boot)
    for r in range(n_boot):
        drawn = rng.integers(0, n_clusters, n_clusters)
        counts = sizes[drawn]
        ends = np.cumsum(counts)
        within = np.arange(int(ends[-1])) - np.repeat(ends - counts, counts)
        items = order[np.repeat(starts[drawn], counts) + within]
        replicates[r] = function(a_codes[items], n_a, b_codes[items], n_b)
    valid = replicates[np.isfinite(replicates)]
    dropped = n_boot - valid.size
    if valid.size * 2 < n_boot:
        return RankCorrelation(low=None, high=None, n_dropped=dropped,
                               note=f"no interval: the statistic was undefined on {dropped} of {n_boot} replicates "
                               "(too few clusters with different scores or ratings)", **common)
    interval = percentile_interval(valid, confidence)
    note = f"{dropped} replicate(s) with an undefined statistic left out" if dropped else ""
    if interval is None:
        return RankCorrelation(low=None, high=None, n_dropped=dropped, note=ZERO_WIDTH_NOTE, **common)
    return RankCorrelation(low=interval[0], high=interval[1], n_dropped=dropped, note=note, **common)
