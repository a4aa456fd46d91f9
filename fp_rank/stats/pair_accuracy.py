"""Do a score and people order pairs alike? Method-pair and image-pair accuracies.

Pure functions of arrays and dicts (no report, no files):

* :func:`pairwise_accuracy`: how often a score orders two methods as people's mean ratings do,
  means compared exactly;
* :func:`preference_accuracy`: how often a score prefers the image people preferred in a pair,
  with a percentile bootstrap interval that resamples whole identities (the rules of
  :mod:`fp_rank.stats.rank_agreement`).
"""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Mapping
from fractions import Fraction
from typing import Any

import numpy as np

from fp_rank.errors import InputError
from fp_rank.stats._validation import as_labels, as_values, check_finite_number
from fp_rank.stats.rank_agreement import (
    MIN_CLUSTERS,
    PREFERENCES,
    ZERO_WIDTH_NOTE,
    check_bootstrap,
    few_clusters_note,
    percentile_interval,
)

#: Largest number of resampled values held in memory at once by :func:`preference_accuracy`.
_MAX_DRAWS_PER_CHUNK = 1 << 22


def _credit(score_diff: np.ndarray, human_sign: np.ndarray) -> np.ndarray:
    """1 where the score orders a pair as people do, 0 where the other way, 0.5 where it ties."""
    return np.where(score_diff == 0, 0.5, (np.sign(score_diff) == human_sign).astype(np.float64))


def _exact(name: str, value: Any) -> Fraction:
    check_finite_number(name, value)
    return Fraction(value) if isinstance(value, numbers.Rational) else Fraction(float(value))


def pairwise_accuracy(score_means: Mapping[str, Any], human_means: Mapping[str, Any]) -> dict[str, Any]:
    """The share of method pairs a score orders as people's mean ratings do.

    Over every pair of methods both dicts hold: a pair people rate equally is left out (counted in
    ``n_human_ties``); a pair the score ties while people split it counts one half. Means are
    compared exactly (as given: floats, or :class:`fractions.Fraction` for exact means).

    Args:
        score_means: ``{method: mean score}`` (real numbers).
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
    score = [_exact(f"score_means[{m!r}]", score_means[m]) for m in methods]
    human = [_exact(f"human_means[{m!r}]", human_means[m]) for m in methods]
    credit, human_ties, score_ties = [], 0, 0
    for i, j in itertools.combinations(range(len(methods)), 2):
        if human[i] == human[j]:
            human_ties += 1
        elif score[i] == score[j]:
            score_ties += 1
            credit.append(0.5)
        else:
            credit.append(float((score[i] > score[j]) == (human[i] > human[j])))
    return {"accuracy": sum(credit) / len(credit) if credit else math.nan, "n_pairs": len(credit),
            "n_human_ties": human_ties, "n_score_ties": score_ties, "methods": methods}


def _check_preferences(preferred: Any, length: int) -> np.ndarray:
    labels = as_labels("preferred", preferred, length, "score_a")
    unknown = sorted(set(labels.tolist()) - set(PREFERENCES))
    if unknown:
        raise InputError(f"preferred holds {unknown[:3]}; each value must be one of {list(PREFERENCES)}")
    return labels


def _cluster_bootstrap(credit: np.ndarray, clusters: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Mean credit of ``n_boot`` replicates, each drawing as many clusters as there are, with replacement."""
    _, codes = np.unique(clusters, return_inverse=True)
    sums, sizes = np.bincount(codes, weights=credit), np.bincount(codes).astype(np.float64)
    k = sums.size
    chunk = max(1, _MAX_DRAWS_PER_CHUNK // k)
    out = []
    for done in range(0, n_boot, chunk):
        drawn = rng.integers(0, k, (min(chunk, n_boot - done), k))
        out.append(sums[drawn].sum(axis=1) / sizes[drawn].sum(axis=1))
    return np.concatenate(out)


def preference_accuracy(
    score_a: Any, score_b: Any, preferred: Any, clusters: Any, *, n_boot: int = 2000, confidence: float = 0.95,
    seed: int = 0, min_clusters: int = MIN_CLUSTERS,
) -> dict[str, Any]:
    """The share of rated image pairs in which a score prefers the image people preferred.

    A pair people tie (``"tie"``) is left out and counted; a pair the score ties counts one half.
    The interval is a percentile bootstrap that resamples whole clusters (the identity of each
    pair) with replacement, seeded: pairs of one identity share its difficulty. There is no
    interval (``note`` says why) with fewer than ``min_clusters`` clusters among the pairs counted,
    or when both ends coincide.

    Args:
        score_a: the score of each pair's first image.
        score_b: the score of each pair's second image.
        preferred: per pair, ``"a"``, ``"b"`` or ``"tie"``.
        clusters: per pair, its cluster label (identity).
        n_boot: bootstrap replicates, from :data:`MIN_BOOT` to :data:`MAX_BOOT`.
        confidence: nominal coverage, strictly between 0 and 1.
        seed: seed of ``numpy.random.default_rng``.
        min_clusters: fewest clusters an interval is given for (:data:`MIN_CLUSTERS`).

    Returns:
        ``{"accuracy", "low", "high", "n_pairs", "n_human_ties", "n_score_ties", "n_clusters",
        "confidence", "n_boot", "seed", "method", "note"}``; accuracy is NaN when no pair counts.

    Raises:
        InputError: mismatched lengths, non-finite scores, a preference other than a, b or tie,
            or invalid settings.

    Example:
        >>> out = preference_accuracy([0.9, 0.2, 0.5, 0.3], [0.1, 0.4, 0.5, 0.3], ["a", "b", "a", "tie"],
        ...                           ["x", "y", "z", "x"], n_boot=100, min_clusters=2)
        >>> out["accuracy"], out["n_pairs"], out["n_human_ties"], out["n_score_ties"], out["n_clusters"]
        (0.8333333333333334, 3, 1, 1, 3)
    """
    a, b = as_values("score_a", score_a, allow_empty=True), as_values("score_b", score_b, allow_empty=True)
    if a.size != b.size:
        raise InputError(f"score_a has {a.size} values but score_b has {b.size}; they must pair up one to one")
    labels = _check_preferences(preferred, a.size)
    groups = as_labels("clusters", clusters, a.size, "score_a")
    n_boot, confidence, seed, min_clusters = check_bootstrap(n_boot, confidence, seed, min_clusters)
    kept = labels != "tie"
    human_sign = np.where(labels[kept] == "a", 1.0, -1.0)
    score_diff = (a - b)[kept]
    credit = _credit(score_diff, human_sign)
    n_clusters = int(np.unique(groups[kept]).size)
    out: dict[str, Any] = {
        "accuracy": float(credit.mean()) if credit.size else math.nan, "low": None, "high": None,
        "n_pairs": int(credit.size), "n_human_ties": int((~kept).sum()), "n_score_ties": int((score_diff == 0).sum()),
        "n_clusters": n_clusters, "confidence": confidence, "n_boot": n_boot, "seed": seed,
        "method": f"percentile bootstrap resampling whole clusters (identities) of pairs, {n_boot} replicates",
        "note": "",
    }
    if not credit.size:
        return {**out, "note": "undefined: no pair counts (people tied every pair)" if a.size else "no pairs"}
    if n_clusters < min_clusters:
        return {**out, "note": few_clusters_note(n_clusters, min_clusters)}
    interval = percentile_interval(_cluster_bootstrap(credit, groups[kept], n_boot, np.random.default_rng(seed)), confidence)
    if interval is None:
        return {**out, "note": ZERO_WIDTH_NOTE}
    return {**out, "low": interval[0], "high": interval[1]}
