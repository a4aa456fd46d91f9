"""GPU check: the encoding pipeline vs the bare forward pass in fp16, DINOv2-base and -large.

Run it on a machine with a CUDA GPU::

    python benchmarks/gpu_encode.py --out benchmarks/results_gpu.json

It exits 0 with a message when no GPU is available (``--device cpu`` runs the same code on the
CPU with tiny models, to check the script itself). The models are the real architectures with
random weights (same FLOPs as the published checkpoints); images are photo-like JPEGs of
512 to 1024 px. The bare forward runs ``Encoder.embed_tensor`` on tensors already on the host
(copy to the GPU included, as in the pipeline); the pipeline is ``Encoder.encode`` on the files.
On a GPU the CPU decodes and preprocesses while the GPU computes, so the pipeline's throughput
is bounded by decoding: the result says how close to the bare forward it gets.
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


def measure(folder: Path, paths: list[str], batch: int, device: str, dtype: str, repeats: int) -> dict[str, Any]:
    from fp_rank import load_encoder
    from fp_rank.encoding.images import to_rgb

    enc = load_encoder(str(folder), device=device, dtype=dtype)
    tensors = [enc.preprocess([to_rgb(p) for p in paths[i : i + batch]]) for i in range(0, len(paths), batch)]
    for x in tensors[:2]:  # warm-up: kernels, allocator, cuDNN/cuBLAS heuristics
        enc.embed_tensor(x)
    _sync(device)

    def bare() -> None:
        for x in tensors:
            enc.embed_tensor(x)
        _sync(device)

    def pipeline() -> None:
        enc.encode(paths, batch_size=batch, progress=False)
        _sync(device)

    times: dict[str, list[float]] = {"bare_forward": [], "pipeline": []}
    for _ in range(repeats):
        for name, fn in (("bare_forward", bare), ("pipeline", pipeline)):
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    out: dict[str, Any] = {}
    for name, values in times.items():
        median = sorted(values)[len(values) // 2]
        out[name] = {"median_s": median, "times_s": values, "images_per_s": len(paths) / median}
    out["pipeline_throughput_vs_bare"] = out["bare_forward"]["median_s"] / out["pipeline"]["median_s"]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None, help="JSON result file (default: print only)")
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu (a dry run with tiny models)")
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()
    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("gpu_encode: no CUDA GPU available; nothing measured (run it on a machine with a GPU).")
        return 0
    on_gpu = args.device.startswith("cuda")
    archs = ["dinov2-base", "dinov2-large"] if on_gpu else ["tiny-dinov2"]
    dtype = "float16" if on_gpu else "float32"
    n_images = args.images if on_gpu else min(args.images, 16)
    batch = args.batch_size if on_gpu else 8
    work = Path(args.workdir or tempfile.mkdtemp(prefix="fp_rank_gpu_"))
    paths = write_photos(work / "images", [SIZES[i % len(SIZES)] for i in range(n_images)])
    result: dict[str, Any] = {"machine": machine(), "device": args.device, "dtype": dtype, "images": n_images,
                              "batch_size": batch, "image_sizes": SIZES, "models": {}}
    for arch in archs:
        folder = models.build(arch, work / arch)
        print(f"gpu_encode: {arch} ({dtype}) ...", flush=True)
        result["models"][arch] = measure(folder, paths, batch, args.device, dtype, args.repeats)
        r = result["models"][arch]
        print(
            f"  bare {r['bare_forward']['images_per_s']:.1f} img/s, pipeline {r['pipeline']['images_per_s']:.1f} img/s "
            f"({100 * r['pipeline_throughput_vs_bare']:.0f}% of bare)",
            flush=True,
        )
    if args.out:
        write_result(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
