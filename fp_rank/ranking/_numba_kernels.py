"""The compiled kernel behind :mod:`fp_rank.ranking.compiled` (imported, and so compiled, on first use).

Per query row it gathers the relevant scores, orders them and counts, exactly, the items above and
tied with each (:mod:`fp_rank.ranking._numba_counts`), then computes AP, CMC@k, Recall@k and INP
from the counts. The maths is that of :func:`fp_rank.ranking.numpy_path.metrics_from_counts`,
written per query instead of per array; the per-query functions of :mod:`fp_rank.ranking.scalar`
are compiled from the same source. Functions are defined at module level so that Numba's on-disk
cache keeps the machine code between processes.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from fp_rank.ranking._numba_counts import (
    _candidates,
    _gt_ge,
    _gt_ge_finite,
    _gt_ge_pair,
    _n_finite,
    _sort_run,
    jit,
    order_by_cells,
)
from fp_rank.ranking.scalar import expected_inp

#: The NumPy path's own function, compiled (one definition of the maths).
_expected_inp = jit(expected_inp)

#: Cells per distinct relevant score of the cell histogram (and their cap).
_CELLS_PER_SCORE = 2
_MAX_CELLS = 1 << 16


@jit
def _distinct(rel: Any, r: int, u: Any, slot: Any, g_start: Any, g_end: Any) -> int:
    """The distinct values of ``rel[:r]`` (sorted, best first) and each one's run; returns their number."""
    nu = 0
    for p in range(r):
        v = rel[p]
        if nu == 0 or v != u[nu - 1]:
            u[nu] = v
            g_start[nu] = p
            nu += 1
        slot[p] = nu - 1
        g_end[nu - 1] = p + 1
    return nu


@jit
def _compare_counts(y: Any, u: Any, nu: int, g: int, e: int, gt: Any, eq: Any) -> None:
    """``gt``/``eq`` of the ``nu`` distinct scores by compare-and-count loops, two scores per pass;
    ``g``/``e`` are the lowest score's counts, already taken."""
    gt[nu - 1] = g
    eq[nu - 1] = e - g
    k = 0
    while k + 1 < nu - 1:
        ga, ea, gb, eb = _gt_ge_pair(y, u[k], u[k + 1])
        gt[k], eq[k], gt[k + 1], eq[k + 1] = ga, ea - ga, gb, eb - gb
        k += 2
    if k < nu - 1:
        g2, e2 = _gt_ge(y, u[k])
        gt[k], eq[k] = g2, e2 - g2


@jit
def _ap_and_recall(r: int, slot: Any, g_start: Any, g_end: Any, gt: Any, eq: Any, harmonic: Any, n: int, ks: Any,
                   recall_row: Any) -> tuple[float, bool]:
    """AP (exact expected value under ties) and Recall@k of one query from its counts, and whether it had a tie.

    Per relevant item p (best first): its relevant tie group [lo, hi), the non-relevant items
    strictly above it and tied with it.
    """
    prec_sum = 0.0
    tie = False
    k_max = ks.max() if ks.shape[0] else 0.0
    recall_row[:] = 0.0
    for p in range(r):
        s = slot[p]
        lo, hi = g_start[s], g_end[s]
        above = gt[s] - lo
        tied_nr = eq[s] - (hi - lo)
        if tied_nr > 0:
            tie = True
            a, rg, c = float(lo), float(hi - lo), float(lo + above)
            group_n = rg + tied_nr
            h_diff = harmonic[min(max(lo + above + (hi - lo) + tied_nr, 0), n)] - harmonic[min(max(lo + above, 0), n)]
            prec_sum += ((a + 1) * h_diff + (rg - 1) / max(group_n - 1.0, 1.0) * (group_n - (c + 1) * h_diff)) / max(
                group_n, 1.0)
        else:
            prec_sum += (p + 1.0) / (p + 1.0 + above)
        before = float(lo + above)
        if before < k_max:  # ranked within the largest k with some probability
            size = max(float(hi - lo + tied_nr), 1.0)
            for q in range(ks.shape[0]):
                recall_row[q] += min(max(ks[q] - before, 0.0), size) / size
    for q in range(ks.shape[0]):
        recall_row[q] /= r
    return prec_sum / r, tie


@jit
def _first_hit_and_cmc(g_end0: int, gt0: int, eq0: int, ks: Any, cmc_row: Any, cmc_terms: int) -> float:
    """Expected rank of the first relevant item (the tie group at the top) and CMC@k."""
    r0 = float(g_end0)
    c0 = float(gt0)
    n0 = r0 + float(eq0 - g_end0)
    lg_n0 = math.lgamma(n0 + 1) - math.lgamma(n0 - r0 + 1)
    for q in range(ks.shape[0]):
        tt = ks[q] - c0  # positions of the top k left for the first group
        rest = n0 - max(tt, 0.0)
        if tt <= 0:
            prob = 0.0
        elif rest < r0:
            prob = 1.0
        elif min(r0, tt) <= cmc_terms:  # 1 - C(n0 - tt, r0) / C(n0, r0) as min(r0, tt) ratios
            ratio = 1.0
            if r0 <= tt:
                for j in range(int(r0)):
                    ratio = ratio * ((n0 - tt - j) / (n0 - j))
            else:
                for j in range(int(tt)):
                    ratio = ratio * ((n0 - r0 - j) / (n0 - j))
            prob = 1.0 - ratio
        else:  # the same through lgamma
            prob = 1.0 - math.exp(math.lgamma(rest + 1) - math.lgamma(max(rest - r0, 0.0) + 1) - lg_n0)
        cmc_row[q] = min(max(prob, 0.0), 1.0)
    return c0 + (n0 + 1) / (r0 + 1)


@jit
def _inp(r: int, slot: Any, g_start: Any, g_end: Any, gt: Any, eq: Any) -> float:
    """Expected R / rank of the last relevant item (the tie group holding relevant index r - 1)."""
    s_l = slot[r - 1]
    lo_l = g_start[s_l]
    r_l = r - lo_l
    c_l = float(gt[s_l])
    t_l = eq[s_l] - (g_end[s_l] - lo_l)
    if t_l > 0:
        return _expected_inp(float(r), c_l, r_l, r_l + t_l)
    return r / (c_l + r_l)


@jit
def _order_and_count(x: Any, rel: Any, r: int, g: int, e: int, small_u: int, w: Any, u: Any, slot: Any,
                     g_start: Any, g_end: Any, gt: Any, eq: Any) -> int:
    """Sort the relevant scores ``rel[:r]`` (best first, in place) and count each distinct one's items
    above and tied over the row ``x``; returns the number of distinct relevant scores.

    ``w`` holds the work arrays: ``(cand, items, ranked, buf)``. Items below the lowest relevant
    score change no count: unless nearly every item scores at least as high, only these candidates
    are read further.
    """
    cand, items, ranked, buf = w
    n = x.shape[0]
    lowest, highest = rel[0], rel[0]
    for p in range(1, r):
        lowest, highest = min(lowest, rel[p]), max(highest, rel[p])
    y = x if e * 4 > n * 3 else cand[: _candidates(x, lowest, cand)]
    span = float(highest) - float(lowest)
    m = min(max(64, _CELLS_PER_SCORE * r), _MAX_CELLS)
    # the cells need a finite, positive scale (span overflows near +-1e308, m / span near 1e-308)
    if r > small_u and span > 0.0 and span < np.inf and m / span < np.inf:
        return order_by_cells(y, rel[:r], float(lowest), float(highest), m, buf, items, ranked[:r], u, slot,
                              g_start, g_end, gt, eq)
    _sort_run(rel, 0, r)
    nu = _distinct(rel, r, u, slot, g_start, g_end)
    _compare_counts(y, u, nu, g, e, gt, eq)
    return nu


@jit
def score_rows(block: Any, order: Any, starts: Any, n_rel: Any, harmonic: Any, ks: Any, ap: Any, first_hit: Any,
               inp: Any, cmc: Any, recall: Any, any_tie: Any, finite_ok: Any, small_u: int, cmc_terms: int) -> None:
    """AP, first-hit rank, INP, CMC@k, Recall@k and the tie flag of every row with relevant items.

    Row ``i``'s relevant items are the gallery positions ``order[starts[i] : starts[i] + n_rel[i]]``.
    Rows with ``n_rel == 0`` are only checked for finiteness; rows that are not finite are left
    unscored.
    """
    b, n = block.shape
    r_cap = max(int(n_rel.max()) if b else 1, 1)
    rel = np.empty(r_cap, dtype=block.dtype)
    u = np.empty(r_cap, dtype=block.dtype)
    slot, g_start, g_end = np.empty(r_cap, np.int64), np.empty(r_cap, np.int64), np.empty(r_cap, np.int64)
    gt, eq = np.empty(r_cap, np.int64), np.empty(r_cap, np.int64)
    m_cap = min(max(64, _CELLS_PER_SCORE * r_cap), _MAX_CELLS) + 2
    w = (np.empty(n, dtype=block.dtype), np.empty(n, dtype=block.dtype), np.empty(r_cap, dtype=block.dtype),
         np.empty((6, max(m_cap, n)), dtype=np.int64))
    for i in range(b):
        x = block[i]
        r = n_rel[i]
        if r == 0:
            finite_ok[i] = _n_finite(x) == n
            continue
        for p in range(r):
            rel[p] = x[order[starts[i] + p]]
        lowest = rel[0]
        for p in range(1, r):
            lowest = min(lowest, rel[p])
        g, e, fin = _gt_ge_finite(x, lowest)
        finite_ok[i] = fin == n
        if fin != n:
            continue
        _order_and_count(x, rel, r, g, e, small_u, w, u, slot, g_start, g_end, gt, eq)
        ap[i], any_tie[i] = _ap_and_recall(r, slot, g_start, g_end, gt, eq, harmonic, n, ks, recall[i])
        first_hit[i] = _first_hit_and_cmc(g_end[0], gt[0], eq[0], ks, cmc[i], cmc_terms)
        inp[i] = _inp(r, slot, g_start, g_end, gt, eq)
