"""Planning a comparison of two methods from a pilot run: power, images needed, detectable difference.

The model is the one the paired interval (:func:`fp_rank.stats.paired_comparison`) assumes. In
group ``g`` (``m_g`` identities, ``n`` generated images per identity and method), the difference
of identity ``i``'s mean APs under A and B is ``d_i = delta_g + e_i + noise``, where ``e_i`` varies
from identity to identity with variance ``tau_g^2`` (the *identity variance* of the difference)
and the noise comes from the images, with variance ``w_g^2 / n`` (``w_g^2 = s_a^2 + s_b^2``, the
*query variances* of single images' AP around their identity's mean). The macro difference then
has variance and Satterthwaite degrees of freedom

    V(n) = sum_g c_g,  c_g = (tau_g^2 + w_g^2 / n) / (G^2 m_g),  df = V^2 / sum_g c_g^2 / (m_g - 1),

and the interval excludes zero, two-sided at level ``alpha``, with probability (the power)
``P(|T| > t_{df, 1 - alpha/2})``, ``T`` noncentral t with ``df`` and noncentrality
``delta / sqrt(V)``. More images shrink only the query part: when identity variation dominates,
no number of images reaches the power, and more identities are needed.

The components are estimated from a pilot by the method of moments, per group: the pooled
within-identity variance of single images' AP (``s^2``), the observed spread ``S`` of the
identity differences (with equal counts ``var(d_i)``; in general the interval's own
identity-clustered variance times ``m``), and ``tau^2 = S - w^2 / n`` (truncated at zero). At the
pilot's size the predicted variance is the observed ``S / m`` itself, so the plan's standard
error equals the one :func:`~fp_rank.stats.paired_comparison` reports, and the truncation does not
bias the power low; other sizes scale the image part with ``1 / n``. A pilot holding one method
gives its own components; the difference then has ``w^2 = 2 s^2`` and ``tau^2 = 2 (1 - rho)
sigma^2`` for an assumed correlation ``rho`` of the two methods' identity means (default 0, the
conservative choice); a pilot holding both methods measures ``tau^2`` directly.

``benchmarks/bench_coverage.py`` checks the predicted power against simulated power at the
benchmark's designs (``BENCHMARKS.md``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np

from fp_rank.errors import InputError
from fp_rank.stats._validation import (
    check_finite_number,
    check_power,
    check_probability,
    check_queries,
)
from fp_rank.stats.bootstrap import _build_groups, _validated
from fp_rank.stats.boundary import no_spread
from fp_rank.stats.intervals import satterthwaite
from fp_rank.stats.plan import Plan
from fp_rank.stats.variance import (
    VarianceComponents,
    _components_of,
    _few_identity_notes,
    _paired_components,
    check_components,
)

#: Largest number of images per identity the sample-size search considers.
MAX_QUERIES_PER_IDENTITY = 100_000


def design_variance(
    components: Mapping[str, VarianceComponents], queries_per_identity: float | None = None
) -> tuple[float, float | None]:
    """Variance of the macro difference and its Satterthwaite df, for a number of images.

    A group with a single identity contributes its image noise only, with ``2 (n - 1)`` degrees
    of freedom (the interval then uses the queries, Welch-style).

    Args:
        components: per group, the components of the difference.
        queries_per_identity: images per identity and method (default: each group's pilot value).

    Returns:
        ``(variance, df)``; df is None when the variance is zero.

    Example:
        >>> c = {"g": VarianceComponents("g", 10, 10.0, 0.0, 0.2)}
        >>> design_variance(c)
        (0.002, 9.0)
    """
    n_groups = len(components)
    parts = []
    for c in components.values():
        n = c.queries_per_identity if queries_per_identity is None else queries_per_identity
        if c.n_identities >= 2:
            parts.append((c.mean_variance(n) / (c.n_identities * n_groups**2), c.n_identities - 1.0))
        elif n >= 2:
            parts.append((c.query_variance / (n * n_groups**2), 2.0 * (n - 1.0)))
    return satterthwaite(parts)


def _power_for(delta: float, variance: float, df: float | None, alpha: float) -> float:
    from scipy import stats

    if variance <= 0.0 or df is None:
        return 1.0 if delta > 0.0 else alpha
    ncp = delta / math.sqrt(variance)
    critical = float(stats.t.ppf(1.0 - alpha / 2.0, df))
    upper = float(stats.nct.sf(critical, df, ncp))
    lower = float(stats.nct.cdf(-critical, df, ncp))  # NaN in scipy for tiny df and large ncp
    return upper + (lower if math.isfinite(lower) else 0.0)


def predicted_power(
    components: Mapping[str, VarianceComponents],
    delta: float,
    *,
    queries_per_identity: float | None = None,
    alpha: float = 0.05,
) -> float:
    """Power of the paired interval to exclude zero when the true mAP difference is ``delta``.

    Args:
        components: per group, the components of the difference (see
            :func:`paired_variance_components`).
        delta: the true difference in mAP (its sign does not matter).
        queries_per_identity: images per identity and method (default: the pilot's).
        alpha: two-sided level.

    Returns:
        The power, between ``alpha`` and 1.

    Raises:
        InputError: on out-of-range arguments.

    Example:
        >>> c = {"g": VarianceComponents("g", 10, 10.0, 0.0, 0.2)}
        >>> round(predicted_power(c, 0.1), 3)
        0.514
    """
    check_components(components)
    delta = abs(check_finite_number("delta", delta))
    alpha = check_probability("alpha", alpha)
    n = check_queries(queries_per_identity)
    return _power_for(delta, *design_variance(components, n), alpha)


def _noncentrality_for(power: float, df: float, alpha: float) -> float:
    from scipy import optimize

    high = 1.0
    while _power_for(high, 1.0, df, alpha) < power:
        high *= 2.0
    return float(optimize.brentq(lambda x: _power_for(x, 1.0, df, alpha) - power, 0.0, high, xtol=1e-10))


def minimum_detectable_difference(
    components: Mapping[str, VarianceComponents],
    *,
    queries_per_identity: float | None = None,
    power: float = 0.8,
    alpha: float = 0.05,
) -> float:
    """The smallest mAP difference the paired interval detects with probability ``power``.

    Example:
        >>> c = {"g": VarianceComponents("g", 10, 10.0, 0.0, 0.2)}
        >>> round(minimum_detectable_difference(c), 4)
        0.1409
    """
    check_components(components)
    alpha = check_probability("alpha", alpha)
    power = check_power(power, alpha)
    variance, df = design_variance(components, check_queries(queries_per_identity))
    if variance <= 0.0 or df is None:
        return 0.0
    return _noncentrality_for(power, df, alpha) * math.sqrt(variance)


def required_queries_per_identity(
    components: Mapping[str, VarianceComponents],
    delta: float,
    *,
    power: float = 0.8,
    alpha: float = 0.05,
    max_queries: int = MAX_QUERIES_PER_IDENTITY,
) -> int | None:
    """Images per identity and method for the paired interval to detect ``delta`` with ``power``.

    The identities stay those of the pilot. Returns None when even ``max_queries`` images per
    identity do not reach ``power`` (identity variation dominates: more identities are needed).

    Example:
        >>> c = {"g": VarianceComponents("g", 10, 10.0, 0.0, 0.2)}
        >>> required_queries_per_identity(c, 0.1), required_queries_per_identity(c, 0.05)
        (20, 80)
    """
    check_components(components)
    delta = abs(check_finite_number("delta", delta))
    alpha = check_probability("alpha", alpha)
    power = check_power(power, alpha)

    def power_at(n: int) -> float:
        return _power_for(delta, *design_variance(components, float(n)), alpha)

    if power_at(1) >= power:
        return 1
    low, high = 1, 2
    while power_at(high) < power:
        if high >= max_queries:
            return None
        low, high = high, min(2 * high, max_queries)
    while high - low > 1:  # power_at(low) < power <= power_at(high)
        middle = (low + high) // 2
        low, high = (middle, high) if power_at(middle) < power else (low, middle)
    return high


def _max_power(components: Mapping[str, VarianceComponents], delta: float, alpha: float) -> float:
    """Power with (practically) unlimited images per identity: the identity variance is left."""
    variance, df = design_variance(components, float(MAX_QUERIES_PER_IDENTITY))
    return _power_for(delta, variance, df, alpha)


# ------------------------------------------------------------------------------- the plan


def plan_from_components(
    components: Mapping[str, VarianceComponents],
    *,
    delta: float | None = None,
    power: float = 0.8,
    alpha: float = 0.05,
    methods: tuple[str, ...] = ("A", "B"),
    method_components: Mapping[str, Mapping[str, VarianceComponents]] | None = None,
    assumptions: tuple[str, ...] = (),
    warnings: tuple[str, ...] = (),
) -> Plan:
    """A :class:`Plan` from the variance components of the difference.

    Example:
        >>> c = {"g": VarianceComponents("g", 10, 10.0, 0.0, 0.2)}
        >>> plan = plan_from_components(c, delta=0.05)
        >>> round(plan.minimum_detectable_difference, 3), plan.required_queries_per_identity
        (0.141, 80)
    """
    check_components(components)
    alpha = check_probability("alpha", alpha)
    power = check_power(power, alpha)
    if delta is not None:
        delta = check_finite_number("delta", delta)
        if delta <= 0.0:
            raise InputError(f"delta must be a positive difference in mAP (e.g. 0.02); got {delta!r}")
    variance, df = design_variance(components)
    n_pilot = float(np.mean([c.queries_per_identity for c in components.values()]))
    return Plan(
        methods=tuple(methods),
        alpha=alpha,
        power=power,
        delta=delta,
        queries_per_identity=n_pilot,
        standard_error=math.sqrt(variance),
        df=df,
        minimum_detectable_difference=minimum_detectable_difference(components, power=power, alpha=alpha),
        power_at_delta=None if delta is None else _power_for(delta, variance, df, alpha),
        required_queries_per_identity=(
            None if delta is None else required_queries_per_identity(components, delta, power=power, alpha=alpha)
        ),
        max_power=None if delta is None else _max_power(components, delta, alpha),
        components=dict(components),
        method_components={k: dict(v) for k, v in (method_components or {}).items()},
        assumptions=tuple(assumptions),
        warnings=tuple(warnings),
    )


def plan_comparison(
    values_a: Any,
    identities_a: Any,
    groups_a: Any,
    values_b: Any = None,
    identities_b: Any = None,
    groups_b: Any = None,
    *,
    delta: float | None = None,
    power: float = 0.8,
    alpha: float = 0.05,
    identity_correlation: float = 0.0,
    methods: tuple[str, ...] = ("A", "B"),
) -> Plan:
    """Plan a comparison of two methods from a pilot's per-query scores.

    With both methods' scores, the components of the difference are measured on the shared
    identities. With one method's scores only, the second method is assumed to have the same
    components and identity means correlated ``identity_correlation`` with the first.

    Args:
        values_a: per-query scores (AP) of method A in the pilot.
        identities_a: identity of each query of A.
        groups_a: group of each query of A.
        values_b: per-query scores of method B (None: plan from A alone).
        identities_b: identity of each query of B.
        groups_b: group of each query of B.
        delta: the mAP difference to detect (None: only the detectable difference is computed).
        power: the power wanted, strictly between ``alpha`` and 1.
        alpha: two-sided level, strictly between 0 and 1.
        identity_correlation: assumed correlation of A's and B's identity means, in [-1, 1]
            (one-method pilots only).
        methods: labels of A and B.

    Returns:
        A :class:`Plan`.

    Raises:
        InputError: on invalid scores or options (the message names the argument), B given in
            part, or no identity shared by A and B.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> identities = [f"i{k // 10}" for k in range(100)]
        >>> a = np.clip(0.6 + 0.3 * rng.standard_normal(100), 0, 1)
        >>> b = np.clip(a - 0.05 + 0.2 * rng.standard_normal(100), 0, 1)
        >>> plan = plan_comparison(a, identities, ["g"] * 100, b, identities, ["g"] * 100,
        ...                        delta=0.05)
        >>> plan.minimum_detectable_difference > 0, plan.required_queries_per_identity is not None
        (True, True)
    """
    given_b = [x is not None for x in (values_b, identities_b, groups_b)]
    if any(given_b) and not all(given_b):
        raise InputError("values_b, identities_b and groups_b go together: pass all three or none")
    rho = check_finite_number("identity_correlation", identity_correlation)
    if not -1.0 <= rho <= 1.0:
        raise InputError(f"identity_correlation must lie in [-1, 1]; got {identity_correlation!r}")
    a = _validated(values_a, identities_a, groups_a, "_a")
    notes: list[str] = []
    if all(given_b):
        b = _validated(values_b, identities_b, groups_b, "_b")
        components, data_a, data_b = _paired_components(a, b, notes, (methods[0], methods[1]))
        per_method = {
            methods[0]: _components_of(data_a, [], methods[0]),
            methods[1]: _components_of(data_b, [], methods[1]),
        }
        assumptions = (
            "variance components of the difference measured on the identities both methods share",
        )
    else:
        own = _components_of(_build_groups(*a), notes, methods[0])
        components = {
            name: replace(
                c,
                identity_variance=2.0 * (1.0 - rho) * c.identity_variance,
                query_variance=2.0 * c.query_variance,
                pilot_variance=(
                    None
                    if c.pilot_variance is None
                    else 2.0 * (1.0 - rho) * c.identity_variance
                    + 2.0 * (c.pilot_variance - c.identity_variance)
                ),
            )
            for name, c in own.items()
        }
        per_method = {methods[0]: own}
        methods = methods[:1]
        assumptions = (
            f"pilot holds one method: the second is assumed to have the same variance components "
            f"and identity means correlated {rho:g} with it (0 is conservative; a pilot with both "
            "methods measures it)",
        )
    _few_identity_notes(components, notes)
    pilots = {methods[0]: a, **({methods[1]: b} if all(given_b) else {})}
    _require_estimable(components, {name: _most_images(data) for name, data in pilots.items()})
    return plan_from_components(
        components, delta=delta, power=power, alpha=alpha, methods=methods,
        method_components=per_method, assumptions=assumptions, warnings=tuple(notes),
    )


def _most_images(data: tuple[np.ndarray, np.ndarray, np.ndarray]) -> int:
    """The most images any one identity (within its group) has in a pilot's ``(values, identities, groups)``."""
    _, identities, groups = data
    pairs = [f"{g}\x00{i}" for g, i in zip(groups.tolist(), identities.tolist())]
    return max(np.unique(np.asarray(pairs, dtype=object), return_counts=True)[1].tolist() or [0])


def _require_estimable(components: Mapping[str, VarianceComponents], most_images: Mapping[str, int]) -> None:
    """Refuse a pilot from which the plan's variances cannot be estimated, saying which and why.

    A power, a detectable difference or a number of images needs the spread between identities
    (two identities per group at least) and the spread between images of one identity (two
    images per identity at least), and a pilot whose scores vary at all.
    """
    single = sorted(name for name, c in components.items() if c.n_identities < 2)
    if single:
        raise InputError(
            f"the pilot has a single identity in group(s) {single}: how much identities differ, which decides "
            "the power and the images needed, cannot be estimated from one identity; plan from a pilot with at "
            "least two identities per group"
        )
    for method, most in most_images.items():
        if most < 2:
            raise InputError(
                f"the pilot has one image per identity for method {method!r}: image-to-image variation cannot be "
                "told apart from identity-to-identity variation; plan from a pilot where identities have two or "
                "more images"
            )
    variance, _ = design_variance(components)
    if no_spread(variance, [1.0]):
        raise InputError(
            "the pilot's scores do not vary (every identity's difference is the same): no variance can be "
            "estimated, so no power, detectable difference or number of images can be given; plan from a pilot "
            "whose scores vary"
        )


# ------------------------------------------------------------------------------- validation
