"""WildlifeReID-10k gallery builder: one group per species, ten individuals each.

Reads ``wildlifereid-10k/metadata.csv`` (columns ``identity``, ``species``, ``dataset``,
``path`` relative to the folder, optional ``orientation``) and the image files it lists, and
reproduces the reference code's selection exactly (see :data:`SELECTION`): the files are read and
checked in :mod:`~gallery_builders.wildlife_reid.metadata`, the draws made in
:mod:`~gallery_builders.wildlife_reid.selection`.
"""

from __future__ import annotations

from typing import Any

import os
from collections.abc import Sequence
from pathlib import Path

from fp_rank.errors import BuilderError
from fp_rank.galleries.build.sources import file_reader
from fp_rank.galleries.build.spec import (
    Candidate,
    GallerySpec,
    GroupInfo,
    SourceInfo,
    check_config_name,
    group_slug,
    safe_label,
)
from fp_rank.galleries.build.writer import build_gallery
from gallery_builders._benchmark import (
    REID_PROMPT_NOTES,
    REID_PROMPTS,
    recommended_encoders,
)
from gallery_builders.registry import BuilderCommand, Option
from gallery_builders.wildlife_reid.metadata import (
    METADATA_FILE,
    REQUIRED_COLUMNS,
    MetadataRow,
    filter_entries,
    read_individuals,
    read_metadata,
)
from gallery_builders.wildlife_reid.selection import (
    DEFAULT_SEED,
    INDIVIDUALS_PER_SPECIES,
    MAX_GALLERY,
    MAX_REFERENCE,
    MIN_GALLERY,
    MIN_REFERENCE,
    cutoff_notes,
    has_eligible,
    select,
)

__all__ = [
    "COMMAND",
    "DEFAULT_SEED",
    "INDIVIDUALS_PER_SPECIES",
    "MAX_GALLERY",
    "MAX_REFERENCE",
    "METADATA_FILE",
    "MIN_GALLERY",
    "MIN_REFERENCE",
    "REQUIRED_COLUMNS",
    "SELECTION",
    "build",
    "cutoff_notes",
    "filter_entries",
    "gallery_spec",
    "read_individuals",
    "read_metadata",
    "select",
]

SELECTION = "\n".join(
    [
        (
            "Rows of metadata.csv are kept in file order, filtered to the chosen species and source "
            "datasets (all when not given). Individuals are grouped by the identity column."
        ),
        (
            f"Eligible individuals have at least {MIN_REFERENCE + MIN_GALLERY} images. For each "
            f"eligible individual with n images, the reference is min(n - {MIN_GALLERY}, "
            f"{MAX_REFERENCE}) images drawn with a fresh NumPy legacy RandomState(seed).choice(n, k, "
            "replace=False) over its images in file order (pandas DataFrame.sample(n=k, "
            "random_state=seed), the reference code's draw)."
        ),
        (
            f"Per species, the {INDIVIDUALS_PER_SPECIES} individuals with the largest such reference "
            "count are kept, ties broken by identity string in ascending order (the reference code "
            "ranks pandas value_counts of its reference rows, a stable sort over identities in sorted"
            f" order; the count saturates at {MAX_REFERENCE}, so among individuals with at least "
            f"{MAX_REFERENCE + MIN_GALLERY} images the alphabetically first win)."
        ),
        (
            f"Gallery: for each kept individual, min(m, {MAX_GALLERY}) of its m remaining images (m >="
            f" {MIN_GALLERY}) drawn the same way with a fresh RandomState(seed). Holdout: every image "
            "left."
        ),
        (
            "With --individuals FILE the kept individuals are the ones the file names instead of the "
            "ranking; every draw stays the same, so pinning the reference run's choice reproduces its "
            "galleries whatever order its pandas gave the individuals tied at the cut-off."
        ),
        (
            "Unreadable files (with --skip-corrupt) and byte-identical copies of an earlier file in "
            "metadata order are removed before selecting (repeated until no selected image is "
            "removed); both are listed below. With --keep-duplicates the copies stay where the draws "
            "put them, as in the reference code (listed, not removed). Group names are the species in lower case with '_' for "
            "other characters; source_path is the metadata path."
        ),
    ]
)

SOURCE_CITATION = """@article{adam2024wildlifereid10k,
  title   = {WildlifeReID-10k: Wildlife re-identification dataset with 10k individual animals},
  author  = {Adam, Luk{\\'a}{\\v{s}} and {\\v{C}}erm{\\'a}k, Vojt{\\v{e}}ch and
             Papafitsoros, Kostas and Picek, Luk{\\'a}{\\v{s}}},
  journal = {arXiv preprint arXiv:2406.09211},
  year    = {2024}
}"""

LIMITATIONS = (
    "WildlifeReID-10k gathers many public re-identification datasets; each individual comes from "
    "one of them, with its own camera set-up, background and time span, so a gallery can reward "
    "matching the capture conditions rather than the animal. Several images of one individual "
    "may be near-duplicate video frames taken seconds apart, which makes the gallery easier than "
    "the count suggests. Ten individuals per species is a small sample of each population."
)


def build(
    source: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    species: Sequence[str] | None = None,
    datasets: Sequence[str] | None = None,
    seed: int = DEFAULT_SEED,
    skip_corrupt: bool = False,
    progress: bool = True,
    overwrite: bool = False,
    individuals: str | os.PathLike[str] | Sequence[str] | None = None,
    keep_duplicates: bool = False,
    variant: Any = None,
) -> Path:
    """Build a WildlifeReID-10k gallery folder, one group per species.

    Args:
        source: The ``wildlifereid-10k/`` folder holding ``metadata.csv`` and the images.
        out: Output folder; it must not exist unless ``overwrite``.
        species: Species to include, as written in the ``species`` column; ``None`` takes every
            species with at least one eligible individual.
        datasets: Source datasets (``dataset`` column) to include; ``None`` takes all.
        seed: Seed of the draws; 42 reproduces the reference galleries.
        skip_corrupt: Leave unreadable images out (listed in the card) instead of failing.
        progress: Show a progress bar.
        overwrite: Replace an existing ``out`` once the new gallery is complete.
        individuals: Pin the kept individuals instead of ranking them: a file with one identity
            per line, or a CSV with ``species,identity`` columns, or a list of identities. Their
            species become the groups (``species`` may narrow them).
        keep_duplicates: Keep byte-identical copies where the draws put them, as the reference
            code does (its draws then match bit for bit), instead of dropping the later copy and
            drawing again. Either way every copy is listed in the card with its twin.

    Returns:
        The output folder.

    Raises:
        BuilderError: On a missing or malformed ``metadata.csv``, an unknown species or dataset,
            a species without eligible individuals, a missing or unreadable image (without
            ``skip_corrupt``), an existing ``out``, or an ``individuals`` list naming an unknown
            or ineligible identity.

    Example:
        >>> from gallery_builders import wildlife_reid
        >>> wildlife_reid.build("wildlifereid-10k", "galleries/reid",
        ...                     species=["sea turtle"])  # doctest: +SKIP
        PosixPath('galleries/reid')
    """
    root = Path(source)
    entries = read_metadata(root)
    entries = filter_entries(entries, species=species, datasets=datasets, metadata=root / METADATA_FILE)
    pinned = None
    if individuals is not None:
        pinned = read_individuals(individuals, entries, metadata=root / METADATA_FILE)
        wanted = {e.species for e in entries if e.identity in pinned}
        species = [s for s in (species or sorted(wanted)) if s in wanted]
        entries = [e for e in entries if e.species in wanted]
    candidates = [_candidate(root, entry) for entry in entries]
    chosen_species = _species_with_eligible(entries, species, metadata=root / METADATA_FILE)
    spec = gallery_spec(seed, chosen_species, entries, datasets, pinned=pinned)
    return build_gallery(
        spec,
        candidates,
        lambda active: select(active, seed=seed, individuals=pinned),
        out,
        source_label=str(root),
        skip_corrupt=skip_corrupt,
        progress=progress,
        overwrite=overwrite,
        variant=variant,
        keep_duplicates=keep_duplicates,
        annotate=lambda active: cutoff_notes(active, seed=seed, individuals=pinned),
    )


COMMAND = BuilderCommand(
    name="wildlife-reid",
    help="WildlifeReID-10k gallery (one group per species)",
    build=build,
    source_help="the wildlifereid-10k/ folder holding metadata.csv",
    default_seed=DEFAULT_SEED,
    options=(
        Option("--species", nargs="+", metavar="SPECIES", help="species to include (default: all eligible)"),
        Option("--datasets", nargs="+", metavar="DATASET", help="source datasets to include (default: all)"),
        Option(
            "--individuals", metavar="FILE",
            help="pin the kept individuals: one identity per line, or a CSV with species,identity columns "
            "(default: the 10 with most images per species, ties alphabetical)",
        ),
        Option(
            "--keep-duplicates", switch=True,
            help="keep byte-identical copies where the draws put them, as the reference code does "
            "(default: drop the later copy and draw again); listed in the card either way",
        ),
    ),
)


def _species_with_eligible(entries: Sequence[MetadataRow], species: Sequence[str] | None, *, metadata: Path) -> list[str]:
    counts: dict[str, dict[str, int]] = {}
    for entry in entries:
        per_species = counts.setdefault(entry.species, {})
        per_species[entry.identity] = per_species.get(entry.identity, 0) + 1
    requested = list(dict.fromkeys(species)) if species is not None else sorted(counts)
    chosen = [s for s in requested if has_eligible(counts.get(s, {}).values())]
    if species is not None and len(chosen) < len(requested):
        lacking = [s for s in requested if s not in chosen]
        raise BuilderError(
            f"{metadata}: species {lacking} have no individual with at least "
            f"{MIN_REFERENCE + MIN_GALLERY} images in the chosen datasets"
        )
    if not chosen:
        raise BuilderError(
            f"{metadata}: no individual has at least {MIN_REFERENCE + MIN_GALLERY} images in the chosen datasets"
        )
    slugs: dict[str, str] = {}
    for name in chosen:
        slug = check_config_name(group_slug(name))
        if slug in slugs:
            raise BuilderError(f"species {slugs[slug]!r} and {name!r} give the same group name {slug!r}")
        slugs[slug] = name
    return chosen


def _candidate(root: Path, entry: MetadataRow) -> Candidate:
    return Candidate(
        source_path=entry.path,
        identity=safe_label(entry.identity, what="identity"),
        identity_name=entry.identity,
        group=group_slug(entry.species),
        read=file_reader(root / entry.path, root),
        file_name=entry.path.rsplit("/", 1)[-1],
        extra={
            "species": entry.species,
            "dataset": entry.dataset,
            "orientation": entry.orientation,
            "_raw_identity": entry.identity,
        },
    )


def gallery_spec(
    seed: int, species: Sequence[str], entries: Sequence[MetadataRow], datasets: Sequence[str] | None,
    *, pinned: frozenset[str] | None = None,
) -> GallerySpec:
    """The card content of a WildlifeReID-10k gallery for ``species``."""
    groups = []
    for name in species:
        present = sorted({e.dataset for e in entries if e.species == name})
        groups.append(GroupInfo(name=group_slug(name), noun=name, details={"species": name, "datasets": present}))
    filters = (
        f"species {list(species)}"
        + (f", datasets {sorted(datasets)}" if datasets is not None else ", all datasets")
        + (f", {len(pinned)} individuals pinned by --individuals" if pinned is not None else "")
    )
    return GallerySpec(
        builder="wildlife-reid",
        pretty_name="FP-Rank gallery: WildlifeReID-10k individuals",
        seed=seed,
        source=SourceInfo(
            name="WildlifeReID-10k",
            homepage="https://www.kaggle.com/datasets/wildlifedatasets/wildlifereid-10k",
            download="Kaggle, https://www.kaggle.com/datasets/wildlifedatasets/wildlifereid-10k "
            "(extract it and pass the folder holding metadata.csv)",
            license="WildlifeReID-10k redistributes images of many public re-identification "
            "datasets; each image keeps the licence of its source dataset (column 'dataset'), "
            "several of which forbid commercial use. Check the licence of every dataset in "
            "groups.<group>.datasets before redistributing, and cite those datasets too.",
            citation=SOURCE_CITATION,
            layout="wildlifereid-10k/: metadata.csv (identity, species, dataset, path, "
            "orientation) and the image files it lists",
        ),
        groups=tuple(groups),
        prompts=REID_PROMPTS,
        prompt_notes=REID_PROMPT_NOTES,
        recommended_encoders=recommended_encoders(("miewid",)),
        selection=SELECTION + f"\nThis build: {filters}.",
        description=(
            "Instance-level animal re-identification gallery of the Finer-Personalization Rank "
            "benchmark, drawn from WildlifeReID-10k: one group per species, the "
            f"{INDIVIDUALS_PER_SPECIES} individuals with the most images; per individual up to "
            f"{MAX_REFERENCE} reference and up to {MAX_GALLERY} gallery photos, the rest held out."
        ),
        limitations=LIMITATIONS,
        extra_columns={"species": "string", "dataset": "string", "orientation": "string"},
    )
