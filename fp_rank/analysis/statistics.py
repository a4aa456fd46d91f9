"""Statistics on a :class:`~fp_rank.Report`: intervals, paired comparison, planning, drift and encoder
agreement. Thin glue between a report's per-query rows and :mod:`fp_rank.stats`: each function
takes a report (a saved one too) and never changes its scores."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from fp_rank.errors import InputError
from fp_rank.protocol import interval_metrics
from fp_rank.reporting.comparability import check_allowed, comparability_key, require_comparable
from fp_rank.reporting.report import Report
from fp_rank.stats import (
    confusion_matrix,
    kendall_tau_matrix,
    macro_interval,
    macro_interval_by_group,
    paired_comparison,
    plan_comparison,
    worst_queries,
)
from fp_rank.stats.intervals import INTERVAL_DESCRIPTIONS

def _interval_columns(ks: list[int]) -> dict[str, tuple[str, tuple[float, float], bool]]:
    """Interval key (``map``, ``cmc1``, ``recall10``, ``pairwise``) -> (per-query column, value range, zero-one), as declared.

    The range is what the logit-t interval works on (the declaration's bounds, without the
    schema's float tolerance).
    """
    return {
        m.summary_key(ks): (
            m.column_for(m.shown_k(ks)) if m.per_k else m.column_for(),
            (float(round(m.lower)), float(round(m.upper))),
            m.zero_one,
        )
        for m in interval_metrics()
    }


def _rows(report: Report, method: str, encoder: str) -> list[dict[str, Any]]:
    return [
        q for q in report.queries
        if q.get("method") == method and q.get("encoder") == encoder and q.get("ap") is not None and np.isfinite(q["ap"])
    ]


def _column(rows: list[dict[str, Any]], key: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    keep = [r for r in rows if r.get(key) is not None and np.isfinite(r[key])]
    return (
        np.asarray([r[key] for r in keep], dtype=np.float64),
        np.asarray([r["identity"] for r in keep], dtype=object),
        np.asarray([r["group"] for r in keep], dtype=object),
    )


def add_intervals(
    report: Report, *, n_boot: int = 1000, confidence: float = 0.95, seed: int = 0, interval: str = "logit_t"
) -> Report:
    """Attach CIs of the declared interval metrics (mAP, CMC@1, Recall@k, pairwise; overall and per group).

    ``interval`` is one of :data:`fp_rank.stats.INTERVAL_METHODS` (default ``"logit_t"``, which
    keeps its coverage with few identities per group; ``"bootstrap"`` uses ``n_boot`` and
    ``seed``). ``report.metadata["statistics"]`` records the method and, under ``warnings``,
    the groups whose intervals rest on very few identities.
    """
    notes: dict[str, None] = {}
    for result in report.results:
        rows = _rows(report, result.method, result.encoder)
        intervals: dict[str, Any] = {"per_group": {}}
        for name, (column, bounds, zero_one) in _interval_columns(report.ks).items():
            values, idents, groups = _column(rows, column)
            if values.size == 0:
                continue
            options = {"interval": interval, "bounds": bounds, "n_boot": n_boot,
                       "confidence": confidence, "seed": seed, "zero_one": zero_one or None}
            ci = macro_interval(values, idents, groups, **options)
            intervals[name] = ci.to_dict()
            notes.update(dict.fromkeys(ci.warnings))
            for group, group_ci in macro_interval_by_group(values, idents, groups, **options).items():
                intervals["per_group"].setdefault(group, {})[name] = group_ci.to_dict()
        result.intervals = intervals
    report.metadata["statistics"] = {
        "interval_method": interval,
        "method": _interval_description(interval),
        "n_boot": n_boot if interval == "bootstrap" else 0,
        "confidence": confidence,
        "seed": seed,
        "warnings": list(notes),
    }
    return report


def _interval_description(interval: str) -> str:
    return INTERVAL_DESCRIPTIONS.get(interval, interval)


def compare(
    report: Report,
    method_a: str,
    method_b: str,
    *,
    encoder: str | None = None,
    other: Report | None = None,
    n_boot: int = 1000,
    n_permutations: int = 10000,
    confidence: float = 0.95,
    seed: int = 0,
    interval: str = "t",
    allow_mismatch: Sequence[str] | None = None,
) -> Any:
    """Paired comparison of two methods on the identities they share (A minus B).

    Args:
        report: the report holding method A (and B unless ``other`` is given).
        method_a: name of method A.
        method_b: name of method B.
        encoder: which encoder's scores (needed when the report holds several).
        other: a second report holding method B (e.g. another run's file).
        n_boot, n_permutations, confidence, seed: statistics settings.
        interval: ``"t"`` (paired Student t, default) or ``"bootstrap"``.
        allow_mismatch: comparability fields (:data:`fp_rank.reporting.comparability.KEY_FIELDS`)
            the two reports may differ on; the override is recorded in the result.

    Returns:
        :class:`fp_rank.stats.PairedComparison`.

    Raises:
        InputError: unknown method/encoder, no shared identities, or two reports whose
            comparability keys differ (gallery, encoder weights or preprocessing, protocol ...),
            naming the fields.
    """
    report_b = other or report
    enc = encoder or _single_encoder(report)
    enc_b = encoder or _single_encoder(report_b)
    checked = check_allowed(allow_mismatch)
    comparability = None
    if other is not None:
        comparability = require_comparable(
            [("the first report", comparability_key(report, enc)), ("the second report", comparability_key(other, enc_b))],
            checked,
        )
    a = _checked_rows(report, method_a, enc)
    b = _checked_rows(report_b, method_b, enc_b)
    va, ia, ga = _column(a, "ap")
    vb, ib, gb = _column(b, "ap")
    result = paired_comparison(
        va, ia, ga, vb, ib, gb, n_boot=n_boot, n_permutations=n_permutations, confidence=confidence, seed=seed,
        interval=interval,
    )
    return replace(result, comparability=comparability)


def plan(
    report: Report,
    delta: float | None = None,
    *,
    power: float = 0.8,
    alpha: float = 0.05,
    methods: tuple[str, ...] | list[str] | None = None,
    encoder: str | None = None,
    identity_correlation: float = 0.0,
) -> Any:
    """Plan a comparison of two methods from this report as a pilot (see :mod:`fp_rank.stats.planning`).

    Args:
        report: the pilot report.
        delta: the mAP difference to detect (None: only the minimum detectable difference).
        power: the power wanted.
        alpha: two-sided level of the paired test.
        methods: one or two method names; default: the report's methods under ``encoder`` when
            there are one or two.
        encoder: which encoder's scores (needed when the report holds several).
        identity_correlation: assumed correlation of the two methods' identity means when only
            one method is given.

    Returns:
        :class:`fp_rank.stats.Plan`, with ``encoder`` set.

    Raises:
        InputError: unknown method or encoder, more than two methods and none named, or invalid
            planning options.
    """
    enc = encoder or _single_encoder(report)
    names = list(methods) if methods is not None else [r.method for r in report.results if r.encoder == enc]
    if not 1 <= len(names) <= 2:
        raise InputError(f"name one or two methods to plan for (methods=...); the report holds {names}")
    columns = [_column(_checked_rows(report, name, enc), "ap") for name in names]
    flat = [array for column in columns for array in column]
    result = plan_comparison(
        *flat, delta=delta, power=power, alpha=alpha, identity_correlation=identity_correlation,
        methods=tuple(names) if len(names) == 2 else (names[0], "B"),
    )
    return replace(result, encoder=enc)


def _single_encoder(report: Report) -> str:
    encoders = report.encoders
    if len(encoders) != 1:
        raise InputError(f"the report holds encoders {encoders}; name one with encoder=")
    return encoders[0]


def _checked_rows(report: Report, method: str, encoder: str) -> list[dict[str, Any]]:
    rows = _rows(report, method, encoder)
    if not rows:
        raise InputError(
            f"no scored queries for method {method!r} with encoder {encoder!r}; methods: {report.methods}, "
            f"encoders: {report.encoders}"
        )
    return rows


def drift(report: Report, *, k: int = 10) -> dict[str, Any]:
    """Per (encoder, method, group): confusion matrix query identity -> top-1 identity, and worst queries."""
    out: dict[str, Any] = {}
    for result in report.results:
        rows = _rows(report, result.method, result.encoder)
        per_group: dict[str, Any] = {}
        for group in sorted({r["group"] for r in rows}):
            g_rows = [r for r in rows if r["group"] == group]
            matrix, labels = confusion_matrix([r["identity"] for r in g_rows], [r["top1_identity"] for r in g_rows])
            per_group[group] = {"labels": labels, "matrix": matrix.tolist()}
        worst = [
            {key: row.get(key) for key in ("file", "identity", "group", "ap", "top1_identity", "drifted_to", "prompt")}
            for row in worst_queries(rows, k=k)
        ]
        out.setdefault(result.encoder, {})[result.method] = {"confusion": per_group, "worst_queries": worst}
    return out


def encoder_agreement(report: Report) -> dict[str, Any] | None:
    """Method ranking per encoder and Kendall's tau between encoders (None with one encoder)."""
    if len(report.encoders) < 2:
        return None
    scores: dict[str, dict[str, float]] = {}
    for result in report.results:
        scores.setdefault(result.encoder, {})[result.method] = result.map
    return kendall_tau_matrix(scores)


def add_statistics(
    report: Report, *, n_boot: int = 1000, confidence: float = 0.95, seed: int = 0, interval: str = "logit_t"
) -> Report:
    """Intervals, drift diagnostics and encoder agreement, all attached to the report."""
    add_intervals(report, n_boot=n_boot, confidence=confidence, seed=seed, interval=interval)
    report.extras["drift"] = drift(report)
    agreement = encoder_agreement(report)
    if agreement is not None:
        report.extras["encoder_agreement"] = agreement
    return report
