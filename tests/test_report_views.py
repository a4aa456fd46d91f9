"""Pictures of a report: ranked strips from its per-query top-k rows, and the per-identity figure
from each result's map_per_identity."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from PIL import Image

from fp_rank.errors import InputError
from fp_rank.reporting.report import Report
from fp_rank.views.strips import query_strips
from tests.app_fixtures import expected_report, save_records

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

from fp_rank.views.identity_figure import figure_map_per_identity, identity_figure  # noqa: E402


def _row(file: str, identity: str, hits: list[bool], ap: float = 0.5, first: float = 2.0) -> dict:
    top = [{"identity": identity if hit else "other", "score": 0.9 - 0.1 * k, "hit": hit, "gallery_index": 10 + k}
           for k, hit in enumerate(hits)]
    return {"file": file, "identity": identity, "method": "m", "ap": ap, "first_hit_rank": first, "top_k": top}


def test_strips_read_the_top_k_rows() -> None:
    report = Report(results=[], queries=[_row("a.png", "x", [False, True]), _row("b.png", "y", [False, False], 0.1, math.inf),
                                         _row("c.png", "x", [True])], metadata={})
    asked: list[int] = []

    def gallery_image(index: int) -> Image.Image:
        asked.append(index)
        return Image.new("RGB", (30, 50), (200, 10, 10))

    drawn = query_strips(report, query_image=lambda row: Image.new("RGB", (64, 64)), gallery_image=gallery_image,
                         names={"x": "Ex"}, limit=2)
    assert [s.hits for s in drawn] == [(False, True), (False, False)]
    assert asked == [10, 11, 10, 11]
    assert drawn[0].title == "a.png  ·  AP 0.500  ·  first hit at rank 2"
    assert drawn[0].caption == "Same identity (hit) at rank 2 of the top 2."
    assert drawn[1].caption.startswith("No hit in the top 2") and "rank –" in drawn[1].title
    assert drawn[0].image.width > drawn[0].image.height > 112

    skipped = query_strips(report, query_image=lambda row: None if row["file"] == "a.png" else Image.new("RGB", (8, 8)),
                           gallery_image=gallery_image)
    assert [s.title.split()[0] for s in skipped] == ["b.png", "c.png"]


@pytest.fixture(scope="module")
def two_method_report(demo_gallery_dir: Path, demo_generated: list[dict], tmp_path_factory: pytest.TempPathFactory) -> Report:
    records = [r for r in demo_generated if r["identity"] in ("finch_scarlet_crown", "finch_gold_cheek")][:30]
    paths = save_records(records, tmp_path_factory.mktemp("generated"))
    return expected_report(paths, [r["identity"] for r in records], demo_gallery_dir, [r["method"] for r in records])


def test_identity_figure_draws_map_per_identity(two_method_report: Report) -> None:
    report = two_method_report
    results = sorted(report.results, key=lambda r: r.method)
    assert [r.method for r in results] == ["detail-loss", "faithful"] and "finch_gold_cheek" not in results[0].map_per_identity
    results[1].map_per_identity["finch_gold_cheek"] = 0.123  # the bars come from this field, not from the rows
    figure = identity_figure(report, names={"finch_gold_cheek": "Gold-cheek finch"})
    axes = figure.axes[0]
    idents = sorted({i for r in results for i in r.map_per_identity})
    assert [t.get_text() for t in axes.get_yticklabels()] == [{"finch_gold_cheek": "Gold-cheek finch"}.get(i, i) for i in idents]
    widths = [p.get_width() for p in axes.patches]
    expected = [r.map_per_identity.get(i, math.nan) for r in results for i in idents]
    assert widths == pytest.approx(expected, nan_ok=True)
    assert 0.123 in widths and sum(math.isnan(w) for w in widths) == 1  # detail-loss has no gold-cheek image
    chance_lines = [line for line in axes.get_lines() if line.get_linestyle() == "--"]
    assert len(chance_lines) == len(idents)
    empty = Report(results=[], queries=[], metadata={})
    assert identity_figure(empty) is None


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (([], ["m"], [[]]), {}, "identities is empty"),
        ((["a"], "m", [[0.5]]), {}, "methods must be a list"),
        ((["a", "b"], ["m"], [[0.5]]), {}, r"maps must have shape \(1, 2\)"),
        ((["a"], ["m"], [[1.5]]), {}, "maps must hold values in 0..1"),
        ((["a"], ["m"], [["x"]]), {}, "maps must hold numbers"),
        ((["a"], ["m"], [[0.5]]), {"chance": [0.1, 0.2]}, r"chance must have shape \(1,\)"),
    ],
)
def test_figure_map_per_identity_checks_its_input(args: tuple, kwargs: dict, message: str) -> None:
    with pytest.raises(InputError, match=message):
        figure_map_per_identity(*args, **kwargs)
