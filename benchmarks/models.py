"""Backbones for the benchmarks: the real architectures with random weights, saved like the Hub's.

The weights are random (nothing is downloaded) but the architecture, and so the FLOPs per image,
and the image processor configuration are those of the published checkpoints:

* ``dinov2-base``: ``Dinov2Config()`` defaults (ViT-B/14: hidden 768, 12 layers, 12 heads) with
  facebook/dinov2-base's ``BitImageProcessor`` (shortest edge 256, bicubic, centre crop 224);
* ``dinov2-small``: ViT-S/14 (hidden 384, 12 layers, 6 heads), same processor;
* ``dinov2-large``: ViT-L/14 (hidden 1024, 24 layers, 16 heads), same processor;
* ``clip-vit-b32``: ``CLIPConfig()`` defaults (ViT-B/32 vision tower, 512-d projection) with
  openai/clip-vit-base-patch32's ``CLIPImageProcessor`` (shortest edge 224, bicubic, crop 224);
* ``tiny-dinov2`` / ``tiny-clip``: 2-layer versions at 56 / 32 px, as in the test suite, for
  runs whose point is the orchestration rather than the backbone.
"""

from __future__ import annotations

from pathlib import Path

DINOV2_PROCESSOR = {
    "size": {"shortest_edge": 256},
    "crop_size": {"height": 224, "width": 224},
    "do_center_crop": True,
    "resample": 3,
    "image_mean": [0.485, 0.456, 0.406],
    "image_std": [0.229, 0.224, 0.225],
}

ARCHITECTURES = ("dinov2-base", "dinov2-small", "dinov2-large", "clip-vit-b32", "tiny-dinov2", "tiny-clip")


def build(name: str, folder: Path) -> Path:
    """Save a random-weight model ``name`` (see :data:`ARCHITECTURES`) with its processor in ``folder``."""
    import torch
    from transformers import (
        BitImageProcessor,
        CLIPConfig,
        CLIPImageProcessor,
        CLIPModel,
        Dinov2Config,
        Dinov2Model,
    )
    from transformers.utils import logging as hf_logging

    if (folder / "config.json").exists():
        return folder
    hf_logging.set_verbosity_error()
    torch.manual_seed(0)
    folder.mkdir(parents=True, exist_ok=True)
    if name.startswith("dinov2") or name == "tiny-dinov2":
        kwargs = {
            "dinov2-base": {},
            "dinov2-small": {"hidden_size": 384, "num_attention_heads": 6, "intermediate_size": 1536},
            "dinov2-large": {"hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16,
                             "intermediate_size": 4096},
            "tiny-dinov2": {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
                            "intermediate_size": 64, "image_size": 56},
        }[name]
        Dinov2Model(Dinov2Config(**kwargs)).eval().save_pretrained(folder)
        processor = dict(DINOV2_PROCESSOR)
        if name == "tiny-dinov2":
            processor.update(size={"shortest_edge": 64}, crop_size={"height": 56, "width": 56})
        BitImageProcessor(**processor).save_pretrained(folder)
    elif name == "clip-vit-b32":
        CLIPModel(CLIPConfig()).eval().save_pretrained(folder)
        CLIPImageProcessor().save_pretrained(folder)
    elif name == "tiny-clip":
        text = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64,
                "vocab_size": 99, "bos_token_id": 0, "eos_token_id": 2}
        vision = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64,
                  "image_size": 32, "patch_size": 8}
        CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=16)).eval().save_pretrained(folder)
        CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(folder)
    else:
        raise ValueError(f"unknown architecture {name!r}; known: {ARCHITECTURES}")
    return folder
