"""Shared fixtures: offline mode, a private cache per test, tiny models and galleries built on disk."""

from __future__ import annotations

import os

# Nothing in the test suite may reach the network.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["HF_EVALUATE_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from tests.model_fixtures import (  # noqa: E402
    make_tiny_clip,
    make_tiny_dinov2,
    make_tiny_miewid,
    make_tiny_siglip,
)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test gets its own embedding cache folder (FP_RANK_CACHE)."""
    folder = tmp_path_factory.mktemp("fp_rank_cache")
    monkeypatch.setenv("FP_RANK_CACHE", str(folder))
    return folder


@pytest.fixture(scope="session")
def demo_gallery_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic demo gallery, built once per session by the library's demo gallery source."""
    from fp_rank.demo import gallery as demo_source

    out = tmp_path_factory.mktemp("demo_gallery") / "synthetic"
    demo_source.build(out, seed=0, progress=False)
    return out


@pytest.fixture(scope="session")
def demo_generated() -> list[dict]:
    """Images of the three simulated methods (450 images, 64x64)."""
    from fp_rank.demo.synthetic import generated_records

    return generated_records(0)


@pytest.fixture(scope="session")
def tiny_dinov2_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_dinov2(tmp_path_factory.mktemp("models") / "dinov2")


@pytest.fixture(scope="session")
def tiny_clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_clip(tmp_path_factory.mktemp("models") / "clip")


@pytest.fixture(scope="session")
def tiny_siglip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_siglip(tmp_path_factory.mktemp("models") / "siglip")


@pytest.fixture(scope="session")
def tiny_miewid_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_miewid(tmp_path_factory.mktemp("models") / "miewid")
