"""Statistics that never claim certainty they lack.

Input classes: a zero-one metric at the end of its range (every query a miss, every query a hit),
a sample with no variation at all (bounded and unbounded), pilots from which a variance cannot be
estimated (one identity, one image per identity, identical scores), paired differences that do
not vary. Every figure is checked against a value worked out by hand.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from fp_rank.errors import InputError
from fp_rank.stats import macro_interval, paired_comparison, plan_comparison
from fp_rank.stats.bootstrap import _build_groups
from fp_rank.stats.boundary import effective_identities, effective_size_interval


def _ids(n_identities: int, per: int) -> np.ndarray:
    return np.asarray([f"i{k // per}" for k in range(n_identities * per)], dtype=object)


def test_twelve_misses_get_the_exact_binomial_upper_bound() -> None:
    # 12 images of 12 identities, CMC@1 all 0: the upper end is 1 - 0.025 ** (1 / 12) = 0.2646
    ci = macro_interval(np.zeros(12), _ids(12, 1), ["g"] * 12)
    assert ci.low == 0.0 and ci.high == pytest.approx(1 - 0.025 ** (1 / 12), abs=1e-12)
    assert ci.method == "logit_t+clopper_pearson" and any("cannot be estimated" in w for w in ci.warnings)


def test_all_hits_mirror_all_misses() -> None:
    hits = macro_interval(np.ones(30), _ids(10, 3), ["g"] * 30)
    # 10 identities of 3 queries: the effective number of identities is 10
    assert hits.high == 1.0 and hits.low == pytest.approx(0.025 ** (1 / 10), abs=1e-12)


def test_identities_are_the_units_not_the_queries() -> None:
    few = macro_interval(np.zeros(40), _ids(4, 10), ["g"] * 40)
    many = macro_interval(np.zeros(40), _ids(40, 1), ["g"] * 40)
    assert few.high == pytest.approx(1 - 0.025 ** (1 / 4)) and many.high == pytest.approx(1 - 0.025 ** (1 / 40))


def test_effective_identities_weigh_groups_as_the_macro_mean_does() -> None:
    # groups of 2 and 8 identities, equal counts: weights 1/4 (x2) and 1/16 (x8): 1 / (2/16 + 8/256) = 6.4
    ids = np.asarray([f"a{k}" for k in range(2)] + [f"b{k}" for k in range(8)], dtype=object)
    groups = np.asarray(["a"] * 2 + ["b"] * 8, dtype=object)
    assert effective_identities(_build_groups(np.zeros(10), ids, groups)) == pytest.approx(6.4)


def test_interior_zero_one_data_keeps_at_least_the_t_interval() -> None:
    rng = np.random.default_rng(3)
    values = (rng.random(60) < 0.3).astype(float)
    ids, groups = _ids(20, 3), ["g"] * 60
    union = macro_interval(values, ids, groups)
    t_only = macro_interval(values + 1e-9 * (values == 0), ids, groups)  # not all at the ends: the t interval alone
    assert union.low <= t_only.low + 1e-6 and union.high >= t_only.high - 1e-6
    assert union.high - union.low > 0


def test_no_variation_in_a_bounded_score_gives_a_worst_case_interval() -> None:
    ci = macro_interval(np.full(20, 0.5), _ids(10, 2), ["g"] * 20)
    assert ci.low < 0.5 < ci.high and any("cannot be estimated" in w for w in ci.warnings)


def test_no_variation_in_an_unbounded_score_gives_no_interval() -> None:
    ci = macro_interval(np.full(20, 3.0), _ids(10, 2), ["g"] * 20, interval="t", bounds=None)
    assert math.isnan(ci.low) and math.isnan(ci.high) and any("no interval" in w for w in ci.warnings)


def test_effective_size_shrinks_with_the_design_effect() -> None:
    data = _build_groups(np.zeros(40), _ids(20, 2), np.asarray(["g"] * 40, dtype=object))
    # p = 0.5, variance 0.05: n = 0.25 / 0.05 = 5 identities' worth, fewer than the 20 there are
    low5, high5 = effective_size_interval(0.5, 0.05, None, data, 0.95, (0.0, 1.0))
    low20, high20 = effective_size_interval(0.5, 0.0125, None, data, 0.95, (0.0, 1.0))
    assert high5 - low5 > high20 - low20 > 0


# --------------------------------------------------------------------------- paired and planning


def test_paired_differences_that_do_not_vary_get_no_interval() -> None:
    ids = _ids(6, 2)
    a = np.linspace(0.2, 0.8, 12)
    result = paired_comparison(a, ids, ["g"] * 12, a - 0.1, ids, ["g"] * 12)
    assert result.difference == pytest.approx(0.1)
    assert math.isnan(result.ci.low) and math.isnan(result.ci.high)
    assert any("no interval can be estimated" in w for w in result.warnings)


@pytest.mark.parametrize("values_a,ids,values_b,match", [
    (np.linspace(0.1, 0.9, 10), ["solo"] * 10, np.linspace(0.0, 0.8, 10), "single identity in group"),
    (np.linspace(0.1, 0.9, 10), [f"i{k}" for k in range(10)], np.linspace(0.0, 0.8, 10)[::-1],
     "one image per identity"),
    (np.repeat([0.3, 0.6], 5), ["i0"] * 5 + ["i1"] * 5, np.repeat([0.3, 0.6], 5), "do not vary"),
])
def test_a_pilot_that_cannot_estimate_a_variance_is_refused_in_words(values_a, ids, values_b, match) -> None:
    with pytest.raises(InputError, match=match):
        plan_comparison(values_a, ids, ["g"] * 10, values_b, ids, ["g"] * 10, delta=0.05)


def test_a_pilot_with_variation_still_plans() -> None:
    rng = np.random.default_rng(0)
    ids = _ids(10, 5)
    a = np.clip(0.5 + 0.2 * rng.standard_normal(50), 0, 1)
    b = np.clip(a - 0.05 + 0.1 * rng.standard_normal(50), 0, 1)
    plan = plan_comparison(a, ids, ["g"] * 50, b, ids, ["g"] * 50, delta=0.05)
    assert 0.05 < plan.power_at_delta < 1.0 and plan.minimum_detectable_difference > 0


def test_a_tied_cmc_value_keeps_the_boundary_interval() -> None:
    # 15 identities x 10 queries at CMC@1 = 1, one query tied (0.5, an expected value): declared
    # zero-one, it still gets the boundary interval, wider than the t interval alone
    ids = _ids(15, 10)
    tied = np.ones(150)
    tied[0] = 0.5
    declared = macro_interval(tied, ids, ["g"] * 150, zero_one=True)
    t_only = macro_interval(tied, ids, ["g"] * 150, zero_one=False)
    assert declared.method == "logit_t+clopper_pearson" and t_only.method == "logit_t"
    assert declared.low < t_only.low and declared.high >= t_only.high


def test_the_degrees_of_freedom_only_ever_shrink_the_effective_size() -> None:
    # unequal groups: Satterthwaite df (39) above m - 1 of the Kish identities (6.6)
    rng = np.random.default_rng(1)
    values = np.r_[np.ones(10), (rng.random(200) < 0.97).astype(float)]
    ids = np.asarray([f"a{k // 5}" for k in range(10)] + [f"b{k // 5}" for k in range(200)], dtype=object)
    groups = np.asarray(["a"] * 10 + ["b"] * 200, dtype=object)
    data = _build_groups(values, ids, groups)
    from fp_rank.stats.intervals import macro_variance

    variance, df = macro_variance(data)
    estimate = float(np.mean([g.mean for g in data]))
    low, _ = effective_size_interval(estimate, variance, df, data, 0.95, (0.0, 1.0))
    low_no_df, _ = effective_size_interval(estimate, variance, None, data, 0.95, (0.0, 1.0))
    assert low <= low_no_df


def test_a_pilot_with_some_identities_of_two_images_plans() -> None:
    rng = np.random.default_rng(2)
    ids = [f"i{k}" for k in range(20) for _ in range(1 + k % 2)]  # 1 and 2 images, alternately
    a = np.clip(0.5 + 0.2 * rng.standard_normal(len(ids)), 0, 1)
    b = np.clip(a - 0.05 + 0.1 * rng.standard_normal(len(ids)), 0, 1)
    plan = plan_comparison(a, ids, ["g"] * len(ids), b, ids, ["g"] * len(ids), delta=0.05)
    assert plan.minimum_detectable_difference > 0
