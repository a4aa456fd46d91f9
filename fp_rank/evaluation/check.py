"""The check stage: a run's labels matched to the loaded gallery before any image is encoded.

The run's own arguments were checked when it became a :class:`~fp_rank.runs.Run`; here its
labels meet the gallery, so a broken run fails without costing compute.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from fp_rank.errors import GalleryError, InputError, Opt
from fp_rank.galleries.load import Gallery
from fp_rank.errors import describe_value
from fp_rank.runs import IdentityMatcher, Run


def check_gallery_argument(gallery: Any) -> None:
    """``gallery`` is a folder, a Hub id or a loaded :class:`~fp_rank.Gallery`."""
    if not isinstance(gallery, (str, os.PathLike, Gallery)):
        raise InputError(
            f"gallery must be a folder, a Hub dataset id or a loaded fp_rank.Gallery, got {type(gallery).__name__} "
            f"{describe_value(gallery)}"
        )
    if isinstance(gallery, str) and not gallery.strip():
        raise InputError("gallery is an empty string; give a gallery folder or Hub dataset id")


@dataclass(frozen=True)
class Matched:
    """A run whose labels met the gallery.

    Attributes:
        run: the run, each label in the gallery's spelling where one matched.
        renamed: how many labels took the gallery's spelling.
        missing: per image, its identity has no gallery image.
        absent: per image, left out of the ranking (missing under ``on_missing="skip"``).
    """

    run: Run
    renamed: int
    missing: np.ndarray
    absent: np.ndarray


def match_labels(run: Run, gal: Gallery, on_missing: str) -> Matched:
    """Match labels to gallery identities (:class:`~fp_rank.runs.IdentityMatcher`).

    Labels without gallery images raise under ``"error"`` (listing close matches), are left out
    under ``"skip"``, and under ``"zero"`` are ranked (AP 0) when their group is known.
    """
    matcher = IdentityMatcher(gal.gallery.identities.tolist())
    labels, renamed = matcher.resolve(run.identities)
    run = run.with_identities(labels) if renamed else run
    missing = np.asarray([label not in matcher.known for label in labels], dtype=bool)
    if missing.any() and on_missing == "error":
        gal.check_identities(labels)  # raises, listing close matches
    if on_missing == "zero":
        groupless = sorted({labels[i] for i in np.flatnonzero(missing)} - set(gal.identity_to_group))
        if groupless:
            raise InputError(
                Opt("on_missing", "zero"), " scores a label without gallery images as AP 0 in its group, but "
                f"{len(groupless)} label(s) belong to no group of gallery {gal.id!r}: {groupless[:5]}; fix the labels "
                "or use ", Opt("on_missing", "skip"),
            )
        return Matched(run, renamed, missing, np.zeros(len(run), dtype=bool))
    if missing.all():
        raise InputError(
            f"none of the {len(run)} identity labels is in gallery {gal.id!r} (", Opt("on_missing", "skip"),
            f" left nothing to score); e.g. {labels[0]!r}",
        )
    return Matched(run, renamed, missing, missing)


def check_conditioning_indices(run: Run, gal: Gallery) -> None:
    """Every conditioning is usable, checked before any encoding, each problem naming the generated image.

    An int is a reference-split row of the query's own identity; any other source (a file, bytes,
    an image) must decode, each distinct one once (a missing or truncated file is refused here,
    not after the generated images were encoded).
    """
    from fp_rank.images.decode import decode_problem, describe_source

    n_ref = len(gal.reference)
    checked: dict[Any, str | None] = {}
    for i, image in enumerate(run):
        c = image.conditioning
        if c is None:
            continue
        if not isinstance(c, (int, np.integer)) or isinstance(c, (bool, np.bool_)):
            key = os.fspath(c) if isinstance(c, (str, os.PathLike)) else id(c)
            if key not in checked:
                checked[key] = decode_problem(c, describe_source(c))
            if checked[key]:
                raise InputError(
                    f"generated image {image.file or i} ({image.identity!r}): its conditioning image cannot be used: "
                    f"{checked[key]}; fix or remove its conditioning entry (the pairwise baseline then uses the "
                    "identity's reference images)"
                )
            continue
        if not 0 <= int(c) < n_ref:
            raise InputError(
                f"conditioning[{i}] = {int(c)} is not a row of the reference split (it has {n_ref} images, 0..{n_ref - 1})"
            )
        ref_identity = str(gal.reference.identities[int(c)])
        if ref_identity != image.identity:
            raise InputError(
                f"conditioning[{i}] is reference image {int(c)} of identity {ref_identity!r}, but generated image {i} "
                f"({image.file}) is labelled {image.identity!r}; a method is conditioned on its own subject"
            )


def single_identity_queries(run: Run, gal: Gallery, absent: np.ndarray, policy: str) -> np.ndarray:
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
            "would rank it first and score AP 1. Fix the gallery, or pass ", Opt("single_identity_groups", "skip"),
            f" to leave such groups out (they are counted). Groups: {lonely_groups}",
        )
    return np.asarray([g in lonely_groups for g in groups], dtype=bool)
