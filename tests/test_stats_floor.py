"""The chance floor: closed-form expected AP of a random ranking against exhaustive enumeration."""

from __future__ import annotations

import itertools
from fractions import Fraction

import pytest


def _textbook_ap(relevant_ranks: tuple[int, ...]) -> Fraction:
    """Mean over relevant items of precision at their (1-based) rank."""
    return sum(
        (Fraction(k, rank) for k, rank in enumerate(sorted(relevant_ranks), start=1)), Fraction(0)
    ) / len(relevant_ranks)


def _enumerated_expected_ap(n_relevant: int, n_gallery: int) -> Fraction:
    """Every set of relevant positions is equally likely under a uniformly random ranking."""
    positions = list(itertools.combinations(range(1, n_gallery + 1), n_relevant))
    return sum((_textbook_ap(p) for p in positions), Fraction(0)) / len(positions)


CASES = [(r, n) for n in range(1, 9) for r in range(1, n + 1)]


@pytest.mark.parametrize(("n_relevant", "n_gallery"), CASES)
def test_chance_ap_matches_enumeration(n_relevant, n_gallery):
    from fp_rank.ranking import chance_average_precision

    expected = float(_enumerated_expected_ap(n_relevant, n_gallery))
    assert chance_average_precision(n_relevant, n_gallery) == pytest.approx(expected, abs=1e-12)


def test_enumeration_over_permutations_agrees_for_a_small_case():
    # Cross-check of the enumeration itself: all 6! orderings of 2 relevant + 4 others.
    total, count = Fraction(0), 0
    for order in itertools.permutations([1, 1, 0, 0, 0, 0]):
        ranks = tuple(rank for rank, relevant in enumerate(order, start=1) if relevant)
        total += _textbook_ap(ranks)
        count += 1
    assert total / count == _enumerated_expected_ap(2, 6)


def test_edge_cases():
    from fp_rank.ranking import chance_average_precision

    assert chance_average_precision(1, 1) == 1.0
    assert chance_average_precision(5, 5) == pytest.approx(1.0, abs=1e-12)
    # One relevant among N: E[1 / rank] = H_N / N.
    assert chance_average_precision(1, 4) == pytest.approx((1 + 1 / 2 + 1 / 3 + 1 / 4) / 4)
