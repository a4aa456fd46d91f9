"""One method's scores under one encoder (:class:`MethodResult`), keyed by the metric declaration.

Every metric of :data:`fp_rank.protocol.METRICS` is stored once, under its ``result_field``, and
reads as an attribute; the JSON form puts each at the top level (report schema 1.x).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from fp_rank.protocol import DEFAULT_KS, METRICS, Metric

#: The MethodResult fields that are not declared metrics, in JSON order.
_RESULT_FIELDS = (
    "method", "encoder", "map_micro", "map_per_identity", "ceiling_split", "ceiling_split_per_group",
    "pairwise_rule", "n_queries", "n_tied", "n_missing", "n_skipped", "n_excluded", "intervals",
)


@dataclass
class MethodResult:
    """Scores of one method under one encoder.

    Every declared metric of :data:`fp_rank.protocol.METRICS` reads as an attribute named by its
    ``result_field`` (``result.map``, ``result.cmc[1]``, ``result.recall[10]``,
    ``result.pairwise_similarity``, ``result.chance_map``, ``result.ceiling_map``,
    ``result.normalised``), and so do the per-group values the protocol keeps
    (``result.map_per_group``, ``result.pairwise_per_group``).

    Attributes:
        method: the method's label.
        encoder: the encoder's name.
        values: result field -> value (a ``{k: value}`` dict for per-k metrics).
        per_group: per-group field -> group -> value.
        map_micro: mean AP over all queries.
        map_per_identity: identity -> mean AP of its queries.
        ceiling_split: which split gave the ceiling (``"mixed"`` when groups differ; see
            ``ceiling_split_per_group``).
        ceiling_split_per_group: group -> split whose images gave that group's ceiling.
        pairwise_rule: how the pairwise baseline was computed: ``"conditioning image"`` (cosine to
            the real image each generated image was conditioned on, as for zero-shot methods),
            ``"reference mean"`` (mean cosine to the identity's reference images, as for
            DreamBooth), or ``"mixed"``.
        n_queries, n_tied, n_missing, n_skipped, n_excluded: counts (tied: queries whose AP is
            an expectation over tied orderings; missing: identities without gallery images under
            ``on_missing="skip"``; skipped: unreadable images under ``on_invalid="skip"``;
            excluded: copies of real images left out under ``leaks="exclude"``).
        intervals: name -> confidence interval dict (filled by the statistics layer).
    """

    method: str
    encoder: str
    values: dict[str, Any]
    per_group: dict[str, dict[str, float]] = field(default_factory=dict)
    map_micro: float = float("nan")
    map_per_identity: dict[str, float] = field(default_factory=dict)
    ceiling_split: str | None = None
    ceiling_split_per_group: dict[str, str] = field(default_factory=dict)
    pairwise_rule: str | None = None
    n_queries: int = 0
    n_tied: int = 0
    n_missing: int = 0
    n_skipped: int = 0
    n_excluded: int = 0
    intervals: dict[str, Any] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        # only reached for names that are not dataclass fields: the declared metrics
        data = self.__dict__
        if "values" in data and name in data["values"]:
            return data["values"][name]
        if "per_group" in data and name in data["per_group"]:
            return data["per_group"][name]
        raise AttributeError(f"MethodResult has no attribute {name!r}")

    def __repr__(self) -> str:
        value = self.values.get("map")
        shown = "-" if value is None else f"{value:.3f}"
        return f"MethodResult(method={self.method!r}, encoder={self.encoder!r}, map={shown}, n_queries={self.n_queries})"

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: the declared metrics as top-level keys beside the other fields."""
        out: dict[str, Any] = {"method": self.method, "encoder": self.encoder}
        for m in METRICS:
            value = self.values.get(m.result_field)
            out[m.result_field] = {str(k): v for k, v in value.items()} if m.per_k and value is not None else value
            if m.per_group_field:
                out[m.per_group_field] = self.per_group.get(m.per_group_field, {})
        for name in _RESULT_FIELDS[2:]:
            out[name] = getattr(self, name)
        return _clean(out)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MethodResult:
        values: dict[str, Any] = {}
        per_group: dict[str, dict[str, float]] = {}
        for m in METRICS:
            value = data.get(m.result_field)
            if m.per_k:
                value = {int(k): _nan_if_none(v) for k, v in (value or {}).items()}
            elif m.kind == "query":
                value = _nan_if_none(value)
            values[m.result_field] = value
            if m.per_group_field:
                per_group[m.per_group_field] = {g: _nan_if_none(v) for g, v in (data.get(m.per_group_field) or {}).items()}
        known = {k: data[k] for k in _RESULT_FIELDS if k in data}
        if "map_micro" in known:
            known["map_micro"] = _nan_if_none(known["map_micro"])
        if "map_per_identity" in known:
            known["map_per_identity"] = {i: _nan_if_none(v) for i, v in known["map_per_identity"].items()}
        return cls(values=values, per_group=per_group, **known)


def _nan_if_none(value: Any) -> Any:
    return float("nan") if value is None else value


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


def metric_value(result: MethodResult, m: Metric, ks: Sequence[int] = DEFAULT_KS) -> float | None:
    """A result's value of metric ``m`` as tables show it (per-k metrics at the shown k; None if absent or NaN)."""
    value = result.values.get(m.result_field)
    if m.per_k:
        value = (value or {}).get(m.shown_k(ks))
    return None if value is None or not math.isfinite(float(value)) else float(value)
