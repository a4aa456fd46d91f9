"""Do a score and people agree? Rank correlations, their clustered intervals, and pair accuracies.

Pure functions of arrays and dicts (no report, no files):

* :func:`kendall_tau_b` and :func:`spearman_rho`: rank correlation of per-image scores with
  people's ratings, ties handled (tau-b; Spearman on average ranks).
* :func:`rank_correlation_interval`: either correlation with a percentile bootstrap interval that
  resamples whole clusters (the images of one identity share its difficulty, so identities, not
  images, set the uncertainty).
* :func:`pairwise_accuracy`: how often a score orders two methods as people's mean ratings do.
* :func:`preference_accuracy`: how often a score prefers the image people preferred in a pair.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from fp_rank.errors import InputError
from fp_rank.stats._validation import (
    as_labels,
    as_values,
    check_confidence,
    check_finite_number,
    check_positive_int,
    check_seed,
)

Statistic = Literal["kendall", "spearman"]
#: Preference values of a rated pair: the first image, the second, or neither.
PREFERENCES = ("a", "b", "tie")
#: Largest number of resampled values held in memory at once by :func:`preference_accuracy`.
_MAX_DRAWS_PER_CHUNK = 1 << 22


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
            >>> r = rank_correlation_interval([1, 2, 3, 4], [1, 3, 2, 4], ["a", "a", "b", "b"], "kendall", n_boot=50)
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


def _check_statistic(statistic: Any) -> str:
    if statistic not in _STATISTICS:
        raise InputError(f"statistic must be one of {sorted(_STATISTICS)}; got {statistic!r}")
    return str(statistic)


def rank_correlation_interval(
    x: Any, y: Any, clusters: Any, statistic: Statistic, *, n_boot: int = 2000, confidence: float = 0.95, seed: int = 0
) -> RankCorrelation:
    """A rank correlation with a percentile bootstrap interval over clusters.

    Each replicate draws as many clusters as there are, with replacement, and keeps all items of
    every cluster drawn (a cluster drawn twice comes in twice: ties the statistic accounts for).
    A replicate on which the statistic is undefined (a constant sample) is left out and counted;
    when more than half are, there is no interval.

    Args:
        x: per-item scores (finite numbers).
        y: per-item ratings, paired with ``x``.
        clusters: per-item cluster labels (identities).
        statistic: ``"kendall"`` (:func:`kendall_tau_b`) or ``"spearman"`` (:func:`spearman_rho`).
        n_boot: replicates.
        confidence: nominal coverage, strictly between 0 and 1.
        seed: seed of ``numpy.random.default_rng``.

    Returns:
        :class:`RankCorrelation`.

    Raises:
        InputError: fewer than 3 items or 2 clusters, mismatched lengths, non-finite values, an
            unknown statistic or invalid settings.

    Example:
        >>> x = [0.1, 0.2, 0.4, 0.3, 0.8, 0.9]
        >>> r = rank_correlation_interval(x, [1, 2, 3, 3, 4, 5], ["a", "a", "b", "b", "c", "c"], "spearman", n_boot=200)
        >>> round(r.estimate, 3), r.n_clusters, r.low <= r.estimate <= r.high
        (0.986, 3, True)
    """
    name = _check_statistic(statistic)
    a, b = _pair(x, y)
    labels = as_labels("clusters", clusters, a.size, "x")
    n_boot = check_positive_int("n_boot", n_boot)
    confidence = check_confidence(confidence)
    seed = check_seed(seed)
    n_clusters = int(np.unique(labels).size)
    if a.size < 3 or n_clusters < 2:
        raise InputError(
            f"a clustered interval of {_NAMES[name]} needs at least 3 items in at least 2 clusters; got {a.size} "
            f"item(s) in {n_clusters} cluster(s): rate images of more identities"
        )
    method = (f"percentile bootstrap of {_NAMES[name]}, resampling whole clusters (identities) with replacement, "
              f"{n_boot} replicates")
    function = _STATISTICS[name]
    (a_codes, n_a), (b_codes, n_b) = _codes(a), _codes(b)
    estimate = function(a_codes, n_a, b_codes, n_b)
    common = {"statistic": name, "confidence": confidence, "n": int(a.size), "n_clusters": n_clusters,
              "n_boot": n_boot, "seed": seed, "method": method}
    if not math.isfinite(estimate):
        return RankCorrelation(estimate=estimate, low=None, high=None, n_dropped=0,
                               note="undefined: the scores or the ratings are all equal", **common)
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
        return RankCorrelation(estimate=estimate, low=None, high=None, n_dropped=dropped,
                               note=f"no interval: the statistic was undefined on {dropped} of {n_boot} replicates "
                               "(too few clusters with different scores or ratings)", **common)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(valid, [tail, 1.0 - tail])
    note = f"{dropped} replicate(s) with an undefined statistic left out" if dropped else ""
    return RankCorrelation(estimate=estimate, low=float(low), high=float(high), n_dropped=dropped, note=note, **common)


def _credit(score_diff: np.ndarray, human_sign: np.ndarray) -> np.ndarray:
    """1 where the score orders a pair as people do, 0 where the other way, 0.5 where it ties."""
    return np.where(score_diff == 0, 0.5, (np.sign(score_diff) == human_sign).astype(np.float64))


def pairwise_accuracy(score_means: Mapping[str, float], human_means: Mapping[str, float]) -> dict[str, Any]:
    """The share of method pairs a score orders as people's mean ratings do.

    Over every pair of methods both dicts hold: a pair people rate equally is left out (counted in
    ``n_human_ties``); a pair the score ties while people split it counts one half.

    Args:
        score_means: ``{method: mean score}``.
        human_means: ``{method: mean rating}`` (or people's win rate).

    Returns:
        ``{"accuracy": share or NaN when no pair counts, "n_pairs": pairs counted,
        "n_human_ties": pairs left out, "n_score_ties": counted pairs the score ties,
        "methods": the methods both hold}``.

    Raises:
        InputError: a mean is not a finite number, or an argument is not a dict.

    Example:
        >>> out = pairwise_accuracy({"A": 0.9, "B": 0.5, "C": 0.5}, {"A": 4.0, "B": 3.0, "C": 2.0})
        >>> out["accuracy"], out["n_pairs"], out["n_score_ties"]  # A>B right, A>C right, B=C half
        (0.8333333333333334, 3, 1)
    """
    for name, means in (("score_means", score_means), ("human_means", human_means)):
        if not isinstance(means, Mapping):
            raise InputError(f"{name} must be a dict {{method: mean}}; got {type(means).__name__}")
    methods = sorted(set(score_means) & set(human_means))
    score = np.asarray([check_finite_number(f"score_means[{m!r}]", score_means[m]) for m in methods])
    human = np.asarray([check_finite_number(f"human_means[{m!r}]", human_means[m]) for m in methods])
    first, second = np.triu_indices(len(methods), k=1)
    human_sign = np.sign(human[first] - human[second])
    kept = human_sign != 0
    score_diff = (score[first] - score[second])[kept]
    credit = _credit(score_diff, human_sign[kept])
    return {
        "accuracy": float(credit.mean()) if credit.size else math.nan,
        "n_pairs": int(credit.size),
        "n_human_ties": int((~kept).sum()),
        "n_score_ties": int((score_diff == 0).sum()),
        "methods": methods,
    }


def _check_preferences(preferred: Any, length: int) -> np.ndarray:
    labels = as_labels("preferred", preferred, length, "score_a")
    unknown = sorted(set(labels.tolist()) - set(PREFERENCES))
    if unknown:
        raise InputError(f"preferred holds {unknown[:3]}; each value must be one of {list(PREFERENCES)}")
    return labels


def preference_accuracy(
    score_a: Any, score_b: Any, preferred: Any, *, n_boot: int = 2000, confidence: float = 0.95, seed: int = 0
) -> dict[str, Any]:
    """The share of rated image pairs in which a score prefers the image people preferred.

    A pair people tie (``"tie"``) is left out and counted; a pair the score ties counts one half.
    The interval is a percentile bootstrap over the pairs counted (seeded).

    Args:
        score_a: the score of each pair's first image.
        score_b: the score of each pair's second image.
        preferred: per pair, ``"a"``, ``"b"`` or ``"tie"``.
        n_boot: bootstrap replicates.
        confidence: nominal coverage, strictly between 0 and 1.
        seed: seed of ``numpy.random.default_rng``.

    Returns:
        ``{"accuracy", "low", "high", "n_pairs", "n_human_ties", "n_score_ties", "confidence",
        "n_boot", "seed", "method"}``; accuracy is NaN and the interval None when no pair counts.

    Raises:
        InputError: mismatched lengths, non-finite scores, a preference other than a, b or tie,
            or invalid settings.

    Example:
        >>> out = preference_accuracy([0.9, 0.2, 0.5, 0.3], [0.1, 0.4, 0.5, 0.3], ["a", "b", "a", "tie"], n_boot=100)
        >>> out["accuracy"], out["n_pairs"], out["n_human_ties"], out["n_score_ties"]  # 1 + 1 + 0.5 over 3
        (0.8333333333333334, 3, 1, 1)
    """
    a, b = _pair(score_a, score_b)
    labels = _check_preferences(preferred, a.size)
    n_boot = check_positive_int("n_boot", n_boot)
    confidence = check_confidence(confidence)
    seed = check_seed(seed)
    kept = labels != "tie"
    human_sign = np.where(labels[kept] == "a", 1.0, -1.0)
    score_diff = (a - b)[kept]
    credit = _credit(score_diff, human_sign)
    out: dict[str, Any] = {
        "accuracy": float(credit.mean()) if credit.size else math.nan, "low": None, "high": None,
        "n_pairs": int(credit.size), "n_human_ties": int((~kept).sum()), "n_score_ties": int((score_diff == 0).sum()),
        "confidence": confidence, "n_boot": n_boot, "seed": seed,
        "method": f"percentile bootstrap over the rated pairs, {n_boot} replicates",
    }
    if credit.size:
        rng = np.random.default_rng(seed)
        chunk = max(1, _MAX_DRAWS_PER_CHUNK // credit.size)
        means = np.concatenate([
            credit[rng.integers(0, credit.size, (min(chunk, n_boot - done), credit.size))].mean(axis=1)
            for done in range(0, n_boot, chunk)
        ])
        tail = (1.0 - confidence) / 2.0
        out["low"], out["high"] = (float(v) for v in np.quantile(means, [tail, 1.0 - tail]))
    return out
