"""Markdown summary table: order, formatting, missing values, caption."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fp_rank.errors import InputError
from fp_rank.views.markdown import MISSING, markdown_caption, markdown_summary


def _full_row(method, map_, **overrides):
    row = {
        "method": method,
        "map": map_,
        "map_low": map_ - 0.05,
        "map_high": map_ + 0.04,
        "cmc1": 0.9,
        "cmc1_low": 0.85,
        "cmc1_high": 0.95,
        "recall10": 0.8,
        "recall10_low": 0.75,
        "recall10_high": 0.85,
        "pairwise": 0.7123,
        "pairwise_low": 0.7,
        "pairwise_high": 0.72,
        "clip_t": 0.3125,
        "floor": 0.1234,
        "ceiling": 0.95,
        "baseline": 0.9,
        "normalised": 0.5,
        "n_queries": 150,
    }
    row.update(overrides)
    return row


def _body(table: str) -> list[list[str]]:
    lines = [line for line in table.splitlines() if line.startswith("|")][2:]
    return [[cell.strip() for cell in line.strip("|").split(" | ")] for line in lines]


def test_sorted_by_map_descending():
    rows = [_full_row("low", 0.2), _full_row("high", 0.8), _full_row("mid", 0.5)]
    body = _body(markdown_summary(rows))
    assert [cells[1] for cells in body] == ["high", "mid", "low"]
    assert [cells[0] for cells in body] == ["1", "2", "3"]


def test_ties_keep_input_order_and_missing_map_goes_last():
    rows = [
        _full_row("none", 0.3, map=None),
        _full_row("first", 0.5),
        _full_row("second", 0.5),
        _full_row("zero", 0.0),
    ]
    body = _body(markdown_summary(rows))
    assert [cells[1] for cells in body] == ["first", "second", "zero", "none"]
    assert body[-1][2] == MISSING


def test_formatting_of_a_full_row():
    table = markdown_summary([_full_row("DreamBooth", 0.812)])
    lines = table.splitlines()
    assert lines[0] == (
        "| # | Method | mAP [CI] | CMC@1 [CI] | Recall@10 [CI] | Pairwise [CI] | CLIP-T | Chance floor | Real holdout "
        "| Real-image baseline | Normalised | Queries |"
    )
    assert lines[1] == "|--:|:--|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
    assert lines[2] == (
        "| 1 | DreamBooth | 0.812 [0.762, 0.852] | 0.900 [0.850, 0.950] | 0.800 [0.750, 0.850] "
        "| 0.712 [0.700, 0.720] | 0.312 | 0.123 | 0.950 | 0.900 | 0.500 | 150 |"
    )
    assert table.endswith("\n")
    # Every line has the same number of columns.
    assert len({line.count("|") for line in lines}) == 1


def test_none_and_nan_show_as_dash():
    row = _full_row("m", 0.5, cmc1=None, ceiling=None, normalised=float("nan"), baseline=None, clip_t=None,
                    pairwise_high=None, n_queries=None)
    (cells,) = _body(markdown_summary([row]))
    assert cells[3] == MISSING == "–"
    assert cells[5] == "0.712"  # an interval end is missing: estimate only
    # CLIP-T is optional and no row has it: its column is dropped
    assert "CLIP-T" not in markdown_summary([row])
    assert cells[7] == MISSING
    assert cells[8] == MISSING
    assert cells[9] == MISSING
    assert cells[10] == MISSING


def test_minimal_rows_only_need_method_and_map():
    (cells,) = _body(markdown_summary([{"method": "m", "map": 1}]))
    assert cells == ["1", "m", "1.000"] + [MISSING] * 8


def test_method_names_are_escaped():
    (cells,) = _body(markdown_summary([{"method": "a|b", "map": 0.5}]))
    assert cells[1] == "a\\|b"


def test_caption_line():
    caption = markdown_caption(
        encoder="facebook/dinov2-base",
        gallery="fp-rank/cub-wren",
        fingerprint="deadbeefcafe0123456789",
        protocol_version="1.0",
        n_boot=1000,
        confidence=0.95,
        seed=0,
    )
    assert "facebook/dinov2-base" in caption
    assert "fp-rank/cub-wren (deadbeefcafe)" in caption
    assert "protocol 1.0" in caption
    assert "95% CIs" in caption and "1000 replicates" in caption and "seed 0" in caption
    table = markdown_summary([{"method": "m", "map": 0.5}], caption=caption)
    lines = table.splitlines()
    assert lines[-2] == ""
    assert lines[-1] == "Table: " + caption
    assert "\n" not in caption


def test_caption_without_bootstrap_or_fingerprint():
    caption = markdown_caption(encoder="clip", gallery="cars", protocol_version="1.0")
    assert "CIs" not in caption and "(" not in caption


def test_empty_rows_give_header_only():
    assert len(markdown_summary([]).splitlines()) == 2


@pytest.mark.parametrize(
    ("rows", "match"),
    [
        ("table", "rows must be a list of dicts"),
        ({"method": "m", "map": 0.5}, "rows must be a list of dicts"),
        ([["m", 0.5]], r"rows\[0\] must be a dict"),
        ([{"map": 0.5}], r"rows\[0\] lacks the key\(s\) \['method'\]"),
        ([{"method": "m", "map": "0.5"}], r"rows\[0\]\['map'\] must be a number"),
        ([{"method": "m", "map": 0.5, "n_queries": 1.5}], r"rows\[0\]\['n_queries'\]"),
    ],
)
def test_invalid_rows(rows, match):
    with pytest.raises(InputError, match=match):
        markdown_summary(rows)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0, 1, allow_nan=False), max_size=8))
def test_order_property(maps):
    rows = [{"method": f"m{i}", "map": value} for i, value in enumerate(maps)]
    body = _body(markdown_summary(rows))
    shown = [float(cells[2]) for cells in body]
    assert shown == sorted(shown, reverse=True)
    assert len(body) == len(maps)
    expected = sorted(range(len(maps)), key=lambda i: -maps[i])  # stable
    assert [cells[1] for cells in body] == [f"m{i}" for i in expected]
