"""Reliability round 2, cache, CLI and runs.

Classes: a cache entry that is not a regular file (a FIFO) is a miss and never opened; the demo
works with an unwritable cache or HF_HOME and when two first runs race; manifests with a UTF-8
BOM work and non-UTF-8 ones are one line and exit 2; an absent CUDA device is one line and exit
2 before any work, for every encoder including the demo's.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

import fp_rank
from fp_rank.caching.store import EmbeddingCache
from fp_rank.cli import main
from fp_rank.demo import run as demo_run
from fp_rank.errors import InputError

NO_CUDA = not torch.cuda.is_available()


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory, demo_generated: list[dict]) -> list[tuple[str, str]]:
    """A few generated images on disk: (path, identity)."""
    root = tmp_path_factory.mktemp("gen")
    out = []
    for k, rec in enumerate(r for r in demo_generated if r["method"] == "faithful" and r["identity"].startswith("finch_")):
        if k >= 6:
            break
        path = root / f"{k}.png"
        rec["image"].save(path)
        out.append((str(path), rec["identity"]))
    return out


# -- cache -------------------------------------------------------------------------------------------
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_cache_entry_is_a_miss_and_never_opened(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path)
    key = "ab" + "0" * 62
    path = cache.path_for(key)
    path.parent.mkdir(parents=True)
    os.mkfifo(path)
    result: list[object] = []
    worker = threading.Thread(target=lambda: result.append(cache.get(key, 3)), daemon=True)
    worker.start()
    worker.join(5)
    assert not worker.is_alive(), "reading a FIFO cache entry hung"
    assert result == [None]
    cache.put(key, np.eye(3, dtype=np.float32))  # a write replaces it with a real entry
    assert np.array_equal(cache.get(key, 3), np.eye(3, dtype=np.float32))


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_evaluate_does_not_hang_on_fifo_entries(tmp_path, demo_gallery_dir, small_run) -> None:
    paths, labels = zip(*small_run)
    clean = fp_rank.evaluate(list(paths), list(labels), gallery=str(demo_gallery_dir), encoder="fp-rank-demo",
                             cache=tmp_path, progress=False, ceilings=False)
    entries = list((tmp_path / "embeddings").rglob("*.safetensors"))
    assert entries
    for entry in entries:
        entry.unlink()
        os.mkfifo(entry)
    again = fp_rank.evaluate(list(paths), list(labels), gallery=str(demo_gallery_dir), encoder="fp-rank-demo",
                             cache=tmp_path, progress=False, ceilings=False)
    assert [r.map for r in again.results] == [r.map for r in clean.results]


# -- the demo ----------------------------------------------------------------------------------------
def test_demo_gallery_falls_back_when_the_cache_cannot_be_written(tmp_path, monkeypatch, caplog) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setattr(demo_run.tempfile, "gettempdir", lambda: str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    folder = demo_run.demo_gallery(directory=blocker / "demo")
    assert (folder / "README.md").exists() and str(folder).startswith(str(tmp_path / "tmp"))
    assert "building it in" in caplog.text


def test_demo_loads_with_an_unwritable_datasets_cache(tmp_path, monkeypatch, caplog) -> None:
    import datasets

    gallery = demo_run.demo_gallery(directory=tmp_path / "demo")
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", blocker / "datasets")
    gal = fp_rank.load_gallery(gallery, progress=False)
    assert len(gal.gallery) > 0 and "cannot be written" in caplog.text


def test_two_first_demo_runs_at_once_both_succeed(tmp_path: Path) -> None:
    results: list[object] = []

    def build() -> None:
        try:
            results.append(demo_run.demo_gallery(directory=tmp_path / "demo"))
        except Exception as exc:  # noqa: BLE001 - recorded for the assertion
            results.append(exc)

    threads = [threading.Thread(target=build) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(results) == 2 and all(isinstance(r, Path) for r in results), results
    assert results[0] == results[1] and (results[0] / "README.md").exists()  # type: ignore[operator]


def test_demo_build_losing_the_race_uses_the_winner(tmp_path, monkeypatch) -> None:
    from fp_rank.errors import BuilderError

    out_root = tmp_path / "demo"
    real_build = demo_run.demo_source.build

    def racing_build(out, **kwargs):
        real_build(out, **kwargs)  # the "other process" finishes first
        raise BuilderError(f"output folder {out} already exists; choose another --out or pass --overwrite")

    monkeypatch.setattr(demo_run.demo_source, "build", racing_build)
    assert (demo_run.demo_gallery(directory=out_root) / "README.md").exists()


# -- manifests -----------------------------------------------------------------------------------------
def test_manifest_with_a_bom_is_read(tmp_path, demo_gallery_dir, small_run, capsys) -> None:
    manifest = tmp_path / "m.csv"
    lines = "file,identity\n" + "".join(f"{p},{i}\n" for p, i in small_run)
    manifest.write_bytes(b"\xef\xbb\xbf" + lines.encode())
    code = main(["evaluate", "--gallery", str(demo_gallery_dir), "--generated", str(manifest), "--encoder",
                 "fp-rank-demo", "--bootstrap", "0", "--no-progress", "--no-ceilings"])
    assert code == 0 and "generated" in capsys.readouterr().out


def test_non_utf8_manifest_is_one_line_and_exit_2(tmp_path, demo_gallery_dir, small_run, capsys) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_bytes("file,identity\n".encode() + "".join(f"{p},{i}é\n" for p, i in small_run).encode("latin-1"))
    code = main(["evaluate", "--gallery", str(demo_gallery_dir), "--generated", str(manifest), "--encoder",
                 "fp-rank-demo", "--bootstrap", "0", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "is not UTF-8 text" in err and len(err.strip().splitlines()) == 1


# -- devices -------------------------------------------------------------------------------------------
@pytest.mark.skipif(not NO_CUDA, reason="this machine has CUDA")
def test_absent_cuda_is_one_line_exit_2_before_any_work(tmp_path, small_run, capsys) -> None:
    code = main(["evaluate", "--gallery", str(tmp_path / "no-such-gallery"), "--generated", str(tmp_path / "none"),
                 "--device", "cuda", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "CUDA is not available" in err and "--device cpu" in err  # the device, not the gallery, is named


@pytest.mark.skipif(not NO_CUDA, reason="this machine has CUDA")
def test_absent_cuda_is_refused_by_every_encoder_and_by_evaluate(demo_gallery_dir, small_run) -> None:
    for spec in ("fp-rank-demo", lambda images: np.ones((len(images), 4))):
        with pytest.raises(InputError, match="CUDA is not available"):
            fp_rank.load_encoder(spec, device="cuda")
    paths, labels = zip(*small_run)
    with pytest.raises(InputError, match="CUDA is not available"):
        fp_rank.evaluate(list(paths), list(labels), gallery=str(demo_gallery_dir / "missing"), encoder="fp-rank-demo",
                         device="cuda:0", progress=False)


def test_device_strings_are_checked() -> None:
    from fp_rank.encoding.options import check_device

    assert check_device(None) is None and check_device("cpu") == "cpu"
    for bad in ("gpu", "cuda:x", 3):
        with pytest.raises(InputError, match="device"):
            check_device(bad)  # type: ignore[arg-type]
    if torch.cuda.is_available():
        with pytest.raises(InputError, match="CUDA device"):
            check_device(f"cuda:{torch.cuda.device_count()}")
