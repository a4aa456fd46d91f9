"""Which report image each name in a ratings file means, and the ratings added up per image.

A rating names an image by the report rows' ``index``, or by ``file``: the whole path, or its last
parts (``good/a/0.png`` for ``/runs/good/a/0.png``) where only one image's path ends so. Both
sides are compared in Unicode NFC, with ``/`` for ``\\`` and without a leading ``./``. Every name is
resolved to its image's ``index`` first (:func:`match_ratings`); duplicates, self-pairs and votes
are checked and counted on those, so one image rated under two names is one image.
"""

from __future__ import annotations

import difflib
import unicodedata
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from fp_rank.analysis.ratings import Ratings, Tally
from fp_rank.errors import InputError
from fp_rank.reporting.report import Report
from fp_rank.stats.rank_agreement import PREFERENCES

#: Report files (of one base name), and base names, looked through for the closest-name hint.
_MAX_HINT_FILES = 2000
_UNKNOWN = object()


def compared_name(name: str) -> str:
    """A file name as ratings and report are matched: NFC, ``/`` separators, no leading ``./``.

    Example:
        >>> compared_name("./good\\\\a\\\\0.png"), compared_name("Cafe\\u0301.png") == "Caf\\u00e9.png"
        ('good/a/0.png', True)
    """
    text = unicodedata.normalize("NFC", name).replace("\\", "/")
    while text.startswith("./"):
        text = text[2:]
    return text


@dataclass(frozen=True)
class ReportImages:
    """A report's images by ``index``, and every name a rating may give them.

    Attributes:
        rows: per encoder, index -> the image's row.
        files: index -> the image's file as the report writes it.
        names: a name as compared (:func:`compared_name`; an int for ``index``) -> its index, or
            None where several images answer to it.
        by_base: a file's last part -> the files (as compared) that end in it.
        by_stem: the same without the extension, case folded.
    """

    rows: dict[str, dict[Any, dict[str, Any]]]
    files: dict[Any, Any]
    names: dict[Any, Any]
    by_base: dict[str, list[str]]
    by_stem: dict[str, list[str]]


def report_images(report: Report, key: str) -> ReportImages:
    """The report's images for ratings naming them by ``key`` (``"file"`` or ``"index"``).

    Raises:
        InputError: a row carries no ``index`` (an older report) or, for ``key="file"``, no ``file``.
    """
    rows: dict[str, dict[Any, dict[str, Any]]] = {encoder: {} for encoder in report.encoders}
    files: dict[Any, Any] = {}
    for row in report.queries:
        for column in ("index", key):
            if row.get(column) is None:
                raise InputError(f"the report's rows carry no {column!r} (an older report); score the run again to "
                                 "set people's ratings against it")
        rows.setdefault(row["encoder"], {})[row["index"]] = row
        files.setdefault(row["index"], row.get("file"))
    if key == "index":
        return ReportImages(rows, files, {index: index for index in files}, {}, {})
    names: dict[str, Any] = {}
    whole: dict[str, Any] = {}
    by_base: dict[str, list[str]] = {}
    by_stem: dict[str, list[str]] = {}
    for index, file in files.items():
        name = compared_name(str(file))
        if whole.setdefault(name, index) != index:
            whole[name] = None
        base = name.rsplit("/", 1)[-1]
        by_base.setdefault(base, []).append(name)
        by_stem.setdefault(_stem(base), []).append(name)
        cut = name.find("/")
        while cut != -1:  # every tail after a "/"
            tail = name[cut + 1:]
            if tail and names.setdefault(tail, index) != index:
                names[tail] = None
            cut = name.find("/", cut + 1)
    names.update(whole)  # a whole path wins over another file's path tail
    return ReportImages(rows, files, names, by_base, by_stem)


def _stem(base: str) -> str:
    return base.rsplit(".", 1)[0].casefold()


def _closest(name: str, images: ReportImages) -> str | None:
    """The report file most like ``name``, looked for among the files of its base name, else of its
    base name less the extension (any case), else, in a report of few base names, of the closest one."""
    compared = compared_name(name)
    base = compared.rsplit("/", 1)[-1]
    files = images.by_base.get(base) or images.by_stem.get(_stem(base))
    if not files and len(images.by_base) <= _MAX_HINT_FILES:
        close = difflib.get_close_matches(base, images.by_base, n=1, cutoff=0.5)
        files = images.by_base[close[0]] if close else None
    if not files:
        return None
    return difflib.get_close_matches(compared, files[:_MAX_HINT_FILES], n=1, cutoff=0.0)[0]


def _first_lines(ratings: Ratings) -> dict[Any, int]:
    """Every name as written -> the first line naming it, in file order."""
    lines: dict[Any, int] = {}
    for item, tally in ratings.items.items():
        for name in item if ratings.layout == "pair" else (item,):
            lines.setdefault(name, tally.line)
    return lines


def _resolve(images: ReportImages, ratings: Ratings) -> dict[Any, Any]:
    """Every name as written -> its image's index; unknown and ambiguous names refused."""
    lines = _first_lines(ratings)
    compare = compared_name if ratings.key == "file" else (lambda name: name)
    found = {name: images.names.get(compare(name), _UNKNOWN) for name in lines}
    unknown = [name for name, index in found.items() if index is _UNKNOWN]
    if unknown:
        shown = ", ".join(f"{name!r} (line {lines[name]})" for name in unknown[:5])
        hints = [f"{name!r} -> {close!r}" for name in unknown[:5] if isinstance(name, str)
                 and (close := _closest(name, images)) is not None]
        hint = f"; closest report files: {', '.join(hints)}" if hints else ""
        raise InputError(f"ratings file {ratings.source!r} names {len(unknown)} image(s) the report does not hold: "
                         f"{shown}{hint}. Name images as the report's {ratings.key} column does (queries.csv)")
    ambiguous = [name for name, index in found.items() if index is None]
    if ambiguous:
        raise InputError(f"ratings file {ratings.source!r}: the report holds several images named {ambiguous[0]!r} "
                         f"(line {lines[ambiguous[0]]}); name them by a longer part of their path, or by index")
    return found


@dataclass(frozen=True)
class MatchedRatings:
    """Ratings resolved to a report's images (by ``index``), checked and added up.

    Attributes:
        images: per image layout, index -> (mean rating, ratings); the mean is taken exactly and
            rounded once to a float, so equal means compare equal.
        pairs: per pair layout, (index, index) ascending -> (votes for the first, for the second, ties).
        images_rated: the indices of the images rated.
    """

    images: dict[Any, tuple[float, int]]
    pairs: dict[tuple[Any, Any], tuple[int, int, int]]
    images_rated: frozenset[Any]


def people_verdict(votes: tuple[int, int, int] | list[int]) -> str:
    """People's verdict on a pair: the plurality of its a / b / tie votes; a draw at the top is a tie.

    Example:
        >>> people_verdict((2, 1, 0)), people_verdict((1, 0, 3)), people_verdict((2, 0, 2)), people_verdict((2, 2, 1))
        ('a', 'tie', 'tie', 'tie')
    """
    top = max(votes)
    winners = [choice for choice, count in zip(PREFERENCES, votes) if count == top]
    return winners[0] if len(winners) == 1 else "tie"


def _check_twice(ratings: Ratings, images: ReportImages, groups: dict[Any, list[Any]], column: str) -> None:
    """Refuse one rater rating an image (or pair) twice under different names; the earliest such line is named."""
    clash: tuple[int, str, Any, int, Any, Any] | None = None
    for key, names in groups.items():
        if len(names) < 2:  # one name: read_ratings refused its repeats
            continue
        seen: dict[str, tuple[int, Any]] = {}
        for name in names:
            for rater, line in ratings.items[name].raters.items():
                if rater not in seen:
                    seen[rater] = (line, name)
                    continue
                (first, first_name), (later, later_name) = sorted([seen[rater], (line, name)], key=lambda t: t[0])
                if clash is None or later < clash[0]:
                    clash = (later, rater, later_name, first, first_name, key)
    if clash is not None:
        later, rater, later_name, first, first_name, key = clash
        shown = _shown(later_name)
        what = (f"the report's {images.files[key]!r}" if not isinstance(key, tuple)
                else f"the report's pair {images.files[key[0]]!r}, {images.files[key[1]]!r}")
        raise ratings.error(later, column, ratings.twice(rater, shown, f"{first} as {_shown(first_name)} (both name {what})"))


def _shown(item: Any) -> str:
    return f"the pair {item[0]!r}, {item[1]!r}" if isinstance(item, tuple) else repr(item)


def match_ratings(images: ReportImages, ratings: Ratings) -> MatchedRatings:
    """Resolve every name of ``ratings`` to an image of the report, check, and add up per image (or pair).

    Names are resolved first; then a rater rating one image (or pair) twice under two names, and a
    pair of one image with itself, are refused naming the line and the names as written. The
    ratings of an image are averaged exactly (their sum as written over their count, rounded once);
    the votes on a pair, written in either order or under other names, add up.

    Raises:
        InputError: a name the report does not hold (listing the first few, with the closest
            report files), a name several images answer to, a rating given twice by one rater, or
            a pair of an image with itself.
    """
    found = _resolve(images, ratings)
    groups: dict[Any, list[Any]] = {}
    if ratings.layout == "image":
        for name in ratings.items:
            groups.setdefault(found[name], []).append(name)
        _check_twice(ratings, images, groups, ratings.key)
        means = {}
        for key, names in groups.items():
            tallies: list[Tally] = [ratings.items[name] for name in names]
            count = sum(len(t.raters) for t in tallies)
            means[key] = (float(sum((Fraction(t.total) for t in tallies), Fraction(0)) / count), count)
        return MatchedRatings(means, {}, frozenset(means))
    pairs: dict[tuple[Any, Any], list[int]] = {}
    for item, tally in ratings.items.items():
        a, b = found[item[0]], found[item[1]]
        if a == b:
            what = (f"compares {item[0]!r} with itself" if item[0] == item[1] else
                    f"{item[0]!r}, {item[1]!r} names the report's {images.files[a]!r} twice")
            raise ratings.error(tally.line, "file_b", f"the pair {what}; name two different images")
        key = (a, b) if a < b else (b, a)
        groups.setdefault(key, []).append(item)
        votes = pairs.setdefault(key, [0, 0, 0])
        first, second = tally.votes[:2] if a < b else tally.votes[1::-1]
        votes[0], votes[1], votes[2] = votes[0] + first, votes[1] + second, votes[2] + tally.votes[2]
    _check_twice(ratings, images, groups, "file_a")
    return MatchedRatings({}, {key: (v[0], v[1], v[2]) for key, v in pairs.items()},
                          frozenset(index for key in pairs for index in key))
