"""How much a score moves when the gallery's images are redrawn (same identities, same sizes).

A gallery of ten images per identity is itself a sample. Where the gallery has more images of
its identities than its gallery split holds (its holdout split: the *pool*), each redraw picks,
per identity, as many images as the gallery split has from the pool without replacement, ranks
every scored query against the redrawn gallery of its group, and recomputes each method's mAP
by the protocol's rule (mean over a group's queries, then over groups). The spread over redraws
is what the gallery draw alone does to a score; the query intervals hold the gallery fixed.

Redraws from a pool of P images per identity move less than fresh galleries from the source
would (they share images): for a score that is close to a mean over gallery images the variance
shrinks by (P - G) / (P - 1), G the gallery size. ``sd_population`` undoes that shrinkage, so it
estimates the spread over galleries drawn fresh from the source; ``benchmarks/bench_gallery_draws.py``
checks it by simulation. It is given only when every identity's pool is larger than its gallery.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from fp_rank.ranking.metrics import rank_metrics_from_embeddings

#: The two-sided 95% normal quantile (a difference survives the gallery draw beyond Z_95 of its SDs).
Z_95 = 1.959963984540054


def redraw_maps(
    q_emb: np.ndarray, q_ids: np.ndarray, q_groups: np.ndarray, q_methods: np.ndarray,
    pool_emb: np.ndarray, pool_ids: np.ndarray, pool_groups: np.ndarray, in_gallery: np.ndarray,
    *, n_draws: int, seed: int, on_missing: str = "skip",
) -> tuple[dict[str, float], dict[str, np.ndarray], dict[str, Any]]:
    """Each method's mAP on the gallery and on ``n_draws`` redrawn galleries.

    Args:
        q_emb, q_ids, q_groups, q_methods: the scored queries (L2-normalised embeddings).
        pool_emb, pool_ids, pool_groups: every real image a gallery may be drawn from (gallery
            split first, then holdout); ``in_gallery`` marks the gallery split's rows.
        n_draws: redraws; ``seed`` seeds them (redraw ``d`` uses ``default_rng([seed, d])``).

    Returns:
        (mAP per method on the actual gallery, mAP per method per redraw, pool sizes).
    """
    groups = sorted(set(q_groups.tolist()))
    methods = sorted(set(q_methods.tolist()))
    by_identity: dict[Any, tuple[np.ndarray, int]] = {}
    for ident in sorted(set(pool_ids[in_gallery].tolist())):
        rows = np.flatnonzero(pool_ids == ident)
        by_identity[ident] = (rows, int(in_gallery[rows].sum()))
    sizes = np.asarray([[len(rows), g] for rows, g in by_identity.values()])

    def maps(chosen: np.ndarray) -> dict[str, float]:
        ap = np.full(len(q_emb), np.nan)
        for group in groups:
            qi = np.flatnonzero(q_groups == group)
            gi = chosen[pool_groups[chosen] == group]
            res = rank_metrics_from_embeddings(q_emb[qi], pool_emb[gi], q_ids[qi], pool_ids[gi], cmc_ks=(1,),
                                               on_missing=on_missing)  # type: ignore[arg-type]
            ap[qi] = np.where(res.scored, res.ap, np.nan)
        out = {}
        for method in methods:
            means = [np.nanmean(ap[(q_methods == method) & (q_groups == g)])
                     for g in groups if np.isfinite(ap[(q_methods == method) & (q_groups == g)]).any()]
            out[method] = float(np.mean(means)) if means else float("nan")
        return out

    observed = maps(np.flatnonzero(in_gallery))
    draws = {m: np.full(n_draws, np.nan) for m in methods}
    for d in range(n_draws):
        rng = np.random.default_rng([seed, d])
        chosen = np.sort(np.concatenate([rng.choice(rows, size=g, replace=False) for rows, g in by_identity.values()]))
        for method, value in maps(chosen).items():
            draws[method][d] = value
    pool = {"identities": len(by_identity), "identities_with_extra_images": int((sizes[:, 0] > sizes[:, 1]).sum()),
            "gallery_images": int(sizes[:, 1].sum()), "pool_images": int(sizes[:, 0].sum())}
    return observed, draws, pool


def population_factor(pool_sizes: Sequence[tuple[int, int]]) -> float | None:
    """sqrt((P - 1) / (P - G)) with P and G the mean pool and gallery sizes per identity; None when
    some identity has no image beyond its gallery (its redraws cannot move).

    Example:
        >>> round(population_factor([(15, 10)] * 3), 4)
        1.6733
    """
    sizes = np.asarray(pool_sizes, dtype=np.float64)
    if not len(sizes) or (sizes[:, 0] <= sizes[:, 1]).any():
        return None
    pool, gallery = sizes[:, 0].mean(), sizes[:, 1].mean()
    return float(np.sqrt((pool - 1) / (pool - gallery)))


def summarise_draws(observed: dict[str, float], draws: dict[str, np.ndarray], factor: float | None) -> dict[str, Any]:
    """Per method the spread of mAP over redraws; per pair of methods whether their difference survives.

    A difference survives when it is larger than 1.96 times its ``sd_population`` (or, without a
    population factor, its redraw SD) and keeps its sign in at least 95% of the redraws.
    """
    def spread(values: np.ndarray) -> dict[str, Any]:
        ok = values[np.isfinite(values)]
        sd = float(np.std(ok, ddof=1)) if len(ok) > 1 else float("nan")
        return {"mean": float(np.mean(ok)) if len(ok) else None, "sd": sd,
                "sd_population": sd * factor if factor is not None else None,
                "low": float(np.percentile(ok, 2.5)) if len(ok) else None,
                "high": float(np.percentile(ok, 97.5)) if len(ok) else None}

    methods = sorted(draws, key=lambda m: (-observed[m] if np.isfinite(observed[m]) else np.inf, m))  # best first
    per_method = {m: {"observed": observed[m], **spread(draws[m])} for m in methods}
    pairs = []
    for i, a in enumerate(methods):
        for b in methods[i + 1:]:
            diff = observed[a] - observed[b]
            redrawn = draws[a] - draws[b]
            s = spread(redrawn)
            sd = s["sd_population"] if s["sd_population"] is not None else s["sd"]
            same_sign = float(np.mean(np.sign(redrawn[np.isfinite(redrawn)]) == np.sign(diff))) if np.isfinite(diff) else None
            pairs.append({"a": a, "b": b, "difference": diff, **s, "same_sign": same_sign,
                          "survives": bool(np.isfinite(diff) and sd == sd and abs(diff) > Z_95 * sd
                                           and (same_sign or 0) >= 0.95)})
    return {"per_method": per_method, "pairs": pairs}


def for_encoder(vec: Any, keep: np.ndarray, run: Any, gal: Any, *, n_draws: int, seed: int,
                on_missing: str = "skip") -> dict[str, Any]:
    """The gallery-draw spread of one encoder's scored queries (rows ``keep`` of ``vec.queries``)."""
    index = vec.kept[keep]
    group_of = gal.identity_to_group
    q_ids = np.asarray([run[i].identity for i in index], dtype=object)
    q_groups = np.asarray([group_of[ident] for ident in q_ids], dtype=object)
    q_methods = np.asarray([run[i].method for i in index], dtype=object)
    parts = [(vec.gallery, gal.gallery)]
    if vec.holdout is not None and gal.holdout is not None:
        parts.append((vec.holdout, gal.holdout))
    pool_emb = np.concatenate([emb for emb, _ in parts])
    pool_ids = np.concatenate([np.asarray(split.identities, dtype=object) for _, split in parts])
    pool_groups = np.concatenate([np.asarray(split.groups, dtype=object) for _, split in parts])
    in_gallery = np.zeros(len(pool_ids), dtype=bool)
    in_gallery[: len(gal.gallery)] = True
    keep_pool = np.isin(pool_ids, np.unique(pool_ids[in_gallery]))  # holdout images of gallery identities only
    pool_emb, pool_ids, pool_groups, in_gallery = pool_emb[keep_pool], pool_ids[keep_pool], pool_groups[keep_pool], in_gallery[keep_pool]
    sizes = [(int((pool_ids == i).sum()), int((pool_ids[in_gallery] == i).sum())) for i in np.unique(pool_ids[in_gallery])]
    if not any(p > g for p, g in sizes):
        return {"note": "the gallery has no images of its identities beyond its gallery split (no holdout split): "
                        "the gallery draw cannot be redrawn"}
    observed, draws, pool = redraw_maps(vec.queries[keep], q_ids, q_groups, q_methods, pool_emb, pool_ids, pool_groups,
                                        in_gallery, n_draws=n_draws, seed=seed,
                                        on_missing="zero" if on_missing == "zero" else "skip")
    factor = population_factor(sizes)
    out = {"pool": pool, "population_factor": factor, **summarise_draws(observed, draws, factor)}
    if factor is None:
        out["note"] = ("some identities have no image beyond their gallery split: their part of the spread cannot be "
                       "seen, so the redraw SD is a lower bound and no population SD is given")
    return out


#: What the gallery-draw analysis does, for the report.
RULE = ("per identity, as many images as its gallery split holds, drawn without replacement from its gallery and "
        "holdout images; every scored query ranked again; mAP by the protocol's rule; sd_population = sd x "
        "sqrt((P - 1) / (P - G)) (P, G: mean pool and gallery images per identity) estimates the spread over galleries "
        "drawn fresh from the source")
