"""Reading a run of generated images from disk: folders and manifests (used by the CLI).

Accepted layouts for ``--generated PATH``:

* ``PATH/<identity>/*.png`` (one method, named after the folder, or ``--method``);
* ``PATH/<method>/<identity>/*.png`` (several methods in one run);
* a CSV or JSONL manifest with columns ``file, identity[, method, prompt, seed]``; relative
  ``file`` paths are resolved against the manifest's folder.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fp_rank.errors import InputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")


@dataclass
class GeneratedRun:
    """Generated images with their labels, ready for :func:`fp_rank.evaluate`."""

    files: list[str] = field(default_factory=list)
    identities: list[str] = field(default_factory=list)
    methods: list[str] = field(default_factory=list)
    prompts: list[str | None] = field(default_factory=list)
    seeds: list[int | None] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.files)

    def as_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for :func:`fp_rank.evaluate`."""
        return {
            "generated": self.files,
            "identities": self.identities,
            "methods": self.methods,
            "prompts": self.prompts,
            "seeds": self.seeds,
            "files": self.files,
        }


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def read_generated(path: str | os.PathLike[str], *, known_identities: set[str] | None = None, method: str | None = None) -> GeneratedRun:
    """Read a folder or manifest of generated images.

    Args:
        path: a folder (``<identity>/*`` or ``<method>/<identity>/*``) or a ``.csv``/``.jsonl`` manifest.
        known_identities: the gallery's identities; used to tell the two folder layouts apart
            (a first-level folder named like an identity means the one-method layout).
        method: method name for the one-method folder layout (default: the folder's name).

    Returns:
        A :class:`GeneratedRun`.

    Raises:
        InputError: missing path, empty run, malformed manifest (the message names the line).
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"--generated {os.fspath(path)!r} does not exist")
    if p.is_file():
        if p.suffix.lower() == ".csv":
            return _read_manifest_rows(p, _csv_rows(p))
        if p.suffix.lower() in (".jsonl", ".ndjson"):
            return _read_manifest_rows(p, _jsonl_rows(p))
        raise InputError(f"manifest {p} must be a .csv or .jsonl file (columns file, identity[, method, prompt, seed])")
    run = GeneratedRun()
    subdirs = sorted(d for d in p.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not subdirs:
        raise InputError(f"folder {p} has no sub-folders; expected {p}/<identity>/*.png or {p}/<method>/<identity>/*.png")
    nested = all(any(c.is_dir() for c in d.iterdir()) and not _images_in(d) for d in subdirs)
    if known_identities is not None and any(d.name in known_identities for d in subdirs):
        nested = False
    layout = [(d.name, d) for d in subdirs] if nested else [(method or p.name, p)]
    for method_name, root in layout:
        for ident_dir in sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")):
            for img in _images_in(ident_dir):
                run.files.append(str(img))
                run.identities.append(ident_dir.name)
                run.methods.append(method_name)
                run.prompts.append(None)
                run.seeds.append(None)
    if not run.files:
        raise InputError(f"no images ({', '.join(IMAGE_SUFFIXES)}) found under {p}")
    return run


def _csv_rows(path: Path) -> list[tuple[int, dict[str, Any]]]:
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None:
            raise InputError(f"manifest {path} is empty")
        return [(i + 2, dict(row)) for i, row in enumerate(reader)]


def _jsonl_rows(path: Path) -> list[tuple[int, dict[str, Any]]]:
    rows = []
    with open(path, encoding="utf-8") as fh:
        for i, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"manifest {path} line {i} is not valid JSON: {exc}") from None
            if not isinstance(obj, dict):
                raise InputError(f"manifest {path} line {i} is not a JSON object")
            rows.append((i, obj))
    return rows


def _read_manifest_rows(path: Path, rows: list[tuple[int, dict[str, Any]]]) -> GeneratedRun:
    run = GeneratedRun()
    base = path.parent
    for line, row in rows:
        file, identity = row.get("file"), row.get("identity")
        if not file or not identity:
            raise InputError(f"manifest {path} line {line}: 'file' and 'identity' are required, got {row}")
        file_path = Path(str(file))
        if not file_path.is_absolute():
            file_path = base / file_path
        seed = row.get("seed")
        if seed in ("", None):
            seed = None
        else:
            try:
                seed = int(seed)
            except (TypeError, ValueError):
                raise InputError(f"manifest {path} line {line}: seed {seed!r} is not an integer") from None
        run.files.append(str(file_path))
        run.identities.append(str(identity))
        run.methods.append(str(row.get("method") or "generated"))
        run.prompts.append(row.get("prompt") or None)
        run.seeds.append(seed)
    if not run.files:
        raise InputError(f"manifest {path} lists no images")
    return run
