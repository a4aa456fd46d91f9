"""A Markdown results table, ready to paste into a paper draft, a README or a leaderboard."""

from __future__ import annotations

import math
import numbers
from typing import Any

from fp_rank.errors import InputError

#: Keys a row must have; the others default to None (shown as a dash).
REQUIRED_KEYS = ("method", "map")
#: Every key a row may carry.
ROW_KEYS = (
    "method",
    "map",
    "map_low",
    "map_high",
    "cmc1",
    "cmc1_low",
    "cmc1_high",
    "pairwise",
    "pairwise_low",
    "pairwise_high",
    "floor",
    "ceiling",
    "normalised",
    "n_queries",
)

MISSING = "–"  # en dash

_HEADER = (
    "| # | Method | mAP [CI] | CMC@1 [CI] | Chance floor | Ceiling | Normalised "
    "| Pairwise [CI] | Queries |"
)
_ALIGN = "|--:|:--|--:|--:|--:|--:|--:|--:|--:|"


def _number(row_index: int, key: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InputError(f"rows[{row_index}][{key!r}] must be a number or None; got {value!r}")
    value = float(value)
    return value if math.isfinite(value) else None


def _fmt(value: float | None) -> str:
    return MISSING if value is None else f"{value:.3f}"


def _fmt_ci(value: float | None, low: float | None, high: float | None) -> str:
    if value is None:
        return MISSING
    if low is None or high is None:
        return _fmt(value)
    return f"{value:.3f} [{low:.3f}, {high:.3f}]"


def _cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def markdown_caption(
    *,
    encoder: str,
    gallery: str,
    protocol_version: str,
    fingerprint: str | None = None,
    n_boot: int | None = None,
    confidence: float | None = None,
    seed: int | None = None,
    interval: str | None = None,
) -> str:
    """The caption line for :func:`markdown_summary`: what produced the numbers.

    Args:
        encoder: encoder name or Hub id.
        gallery: gallery name or Hub id.
        protocol_version: fp-rank protocol version the numbers follow.
        fingerprint: gallery fingerprint; its first 12 characters are shown.
        n_boot: bootstrap replicates behind the intervals (None: no intervals).
        confidence: nominal coverage of the intervals, e.g. 0.95.
        seed: bootstrap seed.
        interval: how the intervals were made, when not by the bootstrap (then ``n_boot`` and
            ``seed`` are not shown).

    Returns:
        One line of text.

    Example:
        >>> markdown_caption(encoder="facebook/dinov2-base", gallery="cub-wren",
        ...                  protocol_version="1.0", fingerprint="0123456789abcdef",
        ...                  n_boot=1000, confidence=0.95, seed=0)  # doctest: +NORMALIZE_WHITESPACE
        'fp-rank protocol 1.0; encoder facebook/dinov2-base; gallery cub-wren (0123456789ab);
        mAP and CMC@1 macro-averaged over groups; 95% CIs: hierarchical bootstrap over identities
        then queries, 1000 replicates, seed 0.'
    """
    gallery_text = gallery if not fingerprint else f"{gallery} ({fingerprint[:12]})"
    parts = [
        f"fp-rank protocol {protocol_version}",
        f"encoder {encoder}",
        f"gallery {gallery_text}",
        "mAP and CMC@1 macro-averaged over groups",
    ]
    level = f"{confidence * 100:g}% CIs" if confidence is not None else "CIs"
    if interval is not None:
        parts.append(f"{level}: {interval}")
    elif n_boot is not None:
        boot = f"{level}: hierarchical bootstrap over identities then queries, {n_boot} replicates"
        if seed is not None:
            boot += f", seed {seed}"
        parts.append(boot)
    return "; ".join(parts) + "."


def markdown_summary(rows: list[dict[str, Any]], *, caption: str = "") -> str:
    """A Markdown table of methods, best mAP first, with intervals, floor, ceiling and baseline.

    Numbers are fractions shown with three decimals; an interval reads ``0.812 [0.774, 0.845]``.
    A missing (None or NaN) number shows as ``–``; an estimate without both interval ends shows
    without brackets. Rows are sorted by ``map`` descending (stable; rows without a ``map`` go
    last). The ``#`` column is the position after sorting.

    Args:
        rows: one dict per method with keys ``method`` and ``map`` and, optionally (None when
            absent), ``map_low``, ``map_high``, ``cmc1``, ``cmc1_low``, ``cmc1_high``,
            ``pairwise``, ``pairwise_low``, ``pairwise_high``, ``floor``, ``ceiling``,
            ``normalised`` and ``n_queries``.
        caption: a line placed under the table as ``Table: caption`` (Pandoc's syntax; see
            :func:`markdown_caption`). Nothing when empty.

    Returns:
        The table (and caption) as a string ending in a newline.

    Raises:
        InputError: when ``rows`` is not a list of dicts, a row lacks ``method`` or ``map``, or
            a number field holds something that is not a number.

    Example:
        >>> print(markdown_summary([
        ...     {"method": "B", "map": 0.5, "map_low": 0.4, "map_high": 0.6, "n_queries": 10},
        ...     {"method": "A", "map": 0.81234, "floor": 0.2},
        ... ]), end="")  # doctest: +NORMALIZE_WHITESPACE
        | # | Method | mAP [CI] | CMC@1 [CI] | Chance floor | Ceiling | Normalised
        | Pairwise [CI] | Queries |
        |--:|:--|--:|--:|--:|--:|--:|--:|--:|
        | 1 | A | 0.812 | – | 0.200 | – | – | – | – |
        | 2 | B | 0.500 [0.400, 0.600] | – | – | – | – | – | 10 |
    """
    if isinstance(rows, (str, bytes, dict)) or not hasattr(rows, "__iter__"):
        raise InputError(f"rows must be a list of dicts; got {type(rows).__name__}")
    parsed = []
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            raise InputError(f"rows[{index}] must be a dict; got {type(row).__name__}")
        missing = [key for key in REQUIRED_KEYS if key not in row]
        if missing:
            raise InputError(f"rows[{index}] lacks the key(s) {missing}")
        numbers_ = {
            key: _number(index, key, row.get(key))
            for key in ROW_KEYS
            if key not in ("method", "n_queries")
        }
        n_queries = row.get("n_queries")
        if n_queries is not None and (
            isinstance(n_queries, bool) or not isinstance(n_queries, numbers.Integral)
        ):
            raise InputError(
                f"rows[{index}]['n_queries'] must be an integer or None; got {n_queries!r}"
            )
        parsed.append((str(row["method"]), numbers_, n_queries))

    parsed.sort(key=lambda item: (item[1]["map"] is None, -(item[1]["map"] or 0.0)))
    lines = [_HEADER, _ALIGN]
    for position, (method, n, n_queries) in enumerate(parsed, start=1):
        cells = [
            str(position),
            _cell(method),
            _fmt_ci(n["map"], n["map_low"], n["map_high"]),
            _fmt_ci(n["cmc1"], n["cmc1_low"], n["cmc1_high"]),
            _fmt(n["floor"]),
            _fmt(n["ceiling"]),
            _fmt(n["normalised"]),
            _fmt_ci(n["pairwise"], n["pairwise_low"], n["pairwise_high"]),
            MISSING if n_queries is None else str(int(n_queries)),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    if caption:
        lines.extend(["", "Table: " + " ".join(caption.split())])
    return "\n".join(lines) + "\n"
