"""Encoders: every backend through load_encoder, on tiny random models saved in tmp folders."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import fp_rank
from fp_rank import EncoderError, InputError, load_encoder
from fp_rank.encoding.registry import REGISTRY, known_aliases


@pytest.fixture(scope="module")
def images() -> list[Image.Image]:
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 256, size=(40 + 7 * i, 50, 3), dtype=np.uint8)) for i in range(5)]


def _unit_rows(x: np.ndarray) -> None:
    assert x.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)


def test_registry_has_the_required_aliases() -> None:
    for alias in ("dinov2-small", "dinov2-base", "dinov2-large", "clip-vit-b32", "siglip", "miewid", "bioclip-2", "fp-rank-demo"):
        assert alias in REGISTRY
    assert REGISTRY["dinov2-base"].hub_id == "facebook/dinov2-base" and REGISTRY["dinov2-base"].pooling == "cls"
    assert REGISTRY["clip-vit-b32"].hub_id == "openai/clip-vit-base-patch32"
    assert REGISTRY["miewid"].requires_remote_code
    assert known_aliases() == sorted(REGISTRY)


def test_dinov2_alias_from_local_folder_uses_cls_token(tiny_dinov2_dir: Path, images: list) -> None:
    enc = load_encoder("dinov2-base", source=tiny_dinov2_dir)
    assert enc.name == "dinov2-base" and enc.pooling == "cls" and enc.revision.startswith("sha256:")
    emb = enc.encode(images, batch_size=2, progress=False).embeddings
    _unit_rows(emb)
    # CLS token of the model's own forward pass, normalised
    from transformers import AutoModel

    model = AutoModel.from_pretrained(tiny_dinov2_dir).eval()
    with torch.no_grad():
        out = model(pixel_values=enc.preprocess(images))
    cls = torch.nn.functional.normalize(out.last_hidden_state[:, 0], dim=1).numpy()
    np.testing.assert_allclose(emb, cls, atol=1e-5)
    np.testing.assert_allclose(out.pooler_output.numpy(), out.last_hidden_state[:, 0].numpy(), atol=1e-6)


@pytest.mark.parametrize("fixture", ["tiny_clip_dir", "tiny_siglip_dir"])
def test_projected_image_features(fixture: str, request: pytest.FixtureRequest, images: list) -> None:
    folder = request.getfixturevalue(fixture)
    enc = load_encoder(folder)
    assert enc.pooling == "image_features"
    emb = enc.encode(images, progress=False).embeddings
    _unit_rows(emb)
    from transformers import AutoModel

    model = AutoModel.from_pretrained(folder).eval()
    with torch.no_grad():
        feats = model.get_image_features(pixel_values=enc.preprocess(images))
    feats = feats if isinstance(feats, torch.Tensor) else feats.pooler_output
    np.testing.assert_allclose(emb, torch.nn.functional.normalize(feats, dim=1).numpy(), atol=1e-5)


def test_pooling_override_and_bad_pooling(tiny_dinov2_dir: Path, images: list) -> None:
    mean = load_encoder(tiny_dinov2_dir, pooling="mean")
    assert mean.pooling == "mean"
    cls = load_encoder(tiny_dinov2_dir)
    assert not np.allclose(mean.encode(images, progress=False).embeddings, cls.encode(images, progress=False).embeddings)
    assert mean.preprocessing_id == cls.preprocessing_id
    with pytest.raises(EncoderError, match="pooling"):
        load_encoder(tiny_dinov2_dir, pooling="max")


def test_remote_code_needs_opt_in_and_warns(tiny_miewid_dir: Path, images: list) -> None:
    with pytest.raises(EncoderError, match="trust_remote_code=True"):
        load_encoder("miewid", source=tiny_miewid_dir)
    with pytest.warns(UserWarning, match="running code from"):
        enc = load_encoder("miewid", source=tiny_miewid_dir, trust_remote_code=True)
    assert enc.pooling == "extract_feat"
    assert enc.preprocessing["resize"] == [440, 440]
    assert enc.preprocess(images[:2]).shape == (2, 3, 440, 440)
    _unit_rows(enc.encode(images, progress=False).embeddings)


def test_open_clip_extra_is_optional() -> None:
    try:
        import open_clip  # noqa: F401
    except ImportError:
        with pytest.raises(EncoderError, match="fp-rank\\[open_clip\\]"):
            load_encoder("bioclip-2")
    else:  # pragma: no cover - only where the extra is installed
        pytest.skip("open_clip installed: covered by the open_clip model test")


def test_callable_encoder_and_caching_rule(images: list) -> None:
    def colour_means(batch: list) -> np.ndarray:
        return np.stack([np.asarray(im, dtype=np.float32).mean(axis=(0, 1)) + 1.0 for im in batch])

    enc = load_encoder(colour_means)
    assert enc.name == "callable:test_callable_encoder_and_caching_rule.<locals>.colour_means"
    assert not enc.cacheable  # no revision: never cached
    assert load_encoder(colour_means, revision="v1").cacheable
    _unit_rows(enc.encode(images, progress=False).embeddings)


def test_unknown_alias_names_the_valid_ones() -> None:
    with pytest.raises(EncoderError, match="dinov2-base"):
        load_encoder("dinov3-huge")
    with pytest.raises(EncoderError, match="does not exist"):
        load_encoder("./no/such/folder")


def test_dtype_is_validated_and_recorded(tiny_dinov2_dir: Path, images: list) -> None:
    enc = load_encoder(tiny_dinov2_dir, dtype="bf16")
    assert enc.dtype == "bfloat16" and enc.identity()["dtype"] == "bfloat16"
    emb = enc.encode(images, progress=False).embeddings
    ref = load_encoder(tiny_dinov2_dir).encode(images, progress=False).embeddings
    assert np.min(np.sum(emb * ref, axis=1)) > 0.98
    with pytest.raises(InputError, match="dtype"):
        load_encoder(tiny_dinov2_dir, dtype="int8")


def test_device_defaults_to_cpu_without_cuda(tiny_dinov2_dir: Path) -> None:
    enc = load_encoder(tiny_dinov2_dir)
    assert enc.device == ("cuda" if torch.cuda.is_available() else "cpu")


def test_progress_bar_can_be_turned_off(images: list, capsys: pytest.CaptureFixture) -> None:
    enc = load_encoder("fp-rank-demo")
    enc.encode(images, progress=False)
    assert capsys.readouterr().err == ""
    enc.encode(images, progress=True)
    assert "encoding" in capsys.readouterr().err


def test_demo_encoder_is_never_substituted(tiny_dinov2_dir: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        enc = load_encoder(tiny_dinov2_dir)
    assert not enc.is_demo
    assert load_encoder("fp-rank-demo").is_demo
    assert fp_rank.load_encoder(enc) is enc


def test_every_backend_module_defines_a_loader() -> None:
    import importlib
    from typing import get_args

    from fp_rank.encoding.backends import BACKENDS, loader
    from fp_rank.encoding.registry import Backend

    assert set(get_args(Backend)) <= set(BACKENDS)
    assert {spec.backend for spec in REGISTRY.values()} <= set(BACKENDS)
    for name, module in BACKENDS.items():
        assert loader(name) is importlib.import_module(module).load


def test_unknown_backend_lists_the_valid_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    from fp_rank.encoding.registry import EncoderSpec

    spec = EncoderSpec("onnx-model", "org/onnx-model", "onnx", "cls", "an entry naming a backend nobody wrote")  # type: ignore[arg-type]
    monkeypatch.setitem(REGISTRY, spec.alias, spec)
    with pytest.raises(EncoderError, match="unknown encoder backend 'onnx'; valid backends: callable, demo, "):
        load_encoder("onnx-model")


def test_alias_only_backends_refuse_unregistered_models() -> None:
    from fp_rank.encoding.backends import LoadRequest, loader

    request = LoadRequest(source="org/model", name="org/model", spec=None, revision=None, device="cpu", dtype="float32")
    for backend in ("demo", "miewid", "open_clip"):
        with pytest.raises(EncoderError, match="not a registry alias"):
            loader(backend)(request)


def test_callable_errors_name_the_callable(images: list) -> None:
    def broken(batch: list) -> np.ndarray:
        raise RuntimeError("out of ideas")

    with pytest.raises(EncoderError, match="encoder callable 'callable:nope' raised RuntimeError: out of ideas"):
        load_encoder(broken, name="nope").encode(images, progress=False)
    with pytest.raises(EncoderError, match="returned shape \\(1, 2\\) for 5 images"):
        load_encoder(lambda batch: np.ones((1, 2)), name="short").encode(images, batch_size=5, progress=False)
