"""The ranking kernel behind :func:`fp_rank.rank_metrics`: exact, tie-aware counts per query.

AP, CMC, Recall and INP need, for each relevant score of a query, how many items score above it
and how many tie with it. Three counters give the same numbers: the compiled one
(:func:`_score_block_compiled`, Numba, which also computes the metrics), the NumPy fallback
(:func:`_count_block`: only the items scoring at least as high as the lowest relevant item are
sorted, each relevant score is located among them by binary search) and the device path for
GPU tensors (:func:`_count_block_torch`). :class:`RankingResult` holds the per-query results.
"""

from __future__ import annotations

import math
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from fp_rank.errors import InputError
from fp_rank.ranking import compiled
from fp_rank.ranking.chance import _harmonic_table, chance_average_precision


@dataclass
class RankingResult:
    """Per-query retrieval metrics for one block of queries against one gallery.

    All arrays have one entry per query. Queries without any relevant gallery item get NaN
    (``on_missing="skip"``) or 0 (``on_missing="zero"``) and ``scored=False`` / ``True``.
    """

    ap: np.ndarray
    first_hit_rank: np.ndarray
    inp: np.ndarray
    cmc: dict[int, np.ndarray]
    chance_ap: np.ndarray
    n_relevant: np.ndarray
    n_gallery: int
    tied: np.ndarray
    top1: np.ndarray
    scored: np.ndarray
    missing: np.ndarray
    on_missing: str = "error"
    extras: dict[str, Any] = field(default_factory=dict)
    #: k -> expected share of the query's relevant items ranked within the top k (Recall@k).
    recall: dict[int, np.ndarray] = field(default_factory=dict)

    @property
    def map(self) -> float:
        """Mean AP over the scored queries (NaN when none)."""
        return _nanmean(self.ap[self.scored])

    @property
    def minp(self) -> float:
        """Mean INP over the scored queries."""
        return _nanmean(self.inp[self.scored])

    @property
    def chance_map(self) -> float:
        """Mean chance-level AP over the scored queries."""
        return _nanmean(self.chance_ap[self.scored])

    def recall_at(self, k: int) -> float:
        """Mean expected share of relevant items within the top ``k``."""
        if k not in self.recall:
            raise InputError(f"Recall@{k} was not computed; computed ks: {sorted(self.recall)}")
        return _nanmean(self.recall[k][self.scored])

    def cmc_at(self, k: int) -> float:
        """Mean probability that the first hit is within the top ``k``."""
        if k not in self.cmc:
            raise InputError(f"CMC@{k} was not computed; computed ks: {sorted(self.cmc)}")
        return _nanmean(self.cmc[k][self.scored])

    @property
    def n_tied(self) -> int:
        """Queries whose ranking had a relevant item tied with a non-relevant one."""
        return int(self.tied[self.scored].sum())

    @property
    def n_missing(self) -> int:
        """Queries whose identity had no relevant gallery item."""
        return int(self.missing.sum())


def _nanmean(x: np.ndarray) -> float:
    return float(np.mean(x)) if x.size else float("nan")


class _GalleryIndex:
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


class _Accumulator:
    """Collects per-query metrics block by block (memory bounded by the block)."""

    def __init__(self, q_codes: np.ndarray, g_codes: np.ndarray, query_ids: Any, ks: list[int], on_missing: str) -> None:
        n_q, n_g = len(q_codes), len(g_codes)
        self.q_codes = q_codes
        self.index = _GalleryIndex(g_codes)
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

    def add(self, start: int, block: np.ndarray | torch.Tensor) -> None:
        """Score rows ``start .. start + len(block)`` of the similarity matrix.

        A tensor is counted on its own device (:func:`_count_block_torch`); an array by the
        compiled kernel when it is available, else by NumPy (:func:`_count_block`).
        """
        stop = start + len(block)
        args = (block, start, self.missing[start:stop], self.index.order, self.starts[start:stop],
                self.counts[start:stop])
        if isinstance(block, torch.Tensor):
            found = _count_block_torch(*args)
            top1, rows = found["top1"], found["rows"]
            if len(rows):
                out = _metrics_from_counts(**found["counts"], harmonic=self.harmonic, ks=self.ks, n=self.n_g)
        elif block.dtype in (np.float32, np.float64) and block.shape[1] < 2**31 and compiled.available():
            top1, rows, out = _score_block_compiled(*args, harmonic=self.harmonic, ks=self.ks)
        else:
            found = _count_block(*args)
            top1, rows = found["top1"], found["rows"]
            if len(rows):
                out = _metrics_from_counts(**found["counts"], harmonic=self.harmonic, ks=self.ks, n=self.n_g)
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
    """Threads for scanning a block: torch's intra-op thread count (the user's setting), at most 8."""
    if n_rows < 2 or n_rows * n_g < _THREAD_MIN_ELEMENTS:
        return 1
    return max(1, min(8, torch.get_num_threads(), n_rows))


_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def _scan_pool() -> ThreadPoolExecutor:
    """One pool of scanning threads per process, started on first use (threads idle otherwise)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(8, thread_name_prefix="fp-rank-rank")
        return _POOL


#: Similarities compared per pass: small enough to stay in the CPU's L2 cache between the
#: finiteness check and the candidate comparison (one read from memory per similarity).
_PASS_ELEMENTS = 1 << 18


def _relevant_positions(
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


def _relevant_scores(
    block: np.ndarray, rows: np.ndarray, order: np.ndarray, starts: np.ndarray, counts: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``(b, r_max)`` relevant similarities of each row, best first (``-inf`` padding), and the valid mask."""
    take, valid = _relevant_positions(rows, order, starts, counts)
    rel = np.where(valid, np.take_along_axis(block, take, axis=1), -np.inf)
    return -np.sort(-rel, axis=1), valid  # best first; padding (-inf) last


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
    step = max(1, _PASS_ELEMENTS // max(n_g, 1))

    def scan(first: int, last: int) -> int | None:
        rel, _ = _relevant_scores(block[first:last], np.flatnonzero(n_rel[first:last]), order, starts[first:last],
                                  n_rel[first:last])
        for s0 in range(first, last, step):
            s1 = min(last, s0 + step)
            sb = np.ascontiguousarray(block[s0:s1])  # one compiled variant per dtype (a view when C-ordered)
            top1[s0:s1] = np.argmax(sb, axis=1)  # also reads the rows into the cache for the kernel
            compiled.score_rows(sb, rel[s0 - first : s1 - first], n_rel[s0:s1], harmonic, ks,
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


def _count_block(
    block: np.ndarray,
    start: int,
    missing: np.ndarray,
    order: np.ndarray,
    starts: np.ndarray,
    counts: np.ndarray,
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
        order, starts, counts: the relevant gallery items of each query (see ``_GalleryIndex``).

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
    rel, valid = _relevant_scores(block, rows, order, starts, counts)
    r_max = rel.shape[1]
    worst = rel[np.arange(n_rows), np.maximum(n_rel, 1) - 1]
    better = np.zeros((n_rows, r_max), dtype=np.int64)
    tied = np.zeros((n_rows, r_max), dtype=np.int64)
    step = max(1, _PASS_ELEMENTS // max(n_g, 1))

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

    _run_threads(scan, n_rows, n_g, start)  # NumPy releases the GIL in comparisons, reductions and sorts
    return {"top1": top1, "rows": rows, "counts": _finish_counts(rel[rows], valid[rows], better[rows], tied[rows],
                                                                 n_rel[rows])}


def _finish_counts(
    rel: np.ndarray, valid: np.ndarray, better: np.ndarray, tied: np.ndarray, n_rel: np.ndarray
) -> dict[str, np.ndarray]:
    """From counts over every item to counts over the non-relevant ones, plus the relevant tie groups.

    ``better``/``tied`` count all items scoring above / equal to each relevant score (``rel``,
    best first, ``valid`` marking the real entries); the result is what
    :func:`_metrics_from_counts` takes.
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


#: Largest relevant count per query for which the device path compares instead of sorting rows.
_TORCH_COMPARE_MAX_R = 32
#: Booleans materialised at once by the device path's comparisons.
_TORCH_COMPARE_ELEMENTS = 1 << 26


def _count_block_torch(
    block: torch.Tensor,
    start: int,
    missing: np.ndarray,
    order: np.ndarray,
    starts: np.ndarray,
    counts: np.ndarray,
) -> dict[str, Any]:
    """:func:`_count_block` for a tensor on its own device (a GPU): the same exact counts.

    The similarities never leave the device; only the ``(b, R)`` counts come back. With up to
    ``_TORCH_COMPARE_MAX_R`` relevant items the items are compared with every relevant score
    (chunks of rows bound the booleans held), otherwise each row is sorted once and the relevant
    scores are located in it by ``torch.searchsorted`` (both sides, so ties are counted exactly).
    """
    n_rows, n_g = block.shape
    dev = block.device
    finite = torch.isfinite(block).all(dim=1)
    if not bool(finite.all()):
        bad = start + int(torch.nonzero(~finite)[0, 0])
        raise InputError(f"similarity row {bad} holds NaN or inf; check the embeddings of query {bad}")
    top1 = block.argmax(dim=1).cpu().numpy().astype(np.int64)
    rows = np.flatnonzero(~missing)
    if len(rows) == 0:
        return {"top1": top1, "rows": rows, "counts": {}}
    take, valid = _relevant_positions(np.arange(len(rows)), order, starts[rows], counts[rows])
    r_max = take.shape[1]
    sub = block[torch.from_numpy(rows).to(dev)]
    rel_t = torch.gather(sub, 1, torch.from_numpy(take).to(dev))
    rel_t = torch.where(torch.from_numpy(valid).to(dev), rel_t, torch.tensor(-torch.inf, dtype=sub.dtype, device=dev))
    rel_t = torch.sort(rel_t, dim=1, descending=True).values
    if r_max <= _TORCH_COMPARE_MAX_R:
        gt_parts, ge_parts = [], []
        step = max(1, _TORCH_COMPARE_ELEMENTS // max(n_g * r_max, 1))
        for s0 in range(0, len(rows), step):
            x = sub[s0 : s0 + step, :, None]
            t = rel_t[s0 : s0 + step, None, :]
            gt_parts.append((x > t).sum(dim=1))
            ge_parts.append((x >= t).sum(dim=1))
        gt, ge = torch.cat(gt_parts), torch.cat(ge_parts)
    else:
        ascending = torch.sort(sub, dim=1).values
        t_asc = torch.flip(rel_t, dims=(1,)).contiguous()
        le = torch.flip(torch.searchsorted(ascending, t_asc, right=True), dims=(1,))
        lt = torch.flip(torch.searchsorted(ascending, t_asc, right=False), dims=(1,))
        gt, ge = n_g - le, n_g - lt
    better = gt.cpu().numpy().astype(np.int64)
    tied = (ge - gt).cpu().numpy().astype(np.int64)
    rel = rel_t.cpu().numpy()
    return {"top1": top1, "rows": rows, "counts": _finish_counts(rel, valid, better, tied, counts[rows])}


def _metrics_from_counts(
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
    r0_t, n0_t = torch.from_numpy(r0), torch.from_numpy(n0)
    lg_n0 = torch.lgamma(n0_t + 1) - torch.lgamma(n0_t - r0_t + 1)
    for k in ks:
        tt = k - c0  # positions available inside the first group
        # P(first hit within group position <= tt) = 1 - C(n0 - tt, r0) / C(n0, r0): as a product of
        # min(r0, tt) ratios when that is short (exact to rounding), else through lgamma
        rest = n0 - np.maximum(tt, 0.0)
        m = np.minimum(r0, np.maximum(tt, 0.0))
        short = (tt > 0) & (rest >= r0) & (m <= compiled.CMC_PRODUCT_TERMS)
        by_relevant = r0 <= tt
        ratio = np.ones(q)
        for i in range(int(m[short].max()) if short.any() else 0):
            factor = np.where(by_relevant, n0 - tt - i, n0 - r0 - i) / np.maximum(n0 - i, 1.0)  # > 0 where used
            ratio = np.where(short & (i < m), ratio * factor, ratio)
        log_ratio = torch.lgamma(torch.from_numpy(rest) + 1) - torch.lgamma(
            torch.clamp(torch.from_numpy(rest) - r0_t, min=0.0) + 1) - lg_n0
        p = np.where(short, 1.0 - ratio, 1.0 - np.exp(log_ratio.numpy()))
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
        inp[i] = _expected_inp(float(r_total[i]), float(c_l[i]), int(r_l[i]), int(r_l[i] + t_l[i]))
    return {"ap": ap, "first": first, "inp": inp, "cmc": cmc, "recall": recall, "tied": any_tie}


def _expected_inp(r_total: float, before: float, r_group: int, n_group: int) -> float:
    """E[R / rank_last] when the last ``r_group`` relevant items share a tie group of ``n_group``."""
    m = np.arange(r_group, n_group + 1, dtype=np.float64)
    # P(max position == m) = C(m-1, r-1) / C(n, r)
    log_p = (
        _lgamma(m) - _lgamma(np.full_like(m, r_group)) - _lgamma(m - r_group + 1)
        - (math.lgamma(n_group + 1) - math.lgamma(r_group + 1) - math.lgamma(n_group - r_group + 1))
    )
    p = np.exp(log_p)
    p /= p.sum()
    return float(np.sum(p * r_total / (before + m)))


def _lgamma(x: np.ndarray) -> np.ndarray:
    return np.vectorize(math.lgamma, otypes=[np.float64])(x)
