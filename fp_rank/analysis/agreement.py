"""Do a report's scores agree with people? Ratings read from a CSV file, set against each score.

:func:`read_ratings` reads and checks a ratings file (one rating per image, or a preference per
pair of images); :func:`agreement` sets every score of a report (mAP and pairwise per encoder;
CLIP-T and the judge once) against those ratings. The maths is in :mod:`fp_rank.stats.rank_agreement`.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from fp_rank.errors import InputError, printable
from fp_rank.protocol import metric
from fp_rank.analysis.ratings import Ratings, read_ratings
from fp_rank.reporting.report import Report
from fp_rank.stats._validation import check_confidence, check_positive_int, check_seed
from fp_rank.stats.rank_agreement import (
    kendall_tau_b,
    pairwise_accuracy,
    preference_accuracy,
    rank_correlation_interval,
    spearman_rho,
)

#: Scores set against ratings: per encoder, then encoder-independent (read from the first encoder's rows).
PER_ENCODER_SCORES = ("map", "pairwise")
SHARED_SCORES = ("clip_t", "judge")
_MISSING = "-"


def _rows_by_name(report: Report, key: str) -> dict[str, dict[Any, dict[str, Any]]]:
    """Per encoder, the report's rows by image name (``file`` or ``index``; a file also by the last parts of its
    path, ``faithful/a/00.png`` for ``/runs/faithful/a/00.png``, where only one file ends so); ambiguous names map to None."""
    by_encoder: dict[str, dict[Any, Any]] = {encoder: {} for encoder in report.encoders}
    for row in report.queries:
        name = row.get(key)
        if name is None:
            raise InputError(f"the report's rows carry no {key!r} (an older report); name the images by file in the "
                             "ratings file")
        rows = by_encoder.setdefault(row["encoder"], {})
        rows[name] = None if name in rows else row
    if key == "file":  # a rating may name a file by its path's last parts (the manifest's relative path)
        for rows in by_encoder.values():
            tails: dict[str, Any] = {}
            for name, row in rows.items():
                parts = str(name).replace("\\", "/").split("/")
                for k in range(1, len(parts)):
                    tail = "/".join(parts[k:])
                    tails[tail] = None if tail in tails and tails[tail] is not row else row
            rows.update({tail: row for tail, row in tails.items() if tail not in rows})
    return by_encoder


def _check_known(report_rows: dict[str, dict[Any, Any]], ratings: Ratings) -> None:
    held = {name for rows in report_rows.values() for name in rows}
    named = ratings.lines
    unknown = [name for name in named if name not in held]
    if unknown:
        shown = ", ".join(f"{name!r} (line {named[name]})" for name in unknown[:5])
        hints = [f"{name!r} -> {close[0]!r}" for name in unknown[:5] if isinstance(name, str)
                 and (close := difflib.get_close_matches(name, [str(h) for h in held], n=1, cutoff=0.5))]
        hint = f"; closest report files: {', '.join(hints)}" if hints else ""
        raise InputError(f"ratings file {ratings.source!r} names {len(unknown)} image(s) the report does not hold: "
                         f"{shown}{hint}. Name images as the report's {ratings.key} column does (queries.csv)")
    ambiguous = [name for name in named if any(name in rows and rows[name] is None for rows in report_rows.values())]
    if ambiguous:
        raise InputError(f"ratings file {ratings.source!r}: the report holds several images named {ambiguous[0]!r} "
                         f"(line {named[ambiguous[0]]}); name them by a longer part of their path, or by index")


def _finite(row: dict[str, Any] | None, column: str) -> float | None:
    value = None if row is None else row.get(column)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) else None


def _by_method(methods: list[str], values: list[float]) -> dict[str, float]:
    by: dict[str, list[float]] = {}
    for method, value in zip(methods, values):
        by.setdefault(method, []).append(value)
    return {method: float(np.mean(v)) for method, v in by.items()}


def _correlation(x: list[float], y: list[float], clusters: list[str], statistic: str, settings: dict[str, Any]) -> dict[str, Any]:
    if len(x) >= 3 and len(set(clusters)) >= 2:
        return rank_correlation_interval(x, y, clusters, statistic, **settings).to_dict()  # type: ignore[arg-type]
    estimate = (kendall_tau_b if statistic == "kendall" else spearman_rho)(x, y)
    return {"statistic": statistic, "estimate": estimate if math.isfinite(estimate) else None, "low": None, "high": None,
            "n": len(x), "n_clusters": len(set(clusters)),
            "note": "no interval: it needs at least 3 rated images of at least 2 identities"}


def _image_entry(rows: dict[Any, Any], ratings: Ratings, column: str, settings: dict[str, Any]) -> dict[str, Any]:
    used = [(name, score) for name in ratings.images if (score := _finite(rows.get(name), column)) is not None]
    x = [score for _, score in used]
    y = [ratings.images[name][0] for name, _ in used]
    clusters = [f"{rows[name]['group']}\x00{rows[name]['identity']}" for name, _ in used]
    methods = [rows[name]["method"] for name, _ in used]
    return {
        "n_images": len(used), "n_identities": len(set(clusters)),
        "n_rated_without_score": sum(1 for name in ratings.images if name in rows) - len(used),
        "kendall": _correlation(x, y, clusters, "kendall", settings),
        "spearman": _correlation(x, y, clusters, "spearman", settings),
        "method_pairs": pairwise_accuracy(_by_method(methods, x), _by_method(methods, y)),
    }


def _pair_entry(rows: dict[Any, Any], ratings: Ratings, column: str, settings: dict[str, Any]) -> dict[str, Any]:
    used = [(pair, votes, a, b) for pair, votes in ratings.pairs.items()
            if (a := _finite(rows.get(pair[0]), column)) is not None and (b := _finite(rows.get(pair[1]), column)) is not None]
    preferred = ["a" if v[0] > v[1] else "b" if v[1] > v[0] else "tie" for _, v, _, _ in used]
    preference = preference_accuracy([u[2] for u in used], [u[3] for u in used], preferred, **settings)
    wins: dict[str, list[float]] = {}
    images: dict[str, float] = {}
    for (first, second), (votes_a, votes_b, ties), score_a, score_b in used:
        images[first], images[second] = score_a, score_b
        method_a, method_b = rows[first]["method"], rows[second]["method"]
        if method_a != method_b:
            for method, won in ((method_a, votes_a), (method_b, votes_b)):
                tally = wins.setdefault(method, [0.0, 0.0])
                tally[0] += won + ties / 2
                tally[1] += votes_a + votes_b + ties
    win_rates = {method: won / total for method, (won, total) in wins.items() if total}
    methods = [rows[name]["method"] for name in images]
    return {
        "n_pairs": len(used), "n_images": len(images),
        "n_identities": len({(rows[name]["group"], rows[name]["identity"]) for name in images}),
        "preference": preference,
        "method_pairs": {**pairwise_accuracy(_by_method(methods, list(images.values())), win_rates), "win_rates": win_rates},
    }


def _ci(result: dict[str, Any], key: str = "estimate", spec: str = "+.3f") -> str:
    value, low, high = result.get(key), result.get("low"), result.get("high")
    if value is None or not math.isfinite(value):
        return _MISSING
    return f"{value:{spec}} " + ("(no interval)" if low is None else f"[{low:{spec}}, {high:{spec}}]")


def _method_pairs(result: dict[str, Any]) -> str:
    ties = f", {result['n_human_ties']} tied" if result["n_human_ties"] else ""
    accuracy = _MISSING if not math.isfinite(result["accuracy"]) else f"{result['accuracy']:.3f}"
    return f"{accuracy} ({result['n_pairs']} pairs{ties})"


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value.item() if isinstance(value, np.generic) else value


@dataclass(frozen=True)
class Agreement:
    """How each score of a report agrees with people's ratings (from :func:`agreement`).

    Attributes:
        layout: the ratings' layout, ``"image"`` or ``"pair"``.
        scores: one dict per score: ``score`` (metric key), ``label``, ``encoder`` (None for
            scores that do not depend on it), ``n_images``, ``n_identities`` and, per image,
            ``kendall``, ``spearman`` (each with its interval) or, per pair, ``n_pairs`` and
            ``preference``; always ``method_pairs`` (the method-pair accuracy).
        counts: images of the report, images rated, report images without a rating, rating rows, raters.
        settings: ``n_boot``, ``confidence``, ``seed`` and the interval method in words.
        report: the report's fp-rank and protocol versions.
        ratings: the ratings file, its sha256, layout, key and ignored columns.
    """

    layout: str
    scores: list[dict[str, Any]]
    counts: dict[str, int]
    settings: dict[str, Any]
    report: dict[str, Any]
    ratings: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """Everything as JSON-serialisable data (NaN becomes None)."""
        return _json_safe({name: getattr(self, name) for name in self.__dataclass_fields__})

    def _table(self) -> tuple[list[str], list[list[str]]]:
        if self.layout == "image":
            head = ["score", "encoder", "images", "identities", "Kendall tau [CI]", "Spearman rho [CI]", "method-pair accuracy"]
            body = [[e["label"], e["encoder"] or _MISSING, str(e["n_images"]), str(e["n_identities"]), _ci(e["kendall"]),
                     _ci(e["spearman"]), _method_pairs(e["method_pairs"])] for e in self.scores]
        else:
            head = ["score", "encoder", "pairs", "images", "identities", "preference accuracy [CI]", "method-pair accuracy"]
            body = [[e["label"], e["encoder"] or _MISSING, str(e["n_pairs"]), str(e["n_images"]), str(e["n_identities"]),
                     _ci(e["preference"], "accuracy", ".3f"), _method_pairs(e["method_pairs"])] for e in self.scores]
        return head, [[printable(cell) for cell in row] for row in body]

    def _notes(self) -> list[str]:
        c, s = self.counts, self.settings
        notes = [(f"{c['rated_images']} rated images ({c['rating_rows']} ratings by {c['raters']} rater(s)); "
                  f"{c['unrated_report_images']} of the report's {c['report_images']} images have no rating and are not used"),
                 f"{s['confidence']:.0%} intervals: {s['interval_method']}, {s['n_boot']} replicates, seed {s['seed']}"]
        if self.layout == "pair":
            notes.append(f"people tied {c['tied_pairs']} of {c['rated_pairs']} rated pairs: left out of the preference accuracy")
        if self.ratings["ignored_columns"]:
            notes.append(f"columns not read: {', '.join(self.ratings['ignored_columns'])}")
        return notes + [f"{e['label']}{'' if e['encoder'] is None else ' / ' + e['encoder']}: {note}" for e in self.scores
                        for note in dict.fromkeys(e[k]["note"] for k in ("kendall", "spearman") if e.get(k, {}).get("note"))]

    def to_markdown(self) -> str:
        """The table as Markdown, with the counts and the interval method under it."""
        head, body = self._table()
        lines = ["| " + " | ".join(head) + " |", "|:--|:--|" + "--:|" * (len(head) - 2)]
        lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in body]
        return "\n".join(lines + [""] + [printable(note) for note in self._notes()]) + "\n"

    def summary(self) -> str:
        """The table as aligned text for a terminal, with the counts and the interval method under it."""
        head, body = self._table()
        widths = [max(len(row[i]) for row in [head, *body]) for i in range(len(head))]
        lines = ["  ".join(cell.ljust(w) if i < 2 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths)))
                 for row in [head, *body]]
        return "\n".join(lines + [printable(note) for note in self._notes()])


def agreement(report: Report, ratings: Ratings, *, n_boot: int = 2000, confidence: float = 0.95, seed: int = 0) -> Agreement:
    """Set each score of ``report`` against people's ``ratings``.

    Scores: mAP and pairwise per encoder; CLIP-T and the judge once (from the first encoder's
    rows), where the report holds them. Per image ratings give, per score, Kendall's tau-b and
    Spearman's rho over the images rated and scored, with percentile bootstrap intervals that
    resample identities, and the method-pair accuracy (method means of the score against method
    means of the ratings over the same images). Pair ratings give the preference accuracy (with a
    bootstrap over pairs) and the method-pair accuracy against people's win rates per method.

    Args:
        report: the report (:meth:`Report.load`).
        ratings: from :func:`read_ratings`.
        n_boot, confidence, seed: bootstrap settings.

    Returns:
        :class:`Agreement`.

    Raises:
        InputError: the ratings name images the report does not hold (listing the first few, with
            the closest report files), name an image the report holds twice, or invalid settings.
    """
    settings = {"n_boot": check_positive_int("n_boot", n_boot), "confidence": check_confidence(confidence),
                "seed": check_seed(seed)}
    if not report.encoders:
        raise InputError("the report holds no results; score a run first (fp-rank evaluate)")
    by_encoder = _rows_by_name(report, ratings.key)
    _check_known(by_encoder, ratings)
    entry = _image_entry if ratings.layout == "image" else _pair_entry
    first = report.encoders[0]
    scores = []
    for key, encoder in [(k, e) for e in report.encoders for k in PER_ENCODER_SCORES] + [(k, None) for k in SHARED_SCORES]:
        rows, column = by_encoder[encoder or first], metric(key).column_for()
        if any(_finite(row, column) is not None for row in rows.values()):
            scores.append({"score": key, "label": metric(key).label_for(), "encoder": encoder,
                           **entry(rows, ratings, column, settings)})
    names = ratings.lines
    held = {id(row) for row in by_encoder[first].values() if row is not None}  # each image once, not its path tails
    rated = {id(by_encoder[first][name]) for name in names if by_encoder[first].get(name) is not None}
    counts = {"report_images": len(held), "rated_images": len(names), "rating_rows": ratings.n_rows,
              "unrated_report_images": len(held - rated),
              "raters": len(ratings.raters), "rated_pairs": len(ratings.pairs),
              "tied_pairs": sum(1 for votes in ratings.pairs.values() if votes[0] == votes[1])}
    method = ("percentile bootstrap resampling whole identities with replacement" if ratings.layout == "image"
              else "percentile bootstrap over the rated pairs")
    return Agreement(
        layout=ratings.layout, scores=scores, counts=counts, settings={**settings, "interval_method": method},
        report={key: report.metadata.get(key) for key in ("fp_rank_version", "protocol_version")},
        ratings={"path": ratings.source, "sha256": ratings.sha256, "layout": ratings.layout, "key": ratings.key,
                 "ignored_columns": list(ratings.ignored_columns)},
    )


__all__ = ["Agreement", "Ratings", "agreement", "read_ratings"]
