"""Drift diagnostics: confusion matrix from query identity to top-1 identity, worst queries."""

from __future__ import annotations

import numpy as np
import pytest

from fp_rank.errors import InputError
from fp_rank.stats import confusion_matrix, worst_queries


def test_confusion_matrix_hand_case():
    queries = ["wren_a", "wren_a", "wren_a", "wren_b", "wren_b", "wren_c"]
    top1 = ["wren_a", "wren_b", "wren_b", "wren_b", "wren_c", "wren_a"]
    matrix, labels = confusion_matrix(queries, top1)
    assert labels == ["wren_a", "wren_b", "wren_c"]
    assert matrix.dtype == np.int64
    assert matrix.tolist() == [[1, 2, 0], [0, 1, 1], [1, 0, 0]]
    assert matrix.sum() == len(queries)
    assert np.trace(matrix) == 2  # top-1 hits


def test_confusion_matrix_includes_retrieved_only_identities():
    # A gallery identity never used as a query still gets a column (and an empty row).
    matrix, labels = confusion_matrix(["a", "a"], ["a", "z"])
    assert labels == ["a", "z"]
    assert matrix.tolist() == [[1, 1], [0, 0]]


def test_confusion_matrix_with_given_labels():
    matrix, labels = confusion_matrix(["b", "a"], ["a", "a"], labels=["b", "a", "c"])
    assert labels == ["b", "a", "c"]
    assert matrix.tolist() == [[0, 1, 0], [0, 1, 0], [0, 0, 0]]


def test_confusion_matrix_empty_input():
    matrix, labels = confusion_matrix([], [], labels=["a"])
    assert matrix.tolist() == [[0]] and labels == ["a"]


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((["a", "b"], ["a"]), "top1_identities has 1 entries but query_identities has 2"),
        ((["a"], ["b"], ["a"]), r"labels lacks identities that occur in the inputs: \['b'\]"),
        ((["a"], ["a"], ["a", "a"]), "labels must be unique"),
        (("ab", ["a", "b"]), "query_identities must be a sequence of labels"),
        (([["a"]], [["a"]]), "query_identities must be 1-D"),
    ],
)
def test_confusion_matrix_invalid(args, match):
    with pytest.raises(InputError, match=match):
        confusion_matrix(*args)


def _row(ap, file, identity="a", top1="a", method="m", group="g"):
    return {"ap": ap, "identity": identity, "top1_identity": top1, "file": file,
            "method": method, "group": group}


def test_worst_queries_ordering_and_drift():
    rows = [
        _row(0.9, "f1.png"),
        _row(0.1, "f5.png", top1="b"),
        _row(0.1, "f2.png", top1="c"),
        _row(0.5, "f3.png"),
        _row(0.0, "f4.png", identity="b", top1="a"),
        _row(0.3, "f6.png", top1="a"),
    ]
    worst = worst_queries(rows, k=4)
    assert [r["file"] for r in worst] == ["f4.png", "f2.png", "f5.png", "f6.png"]
    assert [r["drifted_to"] for r in worst] == ["a", "c", "b", None]
    # Rows are copies: the input is not modified and extra keys survive.
    assert "drifted_to" not in rows[0]
    rows[1]["prompt"] = "on a fence"
    assert worst_queries(rows, k=3)[2]["prompt"] == "on a fence"


def test_worst_queries_stable_for_full_ties_and_k_bounds():
    rows = [_row(0.2, "same.png", method="first"), _row(0.2, "same.png", method="second")]
    assert [r["method"] for r in worst_queries(rows)] == ["first", "second"]
    assert worst_queries(rows, k=0) == []
    assert len(worst_queries(rows, k=100)) == 2
    assert worst_queries([], k=5) == []


def test_worst_queries_default_k_is_ten():
    rows = [_row(i / 20, f"{i:02d}.png") for i in range(20)]
    assert [r["file"] for r in worst_queries(rows)] == [f"{i:02d}.png" for i in range(10)]


@pytest.mark.parametrize(
    ("rows", "k", "match"),
    [
        ("rows", 1, "rows must be a list of dicts"),
        ([1.0], 1, r"rows\[0\] must be a dict"),
        ([{"ap": 0.1, "identity": "a"}], 1, r"rows\[0\] lacks the key\(s\)"),
        ([_row(float("nan"), "x")], 1, r"rows\[0\]\['ap'\] must be a finite number"),
        ([_row(None, "x")], 1, r"rows\[0\]\['ap'\] must be a finite number"),
        ([_row(0.1, "x")], -1, "k must be an integer >= 0"),
        ([_row(0.1, "x")], 2.0, "k must be an integer >= 0"),
    ],
)
def test_worst_queries_invalid(rows, k, match):
    with pytest.raises(InputError, match=match):
        worst_queries(rows, k=k)
