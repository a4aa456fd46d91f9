"""The metric declaration is the single source: schema, rows, tables and compute() agree with it."""

from __future__ import annotations

import re

import numpy as np
import pytest

import fp_rank
from fp_rank import InputError
from fp_rank.metric import result_dict
from fp_rank.protocol import DEFAULT_KS, METRICS, metric, query_columns, query_metrics
from fp_rank.views.markdown import row_keys
from fp_rank.reporting.report import Report, report_schema, validate_report
from fp_rank.views.presentation import SHOWN, title_for
from fp_rank.views.presentation import shown as presentation
from fp_rank.views.table import summary_rows


@pytest.fixture(scope="module")
def demo_report(demo_gallery_dir, demo_generated) -> Report:
    recs = demo_generated[::5]
    report = fp_rank.evaluate(
        [r["image"] for r in recs], [r["identity"] for r in recs], methods=[r["method"] for r in recs],
        gallery=str(demo_gallery_dir), encoder="fp-rank-demo", progress=False,
    )
    return fp_rank.add_intervals(report, n_boot=50)


def _column_schema(schema: dict, column: str) -> dict:
    items = schema["properties"]["queries"]["items"]
    if column in items["properties"]:
        return items["properties"][column]
    for pattern, sub in items.get("patternProperties", {}).items():
        if re.fullmatch(pattern, column):
            return sub
    raise AssertionError(f"per-query column {column!r} is not in the report schema")


def test_schema_covers_every_declared_metric() -> None:
    schema = report_schema()
    results = schema["properties"]["results"]["items"]["properties"]
    for m in METRICS:
        assert m.result_field in results, m.key
        if m.per_group_field:
            assert m.per_group_field in results, m.key
        if m.per_k:
            assert "patternProperties" in results[m.result_field], m.key
            bounds = next(iter(results[m.result_field]["patternProperties"].values()))
        else:
            bounds = results[m.result_field]
        if m.kind == "query" and m.lower is not None:
            assert bounds.get("minimum") == m.lower and bounds.get("maximum") == m.upper, m.key
    for column in query_columns(DEFAULT_KS):
        col = _column_schema(schema, column)
        assert "number" in col["type"], column


def test_declared_keys_are_unique_and_lookup_names_the_choices() -> None:
    assert len({m.key for m in METRICS}) == len(METRICS)
    assert len({m.result_field for m in METRICS}) == len(METRICS)
    assert len(set(query_columns((1, 5, 10)))) == len(query_columns((1, 5, 10)))
    with pytest.raises(InputError, match="declared metrics"):
        metric("ndcg")


def test_report_outputs_follow_the_declaration(demo_report: Report) -> None:
    """Rows, CSV, summary rows, Markdown, terminal table, compute() keys: all from METRICS."""
    report = demo_report
    ks = report.ks
    row = report.queries[0]
    for column in query_columns(ks):
        assert column in row
    header = report.to_csv().splitlines()[0].split(",")
    assert set(query_columns(ks)) <= set(header)
    summary = summary_rows(report)[0]
    assert set(row_keys(ks)) <= set(summary) | {"method"}
    md = fp_rank.to_markdown(report)
    table = fp_rank.format_table(report)
    flat = result_dict(Report(results=report.results[:1], queries=report.queries, metadata=report.metadata))
    for m in METRICS:
        label = m.label_for(m.shown_k(ks))
        if presentation(m).markdown:  # an optional metric nobody asked for (CLIP-T here) drops its column
            assert (title_for(m, m.shown_k(ks)) in md) != m.optional, m.key
        if presentation(m).terminal:  # likewise on the terminal: an optional metric shows only when computed
            assert (label in table.splitlines()[0]) != m.optional, m.key
        assert (f"{m.key}@{ks[0]}" if m.per_k else m.result_field) in flat, m.key
    validate_report(report)


def test_summarise_reaggregates_a_loaded_report(demo_report: Report, tmp_path) -> None:
    path = tmp_path / "report.json"
    demo_report.to_json(path)
    loaded = Report.load(path)
    before = [r.to_dict() for r in loaded.results]
    after = [r.to_dict() for r in loaded.summarise().results]
    for a, b in zip(before, after):
        a.pop("intervals"), b.pop("intervals")
        assert a == b


def test_query_metrics_with_a_ranking_source_exist_on_ranking_results() -> None:
    from fp_rank.ranking import RankingResult

    fields = RankingResult.__dataclass_fields__
    for m in query_metrics():
        if m.source is not None:
            assert m.source in fields, m.key


def test_summarise_keeps_stored_per_k_values_that_rows_lack() -> None:
    """A schema-1.0 report stored cmc1 per query only: re-aggregating must not wipe CMC@5."""
    from fp_rank.reporting.results import MethodResult

    rows = [{"encoder": "e", "method": "m", "identity": i, "group": "g", "ap": ap, "cmc1": c, "pairwise": 0.5}
            for i, ap, c in (("a", 1.0, 1.0), ("b", 0.5, 0.0))]
    stored = MethodResult(method="m", encoder="e", values={"map": 0.75, "cmc": {1: 0.5, 5: 0.8, 10: 1.0}})
    report = Report(results=[stored], queries=rows, metadata={"options": {"cmc_ks": [1, 5, 10]}}).summarise()
    assert report.single.cmc == {1: 0.5, 5: 0.8, 10: 1.0}
    assert report.single.map == 0.75


def test_terminal_table_orders_by_map_and_shows_a_dash_for_nothing_scored() -> None:
    from fp_rank.reporting.aggregate import summarise

    rows = [{"encoder": "e", "method": m, "identity": "a", "group": "g", "ap": ap, "cmc1": 1.0, "pairwise": 0.5}
            for m, ap in (("low", 0.3), ("high", 0.9))]
    results = summarise(rows, [], encoders=["e"], methods=["low", "none", "high"], ks=(1,))
    table = fp_rank.format_table(Report(results=results, queries=rows, metadata={})).splitlines()[2:]
    assert [line.split()[1] for line in table] == ["high", "low", "none"]
    assert "nan" not in table[2] and " - " in table[2]


def test_an_unreadable_unknown_image_is_counted_once(demo_gallery_dir) -> None:
    images = [np.zeros((64, 64, 3), dtype=np.uint8), b"not an image"]
    report = fp_rank.evaluate(images, ["finch_gold_cheek", "no_such_bird"], gallery=str(demo_gallery_dir),
                              encoder="fp-rank-demo", on_missing="skip", on_invalid="skip", progress=False,
                              leaks="off")
    r = report.single
    assert (r.n_queries, r.n_missing, r.n_skipped) == (1, 0, 1)


def test_every_declared_metric_has_one_presentation() -> None:
    """The views say where each declared metric is shown, and know no metric the protocol lacks."""
    assert list(SHOWN) == [m.key for m in METRICS]
