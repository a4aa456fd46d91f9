"""Per-query maths shared, as the same Python functions, by the NumPy path and the compiled kernel.

The functions use plain loops and :mod:`math` only, so that :mod:`fp_rank.ranking._numba_kernels`
compiles these very functions (``numba.njit(expected_inp)``) while the NumPy path calls them as
they are: one definition, two ways to run it.
"""

from __future__ import annotations

import math

#: CMC@k within a tie group: the miss probability C(n - t, r) / C(n, r) is a product of min(r, t)
#: ratios up to this many terms (exact to rounding; lgamma differences lose digits in big groups).
CMC_PRODUCT_TERMS = 4096


def expected_inp(r_total: float, before: float, r_group: int, n_group: int) -> float:
    """E[R / rank of the last relevant item] when the last ``r_group`` relevant items share a tie
    group of ``n_group`` items ranked after ``before`` others.

    The last relevant item sits at group position ``m`` with probability
    ``C(m - 1, r - 1) / C(n, r)`` (every ordering of the group equally likely).

    Example:
        >>> expected_inp(1.0, 0.0, 1, 2)  # one relevant item tied with one other: ranks 1 or 2
        0.75
    """
    log_c = math.lgamma(n_group + 1) - math.lgamma(r_group + 1) - math.lgamma(n_group - r_group + 1)
    total = 0.0
    acc = 0.0
    for m in range(r_group, n_group + 1):
        p = math.exp(math.lgamma(m) - math.lgamma(r_group) - math.lgamma(m - r_group + 1) - log_c)
        total += p
        acc += p * r_total / (before + m)
    return acc / total
