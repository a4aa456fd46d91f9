"""fp-rank: Finer-Personalization Rank, identity preservation scored as fine-grained retrieval.

Main entry points:

* :func:`evaluate` scores generated images against an identity-labelled gallery;
* :func:`rank_metrics` / :func:`average_precision` are the pure ranking maths;
* :func:`load_encoder` and :func:`load_gallery` load backbones and galleries.

Nothing is loaded at import time.
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

# The rest is imported on first use (PEP 562), so that ``fp-rank --help`` and the error classes
# do not import torch.
_LAZY = {
    "EmbeddingCache": "fp_rank.caching",
    "cache_key": "fp_rank.caching",
    "Encoder": "fp_rank.encoding",
    "load_encoder": "fp_rank.encoding",
    "evaluate": "fp_rank.evaluation",
    "Gallery": "fp_rank.galleries",
    "load_gallery": "fp_rank.galleries",
    "RankingResult": "fp_rank.ranking",
    "average_precision": "fp_rank.ranking",
    "chance_average_precision": "fp_rank.ranking",
    "rank_metrics": "fp_rank.ranking",
    "MethodResult": "fp_rank.reporting.report",
    "Report": "fp_rank.reporting.report",
}

if TYPE_CHECKING:  # pragma: no cover
    from fp_rank.caching import EmbeddingCache, cache_key
    from fp_rank.encoding import Encoder, load_encoder
    from fp_rank.evaluation import evaluate
    from fp_rank.galleries import Gallery, load_gallery
    from fp_rank.ranking import RankingResult, average_precision, chance_average_precision, rank_metrics
    from fp_rank.reporting.report import MethodResult, Report


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'fp_rank' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
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
