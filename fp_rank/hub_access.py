"""Telling a local path from a Hub id, and failing fast when the Hub cannot be used.

Two situations used to cost minutes and end in a confusing message: a mistyped local folder
(``galleries/dmeo``) was looked up on the Hub, and a Hub id without network waited for
transformers' retries. The rules here, used for galleries and encoders alike:

* :func:`looks_like_path`: a string is a local path when it is absolute, starts with ``.`` or
  ``~``, holds a backslash or more than one ``/``, exists, or its first segment names an
  existing folder (``galleries/dmeo`` while ``galleries/`` exists). ``org/name`` otherwise is a
  Hub id.
* :func:`hub_problem`: before a Hub id is handed to ``datasets``/``transformers``, say in one
  line why it cannot be loaded, if it cannot: offline mode (``HF_HUB_OFFLINE=1``) and nothing
  of it in the cache, or the Hub endpoint not answering within :func:`probe_timeout` seconds
  (``FP_RANK_HUB_TIMEOUT``, default 3). Cached repositories are left to the loaders.
"""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

RepoType = Literal["model", "dataset"]

_TRUE = ("1", "on", "yes", "true")
_REACHED: set[str] = set()  # endpoints that answered once in this process


def looks_like_path(text: str) -> bool:
    """Whether ``text`` names a local path rather than a Hub id (see the module docstring).

    Example:
        >>> looks_like_path("facebook/dinov2-base"), looks_like_path("./galleries/cub"), looks_like_path("a/b/c")
        (False, True, True)
    """
    if os.path.isabs(text) or text.startswith((".", "~")) or "\\" in text or text.count("/") > 1:
        return True
    if os.path.exists(text):
        return True
    head = text.split("/", 1)[0]
    return "/" in text and bool(head) and os.path.isdir(head)


def is_offline() -> bool:
    """``HF_HUB_OFFLINE`` is set (read now, not at import time)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE


def probe_timeout() -> float:
    """Seconds to wait for the Hub endpoint to accept a connection (``FP_RANK_HUB_TIMEOUT``, default 3)."""
    try:
        return max(0.1, float(os.environ.get("FP_RANK_HUB_TIMEOUT", "3")))
    except ValueError:
        return 3.0


def endpoint() -> str:
    """The Hub endpoint in use (``HF_ENDPOINT``, else huggingface_hub's default)."""
    return os.environ.get("HF_ENDPOINT") or "https://huggingface.co"


def endpoint_reachable(url: str | None = None, timeout: float | None = None) -> bool:
    """Whether a TCP connection to the endpoint's host opens within ``timeout`` seconds.

    Name resolution happens in a helper thread, so a resolver that hangs cannot hold the caller
    past the timeout either.
    """
    target = url or endpoint()
    if target in _REACHED:
        return True
    parsed = urlparse(target)
    host = parsed.hostname or ""
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    limit = probe_timeout() if timeout is None else timeout
    result: list[bool] = []

    def attempt() -> None:
        try:
            with socket.create_connection((host, port), timeout=limit):
                result.append(True)
        except OSError:
            result.append(False)

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(limit + 0.5)
    if result and result[0]:
        _REACHED.add(target)
        return True
    return False


def is_cached(repo_id: str, repo_type: RepoType) -> bool:
    """Whether anything of ``repo_id`` is in the Hugging Face caches (hub cache, or datasets' own)."""
    try:
        from huggingface_hub import constants
    except ImportError:  # pragma: no cover - huggingface_hub is a dependency
        return False
    hub_cache = Path(os.environ.get("HF_HUB_CACHE") or constants.HF_HUB_CACHE)
    folder = hub_cache / f"{repo_type}s--{repo_id.replace('/', '--')}"
    if (folder / "snapshots").is_dir() and any((folder / "snapshots").iterdir()):
        return True
    if repo_type == "dataset":
        try:
            import datasets.config

            prepared = Path(datasets.config.HF_DATASETS_CACHE) / repo_id.replace("/", "___")
            return prepared.is_dir()
        except ImportError:  # pragma: no cover
            return False
    return False


def hub_problem(repo_id: str, repo_type: RepoType, revision: str | None = None) -> str | None:
    """Why ``repo_id`` cannot be fetched from the Hub now, in one sentence, or None.

    Args:
        repo_id: a Hub id (``org/name``).
        repo_type: ``"model"`` (encoders) or ``"dataset"`` (galleries).
        revision: the revision asked for (named in the fetch command).

    Returns:
        None when the repository is cached or the Hub answers; else a message that names the
        repository and the command that fetches it on a machine with network.
    """
    if is_cached(repo_id, repo_type):
        return None
    kind = "--repo-type dataset " if repo_type == "dataset" else ""
    rev = f" --revision {revision}" if revision else ""
    fetch = f"fetch it where there is network with `hf download {kind}{repo_id}{rev}` (then copy the cache, or pass a local folder)"
    if is_offline():
        return f"{repo_id!r} is not in the Hugging Face cache and offline mode (HF_HUB_OFFLINE=1) forbids downloading it; {fetch}"
    if not endpoint_reachable():
        return (
            f"{repo_id!r} is not in the Hugging Face cache and the Hub ({endpoint()}) cannot be reached (no "
            f"connection within {probe_timeout():g} s); {fetch}"
        )
    return None
