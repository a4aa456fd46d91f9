"""Encoder backends: one module per kind of backbone, each turning it into an ``Encoder``.

Each module of :data:`BACKENDS` defines ``load(request: LoadRequest) -> Encoder``.
:func:`fp_rank.load_encoder` resolves what the caller asked for (a registry alias names its
backend in :class:`~fp_rank.encoding.registry.EncoderSpec`; an unregistered Hub id or folder uses
``transformers``; a Python callable uses ``callable``) and calls :func:`loader`.

Adding a backend: a module here defining ``load``, one line in :data:`BACKENDS`, and the registry
entry that uses it (``fp_rank/encoding/registry.py``: the ``Backend`` name and an ``EncoderSpec``).
Modules are imported only when their backend is first used.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fp_rank.encoding.registry import EncoderSpec
from fp_rank.errors import EncoderError

if TYPE_CHECKING:
    from fp_rank.encoding.encoders import Encoder

#: Backend name -> module defining ``load(request) -> Encoder``.
BACKENDS: dict[str, str] = {
    "callable": "fp_rank.encoding.backends.python_callable",
    "demo": "fp_rank.encoding.backends.demo",
    "miewid": "fp_rank.encoding.backends.miewid",
    "open_clip": "fp_rank.encoding.backends.open_clip",
    "torchvision_trained": "fp_rank.encoding.backends.torchvision_trained",
    "transformers": "fp_rank.encoding.backends.transformers",
}


@dataclass(frozen=True)
class LoadRequest:
    """What :func:`fp_rank.load_encoder` hands a backend, arguments already checked.

    Attributes:
        source: Where the weights are read from: a Hub id or a local folder (the alias's Hub id
            unless the caller gave ``source``); for the ``callable`` backend, the callable.
        name: How reports name the encoder: the alias, Hub id or folder asked for; for a
            callable, the caller's ``name`` (``None``: its qualified name).
        spec: The registry entry of an alias, ``None`` for an unregistered model.
        revision: Weights revision (for a callable: the version that makes it cacheable).
        device: Resolved torch device string.
        dtype: Resolved compute dtype name (``float32``, ``bfloat16``, ``float16``).
        pooling: The caller's pooling override, ``None`` for the default rule.
        trust_remote_code: The caller allows the repository's own code to run.
        use_safetensors: Only safetensors weights are accepted.
        preprocessing: ``"processor"`` (the checkpoint's reference preprocessing) or ``"fast"``
            (a torch reimplementation, where the backend has one).
    """

    source: str | Callable[..., Any]
    name: str | None
    spec: EncoderSpec | None
    revision: str | None
    device: str
    dtype: str
    pooling: str | None = None
    trust_remote_code: bool = False
    use_safetensors: bool = True
    preprocessing: str = "processor"

    @property
    def fast_preprocess(self) -> bool:
        """True when the torch reimplementation is asked for (the flag of fp-rank 0.1)."""
        return self.preprocessing == "fast"

    def registry_entry(self) -> EncoderSpec:
        """The alias's registry entry, for the backends that load registry aliases only.

        Raises:
            EncoderError: If the request is for an unregistered model.
        """
        if self.spec is None:
            raise EncoderError(f"{self.name!r} is not a registry alias; this backend loads registry aliases only")
        return self.spec


def loader(backend: str) -> Callable[[LoadRequest], Encoder]:
    """The ``load`` function of ``backend``.

    Raises:
        EncoderError: If ``backend`` is not in :data:`BACKENDS`; the message lists the valid names.

    Example:
        >>> loader("demo").__module__
        'fp_rank.encoding.backends.demo'
        >>> loader("onnx")
        Traceback (most recent call last):
        ...
        fp_rank.errors.EncoderError: unknown encoder backend 'onnx'; valid backends: callable, demo, miewid, open_clip, torchvision_trained, transformers
    """
    module = BACKENDS.get(backend)
    if module is None:
        raise EncoderError(f"unknown encoder backend {backend!r}; valid backends: {', '.join(sorted(BACKENDS))}")
    load: Callable[[LoadRequest], Encoder] = importlib.import_module(module).load
    return load
