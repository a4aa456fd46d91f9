"""Loading pretrained weights safely, for the backends that read a Hub id or a local folder.

Remote code runs only with ``trust_remote_code=True`` (and a warning naming the repository);
pickled weights load only with ``use_safetensors=False``; a local folder's revision is the hash of
its content, so that the cache never mixes two different folders.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Any

from fp_rank.errors import EncoderError

#: File name endings of pickled checkpoints, which can run code when loaded.
PICKLE_WEIGHTS = (".bin", ".pt", ".pth", ".ckpt", ".pkl")


def folder_revision(path: Path) -> str:
    """Content hash of a local model folder (weights, configs, code): its 'revision'."""
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        if file.suffix not in (".safetensors", ".bin", ".json", ".py", ".pt", ".pth", ".txt", ".model"):
            continue
        digest.update(file.relative_to(path).as_posix().encode())
        with open(file, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return "sha256:" + digest.hexdigest()[:20]


def remote_code_guard(repo: str, revision: str | None, trust_remote_code: bool) -> None:
    """Refuse remote code unless opted in; when opted in, warn with the repository and revision.

    Raises:
        EncoderError: If ``trust_remote_code`` is False.
    """
    if not trust_remote_code:
        raise EncoderError(
            f"{repo!r} needs trust_remote_code=True: it runs Python code from that repository. Read the "
            "code first, pin a revision, then pass trust_remote_code=True (CLI: --trust-remote-code)"
        )
    if revision:
        where = f"revision {revision}"
    elif os.path.isdir(repo):
        where = "a local folder (its content hash is recorded as the revision)"
    else:
        where = "revision main (unpinned: pass a commit hash as revision to pin the code you read)"
    warnings.warn(f"trust_remote_code=True: running code from {repo!r} at {where}", UserWarning, stacklevel=3)


def safetensors_refusal(target: str) -> EncoderError:
    """The error for a model that only has pickled weights while ``use_safetensors`` is on."""
    return EncoderError(
        f"{target!r} has no safetensors weights, only pickled ones (e.g. pytorch_model.bin), and loading a "
        "pickle can run arbitrary code. fp-rank loads safetensors only by default: convert the checkpoint to "
        "safetensors, or, if you trust its source, pass use_safetensors=False"
    )


def check_local_model_folder(target: str, trust_remote_code: bool, use_safetensors: bool) -> None:
    """Refuse, before loading, a local folder that would run its own code or unpickle its weights.

    Raises:
        EncoderError: If the folder's config maps to its own code without ``trust_remote_code``,
            or it has only pickled weights while ``use_safetensors`` is on.
    """
    folder = Path(target)
    if not folder.is_dir():
        return
    config = folder / "config.json"
    if not trust_remote_code and config.is_file():
        try:
            auto_map = json.loads(config.read_text(encoding="utf-8")).get("auto_map")
        except (OSError, ValueError, AttributeError):
            auto_map = None
        if auto_map:
            remote_code_guard(target, None, False)
    if use_safetensors:
        files = [p.name for p in folder.iterdir() if p.is_file()]
        if not any(f.endswith(".safetensors") for f in files) and any(f.endswith(PICKLE_WEIGHTS) for f in files):
            raise safetensors_refusal(target)


def model_revision(model: Any, target: str, revision: str | None) -> str | None:
    """The revision to record: a local folder's content hash, else the Hub commit the model came from."""
    if os.path.isdir(target):
        return folder_revision(Path(target))
    commit = getattr(getattr(model, "config", None), "_commit_hash", None)
    return commit or revision


def load_pretrained(loader: Any, target: str, revision: str | None, what: str, **kwargs: Any) -> Any:
    """``loader.from_pretrained(target, revision=revision, **kwargs)``, with errors that say what to do.

    Raises:
        EncoderError: If loading fails; the message names the model, the revision and, in
            offline mode, that the files must already be cached.
    """
    if not os.path.isdir(target):
        from fp_rank.hub_access import hub_problem

        problem = hub_problem(target, "model", revision)
        if problem:
            raise EncoderError(f"cannot load the {what} of {target!r} at revision {revision or 'main'}{_offline_hint()}: {problem}")
    try:
        return loader.from_pretrained(target, revision=revision, **kwargs)
    except (OSError, ValueError, KeyError, EnvironmentError) as exc:
        text = str(exc)
        if "trust_remote_code" in text and not kwargs.get("trust_remote_code"):
            remote_code_guard(target, revision, False)
        if kwargs.get("use_safetensors") and isinstance(exc, OSError) and ".safetensors" in text:
            raise safetensors_refusal(target) from exc
        raise EncoderError(f"cannot load the {what} of {target!r} at revision {revision or 'main'}{_offline_hint()}: {exc}") from exc


def _offline_hint() -> str:
    offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False")
    return " (offline mode: the files must already be in the Hugging Face cache for this revision)" if offline else ""
