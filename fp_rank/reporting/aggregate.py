"""Aggregation: per-query rows -> one :class:`~fp_rank.MethodResult` per (encoder, method).

Pure: it reads only the report's own rows (``queries`` and ``ceilings``), so the evaluation's
summarise stage and a saved report (:meth:`fp_rank.Report.summarise`) aggregate the same way. The rules are the
protocol's: a group's value is the mean over its scored queries, a method's is the mean over
groups (macro); the ceiling of a group is its holdout split as queries where it has one, else its
reference split (the paper's real-image baseline is the reference split alone); the normalised
score is ``(mAP - chance) / (ceiling - chance)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from fp_rank.protocol import metric, query_metrics
from fp_rank.reporting.results import MethodResult

#: Which real split gives a group's ceiling: the first of these that the group has.
CEILING_SPLITS = ("holdout", "reference")


def summarise(
    queries: Sequence[Mapping[str, Any]],
    ceilings: Sequence[Mapping[str, Any]],
    *,
    encoders: Sequence[str],
    methods: Sequence[str],
    ks: Sequence[int],
    dropped: Mapping[tuple[str, str], Mapping[str, int]] | None = None,
) -> list[MethodResult]:
    """Aggregate per-query rows into method results.

    Args:
        queries: per-query rows (``encoder``, ``method``, ``identity``, ``group`` and the declared
            metric columns; None or NaN where a value is undefined).
        ceilings: real-image ceiling rows (``encoder``, ``split``, ``group``, ``map``).
        encoders: encoder names, in report order.
        methods: every method label (a method with no scored query still gets a result).
        ks: ranks of the per-k metrics.
        dropped: (encoder, method) -> counts of inputs left out before ranking (``n_missing``,
            ``n_skipped``, ``n_excluded``).

    Returns:
        One result per (encoder, method), encoders in the given order, methods sorted.

    Example:
        >>> rows = [{"encoder": "e", "method": "m", "identity": i, "group": g, "ap": ap, "pairwise": 0.5}
        ...         for i, g, ap in (("a", "x", 1.0), ("b", "x", 0.5), ("c", "y", 0.25))]
        >>> res = summarise(rows, [], encoders=["e"], methods=["m"], ks=(1,))[0]
        >>> res.map, res.map_micro, res.map_per_group
        (0.5, 0.5833333333333334, {'x': 0.75, 'y': 0.25})
    """
    out = []
    for enc in encoders:
        rows_e = [q for q in queries if q.get("encoder") == enc]
        ceiling_of = {
            (str(c["split"]), str(c["group"])): _float(c.get("map")) for c in ceilings if c.get("encoder") == enc
        }
        for method in sorted(set(methods)):
            rows = [q for q in rows_e if q.get("method") == method]
            counts = dict((dropped or {}).get((enc, method), {}))
            out.append(summarise_method(rows, ceiling_of, method=method, encoder=enc, ks=ks, counts=counts))
    return out


def summarise_method(
    rows: Sequence[Mapping[str, Any]],
    ceiling_of: Mapping[tuple[str, str], float],
    *,
    method: str,
    encoder: str,
    ks: Sequence[int],
    counts: Mapping[str, int],
) -> MethodResult:
    """One method's result under one encoder from its per-query rows (see :func:`summarise`)."""
    groups = np.asarray([str(r["group"]) for r in rows], dtype=object)
    idents = np.asarray([str(r["identity"]) for r in rows], dtype=object)
    prompts = np.asarray([str(r.get("prompt")) for r in rows], dtype=object)
    group_names = sorted(set(groups.tolist()))

    def column(name: str) -> np.ndarray:
        return np.asarray([_float(r.get(name)) for r in rows], dtype=np.float64)

    def by_group(values: np.ndarray, aggregation: str = "query_mean") -> dict[str, float]:
        return _group_means(values, aggregation, groups, group_names, idents, prompts)

    values: dict[str, Any] = {}
    per_group: dict[str, dict[str, float]] = {}
    for m in query_metrics():
        if m.per_k:  # only the ranks whose column the rows carry (a schema-1.0 report has cmc1 alone)
            values[m.result_field] = {
                int(k): _macro(by_group(column(m.column_for(k)))) for k in ks
                if any(m.column_for(k) in r for r in rows)
            }
            continue
        group_values = by_group(column(m.column_for()), m.aggregation)
        values[m.result_field] = _macro(group_values)
        if m.per_group_field:
            per_group[m.per_group_field] = group_values

    ap = column(metric("map").column_for())
    scored = np.isfinite(ap)
    scored_at = np.flatnonzero(scored)
    per_identity = {
        ident: _mean(ap[scored_at[pos]]) for ident, pos in sorted(indices_by_label(idents[scored_at]).items())
    }
    split_of = _reference_values(values, group_names, ceiling_of)
    used = sorted(set(split_of.values()))
    tied = np.asarray([bool(r.get("tied")) for r in rows], dtype=bool)
    return MethodResult(
        method=method,
        encoder=encoder,
        values=values,
        per_group=per_group,
        map_micro=_mean(ap[scored]),
        map_per_identity=per_identity,
        ceiling_split=used[0] if len(used) == 1 else ("mixed" if used else None),
        ceiling_split_per_group=split_of,
        pairwise_rule=_pairwise_rule(rows),
        n_queries=int(scored.sum()),
        n_tied=int((tied & scored).sum()),
        n_missing=int(counts.get("n_missing", 0)),
        n_skipped=int(counts.get("n_skipped", 0)),
        n_excluded=int(counts.get("n_excluded", 0)),
    )


def _group_means(values: np.ndarray, aggregation: str, groups: np.ndarray, group_names: list[str], idents: np.ndarray,
                 prompts: np.ndarray) -> dict[str, float]:
    """Per group, the mean of the finite ``values``: over queries (``query_mean``), or over
    identities of the mean over prompts of the mean over images (``identity_prompt_mean``)."""
    ok = np.isfinite(values)
    if aggregation == "query_mean":
        return {g: _mean(values[ok & (groups == g)]) for g in group_names}
    out = {}
    for g in group_names:
        in_g = np.flatnonzero(ok & (groups == g))
        per_identity = []
        for pos in indices_by_label(idents[in_g]).values():
            at = in_g[pos]
            per_identity.append(np.mean([_mean(values[at[p]]) for p in indices_by_label(prompts[at]).values()]))
        out[g] = float(np.mean(per_identity)) if per_identity else float("nan")
    return out


def _reference_values(values: dict[str, Any], group_names: list[str],
                      ceiling_of: Mapping[tuple[str, str], float]) -> dict[str, str]:
    """Add the values the real images give (ceiling, real-image baseline, normalised mAP) to
    ``values``; returns the split that gave each group's ceiling."""
    ceiling, split_of = _ceiling(group_names, ceiling_of)
    floor, headline = values[metric("floor").result_field], values[metric("map").result_field]
    values[metric("ceiling").result_field] = ceiling
    baseline = {g: ceiling_of.get(("reference", g), float("nan")) for g in group_names}
    values[metric("baseline").result_field] = (
        _macro(baseline) if group_names and all(np.isfinite(v) for v in baseline.values()) else None
    )
    values[metric("normalised").result_field] = (
        (headline - floor) / (ceiling - floor)
        if ceiling is not None and np.isfinite(ceiling) and ceiling - floor > 1e-12 else None
    )
    return split_of


def _ceiling(groups: list[str], ceiling_of: Mapping[tuple[str, str], float]) -> tuple[float | None, dict[str, str]]:
    """Macro ceiling over ``groups`` (None unless every group has one) and the split used per group."""
    split_of: dict[str, str] = {}
    vals: dict[str, float] = {}
    for g in groups:
        for split in CEILING_SPLITS:
            value = ceiling_of.get((split, g))
            if value is not None and np.isfinite(value):
                split_of[g], vals[g] = split, value
                break
    return (_macro(vals) if vals and len(vals) == len(groups) else None), split_of


def _pairwise_rule(rows: Sequence[Mapping[str, Any]]) -> str | None:
    """Which pairwise rule the method's rows used: one of PAIRWISE_RULES, ``"mixed"``, or None."""
    used = sorted({str(r["pairwise_rule"]) for r in rows if r.get("pairwise_rule")})
    return used[0] if len(used) == 1 else ("mixed" if used else None)


def _float(value: Any) -> float:
    return float("nan") if value is None else float(value)


def _mean(values: np.ndarray) -> float:
    return float(np.mean(values)) if values.size else float("nan")


def _macro(values: Mapping[str, float]) -> float:
    finite = [v for v in values.values() if v is not None and np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def indices_by_label(labels: np.ndarray) -> dict[Any, np.ndarray]:
    """label -> ascending positions holding it, in one sort (linear in the number of labels).

    Example:
        >>> {k: v.tolist() for k, v in indices_by_label(np.array(["b", "a", "b"], dtype=object)).items()}
        {'a': [1], 'b': [0, 2]}
    """
    labels = np.asarray(labels, dtype=object)
    if not len(labels):
        return {}
    order = np.argsort(labels, kind="stable")
    ordered = labels[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    return {ordered[a]: order[a:b] for a, b in zip(starts, np.r_[starts[1:], len(labels)])}
