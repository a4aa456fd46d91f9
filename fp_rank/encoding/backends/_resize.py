"""The plain square-resize preprocessing of the backends that bring no image processor."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch


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
