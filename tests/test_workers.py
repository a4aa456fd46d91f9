"""Decoding and preprocessing in worker processes: same embeddings, errors and skips as in one process."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import fp_rank
from fp_rank.errors import ImageDecodeError, InputError


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    from PIL import Image

    folder = tmp_path_factory.mktemp("worker_images")
    rng = np.random.default_rng(0)
    out = []
    for i in range(23):
        h, w = (40 + 7 * i, 64) if i % 2 else (64, 50 + 5 * i)
        path = folder / f"img_{i:02d}.png"
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
        out.append(str(path))
    return out


@pytest.mark.parametrize("workers", [1, 2])
def test_embeddings_bit_identical_whatever_the_workers(files: list[str], tiny_dinov2_dir: Path, workers: int) -> None:
    enc = fp_rank.load_encoder(str(tiny_dinov2_dir), device="cpu")
    ref = enc.encode(files, batch_size=5, progress=False)
    par = enc.encode(files, batch_size=5, progress=False, num_workers=workers)
    assert np.array_equal(ref.embeddings, par.embeddings)
    assert np.array_equal(ref.kept, par.kept)


def _size(rgb: object) -> tuple[int, int]:
    return rgb.size  # type: ignore[attr-defined]


@pytest.mark.parametrize("workers", [0, 2])
def test_tap_values_come_back_from_the_decode(files: list[str], tiny_dinov2_dir: Path, workers: int) -> None:
    """A tap sees every decoded picture where it is decoded (a side thread, or a worker process)."""
    from PIL import Image

    enc = fp_rank.load_encoder(str(tiny_dinov2_dir), device="cpu")
    res = enc.encode(files, batch_size=4, progress=False, num_workers=workers, taps={"size": _size})
    assert sorted(res.tapped["size"]) == list(range(len(files)))
    assert all(v == Image.open(files[i]).size for i, v in res.tapped["size"].items())


def test_unreadable_images_in_workers(files: list[str], tiny_dinov2_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG not really")
    items = files[:6] + [str(bad)] + files[6:9]
    enc = fp_rank.load_encoder(str(tiny_dinov2_dir), device="cpu")
    with pytest.raises(ImageDecodeError, match="broken.png"):
        enc.encode(items, batch_size=4, progress=False, num_workers=2)
    one = enc.encode(items, batch_size=4, progress=False, on_invalid="skip")
    two = enc.encode(items, batch_size=4, progress=False, on_invalid="skip", num_workers=2)
    assert one.skipped == two.skipped and len(two.skipped) == 1
    assert np.array_equal(one.embeddings, two.embeddings)


def test_bad_num_workers(files: list[str], tiny_dinov2_dir: Path) -> None:
    enc = fp_rank.load_encoder(str(tiny_dinov2_dir), device="cpu")
    for bad in (-1, 1.5, True):
        with pytest.raises(InputError, match="num_workers"):
            enc.encode(files[:2], progress=False, num_workers=bad)  # type: ignore[arg-type]
