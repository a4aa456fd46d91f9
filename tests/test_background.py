"""Background removal: every encoded image goes through the matting, the cache key follows it,
bad backends fail clearly, and the transformers and carvekit backends load (or say how to)."""

from __future__ import annotations

import io
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

import fp_rank
from fp_rank.cli import build_parser, main
from fp_rank.encoding.background import (
    CARVEKIT_SETTINGS,
    DEFAULT_FILL,
    Matting,
    composite,
    load_matting,
)
from fp_rank.errors import EncoderError, InputError
from tests.gallery_fixtures import png_bytes, write_gallery


def _gallery(folder: Path) -> Path:
    """One group, 3 identities: 3 gallery, 2 reference and 1 holdout image each (all distinct)."""
    splits: dict[str, list[dict[str, Any]]] = {"gallery": [], "reference": [], "holdout": []}
    seed = 100
    for i in range(3):
        for split, n in (("gallery", 3), ("reference", 2), ("holdout", 1)):
            for _ in range(n):
                seed += 1
                splits[split].append({"image": png_bytes(seed), "identity": f"id{i}", "group": "g"})
    return write_gallery(folder, splits)


class CountingMatte:
    """Keeps the centre square, counting calls by image size tag (pixel of the corner)."""

    def __init__(self) -> None:
        self.calls = 0
        self.seen: Counter[bytes] = Counter()

    def __call__(self, image: Image.Image) -> Image.Image:
        self.calls += 1
        self.seen[image.tobytes()] += 1
        mask = Image.new("L", image.size, 0)
        w, h = image.size
        mask.paste(255, (w // 4, h // 4, 3 * w // 4, 3 * h // 4))
        return mask


@pytest.fixture()
def gallery_dir(tmp_path: Path) -> Path:
    return _gallery(tmp_path / "gal")


def _queries() -> tuple[list[bytes], list[str]]:
    return [png_bytes(900 + i) for i in range(3)], ["id0", "id1", "id2"]


def test_every_split_queries_and_conditioning_go_through_the_matting(gallery_dir: Path) -> None:
    matte = CountingMatte()
    images, ids = _queries()
    conditioning = [png_bytes(950), 2, None]  # an external image, a reference row, none
    report = fp_rank.evaluate(
        images, ids, gallery=gallery_dir, encoder="fp-rank-demo",
        background=load_matting(matte, name="centre", revision="1"), conditioning=conditioning, progress=False,
    )
    gallery, reference, holdout = 9, 6, 3
    assert matte.calls == gallery + reference + holdout + len(images) + 1
    expected = [Image.open(io.BytesIO(png_bytes(s))).convert("RGB").tobytes() for s in range(101, 119)]
    expected += [Image.open(io.BytesIO(b)).convert("RGB").tobytes() for b in images + [png_bytes(950)]]
    assert matte.seen == Counter(expected)
    options = report.metadata["options"]
    assert options["background"] == "remove"
    assert options["matting"]["name"] == "callable:centre" and options["matting"]["fill"] == list(DEFAULT_FILL)
    assert report.metadata["encoders"][0]["preprocessing"]["background"]["name"] == "callable:centre"


def test_background_removal_changes_the_cache_key_and_scores(gallery_dir: Path) -> None:
    images, ids = _queries()
    kept = fp_rank.evaluate(images, ids, gallery=gallery_dir, encoder="fp-rank-demo", progress=False)
    matte = CountingMatte()
    matting = load_matting(matte, name="centre", revision="1")
    removed = fp_rank.evaluate(images, ids, gallery=gallery_dir, encoder="fp-rank-demo",
                               background=matting, progress=False)
    assert removed.metadata["cache"]["gallery_images_from_cache"] == 0
    assert removed.metadata["cache"]["gallery_images_encoded"] == 18
    ids_kept = kept.metadata["encoders"][0]["preprocessing_id"]
    ids_removed = removed.metadata["encoders"][0]["preprocessing_id"]
    assert ids_kept != ids_removed
    assert kept.metadata["options"]["background"] == "keep" and kept.metadata["options"]["matting"] is None
    assert [r["pairwise"] for r in kept.queries] != [r["pairwise"] for r in removed.queries]
    # same backend and version again: the real splits and the generated images' chunk come from the
    # cache (both keyed with the matting's identity), so nothing is matted again
    matte.calls = 0
    again = fp_rank.evaluate(images, ids, gallery=gallery_dir, encoder="fp-rank-demo",
                             background=matting, progress=False)
    assert again.metadata["cache"]["gallery_images_from_cache"] == 18
    assert again.metadata["cache"]["generated_images_encoded"] == 0
    assert matte.calls == 0 and [q["ap"] for q in again.queries] == [q["ap"] for q in removed.queries]
    other = fp_rank.evaluate(images, ids, gallery=gallery_dir, encoder="fp-rank-demo",
                             background=load_matting(matte, name="centre", revision="2"), progress=False)
    assert other.metadata["cache"]["gallery_images_from_cache"] == 0


def test_a_callable_without_revision_is_never_cached(gallery_dir: Path) -> None:
    images, ids = _queries()
    for _ in range(2):
        report = fp_rank.evaluate(images, ids, gallery=gallery_dir, encoder="fp-rank-demo",
                                  background=CountingMatte(), progress=False)
        assert report.metadata["cache"]["gallery_images_from_cache"] == 0


@pytest.mark.parametrize(
    ("matte", "message"),
    [
        (lambda im: Image.new("L", (im.width + 1, im.height), 255), "must have the image's size"),
        (lambda im: np.zeros((im.height, im.width), dtype=np.uint8), "returned ndarray"),
        (lambda im: im.convert("RGB"), "returned a RGB image"),
        (lambda im: 1 / 0, "raised ZeroDivisionError"),
    ],
    ids=["wrong-size", "wrong-type", "wrong-mode", "raises"],
)
def test_garbage_from_the_backend_names_the_image(gallery_dir: Path, matte: Any, message: str) -> None:
    images, ids = _queries()
    with pytest.raises(EncoderError, match=message) as info:
        fp_rank.evaluate(images, ids, gallery=gallery_dir, encoder="fp-rank-demo",
                         background=matte, progress=False, cache=False)
    assert "gal:gallery[0]" in str(info.value)  # the first image encoded, named


def test_composite_rules() -> None:
    image = Image.new("RGB", (4, 2), (10, 20, 30))
    full = composite(image, Image.new("L", (4, 2), 255), DEFAULT_FILL, label="x", backend="b")
    none = composite(image, Image.new("1", (4, 2), 0), (255, 255, 255), label="x", backend="b")
    assert full.getpixel((0, 0)) == (10, 20, 30) and none.getpixel((0, 0)) == (255, 255, 255)
    rgba = Image.new("RGBA", (4, 2), (200, 0, 0, 128))
    half = composite(image, rgba, (0, 0, 0), label="x", backend="b")
    assert half.mode == "RGB" and abs(half.getpixel((0, 0))[0] - 100) <= 1  # its own colours, alpha-blended


def test_bad_arguments_are_refused_before_any_work(gallery_dir: Path) -> None:
    images, ids = _queries()
    with pytest.raises(InputError, match="background must be one of"):
        fp_rank.evaluate(images, ids, gallery=gallery_dir, encoder="fp-rank-demo", background="drop")
    with pytest.raises(InputError, match="background must be 'keep', 'remove', a matting checkpoint"):
        fp_rank.evaluate(images, ids, gallery=gallery_dir, encoder="fp-rank-demo", background=3)
    with pytest.raises(InputError, match="fill must be"):
        load_matting(CountingMatte(), fill=(0, 0, 256))


def test_carvekit_absent_says_how_to_install(monkeypatch: pytest.MonkeyPatch, gallery_dir: Path) -> None:
    for module in ("carvekit", "carvekit.api", "carvekit.api.high"):
        monkeypatch.setitem(sys.modules, module, None)  # import raises ImportError
    with pytest.raises(EncoderError, match=r"pip install 'fp-rank\[background\]'"):
        load_matting("carvekit")
    images, ids = _queries()
    with pytest.raises(EncoderError, match="needs carvekit"):  # the default backend
        fp_rank.evaluate(images, ids, gallery=gallery_dir, encoder="fp-rank-demo", background="remove", progress=False)


def test_carvekit_backend_uses_the_reference_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """A stand-in carvekit module records the HiInterface arguments; its alpha is the matte."""
    import types

    received: dict[str, Any] = {}

    class HiInterface:
        def __init__(self, **kwargs: Any) -> None:
            received.update(kwargs)

        def __call__(self, images: list[Image.Image]) -> list[Image.Image]:
            out = images[0].convert("RGBA")
            out.putalpha(Image.new("L", out.size, 0))
            return [out]

    high = types.ModuleType("carvekit.api.high")
    high.HiInterface = HiInterface  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "carvekit", types.ModuleType("carvekit"))
    monkeypatch.setitem(sys.modules, "carvekit.api", types.ModuleType("carvekit.api"))
    monkeypatch.setitem(sys.modules, "carvekit.api.high", high)
    matting = load_matting("carvekit", device="cpu")
    assert received == {
        "object_type": "object", "seg_mask_size": 640, "matting_mask_size": 2048, "trimap_prob_threshold": 231,
        "trimap_dilation": 30, "trimap_erosion_iters": 5, "fp16": False, "batch_size_seg": 1,
        "batch_size_matting": 1, "device": "cpu",
    }
    assert matting.identity()["segmentation"] == CARVEKIT_SETTINGS["segmentation"] == "tracer_b7"
    assert matting.apply(Image.new("RGB", (3, 3), (9, 9, 9)), "a.png").getpixel((1, 1)) == DEFAULT_FILL


def make_tiny_segformer(folder: Path) -> Path:
    """A random two-class SegFormer (background, foreground) with its image processor."""
    import torch
    from transformers import SegformerConfig, SegformerForSemanticSegmentation, SegformerImageProcessor

    torch.manual_seed(0)
    config = SegformerConfig(
        num_channels=3, num_encoder_blocks=1, depths=[1], sr_ratios=[1], hidden_sizes=[8], patch_sizes=[3],
        strides=[2], num_attention_heads=[1], mlp_ratios=[1], decoder_hidden_size=8, num_labels=2,
        id2label={0: "background", 1: "foreground"}, label2id={"background": 0, "foreground": 1},
    )
    SegformerForSemanticSegmentation(config).save_pretrained(folder)
    SegformerImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def segformer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_segformer(tmp_path_factory.mktemp("models") / "segformer")


def test_transformers_segmentation_checkpoint(segformer_dir: Path, gallery_dir: Path) -> None:
    matting = load_matting(str(segformer_dir), device="cpu")
    identity = matting.identity()
    assert identity["backend"] == "transformers" and identity["revision"] and identity["background_index"] == 0
    out = matting.apply(Image.new("RGB", (20, 14), (50, 60, 70)), "x.png")
    assert out.size == (20, 14) and out.mode == "RGB"
    images, ids = _queries()
    report = fp_rank.evaluate(images, ids, gallery=gallery_dir, encoder="fp-rank-demo",
                              background=str(segformer_dir), progress=False)
    assert report.metadata["options"]["matting"]["model_id"] == str(segformer_dir)
    with pytest.raises(EncoderError, match="does not exist"):
        load_matting(str(segformer_dir / "missing"))


def test_cli_flags(segformer_dir: Path, gallery_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    args = build_parser().parse_args(["evaluate", "--gallery", "g", "--generated", "r", "--background", "remove"])
    assert args.background == "remove" and not hasattr(args, "matting")
    run = tmp_path / "run"
    for i, data in enumerate(_queries()[0]):
        (run / f"id{i}").mkdir(parents=True)
        (run / f"id{i}" / "0.png").write_bytes(data)
    out = tmp_path / "out"
    code = main(["evaluate", "--gallery", str(gallery_dir), "--generated", str(run), "--encoder", "fp-rank-demo",
                 "--background", str(segformer_dir), "--bootstrap", "0", "--no-progress", "--out", str(out)])
    assert code == 0
    assert '"background": "remove"' in (out / "report.json").read_text()
    capsys.readouterr()
    # the older spelling still works, with a one-line warning in the command line's words
    assert main(["evaluate", "--gallery", str(gallery_dir), "--generated", str(run), "--encoder", "fp-rank-demo",
                 "--background", "remove", "--matting", str(segformer_dir), "--bootstrap", "0", "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "fp-rank: warning: --matting is deprecated and will be removed in fp-rank 0.3; use --background" in err
    assert main(["evaluate", "--gallery", str(gallery_dir), "--generated", str(run), "--encoder", "fp-rank-demo",
                 "--matting", str(segformer_dir), "--bootstrap", "0", "--no-progress"]) == 2
    assert f"--matting {segformer_dir} is given but --background keep; pass --background remove" in capsys.readouterr().err


def test_the_evaluate_module_passes_the_options_through() -> None:
    from fp_rank.metric import _PASSTHROUGH

    assert "background" in _PASSTHROUGH


def test_matting_repr_and_identity() -> None:
    matting = Matting(lambda im: im, name="n", identity={"backend": "x"})
    assert "n" in repr(matting) and matting.identity() == {"backend": "x", "name": "n", "fill": [130, 130, 130]}
