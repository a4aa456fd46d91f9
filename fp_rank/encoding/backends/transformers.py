"""The ``transformers`` backend: ``AutoModel`` + ``AutoImageProcessor`` from a Hub id or a folder.

Used by the registry's DINOv2, CLIP and SigLIP aliases and by any unregistered model that
transformers can load. The pooling rule comes from the alias, the caller's ``pooling``, or the
model type (:data:`fp_rank.encoding.registry.POOLING_BY_MODEL_TYPE`). The preprocessing is the
processor itself, called on the decoded RGB PIL images (``preprocessing="processor"``, the
default: the model inputs are those of ``AutoImageProcessor.from_pretrained(...)(images)``, byte
for byte), or its torch reimplementation :mod:`fp_rank.encoding.fast_preprocess`
(``preprocessing="fast"``) where that module covers the processor's configuration.
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
from fp_rank.encoding.encoders import Encoder, output_tensor
from fp_rank.encoding.fast_preprocess import fast_preprocessor
from fp_rank.encoding.registry import POOLING_BY_MODEL_TYPE
from fp_rank.errors import EncoderError

#: Pooling rules this backend implements.
POOLINGS = ("cls", "pooler", "mean", "image_features")


def pooling_rule(model: Any, asked: str | None, target: str) -> str:
    """The pooling rule of ``model``: the one asked for, else the one its folder's config records
    (``fp_rank_pooling``, written by ``fp-rank train-encoder``), else the model type's, else its pooler
    output where it has one, else the CLS token.

    Raises:
        EncoderError: an unknown rule, or ``image_features`` for a model without that output.
    """
    model_type = getattr(model.config, "model_type", "")
    rule = asked or getattr(model.config, "fp_rank_pooling", None) or POOLING_BY_MODEL_TYPE.get(model_type)
    if rule is None:
        rule = "pooler" if "pooler" in type(model).forward.__code__.co_varnames or hasattr(model, "pooler") else "cls"
    if rule not in POOLINGS:
        raise EncoderError(f"pooling {rule!r} is not one of {', '.join(repr(p) for p in POOLINGS)}")
    if rule == "image_features" and not hasattr(model, "get_image_features"):
        raise EncoderError(f"{target!r} ({model_type}) has no get_image_features; choose pooling='cls' or 'pooler'")
    return rule


def pooled(model: Any, x: torch.Tensor, rule: str, target: str) -> torch.Tensor:
    """The embedding of pixel values ``x`` under pooling ``rule`` (a convolutional map is averaged)."""
    if rule == "image_features":
        return output_tensor(model.get_image_features(pixel_values=x))
    out = model(pixel_values=x)
    if rule == "pooler":
        if getattr(out, "pooler_output", None) is None:
            raise EncoderError(f"{target!r} has no pooler_output; choose pooling='cls' or 'mean'")
        return out.pooler_output.flatten(1)
    hidden = out.last_hidden_state
    if hidden.ndim == 4:  # convolutional backbones: (B, C, H, W)
        return hidden.mean(dim=(2, 3))
    return hidden[:, 0] if rule == "cls" else hidden.mean(dim=1)


def load(request: LoadRequest) -> Encoder:
    """Load the model and processor of ``request.source``.

    Raises:
        EncoderError: The model needs remote code or pickled weights without the opt-in, cannot
            be loaded, or has no output for the pooling rule.
    """
    from transformers import AutoImageProcessor, AutoModel
    from transformers.utils import logging as hf_logging

    target = str(request.source)
    revision, trust_remote_code = request.revision, request.trust_remote_code
    check_local_model_folder(target, trust_remote_code, request.use_safetensors)
    if trust_remote_code:
        remote_code_guard(target, revision, trust_remote_code)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        processor = load_pretrained(
            AutoImageProcessor, target, revision, "image processor", trust_remote_code=trust_remote_code
        )
        model = load_pretrained(
            AutoModel,
            target,
            revision,
            "model",
            trust_remote_code=trust_remote_code,
            use_safetensors=request.use_safetensors or None,
        )
    finally:
        hf_logging.set_verbosity(verbosity)
    model.eval().to(request.device)
    model_type = getattr(model.config, "model_type", "")
    rule = pooling_rule(model, request.pooling or (request.spec.pooling if request.spec else None), target)

    prep = processor.to_dict() if hasattr(processor, "to_dict") else {"processor": type(processor).__name__}
    fast = fast_preprocessor(prep) if request.preprocessing == "fast" else None

    def preprocess(images: list[Any]) -> torch.Tensor:
        if fast is not None:
            return fast(images)
        return processor(images=images, return_tensors="pt")["pixel_values"]

    def forward(x: torch.Tensor) -> torch.Tensor:
        return pooled(model, x, rule, target)

    prep = {k: v for k, v in prep.items() if not k.startswith("_") and k != "processor_class"}
    prep["mode"] = "fast" if fast is not None else "processor"
    if fast is not None:
        prep["fast_preprocess"] = fast.describe()
    return Encoder(
        name=str(request.name),
        model_id=target,
        revision=model_revision(model, target, revision),
        preprocessing={"processor": type(processor).__name__, **prep},
        pooling=rule,
        preprocess=preprocess,
        forward=forward,
        device=request.device,
        dtype=request.dtype,
        description=request.spec.description if request.spec else f"AutoModel {model_type}",
    )
