"""Cache integrity: killed writers, corrupted entries and concurrent writers never yield a wrong
embedding; the next run detects the damage and recomputes. Keys change with everything that
changes the vectors."""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fp_rank
from fp_rank.caching.store import EmbeddingCache, cache_key
from fp_rank.images.decode import content_fingerprint
from tests.gallery_fixtures import png_bytes, write_gallery
from tests.robustness import _workers

REPO = Path(__file__).resolve().parents[2]


def _child(mode: str, directory: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.robustness._workers", mode, str(directory)],
        cwd=REPO, stdout=subprocess.PIPE, text=True,
    )


def _kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stdout.close()  # type: ignore[union-attr]


def test_writer_killed_before_its_rename_leaves_no_entry(tmp_path: Path) -> None:
    proc = _child("stall", tmp_path)
    assert proc.stdout.readline().strip() == "READY"  # type: ignore[union-attr]
    _kill(proc)
    cache = EmbeddingCache(tmp_path)
    assert not cache.path_for(_workers.key_of(7)).exists()
    assert list((tmp_path / "embeddings").rglob(".*.tmp"))  # the orphan is there...
    assert cache.get(_workers.key_of(7), _workers.ROWS) is None  # ...and never read
    assert cache.info()["entries"] == 0
    cache.clear()
    assert not list((tmp_path / "embeddings").rglob(".*.tmp"))


def test_writer_killed_mid_stream_never_yields_a_wrong_entry(tmp_path: Path) -> None:
    proc = _child("forever", tmp_path)
    for _ in range(8):  # let it finish a few entries, then kill it wherever it is
        proc.stdout.readline()  # type: ignore[union-attr]
    _kill(proc)
    cache = EmbeddingCache(tmp_path)
    found = 0
    for i in range(50):
        got = cache.get(_workers.key_of(i), _workers.ROWS)
        if got is not None:
            found += 1
            np.testing.assert_array_equal(got, _workers.value_of(i))
    assert found >= 8


def test_concurrent_writers_and_a_reader_on_one_key(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_workers.fill_same_key, args=(str(tmp_path), 15)) for _ in range(2)]
    procs.append(ctx.Process(target=_workers.read_same_key, args=(str(tmp_path), 60, queue)))
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    hits, wrong = queue.get(timeout=10)
    assert wrong == 0
    np.testing.assert_array_equal(EmbeddingCache(tmp_path).get(_workers.key_of(1), _workers.ROWS), _workers.value_of(1))


@pytest.fixture(scope="module")
def gallery_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("cachegal") / "g"
    gallery = [{"image": png_bytes(10 * i + j, size=32), "identity": f"id{i}", "group": "g"} for i in range(3) for j in range(4)]
    reference = [{"image": png_bytes(200 + i, size=32), "identity": f"id{i}", "group": "g"} for i in range(3)]
    return write_gallery(folder, {"gallery": gallery, "reference": reference})


def test_two_evaluations_filling_one_cache_at_once(gallery_dir: Path, tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_workers.evaluate_demo, args=(str(gallery_dir), str(tmp_path), queue)) for _ in range(2)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=240) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert results[0] == results[1]
    report = fp_rank.evaluate(
        [png_bytes(700 + i, size=32) for i in range(6)], ["id0", "id1", "id2"] * 2, gallery=str(gallery_dir),
        encoder="fp-rank-demo", cache=tmp_path, progress=False,
    )
    assert report.metadata["cache"]["gallery_images_encoded"] == 0
    assert [q["ap"] for q in report.queries] == results[0]


def _evaluate(gallery: fp_rank.Gallery, cache_dir: Path, encoder: object = "fp-rank-demo") -> fp_rank.Report:
    return fp_rank.evaluate(
        [png_bytes(700 + i, size=32) for i in range(6)], ["id0", "id1", "id2"] * 2, gallery=gallery,
        encoder=encoder, cache=cache_dir, progress=False, ceilings=False,
    )


def _data_offset(data: bytes) -> int:
    return 8 + int.from_bytes(data[:8], "little")


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _flip_tensor_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[_data_offset(bytes(data)) + 5] ^= 0x40
    path.write_bytes(bytes(data))


def _garbage(path: Path) -> None:
    path.write_bytes(os.urandom(path.stat().st_size))


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _header_key(path: Path) -> None:
    """Valid file and checksum, but the metadata claims another key (e.g. a file copied over)."""
    data = path.read_bytes()
    header = json.loads(data[8 : _data_offset(data)])
    header["__metadata__"]["key"] = "0" * 64
    raw = json.dumps(header).encode()
    path.write_bytes(len(raw).to_bytes(8, "little") + raw + data[_data_offset(data) :])


@pytest.mark.parametrize("damage", [_truncate, _flip_tensor_byte, _garbage, _empty, _header_key])
def test_damaged_entries_are_detected_and_recomputed(
    gallery_dir: Path, tmp_path: Path, damage: object, caplog: pytest.LogCaptureFixture
) -> None:
    gallery = fp_rank.load_gallery(str(gallery_dir), progress=False)
    clean = _evaluate(gallery, tmp_path)
    entries = sorted((tmp_path / "embeddings").rglob("*.safetensors"))
    assert len(entries) == 3  # gallery, reference and one chunk of generated images
    for entry in entries:
        damage(entry)  # type: ignore[operator]
    with caplog.at_level(logging.WARNING, logger="fp_rank.caching.store"):
        again = _evaluate(gallery, tmp_path)
    assert "ignoring a bad cache entry" in caplog.text
    assert again.metadata["cache"]["gallery_images_encoded"] == len(gallery.gallery) + len(gallery.reference)
    assert [q["ap"] for q in again.queries] == [q["ap"] for q in clean.queries]
    assert [r.to_dict() for r in again.results] == [r.to_dict() for r in clean.results]
    third = _evaluate(gallery, tmp_path)  # the recomputed entries were written back, valid
    assert third.metadata["cache"]["gallery_images_encoded"] == 0


def test_a_failed_cache_write_does_not_lose_the_run(
    gallery_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    gallery = fp_rank.load_gallery(str(gallery_dir), progress=False)
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the cache folder should be")
    with caplog.at_level(logging.WARNING, logger="fp_rank.caching.store"):
        report = _evaluate(gallery, blocked)
    assert "continuing without it" in caplog.text
    assert [q["ap"] for q in report.queries] == [q["ap"] for q in _evaluate(gallery, tmp_path / "ok").queries]


def test_cache_key_covers_everything_that_changes_the_vectors() -> None:
    identity = {"model_id": "m", "revision": "r1", "pooling": "cls", "preprocessing": {"size": 224}, "dtype": "float32"}
    content = content_fingerprint(["a" * 64, "b" * 64])
    base = cache_key(identity, content)
    assert cache_key(dict(identity), content) == base
    for field, value in [
        ("model_id", "m2"), ("revision", "r2"), ("revision", None), ("pooling", "mean"),
        ("preprocessing", {"size": 256}), ("dtype", "bfloat16"),
    ]:
        assert cache_key({**identity, field: value}, content) != base, field
    assert cache_key(identity, content_fingerprint(["b" * 64, "a" * 64])) != base  # order matters
    assert cache_key(identity, content, protocol_version="0.9") != base
    # the image decoding rule is part of the key too
    import fp_rank.images.decode as images

    original = images.DECODE_RULE_VERSION
    try:
        images.DECODE_RULE_VERSION = original + "-changed"
        assert cache_key(identity, content) != base
    finally:
        images.DECODE_RULE_VERSION = original


def test_changed_weights_or_preprocessing_never_reuse_old_vectors(tiny_dinov2_dir: Path, tmp_path: Path) -> None:
    weights = tmp_path / "weights"
    shutil.copytree(tiny_dinov2_dir, weights)
    from safetensors.numpy import load_file, save_file

    tensors = load_file(weights / "model.safetensors")
    first = sorted(tensors)[0]
    tensors[first] = tensors[first] + np.float32(0.01)
    save_file(tensors, weights / "model.safetensors", metadata={"format": "pt"})
    prep = tmp_path / "prep"
    shutil.copytree(tiny_dinov2_dir, prep)
    config = json.loads((prep / "preprocessor_config.json").read_text())
    config["crop_size"] = {"height": 42, "width": 42}
    (prep / "preprocessor_config.json").write_text(json.dumps(config))

    content = content_fingerprint(["c" * 64])
    encoders = {name: fp_rank.load_encoder(str(path)) for name, path in
                [("base", tiny_dinov2_dir), ("weights", weights), ("prep", prep)]}
    keys = {name: cache_key(enc.identity(), content) for name, enc in encoders.items()}
    assert len(set(keys.values())) == 3
    assert encoders["weights"].revision != encoders["base"].revision
    assert encoders["prep"].preprocessing != encoders["base"].preprocessing


def test_a_new_encoder_revision_recomputes_the_gallery(gallery_dir: Path, tmp_path: Path) -> None:
    gallery = fp_rank.load_gallery(str(gallery_dir), progress=False)

    def model(images: list) -> np.ndarray:
        return np.stack([np.asarray(img.resize((4, 4)), dtype=np.float32).ravel() + 1.0 for img in images])

    v1 = _evaluate(gallery, tmp_path, fp_rank.load_encoder(model, revision="v1", name="m"))
    again = _evaluate(gallery, tmp_path, fp_rank.load_encoder(model, revision="v1", name="m"))
    v2 = _evaluate(gallery, tmp_path, fp_rank.load_encoder(model, revision="v2", name="m"))
    unversioned = _evaluate(gallery, tmp_path, fp_rank.load_encoder(model, name="m"))
    n = len(gallery.gallery) + len(gallery.reference)
    assert v1.metadata["cache"]["gallery_images_encoded"] == n
    assert again.metadata["cache"]["gallery_images_encoded"] == 0
    assert v2.metadata["cache"]["gallery_images_encoded"] == n
    assert unversioned.metadata["cache"]["gallery_images_encoded"] == n  # callables without a version: never cached
    assert EmbeddingCache(tmp_path).info()["entries"] == 6  # per version: gallery, reference, generated chunk
