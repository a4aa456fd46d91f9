"""The one entry point: score generated images against a gallery (``fp_rank.evaluate``)."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from fp_rank import distributed
from fp_rank.caching.store import EmbeddingCache, cache_key
from fp_rank.checks.inputs import check_evaluate_arguments
from fp_rank.checks.leakage import DEFAULT_MAX_DISTANCE, DEFAULT_MAX_THUMB_DIFF, find_leaks, gallery_leak_index
from fp_rank.encoding.encoders import EncodeResult, Encoder, load_encoder
from fp_rank.encoding.images import content_hash, describe_source
from fp_rank.errors import EncoderError, FpRankError, InputError
from fp_rank.galleries.load import Gallery, GallerySplit, load_gallery
from fp_rank.ranking.metrics import OnMissing, RankingResult, rank_metrics, rank_metrics_from_embeddings
from fp_rank.reporting.report import MethodResult, Report
from fp_rank.version import PROTOCOL_VERSION, __version__

logger = logging.getLogger(__name__)

DEFAULT_METHOD = "generated"


def _as_list(values: Any, name: str, n: int, default: Any) -> list[Any]:
    if values is None:
        return [default] * n
    if isinstance(values, (str, int)) and not isinstance(values, bool):
        return [values] * n
    out = list(values)
    if len(out) != n:
        raise InputError(f"{name} has {len(out)} entries but there are {n} generated images")
    return out


class _CacheStats:
    def __init__(self) -> None:
        self.encoded = 0
        self.from_cache = 0
        self.queries_encoded = 0


def _split_embeddings(
    encoder: Encoder,
    gallery: Gallery,
    split: GallerySplit,
    cache: EmbeddingCache,
    stats: _CacheStats,
    batch_size: int,
    progress: bool,
) -> np.ndarray:
    key = cache_key(encoder.identity(), split.fingerprint) if encoder.cacheable else None
    if key is not None:
        hit = cache.get(key, len(split))
        if distributed.all_true(hit is not None):  # every rank must agree, or all encode
            stats.from_cache += len(split)
            return hit  # type: ignore[return-value]
    names = [f"{gallery.id}:{split.name}[{i}]" for i in range(len(split))]
    result = distributed.encode(
        encoder, split.images, batch_size=batch_size, progress=progress, names=names, desc=f"{split.name} ({encoder.name})"
    )
    stats.encoded += len(split)
    if key is not None and distributed.is_main_process():
        cache.put(key, result.embeddings, {"gallery": gallery.id, "split": split.name, "encoder": encoder.name})
    return result.embeddings


def _distinct_images(items: Sequence[Any]) -> tuple[list[int], np.ndarray]:
    """Deduplicate image sources by content (sha256 of their bytes, or of their decoded pixels).

    Returns:
        The positions of the first copy of each distinct image, and for every item the index of
        its copy among those. Items that cannot be hashed (unreadable files) count as distinct;
        the encoder reports them.
    """
    first: dict[str, int] = {}
    reps: list[int] = []
    inverse = np.empty(len(items), dtype=np.int64)
    digests = distributed.map_shards(lambda part: [_digest_or_none(item) for item in part], items)
    for i, digest in enumerate(digests):
        if digest is not None and digest in first:
            inverse[i] = first[digest]
            continue
        if digest is not None:
            first[digest] = len(reps)
        inverse[i] = len(reps)
        reps.append(i)
    return reps, inverse


def _digest_or_none(item: Any) -> str | None:
    try:
        return content_hash(item)
    except (FpRankError, OSError, TypeError, ValueError):
        return None


def _encode_distinct(
    encoder: Encoder, items: Sequence[Any], reps: list[int], inverse: np.ndarray, names: list[str], **kwargs: Any
) -> EncodeResult:
    """Encode each distinct image once (sharded across ranks when launched), then fan the rows out."""
    if len(reps) == len(items):
        return distributed.encode(encoder, items, names=names, **kwargs)  # type: ignore[no-any-return]
    res = distributed.encode(encoder, [items[i] for i in reps], names=[names[i] for i in reps], **kwargs)
    row_of = np.full(len(reps), -1, dtype=np.int64)
    row_of[res.kept] = np.arange(len(res.kept))
    rows = row_of[inverse]
    kept = np.flatnonzero(rows >= 0)
    reason = {int(s["index"]): s["reason"] for s in res.skipped}
    skipped = [
        {"index": str(int(i)), "file": names[int(i)], "reason": reason.get(int(inverse[i]), "unreadable")}
        for i in np.flatnonzero(rows < 0)
    ]
    emb = res.embeddings[rows[kept]] if len(kept) else res.embeddings
    return EncodeResult(embeddings=emb, kept=kept.astype(np.int64), skipped=skipped)


def _group_ranking(
    q_emb: np.ndarray,
    q_ids: np.ndarray,
    g_emb: np.ndarray,
    g_ids: np.ndarray,
    cmc_ks: Sequence[int],
    on_missing: OnMissing,
    top_k: int,
) -> tuple[RankingResult, np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
    """Rank one group's queries; with ``top_k`` also return (top-k gallery indices, similarities)."""
    if top_k <= 0:  # similarities are computed one chunk of queries at a time
        res = rank_metrics_from_embeddings(q_emb, g_emb, q_ids, g_ids, cmc_ks=cmc_ks, on_missing=on_missing)
        return res, res.extras["top1_score"], None
    # top_k asks for the ranked lists themselves: this group's (queries x gallery) matrix is built
    sim = q_emb.astype(np.float64) @ g_emb.astype(np.float64).T
    res = rank_metrics(sim, q_ids, g_ids, cmc_ks=cmc_ks, on_missing=on_missing)
    if not len(sim):
        return res, np.zeros(0), None
    top1_score = sim[np.arange(len(sim)), res.top1]
    # stable: higher score first, then lower gallery index
    order = np.argsort(-sim, axis=1, kind="stable")[:, : min(top_k, sim.shape[1])]
    return res, top1_score, (order, sim)


def _revisions_for(specs: list[Any], revision: Any) -> list[str | None]:
    """One weights revision per encoder: a single string is only unambiguous for one encoder."""
    if revision is None:
        return [None] * len(specs)
    if isinstance(revision, str):
        if len(specs) > 1:
            raise InputError(
                f"encoder_revision={revision!r} is ambiguous with {len(specs)} encoders; give a list with one "
                "revision (or None) per encoder"
            )
        return [revision]
    revisions = list(revision)
    if len(revisions) != len(specs):
        raise InputError(f"encoder_revision has {len(revisions)} entries for {len(specs)} encoders; give one per encoder")
    return revisions


def _macro(values: dict[str, float]) -> float:
    finite = [v for v in values.values() if v is not None and np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def evaluate(
    generated: Sequence[Any],
    identities: Sequence[str] | str,
    *,
    gallery: str | os.PathLike[str] | Gallery,
    gallery_config: str | None = None,
    gallery_revision: str | None = None,
    encoder: str | Encoder | Any | Sequence[str | Encoder] | None = None,
    encoder_revision: str | Sequence[str | None] | None = None,
    methods: Sequence[str] | str | None = None,
    prompts: Sequence[str] | None = None,
    seeds: Sequence[int] | None = None,
    files: Sequence[str] | None = None,
    device: str | None = None,
    dtype: str | None = None,
    batch_size: int = 32,
    cache: bool = True,
    cache_dir: str | os.PathLike[str] | None = None,
    on_missing: OnMissing = "error",
    on_invalid: Literal["error", "skip"] = "error",
    cmc_ks: Sequence[int] = (1, 5, 10),
    top_k: int = 0,
    ceilings: bool = True,
    progress: bool = True,
    trust_remote_code: bool = False,
    check_leaks: bool = True,
    exclude_leaks: bool = False,
) -> Report:
    """Score generated images by how well each retrieves its own identity from the gallery.

    Each generated image is a query ranked against the gallery images of its identity's group;
    its score is the average precision of retrieving that identity (exact under ties).

    Args:
        generated: image sources (paths, bytes, PIL images, arrays, ``{'bytes','path'}`` dicts).
        identities: one identity label per image (or one string for all), matching the gallery's
            ``identity`` column exactly.
        gallery: a gallery folder, a Hub dataset id, or a loaded :class:`~fp_rank.Gallery`.
        gallery_config: the gallery config (a group, or ``"all"``).
        gallery_revision: Hub revision of the gallery.
        encoder: alias, Hub id, folder, callable or :class:`~fp_rank.Encoder`, or a list of them
            (each scores the same run). Default: the gallery card's recommended primary encoder.
        encoder_revision: Hub revision of the encoder weights; with several encoders, a list with
            one revision (or None) per encoder.
        methods: method label per image (or one string); default ``"generated"``.
        prompts: prompt per image (recorded in the per-query rows).
        seeds: generation seed per image (recorded).
        files: name per image for rows and messages (default: the path, or ``item #i``).
        device: torch device (default CUDA when available).
        dtype: ``"float32"`` (default) or ``"bfloat16"``/``"float16"`` autocast.
        batch_size: images per forward pass (memory is bounded by it, not by the image count).
        cache: reuse and store gallery/reference/holdout embeddings in the embedding cache.
        cache_dir: cache folder (default ``$FP_RANK_CACHE`` or ``$HF_HOME/fp_rank``).
        on_missing: a label that is not a gallery identity: ``"error"`` (default, listing close
            matches) or ``"skip"`` (those images are left out, listed in
            ``metadata["missing"]`` and counted in ``n_missing``).
        on_invalid: an unreadable generated image: ``"error"`` or ``"skip"`` (listed in the report).
        cmc_ks: ranks for CMC.
        top_k: store the top-k gallery matches of each query in its row (for visualisation).
        ceilings: also score the real images (holdout, reference) as queries: the real-image ceiling.
        progress: show progress bars.
        trust_remote_code: allow encoders that run their repository's code (e.g. ``miewid``).
        check_leaks: flag generated images that are exact (sha256) or near (perceptual hash)
            copies of a gallery, reference or holdout image (see :mod:`fp_rank.checks.leakage`):
            each query row gets ``leak`` (None or ``{split, index, distance, exact}``) and
            ``report.metadata["leakage"]`` lists the flagged files.
        exclude_leaks: leave the flagged queries out of every score (they would retrieve their
            own source at rank 1); the number excluded is recorded. Default: flag only.

    Returns:
        A :class:`~fp_rank.Report`.

    Raises:
        InputError: bad arguments, unknown identities, unreadable images, broken galleries.
        EncoderError: the encoder cannot be loaded or returns unusable embeddings.
    """
    check_evaluate_arguments(
        generated=generated, identities=identities, gallery=gallery, gallery_config=gallery_config,
        gallery_revision=gallery_revision, encoder_revision=encoder_revision, methods=methods, prompts=prompts,
        seeds=seeds, files=files, batch_size=batch_size, on_missing=on_missing, on_invalid=on_invalid,
        cmc_ks=cmc_ks, top_k=top_k,
        flags={"cache": cache, "ceilings": ceilings, "progress": progress, "trust_remote_code": trust_remote_code,
               "check_leaks": check_leaks, "exclude_leaks": exclude_leaks},
    )
    n = len(generated)
    if n == 0:
        raise InputError("no generated images were given (generated is empty)")
    # validated by check_evaluate_arguments: one string for all, or one string per image
    labels = [identities] * n if isinstance(identities, str) else [str(x) for x in identities]
    method_of = [str(m) for m in _as_list(methods, "methods", n, DEFAULT_METHOD)]
    prompt_of = _as_list(prompts, "prompts", n, None)
    seed_of = _as_list(seeds, "seeds", n, None)
    file_of = [str(f) for f in _as_list(files, "files", n, None)] if files is not None else [
        describe_source(item, i) for i, item in enumerate(generated)
    ]

    dist_ctx, device = distributed.setup(device)
    gal = load_gallery(gallery, gallery_config, gallery_revision, progress=progress)
    known = set(gal.gallery.identities.tolist())
    absent = np.asarray([label not in known for label in labels], dtype=bool)
    if absent.any() and on_missing == "error":
        gal.check_identities(labels)  # raises, listing close matches
    if absent.all():
        raise InputError(
            f"none of the {n} identity labels is in gallery {gal.id!r} (on_missing='skip' left nothing to score); "
            f"e.g. {labels[0]!r}"
        )
    id_to_group = gal.identity_to_group
    leaks: list[dict[str, Any] | None] = [None] * n
    if check_leaks:
        leak_index = gallery_leak_index(gal)
        leaks = distributed.map_shards(lambda part: find_leaks(part, leak_index), generated)
    n_excluded = 0

    enc_specs: list[Any]
    if encoder is None:
        if gal.recommended_encoder is None:
            raise InputError(
                f"no encoder given and gallery {gal.id!r} names no recommended encoder; pass encoder=, e.g. 'dinov2-base'"
            )
        enc_specs = [gal.recommended_encoder]
    elif isinstance(encoder, (list, tuple)):
        enc_specs = list(encoder)
        if not enc_specs:
            raise InputError("encoder is an empty list")
    else:
        enc_specs = [encoder]
    revisions = _revisions_for(enc_specs, encoder_revision)

    store = EmbeddingCache(cache_dir, enabled=cache)
    stats = _CacheStats()
    results: list[MethodResult] = []
    rows: list[dict[str, Any]] = []
    ceiling_rows: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    encoder_info: list[dict[str, Any]] = []
    names = gal.identity_names
    ks = sorted({int(k) for k in cmc_ks} | {1})

    distinct: tuple[list[int], np.ndarray] | None = None
    excluded = np.zeros(n, dtype=bool)
    seen_names: set[str] = set()
    for spec, revision in zip(enc_specs, revisions):
        enc = load_encoder(spec, revision=revision, device=device, dtype=dtype, trust_remote_code=trust_remote_code)
        if enc.name in seen_names:
            raise InputError(
                f"two encoders are both named {enc.name!r}; their results and cache entries would mix. Give each a "
                "distinct name, e.g. fp_rank.load_encoder(fn, name='my-encoder-v1', revision='v1')"
            )
        seen_names.add(enc.name)
        encoder_info.append({**enc.identity(), "device": enc.device, "description": enc.description})
        g_emb = _split_embeddings(enc, gal, gal.gallery, store, stats, batch_size, progress)
        r_emb = _split_embeddings(enc, gal, gal.reference, store, stats, batch_size, progress)
        if distinct is None:  # each distinct generated image is encoded once per encoder
            distinct = _distinct_images(generated)
        q = _encode_distinct(
            enc, generated, distinct[0], distinct[1], file_of, batch_size=batch_size, progress=progress,
            on_invalid=on_invalid, desc=f"generated ({enc.name})",
        )
        stats.queries_encoded += len(distinct[0])
        if not skipped:
            skipped = [dict(s) for s in q.skipped]
        if len(q.kept) == 0:
            raise InputError(f"none of the {n} generated images could be read; see the skipped list: {q.skipped[:3]}")
        dims = {g_emb.shape[1], r_emb.shape[1], q.embeddings.shape[1]}
        if len(dims) != 1:
            raise EncoderError(f"encoder {enc.name!r} produced embeddings of different sizes {sorted(dims)}")

        kept = q.kept
        q_emb = q.embeddings
        if absent.any():  # on_missing="skip": identities without gallery images are left out
            present = ~absent[kept]
            kept, q_emb = kept[present], q_emb[present]
        if exclude_leaks:
            clean = np.asarray([leaks[int(i)] is None for i in kept], dtype=bool)
            n_excluded = int((~clean).sum())
            excluded[kept[~clean]] = True
            kept, q_emb = kept[clean], q_emb[clean]
            if len(kept) == 0:
                raise InputError(
                    f"all {n_excluded} readable generated images copy a real gallery/reference image (leakage "
                    "guard); nothing is left to score. See fp_rank.checks.leakage, or pass exclude_leaks=False"
                )
        q_labels = np.asarray([labels[i] for i in kept], dtype=object)
        q_groups = np.asarray([id_to_group[labels[i]] for i in kept], dtype=object)
        q_methods = np.asarray([method_of[i] for i in kept], dtype=object)

        # Pairwise baseline: mean cosine to the identity's reference images.
        pairwise = np.full(len(kept), np.nan)
        ref_ids = gal.reference.identities
        for ident in np.unique(q_labels):
            qi = np.flatnonzero(q_labels == ident)
            ri = np.flatnonzero(ref_ids == ident)
            if ri.size:
                pairwise[qi] = (q_emb[qi].astype(np.float64) @ r_emb[ri].astype(np.float64).T).mean(axis=1)

        # Ranking per group.
        per_query: dict[str, np.ndarray] = {
            "ap": np.full(len(kept), np.nan),
            "first": np.full(len(kept), np.nan),
            "inp": np.full(len(kept), np.nan),
            "chance": np.full(len(kept), np.nan),
            "top1_score": np.full(len(kept), np.nan),
            "n_rel": np.zeros(len(kept), dtype=np.int64),
            "n_gal": np.zeros(len(kept), dtype=np.int64),
            "tied": np.zeros(len(kept), dtype=bool),
            "scored": np.zeros(len(kept), dtype=bool),
        }
        cmc_q = {k: np.full(len(kept), np.nan) for k in ks}
        top1_ident = np.empty(len(kept), dtype=object)
        topk_rows: dict[int, list[dict[str, Any]]] = {}
        g_ids, g_groups = gal.gallery.identities, gal.gallery.groups
        for group in sorted(set(q_groups.tolist())):
            qi = np.flatnonzero(q_groups == group)
            gi = np.flatnonzero(g_groups == group)
            res, top1_score, top = _group_ranking(q_emb[qi], q_labels[qi], g_emb[gi], g_ids[gi], ks, on_missing, top_k)
            per_query["ap"][qi] = res.ap
            per_query["first"][qi] = res.first_hit_rank
            per_query["inp"][qi] = res.inp
            per_query["chance"][qi] = res.chance_ap
            per_query["top1_score"][qi] = top1_score
            per_query["n_rel"][qi] = res.n_relevant
            per_query["n_gal"][qi] = res.n_gallery
            per_query["tied"][qi] = res.tied
            per_query["scored"][qi] = res.scored
            for k in ks:
                cmc_q[k][qi] = res.cmc[k]
            top1_ident[qi] = g_ids[gi][res.top1]
            if top is not None:
                order, sim = top
                for local, row in enumerate(qi):
                    topk_rows[int(row)] = [
                        {
                            "gallery_index": int(gi[j]),
                            "identity": str(g_ids[gi[j]]),
                            "score": float(sim[local, j]),
                            "hit": bool(g_ids[gi[j]] == q_labels[row]),
                        }
                        for j in order[local]
                    ]

        # Real-image ceilings per group (same encoder, same gallery).
        ceil_by_split: dict[str, dict[str, float]] = {}
        if ceilings:
            for split in (gal.holdout, gal.reference):
                if split is None or len(split) == 0:
                    continue
                emb = r_emb if split is gal.reference else _split_embeddings(enc, gal, split, store, stats, batch_size, progress)
                per_group: dict[str, float] = {}
                for group in sorted(set(split.groups.tolist())):
                    si = np.flatnonzero(split.groups == group)
                    gi = np.flatnonzero(g_groups == group)
                    res = rank_metrics_from_embeddings(
                        emb[si], g_emb[gi], split.identities[si], g_ids[gi], cmc_ks=(1,), on_missing="skip"
                    )
                    per_group[group] = res.map
                    ceiling_rows.append(
                        {
                            "encoder": enc.name, "split": split.name, "group": group, "map": res.map,
                            "cmc1": res.cmc_at(1), "chance_map": res.chance_map, "n_queries": int(res.scored.sum()),
                        }
                    )
                ceil_by_split[split.name] = per_group

        for method in sorted(set(method_of)):  # also methods left with no scored query
            mi = q_methods == method
            scored = mi & per_query["scored"]
            groups_m = sorted(set(q_groups[mi].tolist()))
            def by_group(values: np.ndarray, mask: np.ndarray = scored) -> dict[str, float]:
                return {g: float(np.mean(values[mask & (q_groups == g)])) if (mask & (q_groups == g)).any() else float("nan") for g in groups_m}
            map_g = by_group(per_query["ap"])
            ident_map = {
                ident: float(np.mean(per_query["ap"][scored & (q_labels == ident)]))
                for ident in sorted(set(q_labels[scored].tolist()))
            }
            has_pair = mi & np.isfinite(pairwise)
            pair_g = by_group(pairwise, has_pair)
            floor = _macro(by_group(per_query["chance"]))
            # per group: the holdout split as queries where the group has one, else the reference split
            split_of: dict[str, str] = {}
            ceil_vals: dict[str, float] = {}
            for g in groups_m:
                for split_name in ("holdout", "reference"):
                    value = ceil_by_split.get(split_name, {}).get(g)
                    if value is not None and np.isfinite(value):
                        split_of[g], ceil_vals[g] = split_name, value
                        break
            used = sorted(set(split_of.values()))
            ceiling_split = used[0] if len(used) == 1 else ("mixed" if used else None)
            ceiling = _macro(ceil_vals) if ceil_vals and len(ceil_vals) == len(groups_m) else None
            headline = _macro(map_g)
            normalised = None
            if ceiling is not None and np.isfinite(ceiling) and ceiling - floor > 1e-12:
                normalised = (headline - floor) / (ceiling - floor)
            results.append(
                MethodResult(
                    method=method,
                    encoder=enc.name,
                    map=headline,
                    map_micro=float(np.mean(per_query["ap"][scored])) if scored.any() else float("nan"),
                    map_per_group=map_g,
                    map_per_identity=ident_map,
                    cmc={k: _macro(by_group(cmc_q[k])) for k in ks},
                    minp=_macro(by_group(per_query["inp"])),
                    chance_map=floor,
                    pairwise_similarity=_macro(pair_g),
                    pairwise_per_group=pair_g,
                    ceiling_map=ceiling,
                    ceiling_split=ceiling_split,
                    normalised=normalised,
                    n_queries=int(scored.sum()),
                    n_tied=int((per_query["tied"] & scored).sum()),
                    n_missing=int(sum(1 for i in range(n) if absent[i] and method_of[i] == method)),
                    n_skipped=sum(1 for s in q.skipped if method_of[int(s["index"])] == method),
                    n_excluded=int(sum(1 for i in range(n) if excluded[i] and method_of[i] == method)),
                    ceiling_split_per_group=split_of,
                )
            )

        for j, i in enumerate(kept):
            row = {
                "encoder": enc.name,
                "method": method_of[i],
                "identity": labels[i],
                "identity_name": names.get(labels[i], labels[i]),
                "group": str(q_groups[j]),
                "prompt": prompt_of[i],
                "seed": seed_of[i],
                "file": file_of[i],
                "index": int(i),
                "ap": float(per_query["ap"][j]),
                "first_hit_rank": float(per_query["first"][j]),
                "inp": float(per_query["inp"][j]),
                "cmc1": float(cmc_q[1][j]),
                "top1_identity": str(top1_ident[j]),
                "top1_score": float(per_query["top1_score"][j]),
                "pairwise": float(pairwise[j]),
                "chance_ap": float(per_query["chance"][j]),
                "n_relevant": int(per_query["n_rel"][j]),
                "n_gallery": int(per_query["n_gal"][j]),
                "tied": bool(per_query["tied"][j]),
                "leak": leaks[i],
            }
            if j in topk_rows:
                row["top_k"] = topk_rows[j]
            rows.append(row)

    metadata = {
        "protocol_version": PROTOCOL_VERSION,
        "fp_rank_version": __version__,
        "gallery": gal.describe(),
        "encoders": encoder_info,
        "cache": {
            "enabled": store.enabled,
            "directory": str(store.directory) if store.enabled else None,
            "gallery_images_encoded": stats.encoded,
            "gallery_images_from_cache": stats.from_cache,
            "generated_images_encoded": stats.queries_encoded,
            "generated_images_distinct": len(distinct[0]) if distinct is not None else None,
        },
        "distributed": dist_ctx.describe(),
        "options": {
            "on_missing": on_missing,
            "on_invalid": on_invalid,
            "cmc_ks": ks,
            "batch_size": batch_size,
            "aggregation": "macro over groups (group mAP = mean AP of its queries)",
            "ties": "expected value over tied orderings",
        },
        "n_generated": n,
        "missing": [
            {"index": int(i), "file": file_of[i], "identity": labels[i]} for i in np.flatnonzero(absent)
        ],
        "leakage": {
            "checked": check_leaks,
            "rule": "sha256 match, or pHash Hamming distance and 16x16 thumbnail difference within thresholds",
            "max_distance": DEFAULT_MAX_DISTANCE,
            "max_thumb_diff": DEFAULT_MAX_THUMB_DIFF,
            "n_flagged": sum(1 for leak in leaks if leak is not None),
            "flagged": [{"query_index": i, "file": file_of[i], **leak} for i, leak in enumerate(leaks) if leak is not None],
            "excluded": exclude_leaks,
            "n_excluded": n_excluded,
        },
    }
    return Report(results=results, queries=rows, metadata=metadata, ceilings=ceiling_rows, skipped=skipped)
