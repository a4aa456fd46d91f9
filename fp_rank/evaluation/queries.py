"""The check stage: the run's generated images and their labels, matched to the gallery.

:class:`QuerySet` holds one entry per generated image (broadcast labels filled in, pandas Series
read by position); the functions below resolve its labels against a loaded gallery before any
image is encoded, so a broken run fails without costing compute.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from fp_rank.images.decode import describe_source
from fp_rank.errors import GalleryError, InputError
from fp_rank.galleries.load import Gallery
from fp_rank.runs import DEFAULT_METHOD



@dataclass
class QuerySet:
    """The generated images of a run and what is known of each (one entry per image)."""

    generated: Sequence[Any]
    identities: list[str]
    methods: list[str]
    prompts: list[str | None]
    seeds: list[int | None]
    files: list[str]
    conditioning: list[Any]
    renamed: int = 0  # labels that took the gallery's spelling (Unicode normalisation)
    clip_t_model: dict[str, Any] | None = None  # the CLIP-T checkpoint, when text alignment was scored

    @classmethod
    def from_arguments(
        cls, generated: Sequence[Any], identities: Sequence[str] | str, methods: Any, prompts: Any, seeds: Any,
        files: Any, conditioning: Any = None,
    ) -> QuerySet:
        """Broadcast single labels and fill defaults (arguments already validated)."""
        generated = _positional(generated)
        n = len(generated)
        names = [str(f) for f in _positional(files)] if files is not None else [
            describe_source(x, i) for i, x in enumerate(generated)
        ]
        return cls(
            generated=generated,
            identities=[identities] * n if isinstance(identities, str) else [str(x) for x in _positional(identities)],
            methods=[str(m) for m in _per_image(methods, n, DEFAULT_METHOD)],
            prompts=_per_image(prompts, n, None),
            seeds=_per_image(seeds, n, None),
            files=names,
            conditioning=[None] * n if conditioning is None else list(_positional(conditioning)),
        )

    def __len__(self) -> int:
        return len(self.generated)

    def count(self, mask: np.ndarray) -> dict[str, int]:
        """method -> how many images ``mask`` selects."""
        out = dict.fromkeys(self.methods, 0)
        for i in np.flatnonzero(mask):
            out[self.methods[i]] += 1
        return out


def _per_image(values: Any, n: int, default: Any) -> list[Any]:
    if values is None:
        return [default] * n
    if isinstance(values, (str, int, np.integer)) and not isinstance(values, bool):
        return [values] * n
    return list(_positional(values))


def _positional(values: Any) -> Any:
    """A sequence indexable by position: pandas Series by ``tolist()``, a 4-D image batch as a list."""
    if hasattr(values, "iloc") and hasattr(values, "tolist"):
        return values.tolist()
    if isinstance(values, np.ndarray) and values.ndim == 4:
        return list(values)
    return values


def resolve_identities(run: QuerySet, gal: Gallery, on_missing: str) -> tuple[np.ndarray, np.ndarray]:
    """Match labels to gallery identities; return (left out of ranking, without gallery images).

    A label equal to a gallery identity after Unicode NFC normalisation takes the gallery's
    spelling. Labels without gallery images raise under ``"error"`` (listing close matches), are
    left out under ``"skip"``, and under ``"zero"`` are ranked (AP 0) when their group is known.
    """
    known = set(gal.gallery.identities.tolist())
    by_nfc: dict[str, list[str]] = {}
    for ident in known:
        by_nfc.setdefault(unicodedata.normalize("NFC", ident), []).append(ident)
    for i, label in enumerate(run.identities):
        match = by_nfc.get(unicodedata.normalize("NFC", label), [])
        if label not in known and len(match) == 1:
            run.identities[i] = match[0]
            run.renamed += 1
    missing = np.asarray([label not in known for label in run.identities], dtype=bool)
    if missing.any() and on_missing == "error":
        gal.check_identities(run.identities)  # raises, listing close matches
    if on_missing == "zero":
        groupless = sorted({run.identities[i] for i in np.flatnonzero(missing)} - set(gal.identity_to_group))
        if groupless:
            raise InputError(
                f"on_missing='zero' scores a label without gallery images as AP 0 in its group, but "
                f"{len(groupless)} label(s) belong to no group of gallery {gal.id!r}: {groupless[:5]}; fix the labels "
                "or use on_missing='skip'"
            )
        return np.zeros(len(run), dtype=bool), missing
    if missing.all():
        raise InputError(
            f"none of the {len(run)} identity labels is in gallery {gal.id!r} (on_missing='skip' left nothing to "
            f"score); e.g. {run.identities[0]!r}"
        )
    return missing, missing


def check_conditioning_indices(run: QuerySet, gal: Gallery) -> None:
    """An int conditioning is a reference-split row of the query's own identity."""
    n_ref = len(gal.reference)
    for i, c in enumerate(run.conditioning):
        if not isinstance(c, (int, np.integer)) or isinstance(c, (bool, np.bool_)):
            continue
        if not 0 <= int(c) < n_ref:
            raise InputError(
                f"conditioning[{i}] = {int(c)} is not a row of the reference split (it has {n_ref} images, 0..{n_ref - 1})"
            )
        ref_identity = str(gal.reference.identities[int(c)])
        if ref_identity != run.identities[i]:
            raise InputError(
                f"conditioning[{i}] is reference image {int(c)} of identity {ref_identity!r}, but generated image {i} "
                f"({run.files[i]}) is labelled {run.identities[i]!r}; a method is conditioned on its own subject"
            )


def single_identity_queries(run: QuerySet, gal: Gallery, absent: np.ndarray, policy: str) -> np.ndarray:
    """True for images whose group has a single gallery identity (GalleryError unless ``policy='skip'``)."""
    idents_of: dict[str, set[str]] = {}
    for ident, group in zip(gal.gallery.identities.tolist(), gal.gallery.groups.tolist()):
        idents_of.setdefault(group, set()).add(ident)
    group_of = gal.identity_to_group
    groups = [None if absent[i] else group_of.get(label) for i, label in enumerate(run.identities)]
    lonely_groups = sorted({g for g in groups if g is not None and len(idents_of.get(g, ())) == 1})
    if lonely_groups and policy == "error":
        g = lonely_groups[0]
        raise GalleryError(
            f"group {g!r} of gallery {gal.id!r} has a single identity ({sorted(idents_of[g])[0]!r}): every query there "
            f"would rank it first and score AP 1. Fix the gallery, or pass single_identity_groups='skip' "
            f"(--single-identity-groups skip) to leave such groups out (they are counted). Groups: {lonely_groups}"
        )
    return np.asarray([g in lonely_groups for g in groups], dtype=bool)
