"""Run every fp-rank benchmark and write ``benchmarks/results.json`` and ``BENCHMARKS.md``.

    python benchmarks/run.py                  # everything (about 20 minutes on 2 CPU cores)
    python benchmarks/run.py --only ranking   # one section, merged into the existing results
    python benchmarks/run.py --quick          # small sizes: checks the scripts, not the machine
    python benchmarks/run.py --render-only    # rewrite BENCHMARKS.md from results.json

Each section runs in its own process (``bench_*.py``), so timings and peak memory of one never
include another's. ``gpu_encode.py`` is separate: it needs a GPU (and says so without one).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_coverage import section as coverage_section
from bench_coverage import summary_rows as coverage_summary
from bench_round2 import section as round2_section
from bench_round2 import summary_rows as round2_summary
from bench_round3 import section as round3_section
from bench_round3 import summary_rows as round3_summary

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SECTIONS = {
    "ranking": "bench_ranking.py",
    "encoding": "bench_encoding.py",
    "flows": "bench_flows.py",
    "module": "bench_module.py",
    "memory": "bench_memory.py",
    "coverage": "bench_coverage.py",
    "round2": "bench_round2.py",
    "round3": "bench_round3.py",
}


def run_sections(names: list[str], quick: bool, extra: dict[str, list[str]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="fp_rank_bench_") as tmp:
        for name in names:
            target = Path(tmp) / f"{name}.json"
            cmd = [sys.executable, str(HERE / SECTIONS[name]), "--out", str(target), *(["--quick"] if quick else []),
                   *extra.get(name, [])]
            print(f"== {name}: {' '.join(cmd[1:])}", flush=True)
            start = time.perf_counter()
            proc = subprocess.run(cmd, cwd=ROOT)
            elapsed = time.perf_counter() - start
            if proc.returncode != 0 or not target.exists():
                out[name] = {"error": f"exit status {proc.returncode}", "wall_s": elapsed}
                print(f"== {name}: FAILED (exit status {proc.returncode})", flush=True)
                continue
            result = json.loads(target.read_text())
            result["wall_s"] = elapsed
            result["quick"] = quick
            out[name] = result
            print(f"== {name}: done in {elapsed:.0f} s", flush=True)
    return out


# ------------------------------------------------------------------------------------ rendering


def _f(x: Any, digits: int = 2) -> str:
    if x is None:
        return "n/a"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def _mb(n: Any) -> str:
    if n is None:
        return "n/a"
    if n < 1 << 20:
        return "< 1 MB"
    return f"{n / (1 << 20):.0f} MB" if n < 10 << 30 else f"{n / (1 << 30):.1f} GB"


def _met(ok: bool | None) -> str:
    return "n/a" if ok is None else ("**met**" if ok else "**not met**")


def _ranking_row(r: dict[str, Any], q: int, n: int, rel: int, shift: float) -> dict[str, Any] | None:
    for c in r.get("configs", []):
        if (c["queries"], c["gallery"], c["relevant_per_query"], c["shift"]) == (q, n, rel, shift):
            return c
    return None


def summary(res: dict[str, Any]) -> list[str]:
    rows: list[tuple[str, str, str, str]] = []
    rk = res.get("ranking", {})
    big = _ranking_row(rk, 10000, 100000, 10, 4.0)
    if big is None and rk.get("configs"):
        big = max(rk["configs"], key=lambda c: c["queries"] * c["gallery"])
    if big:
        ok = big["speedup_vs_loop"] >= 10 and big["max_abs_ap_diff_vs_loop"] <= 1e-9
        rows.append((
            f"1. Ranking ({big['queries']:,} x {big['gallery']:,}, R={big['relevant_per_query']}) vs textbook loop",
            f"{big['speedup_vs_loop']:.1f}x faster, max abs AP diff {big['max_abs_ap_diff_vs_loop']:.1e}",
            ">= 10x, <= 1e-9", _met(ok)))
    scale = rk.get("memory_scaling")
    if scale and len(scale) >= 2:
        a, b = scale[0], scale[-1]
        ok = b["peak_extra_bytes"] is not None and a["peak_extra_bytes"] is not None and b["peak_extra_bytes"] <= 1.5 * max(
            a["peak_extra_bytes"], 64 << 20)
        rows.append((
            f"1. Ranking peak extra memory, {a['queries']:,} -> {b['queries']:,} queries (N={b['gallery']:,})",
            f"{_mb(a['peak_extra_bytes'])} -> {_mb(b['peak_extra_bytes'])} (full matrix: {_mb(b['full_matrix_bytes'])})",
            "does not grow with Q", _met(ok)))
    enc = res.get("encoding", {})
    arch = enc.get("architecture")
    if arch and f"{arch}_float32" in enc:
        fp32 = enc[f"{arch}_float32"]
        ratio = fp32["pipeline"]["throughput_vs_bare"]
        rows.append((f"2. Encoding pipeline / bare forward, {arch}, fp32, CPU",
                     f"{100 * ratio:.1f}% ({fp32['pipeline']['images_per_s']:.2f} vs {fp32['bare_forward']['images_per_s']:.2f} img/s)",
                     ">= 90%", _met(ratio >= 0.9)))
        bf16 = enc.get(f"{arch}_bfloat16")
        if bf16:
            r16 = bf16["pipeline"]["throughput_vs_bare"]
            rows.append(("2. Same, bf16 autocast (opt-in)",
                         f"{100 * r16:.1f}% ({bf16['pipeline']['images_per_s']:.2f} vs {bf16['bare_forward']['images_per_s']:.2f} img/s)",
                         ">= 90%", _met(r16 >= 0.9)))
    fl = res.get("flows", {})
    cache = fl.get("cache")
    if cache:
        second = cache["second_method"]
        rows.append(("3. Cache: second method against the same gallery",
                     f"{second['gallery_images_encoded']} gallery images encoded; time ratio {cache['time_ratio_second_to_first']:.2f}",
                     "0 gallery images", _met(second["gallery_images_encoded"] == 0)))
    paper = fl.get("paper")
    if paper:
        rows.append((f"4. Paper-sized run ({'/'.join(fl.get('architectures', []))}): forward passes vs the limit",
                     f"{paper['fp_rank']['images_through_forward']:,} / {paper['limit']['expected_images']:,} = "
                     f"{paper['forward_ratio_fp_rank_to_limit']:.2f}; reference flow {paper['reference_flow']['images_through_forward']:,} "
                     f"({paper['forward_ratio_reference_to_fp_rank']:.2f}x ours)",
                     "<= 1.10", _met(paper["forward_ratio_fp_rank_to_limit"] <= 1.10)))
        rows.append(("4. Paper-sized run: wall time",
                     f"reference flow / fp-rank = {paper['time_ratio_reference_to_fp_rank']:.2f}; "
                     f"fp-rank / encode-once = {paper['time_ratio_fp_rank_to_limit']:.2f}",
                     "report", "-"))
    mod = res.get("module", {})
    for label, runs in mod.get("encoders", {}).items():
        ratio = runs["module_paths"]["ratio_to_direct"]
        rows.append((f"5. evaluate module (file paths) / direct API, {label}",
                     f"{ratio:.2f}x (in-memory PIL images: {runs['module_pil_in_memory']['ratio_to_direct']:.2f}x)",
                     "<= 1.5x", _met(ratio <= 1.5)))
    mem = res.get("memory", {})
    if mem.get("runs"):
        a, b = mem["runs"][0], mem["runs"][-1]
        per = mem["extra_bytes_per_additional_image"]
        rows.append((f"6. Peak extra memory, {a['images']:,} -> {b['images']:,} generated images",
                     f"{_mb(a['peak_extra_bytes'])} -> {_mb(b['peak_extra_bytes'])} ({per / 1024:.1f} KB per extra image: "
                     "embedding + report row)",
                     "bounded by batch size", _met(per < mem["decoded_image_bytes"])))
    rows += coverage_summary(res.get("coverage", {}))
    rows += round2_summary(res.get("round2", {}))
    rows += round3_summary(res.get("round3", {}))
    lines = ["| comparison | result | target | |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    return lines


def notes(res: dict[str, Any]) -> list[str]:
    """Where a target is missed: the measured reason."""
    out: list[str] = []
    enc = res.get("encoding", {})
    arch = enc.get("architecture")
    pre = enc.get("preprocess_only", {}).get("decode_fast_preprocess")
    cores = (enc.get("machine") or {}).get("logical_cpus") or 1
    for dtype in ("float32", "bfloat16"):
        runs = enc.get(f"{arch}_{dtype}")
        if not runs or not pre or runs["pipeline"]["throughput_vs_bare"] >= 0.9:
            continue
        forward_ms = 1000 / runs["bare_forward"]["images_per_s"]
        prep_ms = 1000 / pre["images_per_s"]
        bound = forward_ms / (forward_ms + prep_ms / cores)
        out.append(
            f"- Pipeline, {arch} {dtype}: {100 * runs['pipeline']['throughput_vs_bare']:.0f}% of the bare forward. "
            f"Decoding and preprocessing cost {prep_ms:.1f} ms of CPU per image and the model "
            f"{forward_ms:.0f} ms per image on all {cores} cores; with no core to spare, the best any overlap can "
            f"do is {100 * bound:.0f}%. On a GPU (or with more cores than the model uses) the preparation runs "
            "beside the model instead.")
    big = _ranking_row(res.get("ranking", {}), 10000, 100000, 10, 4.0)
    if big and big["speedup_vs_loop"] < 10:
        out.append(f"- Ranking: {big['speedup_vs_loop']:.1f}x at 10k x 100k. Both methods read the same 8 GB of "
                   "scores from memory; see section 1 for where the time goes.")
    if out:
        out = ["Targets not met, and why:", "", *out, ""]
    return out


def render(res: dict[str, Any]) -> str:
    first = next((v for v in res.values() if isinstance(v, dict) and "machine" in v), {})
    m = first.get("machine", {})
    quick = any(isinstance(v, dict) and v.get("quick") for v in res.values())
    out = ["# Benchmarks", ""]
    out += [
        "Reproduce with `python benchmarks/run.py` (every section, each in its own process; "
        "`--only ranking` reruns one section, `--render-only` rewrites this file from "
        "`benchmarks/results.json`, the machine-readable results). "
        "Backbones are the real architectures with random weights (same FLOPs as the published "
        "checkpoints, built from their configs; nothing is downloaded). Times are medians of "
        "repeated runs (the count is given per section); variants of a comparison run "
        "round-robin in one invocation so that machine noise hits them alike.",
        "",
    ]
    if quick:
        out += ["**These results come from `--quick` (small sizes): they check the scripts, not the machine.**", ""]
    out += [
        "## Machine", "",
        "| | |", "|---|---|",
        f"| CPU | {m.get('cpu')} ({m.get('logical_cpus')} logical CPUs; {', '.join(m.get('isa', []))}) |",
        f"| memory | {_mb(m.get('memory_bytes'))} |",
        f"| GPU | {m.get('gpu') or 'none: the GPU check (`benchmarks/gpu_encode.py`) was not run here'} |",
        f"| software | Python {m.get('python')}, torch {m.get('torch')} (CPU), numpy {m.get('numpy')}, "
        f"transformers {m.get('transformers')}, {m.get('os')} |",
        f"| torch threads | {m.get('torch_threads')} |",
        "| load | shared with other work while measured; load averages at the start of each section: "
        + ", ".join(f"{k} {_f((v.get('machine') or {}).get('load_average_at_start', [None])[0], 1)}"
                    for k, v in res.items() if isinstance(v, dict) and v.get("machine")) + " |",
        "",
        "## Summary: the ratios", "",
    ]
    out += summary(res)
    out += [""] + notes(res)
    out += ranking_section(res.get("ranking", {}))
    out += encoding_section(res.get("encoding", {}))
    out += flows_section(res.get("flows", {}))
    out += module_section(res.get("module", {}))
    out += memory_section(res.get("memory", {}))
    out += coverage_section(res.get("coverage", {}))
    out += round2_section(res.get("round2", {}))
    out += round3_section(res.get("round3", {}))
    out += gpu_section(res.get("gpu"))
    return "\n".join(out).rstrip() + "\n"


def ranking_section(r: dict[str, Any]) -> list[str]:
    if not r.get("configs"):
        return []
    out = ["## 1. Ranking", "",
           "`rank_metrics` (exact, tie-aware AP, CMC@1/5/10, mINP, chance AP, top-1) vs the textbook "
           "per-query loop (`argsort` descending, cumulative precision at the relevant ranks: AP only) "
           "and torchmetrics `RetrievalMAP` (scores shifted to be positive, since it treats scores <= 0 "
           "as non-relevant). Scores are float64 normals (no ties): non-relevant N(0, 1), relevant "
           "N(shift, 1). The large similarity matrix is generated and ranked in blocks of queries "
           "(every method gets the same blocks); torchmetrics is run only where its flattened "
           "preds/target/indexes fit in memory.", "",
           "| Q x N, R | shift (mAP) | rank_metrics | loop | speed-up | max abs AP diff | torchmetrics | speed-up | "
           "peak extra memory (ours / loop / torchmetrics, one block) |",
           "|---|---|---|---|---|---|---|---|---|"]
    for c in r["configs"]:
        mem = c.get("memory", {})
        tm = f"{c['torchmetrics_s']:.2f} s" if "torchmetrics_s" in c else "not run"
        tms = f"{c['speedup_vs_torchmetrics']:.0f}x" if "torchmetrics_s" in c else "-"
        tmm = _mb(mem.get("torchmetrics_peak_extra_bytes")) if "torchmetrics_peak_extra_bytes" in mem else (
            f"~{_mb(c['queries'] * c['gallery'] * 13)} (est.)" if "torchmetrics_s" not in c else "n/a")
        out.append(
            f"| {c['queries']:,} x {c['gallery']:,}, {c['relevant_per_query']} | {c['shift']:.0f} ({c['map']:.3f}) | "
            f"{c['rank_metrics_s']:.2f} s | {c['loop_s']:.2f} s | {c['speedup_vs_loop']:.1f}x | "
            f"{c['max_abs_ap_diff_vs_loop']:.1e} | {tm} | {tms} | {_mb(mem.get('rank_metrics_peak_extra_bytes'))} / "
            f"{_mb(mem.get('loop_peak_extra_bytes'))} / {tmm} |")
    reps = {(c["repeats"], c["loop_repeats"]) for c in r["configs"]}
    out += ["", f"Repeats (rank_metrics and torchmetrics, loop): {sorted(reps)}; times are summed over blocks of "
            "the median per block. torchmetrics memory 'est.' = 13 bytes per score (float64 preds, bool target, "
            "int64 index), the least it needs; it was not run there."]
    t = r.get("ties")
    if t:
        out += ["", f"**Ties** ({t['queries']:,} x {t['gallery']:,}, scores rounded to {t['rounding']}; "
                f"{t['queries_with_ties']} queries have ties): largest change of a query's AP when the gallery is "
                f"permuted: rank_metrics {t['rank_metrics_max_change_under_permutation']:.1e}, textbook loop "
                f"{t['loop_max_change_under_permutation']:.3f}, torchmetrics "
                f"{t['torchmetrics_max_change_under_permutation']:.3f}. Argsort-based code returns one arbitrary "
                "ordering of the tied items; rank_metrics returns the expected AP over all of them."]
    s = r.get("memory_scaling")
    if s:
        out += ["", "**Memory vs number of queries** (`rank_metrics_from_embeddings`: similarities computed one "
                "chunk of about 4M at a time, never the whole matrix):", "",
                "| queries x gallery (dim) | time | peak extra memory | full similarity matrix |", "|---|---|---|---|"]
        out += [f"| {x['queries']:,} x {x['gallery']:,} ({x['dim']}) | {x['seconds']:.2f} s | "
                f"{_mb(x['peak_extra_bytes'])} | {_mb(x['full_matrix_bytes'])} |" for x in s]
    s2 = r.get("rank_metrics_memory_vs_queries")
    if s2:
        out += ["", "`rank_metrics` on a ready (Q, N) matrix: peak extra memory beyond its input: "
                + ", ".join(f"Q={x['queries']:,}: {_mb(x['peak_extra_bytes'])} (input {_mb(x['input_bytes'])})"
                            for x in s2) + "."]
    out += ["", "Why it is faster: the loop sorts all N items of every query (N log N); rank_metrics only "
            "compares every item once with the query's lowest relevant score, and sorts the K items "
            "ranked above it (K log K), reading each similarity once from memory. The speed-up therefore "
            "depends on K: with well-separated scores (shift 4) K is small; at shift 1 (mAP near 0, most "
            "of the gallery ranked above the last relevant item) it is smaller. With R = 1000 relevant "
            "items per query out of 10,000, both sort most of the row and take about the same time.", ""]
    return out


def encoding_section(e: dict[str, Any]) -> list[str]:
    arch = e.get("architecture")
    if not arch:
        return []
    out = ["## 2. Encoding pipeline vs bare forward (CPU)", "",
           f"{e['images']} photo-like JPEGs ({', '.join(f'{w}x{h}' for h, w in e['image_sizes'])}), batch size "
           f"{e['batch_size']}. Bare forward: `Encoder.embed_tensor` (forward, pooling, normalisation) on ready "
           "tensors. Pipeline: `Encoder.encode` on the files (decode, preprocess, forward), with the next batch "
           "decoded and preprocessed in a background thread. Medians of 3 (variants: 2).", "",
           "| model | dtype | variant | images/s | vs bare forward |", "|---|---|---|---|---|"]
    for key, runs in e.items():
        if not isinstance(runs, dict) or "bare_forward" not in runs:
            continue
        model, dtype = key.rsplit("_", 1)
        for name, entry in runs.items():
            out.append(f"| {model} | {dtype} | {name.replace('_', ' ')} | {entry['images_per_s']:.2f} | "
                       f"{100 * entry['throughput_vs_bare']:.0f}% |")
    pre = e.get("preprocess_only")
    if pre:
        out += ["", "Decoding and preprocessing alone (one thread, no model), images/s: "
                + ", ".join(f"{k.replace('_', ' ')} {v['images_per_s']:.0f}" for k, v in pre.items())
                + ". The torch preprocessing (`fp_rank/encoding/fast_preprocess.py`) replaces transformers' "
                "PIL/NumPy processor (torchvision, and so transformers' own fast processors, cannot be installed "
                "beside this torch build). Tolerance, verified in `tests/test_perf_correctness.py`: resized 8-bit "
                "values within 2 levels of Pillow's, normalised tensors within 2 / (255 std), embedding cosine "
                ">= 0.9999; the cache key records which path made the vectors."]
    out += ["", "bf16 autocast is opt-in (`dtype='bfloat16'`) and recorded in the report and the cache key; "
            "this CPU has AMX-BF16.", ""]
    return out


def flows_section(f: dict[str, Any]) -> list[str]:
    if not f.get("paper"):
        return []
    c = f["cache"]
    p = f["paper"]
    out = ["## 3. Cache", "",
           f"{c['architecture']} (random weights); two methods (150 generated images each) scored one after "
           "the other against the same gallery (150 gallery, 150 reference images):", "",
           "| run | wall time | images through the model | gallery images encoded | from cache |", "|---|---|---|---|---|"]
    for name in ("first_method", "second_method"):
        x = c[name]
        out.append(f"| {name.replace('_', ' ')} | {x['seconds']:.2f} s | {x['images_through_forward']} | "
                   f"{x['gallery_images_encoded']} | {x['gallery_images_from_cache']} |")
    out += ["", f"Wall-time ratio second / first: {c['time_ratio_second_to_first']:.2f}.", "",
            "## 4. Paper-sized run", "",
            f"7 methods x 15 identities x 10 prompts = {f['generated_images']} generated images "
            f"({f['image_size']} px PNG) against a {f['gallery_images']}-image gallery with "
            f"{f['reference_images']} reference images, pairwise baseline and real-image ceiling, 2 encoders "
            f"({', '.join(f['architectures'])}). Images through the model are counted by wrapping "
            "`Encoder.embed_tensor`. The reference code's flow: the model reloaded and the group's gallery "
            "re-encoded for every method and group, the queries encoded again for the pairwise baseline, and "
            "the real-image baseline re-encoding per group. The limit: every distinct image through each "
            "encoder once (`Encoder.encode` of the three sets, nothing else).", "",
            "| flow | wall time | images through the model | model loads |", "|---|---|---|---|",
            f"| limit (each distinct image once) | {p['limit']['seconds']:.1f} s | {p['limit']['images_through_forward']:,} | 2 |",
            f"| fp-rank (`evaluate`, one call) | {p['fp_rank']['seconds']:.1f} s | {p['fp_rank']['images_through_forward']:,} | "
            f"{p['fp_rank']['model_loads']} |",
            f"| reference code's flow | {p['reference_flow']['seconds']:.1f} s | "
            f"{p['reference_flow']['images_through_forward']:,} | {p['reference_flow']['model_loads']} |",
            "", f"Forward passes: fp-rank / limit = {p['forward_ratio_fp_rank_to_limit']:.2f}, reference / fp-rank = "
            f"{p['forward_ratio_reference_to_fp_rank']:.2f}. Wall time: reference / fp-rank = "
            f"{p['time_ratio_reference_to_fp_rank']:.2f}, fp-rank / limit = {p['time_ratio_fp_rank_to_limit']:.2f}. "
            f"Largest difference between the two flows' per-group mAPs: "
            f"{_f(p['max_abs_group_map_difference_between_flows'], 3) if p['max_abs_group_map_difference_between_flows'] is not None else 'n/a'}.",
            ""]
    if "tiny" in " ".join(f["architectures"]):
        out += ["The backbones here are 2-layer versions of the DINOv2 and CLIP architectures: the full-size "
                "models would take tens of minutes for the reference flow on 2 CPU cores. With tiny models the "
                "forward pass is cheap, so this run shows the orchestration's costs at their largest: fp-rank's "
                "time above the limit is what it does besides encoding (gallery loading, the leakage check, "
                "which decodes every generated image once more, content hashing for deduplication, ranking, the "
                "report). With real backbones the forward pass dominates and both ratios approach the forward-pass "
                "ratios. Run `python benchmarks/bench_flows.py --paper-arch base --out r.json` on a bigger machine "
                "for the full-size figures.", ""]
    return out


def module_section(m: dict[str, Any]) -> list[str]:
    if not m.get("encoders"):
        return []
    out = ["## 5. The evaluate module vs the direct API", "",
           f"{m['images']} generated images ({m['image_px']} px PNG files) against the demo gallery, gallery "
           "embeddings cached beforehand (both paths encode the same images). Medians of 3.", "",
           "| encoder | direct API (paths) | module, paths | module, PIL images opened from files | module, in-memory PIL images |",
           "|---|---|---|---|---|"]
    for label, runs in m["encoders"].items():
        cells = [f"{runs[k]['median_s']:.2f} s ({runs[k]['ratio_to_direct']:.2f}x)" for k in
                 ("direct_api_paths", "module_paths", "module_pil_from_files", "module_pil_in_memory")]
        out.append(f"| {label} | " + " | ".join(cells) + " |")
    out += ["", "File paths are the fast route: only strings enter Arrow. PIL images opened from files travel as "
            "their paths too (`datasets.Image(decode=False)`); in-memory images are PNG-encoded into Arrow by "
            "`datasets` and decoded again by fp-rank, which costs the difference in the last column.", ""]
    return out


def memory_section(m: dict[str, Any]) -> list[str]:
    if not m.get("runs"):
        return []
    out = ["## 6. Memory while scoring many generated images", "",
           f"Demo encoder, {m['image_px']} px PNG files, cache off, batch size {m['runs'][0]['batch_size']}; each "
           "size in a fresh process; peak extra resident memory of one `evaluate` call (kernel high-water mark).", "",
           "| generated images | wall time | peak extra memory |", "|---|---|---|"]
    out += [f"| {r['images']:,} | {r['seconds']:.1f} s | {_mb(r['peak_extra_bytes'])} |" for r in m["runs"]]
    out += ["", f"Growth: {m['extra_bytes_per_additional_image'] / 1024:.1f} KB per additional image: its embedding "
            f"({m['runs'][0]['embedding_bytes_per_image']} bytes), its report row and its leakage flag. Decoded "
            f"images ({m['decoded_image_bytes'] / 1024:.0f} KB each here, 768 KB at 512 px) are never accumulated: "
            "at most the batch being encoded and the one being prepared are in memory.", ""]
    return out


def gpu_section(g: dict[str, Any] | None) -> list[str]:
    out = ["## GPU", ""]
    if not g or "vs_bare" not in next(iter(g.get("models", {}).values()), {}):
        out += ["Not run: no GPU was lent to this work (issues 14 and 20 included). `python benchmarks/gpu_encode.py --out "
                "benchmarks/results_gpu.json` is the prepared script: DINOv2-base and CLIP B/32 (random weights) in "
                "fp32, bf16 and fp16, the pipeline with W = 0, 2, 8, 16 worker processes against the bare forward, "
                "and `rank_metrics_from_embeddings` on GPU-resident embeddings against one pass over the same "
                "similarities (`--budget-s` keeps it within a device lease; it skips cleanly without CUDA). "
                "`run.py` renders its result here when `benchmarks/results_gpu.json` exists.", ""]
        return out
    m = g["machine"]
    out += [f"{m.get('gpu')}, {g['images']} images, batch {g['batch_size']}; pipeline throughput / bare forward:", "",
            "| model | dtype | bare img/s | " + " | ".join(f"W={w}" for w in g["workers"]) + " |",
            "|---|---|---|" + "---|" * len(g["workers"])]
    for key, r in g["models"].items():
        arch, dtype = key.rsplit("_", 1)
        out.append(f"| {arch} | {dtype} | {r['bare_forward']['images_per_s']:.0f} | "
                   + " | ".join(f"{100 * r['vs_bare'][f'W{w}']:.0f}%" for w in g["workers"]) + " |")
    rk = g.get("ranking", {})
    if "ratio" in rk:
        out += ["", f"Ranking, {rk['queries']:,} x {rk['gallery']:,} (R = {rk['relevant']}), embeddings on the GPU: "
                f"{rk['ratio']:.1f}x one pass."]
    return out + [""]


def main() -> int:
    parser = argparse.ArgumentParser(description="Run the fp-rank benchmarks.")
    parser.add_argument("--only", nargs="+", choices=sorted(SECTIONS), help="run these sections only")
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke test of the scripts)")
    parser.add_argument("--render-only", action="store_true", help="rewrite the markdown from the results file")
    parser.add_argument("--results", default=str(HERE / "results.json"))
    parser.add_argument("--markdown", default=str(ROOT / "BENCHMARKS.md"))
    parser.add_argument("--paper-arch", choices=["tiny", "small", "base"], default="tiny",
                        help="backbones of the paper-sized run (see bench_flows.py)")
    args = parser.parse_args()
    results_path = Path(args.results)
    results: dict[str, Any] = json.loads(results_path.read_text()) if results_path.exists() else {}
    if not args.render_only:
        names = args.only or list(SECTIONS)
        start = time.perf_counter()
        results.update(run_sections(names, args.quick, {"flows": ["--paper-arch", args.paper_arch]}))
        gpu = HERE / "results_gpu.json"
        if gpu.exists():
            results["gpu"] = json.loads(gpu.read_text())
        print(f"all sections: {time.perf_counter() - start:.0f} s", flush=True)
        results_path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    Path(args.markdown).write_text(render(results), encoding="utf-8")
    print(f"wrote {results_path} and {args.markdown}")
    failed = [k for k, v in results.items() if isinstance(v, dict) and "error" in v]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
