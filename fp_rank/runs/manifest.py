"""Manifests of generated images: CSV or JSONL files with columns ``file, identity[, method, prompt,
seed, conditioning]``.

:func:`read_manifest` is the one reader of such files: the CLI reads ``--generated`` manifests
with it and the Space its uploaded mapping CSV.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from fp_rank.errors import InputError
from fp_rank.file_access import read_regular_bytes
from fp_rank.runs.run import DEFAULT_METHOD, GeneratedImage

#: Columns of a manifest, in order; ``file`` and ``identity`` are required.
MANIFEST_COLUMNS = ("file", "identity", "method", "prompt", "seed", "conditioning")

ManifestFormat = Literal["csv", "jsonl"]

_SUFFIX_FORMATS: dict[str, ManifestFormat] = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


def read_manifest(
    path: str | os.PathLike[str],
    *,
    file_format: ManifestFormat | None = None,
    name: str | None = None,
    default_method: str = DEFAULT_METHOD,
) -> list[GeneratedImage]:
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
        default_method: the method of rows whose ``method`` cell is empty or absent.

    Returns:
        The rows in file order, as :class:`~fp_rank.runs.run.GeneratedImage` (``source`` and
        ``file`` the path as written, ``line`` where the row stands; ``method`` is
        ``default_method`` when the cell is empty).

    Raises:
        InputError: unknown suffix, not UTF-8, no header or missing columns, a row without
            ``file`` or ``identity``, a seed that is not an integer, invalid JSON, or no rows;
            the message names the line.

    Example:
        >>> import pathlib, tempfile
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (folder / "m.csv").write_text("File,Identity,seed\\n./a.png,finch,3\\n", encoding="utf-8")
        >>> read_manifest(folder / "m.csv")[0]
        GeneratedImage(source='a.png', identity='finch', method='generated', prompt=None, seed=3, conditioning=None, file='a.png', line=2)
    """
    shown = name or f"manifest {os.fspath(path)}"
    if file_format is None:
        file_format = _SUFFIX_FORMATS.get(Path(path).suffix.lower())
        if file_format is None:
            raise InputError(f"{shown} must be a .csv or .jsonl file (columns file, identity[, method, prompt, seed])")
    elif file_format not in ("csv", "jsonl"):
        raise InputError(f"file_format must be 'csv', 'jsonl' or None; got {file_format!r}")
    try:
        text = read_regular_bytes(path, "manifest").decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"{shown} is not UTF-8 text") from None
    records = _csv_records(text, shown) if file_format == "csv" else _jsonl_records(text, shown)
    rows = [row for line, record in records if (row := _manifest_row(record, line, shown, default_method)) is not None]
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
        except (ValueError, RecursionError) as exc:  # JSONDecodeError, a 5,000-digit number, deep nesting
            raise InputError(f"{shown} line {line} is not valid JSON: {str(exc)[:200]}") from None
        if not isinstance(obj, dict):
            raise InputError(f"{shown} line {line} is not a JSON object")
        yield line, {str(k).strip().lower(): v for k, v in obj.items()}


def _cell(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _manifest_row(record: dict[str, Any], line: int, shown: str, default_method: str) -> GeneratedImage | None:
    file = _cell(record.get("file")).replace("\\", "/").removeprefix("./")
    identity = _cell(record.get("identity"))
    if not file and not identity:
        return None
    if not file or not identity:
        raise InputError(f"{shown} line {line}: both 'file' and 'identity' are needed, got {file!r}, {identity!r}")
    return GeneratedImage(
        source=file,
        identity=identity,
        method=_cell(record.get("method")) or default_method,
        prompt=_cell(record.get("prompt")) or None,
        seed=_seed(record.get("seed"), line, shown),
        conditioning=_conditioning(record.get("conditioning"), line, shown),
        file=file,
        line=line,
    )


def _conditioning(value: Any, line: int, shown: str) -> str | int | None:
    """A conditioning cell: ``reference:N`` (row N of the reference split), or an image file's path."""
    text = _cell(value)
    if not text:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if text.isascii() and text.isdigit() and len(text) <= 18:
        return int(text)
    if text.startswith("reference:"):
        index = text.removeprefix("reference:")
        if not (index.isascii() and index.isdigit() and len(index) <= 18):
            raise InputError(
                f"{shown} line {line}: conditioning {text!r} names no row; write reference:N with N a row number of "
                "the gallery's reference split (0, 1, ...), or give an image file"
            )
        return int(index)
    return text.replace("\\", "/").removeprefix("./")


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
