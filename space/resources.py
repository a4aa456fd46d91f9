"""What one Space process loads once and shares read-only: allowed galleries and encoders,
thumbnails, per-request folders (cleaned on the monotonic clock), and the scrubbing of server
paths from anything a visitor sees.
"""

from __future__ import annotations

import atexit
import dataclasses
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from PIL import Image

import fp_rank
from fp_rank.images.decode import to_rgb
from fp_rank.errors import FpRankError, GalleryError, InputError
from fp_rank.views.strips import square
from space.settings import (
    GallerySource,
    Limits,
    encoders_from_env,
    galleries_from_env,
    needs_remote_code,
)


class SpaceResources:
    """The allow-lists, limits and shared read-only resources of one Space process.

    Galleries and encoders are loaded once per process (under a lock) and only read afterwards;
    everything a request computes lives in that request's local variables.

    Args:
        galleries: label -> gallery folder / Hub id, or a function returning one (built lazily).
        encoders: label -> registry alias, Hub id or model folder.
        limits: upload limits (default: :meth:`Limits.from_env`).
        top_k: gallery matches shown per query.
        n_boot: bootstrap replicates for confidence intervals (0: none).
        max_strips: most ranked strips rendered per request.
        batch_size: images per encoder forward pass.
        work_root: folder for per-request files (default: a fresh temporary folder).
        report_ttl_s: how long report downloads stay available.
        clip_t: a CLIP checkpoint (alias, Hub id or folder) that scores text alignment (CLIP-T) of
            uploads whose mapping CSV row has a prompt; None: CLIP-T is not computed.
    """

    def __init__(
        self,
        galleries: Mapping[str, GallerySource] | None = None,
        encoders: Mapping[str, str] | None = None,
        *,
        limits: Limits | None = None,
        top_k: int = 5,
        n_boot: int = 1000,
        max_strips: int = 100,
        batch_size: int = 16,
        work_root: str | os.PathLike[str] | None = None,
        report_ttl_s: float = 3600.0,
        clip_t: str | None = None,
    ) -> None:
        self.galleries: dict[str, GallerySource] = dict(galleries) if galleries is not None else galleries_from_env()
        self.encoders: dict[str, str] = dict(encoders) if encoders is not None else encoders_from_env()
        if not self.galleries:
            raise InputError("the gallery allow-list is empty; the Space needs at least one gallery")
        if not self.encoders:
            raise InputError("the encoder allow-list is empty; the Space needs at least one encoder")
        for label, spec in self.encoders.items():
            if needs_remote_code(spec):
                raise InputError(f"encoder {label!r} ({spec}) needs trust_remote_code, which the Space never enables")
        self.limits = limits or Limits.from_env()
        self.top_k = top_k
        self.n_boot = n_boot
        self.max_strips = max_strips
        self.batch_size = batch_size
        self.report_ttl_s = report_ttl_s
        if clip_t is not None and needs_remote_code(clip_t):
            raise InputError(f"clip_t {clip_t!r} needs trust_remote_code, which the Space never enables")
        self.clip_t = clip_t
        self._work_root = Path(work_root) if work_root is not None else None
        self._lock = threading.Lock()
        self._key_locks: dict[tuple[Any, ...], threading.Lock] = {}
        self._sources: dict[str, str] = {}
        self._loaded: dict[tuple[str, str | None], fp_rank.Gallery] = {}
        self._encoders: dict[str, fp_rank.Encoder] = {}
        self._thumbs: OrderedDict[tuple[str, str | None, int], Image.Image] = OrderedDict()
        # request folders: path -> monotonic time it was last in use (None while a request runs)
        self._requests: dict[Path, float | None] = {}

    # -- shared resources ----------------------------------------------------------------
    def _key_lock(self, key: tuple[Any, ...]) -> threading.Lock:
        with self._lock:
            return self._key_locks.setdefault(key, threading.Lock())

    @property
    def work_root(self) -> Path:
        """Folder holding one sub-folder per request (created on first use, removed at exit)."""
        with self._lock:
            if self._work_root is None:
                self._work_root = Path(tempfile.mkdtemp(prefix="fp-rank-space-"))
                atexit.register(shutil.rmtree, self._work_root, True)
            self._work_root.mkdir(parents=True, exist_ok=True)
            return self._work_root

    def _check_gallery_label(self, label: str) -> None:
        if label not in self.galleries:
            raise InputError(f"unknown gallery {label!r}; choose one of {list(self.galleries)}")

    def gallery_source(self, label: str) -> str:
        """The folder or Hub id behind an allowed gallery label (building the demo on first use)."""
        self._check_gallery_label(label)
        with self._key_lock(("source", label)):
            if label not in self._sources:
                source = self.galleries[label]
                self._sources[label] = source() if callable(source) else source
            return self._sources[label]

    def gallery(self, label: str, config: str | None = None) -> fp_rank.Gallery:
        """An allowed gallery, loaded once per (label, config) and shared read-only."""
        source = self.gallery_source(label)
        key = (label, config)
        with self._key_lock(("gallery", *key)):
            if key not in self._loaded:
                try:
                    loaded = fp_rank.load_gallery(source, config)
                except FpRankError as exc:
                    if type(exc) in (InputError, GalleryError):
                        raise type(exc)(self.scrub(str(exc))) from None
                    raise
                # the owner's label, never the server folder, names the gallery in messages and reports
                self._loaded[key] = dataclasses.replace(loaded, id=label)
            return self._loaded[key]

    def configs(self, label: str) -> list[str]:
        """Configs offered for a gallery: ``all`` and one per group (or its only config)."""
        gal = self.gallery(label)
        if gal.config == "all":
            return ["all", *[g for g in gal.groups if g != "all"]]
        return [gal.config or "default"]

    def _config_arg(self, label: str, config: str | None) -> str | None:
        configs = self.configs(label)
        if config in (None, ""):
            config = configs[0]
        if config not in configs:
            raise InputError(f"gallery {label!r} has no config {config!r}; choose one of {configs}")
        return None if config == "default" else config

    def identities(self, label: str, config: str | None = None) -> list[tuple[str, str]]:
        """``(shown name, identity)`` pairs of a gallery config, for the identity dropdown."""
        gal = self.gallery(label)
        names = gal.identity_names
        group_of = gal.identity_to_group
        wanted = self._config_arg(label, config)
        out = []
        for ident in gal.identities:
            if wanted not in (None, "all") and group_of.get(ident) != wanted:
                continue
            shown = names.get(ident)
            out.append((f"{shown} ({ident})" if shown and shown != ident else ident, ident))
        return sorted(out, key=lambda p: (group_of.get(p[1], ""), p[0]))

    def encoder(self, label: str) -> fp_rank.Encoder:
        """An allowed encoder, loaded once per process; remote code is never trusted."""
        if label not in self.encoders:
            raise InputError(f"unknown encoder {label!r}; choose one of {list(self.encoders)}")
        with self._key_lock(("encoder", label)):
            if label not in self._encoders:
                self._encoders[label] = fp_rank.load_encoder(self.encoders[label], trust_remote_code=False)
            return self._encoders[label]

    def thumbnail(self, label: str, config: str | None, gallery: fp_rank.Gallery, index: int, size: int) -> Image.Image:
        """A square thumbnail of one gallery image (cached; callers get their own copy)."""
        key = (label, config, index)
        with self._lock:
            hit = self._thumbs.get(key)
            if hit is not None:
                self._thumbs.move_to_end(key)
                return hit.copy()
        thumb = square(to_rgb(gallery.gallery.images[index], name=f"{gallery.id}:gallery[{index}]"), size)
        with self._lock:
            self._thumbs[key] = thumb
            while len(self._thumbs) > 4096:
                self._thumbs.popitem(last=False)
        return thumb.copy()

    # -- one request ---------------------------------------------------------------------
    def new_request_dir(self) -> Path:
        """A fresh folder for one request, registered as in use until :meth:`end_request`.

        Folders of finished requests are removed once they have been idle for ``report_ttl_s``,
        measured on the monotonic clock of this process (a wall-clock step never deletes the
        uploads of a request in flight; folders this process did not create are never touched).
        """
        root = self.work_root
        now = time.monotonic()
        with self._lock:
            expired = [p for p, t in self._requests.items() if t is not None and now - t > self.report_ttl_s]
            for old in expired:
                del self._requests[old]
            folder = root / f"req-{uuid.uuid4().hex}"
            folder.mkdir()
            self._requests[folder] = None
        for old in expired:
            shutil.rmtree(old, ignore_errors=True)
        return folder

    def end_request(self, folder: str | os.PathLike[str]) -> None:
        """Mark a request folder finished: its report downloads stay for ``report_ttl_s``."""
        with self._lock:
            path = Path(folder)
            if path in self._requests:
                self._requests[path] = time.monotonic()

    def private_paths(self) -> dict[str, str]:
        """Server paths that may appear in messages -> what a visitor is shown instead."""
        from fp_rank.caching.store import default_cache_dir

        out: dict[str, str] = {}
        sources = {**{k: v for k, v in self.galleries.items() if isinstance(v, str)}, **self._sources}
        for label, source in sources.items():
            if os.path.isabs(source) or os.path.exists(source) or source.startswith((".", "~")):
                out[source] = f"gallery {label!r}"
                out[os.path.realpath(source)] = f"gallery {label!r}"
        if self.clip_t and (os.path.isabs(self.clip_t) or os.path.exists(self.clip_t)):
            out[self.clip_t] = "the CLIP-T model"
            out[os.path.realpath(self.clip_t)] = "the CLIP-T model"
        for label, spec in self.encoders.items():
            if os.path.isabs(spec) or os.path.exists(spec):
                out[spec] = f"encoder {label!r}"
                out[os.path.realpath(spec)] = f"encoder {label!r}"
        if self._work_root is not None:
            out[str(self._work_root)] = "<request>"
        out[str(default_cache_dir())] = "<cache>"
        try:
            import datasets

            out[str(datasets.config.HF_DATASETS_CACHE)] = "<cache>"
        except Exception:  # noqa: BLE001 - datasets not importable: nothing of it can leak
            pass
        out[tempfile.gettempdir()] = "<tmp>"
        out[os.path.expanduser("~")] = "<home>"
        return {k: v for k, v in out.items() if k and k not in ("/", ".")}

    def scrub(self, text: str) -> str:
        """``text`` with every server path replaced by the owner's label (longest paths first)."""
        for path, shown in sorted(self.private_paths().items(), key=lambda kv: -len(kv[0])):
            text = text.replace(path, shown)
        return text

    def scrub_value(self, value: Any) -> Any:
        """:meth:`scrub` applied to every string of a JSON-like value."""
        if isinstance(value, str):
            return self.scrub(value)
        if isinstance(value, dict):
            return {k: self.scrub_value(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.scrub_value(v) for v in value]
        if isinstance(value, tuple):
            return tuple(self.scrub_value(v) for v in value)
        return value
