"""CLIP-T: how well a generated image follows its prompt (text alignment), as the reference reports it.

For each generated image: the cosine between its CLIP image features and the text features of its
prompt (the processor's text path with padding). A prompt may hold the template slot ``{X}``,
filled with the group noun of the image's group (the gallery card's prompts are written so).
Aggregated per (method, group) as the reference does: mean over the prompts of a subject, then
over subjects (see :data:`fp_rank.protocol.METRICS`, aggregation ``"identity_prompt"``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fp_rank.errors import EncoderError, InputError

#: The reference's CLIP-T checkpoint.
DEFAULT_CLIP_T = "clip-vit-b32"


@dataclass
class TextAligner:
    """A CLIP-family model with its processor, scoring (image, prompt) pairs."""

    name: str
    model_id: str
    revision: str | None
    device: str
    model: Any
    processor: Any
    #: Positions (in the last :meth:`score` call) whose prompt was longer than the text tower takes.
    truncated: list[int] = field(default_factory=list)

    def context_length(self) -> int | None:
        """Tokens the text tower reads (CLIP: 77); longer prompts are cut to it."""
        config = getattr(self.model, "config", None)
        text_config = getattr(config, "text_config", config)
        length = getattr(text_config, "max_position_embeddings", None)
        return int(length) if isinstance(length, int) and length > 0 else None

    def identity(self) -> dict[str, Any]:
        """What a report records about the CLIP-T model."""
        return {
            "name": self.name, "model_id": self.model_id, "revision": self.revision,
            "processor": type(self.processor).__name__,
            "rule": "cosine(image features, text features of the prompt); mean over prompts per subject, then subjects",
        }

    def score(self, images: Sequence[Any], prompts: Sequence[str], *, names: Sequence[str] | None = None,
              batch_size: int = 32) -> np.ndarray:
        """Cosine between each image's features and its prompt's text features.

        Args:
            images: image sources (any form :func:`fp_rank.evaluate` accepts).
            prompts: one prompt per image.
            names: names of the images for error messages.
            batch_size: pairs per forward pass.

        Returns:
            float64 array, one cosine per image.
        """
        import torch

        from fp_rank.encoding.encoders import output_tensor
        from fp_rank.images.decode import describe_source, to_rgb

        if len(images) != len(prompts):
            raise InputError(f"{len(images)} images but {len(prompts)} prompts for CLIP-T")
        self.truncated = self._too_long(prompts)
        out = np.empty(len(images), dtype=np.float64)
        for start in range(0, len(images), batch_size):
            stop = min(start + batch_size, len(images))
            pil = [
                to_rgb(images[i], name=(names[i] if names is not None else describe_source(images[i], i)))
                for i in range(start, stop)
            ]
            batch = self.processor(
                text=list(prompts[start:stop]), images=pil, return_tensors="pt", padding=True, truncation=True
            )
            with torch.inference_mode():
                img = output_tensor(self.model.get_image_features(pixel_values=batch["pixel_values"].to(self.device)))
                txt = output_tensor(self.model.get_text_features(
                    input_ids=batch["input_ids"].to(self.device), attention_mask=batch["attention_mask"].to(self.device)
                ))
            img = torch.nn.functional.normalize(img.double(), dim=-1)
            txt = torch.nn.functional.normalize(txt.double(), dim=-1)
            out[start:stop] = (img * txt).sum(dim=-1).cpu().numpy()
        return out


    def _too_long(self, prompts: Sequence[str]) -> list[int]:
        """Positions of the prompts with more tokens than :meth:`context_length` (cut when scored)."""
        limit = self.context_length()
        tokenizer = getattr(self.processor, "tokenizer", None)
        if limit is None or tokenizer is None or not prompts:
            return []
        ids = tokenizer(list(prompts), truncation=False, padding=False)["input_ids"]
        return [i for i, tokens in enumerate(ids) if len(tokens) > limit]


def load_text_aligner(spec: str = DEFAULT_CLIP_T, revision: str | None = None, device: str | None = None) -> TextAligner:
    """Load a CLIP-family checkpoint (alias, Hub id or local folder) for CLIP-T.

    Raises:
        EncoderError: it cannot be loaded, or has no text tower (``get_text_features``).
    """
    from transformers import AutoModel, AutoProcessor

    from fp_rank.encoding.backends._pretrained import load_pretrained, model_revision
    from fp_rank.encoding.options import _resolve_device
    from fp_rank.encoding.registry import REGISTRY

    if not isinstance(spec, (str, Path)) or not str(spec):
        raise InputError(f"clip_t must be a CLIP alias, Hub id or folder, got {spec!r}")
    spec = str(spec)
    target = REGISTRY[spec].hub_id if spec in REGISTRY else spec
    from transformers.utils import logging as hf_logging

    device = _resolve_device(device)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        processor = load_pretrained(AutoProcessor, target, revision, "CLIP-T processor (image processor + tokenizer)")
        model = load_pretrained(AutoModel, target, revision, "CLIP-T model", use_safetensors=True)
    finally:
        hf_logging.set_verbosity(verbosity)
    if not hasattr(model, "get_text_features") or not hasattr(model, "get_image_features"):
        raise EncoderError(f"{target!r} ({type(model).__name__}) has no text tower; CLIP-T needs a CLIP-family model")
    model.eval().to(device)
    return TextAligner(name=spec, model_id=target, revision=model_revision(model, target, revision), device=device,
                       model=model, processor=processor)


def fill_prompt(prompt: str, noun: str) -> str:
    """A card template's ``{X}`` slot filled with the group noun (other text unchanged).

    Example:
        >>> fill_prompt("a photo of a {X} on the beach", "wren")
        'a photo of a wren on the beach'
    """
    return prompt.replace("{X}", noun)
