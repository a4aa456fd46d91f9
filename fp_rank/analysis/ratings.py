"""People's ratings read from a CSV file and checked: one rating per image, or a preference per pair.

Every bad row is refused before any work, naming the file, the line (a record's first line), the
column and what to write instead (:func:`read_ratings`). Names are kept as written (Unicode NFC);
:mod:`fp_rank.analysis.rating_names` resolves them to a report's images and checks duplicates,
self-pairs and votes there; :mod:`fp_rank.analysis.agreement` sets them against the scores.
"""

from __future__ import annotations

import csv
import decimal
import hashlib
import io
import os
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from fp_rank.errors import InputError, printable
from fp_rank.file_access import read_regular_bytes
from fp_rank.stats.rank_agreement import PREFERENCES

#: Largest ratings file read (a study of a million ratings is well under 100 MB).
MAX_RATINGS_BYTES = 256 * 1024**2
#: Largest absolute rating taken: ratings are scores on a scale, and larger values overflow averages.
MAX_ABS_RATING = 10**12
#: Sums of ratings are exact: a decimal context that never rounds (the exponents read are small).
_EXACT = decimal.Context(prec=decimal.MAX_PREC, Emax=decimal.MAX_EMAX, Emin=decimal.MIN_EMIN)
#: A rating as written: ASCII digits, an optional sign, decimal point and exponent of up to 3 digits.
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,3})?")
_MAX_NUMBER_CHARS = 100
#: Distinct cell texts remembered while reading (names and ratings repeat from row to row).
_CACHED_CELLS = 1 << 16
_IMAGE_HELP = "per image: file (or index), rating[, rater]; per pair: file_a, file_b, preferred[, rater]"
_IMAGE_COLUMNS, _PAIR_COLUMNS = ("file", "index", "rating"), ("file_a", "file_b", "preferred")


@dataclass
class Tally:
    """What a ratings file says about one image, or one pair of images, as it names them.

    Attributes:
        line: the first line naming it.
        raters: rater -> the line of their rating (``""`` for a row with no rater named).
        total: per image, the sum of its ratings, exact (a float sum would round, and equal means differ).
        votes: per pair (named in sorted order), votes for the first image, for the second, ties.
    """

    line: int
    raters: dict[str, int] = field(default_factory=dict)
    total: decimal.Decimal = decimal.Decimal(0)
    votes: list[int] = field(default_factory=lambda: [0, 0, 0])


@dataclass(frozen=True)
class Ratings:
    """People's ratings, checked row by row, from :func:`read_ratings`.

    Attributes:
        source: the file read.
        sha256: digest of its bytes.
        layout: ``"image"`` (a rating per image) or ``"pair"`` (a preference per pair of images).
        key: how images are named: ``"file"`` (the report rows' ``file``) or ``"index"``.
        items: per image layout, image name -> :class:`Tally`; per pair layout, (name, name) in
            sorted order -> :class:`Tally`; in the order the file first names them.
        n_rows: ratings read (one per record).
        raters: the rater names, sorted (blank rater cells are no rater).
        n_unnamed: ratings with no rater named (all of them when there is no rater column).
        has_rater_column: whether the header names a ``rater`` column.
        ignored_columns: columns of neither layout, left unread.
    """

    source: str
    sha256: str
    layout: Literal["image", "pair"]
    key: Literal["file", "index"]
    items: dict[Any, Tally]
    n_rows: int
    raters: tuple[str, ...] = ()
    n_unnamed: int = 0
    has_rater_column: bool = False
    ignored_columns: tuple[str, ...] = ()

    def error(self, line: int, column: str, problem: str) -> InputError:
        """An :class:`InputError` naming this file, ``line`` and ``column``."""
        return InputError(f"ratings file {self.source!r}, line {line}, column {column!r}: {problem}")

    def twice(self, rater: str, shown: str, first: str) -> str:
        """The message for a rating of ``shown`` given twice by ``rater``, first on line ``first``."""
        if rater:
            who, fix = f"rater {printable(rater)!r}", ""
        elif self.has_rater_column:
            who, fix = "a row with a blank rater cell", ", or fill in the rater cells"
        else:
            who, fix = "the same rater (the file has no rater column)", ", or add a rater column naming who gave each"
        return f"{shown} is rated twice by {who}, first on line {first}; keep one rating per rater{fix}"


class _Rows:
    """The records of a ratings CSV, each with its first line, and the messages naming them."""

    def __init__(self, source: str, text: str) -> None:
        self.source = source
        self.reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""), strict=True)
        self.end = 0  # the last line of the record read last

    def error(self, line: int, column: str, problem: str) -> InputError:
        return InputError(f"ratings file {self.source!r}, line {line}, column {column!r}: {problem}")

    def __iter__(self) -> Iterator[tuple[int, list[str]]]:
        try:
            for row in self.reader:
                start, self.end = self.end + 1, self.reader.line_num
                if any(cell.strip() for cell in row):
                    yield start, row
        except csv.Error as exc:
            raise InputError(f"ratings file {self.source!r}, line {self.end + 1}: not valid CSV ({exc}); save it as "
                             "comma-separated UTF-8 text") from None


def _decode(source: str, data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        utf16 = " (it looks like UTF-16)" if data[:2] in (b"\xff\xfe", b"\xfe\xff") else ""
        raise InputError(f"ratings file {source!r} is not UTF-8 text (byte {exc.start}){utf16}; save it as UTF-8 "
                         "(a spreadsheet's 'CSV UTF-8')") from None


def _separator_hint(header: list[str]) -> str:
    """Why a one-column header is a spreadsheet's other separator, in words ('' when it is not)."""
    if len([name for name in header if name]) != 1:
        return ""
    joined = ",".join(header)
    if joined.startswith("sep="):
        return " (its first line is a spreadsheet's separator line, sep=...: delete it, and save the file comma-separated)"
    for mark, name in ((";", "semicolon"), ("\t", "tab")):
        if mark in joined:
            return f" (the file looks {name}-separated: save it comma-separated)"
    return ""


def _layout(source: str, header: list[str]) -> tuple[Literal["image", "pair"], Literal["file", "index"]]:
    named = [name for name in header if name]
    duplicated = sorted({name for name in named if named.count(name) > 1})
    if duplicated:
        raise InputError(f"ratings file {source!r}: the header names column(s) {duplicated} twice; name each once")
    hint = _separator_hint(header)
    if hint:
        raise InputError(f"ratings file {source!r}: the header {header} is one column{hint}")
    columns = set(named)
    image, pair = sorted(columns & set(_IMAGE_COLUMNS)), sorted(columns & set(_PAIR_COLUMNS))
    if image and pair:
        raise InputError(f"ratings file {source!r}: the header names columns of both layouts ({image} per image, "
                         f"{pair} per pair); keep one layout per file: {_IMAGE_HELP}")
    if set(_PAIR_COLUMNS) <= columns:
        return "pair", "file"
    if "rating" in columns and ("file" in columns) != ("index" in columns):
        return "image", "file" if "file" in columns else "index"
    both = " (it names both file and index: keep one)" if {"file", "index"} <= columns else ""
    raise InputError(f"ratings file {source!r}: the header {header} is neither layout{both}; write the columns "
                     f"{_IMAGE_HELP}")


def _rating(rows: _Rows, line: int, text: str) -> decimal.Decimal:
    """The rating as written, exactly (a float would round it before the ratings are averaged)."""
    value, help_ = text.strip(), "write the rating as a number, e.g. 4 or 0.75 (ASCII digits, a point before decimals)"
    if not value:
        raise rows.error(line, "rating", f"is empty; {help_}")
    if len(value) > _MAX_NUMBER_CHARS or not _NUMBER.fullmatch(value):
        finite = value.lower().lstrip("+-") not in ("nan", "inf", "infinity")
        raise rows.error(line, "rating", f"{value[:40]!r} is not {'a' if finite else 'a finite'} number; {help_}")
    number = decimal.Decimal(value)
    if abs(number) > MAX_ABS_RATING:
        raise rows.error(line, "rating", f"{value[:40]!r} is beyond +-{MAX_ABS_RATING:.0e}; ratings are scores on a "
                         "scale (1-5, 0-100): check the column")
    return number


def _image_name(rows: _Rows, line: int, column: str, text: str) -> Any:
    value = unicodedata.normalize("NFC", text.strip())
    if column != "index":
        if not value:
            raise rows.error(line, column, "is empty; write the image's file as the report's file column names it")
        return value
    if not (value.isascii() and value.isdigit() and len(value) <= 18):
        raise rows.error(line, "index", f"{value[:40]!r} is not an image index; write the integer index (0, 1, ...) "
                         "the report's rows give the image")
    return int(value)


def _check_width(rows: _Rows, line: int, row: list[str], header: list[str], width: int, blank: list[int]) -> None:
    """Every named column present; nothing in an unnamed column or past the header."""
    if len(row) < width or any(cell.strip() for cell in row[len(header):]):
        raise InputError(f"ratings file {rows.source!r}, line {line}: {len(row)} field(s) where the header has "
                         f"{len(header)}; write one value per column (quote values that hold commas)")
    for i in blank:
        if i < len(row) and row[i].strip():
            raise InputError(f"ratings file {rows.source!r}, line {line}: column {i + 1} has no name in the header but "
                             f"holds {row[i].strip()[:40]!r}; name the column in the header, or delete it")


def _parsed(rows: _Rows, line: int, column: str, text: str, cache: dict[tuple[str, str], Any]) -> Any:
    """A name or a rating read from a cell; texts read before come from ``cache`` (ratings repeat them)."""
    value = cache.get((column, text))
    if value is None:
        value = _rating(rows, line, text) if column == "rating" else _image_name(rows, line, column, text)
        if len(cache) < _CACHED_CELLS:
            cache[column, text] = value
    return value


def _record(rows: _Rows, line: int, cell: dict[str, str], layout: str, key: str,
            cache: dict[tuple[str, str], Any]) -> tuple[Any, Any]:
    """One row's item (an image name, or a sorted pair of names) and its rating (a number, or a, b or tie)."""
    if layout == "image":
        return _parsed(rows, line, key, cell[key], cache), _parsed(rows, line, "rating", cell["rating"], cache)
    a, b = (_parsed(rows, line, column, cell[column], cache) for column in ("file_a", "file_b"))
    choice = cell["preferred"].strip().lower()
    if choice not in PREFERENCES:
        raise rows.error(line, "preferred", f"{cell['preferred'].strip()[:40]!r} is not a, b or tie; write a "
                         "(file_a preferred), b (file_b preferred) or tie")
    if choice != "tie" and b < a:  # one key per pair as written, whichever order; the vote follows its image
        choice = "b" if choice == "a" else "a"
    return (a, b) if a <= b else (b, a), choice


def _read_rows(rows: _Rows, header: list[str], ratings: Ratings) -> Ratings:
    """``ratings`` filled from the data rows: a tally per item, the row count and the raters."""
    position = {name: i for i, name in enumerate(header) if name}
    blank = [i for i, name in enumerate(header) if not name]
    width = max(position.values()) + 1
    rater_at = position.get("rater")
    items, raters, n_rows, n_unnamed, cache = ratings.items, set(), 0, 0, {}
    for line, row in rows:
        _check_width(rows, line, row, header, width, blank)
        cell = {name: row[i] for name, i in position.items()}
        item, value = _record(rows, line, cell, ratings.layout, ratings.key, cache)
        rater = "" if rater_at is None else unicodedata.normalize("NFC", row[rater_at].strip())
        tally = items.get(item)
        if tally is None:
            tally = items[item] = Tally(line)
        elif rater in tally.raters:
            shown = f"the pair {item[0]!r}, {item[1]!r}" if isinstance(item, tuple) else repr(item)
            column = ratings.key if ratings.layout == "image" else "file_a"
            raise rows.error(line, column, ratings.twice(rater, shown, str(tally.raters[rater])))
        tally.raters[rater] = line
        if ratings.layout == "image":
            tally.total = _EXACT.add(tally.total, value)
        else:
            tally.votes[PREFERENCES.index(value)] += 1
        raters.add(rater)
        n_unnamed += not rater
        n_rows += 1
    return replace(ratings, n_rows=n_rows, raters=tuple(sorted(raters - {""})), n_unnamed=n_unnamed)


def read_ratings(path: str | os.PathLike[str]) -> Ratings:
    """Read and check a ratings CSV (UTF-8, an optional byte-order mark), in one of two layouts.

    * per image: ``file`` (as the report rows name it) or ``index``, ``rating`` (a number written
      in ASCII decimal, at most 1e12 in absolute value), optional ``rater``;
    * per pair: ``file_a``, ``file_b``, ``preferred`` (``a``, ``b`` or ``tie``), optional ``rater``;
      a pair written in either order is one pair.

    Ratings are kept exactly (a sum per image); names are matched to a report's images, and the
    ratings of one image averaged, by :func:`fp_rank.analysis.rating_names.match_ratings`. Other
    columns are left unread (listed in ``ignored_columns``); empty header cells over empty columns
    (a spreadsheet's trailing commas) are dropped.

    Raises:
        InputError: the file cannot be read, is larger than :data:`MAX_RATINGS_BYTES`, is not
            UTF-8, its header is neither layout (or both), or a row is bad (an empty, non-numeric
            or too large rating, an unknown preference, a value in an unnamed column, a name
            rated twice by one rater as written), naming the line and the column.

    Example:
        >>> import tempfile
        >>> with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False) as f:
        ...     _ = f.write("file,rating,rater\\na.png,4,ann\\na.png,2.5,bob\\nb.png,1,ann\\n")
        >>> r = read_ratings(f.name)
        >>> r.layout, r.items["a.png"].total, r.items["a.png"].raters, r.raters
        ('image', Decimal('6.5'), {'ann': 2, 'bob': 3}, ('ann', 'bob'))
        >>> os.remove(f.name)
    """
    shown = os.fspath(path)
    data = read_regular_bytes(path, "ratings file", limit=MAX_RATINGS_BYTES)
    rows = _Rows(shown, _decode(shown, data))
    first = next(iter(rows), None)
    if first is None:
        raise InputError(f"ratings file {shown!r} is empty; write a header ({_IMAGE_HELP}) and one row per rating")
    header = [name.strip().lower() for name in first[1]]
    while header and not header[-1]:  # a spreadsheet's trailing empty cells; rows may hold fewer
        header.pop()
    layout, key = _layout(shown, header)
    known = {*_PAIR_COLUMNS, "rater"} if layout == "pair" else {key, "rating", "rater"}
    empty = Ratings(source=shown, sha256=hashlib.sha256(data).hexdigest(), layout=layout, key=key, items={}, n_rows=0,
                    has_rater_column="rater" in header,
                    ignored_columns=tuple(name for name in header if name and name not in known))
    ratings = _read_rows(rows, header, empty)
    if not ratings.n_rows:
        raise InputError(f"ratings file {shown!r} holds a header but no ratings; add one row per rating")
    return ratings
