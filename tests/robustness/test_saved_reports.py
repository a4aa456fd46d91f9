"""Adversarial inputs to the commands that read saved reports (compare, plan, leaderboard, export-results).

Input classes tried, as an attacker and a careless user would: a report whose headline was edited
away from its rows; values out of range or of the wrong JSON type; another tool's JSON with the
same top-level keys; a report named by a FIFO, a device or a folder; two reports scored under
different encoder revisions, preprocessing, dtypes or protocol versions put side by side; method
labels with carriage returns and terminal escapes.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import pytest

import fp_rank
from fp_rank.cli import main
from fp_rank.errors import InputError
from fp_rank.hub import leaderboard as lb
from fp_rank.reporting.comparability import KEY_FIELDS, comparability_key
from fp_rank.reporting.report import Report


@pytest.fixture(scope="module")
def saved(demo_gallery_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from fp_rank.demo.synthetic import generated_records

    recs = [r for r in generated_records(0) if r["method"] in ("faithful", "drifting")][::3]
    report = fp_rank.evaluate(
        [r["image"] for r in recs], [r["identity"] for r in recs], gallery=str(demo_gallery_dir),
        encoder="fp-rank-demo", methods=[r["method"] for r in recs], progress=False, cache=False,
    )
    fp_rank.add_intervals(report)
    folder = tmp_path_factory.mktemp("saved")
    path = folder / "report.json"
    report.to_json(path)
    return json.loads(path.read_text())


def _write(tmp_path: Path, data: dict[str, Any], name: str = "report.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def test_an_untouched_report_loads_and_keeps_its_numbers(saved: dict[str, Any], tmp_path: Path) -> None:
    report = Report.load(_write(tmp_path, saved))
    assert report.result("faithful").map == saved["results"][1]["map"] or report.result("faithful").map == saved["results"][0]["map"]
    assert report.to_dict() == saved


def test_an_edited_headline_is_refused_naming_the_field(saved: dict[str, Any], tmp_path: Path) -> None:
    data = copy.deepcopy(saved)
    data["results"][0]["map"] = 0.99
    with pytest.raises(InputError, match=r"results\[0\] .*: map is 0.99 but the report's own rows give 0\.\d+"):
        Report.load(_write(tmp_path, data))
    data = copy.deepcopy(saved)
    data["results"][1]["cmc"]["5"] = 1.0
    with pytest.raises(InputError, match=r"results\[1\] .*cmc\[5\] is 1 but"):
        Report.load(_write(tmp_path, data))
    data = copy.deepcopy(saved)
    first = next(iter(data["results"][0]["map_per_group"]))
    data["results"][0]["map_per_group"][first] = 0.0
    with pytest.raises(InputError, match=rf"map_per_group\['{first}'\]"):
        Report.load(_write(tmp_path, data))


def test_edited_rows_move_the_check_not_the_published_number(saved: dict[str, Any], tmp_path: Path) -> None:
    data = copy.deepcopy(saved)
    data["queries"][0]["ap"] = 1.0 if data["queries"][0]["ap"] != 1.0 else 0.0
    with pytest.raises(InputError, match="but the report's own rows give"):
        Report.load(_write(tmp_path, data))


@pytest.mark.parametrize("field,value,match", [
    ("map", 7.5, r"results/0/map: 7.5 is greater than the maximum of 1"),
    ("map", True, r"results/0/map: True is not of type"),
    ("n_queries", "12", r"results/0/n_queries"),
])
def test_values_out_of_range_or_of_the_wrong_type_are_refused(saved: dict[str, Any], tmp_path: Path, field: str,
                                                               value: Any, match: str) -> None:
    data = copy.deepcopy(saved)
    data["results"][0][field] = value
    with pytest.raises(InputError, match=match):
        Report.load(_write(tmp_path, data))


def test_an_interval_that_misses_its_estimate_is_refused(saved: dict[str, Any], tmp_path: Path) -> None:
    data = copy.deepcopy(saved)
    data["results"][0]["intervals"]["map"]["high"] = data["results"][0]["intervals"]["map"]["estimate"] - 0.01
    with pytest.raises(InputError, match="interval of map .* does not hold its estimate"):
        Report.load(_write(tmp_path, data))


def test_rows_are_required_for_the_queries_a_result_claims(saved: dict[str, Any], tmp_path: Path) -> None:
    data = copy.deepcopy(saved)
    method = data["results"][0]["method"]
    data["queries"] = [q for q in data["queries"] if q["method"] != method]
    with pytest.raises(InputError, match=rf"'{method}'.* counts \d+ scored queries but the report holds none"):
        Report.load(_write(tmp_path, data))


def test_foreign_json_with_report_keys_is_skipped_by_the_leaderboard(saved: dict[str, Any], tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    _write(runs, saved, "ours.json")
    _write(runs, {"metadata": {"tool": "other"}, "results": [{"accuracy": 0.9}]}, "theirs.json")
    _write(runs, {"metadata": {}, "results": "none"}, "broken.json")
    board = lb.build_leaderboard([runs])
    assert sorted(Path(p).name for p, _ in board.ignored) == ["broken.json", "theirs.json"]
    assert {r["method"] for r in board.boards[0].rows} == {"faithful", "drifting"}
    with pytest.raises(InputError, match="theirs.json does not follow report schema"):
        lb.build_leaderboard([runs / "theirs.json"])


def test_an_edited_report_is_not_exported_or_ranked(saved: dict[str, Any], tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    data = copy.deepcopy(saved)
    data["results"][0]["map"] = 0.99
    path = _write(tmp_path, data)
    assert main(["export-results", str(path), "--out", str(tmp_path / "out"), "--dataset-id", "org/x",
                 "--allow-demo"]) == 2
    assert "map is 0.99 but the report's own rows give" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    assert main(["leaderboard", str(path)]) == 2


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_device_or_folder_named_as_report_is_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "report.json"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="is not a regular file \\(a FIFO\\)"):
        Report.load(fifo)
    with pytest.raises(InputError, match="is not a regular file \\(a character device\\)"):
        Report.load("/dev/zero")
    with pytest.raises(InputError, match="not a regular file \\(a folder\\)"):
        Report.load(tmp_path)


# --------------------------------------------------------------------------- comparability


def _variant(saved: dict[str, Any], **encoder: Any) -> dict[str, Any]:
    data = copy.deepcopy(saved)
    data["metadata"]["encoders"][0].update(encoder)
    return data


def test_the_key_holds_what_moves_a_score(saved: dict[str, Any], tmp_path: Path) -> None:
    key = comparability_key(Report.load(_write(tmp_path, saved)))
    assert set(key) == set(KEY_FIELDS)
    assert key["encoder_revision"] == "descriptor-v2" and key["gallery_fingerprint"] == saved["metadata"]["gallery"]["fingerprint"]


@pytest.mark.parametrize("change,field", [
    ({"revision": "descriptor-v3"}, "encoder_revision"),
    ({"preprocessing_id": "0000000000000000"}, "encoder_preprocessing"),
    ({"dtype": "bfloat16"}, "encoder_dtype"),
])
def test_compare_refuses_reports_that_differ_in_how_they_were_scored(saved: dict[str, Any], tmp_path: Path,
                                                                     change: dict[str, Any], field: str) -> None:
    a = Report.load(_write(tmp_path, saved, "a.json"))
    b = Report.load(_write(tmp_path, _variant(saved, **change), "b.json"))
    with pytest.raises(InputError, match=rf"not comparable \({field}: .* vs .*--allow-mismatch {field}"):
        fp_rank.compare(a, "faithful", "drifting", other=b)
    allowed = fp_rank.compare(a, "faithful", "drifting", other=b, allow_mismatch=[field])
    assert list(allowed.to_dict()["comparability"]["allowed_differences"]) == [field]


def test_compare_refuses_another_protocol_and_the_cli_records_an_override(saved: dict[str, Any], tmp_path: Path,
                                                                           capsys: pytest.CaptureFixture[str]) -> None:
    other = copy.deepcopy(saved)
    other["metadata"]["protocol_version"] = "1.0"
    a, b = _write(tmp_path, saved, "a.json"), _write(tmp_path, other, "b.json")
    assert main(["compare", str(a), str(b), "--methods", "faithful", "drifting"]) == 2
    assert "protocol_version: '1.1' vs '1.0'" in capsys.readouterr().err
    out = tmp_path / "cmp.json"
    assert main(["compare", str(a), str(b), "--methods", "faithful", "drifting", "--allow-mismatch",
                 "protocol_version", "--out", str(out)]) == 0
    assert "differ in protocol_version" in capsys.readouterr().out
    assert json.loads(out.read_text())["comparability"]["allowed_differences"] == {"protocol_version": ["1.1", "1.0"]}


def test_leaderboard_refuses_one_board_of_mixed_revisions(saved: dict[str, Any], tmp_path: Path) -> None:
    one = copy.deepcopy(saved)
    one["results"] = [r for r in one["results"] if r["method"] == "faithful"]
    one["queries"] = [q for q in one["queries"] if q["method"] == "faithful"]
    two = _variant(saved, revision="descriptor-v3")
    two["results"] = [r for r in two["results"] if r["method"] == "drifting"]
    two["queries"] = [q for q in two["queries"] if q["method"] == "drifting"]
    a, b = _write(tmp_path, one, "a.json"), _write(tmp_path, two, "b.json")
    with pytest.raises(InputError, match="a.json and .*b.json are not comparable \\(encoder_revision"):
        lb.build_leaderboard([a, b])
    board = lb.build_leaderboard([a, b], allow_mismatch=["encoder_revision"])
    assert board.boards[0].allowed_differences == {"encoder_revision": ["descriptor-v2", "descriptor-v3"]}
    assert "Not comparable on encoder_revision" in board.to_markdown()
    with pytest.raises(InputError, match="unknown comparability field"):
        lb.build_leaderboard([a, b], allow_mismatch=["weights"])


# --------------------------------------------------------------------------- labels


@pytest.mark.parametrize("label", ["ok\rbad", "red\x1b[31m", "two\nlines", "rtl\u202eevil"])
def test_control_characters_in_labels_are_refused_before_any_work(label: str) -> None:
    with pytest.raises(InputError, match="holds control character"):
        fp_rank.evaluate(["a.png"], ["finch"], methods=[label], gallery="no/such/gallery")
    with pytest.raises(InputError, match="identity label .* holds control character"):
        fp_rank.evaluate(["a.png"], [label], gallery="no/such/gallery")


def test_tables_escape_what_a_saved_report_smuggles_in(saved: dict[str, Any]) -> None:
    from fp_rank.views.markdown import to_markdown
    from fp_rank.views.table import format_table

    data = copy.deepcopy(saved)
    for row in data["results"] + data["queries"]:
        if row["method"] == "drifting":
            row["method"] = "evil\r| 0.999 |\x1b[2J"
    report = Report.from_dict(data)
    text = format_table(report) + to_markdown(report)
    assert "\r" not in text and "\x1b" not in text
    assert "evil\\r\\| 0.999 \\|\\x1b[2J" in to_markdown(report)


# --------------------------------------------------------------------------- forgeries found by an adversarial pass


def _forged(saved: dict[str, Any], edit) -> dict[str, Any]:
    data = copy.deepcopy(saved)
    edit(data)
    return data


@pytest.mark.parametrize("edit,match", [
    # a rank outside metadata.options.cmc_ks whose column the rows carry is recomputed all the same
    (lambda d: (d["metadata"]["options"].update(cmc_ks=[1, 5]), d["results"][0]["cmc"].update({"10": 0.99})),
     r"cmc\[10\] is 0.99 but"),
    (lambda d: d["metadata"]["options"].update(cmc_ks=["a"]), "cmc_ks must list positive integers"),
    (lambda d: d["results"][0]["intervals"]["cmc1"].update(low=-5, high=7), r"leaves the metric's range"),
    (lambda d: d["results"][0]["intervals"]["cmc1"].update(confidence=42), r"confidence 42, not in \(0, 1\)"),
    (lambda d: d["results"][0].update(n_missing=10**20), r"n_missing is 100000000000000000000, outside 0\.\."),
    (lambda d: d["queries"][3].update(ap=None), r"queries\[3\] .* has no AP"),
    (lambda d: d["metadata"]["encoders"].append(dict(d["metadata"]["encoders"][0], revision="other")),
     "describes encoder\\(s\\) \\['fp-rank-demo'\\] twice"),
    (lambda d: d["results"][0]["intervals"].update(deep=json.loads("[" * 700 + "]" * 700)), "nests deeper than"),
])
def test_forgeries_an_adversary_tried_are_refused(saved: dict[str, Any], tmp_path: Path, edit, match: str) -> None:
    with pytest.raises(InputError, match=match):
        Report.load(_write(tmp_path, _forged(saved, edit)))


@pytest.mark.parametrize("label", ["faith\u2028ful", "\u202efulhtiaf", "faithful\u200b"])
def test_invisible_or_reordering_characters_in_a_saved_label_are_refused(saved: dict[str, Any], tmp_path: Path,
                                                                        label: str) -> None:
    def rename(data: dict[str, Any]) -> None:
        for row in data["results"] + data["queries"]:
            if row["method"] == "faithful":
                row["method"] = label

    with pytest.raises(InputError, match="with control character"):
        Report.load(_write(tmp_path, _forged(saved, rename)))


def test_single_identity_groups_left_out_make_reports_incomparable(saved: dict[str, Any], tmp_path: Path) -> None:
    a = Report.load(_write(tmp_path, saved, "a.json"))
    b = Report.load(_write(tmp_path, _forged(saved, lambda d: d["metadata"]["single_identity_groups"].update(
        groups=["finch"])), "b.json"))
    with pytest.raises(InputError, match="single_identity_groups_left_out"):
        fp_rank.compare(a, "faithful", "drifting", other=b)


def test_compare_never_writes_over_its_own_input(saved: dict[str, Any], tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, saved, "self.json")
    assert main(["compare", str(path), "--methods", "faithful", "drifting", "--out", str(path)]) == 2
    assert "is also an input of this command" in capsys.readouterr().err
    assert json.loads(path.read_text()) == saved
    assert main(["plan", str(path), "--methods", "faithful", "drifting", "--out", str(path)]) == 2
    assert json.loads(path.read_text()) == saved


def test_zero_width_intervals_are_left_out_with_a_warning(saved: dict[str, Any], tmp_path: Path,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    # what fp-rank 0.1 wrote at the end of a zero-one metric's range: the numbers stand, the interval does not
    data = _forged(saved, lambda d: d["results"][0]["intervals"]["map"].update(
        low=d["results"][0]["map"], high=d["results"][0]["map"]))
    with caplog.at_level("WARNING"):
        report = Report.load(_write(tmp_path, data))
    assert "map" not in report.results[0].intervals and "cmc1" in report.results[0].intervals
    assert "left out 1 interval(s) of zero width (map)" in caplog.text


def test_rules_that_changed_nothing_do_not_make_reports_incomparable(saved: dict[str, Any], tmp_path: Path) -> None:
    # on_missing='skip' with nothing missing, leaks='exclude' with nothing excluded, a Hub copy of the same gallery
    def same_scores_other_settings(d: dict[str, Any]) -> None:
        d["metadata"]["options"]["on_missing"] = "skip"
        d["metadata"]["leakage"]["excluded"] = True
        d["metadata"]["gallery"].update(id="org/demo", source="hub", revision="0123456789abcdef")

    a = Report.load(_write(tmp_path, saved, "a.json"))
    b = Report.load(_write(tmp_path, _forged(saved, same_scores_other_settings), "b.json"))
    assert fp_rank.compare(a, "faithful", "drifting", other=b).comparability["allowed_differences"] == {}
    assert len(lb.build_leaderboard([_write(tmp_path, _forged(saved, lambda d: None), "c.json")]).boards) == 1
