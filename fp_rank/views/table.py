"""A report as tables: the summary rows behind every table, and the plain-text table of the terminal."""

from __future__ import annotations

import math
from typing import Any

from fp_rank.errors import printable
from fp_rank.reporting.report import Report
from fp_rank.reporting.results import metric_value
from fp_rank.views.presentation import table_metrics, terminal_metrics

#: Marks a method with generated images flagged as copies of real images (``⚠2``).
COPY_MARK = "\u26a0"


def summary_rows(report: Report) -> list[dict[str, Any]]:
    """One flat row per (encoder, method) for tables: every shown metric, with its interval.

    Keys: ``encoder``, ``method``, each table metric's summary key (``map``, ``cmc1``,
    ``recall10``, ``pairwise``, ``floor``, ``ceiling``, ``normalised``), ``<key>_low`` and
    ``<key>_high`` for those with intervals, ``n_queries``, and ``copies`` (generated images
    flagged as copies of real images, see :meth:`~fp_rank.Report.leak_counts`).
    """
    rows = []
    copies = report.leak_counts()
    ks = report.ks
    for r in report.results:
        row: dict[str, Any] = {"encoder": r.encoder, "method": r.method}
        for m in table_metrics():
            key = m.summary_key(ks)
            row[key] = metric_value(r, m, ks)
            if m.interval:
                ci = r.intervals.get(key) or {}
                row[f"{key}_low"], row[f"{key}_high"] = ci.get("low"), ci.get("high")
        row["n_queries"] = r.n_queries
        row["copies"] = copies.get(r.method, {}).get("flagged", 0)
        rows.append(row)
    return rows


def leak_note(report: Report) -> str | None:
    """One sentence on the flagged copies for under a table (None when there are none)."""
    counts = {m: c for m, c in report.leak_counts().items() if c["flagged"]}
    if not counts:
        return None
    listed = ", ".join(f"{m} {c['flagged']}" for m, c in counts.items())
    excluded = sum(c["excluded"] for c in counts.values())
    tail = (
        f"{excluded} of them were left out of the scores (--leaks exclude, leaks='exclude')."
        if excluded
        else "they are in the scores; --leaks exclude (leaks='exclude') leaves them out."
    )
    return (
        f"{COPY_MARK} copies: {sum(c['flagged'] for c in counts.values())} generated image(s) are exact or near copies "
        f"of real gallery/reference/holdout images ({listed}); a copy retrieves its own source at rank 1, so its "
        f"score measures copying, not personalization: {tail}"
    )


def format_table(report: Report) -> str:
    """A plain-text table for terminals (the metrics shown there, best mAP first per encoder)."""
    ks = report.ks
    shown = [(m, max(7, len(m.label_for(m.shown_k(ks))) + 1)) for m in terminal_metrics()
             if not m.optional or any(metric_value(r, m, ks) is not None for r in report.results)]
    head = f"{'encoder':<16} {'method':<18} " + " ".join(f"{m.label_for(m.shown_k(ks)):>{w}}" for m, w in shown)
    head += f" {'queries':>8}"
    copies = report.leak_counts()
    marked = any(c["flagged"] for c in copies.values())
    head += f" {'copies':>7}" if marked else ""
    lines = [head, "-" * len(head)]
    for r in sorted(report.results, key=lambda x: (x.encoder, not _finite(x.map), -(x.map if _finite(x.map) else 0.0))):
        cells = []
        for m, w in shown:
            value = metric_value(r, m, ks)
            cells.append(f"{'-':>{w}}" if value is None else f"{value:{w}.3f}")
        line = f"{printable(r.encoder)[:16]:<16} {printable(r.method)[:18]:<18} " + " ".join(cells) + f" {r.n_queries:8d}"
        if marked:
            flagged = copies.get(r.method, {}).get("flagged", 0)
            line += f" {(COPY_MARK + str(flagged)) if flagged else '0':>7}"
        lines.append(line)
    notes = [note for note in (leak_note(report), judge_note(report), *gallery_draw_lines(report)) if note]
    return "\n".join(lines + notes)


def judge_note(report: Report) -> str | None:
    """One sentence on the judge under a table: who judged, how many images, what is missing (None: no judge)."""
    judge = report.metadata.get("judge")
    if not isinstance(judge, dict):
        return None
    prompt = judge.get("prompt") or {}
    missing = judge.get("missing") or {}
    text = (f"judge: {printable(str(judge.get('model')))} ({judge.get('backend')}), prompt "
            f"{printable(str(prompt.get('name')))} (sha256 {str(prompt.get('sha256'))[:12]}); "
            f"{judge.get('images_judged')} images judged, {judge.get('calls')} calls, {judge.get('from_cache')} from "
            "the cache")
    partial = {m: c for m, c in (judge.get("coverage") or {}).items()
               if isinstance(c, dict) and c.get("groups_without_judgements")}
    if partial:
        text += "; judge scores cover only some groups (" + ", ".join(
            f"{printable(str(m))}: {c.get('judged_groups')} of {c.get('groups')}" for m, c in partial.items()
        ) + "), so they do not compare with mAP or with each other"
    if missing.get("count"):
        reasons = ", ".join(f"{printable(str(k))} {v}" for k, v in (missing.get("by_reason") or {}).items())
        text += f"; {missing['count']} without a judgement ({reasons}), left out of the judge score"
    return text


def _finite(value: Any) -> bool:
    return value is not None and math.isfinite(value)


def gallery_draw_entries(report: Report) -> tuple[dict[str, Any], list[tuple[str, dict[str, Any]]]]:
    """The report's gallery-draw record (``extras.gallery_draws``: settings) and its (encoder, entry) pairs that
    are dicts; empty when the report has no redraws (or a saved report holds something else there)."""
    draws = report.extras.get("gallery_draws")
    if not isinstance(draws, dict) or not isinstance(draws.get("encoders"), dict):
        return {}, []
    return draws, [(str(e), entry) for e, entry in draws["encoders"].items() if isinstance(entry, dict)]


def gallery_draw_lines(report: Report) -> list[str]:
    """Per encoder, one line on how much each method's mAP moves when the gallery is redrawn (none without draws)."""
    draws, entries = gallery_draw_entries(report)
    lines = []
    for encoder, entry in entries:
        if "per_method" not in entry:
            lines.append(f"gallery draw ({printable(str(encoder))}): {entry.get('note', 'not computed')}")
            continue
        kind = "SD over galleries from the source" if entry.get("population_factor") else "SD over redraws (a lower bound)"
        spread = ", ".join(
            f"{printable(str(m))} {_number(v.get('observed'))} \u00b1 {_number(_sd(v))}" for m, v in entry["per_method"].items()
        )
        pool = entry.get("pool") or {}
        line = (f"gallery draw ({printable(str(encoder))}, {draws.get('n_draws')} redraws from {pool.get('pool_images')} images for "
                f"{pool.get('gallery_images')} gallery places): {spread} ({kind})")
        kept = [p for p in entry.get("pairs") or [] if p.get("survives")]
        lost = [p for p in entry.get("pairs") or [] if not p.get("survives")]
        if kept:
            line += "; differences beyond the gallery draw: " + ", ".join(f"{printable(str(p['a']))} > {printable(str(p['b']))}" for p in kept)
        if lost:
            line += "; within it: " + ", ".join(
                f"{printable(str(p['a']))} vs {printable(str(p['b']))} ({_number(p.get('difference'))} \u00b1 {_number(_sd(p))}, "
                f"same sign in {float(p.get('same_sign') or 0):.0%} of redraws)" for p in lost)
        lines.append(line)
    return lines


def _sd(entry: dict[str, Any]) -> Any:
    return entry.get("sd_population") if entry.get("sd_population") is not None else entry.get("sd")


def _number(value: Any) -> str:
    return f"{float(value):.3f}" if isinstance(value, (int, float)) and math.isfinite(float(value)) else "-"
