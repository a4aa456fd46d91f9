"""The planner: closed forms, round trips, pilot estimates, validation, Report.plan and the CLI."""

from __future__ import annotations

import fp_rank

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as scipy_stats

from fp_rank.cli import main
from fp_rank.errors import InputError
from fp_rank.stats import (
    Plan,
    VarianceComponents,
    minimum_detectable_difference,
    paired_comparison,
    paired_variance_components,
    plan_comparison,
    predicted_power,
    required_queries_per_identity,
    variance_components,
)
from fp_rank.stats.planning import design_variance, plan_from_components
from tests.test_stats_intervals import report_from_rows, toy_rows


def _components(tau=0.01, w=0.2, m=10, n=10.0, groups=1):
    return {f"g{k}": VarianceComponents(f"g{k}", m, n, tau, w) for k in range(groups)}


# --------------------------------------------------------------------------- closed forms


def test_design_variance_closed_form():
    c = _components(tau=0.01, w=0.2, m=10, n=10.0, groups=2)
    variance, df = design_variance(c)
    per_group = (0.01 + 0.2 / 10) / (10 * 4)
    assert variance == pytest.approx(2 * per_group)
    assert df == pytest.approx(18.0)  # equal groups: the df add up
    assert design_variance(c, 40)[0] == pytest.approx(2 * (0.01 + 0.2 / 40) / 40)


def test_power_is_the_noncentral_t_formula():
    c = _components()
    variance, df = design_variance(c)
    ncp = 0.08 / np.sqrt(variance)
    critical = scipy_stats.t.ppf(0.975, df)
    expected = scipy_stats.nct.sf(critical, df, ncp) + scipy_stats.nct.cdf(-critical, df, ncp)
    assert predicted_power(c, 0.08) == pytest.approx(expected, abs=1e-12)
    assert predicted_power(c, -0.08) == pytest.approx(expected, abs=1e-12)
    assert predicted_power(c, 1e-9) == pytest.approx(0.05, abs=1e-6)


def test_power_grows_with_delta_and_images():
    c = _components()
    powers = [predicted_power(c, d) for d in (0.02, 0.05, 0.1, 0.2)]
    assert powers == sorted(powers)
    by_n = [predicted_power(c, 0.05, queries_per_identity=n) for n in (2, 10, 50)]
    assert by_n == sorted(by_n)


def test_minimum_detectable_difference_round_trip():
    c = _components(groups=3, m=5)
    for power in (0.5, 0.8, 0.95):
        mdd = minimum_detectable_difference(c, power=power)
        assert predicted_power(c, mdd) == pytest.approx(power, abs=1e-8)
    assert minimum_detectable_difference(_components(tau=0.0, w=0.0)) == 0.0


def test_required_queries_is_the_smallest_enough():
    c = _components(tau=0.002, w=0.2)
    needed = required_queries_per_identity(c, 0.06)
    assert predicted_power(c, 0.06, queries_per_identity=needed) >= 0.8
    assert predicted_power(c, 0.06, queries_per_identity=needed - 1) < 0.8
    assert required_queries_per_identity(c, 0.5) == 1


def test_identity_variance_caps_the_power():
    c = _components(tau=0.05, w=0.2)  # identity variation dominates
    assert required_queries_per_identity(c, 0.05) is None
    plan = plan_from_components(c, delta=0.05)
    assert plan.required_queries_per_identity is None and plan.max_power < 0.8
    assert "not reachable" in plan.summary() and "more identities" in plan.summary()


# ------------------------------------------------------------------------ pilot estimates


def test_variance_components_method_of_moments():
    table = np.array([[0.9, 0.7, 0.8], [0.3, 0.1, 0.2], [0.5, 0.6, 0.4]])
    values = table.ravel()
    identities = [f"i{k // 3}" for k in range(9)]
    (c,) = variance_components(values, identities, ["g"] * 9).values()
    within = np.mean(table.var(axis=1, ddof=1))
    assert c.query_variance == pytest.approx(within)
    assert c.identity_variance == pytest.approx(table.mean(axis=1).var(ddof=1) - within / 3)
    assert c.pilot_variance == pytest.approx(table.mean(axis=1).var(ddof=1))
    assert (c.n_identities, c.queries_per_identity) == (3, 3.0)


def test_negative_moment_estimate_is_truncated_but_keeps_the_pilot_variance():
    # Identity means identical, images scatter: var(means) = 0 < noise.
    values = [0.0, 1.0, 1.0, 0.0, 0.5, 0.5]
    (c,) = variance_components(values, ["a", "a", "b", "b", "c", "c"], ["g"] * 6).values()
    assert c.identity_variance == 0.0 and c.pilot_variance == 0.0
    assert c.mean_variance() == 0.0 and c.mean_variance(20) == 0.0


def test_plan_at_the_pilots_size_matches_the_paired_interval():
    rng = np.random.default_rng(0)
    sizes = rng.integers(2, 7, size=12)  # unequal counts
    identities = np.repeat([f"i{k}" for k in range(12)], sizes)
    groups = np.where(np.repeat(np.arange(12), sizes) < 5, "x", "y")
    effect = np.repeat(rng.beta(2, 2, size=12), sizes)
    a = np.clip(effect + 0.2 * rng.standard_normal(sizes.sum()), 0, 1)
    b = np.clip(effect - 0.05 + 0.2 * rng.standard_normal(sizes.sum()), 0, 1)
    plan = plan_comparison(a, identities, groups, b, identities, groups, delta=0.05)
    result = paired_comparison(a, identities, groups, b, identities, groups)
    assert plan.standard_error == pytest.approx(result.ci.se, rel=1e-12)
    assert plan.df == pytest.approx(result.ci.df, rel=1e-12)
    assert plan.methods == ("A", "B") and set(plan.method_components) == {"A", "B"}


def test_paired_components_hand_case():
    c = paired_variance_components(
        [0.9, 0.7, 0.3, 0.1], ["a", "a", "b", "b"], ["g"] * 4,
        [0.8, 0.6, 0.1, 0.1], ["a", "a", "b", "b"], ["g"] * 4,
    )["g"]
    assert c.query_variance == pytest.approx(0.02 + 0.01)
    assert c.pilot_variance == pytest.approx(0.0)  # both identities differ by 0.1


def test_one_method_pilot_assumes_the_second_is_alike():
    rows = toy_rows(methods=("A",))
    values = np.array([r["ap"] for r in rows])
    identities = [r["identity"] for r in rows]
    groups = [r["group"] for r in rows]
    own = variance_components(values, identities, groups)
    for rho in (0.0, 0.5, 1.0):
        plan = plan_comparison(values, identities, groups, identity_correlation=rho, methods=("A", "B"))
        assert plan.methods == ("A",)
        for name, c in plan.components.items():
            assert c.identity_variance == pytest.approx(2 * (1 - rho) * own[name].identity_variance)
            assert c.query_variance == pytest.approx(2 * own[name].query_variance)
        assert "correlated" in plan.assumptions[0]
    independent = plan_comparison(values, identities, groups)
    # rho = 0: two independent identity means, so the variance is twice one method's.
    assert independent.components["wren"].pilot_variance == pytest.approx(2 * own["wren"].pilot_variance)


def test_single_identities_and_single_images_are_refused_in_words():
    # what cannot be estimated is refused (issue 21), no longer planned with a note
    with pytest.raises(InputError, match=r"single identity in group\(s\) \['g'\]"):
        plan_comparison([0.2, 0.4, 0.9, 0.1], ["a", "a", "b", "c"], ["g", "g", "h", "h"])
    with pytest.raises(InputError, match="one image per identity"):
        plan_comparison([0.2, 0.4, 0.9, 0.1], ["a", "b", "c", "d"], ["g", "g", "h", "h"])


def test_plan_to_dict_is_json():
    plan = plan_from_components(_components(), delta=0.05)
    data = json.loads(json.dumps(plan.to_dict()))
    assert data["delta"] == 0.05 and data["components"]["g0"]["n_identities"] == 10
    assert isinstance(plan, Plan)


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"delta": 0.0}, "delta must be a positive difference"),
        ({"delta": float("nan")}, "delta must be a finite number"),
        ({"power": 0.01}, r"power must exceed alpha \(0.05\)"),
        ({"power": 1.0}, "power must be a number strictly between 0 and 1"),
        ({"alpha": 0.0}, "alpha must be a number strictly between 0 and 1"),
        ({"identity_correlation": 1.5}, r"identity_correlation must lie in \[-1, 1\]"),
        ({"values_b": [0.1, 0.2]}, "values_b, identities_b and groups_b go together"),
    ],
)
def test_plan_comparison_invalid(kwargs, match):
    with pytest.raises(InputError, match=match):
        plan_comparison([0.1, 0.3, 0.5, 0.7], ["a", "a", "b", "b"], ["g"] * 4, **kwargs)


def test_prediction_functions_invalid():
    with pytest.raises(InputError, match="components must be a non-empty mapping"):
        predicted_power({}, 0.1)
    with pytest.raises(InputError, match=r"components\['g'\] must be a VarianceComponents"):
        predicted_power({"g": (1, 2)}, 0.1)
    with pytest.raises(InputError, match="negative variance"):
        predicted_power({"g": VarianceComponents("g", 3, 2.0, -1.0, 0.1)}, 0.1)
    with pytest.raises(InputError, match="queries_per_identity must be a number >= 1"):
        predicted_power(_components(), 0.1, queries_per_identity=0)
    with pytest.raises(InputError, match="share no identity"):
        paired_variance_components([0.1], ["x"], ["g"], [0.2], ["y"], ["g"])


# ------------------------------------------------------------------ Report.plan and the CLI


def test_report_plan_uses_both_methods():
    report = report_from_rows(toy_rows())
    plan = fp_rank.plan(report, 0.05)
    assert plan.methods == ("A", "B") and plan.encoder == "enc"
    assert set(plan.components) == {"tern", "wren"}
    assert fp_rank.plan(report, methods=["B"]).methods == ("B",)


def test_report_plan_needs_named_methods_when_more_than_two():
    report = report_from_rows(toy_rows(methods=("A", "B", "C")))
    with pytest.raises(InputError, match="name one or two methods"):
        fp_rank.plan(report, 0.05)
    assert fp_rank.plan(report, 0.05, methods=("C", "A")).methods == ("C", "A")
    with pytest.raises(InputError, match="no scored queries for method 'Z'"):
        fp_rank.plan(report, 0.05, methods=("Z", "A"))


def test_cli_plan(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "report.json"
    report_from_rows(toy_rows()).to_json(path)
    out = tmp_path / "plan.json"
    assert main(["plan", str(path), "--delta", "0.05", "--power", "0.9", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "Plan for A - B (encoder enc)" in text and "minimum detectable difference" in text
    data = json.loads(out.read_text())
    assert data["power"] == 0.9 and data["methods"] == ["A", "B"]
    assert main(["plan", str(path), "--power", "0.01"]) == 2
    assert "power must exceed alpha" in capsys.readouterr().err
