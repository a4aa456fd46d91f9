"""The one entry point, ``fp_rank.evaluate``: check, load, embed, score, summarise, report."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np

from fp_rank import distributed
from fp_rank.caching.store import EmbeddingCache
from fp_rank.checks.inputs import check_evaluate_arguments
from fp_rank.checks.leakage import (
    DEFAULT_MAX_DISTANCE,
    DEFAULT_MAX_THUMB_DIFF,
)
from fp_rank.encoding.background import Background, Matting, load_matting
from fp_rank.encoding.batches import check_num_workers
from fp_rank.encoding.encoders import Encoder
from fp_rank.encoding.options import Preprocessing, check_device, resolve_preprocessing
from fp_rank.errors import InputError
from fp_rank.evaluation.embed import (
    Embedder,
    EmbedStats,
    Vectors,
    encoder_specs,
    load_encoders,
)
from fp_rank.evaluation.queries import (
    QuerySet,
    check_conditioning_indices,
    resolve_identities,
    single_identity_queries,
)
from fp_rank.evaluation.score import (
    DIAGNOSTICS,
    ceiling_rows,
    pairwise_similarity,
    rank_queries,
)
from fp_rank.reporting.aggregate import summarise
from fp_rank.galleries.load import Gallery, load_gallery
from fp_rank.protocol import query_columns
from fp_rank.ranking.metrics import OnMissing
from fp_rank.reporting.report import Report
from fp_rank.version import PROTOCOL_VERSION, __version__

logger = logging.getLogger(__name__)


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
    single_identity_groups: Literal["error", "skip"] = "error",
    conditioning: Sequence[Any] | None = None,
    clip_t: str | None = None,
    clip_t_revision: str | None = None,
    num_workers: int = 0,
    background: Background = "keep",
    matting: str | os.PathLike[str] | Callable[[Any], Any] | Matting | None = None,
    preprocessing: Preprocessing = "processor",
) -> Report:
    """Score generated images by how well each retrieves its own identity from the gallery.

    Each generated image is a query ranked against the gallery images of its identity's group;
    its score is the average precision of retrieving that identity (exact under ties). The
    reported metrics are those declared in :data:`fp_rank.protocol.METRICS`.

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
        num_workers: worker processes decoding and preprocessing the images, batch by batch,
            while the model runs (``Encoder.encode(num_workers=)``); 0 (default) decodes in this
            process, one batch ahead. The numbers do not depend on it.
        cache: reuse and store gallery/reference/holdout embeddings in the embedding cache.
        cache_dir: cache folder (default ``$FP_RANK_CACHE`` or ``$HF_HOME/fp_rank``).
        on_missing: a label without gallery images: ``"error"`` (default, listing close
            matches), ``"skip"`` (those images are left out) or ``"zero"`` (AP = CMC = Recall = 0,
            kept in their group's mean, as the reference code does; the identity must belong to a
            group of the gallery). Either way they are listed in ``metadata["missing"]`` and
            counted in ``n_missing``. Labels equal to a gallery identity up to Unicode
            normalisation (NFC vs NFD, as macOS file names are) take the gallery's spelling.
        on_invalid: an unreadable generated image: ``"error"`` or ``"skip"`` (listed in the report).
        cmc_ks: ranks for CMC@k and Recall@k.
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
        conditioning: per generated image, the real image it was conditioned on (zero-shot methods:
            IP-Adapter, Emu2, OminiControl, Diptych Prompting, FLUX Kontext): an image in any form
            ``generated`` accepts, an int index into the gallery's reference split, or None. The
            pairwise baseline is then the cosine to that image; without one, the mean cosine to
            the identity's reference images (DreamBooth's rule). Rows and results record the rule.
        clip_t: a CLIP-family checkpoint (alias such as ``"clip-vit-b32"``, the reference's; Hub
            id or folder) to score text alignment (CLIP-T) of every image that has a prompt; a
            ``{X}`` in a prompt is filled with the group noun. Default: not computed.
        clip_t_revision: Hub revision of the CLIP-T checkpoint.
        preprocessing: how model inputs are made: ``"processor"`` (default), exactly as the
            reference code (the checkpoint's transformers image processor; OpenCV for MiewID), or
            ``"fast"``, torch reimplementations within a documented tolerance (see
            :func:`fp_rank.load_encoder`). Recorded per encoder (``preprocessing["mode"]``) and
            in the cache key. Encoders passed as :class:`~fp_rank.Encoder` keep their own.
        single_identity_groups: a gallery group with one identity scores AP 1 for every query
            (nothing to confuse it with): ``"error"`` (default, a GalleryError naming the group)
            or ``"skip"`` (its queries are left out; ``metadata["single_identity_groups"]`` counts
            them).
        background: ``"keep"`` (default) or ``"remove"``: replace the background of every image
            that is encoded (gallery, reference, holdout, generated and conditioning images) by a
            flat grey (130, 130, 130) before the encoder's preprocessing, as the reference code's
            ``--remove_background`` does. CLIP-T and the leak check see the original images.
        matting: the matting backend for ``background="remove"`` (see
            :func:`fp_rank.encoding.background.load_matting`): ``"carvekit"`` (default; the
            reference's settings, ``pip install 'fp-rank[background]'``), a transformers
            segmentation checkpoint, a callable ``PIL.Image -> PIL.Image`` (RGBA or an L mask), or a
            ``Matting``. Recorded in the encoder identity (and cache key) and ``metadata["options"]``.

    Returns:
        A :class:`~fp_rank.Report`.

    Raises:
        InputError: bad arguments, unknown identities, unreadable images.
        GalleryError: a broken gallery, or a group with a single identity (see above).
        EncoderError: the encoder cannot be loaded or returns unusable embeddings.
    """
    # check
    check_evaluate_arguments(
        generated=generated, identities=identities, gallery=gallery, gallery_config=gallery_config,
        gallery_revision=gallery_revision, encoder_revision=encoder_revision, methods=methods, prompts=prompts,
        seeds=seeds, files=files, batch_size=batch_size, on_missing=on_missing, on_invalid=on_invalid,
        cmc_ks=cmc_ks, top_k=top_k, single_identity_groups=single_identity_groups, conditioning=conditioning,
        flags={"cache": cache, "ceilings": ceilings, "progress": progress, "trust_remote_code": trust_remote_code,
               "check_leaks": check_leaks, "exclude_leaks": exclude_leaks},
        background=background, matting=matting,
    )
    check_num_workers(num_workers)
    preprocessing = resolve_preprocessing(preprocessing)  # type: ignore[assignment]
    run = QuerySet.from_arguments(generated, identities, methods, prompts, seeds, files, conditioning)
    ks = sorted({int(k) for k in cmc_ks} | {1})
    # load
    check_device(device)  # an absent GPU is refused before the gallery is loaded
    dist_ctx, device = distributed.setup(device)
    gal = load_gallery(gallery, gallery_config, gallery_revision, progress=progress)
    absent, missing = resolve_identities(run, gal, on_missing)
    check_conditioning_indices(run, gal)
    lonely = single_identity_queries(run, gal, absent, single_identity_groups)
    matte = load_matting(matting, device=device, trust_remote_code=trust_remote_code) if background == "remove" else None
    embedder = Embedder(
        gal, run.generated, run.files, cache=EmbeddingCache(cache_dir, enabled=cache), batch_size=batch_size,
        progress=progress, on_invalid=on_invalid, check_leaks=check_leaks,
        num_workers=num_workers,
    )
    rows: list[dict[str, Any]] = []
    ceiling_table: list[dict[str, Any]] = []
    encoders: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] | None = None
    for enc in load_encoders(
        encoder_specs(encoder, encoder_revision, gal), device=device, dtype=dtype, trust_remote_code=trust_remote_code,
        matting=matte, preprocessing=preprocessing,
    ):
        encoders.append({**enc.identity(), "device": enc.device, "description": enc.description})
        # embed
        vec = embedder.embed(enc, holdout=ceilings)
        leaks = embedder.leaks()  # fingerprinted during the first encoder's decode pass
        leaked = np.asarray([leak is not None for leak in leaks], dtype=bool)
        skipped = vec.skipped if skipped is None else skipped
        keep = _scored_rows(vec.kept, absent | lonely, leaked if exclude_leaks else None)
        # score
        cond = embedder.conditioning(enc, run.conditioning, vec.reference)
        rows += _score(enc.name, run, vec, cond, keep, gal, ks=ks, on_missing=on_missing, top_k=top_k, leaks=leaks)
        if ceilings:
            ceiling_table += ceiling_rows(enc.name, _real_queries(gal, vec), vec.gallery, gal.gallery.identities,
                                          gal.gallery.groups)
    text = _clip_t(run, gal, vec.kept, clip_t, clip_t_revision, device, batch_size) if clip_t else None
    for row in rows:
        row["clip_t"] = text.get(row["index"]) if text is not None else None
    # summarise
    unread = np.ones(len(run), dtype=bool)
    unread[vec.kept] = False
    excluded = leaked & ~unread & ~absent & ~lonely if exclude_leaks else np.zeros(len(run), dtype=bool)
    counts = {key: run.count(mask) for key, mask in (("n_missing", missing & ~unread), ("n_skipped", unread),
                                                      ("n_excluded", excluded))}
    dropped = {
        (e["name"], method): {key: count[method] for key, count in counts.items()}
        for e in encoders for method in set(run.methods)
    }
    results = summarise(rows, ceiling_table, encoders=[e["name"] for e in encoders], methods=run.methods, ks=ks,
                        dropped=dropped)
    # report
    metadata = _metadata(
        run, gal, encoders, embedder, dist_ctx, missing, lonely, leaks, excluded,
        options={"on_missing": on_missing, "on_invalid": on_invalid, "cmc_ks": ks, "batch_size": batch_size,
                 "background": background, "matting": matte.identity() if matte is not None else None},
        check_leaks=check_leaks, exclude_leaks=exclude_leaks,
    )
    return Report(results=results, queries=rows, metadata=metadata, ceilings=ceiling_table, skipped=skipped or [])


def _scored_rows(kept: np.ndarray, absent: np.ndarray, leaked: np.ndarray | None) -> np.ndarray:
    """Positions in ``kept`` (readable images) that are ranked: known identity, and not a leak when excluded."""
    keep = ~absent[kept]
    if leaked is not None:
        keep &= ~leaked[kept]
        if not keep.any():
            raise InputError(
                f"all {int(leaked[kept].sum())} readable generated images copy a real gallery/reference image "
                "(leakage guard); nothing is left to score. See fp_rank.checks.leakage, or pass exclude_leaks=False"
            )
    return np.flatnonzero(keep)


def _real_queries(gal: Gallery, vec: Vectors) -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]:
    """The real splits scored as queries for the ceiling: holdout first, then reference."""
    out = []
    if vec.holdout is not None and gal.holdout is not None:
        out.append((gal.holdout.name, vec.holdout, gal.holdout.identities, gal.holdout.groups))
    if len(gal.reference):
        out.append((gal.reference.name, vec.reference, gal.reference.identities, gal.reference.groups))
    return out


def _score(
    encoder: str, run: QuerySet, vec: Vectors, cond: np.ndarray | None, keep: np.ndarray, gal: Gallery, *,
    ks: list[int], on_missing: OnMissing, top_k: int, leaks: list[dict[str, Any] | None],
) -> list[dict[str, Any]]:
    """Per-query rows of one encoder: ranking metrics, the pairwise baseline, context and leak flag."""
    index = vec.kept[keep]
    q_emb = vec.queries[keep]
    q_ids = np.asarray([run.identities[i] for i in index], dtype=object)
    group_of = gal.identity_to_group
    q_groups = np.asarray([group_of[run.identities[i]] for i in index], dtype=object)
    cols = rank_queries(q_emb, q_ids, q_groups, vec.gallery, gal.gallery.identities, gal.gallery.groups, ks=ks,
                        on_missing=on_missing, top_k=top_k)
    cols["pairwise"], rules = pairwise_similarity(
        q_emb, q_ids, vec.reference, gal.reference.identities, None if cond is None else cond[index]
    )
    names = gal.identity_names
    rows = []
    for j, i in enumerate(index):
        row: dict[str, Any] = {
            "encoder": encoder, "method": run.methods[i], "identity": run.identities[i],
            "identity_name": names.get(run.identities[i], run.identities[i]), "group": str(q_groups[j]),
            "prompt": run.prompts[i], "seed": run.seeds[i], "file": run.files[i], "index": int(i),
        }
        row.update({c: float(cols[c][j]) if c in cols else None for c in query_columns(ks)})
        row.update({c: _plain(cols[c][j]) for c in DIAGNOSTICS})
        row["pairwise_rule"] = rules[j]
        row["leak"] = leaks[i]
        if j in cols["top_k"]:
            row["top_k"] = cols["top_k"][j]
        rows.append(row)
    return rows


def _clip_t(
    run: QuerySet, gal: Gallery, readable: np.ndarray, spec: str, revision: str | None, device: str | None,
    batch_size: int,
) -> dict[int, float]:
    """CLIP-T of every readable image that has a prompt (``{X}`` filled with its group's noun)."""
    from fp_rank.encoding.text_alignment import fill_prompt, load_text_aligner

    aligner = load_text_aligner(spec, revision=revision, device=device)
    groups = gal.card.get("groups") if isinstance(gal.card.get("groups"), dict) else {}
    group_of = gal.identity_to_group
    index = [int(i) for i in readable if run.prompts[i] and run.identities[i] in group_of]
    nouns = [str((groups.get(group_of[run.identities[i]]) or {}).get("noun", group_of[run.identities[i]])) for i in index]
    scores = aligner.score(
        [run.generated[i] for i in index], [fill_prompt(str(run.prompts[i]), noun) for i, noun in zip(index, nouns)],
        names=[run.files[i] for i in index], batch_size=batch_size,
    )
    run.clip_t_model = aligner.identity()
    return dict(zip(index, scores.tolist()))


def _plain(value: Any) -> Any:
    """NumPy scalars as Python values (str for object labels)."""
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return float(value)
    return str(value)


def _metadata(
    run: QuerySet, gal: Gallery, encoders: list[dict[str, Any]], embedder: Embedder, dist_ctx: Any,
    missing: np.ndarray, lonely: np.ndarray, leaks: list[dict[str, Any] | None], excluded: np.ndarray, *,
    options: dict[str, Any],
    check_leaks: bool, exclude_leaks: bool,
) -> dict[str, Any]:
    """Provenance of a report: versions, gallery, encoders, cache use, options, what was left out."""
    stats: EmbedStats = embedder.stats
    group_of = gal.identity_to_group
    return {
        "protocol_version": PROTOCOL_VERSION,
        "fp_rank_version": __version__,
        "gallery": gal.describe(),
        "encoders": encoders,
        "cache": {
            "enabled": embedder.cache.enabled,
            "directory": str(embedder.cache.directory) if embedder.cache.enabled else None,
            "gallery_images_encoded": stats.encoded,
            "gallery_images_from_cache": stats.from_cache,
            "generated_images_encoded": stats.queries_encoded,
            "generated_images_distinct": stats.queries_distinct,
            "generated_images_from_cache": stats.queries_from_cache,
        },
        "distributed": dist_ctx.describe(),
        "options": {
            **options,
            "aggregation": "macro over groups (group mAP = mean AP of its queries)",
            "ties": "expected value over tied orderings",
        },
        "n_generated": len(run),
        "missing": [
            {"index": int(i), "file": run.files[i], "identity": run.identities[i], "method": run.methods[i]}
            for i in np.flatnonzero(missing)
        ],
        "labels_normalised": run.renamed,
        "clip_t": run.clip_t_model,
        "single_identity_groups": {
            "groups": sorted({group_of[run.identities[i]] for i in np.flatnonzero(lonely)}),
            "n_queries": int(lonely.sum()),
        },
        "leakage": {
            "checked": check_leaks,
            "rule": "sha256 match, or pHash Hamming distance and 16x16 thumbnail difference within thresholds",
            "max_distance": DEFAULT_MAX_DISTANCE,
            "max_thumb_diff": DEFAULT_MAX_THUMB_DIFF,
            "n_flagged": sum(1 for leak in leaks if leak is not None),
            "flagged": [
                {"query_index": i, "file": run.files[i], "method": run.methods[i], **leak}
                for i, leak in enumerate(leaks) if leak is not None
            ],
            "excluded": exclude_leaks,
            "n_excluded": int(excluded.sum()),
        },
    }
