"""CUB-200-2011 gallery builder: groups wren, tern and sparrow of five similar species each.

Reads the dataset in its own tarball layout (``CUB_200_2011/``: ``images.txt``,
``image_class_labels.txt``, ``classes.txt``, ``train_test_split.txt``, ``images/<class>/<file>``)
and reproduces the reference code's draw exactly (see :data:`SELECTION`).
"""

from __future__ import annotations

from typing import Any

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from fp_rank.errors import BuilderError
from fp_rank.galleries.build.sampling import legacy_state, sample_like_pandas
from fp_rank.galleries.build.sources import file_reader, relative_source_path, require_file
from fp_rank.galleries.build.spec import Candidate, GallerySpec, GroupInfo, SourceInfo, safe_label
from fp_rank.galleries.build.writer import build_gallery
from fp_rank.galleries.schema import GALLERY_SPLIT, HOLDOUT_SPLIT, REFERENCE_SPLIT
from gallery_builders._benchmark import BIRD_PROMPT_NOTES, BIRD_PROMPTS, recommended_encoders
from gallery_builders.registry import BuilderCommand

#: Groups of CUB class ids (1-based, as in classes.txt), in card order.
GROUPS: dict[str, tuple[int, ...]] = {
    "wren": (193, 194, 195, 196, 197),
    "tern": (143, 144, 145, 146, 147),
    "sparrow": (113, 114, 115, 116, 117),
}
DEFAULT_SEED = 101
GALLERY_PER_SPECIES = 10
REFERENCE_PER_SPECIES = 10

INDEX_FILES = ("images.txt", "image_class_labels.txt", "classes.txt", "train_test_split.txt")

SELECTION = "\n".join(
    [
        (
            "Groups of CUB class ids: wren = 193-197, tern = 143-147, sparrow = 113-117; the official"
            " train/test split is ignored. For each group separately, the images of its five species "
            "are taken in images.txt order."
        ),
        (
            "Gallery: a NumPy legacy RandomState(seed) is created; for each species in ascending "
            "order of its class name without the numeric prefix (e.g. 'Bewick_Wren'), "
            f"{GALLERY_PER_SPECIES} positions are drawn with RandomState.choice(n, "
            f"{GALLERY_PER_SPECIES}, replace=False) over that species' n images in images.txt order, "
            "the state being shared across the species. This is exactly pandas "
            f"DataFrame.groupby('name').sample(n={GALLERY_PER_SPECIES}, random_state=seed), the "
            "reference code's draw."
        ),
        (
            f"Reference: the same with a fresh RandomState(seed), drawing {REFERENCE_PER_SPECIES} per "
            "species from the images not in the gallery (kept in images.txt order)."
        ),
        (
            "Holdout: every remaining image of the species."
        ),
        (
            "Unreadable files (with --skip-corrupt) and byte-identical copies of an earlier file in "
            "images.txt order are removed before drawing (the draw is repeated until no selected "
            "image is removed); both are listed below. source_path is relative to the CUB_200_2011/ "
            "folder."
        ),
    ]
)

SOURCE = SourceInfo(
    name="CUB-200-2011",
    homepage="https://www.vision.caltech.edu/datasets/cub_200_2011/",
    download="CUB_200_2011.tgz from Caltech DATA, https://data.caltech.edu/records/65de6-vp158 "
    "(extract it and pass the CUB_200_2011/ folder)",
    license="No licence is stated by the authors. The photos were collected from Flickr and "
    "remain the property of their photographers; the dataset is distributed for non-commercial "
    "research. Check these terms before redistributing the images.",
    citation="""@techreport{WahCUB_200_2011,
  title       = {The Caltech-UCSD Birds-200-2011 Dataset},
  author      = {Wah, Catherine and Branson, Steve and Welinder, Peter and Perona, Pietro and Belongie, Serge},
  institution = {California Institute of Technology},
  number      = {CNS-TR-2011-001},
  year        = {2011}
}""",
    layout="CUB_200_2011/ tarball layout: images.txt, image_class_labels.txt, classes.txt, "
    "train_test_split.txt, images/<class dir>/<file>.jpg",
)

LIMITATIONS = (
    "Three groups of five North American species each, with ten gallery images per species: "
    "scores are coarse and cover a small part of bird diversity. The photos come from Flickr and "
    "favour well-lit, well-framed birds. CUB-200-2011 has known label errors (Van Horn et al., "
    "CVPR 2015, estimated about 4%) and shares images with ImageNet, on which many encoders were "
    "pre-trained."
)


def build(
    source: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    seed: int = DEFAULT_SEED,
    skip_corrupt: bool = False,
    progress: bool = True,
    overwrite: bool = False,
    variant: Any = None,
) -> Path:
    """Build the CUB-200-2011 gallery folder.

    Args:
        source: The extracted ``CUB_200_2011/`` folder (or the folder that contains it).
        out: Output folder; it must not exist unless ``overwrite``.
        seed: Seed of the draw; 101 reproduces the reference galleries.
        skip_corrupt: Leave unreadable images out (listed in the card) instead of failing.
        progress: Show a progress bar.
        overwrite: Replace an existing ``out`` once the new gallery is complete.

    Returns:
        The output folder.

    Raises:
        BuilderError: On a missing or malformed index file, a missing class, a missing or
            unreadable image (without ``skip_corrupt``), a species with too few images, or an
            existing ``out``.

    Example:
        >>> from gallery_builders import cub
        >>> cub.build("CUB_200_2011", "galleries/cub")  # doctest: +SKIP
        PosixPath('galleries/cub')
    """
    root = find_root(Path(source))
    candidates, class_names = read_candidates(root)
    spec = gallery_spec(seed, class_names)
    return build_gallery(
        spec,
        candidates,
        lambda active: select(active, seed=seed),
        out,
        source_label=str(root),
        skip_corrupt=skip_corrupt,
        progress=progress,
        overwrite=overwrite,
        variant=variant,
    )


COMMAND = BuilderCommand(
    name="cub",
    help="CUB-200-2011 gallery (wren, tern, sparrow)",
    build=build,
    source_help="the extracted CUB_200_2011/ folder",
    default_seed=DEFAULT_SEED,
)


def find_root(source: Path) -> Path:
    """Return the folder that holds ``images.txt``: ``source`` or ``source/CUB_200_2011``."""
    if not source.is_dir():
        raise BuilderError(f"CUB source {source} is not a folder; pass the extracted CUB_200_2011/ folder")
    if (source / "images.txt").is_file():
        return source
    nested = source / "CUB_200_2011"
    if (nested / "images.txt").is_file():
        return nested
    raise BuilderError(
        f"missing file {source / 'images.txt'}: {source} is not a CUB-200-2011 folder; pass the "
        f"extracted CUB_200_2011/ folder holding {', '.join(INDEX_FILES)} and images/"
    )


def _read_index(path: Path) -> list[tuple[int, str]]:
    require_file(path, hint="the CUB_200_2011/ folder must hold " + ", ".join(INDEX_FILES))
    entries: list[tuple[int, str]] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        key, _, value = line.strip().partition(" ")
        if not (key.isascii() and key.isdigit()) or not value.strip():
            raise BuilderError(f"{path} line {number}: expected '<id> <value>', got {line!r}")
        entries.append((int(key), value.strip()))
    return entries


def read_candidates(root: Path) -> tuple[list[Candidate], dict[int, str]]:
    """List the images of the groups' classes in images.txt order; also return class names."""
    images = _read_index(root / "images.txt")
    labels = dict(_read_index(root / "image_class_labels.txt"))
    split_flags = dict(_read_index(root / "train_test_split.txt"))
    classes = dict(_read_index(root / "classes.txt"))
    wanted = {class_id: group for group, ids in GROUPS.items() for class_id in ids}
    missing = sorted(set(wanted) - set(classes))
    if missing:
        raise BuilderError(
            f"{root / 'classes.txt'} lacks class ids {missing}; this is not the 200-class "
            "CUB-200-2011 release"
        )
    class_names = {class_id: classes[class_id].partition(".")[2] or classes[class_id] for class_id in wanted}
    candidates: list[Candidate] = []
    for image_id, raw_path in images:
        if image_id not in labels:
            raise BuilderError(f"{root / 'image_class_labels.txt'} has no class for image id {image_id}")
        if image_id not in split_flags:
            raise BuilderError(f"{root / 'train_test_split.txt'} has no entry for image id {image_id}")
        class_id = int(labels[image_id]) if labels[image_id].isascii() and labels[image_id].isdigit() else -1
        if class_id not in classes:
            raise BuilderError(
                f"{root / 'image_class_labels.txt'} gives image id {image_id} the class "
                f"{labels[image_id]!r}, which classes.txt does not list"
            )
        if class_id not in wanted:
            continue
        relative = "images/" + relative_source_path(raw_path, listed_in=str(root / "images.txt"))
        name = class_names[class_id]
        candidates.append(
            Candidate(
                source_path=relative,
                identity=safe_label(name, what="CUB class name"),
                identity_name=name.replace("_", " "),
                group=wanted[class_id],
                read=file_reader(root / relative, root),
                file_name=relative.rsplit("/", 1)[-1],
                extra={"cub_class_id": class_id, "_sort_name": name},
            )
        )
    return candidates, class_names


def select(active: Sequence[Candidate], *, seed: int = DEFAULT_SEED) -> dict[str, str]:
    """The reference draw (see :data:`SELECTION`) over ``active`` images in images.txt order.

    Args:
        active: Usable candidates of the groups' classes, in images.txt order.
        seed: Seed of both draws.

    Returns:
        ``{source_path: split}`` for every image of the groups' species.

    Raises:
        BuilderError: If a species has fewer than 20 usable images.
    """
    assignment: dict[str, str] = {}
    for group in GROUPS:
        species: dict[str, list[str]] = {}
        for candidate in active:
            if candidate.group == group:
                species.setdefault(candidate.extra["_sort_name"], []).append(candidate.source_path)
        order = sorted(species)
        gallery_state = legacy_state(seed)
        gallery: dict[str, list[str]] = {
            name: sample_like_pandas(
                gallery_state, species[name], GALLERY_PER_SPECIES, what=f"CUB species {name} (gallery)"
            )
            for name in order
        }
        reference_state = legacy_state(seed)
        for name in order:
            taken = set(gallery[name])
            rest = [path for path in species[name] if path not in taken]
            reference = sample_like_pandas(
                reference_state, rest, REFERENCE_PER_SPECIES, what=f"CUB species {name} (reference)"
            )
            _assign(assignment, gallery[name], GALLERY_SPLIT)
            _assign(assignment, reference, REFERENCE_SPLIT)
            chosen = taken | set(reference)
            _assign(assignment, [p for p in rest if p not in chosen], HOLDOUT_SPLIT)
    return assignment


def _assign(assignment: dict[str, str], paths: Sequence[str], split: str) -> None:
    for path in paths:
        assignment[path] = split


def gallery_spec(seed: int, class_names: Mapping[int, str]) -> GallerySpec:
    """The card content of the CUB gallery."""
    return GallerySpec(
        builder="cub",
        pretty_name="FP-Rank gallery: CUB-200-2011 wrens, terns and sparrows",
        seed=seed,
        source=SOURCE,
        groups=tuple(
            GroupInfo(
                name=group,
                noun=group,
                details={
                    "cub_class_ids": list(ids),
                    "cub_classes": [f"{class_id:03d}.{class_names[class_id]}" for class_id in ids],
                },
            )
            for group, ids in GROUPS.items()
        ),
        prompts=BIRD_PROMPTS,
        prompt_notes=BIRD_PROMPT_NOTES,
        recommended_encoders=recommended_encoders(("bioclip-2",)),
        selection=SELECTION,
        description=(
            "Fine-grained bird species gallery of the Finer-Personalization Rank benchmark, drawn "
            "from CUB-200-2011: three groups (wren, tern, sparrow) of five similar species; per "
            f"species {GALLERY_PER_SPECIES} gallery and {REFERENCE_PER_SPECIES} reference photos, "
            "the rest held out."
        ),
        limitations=LIMITATIONS,
        extra_columns={"cub_class_id": "int32"},
    )
