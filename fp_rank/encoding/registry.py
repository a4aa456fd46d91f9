"""The backbone registry: one entry per backbone, naming everything that defines its embedding.

An entry travels with its preprocessing and pooling rule, so the same alias always means the same
vectors. ``load_encoder`` also accepts any Hub id or local folder loadable by ``AutoModel`` +
``AutoImageProcessor`` (pooling chosen from the model type) and plain Python callables.
An entry's ``backend`` is the module of :mod:`fp_rank.encoding.backends` that loads it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

#: Backends a registry entry can name: keys of :data:`fp_rank.encoding.backends.BACKENDS`.
Backend = Literal["transformers", "miewid", "open_clip", "demo"]
Pooling = Literal["cls", "pooler", "mean", "image_features", "extract_feat", "open_clip", "descriptor"]


@dataclass(frozen=True)
class EncoderSpec:
    """How one named backbone turns an image into an embedding."""

    alias: str
    hub_id: str
    backend: Backend
    pooling: Pooling
    description: str
    requires_remote_code: bool = False
    revision: str | None = None
    extra: dict[str, object] = field(default_factory=dict)


#: Alias of the weight-free demo descriptor (synthetic demo benchmark only).
DEMO_ENCODER = "fp-rank-demo"

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

REGISTRY: dict[str, EncoderSpec] = {
    spec.alias: spec
    for spec in (
        EncoderSpec("dinov2-small", "facebook/dinov2-small", "transformers", "cls", "DINOv2 ViT-S/14, CLS token"),
        EncoderSpec("dinov2-base", "facebook/dinov2-base", "transformers", "cls", "DINOv2 ViT-B/14, CLS token"),
        EncoderSpec("dinov2-large", "facebook/dinov2-large", "transformers", "cls", "DINOv2 ViT-L/14, CLS token"),
        EncoderSpec(
            "clip-vit-b32",
            "openai/clip-vit-base-patch32",
            "transformers",
            "image_features",
            "CLIP ViT-B/32, projected image features (CLIP-I)",
        ),
        EncoderSpec(
            "siglip",
            "google/siglip-base-patch16-224",
            "transformers",
            "image_features",
            "SigLIP base/16 at 224 px, pooled image features",
        ),
        EncoderSpec(
            "miewid",
            "conservationxlabs/miewid-msv2",
            "miewid",
            "extract_feat",
            "MiewID multi-species re-identification model (remote code), 440x440, ImageNet normalisation",
            requires_remote_code=True,
            extra={"size": 440, "mean": IMAGENET_MEAN, "std": IMAGENET_STD},
        ),
        EncoderSpec(
            "bioclip-2",
            "imageomics/bioclip-2",
            "open_clip",
            "open_clip",
            "BioCLIP 2 through open_clip (optional extra: pip install 'fp-rank[open_clip]')",
        ),
        EncoderSpec(
            DEMO_ENCODER,
            "fp-rank/demo-descriptor",
            "demo",
            "descriptor",
            "DEMO ENCODER: weight-free hand-made descriptor for the synthetic demo benchmark only",
        ),
    )
}

#: Pooling used for a generic ``AutoModel`` by ``config.model_type``.
POOLING_BY_MODEL_TYPE: dict[str, Pooling] = {
    "dinov2": "cls",
    "dinov2_with_registers": "cls",
    "dinov3_vit": "cls",
    "vit": "cls",
    "clip": "image_features",
    "siglip": "image_features",
    "siglip2": "image_features",
}


def known_aliases() -> list[str]:
    """Sorted list of registry aliases."""
    return sorted(REGISTRY)
