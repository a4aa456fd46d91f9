"""fp-rank: Finer-Personalization Rank, identity preservation scored as fine-grained retrieval.

Main entry points:

* :func:`evaluate` scores generated images against an identity-labelled gallery;
* :func:`rank_metrics` / :func:`average_precision` are the pure ranking maths;
* :func:`load_encoder` and :func:`load_gallery` load backbones and galleries.

Nothing is loaded at import time.
"""

from fp_rank.caching import EmbeddingCache, cache_key
from fp_rank.encoding import Encoder, load_encoder
from fp_rank.errors import (
    CacheError,
    EncoderError,
    FpRankError,
    GalleryError,
    ImageDecodeError,
    InputError,
)
from fp_rank.evaluation import evaluate
from fp_rank.galleries import Gallery, load_gallery
from fp_rank.ranking import RankingResult, average_precision, chance_average_precision, rank_metrics
from fp_rank.reporting.report import MethodResult, Report
from fp_rank.version import PROTOCOL_VERSION, __version__

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
