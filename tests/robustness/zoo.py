"""Builders for awkward image files, written byte by byte where PIL cannot produce them."""

from __future__ import annotations

import io
import struct
import zlib
from typing import Any

import numpy as np
from PIL import Image

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def textured(seed: int = 0, size: tuple[int, int] = (48, 40)) -> Image.Image:
    """A deterministic RGB picture with structure at several scales (not symmetric, not flat)."""
    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 255 // max(w - 1, 1), yy * 255 // max(h - 1, 1), (xx + 2 * yy) % 256], axis=-1)
    noise = rng.integers(0, 60, size=(h, w, 3))
    arr = np.clip(base + noise, 0, 255).astype(np.uint8)
    arr[: h // 3, : w // 4] = (230, 30, 30)  # an off-centre block: rotations change the picture
    return Image.fromarray(arr, "RGB")


def encode(img: Image.Image, fmt: str, **kwargs: Any) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def png(img: Image.Image) -> bytes:
    return encode(img, "PNG")


def png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def png_16bit(arr: np.ndarray, *, transparent: int | None = None) -> bytes:
    """A 16-bit grayscale (2-D array) or RGB (H, W, 3) PNG, written directly (big-endian samples)."""
    values = np.asarray(arr, dtype=np.uint16)
    h, w = values.shape[:2]
    color_type = 0 if values.ndim == 2 else 2
    rows = b"".join(b"\x00" + values[y].astype(">u2").tobytes() for y in range(h))
    extra = png_chunk(b"tRNS", struct.pack(">H", transparent)) if transparent is not None else b""
    return (
        PNG_SIGNATURE
        + png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, color_type, 0, 0, 0))
        + extra
        + png_chunk(b"IDAT", zlib.compress(rows))
        + png_chunk(b"IEND", b"")
    )


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares ``width`` x ``height`` pixels but carries only one row of pixel data.

    It opens (the header is complete) but decoding it fails as truncated; a guard that refuses it
    for its size has decided from the header alone, before any pixel data was decoded.
    """
    one_row = zlib.compress(b"\x00" + b"\x00" * (3 * min(width, 64)))
    return (
        PNG_SIGNATURE
        + png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + png_chunk(b"IDAT", one_row)
    )


def exif_jpeg(img: Image.Image, orientation: int, quality: int = 92) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(img, "JPEG", quality=quality, exif=exif.tobytes())


#: How a viewer turns the stored pixels for each EXIF orientation value.
ORIENTATION_TRANSPOSE = {
    2: [Image.Transpose.FLIP_LEFT_RIGHT],
    3: [Image.Transpose.ROTATE_180],
    4: [Image.Transpose.FLIP_TOP_BOTTOM],
    5: [Image.Transpose.TRANSPOSE],
    6: [Image.Transpose.ROTATE_270],
    7: [Image.Transpose.TRANSVERSE],
    8: [Image.Transpose.ROTATE_90],
}


def decoded_pixels(data: bytes) -> Image.Image:
    """PIL's plain decode of ``data`` (no EXIF handling), loaded."""
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def animated(fmt: str, frames: list[Image.Image], **kwargs: Any) -> bytes:
    return encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=80, loop=0, **kwargs)


SEED_FORMATS = ("PNG", "JPEG", "GIF", "WEBP", "BMP", "TIFF")


def seed_images() -> dict[str, bytes]:
    """Small valid files of several formats and modes, the starting points of the fuzz runs."""
    pic = textured(3, (24, 20))
    out = {
        "png_rgb": png(pic),
        "png_rgba": png(pic.convert("RGBA")),
        "png_palette_trns": encode(pic.convert("P", palette=Image.Palette.ADAPTIVE, colors=8), "PNG", transparency=0),
        "png_gray16": png_16bit((np.asarray(pic.convert("L"), dtype=np.uint16) * 257)),
        "jpeg": encode(pic, "JPEG", quality=80),
        "jpeg_cmyk": encode(pic.convert("CMYK"), "JPEG", quality=80),
        "jpeg_exif": exif_jpeg(pic, 6, quality=80),
        "jpeg_progressive": encode(pic, "JPEG", quality=80, progressive=True),
        "gif_anim": animated("GIF", [pic, pic.transpose(Image.Transpose.ROTATE_180)]),
        "webp": encode(pic, "WEBP", quality=80),
        "webp_anim": animated("WEBP", [pic, pic.transpose(Image.Transpose.ROTATE_180)], lossless=True),
        "apng": animated("PNG", [pic, pic.transpose(Image.Transpose.ROTATE_180)]),
        "bmp": encode(pic, "BMP"),
        "tiff": encode(pic, "TIFF"),
    }
    return out
