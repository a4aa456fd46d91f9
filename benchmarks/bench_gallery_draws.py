"""Does the reported gallery-draw spread match the true spread of galleries drawn from the source?

A simulated world (no images): 3 groups x 5 identities; a real image of identity i is
normalise(mu_i + 0.55 e), mu_i near its group's centre; three methods' generated images (10 per
identity) keep mu_i, lose part of it toward the group centre, or drift toward a sibling. The
queries stay fixed, as in a real evaluation; only the gallery changes.

* true spread: the SD of each method's mAP (and of each difference) over 1,000 galleries of G = 10
  images per identity drawn fresh from the source;
* reported spread: from ONE pool of G + H images per identity (the gallery split plus H holdout
  images), the SD over 200 redraws of G images per identity (``sd``), and that SD times
  sqrt((P - 1)/(P - G)) (``sd_population``, what fp-rank reports);
* repeated for 100 pools at H = 5, 10, 30: the ratio reported / true, per method and per pair.

Writes benchmarks/gallery_draws.md, benchmarks/results_gallery_draws.json and
docs/figures/gallery_draws_simulation.png.

    python benchmarks/bench_gallery_draws.py [--pools 100] [--draws 200]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fp_rank.evaluation.gallery_draws import population_factor, redraw_maps  # noqa: E402

D, GROUPS, IDS, G, Q = 32, 3, 5, 10, 10
METHODS = ("faithful", "detail-loss", "drifting")


def _normalise(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def world(rng: np.random.Generator) -> dict:
    centres = rng.standard_normal((GROUPS, D))
    mu = np.stack([centres[g] + 0.45 * rng.standard_normal(D) for g in range(GROUPS) for _ in range(IDS)])
    ids = np.arange(GROUPS * IDS)
    groups = ids // IDS
    q_emb, q_ids, q_methods = [], [], []
    for m, method in enumerate(METHODS):
        for i in ids:
            sibling = groups[i] * IDS + (i % IDS + 1) % IDS
            for _ in range(Q):
                target = {0: mu[i], 1: 0.55 * mu[i] + 0.45 * centres[groups[i]], 2: 0.4 * mu[i] + 0.6 * mu[sibling]}[m]
                q_emb.append(_normalise(target + 0.55 * rng.standard_normal(D)))
                q_ids.append(i)
                q_methods.append(method)
    q_ids = np.asarray(q_ids)
    return {"mu": mu, "ids": ids, "groups": groups, "q_emb": np.asarray(q_emb), "q_ids": q_ids,
            "q_groups": groups[q_ids], "q_methods": np.asarray(q_methods, dtype=object)}


def real_images(w: dict, per_id: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    ids = np.repeat(w["ids"], per_id)
    return _normalise(w["mu"][ids] + 0.55 * rng.standard_normal((len(ids), D))), ids


def maps_on(w: dict, emb: np.ndarray, ids: np.ndarray, in_gallery: np.ndarray, n_draws: int, seed: int):
    return redraw_maps(w["q_emb"], w["q_ids"], w["q_groups"], w["q_methods"], emb, ids, w["groups"][ids], in_gallery,
                       n_draws=n_draws, seed=seed)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pools", type=int, default=100)
    parser.add_argument("--draws", type=int, default=200)
    parser.add_argument("--fresh", type=int, default=1000)
    args = parser.parse_args()
    start = time.perf_counter()
    rng = np.random.default_rng(2026)
    w = world(rng)
    pairs = [(a, b) for i, a in enumerate(METHODS) for b in METHODS[i + 1:]]
    # the truth: fresh galleries from the source
    fresh = {m: [] for m in METHODS}
    for _ in range(args.fresh):
        emb, ids = real_images(w, G, rng)
        observed, _, _ = maps_on(w, emb, ids, np.ones(len(ids), bool), 0, 0)
        for m in METHODS:
            fresh[m].append(observed[m])
    fresh = {m: np.asarray(v) for m, v in fresh.items()}
    true_sd = {m: float(np.std(fresh[m], ddof=1)) for m in METHODS}
    true_sd.update({f"{a} - {b}": float(np.std(fresh[a] - fresh[b], ddof=1)) for a, b in pairs})
    rows = []
    for extra in (5, 10, 30):
        factor = population_factor([(G + extra, G)] * (GROUPS * IDS))
        ratios: dict[str, dict[str, list[float]]] = {k: {"sd": [], "sd_population": []} for k in true_sd}
        for p in range(args.pools):
            emb, ids = real_images(w, G + extra, rng)
            in_gallery = np.zeros(len(ids), bool)
            for i in w["ids"]:
                in_gallery[np.flatnonzero(ids == i)[:G]] = True
            _, draws, _ = maps_on(w, emb, ids, in_gallery, args.draws, p)
            for key in true_sd:
                values = draws[key] if key in draws else draws[key.split(" - ")[0]] - draws[key.split(" - ")[1]]
                sd = float(np.std(values, ddof=1))
                ratios[key]["sd"].append(sd / true_sd[key])
                ratios[key]["sd_population"].append(sd * factor / true_sd[key])
        for key, r in ratios.items():
            rows.append({"holdout_per_identity": extra, "score": key, "true_sd": true_sd[key],
                         **{f"{kind}_ratio_median": float(np.median(v)) for kind, v in r.items()},
                         **{f"{kind}_ratio_p10": float(np.percentile(v, 10)) for kind, v in r.items()},
                         **{f"{kind}_ratio_p90": float(np.percentile(v, 90)) for kind, v in r.items()},
                         "ratios": {kind: v for kind, v in r.items()}})
    seconds = time.perf_counter() - start
    _write(rows, args, seconds)


def _write(rows: list[dict], args: argparse.Namespace, seconds: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = ROOT / "benchmarks"
    (out / "results_gallery_draws.json").write_text(json.dumps(
        {"settings": vars(args) | {"gallery_per_identity": G, "identities": GROUPS * IDS, "queries_per_identity": Q},
         "seconds": seconds, "rows": [{k: v for k, v in r.items() if k != "ratios"} for r in rows]}, indent=2) + "\n")
    lines = ["# Gallery-draw spread: reported vs true (simulation)", "",
             f"`python benchmarks/bench_gallery_draws.py --pools {args.pools} --draws {args.draws}` ({seconds:.0f} s, CPU). "
             f"{GROUPS} groups x {IDS} identities, G = {G} gallery images per identity, {Q} queries per identity and method; "
             f"true SD over {args.fresh} fresh galleries; reported SD from one pool of G + H images per identity, over "
             f"{args.draws} redraws, for {args.pools} pools. Ratio = reported / true (1 is right).", "",
             "| H (holdout per identity) | score | true SD | redraw SD / true: median [p10, p90] | "
             "population SD / true: median [p10, p90] |", "|--:|:--|--:|--:|--:|"]
    for r in rows:
        lines.append(f"| {r['holdout_per_identity']} | {r['score']} | {r['true_sd']:.4f} | "
                     f"{r['sd_ratio_median']:.2f} [{r['sd_ratio_p10']:.2f}, {r['sd_ratio_p90']:.2f}] | "
                     f"{r['sd_population_ratio_median']:.2f} [{r['sd_population_ratio_p10']:.2f}, "
                     f"{r['sd_population_ratio_p90']:.2f}] |")
    (out / "gallery_draws.md").write_text("\n".join(lines) + "\n")
    fig, ax = plt.subplots(figsize=(8, 4.2))
    keys = sorted({r["score"] for r in rows})
    positions, data, colours, labels = [], [], [], []
    for h_index, extra in enumerate((5, 10, 30)):
        for kind_index, kind in enumerate(("sd", "sd_population")):
            values = np.concatenate([r["ratios"][kind] for r in rows if r["holdout_per_identity"] == extra])
            positions.append(h_index * 3 + kind_index)
            data.append(values)
            colours.append("#bbbbbb" if kind == "sd" else "#2b8cbe")
        labels.append(f"H = {extra}")
    parts = ax.boxplot(data, positions=positions, widths=0.7, patch_artist=True, showfliers=False)
    for patch, colour in zip(parts["boxes"], colours):
        patch.set_facecolor(colour)
    ax.axhline(1.0, color="black", lw=1, ls="--")
    ax.set_xticks([h * 3 + 0.5 for h in range(3)], labels)
    ax.set_ylabel("reported SD / true SD")
    ax.set_title(f"Gallery-draw spread, {len(keys)} scores (3 methods, 3 differences), {args.pools} pools each")
    from matplotlib.patches import Patch

    ax.legend(handles=[Patch(color="#bbbbbb", label="SD over redraws from the pool"),
                       Patch(color="#2b8cbe", label="x sqrt((P-1)/(P-G)): reported")], loc="upper right")
    fig.tight_layout()
    fig.savefig(ROOT / "docs" / "figures" / "gallery_draws_simulation.png", dpi=120)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
