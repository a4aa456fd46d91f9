"""Determinism: the same inputs give identical numbers, and an image's embedding does not depend
on the batch size or on the other images of its batch.

Stated tolerance: ``BATCH_ATOL = 1e-5`` absolute per coordinate of the unit-norm embeddings
(batched matrix products may sum in a different order; observed differences are ~1e-7).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import fp_rank
from tests.robustness import zoo

BATCH_ATOL = 1e-5


@pytest.fixture(scope="module")
def encoders(tiny_dinov2_dir: Path) -> list[fp_rank.Encoder]:
    return [fp_rank.load_encoder("fp-rank-demo"), fp_rank.load_encoder(str(tiny_dinov2_dir))]


@pytest.fixture(scope="module")
def finch_gallery(demo_gallery_dir: Path) -> fp_rank.Gallery:
    return fp_rank.load_gallery(str(demo_gallery_dir), "finch", progress=False)


def _subset(demo_generated: list[dict]) -> list[dict]:
    return [r for r in demo_generated if r["identity"].startswith("finch")][::4]


def _numbers(report: fp_rank.Report) -> tuple:
    results = [r.to_dict() for r in report.results]
    queries = [{k: v for k, v in q.items()} for q in report.queries]
    return results, queries, report.ceilings


def test_same_inputs_give_identical_numbers(
    finch_gallery: fp_rank.Gallery, demo_generated: list[dict], tiny_dinov2_dir: Path, tmp_path: Path
) -> None:
    records = _subset(demo_generated)
    args = ([r["image"] for r in records], [r["identity"] for r in records])
    kwargs = dict(
        gallery=finch_gallery, encoder=["fp-rank-demo", str(tiny_dinov2_dir)], methods=[r["method"] for r in records],
        progress=False, top_k=3, cache=tmp_path / "cache",
    )
    first = fp_rank.evaluate(*args, **{**kwargs, "cache": False})
    second = fp_rank.evaluate(*args, **{**kwargs, "cache": False})
    assert _numbers(first) == _numbers(second)
    filled = fp_rank.evaluate(*args, **kwargs)  # computes and stores the gallery embeddings
    reused = fp_rank.evaluate(*args, **kwargs)  # reads them back
    assert reused.metadata["cache"]["gallery_images_encoded"] == 0
    assert _numbers(filled) == _numbers(first)
    assert _numbers(reused) == _numbers(first)


def _mixed_images(demo_generated: list[dict]) -> list:
    images: list = [r["image"] for r in demo_generated[::23][:18]]
    images += [zoo.textured(i, (40 + 9 * i, 70 - 5 * i)) for i in range(6)]  # other sizes and aspect ratios
    return images


def test_embeddings_do_not_depend_on_batch_size(encoders: list[fp_rank.Encoder], demo_generated: list[dict]) -> None:
    images = _mixed_images(demo_generated)
    for enc in encoders:
        one = enc.encode(images, batch_size=1, progress=False).embeddings
        for batch_size in (7, 32):
            many = enc.encode(images, batch_size=batch_size, progress=False).embeddings
            assert one.shape == many.shape == (len(images), one.shape[1])
            np.testing.assert_allclose(many, one, atol=BATCH_ATOL, rtol=0, err_msg=f"{enc.name} {batch_size}")


def test_embedding_does_not_depend_on_the_rest_of_the_batch(
    encoders: list[fp_rank.Encoder], demo_generated: list[dict]
) -> None:
    images = _mixed_images(demo_generated)
    target = images[3]
    for enc in encoders:
        alone = enc.encode([target], progress=False).embeddings[0]
        with_a = enc.encode([images[0], target, *images[10:20]], batch_size=32, progress=False).embeddings[1]
        with_b = enc.encode([*images[-6:], target], batch_size=32, progress=False).embeddings[-1]
        np.testing.assert_allclose(with_a, alone, atol=BATCH_ATOL, rtol=0, err_msg=enc.name)
        np.testing.assert_allclose(with_b, alone, atol=BATCH_ATOL, rtol=0, err_msg=enc.name)


def test_prefetching_does_not_change_embeddings(encoders: list[fp_rank.Encoder], demo_generated: list[dict]) -> None:
    images = _mixed_images(demo_generated)
    for enc in encoders:
        eager = enc.encode(images, batch_size=8, progress=False, prefetch=0).embeddings
        ahead = enc.encode(images, batch_size=8, progress=False, prefetch=2).embeddings
        np.testing.assert_array_equal(ahead, eager)
