"""Photo-like test images in many sizes, aspect ratios, modes and file formats (built in memory)."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image


def photo(height: int, width: int, seed: int) -> np.ndarray:
    """A smooth, structured ``(height, width, 3)`` uint8 picture with some noise (resizing it matters)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    y /= max(height - 1, 1)
    x /= max(width - 1, 1)
    channels = []
    for c in range(3):
        fx, fy, phase = rng.uniform(1, 9), rng.uniform(1, 9), rng.uniform(0, 2 * np.pi)
        wave = np.sin(2 * np.pi * (fx * x + fy * y) + phase)
        cx, cy = rng.uniform(0, 1, 2)
        blob = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / rng.uniform(0.005, 0.05))
        channels.append(110 + 70 * wave + 60 * blob + rng.normal(0, 12, (height, width)))
    return np.clip(np.stack(channels, axis=-1), 0, 255).round().astype(np.uint8)


@dataclass(frozen=True)
class Case:
    """One test image: its encoded bytes and whether fp-rank's decode rule gives the same RGB
    pixels as the reference's ``Image.open(f).convert('RGB')`` (it differs on purpose for
    transparency, 16-bit and EXIF orientation)."""

    name: str
    data: bytes
    same_decode: bool


def _encode(img: Image.Image, fmt: str, **kwargs: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


#: (height, width) of the RGB PNG cases: square, portrait, landscape, odd, tiny and very wide.
RGB_SIZES = [
    (224, 224), (256, 256), (480, 640), (640, 480), (872, 1000), (1000, 872), (700, 300), (300, 700),
    (255, 257), (257, 255), (1, 1), (3, 2), (2, 3), (20, 2000), (2000, 20), (13, 1200), (100, 100),
    (64, 48), (31, 33), (1200, 1600), (512, 512), (223, 225), (4, 4), (1, 3), (3, 1), (440, 440),
]


def photo_cases() -> list[Case]:
    """44 images: RGB PNGs of :data:`RGB_SIZES`, JPEGs, grayscale, 1-bit, palette, RGBA, LA,
    16-bit grayscale and RGB, CMYK, an EXIF-rotated JPEG and an animated GIF."""
    cases: list[Case] = []
    seed = 0
    for h, w in RGB_SIZES:
        seed += 1
        cases.append(Case(f"rgb-{h}x{w}.png", _encode(Image.fromarray(photo(h, w, seed)), "PNG"), True))
    for h, w in [(480, 640), (333, 500), (1000, 750)]:
        seed += 1
        cases.append(Case(f"rgb-{h}x{w}.jpg", _encode(Image.fromarray(photo(h, w, seed)), "JPEG", quality=90), True))
    for h, w in [(300, 400), (1, 1), (50, 2000)]:
        seed += 1
        gray = Image.fromarray(photo(h, w, seed)).convert("L")
        cases.append(Case(f"gray-{h}x{w}.png", _encode(gray, "PNG"), True))
    seed += 1
    cases.append(Case("bilevel-64x64.png", _encode(Image.fromarray(photo(64, 64, seed)).convert("1"), "PNG"), True))
    for h, w in [(240, 320), (2, 3)]:
        seed += 1
        pal = Image.fromarray(photo(h, w, seed)).quantize(colors=64)
        cases.append(Case(f"palette-{h}x{w}.png", _encode(pal, "PNG"), True))
    seed += 1
    pal = Image.fromarray(photo(200, 200, seed)).quantize(colors=32)
    cases.append(Case("palette-transparent-200x200.png", _encode(pal, "PNG", transparency=0), False))
    for h, w in [(300, 200), (1, 1), (640, 480)]:
        seed += 1
        rgba = np.dstack([photo(h, w, seed), np.linspace(0, 255, h * w).reshape(h, w).astype(np.uint8)])
        cases.append(Case(f"rgba-{h}x{w}.png", _encode(Image.fromarray(rgba, "RGBA"), "PNG"), False))
    seed += 1
    la = Image.fromarray(photo(200, 300, seed)).convert("LA")
    cases.append(Case("la-200x300.png", _encode(la, "PNG"), False))
    seed += 1
    deep = (photo(200, 300, seed)[..., 0].astype(np.uint16) * 257 + 100).astype(np.uint16)
    cases.append(Case("gray16-200x300.png", _encode(Image.fromarray(deep), "PNG"), False))
    seed += 1
    try:
        cases.append(Case("rgb16-240x320.png", _rgb16_png(photo(240, 320, seed)), False))
    except ImportError:  # OpenCV (the test extra) writes it
        pass
    seed += 1
    cmyk = Image.fromarray(photo(200, 300, seed)).convert("CMYK")
    cases.append(Case("cmyk-200x300.jpg", _encode(cmyk, "JPEG", quality=92), True))
    seed += 1
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to view
    rotated = _encode(Image.fromarray(photo(300, 400, seed)), "JPEG", quality=90, exif=exif.tobytes())
    cases.append(Case("exif-rotated-300x400.jpg", rotated, False))
    seed += 1
    frames = [Image.fromarray(photo(100, 120, seed + k)).quantize(colors=64) for k in range(2)]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=100)
    cases.append(Case("animated-100x120.gif", buf.getvalue(), True))
    return cases


def _rgb16_png(rgb8: np.ndarray) -> bytes:
    """A 16-bit RGB PNG (PIL cannot write one; written with OpenCV, which stores BGR)."""
    import cv2

    deep = rgb8.astype(np.uint16) * 257 + 37
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(deep[..., ::-1]))
    assert ok
    return buf.tobytes()
