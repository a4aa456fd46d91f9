"""Evaluation as a short pipeline: check, load, embed, score, summarise, report.

* :mod:`~fp_rank.evaluation.pipeline`: :func:`evaluate`, the entry point, reading as its stages;
* :mod:`~fp_rank.evaluation.queries`: the check stage (the run's labels matched to the gallery
  before anything is encoded);
* :mod:`~fp_rank.evaluation.embed`: the only stage that touches encoders, the cache and ranks;
* :mod:`~fp_rank.evaluation.score`: per-query metrics from embeddings (pure NumPy);
* the summarise stage is :func:`fp_rank.reporting.aggregate.summarise` (pure; it also
  re-aggregates a saved report).
"""

from fp_rank.evaluation.pipeline import evaluate

__all__ = ["evaluate"]
