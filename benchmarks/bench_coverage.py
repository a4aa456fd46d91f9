"""Benchmark 7: coverage of the nominal 95% intervals and the planner's power, at the benchmark's sizes.

    python benchmarks/bench_coverage.py --out coverage.json [--datasets 2000] [--seed 0]

Data come from :mod:`fp_rank.stats.simulation` (groups -> identities -> queries, all Beta, with
a known true macro mean): the designs of ``BENCHMARK_DESIGNS`` (CUB 3 x 5 x 10, Stanford Cars
1 x 15 x 10, a WildlifeReID species 1 x 10 x 10, and 2 x 20 x 3..7) under both variance
structures of ``VARIANCE_STRUCTURES``. Per cell (design x structure):

* coverage: ``--datasets`` datasets; the share whose interval holds the truth, for the macro
  mean (``logit_t``, the default; ``t``; the percentile bootstrap with 400 replicates, the old
  default) and every group's mean (``logit_t``);
* comparisons: ``--datasets`` pairs of methods on the same identities (identity means tied by a
  Gaussian copula with correlation 0.7, A better by ``delta`` in every group), for ``delta`` =
  0, half the planner's minimum detectable difference (MDD) and the MDD: coverage of the paired
  t interval, its power (share of intervals excluding 0), the permutation test's power, and the
  planner's predicted power from the true components and from each simulated pilot;
* images needed: the planner's answer for the MDD at 20 images per identity, checked by
  simulating at that many images.

Deterministic: every dataset has its own seed derived from ``--seed``, the cell and its index.
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import parse_args, write_result  # noqa: E402

#: Correlation of the two methods' identity means in the comparisons.
CORRELATION = 0.7
#: Replicates of the old (bootstrap) interval.
N_BOOT = 400
#: What "holds its coverage" means here, for nominal 95% intervals.
COVERAGE_BAND = (0.93, 0.975)
#: Largest allowed gap between predicted and simulated power.
POWER_TOLERANCE = 0.05
#: Images per identity for the images-needed check.
TARGET_QUERIES = 20


def _covers(ci: Any, truth: float) -> bool:
    return bool(ci.low <= truth <= ci.high)


def _rejects(ci: Any) -> bool:
    return bool(ci.low > 0.0 or ci.high < 0.0)


def coverage_cell(design: Any, n_datasets: int, seed: list[int]) -> dict[str, Any]:
    """Coverage of the macro and per-group intervals over ``n_datasets`` simulated datasets."""
    from fp_rank.stats import hierarchical_bootstrap, macro_interval, macro_interval_by_group

    macro = {"logit_t": 0, "t": 0, "bootstrap": 0}
    per_group = np.zeros(len(design.group_means))
    for index in range(n_datasets):
        values, identities, groups = design.sample(np.random.default_rng([*seed, index]))
        macro["logit_t"] += _covers(macro_interval(values, identities, groups), design.truth)
        macro["t"] += _covers(macro_interval(values, identities, groups, interval="t"), design.truth)
        boot = hierarchical_bootstrap(values, identities, groups, n_boot=N_BOOT, seed=index)
        macro["bootstrap"] += _covers(boot, design.truth)
        by_group = macro_interval_by_group(values, identities, groups)
        per_group += [_covers(by_group[f"g{g}"], mu) for g, mu in enumerate(design.group_means)]
    return {
        "macro": {name: count / n_datasets for name, count in macro.items()},
        "per_group_logit_t": (per_group / n_datasets).tolist(),
    }


def comparison_cell(design: Any, delta: float, n_datasets: int, seed: list[int]) -> dict[str, Any]:
    """Paired interval coverage and power, and the planner's predictions, at one ``delta``."""
    from fp_rank.stats import paired_comparison, paired_variance_components, predicted_power

    covered = rejected = permutation = 0
    pilot = []
    for index in range(n_datasets):
        rng = np.random.default_rng([*seed, index])
        a, b, identities, groups = design.sample_pair(rng, delta, CORRELATION)
        result = paired_comparison(a, identities, groups, b, identities, groups, n_permutations=999,
                                   seed=index)
        covered += _covers(result.ci, delta)
        rejected += _rejects(result.ci)
        permutation += result.p_value <= 0.05
        components = paired_variance_components(a, identities, groups, b, identities, groups)
        pilot.append(predicted_power(components, delta) if delta > 0 else 0.05)
    pilot_power = np.asarray(pilot)
    true_components = design.paired_components(delta, CORRELATION)
    return {
        "delta": delta,
        "coverage": covered / n_datasets,
        "simulated_power": rejected / n_datasets,
        "permutation_power": permutation / n_datasets,
        "predicted_power": predicted_power(true_components, delta) if delta > 0 else 0.05,
        "pilot_power_mean": float(pilot_power.mean()),
        "pilot_power_median": float(np.median(pilot_power)),
        "pilot_power_q10": float(np.quantile(pilot_power, 0.1)),
        "pilot_power_q90": float(np.quantile(pilot_power, 0.9)),
    }


def images_needed_cell(design: Any, n_datasets: int, seed: list[int]) -> dict[str, Any]:
    """The planner's images per identity for the MDD at TARGET_QUERIES, checked by simulation."""
    from fp_rank.stats import minimum_detectable_difference, predicted_power, required_queries_per_identity
    from fp_rank.stats.planning import MAX_QUERIES_PER_IDENTITY

    base = design.paired_components(0.0, CORRELATION)
    delta = minimum_detectable_difference(base, queries_per_identity=TARGET_QUERIES)
    components = design.paired_components(delta, CORRELATION)
    needed = required_queries_per_identity(components, delta)
    if needed is None:  # not reachable with more images: nothing to simulate
        unlimited = predicted_power(components, delta, queries_per_identity=MAX_QUERIES_PER_IDENTITY)
        return {"delta": delta, "required_queries_per_identity": None, "max_power": unlimited}
    checked = replace(design, queries_per_identity=needed)
    run = comparison_cell(checked, delta, n_datasets, seed)
    return {
        "delta": delta,
        "required_queries_per_identity": needed,
        "predicted_power": predicted_power(checked.paired_components(delta, CORRELATION), delta),
        "simulated_power": run["simulated_power"],
        "coverage": run["coverage"],
    }


def run(n_datasets: int, seed: int) -> dict[str, Any]:
    from fp_rank.stats import minimum_detectable_difference
    from fp_rank.stats.simulation import BENCHMARK_DESIGNS, VARIANCE_STRUCTURES, benchmark_design

    cells = []
    for d_index, name in enumerate(BENCHMARK_DESIGNS):
        for s_index, structure in enumerate(VARIANCE_STRUCTURES):
            start = time.perf_counter()
            design = benchmark_design(name, structure)
            cell_seed = [seed, d_index, s_index]
            mdd = minimum_detectable_difference(design.paired_components(0.0, CORRELATION))
            cell = {
                "design": name,
                "structure": structure,
                "groups": len(design.group_means),
                "identities_per_group": design.identities_per_group,
                "queries_per_identity": design.queries_per_identity,
                "group_means": list(design.group_means),
                "concentrations": [design.identity_concentration, design.query_concentration],
                **coverage_cell(design, n_datasets, [*cell_seed, 0]),
                "comparisons": [
                    comparison_cell(design, delta, n_datasets, [*cell_seed, 1, k])
                    for k, delta in enumerate((0.0, mdd / 2.0, mdd))
                ],
                "images_needed": images_needed_cell(design, n_datasets, [*cell_seed, 2]),
            }
            cell["seconds"] = time.perf_counter() - start
            print(f"{name} / {structure}: macro {cell['macro']['logit_t']:.3f}, "
                  f"power {cell['comparisons'][-1]['simulated_power']:.3f} vs predicted "
                  f"{cell['comparisons'][-1]['predicted_power']:.3f} ({cell['seconds']:.0f} s)", flush=True)
            cells.append(cell)
    return {
        "settings": {
            "datasets_per_cell": n_datasets,
            "seed": seed,
            "correlation": CORRELATION,
            "n_boot_old_interval": N_BOOT,
            "coverage_band": list(COVERAGE_BAND),
            "power_tolerance": POWER_TOLERANCE,
            "variance_structures": {k: list(v) for k, v in VARIANCE_STRUCTURES.items()},
        },
        "cells": cells,
        **checks(cells),
    }


# ------------------------------------------------------------------------------ the verdict


def _interval_coverages(cell: dict[str, Any]) -> list[float]:
    """Every default interval's coverage in a cell: macro, each group, each paired delta."""
    checked = [c for c in (*cell["comparisons"], cell["images_needed"]) if "coverage" in c]
    return [cell["macro"]["logit_t"], *cell["per_group_logit_t"], *(c["coverage"] for c in checked)]


def _power_gaps(cell: dict[str, Any]) -> list[float]:
    rows = [c for c in (*cell["comparisons"], cell["images_needed"]) if c["delta"] > 0 and "simulated_power" in c]
    return [abs(c["predicted_power"] - c["simulated_power"]) for c in rows]


def checks(cells: list[dict[str, Any]]) -> dict[str, Any]:
    coverages = [x for cell in cells for x in _interval_coverages(cell)]
    gaps = [x for cell in cells for x in _power_gaps(cell)]
    pilot_gaps = [
        abs(c["pilot_power_median"] - c["simulated_power"])
        for cell in cells for c in cell["comparisons"] if c["delta"] > 0
    ]
    low, high = COVERAGE_BAND
    return {
        "coverage_min": min(coverages),
        "coverage_max": max(coverages),
        "coverage_met": all(low <= x <= high for x in coverages),
        "power_gap_max": max(gaps),
        "power_met": max(gaps) <= POWER_TOLERANCE,
        "pilot_median_gap_max": max(pilot_gaps),
    }


# ------------------------------------------------------------------------------ rendering


def summary_rows(c: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """Rows of BENCHMARKS.md's summary table."""
    if not c.get("cells"):
        return []
    low, high = c["settings"]["coverage_band"]
    n = c["settings"]["datasets_per_cell"]
    met = "**met**" if c["coverage_met"] else "**not met**"
    power_met = "**met**" if c["power_met"] else "**not met**"
    return [
        (f"7. Coverage of every nominal 95% interval, {len(c['cells'])} design x variance cells, "
         f"{n:,} datasets each",
         f"{c['coverage_min']:.3f} to {c['coverage_max']:.3f}", f"{low} to {high}", met),
        ("7. Planner: predicted vs simulated power, same cells",
         f"largest gap {c['power_gap_max']:.3f} (from one pilot, median: {c['pilot_median_gap_max']:.3f})",
         f"<= {c['settings']['power_tolerance']}", power_met),
    ]


def _cell_label(cell: dict[str, Any]) -> str:
    queries = cell["queries_per_identity"]
    q = f"{queries[0]}..{queries[1]}" if isinstance(queries, list) else str(queries)
    return f"{cell['design']} ({cell['groups']} x {cell['identities_per_group']} x {q})"


def section(c: dict[str, Any]) -> list[str]:
    """The BENCHMARKS.md section."""
    if not c.get("cells"):
        return []
    s = c["settings"]
    structures = s["variance_structures"]
    out = ["## 7. Interval coverage and the planner", "",
           f"`benchmarks/bench_coverage.py`: {s['datasets_per_cell']:,} simulated datasets per cell, seed "
           f"{s['seed']} (standard error of a coverage near 0.95: "
           f"{(0.95 * 0.05 / s['datasets_per_cell']) ** 0.5:.3f}; of a power near 0.8: "
           f"{(0.8 * 0.2 / s['datasets_per_cell']) ** 0.5:.3f}). Scores follow `fp_rank.stats.simulation`: identity "
           "mean `p ~ Beta(k_id mu_g, k_id (1 - mu_g))` around the group's true mean, query score "
           "`y ~ Beta(k_q p, k_q (1 - p))`, so the true macro mean is the mean of the `mu_g`. Variance "
           f"structures: **identity** variance dominates (k_id = {structures['identity'][0]:g}, "
           f"k_q = {structures['identity'][1]:g}: identity sd 0.22, image sd 0.07 at mu 0.5) and **query** "
           f"variance dominates (k_id = {structures['query'][0]:g}, k_q = {structures['query'][1]:g}: identity "
           "sd 0.08, images nearly uniform, sd 0.35). Group means: CUB 0.35 / 0.55 / 0.75, Cars 0.6, "
           "WildlifeReID 0.4, 2 x 20 0.3 / 0.6 (3 to 7 queries per identity, unequal).", "",
           "The default interval (`logit_t`): per group, the identity-clustered (CR1) variance of the group "
           "mean, Student t with Satterthwaite degrees of freedom across groups, on the logit scale of [0, 1]. "
           f"`bootstrap` is the old default (percentile hierarchical bootstrap, {s['n_boot_old_interval']} "
           "replicates). Paired difference: t on the per-identity differences.", "",
           "| design | variance | macro `logit_t` | each group `logit_t` | macro `t` | macro `bootstrap` (old) "
           "| paired `t`, delta = 0 / MDD/2 / MDD |",
           "|---|---|---|---|---|---|---|"]
    for cell in c["cells"]:
        groups = " / ".join(f"{x:.3f}" for x in cell["per_group_logit_t"])
        paired = " / ".join(f"{x['coverage']:.3f}" for x in cell["comparisons"])
        out.append(f"| {_cell_label(cell)} | {cell['structure']} | {cell['macro']['logit_t']:.3f} | {groups} | "
                   f"{cell['macro']['t']:.3f} | {cell['macro']['bootstrap']:.3f} | {paired} |")
    out += ["", f"Every default interval (macro, per group, paired): coverage {c['coverage_min']:.3f} to "
            f"{c['coverage_max']:.3f}, target {s['coverage_band'][0]} to {s['coverage_band'][1]}.", "",
            "**Planner** (`Report.plan`, `fp-rank plan`): power of the paired interval (it excludes 0) for a "
            f"difference delta, two methods with identity means correlated {s['correlation']:g}. *Predicted*: the "
            "planner's power from the true variance components; *from one pilot*: from each simulated dataset "
            "used as a pilot (median, and 10th to 90th percentile across pilots); *simulated*: the share of "
            "datasets whose interval excluded 0. MDD = the planner's minimum detectable difference at power 0.8. "
            "The permutation test's power is shown for reference (with 10 identities or fewer its p-value is "
            "coarse).", "",
            "| design | variance | delta | predicted | simulated | gap | from one pilot | permutation test |",
            "|---|---|---|---|---|---|---|---|"]
    for cell in c["cells"]:
        for x in cell["comparisons"]:
            if x["delta"] == 0:
                continue
            out.append(f"| {_cell_label(cell)} | {cell['structure']} | {x['delta']:.3f} | {x['predicted_power']:.3f} | "
                       f"{x['simulated_power']:.3f} | {abs(x['predicted_power'] - x['simulated_power']):.3f} | "
                       f"{x['pilot_power_median']:.3f} [{x['pilot_power_q10']:.2f}, {x['pilot_power_q90']:.2f}] | "
                       f"{x['permutation_power']:.3f} |")
    out += ["", "Type I error (delta = 0; nominal 0.05): paired interval "
            + ", ".join(f"{cell['design']} / {cell['structure']} {cell['comparisons'][0]['simulated_power']:.3f}"
                        for cell in c["cells"]) + ".", "",
            f"**Images needed**: for the MDD at {TARGET_QUERIES} images per identity, the planner's number of "
            "images per identity and method, and the power simulated at that number:", "",
            "| design | variance | delta | images per identity | predicted | simulated |", "|---|---|---|---|---|---|"]
    # Where identity variation dominates, power hardly moves with the number of images, so the
    # number found for a power just above or below 0.8 is erratic (and may be unreachable).
    for cell in c["cells"]:
        x = cell["images_needed"]
        if x["required_queries_per_identity"] is None:
            out.append(f"| {_cell_label(cell)} | {cell['structure']} | {x['delta']:.3f} | not reachable (unlimited "
                       f"images: power {x['max_power']:.3f}) | - | - |")
            continue
        out.append(f"| {_cell_label(cell)} | {cell['structure']} | {x['delta']:.3f} | "
                   f"{x['required_queries_per_identity']} | {x['predicted_power']:.3f} | {x['simulated_power']:.3f} |")
    out += ["", f"Largest gap between predicted and simulated power: {c['power_gap_max']:.3f} (target <= "
            f"{s['power_tolerance']}). A single pilot's prediction scatters around it (the columns in brackets): "
            "with 5 identities per group the pilot's own variance estimate has 4 degrees of freedom per group.", ""]
    return out


def main() -> None:
    def extra(parser: Any) -> None:
        parser.add_argument("--datasets", type=int, default=2000, help="simulated datasets per cell (default 2000)")
        parser.add_argument("--seed", type=int, default=0)

    args = parse_args(__doc__.splitlines()[0], extra)
    n_datasets = 100 if args.quick else args.datasets
    start = time.perf_counter()
    result = run(n_datasets, args.seed)
    result["seconds"] = time.perf_counter() - start
    write_result(args.out, result)


if __name__ == "__main__":
    main()
