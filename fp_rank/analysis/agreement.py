"""Do a report's scores agree with people? Ratings read from a CSV file, set against each score.

:func:`read_ratings` reads and checks a ratings file (one rating per image, or a preference per
pair of images); :func:`agreement` resolves its names to the report's images
(:mod:`fp_rank.analysis.rating_names`) and sets every score of the report (mAP and pairwise per
encoder; CLIP-T and the judge once) against those ratings. The maths is in
:mod:`fp_rank.stats.rank_agreement` and :mod:`fp_rank.stats.pair_accuracy`.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from fp_rank.analysis.rating_names import MatchedRatings, match_ratings, people_verdict, report_images
from fp_rank.analysis.ratings import Ratings, read_ratings
from fp_rank.errors import InputError, printable
from fp_rank.protocol import metric
from fp_rank.reporting.report import Report
from fp_rank.stats._validation import check_non_negative_int, check_probability
from fp_rank.stats.pair_accuracy import pairwise_accuracy, preference_accuracy
from fp_rank.stats.rank_agreement import MIN_CLUSTERS, check_n_boot, rank_correlation_interval

#: Scores set against ratings: per encoder, then encoder-independent (read from the first encoder's rows).
PER_ENCODER_SCORES = ("map", "pairwise")
SHARED_SCORES = ("clip_t", "judge")
_MISSING = "-"


def check_settings(n_boot: Any, confidence: Any, seed: Any, *,
                   names: tuple[str, str, str] = ("n_boot", "confidence", "seed")) -> dict[str, Any]:
    """The bootstrap settings of :func:`agreement`, checked; messages name them as ``names`` (CLI flags).

    Raises:
        InputError: ``n_boot`` is not an integer from 100 to 1,000,000, ``confidence`` not strictly
            between 0 and 1, or ``seed`` not an integer >= 0.

    Example:
        >>> check_settings(2000, 0.95, 0)
        {'n_boot': 2000, 'confidence': 0.95, 'seed': 0}
    """
    return {"n_boot": check_n_boot(n_boot, names[0]), "confidence": check_probability(names[1], confidence),
            "seed": check_non_negative_int(names[2], seed)}


def _finite(row: dict[str, Any] | None, column: str) -> float | None:
    value = None if row is None else row.get(column)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _means(methods: list[str], values: list[float]) -> dict[str, Fraction]:
    """Per method, the exact mean of its values (compared exactly by :func:`pairwise_accuracy`)."""
    sums: dict[str, list[Any]] = {}
    for method, value in zip(methods, values):
        total = sums.setdefault(method, [Fraction(0), 0])
        total[0] += Fraction(value)
        total[1] += 1
    return {method: total / count for method, (total, count) in sums.items()}


def _identity(row: dict[str, Any]) -> str:
    return f"{row['group']}\x00{row['identity']}"


def _correlation(x: list[float], y: list[float], clusters: list[str], statistic: str, settings: dict[str, Any],
                 none_note: str) -> dict[str, Any]:
    if not x:
        return {"statistic": statistic, "estimate": None, "low": None, "high": None, "n": 0, "n_clusters": 0,
                "note": none_note}
    return rank_correlation_interval(x, y, clusters, statistic, **settings).to_dict()  # type: ignore[arg-type]


def _image_entry(rows: dict[Any, Any], matched: MatchedRatings, column: str, label: str,
                 settings: dict[str, Any]) -> dict[str, Any]:
    used = [(key, score) for key in matched.images if (score := _finite(rows.get(key), column)) is not None]
    x = [score for _, score in used]
    y = [matched.images[key][0] for key, _ in used]
    clusters = [_identity(rows[key]) for key, _ in used]
    methods = [rows[key]["method"] for key, _ in used]
    none = f"none of the {len(matched.images)} rated images has a {label} value"
    return {
        "n_images": len(used), "n_identities": len(set(clusters)),
        "n_rated_without_score": len(matched.images) - len(used),
        "kendall": _correlation(x, y, clusters, "kendall", settings, none),
        "spearman": _correlation(x, y, clusters, "spearman", settings, none),
        "method_pairs": pairwise_accuracy(_means(methods, x), _means(methods, y)),
    }


def _win_rates(rows: dict[Any, Any], used: list[tuple[Any, Any, float, float]], matched: MatchedRatings) -> dict[str, Fraction]:
    """Per method, people's share of votes won against other methods' images (a tie vote a half)."""
    halves: dict[str, list[int]] = {}
    for (first, second), _, _, _ in used:
        votes_a, votes_b, ties = matched.pairs[first, second]
        method_a, method_b = rows[first]["method"], rows[second]["method"]
        if method_a != method_b:
            for method, won in ((method_a, votes_a), (method_b, votes_b)):
                tally = halves.setdefault(method, [0, 0])
                tally[0] += 2 * won + ties
                tally[1] += 2 * (votes_a + votes_b + ties)
    return {method: Fraction(won, total) for method, (won, total) in halves.items() if total}


def _pair_entry(rows: dict[Any, Any], matched: MatchedRatings, column: str, label: str,
                settings: dict[str, Any]) -> dict[str, Any]:
    used = [(pair, verdict, a, b) for pair, votes in matched.pairs.items() if (verdict := people_verdict(votes))
            and (a := _finite(rows.get(pair[0]), column)) is not None and (b := _finite(rows.get(pair[1]), column)) is not None]
    if used:
        preference = preference_accuracy([u[2] for u in used], [u[3] for u in used], [u[1] for u in used],
                                         [_identity(rows[u[0][0]]) for u in used], **settings)
    else:
        preference = {"accuracy": None, "low": None, "high": None, "n_pairs": 0, "n_human_ties": 0,
                      "note": f"none of the {len(matched.pairs)} rated pairs has a {label} value for both images"}
    images = {key: score for pair, _, a, b in used for key, score in zip(pair, (a, b))}
    methods = [rows[key]["method"] for key in images]
    win_rates = _win_rates(rows, used, matched)
    return {
        "n_pairs": len(used), "n_images": len(images), "n_pairs_without_score": len(matched.pairs) - len(used),
        "n_identities": len({_identity(rows[key]) for key in images}),
        "preference": preference,
        "method_pairs": {**pairwise_accuracy(_means(methods, list(images.values())), win_rates),
                         "win_rates": {method: float(rate) for method, rate in win_rates.items()}},
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
    if isinstance(value, (float, np.floating, Fraction)):
        return float(value) if math.isfinite(value) else None
    return value.item() if isinstance(value, np.generic) else value


def _score_notes(entry: dict[str, Any]) -> list[str]:
    """One score's notes: what was left out, and why an interval is missing."""
    notes = []
    if entry.get("n_rated_without_score") and entry["n_images"]:
        notes.append(f"{entry['n_rated_without_score']} rated image(s) have no {entry['label']} value: left out")
    if entry.get("n_pairs_without_score") and entry["n_pairs"]:
        notes.append(f"{entry['n_pairs_without_score']} rated pair(s) have an image with no {entry['label']} value: "
                     "left out")
    notes += [entry[k]["note"] for k in ("kendall", "spearman", "preference") if entry.get(k, {}).get("note")]
    return list(dict.fromkeys(notes))


@dataclass(frozen=True)
class Agreement:
    """How each score of a report agrees with people's ratings (from :func:`agreement`).

    Attributes:
        layout: the ratings' layout, ``"image"`` or ``"pair"``.
        scores: one dict per score: ``score`` (metric key), ``label``, ``encoder`` (None for
            scores that do not depend on it), ``n_images``, ``n_identities`` and, per image,
            ``n_rated_without_score``, ``kendall``, ``spearman`` (each with its interval and a
            ``note`` saying why there is none) or, per pair, ``n_pairs``, ``n_pairs_without_score``
            and ``preference``; always ``method_pairs`` (the method-pair accuracy).
        counts: images of the report, images rated, report images without a rating, rating rows,
            raters, ratings with no rater named, rated and tied pairs.
        settings: ``n_boot``, ``confidence``, ``seed``, ``min_identities`` and the interval method in words.
        report: the report's fp-rank and protocol versions.
        ratings: the ratings file, its sha256, layout, key, whether it has a rater column, and ignored columns.
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
        if not self.ratings["has_rater_column"]:
            rated = f"{c['rated_images']} rated images from {c['rating_rows']} ratings (no rater column)"
        else:
            blank = f", {c['ratings_without_rater']} with a blank rater cell" if c["ratings_without_rater"] else ""
            rated = f"{c['rated_images']} rated images ({c['rating_rows']} ratings by {c['raters']} rater(s){blank})"
        notes = [(f"{rated}; "
                  f"{c['unrated_report_images']} of the report's {c['report_images']} images have no rating and are not used"),
                 f"{100 * s['confidence']:g}% intervals: {s['interval_method']}, {s['n_boot']} replicates, seed {s['seed']}; "
                 f"none with fewer than {s['min_identities']} identities"]
        if self.layout == "pair":
            notes.append(f"people tied {c['tied_pairs']} of {c['rated_pairs']} rated pairs (a draw at the top of the "
                         "a / b / tie votes is a tie): left out of the preference accuracy")
        if self.ratings["ignored_columns"]:
            notes.append(f"columns not read: {', '.join(self.ratings['ignored_columns'])}")
        return notes + [f"{e['label']}{'' if e['encoder'] is None else ' / ' + e['encoder']}: {note}" for e in self.scores
                        for note in _score_notes(e)]

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


def _counts(report_n: int, ratings: Ratings, matched: MatchedRatings) -> dict[str, int]:
    return {"report_images": report_n, "rated_images": len(matched.images_rated), "rating_rows": ratings.n_rows,
            "unrated_report_images": report_n - len(matched.images_rated), "raters": len(ratings.raters),
            "ratings_without_rater": ratings.n_unnamed if ratings.has_rater_column else 0,
            "rated_pairs": len(matched.pairs),
            "tied_pairs": sum(1 for votes in matched.pairs.values() if people_verdict(votes) == "tie")}


def agreement(report: Report, ratings: Ratings, *, n_boot: int = 2000, confidence: float = 0.95, seed: int = 0) -> Agreement:
    """Set each score of ``report`` against people's ``ratings``.

    Every name of the ratings is resolved to a report image (by its ``index``) first; duplicates,
    self-pairs and votes are checked on those (:func:`~fp_rank.analysis.rating_names.match_ratings`).
    Scores: mAP and pairwise per encoder; CLIP-T and the judge once (from the first encoder's
    rows), where the report holds them. Per image ratings (averaged exactly) give, per score,
    Kendall's tau-b and Spearman's rho over the images rated and scored, with percentile bootstrap
    intervals that resample identities, and the method-pair accuracy (exact method means of the
    score against those of the ratings, over the same images). Pair ratings give the preference
    accuracy against people's verdict per pair (the plurality of a / b / tie; a draw is a tie),
    with a bootstrap over identities, and the method-pair accuracy against people's win rates per
    method. No interval with fewer than :data:`~fp_rank.stats.rank_agreement.MIN_CLUSTERS`
    identities, or of zero width: the estimate alone, with a note.

    Args:
        report: the report (:meth:`Report.load`).
        ratings: from :func:`read_ratings`.
        n_boot, confidence, seed: bootstrap settings (:func:`check_settings`).

    Returns:
        :class:`Agreement`.

    Raises:
        InputError: the ratings name images the report does not hold (listing the first few, with
            the closest report files), name an image the report holds twice, rate one image (or
            pair) twice by one rater under two names, pair an image with itself, or invalid settings.
    """
    settings = check_settings(n_boot, confidence, seed)
    if not report.encoders:
        raise InputError("the report holds no results; score a run first (fp-rank evaluate)")
    images = report_images(report, ratings.key)
    matched = match_ratings(images, ratings)
    entry = _image_entry if ratings.layout == "image" else _pair_entry
    first = report.encoders[0]
    scores = []
    for key, encoder in [(k, e) for e in report.encoders for k in PER_ENCODER_SCORES] + [(k, None) for k in SHARED_SCORES]:
        rows, column, label = images.rows.get(encoder or first, {}), metric(key).column_for(), metric(key).label_for()
        if any(_finite(row, column) is not None for row in rows.values()):
            scores.append({"score": key, "label": label, "encoder": encoder, **entry(rows, matched, column, label, settings)})
    method = ("percentile bootstrap resampling whole identities with replacement" if ratings.layout == "image" else
              "percentile bootstrap resampling whole identities (a pair's is its first image's) with replacement")
    return Agreement(
        layout=ratings.layout, scores=scores, counts=_counts(len(images.files), ratings, matched),
        settings={**settings, "min_identities": MIN_CLUSTERS, "interval_method": method},
        report={key: report.metadata.get(key) for key in ("fp_rank_version", "protocol_version")},
        ratings={"path": ratings.source, "sha256": ratings.sha256, "layout": ratings.layout, "key": ratings.key,
                 "has_rater_column": ratings.has_rater_column, "ignored_columns": list(ratings.ignored_columns)},
    )


__all__ = ["Agreement", "Ratings", "agreement", "check_settings", "read_ratings"]
