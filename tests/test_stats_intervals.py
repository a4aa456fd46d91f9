"""Analytic macro-mean intervals: oracles, closed forms, edge cases, validation, report wiring."""

from __future__ import annotations

import fp_rank
from tests.report_fixtures import valid_metadata

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import special
from scipy import stats as scipy_stats

from fp_rank.errors import InputError
from fp_rank.reporting.report import Report
from fp_rank.stats import (
    ConfidenceInterval,
    hierarchical_bootstrap,
    macro_interval,
    macro_interval_by_group,
    macro_mean,
    paired_comparison,
)
from fp_rank.stats.intervals import satterthwaite, t_interval


def _table(rng: np.random.Generator, m: int, n: int) -> np.ndarray:
    """(m, n) scores in [0, 1]: an identity effect plus image noise."""
    return np.clip(rng.beta(2, 3, size=(m, 1)) + 0.1 * rng.standard_normal((m, n)), 0.0, 1.0)


def _flat(table: np.ndarray, group: str = "g") -> tuple[np.ndarray, list[str], list[str]]:
    m, n = table.shape
    return table.ravel(), [f"{group}-{i}" for i in range(m) for _ in range(n)], [group] * (m * n)


# ------------------------------------------------------------------------------- oracles


def test_equal_counts_match_scipy_t_interval_on_identity_means():
    table = _table(np.random.default_rng(0), 7, 4)
    ci = macro_interval(*_flat(table), interval="t", bounds=None)
    means = table.mean(axis=1)
    expected = scipy_stats.t.interval(0.95, means.size - 1, loc=means.mean(), scale=scipy_stats.sem(means))
    assert (ci.low, ci.high) == pytest.approx(expected, abs=1e-12)
    assert ci.df == 6 and ci.se == pytest.approx(scipy_stats.sem(means), abs=1e-15)
    assert (ci.method, ci.n_boot) == ("t", 0)


def test_paired_t_matches_scipy_ttest_rel_on_identity_means():
    rng = np.random.default_rng(1)
    a, b = _table(rng, 9, 5), _table(rng, 9, 5)
    values_a, identities, groups = _flat(a)
    values_b, _, _ = _flat(b)
    result = paired_comparison(values_a, identities, groups, values_b, identities, groups)
    expected = scipy_stats.ttest_rel(a.mean(axis=1), b.mean(axis=1)).confidence_interval(0.95)
    assert (result.ci.low, result.ci.high) == pytest.approx(tuple(expected), abs=1e-12)
    assert result.ci.method == "t" and result.ci.df == 8
    assert "Student-t" in result.method


def test_logit_t_is_the_t_interval_on_the_logit_scale():
    table = _table(np.random.default_rng(2), 6, 3)
    t = macro_interval(*_flat(table), interval="t", bounds=None)
    lt = macro_interval(*_flat(table))
    x = t.estimate
    half = scipy_stats.t.ppf(0.975, t.df) * t.se / (x * (1 - x))
    assert special.logit(lt.low) == pytest.approx(special.logit(x) - half, abs=1e-10)
    assert special.logit(lt.high) == pytest.approx(special.logit(x) + half, abs=1e-10)
    assert (lt.method, lt.df, lt.se) == ("logit_t", t.df, t.se)


# --------------------------------------------------------------------------- closed forms


def test_unequal_counts_use_the_ratio_variance_by_hand():
    # Identities: a = [1, 0] (T 1, n 2), b = [1] (T 1, n 1), c = [0, 0, 0] (T 0, n 3).
    values = [1.0, 0.0, 1.0, 0.0, 0.0, 0.0]
    identities = ["a", "a", "b", "c", "c", "c"]
    ci = macro_interval(values, identities, ["g"] * 6, interval="t", bounds=None)
    r = 2 / 6  # the group mean over queries
    u = np.array([1 - 2 * r, 1 - 1 * r, 0 - 3 * r]) / 2.0  # (T_i - R n_i) / mean(n)
    assert ci.estimate == pytest.approx(r)
    assert ci.se**2 == pytest.approx(u @ u / (3 * 2), abs=1e-15)
    assert ci.df == 2


def test_satterthwaite_combines_groups():
    # Group x: identity means 0.2, 0.4, 0.6 -> V = 0.04 / 3; group y: 0.5, 0.9 -> V = 0.04.
    values = [0.2, 0.4, 0.6, 0.5, 0.9]
    groups = ["x", "x", "x", "y", "y"]
    ci = macro_interval(values, list("abcde"), groups, interval="t", bounds=None)
    c1, c2 = (0.04 / 3) / 4, 0.04 / 4
    assert ci.se**2 == pytest.approx(c1 + c2, abs=1e-15)
    assert ci.df == pytest.approx((c1 + c2) ** 2 / (c1**2 / 2 + c2**2 / 1))
    assert satterthwaite([(c1, 2.0), (c2, 1.0)]) == pytest.approx((ci.se**2, ci.df))


def test_satterthwaite_of_nothing_is_zero():
    assert satterthwaite([(0.0, 0.0), (0.0, 3.0)]) == (0.0, None)


def test_single_identity_group_uses_its_queries():
    values = np.linspace(0.1, 0.9, 9)
    ci = macro_interval(values, ["only"] * 9, ["g"] * 9, interval="t", bounds=None)
    assert ci.se == pytest.approx(scipy_stats.sem(values))
    assert ci.df == 8
    assert len(ci.warnings) == 1 and "single identity" in ci.warnings[0]


def test_single_query_and_constant_values_never_get_a_zero_width_interval():
    # issue 21: a finite sample that shows no spread gets the worst-case (binomial) interval, said in words
    one = macro_interval([0.3], ["i"], ["g"])
    assert one.low < 0.3 < one.high and (one.df, one.se) == (None, 0.0)
    assert any("cannot be estimated" in w for w in one.warnings)
    constant = macro_interval([0.25] * 12, [f"i{k // 3}" for k in range(12)], ["g"] * 12)
    assert constant.low < 0.25 < constant.high and constant.high - constant.low > 0.3


def test_t_interval_clips_to_bounds_and_logit_stays_inside():
    assert t_interval(0.95, 0.01, 4.0, 0.95, bounds=(0.0, 1.0))[1] == 1.0
    low, high = t_interval(0.95, 0.01, 4.0, 0.95, bounds=(0.0, 1.0), logit=True)
    assert 0.0 < low < 0.95 < high < 1.0
    # Cosines: a (-1, 1) range is mapped to (0, 1) first.
    low, high = t_interval(0.5, 0.001, 10.0, 0.95, bounds=(-1.0, 1.0), logit=True)
    assert -1.0 < low < 0.5 < high < 1.0


def test_few_identity_warnings():
    values = np.random.default_rng(3).random(30)
    identities = [f"i{k // 3}" for k in range(30)]  # 10 identities of 3 queries
    groups = ["big"] * 18 + ["small"] * 12  # 6 and 4 identities
    ci = macro_interval(values, identities, groups)
    assert len(ci.warnings) == 1 and "'small' has only 4 identities" in ci.warnings[0]
    assert macro_interval(values, identities, groups, min_identities=7).warnings[0].startswith("group 'big'")
    assert macro_interval(values, identities, groups, min_identities=1).warnings == ()


def test_bootstrap_option_is_the_hierarchical_bootstrap():
    values = np.random.default_rng(4).random(24)
    identities = [f"i{k // 6}" for k in range(24)]  # 4 identities: a warning
    chosen = macro_interval(values, identities, ["g"] * 24, interval="bootstrap", n_boot=300, seed=5)
    direct = hierarchical_bootstrap(values, identities, ["g"] * 24, n_boot=300, seed=5)
    assert (chosen.low, chosen.high, chosen.method, chosen.n_boot) == (direct.low, direct.high, "bootstrap", 300)
    assert chosen.warnings and not direct.warnings


def test_by_group_and_order_invariance():
    rng = np.random.default_rng(5)
    values = rng.random(40)
    identities = np.array([f"i{k // 4}" for k in range(40)])
    groups = np.where(np.arange(40) < 16, "a", "b")
    cis = macro_interval_by_group(values, identities, groups, interval="t")
    assert list(cis) == ["a", "b"]
    assert cis["a"] == macro_interval(values[:16], identities[:16], groups[:16], interval="t")
    order = rng.permutation(40)
    shuffled = macro_interval(values[order], identities[order], groups[order])
    assert shuffled.low == pytest.approx(macro_interval(values, identities, groups).low, abs=1e-14)


def test_to_dict_is_json_serialisable():
    ci = macro_interval([0.1, 0.9, 0.5, 0.4], ["a", "b", "c", "c"], ["g"] * 4)
    data = json.loads(json.dumps(ci.to_dict()))
    assert data["method"] == "logit_t" and data["n_boot"] == 0 and isinstance(data["warnings"], list)
    assert isinstance(ci, ConfidenceInterval)


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"interval": "bca"}, r"interval must be one of \['logit_t', 't', 'bootstrap'\]"),
        ({"bounds": (1.0, 0.0)}, "bounds must be finite with low < high"),
        ({"bounds": "01"}, "bounds must be None or a pair"),
        ({"bounds": (0.0, 0.5)}, r"values must lie within bounds \(0, 0.5\); 1 do not"),
        ({"bounds": None}, "interval='logit_t' needs the metric's bounds"),
        ({"confidence": 1.0}, "confidence must be strictly between 0 and 1"),
        ({"n_boot": 0}, "n_boot must be an integer >= 1"),
        ({"seed": -1}, "seed must be an integer >= 0"),
        ({"min_identities": 0}, "min_identities must be an integer >= 1"),
    ],
)
def test_invalid_options_raise_input_error(kwargs, match):
    with pytest.raises(InputError, match=match):
        macro_interval([0.1, 0.9, 0.3], ["a", "b", "c"], ["g"] * 3, **kwargs)


def test_rounding_just_outside_the_bounds_is_accepted():
    ci = macro_interval([1.0 + 1e-7, 0.5, 0.7], ["a", "b", "c"], ["g"] * 3, bounds=(-1.0, 1.0))
    assert ci.high <= 1.0 + 1e-6


def test_paired_interval_option_is_checked():
    with pytest.raises(InputError, match=r"interval must be one of \['t', 'bootstrap'\]"):
        paired_comparison([0.1], ["x"], ["g"], [0.2], ["x"], ["g"], interval="logit_t")


def test_paired_warns_when_the_permutation_test_cannot_reject():
    rng = np.random.default_rng(6)
    a, b = _table(rng, 4, 3), _table(rng, 4, 3)
    values_a, identities, groups = _flat(a)
    result = paired_comparison(values_a, identities, groups, _flat(b)[0], identities, groups)
    assert any("cannot go below 0.125" in note for note in result.warnings)
    assert any("only 4 identities" in note for note in result.warnings)
    assert json.loads(json.dumps(result.to_dict()))["warnings"] == list(result.warnings)


# ----------------------------------------------------------------------------- properties


@st.composite
def _datasets(draw):
    values, identities, groups = [], [], []
    for g in range(draw(st.integers(1, 3))):
        for i in range(draw(st.integers(1, 5))):
            size = draw(st.integers(1, 4))
            values += draw(st.lists(st.floats(0.0, 1.0, allow_subnormal=False), min_size=size, max_size=size))
            identities += [f"i{i}"] * size
            groups += [f"g{g}"] * size
    return values, identities, groups


@settings(max_examples=60, deadline=None)
@given(data=_datasets(), interval=st.sampled_from(["logit_t", "t"]), confidence=st.floats(0.5, 0.99))
def test_interval_properties(data, interval, confidence):
    values, identities, groups = data
    ci = macro_interval(values, identities, groups, interval=interval, confidence=confidence)
    tol = 1e-12
    assert ci.estimate == pytest.approx(macro_mean(values, groups), abs=tol)
    assert 0.0 - tol <= ci.low <= ci.estimate + tol <= ci.high + 2 * tol <= 1.0 + 3 * tol
    wider = macro_interval(values, identities, groups, interval=interval, confidence=0.995)
    assert wider.low <= ci.low + tol and wider.high >= ci.high - tol
    assert macro_interval(values, identities, groups, interval=interval, confidence=confidence) == ci
    assert math.isfinite(ci.se)


# ----------------------------------------------------------------------------- the report


def report_from_rows(rows: list[dict]) -> Report:
    """A minimal report holding ``rows`` (encoder, method, identity, group, ap, ...), summarised by the library."""
    from fp_rank.reporting.aggregate import summarise

    encoders = list(dict.fromkeys(r["encoder"] for r in rows))
    methods = sorted({r["method"] for r in rows})
    results = summarise(rows, [], encoders=encoders, methods=methods, ks=(1,))
    return Report(results=results, queries=rows, metadata=valid_metadata(encoders))


def toy_rows(methods=("A", "B"), groups=(("wren", 6), ("tern", 3)), n=4, seed=0) -> list[dict]:
    rng = np.random.default_rng(seed)
    rows = []
    for shift, method in zip((0.1, 0.0, -0.1), methods):
        for group, m in groups:
            for i in range(m):
                base = rng.beta(3, 3)
                for k in range(n):
                    ap = float(np.clip(base + shift + 0.1 * rng.standard_normal(), 0, 1))
                    rows.append({"encoder": "enc", "method": method, "identity": f"{group}{i}", "group": group,
                                 "ap": ap, "cmc1": float(ap > 0.5), "pairwise": 0.6 + 0.1 * ap,
                                 # the other columns a saved report's rows carry (the schema requires them)
                                 "file": f"{method}/{group}{i}/{k}.png", "first_hit_rank": 1,
                                 "top1_identity": f"{group}{i}", "chance_ap": 0.1, "n_relevant": 5, "n_gallery": 50,
                                 "tied": False})
    return rows


def test_add_intervals_records_method_and_few_identity_warnings():
    report = fp_rank.add_intervals(report_from_rows(toy_rows()))
    stats = report.metadata["statistics"]
    assert stats["interval_method"] == "logit_t" and stats["n_boot"] == 0
    assert "logit scale" in stats["method"]
    assert stats["warnings"] == [w for w in stats["warnings"] if "'tern' has only 3 identities" in w]
    assert len(stats["warnings"]) == 1
    result = report.results[0]
    assert result.intervals["map"]["method"] == "logit_t"
    assert result.intervals["per_group"]["tern"]["map"]["warnings"]
    assert not result.intervals["per_group"]["wren"]["map"]["warnings"]
    assert -1.0 <= result.intervals["pairwise"]["low"] <= result.intervals["pairwise"]["high"] <= 1.0
    markdown = fp_rank.to_markdown(report)
    assert "95% CIs: Student t on the logit scale" in markdown
    assert "Note: group 'tern' has only 3 identities" in markdown


def test_bootstrap_intervals_in_a_report_keep_the_old_caption():
    from fp_rank.analysis.statistics import add_intervals

    report = add_intervals(report_from_rows(toy_rows()), n_boot=50, interval="bootstrap")
    assert report.metadata["statistics"]["n_boot"] == 50
    assert report.results[0].intervals["map"]["method"] == "bootstrap"
    assert "hierarchical bootstrap over identities then queries, 50 replicates" in fp_rank.to_markdown(report)


def test_report_intervals_follow_the_schema():
    import jsonschema

    from fp_rank.reporting.report import report_schema

    report = fp_rank.add_intervals(report_from_rows(toy_rows()))
    data = json.loads(report.to_json())
    schema = report_schema()["properties"]
    jsonschema.validate(data["metadata"]["statistics"], schema["metadata"]["properties"]["statistics"])
    for result in data["results"]:
        jsonschema.validate(result["intervals"], schema["results"]["items"]["properties"]["intervals"])
