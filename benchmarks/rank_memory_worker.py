"""One rank of the memory-per-rank benchmark (launched by ``bench_round2.py --only rank_memory``).

Encodes ``N`` tiny generated images with a near-free ``D``-dimensional callable encoder through
:func:`fp_rank.evaluation.embed.encode_sharded` (chunks of ``C`` images, no cache, each rank its
share of every chunk) and records, at the moment this rank hands its embeddings to the gather
(:func:`fp_rank.distributed.gather_encoded`): the embedding bytes it holds, and its resident
memory high-water mark above the level before encoding. Writes ``OUT/rank<r>.json``.
With ``padded`` as the fifth argument the final gather is the one of main before issue 14 (one
padded all-gather of whole shards, concatenated, then put in input order).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import _status_kib, exact_rss_mode, release_free_memory  # noqa: E402


def _padded_gather(ctx, emb, counts, order, dim, longest):  # noqa: ANN001, ANN202 - baseline of main before
    import torch
    import torch.distributed as dist

    padded = torch.zeros((longest, dim), dtype=torch.float32)
    padded[: emb.shape[0]] = torch.from_numpy(emb)
    gathered = [torch.empty_like(padded) for _ in range(ctx.world_size)]
    dist.all_gather(gathered, padded)
    return np.concatenate([g[:n].numpy() for g, n in zip(gathered, counts)])[order]


def main() -> None:
    n, dim, chunk, out = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
    exact_rss_mode()
    import torch

    from fp_rank import distributed
    from fp_rank.encoding import load_encoder
    from fp_rank.evaluation.embed import encode_sharded

    torch.set_num_threads(1)
    ctx, _ = distributed.setup()
    basis = np.random.default_rng(0).standard_normal((3, dim)).astype(np.float32)

    def embed(images: list[Image.Image]) -> np.ndarray:
        means = np.stack([np.asarray(im, dtype=np.float32).mean(axis=(0, 1)) for im in images])
        return means @ basis + 1e-3

    encoder = load_encoder(embed, name="rank-memory", revision="bench")
    images = [Image.new("RGB", (8, 8), (i % 251, (i // 251) % 251, 7)) for i in range(n)]
    seen: dict[str, int] = {}
    real_gather = distributed.gather_encoded

    def gather(kept, embeddings, skipped, error):  # noqa: ANN001, ANN202 - the primitive's signature
        seen["held_bytes"] = max(seen.get("held_bytes", 0), int(embeddings.nbytes))
        seen["hwm_before_gather_kib"] = _status_kib("VmHWM")
        return real_gather(kept, embeddings, skipped, error)

    distributed.gather_encoded = gather
    if len(sys.argv) > 5 and sys.argv[5] == "padded":
        distributed._gather_rows = _padded_gather
    release_free_memory()
    Path("/proc/self/clear_refs").write_text("5")
    base = _status_kib("VmRSS")
    parts = [encode_sharded(encoder, images[lo : lo + chunk], batch_size=64, progress=False)
             for lo in range(0, n, chunk)]
    kept = np.concatenate([lo + p.kept for lo, p in zip(range(0, n, chunk), parts)])
    after_kib = _status_kib("VmHWM")
    record = {
        "rank": ctx.rank, "world_size": ctx.world_size, "images": n, "dim": dim, "chunk": chunk,
        "total_bytes": n * dim * 4, "held_bytes_before_gather": seen.get("held_bytes", 0),
        "peak_extra_before_gather_bytes": (seen.get("hwm_before_gather_kib", after_kib) - base) * 1024,
        "peak_extra_with_gather_bytes": (after_kib - base) * 1024, "gathered_rows": int(len(kept)),
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / f"rank{ctx.rank}.json").write_text(json.dumps(record))


if __name__ == "__main__":
    main()
