"""Finer-Personalization Rank: the Hugging Face `evaluate` metric module.

Thin over the `fp_rank` library (pip install fp-rank): all logic lives in `fp_rank.metric`.
Load it with `evaluate.load("fp-rank")` (after `fp-rank install-metric`, or from the Hub Space)
or by path: `evaluate.load("<checkout>/finer_personalization_rank.py")`.
"""

from fp_rank.metric import FinerPersonalizationRank

__all__ = ["FinerPersonalizationRank"]
