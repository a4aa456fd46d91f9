"""The Numba functions behind :mod:`fp_rank.ranking.compiled` (imported, and so compiled, on first use).

They are defined at module level so that Numba's on-disk cache (``cache=True``) keeps the machine
code between processes. The maths of :func:`score_rows` is that of
:func:`fp_rank.ranking.numpy_path.metrics_from_counts`, written per query instead of per array;
the per-query functions of :mod:`fp_rank.ranking.scalar` are compiled from the same source.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numba import int32, njit

from fp_rank.ranking.scalar import expected_inp


def _probe() -> int:
    return 0


try:  # Numba caches next to this file, else in its user cache folder; with neither writable it refuses
    njit(cache=True)(_probe)
    CACHED = True
except RuntimeError:  # (a read-only install with an unwritable home): compile in every process instead
    CACHED = False

jit = njit(nogil=True, cache=CACHED)

#: Items per chunk when copying out the candidates (a chunk without one is skipped after one check;
#: 64 measured fastest of 16, 32, 64 and 128 at every hit rate tried, in both dtypes).
_CHUNK = 64


@jit
def _gt_ge_finite(x: Any, u: Any) -> tuple[int, int, int]:
    """``#{x > u}``, ``#{x >= u}`` and the number of finite items, in one vectorised loop (counters
    as wide as the scores: 32-bit beside float32, 64-bit beside float64)."""
    if x.itemsize == 8:
        return _gt_ge_finite_wide(x, u)
    return _gt_ge_finite_narrow(x, u)


@jit
def _gt_ge_finite_wide(x: Any, u: Any) -> tuple[int, int, int]:
    gt = 0
    ge = 0
    fin = 0
    inf = np.inf
    for j in range(x.shape[0]):
        v = x[j]
        gt += v > u
        ge += v >= u
        fin += abs(v) < inf
    return gt, ge, fin


@jit
def _gt_ge_finite_narrow(x: Any, u: Any) -> tuple[int, int, int]:
    gt = int32(0)
    ge = int32(0)
    fin = int32(0)
    inf = np.inf
    for j in range(x.shape[0]):
        v = x[j]
        gt = int32(gt + int32(v > u))
        ge = int32(ge + int32(v >= u))
        fin = int32(fin + int32(abs(v) < inf))
    return gt, ge, fin


@jit
def _gt_ge_narrow(x: Any, u: Any) -> tuple[int, int]:
    gt = int32(0)
    ge = int32(0)
    for j in range(x.shape[0]):
        v = x[j]
        gt = int32(gt + int32(v > u))
        ge = int32(ge + int32(v >= u))
    return gt, ge


@jit
def _gt_ge_wide(x: Any, u: Any) -> tuple[int, int]:
    gt = 0
    ge = 0
    for j in range(x.shape[0]):
        v = x[j]
        gt += v > u
        ge += v >= u
    return gt, ge


@jit
def _gt_ge(x: Any, u: Any) -> tuple[int, int]:
    """``#{x > u}`` and ``#{x >= u}``; 32-bit counters vectorise best beside float32, 64-bit beside float64."""
    if x.itemsize == 8:
        return _gt_ge_wide(x, u)
    return _gt_ge_narrow(x, u)


@jit
def _gt_ge_pair_narrow(x: Any, a: Any, b: Any) -> tuple[int, int, int, int]:
    ga = int32(0)
    ea = int32(0)
    gb = int32(0)
    eb = int32(0)
    for j in range(x.shape[0]):
        v = x[j]
        ga = int32(ga + int32(v > a))
        ea = int32(ea + int32(v >= a))
        gb = int32(gb + int32(v > b))
        eb = int32(eb + int32(v >= b))
    return ga, ea, gb, eb


@jit
def _gt_ge_pair_wide(x: Any, a: Any, b: Any) -> tuple[int, int, int, int]:
    ga = 0
    ea = 0
    gb = 0
    eb = 0
    for j in range(x.shape[0]):
        v = x[j]
        ga += v > a
        ea += v >= a
        gb += v > b
        eb += v >= b
    return ga, ea, gb, eb


@jit
def _gt_ge_pair(x: Any, a: Any, b: Any) -> tuple[int, int, int, int]:
    """:func:`_gt_ge` for two scores in one pass over ``x`` (half the reads from the cache)."""
    if x.itemsize == 8:
        return _gt_ge_pair_wide(x, a, b)
    return _gt_ge_pair_narrow(x, a, b)


@jit
def _n_finite(x: Any) -> int:
    """The number of finite items (counters as wide as the scores)."""
    if x.itemsize == 8:
        return _n_finite_wide(x)
    return _n_finite_narrow(x)


@jit
def _n_finite_wide(x: Any) -> int:
    fin = 0
    inf = np.inf
    for j in range(x.shape[0]):
        fin += abs(x[j]) < inf
    return fin


@jit
def _n_finite_narrow(x: Any) -> int:
    fin = int32(0)
    inf = np.inf
    for j in range(x.shape[0]):
        fin = int32(fin + int32(abs(x[j]) < inf))
    return fin


@jit
def _candidates(x: Any, lo: Any, out: Any) -> int:
    """Copy the items scoring at least ``lo`` into ``out`` (in order); returns how many."""
    n = x.shape[0]
    k = 0
    j = 0
    while j + _CHUNK <= n:
        hits = int32(0)
        for m in range(_CHUNK):
            hits = int32(hits + int32(x[j + m] >= lo))
        if hits > 0:
            for m in range(_CHUNK):
                v = x[j + m]
                out[k] = v
                k += 1 if v >= lo else 0
        j += _CHUNK
    while j < n:
        v = x[j]
        out[k] = v
        k += 1 if v >= lo else 0
        j += 1
    return k


@jit
def _cell(v: float, lo: float, scale: float, top: float) -> int:
    # Monotone in v: a subtraction, a multiplication by a positive number, a minimum and the
    # truncation of a non-negative number all preserve order (IEEE rounding is monotone).
    return max(0, min(int(min((v - lo) * scale, top)), int(top))) + 1


@jit
def _count_cells(
    x: Any, u: Any, nu: int, gt: Any, eq: Any, cells: Any, work: Any, hist: Any, first: Any, last: Any
) -> None:
    """Exact ``gt``/``eq`` of the ``nu`` distinct descending scores ``u`` via a cell histogram.

    Cell 0 holds the items below ``u[nu - 1]``, cell ``m + 1`` those above ``u[0]``; only the
    items that share a cell with one of the ``u`` are compared with them one by one.
    """
    lo = float(u[nu - 1])
    hi = float(u[0])
    m = hist.shape[0] - 2
    scale = m / (hi - lo)
    top = float(m - 1)
    n = x.shape[0]
    for c in range(m + 2):
        hist[c] = 0
        first[c] = -1
    for k in range(nu):
        c = _cell(float(u[k]), lo, scale, top)
        if first[c] < 0:
            first[c] = k
        last[c] = k + 1
    for k in range(nu):
        gt[k] = 0
        eq[k] = 0
    for j in range(n):  # vectorised: the cell of every item
        v = float(x[j])
        c = int32(max(min((v - lo) * scale, top), 0.0)) + int32(1)
        c = int32(0) if v < lo else c
        cells[j] = int32(m + 1) if v > hi else c
    nb = 0
    for j in range(n):
        c = cells[j]
        hist[c] += 1
        if first[c] >= 0:
            work[nb] = j
            nb += 1
    run = 0
    for c in range(m + 1, -1, -1):  # hist[c] becomes the number of items in the cells above c
        h = hist[c]
        hist[c] = run
        run += h
    for i in range(nb):
        v = x[work[i]]
        c = cells[work[i]]
        for k in range(first[c], last[c]):
            if v > u[k]:
                gt[k] += 1
            elif v == u[k]:
                eq[k] += 1
    for k in range(nu):
        gt[k] += hist[_cell(float(u[k]), lo, scale, top)]


#: The NumPy path's own function, compiled (one definition of the maths).
_expected_inp = jit(expected_inp)


@jit
def score_rows(block: Any, rel: Any, n_rel: Any, harmonic: Any, ks: Any, ap: Any, first_hit: Any, inp: Any,
               cmc: Any, recall: Any, any_tie: Any, finite_ok: Any, small_u: int, cmc_terms: int) -> None:
    """AP, first-hit rank, INP, CMC@k, Recall@k and the tie flag of every row with relevant items.

    ``rel[i, :n_rel[i]]`` are row ``i``'s relevant scores, best first. Rows with ``n_rel == 0``
    are only checked for finiteness; rows that are not finite are left unscored.
    """
    b, n = block.shape
    r_cap = max(rel.shape[1], 1)
    u = np.empty(r_cap, dtype=block.dtype)
    slot = np.empty(r_cap, dtype=np.int64)
    g_start = np.empty(r_cap, dtype=np.int64)
    g_end = np.empty(r_cap, dtype=np.int64)
    gt = np.empty(r_cap, dtype=np.int64)
    eq = np.empty(r_cap, dtype=np.int64)
    cand = np.empty(n, dtype=block.dtype)
    work = np.empty(n, dtype=np.int64)
    cells = np.empty(n, dtype=np.int32)
    m_cap = 0
    hist = np.empty(2, dtype=np.int64)
    c_first = np.empty(2, dtype=np.int64)
    c_last = np.empty(2, dtype=np.int64)
    n_k = ks.shape[0]
    k_max = ks.max() if n_k else 0.0
    for i in range(b):
        x = block[i]
        r = n_rel[i]
        if r == 0:
            finite_ok[i] = _n_finite(x) == n
            continue
        nu = 0
        for p in range(r):  # distinct relevant scores, descending, and each one's relevant tie group
            v = rel[i, p]
            if nu == 0 or v != u[nu - 1]:
                u[nu] = v
                g_start[nu] = p
                nu += 1
            slot[p] = nu - 1
            g_end[nu - 1] = p + 1
        lowest = u[nu - 1]
        g, e, fin = _gt_ge_finite(x, lowest)
        finite_ok[i] = fin == n
        if fin != n:
            continue
        # Items below the lowest relevant score change no count: unless nearly every item scores
        # at least as high, only these candidates are compared further.
        y = x
        if e * 4 <= n * 3:
            y = cand[: _candidates(x, lowest, cand)]
        m = min(max(64, 4 * nu), 1 << 16)
        span = float(u[0]) - float(u[nu - 1])
        # the cells need a finite, positive scale (span overflows near +-1e308, m / span near 1e-308)
        cells_ok = nu > small_u and span > 0.0 and span < np.inf and m / span < np.inf
        if not cells_ok:
            gt[nu - 1] = g
            eq[nu - 1] = e - g
            k = 0
            while k + 1 < nu - 1:  # two scores per pass
                ga, ea, gb, eb = _gt_ge_pair(y, u[k], u[k + 1])
                gt[k] = ga
                eq[k] = ea - ga
                gt[k + 1] = gb
                eq[k + 1] = eb - gb
                k += 2
            if k < nu - 1:
                g2, e2 = _gt_ge(y, u[k])
                gt[k] = g2
                eq[k] = e2 - g2
        else:
            if m > m_cap:
                m_cap = m
                hist = np.empty(m_cap + 2, dtype=np.int64)
                c_first = np.empty(m_cap + 2, dtype=np.int64)
                c_last = np.empty(m_cap + 2, dtype=np.int64)
            _count_cells(y, u, nu, gt, eq, cells, work, hist[: m + 2], c_first[: m + 2], c_last[: m + 2])

        # Metrics from the counts. Per relevant item p (sorted best first): its relevant tie group
        # [lo, hi), the non-relevant items strictly above it (above) and tied with it (tied_nr).
        prec_sum = 0.0
        tie = False
        for q in range(n_k):
            recall[i, q] = 0.0
        for p in range(r):
            s = slot[p]
            lo = g_start[s]
            hi = g_end[s]
            above = gt[s] - lo
            tied_nr = eq[s] - (hi - lo)
            if tied_nr > 0:
                tie = True
                a = float(lo)
                rg = float(hi - lo)
                c = float(lo + above)
                group_n = rg + tied_nr
                c_i = min(max(lo + above, 0), n)
                n_i = min(max(lo + above + (hi - lo) + tied_nr, 0), n)
                h_diff = harmonic[n_i] - harmonic[c_i]
                denom = max(group_n - 1.0, 1.0)
                prec_sum += ((a + 1) * h_diff + (rg - 1) / denom * (group_n - (c + 1) * h_diff)) / max(group_n, 1.0)
            else:
                prec_sum += (p + 1.0) / (p + 1.0 + above)
            before = float(lo + above)
            if before < k_max:  # ranked within the largest k with some probability
                size = max(float(hi - lo + tied_nr), 1.0)
                for q in range(n_k):
                    recall[i, q] += min(max(ks[q] - before, 0.0), size) / size
        ap[i] = prec_sum / r
        for q in range(n_k):
            recall[i, q] /= r
        any_tie[i] = tie

        # First relevant item: the tie group at lo = 0.
        r0 = float(g_end[0])
        c0 = float(gt[0])
        n0 = r0 + float(eq[0] - g_end[0])
        first_hit[i] = c0 + (n0 + 1) / (r0 + 1)
        lg_n0 = math.lgamma(n0 + 1) - math.lgamma(n0 - r0 + 1)
        for q in range(n_k):
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
            cmc[i, q] = min(max(prob, 0.0), 1.0)

        # Last relevant item: the tie group holding relevant index r - 1.
        s_l = slot[r - 1]
        lo_l = g_start[s_l]
        r_l = r - lo_l
        c_l = float(lo_l + gt[s_l] - lo_l)
        t_l = eq[s_l] - (g_end[s_l] - lo_l)
        if t_l > 0:
            inp[i] = _expected_inp(float(r), c_l, r_l, r_l + t_l)
        else:
            inp[i] = r / (c_l + r_l)
