"""The ``demo`` backend: a weight-free, hand-made image descriptor (no download, no training).

It exists so that ``fp-rank demo`` and the tests run offline through the real encoder interface.
It is never used unless asked for by name (``"fp-rank-demo"``), and reports name it as a demo
encoder. It works on the synthetic demo benchmark and says nothing about real photographs.

Descriptor, on a 64x64 RGB image in [0, 1]:

1. the background colour is estimated as the per-channel median of a 4-pixel border, and a soft
   foreground mask as the colour distance to it;
2. *layout*: the foreground-weighted image pooled to an 8x8 grid (overall look: 192 values);
3. *detail colours*: a 4x4x4 RGB histogram weighted by high-frequency energy (pixel minus its
   Gaussian blur) on the foreground, square-rooted (small distinctive marks: 64 values);
4. both parts L2-normalised, concatenated with weights 1 and 2 and a constant 0.01 (so that a
   flat image still has a direction), and L2-normalised again.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from fp_rank.encoding.backends import LoadRequest
from fp_rank.encoding.backends._resize import resize_to_tensor
from fp_rank.encoding.encoders import Encoder

DESCRIPTOR_VERSION = "2"
INPUT_SIZE = 64
_BINS = 4


def _blur(x: torch.Tensor, kernel: int = 7, sigma: float = 2.0) -> torch.Tensor:
    t = torch.arange(kernel, dtype=x.dtype) - kernel // 2
    g = torch.exp(-(t**2) / (2 * sigma * sigma))
    g = g / g.sum()
    ch = x.shape[1]
    pad = kernel // 2
    x = F.conv2d(F.pad(x, (pad, pad, 0, 0), mode="replicate"), g.view(1, 1, 1, kernel).repeat(ch, 1, 1, 1), groups=ch)
    return F.conv2d(F.pad(x, (0, 0, pad, pad), mode="replicate"), g.view(1, 1, kernel, 1).repeat(ch, 1, 1, 1), groups=ch)


def demo_descriptor(x: torch.Tensor) -> torch.Tensor:
    """Describe a batch ``(B, 3, H, W)`` of RGB images in [0, 1]; returns ``(B, 257)`` unit vectors."""
    x = x.float()
    if x.shape[-2:] != (INPUT_SIZE, INPUT_SIZE):
        x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False, antialias=True)
    border = torch.cat(
        [x[:, :, :4, :].flatten(2), x[:, :, -4:, :].flatten(2), x[:, :, :, :4].flatten(2), x[:, :, :, -4:].flatten(2)],
        dim=2,
    )
    background = border.median(dim=2).values[:, :, None, None]
    fg = ((x - background).norm(dim=1, keepdim=True) / 0.2).clamp(0, 1)
    layout = F.adaptive_avg_pool2d(x * fg, 8).flatten(1)
    q = (x.clamp(0, 0.999) * _BINS).long()
    bins = (q[:, 0] * _BINS * _BINS + q[:, 1] * _BINS + q[:, 2]).flatten(1)
    energy = (x - _blur(x)).norm(dim=1, keepdim=True)
    weight = (energy * F.max_pool2d(fg, 5, 1, 2)).flatten(1)
    hist = torch.zeros(x.shape[0], _BINS**3, dtype=x.dtype).scatter_add_(1, bins, weight)
    hist = (hist / (hist.sum(dim=1, keepdim=True) + 1e-6)).sqrt()
    # A small constant component keeps flat images (no foreground, no detail) describable.
    floor = torch.full((x.shape[0], 1), 0.01, dtype=x.dtype)
    feats = torch.cat([F.normalize(layout, dim=1), 2.0 * F.normalize(hist, dim=1), floor], dim=1)
    return F.normalize(feats, dim=1)


def load(request: LoadRequest) -> Encoder:
    """The demo encoder; it runs on the CPU in float32 whatever the request says."""
    spec = request.registry_entry()

    def preprocess(images: list[Any]) -> torch.Tensor:
        return resize_to_tensor(images, INPUT_SIZE, None, None)

    return Encoder(
        name=spec.alias,
        model_id=spec.hub_id,
        revision=f"descriptor-v{DESCRIPTOR_VERSION}",
        preprocessing={"resize": [INPUT_SIZE, INPUT_SIZE], "resample": "bilinear", "scale": "1/255"},
        pooling="descriptor",
        preprocess=preprocess,
        forward=demo_descriptor,
        device="cpu",
        dtype="float32",
        is_demo=True,
        description=spec.description,
    )
