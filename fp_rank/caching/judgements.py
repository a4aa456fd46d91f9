"""The judgement cache: one small JSON file per judgement, keyed by everything that decides it.

The key (built by :func:`fp_rank.judging.run.judgement_key`) covers the generated image's content,
the reference image's content, the prompt's text, the judge (backend, model, revision, endpoint,
temperature) and the image rule, so a judgement is reused only for the same question to the
same judge. Only judgements with a score are kept: an image that could not be judged is asked
again by the next run. Files are written whole (``write_atomic``); a file that is damaged, foreign
or out of range reads as a miss. A failed write is logged and the run goes on.
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path
from typing import Any

from fp_rank.caching.store import default_cache_dir
from fp_rank.file_access import read_regular_raw, write_atomic

logger = logging.getLogger(__name__)

_KEY = re.compile(r"[0-9a-f]{64}")
#: The largest judgement file read (a score and a short reply).
MAX_RECORD_BYTES = 1 << 16


class JudgementCache:
    """Judgements on disk under ``<cache folder>/judgements`` (disabled: every lookup misses, nothing is written)."""

    def __init__(self, directory: str | os.PathLike[str] | None = None, *, enabled: bool = True,
                 scale_max: int = 4) -> None:
        self.directory = Path(directory if directory is not None else default_cache_dir()) / "judgements"
        self.enabled = enabled
        self.scale_max = scale_max

    def _path(self, key: str) -> Path:
        if not _KEY.fullmatch(key):
            raise ValueError(f"not a judgement key: {key!r}")
        return self.directory / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored judgement of ``key`` (``score``, ``reply``), or None."""
        if not self.enabled:
            return None
        path = self._path(key)
        try:
            record = json.loads(read_regular_raw(path, limit=MAX_RECORD_BYTES))
        except (OSError, ValueError):
            return None
        if not isinstance(record, dict):
            return None
        score = record.get("score")
        if record.get("key") != key or isinstance(score, bool) or not isinstance(score, int) \
                or not 0 <= score <= self.scale_max:
            logger.info("judgement cache: %s is not a judgement of this key; asking again", path)
            return None
        return record

    def put(self, key: str, score: int, reply: str) -> None:
        if not self.enabled:
            return
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, json.dumps({"key": key, "score": score, "reply": reply[:2000]}))
        except OSError as exc:
            logger.warning("judgement cache: cannot write %s (%s); the run goes on without caching it", path, exc)

    def info(self) -> dict[str, Any]:
        """The folder, the number of judgements and their size in bytes."""
        files = [p for p in self.directory.glob("*/*.json") if p.is_file()] if self.directory.is_dir() else []
        return {"directory": str(self.directory), "entries": len(files), "bytes": sum(p.stat().st_size for p in files)}

    def clear(self) -> int:
        """Remove every judgement (and unfinished temporary file); returns how many judgements were removed."""
        if not self.directory.is_dir():
            return 0
        removed = 0
        for path in self.directory.glob("*/*"):
            if path.is_file() and (path.suffix == ".json" or ".tmp" in path.name):
                removed += path.suffix == ".json"
                path.unlink()
        return removed
