"""The fast paths give the same answers: preprocessing, prefetching, ranking, deduplication, caching.

No timing is asserted here (benchmarks/run.py measures speed); these tests pin what the speed-ups
must not change.
"""

from __future__ import annotations

import threading
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from fp_rank import evaluate, load_encoder, rank_metrics
from fp_rank.caching.store import cache_key
from fp_rank.encoding.fast_preprocess import fast_preprocessor, unsupported_reason
from fp_rank.images.prefetch import Prefetcher
from fp_rank.errors import ImageDecodeError
from fp_rank.ranking.metrics import rank_metrics_from_embeddings

SIZES = [(375, 500), (500, 333), (1024, 768), (224, 224), (64, 64), (30, 200), (257, 256)]


def _photo_like(height: int, width: int, seed: int) -> Image.Image:
    """Smooth shapes and texture (what photos look like to a resampling filter), plus sensor noise."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (max(2, height // 16), max(2, width // 16), 3), dtype=np.uint8)
    img = np.asarray(Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC), dtype=np.int16)
    img = img + rng.integers(-12, 13, img.shape)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))


@pytest.fixture(scope="module")
def photos(demo_generated: list[dict]) -> list[Image.Image]:
    """Images of several sizes and aspect ratios, down- and upsampled by the processors."""
    out = [_photo_like(h, w, i) for i, (h, w) in enumerate(SIZES)]
    bird = demo_generated[0]["image"]
    out += [bird.resize((640, 480), Image.Resampling.LANCZOS), bird, bird.resize((300, 700), Image.Resampling.LANCZOS)]
    return out


def _processor(folder: Path) -> Any:
    from transformers import AutoImageProcessor

    return AutoImageProcessor.from_pretrained(folder)


# ----------------------------------------------------------------------------- fast preprocessing


@pytest.mark.parametrize("model", ["tiny_dinov2_dir", "tiny_clip_dir", "tiny_siglip_dir"])
def test_fast_preprocessing_is_within_the_documented_tolerance(
    model: str, photos: list[Image.Image], request: pytest.FixtureRequest
) -> None:
    processor = _processor(request.getfixturevalue(model))
    config = processor.to_dict()
    fast = fast_preprocessor(config)
    assert fast is not None, unsupported_reason(config)
    bound = 2 / (255 * min(fast.std)) + 1e-6  # two 8-bit levels after normalisation
    for img in photos:
        slow = processor(images=[img], return_tensors="pt")["pixel_values"]
        ours = fast([img])
        assert ours.shape == slow.shape and ours.dtype == torch.float32
        assert float((ours - slow).abs().max()) <= bound, img.size


@pytest.mark.parametrize("model", ["tiny_dinov2_dir", "tiny_clip_dir", "tiny_siglip_dir"])
def test_fast_preprocessing_gives_the_same_embeddings(
    model: str, photos: list[Image.Image], request: pytest.FixtureRequest
) -> None:
    folder = request.getfixturevalue(model)
    fast = load_encoder(str(folder), preprocessing="fast")
    slow = load_encoder(str(folder))
    a = fast.encode(photos, batch_size=4, progress=False).embeddings
    b = slow.encode(photos, batch_size=4, progress=False).embeddings
    cosine = (a * b).sum(axis=1)
    assert cosine.min() >= 0.9999
    # different tensors are different vectors: they never share a cache entry
    assert "fast_preprocess" in fast.preprocessing and "fast_preprocess" not in slow.preprocessing
    assert fast.preprocessing_id != slow.preprocessing_id
    assert cache_key(fast.identity(), "content") != cache_key(slow.identity(), "content")


@pytest.mark.parametrize("resample", [2, 3])
def test_resize_matches_pillow_within_two_levels(resample: int, photos: list[Image.Image]) -> None:
    mode = {2: "bilinear", 3: "bicubic"}[resample]
    for img in photos:
        for size in [(224, 224), (256, 341), (img.height * 2, img.width + 7)]:
            pil = np.asarray(img.resize((size[1], size[0]), resample), dtype=np.int16)
            x = torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1)[None]
            ours = F.interpolate(x, size=size, mode=mode, antialias=True)[0].permute(1, 2, 0).numpy().astype(np.int16)
            assert np.abs(ours - pil).max() <= 2


def test_rescale_and_normalise_are_bit_identical_to_numpy() -> None:
    fast = fast_preprocessor(
        {"image_processor_type": "CLIPImageProcessor", "do_resize": True, "size": {"shortest_edge": 8},
         "resample": 3, "do_center_crop": True, "crop_size": {"height": 8, "width": 8}, "do_rescale": True,
         "rescale_factor": 1 / 255, "do_normalize": True, "image_mean": [0.48145466, 0.4578275, 0.40821073],
         "image_std": [0.26862954, 0.26130258, 0.27577711]}
    )
    assert fast is not None
    pixels = np.arange(256 * 3, dtype=np.int64).reshape(1, 3, 16, 16) % 256
    ours = fast.normalise(torch.from_numpy(pixels.astype(np.uint8))).numpy()
    # transformers' NumPy path: float64 rescale, cast to float32, normalise in float32
    ref = (pixels.astype(np.float64) * (1 / 255)).astype(np.float32)
    mean = np.asarray(fast.mean, dtype=np.float32)[None, :, None, None]
    std = np.asarray(fast.std, dtype=np.float32)[None, :, None, None]
    assert np.array_equal(ours, (ref - mean) / std)


def test_crop_larger_than_the_image_pads_like_transformers(tiny_dinov2_dir: Path) -> None:
    from transformers import BitImageProcessor

    processor = BitImageProcessor(do_resize=False, crop_size={"height": 48, "width": 40}, do_center_crop=True)
    fast = fast_preprocessor(processor.to_dict())
    assert fast is not None
    img = _photo_like(31, 57, seed=3)
    assert torch.equal(fast([img]), processor(images=[img], return_tensors="pt")["pixel_values"])


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"resample": 1}, "resample"),
        ({"do_pad": True}, "padding"),
        ({"size": {"shortest_edge": 64, "longest_edge": 80}}, "size"),
        ({"do_center_crop": False}, "different sizes"),
        ({"image_processor_type": "DetrImageProcessor"}, "processor type"),
        ({"some_new_option": 1}, "unsupported processor options"),
    ],
)
def test_configurations_it_cannot_reproduce_keep_the_processor(
    change: dict, reason: str, tiny_dinov2_dir: Path
) -> None:
    config = {**_processor(tiny_dinov2_dir).to_dict(), **change}
    assert fast_preprocessor(config) is None
    assert reason in str(unsupported_reason(config))


# ----------------------------------------------------------------------------- prefetching


def test_prefetcher_keeps_order_and_stops_its_thread() -> None:
    with Prefetcher(iter(range(100)), depth=2) as items:
        assert list(items) == list(range(100))
    for depth in (0, 1, 3):
        with Prefetcher(iter(range(10)), depth=depth) as items:
            first = [next(items) for _ in range(3)]  # the consumer stops early
        assert first == [0, 1, 2]
    assert not [t for t in threading.enumerate() if t.name == "fp-rank-prefetch"]


def test_prefetcher_raises_the_producer_error_at_its_item() -> None:
    def source() -> Any:
        yield 1
        yield 2
        raise ImageDecodeError("x.png", "truncated")

    got = []
    with pytest.raises(ImageDecodeError, match="x.png"), Prefetcher(source(), depth=1) as items:
        for item in items:
            got.append(item)
    assert got == [1, 2]


def test_prefetch_changes_no_embedding_and_keeps_the_error_policy(tiny_dinov2_dir: Path, tmp_path: Path, photos: list) -> None:
    enc = load_encoder(str(tiny_dinov2_dir))
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"no image here")
    items = [*photos[:4], str(bad), *photos[4:]]
    plain = enc.encode(items, batch_size=3, progress=False, on_invalid="skip", prefetch=0)
    ahead = enc.encode(items, batch_size=3, progress=False, on_invalid="skip", prefetch=2)
    parallel = enc.encode(items, batch_size=3, progress=False, on_invalid="skip", prefetch=1, decode_workers=3)
    assert np.array_equal(plain.embeddings, ahead.embeddings)
    assert np.array_equal(plain.embeddings, parallel.embeddings)
    assert plain.kept.tolist() == ahead.kept.tolist() == parallel.kept.tolist() == [0, 1, 2, 3, *range(5, len(items))]
    assert ahead.skipped == plain.skipped == parallel.skipped and ahead.skipped[0]["index"] == "4"
    for workers in (1, 3):
        with pytest.raises(ImageDecodeError, match="bad.png"):
            enc.encode(items, batch_size=3, progress=False, on_invalid="error", prefetch=2, decode_workers=workers)
    assert not [t for t in threading.enumerate() if t.name.startswith(("fp-rank-prefetch", "fp-rank-decode"))]


# ----------------------------------------------------------------------------- ranking


def _textbook_ap(scores: np.ndarray, relevant: np.ndarray) -> float:
    """The per-query loop: argsort descending, cumulative precision at the relevant positions."""
    order = np.argsort(-scores, kind="stable")
    hits = relevant[order]
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float(precision[hits].sum() / hits.sum())


@pytest.mark.parametrize(("n_q", "n_g", "n_rel", "shift"), [(50, 3000, 10, 1.0), (40, 2000, 200, 3.0), (30, 500, 1, 0.5)])
def test_rank_metrics_equals_the_textbook_loop_without_ties(n_q: int, n_g: int, n_rel: int, shift: float) -> None:
    rng = np.random.default_rng(n_g)
    g_ids = np.repeat(np.arange(n_g // n_rel), n_rel)
    q_ids = rng.integers(0, n_g // n_rel, n_q)
    scores = rng.standard_normal((n_q, n_g)) + shift * (q_ids[:, None] == g_ids[None, :])
    res = rank_metrics(scores, q_ids, g_ids)
    loop = np.array([_textbook_ap(scores[i], g_ids == q_ids[i]) for i in range(n_q)])
    assert not res.tied.any()
    assert np.abs(res.ap - loop).max() <= 1e-9
    assert np.array_equal(res.top1, scores.argmax(axis=1))


def test_with_ties_the_loop_depends_on_gallery_order_and_rank_metrics_does_not() -> None:
    rng = np.random.default_rng(5)
    g_ids = np.repeat(np.arange(20), 5)
    q_ids = rng.integers(0, 20, 40)
    scores = np.round(rng.standard_normal((40, 100)), 1)  # coarse scores: many ties
    perm = rng.permutation(100)
    ours = rank_metrics(scores, q_ids, g_ids).ap
    ours_perm = rank_metrics(scores[:, perm], q_ids, g_ids[perm]).ap
    loop = np.array([_textbook_ap(scores[i], g_ids == q_ids[i]) for i in range(40)])
    loop_perm = np.array([_textbook_ap(scores[i, perm], g_ids[perm] == q_ids[i]) for i in range(40)])
    assert np.abs(ours - ours_perm).max() <= 1e-12
    assert np.abs(loop - loop_perm).max() > 1e-3


@pytest.mark.parametrize("chunk", [1, 7, 64, None])
def test_chunked_from_embeddings_equals_the_full_matrix(chunk: int | None) -> None:
    rng = np.random.default_rng(2)
    q_emb = rng.standard_normal((150, 16)).astype(np.float32)
    g_emb = rng.standard_normal((300, 16)).astype(np.float32)
    g_emb[5] = g_emb[6]  # identical gallery images: exact ties
    q_ids = rng.integers(0, 31, 150)
    g_ids = rng.integers(0, 30, 300)
    full = rank_metrics(q_emb.astype(np.float64) @ g_emb.astype(np.float64).T, q_ids, g_ids, on_missing="skip")
    part = rank_metrics_from_embeddings(q_emb, g_emb, q_ids, g_ids, on_missing="skip", chunk_size=chunk)
    for name in ("ap", "first_hit_rank", "inp", "chance_ap"):
        assert np.allclose(getattr(full, name), getattr(part, name), equal_nan=True, rtol=0, atol=1e-12)
    assert np.array_equal(full.top1, part.top1) and np.array_equal(full.tied, part.tied)
    sims = q_emb.astype(np.float64) @ g_emb.astype(np.float64).T
    assert np.allclose(part.extras["top1_score"], sims.max(axis=1), atol=1e-12)


def test_ranking_memory_is_bounded_by_the_chunk_not_the_queries() -> None:
    rng = np.random.default_rng(3)
    g_emb = rng.standard_normal((4000, 8))
    g_ids = np.repeat(np.arange(400), 10)

    def peak(n_q: int) -> int:
        q_emb = rng.standard_normal((n_q, 8))
        q_ids = rng.integers(0, 400, n_q)
        tracemalloc.start()
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        rank_metrics_from_embeddings(q_emb, g_emb, q_ids, g_ids, chunk_size=100)
        top = tracemalloc.get_traced_memory()[1] - base
        tracemalloc.stop()
        return top

    small, large = peak(400), peak(4000)
    chunk_bytes = 100 * 4000 * 8
    assert large < small + 4000 * 200  # per-query result arrays only (a few hundred bytes each)
    assert large < 4 * chunk_bytes  # a (4000 x 4000) float64 matrix would be 128 MB


# ----------------------------------------------------------------------------- evaluation flow


class _Counting:
    """A cacheable callable encoder that counts the images it is given."""

    def __init__(self) -> None:
        self.images = 0
        self.enc = load_encoder("fp-rank-demo")

    def __call__(self, images: list[Image.Image]) -> np.ndarray:
        self.images += len(images)
        return self.enc.embed_images(images).numpy()


def test_each_distinct_image_is_encoded_once_and_the_cache_serves_the_next_run(
    demo_gallery_dir: Path, demo_generated: list[dict], tmp_path: Path
) -> None:
    from fp_rank import load_gallery

    records = demo_generated[:60]
    images = [r["image"] for r in records] + [r["image"] for r in records[:20]]  # 20 exact copies
    labels = [r["identity"] for r in records] + [r["identity"] for r in records[:20]]
    counter = _Counting()
    enc = load_encoder(counter, revision="v1", name="counting")
    gallery_size = sum(len(split) for split in load_gallery(str(demo_gallery_dir)).splits.values())
    first = evaluate(images, labels, gallery=str(demo_gallery_dir), encoder=enc, cache=tmp_path, progress=False)
    assert counter.images == gallery_size + 60  # every distinct image once
    assert first.metadata["cache"]["generated_images_distinct"] == 60
    assert len(first.queries) == 80
    counter.images = 0
    second = evaluate(images, labels, gallery=str(demo_gallery_dir), encoder=enc, cache=tmp_path, progress=False)
    assert counter.images == 0  # a second run encodes nothing: gallery splits and generated chunks are cached
    assert second.metadata["cache"]["gallery_images_encoded"] == 0
    assert second.metadata["cache"]["generated_images_from_cache"] == 60
    assert [q["ap"] for q in second.queries] == [q["ap"] for q in first.queries]
    # copies get their original's scores
    assert [q["ap"] for q in first.queries[60:]] == [q["ap"] for q in first.queries[:20]]


def test_top_k_rows_do_not_change_the_scores(demo_gallery_dir: Path, demo_generated: list[dict]) -> None:
    records = demo_generated[::15]
    kw: dict[str, Any] = {"gallery": str(demo_gallery_dir), "encoder": "fp-rank-demo", "progress": False}
    images, labels = [r["image"] for r in records], [r["identity"] for r in records]
    plain = evaluate(images, labels, **kw)
    with_top = evaluate(images, labels, top_k=3, **kw)
    for a, b in zip(plain.queries, with_top.queries):
        assert a["ap"] == pytest.approx(b["ap"], abs=1e-12)
        assert a["top1_identity"] == b["top1_identity"]
        assert a["top1_score"] == pytest.approx(b["top1_score"], abs=1e-12)


def test_the_evaluate_module_takes_file_paths(demo_gallery_dir: Path, demo_generated: list[dict], tmp_path: Path) -> None:
    from fp_rank.metric import FinerPersonalizationRank

    records = demo_generated[::25]
    paths = []
    for i, r in enumerate(records):
        path = tmp_path / f"{i}.png"
        r["image"].save(path)
        paths.append(str(path))
    labels = [r["identity"] for r in records]
    kw: dict[str, Any] = {"gallery": str(demo_gallery_dir), "encoder": "fp-rank-demo", "progress": False}
    direct = evaluate(paths, labels, **kw)
    metric = FinerPersonalizationRank()
    by_path = metric.compute(predictions=paths, references=labels, **kw)
    by_image = metric.compute(predictions=[Image.open(p) for p in paths], references=labels, **kw)
    assert by_path["map"] == by_image["map"] == direct.results[0].map
    assert [q["file"] for q in by_path["report"]["queries"]] == paths
