"""WildlifeReID-10k's ``metadata.csv`` and an ``--individuals`` list, read and checked before any image is."""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from fp_rank.errors import BuilderError
from fp_rank.galleries.build.sources import relative_source_path, require_file
from gallery_builders.wildlife_reid.selection import MIN_GALLERY, MIN_REFERENCE

METADATA_FILE = "metadata.csv"
REQUIRED_COLUMNS = ("identity", "species", "dataset", "path")


@dataclass(frozen=True)
class MetadataRow:
    """One row of metadata.csv."""

    identity: str
    species: str
    dataset: str
    path: str
    orientation: str | None


def read_metadata(root: Path) -> list[MetadataRow]:
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
                MetadataRow(
                    identity=values["identity"],
                    species=values["species"],
                    dataset=values["dataset"],
                    path=relative_source_path(values["path"], listed_in=str(path)),
                    orientation=(row.get("orientation") or "").strip() or None,
                )
            )
    return entries


def filter_entries(
    entries: Sequence[MetadataRow], *, species: Sequence[str] | None, datasets: Sequence[str] | None, metadata: Path
) -> list[MetadataRow]:
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


def read_individuals(
    source: str | os.PathLike[str] | Sequence[str], entries: Sequence[MetadataRow], *, metadata: Path
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
