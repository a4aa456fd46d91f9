"""GPU check: encoding pipeline vs bare forward (DINOv2-base, CLIP B/32; fp32, bf16, fp16; W workers) and ranking.

Run it on a machine with a CUDA GPU, as one short prepared script::

    python benchmarks/gpu_encode.py --out benchmarks/results_gpu.json            # ~6 minutes on one GPU
    python benchmarks/gpu_encode.py --workers 0 1 2 4 8 16 --budget-s 420 --out r.json

It exits 0 with a message when no GPU is available (``--device cpu`` runs the same code on the
CPU with tiny models, to check the script itself). The models are the real architectures with
random weights (same FLOPs as the published checkpoints); images are photo-like JPEGs of
512 to 1024 px. The bare forward runs ``Encoder.embed_tensor`` on preprocessed tensors on the
host (copy to the GPU included, as in the pipeline); the pipeline is ``Encoder.encode`` on the
files with ``num_workers`` = W decoding processes (pinned memory, non-blocking copies). The
ranking part times ``rank_metrics_from_embeddings`` given embeddings on the GPU (read on the CPU
and ranked there since round 3) against one pass over the same similarities on the GPU. ``--budget-s`` stops starting new measurements when the time
is spent, so a run always returns what it measured.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import models  # noqa: E402
from _common import machine, write_photos, write_result  # noqa: E402

SIZES = [(512, 512), (768, 512), (1024, 1024), (375, 500)]


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def measure(folder: Path, paths: list[str], batch: int, device: str, dtype: str, repeats: int,
            workers: list[int]) -> dict[str, Any]:
    from fp_rank import load_encoder
    from fp_rank.images.decode import to_rgb

    enc = load_encoder(str(folder), device=device, dtype=dtype)
    tensors = [enc.preprocess([to_rgb(p) for p in paths[i : i + batch]]) for i in range(0, len(paths), batch)]
    for x in tensors[:2]:  # warm-up: kernels, allocator, cuDNN/cuBLAS heuristics
        enc.embed_tensor(x)
    _sync(device)

    def bare() -> None:
        for x in tensors:
            enc.embed_tensor(x)
        _sync(device)

    def pipeline(w: int) -> None:
        enc.encode(paths, batch_size=batch, progress=False, num_workers=w)
        _sync(device)

    variants = {"bare_forward": bare, **{f"pipeline_W{w}": (lambda w=w: pipeline(w)) for w in workers}}
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(repeats):  # round-robin, so noise hits every variant alike
        for name, fn in variants.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    out: dict[str, Any] = {}
    for name, values in times.items():
        median = sorted(values)[len(values) // 2]
        out[name] = {"median_s": median, "times_s": values, "images_per_s": len(paths) / median}
    bare_s = out["bare_forward"]["median_s"]
    out["vs_bare"] = {f"W{w}": bare_s / out[f"pipeline_W{w}"]["median_s"] for w in workers}
    return out


def ranking_on_device(device: str, quick: bool) -> dict[str, Any]:
    """rank_metrics_from_embeddings given GPU-resident embeddings (ranked on the CPU) vs one GPU pass over the similarities."""
    import numpy as np
    import torch

    from fp_rank.ranking.metrics import rank_metrics_from_embeddings

    q, n, d, r = (200, 5000, 64, 10) if quick else (2000, 50000, 768, 10)
    gen = torch.Generator(device="cpu").manual_seed(0)
    qe = torch.nn.functional.normalize(torch.randn(q, d, generator=gen), dim=1).to(device)
    ge = torch.nn.functional.normalize(torch.randn(n, d, generator=gen), dim=1).to(device)
    g_ids = np.repeat(np.arange(n // r), r)
    q_ids = np.random.default_rng(0).integers(0, n // r, q)

    def one_pass() -> None:
        (qe @ ge.T).max(dim=1)
        _sync(device)

    def ours() -> None:
        rank_metrics_from_embeddings(qe, ge, q_ids, g_ids, dtype=np.float32)
        _sync(device)

    one_pass()
    times: dict[str, list[float]] = {"one_pass": [], "rank_metrics_from_embeddings": []}
    for _ in range(3):
        for name, fn in (("one_pass", one_pass), ("rank_metrics_from_embeddings", ours)):
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    med = {k: sorted(v)[1] for k, v in times.items()}
    return {"queries": q, "gallery": n, "dim": d, "relevant": r, "times_s": times, "median_s": med,
            "ratio": med["rank_metrics_from_embeddings"] / med["one_pass"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None, help="JSON result file (default: print only)")
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu (a dry run with tiny models)")
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2, 8, 16], help="num_workers values (W)")
    parser.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16", "float16"])
    parser.add_argument("--budget-s", type=float, default=480, help="start no new measurement after this many seconds")
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()
    import os

    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("gpu_encode: no CUDA GPU available; nothing measured (run it on a machine with a GPU).")
        return 0
    began = time.perf_counter()
    on_gpu = args.device.startswith("cuda")
    archs = ["dinov2-base", "clip-vit-b32"] if on_gpu else ["tiny-dinov2", "tiny-clip"]
    dtypes = args.dtypes if on_gpu else ["float32"]
    workers = sorted({w for w in args.workers if w <= (os.cpu_count() or 1)}) if on_gpu else [0, 1]
    n_images = args.images if on_gpu else min(args.images, 16)
    batch = args.batch_size if on_gpu else 8
    work = Path(args.workdir or tempfile.mkdtemp(prefix="fp_rank_gpu_"))
    paths = write_photos(work / "images", [SIZES[i % len(SIZES)] for i in range(n_images)])
    result: dict[str, Any] = {"machine": machine(), "device": args.device, "dtypes": dtypes, "workers": workers,
                              "images": n_images, "batch_size": batch, "image_sizes": SIZES, "models": {},
                              "skipped_for_budget": []}

    def write() -> None:
        result["seconds"] = time.perf_counter() - began
        if args.out:
            write_result(args.out, result)

    try:
        result["ranking"] = ranking_on_device(args.device, quick=not on_gpu)
        print(f"gpu_encode: ranking {result['ranking']['ratio']:.1f}x one pass", flush=True)
    except Exception as exc:  # keep the encoding figures even if this part fails
        result["ranking"] = {"error": f"{type(exc).__name__}: {exc}"}
    write()
    for arch in archs:
        folder = models.build(arch, work / arch)
        for dtype in dtypes:
            key = f"{arch}_{dtype}"
            if time.perf_counter() - began > args.budget_s:
                result["skipped_for_budget"].append(key)
                continue
            print(f"gpu_encode: {arch} ({dtype}) ...", flush=True)
            r = measure(folder, paths, batch, args.device, dtype, args.repeats, workers)
            result["models"][key] = r
            write()  # after every measurement: a run cut short still returns its figures
            print(f"  bare {r['bare_forward']['images_per_s']:.1f} img/s; pipeline vs bare: "
                  + ", ".join(f"{k} {100 * v:.0f}%" for k, v in r["vs_bare"].items()), flush=True)
    write()
    return 0


if __name__ == "__main__":
    sys.exit(main())
