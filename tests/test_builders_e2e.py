"""Built galleries load with fp_rank.load_gallery and an evaluation runs end to end on them."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import fp_rank
from fp_rank.errors import GalleryError
from gallery_builders import cub, wildlife_reid
from tests.builders_fixtures import (  # noqa: F401  (private_datasets_cache is an autouse fixture)
    card_of,
    make_cub,
    make_wildlife,
    private_datasets_cache,
)


@pytest.fixture(scope="module")
def cub_gallery(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = make_cub(tmp_path_factory.mktemp("cub_src"))
    return cub.build(source, tmp_path_factory.mktemp("cub_out") / "cub", progress=False)


def pixel_encoder(images: list[Image.Image]) -> np.ndarray:
    """A plain callable encoder: the 8x8 RGB thumbnail as a vector."""
    return np.stack([np.asarray(im.convert("RGB").resize((8, 8)), dtype=np.float32).ravel() for im in images])


def test_load_gallery_reads_the_card(cub_gallery: Path) -> None:
    gallery = fp_rank.load_gallery(cub_gallery, "wren")
    assert len(gallery.gallery) == 50 and len(gallery.reference) == 50
    assert gallery.holdout is not None
    assert gallery.recommended_encoder == "dinov2-base"
    assert gallery.identity_names["Bewick_Wren"] == "Bewick Wren"
    assert gallery.identities == card_of(cub_gallery)["fp_rank"]["groups"]["wren"]["identities"]
    everything = fp_rank.load_gallery(cub_gallery)
    assert len(everything.gallery) == 150 and everything.groups == ["sparrow", "tern", "wren"]


def test_evaluation_runs_on_a_built_gallery(cub_gallery: Path) -> None:
    gallery = fp_rank.load_gallery(cub_gallery, "wren")
    queries = [Image.open(io.BytesIO(item["bytes"])) for item in gallery.reference.images]
    labels = gallery.reference.identities.tolist()
    report = fp_rank.evaluate(
        queries, labels, gallery=cub_gallery, gallery_config="wren", encoder=pixel_encoder, progress=False, cache=False
    )
    result = report.single
    assert result.n_queries == 50
    assert 0.0 <= result.map <= 1.0
    assert set(result.map_per_group) == {"wren"}


def test_evaluation_runs_on_every_group_of_a_reid_gallery(tmp_path: Path) -> None:
    source = make_wildlife(tmp_path / "src")
    folder = wildlife_reid.build(source, tmp_path / "reid", progress=False)
    gallery = fp_rank.load_gallery(folder)
    assert gallery.recommended_encoder == "dinov2-base"
    queries = [Image.open(io.BytesIO(item["bytes"])) for item in gallery.reference.images]
    # the fixture's 'cow' species has one eligible individual: its queries would all score AP 1
    with pytest.raises(GalleryError, match="group 'cow'.*single identity"):
        fp_rank.evaluate(queries, gallery.reference.identities.tolist(), gallery=folder, encoder=pixel_encoder,
                         progress=False, cache=False)
    report = fp_rank.evaluate(
        queries, gallery.reference.identities.tolist(), gallery=folder, encoder=pixel_encoder,
        progress=False, cache=False, single_identity_groups="skip",
    )
    assert set(report.single.map_per_group) == {"sea_turtle", "zebra"}
    assert report.metadata["single_identity_groups"]["groups"] == ["cow"]
