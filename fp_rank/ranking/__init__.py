"""Ranking maths: AP with exact tie handling, CMC, Recall, mINP and the chance floor (arrays in,
numbers out; no I/O, no torch).

* :mod:`~fp_rank.ranking.metrics`: the public functions (``rank_metrics``, ``average_precision``);
* :mod:`~fp_rank.ranking.numpy_path`: the NumPy definition of the counts and metrics;
* :mod:`~fp_rank.ranking.compiled`: the same maths compiled by Numba (tested against it);
* :mod:`~fp_rank.ranking.accumulate`: blocks of queries, threads, and the choice between the two;
* :mod:`~fp_rank.ranking.chance`: the exact chance floor.
"""

from fp_rank.ranking.chance import chance_average_precision
from fp_rank.ranking.metrics import average_precision, rank_metrics, rank_metrics_from_embeddings
from fp_rank.ranking.result import RankingResult

__all__ = [
    "RankingResult", "average_precision", "chance_average_precision", "rank_metrics", "rank_metrics_from_embeddings",
]
