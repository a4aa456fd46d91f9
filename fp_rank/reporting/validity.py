"""Whether a saved report can be trusted: it follows the schema and its numbers follow from its rows.

A report file is plain JSON anyone can edit. :func:`check_report` runs on every report fp-rank
reads (:meth:`fp_rank.Report.load`): the schema check (types and ranges: an mAP of 7.5 or
``true`` is refused), then every aggregate is recomputed from the report's own per-query and
ceiling rows and compared with the stored value, so a headline edited to 0.99 while the rows
say 0.54 is refused naming the field. Intervals must hold their estimate.
"""

from __future__ import annotations

import copy
import logging
import math
from typing import Any

from fp_rank.errors import InputError, control_characters
from fp_rank.protocol import METRICS

logger = logging.getLogger(__name__)

#: Stored and recomputed aggregates agree to this (JSON keeps floats exactly; this absorbs
#: summation order only).
TOLERANCE = 1e-9

#: What a person can do about a refused report.
_WHAT_TO_DO = "the file was edited or damaged; score the run again with fp-rank evaluate"


#: Deepest nesting a report's results or metadata reach (intervals per group: about 5).
MAX_DEPTH = 32


def check_structure(data: dict[str, Any], source: str) -> None:
    """Checks on the parsed JSON before it becomes a report: nesting, ranks, encoder names, labels.

    Raises:
        InputError: nesting deeper than :data:`MAX_DEPTH` in results or metadata, ``cmc_ks``
            that are not positive integers, two encoders of one name, or a label (method,
            encoder, identity, group) holding a control character.
    """
    for key in ("results", "metadata", "extras"):
        if _depth(data.get(key)) > MAX_DEPTH:
            raise InputError(f"{source}: {key} nests deeper than {MAX_DEPTH} levels, which no report does; {_WHAT_TO_DO}")
    metadata = data.get("metadata") if isinstance(data.get("metadata"), dict) else {}
    options = metadata.get("options") if isinstance(metadata.get("options"), dict) else {}
    ks = options.get("cmc_ks")
    if ks is not None and not (
        isinstance(ks, list) and ks and all(isinstance(k, int) and not isinstance(k, bool) and k >= 1 for k in ks)
    ):
        raise InputError(f"{source}: metadata.options.cmc_ks must list positive integers; got {ks!r:.80}; {_WHAT_TO_DO}")
    names = [e.get("name") for e in metadata.get("encoders") or [] if isinstance(e, dict)]
    twice = sorted({str(n) for n in names if names.count(n) > 1})
    if twice:
        raise InputError(f"{source}: metadata.encoders describes encoder(s) {twice} twice; {_WHAT_TO_DO}")
    for part, keys in (("results", ("method", "encoder")), ("queries", ("method", "encoder", "identity", "group"))):
        rows = [row for row in data.get(part) or [] if isinstance(row, dict)]
        for key in keys:
            for label in {row.get(key) for row in rows if isinstance(row.get(key), str)}:  # each distinct label once
                if control_characters(label):
                    raise InputError(
                        f"{source}: {part} hold the {key} {label!r}, with control character(s) "
                        f"{', '.join(control_characters(label))}; {_WHAT_TO_DO}"
                    )


def _depth(value: Any) -> int:
    """Nesting depth of plain JSON data, measured without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level)
        if deepest > MAX_DEPTH:
            return deepest
        stack.extend((child, level + 1) for child in children)
    return deepest


def check_report(report: Any, source: str) -> None:
    """Raise :class:`InputError` naming ``source`` and the field unless the aggregates follow from the rows.

    Checked per (encoder, method) result: every declared metric, the per-group values, the
    micro mean, the per-identity means, the query and tie counts, and that each stored interval
    holds its estimate and the estimate is the result's value. A result that claims scored
    queries while the report holds none of its rows is refused.
    """
    rows_of: dict[tuple[str, str], int] = {}
    for row in report.queries:
        key = (str(row.get("encoder")), str(row.get("method")))
        rows_of[key] = rows_of.get(key, 0) + 1
    known = {(r.encoder, r.method) for r in report.results}
    for (encoder, method), count in rows_of.items():
        if (encoder, method) not in known:
            raise InputError(
                f"{source}: {count} per-query rows belong to method {method!r} under encoder {encoder!r}, which "
                f"has no result in the report; {_WHAT_TO_DO}"
            )
    for index, result in enumerate(report.results):
        if result.n_queries and not rows_of.get((result.encoder, result.method)):
            raise InputError(
                f"{source}: results[{index}] ({result.method!r}, {result.encoder!r}) counts {result.n_queries} "
                f"scored queries but the report holds none of its per-query rows; {_WHAT_TO_DO}"
            )
    _check_counts(report, source)
    if not report.queries:
        return
    for position, row in enumerate(report.queries):
        ap = row.get("ap")
        if ap is None or (isinstance(ap, float) and math.isnan(ap)):
            raise InputError(
                f"{source}: queries[{position}] ({row.get('file')!r}) has no AP, but every per-query row of a report is a "
                f"scored query; {_WHAT_TO_DO}"
            )
    fresh = copy.copy(report)  # the same rows; results of its own, recomputed from them
    fresh.results = copy.deepcopy(report.results)
    # every rank a result stores whose per-query column the rows carry is recomputed, listed or not
    columns = set().union(*(row.keys() for row in report.queries))
    stored = {int(k) for r in report.results for m in METRICS if m.per_k for k in (r.values.get(m.result_field) or {})}
    ks = sorted(set(report.ks) | {k for k in stored if any(m.column_for(k) in columns for m in METRICS if m.per_k)})
    fresh.metadata = {**report.metadata, "options": {**(report.metadata.get("options") or {}), "cmc_ks": ks}}
    fresh.summarise()
    recomputed = {(r.encoder, r.method): r for r in fresh.results}
    for index, result in enumerate(report.results):
        again = recomputed.get((result.encoder, result.method))
        if again is None:  # pragma: no cover - summarise keeps every (encoder, method)
            continue
        where = f"{source}: results[{index}] ({result.method!r}, {result.encoder!r})"
        for name, stored, computed in _fields(result, again):
            if not _same(stored, computed):
                raise InputError(
                    f"{where}: {name} is {_shown(stored)} but the report's own rows give {_shown(computed)}; {_WHAT_TO_DO}"
                )
        _check_intervals(result.intervals, result.values, where)


def _check_counts(report: Any, source: str) -> None:
    """Counts of dropped inputs are at most the number of generated images the run had."""
    total = (report.metadata or {}).get("n_generated")
    if not isinstance(total, int) or isinstance(total, bool):
        return
    for index, result in enumerate(report.results):
        for name in ("n_queries", "n_missing", "n_skipped", "n_excluded"):
            value = getattr(result, name)
            if not isinstance(value, int) or not 0 <= value <= total:
                raise InputError(
                    f"{source}: results[{index}] ({result.method!r}) {name} is {value!r}, outside 0..{total} (the run's "
                    f"generated images); {_WHAT_TO_DO}"
                )


def _fields(stored: Any, computed: Any) -> list[tuple[str, Any, Any]]:
    """(field name, stored value, recomputed value) for every aggregate a report stores."""
    out: list[tuple[str, Any, Any]] = []
    for m in METRICS:
        a, b = stored.values.get(m.result_field), computed.values.get(m.result_field)
        if m.per_k:
            for k in sorted(set(a or {}) | set(b or {})):
                out.append((f"{m.result_field}[{k}]", (a or {}).get(k), (b or {}).get(k)))
        else:
            out.append((m.result_field, a, b))
        if m.per_group_field:
            pa, pb = stored.per_group.get(m.per_group_field) or {}, computed.per_group.get(m.per_group_field) or {}
            out.extend((f"{m.per_group_field}[{g!r}]", pa.get(g), pb.get(g)) for g in sorted(set(pa) | set(pb)))
    out.append(("map_micro", stored.map_micro, computed.map_micro))
    ia, ib = stored.map_per_identity or {}, computed.map_per_identity or {}
    out.extend((f"map_per_identity[{i!r}]", ia.get(i), ib.get(i)) for i in sorted(set(ia) | set(ib)))
    out.append(("n_queries", stored.n_queries, computed.n_queries))
    out.append(("n_tied", stored.n_tied, computed.n_tied))
    return out


def _drop_zero_width(intervals: dict[str, Any], where: str) -> None:
    """Remove intervals of zero width (a certainty no finite sample gives), saying so.

    fp-rank 0.1 wrote them where a zero-one metric sat at the end of its range; the report's
    numbers are unaffected, so the report is read without them (``fp_rank.add_intervals``
    recomputes them).
    """
    def zero(ci: Any) -> bool:
        return isinstance(ci, dict) and all(isinstance(ci.get(k), (int, float)) for k in ("low", "high")) and (
            ci["high"] - ci["low"] <= 0.0)

    dropped = [name for name, ci in intervals.items() if name != "per_group" and zero(ci)]
    for name in dropped:
        del intervals[name]
    for group_intervals in (intervals.get("per_group") or {}).values():
        if isinstance(group_intervals, dict):
            for name in [n for n, ci in group_intervals.items() if zero(ci)]:
                del group_intervals[name]
                dropped.append(name)
    if dropped:
        logger.warning("%s: left out %d interval(s) of zero width (%s), which claim a certainty no finite sample "
                       "gives; fp_rank.add_intervals(report) recomputes them", where, len(dropped),
                       ", ".join(sorted(set(dropped))))


def _check_intervals(intervals: dict[str, Any], values: dict[str, Any], where: str) -> None:
    _drop_zero_width(intervals, where)
    for name, ci in (intervals or {}).items():
        if name == "per_group" or not isinstance(ci, dict):
            continue
        low, estimate, high = ci.get("low"), ci.get("estimate"), ci.get("high")
        if None in (low, estimate, high):
            continue
        bounds = _range_for(name)
        confidence = ci.get("confidence")
        if confidence is not None and not (isinstance(confidence, (int, float)) and 0.0 < confidence < 1.0):
            raise InputError(f"{where}: the interval of {name} has confidence {confidence!r}, not in (0, 1); {_WHAT_TO_DO}")
        if bounds is not None and not (bounds[0] <= low and high <= bounds[1]):
            raise InputError(
                f"{where}: the interval of {name} ({_shown(low)}, {_shown(high)}) leaves the metric's range "
                f"{bounds}; {_WHAT_TO_DO}"
            )
        if not low - TOLERANCE <= estimate <= high + TOLERANCE:
            raise InputError(
                f"{where}: the interval of {name} ({_shown(low)}, {_shown(high)}) does not hold its estimate "
                f"{_shown(estimate)}; {_WHAT_TO_DO}"
            )
        value = _value_for(name, values)
        if value is not None and not _same(value, estimate):
            raise InputError(
                f"{where}: the interval of {name} is around {_shown(estimate)} but the result's value is "
                f"{_shown(value)}; {_WHAT_TO_DO}"
            )


def _interval_metric(name: str) -> tuple[Any, int | None] | None:
    """The declared metric an interval key (``map``, ``cmc1``, ``recall10``, ``pairwise``) belongs to, and its rank."""
    for m in METRICS:
        if not m.interval:
            continue
        if m.per_k:
            stem = m.summary_key([1]).rstrip("0123456789")
            rest = name[len(stem):]
            if name.startswith(stem) and (not rest or rest.isdigit()):
                return m, int(rest) if rest.isascii() and rest else None  # no rank: its range is still checked
        elif name == m.summary_key([1]):
            return m, None
    return None


def _range_for(name: str) -> tuple[float, float] | None:
    """The declared range of the metric an interval key estimates (None when unbounded or unknown)."""
    found = _interval_metric(name)
    if found is None or found[0].lower is None or found[0].upper is None:
        return None
    return float(found[0].lower) - TOLERANCE, float(found[0].upper) + TOLERANCE


def _value_for(name: str, values: dict[str, Any]) -> float | None:
    """The result value an interval key estimates (None for an unknown key or a per-k key without its rank)."""
    found = _interval_metric(name)
    if found is None:
        return None
    m, k = found
    if m.per_k:
        return None if k is None else (values.get(m.result_field) or {}).get(k)
    return values.get(m.result_field)


def _same(a: Any, b: Any) -> bool:
    missing_a = a is None or (isinstance(a, float) and math.isnan(a))
    missing_b = b is None or (isinstance(b, float) and math.isnan(b))
    if missing_a or missing_b:
        return missing_a and missing_b
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    try:
        return abs(float(a) - float(b)) <= TOLERANCE * max(1.0, abs(float(b)))
    except (TypeError, ValueError):
        return a == b


def _shown(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "missing"
    return f"{value:.6g}" if isinstance(value, float) else repr(value)
