"""Recall@k (the share of a query's R relevant items within its top k) against oracles.

The exhaustive enumeration of tied orderings is in test_ranking.py (it covers Recall@1 and @3)."""

from __future__ import annotations

import numpy as np
import pytest

from fp_rank import rank_metrics
from fp_rank.ranking.metrics import rank_metrics_from_embeddings
from tests.test_ranking import random_untied_case


def textbook_recall(scores: np.ndarray, relevant: np.ndarray, k: int) -> float:
    """Sort, take the first k, count the relevant ones, divide by R."""
    order = np.argsort(-scores, kind="stable")
    return float(relevant[order[:k]].sum() / relevant.sum())


def test_recall_oracle_untied() -> None:
    q = 50
    sim, query_ids, gallery_ids = random_untied_case(3, q, 120, 8)
    ks = (1, 2, 5, 10, 200)
    res = rank_metrics(sim, query_ids, gallery_ids, cmc_ks=ks)
    for k in ks:
        expected = np.array([textbook_recall(sim[i], gallery_ids == query_ids[i], k) for i in range(q)])
        np.testing.assert_allclose(res.recall[k], expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(res.recall[200], 1.0)
    assert res.recall_at(5) == pytest.approx(np.mean(res.recall[5]), abs=1e-15)


def test_recall_hand_cases() -> None:
    # relevant at ranks 1 and 3 of 4: Recall@1 = 1/2, Recall@2 = 1/2, Recall@3 = 1
    res = rank_metrics(np.array([[0.9, 0.8, 0.7, 0.1]]), ["a"], ["a", "b", "a", "b"], cmc_ks=(1, 2, 3))
    assert [res.recall[k][0] for k in (1, 2, 3)] == [0.5, 0.5, 1.0]
    # all four tied, two relevant: within the top 1, on average 1/4 of an item... of R = 2 -> 1/4
    res = rank_metrics(np.zeros((1, 4)), ["a"], ["a", "b", "a", "b"], cmc_ks=(1, 2))
    assert res.recall[1][0] == pytest.approx(0.25) and res.recall[2][0] == pytest.approx(0.5)


def test_recall_on_missing_policies() -> None:
    sim = np.array([[0.9, 0.1], [0.5, 0.4]])
    zero = rank_metrics(sim, ["a", "z"], ["a", "b"], cmc_ks=(1,), on_missing="zero")
    assert zero.recall[1].tolist() == [1.0, 0.0]
    skip = rank_metrics(sim, ["a", "z"], ["a", "b"], cmc_ks=(1,), on_missing="skip")
    assert skip.recall[1][0] == 1.0 and np.isnan(skip.recall[1][1])


def test_recall_from_embeddings_equals_matrix_path() -> None:
    rng = np.random.default_rng(7)
    q_emb, g_emb = rng.normal(size=(30, 8)), rng.normal(size=(40, 8))
    q_ids, g_ids = rng.integers(0, 4, size=30), rng.integers(0, 4, size=40)
    a = rank_metrics_from_embeddings(q_emb, g_emb, q_ids, g_ids, cmc_ks=(1, 5), chunk_size=7)
    b = rank_metrics(q_emb @ g_emb.T, q_ids, g_ids, cmc_ks=(1, 5))
    for k in (1, 5):
        np.testing.assert_allclose(a.recall[k], b.recall[k], rtol=0, atol=1e-15)
