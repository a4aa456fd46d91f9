"""Compiled counting for the ranking kernel: per query, how many items beat or tie each relevant score.

The ranking kernel needs, for every query row ``x`` and each of its
distinct relevant scores ``u_1 > ... > u_U``, the exact counts ``#{x > u_k}`` and ``#{x == u_k}``.
With Numba installed these are computed here in one call per block of rows, without sorting the
row, and AP, CMC@k, Recall@k and INP are computed from them in the same loop:

* few relevant items (``R <= SMALL_U``): they are sorted in place, and vectorised
  compare-and-count loops over the row, which stays in the CPU cache, count for two scores per
  pass (the first, for the lowest score, also checks that the row is finite);
* more: every item at least as high as the lowest relevant score, and every relevant score, is
  mapped to one of ``m`` equal-width *cells* spanning ``[u_U, u_1]`` by a monotone function;
  grouping by cell (a counting sort) both orders the relevant scores and leaves only the items
  sharing a cell with one of them to compare exactly. Monotone means ``cell(x) > cell(u)`` implies
  ``x > u`` and ``x == u`` implies ``cell(x) == cell(u)``, so the counts stay exact.

Without Numba (or with ``FP_RANK_NO_NUMBA=1``) the kernel falls back to its NumPy path (sort the
candidates, binary search); both give identical counts (``tests/test_ranking_compiled.py``).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from fp_rank.ranking.scalar import CMC_PRODUCT_TERMS

#: Distinct relevant scores up to which the compare-and-count loops beat the cell histogram.
SMALL_U = 16


_KERNEL: Any = None
_LOADED = False
_LOCK = threading.Lock()


def available() -> bool:
    """True when the compiled kernel can be used (Numba importable, not switched off)."""
    return load() is not None


def load() -> Callable[..., None] | None:
    """The compiled ``score_rows`` function, compiled (or read from Numba's cache) on first use.

    Thread-safe: concurrent first callers wait for the one load, so none of them takes the NumPy
    path while the kernel is still compiling (the two paths may differ in the last bit).
    """
    global _KERNEL, _LOADED
    if _LOADED:
        return _KERNEL
    with _LOCK:
        if not _LOADED:
            _KERNEL = _import_kernel()
            _LOADED = True
    return _KERNEL


def _import_kernel() -> Callable[..., None] | None:
    if os.environ.get("FP_RANK_NO_NUMBA", "").strip() not in ("", "0"):
        return None
    try:
        from fp_rank.ranking._numba_kernels import score_rows as kernel
    except ImportError:  # pragma: no cover - numba is a dependency; kept for platforms without wheels
        return None
    return kernel


def reset() -> None:
    """Forget the loaded kernel so the next :func:`load` re-reads ``FP_RANK_NO_NUMBA`` (tests)."""
    global _KERNEL, _LOADED
    with _LOCK:
        _KERNEL, _LOADED = None, False


def new_outputs(n_rows: int, n_ks: int) -> dict[str, np.ndarray]:
    """Arrays for :func:`score_rows` to fill: NaN metrics, False flags."""
    return {
        "ap": np.full(n_rows, np.nan), "first": np.full(n_rows, np.nan), "inp": np.full(n_rows, np.nan),
        "cmc": np.full((n_rows, n_ks), np.nan), "recall": np.full((n_rows, n_ks), np.nan),
        "tied": np.zeros(n_rows, dtype=np.bool_), "finite": np.zeros(n_rows, dtype=np.bool_),
    }


def score_rows(
    block: np.ndarray,
    order: np.ndarray,
    starts: np.ndarray,
    n_rel: np.ndarray,
    harmonic: np.ndarray,
    ks: list[int],
    out: dict[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """Per-row metrics of a float32/float64 block (see the module docstring).

    Args:
        block: ``(b, N)`` similarities.
        order, starts: the gallery positions grouped by identity and where each row's relevant
            ones start in ``order`` (see :class:`fp_rank.ranking.accumulate.GalleryIndex`).
        n_rel: ``(b,)`` relevant items per row (0: the row is only checked for finiteness).
        harmonic: harmonic numbers ``H_0 .. H_N``.
        ks: the ranks of CMC@k and Recall@k.
        out: arrays to fill, as made by :func:`new_outputs` (default: new ones).

    Returns:
        ``out``: ``ap``, ``first``, ``inp``, ``tied`` (one per row), ``cmc`` and ``recall``
        (``(b, len(ks))``) and ``finite`` (False: the row holds NaN or an infinity and was not
        scored; nor were the rows with ``n_rel == 0``).
    """
    kernel = load()
    if kernel is None:
        raise RuntimeError("the compiled ranking kernel is not available (Numba missing or FP_RANK_NO_NUMBA set)")
    if out is None:
        out = new_outputs(block.shape[0], len(ks))
    kernel(
        block, np.ascontiguousarray(order, dtype=np.int64), np.ascontiguousarray(starts, dtype=np.int64),
        np.ascontiguousarray(n_rel, dtype=np.int64), harmonic, np.asarray(ks, dtype=np.float64), out["ap"],
        out["first"], out["inp"], out["cmc"], out["recall"], out["tied"], out["finite"], SMALL_U, CMC_PRODUCT_TERMS,
    )
    return out
