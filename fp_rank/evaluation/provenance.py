"""What a report records about how it was made: versions, gallery, encoders, cache use, options,
and every input that was left out or changed (missing labels, renamed labels, copies)."""

from __future__ import annotations

from typing import Any

import numpy as np

from fp_rank.checks.leakage import DEFAULT_MAX_DISTANCE, DEFAULT_MAX_THUMB_DIFF
from fp_rank.encoding.background import Matting
from fp_rank.evaluation.check import Matched
from fp_rank.evaluation.embed import Embedder, EmbedStats
from fp_rank.galleries.load import Gallery
from fp_rank.options import Options
from fp_rank.runs import Run
from fp_rank.version import PROTOCOL_VERSION, __version__


def metadata(
    run: Run, gal: Gallery, encoders: list[dict[str, Any]], embedder: Embedder, dist_ctx: Any, opts: Options, *,
    ks: list[int], matte: Matting | None, matched: Matched, lonely: np.ndarray, leaks: list[dict[str, Any] | None],
    excluded: np.ndarray, clip_t_model: dict[str, Any] | None, judge: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The report's ``metadata``."""
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
            "on_missing": opts.on_missing,
            "on_invalid": opts.on_invalid,
            "cmc_ks": ks,
            "batch_size": opts.batch_size,
            "background": "remove" if opts.removes_background else "keep",
            "matting": matte.identity() if matte is not None else None,
            **({"background_removal": {
                "empty_foreground": len(matte.emptied), "files": matte.emptied[:20],
                "note": "images decoded in this run whose matte kept nothing (images read from the cache are not "
                        "counted again)",
            }} if matte is not None else {}),
            "aggregation": "macro over groups (group mAP = mean AP of its queries)",
            "ties": "expected value over tied orderings",
        },
        "n_generated": len(run),
        "missing": [
            {"index": int(i), "file": run[i].file, "identity": run[i].identity, "method": run[i].method}
            for i in np.flatnonzero(matched.missing)
        ],
        "labels_normalised": matched.renamed,
        "clip_t": clip_t_model,
        "judge": judge,
        "single_identity_groups": {
            "groups": sorted({group_of[run[i].identity] for i in np.flatnonzero(lonely)}),
            "n_queries": int(lonely.sum()),
        },
        "leakage": _leakage(run, leaks, excluded, opts),
    }


def _leakage(run: Run, leaks: list[dict[str, Any] | None], excluded: np.ndarray, opts: Options) -> dict[str, Any]:
    return {
        "checked": opts.leaks != "off",
        "rule": "sha256 match, or pHash Hamming distance and 16x16 thumbnail difference within thresholds",
        "max_distance": DEFAULT_MAX_DISTANCE,
        "max_thumb_diff": DEFAULT_MAX_THUMB_DIFF,
        "n_flagged": sum(1 for leak in leaks if leak is not None),
        "flagged": [
            {"query_index": i, "file": run[i].file, "method": run[i].method, **leak}
            for i, leak in enumerate(leaks) if leak is not None
        ],
        "excluded": opts.leaks == "exclude",
        "n_excluded": int(excluded.sum()),
    }
