"""Gallery edge cases: identities with zero or one image, duplicate images, missing splits/columns."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

import fp_rank
from fp_rank.errors import GalleryError, InputError
from tests.gallery_fixtures import labelled_rows as _rows
from tests.gallery_fixtures import png_bytes, write_gallery


def test_reference_identity_with_zero_gallery_images(tmp_path: Path) -> None:
    folder = write_gallery(
        tmp_path / "g", {"gallery": _rows({"a": 3, "b": 3}, 0), "reference": _rows({"a": 1, "c": 1}, 100)}
    )
    with pytest.raises(GalleryError, match=r"reference identities \['c'\] have no image in the gallery"):
        fp_rank.load_gallery(str(folder), progress=False)


def test_identity_with_one_gallery_image_is_refused_unless_allowed(tmp_path: Path) -> None:
    folder = write_gallery(
        tmp_path / "g", {"gallery": _rows({"a": 3, "b": 1, "c": 2}, 0), "reference": _rows({"a": 1, "b": 1}, 100)}
    )
    with pytest.raises(GalleryError, match=r"1 identity has fewer than 2 gallery images: 'b' \(1\).*min_gallery_images=1"):
        fp_rank.load_gallery(str(folder), progress=False)
    with pytest.raises(GalleryError, match=r"fewer than 3 gallery images: 'b' \(1\), 'c' \(2\)"):
        fp_rank.load_gallery(str(folder), progress=False, min_gallery_images=3)
    gallery = fp_rank.load_gallery(str(folder), progress=False, min_gallery_images=1)
    assert gallery.checks["smallest_identity"] == 1
    report = fp_rank.evaluate(
        [png_bytes(900 + i, size=32) for i in range(4)], "b", gallery=gallery, encoder="fp-rank-demo",
        progress=False, ceilings=False, cache=False,
    )
    for row in report.queries:  # one relevant image: AP is the reciprocal of its rank
        assert row["n_relevant"] == 1
        assert row["ap"] == pytest.approx(1.0 / row["first_hit_rank"])
    assert report.metadata["gallery"]["checks"]["min_gallery_images"] == 1


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_min_gallery_images_is_validated(tmp_path: Path, bad: object) -> None:
    with pytest.raises(InputError, match="min_gallery_images must be a positive integer"):
        fp_rank.load_gallery(str(tmp_path), min_gallery_images=bad)  # type: ignore[arg-type]


def test_duplicate_inside_the_gallery_split(tmp_path: Path) -> None:
    gallery = _rows({"a": 3, "b": 3}, 0)
    gallery[4]["image"] = gallery[1]["image"]  # a 'b' row holds the bytes of an 'a' row
    folder = write_gallery(tmp_path / "g", {"gallery": gallery, "reference": _rows({"a": 1}, 100)})
    with pytest.raises(GalleryError, match=r"gallery\[1\] \('a'\) = gallery\[4\] \('b'\)"):
        fp_rank.load_gallery(str(folder), progress=False)


def test_reference_photo_that_is_also_in_the_gallery(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    gallery = _rows({"a": 3, "b": 3}, 0)
    reference = _rows({"a": 2}, 100)
    reference[1]["image"] = gallery[2]["image"]
    folder = write_gallery(tmp_path / "g", {"gallery": gallery, "reference": reference})
    with pytest.raises(GalleryError, match=r"gallery\[2\] \('a'\) = reference\[1\] \('a'\).*on_duplicate='allow'"):
        fp_rank.load_gallery(str(folder), progress=False)
    with caplog.at_level(logging.WARNING, logger="fp_rank.galleries.load"):
        loaded = fp_rank.load_gallery(str(folder), progress=False, on_duplicate="allow")
    assert "1 duplicate image(s) allowed" in caplog.text
    assert loaded.checks["duplicates"] == 1
    assert loaded.describe()["checks"]["on_duplicate"] == "allow"
    with pytest.raises(InputError, match="on_duplicate must be 'error' or 'allow'"):
        fp_rank.load_gallery(str(folder), on_duplicate="ignore")  # type: ignore[arg-type]


def test_gallery_missing_a_split_or_a_column(tmp_path: Path) -> None:
    only = write_gallery(tmp_path / "one", {"gallery": _rows({"a": 2}, 0)})
    with pytest.raises(GalleryError, match=r"lacks split\(s\) \['reference'\]"):
        fp_rank.load_gallery(str(only), progress=False)
    rows = [{k: v for k, v in r.items() if k != "group"} for r in _rows({"a": 2}, 0)]
    nocol = write_gallery(tmp_path / "nocol", {"gallery": rows, "reference": rows})
    with pytest.raises(GalleryError, match=r"lacks column\(s\) \['group'\]"):
        fp_rank.load_gallery(str(nocol), progress=False)


def test_demo_gallery_passes_both_checks(demo_gallery_dir: Path) -> None:
    checks = fp_rank.load_gallery(str(demo_gallery_dir), progress=False).checks
    assert checks["duplicates"] == 0
    assert checks["smallest_identity"] >= 2
