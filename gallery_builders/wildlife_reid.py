"""WildlifeReID-10k gallery builder: one group per species, ten individuals each.

Reads ``wildlifereid-10k/metadata.csv`` (columns ``identity``, ``species``, ``dataset``,
``path`` relative to the folder, optional ``orientation``) and the image files it lists, and
reproduces the reference code's selection exactly (see :data:`SELECTION`).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from fp_rank.errors import BuilderError
from fp_rank.galleries.build.sampling import legacy_state, sample_like_pandas
from fp_rank.galleries.build.sources import file_reader, relative_source_path, require_file
from fp_rank.galleries.build.spec import (
    Candidate,
    GallerySpec,
    GroupInfo,
    SelectionNotes,
    SourceInfo,
    check_config_name,
    group_slug,
    safe_label,
)
from fp_rank.galleries.build.writer import build_gallery
from fp_rank.galleries.schema import GALLERY_SPLIT, HOLDOUT_SPLIT, REFERENCE_SPLIT
from gallery_builders._benchmark import REID_PROMPT_NOTES, REID_PROMPTS, recommended_encoders
from gallery_builders.registry import BuilderCommand, Option

DEFAULT_SEED = 42
METADATA_FILE = "metadata.csv"
REQUIRED_COLUMNS = ("identity", "species", "dataset", "path")
MIN_GALLERY = 5
MIN_REFERENCE = 4
MAX_REFERENCE = 10
MAX_GALLERY = 15
INDIVIDUALS_PER_SPECIES = 10

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


@dataclass(frozen=True)
class _Entry:
    identity: str
    species: str
    dataset: str
    path: str
    orientation: str | None


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


def read_metadata(root: Path) -> list[_Entry]:
    """Rows of ``metadata.csv`` in file order."""
    if not root.is_dir():
        raise BuilderError(f"WildlifeReID-10k source {root} is not a folder")
    path = require_file(
        root / METADATA_FILE,
        hint="pass the extracted wildlifereid-10k/ folder, which holds metadata.csv and images/",
    )
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        columns = reader.fieldnames or []
        missing = [c for c in REQUIRED_COLUMNS if c not in columns]
        if missing:
            raise BuilderError(f"{path} lacks columns {missing} (has {columns}); expected {list(REQUIRED_COLUMNS)}")
        entries = []
        for line, row in enumerate(reader, start=2):
            values = {c: (row.get(c) or "").strip() for c in REQUIRED_COLUMNS}
            empty = [c for c, v in values.items() if not v]
            if empty:
                raise BuilderError(f"{path} line {line}: empty {empty}")
            entries.append(
                _Entry(
                    identity=values["identity"],
                    species=values["species"],
                    dataset=values["dataset"],
                    path=relative_source_path(values["path"], listed_in=str(path)),
                    orientation=(row.get("orientation") or "").strip() or None,
                )
            )
    return entries


def filter_entries(
    entries: Sequence[_Entry], *, species: Sequence[str] | None, datasets: Sequence[str] | None, metadata: Path
) -> list[_Entry]:
    """Keep the rows of the chosen species and datasets; unknown names raise BuilderError."""
    for wanted, column, present in (
        (species, "species", {e.species for e in entries}),
        (datasets, "dataset", {e.dataset for e in entries}),
    ):
        if wanted is None:
            continue
        unknown = sorted(set(wanted) - present)
        if unknown:
            raise BuilderError(f"{metadata} has no {column} {unknown}; it has {sorted(present)}")
    species_set = None if species is None else set(species)
    dataset_set = None if datasets is None else set(datasets)
    kept = [
        e
        for e in entries
        if (species_set is None or e.species in species_set) and (dataset_set is None or e.dataset in dataset_set)
    ]
    by_identity: dict[str, str] = {}
    for entry in kept:
        known = by_identity.setdefault(entry.identity, entry.species)
        if known != entry.species:
            raise BuilderError(
                f"{metadata}: identity {entry.identity!r} is listed under species {known!r} and "
                f"{entry.species!r}; one individual must have one species"
            )
    return kept


def _eligible(counts: Iterable[int]) -> bool:
    return any(n >= MIN_REFERENCE + MIN_GALLERY for n in counts)


def _species_with_eligible(entries: Sequence[_Entry], species: Sequence[str] | None, *, metadata: Path) -> list[str]:
    counts: dict[str, dict[str, int]] = {}
    for entry in entries:
        per_species = counts.setdefault(entry.species, {})
        per_species[entry.identity] = per_species.get(entry.identity, 0) + 1
    requested = list(dict.fromkeys(species)) if species is not None else sorted(counts)
    chosen = [s for s in requested if _eligible(counts.get(s, {}).values())]
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


def _candidate(root: Path, entry: _Entry) -> Candidate:
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


def _reference_draws(
    active: Sequence[Candidate], seed: int
) -> tuple[dict[str, list[str]], dict[str, str], dict[str, list[str]]]:
    """Images per identity (metadata order), its group, and the reference draw of each eligible one."""
    images: dict[str, list[str]] = {}
    species_of: dict[str, str] = {}
    for candidate in active:
        identity = candidate.extra["_raw_identity"]
        images.setdefault(identity, []).append(candidate.source_path)
        species_of[identity] = candidate.group
    reference: dict[str, list[str]] = {}
    for identity in sorted(images):
        paths = images[identity]
        if len(paths) < MIN_REFERENCE + MIN_GALLERY:
            continue
        k = min(len(paths) - MIN_GALLERY, MAX_REFERENCE)
        reference[identity] = sample_like_pandas(
            legacy_state(seed), paths, k, what=f"individual {identity} (reference)"
        )
    return images, species_of, reference


def _ranked(reference: dict[str, list[str]], species_of: dict[str, str], group: str) -> list[str]:
    """Eligible identities of ``group``, most reference images first, ties alphabetical."""
    return sorted((i for i in reference if species_of[i] == group), key=lambda i: (-len(reference[i]), i))


def _kept(
    reference: dict[str, list[str]], species_of: dict[str, str], group: str, individuals: frozenset[str] | None
) -> list[str]:
    ranked = _ranked(reference, species_of, group)
    if individuals is None:
        return ranked[:INDIVIDUALS_PER_SPECIES]
    return [i for i in ranked if i in individuals]


def select(
    active: Sequence[Candidate], *, seed: int = DEFAULT_SEED, individuals: frozenset[str] | None = None
) -> dict[str, str]:
    """The reference selection (see :data:`SELECTION`) over ``active`` rows in metadata order.

    Args:
        active: Usable candidates, in metadata.csv order.
        seed: Seed of every draw.
        individuals: Keep exactly these identities (those still eligible) instead of the top
            ranked ones.

    Returns:
        ``{source_path: split}`` for every image of the kept individuals.
    """
    images, species_of, reference = _reference_draws(active, seed)
    assignment: dict[str, str] = {}
    for group in sorted(set(species_of.values())):
        for identity in _kept(reference, species_of, group, individuals):
            taken = set(reference[identity])
            rest = [p for p in images[identity] if p not in taken]
            gallery = sample_like_pandas(
                legacy_state(seed), rest, min(len(rest), MAX_GALLERY), what=f"individual {identity} (gallery)"
            )
            in_gallery = set(gallery)
            for path in images[identity]:
                if path in taken:
                    assignment[path] = REFERENCE_SPLIT
                elif path in in_gallery:
                    assignment[path] = GALLERY_SPLIT
                else:
                    assignment[path] = HOLDOUT_SPLIT
    return assignment


def cutoff_notes(
    active: Sequence[Candidate], *, seed: int = DEFAULT_SEED, individuals: frozenset[str] | None = None
) -> SelectionNotes:
    """How many individuals tie at each species' cut-off, and which of them were kept.

    The reference code ranks individuals with pandas ``value_counts()``, whose order among equal
    counts depends on the machine; a tie that straddles the cut-off makes its choice unreproducible.

    Returns:
        Per group a ``cutoff`` field: the reference count at the last kept place, the individuals
        with that count, those kept and those not (empty when the species has no more eligible
        individuals than places), plus a paragraph for the card.
    """
    _, species_of, reference = _reference_draws(active, seed)
    groups: dict[str, dict[str, object]] = {}
    lines = []
    for group in sorted(set(species_of.values())):
        ranked = _ranked(reference, species_of, group)
        kept = _kept(reference, species_of, group, individuals)
        if not ranked:
            continue
        if len(ranked) <= INDIVIDUALS_PER_SPECIES:
            entry = {"places": INDIVIDUALS_PER_SPECIES, "eligible": len(ranked), "count": None,
                     "tied": [], "kept_among_tied": [], "left_out_among_tied": []}
            lines.append(f"- `{group}`: {len(ranked)} eligible individuals for {INDIVIDUALS_PER_SPECIES} places; "
                         "no cut-off.")
        else:
            count = len(reference[ranked[INDIVIDUALS_PER_SPECIES - 1]])
            tied = [i for i in ranked if len(reference[i]) == count]
            above = sum(1 for i in ranked if len(reference[i]) > count)
            chosen = [i for i in tied if i in kept]
            entry = {"places": INDIVIDUALS_PER_SPECIES, "eligible": len(ranked), "count": count, "tied": tied,
                     "kept_among_tied": chosen, "left_out_among_tied": [i for i in tied if i not in kept]}
            straddles = len(tied) > INDIVIDUALS_PER_SPECIES - above
            lines.append(
                f"- `{group}`: {len(ranked)} eligible; {above} individuals rank above the cut-off and "
                f"{len(tied)} tie at it with {count} reference images, for {INDIVIDUALS_PER_SPECIES - above} places"
                + (f"; kept: {', '.join(chosen)}" if straddles else "; all kept")
                + (" (pinned by --individuals)." if individuals is not None else
                   " (alphabetical; the reference's pandas order among them is machine-dependent)." if straddles
                   else ".")
            )
        if individuals is not None:
            entry["pinned"] = kept
        groups[group] = {"cutoff": entry}
    text = "Cut-off of this build (individuals tied at the last kept place):\n\n" + "\n".join(lines) if lines else ""
    return SelectionNotes(groups=groups, text=text)


def read_individuals(
    source: str | os.PathLike[str] | Sequence[str], entries: Sequence[_Entry], *, metadata: Path
) -> frozenset[str]:
    """The identities an ``--individuals`` file (or list) pins, checked against the metadata.

    A file holds one identity per line (blank lines and ``#`` comments ignored), or is a CSV
    whose header has ``species`` and ``identity`` columns.

    Raises:
        BuilderError: The file is missing or empty, names an identity the (filtered) metadata
            lacks, gives it another species, or names one with fewer than 9 images.
    """
    pairs: list[tuple[str | None, str]] = []
    where = "individuals"
    if isinstance(source, (str, os.PathLike)):
        path = require_file(Path(source), hint="pass a file with one identity per line, or a species,identity CSV")
        where = str(path)
        text = path.read_text(encoding="utf-8-sig")
        lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
        rows = list(csv.reader(lines))
        header = [c.strip().lower() for c in rows[0]] if rows else []
        if "identity" in header and "species" in header:
            s_col, i_col = header.index("species"), header.index("identity")
            for line, row in enumerate(rows[1:], start=2):
                if len(row) <= max(s_col, i_col) or not row[i_col].strip():
                    raise BuilderError(f"{where} row {line}: expected species,identity values, got {row}")
                pairs.append((row[s_col].strip(), row[i_col].strip()))
        else:
            pairs = [(None, line.strip()) for line in lines]
    else:
        pairs = [(None, str(name)) for name in source]
    if not pairs:
        raise BuilderError(f"{where} names no individual")
    counts: dict[str, int] = {}
    species_of: dict[str, str] = {}
    for entry in entries:
        counts[entry.identity] = counts.get(entry.identity, 0) + 1
        species_of[entry.identity] = entry.species
    unknown = sorted({name for _, name in pairs if name not in counts})
    if unknown:
        raise BuilderError(
            f"{where} names {len(unknown)} individual(s) that {metadata} lacks (for the chosen species and "
            f"datasets): {unknown[:10]}; identities are matched exactly against its identity column"
        )
    wrong = sorted({f"{name} ({given} vs {species_of[name]})" for given, name in pairs if given and given != species_of[name]})
    if wrong:
        raise BuilderError(f"{where} gives individuals another species than {metadata} does: {wrong[:10]}")
    small = sorted({name for _, name in pairs if counts[name] < MIN_REFERENCE + MIN_GALLERY})
    if small:
        raise BuilderError(
            f"{where} names individual(s) with fewer than {MIN_REFERENCE + MIN_GALLERY} images, which cannot "
            f"be split into reference and gallery: {[f'{n} ({counts[n]})' for n in small[:10]]}"
        )
    return frozenset(name for _, name in pairs)


def gallery_spec(
    seed: int, species: Sequence[str], entries: Sequence[_Entry], datasets: Sequence[str] | None,
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
