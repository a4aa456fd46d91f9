"""fp-rank: Finer-Personalization Rank, identity preservation scored as fine-grained retrieval.

Main entry points:

* :func:`evaluate` scores generated images against an identity-labelled gallery;
* :func:`rank_metrics` / :func:`average_precision` are the pure ranking maths;
* :func:`load_encoder` and :func:`load_gallery` load backbones and galleries.

Nothing is loaded at import time: the names above are imported on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from fp_rank.errors import (
    CacheError,
    EncoderError,
    FpRankError,
    GalleryError,
    ImageDecodeError,
    InputError,
)
from fp_rank.version import PROTOCOL_VERSION, __version__

#: Public names whose modules import torch, transformers, PIL or datasets: resolved on first use
#: (module ``__getattr__``), so ``import fp_rank`` and ``fp-rank --help`` stay fast.
_LAZY = {
    "EmbeddingCache": "fp_rank.caching.store",
    "cache_key": "fp_rank.caching.store",
    "Encoder": "fp_rank.encoding.encoders",
    "load_encoder": "fp_rank.encoding.encoders",
    "evaluate": "fp_rank.evaluation.pipeline",
    "Gallery": "fp_rank.galleries.load",
    "load_gallery": "fp_rank.galleries.load",
    "RankingResult": "fp_rank.ranking.metrics",
    "average_precision": "fp_rank.ranking.metrics",
    "chance_average_precision": "fp_rank.ranking.metrics",
    "rank_metrics": "fp_rank.ranking.metrics",
    "MethodResult": "fp_rank.reporting.report",
    "Report": "fp_rank.reporting.report",
}

if TYPE_CHECKING:
    from fp_rank.caching.store import EmbeddingCache, cache_key
    from fp_rank.encoding.encoders import Encoder, load_encoder
    from fp_rank.evaluation.pipeline import evaluate
    from fp_rank.galleries.load import Gallery, load_gallery
    from fp_rank.ranking.metrics import (
        RankingResult,
        average_precision,
        chance_average_precision,
        rank_metrics,
    )
    from fp_rank.reporting.report import MethodResult, Report


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'fp_rank' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "PROTOCOL_VERSION",
    "CacheError",
    "EmbeddingCache",
    "Encoder",
    "EncoderError",
    "FpRankError",
    "Gallery",
    "GalleryError",
    "ImageDecodeError",
    "InputError",
    "MethodResult",
    "RankingResult",
    "Report",
    "__version__",
    "average_precision",
    "cache_key",
    "chance_average_precision",
    "evaluate",
    "load_encoder",
    "load_gallery",
    "rank_metrics",
]
