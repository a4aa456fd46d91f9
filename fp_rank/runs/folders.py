"""Finding the generated images of a run on disk: a folder or a manifest (``fp-rank evaluate --generated``).

Accepted layouts:

* ``PATH/<identity>/*.png`` (one method, named after the folder, or ``method=``);
* ``PATH/<method>/<identity>/*.png`` (several methods in one run);
* a CSV or JSONL manifest with columns ``file, identity[, method, prompt, seed, conditioning]``;
  relative ``file`` (and ``conditioning``) paths are resolved against the manifest's folder.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import replace
from pathlib import Path

from fp_rank.errors import FpRankDeprecationWarning, InputError
from fp_rank.runs.legacy import GeneratedRun
from fp_rank.runs.manifest import read_manifest
from fp_rank.runs.run import IMAGE_SUFFIXES, GeneratedImage, Run


def _beside(manifest: Path, file: str) -> str:
    """A manifest's relative path, resolved against the manifest's folder."""
    path = Path(file)
    return str(path if path.is_absolute() else manifest.parent / path)


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _visible_dirs(folder: Path) -> list[Path]:
    return sorted(d for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))


def _other_files(folder: Path, top: Path) -> list[str]:
    """Files of ``folder`` that are not images (hidden files aside), as paths relative to ``top``."""
    return [
        p.relative_to(top).as_posix() for p in sorted(folder.iterdir())
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() not in IMAGE_SUFFIXES
    ]


def read_run(path: str | os.PathLike[str], *, known_identities: set[str] | None = None, method: str | None = None) -> Run:
    """Read a folder or manifest of generated images.

    Args:
        path: a folder (``<identity>/*`` or ``<method>/<identity>/*``) or a ``.csv``/``.jsonl`` manifest.
        known_identities: the gallery's identities; used to tell the two folder layouts apart
            (a first-level folder named like an identity means the one-method layout).
        method: method name for the one-method folder layout (default: the folder's name).

    Discovery rule for folders: images (by suffix, :data:`IMAGE_SUFFIXES`) are read only directly
    inside ``<identity>/`` folders; a folder whose every visible sub-folder holds sub-folders and
    no images is read as ``<method>/<identity>/``. A sub-folder below ``<identity>/`` is an error
    that names it (nothing is silently left out); other files are listed in ``not_images``.

    Returns:
        A :class:`~fp_rank.runs.run.Run` (:meth:`~fp_rank.runs.run.Run.describe` says what was found).

    Raises:
        InputError: missing path, empty run, malformed manifest (the message names the line),
            folders nested deeper than ``<method>/<identity>/``.
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"--generated {os.fspath(path)!r} does not exist")
    if not p.is_dir():  # a manifest (a FIFO or device is refused by the reader, never opened for a blocking read)
        rows = read_manifest(p)
        return Run(tuple(
            replace(row, source=_beside(p, row.file), file=_beside(p, row.file),
                    conditioning=_beside(p, row.conditioning) if isinstance(row.conditioning, str) else row.conditioning)
            for row in rows
        ), layout="manifest")
    subdirs = _visible_dirs(p)
    if not subdirs:
        raise InputError(f"folder {p} has no sub-folders; expected {p}/<identity>/*.png or {p}/<method>/<identity>/*.png")
    nested = all(_visible_dirs(d) and not _images_in(d) for d in subdirs)
    if known_identities is not None and any(d.name in known_identities for d in subdirs):
        nested = False
    roots = [(d.name, d) for d in subdirs] if nested else [(method or p.name, p)]
    layout = "<method>/<identity>/" if nested else "<identity>/"
    images: list[GeneratedImage] = []
    not_images = _other_files(p, p)
    for method_name, root in roots:
        if root is not p:
            not_images += _other_files(root, p)
        for ident_dir in _visible_dirs(root):
            deeper = _visible_dirs(ident_dir)
            if deeper:
                where = ident_dir.relative_to(p).as_posix()
                raise InputError(
                    f"folder {where}/ holds sub-folders ({', '.join(d.name for d in deeper[:5])}); images are read "
                    f"only at <identity>/*.png or <method>/<identity>/*.png (this run reads as {layout}). Move "
                    "the images up, or list them in a CSV manifest (file,identity,method)"
                )
            not_images += _other_files(ident_dir, p)
            images += [GeneratedImage(str(img), ident_dir.name, method_name, file=str(img)) for img in _images_in(ident_dir)]
    if not images:
        raise InputError(f"no images ({', '.join(IMAGE_SUFFIXES)}) found under {p}")
    return Run(tuple(images), layout=layout, not_images=tuple(not_images))


def read_generated(
    path: str | os.PathLike[str], *, known_identities: set[str] | None = None, method: str | None = None
) -> GeneratedRun:
    """Deprecated (fp-rank 0.1; removed in 0.3): :func:`read_run` as 0.1's :class:`GeneratedRun` of lists."""
    warnings.warn(
        FpRankDeprecationWarning("fp_rank.runs.read_generated() is deprecated and will be removed in fp-rank 0.3; use "
                                 "fp_rank.read_run(), whose Run evaluate() takes as it is"),
        stacklevel=2,
    )
    return GeneratedRun.of(read_run(path, known_identities=known_identities, method=method))
