"""Evaluation as a short pipeline: check, load, embed, score, summarise, report.

* :mod:`~fp_rank.evaluation.pipeline`: :func:`evaluate`, the entry point, reading as its stages;
* :mod:`~fp_rank.evaluation.queries`: the check stage (the run's images and labels, matched to the
  gallery before anything is encoded);
* :mod:`~fp_rank.evaluation.embed`: the only stage that touches encoders, the cache and ranks;
* :mod:`~fp_rank.evaluation.score`: per-query metrics from embeddings (pure NumPy);
* :mod:`~fp_rank.evaluation.summarise`: per-query rows -> method results (pure; also re-aggregates
  a saved report).
"""

from fp_rank.evaluation.pipeline import evaluate
from fp_rank.evaluation.queries import DEFAULT_METHOD, QuerySet
from fp_rank.evaluation.summarise import summarise

__all__ = ["DEFAULT_METHOD", "QuerySet", "evaluate", "summarise"]
