"""The per-query result of the ranking maths."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fp_rank.errors import InputError


@dataclass
class RankingResult:
    """Per-query retrieval metrics for one block of queries against one gallery.

    All arrays have one entry per query. Queries without any relevant gallery item get NaN
    (``on_missing="skip"``) or 0 (``on_missing="zero"``) and ``scored=False`` / ``True``.
    """

    ap: np.ndarray
    first_hit_rank: np.ndarray
    inp: np.ndarray
    cmc: dict[int, np.ndarray]
    chance_ap: np.ndarray
    n_relevant: np.ndarray
    n_gallery: int
    tied: np.ndarray
    top1: np.ndarray
    scored: np.ndarray
    missing: np.ndarray
    on_missing: str = "error"
    extras: dict[str, Any] = field(default_factory=dict)
    #: k -> expected share of the query's relevant items ranked within the top k (Recall@k).
    recall: dict[int, np.ndarray] = field(default_factory=dict)

    @property
    def map(self) -> float:
        """Mean AP over the scored queries (NaN when none)."""
        return _nanmean(self.ap[self.scored])

    @property
    def minp(self) -> float:
        """Mean INP over the scored queries."""
        return _nanmean(self.inp[self.scored])

    @property
    def chance_map(self) -> float:
        """Mean chance-level AP over the scored queries."""
        return _nanmean(self.chance_ap[self.scored])

    def recall_at(self, k: int) -> float:
        """Mean expected share of relevant items within the top ``k``."""
        if k not in self.recall:
            raise InputError(f"Recall@{k} was not computed; computed ks: {sorted(self.recall)}")
        return _nanmean(self.recall[k][self.scored])

    def cmc_at(self, k: int) -> float:
        """Mean probability that the first hit is within the top ``k``."""
        if k not in self.cmc:
            raise InputError(f"CMC@{k} was not computed; computed ks: {sorted(self.cmc)}")
        return _nanmean(self.cmc[k][self.scored])

    @property
    def n_tied(self) -> int:
        """Queries whose ranking had a relevant item tied with a non-relevant one."""
        return int(self.tied[self.scored].sum())

    @property
    def n_missing(self) -> int:
        """Queries whose identity had no relevant gallery item."""
        return int(self.missing.sum())


def _nanmean(x: np.ndarray) -> float:
    return float(np.mean(x)) if x.size else float("nan")
