"""The ranking maths against oracles, exhaustive enumeration, hand cases and properties."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fp_rank import InputError, average_precision, chance_average_precision, rank_metrics


def textbook_ap(scores: np.ndarray, relevant: np.ndarray) -> float:
    """AP the way every textbook writes it: sort, walk down, average precision at hits."""
    order = np.argsort(-scores, kind="stable")
    hits, total = 0, 0.0
    for rank, idx in enumerate(order, start=1):
        if relevant[idx]:
            hits += 1
            total += hits / rank
    return total / relevant.sum()


def ap_of_order(rel_in_rank_order: list[bool]) -> float:
    hits, total = 0, 0.0
    for rank, rel in enumerate(rel_in_rank_order, start=1):
        if rel:
            hits += 1
            total += hits / rank
    return total / sum(rel_in_rank_order)


def expected_over_tied_orderings(scores: list[float], relevant: list[bool]) -> dict[str, float]:
    """Brute force: every ordering of the items that is consistent with the scores, equally likely."""
    values: dict[str, list[float]] = {
        "ap": [], "cmc1": [], "cmc3": [], "recall1": [], "recall3": [], "first": [], "inp": []
    }
    n = len(scores)
    for perm in itertools.permutations(range(n)):
        if any(scores[perm[i]] < scores[perm[i + 1]] for i in range(n - 1)):
            continue
        rel = [relevant[p] for p in perm]
        first = rel.index(True) + 1
        last = max(i for i, r in enumerate(rel, start=1) if r)
        values["ap"].append(ap_of_order(rel))
        values["cmc1"].append(float(first <= 1))
        values["cmc3"].append(float(first <= 3))
        values["recall1"].append(sum(rel[:1]) / sum(rel))
        values["recall3"].append(sum(rel[:3]) / sum(rel))
        values["first"].append(first)
        values["inp"].append(sum(rel) / last)
    return {k: float(np.mean(v)) for k, v in values.items()}


def random_untied_case(seed: int, q: int, n: int, n_ids: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gaussian similarities (no ties), random gallery labels, queries of identities present."""
    rng = np.random.default_rng(seed)
    sim = rng.normal(size=(q, n))
    gallery_ids = rng.integers(0, n_ids, size=n)
    return sim, rng.choice(np.unique(gallery_ids), size=q), gallery_ids


def test_oracle_untied_random_inputs() -> None:
    q = 60
    sim, query_ids, gallery_ids = random_untied_case(0, q, 200, 12)
    res = rank_metrics(sim, query_ids, gallery_ids)
    expected = np.array([textbook_ap(sim[i], gallery_ids == query_ids[i]) for i in range(q)])
    assert np.max(np.abs(res.ap - expected)) <= 1e-12
    assert res.n_tied == 0
    assert res.map == pytest.approx(expected.mean(), abs=1e-12)


def test_agrees_with_scikit_learn_without_ties() -> None:
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(1)
    for _ in range(20):
        scores = rng.normal(size=50)
        relevant = rng.random(50) < 0.2
        relevant[0] = True
        assert average_precision(scores, relevant) == pytest.approx(
            metrics.average_precision_score(relevant, scores), abs=1e-12
        )


@pytest.mark.parametrize("seed", range(4))
def test_ties_equal_exhaustive_enumeration(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(60):
        n = int(rng.integers(1, 8))
        scores = rng.integers(0, 3, size=n).astype(float)
        relevant = rng.random(n) < 0.5
        if not relevant.any():
            relevant[rng.integers(n)] = True
        res = rank_metrics(scores[None, :], [1], np.where(relevant, 1, 0), cmc_ks=(1, 3))
        brute = expected_over_tied_orderings(scores.tolist(), relevant.tolist())
        assert res.ap[0] == pytest.approx(brute["ap"], abs=1e-12)
        assert res.cmc[1][0] == pytest.approx(brute["cmc1"], abs=1e-12)
        assert res.cmc[3][0] == pytest.approx(brute["cmc3"], abs=1e-12)
        assert res.recall[1][0] == pytest.approx(brute["recall1"], abs=1e-12)
        assert res.recall[3][0] == pytest.approx(brute["recall3"], abs=1e-12)
        assert res.first_hit_rank[0] == pytest.approx(brute["first"], abs=1e-12)
        assert res.inp[0] == pytest.approx(brute["inp"], abs=1e-12)


def test_hand_computed_cases() -> None:
    # relevant at ranks 1 and 3 of 3: (1/1 + 2/3) / 2
    assert average_precision([0.9, 0.8, 0.7], [True, False, True]) == pytest.approx(5 / 6)
    # one relevant tied with one non-relevant at the top: mean of precision 1 and 1/2
    assert average_precision([0.5, 0.5], [True, False]) == pytest.approx(0.75)
    # all tied, 1 relevant of 3: (1 + 1/2 + 1/3) / 3
    assert average_precision([0.0, 0.0, 0.0], [False, True, False]) == pytest.approx(11 / 18)
    # negative cosines are ordinary scores
    assert average_precision([-0.9, -0.1, -0.5], [True, False, False]) == pytest.approx(1 / 3)
    res = rank_metrics(np.array([[0.1, 0.9, 0.5]]), ["a"], ["b", "a", "b"], cmc_ks=(1, 2))
    assert res.first_hit_rank[0] == 1 and res.cmc[1][0] == 1 and res.inp[0] == 1


def test_ties_never_depend_on_gallery_order() -> None:
    rng = np.random.default_rng(3)
    scores = rng.integers(0, 4, size=40).astype(float)
    relevant = rng.random(40) < 0.3
    relevant[0] = True
    base = average_precision(scores, relevant)
    for _ in range(10):
        perm = rng.permutation(40)
        assert average_precision(scores[perm], relevant[perm]) == pytest.approx(base, abs=1e-12)


@pytest.mark.parametrize("n_gallery", range(1, 9))
def test_chance_floor_equals_enumeration_of_all_rankings(n_gallery: int) -> None:
    for r in range(1, n_gallery + 1):
        values = []
        for positions in itertools.combinations(range(n_gallery), r):
            rel = [i in positions for i in range(n_gallery)]
            values.append(ap_of_order(rel))
        assert chance_average_precision(r, n_gallery) == pytest.approx(float(np.mean(values)), abs=1e-12)


def test_chance_floor_is_reported_per_query() -> None:
    res = rank_metrics(np.zeros((2, 5)), ["a", "b"], ["a", "a", "b", "c", "c"])
    # with every score tied, AP is exactly the chance level
    assert np.allclose(res.ap, res.chance_ap, atol=1e-12)
    assert res.chance_ap[0] == pytest.approx(chance_average_precision(2, 5))
    assert res.n_tied == 2


def test_missing_identity_policies_and_counts() -> None:
    sim = np.array([[0.9, 0.1], [0.3, 0.2]])
    with pytest.raises(InputError, match="no gallery item"):
        rank_metrics(sim, ["a", "zzz"], ["a", "b"])
    skip = rank_metrics(sim, ["a", "zzz"], ["a", "b"], on_missing="skip")
    assert skip.n_missing == 1 and math.isnan(skip.ap[1]) and skip.map == 1.0
    zero = rank_metrics(sim, ["a", "zzz"], ["a", "b"], on_missing="zero")
    assert zero.n_missing == 1 and zero.ap[1] == 0.0 and zero.map == 0.5


def test_chunking_does_not_change_results() -> None:
    rng = np.random.default_rng(5)
    sim = np.round(rng.normal(size=(37, 50)), 1)  # rounding creates ties
    g = rng.integers(0, 5, size=50)
    q = rng.choice(np.unique(g), size=37)
    a = rank_metrics(sim, q, g, chunk_size=1)
    b = rank_metrics(sim, q, g)
    c = rank_metrics(torch.from_numpy(sim).float(), q, g, chunk_size=7)
    # equal up to float64 summation order (the padded width of a chunk changes the reduction)
    np.testing.assert_allclose(a.ap, b.ap, rtol=0, atol=1e-15)
    np.testing.assert_allclose(a.ap, c.ap, rtol=0, atol=1e-15)  # ties survive float32
    for k in a.cmc:
        np.testing.assert_allclose(a.cmc[k], b.cmc[k], rtol=0, atol=1e-15)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"similarity": np.zeros(3), "query_ids": ["a"], "gallery_ids": ["a"] * 3}, "2-D"),
        ({"similarity": np.zeros((2, 3)), "query_ids": ["a"], "gallery_ids": ["a"] * 3}, "query_ids has 1"),
        ({"similarity": np.zeros((1, 3)), "query_ids": ["a"], "gallery_ids": ["a"] * 2}, "gallery_ids has 2"),
        ({"similarity": np.array([[np.nan, 1.0]]), "query_ids": ["a"], "gallery_ids": ["a", "b"]}, "NaN"),
        ({"similarity": np.zeros((1, 2)), "query_ids": ["a"], "gallery_ids": ["a", "b"], "on_missing": "drop"}, "on_missing"),
        ({"similarity": np.zeros((1, 2)), "query_ids": ["a"], "gallery_ids": ["a", "b"], "cmc_ks": (0,)}, "cmc_ks"),
    ],
)
def test_bad_inputs_raise_input_error(kwargs: dict, message: str) -> None:
    with pytest.raises(InputError, match=message):
        rank_metrics(**kwargs)


def test_average_precision_needs_a_relevant_item() -> None:
    with pytest.raises(InputError, match="no relevant item"):
        average_precision([0.1, 0.2], [False, False])


score_lists = st.lists(st.integers(min_value=-3, max_value=3), min_size=2, max_size=12)


@settings(max_examples=150, deadline=None)
@given(scores=score_lists, data=st.data())
def test_properties_bounds_permutation_and_monotonicity(scores: list[int], data: st.DataObject) -> None:
    n = len(scores)
    relevant = data.draw(st.lists(st.booleans(), min_size=n, max_size=n).filter(any))
    s = np.asarray(scores, dtype=float)
    r = np.asarray(relevant)
    ap = average_precision(s, r)
    assert chance_average_precision(int(r.sum()), n) >= 0
    assert 0.0 < ap <= 1.0 + 1e-12
    perm = np.asarray(data.draw(st.permutations(list(range(n)))))
    assert average_precision(s[perm], r[perm]) == pytest.approx(ap, abs=1e-12)
    # moving a relevant item up never lowers AP
    i = int(data.draw(st.sampled_from(np.flatnonzero(r).tolist())))
    bumped = s.copy()
    bumped[i] += data.draw(st.integers(min_value=1, max_value=4))
    assert average_precision(bumped, r) >= ap - 1e-12
    # all relevant strictly above all others gives AP 1
    perfect = np.where(r, 10.0, 0.0) + s * 1e-3
    assert average_precision(perfect, r) == pytest.approx(1.0)
