"""Method rankings per encoder and Kendall's tau between encoders."""

from __future__ import annotations

import itertools
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fp_rank.errors import InputError
from fp_rank.stats import kendall_tau_matrix

METHODS = ["dreambooth", "ip_adapter", "ominicontrol", "kontext"]


def test_identical_rankings_give_one():
    scores = {"dinov2": dict(zip(METHODS, [0.8, 0.6, 0.4, 0.2])),
              "clip": dict(zip(METHODS, [0.5, 0.4, 0.3, 0.1]))}
    out = kendall_tau_matrix(scores)
    assert out["tau"]["dinov2"]["clip"] == pytest.approx(1.0)
    assert out["tau"]["clip"]["dinov2"] == pytest.approx(1.0)
    assert out["tau"]["dinov2"]["dinov2"] == pytest.approx(1.0)
    assert out["rankings"]["dinov2"] == METHODS
    assert out["rankings"]["clip"] == METHODS


def test_reversed_rankings_give_minus_one():
    scores = {"a": dict(zip(METHODS, [4, 3, 2, 1])), "b": dict(zip(METHODS, [1, 2, 3, 4]))}
    out = kendall_tau_matrix(scores)
    assert out["tau"]["a"]["b"] == pytest.approx(-1.0)
    assert out["rankings"]["b"] == METHODS[::-1]


def test_hand_case():
    # a ranks A > B > C > D, b ranks B > A > C > D: one discordant pair out of 6.
    # tau = (5 - 1) / 6 = 2/3.
    scores = {
        "a": {"A": 0.9, "B": 0.8, "C": 0.5, "D": 0.1},
        "b": {"A": 0.7, "B": 0.75, "C": 0.3, "D": 0.2},
    }
    out = kendall_tau_matrix(scores)
    assert out["tau"]["a"]["b"] == pytest.approx(2 / 3)
    (pair,) = out["pairs"]
    assert pair["encoder_a"] == "a" and pair["encoder_b"] == "b"
    assert pair["n_methods"] == 4 and pair["methods"] == ["A", "B", "C", "D"]
    assert 0.0 < pair["p_value"] <= 1.0
    assert out["ranks"]["b"] == {"B": 1, "A": 2, "C": 3, "D": 4}
    assert out["variant"] == "tau-b"


def test_tau_b_with_ties_hand_case():
    # x = (1, 1, 2), y = (1, 2, 3): concordant 2, discordant 0, one tie in x.
    # tau-b = 2 / sqrt((3 - 1) * 3) = 2 / sqrt(6).
    out = kendall_tau_matrix({"x": {"A": 1, "B": 1, "C": 2}, "y": {"A": 1, "B": 2, "C": 3}})
    assert out["tau"]["x"]["y"] == pytest.approx(2 / 6**0.5)
    # Tied scores share the better rank; the ranking list breaks ties by method name.
    assert out["ranks"]["x"] == {"C": 1, "A": 2, "B": 2}
    assert out["rankings"]["x"] == ["C", "A", "B"]


def test_only_shared_methods_are_compared():
    scores = {
        "a": {"A": 3, "B": 2, "C": 1, "X": 0},
        "b": {"A": 3, "B": 2, "C": 1, "Y": 9},
        "c": {"Z": 1.0},
    }
    out = kendall_tau_matrix(scores)
    assert out["tau"]["a"]["b"] == pytest.approx(1.0)
    pair_ab = next(p for p in out["pairs"] if {p["encoder_a"], p["encoder_b"]} == {"a", "b"})
    assert pair_ab["methods"] == ["A", "B", "C"]
    # Fewer than two shared methods: undefined.
    assert out["tau"]["a"]["c"] is None
    assert out["tau"]["c"]["c"] is None
    assert len(out["pairs"]) == 3
    assert out["encoders"] == ["a", "b", "c"]


def test_constant_scores_give_none():
    out = kendall_tau_matrix({"a": {"A": 0.5, "B": 0.5}, "b": {"A": 0.1, "B": 0.9}})
    assert out["tau"]["a"]["b"] is None
    assert out["pairs"][0]["p_value"] is None


def test_output_is_json_serialisable():
    out = kendall_tau_matrix({"a": {"A": 0.5, "B": 0.4, "C": 0.1}, "b": {"A": 0.2, "B": 0.4}})
    assert json.loads(json.dumps(out)) == out


@pytest.mark.parametrize(
    ("scores", "match"),
    [
        ({}, "scores must be a non-empty dict"),
        ([("a", {"A": 1.0})], "scores must be a non-empty dict"),
        ({"a": {}}, r"scores\['a'\] must be a non-empty dict"),
        ({"a": [0.1, 0.2]}, r"scores\['a'\] must be a non-empty dict"),
        ({"a": {"A": float("nan")}}, r"scores\['a'\]\['A'\] must be a finite number"),
        ({"a": {"A": "high"}}, r"scores\['a'\]\['A'\] must be a finite number"),
    ],
)
def test_invalid_scores(scores, match):
    with pytest.raises(InputError, match=match):
        kendall_tau_matrix(scores)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.lists(st.floats(0, 1, allow_nan=False), min_size=4, max_size=4, unique=True),
        min_size=2,
        max_size=4,
    )
)
def test_matrix_is_symmetric_bounded_with_unit_diagonal(columns):
    scores = {f"e{k}": dict(zip(METHODS, column)) for k, column in enumerate(columns)}
    out = kendall_tau_matrix(scores)
    for a, b in itertools.product(scores, repeat=2):
        tau = out["tau"][a][b]
        assert tau == out["tau"][b][a]
        assert -1.0 - 1e-12 <= tau <= 1.0 + 1e-12
    for a in scores:
        assert out["tau"][a][a] == pytest.approx(1.0)
