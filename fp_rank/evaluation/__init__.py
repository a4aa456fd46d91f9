"""Evaluation as a short pipeline: check, load, embed, score, summarise, report.

* :mod:`~fp_rank.evaluation.pipeline`: :func:`evaluate`, the entry point, reading as its stages;
* :mod:`~fp_rank.evaluation.check`: the check stage (the run's labels matched to the gallery
  before anything is encoded); :mod:`~fp_rank.evaluation.load` the load stage;
* :mod:`~fp_rank.evaluation.embed`: the only stage that touches encoders, the cache and ranks;
* :mod:`~fp_rank.evaluation.score`: per-query metrics from embeddings (pure NumPy);
* the summarise stage is :func:`fp_rank.reporting.aggregate.summarise` (pure; it also
  re-aggregates a saved report).
"""

from fp_rank.errors import deprecated_name
from fp_rank.evaluation.pipeline import evaluate

__all__ = ["evaluate"]

#: Names fp-rank 0.1 exported from here, until 0.3.
_DEPRECATED = {"DEFAULT_METHOD": ("fp_rank.runs.run", "DEFAULT_METHOD", "fp_rank.runs.DEFAULT_METHOD"),
               "summarise": ("fp_rank.reporting.aggregate", "summarise", "fp_rank.reporting.aggregate.summarise")}


def __getattr__(name: str) -> object:
    return deprecated_name(__name__, name, _DEPRECATED)
