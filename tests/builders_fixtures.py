"""Tiny fake sources in the real on-disk layouts of CUB-200-2011, Stanford Cars, WildlifeReID-10k.

Every image is a 16x16 JPEG of random pixels, so every file has its own SHA-256.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import csv  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
from collections.abc import Iterator, Sequence  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import yaml  # noqa: E402
from PIL import Image  # noqa: E402


@pytest.fixture(autouse=True)
def private_datasets_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the ``datasets`` cache at a private folder so tests never touch the user's cache.

    Import it into a test module (``from tests.builders_fixtures import private_datasets_cache``)
    to make it apply there.
    """
    import datasets

    folder = tmp_path_factory.mktemp("hf_datasets_cache")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", folder)
    return folder


def card_of(folder: Path) -> dict[str, Any]:
    """The YAML front matter of a gallery folder's README.md."""
    text = (folder / "README.md").read_text(encoding="utf-8")
    _, front, _ = text.split("---\n", 2)
    return yaml.safe_load(front)


def split_rows(folder: Path, group: str, split: str) -> list[dict[str, Any]]:
    """The rows of one shard without the image bytes (read with pyarrow)."""
    import pyarrow.parquet as pq

    path = folder / "data" / group / f"{split}-00000-of-00001.parquet"
    if not path.exists():
        return []
    table = pq.read_table(path)
    return [{k: v for k, v in row.items() if k != "image"} for row in table.to_pylist()]


def all_rows(folder: Path) -> dict[str, list[dict[str, Any]]]:
    """Rows of every group, per split."""
    card = card_of(folder)
    out: dict[str, list[dict[str, Any]]] = {"gallery": [], "reference": [], "holdout": []}
    for group in card["fp_rank"]["groups"]:
        for split in out:
            out[split] += split_rows(folder, group, split)
    return out


def tree_bytes(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` by relative path."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def manifest_of(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (folder / "manifest.jsonl").read_text().splitlines()]

CUB_NAMES = {
    1: "Black_footed_Albatross",
    113: "Baird_Sparrow",
    114: "Black_throated_Sparrow",
    115: "Brewer_Sparrow",
    116: "Chipping_Sparrow",
    117: "Clay_colored_Sparrow",
    118: "House_Sparrow",
    143: "Caspian_Tern",
    144: "Common_Tern",
    145: "Elegant_Tern",
    146: "Forsters_Tern",
    147: "Least_Tern",
    193: "Bewick_Wren",
    194: "Cactus_Wren",
    195: "Carolina_Wren",
    196: "House_Wren",
    197: "Marsh_Wren",
}
CUB_GROUP_IDS = {
    "wren": (193, 194, 195, 196, 197),
    "tern": (143, 144, 145, 146, 147),
    "sparrow": (113, 114, 115, 116, 117),
}
CARS_IDS = (1, 2, 3, 4, 6, 11, 12, 13, 18, 19, 25, 27, 28, 33, 34)
CARS_CLASS_NAMES = [f"Make{i // 10} Model {i} Sedan 2012" for i in range(196)]
CARS_CLASS_NAMES[1] = "Acura Integra Type R 2001"
CARS_CLASS_NAMES[2] = "Acura RL Sedan 2012"
CARS_CLASS_NAMES[3] = "Ram C/V Cargo Van Minivan 2012"


def jpeg_stream(seed: int) -> Iterator[bytes]:
    """Endless distinct tiny JPEGs."""
    rng = np.random.default_rng(seed)
    while True:
        pixels = rng.integers(0, 256, size=(16, 16, 3), dtype=np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
        yield buffer.getvalue()


def cub_per_class_count(class_id: int) -> int:
    """Images per CUB class in the fake: 21 to 24, varying, so draws depend on counts."""
    return 21 + class_id % 4


def make_cub(root: Path, *, seed: int = 0) -> Path:
    """Write a CUB_200_2011/ folder with the 15 group classes plus two distractor classes."""
    base = root / "CUB_200_2011"
    (base / "images").mkdir(parents=True)
    images = jpeg_stream(seed)
    image_lines, label_lines, split_lines = [], [], []
    image_id = 0
    for class_id in sorted(CUB_NAMES):
        folder = f"{class_id:03d}.{CUB_NAMES[class_id]}"
        (base / "images" / folder).mkdir()
        for k in range(cub_per_class_count(class_id)):
            image_id += 1
            name = f"{CUB_NAMES[class_id]}_{k:04d}_{1000 + image_id}.jpg"
            (base / "images" / folder / name).write_bytes(next(images))
            image_lines.append(f"{image_id} {folder}/{name}")
            label_lines.append(f"{image_id} {class_id}")
            split_lines.append(f"{image_id} {image_id % 2}")
    (base / "images.txt").write_text("\n".join(image_lines) + "\n")
    (base / "image_class_labels.txt").write_text("\n".join(label_lines) + "\n")
    (base / "train_test_split.txt").write_text("\n".join(split_lines) + "\n")
    (base / "classes.txt").write_text(
        "".join(f"{c} {c:03d}.{CUB_NAMES[c]}\n" for c in sorted(CUB_NAMES))
    )
    return base


def cars_rows(*, per_class: int = 22, seed: int = 1) -> list[tuple[int, bytes]]:
    """Test-split rows (0-based label, JPEG bytes) in a fixed interleaved order."""
    images = jpeg_stream(seed)
    labels = [label for label in CARS_IDS + (0, 5, 7) for _ in range(per_class)]
    order = np.random.default_rng(seed).permutation(len(labels))
    return [(labels[i], next(images)) for i in order]


def make_cars_hub(root: Path, rows: Sequence[tuple[int, bytes]], *, class_names: bool = True) -> Path:
    """Write a folder shaped like a snapshot of the Hub copy: data/*.parquet plus README.md."""
    from datasets import ClassLabel, Dataset, Features, Value
    from datasets import Image as ImageFeature

    label_feature = ClassLabel(names=CARS_CLASS_NAMES) if class_names else Value("int64")
    features = Features({"image": ImageFeature(), "label": label_feature})
    root.mkdir(parents=True)
    (root / "data").mkdir()
    test = Dataset.from_dict(
        {
            "image": [{"bytes": data, "path": f"{n:05d}.jpg"} for n, (_, data) in enumerate(rows, start=1)],
            "label": [label for label, _ in rows],
        },
        features=features,
    )
    test.to_parquet(str(root / "data" / "test-00000-of-00001.parquet"))
    train = Dataset.from_dict(
        {"image": [{"bytes": rows[0][1], "path": "t.jpg"}], "label": [rows[0][0]]}, features=features
    )
    train.to_parquet(str(root / "data" / "train-00000-of-00001.parquet"))
    (root / "README.md").write_text("---\nlicense: other\n---\n# Stanford Cars (fake)\n")
    return root


def make_cars_devkit(root: Path, rows: Sequence[tuple[int, bytes]]) -> Path:
    """Write the original devkit layout: cars_test/*.jpg, devkit/cars_meta.mat, annotations .mat."""
    from scipy.io import savemat

    (root / "cars_test").mkdir(parents=True)
    (root / "devkit").mkdir()
    records = np.zeros(
        (1, len(rows)),
        dtype=[(f, object) for f in ("bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2", "class", "fname")],
    )
    for n, (label, data) in enumerate(rows, start=1):
        name = f"{n:05d}.jpg"
        (root / "cars_test" / name).write_bytes(data)
        records[0, n - 1] = (np.uint8(1), np.uint8(2), np.uint8(15), np.uint8(14), np.uint8(label + 1), name)
    names = np.empty((1, len(CARS_CLASS_NAMES)), dtype=object)
    for i, name in enumerate(CARS_CLASS_NAMES):
        names[0, i] = name
    savemat(root / "devkit" / "cars_meta.mat", {"class_names": names})
    savemat(root / "cars_test_annos_withlabels.mat", {"annotations": records})
    return root


def wildlife_individuals() -> list[tuple[str, str, str, int]]:
    """(identity, species, dataset, image count) of the fake WildlifeReID-10k."""
    turtles = [(f"SeaTurtleID_t{k:02d}", "sea turtle", "SeaTurtleID2022", n)
               for k, n in enumerate([9, 10, 12, 14, 15, 15, 18, 22, 30, 11, 9, 16, 8, 5])]
    zebras = [(f"StripeSpotter_z{k:02d}", "zebra", "StripeSpotter", n) for k, n in enumerate([9, 13, 20])]
    extra = [("Cows_c00", "cow", "Cows2021", 12)]
    return turtles + zebras + extra


def make_wildlife(root: Path, *, seed: int = 2) -> Path:
    """Write wildlifereid-10k/: metadata.csv plus images/<dataset>/<identity>/<n>.jpg."""
    images = jpeg_stream(seed)
    root.mkdir(parents=True)
    entries = []
    for identity, species, dataset, count in wildlife_individuals():
        for k in range(count):
            entries.append((identity, species, dataset, f"images/{dataset}/{identity}/{k:03d}.jpg",
                            ["left", "right", ""][k % 3]))
    # Interleave individuals, like a metadata file sorted by something else than identity.
    order = np.random.default_rng(seed).permutation(len(entries))
    with (root / "metadata.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image_id", "identity", "path", "species", "dataset", "orientation", "date"])
        for n, i in enumerate(order):
            identity, species, dataset, path, orientation = entries[i]
            target = root / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(next(images))
            writer.writerow([n, identity, path, species, dataset, orientation, ""])
    return root
