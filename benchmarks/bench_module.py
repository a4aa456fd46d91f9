"""Benchmark 5: the Hugging Face ``evaluate`` module path vs the direct API, on the same inputs.

150 generated images (one method: 15 identities x 10 prompts, 256 px PNG files) against the demo
gallery, with its embeddings already cached (so both paths encode the same 150 images). Module
inputs: file paths (the fast route: only strings enter Arrow), PIL images opened from those
files (``datasets.Image(decode=False)`` keeps their paths), and in-memory PIL images (encoded
into Arrow as PNG by ``datasets``, then decoded by fp-rank). Two encoders: CLIP ViT-B/32
(random weights) and the weight-free demo encoder, the worst case for any fixed overhead.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import models  # noqa: E402
from _common import interleaved, machine, parse_args, write_result  # noqa: E402

from fp_rank import evaluate  # noqa: E402
from fp_rank.encoding.registry import DEMO_ENCODER  # noqa: E402
from fp_rank.metric import FinerPersonalizationRank  # noqa: E402


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    from PIL import Image

    from fp_rank.demo import gallery as demo_source
    from fp_rank.demo.synthetic import generated_records

    work = Path(args.workdir or tempfile.mkdtemp(prefix="fp_rank_bench_module_"))
    gallery = work / "gallery"
    if not (gallery / "README.md").exists():
        demo_source.build(gallery, seed=0)
    records = generated_records(0, methods=("faithful",))
    if args.quick:
        records = records[:30]
    paths, labels = [], []
    (work / "gen").mkdir(exist_ok=True)
    for i, rec in enumerate(records):
        path = work / "gen" / f"{i:04d}.png"
        rec["image"].resize((256, 256)).save(path)
        paths.append(str(path))
        labels.append(rec["identity"])
    arch = "tiny-clip" if args.quick else "clip-vit-b32"
    encoders = {arch: str(models.build(arch, work / arch)), DEMO_ENCODER: DEMO_ENCODER}
    metric = FinerPersonalizationRank()
    result: dict[str, Any] = {"machine": machine(), "images": len(paths), "image_px": 256, "encoders": {}}
    for label, enc in encoders.items():
        kw: dict[str, Any] = {"gallery": str(gallery), "encoder": enc, "cache": str(work / "cache"), "progress": False}
        evaluate(paths, labels, **kw)  # warm the gallery cache (and every lazy import)
        in_memory = [Image.open(p).copy() for p in paths]  # no filename: datasets encodes them into Arrow
        print(f"module: {label} ...", flush=True)
        runs = interleaved(
            {
                "direct_api_paths": lambda: evaluate(paths, labels, **kw),
                "module_paths": lambda: metric.compute(predictions=paths, references=labels, **kw),
                "module_pil_from_files": lambda: metric.compute(
                    predictions=[Image.open(p) for p in paths], references=labels, **kw),
                "module_pil_in_memory": lambda: metric.compute(predictions=in_memory, references=labels, **kw),
            },
            repeats=3,
        )
        base = runs["direct_api_paths"]["median_s"]
        for entry in runs.values():
            entry["ratio_to_direct"] = entry["median_s"] / base
        result["encoders"][label] = runs
    write_result(args.out, result)


if __name__ == "__main__":
    main()
