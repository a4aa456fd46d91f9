"""The square-resize preprocessing of the backends that bring no image processor.

Two rules live here:

* :func:`resize_to_tensor`: Pillow bilinear resize, values in [0, 1], optional normalisation
  (the demo encoder's own rule).
* :func:`square_resize_normalise`: MiewID's reference rule, albumentations
  ``Compose([Resize(size, size), Normalize()])`` as the authors' evaluation code runs it: OpenCV
  ``cv2.resize(..., interpolation=cv2.INTER_LINEAR)`` on the 8-bit RGB array (half-pixel
  centres, no antialiasing, 8-bit output), then ``(v - 255 * mean) * (1 / (255 * std))`` in
  float32 through a per-channel lookup table. ``mode="processor"`` calls OpenCV itself (exact);
  ``mode="fast"`` resizes with torch's non-antialiased bilinear interpolation and rounds to 8 bits
  (within one level of OpenCV's fixed-point result; no OpenCV needed).
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
            f"is not installed: {OPENCV_HINT}; or pass preprocessing='fast' for a torch resize within one "
            "8-bit level of it (recorded in the report)"
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


def torch_linear(arr: np.ndarray, size: int) -> np.ndarray:
    """``(H, W, 3)`` uint8 -> ``(size, size, 3)`` uint8, bilinear with half-pixel centres and no
    antialiasing (OpenCV's ``INTER_LINEAR`` geometry) in float32, rounded half up to 8 bits.

    Example:
        >>> a = np.arange(16, dtype=np.uint8).reshape(2, 2, 4)[..., :3].copy()
        >>> torch_linear(a, 2).shape
        (2, 2, 3)
    """
    if arr.shape[:2] == (size, size):
        return arr
    x = torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1)[None].float()
    y = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=False)
    y = torch.floor(y + 0.5).clamp_(0, 255).to(torch.uint8)
    return y[0].permute(1, 2, 0).numpy()


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
        mode: ``"processor"`` (OpenCV, exact) or ``"fast"`` (torch, within one 8-bit level).

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
    resize = opencv_linear if mode == "processor" else torch_linear
    batch = np.stack([resize(_rgb_array(img), size) for img in images])
    return normalise_uint8(batch, mean, std)
