"""The score stage: per-query rows from embeddings, pure NumPy (no model, no I/O).

Each query is ranked against the gallery images of its own group. The columns it produces are
the per-query columns of :data:`fp_rank.protocol.METRICS` plus ranking diagnostics, the pairwise
baseline and each image's context (:func:`query_rows`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from fp_rank.evaluation.embed import Vectors
from fp_rank.galleries.load import Gallery
from fp_rank.protocol import query_columns, query_metrics
from fp_rank.reporting.aggregate import indices_by_label
from fp_rank.runs import Run
from fp_rank.ranking.metrics import (
    OnMissing,
    RankingResult,
    rank_metrics,
    rank_metrics_from_embeddings,
)

#: The two rules of the pairwise baseline (recorded per query as ``pairwise_rule``).
PAIRWISE_RULES = ("conditioning image", "reference mean")

#: Per-query ranking diagnostics recorded beside the declared metric columns.
DIAGNOSTICS = ("first_hit_rank", "top1_identity", "top1_score", "n_relevant", "n_gallery", "tied")


def rank_queries(
    q_emb: np.ndarray,
    q_ids: np.ndarray,
    q_groups: np.ndarray,
    g_emb: np.ndarray,
    g_ids: np.ndarray,
    g_groups: np.ndarray,
    *,
    ks: Sequence[int],
    on_missing: OnMissing = "error",
    top_k: int = 0,
) -> dict[str, Any]:
    """Rank every query within its group's gallery.

    Args:
        q_emb, q_ids, q_groups: query embeddings (L2-normalised), identities and groups.
        g_emb, g_ids, g_groups: the same for the gallery split.
        ks: ranks of the per-k metrics.
        on_missing: as in :func:`fp_rank.rank_metrics`.
        top_k: also return each query's top-k gallery matches (``"top_k"``: query row -> list).

    Returns:
        Column name -> per-query array: every declared metric with a ranking source, and
        :data:`DIAGNOSTICS`.

    Example:
        >>> q = np.array([[1.0, 0.0]]); g = np.array([[1.0, 0.0], [0.0, 1.0]])
        >>> out = rank_queries(q, np.array(["a"]), np.array(["x"]), g, np.array(["a", "b"]),
        ...                    np.array(["x", "x"]), ks=(1,))
        >>> float(out["ap"][0]), str(out["top1_identity"][0])
        (1.0, 'a')
    """
    n = len(q_emb)
    ranked = [m for m in query_metrics() if m.source is not None]
    cols: dict[str, Any] = {
        col: np.full(n, np.nan) for m in ranked for col in ([m.column_for(k) for k in ks] if m.per_k else [m.column_for()])
    }
    cols.update(
        first_hit_rank=np.full(n, np.nan), top1_score=np.full(n, np.nan), n_relevant=np.zeros(n, dtype=np.int64),
        n_gallery=np.zeros(n, dtype=np.int64), tied=np.zeros(n, dtype=bool), top1_identity=np.empty(n, dtype=object),
    )
    top_lists: dict[int, list[dict[str, Any]]] = {}
    for group in sorted(set(q_groups.tolist())):
        qi = np.flatnonzero(q_groups == group)
        gi = np.flatnonzero(g_groups == group)
        res, top1_score, top = _group_ranking(q_emb[qi], q_ids[qi], g_emb[gi], g_ids[gi], ks, on_missing, top_k)
        for m in ranked:
            values = getattr(res, m.source)  # type: ignore[arg-type]
            if m.per_k:
                for k in ks:
                    cols[m.column_for(k)][qi] = values[k]
            else:
                cols[m.column_for()][qi] = values
        cols["first_hit_rank"][qi] = res.first_hit_rank
        cols["top1_score"][qi] = top1_score
        cols["n_relevant"][qi] = res.n_relevant
        cols["n_gallery"][qi] = res.n_gallery
        cols["tied"][qi] = res.tied
        cols["top1_identity"][qi] = g_ids[gi][res.top1]
        if top is not None:
            order, sim = top
            for local, row in enumerate(qi):
                top_lists[int(row)] = [
                    {"gallery_index": int(gi[j]), "identity": str(g_ids[gi[j]]), "score": float(sim[local, j]),
                     "hit": bool(g_ids[gi[j]] == q_ids[row])}
                    for j in order[local]
                ]
    cols["top_k"] = top_lists
    return cols


def _group_ranking(
    q_emb: np.ndarray, q_ids: np.ndarray, g_emb: np.ndarray, g_ids: np.ndarray, ks: Sequence[int],
    on_missing: OnMissing, top_k: int,
) -> tuple[RankingResult, np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
    """Rank one group's queries; with ``top_k`` also return (top-k gallery indices, similarities)."""
    if top_k <= 0:  # similarities are computed one chunk of queries at a time
        res = rank_metrics_from_embeddings(q_emb, g_emb, q_ids, g_ids, cmc_ks=ks, on_missing=on_missing)
        return res, res.extras["top1_score"], None
    # top_k asks for the ranked lists themselves: this group's (queries x gallery) matrix is built
    sim = q_emb.astype(np.float64) @ g_emb.astype(np.float64).T
    res = rank_metrics(sim, q_ids, g_ids, cmc_ks=ks, on_missing=on_missing)
    if not len(sim):
        return res, np.zeros(0), None
    top1_score = sim[np.arange(len(sim)), res.top1]
    # stable: higher score first, then lower gallery index
    order = np.argsort(-sim, axis=1, kind="stable")[:, : min(top_k, sim.shape[1])]
    return res, top1_score, (order, sim)


def pairwise_similarity(
    q_emb: np.ndarray, q_ids: np.ndarray, r_emb: np.ndarray, r_ids: np.ndarray, c_emb: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """DreamBench-style baseline per query, and the rule that gave it.

    With a conditioning embedding (a finite row of ``c_emb``), the cosine to that one real image
    (the reference code's rule for zero-shot methods); otherwise the mean cosine to the query's
    identity's reference images (its rule for DreamBooth). NaN where neither exists.

    Returns:
        (similarities, rules): rules holds one of :data:`PAIRWISE_RULES` per query (None for NaN).

    Example:
        >>> sim, rule = pairwise_similarity(np.array([[1.0, 0.0]]), np.array(["a"]),
        ...                                 np.array([[1.0, 0.0], [0.0, 1.0]]), np.array(["a", "a"]))
        >>> sim.tolist(), rule.tolist()
        ([0.5], ['reference mean'])
    """
    out = np.full(len(q_emb), np.nan)
    refs = indices_by_label(r_ids)
    for ident, qi in indices_by_label(q_ids).items():
        ri = refs.get(ident)
        if ri is not None:
            out[qi] = (q_emb[qi].astype(np.float64) @ r_emb[ri].astype(np.float64).T).mean(axis=1)
    rules = np.where(np.isfinite(out), PAIRWISE_RULES[1], None).astype(object)
    if c_emb is not None:
        has = np.isfinite(c_emb).all(axis=1)
        out[has] = np.einsum("ij,ij->i", q_emb[has].astype(np.float64), c_emb[has].astype(np.float64))
        rules[has] = PAIRWISE_RULES[0]
    return out, rules


def ceiling_rows(
    encoder: str,
    splits: Sequence[tuple[str, np.ndarray, np.ndarray, np.ndarray]],
    g_emb: np.ndarray,
    g_ids: np.ndarray,
    g_groups: np.ndarray,
) -> list[dict[str, Any]]:
    """The real-image ceiling: each real split's images as queries, per group, same gallery.

    Args:
        encoder: encoder name recorded in each row.
        splits: ``(split name, embeddings, identities, groups)`` per real split.
        g_emb, g_ids, g_groups: the gallery split.

    Returns:
        One row per (split, group): ``map``, ``cmc1``, ``chance_map``, ``n_queries`` and
        ``n_missing`` (real images whose identity has no gallery image: left out, counted).
    """
    rows = []
    for name, emb, ids, groups in splits:
        for group in sorted(set(groups.tolist())):
            si = np.flatnonzero(groups == group)
            gi = np.flatnonzero(g_groups == group)
            res = rank_metrics_from_embeddings(emb[si], g_emb[gi], ids[si], g_ids[gi], cmc_ks=(1,), on_missing="skip")
            rows.append(
                {"encoder": encoder, "split": name, "group": group, "map": res.map, "cmc1": res.cmc_at(1),
                 "chance_map": res.chance_map, "n_queries": int(res.scored.sum()),
                 "n_missing": int(res.missing.sum())}
            )
    return rows


def query_rows(
    encoder: str, run: Run, vec: Vectors, cond: np.ndarray | None, keep: np.ndarray, gal: Gallery, *,
    ks: list[int], on_missing: OnMissing, top_k: int, leaks: list[dict[str, Any] | None],
) -> list[dict[str, Any]]:
    """Per-query rows of one encoder: ranking metrics, the pairwise baseline, context and leak flag."""
    index = vec.kept[keep]
    q_emb = vec.queries[keep]
    q_ids = np.asarray([run[i].identity for i in index], dtype=object)
    group_of = gal.identity_to_group
    q_groups = np.asarray([group_of[run[i].identity] for i in index], dtype=object)
    cols = rank_queries(q_emb, q_ids, q_groups, vec.gallery, gal.gallery.identities, gal.gallery.groups, ks=ks,
                        on_missing=on_missing, top_k=top_k)
    cols["pairwise"], rules = pairwise_similarity(
        q_emb, q_ids, vec.reference, gal.reference.identities, None if cond is None else cond[index]
    )
    names = gal.identity_names
    rows = []
    for j, i in enumerate(index):
        image = run[i]
        row: dict[str, Any] = {
            "encoder": encoder, "method": image.method, "identity": image.identity,
            "identity_name": names.get(image.identity, image.identity), "group": str(q_groups[j]),
            "prompt": image.prompt, "seed": image.seed, "file": image.file, "index": int(i),
        }
        row.update({c: float(cols[c][j]) if c in cols else None for c in query_columns(ks)})
        row.update({c: _plain(cols[c][j]) for c in DIAGNOSTICS})
        row["pairwise_rule"] = rules[j]
        row["leak"] = leaks[i]
        if j in cols["top_k"]:
            row["top_k"] = cols["top_k"][j]
        rows.append(row)
    return rows


def _plain(value: Any) -> Any:
    """NumPy scalars as Python values (str for object labels)."""
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return float(value)
    return str(value)
