"""Variance components of a pilot run, per group: what the planner (:mod:`fp_rank.stats.planning`) scales.

In group ``g`` the identity means vary with variance ``tau_g^2`` (the *identity variance*) and
single images' AP vary around their identity's mean with variance ``s_g^2`` (the *query
variance*); both are estimated by the method of moments (see :mod:`fp_rank.stats.planning` for
the model and how a difference of two methods combines them).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from fp_rank.errors import InputError
from fp_rank.stats.bootstrap import _build_groups, _GroupData, _validated
from fp_rank.stats.intervals import _influence
from fp_rank.stats.paired import shared_groups


@dataclass(frozen=True)
class VarianceComponents:
    """Variance components of one group (of one method's AP, or of a difference A - B).

    Attributes:
        group: the group's name.
        n_identities: identities in the group (shared ones, for a difference).
        queries_per_identity: mean number of images per identity (and method) in the pilot.
        identity_variance: variance of the true identity means from identity to identity
            (``sigma^2`` for one method, ``tau^2`` for a difference), method of moments, >= 0.
        query_variance: variance of one image's score around its identity's mean (``s^2``; for a
            difference, the sum over the two methods ``w^2 = s_a^2 + s_b^2``).
        pilot_variance: the pilot's observed variance of the identity means (or differences),
            ``S`` (``var(d_i)`` with equal counts); None for known components. It estimates
            ``identity_variance + query_variance / n`` at the pilot's size without the
            truncation at zero, which would bias the power low (see :meth:`mean_variance`).
    """

    group: str
    n_identities: int
    queries_per_identity: float
    identity_variance: float
    query_variance: float
    pilot_variance: float | None = None

    def mean_variance(self, queries_per_identity: float | None = None) -> float:
        """Variance of one identity's mean with ``queries_per_identity`` images (default: pilot's).

        ``identity_variance + q / n``. With known components ``q = query_variance``. From a
        pilot, ``q = (pilot_variance - identity_variance) * n_pilot``, which is
        ``query_variance`` unless the moment estimate of the identity variance was negative
        (then all of the observed spread counts as image noise): the variance at the pilot's
        size is the observed one, and it scales with ``1 / n`` from there.

        Example:
            >>> VarianceComponents("g", 5, 10.0, 0.02, 0.1).mean_variance()
            0.03
            >>> VarianceComponents("g", 5, 10.0, 0.0, 0.1, pilot_variance=0.005).mean_variance(20)
            0.0025
        """
        n = self.queries_per_identity if queries_per_identity is None else queries_per_identity
        if self.pilot_variance is None:
            return self.identity_variance + self.query_variance / n
        noise = (self.pilot_variance - self.identity_variance) * self.queries_per_identity
        return self.identity_variance + noise / n


def _pooled_query_variance(group: _GroupData, label: str, notes: list[str]) -> float:
    """Pooled within-identity variance of single values (0, with a note, when no identity has two)."""
    dof = int(np.sum(group.sizes - 1))
    if dof == 0:
        notes.append(
            f"{label}, group {group.name!r}: no identity has two or more images, so image noise "
            "cannot be told apart from identity variation; all of it counts as identity "
            "variance (more images per identity then look useless)"
        )
        return 0.0
    means = group.identity_sums() / group.sizes
    residuals = group.values - np.repeat(means, group.sizes)
    return float(residuals @ residuals) / dof


def _moments_split(
    terms: np.ndarray, noise: float, query_variance: float
) -> tuple[float, float, float | None]:
    """``(identity variance truncated at zero, query variance, observed spread)`` of a group.

    ``terms`` are the identities' linearised terms of the group mean (``d_i - mean(d)`` with
    equal counts; see :func:`fp_rank.stats.intervals.group_variance_parts`), so the observed
    spread ``sum(terms^2) / (m - 1)`` divided by ``m`` is exactly the interval's variance. It
    estimates the identity variance plus the image noise of an identity mean, ``noise``; the
    identity variance is their difference (method of moments).
    """
    if terms.size < 2:
        return 0.0, query_variance, None
    observed = float(terms @ terms) / (terms.size - 1)
    return max(0.0, observed - noise), query_variance, observed


def _components_of(groups: list[_GroupData], notes: list[str], label: str) -> dict[str, VarianceComponents]:
    out = {}
    for group in groups:
        s2 = _pooled_query_variance(group, label, notes)
        n = float(group.sizes.mean())
        out[group.name] = VarianceComponents(
            group.name, len(group.identities), n, *_moments_split(_influence(group), s2 / n, s2)
        )
    return out


def _few_identity_notes(components: Mapping[str, VarianceComponents], notes: list[str]) -> None:
    for c in components.values():
        if c.n_identities == 1:
            notes.append(
                f"group {c.group!r} has a single identity: its identity variance cannot be "
                "estimated and is taken as zero (the plan is conditional on that identity)"
            )
        elif c.n_identities < 5:
            notes.append(
                f"group {c.group!r} has only {c.n_identities} identities: its identity variance "
                "is estimated from very few values, so the plan for it is rough"
            )


def variance_components(values: Any, identities: Any, groups: Any) -> dict[str, VarianceComponents]:
    """Identity and query variance components of one method's per-query scores, per group.

    Args:
        values: one score per query (AP).
        identities: the identity of each query.
        groups: the group of each query.

    Returns:
        ``{group: VarianceComponents}`` in sorted group order.

    Raises:
        InputError: on empty, non-finite or mismatched inputs.

    Example:
        >>> c = variance_components([0.9, 0.7, 0.3, 0.1], ["a", "a", "b", "b"], ["g"] * 4)
        >>> round(c["g"].query_variance, 3), round(c["g"].identity_variance, 3)
        (0.02, 0.17)
    """
    v, i, g = _validated(values, identities, groups)
    return _components_of(_build_groups(v, i, g), [], "method")


def paired_variance_components(
    values_a: Any, identities_a: Any, groups_a: Any, values_b: Any, identities_b: Any, groups_b: Any
) -> dict[str, VarianceComponents]:
    """Variance components of the difference A - B, per group, on the shared identities.

    ``query_variance`` is ``s_a^2 + s_b^2``; ``identity_variance`` is the observed spread of the
    identity differences ``d_i`` (``var(d_i)`` with equal counts) minus their image noise
    ``s_a^2 / n_a + s_b^2 / n_b``, truncated at zero.

    Raises:
        InputError: as :func:`fp_rank.stats.paired_comparison` (invalid inputs, no shared
            identity, an identity in different groups).

    Example:
        >>> c = paired_variance_components(
        ...     [0.9, 0.7, 0.3, 0.1], ["a", "a", "b", "b"], ["g"] * 4,
        ...     [0.8, 0.6, 0.1, 0.1], ["a", "a", "b", "b"], ["g"] * 4,
        ... )
        >>> round(c["g"].query_variance, 3), round(c["g"].identity_variance, 3)
        (0.03, 0.0)
    """
    components, _, _ = _paired_components(
        _validated(values_a, identities_a, groups_a, "_a"),
        _validated(values_b, identities_b, groups_b, "_b"),
        [],
    )
    return components


def _paired_components(
    a: tuple[np.ndarray, np.ndarray, np.ndarray],
    b: tuple[np.ndarray, np.ndarray, np.ndarray],
    notes: list[str],
    labels: tuple[str, str] = ("A", "B"),
) -> tuple[dict[str, VarianceComponents], list[_GroupData], list[_GroupData]]:
    data_a, data_b, _, _ = shared_groups(a, b)
    out = {}
    for group_a, group_b in zip(data_a, data_b):
        s2 = [
            _pooled_query_variance(group, f"method {label}", notes)
            for label, group in zip(labels, (group_a, group_b))
        ]
        n_a, n_b = float(group_a.sizes.mean()), float(group_b.sizes.mean())
        out[group_a.name] = VarianceComponents(
            group_a.name, len(group_a.identities), (n_a + n_b) / 2.0,
            *_moments_split(
                _influence(group_a) - _influence(group_b), s2[0] / n_a + s2[1] / n_b, s2[0] + s2[1]
            ),
        )
    return out, data_a, data_b


# ---------------------------------------------------------------------------- prediction


def check_components(components: Any) -> None:
    if not isinstance(components, Mapping) or not components:
        raise InputError(
            "components must be a non-empty mapping group -> VarianceComponents; got "
            f"{type(components).__name__}"
        )
    for name, c in components.items():
        if not isinstance(c, VarianceComponents):
            raise InputError(f"components[{name!r}] must be a VarianceComponents; got {type(c).__name__}")
        if c.n_identities < 1 or c.queries_per_identity < 1:
            raise InputError(f"components[{name!r}] needs n_identities >= 1 and queries_per_identity >= 1")
        if c.identity_variance < 0 or c.query_variance < 0:
            raise InputError(f"components[{name!r}] has a negative variance")
