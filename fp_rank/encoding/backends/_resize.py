"""The square-resize preprocessing of the backends that bring no image processor.

Two rules live here:

* :func:`resize_to_tensor`: Pillow bilinear resize, values in [0, 1], optional normalisation
  (the demo encoder's own rule).
* :func:`square_resize_normalise`: MiewID's reference rule, albumentations
  ``Compose([Resize(size, size), Normalize()])`` as the authors' evaluation code runs it: OpenCV
  ``cv2.resize(..., interpolation=cv2.INTER_LINEAR)`` on the 8-bit RGB array (half-pixel
  centres, no antialiasing, 8-bit output), then ``(v - 255 * mean) * (1 / (255 * std))`` in
  float32 through a per-channel lookup table. ``mode="processor"`` calls OpenCV itself;
  ``mode="fast"`` uses :func:`opencv_linear_emulated`, OpenCV's fixed-point arithmetic written
  out in NumPy (no OpenCV needed; equal to it on every image we measured).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from fp_rank.errors import EncoderError

#: What to install for the exact MiewID preprocessing.
OPENCV_HINT = "pip install 'fp-rank[miewid]' (or: pip install opencv-python-headless)"


def resize_to_tensor(
    images: list[Any], size: int, mean: Sequence[float] | None, std: Sequence[float] | None
) -> torch.Tensor:
    """RGB PIL images -> ``(B, 3, size, size)`` float32 in [0, 1], bilinear, optionally normalised.

    Example:
        >>> from PIL import Image
        >>> resize_to_tensor([Image.new("RGB", (8, 4), (255, 0, 0))], 2, None, None)[0, :, 0, 0]
        tensor([1., 0., 0.])
    """
    from PIL import Image

    arrays = [np.asarray(img.resize((size, size), Image.Resampling.BILINEAR), dtype=np.float32) for img in images]
    x = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2) / 255.0
    if mean is not None and std is not None:
        x = (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    return x.contiguous()


def require_opencv(purpose: str) -> Any:
    """The ``cv2`` module.

    Raises:
        EncoderError: When OpenCV is not installed; the message says how to install it and what
            the alternative is.
    """
    try:
        import cv2
    except ImportError as exc:
        raise EncoderError(
            f"{purpose} resizes with OpenCV (cv2.resize, INTER_LINEAR), as the reference code does, but OpenCV "
            f"is not installed: {OPENCV_HINT}; or pass preprocessing='fast' for fp-rank's NumPy rewrite of "
            "OpenCV's arithmetic (recorded in the report)"
        ) from exc
    return cv2


def _rgb_array(image: Any) -> np.ndarray:
    if getattr(image, "mode", "RGB") != "RGB":
        image = image.convert("RGB")
    arr = np.ascontiguousarray(np.asarray(image, dtype=np.uint8))
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise EncoderError(f"expected an RGB image of shape (H, W, 3), got an array of shape {arr.shape}")
    return arr


def opencv_linear(arr: np.ndarray, size: int) -> np.ndarray:
    """``(H, W, 3)`` uint8 -> ``(size, size, 3)`` uint8 with ``cv2.resize(..., INTER_LINEAR)``.

    Like albumentations' ``Resize``, an image already of the target size is returned unchanged.
    """
    if arr.shape[:2] == (size, size):
        return arr
    cv2 = require_opencv("this preprocessing")
    return np.asarray(cv2.resize(arr, (size, size), interpolation=cv2.INTER_LINEAR))


#: OpenCV's fixed-point scale for interpolation weights (``INTER_RESIZE_COEF_BITS = 11``).
_COEF_SCALE = 2048


def _linear_taps(src: int, dst: int, clamp: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """OpenCV ``INTER_LINEAR`` source indices and 11-bit weights along one axis.

    The position of output ``d`` is ``(d + 0.5) * src / dst - 0.5`` (in double, then float32),
    split into ``floor`` and fraction; weights are ``round(2048 * (1 - f))`` and
    ``round(2048 * f)``. Along x, positions outside the image are clamped to the edge pixel
    (weight 2048, 0); along y, OpenCV keeps the weights and clamps the row indices instead.
    """
    scale = 1.0 / (dst / src)
    pos = ((np.arange(dst, dtype=np.float64) + 0.5) * scale - 0.5).astype(np.float32)
    first = np.floor(pos).astype(np.int64)
    frac = (pos - first.astype(np.float32)).astype(np.float32)
    if clamp:
        outside = (first < 0) | (first >= src - 1)
        frac[outside] = 0
        first = np.where(first < 0, 0, np.where(first >= src - 1, src - 1, first))
    w0 = np.rint((np.float32(1) - frac) * np.float32(_COEF_SCALE)).astype(np.int64)
    w1 = np.rint(frac * np.float32(_COEF_SCALE)).astype(np.int64)
    return np.clip(first, 0, src - 1), np.clip(first + 1, 0, src - 1), w0, w1


def opencv_linear_emulated(arr: np.ndarray, size: int) -> np.ndarray:
    """``(H, W, 3)`` uint8 -> ``(size, size, 3)`` uint8: OpenCV's 8-bit ``INTER_LINEAR`` resize
    written out in NumPy integer arithmetic, without OpenCV.

    It follows OpenCV's fixed-point path: 11-bit weights, an exact horizontal pass into 32-bit
    sums, then the vertical pass of OpenCV's SIMD kernel (``((s >> 4) * w) >> 16`` per row, summed,
    ``+ 2 >> 2``); an exact 2x downscale is OpenCV's 2x2 area average instead. Measured equal to
    ``cv2.resize`` (opencv-python-headless 4.12 and 5.0, x86-64) on every image and size in
    ``tests/test_preprocessing_parity.py`` and ``benchmarks/reference_parity.py``; other OpenCV
    builds (e.g. ARM's HAL) may round differently.

    Example:
        >>> a = np.arange(48, dtype=np.uint8).reshape(4, 4, 3)
        >>> opencv_linear_emulated(a, 2)[0, 0].tolist()  # a 2x downscale averages 2x2 blocks
        [8, 9, 10]
    """
    height, width, channels = arr.shape
    if (height, width) == (size, size):
        return arr
    src = arr.astype(np.int64)
    if height == 2 * size and width == 2 * size:
        return ((src[0::2, 0::2] + src[0::2, 1::2] + src[1::2, 0::2] + src[1::2, 1::2] + 2) >> 2).astype(np.uint8)
    x0, x1, wx0, wx1 = _linear_taps(width, size, clamp=True)
    y0, y1, wy0, wy1 = _linear_taps(height, size, clamp=False)
    rows = (src[:, x0] * wx0[None, :, None] + src[:, x1] * wx1[None, :, None]).reshape(height, size * channels)
    out = ((((rows[y0] >> 4) * wy0[:, None]) >> 16) + (((rows[y1] >> 4) * wy1[:, None]) >> 16) + 2) >> 2
    return np.clip(out, 0, 255).astype(np.uint8).reshape(size, size, channels)


@functools.lru_cache(maxsize=8)
def _normalise_table(mean: tuple[float, ...], std: tuple[float, ...]) -> np.ndarray:
    """``table[c, v]`` = albumentations ``Normalize(mean, std, max_pixel_value=255)`` of 8-bit ``v``."""
    shift = np.asarray(mean, dtype=np.float32) * 255.0
    scale = np.reciprocal(np.asarray(std, dtype=np.float32) * 255.0, dtype=np.float32)
    values = np.arange(256, dtype=np.float32)
    return np.ascontiguousarray((values[None, :] - shift[:, None]) * scale[:, None], dtype=np.float32)


def normalise_uint8(batch: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """``(B, H, W, 3)`` uint8 -> ``(B, 3, H, W)`` float32, normalised as albumentations does it.

    Example:
        >>> x = normalise_uint8(np.full((1, 1, 1, 3), 255, np.uint8), (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
        >>> x.flatten().tolist()
        [1.0, 1.0, 1.0]
    """
    table = _normalise_table(tuple(float(m) for m in mean), tuple(float(s) for s in std))
    out = np.empty((batch.shape[0], 3, batch.shape[1], batch.shape[2]), dtype=np.float32)
    for channel in range(3):
        np.take(table[channel], batch[..., channel], out=out[:, channel])
    return torch.from_numpy(out)


def square_resize_normalise(
    images: list[Any], size: int, mean: Sequence[float], std: Sequence[float], mode: str = "processor"
) -> torch.Tensor:
    """RGB PIL images -> ``(B, 3, size, size)`` float32: MiewID's reference preprocessing.

    Args:
        images: decoded RGB images.
        size: output height and width.
        mean: per-channel mean (of values in [0, 1]).
        std: per-channel standard deviation.
        mode: ``"processor"`` (OpenCV itself) or ``"fast"`` (:func:`opencv_linear_emulated`).

    Returns:
        The model input batch.

    Raises:
        EncoderError: ``mode="processor"`` without OpenCV installed.

    Example:
        >>> from PIL import Image
        >>> x = square_resize_normalise([Image.new("RGB", (8, 4), (255, 0, 0))], 2, (0, 0, 0), (1, 1, 1), "fast")
        >>> x[0, :, 0, 0].tolist()
        [1.0, 0.0, 0.0]
    """
    resize = opencv_linear if mode == "processor" else opencv_linear_emulated
    batch = np.stack([resize(_rgb_array(img), size) for img in images])
    return normalise_uint8(batch, mean, std)
