"""Fast coverage and power checks at the benchmark's sizes (the full study: benchmarks/bench_coverage.py).

Each test simulates a few hundred datasets from :mod:`fp_rank.stats.simulation`. With 300
datasets a coverage near 0.95 has a standard error of about 0.013 and a power near 0.8 about
0.023; the tolerances below are 3 to 4 standard errors wide, so a correct method fails them
rarely, while the old percentile bootstrap (0.89 on CUB with identity variance dominating, in
BENCHMARKS.md) or a planner off by 0.1 would fail them.
"""

from __future__ import annotations

import numpy as np

from fp_rank.stats import (
    hierarchical_bootstrap,
    macro_interval,
    macro_interval_by_group,
    minimum_detectable_difference,
    paired_comparison,
    predicted_power,
)
from fp_rank.stats.simulation import benchmark_design


def test_cub_intervals_cover_where_the_bootstrap_did_not():
    design = benchmark_design("CUB", "identity")
    n = 300
    macro = bootstrap = 0
    groups_covered = np.zeros(3)
    for index in range(n):
        values, identities, groups = design.sample(np.random.default_rng([15, index]))
        ci = macro_interval(values, identities, groups)
        macro += ci.low <= design.truth <= ci.high
        by_group = macro_interval_by_group(values, identities, groups)
        groups_covered += [by_group[f"g{g}"].low <= mu <= by_group[f"g{g}"].high
                           for g, mu in enumerate(design.group_means)]
        ci = hierarchical_bootstrap(values, identities, groups, n_boot=200, seed=index)
        bootstrap += ci.low <= design.truth <= ci.high
    assert 0.91 <= macro / n <= 0.99, macro / n
    assert 0.92 <= groups_covered.sum() / (3 * n) <= 0.98, groups_covered / n
    assert bootstrap / n < macro / n


def test_paired_interval_and_planner_on_a_wildlife_species():
    design = benchmark_design("WildlifeReID species", "query")
    mdd = minimum_detectable_difference(design.paired_components(0.0, 0.7))
    predicted = predicted_power(design.paired_components(mdd, 0.7), mdd)
    n = 300
    covered = rejected = 0
    for index in range(n):
        a, b, identities, groups = design.sample_pair(np.random.default_rng([16, index]), mdd, 0.7)
        ci = paired_comparison(a, identities, groups, b, identities, groups, n_permutations=1).ci
        covered += ci.low <= mdd <= ci.high
        rejected += ci.low > 0
    assert 0.91 <= covered / n <= 0.99, covered / n
    assert abs(rejected / n - predicted) <= 0.08, (rejected / n, predicted)
