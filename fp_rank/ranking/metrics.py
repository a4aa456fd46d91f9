"""Retrieval metrics exactly as pinned by the fp-rank protocol (see PROTOCOL in the README).

Pure maths: arrays in, numbers out; no I/O, no models.

Definitions (the protocol's rules, :data:`fp_rank.protocol.RULES`; what each protocol version changed is
:data:`fp_rank.version.PROTOCOL_CHANGES`):

* ``AP(q) = (1/R) * sum over the R relevant gallery items of precision at that item's rank``,
  ranks by descending similarity, no cutoff.
* Ties between a relevant and a non-relevant item are resolved by the exact expected value over
  all orderings of the tied items (McSherry and Najork, ECIR 2008), so the result never depends
  on the order of the gallery.
* ``CMC@k``: probability that the first relevant item is within the top ``k`` (expected under
  ties). ``INP = R / rank of the last relevant item`` (expected under ties); mINP is its mean.
* ``Recall@k``: expected share of the R relevant items within the top ``k`` (under ties: a
  relevant item whose tie group of ``n`` items starts after ``c`` items is within the top ``k``
  with probability ``clip(k - c, 0, n) / n``).
* The chance floor is the exact expected AP of a uniformly random ranking
  (:mod:`fp_rank.ranking.chance`).

The implementation never sorts the gallery: per query it needs only, for each relevant score, how
many items score above it and how many tie with it. These counts are exact; they come from one
NumPy definition (:mod:`fp_rank.ranking.numpy_path`: the items scoring at least as high as the
query's lowest relevant item are sorted and every relevant score is located among them by binary
search) or from a compiled kernel (:mod:`fp_rank.ranking.compiled`, Numba) that counts over each
row while it is in the CPU cache; the two are tested against each other. Tensors (on any device)
are read as NumPy arrays on the CPU.
:func:`rank_metrics_from_embeddings` computes the similarities one chunk of queries at a time,
so memory is bounded by the chunk size whatever the number of queries.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from fp_rank.errors import InputError
from fp_rank.ranking.accumulate import Accumulator
from fp_rank.ranking.chance import chance_average_precision, harmonic_number
from fp_rank.ranking.labels import checked_labels
from fp_rank.ranking.result import RankingResult

__all__ = [
    "DEFAULT_CHUNK_ELEMENTS", "OnMissing", "RankingResult", "average_precision", "chance_average_precision",
    "harmonic_number", "rank_metrics", "rank_metrics_from_embeddings",
]

OnMissing = Literal["error", "skip", "zero"]

#: Upper bound on the number of similarity entries processed at once (per chunk of queries).
DEFAULT_CHUNK_ELEMENTS = 1 << 22

#: Similarities per chunk when they are already in memory (the chunk is a view, not a copy).
_VIEW_CHUNK_ELEMENTS = 1 << 25


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
    if hasattr(x, "detach") and hasattr(x, "numpy"):  # a torch tensor
        return _similarity_array(x)
    arr = np.asarray(x)
    if arr.dtype.kind not in "fiub":
        raise InputError(f"{name} must be numeric, got dtype {arr.dtype}")
    if arr.dtype.kind != "f":
        arr = arr.astype(np.float64)
    elif arr.dtype not in (np.float32, np.float64):
        # float16 widens to float32 exactly (and float128 narrows to float64) so that the
        # compiled kernel, which has float32 and float64 variants, scores every float input
        arr = arr.astype(np.float32 if arr.dtype.itemsize < 4 else np.float64)
    return arr


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
            negative cosines included; higher = more similar). Must be finite. A tensor is read
            on the CPU (half precision widened exactly).
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
    q_codes, g_codes = checked_labels(query_ids, gallery_ids, n_q, n_g, ("similarity has", "rows", "columns"))
    acc = Accumulator(q_codes, g_codes, query_ids, ks, on_missing)
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
        query_embeddings: ``(Q, D)`` array or tensor (L2-normalised for cosine similarity);
            tensors are read on the CPU.
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
    q_codes, g_codes = checked_labels(
        query_ids, gallery_ids, n_q, n_g, ("there are", "query embeddings", "gallery embeddings")
    )
    acc = Accumulator(q_codes, g_codes, query_ids, ks, on_missing)
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
    """A NumPy view (no copy when possible) of a float array or a tensor (read on the CPU).

    Half precision (NumPy float16, torch float16/bfloat16) is widened to float32 exactly, so
    every float input is ranked by the same (compiled) kernel.
    """
    if hasattr(x, "detach") and hasattr(x, "numpy"):  # a torch tensor, on any device
        t = x.detach().cpu()
        if not t.is_floating_point():
            t = t.double()
        elif str(t.dtype) in ("torch.float16", "torch.bfloat16"):
            t = t.float()  # exact widening; NumPy has no bfloat16
        return t.numpy()
    arr = _as_float_array(x, "similarity")
    return arr.astype(np.float32) if arr.dtype == np.float16 else arr
