"""Benchmark 8: performance round 2 (issue 14): start-up, decode once, workers, ranking, memory per rank.

Every comparison runs its variants side by side in this one process, round-robin (``interleaved``),
repeated, medians reported: the machine is shared, so only ratios measured in one run mean much.

* **start-up**: ``import fp_rank`` and ``fp-rank --help`` in fresh interpreters, next to a bare
  ``python -c pass``; and the time from launching ``fp-rank evaluate`` to its first forward pass.
* **decode once**: the paper-sized flow (``bench_flows.py``) against the encode-once limit, with
  the leakage guard sharing the encoder's decode (now) and decoding separately (before);
  **guard_cost**: what the guard adds to one encoder's pass, piece by piece.
* **workers**: decode + preprocess throughput with a near-free model (tiny DINOv2) at
  ``num_workers`` = 0 (in-process), 1, 2, ... ``--workers W``; DINOv2-base fp32 pipeline vs bare forward.
* **ranking**: ``rank_metrics`` vs one pass over the same matrix (a row max), in the random-score
  regime of the issue and in the regimes of ``bench_ranking.py`` (scaled to fit in memory); with
  its threads, with one, and with the compiled kernel switched off (the NumPy path, as before).
* **rank_memory**: embedding bytes and peak memory per rank at the final gather under torchrun
  (W = 1, 2, 4), streamed gather (now) vs one padded all-gather (before).

Decode once and workers each run in fresh processes, ``--rounds`` per setting, the settings
alternating: with ``OMP_WAIT_POLICY=PASSIVE``, as the fp-rank command and the Space set it
(``fp_rank/cpu_threads.py``), and with it unset, as a script importing torch itself runs; each
setting's rounds are pooled (``--in-process``: once, in this process, as its environment is).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import models  # noqa: E402
from _common import ROOT, interleaved, machine, parse_args, timed, write_photos, write_result  # noqa: E402

# ------------------------------------------------------------------------------------ start-up

FIRST_BATCH = """
import sys, time
from fp_rank.encoding.encoders import Encoder
forward = Encoder.embed_tensor
def first(self, pixels):
    sys.stdout.write("FIRST %.6f\\n" % time.time()); sys.stdout.flush()
    import os; os._exit(0)
Encoder.embed_tensor = first
from fp_rank.cli import main
main(sys.argv[1:])
"""


def _python(code: str, *args: str) -> None:
    subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(ROOT)})


def _first_batch(argv: list[str]) -> float:
    start = time.time()
    out = subprocess.run([sys.executable, "-c", FIRST_BATCH, *argv], cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("FIRST ")), None)
    if line is None:
        raise RuntimeError(f"fp-rank evaluate did not reach a forward pass: {out.stderr[-2000:]}")
    return float(line.split()[1]) - start


def startup(work: Path, repeats: int) -> dict[str, Any]:
    from bench_flows import build_world

    gallery, generated = build_world(work / "startup_world", 64, n_methods=1)
    csv = work / "startup.csv"
    csv.write_text("file,identity,method\n" + "".join(f"{g['file']},{g['identity']},{g['method']}\n" for g in generated))
    enc = str(models.build("tiny-dinov2", work / "startup_model"))
    argv = ["evaluate", "--gallery", str(gallery), "--generated", str(csv), "--encoder", enc, "--no-cache",
            "--no-progress", "--bootstrap", "0"]
    help_code = "import fp_rank.cli\ntry:\n    fp_rank.cli.main(['--help'])\nexcept SystemExit:\n    pass"
    times = interleaved({
        "python": lambda: _python("pass"),
        "import fp_rank": lambda: _python("import fp_rank"),
        "fp-rank --help": lambda: _python(help_code),
        "import torch": lambda: _python("import torch"),
    }, repeats)
    first = [_first_batch(argv) for _ in range(repeats)]
    out = {name: t["median_s"] for name, t in times.items()}
    out["times_s"] = {name: t["times_s"] for name, t in times.items()}
    out["first_batch_s"] = statistics.median(first)
    out["first_batch_times_s"] = first
    out["repeats"] = repeats
    return out


# ------------------------------------------------------------------------------------ decode once


def decode_once(work: Path, repeats: int, n_methods: int) -> dict[str, Any]:
    import bench_flows as bf

    from fp_rank.checks import leakage
    from fp_rank.evaluation import embed

    gallery, generated = bf.build_world(work / "paper_world", 256, n_methods)
    folders = [str(models.build(a, work / a)) for a in ("tiny-dinov2", "tiny-clip")]
    runs = {"n": 0}

    def ours() -> None:
        leakage._INDEX_CACHE.clear()  # every repeat builds the leak index as a fresh process would
        runs["n"] += 1
        bf.fp_rank_flow(gallery, generated, folders, work / f"cache_{runs['n']}")

    def before() -> None:  # the leakage guard decoding every image in a pass of its own (main before issue 14)
        taps = embed.Embedder._guard_taps
        embed.Embedder._guard_taps = lambda self: None  # type: ignore[method-assign]  # no fingerprint taps
        try:
            ours()
        finally:
            embed.Embedder._guard_taps = taps  # type: ignore[method-assign]

    def no_guard() -> None:  # the same flow with the leakage guard off (what the guard costs)
        runs["n"] += 1
        from fp_rank import evaluate

        evaluate([g["file"] for g in generated], [g["identity"] for g in generated],
                 methods=[g["method"] for g in generated], prompts=[g["prompt"] for g in generated],
                 gallery=str(gallery), encoder=folders, cache=work / f"cache_{runs['n']}", progress=False,
                 batch_size=32, leaks="off")

    bf.encode_once(gallery, generated, folders)  # warm-up: file cache, model loading code
    times = interleaved({
        "limit": lambda: bf.encode_once(gallery, generated, folders),
        "fp_rank": ours,
        "fp_rank_separate_leak_pass": before,
        "fp_rank_without_leak_guard": no_guard,
    }, repeats)
    return _decode_figures({"generated_images": len(generated), "encoders": ["tiny-dinov2", "tiny-clip"],
                            "repeats": repeats, "times": times})


def _decode_figures(out: dict[str, Any]) -> dict[str, Any]:
    """The ratios of a decode-once result, from its ``times`` (also after pooling rounds)."""
    times = out["times"]
    limit = times["limit"]["median_s"]
    out["ratio_fp_rank_to_limit"] = times["fp_rank"]["median_s"] / limit
    out["ratio_fp_rank_to_limit_per_repeat"] = [
        o / lim for o, lim in zip(times["fp_rank"]["times_s"], times["limit"]["times_s"])]
    out["ratio_separate_pass_to_limit"] = times["fp_rank_separate_leak_pass"]["median_s"] / limit
    out["ratio_without_leak_guard_to_limit"] = times["fp_rank_without_leak_guard"]["median_s"] / limit
    return out


def guard_cost(work: Path, repeats: int, n_methods: int) -> dict[str, Any]:
    """What the leakage guard adds to one encoder's pass over the generated images, piece by piece."""
    import bench_flows as bf
    from PIL import Image

    from fp_rank import load_encoder, load_gallery
    from fp_rank.checks.leakage import gallery_leak_index, leak_fingerprint
    from fp_rank.images.decode import to_rgb

    gallery, generated = bf.build_world(work / "guard_world", 256, n_methods)
    files = [g["file"] for g in generated]
    enc = load_encoder(str(models.build("tiny-dinov2", work / "guard_tiny")))
    index = gallery_leak_index(load_gallery(str(gallery)))

    def resizes_only(rgb: Any) -> None:
        rgb.convert("L").resize((32, 32), Image.Resampling.BOX)
        rgb.resize((16, 16), Image.Resampling.BOX)

    hooks: dict[str, Any] = {  # taps of the decode stream (round 2: Encoder.encode(on_decoded=))
        "no guard": None,
        "the two Pillow resizes only": resizes_only,
        "fingerprint": leak_fingerprint,
        "fingerprint and match (the guard)": lambda rgb: index.match(None, digest=None, rgb=rgb),
    }
    enc.encode(files, batch_size=32, progress=False)  # warm-up

    def run(hook: Any) -> Any:
        return enc.encode(files, batch_size=32, progress=False, taps={"guard": hook} if hook else None)

    times = interleaved({name: (lambda hook=hook: run(hook)) for name, hook in hooks.items()}, repeats)
    rgb = to_rgb(files[0])
    per_image = min(timed(lambda: [leak_fingerprint(rgb) for _ in range(200)])[0] for _ in range(5)) / 200
    base = times["no guard"]["median_s"]
    return {"images": len(files), "encoder": "tiny-dinov2", "repeats": repeats, "times": times,
            "added_s": {k: v["median_s"] - base for k, v in times.items()},
            "fingerprint_alone_ms": 1e3 * per_image, "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY")}


# ------------------------------------------------------------------------------------ workers


def workers(work: Path, repeats: int, max_workers: int, n_images: int, base_images: int) -> dict[str, Any]:
    import torch

    from fp_rank import load_encoder

    sizes = [(512, 512), (375, 500), (768, 512), (1024, 1024)]
    files = write_photos(work / "photos", [sizes[i % 4] for i in range(n_images)], seed=1)
    tiny = load_encoder(str(models.build("tiny-dinov2", work / "w_tiny")), device="cpu")
    counts = sorted({0, 1, *range(2, max_workers + 1)})
    variants = {f"W={w}": (lambda w=w: tiny.encode(files, batch_size=16, progress=False, num_workers=w)) for w in counts}
    times = interleaved(variants, repeats)
    cpu = {}
    for w in counts:  # where the CPU time goes: this process (the model's threads) and the workers
        before = os.times()
        variants[f"W={w}"]()
        after = os.times()
        cpu[str(w)] = {"main_process_s": after.user - before.user + after.system - before.system,
                       "workers_s": after.children_user - before.children_user
                       + after.children_system - before.children_system}
    out: dict[str, Any] = {"images": n_images, "near_free_model": "tiny-dinov2", "cores": os.cpu_count(),
                           "times": times, "repeats": repeats, "cpu_time_of_one_run": cpu}
    # DINOv2-base fp32 with the default preprocessing: pipeline vs bare forward
    base = load_encoder(str(models.build("dinov2-base", work / "w_base")), device="cpu")
    some = files[:base_images]
    from fp_rank.images.decode import to_rgb

    ready = [base.preprocess([to_rgb(f) for f in some[i: i + 16]]) for i in range(0, len(some), 16)]

    def bare() -> None:
        for pixels in ready:
            base.embed_tensor(pixels)

    with torch.inference_mode():
        bare()  # warm-up
    t = interleaved({
        "bare forward": bare,
        "pipeline W=0": lambda: base.encode(some, batch_size=16, progress=False),
        "pipeline W=1": lambda: base.encode(some, batch_size=16, progress=False, num_workers=1),
    }, max(2, repeats - 1))
    out["dinov2_base_fp32"] = {"images": len(some), "preprocessing": base.preprocessing, "times": t}
    return _workers_figures(out)


def _workers_figures(out: dict[str, Any]) -> dict[str, Any]:
    """Rates and ratios of a workers result, from its ``times`` (also after pooling rounds)."""
    times = out["times"]
    rate = {int(k.split("=")[1]): out["images"] / v["median_s"] for k, v in times.items()}
    out["images_per_s"] = {str(w): r for w, r in sorted(rate.items())}
    out["scaling_vs_w_times_one_worker"] = {str(w): rate[w] / (w * rate[1]) for w in sorted(rate) if w >= 1}
    b = out["dinov2_base_fp32"]
    bare_s = b["times"]["bare forward"]["median_s"]
    b["images_per_s"] = {k: b["images"] / v["median_s"] for k, v in b["times"].items()}
    b["vs_bare"] = {k: bare_s / v["median_s"] for k, v in b["times"].items()}
    return out


def _pooled(runs: list[dict[str, Any]], figures: Any) -> dict[str, Any]:
    """Several rounds of one section as one result: their times pooled, medians and ratios recomputed."""

    def pool(parts: list[dict[str, Any]]) -> dict[str, Any]:
        names = parts[0]
        merged = {k: [x for p in parts for x in p[k]["times_s"]] for k in names}
        return {k: {"median_s": statistics.median(v), "times_s": v} for k, v in merged.items()}

    out = dict(runs[0])
    out["times"] = pool([r["times"] for r in runs])
    out["repeats"] = sum(r["repeats"] for r in runs)
    out["rounds"] = len(runs)
    if "dinov2_base_fp32" in out:
        base = pool([r["dinov2_base_fp32"]["times"] for r in runs])
        out["dinov2_base_fp32"] = dict(out["dinov2_base_fp32"], times=base)
    return figures(out)


# ------------------------------------------------------------------------------------ ranking


def ranking(repeats: int, quick: bool) -> dict[str, Any]:
    from fp_rank import rank_metrics
    from fp_rank.ranking.accumulate import cpu_threads

    rng = np.random.default_rng(0)
    regimes = [  # (name, Q, N, R, shift, dtype)
        ("issue: random scores", 2000, 50000, 10, None, np.float32),
        ("bench_ranking 1,000 x 10,000, R=10, shift 4", 1000, 10000, 10, 4.0, np.float64),
        ("bench_ranking 1,000 x 10,000, R=1000, shift 4", 1000, 10000, 1000, 4.0, np.float64),
        ("bench_ranking x 100,000, R=10, shift 1 (500 queries)", 500, 100000, 10, 1.0, np.float64),
        ("bench_ranking x 100,000, R=10, shift 4 (500 queries)", 500, 100000, 10, 4.0, np.float64),
    ]
    if quick:
        regimes = [(n, max(50, q // 20), max(1000, g // 20), r, s, d) for n, q, g, r, s, d in regimes]
    out = []
    for name, q, n, r, shift, dtype in regimes:
        r = min(r, n // 2)
        gallery_ids = np.repeat(np.arange(n // r), r)[:n]
        query_ids = rng.integers(0, n // r, q)
        sim = rng.standard_normal((q, n)).astype(dtype)
        if shift is not None:
            sim[gallery_ids[None, :] == query_ids[:, None]] += shift
        rank_metrics(sim[:2], query_ids[:2], gallery_ids)  # warm-up (imports, compiled kernel, thread pool)
        threads = cpu_threads()
        t = interleaved({
            "one pass (row max)": lambda: sim.max(axis=1),
            "rank_metrics": lambda: rank_metrics(sim, query_ids, gallery_ids),
            "rank_metrics, 1 thread": lambda: _with_threads(1, lambda: rank_metrics(sim, query_ids, gallery_ids)),
            "rank_metrics, NumPy path (before)": lambda: _numpy_path(lambda: rank_metrics(sim, query_ids, gallery_ids)),
        }, repeats)
        one = t["one pass (row max)"]["median_s"]
        ours, one_thread = t["rank_metrics"]["median_s"], t["rank_metrics, 1 thread"]["median_s"]
        before = t["rank_metrics, NumPy path (before)"]["median_s"]
        same = _numpy_path(lambda: rank_metrics(sim, query_ids, gallery_ids)).ap
        max_diff = float(np.max(np.abs(same - rank_metrics(sim, query_ids, gallery_ids).ap)))
        out.append({"regime": name, "queries": q, "gallery": n, "relevant": r, "dtype": np.dtype(dtype).name,
                    "one_pass_s": one, "rank_metrics_s": ours, "ratio": ours / one, "threads": threads,
                    "one_thread_s": one_thread, "one_thread_ratio": one_thread / one, "numpy_path_s": before,
                    "numpy_path_ratio": before / one, "speedup_vs_numpy_path": before / ours,
                    "max_abs_ap_difference": max_diff, "times": t})
        del sim
    return {"regimes": out, "repeats": repeats}


# ------------------------------------------------------------------------------------ rendering


def rank_memory(work: Path, worlds: list[int], n_images: int, dim: int, chunk: int) -> dict[str, Any]:
    """Embedding bytes and peak memory per rank at the final gather, under torchrun (gloo, CPU)."""
    out = []
    for world in worlds:
        for gather in ("streamed", "padded"):
            if world == 1 and gather == "padded":
                continue  # one process gathers nothing
            folder = work / f"rank_memory_{world}_{gather}"
            shutil.rmtree(folder, ignore_errors=True)
            port = 29400 + world * 2 + (gather == "padded")
            cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(world), "--master_port",
                   str(port), str(ROOT / "benchmarks" / "rank_memory_worker.py"), str(n_images), str(dim), str(chunk),
                   str(folder), gather]
            subprocess.run(cmd, check=True, capture_output=True, timeout=600)
            ranks = [json.loads(p.read_text()) for p in sorted(folder.glob("rank*.json"))]
            total = ranks[0]["total_bytes"]
            out.append({
                "world_size": world, "gather": gather, "total_bytes": total,
                "held_before_gather_bytes": max(r["held_bytes_before_gather"] for r in ranks),
                "held_share": max(r["held_bytes_before_gather"] for r in ranks) / total,
                "peak_extra_before_gather_bytes": max(r["peak_extra_before_gather_bytes"] for r in ranks),
                "peak_extra_with_gather_bytes": max(r["peak_extra_with_gather_bytes"] for r in ranks),
                "ranks": ranks,
            })
    return {"images": n_images, "dim": dim, "chunk": chunk, "runs": out}


def _with_threads(n: int, fn: Any) -> Any:
    """Run ``fn`` with the ranking limited to ``n`` threads (``OMP_NUM_THREADS``, which it follows)."""
    before = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = str(n)
    try:
        return fn()
    finally:
        if before is None:
            del os.environ["OMP_NUM_THREADS"]
        else:
            os.environ["OMP_NUM_THREADS"] = before


def _numpy_path(fn: Any) -> Any:
    """Run ``fn`` with the compiled counting switched off (the kernel of main before this round)."""
    from fp_rank.ranking import compiled

    os.environ["FP_RANK_NO_NUMBA"] = "1"
    compiled.reset()
    try:
        return fn()
    finally:
        del os.environ["FP_RANK_NO_NUMBA"]
        compiled.reset()


def summary_rows(res: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """Rows of the BENCHMARKS.md summary table."""
    met = lambda ok: "**met**" if ok else "**not met**"  # noqa: E731
    rows: list[tuple[str, str, str, str]] = []
    d = res.get("decode_once")
    if d:
        off = d.get("ratio_without_leak_guard_to_limit")
        du = d.get("openmp_unset")
        rows.append((f"8. Decode once: paper-sized flow ({d['generated_images']:,} images, 2 encoders) / encode-once limit",
                     f"{d['ratio_fp_rank_to_limit']:.2f}"
                     + _policy_note(d, f"{du['ratio_fp_rank_to_limit']:.2f}" if du else None)
                     + f"; separate leak pass, as before: {d['ratio_separate_pass_to_limit']:.2f}"
                     + (f"; leak guard off: {off:.2f}" if off else ""),
                     "<= 1.05", met(d["ratio_fp_rank_to_limit"] <= 1.05)))
    w = res.get("workers")
    if w:
        sc = w["scaling_vs_w_times_one_worker"]
        wu = w.get("openmp_unset")
        unset = ", ".join(f"{wu['scaling_vs_w_times_one_worker'][k]:.2f}" for k in sorted(sc, key=int)) if wu else None
        rows.append((f"8. Worker processes, near-free model: rate at W / (W x rate at 1), W = {', '.join(sorted(sc, key=int))}",
                     ", ".join(f"{sc[k]:.2f}" for k in sorted(sc, key=int)) + f" on {w['cores']} cores" + _policy_note(w, unset),
                     ">= 0.8 up to the cores", met(all(v >= 0.8 for k, v in sc.items() if int(k) <= w["cores"]))))
        b = w["dinov2_base_fp32"]["vs_bare"]
        best = max(b["pipeline W=0"], b["pipeline W=1"])
        bu = wu["dinov2_base_fp32"]["vs_bare"] if wu else None
        rows.append(("8. DINOv2-base fp32 pipeline / bare forward (W=0 / W=1)",
                     f"{100 * b['pipeline W=0']:.0f}% / {100 * b['pipeline W=1']:.0f}%"
                     + _policy_note(w, f"{100 * bu['pipeline W=0']:.0f}% / {100 * bu['pipeline W=1']:.0f}%" if bu else None),
                     ">= 90%", met(best >= 0.9)))
    s = res.get("startup")
    if s:
        imp = s["import fp_rank"] - s["python"]
        hlp = s["fp-rank --help"] - s["python"]
        rows.append(("8. Start-up: `import fp_rank` / `fp-rank --help` (beyond a bare interpreter)",
                     f"{s['import fp_rank']:.2f} s / {s['fp-rank --help']:.2f} s ({imp:.2f} / {hlp:.2f} s; "
                     f"import torch alone {s['import torch']:.2f} s)", "< 0.5 s / < 0.3 s",
                     met(s["import fp_rank"] < 0.5 and s["fp-rank --help"] < 0.3)))
        rows.append(("8. Start-up: launch of `fp-rank evaluate` to its first forward pass", f"{s['first_batch_s']:.2f} s",
                     "report", "-"))
    r = res.get("ranking")
    if r:
        issue = r["regimes"][0]
        rows.append((f"8. Ranking / one pass over the matrix, {issue['regime']} ({issue['queries']:,} x "
                     f"{issue['gallery']:,}, R={issue['relevant']})",
                     f"{issue['ratio']:.1f}x ({issue['threads']} threads; 1 thread {issue['one_thread_ratio']:.1f}x; "
                     f"NumPy path {issue['numpy_path_ratio']:.1f}x)", "<= 3x", met(issue["ratio"] <= 3)))
        worst = max(r["regimes"], key=lambda x: x["ratio"])
        rows.append(("8. Ranking / one pass over the matrix, worst regime",
                     f"{worst['ratio']:.1f}x ({worst['regime']}; NumPy path {worst['numpy_path_ratio']:.1f}x)",
                     "<= 3x", met(worst["ratio"] <= 3)))
    m = res.get("rank_memory")
    if m:
        runs = {(x["world_size"], x["gather"]): x for x in m["runs"]}
        worlds = sorted({w for w, _ in runs})
        held = ", ".join(f"W={w}: {runs[(w, 'streamed')]['held_share']:.2f}" for w in worlds)
        mb = lambda b: f"{b / 1e6:.0f} MB"  # noqa: E731
        peaks = ", ".join(
            f"W={w}: {mb(runs[(w, 'streamed')]['peak_extra_with_gather_bytes'])}"
            + (f" (padded gather, as before: {mb(runs[(w, 'padded')]['peak_extra_with_gather_bytes'])})"
               if (w, "padded") in runs else "") for w in worlds)
        total = m["runs"][0]["total_bytes"]
        rows.append((f"8. Memory per rank: share of the {mb(total)} of embeddings held before the final gather",
                     held, "1/W (no rank holds every embedding)",
                     met(all(abs(runs[(w, "streamed")]["held_share"] - 1 / w) < 0.05 for w in worlds))))
        rows.append(("8. Memory per rank: peak extra resident memory through the gather", peaks, "report", "-"))
    return rows


def _cpu_note(w: dict[str, Any], wu: dict[str, Any] | None) -> str:
    """The main process's CPU time in one run at each W >= 1, passive and unset."""
    if not wu or "cpu_time_of_one_run" not in w:
        return ""
    per = lambda part: ", ".join(  # noqa: E731
        f"W={k}: {v['main_process_s']:.2f} s"
        for k, v in sorted(part["cpu_time_of_one_run"].items(), key=lambda kv: int(kv[0])) if int(k) >= 1)
    return (f" (CPU time of the main process in one run of the {w['images']} images, in the first round, while it only "
            f"waits and runs the near-free model: {per(wu)} with the variable unset, against {per(w)} with "
            "`OMP_WAIT_POLICY=PASSIVE`)")


def _policy_note(part: dict[str, Any], unset: str | None = None) -> str:
    """Which OpenMP setting a summary figure is for, and the figure with it unset."""
    if not part.get("openmp_wait_policy"):
        return ""
    return " (OMP_WAIT_POLICY=PASSIVE, as the fp-rank command runs" + (f"; unset: {unset}" if unset else "") + ")"


def section(res: dict[str, Any]) -> list[str]:
    """The BENCHMARKS.md section."""
    if not res:
        return []
    out = ["## 8. Performance round 2 (start-up, decode once, workers, ranking vs one pass)", "",
           "`benchmarks/bench_round2.py`. The machine was **shared** with other engineers' test runs while this ran "
           f"(load average at the start: {_load(res)}); every comparison ran its variants round-robin in one process "
           "and reports medians, so the ratios are meaningful even where the absolute times are inflated (the "
           "OpenMP settings of decode once and workers ran in separate processes, alternating). Each part is one "
           "`--only` run of its section; they need not come from one invocation (`seconds` in results.json).", ""]
    s = res.get("startup")
    if s:
        out += [f"**Start-up** (fresh interpreters, medians of {s['repeats']}):", "",
                "| command | time | beyond `python -c pass` |", "|---|---|---|"]
        for k in ("python", "import fp_rank", "fp-rank --help", "import torch"):
            out.append(f"| `{k}` | {s[k]:.3f} s | {s[k] - s['python']:.3f} s |")
        out += ["", f"Launch of `fp-rank evaluate` (tiny DINOv2, demo-sized gallery, no cache) to its first forward pass: "
                f"{s['first_batch_s']:.2f} s (median of {s['repeats']}; loading torch, transformers, the gallery and the "
                "model). Heavy modules load on first use: `fp_rank/__init__.py` resolves its public names through a "
                "module `__getattr__`; `tests/test_startup.py` checks that neither command imports torch, transformers, "
                "datasets, evaluate, matplotlib, PIL, scipy, pandas or numba.", ""]
    d = res.get("decode_once")
    if d:
        t, du = d["times"], d.get("openmp_unset")
        out += [f"**Decode once** ({d['generated_images']:,} generated 256 px PNGs, 150 gallery + 150 reference images, "
                f"tiny DINOv2 + tiny CLIP, medians of {d['repeats']}"
                + (f" ({d['rounds']} rounds)" if d.get("rounds") else "") + (
                    "; the columns from fresh processes, pooled: `OMP_WAIT_POLICY=PASSIVE` as the fp-rank command "
                    "and the Space set it, and unset" if du else "") + "):", ""]
        head = "| flow | wall time | / limit |" + (" unset: wall time | / limit |" if du else "")
        out += [head, "|---|---|---|" + ("---|---|" if du else "")]
        for k, label in (("limit", "limit (each distinct image through each encoder once)"),
                         ("fp_rank", "fp-rank `evaluate` (leak fingerprints in the encoder's decode pass)"),
                         ("fp_rank_separate_leak_pass", "fp-rank with the leakage guard's own decode pass (as before)"),
                         ("fp_rank_without_leak_guard", "fp-rank with the leakage guard off (`leaks='off'`)")):
            if k in t:
                row = f"| {label} | {t[k]['median_s']:.2f} s | {t[k]['median_s'] / t['limit']['median_s']:.2f} |"
                if du:
                    tu = du["times"]
                    row += f" {tu[k]['median_s']:.2f} s | {tu[k]['median_s'] / tu['limit']['median_s']:.2f} |"
                out.append(row)
        g = res.get("guard_cost")
        guard = "" if not g else (
            f" (one encoder's pass over the {g['images']:,} generated images, `guard_cost`, medians of {g['repeats']}"
            + (f", OMP_WAIT_POLICY={g['omp_wait_policy']}" if g.get("omp_wait_policy") else "") + ": "
            f"{g['times']['no guard']['median_s']:.2f} s without it; the two resizes alone, which release the GIL, add "
            f"{g['added_s']['the two Pillow resizes only']:.2f} s, the whole fingerprint "
            f"{g['added_s']['fingerprint']:.2f} s, fingerprint and match {g['added_s']['fingerprint and match (the guard)']:.2f}"
            " s: the two threads take turns at the GIL and share the cores with the model's)")
        fp_ms = f"{g['fingerprint_alone_ms']:.2f}" if g else "0.2"
        out += ["", "Per repeat, fp-rank / limit" + (" (PASSIVE)" if du else "") + ": " + ", ".join(f"{x:.2f}" for x in d["ratio_fp_rank_to_limit_per_repeat"])
                + ". The leakage guard now takes each generated image's sha256 from the deduplication hash and its pHash "
                "and thumbnail from the RGB picture the first encoder decodes (round 2: `Encoder.encode(on_decoded=)`; now a tap of the decode stream, `Encoder.encode(taps=)`); the real "
                "splits' fingerprints are taken while they are encoded, so nothing is decoded twice unless it came from "
                "the cache. With the guard off the flow is within a few percent of the limit (loading the gallery, "
                "ranking, the report); what the guard still costs is its own arithmetic, not a decode: per image two "
                "Pillow box resizes of the full picture (to 32x32 luminance and a 16x16 thumbnail; the fingerprint "
                f"takes about {fp_ms} ms at 256 px) and the comparison with the index. The flow is decode-bound: one "
                "thread decodes and preprocesses while the tiny models take a few percent of the time, so the guard "
                f"runs in a side thread on the other core; even so it adds to the pass{guard}. Cheaper resizes (one "
                "32x32 colour picture for both, or Pillow's `reducing_gap`) took 0.08 ms but missed more copies in "
                "`benchmarks/leak_guard.py` at 60 pictures per kind (64 px "
                "birds cropped 5%: 51/60 and 37/60 found against 54/60), so the guard keeps its definition.", ""]
    w = res.get("workers")
    if w:
        wu = w.get("openmp_unset")
        out += [f"**Worker processes** (`num_workers=`, `--workers`; {w['images']} photo-like JPEGs of 375x500 to "
                f"1024x1024, batch 16, near-free model {w['near_free_model']}, {w['cores']} cores, medians of "
                f"{w['repeats']}" + (f" ({w['rounds']} rounds)" if w.get("rounds") else "")
                + ("; each pair of columns from fresh processes, pooled: `OMP_WAIT_POLICY=PASSIVE` as the "
                                     "fp-rank command and the Space set it, and unset" if wu else "") + "):", "",
                "| W | images/s | rate / (W x rate at W=1) |" + (" unset: images/s | rate / (W x rate at W=1) |" if wu else ""),
                "|---|---|---|" + ("---|---|" if wu else "")]

        def cells(part: dict[str, Any], k: str) -> str:
            sc = part["scaling_vs_w_times_one_worker"].get(k)
            return f" {part['images_per_s'][k]:.0f} | {'-' if sc is None else f'{sc:.2f}'} |"

        for k in sorted(w["images_per_s"], key=int):
            out.append(f"| {k}{' (in-process, one batch ahead)' if k == '0' else ''} |" + cells(w, k)
                       + (cells(wu, k) if wu else ""))
        b = w["dinov2_base_fp32"]
        bu = wu["dinov2_base_fp32"] if wu else None
        out += ["", f"DINOv2-base fp32 (random weights), {b['images']} images, default preprocessing "
                f"(`{b['preprocessing'].get('processor', b['preprocessing'])}`):", "",
                "| variant | images/s | vs bare forward |" + (" unset: images/s | vs bare forward |" if bu else ""),
                "|---|---|---|" + ("---|---|" if bu else "")]
        for k in b["images_per_s"]:
            out.append(f"| {k} | {b['images_per_s'][k]:.2f} | {100 * b['vs_bare'][k]:.0f}% |"
                       + (f" {bu['images_per_s'][k]:.2f} | {100 * bu['vs_bare'][k]:.0f}% |" if bu else ""))
        out += ["", "Workers are `torch.utils.data.DataLoader` processes, each decoding and preprocessing whole batches "
                "(so every forward pass sees the batch a single process would: embeddings are bit-identical whatever W, "
                "`tests/test_workers.py`); on CUDA the batches come in pinned memory and are copied without blocking. "
                "While the workers decode, the main process waits for the next batch; with torch's OpenMP threads "
                "left at the runtime's default they spin on the cores the workers need" + _cpu_note(w, wu) + ". The fp-rank "
                "command and the Space therefore set `OMP_WAIT_POLICY=PASSIVE` before torch loads unless the "
                "environment names a policy (`fp_rank/cpu_threads.py`); a script that imports torch itself keeps the "
                "runtime's default, which the `unset` columns show, and `Encoder.encode` logs a hint when it starts "
                "workers there (at INFO level). The embeddings do not depend on it (`tests/test_cpu_threads.py`). Where the "
                "policy shows most here is in the main process's CPU time and in-process decoding (W = 0); the rates "
                "with workers moved less than the noise between runs. The scaling ratios above are higher than the "
                "0.74 committed last round; runs of 128 images in one process gave 0.75 to 0.85 with the variable "
                "unset this round, so part of the difference is the larger run (256 images: starting the workers "
                "weighs less) and part is noise. This machine has 2 "
                "cores and is shared; run `python benchmarks/bench_round2.py --only workers --workers 16` on a "
                "16-core host for the scaling curve.", ""]
    r = res.get("ranking")
    if r:
        out += [f"**Ranking vs one pass over the similarity matrix** (medians of {r['repeats']}; one pass = `sim.max(axis=1)`):",
                "", "| regime | Q x N, R | dtype | one pass | rank_metrics | ratio |", "|---|---|---|---|---|---|"]
        for x in r["regimes"]:
            out.append(f"| {x['regime']} | {x['queries']:,} x {x['gallery']:,}, {x['relevant']} | {x['dtype']} | "
                       f"{x['one_pass_s']:.3f} s | {x['rank_metrics_s']:.3f} s | {x['ratio']:.1f}x |")
        out += ["", "| regime | rank_metrics, 1 thread | ratio | NumPy path (before) | ratio | speed-up | max abs AP "
                "difference |", "|---|---|---|---|---|---|---|"]
        for x in r["regimes"]:
            out.append(f"| {x['regime']} | {x['one_thread_s']:.3f} s | {x['one_thread_ratio']:.1f}x | "
                       f"{x['numpy_path_s']:.3f} s | {x['numpy_path_ratio']:.1f}x | {x['speedup_vs_numpy_path']:.1f}x | "
                       f"{x['max_abs_ap_difference']:.1e} |")
        threads = r["regimes"][0]["threads"]
        out += ["", f"`rank_metrics` used {threads} threads (in round 2 torch's intra-op setting; now OMP_NUM_THREADS, else the cores this process may use); the one pass is NumPy's "
                "single-threaded row max. The counting is compiled (`fp_rank/ranking/compiled.py`, Numba): per query "
                "and pair of distinct relevant scores, one vectorised compare-and-count loop over the row while it sits "
                "in the cache (up to 16 distinct scores), a monotone cell histogram beyond; the items below the lowest relevant "
                "score are dropped first when they are at least a quarter of the row. The NumPy path (candidates sorted, binary search) is what "
                "runs without Numba (`FP_RANK_NO_NUMBA=1`); both agree to the printed difference and exactly on ranks, "
                "ties and top-1 (`tests/test_ranking_compiled.py`). Where the target is not met, the per-relevant-item "
                "work dominates (R = 1000 relevant items in a 10,000-item row: each needs its tie group, its precision "
                "and its Recall@k terms), or the row is short enough that the fixed per-query cost shows. In round 2, "
                "tensors on a GPU were ranked on the GPU by a third, torch, path (not timed: no GPU was lent); round 3 "
                "removed it, and tensors are now read on the CPU by the same two paths.", ""]
    m = res.get("rank_memory")
    if m:
        out += [f"**Memory per rank** (`torchrun --nproc_per_node W`, gloo on the CPU; {m['images']:,} generated images, "
                f"a near-free {m['dim']}-dimensional callable encoder, chunks of {m['chunk']:,} images, no cache; each "
                "rank's figures at the moment it enters the final gather, and after it; worst rank shown):", "",
                "| W | final gather | embeddings held before the gather | share of all | peak extra memory before the "
                "gather | peak extra memory through the gather |", "|---|---|---|---|---|---|"]
        for x in m["runs"]:
            out.append(f"| {x['world_size']} | {x['gather']} | {x['held_before_gather_bytes'] / 1e6:.1f} MB | "
                       f"{x['held_share']:.2f} | {x['peak_extra_before_gather_bytes'] / 1e6:.0f} MB | "
                       f"{x['peak_extra_with_gather_bytes'] / 1e6:.0f} MB |")
        out += ["", "Every rank ends with all the embeddings (ranking runs on every rank), so the gather's result is "
                "the floor. Before this round the gather sent each shard whole, padded, and concatenated and reordered "
                "the result (two more full copies); it now streams 16 MB pieces per rank straight into their final "
                "rows (`fp_rank/distributed.py`, `_gather_rows`), and the encoded chunks are held once.", ""]
    return out


def _load(res: dict[str, Any]) -> str:
    la = (res.get("machine") or {}).get("load_average_at_start")
    return ", ".join(f"{x:.1f}" for x in la) if la else "n/a"


#: How the decode-bound sections run, each in a fresh interpreter (the policy is read when torch
#: loads): as the fp-rank command and the Space run (``fp_rank/cpu_threads.py``), and with the
#: variable unset, as a script that imports torch itself gets by default.
OPENMP_VARIANTS = {"passive": "PASSIVE", "unset": None}


def _in_fresh_processes(part: str, args: Any, work: Path) -> dict[str, Any]:
    """``part`` in fresh processes, ``--rounds`` per :data:`OPENMP_VARIANTS` entry, the variants
    alternating (so a slow spell of the machine hits both); each variant's rounds pooled. The
    passive result, with the other beside it."""
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in OPENMP_VARIANTS}
    for i in range(args.rounds):
        for name in (list(OPENMP_VARIANTS) if i % 2 == 0 else list(OPENMP_VARIANTS)[::-1]):
            policy = OPENMP_VARIANTS[name]
            env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
            if policy is not None:
                env["OMP_WAIT_POLICY"] = policy
            target = work / f"{part}_{name}_{i}.json"
            cmd = [sys.executable, __file__, "--only", part, "--in-process", "--out", str(target), "--repeats",
                   str(args.repeats), "--workers", str(args.workers), "--workdir", str(work / f"{part}_{name}_{i}")]
            subprocess.run(cmd + (["--quick"] if args.quick else []), env=env, check=True)
            runs[name].append(json.loads(target.read_text(encoding="utf-8"))[part])
    figures = _workers_figures if part == "workers" else _decode_figures
    res = _pooled(runs["passive"], figures)
    res["openmp_wait_policy"] = "PASSIVE"
    res["openmp_unset"] = _pooled(runs["unset"], figures)
    return res


def main() -> None:
    def extra(parser: Any) -> None:
        parser.add_argument("--only", nargs="+",
                            choices=["startup", "decode_once", "guard_cost", "workers", "ranking", "rank_memory"])
        parser.add_argument("--workers", type=int, default=2, help="largest number of worker processes (default 2)")
        parser.add_argument("--repeats", type=int, default=3)
        parser.add_argument("--rounds", type=int, default=2,
                            help="fresh processes per OpenMP variant for decode_once and workers (default 2, alternating)")
        parser.add_argument("--in-process", action="store_true",
                            help="run decode_once and workers in this process as its environment is (by default each "
                            "runs in --rounds fresh processes with OMP_WAIT_POLICY=PASSIVE, as the fp-rank command "
                            "sets it, and as many with it unset, alternating)")

    args = parse_args(__doc__.splitlines()[0], extra)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="fp_rank_bench_round2_"))
    parts = args.only or ["startup", "decode_once", "guard_cost", "workers", "ranking", "rank_memory"]
    result: dict[str, Any] = {"machine": machine()}
    start = time.perf_counter()
    reps = 2 if args.quick else args.repeats
    for part in parts:
        print(f"round2: {part} ...", flush=True)
        if part in ("decode_once", "workers") and not args.in_process:
            t, value = timed(lambda part=part: _in_fresh_processes(part, args, work))
        else:
            t, value = timed(lambda part=part: {
                "startup": lambda: startup(work, reps + 2),
                "decode_once": lambda: decode_once(work, reps, 2 if args.quick else 7),
                "guard_cost": lambda: guard_cost(work, reps, 2 if args.quick else 7),
                "workers": lambda: workers(work, reps, args.workers, 32 if args.quick else 256, 8 if args.quick else 32),
                "ranking": lambda: ranking(reps, args.quick),
                "rank_memory": lambda: rank_memory(work, [1, 2] if args.quick else [1, 2, 4],
                                                   4096 if args.quick else 16384, 1024, 1024 if args.quick else 2048),
            }[part]())
        result[part] = value
        result[part]["seconds"] = t
        print(json.dumps({part: {k: v for k, v in value.items() if k not in ("times", "regimes", "runs", "openmp_unset")}},
                         default=str)[:600],
              flush=True)
    result["seconds"] = time.perf_counter() - start
    write_result(args.out, result)
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
