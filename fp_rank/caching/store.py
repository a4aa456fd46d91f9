"""The embedding cache: gallery-side embeddings computed once per encoder and gallery content.

* One function, :func:`cache_key`, builds every key: the encoder's identity (id, weights revision,
  pooling, preprocessing, dtype), the image decoding rule's version, the content fingerprint of
  the images (their sha256 digests, in order) and the protocol version. Changing any of them
  never reuses old vectors.
* Entries are safetensors files (no pickle) holding the embeddings and, in the metadata, the key
  and a sha256 of the embedding bytes. A truncated, corrupted or foreign file is detected on read,
  reported as a miss, and recomputed.
* Writes go to a temporary file in the same folder and are moved into place with ``os.replace``,
  so a killed process leaves no partial entry (at most an orphaned ``.tmp`` file, which lookups
  never read and :meth:`EmbeddingCache.clear` removes) and concurrent writers never interleave:
  the last complete write wins, and both hold the same vectors.
* A failed write (disk full, read-only folder) is logged and skipped: the embeddings already
  computed are still returned, the run goes on uncached.
* Location: ``$FP_RANK_CACHE``, else ``$HF_HOME/fp_rank``, else ``~/.cache/huggingface/fp_rank``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from fp_rank.errors import CacheError
from fp_rank.file_access import read_regular_raw
from fp_rank.version import PROTOCOL_VERSION

logger = logging.getLogger(__name__)

CACHE_FORMAT = "1"


def default_cache_dir() -> Path:
    """Where embeddings are cached unless a folder is given."""
    env = os.environ.get("FP_RANK_CACHE")
    if env:
        return Path(env).expanduser()
    hf_home = os.environ.get("HF_HOME")
    if hf_home:
        return Path(hf_home).expanduser() / "fp_rank"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "huggingface" / "fp_rank"


def cache_key(encoder_identity: dict[str, Any], content: str, protocol_version: str = PROTOCOL_VERSION) -> str:
    """The one function that builds cache keys.

    Args:
        encoder_identity: :meth:`fp_rank.encoding.Encoder.identity` (id, revision, pooling,
            preprocessing with the processor class, dtype, device type: GPU kernels such as TF32
            give slightly different vectors than the CPU).
        content: :func:`fp_rank.images.decode.content_fingerprint` of the images, in order.
        protocol_version: the protocol version (defaults to the current one).

    Returns:
        A 64-character hex key.
    """
    from fp_rank.images.decode import DECODE_RULE_VERSION

    payload = {
        "format": CACHE_FORMAT,
        "protocol": protocol_version,
        "decode": DECODE_RULE_VERSION,
        "encoder": {k: encoder_identity.get(k) for k in ("model_id", "revision", "pooling", "preprocessing", "dtype", "device_type")},
        "content": content,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


class EmbeddingCache:
    """A folder of cached embedding matrices, keyed by :func:`cache_key`.

    Args:
        directory: cache folder (default :func:`default_cache_dir`).
        enabled: when False, every lookup misses and nothing is written.
    """

    def __init__(self, directory: str | os.PathLike[str] | None = None, enabled: bool = True) -> None:
        self.directory = Path(directory) if directory is not None else default_cache_dir()
        self.enabled = enabled

    def path_for(self, key: str) -> Path:
        """File holding the entry of ``key``."""
        return self.directory / "embeddings" / key[:2] / f"{key}.safetensors"

    def get(self, key: str, n_rows: int) -> np.ndarray | None:
        """The cached ``(n_rows, D)`` embeddings of ``key``, or None (miss, or a bad entry)."""
        if not self.enabled:
            return None
        path = self.path_for(key)
        try:
            mode = path.stat().st_mode
        except OSError:
            return None
        if not stat.S_ISREG(mode):  # a FIFO or device would block or never end: a miss, never opened
            logger.warning("ignoring cache entry %s: not a regular file", path)
            return None
        try:
            return self._read(path, key, n_rows)
        except CacheError as exc:
            logger.warning("ignoring a bad cache entry, recomputing: %s", exc)
            try:
                path.unlink()
            except OSError:
                pass
            return None

    def _read(self, path: Path, key: str, n_rows: int) -> np.ndarray:
        from safetensors import SafetensorError
        from safetensors.numpy import load

        try:
            data = read_regular_raw(path, limit=None)  # a regular file only, opened without blocking
            tensors = load(data)
            meta = _metadata(data)
        except (OSError, SafetensorError, ValueError, json.JSONDecodeError) as exc:
            raise CacheError(f"{path}: unreadable ({exc})") from None
        emb = tensors.get("embeddings")
        if emb is None or meta.get("key") != key:
            raise CacheError(f"{path}: entry belongs to another key or lacks embeddings")
        if emb.ndim != 2 or emb.shape[0] != n_rows or emb.dtype != np.float32:
            raise CacheError(f"{path}: holds shape {emb.shape} {emb.dtype}, expected ({n_rows}, D) float32")
        if hashlib.sha256(emb.tobytes()).hexdigest() != meta.get("checksum"):
            raise CacheError(f"{path}: checksum mismatch (corrupted entry)")
        if not np.isfinite(emb).all():
            raise CacheError(f"{path}: holds non-finite values")
        return emb

    def put(self, key: str, embeddings: np.ndarray, info: dict[str, Any] | None = None) -> Path | None:
        """Store embeddings atomically; returns the entry's path (None when disabled or on failure).

        A write that fails with an ``OSError`` (disk full, permissions) is logged as a warning and
        leaves no file behind; the caller keeps its embeddings.
        """
        if not self.enabled:
            return None
        from safetensors.numpy import save

        emb = np.ascontiguousarray(embeddings, dtype=np.float32)
        meta = {
            "key": key,
            "checksum": hashlib.sha256(emb.tobytes()).hexdigest(),
            "format": CACHE_FORMAT,
            "info": json.dumps(info or {}, sort_keys=True, default=str),
        }
        path = self.path_for(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{key[:8]}-", suffix=".tmp", dir=path.parent)
        except OSError as exc:
            logger.warning("cannot write the embedding cache at %s, continuing without it: %s", path.parent, exc)
            return None
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(save({"embeddings": emb}, metadata=meta))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException as exc:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            if isinstance(exc, OSError):
                logger.warning("cannot write the embedding cache entry %s, continuing without it: %s", path, exc)
                return None
            raise
        return path

    def clear(self) -> int:
        """Delete every entry and every orphaned temporary file; returns how many entries were removed."""
        root = self.directory / "embeddings"
        removed = 0
        if root.exists():
            for file in root.rglob("*.safetensors"):
                file.unlink(missing_ok=True)
                removed += 1
            for tmp in root.rglob(".*.tmp"):
                tmp.unlink(missing_ok=True)
        return removed

    def info(self) -> dict[str, Any]:
        """Location, entry count and size in bytes."""
        root = self.directory / "embeddings"
        files = list(root.rglob("*.safetensors")) if root.exists() else []
        return {"directory": str(self.directory), "entries": len(files), "bytes": sum(f.stat().st_size for f in files)}


def _metadata(data: bytes) -> dict[str, str]:
    if len(data) < 8:
        raise ValueError("file shorter than a safetensors header")
    n = int.from_bytes(data[:8], "little")
    if n <= 0 or 8 + n > len(data):
        raise ValueError("bad safetensors header length")
    header = json.loads(data[8 : 8 + n])
    return dict(header.get("__metadata__") or {})
