"""Training images for a specialist encoder: where they come from, their classes, and what is left out.

A source is a Hub dataset id (the reference recipe trains on ``Donghyun99/Stanford-Cars``), a
``datasets`` folder (Parquet or saved with ``save_to_disk``), or an ImageFolder
(``DIR/<class>/*.jpg``, or ``DIR/train/<class>/...`` beside ``DIR/test`` or ``DIR/val``). The
held-out split is the source's ``test`` (or ``validation``/``val``) split; without one, a seeded
10% of each class. With ``exclude_gallery``, every training image whose bytes are those of a
gallery, reference or holdout image of that benchmark gallery is removed (by sha256) and counted.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fp_rank.errors import InputError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
HELD_OUT_NAMES = ("test", "validation", "val")
#: Share of each class held out when the source has no held-out split.
HELD_OUT_SHARE = 0.1


@dataclass
class Split:
    """Images (encoded bytes), their class indices and where each came from (for messages)."""

    images: list[bytes]
    labels: np.ndarray
    names: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.images)


@dataclass
class TrainingData:
    """The training and held-out images, the class names, and what was left out."""

    train: Split
    held_out: Split
    classes: list[str]
    source: str
    held_out_rule: str
    excluded: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        return {"source": self.source, "classes": len(self.classes), "train_images": len(self.train),
                "held_out_images": len(self.held_out), "held_out_rule": self.held_out_rule, "excluded": self.excluded}


def load_training_data(source: str | os.PathLike[str], *, seed: int = 0, exclude_gallery: Any = None,
                       progress: bool = True) -> TrainingData:
    """Read ``source`` (see the module docstring) and leave out the benchmark gallery's images.

    Raises:
        InputError: an unreadable source, no labels, fewer than two classes, or an image of the
            excluded gallery still present after the exclusion.
    """
    text = os.fspath(source)
    if os.path.isdir(text) and _is_image_folder(Path(text)):
        splits, classes, rule = _image_folder(Path(text), seed)
    else:
        splits, classes, rule = _datasets_source(text, seed, progress)
    data = TrainingData(splits[0], splits[1], classes, text, rule)
    if exclude_gallery is not None:
        _exclude(data, exclude_gallery, progress)
    if len(data.train) == 0:
        raise InputError(f"training data {text!r}: no training image is left (after the exclusion)")
    present = sorted({int(v) for v in data.train.labels.tolist()})
    if len(present) < 2:
        raise InputError(f"training data {text!r}: its training images hold {len(present)} class(es); a classifier "
                         "needs at least two")
    _check_decodable(data, text)
    return data


def _check_decodable(data: TrainingData, source: str) -> None:
    """Refuse, before any training, an image that does not decode (named by its place in the source)."""
    from fp_rank.images.decode import decode_problem

    for name, split in (("training", data.train), ("held-out", data.held_out)):
        for k, image in enumerate(split.images):
            where = split.names[k] if split.names else f"{name} image {k}"
            problem = decode_problem(image, where)
            if problem is not None:
                raise InputError(f"training data {source!r}: {where} cannot be decoded ({problem}); remove or replace it")


def _is_image_folder(root: Path) -> bool:
    return not any(root.glob("*.parquet")) and not (root / "dataset_dict.json").exists() \
        and not (root / "dataset_info.json").exists() and not any(root.glob("data/*.parquet"))


def _class_folders(root: Path) -> dict[str, list[Path]]:
    out = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = sorted(f for f in folder.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
        if files:
            out[folder.name] = files
    return out


def _image_folder(root: Path, seed: int) -> tuple[tuple[Split, Split], list[str], str]:
    train_root = root / "train" if (root / "train").is_dir() else root
    held_root = next((root / n for n in HELD_OUT_NAMES if (root / n).is_dir() and train_root != root), None)
    train = _class_folders(train_root)
    if len(train) < 2:
        raise InputError(f"training data {str(root)!r}: an ImageFolder needs at least two class folders of images "
                         "(DIR/<class>/*.jpg, or DIR/train/<class>/... beside DIR/test)")
    classes = sorted(train)
    index = {c: k for k, c in enumerate(classes)}
    files = [(f, index[c]) for c in classes for f in train[c]]
    if held_root is not None:
        folders = _class_folders(held_root)
        held = [(f, index[c]) for c, fs in folders.items() if c in index for f in fs]
        unknown = sum(len(fs) for c, fs in folders.items() if c not in index)
        note = f" ({unknown} images of classes that train/ lacks left out)" if unknown else ""
        return (_read(files), _read(held)), classes, f"the {held_root.name}/ folder{note}"
    train_files, held_files = _hold_out(files, seed)
    return (_read(train_files), _read(held_files)), classes, f"a seeded {HELD_OUT_SHARE:.0%} of each class (seed {seed})"


def _hold_out(items: list[tuple[Any, int]], seed: int) -> tuple[list[tuple[Any, int]], list[tuple[Any, int]]]:
    rng = np.random.default_rng(seed)
    labels = np.asarray([label for _, label in items])
    held = set()
    for label in np.unique(labels):
        at = np.flatnonzero(labels == label)
        k = int(len(at) * HELD_OUT_SHARE)
        held.update(rng.choice(at, size=k, replace=False).tolist() if k else [])
    return [x for i, x in enumerate(items) if i not in held], [x for i, x in enumerate(items) if i in held]


def _read(items: list[tuple[Path, int]]) -> Split:
    from fp_rank.file_access import read_regular_raw

    images = []
    for path, _ in items:
        try:
            images.append(read_regular_raw(path))
        except OSError as exc:
            raise InputError(f"cannot read training image {str(path)!r}: {exc.strerror or exc}") from None
    return Split(images, np.asarray([label for _, label in items], dtype=np.int64), [str(path) for path, _ in items])


def _datasets_source(text: str, seed: int, progress: bool) -> tuple[tuple[Split, Split], list[str], str]:
    import datasets

    if not progress:
        datasets.disable_progress_bars()
    try:
        if os.path.isdir(text) and ((Path(text) / "dataset_dict.json").exists() or (Path(text) / "dataset_info.json").exists()):
            loaded = datasets.load_from_disk(text)
        else:
            loaded = datasets.load_dataset(text)
    except Exception as exc:  # datasets raises many kinds; the message names the source
        raise InputError(f"cannot load training data {text!r} with datasets: {exc}") from None
    if not isinstance(loaded, datasets.DatasetDict):
        loaded = datasets.DatasetDict({"train": loaded})
    if "train" not in loaded:
        raise InputError(f"training data {text!r} has no 'train' split (it has {sorted(loaded)})")
    train = loaded["train"]
    image_col = next((n for n, f in train.features.items() if isinstance(f, datasets.Image)), None)
    label_col = next((n for n in ("label", "labels", "class") if n in train.features), None)
    if image_col is None or label_col is None:
        raise InputError(f"training data {text!r}: its train split needs an Image column and a label column "
                         f"('label'); it has {list(train.features)}")
    feature = train.features[label_col]
    classes = list(feature.names) if isinstance(feature, datasets.ClassLabel) else \
        [str(v) for v in sorted(set(train[label_col]))]
    held_name = next((n for n in HELD_OUT_NAMES if n in loaded), None)

    index = {c: k for k, c in enumerate(classes)}

    def split(ds: Any, name: str) -> Split:
        ds = ds.cast_column(image_col, datasets.Image(decode=False))
        images, labels, names = [], [], []
        for k, row in enumerate(ds):
            data = row[image_col].get("bytes")
            if data is None and row[image_col].get("path"):
                data = Path(row[image_col]["path"]).read_bytes()
            value = row[label_col]
            label = int(value) if isinstance(feature, datasets.ClassLabel) else index.get(str(value), -1)
            if not 0 <= label < len(classes):
                raise InputError(f"training data {text!r}: {name} row {k} has label {value!r}, which is not one of the "
                                 f"train split's {len(classes)} classes; fix or drop the row")
            images.append(data)
            labels.append(label)
            names.append(f"{name} row {k}")
        return Split(images, np.asarray(labels, dtype=np.int64), names)

    if held_name is not None:
        return (split(train, "train"), split(loaded[held_name], held_name)), classes, f"the source's {held_name} split"
    whole = split(train, "train")
    items = list(zip(zip(whole.images, whole.names), whole.labels.tolist()))
    kept, held = _hold_out(items, seed)
    as_split = [Split([x for (x, _), _ in part], np.asarray([y for _, y in part], dtype=np.int64), [n for (_, n), _ in part])
                for part in (kept, held)]
    return (as_split[0], as_split[1]), classes, f"a seeded {HELD_OUT_SHARE:.0%} of each class (seed {seed})"


def _exclude(data: TrainingData, gallery: Any, progress: bool) -> None:
    """Remove every training and held-out image whose bytes are a benchmark gallery image's."""
    from fp_rank.galleries.load import Gallery, load_gallery

    gal = gallery if isinstance(gallery, Gallery) else load_gallery(gallery, "all", progress=progress)
    banned = {h for split in gal.splits.values() for h in split.hashes}
    removed = {}
    for name in ("train", "held_out"):
        split = getattr(data, name)
        digests = [hashlib.sha256(image).hexdigest() for image in split.images]
        keep = [i for i, d in enumerate(digests) if d not in banned]
        removed[name] = len(split) - len(keep)
        setattr(data, name, Split([split.images[i] for i in keep], split.labels[keep],
                                  [split.names[i] for i in keep] if split.names else []))
        left = [d for d in (hashlib.sha256(image).hexdigest() for image in getattr(data, name).images) if d in banned]
        if left:
            raise InputError(f"{len(left)} image(s) of gallery {gal.id!r} are still in the {name} images after the "
                             "exclusion; nothing was trained")
    data.excluded = {"gallery": gal.id, "gallery_fingerprint": gal.fingerprint, "rule": "sha256 of the image bytes",
                     "train_images_removed": removed["train"], "held_out_images_removed": removed["held_out"]}
