"""The ``torchvision_trained`` backend: an EfficientNetV2-S trained by ``fp-rank train-encoder``.

The folder holds the backbone's state dict (``model.safetensors``), the recipe's image processor
(``preprocessor_config.json``: resize to S x S, ImageNet mean/std) and ``fp_rank_encoder.json``
naming the torchvision architecture. The embedding is the pooled feature the head was trained on
(``features`` -> adaptive average pool, 1280-d).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from fp_rank.encoding.backends import LoadRequest
from fp_rank.encoding.backends._pretrained import folder_revision
from fp_rank.encoding.encoders import Encoder
from fp_rank.errors import EncoderError

ARCHITECTURES = ("efficientnet_v2_s",)


def load(request: LoadRequest) -> Encoder:
    """Build the architecture the folder names and load its weights (no pickle, no download)."""
    from safetensors.torch import load_file
    from transformers import AutoImageProcessor

    folder = Path(str(request.source))
    described = json.loads((folder / "fp_rank_encoder.json").read_text(encoding="utf-8"))
    name = described.get("backbone")
    if name not in ARCHITECTURES:
        raise EncoderError(f"{str(folder)!r} names torchvision architecture {name!r}; fp-rank knows {list(ARCHITECTURES)}")
    try:
        import torchvision
    except Exception as exc:
        raise EncoderError(f"{str(folder)!r} is a torchvision {name}, and torchvision does not import here "
                           f"({type(exc).__name__}); install the torchvision that matches your torch") from None
    model = getattr(torchvision.models, name)(weights=None)
    model.load_state_dict(load_file(str(folder / "model.safetensors")))
    model.eval().to(request.device)
    processor = AutoImageProcessor.from_pretrained(str(folder))

    def preprocess(images: list[Any]) -> torch.Tensor:
        return processor(images=images, return_tensors="pt")["pixel_values"]

    def forward(x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(model.avgpool(model.features(x)), 1)

    prep = {k: v for k, v in processor.to_dict().items() if not k.startswith("_") and k != "processor_class"}
    return Encoder(
        name=str(request.name), model_id=str(folder), revision=folder_revision(folder),
        preprocessing={"processor": type(processor).__name__, **prep, "mode": "processor"},
        pooling="features -> adaptive average pool", preprocess=preprocess, forward=forward, device=request.device,
        dtype=request.dtype, description=f"torchvision {name} trained by fp-rank train-encoder",
    )
