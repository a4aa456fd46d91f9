"""Reliability round 2, the public Space: every visitor is untrusted.

Classes: formats outside the raster allow-list (an EPS named .png, an ICO whose header understates
its embedded PNG), bounded work and replies (huge labels, archives of many members), no server
paths in replies or reports, identities with whitespace or of the wrong type, request folders
cleaned by the monotonic clock, and owner settings that parse sanely or fail naming the variable.
"""

from __future__ import annotations

import io
import json
import struct
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from fp_rank.images.decode import DEFAULT_FORMATS, check_formats, read_header, to_rgb
from fp_rank.runs import IdentityMatcher
from fp_rank.errors import ImageDecodeError, InputError
from space import service, settings
from space import uploads as intake
from tests.app_fixtures import make_space, pick, save_records

SCARLET = "finch_scarlet_crown"
EPS = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nnewpath 0 0 moveto 10 10 lineto stroke showpage\n"


def _ico_with_big_png(side: int = 8000) -> bytes:
    """An ICO whose directory says 16x16 while the PNG it embeds is ``side`` x ``side``."""
    buf = io.BytesIO()
    Image.new("L", (side, side)).save(buf, "PNG")
    png = buf.getvalue()
    return struct.pack("<HHH", 0, 1, 1) + struct.pack("<BBBBHHII", 16, 16, 0, 0, 1, 32, len(png), 22) + png


@pytest.fixture(scope="module")
def space(demo_gallery_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> service.ScoringSpace:
    return make_space(demo_gallery_dir, tmp_path_factory.mktemp("space-work"), n_boot=0)


def _score(space: service.ScoringSpace, files: list[Path], tmp_path: Path, **kwargs: Any) -> service.Outcome:
    options: dict[str, Any] = {"gallery": settings.DEMO_GALLERY, "encoder": "fp-rank-demo"}
    options.update(kwargs)
    return space.score([str(f) for f in files], work_dir=tmp_path / "request", **options)


def _reply_size(outcome: service.Outcome) -> int:
    text = (outcome.error or "") + "".join(p.name + p.reason for p in outcome.problems) + "".join(outcome.notes)
    if outcome.report is not None:
        text += json.dumps(outcome.report.to_dict(), default=str)
    return len(text)


# -- formats -------------------------------------------------------------------------------------
def test_only_raster_formats_are_decoded_whatever_the_name(tmp_path: Path) -> None:
    with pytest.raises(ImageDecodeError, match="EPS files are not decoded"):
        to_rgb(EPS, name="page.png")
    start = time.perf_counter()
    with pytest.raises(ImageDecodeError, match="ICO files are not decoded"):
        to_rgb(_ico_with_big_png(), name="icon.png")
    assert time.perf_counter() - start < 1.0  # refused from its magic number, nothing decoded
    for fmt in DEFAULT_FORMATS:
        buf = io.BytesIO()
        Image.new("RGB", (5, 4), (10, 20, 30)).save(buf, fmt)
        assert read_header(buf.getvalue(), fmt) == (fmt, 5, 4)
        assert to_rgb(buf.getvalue()).size == (5, 4)


def test_format_allow_list_is_a_library_option() -> None:
    buf = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buf, "JPEG")
    assert to_rgb(buf.getvalue(), formats=["jpg"]).size == (4, 4)
    with pytest.raises(ImageDecodeError, match="JPEG files are not decoded"):
        to_rgb(buf.getvalue(), formats=["PNG"])
    for bad in (["EPS"], ["ICO"], [], "PDF"):
        with pytest.raises(InputError, match="cannot be decoded safely"):
            check_formats(bad)


def test_space_refuses_other_formats_from_the_header(space, tmp_path, demo_generated) -> None:
    (tmp_path / "page.png").write_bytes(EPS)
    (tmp_path / "icon.png").write_bytes(_ico_with_big_png(4000))
    good = save_records(pick(demo_generated, SCARLET, "faithful", 2), tmp_path / "good")
    outcome = _score(space, [tmp_path / "page.png", tmp_path / "icon.png", *good], tmp_path, identity=SCARLET)
    reasons = {p.name: p.reason for p in outcome.problems}
    assert "EPS files are not decoded" in reasons["page.png"]
    assert "ICO files are not decoded" in reasons["icon.png"]
    assert outcome.report is not None and len(outcome.report.queries) == 2


# -- bounded work and replies ----------------------------------------------------------------------
def test_a_huge_identity_label_gives_a_small_reply(space, tmp_path, demo_generated) -> None:
    files = save_records(pick(demo_generated, SCARLET, "faithful", 3), tmp_path / "in")
    huge = "x" * 1_000_000
    mapping = tmp_path / "map.csv"
    mapping.write_text("file,identity\n" + "".join(f"{f.name},{huge[:100_000]}\n" for f in files[:1]))
    by_csv = _score(space, files, tmp_path, mapping=str(mapping))
    assert by_csv.report is None and "at most 200" in (by_csv.error or "")
    mapping.write_text("file,identity\n" + "".join(f"{f.name},{huge[:900_000]}\n" for f in files[:1]))
    over_csv_limit = _score(space, files, tmp_path, mapping=str(mapping))
    assert over_csv_limit.report is None and "line 2 cannot be read as CSV" in (over_csv_limit.error or "")
    by_field = _score(space, files, tmp_path, identity=huge)
    assert by_field.report is None and "at most 200" in (by_field.error or "")
    for outcome in (by_csv, over_csv_limit, by_field):
        assert _reply_size(outcome) < 10_000


def test_archive_member_count_is_checked_before_the_directory_is_parsed(space, tmp_path) -> None:
    archive = tmp_path / "many.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for i in range(5000):
            zf.writestr(f"e/{i}.txt", b"")
    assert intake.archive_entries(str(archive)) == 5000
    start = time.perf_counter()
    outcome = _score(space, [archive], tmp_path, identity=SCARLET)
    assert time.perf_counter() - start < 2.0
    assert outcome.report is None and "5000 entries; the limit is 2000" in (outcome.error or "")


def test_archive_total_size_counts_every_member(tmp_path) -> None:
    archive = tmp_path / "zeros.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(3):
            zf.writestr(f"notes{i}.txt", b"\0" * (1 << 20))  # not images, but decompressed bytes all the same
    with pytest.raises(intake.BatchRefused, match="once decompressed"):
        intake.collect_uploads([archive], tmp_path / "w", settings.Limits(max_total_bytes=2 << 20))


def test_non_image_members_are_one_line_and_problem_lists_are_bounded(space, tmp_path) -> None:
    archive = tmp_path / "junk.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for i in range(1500):
            zf.writestr(f"{'n' * 300}{i}.txt", b"x")
    uploads, problems = intake.collect_uploads([archive], tmp_path / "w", settings.Limits())
    assert uploads == [] and len(problems) == 1 and "1495 more" in problems[0].reason
    assert len(problems[0].reason) < 2000
    many = [service.Problem(f"f{i}", "r") for i in range(service.MAX_PROBLEMS_SHOWN + 50)]
    bounded = service._bounded(many, service.MAX_PROBLEMS_SHOWN)
    assert len(bounded) == service.MAX_PROBLEMS_SHOWN + 1 and "50 more" in bounded[-1].name


# -- no server paths ---------------------------------------------------------------------------------
def test_no_server_path_in_replies_or_reports(space, tmp_path, demo_generated, demo_gallery_dir) -> None:
    files = save_records(pick(demo_generated, SCARLET, "faithful", 2), tmp_path / "in")
    outcome = _score(space, files, tmp_path, identity=SCARLET)
    assert outcome.report is not None
    written = service.write_reports(outcome, tmp_path / "report")
    texts = [json.dumps(outcome.report.to_dict(), default=str), *(Path(p).read_text() for p in written if p)]
    assert outcome.report.metadata["gallery"]["id"] == settings.DEMO_GALLERY
    for text in texts:
        assert str(demo_gallery_dir) not in text
        assert str(tmp_path) not in text
        assert "fp_rank_cache" not in text  # the embedding cache folder of this test
    broken = service.ScoringSpace({"mine": str(tmp_path / "no-such-gallery")}, {"fp-rank-demo": "fp-rank-demo"},
                                  work_root=tmp_path / "w2", n_boot=0)
    failed = broken.score([str(f) for f in files], gallery="mine", encoder="fp-rank-demo", identity=SCARLET,
                          work_dir=tmp_path / "r2")
    assert failed.error and str(tmp_path) not in failed.error and "gallery 'mine'" in failed.error


# -- identities ------------------------------------------------------------------------------------
def test_identity_lookup_keeps_surrounding_whitespace_and_matches_stripped_labels() -> None:
    """The Space matches labels by the library's rule (fp_rank.runs.IdentityMatcher), not a rule of its own."""
    assert service.IdentityMatcher is IdentityMatcher
    lookup = IdentityMatcher({" padded ", "plain"})
    assert lookup(" padded ") == " padded "  # what the dropdown offers is accepted as is
    assert lookup("padded") == " padded "  # a mapping CSV cell (stripped) still finds it
    assert lookup(" plain\t") == "plain"
    assert lookup("other") is None
    ambiguous = IdentityMatcher({"a ", " a"})
    assert ambiguous("a") is None
    nfd = IdentityMatcher({"p\u00e9lican"})  # NFD spelling (macOS file names) takes the gallery's NFC one
    assert nfd("pe\u0301lican") == "p\u00e9lican"


@pytest.mark.parametrize("value", [{"a": 1}, ["finch"], 3])
def test_identity_of_the_wrong_type_is_a_clear_error(space, tmp_path, demo_generated, value) -> None:
    files = save_records(pick(demo_generated, SCARLET, "faithful", 1), tmp_path / "in")
    outcome = _score(space, files, tmp_path, identity=value)
    assert outcome.report is None and "identity must be a string" in (outcome.error or "")


# -- request folders -----------------------------------------------------------------------------------
def test_request_folders_are_cleaned_by_the_monotonic_clock(tmp_path, demo_gallery_dir, monkeypatch) -> None:
    sp = make_space(demo_gallery_dir, tmp_path / "work", report_ttl_s=60)
    running = sp.new_request_dir()
    (running / "inputs").mkdir()
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 10 * 365 * 86400)  # a wall-clock step
    sp.new_request_dir()
    assert running.exists()  # in flight: never removed
    sp.end_request(running)
    later = time.monotonic() + 3600
    monkeypatch.setattr(time, "monotonic", lambda: later)
    sp.new_request_dir()
    assert not running.exists()  # finished and idle past the TTL


# -- owner settings ------------------------------------------------------------------------------------
@pytest.mark.parametrize("raw", ["inf", "nan", "2.5", "-inf", "ten"])
def test_bad_numbers_fail_at_start_up_naming_the_variable(monkeypatch, raw) -> None:
    monkeypatch.setenv("FP_RANK_SPACE_MAX_FILES", raw)
    with pytest.raises(InputError, match="FP_RANK_SPACE_MAX_FILES"):
        settings.Limits.from_env()


def test_numbers_and_encoder_lists_parse_sanely(monkeypatch) -> None:
    monkeypatch.setenv("FP_RANK_SPACE_MAX_FILES", "1e3")
    assert settings.Limits.from_env().max_files == 1000
    monkeypatch.setenv("FP_RANK_SPACE_ENCODERS", '["dinov2-base", "clip-vit-b32"]')
    assert list(settings.encoders_from_env()) == ["fp-rank-demo", "dinov2-base", "clip-vit-b32"]
    monkeypatch.setenv("FP_RANK_SPACE_ENCODERS", '["dinov2-base", 3]')
    with pytest.raises(InputError, match="FP_RANK_SPACE_ENCODERS"):
        settings.encoders_from_env()
    monkeypatch.setenv("FP_RANK_SPACE_FORMATS", "png,eps")
    with pytest.raises(InputError, match="FP_RANK_SPACE_FORMATS"):
        settings.Limits.from_env()
    monkeypatch.setenv("FP_RANK_SPACE_FORMATS", "png, jpeg")
    assert settings.Limits.from_env().formats == ("PNG", "JPEG")
