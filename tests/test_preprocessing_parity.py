"""Model inputs equal the reference code's: transformers' image processors (DINOv2, CLIP) byte for
byte by default, MiewID's albumentations Resize + Normalize (OpenCV INTER_LINEAR); the torch paths
are an explicit option with their own cache keys; and ``fp_rank.evaluate`` equals a plain
reference-style loop end to end."""

from __future__ import annotations

import io
import json
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

import fp_rank
from fp_rank import EncoderError, InputError
from fp_rank.caching.store import cache_key
from fp_rank.encoding import load_encoder
from fp_rank.encoding.backends._resize import opencv_linear, opencv_linear_emulated
from fp_rank.images.decode import to_rgb
from tests.gallery_fixtures import write_gallery
from tests.model_fixtures import make_tiny_clip_224, make_tiny_dinov2_224
from tests.photo_fixtures import Case, photo, photo_cases
from tests.test_ranking import textbook_ap

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@pytest.fixture(scope="module")
def dinov2_224_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_dinov2_224(tmp_path_factory.mktemp("dinov2_224") / "m")


@pytest.fixture(scope="module")
def clip_224_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_clip_224(tmp_path_factory.mktemp("clip_224") / "m")


@pytest.fixture(scope="module")
def cases() -> list[Case]:
    return photo_cases()


@pytest.fixture(scope="module")
def decoded(cases: list[Case]) -> list[Image.Image]:
    return [to_rgb(c.data, name=c.name) for c in cases]


def _pixels(processor: Any, image: Any) -> torch.Tensor:
    return processor(images=image, return_tensors="pt")["pixel_values"]


def _reference_decode(data: bytes) -> np.ndarray:
    """The reference code's reading: ``np.array(Image.open(path).convert('RGB'))``."""
    return np.array(Image.open(io.BytesIO(data)).convert("RGB"))


# --------------------------------------------------------------------------- DINOv2 and CLIP


@pytest.mark.parametrize("model", ["dinov2_224_dir", "clip_224_dir"])
def test_default_inputs_equal_the_checkpoint_processor_exactly(
    model: str, cases: list[Case], decoded: list[Image.Image], request: pytest.FixtureRequest
) -> None:
    from transformers import AutoImageProcessor, CLIPProcessor

    folder = request.getfixturevalue(model)
    enc = load_encoder(str(folder))
    assert enc.preprocessing["mode"] == "processor" and "fast_preprocess" not in enc.preprocessing
    processors = [AutoImageProcessor.from_pretrained(folder)]
    if model == "clip_224_dir":  # the reference's CLIPProcessor, image path
        processors.append(CLIPProcessor.from_pretrained(folder))
    assert enc.preprocessing["size"] == ({"shortest_edge": 256} if model == "dinov2_224_dir" else {"shortest_edge": 224})
    assert len(cases) >= 40
    singles = []
    for case, rgb in zip(cases, decoded):
        ours = enc.preprocess([rgb])
        singles.append(ours)
        assert ours.shape == (1, 3, 224, 224) and ours.dtype == torch.float32
        for processor in processors:
            assert torch.equal(ours, _pixels(processor, rgb)), case.name
            # the reference hands the processor a NumPy array; transformers reads an array whose
            # height is 1, 3 or 4 as channels-first (docs/reference_parity.md), the rest agree
            arr = np.array(rgb)
            if arr.shape[0] not in (1, 3, 4):
                assert torch.equal(ours, _pixels(processor, arr)), case.name
        if case.same_decode:  # the whole chain from the file, as the reference reads it
            assert np.array_equal(np.asarray(rgb), _reference_decode(case.data)), case.name
    # batches give what single images give
    assert torch.equal(enc.preprocess(decoded), torch.cat(singles))


@pytest.mark.parametrize("model", ["dinov2_224_dir", "clip_224_dir"])
def test_fast_is_an_explicit_option_with_its_own_cache_key(
    model: str, decoded: list[Image.Image], request: pytest.FixtureRequest
) -> None:
    folder = str(request.getfixturevalue(model))
    slow, fast = load_encoder(folder), load_encoder(folder, preprocessing="fast")
    assert fast.preprocessing["mode"] == "fast" and "fast_preprocess" in fast.preprocessing
    assert slow.preprocessing_id != fast.preprocessing_id
    assert cache_key(slow.identity(), "c") != cache_key(fast.identity(), "c")
    # fp-rank 0.1's flag still works and maps onto the option
    assert load_encoder(folder, fast_preprocess=True).preprocessing == fast.preprocessing
    assert load_encoder(folder, fast_preprocess=False).preprocessing == slow.preprocessing
    diffs = [float((fast.preprocess([img]) - slow.preprocess([img])).abs().max()) for img in decoded[:12]]
    assert max(diffs) > 0  # a different path ...
    assert max(diffs) <= 2 / (255 * min(slow.preprocessing["image_std"])) + 1e-6  # ... within its tolerance


def test_preprocessing_option_is_checked(tiny_dinov2_dir: Path) -> None:
    with pytest.raises(InputError, match=r"preprocessing must be one of 'processor', 'fast', got 'pil'"):
        load_encoder(str(tiny_dinov2_dir), preprocessing="pil")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="contradicts"):
        load_encoder(str(tiny_dinov2_dir), preprocessing="processor", fast_preprocess=True)
    with pytest.raises(InputError, match="preprocessing must be one of"):
        fp_rank.evaluate([b"not read"], ["a"], gallery="nowhere", preprocessing="torch")  # type: ignore[arg-type]


def test_cli_has_the_preprocessing_flag() -> None:
    from fp_rank.cli import build_parser

    base = ["evaluate", "--gallery", "g", "--generated", "x"]
    assert build_parser().parse_args(base).preprocessing == "processor"
    assert build_parser().parse_args([*base, "--preprocessing", "fast"]).preprocessing == "fast"


# --------------------------------------------------------------------------- MiewID


@pytest.fixture(scope="module")
def miewid_encoders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from tests.model_fixtures import make_tiny_miewid

    folder = make_tiny_miewid(tmp_path_factory.mktemp("miewid") / "m")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the remote-code warning
        return {
            mode: load_encoder("miewid", source=folder, trust_remote_code=True, preprocessing=mode)
            for mode in ("processor", "fast")
        }


def _albumentations_formula(arr: np.ndarray) -> np.ndarray:
    """albumentations Resize(440, 440) + Normalize(), written out: cv2 INTER_LINEAR, then
    ``(x - 255 mean) * (1 / (255 std))`` in float32, channels first."""
    cv2 = pytest.importorskip("cv2")
    resized = arr if arr.shape[:2] == (440, 440) else cv2.resize(arr, (440, 440), interpolation=cv2.INTER_LINEAR)
    mean = np.array(IMAGENET_MEAN, dtype=np.float32) * 255.0
    denominator = np.reciprocal(np.array(IMAGENET_STD, dtype=np.float32) * 255.0)
    return ((resized.astype(np.float32) - mean) * denominator).transpose(2, 0, 1)


def test_miewid_default_equals_the_reference_resize_and_normalise(
    miewid_encoders: dict[str, Any], cases: list[Case], decoded: list[Image.Image]
) -> None:
    pytest.importorskip("cv2")
    enc = miewid_encoders["processor"]
    assert enc.preprocessing["mode"] == "processor" and "cv2" in enc.preprocessing["resample"]
    for case, rgb in zip(cases, decoded):
        arr = np.asarray(rgb)
        ours = enc.preprocess([rgb])[0].numpy()
        expected = _albumentations_formula(arr)
        assert np.array_equal(ours, expected), case.name
        if case.same_decode:
            assert np.array_equal(arr, _reference_decode(case.data)), case.name


def test_miewid_default_equals_albumentations_itself(miewid_encoders: dict[str, Any], decoded: list[Image.Image]) -> None:
    albumentations = pytest.importorskip("albumentations")
    transform = albumentations.Compose([albumentations.Resize(440, 440), albumentations.Normalize()])
    for rgb in decoded:
        expected = transform(image=np.array(rgb))["image"].transpose(2, 0, 1)
        assert np.array_equal(miewid_encoders["processor"].preprocess([rgb])[0].numpy(), expected)


_SIZES = [(1000, 872), (872, 1000), (300, 200), (440, 441), (441, 440), (2000, 1500), (97, 103), (880, 880), (881, 880),
          (13, 600), (1, 1), (2, 3), (20, 2000), (220, 220)]


@pytest.mark.parametrize("size", _SIZES)
@pytest.mark.parametrize("target", [440, 224, 37])
def test_numpy_linear_resize_equals_opencv(size: tuple[int, int], target: int) -> None:
    """Up- and downscales, odd sizes, the exact 2x case (OpenCV averages 2x2 blocks there)."""
    pytest.importorskip("cv2")
    arr = photo(*size, seed=size[0] * 7 + size[1])
    assert np.array_equal(opencv_linear_emulated(arr, target), opencv_linear(arr, target)), (size, target)


def test_miewid_fast_and_default_have_different_cache_keys(miewid_encoders: dict[str, Any]) -> None:
    fast, slow = miewid_encoders["fast"], miewid_encoders["processor"]
    assert fast.preprocessing["mode"] == "fast" and slow.preprocessing["mode"] == "processor"
    assert cache_key(fast.identity(), "c") != cache_key(slow.identity(), "c")


def test_miewid_without_opencv_says_how_to_install(tiny_miewid_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "cv2", None)  # import cv2 now raises ImportError
    with pytest.raises(EncoderError, match=r"OpenCV .*not installed: pip install 'fp-rank\[miewid\]'.*preprocessing='fast'"):
        load_encoder("miewid", source=tiny_miewid_dir, trust_remote_code=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        enc = load_encoder("miewid", source=tiny_miewid_dir, trust_remote_code=True, preprocessing="fast")
    assert enc.preprocess([Image.new("RGB", (50, 30), (10, 20, 30))]).shape == (1, 3, 440, 440)


# --------------------------------------------------------------------------- end to end


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def e2e_gallery(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(5)
    splits: dict[str, list[dict]] = {"gallery": [], "reference": []}
    seed = 100
    for group in ("g1", "g2"):
        for ident in ("a", "b", "c"):
            for split, count in (("gallery", 4), ("reference", 2)):
                for _ in range(count):
                    seed += 1
                    h, w = (int(v) for v in rng.integers(120, 420, 2))
                    splits[split].append({"image": _png(photo(h, w, seed)), "identity": f"{group}-{ident}", "group": group})
    return write_gallery(tmp_path_factory.mktemp("e2e") / "g", splits)


def _reference_embed(folder: Path, kind: str, images: list[bytes]) -> torch.Tensor:
    """The reference loop: processor on the RGB array, model, CLS token or projected features."""
    from transformers import AutoImageProcessor, AutoModel, CLIPModel, CLIPProcessor

    if kind == "dino":
        processor, model = AutoImageProcessor.from_pretrained(folder), AutoModel.from_pretrained(folder)
    else:
        processor, model = CLIPProcessor.from_pretrained(folder), CLIPModel.from_pretrained(folder)
    model.eval()
    out = []
    with torch.no_grad():
        for data in images:
            pixels = processor(images=_reference_decode(data), return_tensors="pt")["pixel_values"]
            if kind == "dino":
                out.append(model(pixel_values=pixels).last_hidden_state[:, 0])
            else:
                feats = model.get_image_features(pixel_values=pixels)
                out.append(feats if isinstance(feats, torch.Tensor) else feats.pooler_output)
    return torch.nn.functional.normalize(torch.cat(out), p=2, dim=1)


def test_evaluate_equals_a_reference_style_loop(e2e_gallery: Path, dinov2_224_dir: Path, clip_224_dir: Path) -> None:
    gal = fp_rank.load_gallery(str(e2e_gallery), progress=False)
    labels = [f"{g}-{i}" for g in ("g1", "g2") for i in ("a", "b", "c")] * 2
    methods = ["m1"] * 6 + ["m2"] * 6
    images = [_png(photo(256 + 37 * k, 300 - 11 * k, 900 + k)) for k in range(len(labels))]
    encoders = {"dino": str(dinov2_224_dir), "clip": str(clip_224_dir)}
    report = fp_rank.evaluate(images, labels, methods=methods, gallery=gal, encoder=list(encoders.values()),
                              ceilings=False, cache=False, leaks="off", progress=False)
    gallery_bytes = [gal.gallery.images[i]["bytes"] for i in range(len(gal.gallery))]
    g_ids, g_groups = np.asarray(gal.gallery.identities), np.asarray(gal.gallery.groups)
    compared = 0
    for kind, folder in encoders.items():
        q = _reference_embed(Path(folder), kind, images)
        g = _reference_embed(Path(folder), kind, gallery_bytes)
        for method in ("m1", "m2"):
            result = report.result(method=method, encoder=folder)
            for group in ("g1", "g2"):
                rows = [r for r in report.queries if r["encoder"] == folder and r["method"] == method and r["group"] == group]
                qi = [k for k in range(len(labels)) if methods[k] == method and labels[k].startswith(group)]
                gi = np.flatnonzero(g_groups == group)
                dist = (1 - q[qi] @ g[gi].T).numpy()  # float32 cosine distances, as the reference ranks them
                tied = any(r["tied"] for r in rows) or any(len(np.unique(d)) < len(d) for d in dist)
                if tied:
                    continue
                aps = [textbook_ap(-dist[k], g_ids[gi] == labels[qi[k]]) for k in range(len(qi))]
                assert result.map_per_group[group] == pytest.approx(float(np.mean(aps)), abs=1e-6)
                compared += 1
    assert compared >= 6  # nearly every (encoder, method, group) cell is untied with these models
    assert {e["preprocessing"]["mode"] for e in report.metadata["encoders"]} == {"processor"}


# --------------------------------------------------------------------------- protocol version


def _colour(images: list) -> np.ndarray:
    return np.asarray([np.asarray(img, dtype=np.float64).mean(axis=(0, 1)) + [1, 2, 3] for img in images])


def test_protocol_is_1_1_and_a_1_0_report_still_loads(e2e_gallery: Path, tmp_path: Path) -> None:
    assert fp_rank.PROTOCOL_VERSION == "1.1"
    gal = fp_rank.load_gallery(str(e2e_gallery), progress=False)
    encoder = load_encoder(_colour, name="colour", revision="1")
    report = fp_rank.evaluate([_png(photo(40, 50, 1))], ["g1-a"], gallery=gal, encoder=encoder, progress=False,
                              cache=False)
    assert report.metadata["protocol_version"] == "1.1"
    old = report.to_dict()
    old["metadata"]["protocol_version"] = "1.0"  # a report written by fp-rank under protocol 1.0
    path = tmp_path / "report-1.0.json"
    path.write_text(json.dumps(old))
    loaded = fp_rank.Report.load(path)
    assert loaded.metadata["protocol_version"] == "1.0"
    assert "protocol 1.0" in fp_rank.to_markdown(loaded)
    assert loaded.single.map == pytest.approx(report.single.map)
