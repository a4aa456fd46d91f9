"""Paired comparison: hand-computed cases, null calibration, power, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as scipy_stats

import fp_rank.stats.paired as paired_module
from fp_rank.errors import InputError
from fp_rank.stats import (
    EXACT_PERMUTATION_MAX_IDENTITIES,
    PairedComparison,
    hierarchical_bootstrap,
    paired_comparison,
    permutation_p_value,
)


def _expand(per_identity: dict[str, list[float]], group_of: dict[str, str]):
    values, identities, groups = [], [], []
    for identity, scores in per_identity.items():
        values += scores
        identities += [identity] * len(scores)
        groups += [group_of[identity]] * len(scores)
    return values, identities, groups


# ---------------------------------------------------------------------- permutation p-value


def test_exact_p_value_hand_case():
    # Sums of +-1 +-2 +-0.5 have magnitudes 3.5, 2.5, 1.5, 0.5 (each twice); observed 2.5.
    assert permutation_p_value([1.0, 2.0, -0.5]) == (0.5, True, 8)
    # All four differences agree: only the two all-same sign vectors reach |T| = 4.
    assert permutation_p_value([1.0, 1.0, 1.0, 1.0]) == (2 / 16, True, 16)
    # Observed statistic 0: every sign vector is as extreme.
    assert permutation_p_value([1.0, -1.0])[0] == 1.0
    assert permutation_p_value([0.0, 0.0, 0.0])[0] == 1.0


def test_exact_p_value_with_weights_hand_case():
    # T = 0.9 + 0.1 = 1; sign vectors give |T*| in {1, 0.8, 0.8, 1}.
    assert permutation_p_value([1.0, 1.0], [0.9, 0.1])[0] == 0.5
    # Zero weight: that identity's sign does not matter.
    assert permutation_p_value([1.0, 5.0], [1.0, 0.0])[0] == 1.0


def test_rounding_ties_count_as_extreme():
    # 0.1 + 0.2 and 0.3 differ in the last bit; the sign vector swapping them must still tie.
    p, exact, _ = permutation_p_value([0.1, 0.2, -0.3, 0.3], [1, 1, 1, 1])
    assert exact
    # |T| = 0.3; brute force in exact arithmetic with tenths:
    d = np.array([1, 2, -3, 3])
    signs = 1 - 2 * ((np.arange(16)[:, None] >> np.arange(4)) & 1)
    assert p == np.mean(np.abs(signs @ d) >= abs(d.sum()))


def test_monte_carlo_p_value_uses_plus_one_correction():
    n = EXACT_PERMUTATION_MAX_IDENTITIES + 6
    p, exact, n_evaluated = permutation_p_value(np.ones(n), n_permutations=999, seed=0)
    assert not exact
    assert n_evaluated == 999
    # Only 2 of 2**20 sign vectors reach the observed statistic: never drawn here.
    assert p == 1 / 1000


def test_monte_carlo_agrees_with_exact(monkeypatch):
    rng = np.random.default_rng(0)
    d = rng.normal(0.2, 1.0, size=12)
    w = rng.random(12)
    exact_p, exact, _ = permutation_p_value(d, w)
    assert exact
    monkeypatch.setattr(paired_module, "EXACT_PERMUTATION_MAX_IDENTITIES", 0)
    mc_p, mc_exact, _ = permutation_p_value(d, w, n_permutations=40000, seed=1)
    assert not mc_exact
    # Binomial SE at p <= 0.5 with 40000 draws is <= 0.0025.
    assert mc_p == pytest.approx(exact_p, abs=0.01)


def test_monte_carlo_is_seeded():
    d = np.random.default_rng(1).normal(0.1, 1.0, size=30)
    first = permutation_p_value(d, n_permutations=500, seed=3)
    assert permutation_p_value(d, n_permutations=500, seed=3) == first
    assert permutation_p_value(d, n_permutations=500, seed=4) != first


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        (([],), {}, "differences is empty"),
        (([1.0, float("nan")],), {}, "differences must hold finite"),
        (([1.0, 2.0], [1.0]), {}, "weights has 1 entries but differences has 2"),
        (([1.0, 2.0], [1.0, -1.0]), {}, "weights must be non-negative"),
        (([1.0],), {"n_permutations": 0}, "n_permutations must be an integer >= 1"),
        (([1.0],), {"seed": -3}, "seed must be an integer >= 0"),
    ],
)
def test_permutation_p_value_invalid(args, kwargs, match):
    with pytest.raises(InputError, match=match):
        permutation_p_value(*args, **kwargs)


# ------------------------------------------------------------------------ paired_comparison


def test_hand_case_through_paired_comparison():
    group_of = {"x": "g", "y": "g", "z": "g"}
    a = _expand({"x": [1.0, 1.0], "y": [2.0, 2.0], "z": [0.0, 0.0]}, group_of)
    b = _expand({"x": [0.0, 0.0], "y": [0.0, 0.0], "z": [0.5, 0.5]}, group_of)
    result = paired_comparison(*a, *b, n_boot=200)
    assert isinstance(result, PairedComparison)
    assert result.map_a == pytest.approx(1.0)
    assert result.map_b == pytest.approx(1 / 6)
    assert result.difference == pytest.approx(5 / 6)  # = mean of d = (1 + 2 - 0.5) / 3
    assert result.p_value == 0.5
    assert result.exact and result.n_permutations == 8
    assert result.shared_identities == ("x", "y", "z")
    assert result.only_in_a == result.only_in_b == ()
    assert result.ci.estimate == result.difference
    assert result.ci.low <= result.difference <= result.ci.high


def test_macro_weighting_hand_case():
    # Group g1 has one identity (d = 1), group g2 two (d = 0.5 each): T = 1/2 + 1/4 + 1/4 = 0.75.
    # Weighted terms 0.5, 0.125, 0.125: |T*| is 0.75 for 2 of 8 sign vectors -> p = 0.25.
    group_of = {"p": "g1", "q": "g2", "r": "g2"}
    a = _expand({"p": [1.0, 1.0], "q": [0.5, 0.5], "r": [0.5, 0.5]}, group_of)
    b = _expand({"p": [0.0, 0.0], "q": [0.0, 0.0], "r": [0.0, 0.0]}, group_of)
    result = paired_comparison(*a, *b, n_boot=100)
    assert result.difference == pytest.approx(0.75)
    assert result.p_value == 0.25
    assert result.groups == ("g1", "g2")


def test_difference_uses_shared_identities_only():
    group_of = {"x": "g", "y": "g", "z": "g", "w": "h"}
    a = _expand({"x": [0.9, 0.7], "y": [0.5], "z": [0.0]}, group_of)
    b = _expand({"x": [0.4], "y": [0.5, 0.3], "w": [1.0]}, group_of)
    result = paired_comparison(*a, *b, n_boot=100)
    assert result.n_shared_identities == 2
    assert result.shared_identities == ("x", "y")
    assert result.only_in_a == ("z",)
    assert result.only_in_b == ("w",)
    # Query-weighted group means on shared identities: A (0.9+0.7+0.5)/3, B (0.4+0.5+0.3)/3.
    assert result.map_a == pytest.approx(0.7)
    assert result.map_b == pytest.approx(0.4)
    assert result.difference == pytest.approx(0.3)


def test_identical_methods():
    rng = np.random.default_rng(0)
    values = rng.random(40)
    identities = [f"i{k // 4}" for k in range(40)]
    groups = ["g"] * 40
    result = paired_comparison(values, identities, groups, values, identities, groups, n_boot=300)
    assert result.difference == 0.0
    assert result.p_value == 1.0
    # identical scores: the difference has no spread, so there is no interval to give (never [0, 0])
    assert np.isnan(result.ci.low) and np.isnan(result.ci.high)
    assert any("no interval can be estimated" in w for w in result.warnings)


def test_ci_matches_bootstrap_scale_and_to_dict():
    rng = np.random.default_rng(1)
    identities = [f"i{k // 5}" for k in range(100)]
    groups = ["a" if k < 50 else "b" for k in range(100)]
    values_a = rng.random(100)
    values_b = rng.random(100)
    result = paired_comparison(values_a, identities, groups, values_b, identities, groups,
                               n_boot=500, seed=9, interval="bootstrap")
    assert result.ci.n_boot == 500 and result.ci.seed == 9 and result.ci.method == "bootstrap"
    assert result.ci.low < result.difference < result.ci.high
    # The paired CI is no wider than the sum of the two unpaired half-widths (independent data).
    single = hierarchical_bootstrap(values_a, identities, groups, n_boot=500)
    assert result.ci.high - result.ci.low < 2 * (single.high - single.low)
    data = json.loads(json.dumps(result.to_dict()))
    assert data["shared_identities"] == list(result.shared_identities)
    assert data["ci"]["estimate"] == result.difference
    assert data["n_shared_identities"] == 20
    assert "permutation" in data["method"] and "bootstrap" in data["method"]
    assert data["exact"] is False and data["n_permutations"] == 10000


def test_seeded_determinism():
    rng = np.random.default_rng(2)
    identities = [f"i{k // 3}" for k in range(60)]
    groups = ["g"] * 60
    va, vb = rng.random(60), rng.random(60)
    first = paired_comparison(va, identities, groups, vb, identities, groups, n_boot=100, seed=5)
    again = paired_comparison(va, identities, groups, vb, identities, groups, n_boot=100, seed=5)
    assert first == again


def test_no_overlap_raises():
    with pytest.raises(InputError, match="share no identity"):
        paired_comparison([0.1], ["x"], ["g"], [0.2], ["y"], ["g"])


def test_group_disagreement_raises():
    with pytest.raises(InputError, match="identity 'x' is in group"):
        paired_comparison([0.1, 0.3], ["x", "y"], ["g", "g"], [0.2, 0.4], ["x", "y"], ["h", "g"])


@pytest.mark.parametrize(
    ("position", "value", "match"),
    [
        (0, [], "values_a is empty"),
        (3, [0.1, float("nan")], "values_b must hold finite"),
        (1, ["x"], "identities_a has 1 entries but values_a has 2"),
        (5, ["g", "g", "g"], "groups_b has 3 entries but values_b has 2"),
    ],
)
def test_invalid_inputs_name_the_argument(position, value, match):
    args = [[0.1, 0.2], ["x", "y"], ["g", "g"], [0.3, 0.4], ["x", "y"], ["g", "g"]]
    args[position] = value
    with pytest.raises(InputError, match=match):
        paired_comparison(*args)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_boot": 0}, "n_boot"),
        ({"n_permutations": -1}, "n_permutations"),
        ({"confidence": 1.5}, "confidence"),
        ({"seed": "0"}, "seed"),
    ],
)
def test_invalid_options_name_the_argument(kwargs, match):
    with pytest.raises(InputError, match=match):
        paired_comparison([0.1], ["x"], ["g"], [0.2], ["x"], ["g"], **kwargs)


# ----------------------------------------------------------------- calibration and power


def _paired_dataset(rng, shift, n_groups=2, n_identities=10, n_queries=4):
    """Identity effect shared by both methods, independent query noise. ``shift`` is added to
    method A's identity means; with shift 0 the methods are exchangeable for every identity."""
    values_a, values_b, identities, groups = [], [], [], []
    for g in range(n_groups):
        effects = rng.normal(0.5, 0.2, size=n_identities)
        for i, effect in enumerate(effects):
            values_a.append(effect + shift + rng.normal(0.0, 0.15, size=n_queries))
            values_b.append(effect + rng.normal(0.0, 0.15, size=n_queries))
            identities += [f"{g}-{i}"] * n_queries
            groups += [f"g{g}"] * n_queries
    return np.concatenate(values_a), identities, groups, np.concatenate(values_b)


def test_p_values_are_uniform_under_the_null():
    """600 null datasets with 20 identities (Monte Carlo test, 999 sign vectors each).

    Under exchangeability the sign-flip p-value is exactly valid; with the +1 correction it is
    uniform on {1/1000, ..., 1}. KS must not reject at 0.01 and the rejection rate at 0.05 must
    lie in [0.02, 0.08] (binomial SE ~0.009 with 600 datasets: +-3 SE).
    """
    p_values = []
    for index in range(600):
        rng = np.random.default_rng(30_000 + index)
        values_a, identities, groups, values_b = _paired_dataset(rng, shift=0.0)
        result = paired_comparison(
            values_a, identities, groups, values_b, identities, groups,
            n_boot=1, n_permutations=999, seed=index,
        )
        assert not result.exact
        p_values.append(result.p_value)
    p_values = np.array(p_values)
    assert scipy_stats.kstest(p_values, "uniform").pvalue > 0.01
    assert 0.02 <= np.mean(p_values <= 0.05) <= 0.08


def test_exact_p_values_are_valid_under_the_null():
    """With 8 identities (exact enumeration, 256 sign vectors), P(p <= 0.05) <= 0.05 + noise."""
    p_values = []
    for index in range(400):
        rng = np.random.default_rng(40_000 + index)
        values_a, identities, groups, values_b = _paired_dataset(rng, 0.0, 2, 4, 3)
        result = paired_comparison(
            values_a, identities, groups, values_b, identities, groups, n_boot=1, seed=index
        )
        assert result.exact and result.n_permutations == 256
        p_values.append(result.p_value)
    assert np.mean(np.array(p_values) <= 0.05) <= 0.08


def test_power_against_a_clear_difference():
    rng = np.random.default_rng(7)
    values_a, identities, groups, values_b = _paired_dataset(rng, shift=0.2)
    result = paired_comparison(values_a, identities, groups, values_b, identities, groups,
                               n_boot=500)
    assert result.p_value < 0.01
    assert result.ci.low > 0.0
    assert result.difference == pytest.approx(0.2, abs=0.1)


# ----------------------------------------------------------------------------- properties


@settings(max_examples=40, deadline=None)
@given(
    diffs=st.lists(st.floats(-1, 1, allow_nan=False, allow_subnormal=False), min_size=1,
                   max_size=9),
    scale=st.floats(0.1, 10.0),
)
def test_exact_p_value_properties(diffs, scale):
    p, exact, n = permutation_p_value(diffs)
    assert exact and n == 2 ** len(diffs)
    # The observed sign vector and its mirror are always as extreme: p >= 2 / 2**n.
    assert 2 / n - 1e-15 <= p <= 1.0
    # Invariant to flipping all signs and to a common positive scale.
    assert permutation_p_value([-d for d in diffs])[0] == p
    assert permutation_p_value([scale * d for d in diffs])[0] == p


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_swapping_methods_negates_difference(seed):
    rng = np.random.default_rng(seed)
    values_a, identities, groups, values_b = _paired_dataset(rng, 0.05, 2, 3, 2)
    ab = paired_comparison(values_a, identities, groups, values_b, identities, groups, n_boot=10)
    ba = paired_comparison(values_b, identities, groups, values_a, identities, groups, n_boot=10)
    assert ba.difference == pytest.approx(-ab.difference, abs=1e-12)
    assert ba.p_value == ab.p_value
