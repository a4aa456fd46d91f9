"""Retrieval metrics exactly as pinned by the fp-rank protocol (see PROTOCOL in the README).

Pure maths: arrays in, numbers out; no I/O, no models.

Definitions (protocol 1.0):

* ``AP(q) = (1/R) * sum over the R relevant gallery items of precision at that item's rank``,
  ranks by descending similarity, no cutoff.
* Ties between a relevant and a non-relevant item are resolved by the exact expected value over
  all orderings of the tied items (McSherry and Najork, ECIR 2008), so the result never depends
  on the order of the gallery.
* ``CMC@k``: probability that the first relevant item is within the top ``k`` (expected under
  ties). ``INP = R / rank of the last relevant item`` (expected under ties); mINP is its mean.
* The chance floor is the exact expected AP of a uniformly random ranking.

The implementation never sorts the gallery. Only the items scoring at least as high as a query's
lowest-scoring relevant item (the ``K`` *candidates*, ranked before or tied with its last relevant
item) can change AP, CMC or INP: one vectorised comparison per query finds them, they alone are
sorted (``O(K log K)``) and each relevant score is located among them by binary search, which
gives exact, tie-aware counts. Similarities are read once from memory, in cache-sized passes, and
:func:`rank_metrics_from_embeddings` computes them one chunk of queries at a time, so memory is
bounded by the chunk size whatever the number of queries.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch

from fp_rank.errors import InputError

OnMissing = Literal["error", "skip", "zero"]

#: Upper bound on the number of similarity entries processed at once (per chunk of queries).
DEFAULT_CHUNK_ELEMENTS = 1 << 22

#: Similarities per chunk when they are already in memory (the chunk is a view, not a copy).
_VIEW_CHUNK_ELEMENTS = 1 << 25


def chance_average_precision(n_relevant: Any, n_gallery: Any) -> Any:
    """Exact expected AP of a uniformly random ranking.

    ``E[AP] = (H_N + (R - 1) / (N - 1) * (N - H_N)) / N`` with ``H_N`` the N-th harmonic number
    (and 1 when ``N == 1``). Works elementwise on arrays.

    Args:
        n_relevant: number of relevant gallery items ``R`` (>= 1), scalar or array.
        n_gallery: gallery size ``N`` (>= R), scalar or array.

    Returns:
        A float, or a float64 array of the broadcast shape.

    Raises:
        InputError: when ``R < 1`` or ``N < R``.

    Example:
        >>> round(chance_average_precision(1, 2), 6)
        0.75
        >>> chance_average_precision(3, 3)
        1.0
    """
    r = _count_array(n_relevant, "n_relevant")
    n = _count_array(n_gallery, "n_gallery")
    if np.any(r < 1) or np.any(n < r):
        raise InputError(
            f"chance_average_precision needs 1 <= n_relevant <= n_gallery, got n_relevant={n_relevant!r}, "
            f"n_gallery={n_gallery!r}"
        )
    r, n = np.broadcast_arrays(r, n)
    h_n = harmonic_number(n)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = (h_n + np.where(n > 1, (r - 1) / np.maximum(n - 1, 1), 0.0) * (n - h_n)) / n
    out = np.where(n == 1, 1.0, out)
    if out.ndim == 0:
        return float(out)
    return out


def _count_array(value: Any, name: str) -> np.ndarray:
    """Counts as float64, refusing anything that is not a finite whole number."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a whole number (or an array of them), got {value!r}") from None
    if not np.all(np.isfinite(arr)) or np.any(arr != np.floor(arr)):
        raise InputError(f"{name} must be a whole number (or an array of them), got {value!r}")
    return arr


#: Largest N whose harmonic number comes from the exact cumulative table; beyond it, digamma.
_HARMONIC_TABLE_MAX = 1 << 16


def harmonic_number(n: Any) -> np.ndarray:
    """``H_n = 1 + 1/2 + ... + 1/n`` elementwise (``H_0 = 0``), in O(1) memory for any n.

    Up to :data:`_HARMONIC_TABLE_MAX` it sums the terms; beyond, ``H_n = digamma(n + 1) + gamma``
    (relative error below 1e-15), so a gallery of 2**40 items needs no table.

    Example:
        >>> float(harmonic_number(3))
        1.8333333333333333
        >>> bool(abs(harmonic_number(2**40) - (40 * np.log(2) + np.euler_gamma)) < 1e-9)
        True
    """
    from scipy.special import digamma

    n = np.asarray(n, dtype=np.float64)
    small = n <= _HARMONIC_TABLE_MAX
    out = np.asarray(digamma(np.where(small, 1.0, n) + 1.0) + np.euler_gamma, dtype=np.float64)
    if small.any():
        table = _harmonic_table(int(n[small].max()) if n.ndim else int(n))
        out = np.where(small, table[np.where(small, n, 0).astype(np.int64)], out)
    return out


def _harmonic_table(n: int) -> np.ndarray:
    """``table[k] = H_k`` for ``k = 0..n`` (``H_0 = 0``), float64."""
    table = np.zeros(n + 1, dtype=np.float64)
    if n:
        table[1:] = np.cumsum(1.0 / np.arange(1, n + 1, dtype=np.float64))
    return table


def average_precision(scores: Any, relevant: Any) -> float:
    """AP of one query, ties resolved by their exact expected value.

    Args:
        scores: 1-D similarities of the query to every gallery item (higher = more similar).
        relevant: 1-D booleans, True where the gallery item has the query's identity.

    Returns:
        The average precision in [0, 1].

    Raises:
        InputError: on shape mismatch, non-finite scores, or no relevant item.

    Example:
        >>> average_precision([0.9, 0.8, 0.7], [True, False, True])
        0.8333333333333333
        >>> average_precision([0.5, 0.5], [True, False])  # a tie: mean of 1 and 1/2
        0.75
    """
    s = _as_float_array(scores, "scores")
    r = np.asarray(relevant)
    if s.ndim != 1 or r.shape != s.shape:
        raise InputError(
            f"average_precision needs 1-D scores and relevant of the same length, got shapes "
            f"{s.shape} and {r.shape}"
        )
    r = _relevance_flags(r)
    if not r.any():
        raise InputError("average_precision: no relevant item among the scores (relevant is all False)")
    ids = np.where(r, 1, 0)
    result = rank_metrics(s[None, :], np.array([1]), ids, cmc_ks=(1,))
    return float(result.ap[0])


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


def _relevance_flags(r: np.ndarray) -> np.ndarray:
    """Booleans, or integers that are all 0 or 1; anything else (strings, 2, 0.5) is refused."""
    if r.dtype == np.bool_:
        return r
    if r.dtype.kind in "iu" and np.isin(r, (0, 1)).all():
        return r.astype(bool)
    bad = next((x for x in r.tolist() if not (isinstance(x, (bool, int)) and x in (0, 1))), r.dtype)
    raise InputError(
        f"relevant must hold booleans (or 0/1), got {bad!r} (dtype {r.dtype}); e.g. relevant = gallery_ids == query_id"
    )


def _as_float_array(x: Any, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if arr.dtype.kind not in "fiub":
        raise InputError(f"{name} must be numeric, got dtype {arr.dtype}")
    if arr.dtype.kind != "f":
        arr = arr.astype(np.float64)
    return arr


def _encode_labels(query_ids: Sequence[Any], gallery_ids: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    """Map identity labels to integer codes shared by queries and gallery.

    Labels are compared as they are: ``1`` and ``"1"`` would be different identities, so a mix of
    numbers and strings is refused, as are None and NaN; strings keep every character (NumPy's
    fixed-width strings would drop trailing NULs and merge ``"a\\x00"`` with ``"a"``).
    """
    q = np.asarray(query_ids, dtype=object) if not isinstance(query_ids, np.ndarray) else query_ids
    g = np.asarray(gallery_ids, dtype=object) if not isinstance(gallery_ids, np.ndarray) else gallery_ids
    if q.ndim != 1 or g.ndim != 1:
        raise InputError(f"query_ids and gallery_ids must be 1-D, got shapes {q.shape} and {g.shape}")
    if q.dtype.kind in "iu" and g.dtype.kind in "iu":
        return q.astype(np.int64), g.astype(np.int64)
    codes: dict[Any, int] = {}
    kinds: dict[str, tuple[str, Any]] = {}
    out = []
    for name, labels in (("query_ids", q), ("gallery_ids", g)):
        arr = np.empty(len(labels), dtype=np.int64)
        for i, label in enumerate(labels.tolist()):
            kind = _label_kind(label, name, i)
            kinds.setdefault(kind, (f"{name}[{i}]", label))
            arr[i] = codes.setdefault(label, len(codes))
        out.append(arr)
    if len(kinds) > 1:
        (wa, la), (wb, lb) = kinds["number"], kinds["string"]
        raise InputError(
            f"identity labels mix numbers and strings ({wa} = {la!r}, {wb} = {lb!r}); 1 and '1' would be different "
            "identities. Use one type for every label (e.g. all strings)"
        )
    return out[0], out[1]


def _label_kind(label: Any, name: str, i: int) -> str:
    if isinstance(label, str):
        return "string"
    if isinstance(label, (bool, np.bool_)) or label is None or not isinstance(label, (int, float, np.number)):
        raise InputError(f"{name}[{i}] is {label!r}; identity labels must be strings or integers")
    if isinstance(label, (float, np.floating)) and not float(label).is_integer():
        raise InputError(f"{name}[{i}] is {label!r}; identity labels must be strings or integers (not NaN or fractions)")
    return "number"


def _checked_labels(
    query_ids: Sequence[Any], gallery_ids: Sequence[Any], n_q: int, n_g: int, words: tuple[str, str, str]
) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes of the labels, checked against the numbers of queries and gallery items."""
    verb, q_what, g_what = words
    q_codes, g_codes = _encode_labels(query_ids, gallery_ids)
    if len(q_codes) != n_q:
        raise InputError(f"query_ids has {len(q_codes)} labels but {verb} {n_q} {q_what}")
    if len(g_codes) != n_g:
        raise InputError(f"gallery_ids has {len(g_codes)} labels but {verb} {n_g} {g_what}")
    if n_g == 0:
        raise InputError(f"the gallery is empty: {verb} 0 {g_what}")
    return q_codes, g_codes


def rank_metrics(
    similarity: Any,
    query_ids: Sequence[Any],
    gallery_ids: Sequence[Any],
    *,
    cmc_ks: Sequence[int] = (1, 5, 10),
    on_missing: OnMissing = "error",
    chunk_size: int | None = None,
) -> RankingResult:
    """Exact AP, CMC@k, Recall@k, INP and chance AP for every query.

    Args:
        similarity: ``(Q, N)`` array or tensor of query-to-gallery similarities (any real values,
            negative cosines included; higher = more similar). Must be finite.
        query_ids: ``Q`` identity labels of the queries (strings or integers).
        gallery_ids: ``N`` identity labels of the gallery items.
        cmc_ks: ranks at which to report CMC and Recall.
        on_missing: what to do with a query whose identity has no gallery item: ``"error"``
            (default: the benchmark is broken), ``"skip"`` (NaN, left out of every mean) or
            ``"zero"`` (AP = CMC = INP = 0, kept in the means). The count is always returned.
        chunk_size: queries processed at once. By default a chunk holds about 32M similarities
            (read in place, never copied) and 4M relevant items; the extra memory is bounded
            by the chunk, whatever the number of queries.

    Returns:
        A :class:`RankingResult`.

    Raises:
        InputError: on shape mismatch, non-finite similarities, bad options, or (with
            ``on_missing="error"``) a query without relevant gallery items.

    Example:
        >>> import numpy as np
        >>> sim = np.array([[0.9, 0.1, 0.8], [0.2, 0.7, 0.7]])
        >>> res = rank_metrics(sim, ["a", "b"], ["a", "b", "a"], cmc_ks=(1,))
        >>> res.ap.round(4).tolist()
        [1.0, 0.75]
        >>> res.n_tied
        1
    """
    if on_missing not in ("error", "skip", "zero"):
        raise InputError(f"on_missing must be 'error', 'skip' or 'zero', got {on_missing!r}")
    ks = _check_ks(cmc_ks)
    sim = _similarity_array(similarity)
    if sim.ndim != 2:
        raise InputError(f"similarity must be a 2-D (queries, gallery) array, got shape {tuple(sim.shape)}")
    n_q, n_g = sim.shape
    q_codes, g_codes = _checked_labels(query_ids, gallery_ids, n_q, n_g, ("similarity has", "rows", "columns"))
    acc = _Accumulator(q_codes, g_codes, query_ids, ks, on_missing)
    if chunk_size is None:
        r_max = int(acc.counts.max()) if n_q else 1
        chunk_size = max(1, min(_VIEW_CHUNK_ELEMENTS // n_g, DEFAULT_CHUNK_ELEMENTS // max(r_max, 1)))
    if chunk_size < 1:
        raise InputError(f"chunk_size must be >= 1, got {chunk_size}")
    for start in range(0, n_q, chunk_size):
        acc.add(start, sim[start : start + chunk_size])
    return acc.result()


def rank_metrics_from_embeddings(
    query_embeddings: Any,
    gallery_embeddings: Any,
    query_ids: Sequence[Any],
    gallery_ids: Sequence[Any],
    *,
    cmc_ks: Sequence[int] = (1, 5, 10),
    on_missing: OnMissing = "error",
    chunk_size: int | None = None,
    dtype: Any = np.float64,
) -> RankingResult:
    """:func:`rank_metrics` of cosine similarities computed one chunk of queries at a time.

    The ``(Q, N)`` similarity matrix is never held whole: each chunk of queries is multiplied
    with the gallery, ranked and dropped, so memory is bounded by the chunk size (about 4M
    similarities by default) whatever the number of queries. The results equal
    ``rank_metrics(query_embeddings @ gallery_embeddings.T, ...)`` computed in ``dtype``.

    Args:
        query_embeddings: ``(Q, D)`` array or tensor (L2-normalised for cosine similarity).
        gallery_embeddings: ``(N, D)`` array or tensor.
        query_ids: ``Q`` identity labels of the queries.
        gallery_ids: ``N`` identity labels of the gallery items.
        cmc_ks: ranks at which to report CMC.
        on_missing: as in :func:`rank_metrics`.
        chunk_size: queries per chunk (default: about 4M similarities per chunk).
        dtype: dtype of the similarity computation (default float64).

    Returns:
        A :class:`RankingResult`; ``extras["top1_score"]`` holds each query's best similarity.

    Raises:
        InputError: on shape mismatch, non-finite embeddings, bad options, or (with
            ``on_missing="error"``) a query without relevant gallery items.

    Example:
        >>> import numpy as np
        >>> q = np.array([[1.0, 0.0], [0.0, 1.0]])
        >>> g = np.array([[0.9, 0.1], [0.1, 0.9], [0.8, 0.2]])
        >>> rank_metrics_from_embeddings(q, g, ["a", "b"], ["a", "b", "a"], cmc_ks=(1,)).ap.tolist()
        [1.0, 1.0]
    """
    if on_missing not in ("error", "skip", "zero"):
        raise InputError(f"on_missing must be 'error', 'skip' or 'zero', got {on_missing!r}")
    ks = _check_ks(cmc_ks)
    q_emb = _similarity_array(query_embeddings).astype(dtype, copy=False)
    g_emb = _similarity_array(gallery_embeddings).astype(dtype, copy=False)
    if q_emb.ndim != 2 or g_emb.ndim != 2 or q_emb.shape[1] != g_emb.shape[1]:
        raise InputError(
            f"embeddings must be (Q, D) and (N, D) with the same D, got shapes {q_emb.shape} and {g_emb.shape}"
        )
    n_q, n_g = q_emb.shape[0], g_emb.shape[0]
    q_codes, g_codes = _checked_labels(
        query_ids, gallery_ids, n_q, n_g, ("there are", "query embeddings", "gallery embeddings")
    )
    acc = _Accumulator(q_codes, g_codes, query_ids, ks, on_missing)
    if chunk_size is None:
        chunk_size = max(1, DEFAULT_CHUNK_ELEMENTS // max(n_g, 1))
    if chunk_size < 1:
        raise InputError(f"chunk_size must be >= 1, got {chunk_size}")
    g_t = g_emb.T
    top1_score = np.full(n_q, np.nan)
    for start in range(0, n_q, chunk_size):
        block = q_emb[start : start + chunk_size] @ g_t
        acc.add(start, block)
        stop = start + len(block)
        top1_score[start:stop] = block[np.arange(len(block)), acc.top1[start:stop]]
        del block  # before the next chunk is computed: one chunk alive at a time
    res = acc.result()
    res.extras["top1_score"] = top1_score
    return res


def _check_ks(cmc_ks: Sequence[int]) -> list[int]:
    ks = sorted({int(k) for k in cmc_ks})
    if any(k < 1 for k in ks):
        raise InputError(f"cmc_ks must be positive ranks, got {list(cmc_ks)!r}")
    return ks


def _similarity_array(x: Any) -> np.ndarray:
    """A NumPy view (no copy when possible) of a float array or CPU tensor."""
    if isinstance(x, torch.Tensor):
        t = x.detach().cpu()
        if not torch.is_floating_point(t):
            t = t.double()
        elif t.dtype in (torch.float16, torch.bfloat16):
            t = t.float()  # exact widening; NumPy has no bfloat16
        return t.numpy()
    return _as_float_array(x, "similarity")


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

    def add(self, start: int, block: np.ndarray) -> None:
        """Score rows ``start .. start + len(block)`` of the similarity matrix."""
        stop = start + len(block)
        found = _count_block(
            block, start, self.missing[start:stop], self.index.order, self.starts[start:stop], self.counts[start:stop]
        )
        self.top1[start:stop] = found["top1"]
        if len(found["rows"]) == 0:
            return
        out = _metrics_from_counts(**found["counts"], harmonic=self.harmonic, ks=self.ks, n=self.n_g)
        sel = start + found["rows"]
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
    q = len(rows)
    n_rel = counts
    r_max = int(n_rel[rows].max()) if q else 1
    col = np.arange(r_max)
    n_rel_c = np.maximum(n_rel, 1)
    valid = col[None, :] < n_rel[:, None]
    take = order[starts[:, None] + np.minimum(col[None, :], n_rel_c[:, None] - 1)] if len(order) else np.zeros(
        (n_rows, r_max), dtype=np.int64
    )
    rel = np.where(valid, np.take_along_axis(block, take, axis=1), -np.inf)
    rel = -np.sort(-rel, axis=1)  # best first; padding (-inf) last
    worst = rel[np.arange(n_rows), n_rel_c - 1]
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

    # Rows are independent: with several cores, contiguous ranges of rows are scanned in threads
    # (NumPy releases the GIL in comparisons, reductions and sorts); results do not depend on it.
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
    rel, valid, better, tied, n_rel = rel[rows], valid[rows], better[rows], tied[rows], n_rel[rows]
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
    better -= lo  # relevant items strictly above t_i are not non-relevant
    tied -= hi - lo  # nor are the relevant items tied with it
    better[~valid] = 0
    tied[~valid] = 0
    return {
        "top1": top1,
        "rows": rows,
        "counts": {
            "lo": np.ascontiguousarray(lo), "hi": np.ascontiguousarray(hi), "better": better, "tied": tied,
            "n_rel": n_rel,
        },
    }


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
        # P(first hit within group position <= tt) = 1 - C(n0 - tt, r0) / C(n0, r0)
        rest = torch.from_numpy(n0 - np.maximum(tt, 0.0))
        log_ratio = torch.lgamma(rest + 1) - torch.lgamma(torch.clamp(rest - r0_t, min=0.0) + 1) - lg_n0
        p = 1.0 - np.exp(log_ratio.numpy())
        p = np.where(rest.numpy() < r0, 1.0, p)
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
