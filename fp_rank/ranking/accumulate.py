"""Block by block, per-query metrics from a similarity matrix: the gallery index, the threads, and
the choice between the compiled kernel and the NumPy definition.

:class:`Accumulator` takes the ``(Q, N)`` similarities one block of queries at a time (memory is
bounded by the block), scores each block with the compiled kernel when it is available
(:mod:`fp_rank.ranking.compiled`), else with :mod:`fp_rank.ranking.numpy_path`, and returns a
:class:`~fp_rank.ranking.result.RankingResult`. Rows are scored in a pool of threads when the
block is big (the kernels release the GIL), so results never depend on the thread count.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from fp_rank.errors import InputError
from fp_rank.ranking import compiled
from fp_rank.ranking.chance import _harmonic_table, chance_average_precision
from fp_rank.ranking.numpy_path import PASS_ELEMENTS, count_block, metrics_from_counts
from fp_rank.ranking.result import RankingResult


class GalleryIndex:
    """Gallery positions grouped by identity code: a query's relevant items without a scan."""

    def __init__(self, g_codes: np.ndarray) -> None:
        self.order = np.argsort(g_codes, kind="stable")
        self.codes, self.starts, self.counts = np.unique(g_codes[self.order], return_index=True, return_counts=True)

    def lookup(self, q_codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Start (into ``order``) and count of the relevant items of each query code."""
        if len(self.codes) == 0:
            return np.zeros(len(q_codes), dtype=np.int64), np.zeros(len(q_codes), dtype=np.int64)
        pos = np.clip(np.searchsorted(self.codes, q_codes), 0, len(self.codes) - 1)
        found = self.codes[pos] == q_codes
        return np.where(found, self.starts[pos], 0), np.where(found, self.counts[pos], 0).astype(np.int64)


class Accumulator:
    """Collects per-query metrics block by block (memory bounded by the block)."""

    def __init__(self, q_codes: np.ndarray, g_codes: np.ndarray, query_ids: Any, ks: list[int], on_missing: str) -> None:
        n_q, n_g = len(q_codes), len(g_codes)
        self.q_codes = q_codes
        self.index = GalleryIndex(g_codes)
        self.starts, self.counts = self.index.lookup(q_codes)
        self.missing = self.counts == 0
        if self.missing.any() and on_missing == "error":
            labels = sorted({str(x) for x in np.asarray(query_ids)[self.missing]})
            raise InputError(
                f"{int(self.missing.sum())} queries have no gallery item of their identity (identities: "
                f"{labels[:10]}{' ...' if len(labels) > 10 else ''}); fix the labels or the gallery, or "
                "pass on_missing='skip' or 'zero'"
            )
        self.on_missing = on_missing
        self.ks = ks
        self.n_g = n_g
        self.harmonic = _harmonic_table(n_g)
        self.ap = np.full(n_q, np.nan)
        self.first = np.full(n_q, np.nan)
        self.inp = np.full(n_q, np.nan)
        self.cmc = {k: np.full(n_q, np.nan) for k in ks}
        self.recall = {k: np.full(n_q, np.nan) for k in ks}
        self.tied = np.zeros(n_q, dtype=bool)
        self.top1 = np.zeros(n_q, dtype=np.int64)

    def add(self, start: int, block: np.ndarray) -> None:
        """Score rows ``start .. start + len(block)`` of the similarity matrix.

        By the compiled kernel when it is available (float32/float64 blocks), else by the NumPy
        definition (:func:`~fp_rank.ranking.numpy_path.count_block`).
        """
        stop = start + len(block)
        args = (block, start, self.missing[start:stop], self.index.order, self.starts[start:stop],
                self.counts[start:stop])
        if block.dtype in (np.float32, np.float64) and block.shape[1] < 2**31 and compiled.available():
            top1, rows, out = _score_block_compiled(*args, harmonic=self.harmonic, ks=self.ks)
        else:
            found = count_block(*args, run_rows=_run_threads)
            top1, rows = found["top1"], found["rows"]
            if len(rows):
                out = metrics_from_counts(**found["counts"], harmonic=self.harmonic, ks=self.ks, n=self.n_g)
        self.top1[start:stop] = top1
        if len(rows) == 0:
            return
        sel = start + rows
        self.ap[sel] = out["ap"]
        self.first[sel] = out["first"]
        self.inp[sel] = out["inp"]
        self.tied[sel] = out["tied"]
        for k in self.ks:
            self.cmc[k][sel] = out["cmc"][k]
            self.recall[k][sel] = out["recall"][k]

    def result(self) -> RankingResult:
        missing, n_q, ks = self.missing, len(self.q_codes), self.ks
        scored = ~missing
        if self.on_missing == "zero":
            self.ap[missing] = 0.0
            self.inp[missing] = 0.0
            for k in ks:
                self.cmc[k][missing] = 0.0
                self.recall[k][missing] = 0.0
            scored = np.ones(n_q, dtype=bool)
        chance = np.full(n_q, np.nan)
        ok = self.counts > 0
        if ok.any():
            chance[ok] = chance_average_precision(self.counts[ok], self.n_g)
        if self.on_missing == "zero":
            chance[missing] = 0.0
        return RankingResult(
            ap=self.ap,
            first_hit_rank=self.first,
            inp=self.inp,
            cmc=self.cmc,
            chance_ap=chance,
            n_relevant=self.counts,
            n_gallery=self.n_g,
            tied=self.tied,
            top1=self.top1,
            scored=scored,
            missing=missing,
            on_missing=self.on_missing,
            recall=self.recall,
        )


#: Smallest number of similarities worth splitting across threads.
_THREAD_MIN_ELEMENTS = 1 << 20


def _scan_threads(n_rows: int, n_g: int) -> int:
    """Threads for scanning a block: :func:`cpu_threads`, at most 8."""
    if n_rows < 2 or n_rows * n_g < _THREAD_MIN_ELEMENTS:
        return 1
    return max(1, min(8, cpu_threads(), n_rows))


def cpu_threads() -> int:
    """The threads a computation may use here: ``OMP_NUM_THREADS`` when set (the user's setting,
    which torch follows too), else the cores this process may run on."""
    setting = os.environ.get("OMP_NUM_THREADS", "").strip()
    if setting.isascii() and setting.isdigit() and int(setting) > 0:
        return int(setting)
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def _scan_pool() -> ThreadPoolExecutor:
    """One pool of scanning threads per process, started on first use (threads idle otherwise)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(8, thread_name_prefix="fp-rank-rank")
        return _POOL


def _score_block_compiled(
    block: np.ndarray,
    start: int,
    missing: np.ndarray,
    order: np.ndarray,
    starts: np.ndarray,
    counts: np.ndarray,
    harmonic: np.ndarray,
    ks: list[int],
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """``top1``, the scored rows and their metrics, from :mod:`fp_rank.ranking.compiled` (same maths)."""
    n_rows, n_g = block.shape
    rows = np.flatnonzero(~missing)
    n_rel = np.where(missing, 0, counts)
    top1 = np.zeros(n_rows, dtype=np.int64)
    out = compiled.new_outputs(n_rows, len(ks))
    step = max(1, PASS_ELEMENTS // max(n_g, 1))

    def scan(first: int, last: int) -> int | None:
        for s0 in range(first, last, step):
            s1 = min(last, s0 + step)
            sb = np.ascontiguousarray(block[s0:s1])  # one compiled variant per dtype (a view when C-ordered)
            top1[s0:s1] = np.argmax(sb, axis=1)  # also reads the rows into the cache for the kernel
            compiled.score_rows(sb, order, starts[s0:s1], n_rel[s0:s1], harmonic, ks,
                                {name: value[s0:s1] for name, value in out.items()})
            finite = out["finite"][s0:s1]
            if not finite.all():
                return s0 + int(np.flatnonzero(~finite)[0])
        return None

    _run_threads(scan, n_rows, n_g, start)
    return top1, rows, {
        "ap": out["ap"][rows], "first": out["first"][rows], "inp": out["inp"][rows], "tied": out["tied"][rows],
        "cmc": {k: out["cmc"][rows, i] for i, k in enumerate(ks)},
        "recall": {k: out["recall"][rows, i] for i, k in enumerate(ks)},
    }


def _run_threads(scan: Any, n_rows: int, n_g: int, start: int) -> None:
    """Run ``scan(first, last)`` over contiguous row ranges, in threads when the block is big.

    Rows are independent and the kernels release the GIL, so results do not depend on it.

    Raises:
        InputError: a ``scan`` reported a row holding NaN or inf (the first such row is named).
    """
    n_threads = _scan_threads(n_rows, n_g)
    if n_threads > 1:
        edges = np.linspace(0, n_rows, n_threads + 1).astype(int)
        found = list(_scan_pool().map(scan, edges[:-1], edges[1:]))
    else:
        found = [scan(0, n_rows)]
    bad_found = [b for b in found if b is not None]
    if bad_found:
        bad = start + min(bad_found)
        raise InputError(f"similarity row {bad} holds NaN or inf; check the embeddings of query {bad}")
