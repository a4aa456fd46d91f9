"""The manifest reader shared by the CLI and the Space (fp_rank.runs) and the output layout
writer shared by both (fp_rank.views.outputs)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import fp_rank
from fp_rank.errors import InputError
from fp_rank.runs import DEFAULT_METHOD
from fp_rank.views.outputs import QUERIES_FILE, REPORT_FILE, SUMMARY_FILE, write_outputs
from fp_rank.reporting.report import Report
from fp_rank.runs import GeneratedImage, read_manifest, read_run
from tests.app_fixtures import expected_report, save_records


def test_csv_manifest_tolerates_a_bom_header_case_and_blank_rows(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    text = "File , IDENTITY,Method,prompt,Seed\r\n.\\sub\\a.png, finch ,m1,a bird,7\r\n,,,,\r\nb.png,jay,,,\r\n"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    assert read_manifest(path) == [
        GeneratedImage("sub/a.png", "finch", "m1", prompt="a bird", seed=7, file="sub/a.png", line=2),
        GeneratedImage("b.png", "jay", DEFAULT_METHOD, file="b.png", line=4),
    ]
    run = read_run(path)  # the CLI reads the same rows: paths resolved, default method
    assert run.files == [str(tmp_path / "sub" / "a.png"), str(tmp_path / "b.png")]
    assert run.methods == ["m1", DEFAULT_METHOD] and run.seeds == [7, None] and run.prompts == ["a bird", None]


def test_jsonl_manifest_reads_numbers_and_strings(tmp_path: Path) -> None:
    path = tmp_path / "m.ndjson"
    lines = [{"file": "/abs/a.png", "identity": "finch", "seed": 3}, {}, {"File": "b.png", "identity": 12, "seed": 4.0},
             {"file": "c.png", "identity": "jay", "seed": " 5 "}]
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n\n", encoding="utf-8")
    rows = read_manifest(path)
    assert [(r.file, r.identity, r.seed, r.line) for r in rows] == [("/abs/a.png", "finch", 3, 1), ("b.png", "12", 4, 3), ("c.png", "jay", 5, 4)]
    assert read_run(path).files[0] == "/abs/a.png"


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("m.txt", b"file,identity\na.png,x\n", "must be a .csv or .jsonl file"),
        ("m.csv", b"file,identity\n\xff\xfe.png,x\n", "is not UTF-8 text"),
        ("m.csv", b"", "is empty; expected a header line"),
        ("m.csv", b"name,identity\na.png,x\n", "lacks column(s) ['file']"),
        ("m.csv", b"file,identity\na.png,\n", "line 2: both 'file' and 'identity' are needed"),
        ("m.csv", b"file,identity,seed\na.png,x,three\n", "line 2: seed 'three' is not an integer"),
        ("m.csv", b"file,identity\n", "lists no files"),
        ("m.jsonl", b'{"file": "a.png"\n', "line 1 is not valid JSON"),
        ("m.jsonl", b"[1, 2]\n", "line 1 is not a JSON object"),
    ],
)
def test_manifest_errors_name_the_file_and_line(tmp_path: Path, name: str, data: bytes, message: str) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(InputError) as caught:
        read_manifest(path)
    assert str(caught.value).startswith(f"manifest {path}") and message in str(caught.value)
    with pytest.raises(InputError) as caught:  # the caller chooses how messages name the file
        read_manifest(path, name="the upload")
    assert str(caught.value).startswith("the upload") and message in str(caught.value)


def test_manifest_format_is_checked(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text("file,identity\na.png,x\n", encoding="utf-8")
    with pytest.raises(InputError, match="file_format must be 'csv', 'jsonl' or None; got 'tsv'"):
        read_manifest(path, file_format="tsv")  # type: ignore[arg-type]
    assert read_manifest(path, file_format="csv")[0].file == "a.png"


@pytest.fixture(scope="module")
def small_report(demo_gallery_dir: Path, demo_generated: list[dict], tmp_path_factory: pytest.TempPathFactory) -> Report:
    records = [r for r in demo_generated if r["identity"].startswith("finch_") and r["method"] in ("faithful", "drifting")][:12]
    paths = save_records(records, tmp_path_factory.mktemp("generated"))
    return expected_report(paths, [r["identity"] for r in records], demo_gallery_dir, [r["method"] for r in records], top_k=3)


def test_write_outputs_folder_layout_and_single_file(small_report: Report, tmp_path: Path) -> None:
    written = write_outputs(small_report, tmp_path / "out")
    assert written.paths == [tmp_path / "out" / name for name in (REPORT_FILE, QUERIES_FILE, SUMMARY_FILE)]
    assert Report.load(written.report).to_dict() == small_report.to_dict()
    assert written.queries.read_text(encoding="utf-8") == small_report.to_csv()
    assert written.summary.read_text(encoding="utf-8") == fp_rank.to_markdown(small_report) + "\n"

    single = write_outputs(small_report, tmp_path / "elsewhere" / "r.JSON")
    assert single.paths == [tmp_path / "elsewhere" / "r.JSON"] and single.queries is None and single.summary is None
    assert Report.load(single.report).methods == small_report.methods


def test_write_outputs_refuses_a_file_as_folder(small_report: Report, tmp_path: Path) -> None:
    taken = tmp_path / "taken.txt"
    taken.write_text("x", encoding="utf-8")
    with pytest.raises(InputError, match="is an existing file; give a folder"):
        write_outputs(small_report, taken)
