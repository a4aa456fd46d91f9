"""``load_encoder``: a registry alias, a Hub id, a folder or a callable -> an :class:`~fp_rank.Encoder`.

It resolves what the caller asked for to a backend of :mod:`fp_rank.encoding.backends` (a registry
alias names its backend; an unregistered Hub id or folder uses ``transformers``; a Python callable
uses ``callable``) and hands it a checked :class:`~fp_rank.encoding.backends.LoadRequest`.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any

import torch

from fp_rank.encoding.backends import LoadRequest, loader
from fp_rank.encoding.encoders import Encoder
from fp_rank.encoding.options import Preprocessing, _resolve_device, _resolve_dtype, resolve_preprocessing
from fp_rank.encoding.registry import REGISTRY, known_aliases
from fp_rank.errors import EncoderError
from fp_rank.hub_access import looks_like_path
from fp_rank.options import split_revision


def load_encoder(
    name_or_path: str | os.PathLike[str] | Callable[..., Any] | Encoder,
    revision: str | None = None,
    device: str | None = None,
    dtype: str | torch.dtype | None = None,
    trust_remote_code: bool = False,
    *,
    source: str | os.PathLike[str] | None = None,
    pooling: str | None = None,
    use_safetensors: bool = True,
    name: str | None = None,
    preprocessing: Preprocessing | None = None,
    fast_preprocess: bool | None = None,
) -> Encoder:
    """Load a backbone with its preprocessing.

    Args:
        name_or_path: a registry alias (see :func:`fp_rank.encoding.registry.known_aliases`), a Hub
            id or local folder loadable by ``AutoModel`` + ``AutoImageProcessor`` (``ID@REVISION``
            pins the weights when ``revision`` is not given), a callable mapping
            a list of RGB PIL images to an ``(n, d)`` array, or an :class:`Encoder` (returned as is).
        revision: Hub revision (branch, tag or commit) of the weights; for a callable, the version
            string that makes its vectors cacheable (without it, callables are never cached).
        device: torch device; default CUDA when available, else CPU.
        dtype: ``"float32"`` (default), or ``"bfloat16"``/``"float16"`` autocast (opt-in, recorded).
        trust_remote_code: allow running the model repository's own Python code (needed by
            ``miewid``). Off unless the caller turns it on; a warning names the repository.
        source: where to load an alias's weights from instead of its Hub id (a local folder or a
            mirror id); the alias's preprocessing and pooling rules still apply.
        pooling: override the pooling rule of a generic model (``cls``, ``pooler``, ``mean``,
            ``image_features``).
        use_safetensors: only accept safetensors weights (default). Set False to allow pickled
            ``.bin`` checkpoints, which can run code when loaded.
        name: how to name a callable encoder in reports.
        preprocessing: how model inputs are made. ``"processor"`` (default): exactly as the
            checkpoint's reference preprocessing does it (transformers' image processor for
            DINOv2, CLIP, SigLIP and other ``AutoImageProcessor`` models; OpenCV ``INTER_LINEAR``
            for MiewID, which needs ``opencv-python-headless``). ``"fast"``: torch
            reimplementations where they exist (:mod:`fp_rank.encoding.fast_preprocess` for
            transformers processors, about 3x faster, normalised values within
            ``2 / (255 * std)``; a torch bilinear resize for MiewID, within 1 level); other
            backends keep their own preprocessing. The path taken is recorded in
            ``Encoder.preprocessing["mode"]``, which is part of the cache key.
        fast_preprocess: older spelling of ``preprocessing`` (True = ``"fast"``,
            False = ``"processor"``); still accepted.

    Returns:
        An :class:`Encoder`.

    Raises:
        EncoderError: unknown alias, unknown backend in the alias's registry entry, missing
            remote-code opt-in, unloadable model, OpenCV missing for MiewID's ``"processor"``
            preprocessing.
        InputError: an unknown ``preprocessing`` option.
    """
    mode = resolve_preprocessing(preprocessing, fast_preprocess)
    if isinstance(name_or_path, Encoder):
        return name_or_path
    request = functools.partial(
        LoadRequest,
        revision=revision,
        device=_resolve_device(device),
        dtype=_resolve_dtype(dtype),
        pooling=pooling,
        trust_remote_code=trust_remote_code,
        use_safetensors=use_safetensors,
        preprocessing=mode,
    )
    if callable(name_or_path) and not isinstance(name_or_path, (str, os.PathLike)):
        return loader("callable")(request(source=name_or_path, name=name, spec=None))
    key = os.fspath(name_or_path)
    if revision is None:
        key, revision = split_revision(key)  # "ID@REVISION"
        request = functools.partial(request, revision=revision)
    spec = REGISTRY.get(key)
    if spec is not None:
        target = os.fspath(source) if source is not None else spec.hub_id
        return loader(spec.backend)(request(source=target, name=key, spec=spec))
    # "org/name" is a Hub id even though it holds a "/"; absolute, ./relative, deeper or existing
    # paths are folders.
    is_path = looks_like_path(key)
    if is_path and not os.path.isdir(key):
        raise EncoderError(f"no such folder: encoder folder {key!r} does not exist (a path is read as a local model folder)")
    if not is_path and key.count("/") != 1:
        raise EncoderError(
            f"unknown encoder {key!r}: use one of {known_aliases()}, a Hub id like 'org/model', a local "
            "model folder, or a Python callable"
        )
    if is_path and _trained_kind(key) == "torchvision":  # a folder written by fp-rank train-encoder
        return loader("torchvision_trained")(request(source=key, name=key, spec=None))
    return loader("transformers")(request(source=key, name=key, spec=None))


def _trained_kind(folder: str) -> str | None:
    """The backbone kind ``fp-rank train-encoder`` recorded in ``folder`` (None: not such a folder)."""
    import json

    path = os.path.join(folder, "fp_rank_encoder.json")
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            kind = json.load(handle).get("kind")
    except (OSError, ValueError, AttributeError):
        raise EncoderError(f"{path!r} is not the JSON fp-rank train-encoder writes; retrain or remove it") from None
    return kind if isinstance(kind, str) else None
