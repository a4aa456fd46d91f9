"""A Markdown results table, ready to paste into a paper draft, a README or a leaderboard."""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

from fp_rank.errors import InputError, printable
from fp_rank.protocol import DEFAULT_KS, Metric
from fp_rank.reporting.report import Report
from fp_rank.stats.intervals import INTERVAL_DESCRIPTIONS
from fp_rank.views.presentation import gallery_display_name, markdown_metrics, title_for
from fp_rank.views.table import COPY_MARK, gallery_draw_entries, gallery_draw_lines, judge_note, leak_note, summary_rows

#: Keys a row must have; the others default to None (shown as a dash).
REQUIRED_KEYS = ("method", "map")
MISSING = "–"  # en dash


def _key_k(m: Metric, key: str) -> int | None:
    """The k of a per-k metric's row key (``recall10`` -> 10)."""
    return int(key[len(m.key):]) if m.per_k else None


def _columns(ks: Sequence[int]) -> list[tuple[Metric, str]]:
    """The declared Markdown metrics with their row keys at ranks ``ks``."""
    return [(m, m.summary_key(ks)) for m in markdown_metrics()]


def row_keys(ks: Sequence[int] = DEFAULT_KS) -> tuple[str, ...]:
    """Every key a row may carry at ranks ``ks``.

    Example:
        >>> row_keys()[:5]
        ('method', 'map', 'map_low', 'map_high', 'cmc1')
    """
    keys = ["method"]
    for m, key in _columns(ks):
        keys += [key, f"{key}_low", f"{key}_high"] if m.interval else [key]
    return (*keys, "n_queries")


#: Every key a row may carry at the default ranks.
ROW_KEYS = row_keys()


def _header(columns: list[tuple[Metric, str]]) -> list[str]:
    titles = [title_for(m, _key_k(m, key)) + (" [CI]" if m.interval else "") for m, key in columns]
    return ["| # | Method | " + " | ".join(titles) + " | Queries |", "|--:|:--|" + "--:|" * (len(titles) + 1)]


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
    return printable(text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " "))


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
        f"encoder {printable(encoder)}",
        f"gallery {printable(gallery_text)}",
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


def markdown_summary(rows: list[dict[str, Any]], *, caption: str = "", ks: Sequence[int] = DEFAULT_KS) -> str:
    """A Markdown table of methods, best mAP first, with intervals, floor, ceiling and baseline.

    The columns are the metrics declared ``markdown`` in :data:`fp_rank.protocol.METRICS`.
    Numbers are fractions shown with three decimals; an interval reads ``0.812 [0.774, 0.845]``.
    A missing (None or NaN) number shows as ``–`` (an optional metric such as CLIP-T that no row
    has drops its column); an estimate without both interval ends shows
    without brackets. Rows are sorted by ``map`` descending (stable; rows without a ``map`` go
    last). The ``#`` column is the position after sorting.

    Args:
        rows: one dict per method with keys ``method`` and ``map`` and, optionally (None when
            absent), the other keys of :func:`row_keys` (``cmc1``, ``recall10``, ``pairwise``,
            ``floor``, ``ceiling``, ``baseline``, ``normalised``, ``<key>_low``/``<key>_high`` for intervals,
            ``n_queries``, ``copies``), as :meth:`fp_rank.Report.summary_rows` gives them. A row
            with ``copies`` > 0 (images flagged by the leakage guard) gets ``⚠N`` after its mAP.
        caption: a line placed under the table as ``Table: caption`` (Pandoc's syntax; see
            :func:`markdown_caption`). Nothing when empty.
        ks: the ranks the per-k metrics were computed at (the shown k follows from them).

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
        | # | Method | mAP [CI] | CMC@1 [CI] | Recall@10 [CI] | Pairwise [CI] | Chance floor | Real holdout
        | Real-image baseline | Normalised | Queries |
        |--:|:--|--:|--:|--:|--:|--:|--:|--:|--:|--:|
        | 1 | A | 0.812 | – | – | – | 0.200 | – | – | – | – |
        | 2 | B | 0.500 [0.400, 0.600] | – | – | – | – | – | – | – | 10 |
    """
    if isinstance(rows, (str, bytes, dict)) or not hasattr(rows, "__iter__"):
        raise InputError(f"rows must be a list of dicts; got {type(rows).__name__}")
    columns = _columns(ks)
    keys = [k for k in row_keys(ks) if k not in ("method", "n_queries")]
    parsed = []
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            raise InputError(f"rows[{index}] must be a dict; got {type(row).__name__}")
        missing = [key for key in REQUIRED_KEYS if key not in row]
        if missing:
            raise InputError(f"rows[{index}] lacks the key(s) {missing}")
        numbers_ = {key: _number(index, key, row.get(key)) for key in keys}
        n_queries = row.get("n_queries")
        if n_queries is not None and (
            isinstance(n_queries, bool) or not isinstance(n_queries, numbers.Integral)
        ):
            raise InputError(
                f"rows[{index}]['n_queries'] must be an integer or None; got {n_queries!r}"
            )
        copies = row.get("copies") or 0
        if isinstance(copies, bool) or not isinstance(copies, numbers.Integral):
            raise InputError(f"rows[{index}]['copies'] must be an integer or None; got {copies!r}")
        parsed.append((str(row["method"]), numbers_, n_queries, int(copies)))

    parsed.sort(key=lambda item: (item[1]["map"] is None, -(item[1]["map"] or 0.0)))
    # a metric computed only on request (CLIP-T) keeps its column only when some row has a value
    columns = [(m, key) for m, key in columns if not m.optional or any(n[key] is not None for _, n, _, _ in parsed)]
    lines = _header(columns)
    for position, (method, n, n_queries, copies) in enumerate(parsed, start=1):
        cells = [str(position), _cell(method)]
        for m, key in columns:
            cells.append(_fmt_ci(n[key], n[f"{key}_low"], n[f"{key}_high"]) if m.interval else _fmt(n[key]))
        if copies:  # the headline of a method with copies of real images carries the mark
            cells[2] += f" {COPY_MARK}{copies}"
        cells.append(MISSING if n_queries is None else str(int(n_queries)))
        lines.append("| " + " | ".join(cells) + " |")
    if caption:
        lines.extend(["", "Table: " + " ".join(caption.split())])
    return "\n".join(lines) + "\n"


def to_markdown(report: Report) -> str:
    """A Markdown table per encoder (methods by mAP, with CIs, floor, ceiling, pairwise baseline)."""
    stats = report.metadata.get("statistics") or {}
    interval = stats.get("interval_method", "bootstrap")
    gallery = report.metadata.get("gallery", {})
    gallery_name = gallery_display_name(gallery) + (f" [{gallery['config']}]" if gallery.get("config") else "")
    blocks = []
    for encoder in report.encoders:
        rows = [r for r in summary_rows(report) if r["encoder"] == encoder]
        caption = markdown_caption(
            encoder=encoder,
            gallery=gallery_name,
            protocol_version=str(report.metadata.get("protocol_version")),
            fingerprint=gallery.get("fingerprint"),
            n_boot=stats.get("n_boot"),
            confidence=stats.get("confidence"),
            seed=stats.get("seed"),
            interval=None if not stats or interval == "bootstrap" else INTERVAL_DESCRIPTIONS.get(interval, interval),
        )
        blocks.append(markdown_summary(rows, caption=caption, ks=report.ks))
    notes = stats.get("warnings") or []
    if notes:
        blocks.append("\n".join(f"Note: {note}." for note in notes))
    blocks.extend(gallery_draw_tables(report))
    for note in (leak_note(report), judge_note(report), *gallery_draw_lines(report)):
        if note:
            blocks.append(note + "\n")
    return "\n\n".join(blocks)


def gallery_draw_tables(report: Report) -> list[str]:
    """Per encoder with gallery redraws: each method's mAP with its query interval beside the gallery-draw spread."""
    draws, entries = gallery_draw_entries(report)
    out = []
    for encoder, entry in entries:
        if not isinstance(entry.get("per_method"), dict):
            continue
        population = entry.get("population_factor") is not None
        lines = ["| Method | mAP | query 95% CI (gallery fixed) | gallery draw: 1.96 SD | 95% range of the redraws from the pool |",
                 "|:--|--:|--:|--:|--:|"]
        results = {(r.encoder, r.method): r for r in report.results}
        for method, v in entry["per_method"].items():
            result = results.get((encoder, method))
            ci = (result.intervals.get("map") or {}) if result is not None else {}
            sd = v.get("sd_population") if population else v.get("sd")
            lines.append("| " + " | ".join([
                _cell(str(method)), _fmt(v.get("observed")),
                f"[{_fmt(ci['low'])}, {_fmt(ci['high'])}]" if ci.get("low") is not None and ci.get("high") is not None else MISSING,
                "±" + _fmt(None if sd is None else 1.96 * sd), f"[{_fmt(v.get('low'))}, {_fmt(v.get('high'))}]",
            ]) + " |")
        kind = ("SD over galleries drawn fresh from the source (redraw SD x sqrt((P-1)/(P-G)))" if population
                else "SD over redraws from the pool, a lower bound")
        lines += ["", f"Table: gallery draw, encoder {_cell(str(encoder))}: {draws.get('n_draws')} redraws (seed "
                      f"{draws.get('seed')}) of each identity's gallery images from its gallery and holdout images; {kind}."]
        out.append("\n".join(lines) + "\n")
    return out
