"""The ``open_clip`` backend: models published for open_clip (BioCLIP 2), with their own transform.

Needs the optional extra ``pip install 'fp-rank[open_clip]'`` (open_clip 3.0 or later, the first
with the ``local-dir:`` schema). The preprocessing is the transform open_clip builds for the
model; its ``repr`` is recorded (and part of the cache key).

Which model open_clip is asked for (:func:`open_clip_model_name`): a local folder loads as
``local-dir:<folder>``; a Hub id without a revision as ``hf-hub:<id>``; a Hub id with a pinned
revision is first fetched at that revision with ``huggingface_hub.snapshot_download`` (from the
local cache only in offline mode; safetensors weights unless ``use_safetensors=False``) and the
snapshot folder loads as ``local-dir:``. open_clip
parses no revision in ``hf-hub:`` names (``hf-hub:<id>@<rev>`` is read as a repository named
``<id>@<rev>``), so a pin must go through the snapshot.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from fp_rank.encoding.backends import LoadRequest
from fp_rank.encoding.backends._pretrained import folder_revision
from fp_rank.encoding.encoders import Encoder
from fp_rank.errors import EncoderError


def load(request: LoadRequest) -> Encoder:
    """Load ``request.source`` (a Hub id, or a local folder) through open_clip.

    Raises:
        EncoderError: open_clip is not installed, or cannot load the model.
    """
    spec = request.registry_entry()
    try:
        import open_clip
    except ImportError as exc:
        raise EncoderError(
            f"encoder {spec.alias!r} needs open_clip: pip install 'fp-rank[open_clip]' (it requires torchvision)"
        ) from exc
    target, revision = str(request.source), request.revision
    model_name = open_clip_model_name(target, revision, use_safetensors=request.use_safetensors)
    try:
        model, _, transform = open_clip.create_model_and_transforms(model_name)
    except Exception as exc:  # open_clip raises assorted errors for a missing/invalid model
        raise EncoderError(f"cannot load open_clip model {model_name!r}: {exc}") from exc
    model.eval().to(request.device)

    def preprocess(images: list[Any]) -> torch.Tensor:
        return torch.stack([transform(img) for img in images])

    def forward(x: torch.Tensor) -> torch.Tensor:
        return model.encode_image(x)

    return Encoder(
        name=spec.alias,
        model_id=target,
        revision=folder_revision(Path(target)) if os.path.isdir(target) else revision,  # the pin, as asked
        preprocessing={"open_clip_transform": repr(transform)},
        pooling="open_clip",
        preprocess=preprocess,
        forward=forward,
        device=request.device,
        dtype=request.dtype,
        description=spec.description,
    )


#: Files of an open_clip Hub repository fetched beside the weights: its config (and tokenizer files).
SNAPSHOT_CONFIG_PATTERNS = ("*.json", "*.txt")
#: Weight files, safetensors first; the pickle formats only with ``use_safetensors=False``.
SAFE_WEIGHTS = ("*.safetensors",)
PICKLE_WEIGHTS = ("*.bin", "*.pth")


def open_clip_model_name(source: str, revision: str | None, *, use_safetensors: bool = True) -> str:
    """The model name handed to ``open_clip.create_model_and_transforms`` (see the module docstring).

    Args:
        source: A local folder or a Hub id.
        revision: A pinned Hub revision (ignored for a folder, whose content hash is its revision).
        use_safetensors: For a pinned revision, accept only safetensors weights.

    Raises:
        EncoderError: If the pinned revision cannot be fetched (or, offline, is not cached), or
            has no safetensors weights while ``use_safetensors``.

    Example:
        >>> open_clip_model_name("imageomics/bioclip-2", None)
        'hf-hub:imageomics/bioclip-2'
    """
    if os.path.isdir(source):
        folder = Path(source)
        if use_safetensors and not any(folder.glob("*.safetensors")) and any(
            any(folder.glob(pattern)) for pattern in PICKLE_WEIGHTS
        ):
            raise EncoderError(
                f"open_clip folder {source!r} holds only pickled weights (.bin/.pth), which can run code when loaded; "
                "convert them to safetensors, or pass use_safetensors=False if you trust the folder"
            )
        return f"local-dir:{source}"
    if revision is None:
        return f"hf-hub:{source}"
    return f"local-dir:{snapshot_at(source, revision, use_safetensors=use_safetensors)}"


def snapshot_at(repo_id: str, revision: str, *, use_safetensors: bool = True) -> str:
    """Fetch ``repo_id`` at ``revision`` (config and weights) and return the snapshot folder.

    Safetensors weights are fetched; ``.bin``/``.pth`` only when there are none and
    ``use_safetensors`` is False (they are pickles). Offline (``HF_HUB_OFFLINE=1``) only the
    local cache is read.

    Raises:
        EncoderError: If the revision does not exist, cannot be reached, is not cached offline,
            or has no safetensors weights while ``use_safetensors``.
    """
    folder = Path(_snapshot(repo_id, revision, SNAPSHOT_CONFIG_PATTERNS + SAFE_WEIGHTS))
    if any(folder.glob("*.safetensors")):
        return str(folder)
    if use_safetensors:
        raise EncoderError(
            f"open_clip model {repo_id!r} at revision {revision!r} has no safetensors weights; only pickled "
            "weights (.bin/.pth), which can run code when loaded. Pin a revision with safetensors, or pass "
            "use_safetensors=False if you trust the repository"
        )
    return _snapshot(repo_id, revision, SNAPSHOT_CONFIG_PATTERNS + PICKLE_WEIGHTS)


def _snapshot(repo_id: str, revision: str, patterns: tuple[str, ...]) -> str:
    import huggingface_hub
    from huggingface_hub.constants import is_offline_mode

    offline = is_offline_mode()
    try:
        return str(huggingface_hub.snapshot_download(
            repo_id, revision=revision, allow_patterns=list(patterns), local_files_only=offline,
        ))
    except Exception as exc:  # huggingface_hub raises assorted errors (not found, offline, network)
        hint = (
            "offline mode is on and this revision is not in the Hugging Face cache: fetch it once online "
            "(or unset HF_HUB_OFFLINE)" if offline else "check the repository id and the revision"
        )
        raise EncoderError(f"cannot fetch open_clip model {repo_id!r} at revision {revision!r}: {hint} ({exc})") from exc
