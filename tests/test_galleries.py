"""Gallery loading through datasets.load_dataset, schema validation and fingerprints."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from fp_rank import GalleryError, load_gallery
from tests.gallery_fixtures import png_bytes, simple_gallery, write_gallery


def test_demo_gallery_loads_with_schema(demo_gallery_dir: Path) -> None:
    gal = load_gallery(str(demo_gallery_dir))
    assert set(gal.splits) == {"gallery", "reference", "holdout"}
    assert len(gal.gallery) == 150 and gal.groups == ["finch", "jay", "tern"]
    assert gal.recommended_encoder == "fp-rank-demo"
    assert gal.identity_names["jay_gold_cheek"] == "Gold-cheek jay"
    assert len(gal.fingerprint) == 64
    image = gal.gallery.images[0]
    assert isinstance(image["bytes"], bytes)
    assert sum(1 for _ in gal.gallery.images) == 150


def test_config_selects_one_group(demo_gallery_dir: Path) -> None:
    jay = load_gallery(str(demo_gallery_dir), "jay")
    assert jay.groups == ["jay"] and len(jay.gallery) == 50 and jay.config == "jay"
    assert jay.fingerprint != load_gallery(str(demo_gallery_dir)).fingerprint


def test_fingerprint_is_content_based(tmp_path: Path) -> None:
    a = load_gallery(simple_gallery(tmp_path / "a"))
    b = load_gallery(simple_gallery(tmp_path / "b"))
    assert a.fingerprint == b.fingerprint  # same bytes and labels, other folder


def test_gallery_rebuilt_in_place_is_not_served_stale(tmp_path: Path) -> None:
    folder = simple_gallery(tmp_path / "g", n_ids=2)
    first = load_gallery(folder).fingerprint
    shutil.rmtree(folder)
    simple_gallery(folder, n_ids=3)
    assert load_gallery(folder).fingerprint != first


def test_missing_split_or_column(tmp_path: Path) -> None:
    rows = [{"image": png_bytes(1), "identity": "a", "group": "g"}]
    write_gallery(tmp_path / "nosplit", {"gallery": rows})
    with pytest.raises(GalleryError, match="lacks split"):
        load_gallery(tmp_path / "nosplit")
    write_gallery(tmp_path / "nocol", {"gallery": [{"image": png_bytes(1), "identity": "a"}], "reference": [{"image": png_bytes(2), "identity": "a"}]})
    with pytest.raises(GalleryError, match="lacks column"):
        load_gallery(tmp_path / "nocol")


def test_identity_in_two_groups_and_reference_without_gallery(tmp_path: Path) -> None:
    write_gallery(
        tmp_path / "two",
        {
            "gallery": [{"image": png_bytes(1), "identity": "a", "group": "g1"}, {"image": png_bytes(2), "identity": "a", "group": "g2"}],
            "reference": [{"image": png_bytes(3), "identity": "a", "group": "g1"}],
        },
    )
    with pytest.raises(GalleryError, match="two groups"):
        load_gallery(tmp_path / "two")
    write_gallery(
        tmp_path / "orphan",
        {
            "gallery": [{"image": png_bytes(1), "identity": "a", "group": "g"}],
            "reference": [{"image": png_bytes(3), "identity": "b", "group": "g"}],
        },
    )
    with pytest.raises(GalleryError, match="no image in the gallery"):
        load_gallery(tmp_path / "orphan")


def test_image_column_must_be_an_image_feature(tmp_path: Path) -> None:
    write_gallery(
        tmp_path / "raw",
        {"gallery": [{"image": png_bytes(1), "identity": "a", "group": "g"}], "reference": [{"image": png_bytes(2), "identity": "a", "group": "g"}]},
        image_feature=False,
    )
    with pytest.raises(GalleryError, match="datasets.Image"):
        load_gallery(tmp_path / "raw")


def test_missing_folder_and_unknown_config(tmp_path: Path, demo_gallery_dir: Path) -> None:
    with pytest.raises(GalleryError, match="cannot load"):
        load_gallery(tmp_path / "nowhere")
    with pytest.raises(GalleryError):
        load_gallery(str(demo_gallery_dir), "penguin")


def test_hub_id_offline_without_cache_is_a_clear_error() -> None:
    with pytest.raises(GalleryError, match="offline"):
        load_gallery("fp-rank/no-such-gallery", "all", revision="v1.0")
