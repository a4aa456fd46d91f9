"""WildlifeReID-10k: which individuals are kept and how their images are split (the reference code's
draws, reproduced exactly), and how many individuals tie at each species' cut-off."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from fp_rank.galleries.build.sampling import legacy_state, sample_like_pandas
from fp_rank.galleries.build.spec import Candidate, SelectionNotes
from fp_rank.galleries.schema import GALLERY_SPLIT, HOLDOUT_SPLIT, REFERENCE_SPLIT

DEFAULT_SEED = 42
MIN_GALLERY = 5
MIN_REFERENCE = 4
MAX_REFERENCE = 10
MAX_GALLERY = 15
INDIVIDUALS_PER_SPECIES = 10


def has_eligible(counts: Iterable[int]) -> bool:
    return any(n >= MIN_REFERENCE + MIN_GALLERY for n in counts)


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
