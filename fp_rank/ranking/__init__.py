"""Ranking maths: AP with exact tie handling, CMC, mINP and the chance floor (no I/O)."""

from fp_rank.ranking.metrics import (
    RankingResult,
    average_precision,
    chance_average_precision,
    rank_metrics,
)

__all__ = ["RankingResult", "average_precision", "chance_average_precision", "rank_metrics"]
