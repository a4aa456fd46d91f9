"""The result of planning a comparison (:func:`fp_rank.stats.planning.plan_comparison`): what a
paired comparison of two methods can detect and what it would need, as data and as text."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from fp_rank.stats.variance import VarianceComponents


@dataclass(frozen=True)
class Plan:
    """What a paired comparison of two methods can detect, and what it would need.

    Attributes:
        methods: the two methods (one, when the pilot held one method and the second is assumed
            to behave like it).
        encoder: the encoder whose scores were used (set by :meth:`fp_rank.Report.plan`).
        alpha: two-sided level of the test (the interval has confidence ``1 - alpha``).
        power: the power asked for.
        delta: the difference in mAP asked about (None when not given).
        queries_per_identity: images per identity and method in the pilot (mean over groups).
        standard_error: predicted standard error of the mAP difference at the pilot's size.
        df: its Satterthwaite degrees of freedom (None when the variance is zero).
        minimum_detectable_difference: the smallest difference detected with ``power`` at the
            pilot's size.
        power_at_delta: predicted power for ``delta`` at the pilot's size.
        required_queries_per_identity: images per identity and method for ``power`` at
            ``delta`` (None when no number of images reaches it, or without ``delta``).
        max_power: the power for ``delta`` with unlimited images per identity (the ceiling set
            by identity-to-identity variation).
        components: per group, the variance components of the difference A - B.
        method_components: per method and group, the components of that method's AP.
        assumptions: how the components were obtained.
        warnings: what limits the plan (few identities, no repeated images, ...).
    """

    methods: tuple[str, ...]
    alpha: float
    power: float
    delta: float | None
    queries_per_identity: float
    standard_error: float
    df: float | None
    minimum_detectable_difference: float
    power_at_delta: float | None
    required_queries_per_identity: int | None
    max_power: float | None
    components: dict[str, VarianceComponents]
    method_components: dict[str, dict[str, VarianceComponents]]
    assumptions: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    encoder: str | None = None
    test: str = field(
        default="two-sided paired Student-t interval of the mAP difference excludes zero "
        "(identity-clustered standard error, Satterthwaite df)"
    )

    def to_dict(self) -> dict[str, Any]:
        """The plan as JSON-serialisable plain data.

        Example:
            >>> from fp_rank.stats.planning import plan_from_components
            >>> c = {"g": VarianceComponents("g", 10, 10.0, 0.0, 0.2)}
            >>> plan = plan_from_components(c, delta=0.1)
            >>> sorted(plan.to_dict())[:3]
            ['alpha', 'assumptions', 'components']
        """
        out = asdict(self)
        for key in ("methods", "assumptions", "warnings"):
            out[key] = list(out[key])
        return out

    def summary(self) -> str:
        """The plan as a few lines of text (what ``fp-rank plan`` prints).

        Example:
            >>> from fp_rank.stats.planning import plan_from_components
            >>> c = {"g": VarianceComponents("g", 10, 10.0, 0.0, 0.2)}
            >>> print(plan_from_components(c, delta=0.1).summary())  # doctest: +ELLIPSIS
            Plan for A - B...
        """
        names = (
            " - ".join(self.methods)
            if len(self.methods) == 2
            else f"{self.methods[0]} against a method like it"
        )
        on = f" (encoder {self.encoder})" if self.encoder else ""
        identities = [c.n_identities for c in self.components.values()]
        lines = [
            f"Plan for {names}{on}: {self.test}; alpha {self.alpha:g}, power {self.power:g}.",
            f"pilot: {len(identities)} group(s), {min(identities)}-{max(identities)} identities "
            f"per group, {self.queries_per_identity:.1f} images per identity and method.",
            f"standard error of the mAP difference at the pilot's size: {self.standard_error:.4f}"
            + ("" if self.df is None else f" (df {self.df:.1f})"),
            f"minimum detectable difference at the pilot's size: "
            f"{self.minimum_detectable_difference:.4f}",
        ]
        if self.delta is not None:
            lines.append(
                f"difference {self.delta:g}: power {self.power_at_delta:.3f} at the pilot's size"
            )
            if self.required_queries_per_identity is not None:
                lines.append(
                    f"difference {self.delta:g} with power {self.power:g} needs "
                    f"{self.required_queries_per_identity} images per identity and method"
                )
            else:
                lines.append(
                    f"difference {self.delta:g} with power {self.power:g}: not reachable with more "
                    f"images per identity (with unlimited images the power is "
                    f"{self.max_power:.3f}: identity-to-identity variation dominates); it needs "
                    "more identities"
                )
        lines.append("per group (difference): identities, images/identity, identity variance, "
                     "query variance")
        lines += [
            f"  {c.group}: {c.n_identities}, {c.queries_per_identity:.1f}, "
            f"{c.identity_variance:.3g}, {c.query_variance:.3g}"
            for c in self.components.values()
        ]
        lines += [f"assumption: {a}" for a in self.assumptions]
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)
