"""How the views show each declared metric: which tables and cards carry it, and its words there.

:data:`fp_rank.protocol.METRICS` says what a metric *is*; :data:`SHOWN` says where it appears
(terminal table, Markdown table, the Space's cards, per-image tables) and how it is titled
there. Every declared metric has exactly one entry (``tests/test_protocol.py`` checks it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fp_rank.protocol import METRICS, Metric


@dataclass(frozen=True)
class Shown:
    """Where one metric appears and how it is titled.

    Attributes:
        terminal: a column of the terminal table.
        markdown: a column of the Markdown table.
        card: a card of the Space (the first card is the headline).
        title: long label for Markdown tables and cards (default: the metric's label).
        hint: the card's subtitle when there is no interval (``{ceiling_split}`` is filled in).
        css: the card's CSS class suffix (``fp-<css>``; default: the metric's key).
        query_label: header of its per-query value in per-image tables (``{k}`` filled in; the
            per-query form of mAP is AP); None: not shown per image.
    """

    terminal: bool = False
    markdown: bool = False
    card: bool = False
    title: str | None = None
    hint: str = ""
    css: str | None = None
    query_label: str | None = None


SHOWN: dict[str, Shown] = {
    "map": Shown(terminal=True, markdown=True, card=True, hint="identity retrieval", query_label="AP"),
    "cmc": Shown(terminal=True, markdown=True, card=True, hint="top match correct", query_label="CMC@{k}"),
    "recall": Shown(markdown=True, card=True, hint="own-identity photos in the top k", query_label="Recall@{k}"),
    "minp": Shown(terminal=True),
    "pairwise": Shown(terminal=True, markdown=True, card=True, title="Pairwise", hint="baseline", query_label="Pairwise"),
    "clip_t": Shown(markdown=True, card=True, hint="prompt following", query_label="CLIP-T"),
    "judge": Shown(terminal=True, markdown=True, card=True, title="Judge", hint="VLM concept score / 4", query_label="Judge"),
    "floor": Shown(terminal=True, markdown=True, card=True, title="Chance floor", hint="random ranking", css="chance"),
    "ceiling": Shown(terminal=True, markdown=True, card=True, title="Real holdout", hint="{ceiling_split} photos, not a bound"),
    "baseline": Shown(markdown=True, title="Real-image baseline"),
    "normalised": Shown(markdown=True, title="Normalised"),
}


def shown(m: Metric) -> Shown:
    """The presentation of metric ``m``."""
    return SHOWN[m.key]


def title_for(m: Metric, k: int | None = None) -> str:
    """The long label of ``m`` (a per-k metric at rank ``k``, default its table k)."""
    return (shown(m).title or m.label).format(k=k if k is not None else m.table_k)


def terminal_metrics() -> tuple[Metric, ...]:
    """The terminal table's metric columns, in declaration order."""
    return tuple(m for m in METRICS if shown(m).terminal)


def markdown_metrics() -> tuple[Metric, ...]:
    """The Markdown table's metric columns, in declaration order."""
    return tuple(m for m in METRICS if shown(m).markdown)


def card_metrics() -> tuple[Metric, ...]:
    """The metrics the Space shows as cards, in declaration order (the first is the headline)."""
    return tuple(m for m in METRICS if shown(m).card)


def table_metrics() -> tuple[Metric, ...]:
    """The metrics any summary table shows (the keys of a summary row)."""
    return tuple(m for m in METRICS if shown(m).terminal or shown(m).markdown or shown(m).card)


def per_image_columns(ks: Sequence[int]) -> list[tuple[str, str]]:
    """``(header, per-query column)`` of the metrics shown per image, each per-k metric at its table k."""
    out = []
    for m in card_metrics():
        label = shown(m).query_label
        if label is None:
            continue
        k = m.shown_k(ks) if m.per_k else None
        out.append((label.format(k=k), m.column_for(k) if m.per_k else m.column_for()))
    return out


def gallery_display_name(gallery: dict[str, Any]) -> str:
    """How shareable outputs name a report's gallery: a Hub id as it is, a local folder by its name.

    A local folder's path (often a cache path such as ``/home/me/.cache/...``) means nothing to
    a reader and leaks where the author keeps files; its last component and ``(local folder)``
    say what it is, and the fingerprint beside it identifies the exact images.

    Example:
        >>> gallery_display_name({"id": "/home/me/.cache/fp_rank/demo/synthetic-seed0", "source": "local folder"})
        'synthetic-seed0 (local folder)'
        >>> gallery_display_name({"id": "org/fp-rank-cub", "source": "hub", "revision": "0123456789abcdef"})
        'org/fp-rank-cub@0123456789ab'
    """
    gid = str(gallery.get("id") or "?")
    local = gallery.get("source", "local folder" if gallery.get("revision") is None else "hub") != "hub"
    if local:
        name = gid.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1] or gid
        return f"{name} (local folder)"
    revision = gallery.get("revision")
    return gid + (f"@{str(revision)[:12]}" if revision else "")
