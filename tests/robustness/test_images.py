"""Awkward image files: each either decodes to the picture a viewer shows (and embeds exactly like
that picture stored as a plain RGB PNG) or raises ImageDecodeError naming the file.

"Same embedding" is checked with two real encoders (the weight-free demo descriptor and a tiny
random DINOv2 saved in the Hugging Face layout) to ``EMB_ATOL`` absolute on unit vectors; when the
decoded pixels are identical the embeddings are identical too, the tolerance only absorbs
float noise.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

import fp_rank
from fp_rank.images.decode import DEFAULT_MAX_PIXELS, to_rgb
from fp_rank.errors import ImageDecodeError
from tests.robustness import zoo

EMB_ATOL = 1e-6


@pytest.fixture(scope="module")
def encoders(tiny_dinov2_dir: Path) -> list[fp_rank.Encoder]:
    return [fp_rank.load_encoder("fp-rank-demo"), fp_rank.load_encoder(str(tiny_dinov2_dir))]


def _embed(enc: fp_rank.Encoder, source: object) -> np.ndarray:
    return enc.encode([source], batch_size=1, progress=False).embeddings[0]


def assert_same_picture(encoders: list[fp_rank.Encoder], weird: object, plain: bytes) -> None:
    """Pixels and embeddings of ``weird`` equal those of the plain RGB PNG ``plain``."""
    np.testing.assert_array_equal(np.asarray(to_rgb(weird)), np.asarray(to_rgb(plain)))
    for enc in encoders:
        np.testing.assert_allclose(_embed(enc, weird), _embed(enc, plain), atol=EMB_ATOL, rtol=0, err_msg=enc.name)


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


# --- refused inputs -----------------------------------------------------------------------------


def test_zero_byte_file_is_refused_by_name(tmp_path: Path) -> None:
    path = _write(tmp_path, "empty.png", b"")
    with pytest.raises(ImageDecodeError, match="empty") as info:
        to_rgb(path)
    assert info.value.item == str(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    ("fmt", "cut"),
    [("PNG", 0.5), ("PNG", 0.1), ("JPEG", 0.5), ("JPEG", -2)],
    ids=["png-half", "png-header", "jpeg-half", "jpeg-no-end-marker"],
)
def test_truncated_files_are_refused_by_name(tmp_path: Path, fmt: str, cut: float) -> None:
    data = zoo.encode(zoo.textured(1, (64, 64)), fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    end = int(len(data) * cut) if cut > 0 else len(data) + int(cut)
    path = _write(tmp_path, f"cut.{fmt.lower()}", data[:end])
    with pytest.raises(ImageDecodeError, match="truncated|corrupt") as info:
        to_rgb(path)
    assert info.value.item == str(path)


def test_truncated_files_stay_refused_when_pil_is_told_to_load_them(monkeypatch: pytest.MonkeyPatch) -> None:
    data = zoo.encode(zoo.textured(1, (64, 64)), "JPEG", quality=90)
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    with pytest.raises(ImageDecodeError, match="truncated"):
        to_rgb(data[: len(data) // 2], name="half.jpg")
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # the caller's setting is restored


def test_png_missing_only_its_end_chunk_holds_the_whole_picture(encoders: list[fp_rank.Encoder]) -> None:
    data = zoo.png(zoo.textured(2))
    assert data.endswith(zoo.png_chunk(b"IEND", b""))
    assert_same_picture(encoders, data[:-12], data)


def test_text_file_named_png_is_refused_by_name(tmp_path: Path) -> None:
    path = _write(tmp_path, "notes.png", b"this is a text file, not a picture\n" * 3)
    with pytest.raises(ImageDecodeError, match="not a recognised image format") as info:
        to_rgb(path)
    assert info.value.item == str(path)


def test_missing_file_and_folder_are_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(ImageDecodeError, match="not found"):
        to_rgb(tmp_path / "nope.png")
    with pytest.raises(ImageDecodeError, match="folder"):
        to_rgb(tmp_path)


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ({"path": 0}, "neither 'bytes' nor a 'path' string"),  # never read stdin as a file descriptor
        ({"bytes": "text"}, "'bytes' is a str"),
        ({}, "neither 'bytes' nor a 'path' string"),
        (12, "unsupported type int"),
        (np.zeros(4), "array of shape"),
        (np.full((3, 3), np.nan), "NaN"),
        (np.zeros((3, 3), dtype=np.int64), "dtype int64"),
    ],
)
def test_malformed_sources_are_refused(item: object, message: str) -> None:
    with pytest.raises(ImageDecodeError, match=message):
        to_rgb(item)


def test_decompression_bomb_is_refused_from_its_header(tmp_path: Path) -> None:
    # A header-only file fails as "truncated" when it is decoded: the size message proves the
    # guard decided from the header, before any pixel data was touched.
    with pytest.raises(ImageDecodeError, match="truncated"):
        to_rgb(zoo.png_header_only(100, 100), name="small.png")
    for side in (10_000, 20_000):  # above PIL's limit, and above twice the limit
        path = _write(tmp_path, f"bomb{side}.png", zoo.png_header_only(side, side))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with pytest.raises(ImageDecodeError, match="decompression-bomb") as info:
                to_rgb(path)
        assert info.value.item == str(path)
        assert "truncated" not in str(info.value)
    assert Image.MAX_IMAGE_PIXELS == DEFAULT_MAX_PIXELS


def test_max_pixels_is_the_callers_limit_in_both_directions() -> None:
    small = zoo.png(zoo.textured(0, (40, 40)))
    with pytest.raises(ImageDecodeError, match="1600 pixels exceeds the limit of 1000"):
        to_rgb(small, max_pixels=1000)
    # a limit above PIL's default lets a large header through to decoding (which then fails here
    # only because the file has no pixel data), and leaves PIL's global limit as it was
    with pytest.raises(ImageDecodeError, match="truncated"):
        to_rgb(zoo.png_header_only(10_000, 10_000), max_pixels=200_000_000)
    assert Image.MAX_IMAGE_PIXELS == DEFAULT_MAX_PIXELS


def test_extreme_aspect_ratio_is_refused_before_decoding(tmp_path: Path) -> None:
    # 200000 x 1 pixels is a few hundred bytes, but an encoder that scales the short side to 64
    # would build a 64 x 12.8M tensor; it is refused from the header
    path = _write(tmp_path, "strip.png", zoo.png_header_only(200_000, 1))
    with pytest.raises(ImageDecodeError, match="more than 100 times longer than wide") as info:
        to_rgb(path)
    assert info.value.item == str(path)
    with pytest.raises(ImageDecodeError, match="longer than wide"):
        to_rgb(Image.new("RGB", (1, 101)))
    assert to_rgb(Image.new("RGB", (100, 1))).size == (100, 1)


# --- accepted inputs: same picture, same embedding -------------------------------------------------


def test_one_pixel_image(tiny_dinov2_dir: Path) -> None:
    dino = fp_rank.load_encoder(str(tiny_dinov2_dir))
    colour = (12, 200, 31)
    plain = zoo.png(Image.new("RGB", (1, 1), colour))
    gif = zoo.encode(Image.new("RGB", (1, 1), colour).convert("P", palette=Image.Palette.ADAPTIVE), "GIF")
    assert to_rgb(gif).size == (1, 1)
    assert_same_picture([dino], gif, plain)


def test_flat_pictures_still_get_a_demo_descriptor() -> None:
    demo = fp_rank.load_encoder("fp-rank-demo")
    emb = demo.encode([Image.new("RGB", (1, 1), (12, 200, 31)), Image.new("RGB", (9, 5), (0, 0, 0))], progress=False).embeddings
    assert np.isfinite(emb).all()
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-6)


def test_16bit_grayscale_png(encoders: list[fp_rank.Encoder]) -> None:
    gray8 = np.asarray(zoo.textured(4).convert("L"))
    data16 = zoo.png_16bit(gray8.astype(np.uint16) * 257)
    assert zoo.decoded_pixels(data16).mode == "I;16"
    assert_same_picture(encoders, data16, zoo.png(Image.fromarray(gray8, "L").convert("RGB")))
    # arbitrary 16-bit values: value // 257 (rounded down), never clipped
    values = np.random.default_rng(0).integers(0, 65536, size=(20, 30), dtype=np.uint16)
    values[0, :3] = (0, 65535, 257 * 128 + 256)
    got = np.asarray(to_rgb(zoo.png_16bit(values)))
    np.testing.assert_array_equal(got[..., 0], values // 257)
    np.testing.assert_array_equal(got[..., 0], got[..., 2])


def test_16bit_rgb_png(encoders: list[fp_rank.Encoder]) -> None:
    rgb8 = np.asarray(zoo.textured(5))
    assert_same_picture(encoders, zoo.png_16bit(rgb8.astype(np.uint16) * 257), zoo.png(Image.fromarray(rgb8)))
    values = np.random.default_rng(1).integers(0, 65536, size=(10, 12, 3), dtype=np.uint16)
    got = np.asarray(to_rgb(zoo.png_16bit(values))).astype(int)
    assert np.abs(got - values // 257).max() <= 1  # PIL keeps the high byte (documented)


def test_16bit_grayscale_png_with_a_transparent_value() -> None:
    values = (np.arange(120, dtype=np.uint16).reshape(10, 12) * 500).astype(np.uint16)
    got = np.asarray(to_rgb(zoo.png_16bit(values, transparent=int(values[0, 3]))))
    assert tuple(got[0, 3]) == (255, 255, 255)
    assert tuple(got[0, 2]) == (int(values[0, 2]) // 257,) * 3


def test_cmyk_jpeg(encoders: list[fp_rank.Encoder]) -> None:
    original = zoo.textured(6, (64, 48))
    data = zoo.encode(original.convert("CMYK"), "JPEG", quality=95)
    decoded = zoo.decoded_pixels(data)
    assert decoded.mode == "CMYK"
    # lossy: compare with the decoded file as plain RGB, not with the pre-JPEG original
    assert_same_picture(encoders, data, zoo.png(decoded.convert("RGB")))
    # and the inks are not inverted (Adobe CMYK JPEGs store them inverted)
    diff = np.abs(np.asarray(to_rgb(data)).astype(int) - np.asarray(original).astype(int)).mean()
    assert diff < 6


def test_palette_png_with_transparency(encoders: list[fp_rank.Encoder]) -> None:
    pal = zoo.textured(7).convert("P", palette=Image.Palette.ADAPTIVE, colors=12)
    index = np.asarray(pal)
    transparent = int(index[0, 0])
    data = zoo.encode(pal, "PNG", transparency=transparent)
    assert zoo.decoded_pixels(data).mode == "P"
    expected = np.asarray(pal.convert("RGB")).copy()
    expected[index == transparent] = 255
    assert (index == transparent).sum() > 0
    assert_same_picture(encoders, data, zoo.png(Image.fromarray(expected)))


def test_rgba_is_composited_on_white(encoders: list[fp_rank.Encoder]) -> None:
    rgb = np.asarray(zoo.textured(8))
    alpha = np.where((np.indices(rgb.shape[:2]).sum(axis=0) % 7) < 3, 0, 255).astype(np.uint8)
    data = zoo.png(Image.fromarray(np.dstack([rgb, alpha]), "RGBA"))
    expected = rgb.copy()
    expected[alpha == 0] = 255
    assert_same_picture(encoders, data, zoo.png(Image.fromarray(expected)))
    # partial transparency: the usual "over" blend on white, to within one level of rounding
    partial = np.random.default_rng(2).integers(0, 256, size=rgb.shape[:2], dtype=np.uint8)
    got = np.asarray(to_rgb(zoo.png(Image.fromarray(np.dstack([rgb, partial]), "RGBA")))).astype(float)
    a = partial[..., None] / 255.0
    assert np.abs(got - (rgb * a + 255.0 * (1 - a))).max() <= 1.0


@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "PNG"])
def test_animated_images_use_their_first_frame(encoders: list[fp_rank.Encoder], fmt: str) -> None:
    first, second = zoo.textured(9), zoo.textured(10).transpose(Image.Transpose.ROTATE_180)
    data = zoo.animated(fmt, [first, second], **({"lossless": True} if fmt == "WEBP" else {}))
    opened = Image.open(io.BytesIO(data))
    assert getattr(opened, "n_frames", 1) == 2
    opened.seek(0)
    plain_first = zoo.png(opened.convert("RGB"))
    opened.seek(1)
    plain_second = zoo.png(opened.convert("RGB"))
    assert_same_picture(encoders, data, plain_first)
    assert not np.allclose(_embed(encoders[0], data), _embed(encoders[0], plain_second), atol=1e-3)


@pytest.mark.parametrize("orientation", sorted(zoo.ORIENTATION_TRANSPOSE))
def test_exif_orientation_is_applied_before_encoding(encoders: list[fp_rank.Encoder], orientation: int) -> None:
    data = zoo.exif_jpeg(zoo.textured(11, (56, 40)), orientation)
    stored = zoo.decoded_pixels(data).convert("RGB")
    shown = stored
    for step in zoo.ORIENTATION_TRANSPOSE[orientation]:
        shown = shown.transpose(step)
    assert_same_picture(encoders, data, zoo.png(shown))
    if orientation in (5, 6, 7, 8):
        assert to_rgb(data).size == (stored.height, stored.width)
    for enc in encoders:  # the rotation changes what is encoded
        assert np.abs(_embed(enc, data) - _embed(enc, zoo.png(stored))).max() > 1e-3


# --- evaluate(): error names the file; on_invalid="skip" lists every skipped file ------------------


@pytest.fixture(scope="module")
def demo_gallery(demo_gallery_dir: Path) -> fp_rank.Gallery:
    return fp_rank.load_gallery(str(demo_gallery_dir), progress=False)


def _bad_files(tmp_path: Path) -> list[Path]:
    jpeg = zoo.encode(zoo.textured(1, (64, 64)), "JPEG", quality=90)
    files = [
        _write(tmp_path, "empty.png", b""),
        _write(tmp_path, "cut.png", zoo.png(zoo.textured(1, (64, 64)))[:300]),
        _write(tmp_path, "cut.jpg", jpeg[: len(jpeg) // 2]),
        _write(tmp_path, "text.png", b"hello\n"),
        _write(tmp_path, "bomb.png", zoo.png_header_only(20_000, 20_000)),
        tmp_path / "missing.png",
    ]
    return files


def test_evaluate_names_the_first_unreadable_file_or_skips_and_lists_them_all(
    tmp_path: Path, demo_gallery: fp_rank.Gallery, demo_generated: list[dict]
) -> None:
    good = demo_generated[:12]
    bad = _bad_files(tmp_path)
    generated = [r["image"] for r in good[:6]] + [str(p) for p in bad] + [r["image"] for r in good[6:]]
    identities = [r["identity"] for r in good[:6]] + [good[0]["identity"]] * len(bad) + [r["identity"] for r in good[6:]]
    kwargs = dict(gallery=demo_gallery, encoder="fp-rank-demo", progress=False, ceilings=False)
    with pytest.raises(ImageDecodeError) as info:
        fp_rank.evaluate(generated, identities, **kwargs)
    assert info.value.item == str(bad[0])

    report = fp_rank.evaluate(generated, identities, on_invalid="skip", **kwargs)
    assert sorted(s["file"] for s in report.skipped) == sorted(str(p) for p in bad)
    assert all(s["reason"] for s in report.skipped)
    assert report.single.n_skipped == len(bad)
    assert report.single.n_queries == len(good)
    assert {q["file"] for q in report.queries}.isdisjoint({str(p) for p in bad})
    # the readable images score exactly as they do without the bad ones
    clean = fp_rank.evaluate([r["image"] for r in good], [r["identity"] for r in good], **kwargs)
    assert [q["ap"] for q in report.queries] == [q["ap"] for q in clean.queries]
