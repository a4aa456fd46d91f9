"""Reliability round 2: inputs that used to give silently wrong numbers, each with its behaviour.

One test per class of the hostile-probe findings (see docs/bad_input.md).
"""

from __future__ import annotations

import time
import unicodedata
from pathlib import Path

import numpy as np
import pytest

import fp_rank
from fp_rank import (
    GalleryError,
    ImageDecodeError,
    InputError,
    average_precision,
    chance_average_precision,
    rank_metrics,
)
from fp_rank.encoding import load_encoder
from tests.gallery_fixtures import labelled_rows as _rows
from tests.gallery_fixtures import png_bytes, write_gallery


def _embed(images: list) -> np.ndarray:
    """A fixed, cheap encoder for these tests: the mean colour and its spread (L2-normalised)."""
    out = []
    for img in images:
        arr = np.asarray(img, dtype=np.float64) / 255.0
        out.append(np.r_[arr.mean(axis=(0, 1)), arr.std(axis=(0, 1)), 1.0])
    return np.asarray(out)


ENCODER = load_encoder(_embed, name="test-colour-stats", revision="1")


@pytest.fixture()
def lonely_gallery(tmp_path: Path) -> Path:
    """Group ``solo`` has one identity; group ``duo`` two."""
    gallery = _rows({"a": 3, "b": 3}, 0, "duo") + _rows({"s": 3}, 50, "solo")
    reference = _rows({"a": 1, "b": 1}, 100, "duo") + _rows({"s": 1}, 150, "solo")
    return write_gallery(tmp_path / "lonely", {"gallery": gallery, "reference": reference})


def test_single_identity_group_is_refused_by_default_and_skip_counts_it(lonely_gallery: Path) -> None:
    images = [png_bytes(200 + i) for i in range(4)]
    labels = ["a", "b", "s", "s"]
    with pytest.raises(GalleryError, match=r"group 'solo' .* single identity \('s'\)"):
        fp_rank.evaluate(images, labels, gallery=str(lonely_gallery), encoder=ENCODER, progress=False)
    report = fp_rank.evaluate(
        images, labels, gallery=str(lonely_gallery), encoder=ENCODER, progress=False, single_identity_groups="skip"
    )
    assert report.metadata["single_identity_groups"] == {"groups": ["solo"], "n_queries": 2}
    assert report.single.n_queries == 2 and set(report.map_per_group) == {"duo"}
    # the headline is the duo group's alone, not lifted by AP = 1 queries
    duo_only = fp_rank.evaluate(images[:2], labels[:2], gallery=str(lonely_gallery), encoder=ENCODER, progress=False)
    assert report.map == duo_only.map


def test_a_lone_image_is_never_iterated(demo_gallery_dir: Path) -> None:
    img = np.zeros((64, 64, 3), dtype=np.uint8)
    for lone in (img, img[:, :, 0], np.zeros((2, 2, 2, 2, 2))):
        with pytest.raises(InputError, match="never iterated"):
            fp_rank.evaluate(lone, "finch_gold_cheek", gallery=str(demo_gallery_dir), progress=False)
    with pytest.raises(InputError, match="generated must be a list"):
        from PIL import Image

        fp_rank.evaluate(Image.fromarray(img), "finch_gold_cheek", gallery=str(demo_gallery_dir), progress=False)
    # a 4-D array is a batch: one query per image
    batch = np.zeros((2, 64, 64, 3), dtype=np.uint8)
    report = fp_rank.evaluate(batch, "finch_gold_cheek", gallery=str(demo_gallery_dir), encoder="fp-rank-demo",
                              progress=False, leaks="off")
    assert report.single.n_queries == 2


def test_float_arrays_outside_unit_range_are_refused_by_index(demo_gallery_dir: Path) -> None:
    good = np.full((64, 64, 3), 0.5)
    bad = np.full((64, 64, 3), 128.0)
    with pytest.raises(ImageDecodeError, match=r"item #1.*span \[128, 128\].*\[0, 1\]"):
        fp_rank.evaluate([good, bad], "finch_gold_cheek", gallery=str(demo_gallery_dir), encoder="fp-rank-demo",
                         progress=False, leaks="off")
    # within the tolerance of computed values: accepted, equal to the clean image
    nudged = good.copy()
    nudged[0, 0, 0] = 1.0 + 1e-9
    from fp_rank.images.decode import to_rgb

    assert np.asarray(to_rgb(nudged))[0, 0, 0] == 255


def test_evaluate_module_gives_the_library_numbers_for_arrays(demo_gallery_dir: Path) -> None:
    import evaluate

    rng = np.random.default_rng(0)
    arrays = [
        rng.random((40, 40)),  # float grayscale (datasets would round it to 0/1)
        (rng.random((40, 40, 3)) * 65535).astype(np.uint16),  # 16-bit RGB (datasets would keep the low byte)
        rng.random((40, 40, 3)),  # float RGB (datasets would refuse it)
        rng.integers(0, 256, size=(40, 40, 1), dtype=np.uint8),  # (H, W, 1)
    ]
    labels = ["finch_gold_cheek", "jay_azure_wing", "tern_white_tail", "finch_white_tail"]
    module = evaluate.load(str(Path(fp_rank.__file__).parents[1] / "finer_personalization_rank.py"))
    out = module.compute(predictions=arrays, references=labels, gallery=str(demo_gallery_dir), encoder="fp-rank-demo")
    lib = fp_rank.evaluate(arrays, labels, gallery=str(demo_gallery_dir), encoder="fp-rank-demo", progress=False)
    assert out["map"] == lib.map
    assert [q["ap"] for q in out["report"]["queries"]] == [q["ap"] for q in lib.queries]
    with pytest.raises(ImageDecodeError, match=r"predictions\[0\]"):  # our error, before datasets sees it
        module.compute(predictions=[np.full((8, 8), 7.0)], references=labels[:1], gallery=str(demo_gallery_dir))


def test_average_precision_refuses_non_boolean_relevance() -> None:
    with pytest.raises(InputError, match="booleans"):
        average_precision([0.9, 0.8, 0.7], ["False", "True", "False"])
    with pytest.raises(InputError, match="booleans"):
        average_precision([0.9, 0.8], [2, 0])
    assert average_precision([0.9, 0.8, 0.7], [0, 1, 0]) == 0.5


def test_rank_metrics_labels_are_compared_as_given() -> None:
    sim = np.array([[0.9, 0.1]])
    for bad in ([None], [float("nan")]):
        with pytest.raises(InputError, match=r"query_ids\[0\]"):
            rank_metrics(sim, bad, ["a", "b"])
    with pytest.raises(InputError, match="mix numbers and strings"):
        rank_metrics(sim, [1], ["1", 2])
    # "a\x00" is not "a": the query's own identity is the second item, at rank 2
    res = rank_metrics(sim, ["a\x00"], ["a", "a\x00"])
    assert res.ap[0] == 0.5


def test_methods_that_read_alike_are_refused_and_numpy_scalars_accepted(demo_gallery_dir: Path) -> None:
    images = [np.zeros((64, 64, 3), dtype=np.uint8)] * 2
    with pytest.raises(InputError, match=r"1 and '1'"):
        fp_rank.evaluate(images, "finch_gold_cheek", methods=[1, "1"], gallery=str(demo_gallery_dir), progress=False)
    report = fp_rank.evaluate(images, "finch_gold_cheek", methods=np.int64(3), gallery=str(demo_gallery_dir),
                              encoder="fp-rank-demo", progress=False, leaks="off")
    assert report.methods == ["3"]


def test_chance_floor_is_closed_form_and_refuses_fractions() -> None:
    with pytest.raises(InputError, match="whole number"):
        chance_average_precision(1.5, 10)
    with pytest.raises(InputError, match="whole number"):
        chance_average_precision(1, float("nan"))
    start = time.perf_counter()
    value = chance_average_precision(1, 2**40)  # H_N / N: no table of 2**40 entries
    assert time.perf_counter() - start < 1.0
    assert value == pytest.approx((40 * np.log(2) + np.euler_gamma) / 2**40, rel=1e-9)
    # both sides of the table limit agree with direct summation
    for n in (2**16, 2**16 + 1):
        h = np.sum(1.0 / np.arange(1, n + 1))
        assert chance_average_precision(1, n) == pytest.approx(h / n, rel=1e-13)


def test_unicode_normalisation_of_labels(tmp_path: Path) -> None:
    nfc, nfd = unicodedata.normalize("NFC", "café"), unicodedata.normalize("NFD", "café")
    assert nfc != nfd
    gallery = _rows({nfc: 3, "other": 3}, 0, "g")
    reference = _rows({nfc: 1, "other": 1}, 100, "g")
    folder = write_gallery(tmp_path / "cafe", {"gallery": gallery, "reference": reference})
    report = fp_rank.evaluate([png_bytes(300)], [nfd], gallery=str(folder), encoder=ENCODER, progress=False)
    assert report.queries[0]["identity"] == nfc and report.metadata["labels_normalised"] == 1


def test_pandas_series_with_a_shuffled_index_and_duplicates(demo_gallery_dir: Path) -> None:
    pd = pytest.importorskip("pandas")
    img = np.zeros((64, 64, 3), dtype=np.uint8)
    other = np.full((64, 64, 3), 200, dtype=np.uint8)
    series = pd.Series([img, other, img], index=[7, 3, 9])
    labels = pd.Series(["finch_gold_cheek", "jay_azure_wing", "finch_gold_cheek"], index=[2, 0, 1])
    report = fp_rank.evaluate(series, labels, gallery=str(demo_gallery_dir), encoder="fp-rank-demo", progress=False,
                              leaks="off")
    direct = fp_rank.evaluate([img, other, img], list(labels), gallery=str(demo_gallery_dir), encoder="fp-rank-demo",
                              progress=False, leaks="off")
    assert [q["ap"] for q in report.queries] == [q["ap"] for q in direct.queries]
    with pytest.raises(InputError, match="shape"):
        fp_rank.evaluate(np.array(3), "finch_gold_cheek", gallery=str(demo_gallery_dir), progress=False)


def test_holdout_identities_without_gallery_images_are_counted(tmp_path: Path) -> None:
    gallery = _rows({"a": 3, "b": 3}, 0, "g")
    reference = _rows({"a": 1, "b": 1}, 100, "g")
    holdout = _rows({"a": 1, "z": 2}, 200, "g")  # z has no gallery image
    folder = write_gallery(tmp_path / "h", {"gallery": gallery, "reference": reference, "holdout": holdout})
    report = fp_rank.evaluate([png_bytes(300)], ["a"], gallery=str(folder), encoder=ENCODER, progress=False)
    row = next(c for c in report.ceilings if c["split"] == "holdout")
    assert row["n_queries"] == 1 and row["n_missing"] == 2
    # on_missing="zero": a holdout-only identity as a query scores AP 0 and stays in the mean
    zero = fp_rank.evaluate([png_bytes(301), png_bytes(302)], ["a", "z"], gallery=str(folder), encoder=ENCODER,
                            progress=False, on_missing="zero")
    skip = fp_rank.evaluate([png_bytes(301), png_bytes(302)], ["a", "z"], gallery=str(folder), encoder=ENCODER,
                            progress=False, on_missing="skip")
    assert zero.single.n_queries == 2 and zero.single.n_missing == 1 and zero.queries[1]["ap"] == 0.0
    assert zero.map == pytest.approx(skip.map / 2) and skip.single.n_queries == 1


def test_per_identity_bookkeeping_is_linear() -> None:
    from fp_rank.reporting.aggregate import summarise

    def rows(n_ids: int) -> list[dict]:
        return [
            {"encoder": "e", "method": "m", "identity": f"id{i}", "group": "g", "ap": 0.5, "pairwise": 0.1}
            for i in range(n_ids) for _ in range(2)
        ]

    small, large = rows(1000), rows(8000)
    t0 = time.perf_counter()
    summarise(small, [], encoders=["e"], methods=["m"], ks=(1,))
    t1 = time.perf_counter()
    result = summarise(large, [], encoders=["e"], methods=["m"], ks=(1,))[0]
    t2 = time.perf_counter()
    assert len(result.map_per_identity) == 8000
    # quadratic bookkeeping would take 64x as long for 8x the identities; linear takes about 8x
    assert (t2 - t1) < 30 * max(t1 - t0, 1e-3)
