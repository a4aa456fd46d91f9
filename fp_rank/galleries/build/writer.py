"""The one code path every builder ends in: resolve a selection, then write the gallery folder.

A source adapter lists its :class:`~fp_rank.galleries.build.spec.Candidate` images in source order and hands
over a *selector*: a pure function from the usable candidates to ``{source_path: split}``.
:func:`build_gallery` then

1. runs the selector, reads and fully decodes every selected image, hashes it;
2. removes unreadable images (an error unless ``skip_corrupt``) and byte-identical duplicates
   (the first in source order is kept) from the pool, and runs the selector again, until nothing
   changes - so the selection is the rule applied to the usable, de-duplicated images. With
   ``keep_duplicates`` the copies stay where the rule put them (the reference code's behaviour)
   and are only listed;
3. writes ``data/<group>/<split>-00000-of-00001.parquet`` (image bytes embedded),
   ``manifest.jsonl``, the ``README.md`` dataset card and the Hub benchmark declaration
   ``eval.yaml`` into a hidden temporary folder next to
   the output, and renames it into place only when everything is written.

Everything written is sorted and free of timestamps, so the same source and seed give the same
bytes (with the same pyarrow, Pillow and PyYAML versions).
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any


from fp_rank.errors import BuilderError
from fp_rank.galleries.build.card import EVAL_FILE, render_card, render_eval_yaml
from fp_rank.galleries.build.files import Row, check_output, data_file, staged_folder, write_shards
from fp_rank.galleries.build.files import write_manifest as _write_manifest
from fp_rank.galleries.build.sources import image_problem
from fp_rank.galleries.build.variants import PROTOCOL_SELECTION, GalleryVariant, apply_variant
from fp_rank.galleries.build.spec import (
    Candidate,
    GallerySpec,
    SelectionNotes,
    check_config_name,
)
from fp_rank.galleries.schema import (
    ALL_CONFIG,
    ALL_SPLITS,
    GALLERY_SPLIT,
    REFERENCE_SPLIT,
)

logger = logging.getLogger(__name__)

Selector = Callable[[Sequence[Candidate]], Mapping[str, str]]


@dataclass(frozen=True)
class Skipped:
    """An image left out because it could not be read (``skip_corrupt=True``)."""

    source_path: str
    reason: str


@dataclass(frozen=True)
class Duplicate:
    """An image whose bytes equal those of an image earlier in source order.

    Attributes:
        source_path: The later copy.
        duplicate_of: Its twin, the first copy in source order.
        sha256: Their digest.
        duplicate_of_split: The split the twin was placed in.
        split: The split this copy was placed in; ``None`` when it was left out (the default).
    """

    source_path: str
    duplicate_of: str
    sha256: str
    duplicate_of_split: str | None = None
    split: str | None = None


@dataclass(frozen=True)
class Resolution:
    """The outcome of the selection: the rows to write and what was left out, all sorted."""

    rows: tuple[Row, ...]
    skipped: tuple[Skipped, ...]
    duplicates: tuple[Duplicate, ...]


def resolve_selection(
    candidates: Sequence[Candidate],
    select: Selector,
    *,
    source_label: str,
    skip_corrupt: bool = False,
    progress: bool = True,
    desc: str = "reading images",
    keep_duplicates: bool = False,
) -> Resolution:
    """Apply ``select`` to the readable, de-duplicated candidates (see the module docstring).

    Args:
        candidates: Every image the rule may choose from, in source order.
        select: Maps the usable candidates (source order) to ``{source_path: split}``.
        source_label: Names the source in error messages (its folder).
        skip_corrupt: Leave unreadable images out and report them instead of raising.
        progress: Show a progress bar while reading images.
        desc: Progress bar label.
        keep_duplicates: Keep byte-identical copies where the rule put them (listed, with the split
            of each copy) instead of leaving the later copy out and selecting again.

    Returns:
        The selected rows (sorted by group, split, identity, source path) and what was left out.

    Raises:
        BuilderError: On an unreadable image without ``skip_corrupt``, on repeated source paths,
            or when the selector returns an unknown path or split.
    """
    seen: set[str] = set()
    for candidate in candidates:
        if candidate.source_path in seen:
            raise BuilderError(
                f"{source_label} lists {candidate.source_path} twice; each image must be listed once"
            )
        seen.add(candidate.source_path)

    from tqdm.auto import tqdm  # loaded when a gallery is built, not when the builders list themselves

    loaded: dict[str, tuple[bytes, str]] = {}
    skipped: dict[str, Skipped] = {}
    duplicates: dict[str, Duplicate] = {}
    found: dict[str, Duplicate] = {}  # with keep_duplicates: listed, not removed (this round's)
    while True:
        active = [c for c in candidates if c.source_path not in skipped and c.source_path not in duplicates]
        assignment = _checked_assignment(select(active), active)
        pending = [c for c in active if c.source_path in assignment and c.source_path not in loaded]
        changed = False
        for candidate in tqdm(pending, desc=desc, unit="img", disable=not progress or not pending):
            problem, data = _read_candidate(candidate)
            if problem is not None:
                if not skip_corrupt:
                    raise BuilderError(
                        f"cannot read image {candidate.source_path} in {source_label}: {problem}. "
                        "Restore or remove the file, or rerun with --skip-corrupt "
                        "(skip_corrupt=True) to leave it out and list it in the card"
                    )
                logger.warning("skipping unreadable image %s: %s", candidate.source_path, problem)
                skipped[candidate.source_path] = Skipped(candidate.source_path, problem)
                changed = True
                continue
            loaded[candidate.source_path] = (data, hashlib.sha256(data).hexdigest())
        first_by_hash: dict[str, str] = {}
        found = {}
        for candidate in active:
            if candidate.source_path not in assignment or candidate.source_path not in loaded:
                continue
            digest = loaded[candidate.source_path][1]
            kept = first_by_hash.setdefault(digest, candidate.source_path)
            if kept != candidate.source_path:
                logger.warning("%s is a byte-identical copy of %s", candidate.source_path, kept)
                if keep_duplicates:
                    found[candidate.source_path] = Duplicate(
                        candidate.source_path, kept, digest, assignment[kept], assignment[candidate.source_path]
                    )
                    continue
                duplicates[candidate.source_path] = Duplicate(candidate.source_path, kept, digest)
                changed = True
        if not changed:
            break
    if not keep_duplicates:  # where each dropped copy's twin ended up
        duplicates = {
            path: Duplicate(d.source_path, d.duplicate_of, d.sha256, assignment.get(d.duplicate_of))
            for path, d in duplicates.items()
        }
    else:
        duplicates = found

    rows = [
        Row(c, assignment[c.source_path], *loaded[c.source_path])
        for c in active
        if c.source_path in assignment
    ]
    return Resolution(
        rows=tuple(sorted(rows, key=_row_key)),
        skipped=tuple(sorted(skipped.values(), key=lambda s: s.source_path)),
        duplicates=tuple(sorted(duplicates.values(), key=lambda d: d.source_path)),
    )


def build_gallery(
    spec: GallerySpec,
    candidates: Sequence[Candidate],
    select: Selector,
    out: str | os.PathLike[str],
    *,
    source_label: str,
    skip_corrupt: bool = False,
    progress: bool = True,
    overwrite: bool = False,
    keep_duplicates: bool = False,
    annotate: Callable[[Sequence[Candidate]], SelectionNotes] | None = None,
    variant: GalleryVariant | None = None,
) -> Path:
    """Select, check and write a complete gallery dataset folder; see the module docstring.

    Args:
        spec: Card content: source, groups, prompts, encoders, selection rule.
        candidates: Every image the rule may choose from, in source order.
        select: The builder's selection rule.
        out: Output folder; must not exist unless ``overwrite``.
        source_label: Names the source in error messages.
        skip_corrupt: Leave unreadable images out and list them in the card.
        progress: Show progress bars.
        overwrite: Replace an existing output folder (only once the new one is complete).
        keep_duplicates: See :func:`resolve_selection`.
        annotate: Called with the usable candidates the final selection was drawn from; its
            :class:`SelectionNotes` (per-group card fields and a paragraph) go into the card.
        variant: re-choose each identity's gallery images after the builder's selection
            (:mod:`~fp_rank.galleries.build.variants`: the paper's kmeans/random ablation).

    Returns:
        The output folder.

    Raises:
        BuilderError: See :func:`resolve_selection`; also when ``out`` exists, or when an
            identity ends with no gallery or no reference image.
    """
    out_path = Path(out)
    check_output(out_path, overwrite=overwrite)
    for group in spec.groups:
        check_config_name(group.name)
    resolution = resolve_selection(
        candidates,
        select,
        source_label=source_label,
        skip_corrupt=skip_corrupt,
        progress=progress,
        desc=f"{spec.builder}: reading images",
        keep_duplicates=keep_duplicates,
    )
    if variant is not None:
        resolution = Resolution(tuple(sorted(apply_variant(resolution.rows, variant), key=_row_key)),
                                resolution.skipped, resolution.duplicates)
        spec = replace(spec, selection=f"{spec.selection} Gallery-selection variant: {variant.describe()['note']}.")
    _check_rows(spec, resolution.rows)
    shards = _shards(spec, resolution.rows)
    summary = _summary(spec, resolution, shards)
    summary["keep_duplicates"] = keep_duplicates
    summary["gallery_selection"] = variant.describe() if variant is not None else dict(PROTOCOL_SELECTION)
    if annotate is not None:
        left_out = {d.source_path for d in resolution.duplicates if d.split is None}
        left_out |= {s.source_path for s in resolution.skipped}
        notes = annotate([c for c in candidates if c.source_path not in left_out])
        summary["group_notes"] = {g: dict(v) for g, v in notes.groups.items()}
        summary["selection_notes"] = notes.text

    with staged_folder(out_path, overwrite=overwrite) as staging:
        write_shards(staging, spec, shards)
        _write_manifest(staging, resolution.rows)
        card = render_card(spec, summary)
        (staging / "README.md").write_text(card, encoding="utf-8", newline="\n")
        (staging / EVAL_FILE).write_text(render_eval_yaml(spec, summary), encoding="utf-8", newline="\n")
    logger.info("wrote %s (%d images)", out_path, len(resolution.rows))
    return out_path


# --- helpers ---------------------------------------------------------------------------------


def _read_candidate(candidate: Candidate) -> tuple[str | None, bytes]:
    try:
        data = candidate.read()
    except FileNotFoundError:
        return "file not found", b""
    except OSError as exc:
        return f"{type(exc).__name__}: {exc}", b""
    if not data:
        return "empty file", b""
    return image_problem(data), data


def _checked_assignment(assignment: Mapping[str, str], active: Sequence[Candidate]) -> dict[str, str]:
    known = {c.source_path for c in active}
    for path, split in assignment.items():
        if path not in known:
            raise BuilderError(f"internal error: the selection returned an unknown image {path!r}")
        if split not in ALL_SPLITS:
            raise BuilderError(f"internal error: the selection returned split {split!r} for {path}")
    return dict(assignment)


def _row_key(row: Row) -> tuple[str, int, str, str]:
    return (row.candidate.group, ALL_SPLITS.index(row.split), row.candidate.identity, row.candidate.source_path)


def _check_rows(spec: GallerySpec, rows: Sequence[Row]) -> None:
    group_names = [g.name for g in spec.groups]
    per_identity: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for row in rows:
        if row.candidate.group not in group_names:
            raise BuilderError(f"internal error: image {row.candidate.source_path} has unknown group")
        per_identity[(row.candidate.group, row.candidate.identity)][row.split] += 1
    names: dict[str, str] = {}
    for row in rows:
        known = names.setdefault(row.candidate.identity, row.candidate.group)
        if known != row.candidate.group:
            raise BuilderError(
                f"identity {row.candidate.identity!r} appears in groups {known!r} and "
                f"{row.candidate.group!r}; an identity must belong to one group"
            )
    for group in group_names:
        if not any(key[0] == group for key in per_identity):
            raise BuilderError(
                f"group {group!r} has no images left after selection; check the source "
                "and the list of skipped files"
            )
    for (group, identity), counts in sorted(per_identity.items()):
        for split in (GALLERY_SPLIT, REFERENCE_SPLIT):
            if counts[split] == 0:
                raise BuilderError(
                    f"identity {identity!r} of group {group!r} has no {split} image; the source "
                    "has too few readable images of it for the selection rule"
                )


def _shards(spec: GallerySpec, rows: Sequence[Row]) -> dict[tuple[str, str], list[Row]]:
    shards: dict[tuple[str, str], list[Row]] = {}
    for group in spec.groups:
        for split in ALL_SPLITS:
            selected = [r for r in rows if r.candidate.group == group.name and r.split == split]
            if selected:
                shards[(group.name, split)] = selected
    return shards


def _summary(
    spec: GallerySpec, resolution: Resolution, shards: Mapping[tuple[str, str], Sequence[Row]]
) -> dict[str, Any]:
    identities: dict[str, str] = {}
    group_identities: dict[str, list[str]] = {}
    counts: dict[str, dict[str, int]] = {}
    for group in spec.groups:
        members = sorted({r.candidate.identity for r in resolution.rows if r.candidate.group == group.name})
        group_identities[group.name] = members
        counts[group.name] = {
            split: len(shards.get((group.name, split), ())) for split in ALL_SPLITS
        }
    for row in resolution.rows:
        identities.setdefault(row.candidate.identity, row.candidate.identity_name)
    configs: list[dict[str, Any]] = [
        {
            "config_name": ALL_CONFIG,
            "default": True,
            "data_files": [
                {"split": split, "path": [data_file(g.name, split) for g in spec.groups if (g.name, split) in shards]}
                for split in ALL_SPLITS
                if any((g.name, split) in shards for g in spec.groups)
            ],
        }
    ]
    for group in spec.groups:
        configs.append(
            {
                "config_name": group.name,
                "data_files": [
                    {"split": split, "path": data_file(group.name, split)}
                    for split in ALL_SPLITS
                    if (group.name, split) in shards
                ],
            }
        )
    per_identity: dict[str, dict[str, int]] = {}
    for row in resolution.rows:
        entry = per_identity.setdefault(row.candidate.identity, {s: 0 for s in ALL_SPLITS})
        entry[row.split] += 1
    return {
        "configs": configs,
        "counts": counts,
        "identity_counts": dict(sorted(per_identity.items())),
        "identities": dict(sorted(identities.items())),
        "group_identities": group_identities,
        "duplicates": [
            {"source_path": d.source_path, "duplicate_of": d.duplicate_of, "sha256": d.sha256,
             "duplicate_of_split": d.duplicate_of_split, "split": d.split}
            for d in resolution.duplicates
        ],
        "skipped": [{"source_path": s.source_path, "reason": s.reason} for s in resolution.skipped],
        "total": len(resolution.rows),
    }


