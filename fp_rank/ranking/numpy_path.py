"""The NumPy definition of the ranking maths: exact, tie-aware counts per query and the metrics from them.

AP, CMC, Recall and INP need, for each relevant score of a query, how many items score above it
and how many tie with it. :func:`count_block` finds them without sorting the gallery: only the
items scoring at least as high as the query's lowest relevant item (the *candidates*) are
sorted, and every relevant score is located among them by binary search.
:func:`metrics_from_counts` turns the counts into the metrics (exact expected values under ties).

This is the reference the compiled kernel (:mod:`fp_rank.ranking.compiled`) is tested against;
both are reached through :func:`fp_rank.rank_metrics` and give the same numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.special import gammaln

from fp_rank.ranking.scalar import CMC_PRODUCT_TERMS, expected_inp

#: Similarities compared per pass: small enough to stay in the CPU's L2 cache between the
#: finiteness check and the candidate comparison (one read from memory per similarity).
PASS_ELEMENTS = 1 << 18

#: Runs ``scan(first, last)`` over row ranges and raises for a non-finite row (see accumulate).
RunRows = Callable[[Callable[[int, int], "int | None"], int, int, int], None]


def relevant_positions(
    rows: np.ndarray, order: np.ndarray, starts: np.ndarray, counts: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``(b, r_max)`` gallery positions of each row's relevant items (padded by repeating one) and the valid mask.

    ``r_max`` is the largest count among ``rows`` (the rows with relevant items; 1 when none).
    """
    r_max = int(counts[rows].max()) if len(rows) else 1
    col = np.arange(r_max)
    valid = col[None, :] < counts[:, None]
    if not len(order):
        return np.zeros((len(counts), r_max), dtype=np.int64), valid
    return order[starts[:, None] + np.minimum(col[None, :], np.maximum(counts, 1)[:, None] - 1)], valid


def relevant_scores(
    block: np.ndarray, rows: np.ndarray, order: np.ndarray, starts: np.ndarray, counts: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``(b, r_max)`` relevant similarities of each row, best first (``-inf`` padding), and the valid mask."""
    take, valid = relevant_positions(rows, order, starts, counts)
    rel = np.where(valid, np.take_along_axis(block, take, axis=1), -np.inf)
    return -np.sort(-rel, axis=1), valid  # best first; padding (-inf) last


def count_block(
    block: np.ndarray,
    start: int,
    missing: np.ndarray,
    order: np.ndarray,
    starts: np.ndarray,
    counts: np.ndarray,
    run_rows: RunRows,
) -> dict[str, Any]:
    """Per query: its relevant scores in ranking order, and how many items beat or tie each.

    For a query with relevant scores ``t_1 >= ... >= t_R``, only the items scoring at least
    ``t_R`` (the *candidates*: ranked before, or tied with, the last relevant item) influence
    AP, CMC and INP. One vectorised comparison finds them; they are sorted (``K log K`` for
    ``K`` candidates) and every ``t_i`` is located among them by binary search. The counts are
    exact and tie-aware: ``better`` counts the non-relevant items scoring strictly above
    ``t_i``, ``tied`` those scoring exactly ``t_i``. The similarities are read in cache-sized
    passes that also check that they are finite.

    Args:
        block: ``(b, N)`` similarities of queries ``start .. start + b``.
        start: index of the block's first query (for messages).
        missing: ``(b,)`` True for queries without any relevant item.
        order, starts, counts: the relevant gallery items of each query (see ``GalleryIndex``).
        run_rows: runs the row scans (threads) and raises for a non-finite row.

    Returns:
        ``top1`` for every row; and for the rows with relevant items (``rows``): ``lo``/``hi``
        (the tie group of each relevant item among the relevant ones, as indices into their
        sorted list), ``better``, ``tied`` (all ``(q, r_max)``, zero-padded beyond each query's
        ``R``) and ``n_rel``.

    Raises:
        InputError: a similarity is NaN or infinite.
    """
    n_rows, n_g = block.shape
    top1 = np.zeros(n_rows, dtype=np.int64)
    rows = np.flatnonzero(~missing)
    n_rel = counts
    rel, valid = relevant_scores(block, rows, order, starts, counts)
    r_max = rel.shape[1]
    worst = rel[np.arange(n_rows), np.maximum(n_rel, 1) - 1]
    better = np.zeros((n_rows, r_max), dtype=np.int64)
    tied = np.zeros((n_rows, r_max), dtype=np.int64)
    step = max(1, PASS_ELEMENTS // max(n_g, 1))

    def scan(first: int, last: int) -> int | None:
        """Rows ``first .. last - 1``; returns the first non-finite row, if any (nothing written after it)."""
        for s0 in range(first, last, step):
            sb = block[s0 : min(last, s0 + step)]
            with np.errstate(over="ignore", invalid="ignore"):
                finite = np.isfinite(sb.sum(axis=1))
            if not finite.all():
                bad_rows = ~np.isfinite(sb).all(axis=1)
                if bad_rows.any():
                    return s0 + int(np.flatnonzero(bad_rows)[0])
            for i in range(len(sb)):
                j = s0 + i
                x = sb[i]
                if missing[j]:
                    top1[j] = int(np.argmax(x))
                    continue
                r = int(n_rel[j])
                cand_idx = np.flatnonzero(x >= worst[j])
                cand = x[cand_idx]
                top1[j] = cand_idx[int(np.argmax(cand))]
                cand.sort()
                t = rel[j, r - 1 :: -1]  # ascending keys: NumPy's fastest search order
                le = np.searchsorted(cand, t, side="right")[::-1]  # candidates scoring <= t_i
                lt = np.searchsorted(cand, t, side="left")[::-1]  # candidates scoring < t_i
                better[j, :r] = len(cand) - le
                tied[j, :r] = le - lt
        return None

    run_rows(scan, n_rows, n_g, start)  # NumPy releases the GIL in comparisons, reductions and sorts
    return {"top1": top1, "rows": rows, "counts": finish_counts(rel[rows], valid[rows], better[rows], tied[rows],
                                                                 n_rel[rows])}


def finish_counts(
    rel: np.ndarray, valid: np.ndarray, better: np.ndarray, tied: np.ndarray, n_rel: np.ndarray
) -> dict[str, np.ndarray]:
    """From counts over every item to counts over the non-relevant ones, plus the relevant tie groups.

    ``better``/``tied`` count all items scoring above / equal to each relevant score (``rel``,
    best first, ``valid`` marking the real entries); the result is what
    :func:`metrics_from_counts` takes.
    """
    q, r_max = rel.shape
    col = np.arange(r_max)
    # Tie groups among the relevant scores: lo = first index of the group, hi = one past its end.
    same_prev = np.zeros((q, r_max), dtype=bool)
    same_prev[:, 1:] = (rel[:, 1:] == rel[:, :-1]) & valid[:, 1:]
    if same_prev.any():
        lo = np.maximum.accumulate(np.where(same_prev, 0, col[None, :]), axis=1)
        same_next = np.zeros_like(same_prev)
        same_next[:, :-1] = same_prev[:, 1:]
        hi = np.minimum.accumulate(np.where(same_next, r_max, col[None, :] + 1)[:, ::-1], axis=1)[:, ::-1]
    else:
        lo = np.tile(col, (q, 1))
        hi = lo + 1
    better = better - lo  # relevant items strictly above t_i are not non-relevant
    tied = tied - (hi - lo)  # nor are the relevant items tied with it
    better[~valid] = 0
    tied[~valid] = 0
    return {"lo": np.ascontiguousarray(lo), "hi": np.ascontiguousarray(hi), "better": better, "tied": tied,
            "n_rel": n_rel}


def metrics_from_counts(
    lo: np.ndarray,
    hi: np.ndarray,
    better: np.ndarray,
    tied: np.ndarray,
    n_rel: np.ndarray,
    harmonic: np.ndarray,
    ks: list[int],
    n: int,
) -> dict[str, Any]:
    """AP, first-hit rank, CMC@k, Recall@k and INP (exact expected values under ties) from the counts.

    Plain NumPy on ``(q, r_max)`` arrays: single-threaded, so it never waits on a thread pool.
    """
    q, r_max = lo.shape
    n_rel = np.asarray(n_rel, dtype=np.int64)
    valid = np.arange(r_max)[None, :] < n_rel[:, None]
    # Without a non-relevant item in the group, relevant item i (0-based in sorted order) sits
    # right after i relevant and `better` non-relevant items, whatever the order inside the group.
    pos_i = np.arange(r_max, dtype=np.float64)[None, :]
    prec = (pos_i + 1) / (pos_i + 1 + better)
    has_tie = (tied > 0) & valid
    if has_tie.any():
        # Expected precision at each relevant item of a group tied with non-relevant items (McSherry-Najork).
        a = lo.astype(np.float64)
        r = (hi - lo).astype(np.float64)
        c = (lo + better).astype(np.float64)
        group_n = r + tied
        c_i = np.clip(lo + better, 0, n)
        n_i = np.clip(lo + better + (hi - lo) + tied, 0, n)
        h_diff = harmonic[n_i] - harmonic[c_i]
        denom = np.maximum(group_n - 1, 1.0)
        safe_n = np.maximum(group_n, 1.0)
        tied_val = ((a + 1) * h_diff + (r - 1) / denom * (group_n - (c + 1) * h_diff)) / safe_n
        prec = np.where(has_tie, tied_val, prec)
    prec = np.where(valid, prec, 0.0)
    ap = prec.sum(axis=1) / n_rel

    # Recall@k: relevant item i shares its tie group (``hi - lo`` relevant plus ``tied`` others)
    # with ``lo + better`` items ranked strictly above it; every ordering of the group being
    # equally likely, it lands within the top k with probability clip(k - above, 0, size) / size.
    above = (lo + better).astype(np.float64)
    size = np.maximum((hi - lo + tied).astype(np.float64), 1.0)
    recall = {
        k: np.where(valid, np.clip(k - above, 0.0, size) / size, 0.0).sum(axis=1) / n_rel for k in ks
    }
    any_tie = has_tie.any(axis=1)

    # First relevant item: the tie group at lo = 0.
    r0 = hi[:, 0].astype(np.float64)
    c0 = better[:, 0].astype(np.float64)
    n0 = r0 + tied[:, 0]
    first = c0 + (n0 + 1) / (r0 + 1)
    cmc: dict[int, np.ndarray] = {}
    lg_n0 = gammaln(n0 + 1) - gammaln(n0 - r0 + 1)
    for k in ks:
        tt = k - c0  # positions available inside the first group
        # P(first hit within group position <= tt) = 1 - C(n0 - tt, r0) / C(n0, r0): as a product of
        # min(r0, tt) ratios when that is short (exact to rounding), else through lgamma
        rest = n0 - np.maximum(tt, 0.0)
        m = np.minimum(r0, np.maximum(tt, 0.0))
        short = (tt > 0) & (rest >= r0) & (m <= CMC_PRODUCT_TERMS)
        by_relevant = r0 <= tt
        ratio = np.ones(q)
        for i in range(int(m[short].max()) if short.any() else 0):
            factor = np.where(by_relevant, n0 - tt - i, n0 - r0 - i) / np.maximum(n0 - i, 1.0)  # > 0 where used
            ratio = np.where(short & (i < m), ratio * factor, ratio)
        log_ratio = gammaln(rest + 1) - gammaln(np.maximum(rest - r0, 0.0) + 1) - lg_n0
        p = np.where(short, 1.0 - ratio, 1.0 - np.exp(log_ratio))
        p = np.where(rest < r0, 1.0, p)
        p = np.where(tt <= 0, 0.0, p)
        cmc[k] = np.clip(p, 0.0, 1.0)

    # Last relevant item: the tie group containing relevant index R - 1.
    last = np.maximum(n_rel - 1, 0)[:, None]
    lo_l = np.take_along_axis(lo, last, axis=1)[:, 0]
    r_l = (n_rel - lo_l).astype(np.float64)
    c_l = (lo_l + np.take_along_axis(better, last, axis=1)[:, 0]).astype(np.float64)
    t_l = np.take_along_axis(tied, last, axis=1)[:, 0]
    r_total = n_rel.astype(np.float64)
    inp = r_total / (c_l + r_l)  # no non-relevant item tied with the last group
    for i in np.flatnonzero(t_l > 0):
        inp[i] = expected_inp(float(r_total[i]), float(c_l[i]), int(r_l[i]), int(r_l[i] + t_l[i]))
    return {"ap": ap, "first": first, "inp": inp, "cmc": cmc, "recall": recall, "tied": any_tie}
