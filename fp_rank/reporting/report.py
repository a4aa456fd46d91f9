"""The evaluation report: per-query rows, per-method summaries, provenance, and their file forms."""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from fp_rank.errors import InputError
from fp_rank.file_access import write_atomic
from fp_rank.protocol import DEFAULT_KS, METRICS, query_columns
from fp_rank.reporting.results import MethodResult, _clean, metric_value

__all__ = ["MethodResult", "Report", "metric_value", "query_csv_columns", "report_schema", "validate_report"]

#: Version of the JSON report layout (``schemas/report.schema.json`` describes it). 1.1 added the
#: per-k columns (``cmc5``, ``recall10`` ...), ``recall`` and the ``method`` of dropped inputs.
REPORT_SCHEMA_VERSION = "1.1"
#: Report layouts this version reads.
READABLE_SCHEMA_VERSIONS = ("1.0", "1.1")

#: Per-query CSV columns that say which query a row is (before the metric columns).
CONTEXT_COLUMNS = ("encoder", "method", "identity", "group", "prompt", "seed", "file")
#: Per-query CSV columns after the metric columns: ranking diagnostics and the leakage flag.
DETAIL_COLUMNS = (
    "first_hit_rank", "top1_identity", "top1_score", "n_relevant", "n_gallery", "tied",
    "leak_split", "leak_index", "leak_distance", "judge_score", "judge_reference", "judge_missing",
)


def query_csv_columns(ks: Sequence[int] = DEFAULT_KS) -> list[str]:
    """Columns of the per-query CSV, in order: context, declared metrics at ``ks``, details."""
    return [*CONTEXT_COLUMNS, *query_columns(ks), *DETAIL_COLUMNS]


#: Columns of the per-query CSV at the default ranks.
QUERY_COLUMNS = tuple(query_csv_columns())

@dataclass
class Report:
    """The result of :func:`fp_rank.evaluate`: per-query rows, method results, provenance.

    With a single method and encoder the headline fields read directly (``report.map``,
    ``report.cmc[1]``, ...). With several, pick one: ``report["method"]`` or
    ``report.result("method", "encoder")``.

    A report is data and its file forms (:meth:`to_json` / :meth:`load`, :meth:`to_csv`).
    Statistics, tables, figures and Hub entries take a report: ``fp_rank.add_statistics(report)``,
    ``fp_rank.compare(report, "a", "b")``, ``fp_rank.to_markdown(report)``,
    ``fp_rank.plot(report, folder)``. The 0.1 methods of those names still work until 0.3, with a
    deprecation warning (:mod:`fp_rank._compat`).
    """

    results: list[MethodResult]
    queries: list[dict[str, Any]]
    metadata: dict[str, Any]
    ceilings: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)

    # -- access -------------------------------------------------------------------------
    @property
    def methods(self) -> list[str]:
        return sorted({r.method for r in self.results})

    @property
    def encoders(self) -> list[str]:
        return list(dict.fromkeys(r.encoder for r in self.results))

    def result(self, method: str | None = None, encoder: str | None = None) -> MethodResult:
        """The :class:`MethodResult` of one method under one encoder."""
        found = [
            r for r in self.results if (method is None or r.method == method) and (encoder is None or r.encoder == encoder)
        ]
        if len(found) == 1:
            return found[0]
        if not found:
            raise InputError(
                f"no result for method={method!r}, encoder={encoder!r}; methods: {self.methods}, encoders: {self.encoders}"
            )
        raise InputError(
            f"the report holds several results (methods {self.methods}, encoders {self.encoders}); name one, "
            "e.g. report['method'] or report.result('method', 'encoder')"
        )

    def __getitem__(self, method: str) -> MethodResult:
        return self.result(method, self.encoders[0] if len(self.encoders) == 1 else None)

    @property
    def single(self) -> MethodResult:
        return self.result()

    def __getattr__(self, name: str) -> Any:
        # only reached for names that are not fields: the single result's metrics (report.map, report.cmc ...)
        if name in _FORWARDED:
            return getattr(self.single, name)
        raise AttributeError(f"Report has no attribute {name!r}")

    @property
    def ks(self) -> list[int]:
        """The ranks of the per-k metrics (CMC@k, Recall@k) in this report."""
        ks = (self.__dict__.get("metadata") or {}).get("options", {}).get("cmc_ks")
        if ks:
            return sorted(int(k) for k in ks)
        found = {int(k) for r in self.results for k in r.values.get("cmc", {})}
        return sorted(found) or list(DEFAULT_KS)

    def summarise(self) -> Report:
        """Re-aggregate the results from the per-query rows (no re-encoding); returns self.

        Counts of inputs dropped before ranking (missing, skipped, excluded) are kept; intervals
        are cleared (recompute them with :meth:`add_intervals`). A per-k value whose per-query
        column the rows lack (CMC@5 of a schema-1.0 report, which stored only ``cmc1``) keeps its
        stored value.
        """
        from fp_rank.reporting.aggregate import summarise  # NumPy, loaded when aggregating

        before = {(r.encoder, r.method): r for r in self.results}
        dropped = {
            key: {"n_missing": r.n_missing, "n_skipped": r.n_skipped, "n_excluded": r.n_excluded}
            for key, r in before.items()
        }
        self.results = summarise(
            self.queries, self.ceilings, encoders=self.encoders, methods=self.methods, ks=self.ks, dropped=dropped
        )
        for new in self.results:
            old = before.get((new.encoder, new.method))
            for m in (m for m in METRICS if m.per_k and old is not None):
                stored = old.values.get(m.result_field) or {}
                new.values[m.result_field] = {**stored, **new.values.get(m.result_field, {})}
        return self

    # -- serialisation ------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Everything, as JSON-serialisable plain data (the report file's content)."""
        return _clean(
            {
                "schema_version": REPORT_SCHEMA_VERSION,
                "metadata": self.metadata,
                "results": [r.to_dict() for r in self.results],
                "ceilings": self.ceilings,
                "queries": self.queries,
                "skipped": self.skipped,
                "extras": self.extras,
            }
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Report:
        _check_shape(data)
        version = data.get("schema_version", "1.0")
        if version not in READABLE_SCHEMA_VERSIONS:
            raise InputError(
                f"report schema {version!r} is not readable by fp-rank {_package_version()} (reads "
                f"{', '.join(READABLE_SCHEMA_VERSIONS)}); upgrade fp-rank"
            )
        return cls(
            results=[MethodResult.from_dict(r) for r in data["results"]],
            queries=list(data.get("queries", [])),
            metadata=dict(data["metadata"]),
            ceilings=list(data.get("ceilings", [])),
            skipped=list(data.get("skipped", [])),
            extras=dict(data.get("extras", {})),
        )

    def to_json(self, path: str | os.PathLike[str] | None = None, *, indent: int = 2) -> str:
        """The report as JSON text; also written to ``path`` (atomically) when given."""
        text = json.dumps(self.to_dict(), indent=indent, sort_keys=False, allow_nan=False)
        if path is not None:
            write_atomic(path, text)  # by rename: a link at ``path`` is replaced, never written through
        return text

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, check: bool = True) -> Report:
        """Read a report written by :meth:`to_json`, refusing one that cannot be trusted.

        With ``check`` (the default) the file must follow the report schema and every aggregate
        must follow from the report's own per-query rows (:func:`fp_rank.reporting.validity.check_report`):
        an edited headline, an mAP of 7.5 or ``true`` where a number belongs is refused naming
        the field. Only regular files are read (a FIFO or device is refused).
        """
        from fp_rank.file_access import read_regular_text

        shown = os.fspath(path)
        text = read_regular_text(path, "report file")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"report file {shown!r} is not valid JSON: {exc}") from None
        except RecursionError:
            raise InputError(f"report file {shown!r} nests deeper than any report; it is not an fp-rank report") from None
        _check_shape(data, shown)
        if check:
            from fp_rank.reporting.validity import check_structure

            version = data.get("schema_version", "1.0")
            if version in READABLE_SCHEMA_VERSIONS:
                validate_report(data, source=shown)
            check_structure(data, shown)
        report = cls.from_dict(data)
        if check:
            from fp_rank.reporting.validity import check_report

            check_report(report, shown)
        return report

    def to_csv(self, path: str | os.PathLike[str] | None = None) -> str:
        """Per-query rows in long format (one row per query and encoder)."""
        buf = io.StringIO()
        columns = query_csv_columns(self.ks)
        writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for row in self.queries:
            leak = row.get("leak") or {}
            flat = {**row, "leak_split": leak.get("split"), "leak_index": leak.get("index"), "leak_distance": leak.get("distance")}
            writer.writerow({k: _csv_value(flat.get(k)) for k in columns})
        text = buf.getvalue()
        if path is not None:
            write_atomic(path, text)  # by rename: a link at ``path`` is replaced, never written through
        return text

    def leak_counts(self) -> dict[str, dict[str, int]]:
        """Per method, the generated images the leakage guard flagged as copies of real images.

        Returns:
            ``{method: {"flagged": n, "scored": n, "excluded": n}}`` for every method: ``flagged``
            copies in all, ``scored`` of them still in the scores, ``excluded`` left out by
            ``leaks="exclude"``. Zeros when the guard found nothing or was off.

        Example:
            >>> Report([MethodResult("m", "e", {"map": 1.0}, n_queries=1)],
            ...        [{"method": "m", "encoder": "e", "leak": {"split": "gallery", "index": 0}}], {}).leak_counts()
            {'m': {'flagged': 1, 'scored': 1, 'excluded': 0}}
        """
        first = self.encoders[0] if self.encoders else None
        counts = {m: {"flagged": 0, "scored": 0, "excluded": 0} for m in self.methods}
        for r in self.results:
            if r.encoder == first:
                counts[r.method]["excluded"] = int(r.n_excluded or 0)
        for row in self.queries:
            if row.get("leak") and row.get("encoder", first) == first and row.get("method") in counts:
                counts[row["method"]]["scored"] += 1
        for c in counts.values():
            c["flagged"] = c["scored"] + c["excluded"]
        return counts

    def __repr__(self) -> str:
        scores = ", ".join(
            f"{r.method}{'' if len(self.encoders) == 1 else '/' + r.encoder} "
            + ("-" if r.values.get("map") is None else f"{r.values['map']:.3f}")
            for r in self.results[:6]
        ) + (", ..." if len(self.results) > 6 else "")
        return (
            f"Report(methods={self.methods}, encoders={self.encoders}, queries={len(self.queries)}; mAP: {scores})"
        )


#: Report attributes forwarded to its single result.
_FORWARDED = frozenset(
    [m.result_field for m in METRICS] + [m.per_group_field for m in METRICS if m.per_group_field]
    + ["map_micro", "map_per_identity"]
)


def _package_version() -> str:
    from fp_rank.version import __version__

    return __version__


def _csv_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return ""
    return "" if value is None else value


def _check_shape(data: Any, source: str | None = None) -> None:
    """Refuse anything but an object with ``metadata`` and ``results`` (named by ``source`` when given)."""
    if not isinstance(data, dict) or "results" not in data or "metadata" not in data:
        where = f"{source}: " if source else ""
        raise InputError(f"{where}not an fp-rank report: expected an object with 'metadata' and 'results'")


def report_schema() -> dict[str, Any]:
    """The JSON Schema of report files (``fp_rank/schemas/report.schema.json``)."""
    from importlib import resources

    text = resources.files("fp_rank").joinpath("schemas/report.schema.json").read_text(encoding="utf-8")
    return json.loads(text)


def validate_report(data: dict[str, Any] | Report, *, source: str = "report") -> None:
    """Raise :class:`InputError` unless ``data`` (a report or its dict) follows the report schema.

    ``source`` (a file name) starts the message.
    """
    import jsonschema

    payload = data.to_dict() if isinstance(data, Report) else data
    try:
        jsonschema.validate(payload, report_schema())
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "<root>"
        raise InputError(
            f"{source} does not follow report schema {REPORT_SCHEMA_VERSION} at {where}: {_short(exc.message)}"
        ) from None


def _short(message: str, limit: int = 200) -> str:
    """A schema message, cut to ``limit`` characters (jsonschema quotes whole objects)."""
    return message if len(message) <= limit else message[: limit - 3] + "..."
