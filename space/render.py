"""What the page shows, as HTML, Markdown and plain data: no Gradio here.

The score cards and the status lines are built from an :class:`~space.service.Outcome`; the
ranked strips and the per-identity figure are drawn by :mod:`fp_rank.views.strips` and
:mod:`fp_rank.views.identity_figure` from the report's own fields, and only framed here.
"""

from __future__ import annotations

import base64
import copy
import html
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from PIL import Image

from fp_rank.images.decode import to_rgb
from fp_rank.errors import FpRankError
from fp_rank.protocol import DEFAULT_KS, Metric
from fp_rank.views.presentation import card_metrics, per_image_columns, title_for
from fp_rank.views.presentation import shown as presentation
from fp_rank.reporting.results import metric_value
from fp_rank.views.identity_figure import identity_figure as report_identity_figure
from fp_rank.views.strips import THUMB, Strip, query_strips, rank_text, score_text
from space.service import Outcome, ScoringSpace


def _ci_text(intervals: Mapping[str, Any], key: str) -> str:
    ci = intervals.get(key) if isinstance(intervals, Mapping) else None
    if not isinstance(ci, Mapping) or ci.get("low") is None or ci.get("high") is None:
        return ""
    level = ci.get("confidence")
    level_text = f"{float(level) * 100:.0f}% CI" if isinstance(level, (int, float)) else "CI"
    return f"{level_text} {score_text(ci['low'])}–{score_text(ci['high'])}"


_CARD = (
    "flex:1 1 96px;min-width:92px;padding:10px 12px;border-radius:10px;box-sizing:border-box;"
    "background:{bg};border:1px solid {border};color:#111827"
)


def _card(title: str, value: str, sub: str, *, main: bool = False, klass: str = "", tip: str = "") -> str:
    bg, border = ("#eef2ff", "#6366f1") if main else ("#f8fafc", "#cbd5e1")
    size = "2.1em" if main else "1.5em"
    return (
        f'<div class="fp-card {klass}" title="{html.escape(tip)}" style="{_CARD.format(bg=bg, border=border)}">'
        f'<div style="font-size:0.85em;color:#475569;font-weight:600">{html.escape(title)}</div>'
        f'<div class="fp-value" style="font-size:{size};font-weight:700;line-height:1.25">{html.escape(value)}</div>'
        f'<div style="font-size:0.8em;color:#475569">{html.escape(sub) or "&nbsp;"}</div></div>'
    )


HEADLINE_PLACEHOLDER = (
    '<div style="padding:18px;border:1px dashed #94a3b8;border-radius:10px;color:#475569;background:#f8fafc">'
    "Upload generated images, choose their identity and press <b>Score</b>. The headline mAP, "
    "CMC@1, the pairwise baseline and the chance floor appear here.</div>"
)


#: What a flagged query means, said once wherever flags are shown.
LEAK_SENTENCE = (
    "Flagged images are exact or near copies of a real gallery, reference or holdout photo: they retrieve "
    "their own source, so they raise the score without showing that the method kept the identity."
)


def _leak_where(leak: Mapping[str, Any]) -> str:
    split = leak.get("split")
    return f"copy of a real {split} image" if split else "copy of a real image"


def _leak_banner(n: int, total: int) -> str:
    return (
        '<div class="fp-leak" style="font-size:0.85em;color:#7c2d12;background:#fff7ed;border:1px solid #f97316;'
        f'border-radius:8px;padding:6px 10px;margin:0 0 6px 0"><b>⚠ {n} of {total} image(s) flagged as copies of '
        f"real images.</b> {html.escape(LEAK_SENTENCE)}</div>"
    )


def headline_html(outcome: Outcome) -> str:
    """The score cards: one row per (method, encoder) with mAP, CMC@1, pairwise, chance, ceiling."""
    report = outcome.report
    if report is None:
        return (
            '<div style="padding:18px;border:1px solid #ef4444;border-radius:10px;background:#fef2f2;color:#7f1d1d">'
            f"<b>Nothing was scored.</b> {html.escape(outcome.error or '')}</div>"
        )
    blocks = []
    shown: dict[str, Metric] = {}
    leaks = report.leak_counts()  # method -> flagged copies (the same for every encoder)
    for res in sorted(report.results, key=lambda r: (-r.map if math.isfinite(r.map) else 0.0, r.method)):
        ci = res.intervals or {}
        cards = []
        for position, m in enumerate(card_metrics()):
            value = metric_value(res, m, report.ks)
            if position and (value is None or not math.isfinite(value)):
                continue  # not computed for this run (a ceiling without real splits, CLIP-T without prompts)
            key = m.summary_key(report.ks)
            sub = (_ci_text(ci, key) if m.interval else "") or presentation(m).hint.format(ceiling_split=res.ceiling_split)
            cards.append(_card(title_for(m, m.shown_k(report.ks)), score_text(value), sub, main=position == 0,
                               klass=f"fp-{presentation(m).css or m.key}", tip=m.description))
            shown[m.key] = m
        # the owner's label for the encoder, never the folder or Hub id it was loaded from
        encoder = outcome.encoder_label or res.encoder
        title = f"{res.method} · {encoder} · {res.n_queries} image(s) scored"
        n_leaks = leaks.get(res.method, {}).get("scored", 0)
        banner = _leak_banner(n_leaks, res.n_queries) if n_leaks else ""
        blocks.append(
            f'<div class="fp-method" style="margin-bottom:12px"><div style="font-weight:700;margin:2px 0 6px 2px;'
            f'overflow-wrap:anywhere">{html.escape(title)}</div>{banner}'
            f'<div class="fp-cards" style="display:flex;gap:10px;flex-wrap:wrap">{"".join(cards)}</div></div>'
        )
    explained = " ".join(
        f"<b>{html.escape(title_for(m, m.shown_k(report.ks)))}</b>: {html.escape(m.description)}" for m in shown.values()
    )
    note = f'<div style="font-size:0.85em;color:#475569;margin-top:4px">{explained}</div>'
    if outcome.is_demo_encoder:
        note += (
            '<div style="font-size:0.85em;color:#92400e;background:#fffbeb;border:1px solid #f59e0b;'
            'border-radius:8px;padding:6px 10px;margin-top:6px"><b>Demo encoder:</b> a hand-made descriptor for '
            "the synthetic demo birds only; its scores of real photos mean nothing. Real encoders (DINOv2, CLIP, "
            "BioCLIP, MiewID) appear in the encoder list when the Space's owner enables them "
            "(<code>FP_RANK_SPACE_ENCODERS</code>); where the list offers only the demo encoder, score real images "
            "with <code>pip install fp-rank</code> and <code>fp-rank evaluate</code>.</div>"
        )
    return f'<div id="fp-results">{"".join(blocks)}{note}</div>'


def _md_name(name: str) -> str:
    return "`" + name.replace("`", "'") + "`"


def status_markdown(outcome: Outcome) -> str:
    """The status line and the list of files that were not scored."""
    lines = []
    if outcome.report is None:
        lines.append("**Nothing was scored** (the reason is in the box above).")  # said once, not twice
    else:
        gallery = outcome.gallery_label + (f" / {outcome.config}" if outcome.config else "")
        lines.append(
            f"Scored **{len(outcome.report.queries)}** image(s) against gallery **{gallery}** with encoder "
            f"**{outcome.encoder_label}** in {outcome.seconds:.1f} s."
        )
    if outcome.problems:
        lines.append(f"\n**{len(outcome.problems)} file(s) not scored:**")
        lines.extend(f"- {_md_name(p.name)}: {p.reason}" for p in outcome.problems[:50])
        if len(outcome.problems) > 50:
            lines.append(f"- … and {len(outcome.problems) - 50} more (all are listed in the JSON report)")
    for note in outcome.notes:
        lines.append(f"\nNote: {note}")
    return "\n".join(lines)


#: The per-image table's columns at the default ranks (metrics from the declaration).
TABLE_COLUMNS = ["file", "method", "identity", *[h for h, _ in per_image_columns(DEFAULT_KS)], "first hit at rank",
                 "top-1 identity"]


def query_table(outcome: Outcome) -> dict[str, list[Any]]:
    """The per-image table as columns: header -> one cell per scored image.

    Columns: file, method, identity, the per-query value of each card metric (AP, CMC@1,
    Recall@k, pairwise, CLIP-T; a metric no image has is left out), first-hit rank, top-1
    identity (✓ when it is the query's own, ✗ otherwise). A file flagged as a copy of a real image starts with ⚠.
    """
    ks = outcome.report.ks if outcome.report is not None else list(DEFAULT_KS)
    metrics = per_image_columns(ks)
    if outcome.report is not None:  # like the cards: leave out a metric no image has (CLIP-T without prompts)
        metrics = [(h, c) for h, c in metrics if any(q.get(c) is not None for q in outcome.report.queries)]
    columns = ["file", "method", "identity", *[h for h, _ in metrics], "first hit at rank", "top-1 identity"]
    table: dict[str, list[Any]] = {column: [] for column in columns}
    if outcome.report is None:
        return table
    names = outcome.gallery.identity_names if outcome.gallery is not None else {}
    for q in outcome.report.queries:
        top1 = str(q.get("top1_identity"))
        leak = q.get("leak")
        cells = [
            q.get("file") if leak is None else f"⚠ {q.get('file')} ({_leak_where(leak)})",
            q.get("method"),
            q.get("identity_name") or q.get("identity"),
            *[score_text(q.get(column)) for _, column in metrics],
            rank_text(q.get("first_hit_rank")),
            # whether it is the query's own identity, in a mark that does not rely on colour
            ("✓ " if q.get("top1_identity") == q.get("identity") else "✗ ") + names.get(top1, top1),
        ]
        for column, cell in zip(columns, cells):
            table[column].append(cell)
    return table


def identity_figure(outcome: Outcome) -> Any:
    """Bar chart of mAP per identity (one bar per method) with each identity's chance floor; None without scores."""
    if outcome.report is None or not outcome.report.queries:
        return None
    names = outcome.gallery.identity_names if outcome.gallery is not None else {}
    return report_identity_figure(outcome.report, names=names)


@dataclass(frozen=True)
class MarkedStrip(Strip):
    """A ranked strip with the page's leak mark: why its query is flagged, or None."""

    leak: str | None = None


def strips(outcome: Outcome, space: ScoringSpace) -> list[Strip]:
    """One ranked strip per query (at most ``space.max_strips``), by method, then identity, then file name
    (not upload order, so a method's strips stay together and two runs of the same files agree).

    A query flagged as a copy of a real image gives a :class:`MarkedStrip` saying so.
    """
    report, gal = outcome.report, outcome.gallery
    if report is None or gal is None:
        return []
    drawn: list[Mapping[str, Any]] = []  # the rows that got a strip, in order

    def query_image(row: Mapping[str, Any]) -> Image.Image | None:
        upload = outcome.uploads[int(row["index"])]
        try:
            image = to_rgb(upload.path, name=upload.name)  # its header passed the pixel limit
        except FpRankError:
            return None
        drawn.append(row)
        return image

    ordered = copy.copy(report)
    ordered.queries = sorted(report.queries, key=lambda r: (str(r.get("method")), str(r.get("identity")),
                                                           str(r.get("file"))))
    items = query_strips(
        ordered,
        query_image=query_image,
        gallery_image=lambda index: space.thumbnail(outcome.gallery_label, outcome.config, gal, index, THUMB),
        names=gal.identity_names,
        limit=space.max_strips,
    )
    out: list[Strip] = []
    for strip, row in zip(items, drawn):
        leak = row.get("leak")
        if leak is None:
            out.append(strip)
            continue
        note = f"⚠ Flagged: {_leak_where(leak)}; its score says nothing about identity preservation."
        out.append(MarkedStrip(strip.image, strip.title, strip.caption, strip.hits, leak=note))
    return out


def strips_html(items: Sequence[Strip], total: int) -> str:
    """The ranked strips as one HTML block (inline WebP pictures; title and caption also as text).

    Args:
        items: strips from :func:`strips`.
        total: how many queries were scored (to say when only the first strips are drawn).
    """
    if not items:
        return '<div style="color:#475569;padding:8px">The ranked gallery matches of each image appear here.</div>'
    figures = []
    for strip in items:
        buf = io.BytesIO()
        strip.image.save(buf, format="WEBP", quality=90, method=4)
        data = base64.b64encode(buf.getvalue()).decode("ascii")
        leak = getattr(strip, "leak", None)
        alt = html.escape(f"{strip.title}. {strip.caption}" + (f" {leak}" if leak else ""))
        frame, klass, mark = "1px solid #e2e8f0", "fp-strip", ""
        if leak:
            frame, klass = "2px solid #f97316", "fp-strip fp-strip-leak"
            mark = f'<div style="font-size:0.8em;font-weight:700;color:#7c2d12;margin-top:2px">{html.escape(leak)}</div>'
        figures.append(
            f'<figure class="{klass}" style="margin:0;padding:6px;border:{frame};border-radius:8px;min-width:0;'
            f'background:#ffffff"><div style="overflow-x:auto"><img src="data:image/webp;base64,{data}" alt="{alt}" '
            f'width="{strip.image.width}" height="{strip.image.height}" '
            # never below 520 px, where names and cosines stay legible: a phone scrolls the strip sideways
            f'style="width:100%;min-width:min(520px,{strip.image.width}px);height:auto;display:block"></div>'
            f'{mark}<figcaption style="font-size:0.8em;color:#475569;margin-top:2px">{html.escape(strip.caption)}</figcaption>'
            "</figure>"
        )
    more = ""
    if total > len(items):
        more = (
            f'<div style="color:#475569;margin-top:6px">Showing the first {len(items)} of {total} images; every '
            "image's top matches are in the JSON report.</div>"
        )
    n_leaks = sum(1 for strip in items if getattr(strip, "leak", None))
    if n_leaks:
        more += (
            f'<div class="fp-leak" style="color:#7c2d12;margin-top:6px">⚠ {n_leaks} strip(s) above (orange frame) '
            f"show images flagged as copies of real images. {html.escape(LEAK_SENTENCE)}</div>"
        )
    # min(560px, 100%): two strips side by side on a wide screen, one full-width strip on a phone
    return (
        '<div class="fp-strip-grid" style="display:grid;grid-template-columns:repeat(auto-fill,minmax(min(560px,100%),1fr));'
        f'gap:12px">{"".join(figures)}</div>{more}'
    )
