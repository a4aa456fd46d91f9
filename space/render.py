"""What the page shows, as HTML, Markdown and plain data: no Gradio here.

The score cards and the status lines are built from an :class:`~space.service.Outcome`; the
ranked strips and the per-identity figure are drawn by :mod:`fp_rank.reporting.strips` and
:mod:`fp_rank.reporting.identity_figure` from the report's own fields, and only framed here.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

from PIL import Image

from fp_rank.encoding.images import to_rgb
from fp_rank.errors import FpRankError
from fp_rank.reporting.identity_figure import identity_figure as report_identity_figure
from fp_rank.reporting.strips import THUMB, Strip, query_strips, rank_text, score_text
from space.service import Outcome, ScoringSpace


def _ci_text(intervals: Mapping[str, Any], key: str) -> str:
    ci = intervals.get(key) if isinstance(intervals, Mapping) else None
    if not isinstance(ci, Mapping) or ci.get("low") is None or ci.get("high") is None:
        return ""
    level = ci.get("confidence")
    level_text = f"{float(level) * 100:.0f}% CI" if isinstance(level, (int, float)) else "CI"
    return f"{level_text} {score_text(ci['low'])}–{score_text(ci['high'])}"


_CARD = (
    "flex:1 1 130px;min-width:120px;padding:12px 14px;border-radius:10px;"
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


def headline_html(outcome: Outcome) -> str:
    """The score cards: one row per (method, encoder) with mAP, CMC@1, pairwise, chance, ceiling."""
    report = outcome.report
    if report is None:
        return (
            '<div style="padding:18px;border:1px solid #ef4444;border-radius:10px;background:#fef2f2;color:#7f1d1d">'
            f"<b>Nothing was scored.</b> {html.escape(outcome.error or '')}</div>"
        )
    blocks = []
    for res in sorted(report.results, key=lambda r: (-r.map if math.isfinite(r.map) else 0.0, r.method)):
        ci = res.intervals or {}
        cards = [
            _card("mAP", score_text(res.map), _ci_text(ci, "map") or "identity retrieval", main=True, klass="fp-map",
                  tip="Mean average precision of retrieving each image's own identity among look-alikes"),
            _card("CMC@1", score_text(res.cmc.get(1)), _ci_text(ci, "cmc1") or "top match correct", klass="fp-cmc",
                  tip="Share of images whose best gallery match is their own identity"),
            _card("Pairwise cosine", score_text(res.pairwise_similarity), _ci_text(ci, "pairwise") or "baseline", klass="fp-pairwise",
                  tip="DreamBench-style baseline: mean cosine to the identity's reference photos"),
            _card("Chance floor", score_text(res.chance_map), "random ranking", klass="fp-chance",
                  tip="Expected mAP of a uniformly random ranking of the same gallery"),
        ]
        if res.ceiling_map is not None:
            cards.append(_card("Real-image ceiling", score_text(res.ceiling_map), f"{res.ceiling_split} photos", klass="fp-ceiling",
                               tip="mAP of real photos used as queries against the same gallery"))
        title = f"{res.method} · {res.encoder} · {res.n_queries} image(s) scored"
        blocks.append(
            f'<div class="fp-method" style="margin-bottom:12px"><div style="font-weight:700;margin:2px 0 6px 2px">'
            f'{html.escape(title)}</div><div style="display:flex;gap:10px;flex-wrap:wrap">{"".join(cards)}</div></div>'
        )
    note = (
        '<div style="font-size:0.85em;color:#475569;margin-top:4px"><b>mAP</b>: how well each generated image '
        "retrieves real photos of its own identity among look-alikes (1 = all of them ranked first). Well above the "
        "<b>chance floor</b> means the identifying details survived. <b>CMC@1</b>: share of images whose best match "
        "is their own identity. <b>Pairwise cosine</b>: the usual DreamBench-style similarity to the reference photos, "
        "shown for comparison. <b>Real-image ceiling</b>: the same retrieval with real photos as queries.</div>"
    )
    if outcome.is_demo_encoder:
        note += (
            '<div style="font-size:0.85em;color:#92400e;background:#fffbeb;border:1px solid #f59e0b;'
            'border-radius:8px;padding:6px 10px;margin-top:6px"><b>Demo encoder:</b> a hand-made descriptor for '
            "the synthetic demo birds only; its scores of real photos mean nothing. Pick a real encoder for real "
            "images.</div>"
        )
    return f'<div id="fp-results">{"".join(blocks)}{note}</div>'


def _md_name(name: str) -> str:
    return "`" + name.replace("`", "'") + "`"


def status_markdown(outcome: Outcome) -> str:
    """The status line and the list of files that were not scored."""
    lines = []
    if outcome.report is None:
        lines.append(f"**Nothing was scored.** {outcome.error}")
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


TABLE_COLUMNS = ["file", "method", "identity", "AP", "first hit at rank", "top-1 identity", "top-1 correct", "pairwise cosine"]



def query_table(outcome: Outcome) -> dict[str, list[Any]]:
    """The per-image table as columns: :data:`TABLE_COLUMNS` -> one cell per scored image."""
    table: dict[str, list[Any]] = {column: [] for column in TABLE_COLUMNS}
    if outcome.report is None:
        return table
    names = outcome.gallery.identity_names if outcome.gallery is not None else {}
    for q in outcome.report.queries:
        top1 = str(q.get("top1_identity"))
        cells = [
            q.get("file"),
            q.get("method"),
            q.get("identity_name") or q.get("identity"),
            score_text(q.get("ap")),
            rank_text(q.get("first_hit_rank")),
            names.get(top1, top1),
            "✓ yes" if q.get("top1_identity") == q.get("identity") else "✗ no",
            score_text(q.get("pairwise")),
        ]
        for column, cell in zip(TABLE_COLUMNS, cells):
            table[column].append(cell)
    return table


def identity_figure(outcome: Outcome) -> Any:
    """Bar chart of mAP per identity (one bar per method) with each identity's chance floor; None without scores."""
    if outcome.report is None or not outcome.report.queries:
        return None
    names = outcome.gallery.identity_names if outcome.gallery is not None else {}
    return report_identity_figure(outcome.report, names=names)


def strips(outcome: Outcome, space: ScoringSpace) -> list[Strip]:
    """One ranked strip per query (at most ``space.max_strips``), in upload order."""
    report, gal = outcome.report, outcome.gallery
    if report is None or gal is None:
        return []

    def query_image(row: Mapping[str, Any]) -> Image.Image | None:
        upload = outcome.uploads[int(row["index"])]
        try:
            return to_rgb(upload.path, name=upload.name)  # its header passed the pixel limit
        except FpRankError:
            return None

    return query_strips(
        report,
        query_image=query_image,
        gallery_image=lambda index: space.thumbnail(outcome.gallery_label, outcome.config, gal, index, THUMB),
        names=gal.identity_names,
        limit=space.max_strips,
    )


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
        alt = html.escape(f"{strip.title}. {strip.caption}")
        figures.append(
            '<figure class="fp-strip" style="margin:0;padding:6px;border:1px solid #e2e8f0;border-radius:8px;'
            f'background:#ffffff"><img src="data:image/webp;base64,{data}" alt="{alt}" '
            f'width="{strip.image.width}" height="{strip.image.height}" style="width:100%;height:auto;display:block">'
            f'<figcaption style="font-size:0.8em;color:#475569;margin-top:2px">{html.escape(strip.caption)}</figcaption>'
            "</figure>"
        )
    more = ""
    if total > len(items):
        more = (
            f'<div style="color:#475569;margin-top:6px">Showing the first {len(items)} of {total} images; every '
            "image's top matches are in the JSON report.</div>"
        )
    return (
        '<div class="fp-strip-grid" style="display:grid;grid-template-columns:repeat(auto-fill,minmax(560px,1fr));'
        f'gap:12px">{"".join(figures)}</div>{more}'
    )
