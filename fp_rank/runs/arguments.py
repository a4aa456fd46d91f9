"""The checks of ``fp_rank.evaluate``'s per-image arguments, run before anything is loaded.

Each raises an :class:`~fp_rank.errors.InputError` naming the argument, the value received and
what would be accepted. Image *contents* are checked later, while decoding.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sized
from typing import Any

import numpy as np

from fp_rank.errors import InputError, describe_value


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _array_ndim(value: Any) -> int | None:
    """The number of dimensions of a NumPy array or torch tensor (None for anything else)."""
    if isinstance(value, np.ndarray):
        return value.ndim
    if hasattr(value, "dim") and hasattr(value, "shape") and hasattr(value, "detach"):  # a torch tensor
        return int(value.dim())
    return None


def check_per_image(
    generated: Any, identities: Any, *, methods: Any, prompts: Any, seeds: Any, files: Any, conditioning: Any,
) -> int:
    """Check the images and their per-image labels; return the number of images.

    Raises:
        InputError: the first argument that is not acceptable.
    """
    n = _check_generated(generated)
    _check_identities(identities, n)
    if isinstance(methods, str):
        if not methods:
            raise InputError("methods is an empty string; give a method label")
    elif not _is_int(methods):
        _per_image(methods, "methods", n, (str, int, np.integer), "a method label (string)", none_items=False)
        if methods is not None and any(isinstance(m, str) and not m for m in methods):
            raise InputError("methods holds an empty string; every image needs a method label")
        _check_distinct_as_text(methods, "methods")
    _per_image(prompts, "prompts", n, (str,), "a prompt string or None", none_items=True)
    _per_image(seeds, "seeds", n, (int, np.integer), "an integer seed or None", none_items=True)
    _per_image(files, "files", n, (str, os.PathLike), "a file name (string)", none_items=False)
    _check_conditioning(conditioning, n)
    return n


def _check_generated(value: Any) -> int:
    ndim = _array_ndim(value)
    if ndim is not None and ndim != 4:
        shape = tuple(value.shape)
        hint = "one image" if ndim in (2, 3) else "not a batch of images"
        raise InputError(
            f"generated is an array of shape {shape}: {hint}. Pass a list of images ([image] for one), or a 4-D "
            "(N, H, W, C) array for a batch; an image is never iterated row by row"
        )
    if isinstance(value, (str, bytes, bytearray, dict)) or not isinstance(value, Sized) or not isinstance(value, Iterable):
        raise InputError(
            f"generated must be a list (or other sized sequence) of image sources, got {type(value).__name__} "
            f"{describe_value(value)}"
        )
    if len(value) == 0:
        raise InputError("generated is empty: give at least one generated image")
    return len(value)


def _check_identities(identities: Any, n: int) -> None:
    if isinstance(identities, str):
        if not identities:
            raise InputError("identities is an empty string; give the identity label of the images")
        return
    if _array_ndim(identities) not in (None, 1) or not isinstance(identities, Iterable) or not isinstance(
        identities, Sized
    ) or isinstance(identities, bytes):
        raise InputError(
            f"identities must be a list of identity labels (strings) or one string for all images, got "
            f"{type(identities).__name__} {describe_value(identities)}"
        )
    if len(identities) != n:
        raise InputError(
            f"identities has {len(identities)} labels but there are {n} generated images; give one label per "
            "image (or a single string for all)"
        )
    for i, label in enumerate(identities):
        if not isinstance(label, str):
            raise InputError(
                f"identity label #{i} is {describe_value(label)} of type {type(label).__name__}; labels must be strings "
                "that match the gallery's identity column exactly"
            )
        if not label:
            raise InputError(f"identity label #{i} is an empty string")


def _per_image(value: Any, name: str, n: int, allowed: tuple[type, ...], what: str, *, none_items: bool) -> None:
    """``value`` is None, a single broadcast scalar, or one entry per image of an allowed type."""
    if value is None:
        return
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable) or not isinstance(value, Sized):
        raise InputError(f"{name} must be a list with one {what} per generated image, got {describe_value(value)}")
    if len(value) != n:
        raise InputError(f"{name} has {len(value)} entries but there are {n} generated images; give one per image")
    for i, item in enumerate(value):
        if item is None and none_items:
            continue
        ok = isinstance(item, allowed) and not isinstance(item, (bool, np.bool_))
        if not ok:
            raise InputError(f"{name}[{i}] is {describe_value(item)} of type {type(item).__name__}; expected {what}")


def _check_distinct_as_text(values: Any, name: str) -> None:
    """Labels that are different values but the same text (``1`` and ``"1"``) would merge: refuse."""
    if values is None:
        return
    first: dict[str, Any] = {}
    for value in values:
        key = str(value)
        seen = first.setdefault(key, value)
        if isinstance(seen, str) != isinstance(value, str):
            raise InputError(
                f"{name} holds {seen!r} and {value!r}, which both read as {key!r} and would become one label; use "
                "one type for every label (e.g. all strings)"
            )


def _check_conditioning(conditioning: Any, n: int) -> None:
    if conditioning is None:
        return
    if _array_ndim(conditioning) not in (None, 4) or isinstance(conditioning, (str, bytes, dict)) or not isinstance(
        conditioning, Sized
    ):
        raise InputError(f"conditioning must be a list with one entry per generated image, got {describe_value(conditioning)}")
    if len(conditioning) != n:
        raise InputError(
            f"conditioning has {len(conditioning)} entries but there are {n} generated images; give one per image "
            "(None where there is none)"
        )
    for i, item in enumerate(conditioning):
        if _is_int(item) and item < 0:
            raise InputError(f"conditioning[{i}] = {item} is negative; an int is a row of the reference split")
