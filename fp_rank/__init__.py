"""fp-rank: Finer-Personalization Rank, identity preservation scored as fine-grained retrieval.

Main entry points:

* :func:`evaluate` scores generated images (a :class:`Run`, or lists of files and labels) against
  an identity-labelled gallery and returns a :class:`Report`;
* :func:`read_run` reads a folder or manifest of generated images into a :class:`Run`;
* :func:`add_statistics`, :func:`compare`, :func:`plan` analyse a report; :func:`format_table`,
  :func:`to_markdown`, :func:`plot` show it;
* :func:`rank_metrics` / :func:`average_precision` are the pure ranking maths;
* :func:`load_encoder` and :func:`load_gallery` load backbones and galleries.

Nothing is loaded at import time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fp_rank import _compat  # noqa: F401  (0.1's Report methods, until 0.3)
from fp_rank._lazy import lazy_exports
from fp_rank.errors import (
    CacheError,
    EncoderError,
    FpRankDeprecationWarning,
    FpRankError,
    GalleryError,
    ImageDecodeError,
    InputError,
)
from fp_rank.reporting.report import MethodResult, Report
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
    "add_intervals": "fp_rank.analysis",
    "add_statistics": "fp_rank.analysis",
    "compare": "fp_rank.analysis",
    "drift": "fp_rank.analysis",
    "plan": "fp_rank.analysis",
    "format_table": "fp_rank.views.table",
    "GeneratedImage": "fp_rank.runs",
    "Run": "fp_rank.runs",
    "read_run": "fp_rank.runs",
    "demo_gallery": "fp_rank.demo.run",
    "to_markdown": "fp_rank.views.markdown",
    "plot": "fp_rank.views.plots",
}

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())

if TYPE_CHECKING:  # pragma: no cover
    from fp_rank.analysis import add_intervals, add_statistics, compare, drift, plan
    from fp_rank.caching import EmbeddingCache, cache_key
    from fp_rank.encoding import Encoder, load_encoder
    from fp_rank.evaluation import evaluate
    from fp_rank.galleries import Gallery, load_gallery
    from fp_rank.ranking import RankingResult, average_precision, chance_average_precision, rank_metrics
    from fp_rank.views.markdown import to_markdown
    from fp_rank.views.plots import plot
    from fp_rank.views.table import format_table
    from fp_rank.runs import GeneratedImage, Run, read_run
    from fp_rank.demo.run import demo_gallery

__all__ = [
    "PROTOCOL_VERSION",
    "CacheError",
    "EmbeddingCache",
    "Encoder",
    "EncoderError",
    "FpRankDeprecationWarning",
    "FpRankError",
    "Gallery",
    "GalleryError",
    "GeneratedImage",
    "ImageDecodeError",
    "InputError",
    "MethodResult",
    "RankingResult",
    "Report",
    "Run",
    "__version__",
    "add_intervals",
    "add_statistics",
    "average_precision",
    "cache_key",
    "chance_average_precision",
    "compare",
    "demo_gallery",
    "drift",
    "evaluate",
    "format_table",
    "load_encoder",
    "load_gallery",
    "plan",
    "plot",
    "rank_metrics",
    "read_run",
    "to_markdown",
]
