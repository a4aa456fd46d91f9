"""The ``miewid`` backend: MiewID re-identification models, whose Hub code defines ``extract_feat``.

The model runs its repository's own Python code, so loading it needs ``trust_remote_code=True``.
Preprocessing is the alias's square size and normalisation (``EncoderSpec.extra``), applied as the
reference code applies them (albumentations ``Resize`` + ``Normalize``): OpenCV ``INTER_LINEAR``
by default (``preprocessing="processor"``, needs ``opencv-python-headless``), or fp-rank's NumPy
rewrite of OpenCV's fixed-point arithmetic (``preprocessing="fast"``, no OpenCV); see
:func:`fp_rank.encoding.backends._resize.square_resize_normalise`.
"""

from __future__ import annotations

from typing import Any

import torch

from fp_rank.encoding.backends import LoadRequest
from fp_rank.encoding.backends._pretrained import (
    check_local_model_folder,
    load_pretrained,
    model_revision,
    remote_code_guard,
)
from fp_rank.encoding.backends._resize import require_opencv, square_resize_normalise
from fp_rank.encoding.encoders import Encoder
from fp_rank.errors import EncoderError


def load(request: LoadRequest) -> Encoder:
    """Load the MiewID model of ``request.source`` with the preprocessing of ``request.spec``.

    Raises:
        EncoderError: Without ``trust_remote_code``, with only pickled weights while
            ``use_safetensors`` is on, when the model has no ``extract_feat``, or when OpenCV is
            missing for ``preprocessing="processor"``.
    """
    from transformers import AutoModel

    spec = request.registry_entry()
    mode = "fast" if request.preprocessing == "fast" else "processor"
    if mode == "processor":
        require_opencv(f"{spec.alias}'s reference preprocessing")
    target, revision = str(request.source), request.revision
    remote_code_guard(target, revision, request.trust_remote_code)
    check_local_model_folder(target, True, request.use_safetensors)
    model = load_pretrained(
        AutoModel, target, revision, "model", trust_remote_code=True, use_safetensors=request.use_safetensors or None
    )
    if not hasattr(model, "extract_feat"):
        raise EncoderError(f"{target!r} loaded as {type(model).__name__}, which has no extract_feat method")
    model.eval().to(request.device)
    size = int(spec.extra["size"])  # type: ignore[call-overload]
    mean, std = spec.extra["mean"], spec.extra["std"]

    def preprocess(images: list[Any]) -> torch.Tensor:
        return square_resize_normalise(images, size, mean, std, mode)  # type: ignore[arg-type]

    resize = "cv2.resize INTER_LINEAR" if mode == "processor" else "fp_rank INTER_LINEAR emulation (NumPy, fixed point)"

    return Encoder(
        name=spec.alias,
        model_id=target,
        revision=model_revision(model, target, revision),
        preprocessing={
            "resize": [size, size],
            "resample": resize,
            "normalise": "albumentations Normalize(max_pixel_value=255)",
            "mean": list(mean),  # type: ignore[call-overload]
            "std": list(std),  # type: ignore[call-overload]
            "mode": mode,
        },
        pooling="extract_feat",
        preprocess=preprocess,
        forward=model.extract_feat,
        device=request.device,
        dtype=request.dtype,
        description=spec.description,
    )
