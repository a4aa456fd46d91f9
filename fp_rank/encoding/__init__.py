"""Encoding: turning decoded images into embeddings with a registered backbone.

:mod:`~fp_rank.encoding.registry` names the backbones, :mod:`~fp_rank.encoding.backends` loads
them (one module per kind of model), :mod:`~fp_rank.encoding.encoders` holds the one encoding
loop and ``load_encoder``. Names are imported on first use: reading the registry loads no torch.
"""

from fp_rank._lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "REGISTRY": "fp_rank.encoding.registry",
        "EncoderSpec": "fp_rank.encoding.registry",
        "known_aliases": "fp_rank.encoding.registry",
        "EncodeResult": "fp_rank.encoding.encoders",
        "Encoder": "fp_rank.encoding.encoders",
        "load_encoder": "fp_rank.encoding.load",
    },
    globals(),
)

__all__ = ["REGISTRY", "EncodeResult", "Encoder", "EncoderSpec", "known_aliases", "load_encoder"]
