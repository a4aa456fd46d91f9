"""The leakage guard: a generated image that copies a real benchmark image is flagged (and can be
excluded), because it would retrieve its own source at rank 1 and score a trivially perfect AP."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter

import fp_rank
from fp_rank.checks.leakage import (
    DEFAULT_MAX_DISTANCE,
    LeakIndex,
    gallery_leak_index,
    hamming_distance,
    perceptual_hash,
)
from fp_rank.errors import InputError
from tests.robustness import zoo


@pytest.fixture(scope="module")
def demo_gallery(demo_gallery_dir: Path) -> fp_rank.Gallery:
    return fp_rank.load_gallery(str(demo_gallery_dir), progress=False)


def _real(gallery: fp_rank.Gallery, split: str, index: int) -> Image.Image:
    return Image.open(io.BytesIO(gallery.splits[split].images[index]["bytes"])).convert("RGB")


def _variants(img: Image.Image) -> dict[str, object]:
    return {
        "jpeg75": zoo.encode(img, "JPEG", quality=75),
        "jpeg50": zoo.encode(img, "JPEG", quality=50),
        "webp": zoo.encode(img, "WEBP", quality=80),
        "half": img.resize((img.width // 2, img.height // 2), Image.Resampling.BICUBIC),
        "double": img.resize((img.width * 2, img.height * 2), Image.Resampling.BICUBIC),
        "blur": img.filter(ImageFilter.GaussianBlur(1)),
        "rgba": zoo.png(img.convert("RGBA")),
    }


def test_perceptual_hash_survives_re_encoding_and_resizing() -> None:
    pic = zoo.textured(1, (96, 80))
    h = perceptual_hash(zoo.png(pic))
    assert 0 <= h < 2**64
    for name, variant in _variants(pic).items():
        assert hamming_distance(h, perceptual_hash(variant)) <= DEFAULT_MAX_DISTANCE, name
    assert hamming_distance(h, perceptual_hash(pic.transpose(Image.Transpose.FLIP_TOP_BOTTOM))) > DEFAULT_MAX_DISTANCE


def test_copies_of_gallery_and_reference_images_are_flagged(demo_gallery: fp_rank.Gallery) -> None:
    index = gallery_leak_index(demo_gallery)
    assert len(index) == sum(len(s) for s in demo_gallery.splits.values())
    exact = demo_gallery.gallery.images[5]["bytes"]
    assert index.match(exact) == {"split": "gallery", "index": 5, "distance": 0, "exact": True}
    for split, row in (("gallery", 17), ("reference", 8)):
        for name, variant in _variants(_real(demo_gallery, split, row)).items():
            match = index.match(variant)
            assert match is not None, (split, name)
            assert (match["split"], match["index"], match["exact"]) == (split, row, False), name
            assert match["distance"] <= DEFAULT_MAX_DISTANCE


def test_different_pictures_are_not_flagged(demo_gallery: fp_rank.Gallery, demo_generated: list[dict]) -> None:
    index = gallery_leak_index(demo_gallery)
    # the demo's generated birds are new renderings of the gallery's identities, often very close
    # to them; none is a copy of a real image
    assert [r["file"] for r in demo_generated if index.match(r["image"]) is not None] == []
    assert index.match(zoo.png(zoo.textured(3, (64, 64)))) is None
    # an unreadable image is not a leak (on_invalid decides what happens to it)
    assert index.match(b"not an image") is None


def test_thresholds_are_validated() -> None:
    with pytest.raises(InputError, match="max_distance"):
        LeakIndex(max_distance=65)
    with pytest.raises(InputError, match="max_thumb_diff"):
        LeakIndex(max_thumb_diff=-1)


def _queries(gallery: fp_rank.Gallery, demo_generated: list[dict]) -> tuple[list, list, list]:
    honest = demo_generated[:: 45][:10]
    images = [r["image"] for r in honest]
    labels = [r["identity"] for r in honest]
    files = [r["file"] for r in honest]
    g_row, r_row = 31, 12
    images += [gallery.gallery.images[g_row]["bytes"], zoo.encode(_real(gallery, "reference", r_row), "JPEG", quality=80)]
    labels += [str(gallery.gallery.identities[g_row]), str(gallery.reference.identities[r_row])]
    files += ["copy-of-gallery.png", "copy-of-reference.jpg"]
    return images, labels, files


def test_evaluate_flags_leaks_and_can_exclude_them(demo_gallery: fp_rank.Gallery, demo_generated: list[dict]) -> None:
    images, labels, files = _queries(demo_gallery, demo_generated)
    kwargs = dict(gallery=demo_gallery, encoder="fp-rank-demo", files=files, progress=False, ceilings=False)
    report = fp_rank.evaluate(images, labels, **kwargs)
    leak = report.metadata["leakage"]
    assert leak["checked"] is True and leak["n_flagged"] == 2 and leak["n_excluded"] == 0
    assert [f["file"] for f in leak["flagged"]] == ["copy-of-gallery.png", "copy-of-reference.jpg"]
    rows = {q["file"]: q for q in report.queries}
    assert rows["copy-of-gallery.png"]["leak"] == {"split": "gallery", "index": 31, "distance": 0, "exact": True}
    assert rows["copy-of-reference.jpg"]["leak"]["split"] == "reference"
    # why it matters: the copy finds itself first, with cosine 1
    assert rows["copy-of-gallery.png"]["first_hit_rank"] == 1 and rows["copy-of-gallery.png"]["cmc1"] == 1
    assert rows["copy-of-gallery.png"]["top1_score"] == pytest.approx(1.0, abs=1e-5)
    assert all(q["leak"] is None for q in report.queries if not q["file"].startswith("copy-of"))

    excluded = fp_rank.evaluate(images, labels, leaks="exclude", **kwargs)
    assert excluded.metadata["leakage"]["n_excluded"] == 2
    assert excluded.single.n_queries == report.single.n_queries - 2
    assert {q["file"] for q in excluded.queries} == set(files[:-2])
    honest_only = fp_rank.evaluate(images[:-2], labels[:-2], **{**kwargs, "files": files[:-2]})
    assert excluded.single.map == honest_only.single.map
    assert [q["ap"] for q in excluded.queries] == [q["ap"] for q in honest_only.queries]


def test_all_queries_leaking_is_an_input_error(demo_gallery: fp_rank.Gallery) -> None:
    copies = [demo_gallery.gallery.images[i]["bytes"] for i in (0, 1)]
    labels = [str(demo_gallery.gallery.identities[i]) for i in (0, 1)]
    with pytest.raises(InputError, match="copy a real gallery/reference image"):
        fp_rank.evaluate(copies, labels, gallery=demo_gallery, encoder="fp-rank-demo", leaks="exclude", progress=False)


def test_the_guard_can_be_turned_off(demo_gallery: fp_rank.Gallery) -> None:
    copy = demo_gallery.gallery.images[0]["bytes"]
    label = str(demo_gallery.gallery.identities[0])
    report = fp_rank.evaluate([copy], [label], gallery=demo_gallery, encoder="fp-rank-demo", leaks="off",
                              progress=False, ceilings=False)
    assert report.metadata["leakage"]["checked"] is False
    assert report.metadata["leakage"]["n_flagged"] == 0
    assert report.queries[0]["leak"] is None


def test_popcount_fallback_matches_python() -> None:
    from fp_rank.checks.leakage import _popcount

    values = np.random.default_rng(0).integers(0, 2**63, size=50, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    assert _popcount(values).tolist() == [int(v).bit_count() for v in values.tolist()]


def _fingerprint_by_definition(rgb: Image.Image) -> tuple[int, np.ndarray, np.ndarray]:
    """The module docstring's pHash, thumbnail and texture, written out plainly."""
    n = 32
    k, x = np.arange(n)[:, None], np.arange(n)[None, :]
    dct_matrix = np.cos(np.pi * (2 * x + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    dct_matrix[0] /= np.sqrt(2.0)
    gray = np.asarray(rgb.convert("L").resize((n, n), Image.Resampling.BOX), dtype=np.float64)
    dct = dct_matrix @ gray @ dct_matrix.T
    coeffs = dct[:8, :8].ravel()
    bits = coeffs > np.median(coeffs[1:])
    phash = sum(1 << i for i in range(64) if bits[i])
    thumb = np.asarray(rgb.resize((16, 16), Image.Resampling.BOX), dtype=np.uint8)
    vec = dct[:16, :16].ravel()[1:]
    vec = vec - vec.mean()
    texture = (vec / np.linalg.norm(vec)).astype(np.float32)
    return phash, thumb, texture


def test_the_fast_fingerprint_is_the_documented_one() -> None:
    from fp_rank.checks.leakage import leak_fingerprint

    rng = np.random.default_rng(3)
    pictures = [
        Image.fromarray(rng.integers(0, 256, (97, 131, 3), dtype=np.uint8)),
        Image.fromarray(rng.integers(0, 256, (512, 512, 3), dtype=np.uint8)).filter(ImageFilter.GaussianBlur(3)),
        Image.linear_gradient("L").convert("RGB").resize((300, 200)),
    ]
    for pic in pictures:
        phash, thumb, texture = leak_fingerprint(pic)
        ref_hash, ref_thumb, ref_texture = _fingerprint_by_definition(pic)
        assert phash == ref_hash
        np.testing.assert_array_equal(thumb, ref_thumb)
        np.testing.assert_allclose(texture, ref_texture, rtol=0, atol=1e-6)


def test_identical_copies_in_the_index_report_the_first_whatever_else_is_indexed() -> None:
    """Several copies of one picture among look-alikes (same colours, shuffled): a near copy of it
    is reported against the first copy, however many others share the candidate list."""
    from fp_rank.checks.leakage import LeakIndex

    for trial in range(60):
        rng = np.random.default_rng(trial)
        blocks = rng.integers(0, 6, (6, 6, 3), dtype=np.uint8) * 40
        pic = np.asarray(Image.fromarray(blocks).resize((64, 64), Image.Resampling.BILINEAR))

        def look_alike() -> Image.Image:
            pixels = pic.reshape(-1, 3).copy()
            rng.shuffle(pixels)
            return Image.fromarray(pixels.reshape(pic.shape))

        query = Image.fromarray(np.clip(pic.astype(int) + rng.integers(-3, 4, pic.shape), 0, 255).astype(np.uint8))
        n = int(rng.integers(3, 20))
        copies = set(rng.choice(n, int(rng.integers(2, min(n, 7) + 1)), replace=False).tolist())
        index = LeakIndex()
        index.add("gallery", [Image.fromarray(pic) if i in copies else look_alike() for i in range(n)])
        found = index.match(query, digest=None)
        assert found is not None and found["index"] == min(copies), (trial, sorted(copies), found)
