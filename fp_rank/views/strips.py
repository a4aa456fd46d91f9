"""Ranked strips: each generated image beside its top-k gallery matches, hits and misses marked.

A strip is drawn with PIL from one per-query row of a report, which holds its ranked matches in
``top_k`` when :func:`fp_rank.evaluate` is called with ``top_k > 0``. Hits (same identity) get a
green frame, a ✓ badge and the word HIT; misses a red frame, a ✗ badge and MISS, so the marking
never relies on colour alone. Where the images come from (files, a gallery, a cache of
thumbnails) is up to the caller, who passes two functions.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from fp_rank.reporting.report import Report

#: Side of a gallery thumbnail (and of the query picture) in a strip, in pixels.
THUMB = 112
_BORDER = 5
_PAD = 12
_GAP = 10
_SEP = 26
HIT_COLOUR = (21, 128, 61)
MISS_COLOUR = (185, 28, 28)
QUERY_COLOUR = (51, 65, 85)
_TEXT = (31, 41, 55)
_MUTED = (100, 116, 139)


def score_text(value: Any, digits: int = 3) -> str:
    """A score with ``digits`` decimals, or an en dash when it is missing or not finite.

    Example:
        >>> score_text(0.81234), score_text(None), score_text(float("nan"))
        ('0.812', '–', '–')
    """
    if value is None:
        return "–"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "–"
    return f"{number:.{digits}f}" if math.isfinite(number) else "–"


def rank_text(value: Any) -> str:
    """A rank: a whole number as such, an expected rank over ties with two decimals.

    Example:
        >>> rank_text(3.0), rank_text(2.5), rank_text(float("inf"))
        ('3', '2.50', '–')
    """
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "–"
    if not math.isfinite(number):
        return "–"
    return str(int(number)) if abs(number - round(number)) < 1e-9 else f"{number:.2f}"


@lru_cache(maxsize=16)
def _font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        from matplotlib import font_manager

        path = font_manager.findfont(
            font_manager.FontProperties(family="DejaVu Sans", weight="bold" if bold else "normal"), fallback_to_default=True
        )
        return ImageFont.truetype(path, size)
    except (ImportError, OSError, ValueError):
        return ImageFont.load_default(size=size)


def square(img: Image.Image, size: int) -> Image.Image:
    """Fit an image in a white square of ``size`` pixels, keeping its aspect ratio.

    Example:
        >>> square(Image.new("RGB", (40, 20)), 16).size
        (16, 16)
    """
    img = img.copy()
    img.thumbnail((size, size), Image.Resampling.LANCZOS if max(img.size) > size else Image.Resampling.BICUBIC)
    if max(img.size) < size:
        scale = size / max(img.size)
        img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))), Image.Resampling.BICUBIC)
    canvas = Image.new("RGB", (size, size), (255, 255, 255))
    canvas.paste(img, ((size - img.width) // 2, (size - img.height) // 2))
    return canvas


def _fit(draw: ImageDraw.ImageDraw, text: str, font: Any, width: int) -> str:
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


def _badge(draw: ImageDraw.ImageDraw, x: int, y: int, hit: bool) -> None:
    r = 12
    colour = HIT_COLOUR if hit else MISS_COLOUR
    draw.ellipse((x - r, y - r, x + r, y + r), fill=colour, outline=(255, 255, 255), width=2)
    draw.text((x, y), "✓" if hit else "✗", font=_font(15, True), fill=(255, 255, 255), anchor="mm")


def ranked_strip(
    query: Image.Image,
    matches: Sequence[Mapping[str, Any]],
    thumbs: Sequence[Image.Image],
    *,
    title: str,
    query_label: str,
    query_note: str,
    names: Mapping[str, str],
) -> Image.Image:
    """One picture per query: the generated image, then its top-k gallery matches in rank order.

    Args:
        query: the generated image.
        matches: its top-k rows (``identity``, ``score``, ``hit``) in rank order.
        thumbs: square thumbnails of those gallery images, same order.
        title: the line above the strip (file name and scores).
        query_label: the identity the query should show.
        query_note: the smaller line under the query (its method).
        names: identity -> display name.

    Returns:
        An RGB image.
    """
    cell = THUMB + 2 * _BORDER
    k = len(matches)
    width = 2 * _PAD + cell + _SEP + k * cell + max(0, k - 1) * _GAP
    title_h, label_h = 24, 54
    height = _PAD + title_h + cell + label_h + _PAD // 2
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    draw.text((_PAD, _PAD), _fit(draw, title, _font(15, True), width - 2 * _PAD), font=_font(15, True), fill=_TEXT)
    top = _PAD + title_h

    def cell_at(x: int, image: Image.Image, colour: tuple[int, int, int], lines: Sequence[tuple[str, Any, Any]]) -> None:
        draw.rectangle((x, top, x + cell - 1, top + cell - 1), fill=colour)
        canvas.paste(square(image, THUMB), (x + _BORDER, top + _BORDER))
        y = top + cell + 4
        for text, font, fill in lines:
            draw.text((x, y), _fit(draw, text, font, cell), font=font, fill=fill)
            y += 17

    cell_at(
        _PAD,
        query,
        QUERY_COLOUR,
        [("QUERY", _font(13, True), QUERY_COLOUR), (query_label, _font(12), _TEXT), (query_note, _font(11), _MUTED)],
    )
    x0 = _PAD + cell + _SEP
    draw.line((x0 - _SEP // 2, top, x0 - _SEP // 2, top + cell), fill=(203, 213, 225), width=2)
    for rank, (match, thumb) in enumerate(zip(matches, thumbs), start=1):
        hit = bool(match["hit"])
        colour = HIT_COLOUR if hit else MISS_COLOUR
        x = x0 + (rank - 1) * (cell + _GAP)
        ident = str(match["identity"])
        cell_at(
            x,
            thumb,
            colour,
            [
                (f"#{rank} {'✓ HIT' if hit else '✗ MISS'}", _font(13, True), colour),
                (names.get(ident, ident), _font(12), _TEXT),
                (f"cosine {float(match['score']):.3f}", _font(11), _MUTED),
            ],
        )
        _badge(draw, x + cell - 16, top + 16, hit)
    return canvas


@dataclass(frozen=True)
class Strip:
    """One query's ranked strip: the picture, its title and a sentence saying where the hits are."""

    image: Image.Image
    title: str
    caption: str
    hits: tuple[bool, ...]


def query_strips(
    report: Report,
    *,
    query_image: Callable[[Mapping[str, Any]], Image.Image | None],
    gallery_image: Callable[[int], Image.Image],
    names: Mapping[str, str] | None = None,
    limit: int | None = None,
) -> list[Strip]:
    """One ranked strip per query of a report, read from its per-query ``top_k`` rows.

    Args:
        report: a report from :func:`fp_rank.evaluate` with ``top_k > 0``.
        query_image: the generated image of a query row, or None to leave that query out.
        gallery_image: the picture of one gallery image, by its ``gallery_index``.
        names: identity -> display name (default: the identities themselves).
        limit: the most strips drawn (default: one per query), in the report's query order.

    Returns:
        The strips, in the report's query order.
    """
    names = names or {}
    out = []
    for row in report.queries[:limit]:
        query = query_image(row)
        if query is None:
            continue
        matches = row.get("top_k") or []
        ident = str(row["identity"])
        hits = tuple(bool(m["hit"]) for m in matches)
        title = f"{row.get('file')}  ·  AP {score_text(row.get('ap'))}  ·  first hit at rank {rank_text(row.get('first_hit_rank'))}"
        image = ranked_strip(
            query,
            matches,
            [gallery_image(int(m["gallery_index"])) for m in matches],
            title=title,
            query_label=names.get(ident, ident),
            query_note=str(row.get("method") or ""),
            names=names,
        )
        ranks = [str(r) for r, hit in enumerate(hits, start=1) if hit]
        if ranks:
            caption = f"Same identity (hit) at rank {', '.join(ranks)} of the top {len(matches)}."
        else:
            caption = f"No hit in the top {len(matches)}: every top match is a look-alike identity."
        out.append(Strip(image=image, title=title, caption=caption, hits=hits))
    return out
