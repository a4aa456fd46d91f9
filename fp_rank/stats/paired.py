"""Paired comparison of two methods on the identities both were run on.

The difference is ``mAP_a - mAP_b`` with both macro means computed on the shared identities only.
Its interval is by default a Student-t interval whose standard error comes from the per-identity
differences (identity-clustered, paired; see :mod:`fp_rank.stats.intervals`), with Satterthwaite
degrees of freedom across groups; it keeps its coverage with 5 identities per group. The
hierarchical bootstrap (identity draws shared by the two methods, query draws made independently
for each) is an option. The p-value comes from a sign-flip permutation test over identities:
under the null hypothesis that the two methods are exchangeable for every identity, the sign of
each identity's difference is a fair coin.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from fp_rank.errors import InputError
from fp_rank.stats._validation import (
    as_values,
    check_confidence,
    check_positive_int,
    check_seed,
)
from fp_rank.stats.bootstrap import (
    ConfidenceInterval,
    _build_groups,
    _draw_identity_counts,
    _GroupData,
    _percentile_interval,
    _replicate_blocks,
    _resampled_group_means,
    _validated,
)
from fp_rank.stats.boundary import no_spread
from fp_rank.stats.intervals import (
    _check_interval,
    few_identity_warnings,
    macro_variance,
    t_interval,
)

#: Up to this many identities, the permutation test enumerates all ``2**n`` sign vectors.
EXACT_PERMUTATION_MAX_IDENTITIES = 14

#: Relative tolerance when comparing permuted statistics with the observed one, so that sign
#: vectors giving the same statistic up to rounding are counted as "as extreme".
_TIE_RTOL = 1e-9

#: Upper bound on sign entries held in memory at once by the Monte Carlo test.
_MAX_SIGNS_PER_CHUNK = 1 << 22


@dataclass(frozen=True)
class PairedComparison:
    """Method A versus method B on the identities both were scored on.

    Attributes:
        difference: ``map_a - map_b`` on the shared identities (macro over groups).
        ci: bootstrap interval of ``difference``.
        p_value: two-sided sign-flip permutation p-value over shared identities.
        n_shared_identities: identities scored for both methods.
        shared_identities: their labels, sorted by (group, identity).
        only_in_a: identities scored for A only (left out of the comparison).
        only_in_b: identities scored for B only (left out of the comparison).
        method: a sentence describing how the interval and the p-value were computed.
        map_a: macro mean of A on the shared identities.
        map_b: macro mean of B on the shared identities.
        groups: the groups of the shared identities, sorted.
        exact: whether the p-value enumerated every sign vector (else Monte Carlo).
        n_permutations: sign vectors evaluated (``2**n`` when exact).
        warnings: what limits the interval or the test (few identities per group, a p-value
            that cannot reach ``1 - confidence``).
        comparability: for two reports, the comparability key they share and any differences
            allowed explicitly (``allowed_differences``); None for one report.
    """

    difference: float
    ci: ConfidenceInterval
    p_value: float
    n_shared_identities: int
    shared_identities: tuple[str, ...]
    only_in_a: tuple[str, ...]
    only_in_b: tuple[str, ...]
    method: str
    map_a: float
    map_b: float
    groups: tuple[str, ...]
    exact: bool
    n_permutations: int
    warnings: tuple[str, ...] = ()
    comparability: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as a JSON-serialisable dict (tuples become lists).

        Example:
            >>> r = paired_comparison([0.9, 0.8], ["x", "y"], ["g", "g"],
            ...                       [0.5, 0.7], ["x", "y"], ["g", "g"], n_boot=50)
            >>> sorted(r.to_dict())[:3]
            ['ci', 'difference', 'exact']
        """
        return {
            "difference": self.difference,
            "ci": self.ci.to_dict(),
            "p_value": self.p_value,
            "n_shared_identities": self.n_shared_identities,
            "shared_identities": list(self.shared_identities),
            "only_in_a": list(self.only_in_a),
            "only_in_b": list(self.only_in_b),
            "method": self.method,
            "map_a": self.map_a,
            "map_b": self.map_b,
            "groups": list(self.groups),
            "exact": self.exact,
            "n_permutations": self.n_permutations,
            "warnings": list(self.warnings),
            **({"comparability": self.comparability} if self.comparability is not None else {}),
        }


def _identity_groups(identities: np.ndarray, groups: np.ndarray) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for identity, group in set(zip(identities.tolist(), groups.tolist())):
        out.setdefault(identity, set()).add(group)
    return out


def _check_group_agreement(
    map_a: dict[str, set[str]], map_b: dict[str, set[str]]
) -> None:
    for identity in sorted(map_a.keys() & map_b.keys()):
        if not map_a[identity] & map_b[identity]:
            raise InputError(
                f"identity {identity!r} is in group(s) {sorted(map_a[identity])} in groups_a but "
                f"in {sorted(map_b[identity])} in groups_b; an identity must belong to the same "
                "group for both methods (were the runs scored on the same gallery?)"
            )


def permutation_p_value(
    differences: Any,
    weights: Any = None,
    *,
    n_permutations: int = 10000,
    seed: int = 0,
) -> tuple[float, bool, int]:
    """Two-sided sign-flip permutation test of ``sum(weights * differences) == 0``.

    The statistic is ``T = sum_i w_i d_i``; under the null each ``d_i`` is symmetric about zero,
    so every sign vector is equally likely. With ``n`` differences, when
    ``n <= EXACT_PERMUTATION_MAX_IDENTITIES`` all ``2**n`` sign vectors are enumerated and
    ``p = #{|T*| >= |T|} / 2**n``; otherwise ``n_permutations`` random sign vectors are drawn and
    ``p = (1 + #{|T*| >= |T|}) / (1 + n_permutations)`` (never zero, valid at any sample size).
    Statistics equal to ``|T|`` up to a relative ``1e-9`` count as extreme.

    Args:
        differences: one paired difference per unit (identity).
        weights: non-negative weight per unit; equal weights when None.
        n_permutations: random sign vectors for the Monte Carlo test (>= 1).
        seed: seed of the random sign vectors.

    Returns:
        ``(p_value, exact, n_evaluated)``.

    Raises:
        InputError: on empty or non-finite differences, weights of the wrong length or negative,
            or out-of-range ``n_permutations`` / ``seed``.

    Example:
        >>> permutation_p_value([1.0, 2.0, -0.5])
        (0.5, True, 8)
    """
    d = as_values("differences", differences)
    if weights is None:
        w = np.full(d.size, 1.0 / d.size)
    else:
        w = as_values("weights", weights)
        if w.size != d.size:
            raise InputError(f"weights has {w.size} entries but differences has {d.size}")
        if np.any(w < 0):
            raise InputError("weights must be non-negative")
    n_permutations = check_positive_int("n_permutations", n_permutations)
    seed = check_seed(seed)

    terms = w * d
    observed = abs(float(terms.sum()))
    threshold = observed - _TIE_RTOL * float(np.abs(terms).sum())
    n = terms.size
    if n <= EXACT_PERMUTATION_MAX_IDENTITIES:
        bits = (np.arange(2**n, dtype=np.int64)[:, None] >> np.arange(n)) & 1
        permuted = np.abs((1 - 2 * bits) @ terms)
        return float(np.mean(permuted >= threshold)), True, 2**n

    rng = np.random.default_rng(seed)
    chunk = max(1, _MAX_SIGNS_PER_CHUNK // n)
    extreme = 0
    for start in range(0, n_permutations, chunk):
        size = min(chunk, n_permutations - start)
        signs = 1 - 2 * rng.integers(0, 2, size=(size, n), dtype=np.int8)
        extreme += int(np.count_nonzero(np.abs(signs @ terms) >= threshold))
    return (1 + extreme) / (1 + n_permutations), False, n_permutations


def _restrict(
    values: np.ndarray,
    identities: np.ndarray,
    groups: np.ndarray,
    keep: set[tuple[str, str]],
) -> list[_GroupData]:
    mask = np.fromiter(
        ((g, i) in keep for g, i in zip(groups.tolist(), identities.tolist())),
        dtype=bool,
        count=values.size,
    )
    return _build_groups(values[mask], identities[mask], groups[mask])


def shared_groups(
    a: tuple[np.ndarray, np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray, np.ndarray]
) -> tuple[list[_GroupData], list[_GroupData], list[tuple[str, str]], list[tuple[str, str]]]:
    """Both methods' validated (values, identities, groups), restricted to shared identities.

    Returns:
        ``(groups_a, groups_b, only_in_a, only_in_b)``: the groups of A and B aligned group by
        group and identity by identity, and the (group, identity) pairs each method has alone.

    Raises:
        InputError: when no (group, identity) is shared, or an identity found in both belongs to
            different groups in each.
    """
    _check_group_agreement(_identity_groups(a[1], a[2]), _identity_groups(b[1], b[2]))
    keys_a = set(zip(a[2].tolist(), a[1].tolist()))
    keys_b = set(zip(b[2].tolist(), b[1].tolist()))
    shared = keys_a & keys_b
    if not shared:
        raise InputError(
            f"methods A and B share no identity: A has {len(keys_a)} (group, identity) pairs, "
            f"B has {len(keys_b)}, none in common. Compare runs scored on the same gallery."
        )
    return (
        _restrict(*a, shared),
        _restrict(*b, shared),
        sorted(keys_a - keys_b),
        sorted(keys_b - keys_a),
    )


def paired_comparison(
    values_a: Any,
    identities_a: Any,
    groups_a: Any,
    values_b: Any,
    identities_b: Any,
    groups_b: Any,
    *,
    n_boot: int = 1000,
    n_permutations: int = 10000,
    confidence: float = 0.95,
    seed: int = 0,
    interval: Literal["t", "bootstrap"] = "t",
) -> PairedComparison:
    """Compare two methods' per-query scores on the identities both were scored on.

    Only (group, identity) pairs present in both inputs are used. Within each group the
    identities need not have the same number of queries under A and B.

    * ``difference = macro_a - macro_b``, each the mean over groups of the mean over the group's
      queries of that method (restricted to the shared identities).
    * ``ci`` (``interval="t"``, the default): ``difference +- t_df * se``. Per group the
      variance is ``sum_i u_i^2 / (m (m - 1))`` over the shared identities, with ``u_i`` the
      identity's linearised term of A's group mean minus its term of B's (the pairing; with
      equal counts, ``u_i = d_i - mean(d)`` and this is the paired t variance ``s_d^2 / m``);
      ``df`` is Satterthwaite's across groups. A group with one shared identity uses its queries
      (Welch). ``interval="bootstrap"``: hierarchical bootstrap of the difference; each replicate
      draws, per group, the shared identities with replacement (the same draw for A and B), then
      for each method independently the queries of every drawn identity with replacement; it
      undercovers with few identities per group.
    * ``p_value``: two-sided sign-flip permutation test (:func:`permutation_p_value`) on the
      per-identity differences ``d_i = mean_a_i - mean_b_i`` with the macro weights
      ``w_i = m_i / (G * M_g)``, where ``m_i`` is the identity's mean query count over A and B,
      ``M_g`` the sum of ``m_i`` over the group and ``G`` the number of groups. When every
      identity has as many queries under A as under B, ``sum(w_i d_i)`` equals ``difference``.
      Exact enumeration up to ``EXACT_PERMUTATION_MAX_IDENTITIES`` shared identities, else Monte
      Carlo with ``n_permutations`` draws and the +1 correction.

    Args:
        values_a: per-query scores of method A (AP, CMC@1 hit, cosine...).
        identities_a: identity of each query of A.
        groups_a: group of each query of A.
        values_b: per-query scores of method B.
        identities_b: identity of each query of B.
        groups_b: group of each query of B.
        n_boot: bootstrap replicates (>= 1; used by ``interval="bootstrap"``).
        n_permutations: Monte Carlo sign vectors when the test is not exact (>= 1).
        confidence: nominal coverage of the interval, strictly between 0 and 1.
        seed: seed for both the bootstrap and the permutation test (independent streams).
        interval: ``"t"`` (default) or ``"bootstrap"``.

    Returns:
        A :class:`PairedComparison`.

    Raises:
        InputError: when the inputs are invalid (message names the argument), when no
            (group, identity) is shared, or when an identity found in both inputs belongs to
            different groups in each, or when ``interval`` is unknown.

    Example:
        >>> r = paired_comparison(
        ...     [0.9, 0.8, 0.7, 0.6], ["x", "x", "y", "z"], ["g"] * 4,
        ...     [0.5, 0.6, 0.6, 0.1], ["x", "x", "y", "w"], ["g"] * 4,
        ...     n_boot=100,
        ... )
        >>> r.n_shared_identities, r.only_in_a, r.only_in_b
        (2, ('z',), ('w',))
        >>> round(r.difference, 3), r.p_value
        (0.233, 0.5)
    """
    va, ia, ga = _validated(values_a, identities_a, groups_a, "_a")
    vb, ib, gb = _validated(values_b, identities_b, groups_b, "_b")
    n_boot = check_positive_int("n_boot", n_boot)
    n_permutations = check_positive_int("n_permutations", n_permutations)
    confidence = check_confidence(confidence)
    seed = check_seed(seed)
    interval = _check_interval(interval, ("t", "bootstrap"))

    data_a, data_b, only_a, only_b = shared_groups((va, ia, ga), (vb, ib, gb))
    n_groups = len(data_a)
    map_a = float(np.mean([group.mean for group in data_a]))
    map_b = float(np.mean([group.mean for group in data_b]))
    difference = map_a - map_b

    boot_seq, perm_seq = np.random.SeedSequence(seed).spawn(2)
    notes = few_identity_warnings(data_a)
    ci = _difference_interval(data_a, data_b, difference, np.r_[va, vb], interval, confidence, n_boot, seed,
                              boot_seq, notes)
    notes = ci.warnings

    p_value, exact, n_evaluated = _sign_flip_test(data_a, data_b, n_permutations, perm_seq)
    n_shared = sum(len(group.identities) for group in data_a)
    floor = 2.0 / 2**n_shared
    if exact and floor > 1.0 - confidence:
        notes += (
            f"with {n_shared} shared identities the exact permutation p-value cannot go below "
            f"{floor:.3g}, so the test cannot reject at {1.0 - confidence:g}; read the interval",
        )
    test = (
        f"exact enumeration of all 2^{n_shared} sign vectors"
        if exact
        else f"{n_permutations} random sign vectors, p = (1 + extreme) / (1 + {n_permutations})"
    )
    method = (
        f"difference of macro means on {n_shared} shared identities in {n_groups} group(s); "
        f"{confidence * 100:g}% {_interval_text(ci, n_boot, seed)}; two-sided sign-flip permutation test over "
        f"identities with macro weights ({test})"
    )
    shared_sorted = [identity for group in data_a for identity in group.identities]
    return PairedComparison(
        difference=difference,
        ci=ci,
        p_value=float(p_value),
        n_shared_identities=n_shared,
        shared_identities=tuple(shared_sorted),
        only_in_a=tuple(identity for _, identity in only_a),
        only_in_b=tuple(identity for _, identity in only_b),
        method=method,
        map_a=map_a,
        map_b=map_b,
        groups=tuple(group.name for group in data_a),
        exact=exact,
        n_permutations=n_evaluated,
        warnings=notes,
    )


def _sign_flip_test(data_a: list[_GroupData], data_b: list[_GroupData], n_permutations: int,
                    perm_seq: np.random.SeedSequence) -> tuple[float, bool, int]:
    """The permutation test of :func:`paired_comparison` on the per-identity differences with macro
    weights: ``(p_value, exact, sign vectors evaluated)``."""
    n_groups = len(data_a)
    diffs, weights = [], []
    for group_a, group_b in zip(data_a, data_b):
        d = group_a.identity_sums() / group_a.sizes - group_b.identity_sums() / group_b.sizes
        m = (group_a.sizes + group_b.sizes) / 2.0
        diffs.append(d)
        weights.append(m / (m.sum() * n_groups))
    return permutation_p_value(
        np.concatenate(diffs),
        np.concatenate(weights),
        n_permutations=n_permutations,
        seed=int(perm_seq.generate_state(1)[0]),
    )


def _difference_interval(
    data_a: list[_GroupData], data_b: list[_GroupData], difference: float, values: np.ndarray, interval: str,
    confidence: float, n_boot: int, seed: int, boot_seq: np.random.SeedSequence, notes: tuple[str, ...],
) -> ConfidenceInterval:
    """The interval of A minus B (paired t or bootstrap); none, said in words, when the differences do not vary."""
    variance, df = macro_variance(data_a, data_b)
    if interval == "t":
        low, high = t_interval(difference, variance, df, confidence)
    else:
        low, high = _paired_bootstrap(data_a, data_b, n_boot, confidence, boot_seq)
    if no_spread(variance, values) or not high > low:  # a zero width would claim a certainty the data lack
        low, high = float("nan"), float("nan")
        notes = (*notes, (
            "the differences do not vary between identities (or rest on one image of one identity): "
            "no interval can be estimated from these data"
        ))
    if interval == "t":
        return ConfidenceInterval(difference, low, high, confidence, 0, seed, "t", df, math.sqrt(variance), notes)
    return ConfidenceInterval(difference, low, high, confidence, n_boot, seed, warnings=notes)


def _interval_text(ci: ConfidenceInterval, n_boot: int, seed: int) -> str:
    if ci.method == "t":
        return (
            f"Student-t CI from the paired per-identity differences (identity-clustered standard "
            f"error, Satterthwaite df={ci.df if ci.df is None else round(ci.df, 1)})"
        )
    return (
        f"percentile CI from a paired hierarchical bootstrap (identities drawn jointly "
        f"within groups, queries drawn per method; n_boot={n_boot}, seed={seed})"
    )


def _paired_bootstrap(
    data_a: list[_GroupData],
    data_b: list[_GroupData],
    n_boot: int,
    confidence: float,
    seed_sequence: np.random.SeedSequence,
) -> tuple[float, float]:
    """Percentile interval of A - B: identity draws shared by A and B, query draws per method."""
    rng = np.random.default_rng(seed_sequence)
    replicates = np.zeros(n_boot, dtype=np.float64)
    for group_a, group_b in zip(data_a, data_b):
        for block in _replicate_blocks(n_boot, group_a, group_b):
            counts = _draw_identity_counts(rng, block.stop - block.start, len(group_a.identities))
            replicates[block] += _resampled_group_means(rng, counts, group_a)
            replicates[block] -= _resampled_group_means(rng, counts, group_b)
    replicates /= len(data_a)
    return _percentile_interval(replicates, confidence)
