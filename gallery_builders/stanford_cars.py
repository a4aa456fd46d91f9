"""Stanford Cars gallery builder: one group ``car`` of 15 Acura, Audi and BMW models.

Reads either source the reference code could have used:

- the Hub copy ``Donghyun99/Stanford-Cars`` as downloaded (a folder ``datasets.load_dataset``
  reads: Parquet shards with ``image`` and 0-based ``label``, split ``test``; a
  ``save_to_disk`` folder of a ``DatasetDict`` also works);
- the original devkit layout: ``cars_test/*.jpg``, ``devkit/cars_meta.mat`` (``class_names``) and
  ``cars_test_annos_withlabels.mat`` (``annotations`` with ``fname`` and 1-based ``class``).

Gallery = the first 10 test images of each model in source order, reference = the next 10,
holdout = the rest; no randomness.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from fp_rank.errors import BuilderError
from fp_rank.galleries.build.sources import bytes_reader, file_reader, relative_source_path, require_file
from fp_rank.galleries.build.spec import Candidate, GallerySpec, GroupInfo, SourceInfo, safe_label
from fp_rank.galleries.build.writer import build_gallery
from fp_rank.galleries.schema import GALLERY_SPLIT, HOLDOUT_SPLIT, REFERENCE_SPLIT
from gallery_builders._benchmark import CAR_PROMPT_NOTES, CAR_PROMPTS, recommended_encoders
from gallery_builders.registry import BuilderCommand

#: The 15 models of the group, as 0-based labels of the Hub copy (devkit class ids minus 1).
MODEL_LABELS: tuple[int, ...] = (1, 2, 3, 4, 6, 11, 12, 13, 18, 19, 25, 27, 28, 33, 34)
GROUP = "car"
GALLERY_PER_MODEL = 10
REFERENCE_PER_MODEL = 10
HUB_SPLIT = "test"
ANNOTATION_FILES = ("cars_test_annos_withlabels.mat", "cars_test_annoswithlabels.mat")

Layout = Literal["hub", "devkit"]

SELECTION = "\n".join(
    [
        (
            "Group 'car' = the Stanford Cars models with 0-based labels 1, 2, 3, 4, 6 (Acura), 11, "
            "12, 13, 18, 19 (Audi) and 25, 27, 28, 33, 34 (BMW), as in the Hub copy "
            "Donghyun99/Stanford-Cars used by the reference code; devkit class ids are 1-based and "
            "mapped by subtracting 1 (this assumes the Hub copy keeps the devkit's class order, which"
            " the class names in the card let you check). Only the test split is used."
        ),
        (
            "For each model, its test images are taken in source order (Hub copy: row order of the "
            "test split; devkit: order of cars_test_annos_withlabels.mat): the first "
            f"{GALLERY_PER_MODEL} are the gallery, the next {REFERENCE_PER_MODEL} the reference, the "
            "rest the holdout. There is no randomness; the seed is unused."
        ),
        (
            "Unreadable files (with --skip-corrupt) and byte-identical copies of an earlier image in "
            "source order are removed before the split is taken; both are listed below. source_path "
            "is 'cars_test/<file>' for the devkit and 'test/<row>' (0-based row of the test split) "
            "for the Hub copy."
        ),
    ]
)

_HOMEPAGE = "https://ai.stanford.edu/~jkrause/cars/car_dataset.html"
_LICENSE = (
    "The Stanford Cars images were collected from the web and remain the property of their "
    "owners; the authors distribute them for non-commercial research and educational use only. "
    "Check these terms before redistributing the images."
)
_CITATION = """@inproceedings{KrauseStarkDengFeiFei_3DRR2013,
  title     = {3D Object Representations for Fine-Grained Categorization},
  author    = {Krause, Jonathan and Stark, Michael and Deng, Jia and Fei-Fei, Li},
  booktitle = {4th International IEEE Workshop on 3D Representation and Recognition (3dRR-13)},
  address   = {Sydney, Australia},
  year      = {2013}
}"""
_DOWNLOAD = (
    "the Hub copy https://huggingface.co/datasets/Donghyun99/Stanford-Cars (what the reference "
    "code loaded), or the original devkit files (cars_test.tgz, car_devkit.tgz and "
    "cars_test_annos_withlabels.mat; the Stanford page is offline, copies are on Kaggle)"
)
_LAYOUTS = {
    "hub": "Hub copy folder read with datasets.load_dataset: split 'test', columns image and "
    "label (0-based)",
    "devkit": "original devkit: cars_test/*.jpg, devkit/cars_meta.mat (class_names), "
    "cars_test_annos_withlabels.mat (annotations: fname, class 1-based, bbox)",
}

LIMITATIONS = (
    "One group of fifteen models from three makes (Acura, Audi, BMW), ten gallery images each; "
    "most photos are web images of clean, well-framed cars, model years up to 2012. The "
    "reference code's specialist car encoder was never released, so the specialist column of "
    "the original study cannot be reproduced with this gallery alone."
)


def build(
    source: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    skip_corrupt: bool = False,
    progress: bool = True,
    overwrite: bool = False,
    variant: Any = None,
) -> Path:
    """Build the Stanford Cars gallery folder from the Hub copy or the original devkit.

    Args:
        source: The downloaded Hub copy folder, or the devkit folder holding ``cars_test/``.
        out: Output folder; it must not exist unless ``overwrite``.
        skip_corrupt: Leave unreadable images out (listed in the card) instead of failing.
        progress: Show progress bars.
        overwrite: Replace an existing ``out`` once the new gallery is complete.

    Returns:
        The output folder.

    Raises:
        BuilderError: On an unrecognised layout, a missing or unreadable annotation file, a
            missing or unreadable image (without ``skip_corrupt``), a model without enough
            images, or an existing ``out``.

    Example:
        >>> from gallery_builders import stanford_cars
        >>> stanford_cars.build("stanford-cars", "galleries/cars")  # doctest: +SKIP
        PosixPath('galleries/cars')
    """
    root = Path(source)
    layout = detect_layout(root)
    if layout == "devkit":
        candidates, class_names = read_devkit(root)
    else:
        candidates, class_names = read_hub_copy(root, progress=progress)
    return build_gallery(
        gallery_spec(layout, class_names),
        candidates,
        select,
        out,
        source_label=str(root),
        skip_corrupt=skip_corrupt,
        progress=progress,
        overwrite=overwrite,
        variant=variant,
    )


COMMAND = BuilderCommand(
    name="stanford-cars",
    help="Stanford Cars gallery (15 models)",
    build=build,
    source_help="the downloaded Hub copy (Donghyun99/Stanford-Cars) or the devkit folder",
)


def detect_layout(root: Path) -> Layout:
    """Tell the devkit layout from a Hub copy folder, or raise BuilderError."""
    if not root.is_dir():
        raise BuilderError(f"Stanford Cars source {root} is not a folder")
    if (root / "cars_test").is_dir() or (root / "devkit").is_dir():
        return "devkit"
    if (root / "dataset_dict.json").is_file() or any(root.rglob("*.parquet")):
        return "hub"
    raise BuilderError(
        f"{root} is neither a Stanford Cars devkit folder (cars_test/, devkit/cars_meta.mat, "
        "cars_test_annos_withlabels.mat) nor a downloaded Hub copy (Parquet files with image and "
        "label, e.g. huggingface-cli download --repo-type dataset Donghyun99/Stanford-Cars)"
    )


def _label_identity(label: int, class_names: Sequence[str] | None) -> tuple[str, str]:
    if class_names is None:
        return f"class_{label:03d}", f"Stanford Cars class {label} (0-based)"
    name = class_names[label]
    return safe_label(name, what="Stanford Cars class name"), name


def _candidate(
    label: int, class_names: Sequence[str] | None, *, source_path: str, read: Any, file_name: str | None
) -> Candidate:
    identity, name = _label_identity(label, class_names)
    return Candidate(
        source_path=source_path,
        identity=identity,
        identity_name=name,
        group=GROUP,
        read=read,
        file_name=file_name,
        extra={"cars_label": label},
    )


def read_hub_copy(root: Path, *, progress: bool = True) -> tuple[list[Candidate], list[str] | None]:
    """Candidates of the 15 models from the test split of a Hub copy folder, in row order."""
    # Streaming reads the Parquet files directly; the scratch cache only receives lock files.
    with tempfile.TemporaryDirectory(prefix="fp-rank-cars-") as scratch:
        return _scan_hub_copy(root, scratch, progress=progress)


def _scan_hub_copy(root: Path, scratch: str, *, progress: bool) -> tuple[list[Candidate], list[str] | None]:
    import datasets
    from tqdm.auto import tqdm

    try:
        if (root / "dataset_dict.json").is_file():
            saved = datasets.load_from_disk(str(root))
            if HUB_SPLIT not in saved:
                raise BuilderError(f"{root / 'dataset_dict.json'} has no '{HUB_SPLIT}' split (has {sorted(saved)})")
            split = saved[HUB_SPLIT]
        else:
            split = datasets.load_dataset(str(root), split=HUB_SPLIT, streaming=True, cache_dir=scratch)
    except (ValueError, OSError, KeyError) as exc:
        if isinstance(exc, BuilderError):
            raise
        raise BuilderError(
            f"cannot load the '{HUB_SPLIT}' split of the Stanford Cars Hub copy in {root}: {exc}"
        ) from exc
    features = split.features
    if features is None or "image" not in features or "label" not in features:
        found = sorted(features) if features is not None else "unknown"
        raise BuilderError(
            f"the '{HUB_SPLIT}' split in {root} needs columns 'image' and 'label' (found {found}); "
            "is this the Donghyun99/Stanford-Cars copy?"
        )
    label_feature = features["label"]
    class_names = list(label_feature.names) if isinstance(label_feature, datasets.ClassLabel) else None
    split = split.cast_column("image", datasets.Image(decode=False))
    wanted = set(MODEL_LABELS)
    candidates: list[Candidate] = []
    rows = tqdm(split, desc="stanford-cars: scanning the test split", unit="row", disable=not progress)
    for row_index, example in enumerate(rows):
        label = int(example["label"])
        if label not in wanted:
            continue
        image = example["image"] or {}
        data = image.get("bytes")
        path = image.get("path")
        if data is None and path:
            read = file_reader(Path(path))
        else:
            read = bytes_reader(data or b"")
        candidates.append(
            _candidate(
                label,
                class_names,
                source_path=f"{HUB_SPLIT}/{row_index:05d}",
                read=read,
                file_name=Path(path).name if path else None,
            )
        )
    return candidates, class_names


def _find_annotations(root: Path) -> Path:
    places = [root / name for name in ANNOTATION_FILES] + [root / "devkit" / name for name in ANNOTATION_FILES]
    for place in places:
        if place.is_file():
            return place
    raise BuilderError(
        f"missing file {root / ANNOTATION_FILES[0]}: the devkit's cars_test_annos.mat has no "
        "labels; download cars_test_annos_withlabels.mat and put it in "
        f"{root} or {root / 'devkit'}"
    )


def _load_mat(path: Path) -> dict[str, Any]:
    from scipy.io import loadmat
    from scipy.io.matlab import MatReadError

    try:
        return loadmat(str(path), simplify_cells=True)
    except (MatReadError, ValueError, OSError, TypeError, NotImplementedError) as exc:
        raise BuilderError(f"cannot read MATLAB file {path}: {exc}") from exc


def read_devkit(root: Path) -> tuple[list[Candidate], list[str]]:
    """Candidates of the 15 models from the devkit layout, in annotation order."""
    meta_path = root / "devkit" / "cars_meta.mat"
    if not meta_path.is_file() and (root / "cars_meta.mat").is_file():
        meta_path = root / "cars_meta.mat"
    require_file(meta_path, hint="the devkit (car_devkit.tgz) holds devkit/cars_meta.mat with class_names")
    meta = _load_mat(meta_path)
    if "class_names" not in meta:
        raise BuilderError(f"{meta_path} has no 'class_names' variable")
    class_names = [str(name) for name in _as_list(meta["class_names"])]
    annotations_path = _find_annotations(root)
    annotations = _load_mat(annotations_path)
    if "annotations" not in annotations:
        raise BuilderError(f"{annotations_path} has no 'annotations' variable")
    wanted = set(MODEL_LABELS)
    candidates: list[Candidate] = []
    for number, entry in enumerate(_as_list(annotations["annotations"]), start=1):
        if not isinstance(entry, dict) or "fname" not in entry or "class" not in entry:
            raise BuilderError(f"{annotations_path}: annotation {number} lacks 'fname' or 'class'")
        class_id = int(entry["class"])
        if not 1 <= class_id <= len(class_names):
            raise BuilderError(
                f"{annotations_path}: annotation {number} has class {class_id}, outside 1..{len(class_names)}"
            )
        label = class_id - 1
        if label not in wanted:
            continue
        relative = "cars_test/" + relative_source_path(str(entry["fname"]), listed_in=str(annotations_path))
        candidates.append(
            _candidate(
                label,
                class_names,
                source_path=relative,
                read=file_reader(root / relative, root),
                file_name=relative.rsplit("/", 1)[-1],
            )
        )
    return candidates, class_names


def _as_list(value: Any) -> list[Any]:
    """A MATLAB cell or struct array read with ``simplify_cells`` as a Python list."""
    if isinstance(value, (list, tuple)):
        return list(value)
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        listed = value.tolist()
        return listed if isinstance(listed, list) else [listed]
    return [value]


def select(active: Sequence[Candidate]) -> dict[str, str]:
    """First 10 of each model in source order to the gallery, next 10 to the reference, rest held out."""
    assignment: dict[str, str] = {}
    for label in MODEL_LABELS:
        paths = [c.source_path for c in active if c.extra["cars_label"] == label]
        for index, path in enumerate(paths):
            if index < GALLERY_PER_MODEL:
                assignment[path] = GALLERY_SPLIT
            elif index < GALLERY_PER_MODEL + REFERENCE_PER_MODEL:
                assignment[path] = REFERENCE_SPLIT
            else:
                assignment[path] = HOLDOUT_SPLIT
    return assignment


def gallery_spec(layout: Layout, class_names: Sequence[str] | None) -> GallerySpec:
    """The card content of the Stanford Cars gallery."""
    details: dict[str, Any] = {"stanford_cars_labels": list(MODEL_LABELS), "label_base": 0}
    if class_names is not None:
        details["stanford_cars_classes"] = [class_names[label] for label in MODEL_LABELS]
    return GallerySpec(
        builder="stanford-cars",
        pretty_name="FP-Rank gallery: Stanford Cars Acura, Audi and BMW models",
        seed=None,
        source=SourceInfo(
            name="Stanford Cars",
            homepage=_HOMEPAGE,
            download=_DOWNLOAD,
            license=_LICENSE,
            citation=_CITATION,
            layout=_LAYOUTS[layout],
            source_datasets=("extended|Donghyun99/Stanford-Cars",),
        ),
        groups=(GroupInfo(name=GROUP, noun="car", details=details),),
        prompts=CAR_PROMPTS,
        prompt_notes=CAR_PROMPT_NOTES,
        recommended_encoders=recommended_encoders(
            (),
            note="The reference code's car specialist (EfficientNetV2-S fine-tuned on the "
            "Stanford Cars train split, 1280-d pooled feature) was never released, so no "
            "specialist encoder is recommended for this gallery.",
        ),
        selection=SELECTION,
        description=(
            "Fine-grained car model gallery of the Finer-Personalization Rank benchmark, drawn "
            "from the Stanford Cars test split: one group 'car' of fifteen Acura, Audi and BMW "
            f"models; per model the first {GALLERY_PER_MODEL} test images are the gallery, the "
            f"next {REFERENCE_PER_MODEL} the reference, the rest held out."
        ),
        limitations=LIMITATIONS,
        extra_columns={"cars_label": "int32"},
    )
