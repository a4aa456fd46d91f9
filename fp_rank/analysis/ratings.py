"""People's ratings read from a CSV file and checked: one rating per image, or a preference per pair.

Every bad row is refused before any work, naming the file, the line, the column and what to write
instead (:func:`read_ratings`); :mod:`fp_rank.analysis.agreement` sets them against a report's scores.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from fp_rank.errors import InputError, printable
from fp_rank.file_access import read_regular_text
from fp_rank.stats.rank_agreement import PREFERENCES

_IMAGE_HELP = "per image: file (or index), rating[, rater]; per pair: file_a, file_b, preferred[, rater]"


@dataclass(frozen=True)
class Ratings:
    """People's ratings, checked, from :func:`read_ratings`.

    Attributes:
        source: the file read.
        sha256: digest of its bytes.
        layout: ``"image"`` (a rating per image) or ``"pair"`` (a preference per pair of images).
        key: how images are named: ``"file"`` (the report rows' ``file``) or ``"index"``.
        images: per image layout, image -> (mean rating, number of raters).
        pairs: per pair layout, (image a, image b) -> [votes for a, votes for b, ties].
        lines: every image named -> the first line naming it, for messages.
        n_rows: ratings read (one per line).
        raters: the rater names ('' for rows without one).
        ignored_columns: columns of neither layout, left unread.
    """

    source: str
    sha256: str
    layout: Literal["image", "pair"]
    key: Literal["file", "index"]
    images: dict[Any, tuple[float, int]] = field(default_factory=dict)
    pairs: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    lines: dict[Any, int] = field(default_factory=dict)
    n_rows: int = 0
    raters: tuple[str, ...] = ()
    ignored_columns: tuple[str, ...] = ()


class _Rows:
    """The data rows of a ratings CSV with their line numbers, and the messages naming them."""

    def __init__(self, source: str, text: str) -> None:
        self.source = source
        self.reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""), strict=True)

    def error(self, line: int, column: str, problem: str) -> InputError:
        return InputError(f"ratings file {self.source!r}, line {line}, column {column!r}: {problem}")

    def __iter__(self) -> Iterator[tuple[int, list[str]]]:
        try:
            for row in self.reader:
                if any(cell.strip() for cell in row):
                    yield self.reader.line_num, row
        except csv.Error as exc:
            raise InputError(f"ratings file {self.source!r}, line {self.reader.line_num}: not valid CSV ({exc}); "
                             "save it as comma-separated UTF-8 text") from None


def _layout(source: str, header: list[str]) -> tuple[Literal["image", "pair"], Literal["file", "index"]]:
    duplicated = sorted({name for name in header if header.count(name) > 1})
    if duplicated:
        raise InputError(f"ratings file {source!r}: the header names column(s) {duplicated} twice; name each once")
    columns = set(header)
    if {"file_a", "file_b", "preferred"} <= columns:
        return "pair", "file"
    if "rating" in columns and ("file" in columns) != ("index" in columns):
        return "image", "file" if "file" in columns else "index"
    both = " (it names both file and index: keep one)" if {"file", "index"} <= columns else ""
    raise InputError(f"ratings file {source!r}: the header {header} is neither layout{both}; write the columns "
                     f"{_IMAGE_HELP}")


def _rating(rows: _Rows, line: int, text: str) -> float:
    value, help_ = text.strip(), "write the rating as a number, e.g. 4 or 0.75"
    try:
        number = float(value)
    except ValueError:
        raise rows.error(line, "rating", f"{value[:40]!r} is not a number; {help_}" if value else f"is empty; {help_}") from None
    if not math.isfinite(number):
        raise rows.error(line, "rating", f"{value!r} is not a finite number; {help_}")
    return number


def _image_name(rows: _Rows, line: int, column: str, text: str) -> Any:
    value = text.strip()
    if column != "index":
        if not value:
            raise rows.error(line, column, "is empty; write the image's file as the report's file column names it")
        return value
    if not (value.isascii() and value.isdigit() and len(value) <= 18):
        raise rows.error(line, "index", f"{value[:40]!r} is not an image index; write the integer index (0, 1, ...) "
                         "the report's rows give the image")
    return int(value)


def _read_rows(rows: _Rows, header: list[str], layout: str, key: str) -> tuple[dict[Any, list[float]], dict[Any, int], int, set[str]]:
    """Per image (or pair): its ratings (or votes), the first line naming it, the row count and the raters."""
    position = {name: i for i, name in enumerate(header)}
    has_rater = "rater" in position
    collected: dict[Any, list[float]] = {}
    first_line: dict[Any, int] = {}
    seen: dict[tuple[str, Any], int] = {}
    raters: set[str] = set()
    n_rows = 0
    for line, row in rows:
        if len(row) < len(header) or any(cell.strip() for cell in row[len(header):]):
            raise InputError(f"ratings file {rows.source!r}, line {line}: {len(row)} field(s) where the header has "
                             f"{len(header)}; write one value per column (quote values that hold commas)")
        cell = {name: row[i] for name, i in position.items()}
        rater = cell["rater"].strip() if has_rater else ""
        if layout == "image":
            item: Any = _image_name(rows, line, key, cell[key])
            value: Any = _rating(rows, line, cell["rating"])
            where = key
        else:
            a, b = (_image_name(rows, line, column, cell[column]) for column in ("file_a", "file_b"))
            if a == b:
                raise rows.error(line, "file_b", f"the pair compares {a!r} with itself; name two different images")
            choice = cell["preferred"].strip().lower()
            if choice not in PREFERENCES:
                raise rows.error(line, "preferred", f"{cell['preferred'].strip()[:40]!r} is not a, b or tie; write a "
                                 "(file_a preferred), b (file_b preferred) or tie")
            item = (a, b) if a < b else (b, a)  # one key per pair, whichever order it was written in
            value = choice if choice == "tie" or a < b else {"a": "b", "b": "a"}[choice]
            where = "file_a"
        if (rater, item) in seen:
            who = f"rater {printable(rater)!r}" if has_rater else "the same rater (the file has no rater column)"
            shown = f"the pair {item[0]!r}, {item[1]!r}" if isinstance(item, tuple) else repr(item)
            raise rows.error(line, where, f"{shown} is rated twice by {who}, first on line {seen[rater, item]}; keep "
                             "one rating per rater" + ("" if has_rater else ", or add a rater column naming who gave each"))
        seen[rater, item] = line
        for name in item if isinstance(item, tuple) else (item,):
            first_line.setdefault(name, line)
        collected.setdefault(item, []).append(value)
        raters.add(rater)
        n_rows += 1
    return collected, first_line, n_rows, raters


def read_ratings(path: str | os.PathLike[str]) -> Ratings:
    """Read and check a ratings CSV (UTF-8, an optional byte-order mark), in one of two layouts.

    * per image: ``file`` (as the report rows name it) or ``index``, ``rating`` (a finite number),
      optional ``rater``; the ratings of one image are averaged and its raters counted;
    * per pair: ``file_a``, ``file_b``, ``preferred`` (``a``, ``b`` or ``tie``), optional ``rater``;
      the votes of several raters on one pair (either order) are added up.

    Other columns are left unread (listed in ``ignored_columns``).

    Raises:
        InputError: the file cannot be read, its header is neither layout, or a row is bad (an
            empty, non-numeric or infinite rating, an unknown preference, an image rated twice by
            one rater, an image paired with itself), naming the line and the column.

    Example:
        >>> import tempfile
        >>> with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False) as f:
        ...     _ = f.write("file,rating,rater\\na.png,4,ann\\na.png,2,bob\\nb.png,1,ann\\n")
        >>> r = read_ratings(f.name)
        >>> r.layout, r.images["a.png"], r.raters
        ('image', (3.0, 2), ('ann', 'bob'))
        >>> os.remove(f.name)
    """
    shown = os.fspath(path)
    text = read_regular_text(path, "ratings file")
    rows = _Rows(shown, text)
    first = next(iter(rows), None)
    if first is None:
        raise InputError(f"ratings file {shown!r} is empty; write a header ({_IMAGE_HELP}) and one row per rating")
    header = [name.strip().lower() for name in first[1]]
    layout, key = _layout(shown, header)
    known = {"file_a", "file_b", "preferred", "rater"} if layout == "pair" else {key, "rating", "rater"}
    collected, first_line, n_rows, raters = _read_rows(rows, header, layout, key)
    if not n_rows:
        raise InputError(f"ratings file {shown!r} holds a header but no ratings; add one row per rating")
    common = {"source": shown, "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(), "layout": layout, "key": key,
              "lines": first_line, "n_rows": n_rows, "raters": tuple(sorted(raters)),
              "ignored_columns": tuple(name for name in header if name not in known)}
    if layout == "image":
        return Ratings(images={k: (float(np.mean(v)), len(v)) for k, v in collected.items()}, **common)
    votes = {k: [v.count("a"), v.count("b"), v.count("tie")] for k, v in collected.items()}
    return Ratings(pairs=votes, **common)  # type: ignore[arg-type]
