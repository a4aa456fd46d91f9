"""One run scored against several gallery variants of the same identities (the paper's ablation).

:func:`ablate` scores a run against each gallery (each encoded once) with the same encoder and
options, and reports per method: mAP under each variant with its interval, the shift from the
first variant (a paired comparison over the identities, interval and p-value), and whether the
method ranking changes: Kendall's tau-b between the method means under the first variant and
under each other one, with a percentile bootstrap interval that resamples identities (the same
identities for both variants in each replicate). Variants whose identities differ are refused
before any encoding.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from fp_rank.analysis.statistics import add_intervals, compare
from fp_rank.errors import InputError, printable
from fp_rank.reporting.report import Report
from fp_rank.stats.rank_agreement import kendall_tau_b

#: Fields in which the variants' reports may differ when shifts are computed.
VARIANT_FIELDS = ("gallery_fingerprint", "gallery_revision")


@dataclass
class Ablation:
    """The run under every gallery variant (``variants``: names; ``reports``: one report each)."""

    variants: list[str]
    reports: list[Report]
    methods: list[str]
    encoder: str
    table: list[dict[str, Any]]
    rankings: list[dict[str, Any]]
    settings: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return _safe({"variants": self.variants, "encoder": self.encoder, "methods": self.methods, "table": self.table,
                      "rankings": self.rankings, "settings": self.settings,
                      "galleries": [r.metadata.get("gallery") for r in self.reports]})

    def to_markdown(self) -> str:
        head = ["method", *(f"mAP ({v})" for v in self.variants),
                *(f"shift {v} - {self.variants[0]}" for v in self.variants[1:])]
        lines = ["| " + " | ".join(_md(h) for h in head) + " |", "|:--|" + "--:|" * (len(head) - 1)]
        for row in self.table:
            cells = [_md(row["method"])]
            cells += [_ci(cell["map"], cell["low"], cell["high"]) for cell in row["variants"]]
            cells += [_ci(s["difference"], s["low"], s["high"]) + f" (p {_p(s['p_value'])})" for s in row["shifts"]]
            lines.append("| " + " | ".join(cells) + " |")
        lines += ["", f"Table: mAP of each method under each gallery variant ({_md(self.encoder)}), 95% intervals; "
                  "shifts paired over identities (Student t interval, sign-flip p-value)."]
        lines += ["", *(f"- {_ranking_sentence(r)}" for r in self.rankings)]
        return "\n".join(lines) + "\n"

    def summary(self) -> str:
        width = max(12, *(len(v) for v in self.variants)) + 2
        head = f"{'method':<18}" + "".join(f"{v[:width - 2]:>{width}}" for v in self.variants)
        head += "".join(f"{'shift ' + v[:width - 8]:>{width + 8}}" for v in self.variants[1:])
        lines = [head, "-" * len(head)]
        for row in self.table:
            line = f"{printable(row['method'])[:18]:<18}" + "".join(f"{_num(c['map']):>{width}}" for c in row["variants"])
            line += "".join(f"{_num(s['difference'], signed=True) + ' (p ' + _p(s['p_value']) + ')':>{width + 8}}"
                            for s in row["shifts"])
            lines.append(line)
        return "\n".join(lines + [_ranking_sentence(r) for r in self.rankings])


def ablate(run: Any, galleries: Sequence[Any], *, names: Sequence[str] | None = None, n_boot: int = 2000,
           seed: int = 0, **options: Any) -> Ablation:
    """Score ``run`` against every gallery of ``galleries`` (folders, Hub ids or loaded galleries).

    Args:
        run: a :class:`~fp_rank.runs.Run` (e.g. from :func:`fp_rank.read_run`).
        galleries: two or more gallery variants of the same identities.
        names: a name per variant (default: each gallery's folder or id).
        n_boot, seed: replicates and seed of the ranking interval.
        options: :func:`fp_rank.evaluate` options (one encoder), the same for every variant.

    Raises:
        InputError: fewer than two variants, several encoders, or variants whose identities differ.
    """
    from fp_rank.evaluation import evaluate
    from fp_rank.evaluation.load import gallery_of
    from fp_rank.options import resolve_options

    if len(galleries) < 2:
        raise InputError("an ablation needs two or more gallery variants")
    opts = resolve_options(options)
    if opts.encoder is not None and len(opts.encoder) > 1:
        raise InputError("an ablation scores one encoder; run it once per encoder")
    if names is not None and len(names) != len(galleries):
        raise InputError(f"names gives {len(names)} name(s) for {len(galleries)} galleries; give one per gallery")
    loaded = [gallery_of(g, opts) for g in galleries]  # every variant loaded and checked before any encoding
    names = list(names) if names is not None else [str(g.id).rstrip("/").rsplit("/", 1)[-1] for g in loaded]
    if len(set(names)) != len(names):
        names = [f"{n} ({k + 1})" for k, n in enumerate(names)]
    _check_same_identities(loaded, names)
    reports = [add_intervals(evaluate(run, gallery=g, **options)) for g in loaded]
    encoder = reports[0].encoders[0]
    methods = sorted({r.method for r in reports[0].results}, key=lambda m: (-_value(reports[0], m), m))  # best first
    table = []
    for method in methods:
        cells = []
        for report in reports:
            result = report[method] if len(report.encoders) == 1 else report.result(method, encoder)
            ci = result.intervals.get("map") or {}
            cells.append({"map": result.map, "low": ci.get("low"), "high": ci.get("high")})
        shifts = []
        for report in reports[1:]:
            paired = compare(report, method, method, other=reports[0], allow_mismatch=VARIANT_FIELDS, seed=seed)
            shifts.append({"difference": paired.difference, "low": paired.ci.low, "high": paired.ci.high,
                           "p_value": paired.p_value, "n_identities": paired.n_shared_identities})
        table.append({"method": method, "variants": cells, "shifts": shifts})
    rankings = [_ranking(reports[0], report, names[0], name, methods, n_boot=n_boot, seed=seed)
                for name, report in zip(names[1:], reports[1:])]
    return Ablation(names, reports, methods, encoder, table, rankings, {"n_boot": n_boot, "seed": seed})


def _check_same_identities(loaded: list[Any], names: list[str]) -> None:
    first = {(str(g), str(i)) for g, i in zip(loaded[0].gallery.groups, loaded[0].gallery.identities)}
    for name, gal in zip(names[1:], loaded[1:]):
        other = {(str(g), str(i)) for g, i in zip(gal.gallery.groups, gal.gallery.identities)}
        if other != first:
            only_first, only_other = sorted(first - other), sorted(other - first)
            raise InputError(
                f"gallery variants {names[0]!r} and {name!r} do not hold the same identities (only in {names[0]!r}: "
                f"{[i for _, i in only_first[:5]]}; only in {name!r}: {[i for _, i in only_other[:5]]}); an ablation "
                "compares galleries of the same identities and groups, built from one source"
            )


def _identity_aps(method_rows: dict[str, list[dict[str, Any]]]) -> dict[str, dict[tuple[str, str], list[float]]]:
    """Per method, each (group, identity)'s query APs."""
    out: dict[str, dict[tuple[str, str], list[float]]] = {}
    for method, rows in method_rows.items():
        for row in rows:
            if row.get("ap") is not None and math.isfinite(row["ap"]):
                out.setdefault(method, {}).setdefault((str(row["group"]), str(row["identity"])), []).append(float(row["ap"]))
    return out


def _macro(per_identity: dict[tuple[str, str], list[float]], draw: list[tuple[str, str]]) -> float:
    """The protocol's mAP of the drawn identities: per group the mean over their queries, then the mean over
    groups (on every identity once, the report's headline mAP)."""
    groups: dict[str, list[float]] = {}
    for key in draw:
        if key in per_identity:
            groups.setdefault(key[0], []).extend(per_identity[key])
    return float(np.mean([np.mean(v) for v in groups.values()])) if groups else float("nan")


def _ranking(first: Report, other: Report, name_a: str, name_b: str, methods: list[str], *, n_boot: int,
             seed: int) -> dict[str, Any]:
    """Kendall's tau-b between the method means under two variants, with an identity bootstrap interval."""
    per = [_identity_aps({m: [q for q in r.queries if q.get("method") == m and q.get("encoder") == r.encoders[0]]
                          for m in methods}) for r in (first, other)]
    identities = sorted({k for maps in per for m in maps.values() for k in m})
    tau = kendall_tau_b([_macro(per[0].get(m, {}), identities) for m in methods],
                        [_macro(per[1].get(m, {}), identities) for m in methods])
    rng = np.random.default_rng(seed)
    replicates = []
    for _ in range(n_boot):
        draw = [identities[j] for j in rng.integers(0, len(identities), len(identities))]
        a, b = [_macro(per[0].get(m, {}), draw) for m in methods], [_macro(per[1].get(m, {}), draw) for m in methods]
        if not all(math.isfinite(v) for v in a + b):  # a method with no drawn identity: the replicate has no ranking
            continue
        value = kendall_tau_b(a, b)
        if math.isfinite(value):
            replicates.append(value)
    low, high = (float(np.percentile(replicates, 2.5)), float(np.percentile(replicates, 97.5))) if replicates else (None, None)
    order = {name: sorted(methods, key=lambda m, p=p: (-_macro(p.get(m, {}), identities), m))
             for name, p in ((name_a, per[0]), (name_b, per[1]))}
    return {"a": name_a, "b": name_b, "kendall_tau": tau, "low": low, "high": high, "n_boot": n_boot, "seed": seed,
            "order": order, "changed": order[name_a] != order[name_b], "n_methods": len(methods)}


def _value(report: Report, method: str) -> float:
    value = report[method].map if len(report.encoders) == 1 else report.result(method, report.encoders[0]).map
    return value if math.isfinite(value) else -math.inf


def _ranking_sentence(r: dict[str, Any]) -> str:
    order = "; ".join(f"{name}: {' > '.join(map(printable, o))}" for name, o in r["order"].items())
    interval = f" [{r['low']:+.2f}, {r['high']:+.2f}]" if r.get("low") is not None else ""
    verdict = "the method ranking changes" if r["changed"] else "the method ranking is the same"
    return (f"{r['a']} vs {r['b']}: {verdict} ({order}); Kendall tau {_num(r['kendall_tau'], signed=True)}{interval} "
            f"(95% identity bootstrap, {r['n_boot']} replicates, {r['n_methods']} methods)")


def _num(value: Any, *, signed: bool = False) -> str:
    if value is None or not math.isfinite(float(value)):
        return "-"
    return f"{float(value):+.3f}" if signed else f"{float(value):.3f}"


def _ci(value: Any, low: Any, high: Any) -> str:
    return _num(value) + (f" [{_num(low)}, {_num(high)}]" if low is not None and high is not None else "")


def _p(p: Any) -> str:
    return "-" if p is None else ("< 1e-4" if p < 1e-4 else f"{p:.3g}")


def _md(text: Any) -> str:
    return printable(str(text)).replace("|", "\\|")


def _safe(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_safe(v) for v in value]
    return value
