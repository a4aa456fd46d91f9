"""The evaluation report: per-query rows, per-method summaries, provenance, and their file forms."""

from __future__ import annotations

import csv
import io
import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fp_rank.errors import InputError

#: Version of the JSON report layout (``schemas/report.schema.json`` describes it).
REPORT_SCHEMA_VERSION = "1.0"

#: Columns of the per-query CSV, in order.
QUERY_COLUMNS = (
    "encoder",
    "method",
    "identity",
    "group",
    "prompt",
    "seed",
    "file",
    "ap",
    "first_hit_rank",
    "top1_identity",
    "top1_score",
    "pairwise",
    "chance_ap",
    "cmc1",
    "inp",
    "n_relevant",
    "n_gallery",
    "tied",
    "leak_split",
    "leak_index",
    "leak_distance",
)


@dataclass
class MethodResult:
    """Scores of one method under one encoder.

    Attributes:
        method: the method's label.
        encoder: the encoder's name.
        map: headline mAP, the mean over groups of each group's mean AP (macro).
        map_micro: mean AP over all queries.
        map_per_group: group -> mean AP of its queries.
        map_per_identity: identity -> mean AP of its queries.
        cmc: k -> CMC@k (macro over groups).
        minp: mINP (macro over groups).
        chance_map: the exact chance floor (macro over groups).
        pairwise_similarity: DreamBench-style baseline: mean cosine of a generated image to its
            identity's reference images (macro over groups).
        pairwise_per_group: group -> pairwise baseline.
        ceiling_map: real-image ceiling over the same groups (per group, the holdout split as
            queries, or the reference split where that group has no holdout), None if unavailable.
        ceiling_split: which split gave ``ceiling_map`` (``"mixed"`` when groups differ; see
            ``ceiling_split_per_group``).
        normalised: ``(map - chance_map) / (ceiling_map - chance_map)``, None without a ceiling.
        n_queries, n_tied, n_missing, n_skipped: counts (tied: queries whose AP is an expectation
            over tied orderings; missing: identities without gallery images under
            ``on_missing="skip"``; skipped: unreadable images under ``on_invalid="skip"``).
        intervals: name -> confidence interval dict (filled by the statistics layer).
        n_excluded: queries left out as copies of real images (``exclude_leaks=True``).
        ceiling_split_per_group: group -> split whose images gave that group's ceiling.
    """

    method: str
    encoder: str
    map: float
    map_micro: float
    map_per_group: dict[str, float]
    map_per_identity: dict[str, float]
    cmc: dict[int, float]
    minp: float
    chance_map: float
    pairwise_similarity: float
    pairwise_per_group: dict[str, float]
    ceiling_map: float | None
    ceiling_split: str | None
    normalised: float | None
    n_queries: int
    n_tied: int
    n_missing: int
    n_skipped: int
    intervals: dict[str, Any] = field(default_factory=dict)
    n_excluded: int = 0
    ceiling_split_per_group: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["cmc"] = {str(k): v for k, v in self.cmc.items()}
        return _clean(out)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MethodResult:
        data = dict(data)
        data["cmc"] = {int(k): v for k, v in data.get("cmc", {}).items()}
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


def _clean(obj: Any) -> Any:
    """JSON-safe copy: NaN/inf become None, numpy scalars become Python numbers."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):
        try:
            obj = obj.item()
        except (ValueError, AttributeError):
            pass
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


@dataclass
class Report:
    """The result of :func:`fp_rank.evaluate`.

    With a single method and encoder the headline fields read directly (``report.map``,
    ``report.cmc[1]``, ...). With several, pick one: ``report["method"]`` or
    ``report.result("method", "encoder")``.
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

    @property
    def map(self) -> float:
        """Headline mAP (macro over groups) of the only method."""
        return self.single.map

    @property
    def map_micro(self) -> float:
        return self.single.map_micro

    @property
    def map_per_group(self) -> dict[str, float]:
        return self.single.map_per_group

    @property
    def map_per_identity(self) -> dict[str, float]:
        return self.single.map_per_identity

    @property
    def cmc(self) -> dict[int, float]:
        return self.single.cmc

    @property
    def minp(self) -> float:
        return self.single.minp

    @property
    def chance_map(self) -> float:
        return self.single.chance_map

    @property
    def pairwise_similarity(self) -> float:
        return self.single.pairwise_similarity

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
        if not isinstance(data, dict) or "results" not in data or "metadata" not in data:
            raise InputError("not an fp-rank report: expected an object with 'metadata' and 'results'")
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
            _atomic_write(Path(path), text)
        return text

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Report:
        """Read a report written by :meth:`to_json`."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError(f"report file {os.fspath(path)!r} does not exist") from None
        except json.JSONDecodeError as exc:
            raise InputError(f"report file {os.fspath(path)!r} is not valid JSON: {exc}") from None
        return cls.from_dict(data)

    def to_csv(self, path: str | os.PathLike[str] | None = None) -> str:
        """Per-query rows in long format (one row per query and encoder)."""
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(QUERY_COLUMNS), extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for row in self.queries:
            leak = row.get("leak") or {}
            flat = {**row, "leak_split": leak.get("split"), "leak_index": leak.get("index"), "leak_distance": leak.get("distance")}
            writer.writerow({k: _csv_value(flat.get(k)) for k in QUERY_COLUMNS})
        text = buf.getvalue()
        if path is not None:
            _atomic_write(Path(path), text)
        return text

    def summary_rows(self) -> list[dict[str, Any]]:
        """One flat row per (encoder, method), for tables."""
        rows = []
        for r in self.results:
            ci = r.intervals
            rows.append(
                {
                    "encoder": r.encoder,
                    "method": r.method,
                    "map": r.map,
                    "map_low": (ci.get("map") or {}).get("low"),
                    "map_high": (ci.get("map") or {}).get("high"),
                    "cmc1": r.cmc.get(1),
                    "cmc1_low": (ci.get("cmc1") or {}).get("low"),
                    "cmc1_high": (ci.get("cmc1") or {}).get("high"),
                    "pairwise": r.pairwise_similarity,
                    "pairwise_low": (ci.get("pairwise") or {}).get("low"),
                    "pairwise_high": (ci.get("pairwise") or {}).get("high"),
                    "floor": r.chance_map,
                    "ceiling": r.ceiling_map,
                    "normalised": r.normalised,
                    "n_queries": r.n_queries,
                }
            )
        return rows

    def format_table(self) -> str:
        """A plain-text table for terminals."""
        head = f"{'encoder':<16} {'method':<18} {'mAP':>7} {'CMC@1':>7} {'mINP':>7} {'pairwise':>9} {'chance':>7} {'ceiling':>8} {'queries':>8}"
        lines = [head, "-" * len(head)]
        for r in sorted(self.results, key=lambda x: (x.encoder, -x.map)):
            ceiling = "-" if r.ceiling_map is None else f"{r.ceiling_map:.3f}"
            lines.append(
                f"{r.encoder[:16]:<16} {r.method[:18]:<18} {r.map:7.3f} {r.cmc.get(1, float('nan')):7.3f} "
                f"{r.minp:7.3f} {r.pairwise_similarity:9.3f} {r.chance_map:7.3f} {ceiling:>8} {r.n_queries:8d}"
            )
        return "\n".join(lines)

    # -- statistics (see fp_rank.reporting.analysis) --------------------------------------
    def add_intervals(self, n_boot: int = 1000, confidence: float = 0.95, seed: int = 0) -> Report:
        """Attach hierarchical-bootstrap CIs to every result (seeded); returns self."""
        from fp_rank.reporting.analysis import add_intervals

        return add_intervals(self, n_boot=n_boot, confidence=confidence, seed=seed)

    def add_statistics(self, n_boot: int = 1000, confidence: float = 0.95, seed: int = 0) -> Report:
        """CIs, drift diagnostics and (with several encoders) Kendall's tau; returns self."""
        from fp_rank.reporting.analysis import add_statistics

        return add_statistics(self, n_boot=n_boot, confidence=confidence, seed=seed)

    def compare(self, method_a: str, method_b: str, **kwargs: Any) -> Any:
        """Paired comparison A - B on shared identities (see :func:`fp_rank.reporting.analysis.compare`)."""
        from fp_rank.reporting.analysis import compare

        return compare(self, method_a, method_b, **kwargs)

    def plan(self, delta: float | None = None, **kwargs: Any) -> Any:
        """Plan a comparison from this report as a pilot: power, images needed, detectable difference.

        See :func:`fp_rank.reporting.analysis.plan` (options ``power``, ``alpha``, ``methods``,
        ``encoder``, ``identity_correlation``); returns :class:`fp_rank.stats.Plan`.
        """
        from fp_rank.reporting.analysis import plan

        return plan(self, delta, **kwargs)

    def drift(self, k: int = 10) -> dict[str, Any]:
        """Confusion matrices (query identity -> top-1 identity) and worst queries."""
        from fp_rank.reporting.analysis import drift

        return drift(self, k=k)

    def to_markdown(self) -> str:
        """Markdown summary table(s), ready for a paper or a leaderboard."""
        from fp_rank.reporting.analysis import to_markdown

        return to_markdown(self)

    def plot(self, out_dir: str | os.PathLike[str]) -> list[Path]:
        """Write the PNG figures to ``out_dir``; returns their paths."""
        from fp_rank.reporting.analysis import plot

        return plot(self, out_dir)

    def __repr__(self) -> str:
        return f"Report(methods={self.methods}, encoders={self.encoders}, queries={len(self.queries)})"


def _csv_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return ""
    return "" if value is None else value


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def report_schema() -> dict[str, Any]:
    """The JSON Schema of report files (``fp_rank/schemas/report.schema.json``)."""
    from importlib import resources

    text = resources.files("fp_rank").joinpath("schemas/report.schema.json").read_text(encoding="utf-8")
    return json.loads(text)


def validate_report(data: dict[str, Any] | Report) -> None:
    """Raise :class:`InputError` unless ``data`` (a report or its dict) follows the report schema."""
    import jsonschema

    payload = data.to_dict() if isinstance(data, Report) else data
    try:
        jsonschema.validate(payload, report_schema())
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "<root>"
        raise InputError(f"report does not follow schema {REPORT_SCHEMA_VERSION} at {where}: {exc.message}") from None
