"""Benchmark 2: the encoding pipeline (decode + preprocess + forward) vs the bare forward pass, on CPU.

Images are photo-like JPEGs of the sizes generated and gallery images come in (512x512 to
1024x1024, and 500x375 like CUB photos). The bare forward runs the same encoder's
``embed_tensor`` (forward, pooling, normalisation) on ready tensors of the same batch size; the
pipeline is ``Encoder.encode`` on the file paths (decoding and preprocessing of the next batch
overlap the forward pass of the current one). Variants show what each part contributes: no
prefetch thread, and transformers' own (PIL/NumPy) image processor instead of the torch one.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import models  # noqa: E402
from _common import interleaved, machine, parse_args, write_photos, write_result  # noqa: E402

from fp_rank import load_encoder  # noqa: E402
from fp_rank.images.decode import to_rgb  # noqa: E402

SIZES = [(512, 512), (768, 512), (1024, 1024), (375, 500)]


def bare_and_pipeline(folder: Path, paths: list[str], batch: int, dtype: str, repeats: int,
                      extras: bool, extra_repeats: int) -> dict[str, Any]:
    enc = load_encoder(str(folder), device="cpu", dtype=dtype, preprocessing="fast")
    tensors = [enc.preprocess([to_rgb(p) for p in paths[i : i + batch]]) for i in range(0, len(paths), batch)]
    enc.embed_tensor(tensors[0])  # warm-up (lazy initialisation, allocator)
    fns = {
        "bare_forward": lambda: [enc.embed_tensor(x) for x in tensors],
        "pipeline": lambda: enc.encode(paths, batch_size=batch, progress=False),
    }
    out = interleaved(fns, repeats)
    if extras:
        slow = load_encoder(str(folder), device="cpu", dtype=dtype, fast_preprocess=False)
        more = interleaved(
            {
                "pipeline_no_prefetch": lambda: enc.encode(paths, batch_size=batch, progress=False, prefetch=0),
                "pipeline_slow_processor": lambda: slow.encode(paths, batch_size=batch, progress=False),
            },
            extra_repeats,
        )
        out.update(more)
    n = len(paths)
    for entry in out.values():
        entry["images_per_s"] = n / entry["median_s"]
    bare = out["bare_forward"]["median_s"]
    for name, entry in out.items():
        entry["throughput_vs_bare"] = bare / entry["median_s"]
    return out


def preprocess_only(folder: Path, paths: list[str], batch: int) -> dict[str, Any]:
    """Decode + preprocess throughput (no model), torch path vs transformers' processor, one thread."""
    fast = load_encoder(str(folder), device="cpu", preprocessing="fast")
    slow = load_encoder(str(folder), device="cpu", fast_preprocess=False)

    def run(enc: Any) -> None:
        for i in range(0, len(paths), batch):
            enc.preprocess([to_rgb(p) for p in paths[i : i + batch]])

    def decode() -> None:
        for p in paths:
            to_rgb(p)

    out = interleaved({"decode_only": decode, "decode_fast_preprocess": lambda: run(fast),
                       "decode_processor": lambda: run(slow)}, 3)
    for entry in out.values():
        entry["images_per_s"] = len(paths) / entry["median_s"]
    return out


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    work = Path(args.workdir or tempfile.mkdtemp(prefix="fp_rank_bench_enc_"))
    n_images, batch = (8, 4) if args.quick else (32, 16)
    paths = write_photos(work / "images", [SIZES[i % len(SIZES)] for i in range(n_images)])
    main_arch = "tiny-dinov2" if args.quick else "dinov2-base"
    result: dict[str, Any] = {"machine": machine(), "images": n_images, "batch_size": batch,
                              "image_sizes": sorted(set(SIZES)), "architecture": main_arch}
    start = time.perf_counter()
    folder = models.build(main_arch, work / main_arch)
    print("encoding: preprocessing only ...", flush=True)
    result["preprocess_only"] = preprocess_only(folder, paths, batch)
    for dtype in ("float32", "bfloat16"):
        print(f"encoding: {main_arch} {dtype} ...", flush=True)
        result[f"{main_arch}_{dtype}"] = bare_and_pipeline(
            folder, paths, batch, dtype, repeats=3, extras=dtype == "float32", extra_repeats=2
        )
    clip_arch = "tiny-clip" if args.quick else "clip-vit-b32"
    print(f"encoding: {clip_arch} float32 ...", flush=True)
    clip = models.build(clip_arch, work / clip_arch)
    result[f"{clip_arch}_float32"] = bare_and_pipeline(clip, paths, batch, "float32", repeats=3, extras=False, extra_repeats=0)
    result["seconds"] = time.perf_counter() - start
    write_result(args.out, result)


if __name__ == "__main__":
    main()
