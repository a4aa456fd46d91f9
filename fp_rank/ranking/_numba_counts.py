"""The counting loops of the compiled ranking kernel (:mod:`fp_rank.ranking._numba_kernels`).

Per query row ``x`` they count, exactly, how many items score above and tie with given scores:
vectorised compare-and-count loops for a few scores, and a monotone cell histogram for many
(:func:`order_by_cells`), which also puts the query's relevant scores in descending order without
a global sort. Counters are as wide as the scores (32-bit beside float32, 64-bit beside float64),
which is what lets LLVM vectorise the loops.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numba import int32, njit

from fp_rank.ranking import _numba_cache


def _probe() -> int:
    return 0


def _can_cache() -> bool:
    """Whether the kernel may use Numba's on-disk cache: keyed on all its files (see
    :mod:`fp_rank.ranking._numba_cache`), next to them or else in Numba's user cache folder."""
    if not _numba_cache.install():
        return False
    try:
        njit(cache=True)(_probe)
    except (RuntimeError, OSError):  # no folder writable (a read-only install, an unwritable home)
        return False
    return True


CACHED = _can_cache()  # False: compiled in every process instead

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
def cell(v: float, lo: float, hi: float, scale: float, top: float) -> int:
    """The cell of ``v`` among ``m = top + 1`` equal-width cells over ``[lo, hi]``; 0 below, ``m + 1`` above.

    Monotone in ``v``: a subtraction, a multiplication by a positive number, a clamp and the floor
    all preserve order (IEEE rounding is monotone), so ``cell(x) > cell(u)`` implies ``x > u`` and
    ``x == u`` implies ``cell(x) == cell(u)``. Written without branches, so loops over it vectorise.
    """
    c = int32(math.floor(min(max((v - lo) * scale, -1.0), top))) + int32(1)
    return int32(top) + int32(2) if v > hi else c


@jit
def order_by_cells(y: Any, rel: Any, lo: float, hi: float, m: int, buf: Any, items: Any, ranked: Any, u: Any,
                   slot: Any, g_start: Any, g_end: Any, gt: Any, eq: Any) -> int:
    """The relevant scores in descending order and, per distinct one, the exact counts over ``y``.

    ``y`` holds every item at least ``lo`` (the lowest relevant score), relevant ones included;
    ``rel`` the relevant scores (any order). Items are counted per cell, relevant scores grouped
    by cell (a counting sort, linear); cells are then walked from the top: every item of a higher
    cell is above a cell's relevant scores, of a lower cell below. A cell holding as many items as
    relevant scores holds only those (each relevant score is an item of ``y``), so its counts
    follow from the sorted run; only the items of the other cells holding relevant scores are
    gathered (a second, cheap pass) and compared with them.

    Args:
        buf: ``int64`` work arrays: ``buf[0:4]`` rows of ``m + 2`` (cell counts and starts of the
            items and of the relevant scores), ``buf[4]`` at least ``len(y)`` long (cells of the
            items), ``buf[5]`` at least ``len(rel)`` long (cells of the relevant scores).
        items, ranked: work arrays of the scores' dtype, at least ``len(y)`` and ``len(rel)`` long.

    Returns:
        ``nu``, the number of distinct relevant scores; ``u[:nu]`` (descending), ``gt``/``eq``
        (items above / tied, relevant ones included), ``g_start``/``g_end`` (each one's run in the
        sorted relevant scores) and ``slot`` (each sorted relevant score's distinct index) are filled;
        ``rel`` is left sorted, best first.
    """
    scale = m / (hi - lo)
    top = float(m - 1)
    n_items, r = y.shape[0], rel.shape[0]
    count, start, r_count, r_start, cell_of, r_cell = buf[0], buf[1], buf[2], buf[3], buf[4], buf[5]
    count[: m + 2] = 0
    r_count[: m + 2] = 0
    for j in range(n_items):
        cell_of[j] = cell(float(y[j]), lo, hi, scale, top)
    for j in range(n_items):
        count[cell_of[j]] += 1
    for p in range(r):
        r_cell[p] = cell(float(rel[p]), lo, hi, scale, top)
    for p in range(r):
        r_count[r_cell[p]] += 1
    acc, r_acc = 0, 0
    for c in range(m + 2):  # the runs of the mixed cells' items and of every cell's relevant scores
        start[c], r_start[c] = acc, r_acc
        acc += count[c] if count[c] != r_count[c] and r_count[c] else 0
        r_acc += r_count[c]
    for j in range(n_items):
        c = cell_of[j]
        if count[c] != r_count[c] and r_count[c]:
            items[start[c]] = y[j]
            start[c] += 1
    for p in range(r):
        c = r_cell[p]
        ranked[r_start[c]] = rel[p]
        r_start[c] += 1
    return _walk_cells(count, start, r_count, r_start, m, items, ranked, rel, u, slot, g_start, g_end, gt, eq)


@jit
def _walk_cells(count: Any, start: Any, r_count: Any, r_end: Any, m: int, items: Any, ranked: Any, rel: Any, u: Any,
                slot: Any, g_start: Any, g_end: Any, gt: Any, eq: Any) -> int:
    """The walk of :func:`order_by_cells`, from the top cell down (``r_end[c]``: the end of cell ``c``'s
    relevant scores in ``ranked``, ``start[c]`` of a mixed cell's items in ``items``)."""
    nu, out, above = 0, 0, 0  # above: the items of the cells above c
    for c in range(m + 1, -1, -1):
        k = r_count[c]
        if k == 0:
            above += count[c]
            continue
        a, b = r_end[c] - k, r_end[c]
        if k > 1:
            _sort_run(ranked, a, b)
        pure = count[c] == k
        first = start[c] - count[c]  # a mixed cell's items: items[first:start[c]]
        for q in range(a, b):
            v = ranked[q]
            if nu == 0 or v != u[nu - 1]:
                u[nu] = v
                g_start[nu] = out
                if pure:  # the cell's items are its relevant scores: those before q are above v
                    gt[nu], eq[nu] = above + (q - a), 0
                else:
                    n_gt, n_eq = 0, 0
                    for j in range(first, start[c]):
                        n_gt += items[j] > v
                        n_eq += items[j] == v
                    gt[nu], eq[nu] = above + n_gt, n_eq
                nu += 1
            eq[nu - 1] += pure
            slot[out] = nu - 1
            g_end[nu - 1] = out + 1
            rel[out] = v
            out += 1
        above += count[c]
    return nu


@jit
def _sort_run(values: Any, a: int, b: int) -> None:
    """Sort ``values[a:b]`` in place, largest first (insertion sort: runs of a cell are short)."""
    if b - a > 32:
        values[a:b] = np.sort(values[a:b])[::-1]
        return
    for i in range(a + 1, b):
        v = values[i]
        j = i - 1
        while j >= a and values[j] < v:
            values[j + 1] = values[j]
            j -= 1
        values[j + 1] = v
