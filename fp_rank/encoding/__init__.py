"""Encoding: reading images and turning them into embeddings with a registered backbone.

:mod:`~fp_rank.encoding.registry` names the backbones, :mod:`~fp_rank.encoding.backends` loads
them (one module per kind of model), :mod:`~fp_rank.encoding.encoders` holds the one encoding
loop and ``load_encoder``.
"""

from fp_rank.encoding.encoders import EncodeResult, Encoder, load_encoder
from fp_rank.encoding.images import ImageSource, content_hash, describe_source, to_rgb
from fp_rank.encoding.registry import REGISTRY, EncoderSpec, known_aliases

__all__ = [
    "REGISTRY",
    "EncodeResult",
    "Encoder",
    "EncoderSpec",
    "ImageSource",
    "content_hash",
    "describe_source",
    "known_aliases",
    "load_encoder",
    "to_rgb",
]
