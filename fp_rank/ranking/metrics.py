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

The implementation never sorts the gallery: per query it sorts only the ``R`` relevant scores and
locates every other item among them with a binary search, which costs ``O(N log R)`` instead of
``O(N log N)`` and is exact.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch

from fp_rank.errors import InputError

OnMissing = Literal["error", "skip", "zero"]

#: Upper bound on the number of similarity entries processed at once (per chunk of queries).
DEFAULT_CHUNK_ELEMENTS = 1 << 22


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
    r = np.asarray(n_relevant, dtype=np.float64)
    n = np.asarray(n_gallery, dtype=np.float64)
    if np.any(r < 1) or np.any(n < r):
        raise InputError(
            f"chance_average_precision needs 1 <= n_relevant <= n_gallery, got n_relevant={n_relevant!r}, "
            f"n_gallery={n_gallery!r}"
        )
    r, n = np.broadcast_arrays(r, n)
    max_n = int(n.max()) if n.size else 1
    harmonic = _harmonic_table(max_n)
    h_n = harmonic[n.astype(np.int64)]
    with np.errstate(divide="ignore", invalid="ignore"):
        out = (h_n + np.where(n > 1, (r - 1) / np.maximum(n - 1, 1), 0.0) * (n - h_n)) / n
    out = np.where(n == 1, 1.0, out)
    if out.ndim == 0:
        return float(out)
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
    if r.dtype != np.bool_:
        r = r.astype(bool)
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
    """Map identity labels to integer codes shared by queries and gallery."""
    q = np.asarray(query_ids)
    g = np.asarray(gallery_ids)
    if q.ndim != 1 or g.ndim != 1:
        raise InputError(f"query_ids and gallery_ids must be 1-D, got shapes {q.shape} and {g.shape}")
    if q.dtype.kind in "iub" and g.dtype.kind in "iub":
        return q.astype(np.int64), g.astype(np.int64)
    uniq, inverse = np.unique(np.concatenate([q.astype(str), g.astype(str)]), return_inverse=True)
    del uniq
    return inverse[: len(q)].astype(np.int64), inverse[len(q) :].astype(np.int64)


def rank_metrics(
    similarity: Any,
    query_ids: Sequence[Any],
    gallery_ids: Sequence[Any],
    *,
    cmc_ks: Sequence[int] = (1, 5, 10),
    on_missing: OnMissing = "error",
    chunk_size: int | None = None,
) -> RankingResult:
    """Exact AP, CMC@k, INP and chance AP for every query.

    Args:
        similarity: ``(Q, N)`` array or tensor of query-to-gallery similarities (any real values,
            negative cosines included; higher = more similar). Must be finite.
        query_ids: ``Q`` identity labels of the queries (strings or integers).
        gallery_ids: ``N`` identity labels of the gallery items.
        cmc_ks: ranks at which to report CMC.
        on_missing: what to do with a query whose identity has no gallery item: ``"error"``
            (default: the benchmark is broken), ``"skip"`` (NaN, left out of every mean) or
            ``"zero"`` (AP = CMC = INP = 0, kept in the means). The count is always returned.
        chunk_size: queries processed at once; by default chosen so that a chunk holds about
            4M similarities, so memory does not grow with the number of queries.

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
    ks = sorted({int(k) for k in cmc_ks})
    if any(k < 1 for k in ks):
        raise InputError(f"cmc_ks must be positive ranks, got {list(cmc_ks)!r}")
    if isinstance(similarity, torch.Tensor):
        sim_t = similarity.detach().cpu()
        if not torch.is_floating_point(sim_t):
            sim_t = sim_t.double()
    else:
        sim_t = torch.from_numpy(np.ascontiguousarray(_as_float_array(similarity, "similarity")))
    if sim_t.ndim != 2:
        raise InputError(f"similarity must be a 2-D (queries, gallery) array, got shape {tuple(sim_t.shape)}")
    n_q, n_g = sim_t.shape
    q_codes, g_codes = _encode_labels(query_ids, gallery_ids)
    if len(q_codes) != n_q:
        raise InputError(f"query_ids has {len(q_codes)} labels but similarity has {n_q} rows")
    if len(g_codes) != n_g:
        raise InputError(f"gallery_ids has {len(g_codes)} labels but similarity has {n_g} columns")
    if n_g == 0:
        raise InputError("the gallery is empty: similarity has 0 columns")

    counts = _relevant_counts(q_codes, g_codes)
    missing = counts == 0
    if missing.any() and on_missing == "error":
        labels = sorted({str(x) for x in np.asarray(query_ids)[missing]})
        raise InputError(
            f"{int(missing.sum())} queries have no gallery item of their identity (identities: "
            f"{labels[:10]}{' ...' if len(labels) > 10 else ''}); fix the labels or the gallery, or "
            "pass on_missing='skip' or 'zero'"
        )

    ap = np.full(n_q, np.nan)
    first = np.full(n_q, np.nan)
    inp = np.full(n_q, np.nan)
    cmc = {k: np.full(n_q, np.nan) for k in ks}
    tied = np.zeros(n_q, dtype=bool)
    top1 = np.zeros(n_q, dtype=np.int64)
    harmonic = torch.from_numpy(_harmonic_table(n_g))

    if chunk_size is None:
        chunk_size = max(1, DEFAULT_CHUNK_ELEMENTS // max(n_g, 1))
    if chunk_size < 1:
        raise InputError(f"chunk_size must be >= 1, got {chunk_size}")
    g_codes_t = torch.from_numpy(g_codes)
    for start in range(0, n_q, chunk_size):
        stop = min(n_q, start + chunk_size)
        block = sim_t[start:stop]
        if not torch.isfinite(block).all():
            bad = start + int((~torch.isfinite(block)).any(dim=1).nonzero()[0, 0])
            raise InputError(f"similarity row {bad} holds NaN or inf; check the embeddings of query {bad}")
        top1[start:stop] = block.argmax(dim=1).numpy()
        rel = torch.from_numpy(q_codes[start:stop])[:, None] == g_codes_t[None, :]
        has = ~torch.from_numpy(missing[start:stop])
        if not bool(has.any()):
            continue
        idx = has.nonzero().squeeze(1)
        out = _chunk_metrics(block[idx], rel[idx], harmonic, ks)
        rows = start + idx.numpy()
        ap[rows] = out["ap"]
        first[rows] = out["first"]
        inp[rows] = out["inp"]
        tied[rows] = out["tied"]
        for k in ks:
            cmc[k][rows] = out["cmc"][k]

    scored = ~missing
    if on_missing == "zero":
        ap[missing] = 0.0
        inp[missing] = 0.0
        for k in ks:
            cmc[k][missing] = 0.0
        scored = np.ones(n_q, dtype=bool)
    chance = np.full(n_q, np.nan)
    ok = counts > 0
    if ok.any():
        chance[ok] = chance_average_precision(counts[ok], n_g)
    if on_missing == "zero":
        chance[missing] = 0.0
    return RankingResult(
        ap=ap,
        first_hit_rank=first,
        inp=inp,
        cmc=cmc,
        chance_ap=chance,
        n_relevant=counts,
        n_gallery=n_g,
        tied=tied,
        top1=top1,
        scored=scored,
        missing=missing,
        on_missing=on_missing,
    )


def _relevant_counts(q_codes: np.ndarray, g_codes: np.ndarray) -> np.ndarray:
    uniq, g_count = np.unique(g_codes, return_counts=True)
    pos = np.searchsorted(uniq, q_codes)
    pos = np.clip(pos, 0, max(len(uniq) - 1, 0))
    found = uniq[pos] == q_codes if len(uniq) else np.zeros(len(q_codes), dtype=bool)
    return np.where(found, g_count[pos], 0).astype(np.int64)


def _chunk_metrics(
    sim: torch.Tensor, rel: torch.Tensor, harmonic: torch.Tensor, ks: list[int]
) -> dict[str, Any]:
    """Metrics for a chunk of queries that all have at least one relevant item.

    Works on ``x = -similarity`` so that ascending order is the ranking order.
    """
    q, n = sim.shape
    x = -sim
    n_rel = rel.sum(dim=1)  # (q,)
    r_max = int(n_rel.max())
    inf = torch.tensor(float("inf"), dtype=x.dtype)
    # Sorted relevant scores per query, padded with +inf beyond each query's R.
    rel_x = torch.where(rel, x, inf)
    rel_sorted = torch.topk(rel_x, r_max, dim=1, largest=False, sorted=True).values.contiguous()
    # Where each item falls among the relevant ones.
    pos_left = torch.searchsorted(rel_sorted, x, right=False)
    pos_right = torch.searchsorted(rel_sorted, x, right=True)
    dummy = r_max + 1
    nonrel = ~rel
    # Non-relevant items strictly better than the relevant tie group starting at lo: pos_right <= lo.
    idx_right = torch.where(nonrel, pos_right, torch.full_like(pos_right, dummy))
    better_hist = torch.zeros(q, r_max + 2, dtype=torch.int64).scatter_add_(
        1, idx_right, torch.ones_like(idx_right)
    )
    better_nr = better_hist[:, : r_max + 1].cumsum(dim=1)  # better_nr[:, lo]
    # Non-relevant items tied with the relevant tie group starting at lo.
    tie_mask = nonrel & (pos_right > pos_left)
    idx_tie = torch.where(tie_mask, pos_left, torch.full_like(pos_left, dummy))
    tied_nr = torch.zeros(q, r_max + 2, dtype=torch.int64).scatter_add_(1, idx_tie, torch.ones_like(idx_tie))
    tied_nr = tied_nr[:, : r_max + 1]

    # Tie structure among relevant items.
    lo = torch.searchsorted(rel_sorted, rel_sorted, right=False)  # (q, r_max)
    hi = torch.searchsorted(rel_sorted, rel_sorted, right=True)
    valid = torch.arange(r_max)[None, :] < n_rel[:, None]
    lo_c = lo.clamp(max=r_max)
    a = lo.double()
    r = (hi - lo).double()
    c = (lo + better_nr.gather(1, lo_c)).double()
    t = tied_nr.gather(1, lo_c).double()
    group_n = r + t
    # Expected precision at each relevant item of a group tied with non-relevant items (McSherry-Najork).
    c_i = c.long().clamp(min=0, max=n)
    n_i = (c + group_n).long().clamp(max=n)
    h_diff = harmonic[n_i] - harmonic[c_i]
    denom = torch.clamp(group_n - 1, min=1.0)
    tied_val = ((a + 1) * h_diff + (r - 1) / denom * (group_n - (c + 1) * h_diff)) / group_n
    # Without a non-relevant item in the group, relevant item i (0-based in sorted order) sits
    # right after i relevant and better_nr non-relevant items, whatever the order inside the group.
    pos_i = torch.arange(r_max, dtype=torch.float64)[None, :]
    plain_val = (pos_i + 1) / (pos_i + 1 + better_nr.gather(1, lo_c).double())
    prec = torch.where(t > 0, tied_val, plain_val)
    prec = torch.where(valid, prec, torch.zeros_like(prec))
    ap = prec.sum(dim=1) / n_rel.double()
    any_tie = ((t > 0) & valid).any(dim=1)

    # First relevant item: the tie group at lo = 0.
    r0 = hi[:, 0].double()
    c0 = better_nr[:, 0].double()
    n0 = r0 + tied_nr[:, 0].double()
    first = c0 + (n0 + 1) / (r0 + 1)
    cmc: dict[int, np.ndarray] = {}
    for k in ks:
        tt = k - c0  # positions available inside the first group
        # P(first hit within group position <= tt) = 1 - C(n0 - tt, r0) / C(n0, r0)
        tt_c = torch.clamp(tt, min=0.0)
        rest = n0 - tt_c
        log_ratio = (
            torch.lgamma(rest + 1)
            - torch.lgamma(torch.clamp(rest - r0, min=0.0) + 1)
            - torch.lgamma(n0 + 1)
            + torch.lgamma(n0 - r0 + 1)
        )
        p = 1.0 - torch.exp(log_ratio)
        p = torch.where(rest < r0, torch.ones_like(p), p)
        p = torch.where(tt <= 0, torch.zeros_like(p), p)
        cmc[k] = p.clamp(0.0, 1.0).numpy()

    # Last relevant item: the tie group containing relevant index R - 1.
    last_idx = (n_rel - 1).clamp(min=0)[:, None]
    lo_l = lo.gather(1, last_idx).squeeze(1)
    r_l = (n_rel - lo_l).double()
    c_l = (lo_l + better_nr.gather(1, lo_l[:, None]).squeeze(1)).double()
    t_l = tied_nr.gather(1, lo_l[:, None]).squeeze(1).double()
    r_total = n_rel.double()
    inp = r_total / (c_l + r_l)  # no non-relevant item tied with the last group
    needs_sum = (t_l > 0).nonzero().squeeze(1).tolist()
    inp_np = inp.numpy().copy()
    for i in needs_sum:
        inp_np[i] = _expected_inp(float(r_total[i]), float(c_l[i]), int(r_l[i]), int(r_l[i] + t_l[i]))
    return {
        "ap": ap.numpy(),
        "first": first.numpy(),
        "inp": inp_np,
        "cmc": cmc,
        "tied": any_tie.numpy(),
    }


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
