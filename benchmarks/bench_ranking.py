"""Benchmark 1: ranking. ``rank_metrics`` vs the textbook per-query loop vs torchmetrics RetrievalMAP.

Scores are continuous (float64 normals, so no two are equal): non-relevant items ~ N(0, 1),
relevant items ~ N(shift, 1). ``shift = 4`` gives the mAP of a decent retrieval model (about 0.6
to 0.8); ``shift = 1`` (mAP near 0) is the worst case for ``rank_metrics``, whose cost grows with
the number of items ranked above a query's last relevant item. The similarity matrix of the
largest size (10k x 100k, 8 GB in float64) is generated and ranked one block of queries at a
time; every method sees the same blocks.

* textbook loop: per query ``argsort`` descending, cumulative precision at the relevant ranks;
* torchmetrics: ``RetrievalMAP`` on the flattened matrix with scores shifted to be positive (it
  treats scores <= 0 as non-relevant); it holds preds, targets and indexes of every query.
"""

from __future__ import annotations

import gc
import statistics
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import PeakMemory, exact_rss_mode, machine, parse_args, timed, write_result  # noqa: E402

from fp_rank.ranking.metrics import rank_metrics, rank_metrics_from_embeddings  # noqa: E402

BLOCK_ELEMENTS = 50_000_000  # queries per generated block: 400 MB of float64 scores


def textbook_ap(scores: np.ndarray, relevant: np.ndarray) -> float:
    """AP of one query the textbook way: sort the whole gallery, cumulative precision at the hits."""
    order = np.argsort(-scores)
    hits = relevant[order]
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float(precision[hits].sum() / hits.sum())


def textbook_loop(scores: np.ndarray, q_ids: np.ndarray, g_ids: np.ndarray) -> np.ndarray:
    return np.array([textbook_ap(scores[i], g_ids == q_ids[i]) for i in range(len(q_ids))])


def torchmetrics_map(scores: np.ndarray, q_ids: np.ndarray, g_ids: np.ndarray) -> np.ndarray:
    """Per-query AP from torchmetrics' RetrievalMAP (scores shifted to be > 0)."""
    import torch
    from torchmetrics.retrieval import RetrievalMAP

    n_q, n_g = scores.shape
    preds = torch.from_numpy(scores - scores.min() + 1.0).reshape(-1)
    target = torch.from_numpy(q_ids[:, None] == g_ids[None, :]).reshape(-1)
    indexes = torch.arange(n_q).repeat_interleave(n_g)
    metric = RetrievalMAP(aggregation=lambda x, dim: x)  # keep the per-query values
    metric.update(preds, target, indexes)
    return metric.compute().double().numpy()


def make_labels(n_q: int, n_g: int, n_rel: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    g_ids = np.repeat(np.arange(n_g // n_rel), n_rel)
    q_ids = rng.integers(0, n_g // n_rel, n_q)
    return q_ids, g_ids


def make_block(q_ids: np.ndarray, g_ids: np.ndarray, shift: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    scores = rng.standard_normal((len(q_ids), len(g_ids)))
    scores += shift * (q_ids[:, None] == g_ids[None, :])
    return scores


def run_config(n_q: int, n_g: int, n_rel: int, shift: float, repeats: int, loop_repeats: int,
               with_torchmetrics: bool) -> dict[str, Any]:
    """Times (medians per block, summed over blocks) and AP agreement of the three methods."""
    q_ids, g_ids = make_labels(n_q, n_g, n_rel, seed=n_q + n_g + n_rel)
    block = max(1, min(n_q, BLOCK_ELEMENTS // n_g))
    total = {"ours": 0.0, "loop": 0.0, "tm": 0.0}
    max_diff_loop, max_diff_tm = 0.0, 0.0
    aps = []
    n_tied = 0
    for b, start in enumerate(range(0, n_q, block)):
        qb = q_ids[start : start + block]
        scores = make_block(qb, g_ids, shift, seed=1000 + b)
        runs: dict[str, list[float]] = {"ours": [], "loop": [], "tm": []}
        for r in range(max(repeats, loop_repeats)):  # round-robin: machine noise hits every method alike
            if r < repeats:
                t, res = timed(lambda: rank_metrics(scores, qb, g_ids, cmc_ks=(1, 5, 10)))
                runs["ours"].append(t)
            if r < loop_repeats:
                t, loop_ap = timed(lambda: textbook_loop(scores, qb, g_ids))
                runs["loop"].append(t)
            if with_torchmetrics and r < repeats:
                t, tm_ap = timed(lambda: torchmetrics_map(scores, qb, g_ids))
                runs["tm"].append(t)
        for name, values in runs.items():
            if values:
                total[name] += statistics.median(values)
        n_tied += int(res.tied.sum())
        aps.append(res.ap)
        max_diff_loop = max(max_diff_loop, float(np.abs(loop_ap - res.ap).max()))
        if with_torchmetrics:
            max_diff_tm = max(max_diff_tm, float(np.abs(tm_ap - res.ap).max()))
        del scores
        gc.collect()
    out: dict[str, Any] = {
        "queries": n_q, "gallery": n_g, "relevant_per_query": n_rel, "shift": shift,
        "map": float(np.concatenate(aps).mean()), "queries_with_ties": n_tied,
        "block_queries": block, "blocks": -(-n_q // block),
        "rank_metrics_s": total["ours"], "loop_s": total["loop"],
        "speedup_vs_loop": total["loop"] / total["ours"],
        "max_abs_ap_diff_vs_loop": max_diff_loop,
        "repeats": repeats, "loop_repeats": loop_repeats,
    }
    if with_torchmetrics:
        out.update({
            "torchmetrics_s": total["tm"], "speedup_vs_torchmetrics": total["tm"] / total["ours"],
            "max_abs_ap_diff_vs_torchmetrics": max_diff_tm,
        })
    return out


def block_memory(cfg: dict[str, Any], with_torchmetrics: bool) -> dict[str, Any]:
    """Peak extra memory of each method on one block of a configuration (after the timings)."""
    n_q, n_g, n_rel = cfg["queries"], cfg["gallery"], cfg["relevant_per_query"]
    q_ids, g_ids = make_labels(n_q, n_g, n_rel, seed=n_q + n_g + n_rel)
    qb = q_ids[: cfg["block_queries"]]
    scores = make_block(qb, g_ids, cfg["shift"], seed=1000)
    out: dict[str, Any] = {"block_bytes": scores.nbytes}
    methods = {"rank_metrics": lambda: rank_metrics(scores, qb, g_ids, cmc_ks=(1, 5, 10)),
               "loop": lambda: textbook_loop(scores, qb, g_ids)}
    if with_torchmetrics:
        methods["torchmetrics"] = lambda: torchmetrics_map(scores, qb, g_ids)
    for name, fn in methods.items():
        gc.collect()
        with PeakMemory() as mem:
            fn()
        out[f"{name}_peak_extra_bytes"] = mem.peak_bytes
    if with_torchmetrics and out.get("torchmetrics_peak_extra_bytes"):
        out["torchmetrics_bytes_per_score"] = out["torchmetrics_peak_extra_bytes"] / scores.size
    return out


def rank_metrics_memory_vs_queries(n_g: int, query_counts: list[int]) -> list[dict[str, Any]]:
    """Peak extra memory of rank_metrics on (Q, N) inputs of growing Q: bounded by its chunk."""
    rows = []
    for n_q in query_counts:
        q_ids, g_ids = make_labels(n_q, n_g, 10, seed=3)
        scores = make_block(q_ids, g_ids, 4.0, seed=4)
        gc.collect()
        with PeakMemory() as mem:
            rank_metrics(scores, q_ids, g_ids)
        rows.append({"queries": n_q, "gallery": n_g, "input_bytes": scores.nbytes, "peak_extra_bytes": mem.peak_bytes})
        del scores
    return rows


def ties(n_q: int, n_g: int, n_rel: int) -> dict[str, Any]:
    """Coarse (rounded) scores: how much each method's AP moves when the gallery is permuted."""
    q_ids, g_ids = make_labels(n_q, n_g, n_rel, seed=7)
    scores = np.round(make_block(q_ids, g_ids, 2.0, seed=8), 1)
    perm = np.random.default_rng(9).permutation(n_g)
    ours = rank_metrics(scores, q_ids, g_ids)
    ours_p = rank_metrics(scores[:, perm], q_ids, g_ids[perm])
    loop = textbook_loop(scores, q_ids, g_ids)
    loop_p = textbook_loop(scores[:, perm], q_ids, g_ids[perm])
    tm = torchmetrics_map(scores, q_ids, g_ids)
    tm_p = torchmetrics_map(scores[:, perm], q_ids, g_ids[perm])
    return {
        "queries": n_q, "gallery": n_g, "relevant_per_query": n_rel, "rounding": "1 decimal",
        "queries_with_ties": int(ours.tied.sum()),
        "rank_metrics_max_change_under_permutation": float(np.abs(ours.ap - ours_p.ap).max()),
        "loop_max_change_under_permutation": float(np.abs(loop - loop_p).max()),
        "torchmetrics_max_change_under_permutation": float(np.abs(tm - tm_p).max()),
        "loop_map_change_under_permutation": float(abs(loop.mean() - loop_p.mean())),
    }


def memory_scaling(n_g: int, dim: int, query_counts: list[int]) -> list[dict[str, Any]]:
    """Peak extra memory of rank_metrics_from_embeddings (similarities made chunk by chunk) vs Q."""
    rng = np.random.default_rng(11)
    n_id = n_g // 10
    centres = rng.standard_normal((n_id, dim))
    g_ids = np.repeat(np.arange(n_id), 10)
    g_emb = centres[g_ids] + 0.7 * rng.standard_normal((n_g, dim))
    g_emb /= np.linalg.norm(g_emb, axis=1, keepdims=True)
    rows = []
    for n_q in query_counts:
        q_ids = rng.integers(0, n_id, n_q)
        q_emb = centres[q_ids] + 0.7 * rng.standard_normal((n_q, dim))
        q_emb /= np.linalg.norm(q_emb, axis=1, keepdims=True)
        gc.collect()
        with PeakMemory() as mem:
            t, res = timed(lambda: rank_metrics_from_embeddings(q_emb, g_emb, q_ids, g_ids))
        rows.append({
            "queries": n_q, "gallery": n_g, "dim": dim, "seconds": t, "map": res.map,
            "peak_extra_bytes": mem.peak_bytes, "full_matrix_bytes": n_q * n_g * 8,
        })
    return rows


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    if args.quick:
        configs = [(200, 5000, 10, 4.0, 3, 3, True), (400, 20000, 10, 4.0, 3, 1, False), (200, 5000, 500, 4.0, 3, 3, True),
                   (200, 20000, 10, 1.0, 3, 1, False)]
        tie_cfg, scale, rm_scale = (200, 2000, 10), (20000, 16, [200, 2000]), (20000, [100, 400])
    else:
        configs = [(1000, 10000, 10, 4.0, 3, 3, True), (10000, 100000, 10, 4.0, 3, 1, False),
                   (1000, 10000, 1000, 4.0, 3, 3, True), (1000, 100000, 10, 1.0, 3, 1, False)]
        tie_cfg, scale, rm_scale = (1000, 10000, 10), (100000, 64, [1000, 10000]), (100000, [100, 1000])
    result: dict[str, Any] = {"machine": machine(), "configs": []}
    for cfg in configs:
        print(f"ranking {cfg[:4]} ...", flush=True)
        result["configs"].append(run_config(*cfg))
    print("ranking: ties ...", flush=True)
    result["ties"] = ties(*tie_cfg)
    # Memory last: exact resident-size tracking slows big allocations down (see exact_rss_mode).
    exact_rss_mode()
    print("ranking: memory ...", flush=True)
    for cfg, entry in zip(configs, result["configs"]):
        entry["memory"] = block_memory(entry, with_torchmetrics=cfg[6])
    result["rank_metrics_memory_vs_queries"] = rank_metrics_memory_vs_queries(*rm_scale)
    result["memory_scaling"] = memory_scaling(*scale)
    write_result(args.out, result)


if __name__ == "__main__":
    main()
