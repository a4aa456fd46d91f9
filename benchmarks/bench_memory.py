"""Benchmark 6: peak memory while scoring 2k and 20k generated images (bounded by the batch, not the count).

Each size runs in a fresh process: the demo gallery is loaded, the file list built, then the
peak extra resident memory of one ``evaluate`` call is measured (kernel high-water mark, with
glibc returning freed blocks to the kernel). What may grow with the image count is only what
the report keeps per image: the embedding (256 floats), the query row and the leakage flag;
decoded images never accumulate.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import PeakMemory, exact_rss_mode, machine, parse_args, photo_like, rss_bytes, write_result  # noqa: E402


def make_images(folder: Path, n: int, size: int) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = folder / f"g{i:05d}.png"
        if not path.exists():
            photo_like(size, size, seed=i).save(path)
        paths.append(str(path))
    return paths


def child(gallery: str, paths_file: str, n: int, batch: int, out: str) -> None:
    """Runs in a fresh process: one evaluate() over the first n images, peak memory measured."""
    exact_rss_mode()
    from fp_rank import evaluate, load_gallery
    from fp_rank.encoding.registry import DEMO_ENCODER

    gal = load_gallery(gallery)
    identities = gal.identities
    paths = json.loads(Path(paths_file).read_text())[:n]
    labels = [identities[i % len(identities)] for i in range(n)]
    rss_before = rss_bytes()
    start = time.perf_counter()
    with PeakMemory() as mem:
        report = evaluate(paths, labels, gallery=gal, encoder=DEMO_ENCODER, cache=False, progress=False,
                          batch_size=batch)
    seconds = time.perf_counter() - start
    result = {
        "images": n, "batch_size": batch, "seconds": seconds, "peak_extra_bytes": mem.peak_bytes,
        "rss_before_bytes": rss_before, "queries": len(report.queries),
        "embedding_bytes_per_image": 4 * 256,
    }
    Path(out).write_text(json.dumps(result))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(*sys.argv[2:4], int(sys.argv[4]), int(sys.argv[5]), sys.argv[6])
        return
    args = parse_args(__doc__.splitlines()[0])
    work = Path(args.workdir or tempfile.mkdtemp(prefix="fp_rank_bench_mem_"))
    sizes = [200, 2000] if args.quick else [2000, 20000]
    image_px = 64
    batch = 32
    from fp_rank.demo import gallery as demo_source
    from fp_rank.encoding.registry import DEMO_ENCODER

    gallery = work / "gallery"
    if not (gallery / "README.md").exists():
        demo_source.build(gallery, seed=0)
    start = time.perf_counter()
    paths = make_images(work / "generated", max(sizes), image_px)
    make_s = time.perf_counter() - start
    paths_file = work / "paths.json"
    paths_file.write_text(json.dumps(paths))
    runs = []
    for n in sizes:
        print(f"memory: {n} images ...", flush=True)
        out = work / f"mem_{n}.json"
        subprocess.run([sys.executable, __file__, "--child", str(gallery), str(paths_file), str(n), str(batch), str(out)],
                       check=True)
        runs.append(json.loads(out.read_text()))
    small, large = runs[0], runs[-1]
    growth = (large["peak_extra_bytes"] - small["peak_extra_bytes"]) / (large["images"] - small["images"])
    result: dict[str, Any] = {
        "machine": machine(), "image_px": image_px, "encoder": DEMO_ENCODER, "runs": runs,
        "extra_bytes_per_additional_image": growth,
        "decoded_image_bytes": image_px * image_px * 3,
        "seconds_to_write_images": make_s,
    }
    write_result(args.out, result)


if __name__ == "__main__":
    main()
