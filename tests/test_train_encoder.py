"""``fp-rank train-encoder`` on tiny data: a tiny transformers backbone, an ImageFolder and a datasets folder."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import fp_rank
from fp_rank.cli import main
from fp_rank.errors import InputError
from fp_rank.training import train_encoder
from tests.gallery_fixtures import write_gallery
from tests.model_fixtures import make_tiny_dinov2

ROOT = Path(__file__).resolve().parents[1]
COLOURS = ((200, 30, 30), (30, 200, 30), (30, 30, 200))


@pytest.fixture(scope="module")
def backbone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_dinov2(tmp_path_factory.mktemp("backbone") / "dinov2")


def image_folder(root: Path, per_class: int = 10, size: int = 20) -> Path:
    rng = np.random.default_rng(0)
    for c, colour in enumerate(COLOURS):
        (root / f"class{c}").mkdir(parents=True, exist_ok=True)
        for k in range(per_class):
            pixels = np.clip(np.array(colour) + rng.normal(0, 40, (size, size, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / f"class{c}" / f"{k:02d}.png")
    return root


def _train(data: Path, out: Path, backbone: Path, **kwargs) -> dict:
    settings = {"epochs": 4, "batch_size": 8, "image_size": 28, "lr": 1e-3, "seed": 0, "progress": False, "device": "cpu"}
    return train_encoder(data, out, backbone=str(backbone), **{**settings, **kwargs})


def test_loss_decreases_and_the_saved_encoder_gives_the_trained_features(tmp_path: Path, backbone: Path) -> None:
    data = image_folder(tmp_path / "data")
    trained = _train(data, tmp_path / "enc", backbone)
    record = trained.record
    losses = [h["loss"] for h in record["history"]]
    assert losses[-1] < losses[0] * 0.7 and len(losses) == 4
    assert record["data"]["train_images"] == 27 and record["data"]["held_out_images"] == 3  # 10% of each class
    card = (tmp_path / "enc" / "README.md").read_text()
    assert "held-out accuracy" in card and "seed 0" in card and "no benchmark gallery was excluded" in card
    # the features of the trained network equal the reloaded encoder's (L2-normalised by the encoder)
    images = [p.read_bytes() for p in sorted((data / "class1").iterdir())[:4]]
    trained = trained.embed(images)
    encoder = fp_rank.load_encoder(str(tmp_path / "enc"), device="cpu")
    reloaded = encoder.encode(images, progress=False).embeddings
    assert np.array_equal(reloaded, (trained / np.linalg.norm(trained, axis=1, keepdims=True)).astype(reloaded.dtype))
    assert encoder.pooling == "cls"


def _training_process(data: Path, out: Path, backbone: Path) -> subprocess.Popen:
    """One training run in its own process (one thread: the runs compared must sum in the same order)."""
    script = (f"import sys; sys.path.insert(0, {str(ROOT)!r})\n"
              "from fp_rank.training import train_encoder\n"
              f"train_encoder({str(data)!r}, {str(out)!r}, backbone={str(backbone)!r}, epochs=6, batch_size=4, "
              "image_size=56, lr=1e-3, seed=0, progress=False, device='cpu')\n")
    return subprocess.Popen([sys.executable, "-c", script], env={**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})


def test_resume_after_a_kill_gives_the_weights_of_an_uninterrupted_run(tmp_path: Path, backbone: Path) -> None:
    data = image_folder(tmp_path / "data", per_class=20, size=40)
    assert _training_process(data, tmp_path / "whole", backbone).wait() == 0
    proc = _training_process(data, tmp_path / "killed", backbone)
    state = tmp_path / "killed" / "checkpoint" / "state.json"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (state.exists() and json.loads(state.read_text())["epoch"] >= 2):
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    stopped_at = json.loads(state.read_text())["epoch"]
    assert 2 <= stopped_at < 6
    assert _training_process(data, tmp_path / "killed", backbone).wait() == 0  # started again: resumes
    record = json.loads((tmp_path / "killed" / "fp_rank_training.json").read_text())
    assert [h["epoch"] for h in record["history"]] == list(range(1, 7))
    from safetensors.torch import load_file

    for name in ("model.safetensors", "head.safetensors"):
        a, b = load_file(str(tmp_path / "whole" / name)), load_file(str(tmp_path / "killed" / name))
        assert a.keys() == b.keys() and all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in a), name
    with pytest.raises(InputError, match="checkpoint of another recipe"):
        _train(data, tmp_path / "killed", backbone, epochs=6, batch_size=4, image_size=56, lr=2e-3)


def test_excluded_gallery_images_are_absent_and_counted(tmp_path: Path, backbone: Path) -> None:
    data = image_folder(tmp_path / "data")
    shared = [(data / "class0" / "00.png").read_bytes(), (data / "class2" / "05.png").read_bytes()]
    from tests.gallery_fixtures import png_bytes

    gallery_rows = [{"image": b, "identity": "id0", "group": "g"} for b in shared]
    gallery_rows += [{"image": png_bytes(k), "identity": "id1", "group": "g"} for k in (1, 2)]
    reference_rows = [{"image": (data / "class1" / "03.png").read_bytes(), "identity": "id0", "group": "g"},
                      {"image": png_bytes(3), "identity": "id1", "group": "g"}]
    gallery = write_gallery(tmp_path / "gallery", {"gallery": gallery_rows, "reference": reference_rows})
    record = _train(data, tmp_path / "enc", backbone, epochs=1, exclude_gallery=str(gallery)).record
    excluded = record["data"]["excluded"]
    assert excluded["train_images_removed"] + excluded["held_out_images_removed"] == 3
    assert record["data"]["train_images"] + record["data"]["held_out_images"] == 27
    from fp_rank.training.data import load_training_data

    left = load_training_data(data, exclude_gallery=str(gallery), progress=False)
    assert not set(shared) & set(left.train.images) and not set(shared) & set(left.held_out.images)
    assert "removed by sha256" in (tmp_path / "enc" / "README.md").read_text()


def test_a_datasets_folder_with_a_test_split_and_the_cli_end_to_end(tmp_path: Path, backbone: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    import datasets

    folder = image_folder(tmp_path / "images", per_class=6)
    def split(indices: range) -> datasets.Dataset:
        images = [{"bytes": (folder / f"class{c}" / f"{k:02d}.png").read_bytes(), "path": None} for c in range(3) for k in indices]
        labels = [c for c in range(3) for _ in indices]
        features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=["a", "b", "c"])})
        return datasets.Dataset.from_dict({"image": images, "label": labels}, features=features)

    (tmp_path / "hub" / "data").mkdir(parents=True)
    split(range(4)).to_parquet(str(tmp_path / "hub" / "data" / "train-00000-of-00001.parquet"))
    split(range(4, 6)).to_parquet(str(tmp_path / "hub" / "data" / "test-00000-of-00001.parquet"))
    out = tmp_path / "enc"
    code = main(["train-encoder", "--data", str(tmp_path / "hub"), "--out", str(out), "--backbone", str(backbone),
                 "--epochs", "2", "--batch-size", "6", "--image-size", "28", "--lr", "1e-3", "--no-progress", "--device", "cpu"])
    printed = capsys.readouterr().out
    assert code == 0 and "on 12 images of 3 classes" in printed and "(6 images, the source's test split)" in printed
    # scored end to end: the trained encoder as --encoder
    rows = [{"image": (folder / f"class{c}" / f"{k:02d}.png").read_bytes(), "identity": f"id{c}", "group": "g"}
            for c in range(3) for k in range(3)]
    gallery = write_gallery(tmp_path / "gallery", {"gallery": rows, "reference": rows[::3]})
    report = fp_rank.evaluate([(folder / "class0" / "05.png").read_bytes()], ["id0"], gallery=str(gallery),
                              encoder=str(out), progress=False, on_duplicate="allow", device="cpu")
    assert report.metadata["encoders"][0]["model_id"] == str(out) and 0 <= report.map <= 1


def test_bad_settings_and_sources_are_refused(tmp_path: Path, backbone: Path) -> None:
    with pytest.raises(InputError, match="epochs must be a positive integer"):
        _train(tmp_path, tmp_path / "o", backbone, epochs=0)
    (tmp_path / "one" / "only").mkdir(parents=True)
    Image.new("RGB", (4, 4)).save(tmp_path / "one" / "only" / "a.png")
    with pytest.raises(InputError, match="at least two class folders"):
        _train(tmp_path / "one", tmp_path / "o", backbone)
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "x.txt").write_text("mine")
    with pytest.raises(InputError, match="holds no training checkpoint"):
        _train(image_folder(tmp_path / "data"), tmp_path / "taken", backbone)
    try:
        import torchvision  # noqa: F401
    except Exception:
        with pytest.raises(InputError, match="torchvision, which does not import here"):
            train_encoder(tmp_path / "data", tmp_path / "tv", epochs=1, progress=False)


def test_two_processes_under_torchrun_train_what_one_process_trains(tmp_path: Path, backbone: Path) -> None:
    """Each process takes half of every batch and the gradients are averaged: the weights match one process's
    (up to the order of float sums)."""
    data = image_folder(tmp_path / "data", per_class=8)
    script = tmp_path / "train.py"
    script.write_text(
        f"import sys; sys.path.insert(0, {str(ROOT)!r})\n"
        "from fp_rank.training import train_encoder\n"
        f"train_encoder({str(data)!r}, sys.argv[1], backbone={str(backbone)!r}, epochs=2, batch_size=8, image_size=28, "
        "lr=1e-3, seed=0, progress=False, device='cpu')\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR")}
    env.update({"OMP_NUM_THREADS": "1"})
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          str(script), str(tmp_path / "two")], env=env, capture_output=True, text=True, timeout=300)
    assert two.returncode == 0, two.stdout[-2000:] + two.stderr[-2000:]
    one = subprocess.run([sys.executable, str(script), str(tmp_path / "one")], env=env, capture_output=True, text=True,
                         timeout=300)
    assert one.returncode == 0, one.stderr[-2000:]
    record = json.loads((tmp_path / "two" / "fp_rank_training.json").read_text())
    assert record["environment"]["processes"] == 2
    from safetensors.torch import load_file

    for name in ("model.safetensors", "head.safetensors"):
        a, b = load_file(str(tmp_path / "one" / name)), load_file(str(tmp_path / "two" / name))
        assert a.keys() == b.keys()
        assert all(np.allclose(a[k].numpy(), b[k].numpy(), rtol=1e-3, atol=1e-4) for k in a), name


def _parquet_source(root: Path, train: list[tuple[bytes, object]], test: list[tuple[bytes, object]],
                    names: list[str] | None) -> Path:
    import datasets

    for split, rows in (("train", train), ("test", test)):
        label = datasets.ClassLabel(names=names) if names else datasets.Value("string")
        features = datasets.Features({"image": datasets.Image(), "label": label})
        ds = datasets.Dataset.from_dict({"image": [{"bytes": b, "path": None} for b, _ in rows],
                                         "label": [v for _, v in rows]}, features=features)
        (root / "data").mkdir(parents=True, exist_ok=True)
        ds.to_parquet(str(root / "data" / f"{split}-00000-of-00001.parquet"))
    return root


def test_hostile_training_sources_are_refused_before_any_training(tmp_path: Path, backbone: Path) -> None:
    folder = image_folder(tmp_path / "images", per_class=4)
    png = [(folder / f"class{c}" / f"{k:02d}.png").read_bytes() for c in range(3) for k in range(4)]
    cases = {
        "label 'c', which is not one of the train split's 2 classes": ([(png[0], "a"), (png[4], "b")] * 2, [(png[8], "c")], None),
        "has label -1": ([(png[0], 0), (png[4], -1)], [(png[8], 0)], ["a", "b"]),
        "hold 1 class": ([(png[0], 0), (png[1], 0)], [(png[8], 0)], ["a", "b"]),
        "test row 0 cannot be decoded": ([(png[0], 0), (png[4], 1)], [(b"not an image", 0)], ["a", "b"]),
    }
    for n, (match, (train, test, names)) in enumerate(cases.items()):
        source = _parquet_source(tmp_path / f"source{n}", train, test, names)
        with pytest.raises(InputError, match=match):
            _train(source, tmp_path / f"out{n}", backbone, epochs=1)
        assert not (tmp_path / f"out{n}").exists()
    with pytest.raises(InputError, match="image_size must be at most 2048"):
        _train(folder, tmp_path / "big", backbone, image_size=100000)


def test_a_finished_run_can_be_extended_by_more_epochs(tmp_path: Path, backbone: Path) -> None:
    data = image_folder(tmp_path / "data", per_class=4)
    _train(data, tmp_path / "enc", backbone, epochs=1)
    record = _train(data, tmp_path / "enc", backbone, epochs=3).record
    assert [h["epoch"] for h in record["history"]] == [1, 2, 3]
