"""Reading images: lazily, one batch at a time, with one documented conversion rule.

Accepted image sources (``ImageSource``):

* a path (``str`` or ``os.PathLike``) to an image file;
* raw encoded bytes (PNG, JPEG, ...);
* a ``PIL.Image.Image``;
* a ``numpy`` array ``(H, W)``, ``(H, W, 1)``, ``(H, W, 3)`` or ``(H, W, 4)``: ``uint8`` as is,
  ``uint16`` scaled by 255/65535, floats in [0, 1] scaled by 255 and rounded (floats outside
  [0, 1] by more than ``FLOAT_TOLERANCE`` are refused, never clipped);
* a ``dict`` with ``"bytes"`` and/or ``"path"`` keys, as ``datasets.Image(decode=False)`` gives.

Conversion rule, applied identically to generated images and gallery images:

1. the EXIF orientation tag is applied (the picture is rotated as a viewer would show it);
2. animated images use their first frame;
3. 16-bit images are scaled to 8 bits, not clipped: 16-bit grayscale as ``value // 257``; 16-bit
   RGB(A) PNGs are reduced by PIL to their high byte (``value >> 8``), which differs from
   ``value // 257`` by at most one level (both give back ``v`` for a value ``257 * v`` stored from
   an 8-bit picture);
4. images with transparency (RGBA, LA, premultiplied RGBa/La, palette with a transparent index,
   grayscale or RGB with a ``tRNS`` colour) are composited onto a white background;
5. everything else is converted to 8-bit RGB by PIL (CMYK and YCbCr included; CMYK uses PIL's
   plain conversion, no ICC colour management).

Safety: only the raster formats of :data:`DEFAULT_FORMATS` are decoded (PNG, JPEG, WebP, GIF,
BMP, TIFF; ``formats=`` narrows the list): a file whose bytes are another format (an EPS page, which
PIL would hand to Ghostscript, or an ICO, whose header may understate the picture it embeds) is
refused whatever its name. Truncated files are refused even when ``PIL.ImageFile.LOAD_TRUNCATED_IMAGES`` is set
elsewhere in the process; images above ``max_pixels``, or more than :data:`MAX_ASPECT_RATIO`
times longer than wide, are refused from their header size, before any pixel data is decoded; whatever a malformed file makes PIL raise is reported as an
:class:`~fp_rank.errors.ImageDecodeError` naming the file.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Union

import threading

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from fp_rank.errors import ImageDecodeError, InputError
from fp_rank.file_access import is_regular_file, read_regular_raw

#: How far outside [0, 1] a float image may stray (rounding of computed values) before it is refused.
FLOAT_TOLERANCE = 1e-6

ImageSource = Union[str, "os.PathLike[str]", bytes, Image.Image, np.ndarray, dict]

#: Largest image accepted, in pixels (PIL's own decompression-bomb threshold by default).
DEFAULT_MAX_PIXELS = 89_478_485

#: Longest side / shortest side beyond which a picture is refused. Encoders resize the *short*
#: side to their input size, so a 1 x 200000 strip (a few kB on disk) would expand to a
#: 64 x 12.8M tensor and exhaust memory; no generated or gallery image is that thin.
MAX_ASPECT_RATIO = 100

#: Formats decoded by default (PIL format names). Every one of them states its real dimensions in
#: its header (PNG IHDR, JPEG SOF, WebP VP8 header, GIF first frame, BMP and TIFF headers), so the
#: pixel and aspect limits hold before any pixel is decoded. "JPEG" includes the multi-picture
#: JPEGs (MPO) of phone cameras, which PIL opens through its JPEG plugin.
DEFAULT_FORMATS: tuple[str, ...] = ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF")

#: Formats that ``formats=`` may name; others (EPS, PDF, ICO, ...) run external programs or have
#: headers that do not bound the decoded size.
SUPPORTED_FORMATS = frozenset(DEFAULT_FORMATS)

#: Background colour used when flattening transparent images.
ALPHA_BACKGROUND = (255, 255, 255)

#: Version of the conversion rule above; part of every embedding cache key.
DECODE_RULE_VERSION = "2"

# PIL's decoding limits are process-wide globals; changing them is serialised by this lock and
# only happens when the caller's limits differ from what PIL would apply anyway.
_PIL_GLOBALS_LOCK = threading.Lock()


def describe_source(item: Any, index: int | None = None) -> str:
    """A short human name for an image source, used in error messages and reports."""
    if isinstance(item, (str, os.PathLike)):
        return os.fspath(item)
    if isinstance(item, dict) and item.get("path"):
        return str(item["path"])
    if isinstance(item, Image.Image) and getattr(item, "filename", None):
        return str(item.filename)
    return f"item #{index}" if index is not None else f"<{type(item).__name__}>"


def source_bytes(item: Any) -> bytes | None:
    """The encoded bytes of a file-like source, or None for in-memory pictures."""
    if isinstance(item, (bytes, bytearray, memoryview)):
        return bytes(item)
    if isinstance(item, (str, os.PathLike)):
        return read_regular_raw(item)  # a FIFO or device is refused, never read until it ends
    if isinstance(item, dict):
        data, path = item.get("bytes"), item.get("path")
        if isinstance(data, (bytes, bytearray, memoryview)):
            return bytes(data)
        # only a real path string: open() would also accept an int as a file descriptor
        if data is None and isinstance(path, (str, os.PathLike)) and os.fspath(path):
            return read_regular_raw(path)
    return None


def content_hash(item: Any) -> str:
    """sha256 of an image source's content: its encoded bytes, or its decoded RGB pixels."""
    data = source_bytes(item)
    if data is None:
        rgb = to_rgb(item, name=describe_source(item))
        arr = np.asarray(rgb)
        data = b"rgb" + np.asarray(arr.shape, dtype=np.int64).tobytes() + arr.tobytes()
    return hashlib.sha256(data).hexdigest()


def content_fingerprint(hashes: Sequence[str]) -> str:
    """Fingerprint of an ordered list of per-image sha256 digests (part of every cache key).

    Example:
        >>> content_fingerprint(["a" * 64]) == content_fingerprint(["a" * 64])
        True
        >>> content_fingerprint(["a" * 64, "b" * 64]) == content_fingerprint(["b" * 64, "a" * 64])
        False
    """
    digest = hashlib.sha256()
    for h in hashes:
        digest.update(h.encode())
        digest.update(b"\n")
    return digest.hexdigest()


def check_formats(formats: Iterable[str] | None) -> tuple[str, ...]:
    """Normalise a ``formats=`` allow-list (None: :data:`DEFAULT_FORMATS`).

    Raises:
        InputError: an empty list, or a format outside :data:`SUPPORTED_FORMATS`.

    Example:
        >>> check_formats(["png", "jpeg"])
        ('PNG', 'JPEG')
    """
    if formats is None:
        return DEFAULT_FORMATS
    if isinstance(formats, str):
        formats = [f for f in formats.replace(",", " ").split() if f]
    names = [str(f).upper().strip() for f in formats]
    names = ["JPEG" if n == "JPG" else "TIFF" if n == "TIF" else n for n in names]
    bad = sorted(set(names) - SUPPORTED_FORMATS)
    if bad or not names:
        raise InputError(
            f"formats {bad or list(formats)!r} cannot be decoded safely; choose among {list(DEFAULT_FORMATS)}"
        )
    return tuple(dict.fromkeys(names))


def read_header(
    data: bytes | str | os.PathLike[str], name: str, *, max_pixels: int = DEFAULT_MAX_PIXELS, formats: Iterable[str] | None = None
) -> tuple[str, int, int]:
    """Identify encoded bytes (or a file) and check their size from the header alone (no pixel is decoded).

    Returns:
        ``(format, width, height)``.

    Raises:
        ImageDecodeError: a format outside ``formats``, a header over ``max_pixels`` or the aspect
            limit, or an unreadable header.
    """
    allowed = check_formats(formats)
    if isinstance(data, (str, os.PathLike)):
        if not is_regular_file(data):
            raise ImageDecodeError(name, "not a regular file (a folder, FIFO or device); name an image file")
        with open(data, "rb") as fh:
            head = fh.read(16)
        stream: Any = os.fspath(data)
    else:
        head, stream = bytes(data[:16]), io.BytesIO(data)
    try:
        with Image.open(stream, formats=list(allowed)) as img:
            fmt, (w, h) = str(img.format), img.size
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageDecodeError(name, f"image too large (decompression-bomb guard: {exc})") from None
    except UnidentifiedImageError:
        raise ImageDecodeError(name, _format_refusal(head, allowed)) from None
    except Exception as exc:  # malformed header: PIL raises many types
        raise ImageDecodeError(name, f"unreadable image header ({type(exc).__name__}: {exc})") from None
    _check_size(w, h, name, max_pixels)
    return fmt, w, h


def _format_refusal(data: bytes, allowed: Sequence[str]) -> str:
    """Why bytes were not opened: not an image at all, or an image format outside the allow-list.

    Only the plugins' magic-number tests are asked (opening with another plugin could decode, as
    ICO does, or run a program, as EPS does).
    """
    Image.init()
    prefix = data[:16]
    for fmt, (_, accept) in Image.OPEN.items():
        try:
            if accept is not None and accept(prefix):
                return f"{fmt} files are not decoded (allowed formats: {', '.join(allowed)}); convert it to PNG"
        except Exception:  # noqa: BLE001 - a plugin's test failing on odd bytes only means "not this one"
            continue
    return "not a recognised image format"


def _check_size(w: int, h: int, name: str, max_pixels: int) -> None:
    if w * h > max_pixels:
        raise ImageDecodeError(
            name, f"{w}x{h} = {w * h} pixels exceeds the limit of {max_pixels} pixels (decompression-bomb guard)"
        )
    _check_aspect(w, h, name)


def _open(item: Any, name: str, max_pixels: int, formats: tuple[str, ...] = DEFAULT_FORMATS) -> Image.Image:
    if isinstance(item, Image.Image):
        return item
    if isinstance(item, np.ndarray):
        return _from_array(item, name)
    if isinstance(item, dict):
        data, path = item.get("bytes"), item.get("path")
        if data is not None and not isinstance(data, (bytes, bytearray, memoryview)):
            raise ImageDecodeError(name, f"the dict's 'bytes' is a {type(data).__name__}, not bytes")
        if data is None and not (isinstance(path, (str, os.PathLike)) and os.fspath(path)):
            raise ImageDecodeError(name, "the dict has neither 'bytes' nor a 'path' string")
    elif not isinstance(item, (bytes, bytearray, memoryview, str, os.PathLike)):
        raise ImageDecodeError(
            name,
            f"unsupported type {type(item).__name__}; pass a file path, bytes, a PIL image, a "
            "numpy array or a {'bytes', 'path'} dict",
        )
    try:
        data = source_bytes(item)
    except FileNotFoundError:
        raise ImageDecodeError(name, "file not found") from None
    except IsADirectoryError:
        raise ImageDecodeError(name, "this is a folder, not an image file") from None
    except OSError as exc:
        raise ImageDecodeError(name, f"cannot open the file ({exc.strerror or exc})") from None
    if not data:
        raise ImageDecodeError(name, "the file is empty (0 bytes)")
    pil_limit = Image.MAX_IMAGE_PIXELS
    if ImageFile.LOAD_TRUNCATED_IMAGES or (pil_limit is not None and max_pixels > pil_limit):
        with _PIL_GLOBALS_LOCK:
            saved = (Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES)
            Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES = max(max_pixels, pil_limit or 0), False
            try:
                return _decode(data, name, max_pixels, formats)
            finally:
                Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES = saved
    return _decode(data, name, max_pixels, formats)


def _decode(data: bytes, name: str, max_pixels: int, formats: tuple[str, ...] = DEFAULT_FORMATS) -> Image.Image:
    """Open encoded bytes, refuse oversized images from the header, then decode the pixels."""
    try:
        try:
            img = Image.open(io.BytesIO(data), formats=list(formats))
        except UnidentifiedImageError:
            raise ImageDecodeError(name, _format_refusal(data, formats)) from None
        _check_size(*img.size, name, max_pixels)
        img.load()
        if img.size[0] * img.size[1] > max_pixels:  # a decoder that grew the picture past its header
            raise ImageDecodeError(name, f"decoded size {img.size} exceeds its header; refused")
    except ImageDecodeError:
        raise
    except MemoryError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageDecodeError(name, f"image too large (decompression-bomb guard: {exc})") from None
    except UnidentifiedImageError:
        raise ImageDecodeError(name, "not a recognised image format") from None
    except Exception as exc:  # PIL raises many types on malformed data (OSError, struct.error, ...)
        raise ImageDecodeError(name, f"corrupt or truncated image data ({type(exc).__name__}: {exc})") from exc
    return img


def check_array_image(arr: np.ndarray, name: str) -> np.ndarray:
    """Refuse an array that the conversion rule does not accept; returns it as (H, W) or (H, W, C).

    Raises:
        ImageDecodeError: a shape other than (H, W), (H, W, 1), (H, W, 3), (H, W, 4); a dtype other
            than uint8, uint16 or float; NaN/inf; floats outside [0, 1] (beyond ``FLOAT_TOLERANCE``).
    """
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise ImageDecodeError(name, f"array of shape {arr.shape} is not (H, W), (H, W, 3) or (H, W, 4)")
    if arr.dtype.kind == "f":
        if not np.isfinite(arr).all():
            raise ImageDecodeError(name, "float array holds NaN or inf")
        low, high = float(arr.min()), float(arr.max())
        if low < -FLOAT_TOLERANCE or high > 1.0 + FLOAT_TOLERANCE:
            raise ImageDecodeError(
                name, f"float array values span [{low:g}, {high:g}]; float images must lie in [0, 1] (divide 0..255 "
                "data by 255, or pass a uint8 array)",
            )
    elif arr.dtype not in (np.uint8, np.uint16):
        raise ImageDecodeError(name, f"array dtype {arr.dtype} is not uint8, uint16 or float in [0, 1]")
    return arr


def _from_array(arr: np.ndarray, name: str) -> Image.Image:
    arr = check_array_image(arr, name)
    if arr.dtype.kind == "f":
        arr = np.clip(np.rint(arr * 255.0), 0, 255).astype(np.uint8)
    elif arr.dtype == np.uint16:
        arr = (arr.astype(np.uint32) * 255 // 65535).astype(np.uint8)
    return Image.fromarray(np.ascontiguousarray(arr))


def decode_problem(item: Any, name: str, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> str | None:
    """Why ``item`` cannot be decoded (one line), or None when it decodes.

    Example:
        >>> decode_problem(b"not an image", "x.png") is not None
        True
    """
    try:
        to_rgb(item, name=name, max_pixels=max_pixels)
    except ImageDecodeError as exc:
        return str(exc)
    return None


def to_rgb(
    item: Any, *, name: str | None = None, max_pixels: int = DEFAULT_MAX_PIXELS, formats: Iterable[str] | None = None
) -> Image.Image:
    """Decode one image source to 8-bit RGB following the module's conversion rule.

    Args:
        item: an image source (see the module docstring).
        name: how to name the item in errors (default: its path or type).
        max_pixels: refuse images with more pixels than this, before decoding them.
        formats: encoded formats to decode (default :data:`DEFAULT_FORMATS`); other formats are
            refused from their bytes, whatever the file is named.

    Returns:
        A loaded ``PIL.Image.Image`` in mode ``"RGB"``.

    Raises:
        ImageDecodeError: if the source cannot be read; the message names it.
    """
    name = name or describe_source(item)
    img = _open(item, name, max_pixels, check_formats(formats))
    try:
        if getattr(img, "is_animated", False):
            img.seek(0)
        img = ImageOps.exif_transpose(img) or img
        mode = img.mode
        if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
            arr = np.asarray(img, dtype=np.uint32 if mode != "I" else np.int64)
            if mode == "I":
                arr = np.clip(arr, 0, 65535)
            transparent = img.info.get("transparency")
            gray = Image.fromarray((arr * 255 // 65535).astype(np.uint8), mode="L")
            if isinstance(transparent, int) and not isinstance(transparent, bool):
                alpha = Image.fromarray(np.where(arr == transparent, 0, 255).astype(np.uint8), mode="L")
                gray = Image.merge("LA", (gray, alpha))
            img = gray
            mode = img.mode
        if mode == "La":  # premultiplied: PIL only converts it to LA
            img = img.convert("LA")
            mode = "LA"
        if mode == "F":
            arr = np.asarray(img, dtype=np.float64)
            img = Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), mode="L")
            mode = "L"
        has_alpha = mode in ("RGBA", "LA", "PA", "La", "RGBa") or (
            mode in ("P", "L", "RGB") and "transparency" in img.info
        )
        if has_alpha:
            rgba = img.convert("RGBA")
            background = Image.new("RGBA", rgba.size, ALPHA_BACKGROUND + (255,))
            img = Image.alpha_composite(background, rgba).convert("RGB")
        elif mode != "RGB":
            img = img.convert("RGB")
        else:
            img = img.copy() if img is item else img
        img.load()
    except ImageDecodeError:
        raise
    except MemoryError:
        raise
    except Exception as exc:  # conversion of malformed data (bad EXIF, palette, mode): name the file
        raise ImageDecodeError(name, f"corrupt image data ({type(exc).__name__}: {exc})") from exc
    if img.width < 1 or img.height < 1:
        raise ImageDecodeError(name, f"image has no pixels ({img.width}x{img.height})")
    _check_aspect(img.width, img.height, name)
    return img


def _check_aspect(w: int, h: int, name: str) -> None:
    if w >= 1 and h >= 1 and max(w, h) > MAX_ASPECT_RATIO * min(w, h):
        raise ImageDecodeError(
            name,
            f"{w}x{h} is more than {MAX_ASPECT_RATIO} times longer than wide; encoders scale the short side up, "
            "so such a strip would need an enormous tensor. Crop or pad it to a sane shape",
        )


def iter_batches(
    items: Sequence[Any] | Iterable[Any], batch_size: int
) -> Iterator[list[tuple[int, Any]]]:
    """Yield ``[(index, source), ...]`` lists of at most ``batch_size`` items, lazily."""
    if batch_size < 1:
        raise InputError(f"batch_size must be >= 1, got {batch_size}")
    batch: list[tuple[int, Any]] = []
    for i, item in enumerate(items):
        batch.append((i, item))
        if len(batch) == batch_size:
            yield batch
            batch = []
    if batch:
        yield batch
