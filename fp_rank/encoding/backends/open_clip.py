"""The ``open_clip`` backend: models published for open_clip (BioCLIP 2), with their own transform.

Needs the optional extra ``pip install 'fp-rank[open_clip]'``. The preprocessing is the
transform open_clip builds for the model; its ``repr`` is recorded (and part of the cache key).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from fp_rank.encoding.backends import LoadRequest
from fp_rank.encoding.backends._pretrained import folder_revision
from fp_rank.encoding.encoders import Encoder
from fp_rank.errors import EncoderError


def load(request: LoadRequest) -> Encoder:
    """Load ``request.source`` (a Hub id, or a local folder) through open_clip.

    Raises:
        EncoderError: open_clip is not installed, or cannot load the model.
    """
    spec = request.registry_entry()
    try:
        import open_clip
    except ImportError as exc:
        raise EncoderError(
            f"encoder {spec.alias!r} needs open_clip: pip install 'fp-rank[open_clip]' (it requires torchvision)"
        ) from exc
    target, revision = str(request.source), request.revision
    model_name = f"local-dir:{target}" if os.path.isdir(target) else f"hf-hub:{target}"
    if revision is not None and not os.path.isdir(target):
        model_name = f"{model_name}@{revision}"
    try:
        model, _, transform = open_clip.create_model_and_transforms(model_name)
    except Exception as exc:  # open_clip raises assorted errors for a missing/invalid model
        raise EncoderError(f"cannot load open_clip model {model_name!r}: {exc}") from exc
    model.eval().to(request.device)

    def preprocess(images: list[Any]) -> torch.Tensor:
        return torch.stack([transform(img) for img in images])

    def forward(x: torch.Tensor) -> torch.Tensor:
        return model.encode_image(x)

    return Encoder(
        name=spec.alias,
        model_id=target,
        revision=folder_revision(Path(target)) if os.path.isdir(target) else revision,
        preprocessing={"open_clip_transform": repr(transform)},
        pooling="open_clip",
        preprocess=preprocess,
        forward=forward,
        device=request.device,
        dtype=request.dtype,
        description=spec.description,
    )
