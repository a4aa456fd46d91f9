"""Bad API inputs: each gets a clear error from the fp-rank exception family, before any work."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

import fp_rank
from fp_rank.errors import EncoderError, FpRankError, GalleryError, InputError
from tests.gallery_fixtures import png_bytes, write_gallery

# A gallery path that does not exist: argument errors must be raised before it is even opened.
NO_GALLERY = "/nonexistent/fp-rank-gallery"


def _call(**overrides: Any) -> None:
    kwargs: dict[str, Any] = dict(
        generated=["a.png", "b.png"], identities=["x", "y"], gallery=NO_GALLERY, encoder="fp-rank-demo", progress=False
    )
    kwargs.update(overrides)
    fp_rank.evaluate(kwargs.pop("generated"), kwargs.pop("identities"), **kwargs)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"identities": ["x"]}, "identities has 1 labels but there are 2"),
        ({"methods": ["m"]}, "methods has 1 entries"),
        ({"prompts": ["p", "q", "r"]}, "prompts has 3 entries"),
        ({"seeds": [1]}, "seeds has 1 entries"),
        ({"files": ["f"]}, "files has 1 entries"),
    ],
    ids=["identities", "methods", "prompts", "seeds", "files"],
)
def test_mismatched_lengths_name_the_argument(overrides: dict, message: str) -> None:
    with pytest.raises(InputError, match=message):
        _call(**overrides)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"generated": [], "identities": []}, "generated is empty"),
        ({"generated": None}, "generated must be a list"),
        ({"generated": "a.png"}, "generated must be a list"),
        ({"generated": (p for p in ["a.png"])}, "generated must be a list"),
        ({"identities": None}, "identities must be a list"),
        ({"identities": ""}, "empty string"),
        ({"identities": ["x", ""]}, "label #1 is an empty string"),
        ({"identities": [3, "y"]}, "label #0 is 3 of type int; labels must be strings"),
        ({"identities": ["x", None]}, "label #1 is None"),
        ({"identities": [b"x", "y"]}, "labels must be strings"),
        ({"methods": ["m", None]}, r"methods\[1\] is None"),
        ({"seeds": [1, "2"]}, "expected an integer seed"),
        ({"prompts": [1, 2]}, "expected a prompt string"),
        ({"batch_size": 0}, "batch_size must be a positive integer"),
        ({"batch_size": "8"}, "batch_size must be a positive integer"),
        ({"batch_size": True}, "batch_size must be a positive integer"),
        ({"cmc_ks": [1, 0]}, "cmc_ks must hold positive integers"),
        ({"cmc_ks": ["5"]}, "cmc_ks must hold positive integers"),
        ({"cmc_ks": "15"}, "cmc_ks must be a list"),
        ({"top_k": -1}, "top_k must be a non-negative integer"),
        ({"on_missing": "ignore"}, "on_missing must be one of"),
        ({"on_invalid": "drop"}, "on_invalid must be one of"),
        ({"cache": "yes"}, "cache must be True or False"),
        ({"cache": 3}, "cache must be True or False, or a folder"),
        ({"leaks": True}, "leaks must be one of"),
        ({"gallery": 3}, "gallery must be a folder"),
        ({"gallery": ""}, "gallery is an empty string"),
        ({"gallery_revision": 5}, "gallery_revision must be a string"),
        ({"encoder": [1]}, "encoder must be an alias, a Hub id or a folder"),
        ({"encoder": "facebook/dinov2-base@"}, "is not NAME@REVISION"),
    ],
)
def test_junk_arguments_are_refused_before_any_work(overrides: dict, message: str) -> None:
    with pytest.raises(InputError, match=message):
        _call(**overrides)


@pytest.fixture(scope="module")
def small_gallery(tmp_path_factory: pytest.TempPathFactory) -> fp_rank.Gallery:
    folder = tmp_path_factory.mktemp("small") / "g"
    gallery = [{"image": png_bytes(10 * i + j), "identity": f"id{i}", "group": "g"} for i in range(3) for j in range(3)]
    reference = [{"image": png_bytes(100 + i), "identity": f"id{i}", "group": "g"} for i in range(3)]
    write_gallery(folder, {"gallery": gallery, "reference": reference})
    return fp_rank.load_gallery(str(folder), progress=False)


def _images(n: int, size: int = 24, seed: int = 500) -> list[bytes]:
    return [png_bytes(seed + i, size=size) for i in range(n)]


def test_unknown_identity_is_named_with_close_matches(small_gallery: fp_rank.Gallery) -> None:
    with pytest.raises(InputError, match=r"'id9'.*did you mean") as info:
        fp_rank.evaluate(_images(2), ["id0", "id9"], gallery=small_gallery, encoder="fp-rank-demo", progress=False)
    assert "1 identity label(s) are not in gallery" in str(info.value)


# --- encoders that misbehave ----------------------------------------------------------------------


def _nan(images: list) -> np.ndarray:
    out = np.ones((len(images), 8), dtype=np.float32)
    out[-1, 3] = np.nan
    return out


def _inf(images: list) -> np.ndarray:
    out = np.ones((len(images), 8), dtype=np.float32)
    out[0, 0] = np.inf
    return out


def _one_row_short(images: list) -> np.ndarray:
    return np.ones((len(images) - 1, 8), dtype=np.float32)


def _flat(images: list) -> np.ndarray:
    return np.ones(len(images) * 8, dtype=np.float32)


def _zeros(images: list) -> np.ndarray:
    return np.zeros((len(images), 8), dtype=np.float32)


def _text(images: list) -> list[str]:
    return ["not", "numbers"][: len(images)]


def _raises(images: list) -> np.ndarray:
    raise RuntimeError("model exploded")


@pytest.mark.parametrize(
    ("fn", "message"),
    [
        (_nan, "NaN or inf"),
        (_inf, "NaN or inf"),
        (_one_row_short, r"returned shape \(2, 8\) for 3 images"),
        (_flat, r"returned shape \(24,\)"),
        (_zeros, "all-zero embedding"),
        (_text, "not an array of embeddings|returned shape"),
        (_raises, "raised RuntimeError: model exploded"),
    ],
    ids=["nan", "inf", "rows", "1d", "zero", "text", "raises"],
)
def test_bad_encoder_output_is_an_encoder_error_naming_it(fn: Any, message: str) -> None:
    enc = fp_rank.load_encoder(fn, name="suspect")
    with pytest.raises(EncoderError, match=message) as info:
        enc.encode(_images(3), progress=False)
    assert "callable:suspect" in str(info.value)


def _size_dependent(images: list) -> np.ndarray:
    """A good encoder on 24 px gallery images, NaN on the 40 px generated ones."""
    out = np.stack([np.asarray(img.resize((4, 4)), dtype=np.float32).ravel() + 1.0 for img in images])
    if any(img.size == (40, 40) for img in images):
        out[:, 0] = np.nan
    return out


def _good(images: list) -> np.ndarray:
    return np.stack([np.asarray(img.resize((4, 4)), dtype=np.float32).ravel() + 1.0 for img in images])


def test_nan_on_queries_keeps_the_cached_gallery_embeddings(small_gallery: fp_rank.Gallery, tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    bad = fp_rank.load_encoder(_size_dependent, revision="v1", name="model")
    with pytest.raises(EncoderError, match="callable:model.*NaN"):
        fp_rank.evaluate(
            _images(3, size=40), ["id0", "id1", "id2"], gallery=small_gallery, encoder=bad, cache=cache_dir,
            progress=False, ceilings=False,
        )
    assert fp_rank.EmbeddingCache(cache_dir).info()["entries"] == 2  # gallery + reference survived
    good = fp_rank.load_encoder(_good, revision="v1", name="model")
    report = fp_rank.evaluate(
        _images(3, size=40), ["id0", "id1", "id2"], gallery=small_gallery, encoder=good, cache=cache_dir,
        progress=False, ceilings=False,
    )
    assert report.metadata["cache"]["gallery_images_encoded"] == 0
    assert report.metadata["cache"]["gallery_images_from_cache"] == len(small_gallery.gallery) + len(small_gallery.reference)


def test_embedding_size_that_changes_between_calls(small_gallery: fp_rank.Gallery) -> None:
    def shifty(images: list) -> np.ndarray:
        dim = 6 if images[0].size == (40, 40) else 8
        return np.random.default_rng(len(images)).random((len(images), dim)).astype(np.float32) + 0.1

    with pytest.raises(EncoderError, match=r"different sizes \[6, 8\]"):
        fp_rank.evaluate(
            _images(2, size=40), ["id0", "id1"], gallery=small_gallery, encoder=fp_rank.load_encoder(shifty),
            progress=False, ceilings=False, cache=False,
        )


# --- offline Hub requests ---------------------------------------------------------------------------


def test_offline_hub_revision_that_is_not_cached() -> None:
    assert os.environ.get("HF_HUB_OFFLINE") == "1"
    with pytest.raises(GalleryError, match=r"offline.*cache") as info:
        fp_rank.load_gallery("fp-rank-test/never-cached", revision="0123456789abcdef")
    assert "fp-rank-test/never-cached" in str(info.value)
    with pytest.raises(EncoderError, match=r"revision 0123456789abcdef \(offline mode: the files must already be in the"):
        fp_rank.load_encoder("fp-rank-test/never-cached", revision="0123456789abcdef")
    with pytest.raises(GalleryError, match="offline"):
        fp_rank.evaluate(["a.png"], "x", gallery="fp-rank-test/never-cached", gallery_revision="v2", progress=False)


def test_every_error_above_is_in_the_family() -> None:
    for cls in (InputError, GalleryError, EncoderError):
        assert issubclass(cls, FpRankError)
    assert issubclass(GalleryError, ValueError) and issubclass(EncoderError, ValueError)


def test_pil_images_and_arrays_are_accepted_sources(small_gallery: fp_rank.Gallery) -> None:
    pic = Image.open(__import__("io").BytesIO(png_bytes(7, size=32))).convert("RGB")
    arr = np.asarray(pic)
    report = fp_rank.evaluate(
        [pic, arr, arr.astype(np.float32) / 255.0], "id0", gallery=small_gallery, encoder="fp-rank-demo",
        progress=False, ceilings=False, cache=False,
    )
    aps = [q["ap"] for q in report.queries]
    assert aps[0] == aps[1] == aps[2]
