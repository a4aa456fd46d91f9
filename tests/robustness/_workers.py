"""Code run in child processes by the cache-integrity tests (importable, so ``spawn`` can use it)."""

from __future__ import annotations

import os
import sys
import time

import numpy as np

from fp_rank.caching.store import EmbeddingCache

ROWS, DIM = 512, 256


def key_of(i: int) -> str:
    return f"{i:064x}"


def value_of(i: int) -> np.ndarray:
    """The one correct matrix for key ``i``: every entry equals ``i`` (so a mix-up is visible)."""
    return np.full((ROWS, DIM), float(i), dtype=np.float32)


def write_forever(directory: str) -> None:
    """Write entries 0, 1, 2, ... in a loop until killed, reporting each finished write."""
    cache = EmbeddingCache(directory)
    i = 0
    while True:
        cache.put(key_of(i % 50), value_of(i % 50))
        print(f"wrote {i}", flush=True)
        i += 1


def write_then_stall_before_rename(directory: str) -> None:
    """Write one entry's temporary file completely, then hang just before moving it into place."""
    real_replace = os.replace

    def stalled(src: str, dst: str) -> None:
        print("READY", flush=True)
        time.sleep(600)
        real_replace(src, dst)

    os.replace = stalled  # type: ignore[assignment]
    EmbeddingCache(directory).put(key_of(7), value_of(7))


def fill_same_key(directory: str, rounds: int) -> None:
    """Write the same key over and over (a second process does the same at the same time)."""
    cache = EmbeddingCache(directory)
    for _ in range(rounds):
        cache.put(key_of(1), value_of(1))


def read_same_key(directory: str, rounds: int, queue: object) -> None:
    """Read the contested key repeatedly; report any read that is neither a miss nor exact."""
    cache = EmbeddingCache(directory)
    wrong = 0
    hits = 0
    expected = value_of(1)
    for _ in range(rounds):
        got = cache.get(key_of(1), ROWS)
        if got is not None:
            hits += 1
            if not np.array_equal(got, expected):
                wrong += 1
    queue.put((hits, wrong))  # type: ignore[attr-defined]


def evaluate_demo(gallery: str, cache_dir: str, queue: object) -> None:
    """One full evaluation of a few images against ``gallery`` with the demo encoder."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["HF_DATASETS_OFFLINE"] = "1"
    import fp_rank
    from tests.gallery_fixtures import png_bytes

    report = fp_rank.evaluate(
        [png_bytes(700 + i, size=32) for i in range(6)], ["id0", "id1", "id2"] * 2, gallery=gallery,
        encoder="fp-rank-demo", cache=cache_dir, progress=False,
    )
    queue.put([q["ap"] for q in report.queries])  # type: ignore[attr-defined]


if __name__ == "__main__":
    {"forever": write_forever, "stall": write_then_stall_before_rename}[sys.argv[1]](sys.argv[2])
