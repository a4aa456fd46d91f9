"""The one entry point, ``fp_rank.evaluate``: check, load, embed, score, summarise, report."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from fp_rank import distributed
from fp_rank.caching.store import EmbeddingCache
from fp_rank.encoding.options import check_device
from fp_rank.errors import InputError, Opt
from fp_rank.evaluation import load
from fp_rank.evaluation.check import (
    check_conditioning_indices,
    check_gallery_argument,
    match_labels,
    single_identity_queries,
)
from fp_rank.evaluation.embed import Embedder, Vectors
from fp_rank.evaluation.provenance import metadata
from fp_rank.evaluation.score import ceiling_rows, query_rows
from fp_rank.evaluation.signature import document
from fp_rank.galleries.load import Gallery
from fp_rank.options import Options, resolve_options
from fp_rank.reporting.aggregate import summarise
from fp_rank.reporting.report import Report
from fp_rank.runs import Run

logger = logging.getLogger(__name__)


@document
def evaluate(
    generated: Any,
    identities: Any = None,
    *,
    gallery: Any,
    methods: Any = None,
    prompts: Any = None,
    seeds: Any = None,
    files: Any = None,
    conditioning: Any = None,
    **options: Any,
) -> Report:
    """Score generated images by how well each retrieves its own identity from the gallery.

    Each generated image is a query ranked against the gallery images of its identity's group;
    its score is the average precision of retrieving that identity (exact under ties). The
    reported metrics are those declared in :data:`fp_rank.protocol.METRICS`.

    Args:
        generated: a :class:`~fp_rank.runs.Run` (from :func:`fp_rank.read_run`), or the image
            sources: paths, bytes, PIL images, arrays, ``{'bytes', 'path'}`` dicts.
        identities: one gallery identity label per image (or one string for all); not with a Run.
        gallery: a gallery folder, a Hub dataset id, or a loaded :class:`~fp_rank.Gallery`.

    Returns:
        A :class:`~fp_rank.Report`.

    Raises:
        InputError: bad arguments, unknown identities, unreadable images (each named).
        GalleryError: a broken gallery, or a group with a single identity.
        EncoderError: the encoder cannot be loaded or returns unusable embeddings.
    """
    # check: every argument, before anything is loaded
    opts = resolve_options(options)
    run = as_run(generated, identities, methods=methods, prompts=prompts, seeds=seeds, files=files,
                 conditioning=conditioning)
    check_gallery_argument(gallery)
    # load
    check_device(opts.device)  # an absent GPU is refused before the gallery is loaded
    dist_ctx, device = distributed.setup(opts.device)
    gal = load.gallery_of(gallery, opts)
    matched = match_labels(run, gal, opts.on_missing)
    run = matched.run
    check_conditioning_indices(run, gal)
    lonely = single_identity_queries(run, gal, matched.absent, opts.single_identity_groups)
    matte = load.matting_of(opts, device)
    judging = _prepare_judge(opts, run, gal, ~(matched.absent | lonely), device)
    embedder = Embedder(
        gal, run.sources, run.files, cache=EmbeddingCache(opts.cache_dir, enabled=opts.cache is not False),
        batch_size=opts.batch_size, progress=opts.progress, on_invalid=opts.on_invalid, check_leaks=opts.leaks != "off",
        num_workers=opts.num_workers,
    )
    ks = sorted(set(opts.cmc_ks) | {1})
    rows: list[dict[str, Any]] = []
    ceilings: list[dict[str, Any]] = []
    encoders: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] | None = None
    draws: dict[str, Any] = {}
    for enc in load.encoders(load.encoder_choices(opts, gal), opts, device=device, matting=matte):
        encoders.append({**enc.identity(), "device": enc.device, "description": enc.description})
        # embed
        vec = embedder.embed(enc, holdout=opts.ceilings or opts.gallery_draws > 0)
        leaks = embedder.leaks()  # fingerprinted during the first encoder's decode pass
        leaked = np.asarray([leak is not None for leak in leaks], dtype=bool)
        skipped = vec.skipped if skipped is None else skipped
        keep = _scored_rows(vec.kept, matched.absent | lonely, leaked if opts.leaks == "exclude" else None)
        # score
        cond = embedder.conditioning(enc, run.conditioning, vec.reference)
        rows += query_rows(enc.name, run, vec, cond, keep, gal, ks=ks, on_missing=opts.on_missing, top_k=opts.top_k,
                           leaks=leaks)
        if opts.gallery_draws:
            draws[enc.name] = _gallery_draws(vec, keep, run, gal, opts)
        if opts.ceilings:
            ceilings += ceiling_rows(enc.name, _real_queries(gal, vec), vec.gallery, gal.gallery.identities,
                                     gal.gallery.groups)
    clip_t_model = _add_clip_t(rows, run, gal, vec.kept, opts, device) if opts.clip_t is not None else None
    judge_record = _add_judgements(judging, rows, opts) if judging is not None else None
    # summarise
    unread = np.ones(len(run), dtype=bool)
    unread[vec.kept] = False
    excluded = leaked & ~unread & ~matched.absent & ~lonely if opts.leaks == "exclude" else np.zeros(len(run), bool)
    counts = {key: run.count(mask) for key, mask in (("n_missing", matched.missing & ~unread), ("n_skipped", unread),
                                                      ("n_excluded", excluded))}
    dropped = {
        (e["name"], method): {key: count[method] for key, count in counts.items()}
        for e in encoders for method in set(run.methods)
    }
    results = summarise(rows, ceilings, encoders=[e["name"] for e in encoders], methods=run.methods, ks=ks,
                        dropped=dropped)
    # report
    meta = metadata(run, gal, encoders, embedder, dist_ctx, opts, ks=ks, matte=matte, matched=matched, lonely=lonely,
                    leaks=leaks, excluded=excluded, clip_t_model=clip_t_model, judge=judge_record)
    report = Report(results=results, queries=rows, metadata=meta, ceilings=ceilings, skipped=skipped or [])
    if draws:
        from fp_rank.evaluation.gallery_draws import RULE

        report.extras["gallery_draws"] = {"n_draws": opts.gallery_draws, "seed": opts.gallery_draw_seed, "rule": RULE,
                                          "encoders": draws}
    return report


def _prepare_judge(opts: Options, run: Run, gal: Gallery, candidates: np.ndarray, device: str | None) -> Any:
    """The judge stage, loaded and its call cap checked before any image is encoded (None without a judge)."""
    if opts.judge is None or not distributed.is_main_process():  # under a launcher, rank 0 alone judges (and reports)
        return None
    from fp_rank.evaluation import judge

    return judge.prepare(opts, run, gal, np.flatnonzero(candidates), device)


def _add_judgements(stage: Any, rows: list[dict[str, Any]], opts: Options) -> dict[str, Any]:
    from fp_rank.evaluation import judge

    return judge.add_judgements(stage, rows, opts)


def _gallery_draws(vec: Vectors, keep: np.ndarray, run: Run, gal: Gallery, opts: Options) -> dict[str, Any]:
    from fp_rank.evaluation import gallery_draws

    return gallery_draws.for_encoder(vec, keep, run, gal, n_draws=opts.gallery_draws, seed=opts.gallery_draw_seed,
                                     on_missing=opts.on_missing)


def as_run(generated: Any, identities: Any, **per_image: Any) -> Run:
    """``generated`` as a :class:`~fp_rank.runs.Run` (a Run is taken as it is; then no labels may be given)."""
    if isinstance(generated, Run):
        given = ["identities"] * (identities is not None) + [k for k, v in per_image.items() if v is not None]
        if given:
            raise InputError(
                f"generated is a Run, which carries its own labels; do not also pass {', '.join(given)} (build the "
                "Run with them, or pass the lists without a Run)"
            )
        return generated
    return Run.from_arguments(generated, identities, **per_image)  # identities=None is refused there, named


def _scored_rows(kept: np.ndarray, absent: np.ndarray, leaked: np.ndarray | None) -> np.ndarray:
    """Positions in ``kept`` (readable images) that are ranked: known identity, and not a leak when excluded."""
    keep = ~absent[kept]
    if leaked is not None:
        keep &= ~leaked[kept]
        if not keep.any():
            raise InputError(
                f"all {int(leaked[kept].sum())} readable generated images copy a real gallery/reference image "
                "(leakage guard); nothing is left to score. See fp_rank.checks.leakage, or pass ",
                Opt("leaks", "flag"),
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


def _add_clip_t(
    rows: list[dict[str, Any]], run: Run, gal: Gallery, readable: np.ndarray, opts: Options, device: str | None
) -> dict[str, Any]:
    """CLIP-T of every readable image that has a prompt (``{X}`` filled with its group's noun), into its rows.

    Returns:
        The CLIP-T checkpoint's identity (recorded in the report).
    """
    from fp_rank.encoding.text_alignment import fill_prompt, load_text_aligner

    aligner = load_text_aligner(opts.clip_t.spec, revision=opts.clip_t.revision, device=device)
    groups = gal.card.get("groups") if isinstance(gal.card.get("groups"), dict) else {}
    group_of = gal.identity_to_group
    index = [int(i) for i in readable if run[i].prompt and run[i].identity in group_of]
    nouns = [str((groups.get(group_of[run[i].identity]) or {}).get("noun", group_of[run[i].identity])) for i in index]
    scores = aligner.score(
        [run[i].source for i in index], [fill_prompt(str(run[i].prompt), noun) for i, noun in zip(index, nouns)],
        names=[run[i].file for i in index], batch_size=opts.batch_size,
    )
    text = dict(zip(index, scores.tolist()))
    for row in rows:
        row["clip_t"] = text.get(row["index"])
    identity = aligner.identity()
    cut = [run[index[k]].file for k in aligner.truncated]
    identity["prompts_truncated"] = {"count": len(cut), "context_length": aligner.context_length(), "files": cut[:20]}
    if cut:
        logger.warning(
            "CLIP-T: %d prompt(s) are longer than the text tower's %s tokens and were cut to them (so prompts that "
            "differ only after that point score alike), e.g. %s; the report counts them (clip_t.prompts_truncated)",
            len(cut), aligner.context_length(), cut[0],
        )
    return identity


__all__ = ["as_run", "evaluate"]
