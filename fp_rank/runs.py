"""Reading runs of generated images from disk: folders and manifests (the CLI and the Space).

Accepted layouts for ``--generated PATH``:

* ``PATH/<identity>/*.png`` (one method, named after the folder, or ``--method``);
* ``PATH/<method>/<identity>/*.png`` (several methods in one run);
* a CSV or JSONL manifest with columns ``file, identity[, method, prompt, seed]``; relative
  ``file`` paths are resolved against the manifest's folder.

:func:`read_manifest` is the one reader of such manifests: the CLI reads ``--generated`` files
with it and the Space reads its uploaded mapping CSV with it.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from fp_rank.errors import InputError

#: The method label of generated images given without one.
DEFAULT_METHOD = "generated"

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")

#: Columns of a manifest, in order; ``file`` and ``identity`` are required.
MANIFEST_COLUMNS = ("file", "identity", "method", "prompt", "seed", "conditioning")

ManifestFormat = Literal["csv", "jsonl"]

_SUFFIX_FORMATS: dict[str, ManifestFormat] = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


@dataclass(frozen=True)
class ManifestRow:
    """One line of a manifest: a generated image and its labels.

    Attributes:
        file: the image's path as written (cells stripped, ``\\`` read as ``/``, no leading ``./``).
        identity: the identity the image should show.
        method: the method that generated it (None when the cell is empty or absent).
        prompt: its prompt (None when empty or absent).
        seed: its seed (None when empty or absent).
        line: where the row stands in the file (CSV: 2 is the first row under the header).
        conditioning: the real image the method was conditioned on (zero-shot methods): a path as
            written, or an int (a cell of digits, or ``reference:N``) naming row N of the gallery's
            reference split; None when empty or absent.
    """

    file: str
    identity: str
    method: str | None
    prompt: str | None
    seed: int | None
    line: int
    conditioning: str | int | None = None


@dataclass
class GeneratedRun:
    """Generated images with their labels, ready for :func:`fp_rank.evaluate`."""

    files: list[str] = field(default_factory=list)
    identities: list[str] = field(default_factory=list)
    methods: list[str] = field(default_factory=list)
    prompts: list[str | None] = field(default_factory=list)
    seeds: list[int | None] = field(default_factory=list)
    conditioning: list[str | int | None] = field(default_factory=list)
    #: Files found in the run's folders that are not images (by suffix): left out, listed here.
    not_images: list[str] = field(default_factory=list)
    #: How the run was read: ``"manifest"``, ``"<identity>/"`` or ``"<method>/<identity>/"``.
    layout: str = ""

    def __len__(self) -> int:
        return len(self.files)

    def describe(self) -> list[str]:
        """What discovery found, as lines for a person: images per method and identity, files left out.

        Example:
            >>> run = GeneratedRun(layout="<identity>/")
            >>> run.add("a/1.png", "a", "m"); run.add("a/2.png", "a", "m"); run.add("b/1.png", "b", "m")
            >>> run.not_images.append("a/notes.txt")
            >>> print("\\n".join(run.describe()))
            found 3 image(s) (layout <identity>/): 1 method(s), 2 identities
              m: 3 image(s): a 2, b 1
            skipped 1 file(s) that are not images (.png, .jpg, .jpeg, .webp, .bmp, .gif, .tif, .tiff): a/notes.txt
        """
        per: dict[str, dict[str, int]] = {}
        for method, identity in zip(self.methods, self.identities):
            per.setdefault(method, {}).setdefault(identity, 0)
            per[method][identity] += 1
        lines = [
            f"found {len(self)} image(s) (layout {self.layout or '?'}): {len(per)} method(s), "
            f"{len(set(self.identities))} identities"
        ]
        for method, counts in per.items():
            if len(counts) > 1 and len(set(counts.values())) == 1:
                lines.append(f"  {method}: {sum(counts.values())} image(s), {len(counts)} identities x {next(iter(counts.values()))}")
                continue
            shown = ", ".join(f"{ident} {n}" for ident, n in list(counts.items())[:12])
            more = f", ... ({len(counts) - 12} more identities)" if len(counts) > 12 else ""
            lines.append(f"  {method}: {sum(counts.values())} image(s): {shown}{more}")
        if self.not_images:
            listed = ", ".join(self.not_images[:10]) + (f", ... ({len(self.not_images) - 10} more)" if len(self.not_images) > 10 else "")
            lines.append(f"skipped {len(self.not_images)} file(s) that are not images ({', '.join(IMAGE_SUFFIXES)}): {listed}")
        return lines

    def add(
        self, file: str, identity: str, method: str, prompt: str | None = None, seed: int | None = None,
        conditioning: str | int | None = None,
    ) -> None:
        """Append one image and its labels."""
        self.files.append(file)
        self.identities.append(identity)
        self.methods.append(method)
        self.prompts.append(prompt)
        self.seeds.append(seed)
        self.conditioning.append(conditioning)

    def as_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for :func:`fp_rank.evaluate`."""
        return {
            "generated": self.files,
            "identities": self.identities,
            "methods": self.methods,
            "prompts": self.prompts,
            "seeds": self.seeds,
            "files": self.files,
            "conditioning": self.conditioning if any(c is not None for c in self.conditioning) else None,
        }


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


def read_generated(path: str | os.PathLike[str], *, known_identities: set[str] | None = None, method: str | None = None) -> GeneratedRun:
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
        A :class:`GeneratedRun` (:meth:`GeneratedRun.describe` says what was found).

    Raises:
        InputError: missing path, empty run, malformed manifest (the message names the line),
            folders nested deeper than ``<method>/<identity>/``.
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"--generated {os.fspath(path)!r} does not exist")
    if p.is_file():
        run = GeneratedRun(layout="manifest")
        for row in read_manifest(p):
            run.add(_beside(p, row.file), row.identity, row.method or DEFAULT_METHOD, row.prompt, row.seed,
                    _beside(p, row.conditioning) if isinstance(row.conditioning, str) else row.conditioning)
        return run
    run = GeneratedRun()
    subdirs = _visible_dirs(p)
    if not subdirs:
        raise InputError(f"folder {p} has no sub-folders; expected {p}/<identity>/*.png or {p}/<method>/<identity>/*.png")
    nested = all(_visible_dirs(d) and not _images_in(d) for d in subdirs)
    if known_identities is not None and any(d.name in known_identities for d in subdirs):
        nested = False
    layout = [(d.name, d) for d in subdirs] if nested else [(method or p.name, p)]
    run.layout = "<method>/<identity>/" if nested else "<identity>/"
    run.not_images += _other_files(p, p)
    for method_name, root in layout:
        if root is not p:
            run.not_images += _other_files(root, p)
        for ident_dir in _visible_dirs(root):
            deeper = _visible_dirs(ident_dir)
            if deeper:
                where = ident_dir.relative_to(p).as_posix()
                raise InputError(
                    f"folder {where}/ holds sub-folders ({', '.join(d.name for d in deeper[:5])}); images are read "
                    f"only at <identity>/*.png or <method>/<identity>/*.png (this run reads as {run.layout}). Move "
                    "the images up, or list them in a CSV manifest (file,identity,method)"
                )
            run.not_images += _other_files(ident_dir, p)
            for img in _images_in(ident_dir):
                run.add(str(img), ident_dir.name, method_name)
    if not run.files:
        raise InputError(f"no images ({', '.join(IMAGE_SUFFIXES)}) found under {p}")
    return run


def read_manifest(
    path: str | os.PathLike[str],
    *,
    file_format: ManifestFormat | None = None,
    name: str | None = None,
) -> list[ManifestRow]:
    """Read a manifest with columns ``file, identity[, method, prompt, seed]``.

    Header names are matched without regard to case or surrounding spaces, a UTF-8 byte-order
    mark is ignored, cells are stripped and rows with neither ``file`` nor ``identity`` are
    skipped. Paths are returned as written (relative ones are not resolved here).

    Args:
        path: the manifest file.
        file_format: ``"csv"`` or ``"jsonl"`` (one JSON object per line); None: from the suffix
            (``.csv``, ``.jsonl``, ``.ndjson``).
        name: how error messages name the file (default ``manifest <path>``); the Space passes
            the uploaded file's own name so no server path reaches the page.

    Returns:
        The rows in file order.

    Raises:
        InputError: unknown suffix, not UTF-8, no header or missing columns, a row without
            ``file`` or ``identity``, a seed that is not an integer, invalid JSON, or no rows;
            the message names the line.

    Example:
        >>> import pathlib, tempfile
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (folder / "m.csv").write_text("File,Identity,seed\\n./a.png,finch,3\\n", encoding="utf-8")
        >>> read_manifest(folder / "m.csv")[0]
        ManifestRow(file='a.png', identity='finch', method=None, prompt=None, seed=3, line=2, conditioning=None)
    """
    shown = name or f"manifest {os.fspath(path)}"
    if file_format is None:
        file_format = _SUFFIX_FORMATS.get(Path(path).suffix.lower())
        if file_format is None:
            raise InputError(f"{shown} must be a .csv or .jsonl file (columns file, identity[, method, prompt, seed])")
    elif file_format not in ("csv", "jsonl"):
        raise InputError(f"file_format must be 'csv', 'jsonl' or None; got {file_format!r}")
    try:
        text = Path(path).read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"{shown} is not UTF-8 text") from None
    records = _csv_records(text, shown) if file_format == "csv" else _jsonl_records(text, shown)
    rows = [row for line, record in records if (row := _manifest_row(record, line, shown)) is not None]
    if not rows:
        raise InputError(f"{shown} lists no files")
    return rows


def _csv_records(text: str, shown: str) -> Iterator[tuple[int, dict[str, Any]]]:
    reader = csv.DictReader(io.StringIO(text))
    try:
        yield from _csv_rows(reader, shown)
    except csv.Error as exc:  # a cell over the csv module's field limit, a stray NUL, ...
        raise InputError(f"{shown} line {reader.line_num + 1} cannot be read as CSV ({exc})") from None


def _csv_rows(reader: csv.DictReader, shown: str) -> Iterator[tuple[int, dict[str, Any]]]:
    if reader.fieldnames is None:
        raise InputError(f"{shown} is empty; expected a header line 'file,identity[,method,prompt,seed]'")
    columns = {c.strip().lower(): c for c in reader.fieldnames if c}
    missing = [c for c in MANIFEST_COLUMNS[:2] if c not in columns]
    if missing:
        raise InputError(
            f"{shown} lacks column(s) {missing}; its header is {reader.fieldnames}. "
            "Expected 'file,identity' and optionally 'method', 'prompt', 'seed'"
        )
    for line, row in enumerate(reader, start=2):
        yield line, {key: row.get(columns[key]) for key in MANIFEST_COLUMNS if key in columns}


def _jsonl_records(text: str, shown: str) -> Iterator[tuple[int, dict[str, Any]]]:
    for line, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise InputError(f"{shown} line {line} is not valid JSON: {exc}") from None
        if not isinstance(obj, dict):
            raise InputError(f"{shown} line {line} is not a JSON object")
        yield line, {str(k).strip().lower(): v for k, v in obj.items()}


def _cell(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _manifest_row(record: dict[str, Any], line: int, shown: str) -> ManifestRow | None:
    file = _cell(record.get("file")).replace("\\", "/").removeprefix("./")
    identity = _cell(record.get("identity"))
    if not file and not identity:
        return None
    if not file or not identity:
        raise InputError(f"{shown} line {line}: both 'file' and 'identity' are needed, got {file!r}, {identity!r}")
    return ManifestRow(
        file=file,
        identity=identity,
        method=_cell(record.get("method")) or None,
        prompt=_cell(record.get("prompt")) or None,
        seed=_seed(record.get("seed"), line, shown),
        line=line,
        conditioning=_conditioning(record.get("conditioning")),
    )


def _conditioning(value: Any) -> str | int | None:
    text = _cell(value)
    if not text:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    index = text.removeprefix("reference:")
    return int(index) if index.isdigit() else text.replace("\\", "/").removeprefix("./")


def _seed(value: Any, line: int, shown: str) -> int | None:
    if _cell(value) == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    try:
        return int(_cell(value))
    except ValueError:
        raise InputError(f"{shown} line {line}: seed {value!r} is not an integer") from None
