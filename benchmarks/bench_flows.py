"""Benchmarks 3 and 4: the embedding cache, and a paper-sized run against the reference code's flow.

3. Cache: a second method scored against the same gallery (warm cache) encodes zero gallery
   images; reported as the wall-time ratio of the second ``evaluate`` call to the first.
4. Paper-sized run: 7 methods x 15 identities x 10 prompts (1050 generated images) against a
   150-image gallery (10 per identity) with 150 reference images, two encoders, the pairwise
   baseline and the real-image ceiling. fp-rank's flow is one ``evaluate`` call. The reference
   code's flow is re-implemented faithfully: for every method and group the model is reloaded,
   the group's gallery encoded and the method's queries encoded; the pairwise baseline encodes
   the queries again with the identity's references; the real-image baseline (reference images
   as queries) reloads and re-encodes per group too. Forward passes are counted by wrapping the
   model, so counts are exact. The limit is "each distinct image encoded once per encoder".
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import models  # noqa: E402
from _common import machine, parse_args, timed, write_result  # noqa: E402

from fp_rank import evaluate, load_encoder, load_gallery  # noqa: E402
from fp_rank.encoding.encoders import Encoder  # noqa: E402
from fp_rank.ranking.metrics import average_precision  # noqa: E402

METHODS = 7
PROMPTS = 10


class ForwardCounter:
    """Counts images through every encoder's forward pass and every model load (process-wide)."""

    def __init__(self) -> None:
        self.images = 0
        self.loads = 0
        self._embed = Encoder.embed_tensor

    def __enter__(self) -> ForwardCounter:
        counter = self
        original_embed = self._embed

        def embed_tensor(enc: Encoder, pixel_values: Any) -> Any:
            counter.images += int(pixel_values.shape[0])
            return original_embed(enc, pixel_values)

        Encoder.embed_tensor = embed_tensor  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        Encoder.embed_tensor = self._embed  # type: ignore[method-assign]


def build_world(root: Path, image_size: int, n_methods: int = METHODS) -> tuple[Path, list[dict[str, Any]]]:
    """A gallery of 15 identities (10 gallery + 10 reference images each) and 7 methods' images on disk.

    The synthetic demo world, upscaled to ``image_size`` pixels: its holdout images join the
    reference split (10 per identity, like the CUB and Cars galleries).
    """
    from fp_rank.demo import synthetic as demo
    from fp_rank.demo.gallery import build_from_records

    records = []
    for rec in demo.gallery_records(seed=0):
        split = "reference" if rec["split"] == "holdout" else rec["split"]
        records.append({**rec, "split": split, "image": rec["image"].resize((image_size, image_size))})
    gallery = build_from_records(records, demo.BENCHMARK_INFO, root / "gallery", seed=0)
    generated = []
    gen_dir = root / "generated"
    gen_dir.mkdir(parents=True, exist_ok=True)
    kinds = demo.METHODS
    for m in range(n_methods):
        for rec in demo.generated_records(seed=100 + m, methods=(kinds[m % len(kinds)],)):
            path = gen_dir / f"m{m}_{len(generated):05d}.png"
            rec["image"].resize((image_size, image_size)).save(path)
            generated.append({"file": str(path), "identity": rec["identity"], "method": f"method-{m}",
                              "prompt": rec["prompt"]})
    return gallery, generated


def fp_rank_flow(gallery: Path, generated: list[dict[str, Any]], encoders: list[str], cache_dir: Path) -> Any:
    return evaluate(
        [g["file"] for g in generated], [g["identity"] for g in generated],
        methods=[g["method"] for g in generated], prompts=[g["prompt"] for g in generated],
        gallery=str(gallery), encoder=encoders, cache=cache_dir, progress=False, batch_size=32,
    )


def reference_flow(gallery_dir: Path, generated: list[dict[str, Any]], encoders: list[str]) -> dict[str, Any]:
    """The reference code's loop: reload the model and re-encode the gallery for every method and group."""
    gal = load_gallery(str(gallery_dir))
    g_split, r_split = gal.gallery, gal.reference
    g_images = list(g_split.images)
    r_images = list(r_split.images)
    methods = sorted({g["method"] for g in generated})
    groups = sorted(set(g_split.groups.tolist()))
    group_of = gal.identity_to_group
    out: dict[str, Any] = {}
    for name in encoders:
        maps = {}
        for method in methods:
            for group in groups:
                enc = load_encoder(name)  # reloaded for every method and group
                gi = np.flatnonzero(g_split.groups == group)
                g_emb = enc.encode([g_images[i] for i in gi], batch_size=32, progress=False).embeddings
                rows = [g for g in generated if g["method"] == method and group_of[g["identity"]] == group]
                q_emb = enc.encode([g["file"] for g in rows], batch_size=32, progress=False).embeddings
                sims = q_emb.astype(np.float64) @ g_emb.astype(np.float64).T
                aps = [average_precision(sims[i], g_split.identities[gi] == rows[i]["identity"]) for i in range(len(rows))]
                # pairwise baseline: the queries encoded again, with the references of the group
                ri = np.flatnonzero(r_split.groups == group)
                q_again = enc.encode([g["file"] for g in rows], batch_size=32, progress=False).embeddings
                r_emb = enc.encode([r_images[i] for i in ri], batch_size=32, progress=False).embeddings
                pair = [float((q_again[i] @ r_emb[r_split.identities[ri] == rows[i]["identity"]].T).mean())
                        for i in range(len(rows))]
                maps[(method, group)] = (float(np.mean(aps)), float(np.mean(pair)))
        for group in groups:  # real-image baseline: the references as queries, per group
            enc = load_encoder(name)
            gi = np.flatnonzero(g_split.groups == group)
            ri = np.flatnonzero(r_split.groups == group)
            g_emb = enc.encode([g_images[i] for i in gi], batch_size=32, progress=False).embeddings
            r_emb = enc.encode([r_images[i] for i in ri], batch_size=32, progress=False).embeddings
            sims = r_emb.astype(np.float64) @ g_emb.astype(np.float64).T
            maps[("real", group)] = (float(np.mean([
                average_precision(sims[i], g_split.identities[gi] == r_split.identities[ri][i]) for i in range(len(ri))
            ])), float("nan"))
        out[name] = maps
    return out


def encode_once(gallery_dir: Path, generated: list[dict[str, Any]], encoders: list[str]) -> None:
    """The limit: every distinct image through each encoder exactly once (no ranking, no report)."""
    gal = load_gallery(str(gallery_dir))
    for name in encoders:
        enc = load_encoder(name)
        enc.encode(gal.gallery.images, batch_size=32, progress=False)
        enc.encode(gal.reference.images, batch_size=32, progress=False)
        enc.encode([g["file"] for g in generated], batch_size=32, progress=False)


def cache_benchmark(gallery: Path, generated: list[dict[str, Any]], encoder: str, cache_dir: Path) -> dict[str, Any]:
    """Two methods scored one after the other against the same gallery (cold, then warm cache)."""
    shutil.rmtree(cache_dir, ignore_errors=True)
    first = [g for g in generated if g["method"] == "method-0"]
    second = [g for g in generated if g["method"] == "method-1"]
    runs = []
    for rows in (first, second):
        with ForwardCounter() as count:
            t, report = timed(lambda: evaluate(
                [g["file"] for g in rows], [g["identity"] for g in rows], methods=[g["method"] for g in rows],
                gallery=str(gallery), encoder=encoder, cache=cache_dir, progress=False, batch_size=32))
        runs.append({"seconds": t, "images_through_forward": count.images,
                     "gallery_images_encoded": report.metadata["cache"]["gallery_images_encoded"],
                     "gallery_images_from_cache": report.metadata["cache"]["gallery_images_from_cache"],
                     "queries": len(rows)})
    return {"encoder": encoder, "first_method": runs[0], "second_method": runs[1],
            "time_ratio_second_to_first": runs[1]["seconds"] / runs[0]["seconds"]}


def main() -> None:
    def extra(parser: Any) -> None:
        parser.add_argument("--paper-arch", choices=["tiny", "small", "base"], default="tiny",
                            help="backbones of the paper-sized run: tiny (2-layer DINOv2 + CLIP, default: fits "
                            "the time budget on 2 CPU cores), small (DINOv2-S/14 + CLIP-B/32), base (DINOv2-B/14 + "
                            "CLIP-B/32, the paper's)")

    args = parse_args(__doc__.splitlines()[0], extra)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="fp_rank_bench_flows_"))
    arch = {"tiny": ["tiny-dinov2", "tiny-clip"], "small": ["dinov2-small", "clip-vit-b32"],
            "base": ["dinov2-base", "clip-vit-b32"]}[args.paper_arch]
    cache_arch = "tiny-clip" if args.quick else "clip-vit-b32"
    image_size = 256
    start = time.perf_counter()
    n_methods = 2 if args.quick else METHODS
    gallery, generated = build_world(work / "world", image_size, n_methods)
    folders = [str(models.build(a, work / a)) for a in arch]
    result: dict[str, Any] = {"machine": machine(), "architectures": arch, "image_size": image_size,
                              "generated_images": len(generated), "gallery_images": 150, "reference_images": 150}
    print("flows: cache ...", flush=True)
    cache_folder = str(models.build(cache_arch, work / cache_arch))
    result["cache"] = cache_benchmark(gallery, generated, cache_folder, work / "cache_bench")
    result["cache"]["architecture"] = cache_arch
    print("flows: limit (each distinct image once) ...", flush=True)
    with ForwardCounter() as limit_count:
        limit_s, _ = timed(lambda: encode_once(gallery, generated, folders))
    print("flows: fp-rank ...", flush=True)
    shutil.rmtree(work / "cache_paper", ignore_errors=True)
    with ForwardCounter() as ours_count:
        ours_s, report = timed(lambda: fp_rank_flow(gallery, generated, folders, work / "cache_paper"))
    print("flows: reference code's flow ...", flush=True)
    with ForwardCounter() as ref_count:
        ref_s, ref_maps = timed(lambda: reference_flow(gallery, generated, folders))
    # the two flows compute the same numbers
    diffs = [abs(value - ref_maps[r.encoder][(r.method, group)][0])
             for r in report.results for group, value in r.map_per_group.items()]
    limit_images = 2 * (150 + 150 + len(generated))
    result["paper"] = {
        "limit": {"seconds": limit_s, "images_through_forward": limit_count.images, "expected_images": limit_images},
        "fp_rank": {"seconds": ours_s, "images_through_forward": ours_count.images,
                    "model_loads": len(folders)},
        "reference_flow": {"seconds": ref_s, "images_through_forward": ref_count.images,
                           "model_loads": len(folders) * (n_methods * 3 + 3)},
        "forward_ratio_reference_to_fp_rank": ref_count.images / ours_count.images,
        "forward_ratio_fp_rank_to_limit": ours_count.images / limit_images,
        "time_ratio_reference_to_fp_rank": ref_s / ours_s,
        "time_ratio_fp_rank_to_limit": ours_s / limit_s,
        "max_abs_group_map_difference_between_flows": float(np.nanmax(diffs)) if diffs else None,
    }
    result["seconds"] = time.perf_counter() - start
    write_result(args.out, result)


if __name__ == "__main__":
    main()
