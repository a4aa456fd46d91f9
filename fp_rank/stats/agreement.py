"""Do encoders agree on which method preserves identity best? Rankings and Kendall's tau."""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import Any

from fp_rank.errors import InputError
from fp_rank.stats._validation import check_finite_number


def _check_scores(scores: Any) -> dict[str, dict[str, float]]:
    if not isinstance(scores, Mapping) or not scores:
        raise InputError(
            "scores must be a non-empty dict {encoder: {method: score}}; "
            f"got {type(scores).__name__} {scores!r:.80}"
        )
    checked: dict[str, dict[str, float]] = {}
    for encoder, per_method in scores.items():
        if not isinstance(per_method, Mapping) or not per_method:
            raise InputError(
                f"scores[{encoder!r}] must be a non-empty dict {{method: score}}; "
                f"got {per_method!r:.80}"
            )
        checked[str(encoder)] = {
            str(method): check_finite_number(f"scores[{encoder!r}][{method!r}]", value)
            for method, value in per_method.items()
        }
    return checked


def _ranking(per_method: dict[str, float]) -> list[str]:
    """Methods by score descending; equal scores by method name."""
    return sorted(per_method, key=lambda method: (-per_method[method], method))


def _competition_ranks(per_method: dict[str, float]) -> dict[str, int]:
    """Rank 1 = best; tied methods share the best rank of their block ("1224" ranking)."""
    return {
        method: 1 + sum(other > score for other in per_method.values())
        for method, score in per_method.items()
    }


def _tau(a: dict[str, float], b: dict[str, float]) -> tuple[float | None, float | None, list[str]]:
    from scipy.stats import kendalltau

    shared = sorted(a.keys() & b.keys())
    if len(shared) < 2:
        return None, None, shared
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant input: tau undefined, reported as None
        result = kendalltau([a[m] for m in shared], [b[m] for m in shared], variant="b")
    tau, p_value = float(result.statistic), float(result.pvalue)
    return (
        tau if math.isfinite(tau) else None,
        p_value if math.isfinite(p_value) else None,
        shared,
    )


def kendall_tau_matrix(scores: Mapping[str, Mapping[str, float]]) -> dict[str, Any]:
    """Method rankings per encoder and Kendall's tau-b between every pair of encoders.

    Tau is computed on the methods both encoders scored (``scipy.stats.kendalltau``, variant b,
    which accounts for ties). It is None when fewer than two methods are shared or when one
    encoder gives all shared methods the same score (tau undefined).

    Args:
        scores: ``{encoder: {method: score}}``, e.g. the headline mAP of each method per encoder.

    Returns:
        A JSON-serialisable dict with keys

        * ``encoders``: encoder names in input order;
        * ``rankings``: ``{encoder: [method, ...]}`` best first (ties by method name);
        * ``ranks``: ``{encoder: {method: rank}}``, 1 = best, tied scores share a rank;
        * ``tau``: ``{encoder_a: {encoder_b: tau or None}}``, a full symmetric matrix;
        * ``pairs``: one dict per unordered pair with ``encoder_a``, ``encoder_b``, ``tau``,
          ``p_value`` (scipy's, exact for small untied samples), ``n_methods`` and ``methods``;
        * ``variant``: ``"tau-b"``.

    Raises:
        InputError: when ``scores`` is empty or not a dict of dicts, or a score is not a finite
            number.

    Example:
        >>> out = kendall_tau_matrix({
        ...     "dinov2": {"A": 0.8, "B": 0.5, "C": 0.2},
        ...     "clip": {"A": 0.1, "B": 0.4, "C": 0.3},
        ... })
        >>> out["rankings"]["clip"]
        ['B', 'C', 'A']
        >>> round(out["tau"]["dinov2"]["clip"], 3)
        -0.333
    """
    checked = _check_scores(scores)
    encoders = list(checked)
    tau: dict[str, dict[str, float | None]] = {encoder: {} for encoder in encoders}
    pairs = []
    for x, encoder_a in enumerate(encoders):
        for encoder_b in encoders[x:]:
            value, p_value, shared = _tau(checked[encoder_a], checked[encoder_b])
            tau[encoder_a][encoder_b] = value
            tau[encoder_b][encoder_a] = value
            if encoder_a != encoder_b:
                pairs.append(
                    {
                        "encoder_a": encoder_a,
                        "encoder_b": encoder_b,
                        "tau": value,
                        "p_value": p_value,
                        "n_methods": len(shared),
                        "methods": shared,
                    }
                )
    return {
        "encoders": encoders,
        "rankings": {encoder: _ranking(checked[encoder]) for encoder in encoders},
        "ranks": {encoder: _competition_ranks(checked[encoder]) for encoder in encoders},
        "tau": {a: {b: tau[a][b] for b in encoders} for a in encoders},
        "pairs": pairs,
        "variant": "tau-b",
    }
