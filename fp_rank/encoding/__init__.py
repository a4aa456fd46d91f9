"""Encoding: turning decoded images into embeddings with a registered backbone.

:mod:`~fp_rank.encoding.registry` names the backbones, :mod:`~fp_rank.encoding.backends` loads
them (one module per kind of model), :mod:`~fp_rank.encoding.encoders` holds the one encoding
loop and :mod:`~fp_rank.encoding.load` ``load_encoder``. Names are imported on first use: reading the registry loads no torch.
"""

from fp_rank._lazy import lazy_exports
from fp_rank.errors import deprecated_name

_lazy_getattr, __dir__ = lazy_exports(
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

#: fp-rank 0.1 exported the image readers from here; they live in :mod:`fp_rank.images.decode`.
_DEPRECATED = {name: ("fp_rank.images.decode", name, f"fp_rank.images.decode.{name}")
               for name in ("ImageSource", "content_hash", "describe_source", "to_rgb")}


def __getattr__(name: str) -> object:
    if name in _DEPRECATED:
        return deprecated_name(__name__, name, _DEPRECATED)
    return _lazy_getattr(name)


__all__ = ["REGISTRY", "EncodeResult", "Encoder", "EncoderSpec", "known_aliases", "load_encoder"]
