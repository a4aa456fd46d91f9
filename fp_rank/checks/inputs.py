"""Up-front validation of :func:`fp_rank.evaluate`'s arguments.

Every check runs before anything is loaded, decoded or encoded, so a bad argument costs no
compute and is reported as an :class:`~fp_rank.errors.InputError` naming the argument, the value
received and what would be accepted. Image *contents* are checked later, while decoding (each
unreadable image raises :class:`~fp_rank.errors.ImageDecodeError` naming it).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sized
from typing import Any

import numpy as np

from fp_rank.errors import InputError

ON_MISSING = ("error", "skip", "zero")
SINGLE_IDENTITY_GROUPS = ("error", "skip")
ON_INVALID = ("error", "skip")
BACKGROUND = ("keep", "remove")


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _array_ndim(value: Any) -> int | None:
    """The number of dimensions of a NumPy array or torch tensor (None for anything else)."""
    if isinstance(value, np.ndarray):
        return value.ndim
    torch = __import__("sys").modules.get("torch")
    if torch is not None and isinstance(value, torch.Tensor):
        return value.dim()
    return None


def _check_sequence(value: Any, name: str) -> int:
    ndim = _array_ndim(value)
    if ndim is not None and ndim != 4:
        shape = tuple(value.shape)
        hint = "one image" if ndim in (2, 3) else "not a batch of images"
        raise InputError(
            f"{name} is an array of shape {shape}: {hint}. Pass a list of images ([image] for one), or a 4-D "
            "(N, H, W, C) array for a batch; an image is never iterated row by row"
        )
    if isinstance(value, (str, bytes, bytearray, dict)) or not isinstance(value, Sized) or not isinstance(value, Iterable):
        raise InputError(
            f"{name} must be a list (or other sized sequence) of image sources, got {type(value).__name__} "
            f"{_describe(value)}"
        )
    n = len(value)
    if n == 0:
        raise InputError(f"{name} is empty: give at least one generated image")
    return n


def _per_image(value: Any, name: str, n: int, allowed: tuple[type, ...], what: str, *, none_items: bool) -> None:
    """``value`` is None, a single broadcast scalar, or one entry per image of an allowed type."""
    if value is None:
        return
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable) or not isinstance(value, Sized):
        raise InputError(f"{name} must be a list with one {what} per generated image, got {_describe(value)}")
    if len(value) != n:
        raise InputError(f"{name} has {len(value)} entries but there are {n} generated images; give one per image")
    for i, item in enumerate(value):
        if item is None and none_items:
            continue
        ok = isinstance(item, allowed) and not isinstance(item, (bool, np.bool_))
        if not ok:
            raise InputError(f"{name}[{i}] is {_describe(item)} of type {type(item).__name__}; expected {what}")


def check_evaluate_arguments(
    *,
    generated: Any,
    identities: Any,
    gallery: Any,
    gallery_config: Any = None,
    gallery_revision: Any = None,
    encoder_revision: Any = None,
    methods: Any = None,
    prompts: Any = None,
    seeds: Any = None,
    files: Any = None,
    batch_size: Any = 32,
    on_missing: Any = "error",
    on_invalid: Any = "error",
    cmc_ks: Any = (1,),
    top_k: Any = 0,
    single_identity_groups: Any = "error",
    conditioning: Any = None,
    flags: dict[str, Any] | None = None,
    background: Any = "keep",
    matting: Any = None,
) -> int:
    """Validate :func:`fp_rank.evaluate`'s arguments before any work is done.

    Args:
        generated: the generated image sources (a non-empty sized sequence).
        identities: one label per image or a single label.
        gallery: a folder, Hub id or :class:`~fp_rank.Gallery`.
        gallery_config: None or a string.
        gallery_revision: None or a string.
        encoder_revision: None, a string, or one string (or None) per encoder.
        methods: None, one label for all, or one label (string or int) per image.
        prompts: None or one string (or None) per image.
        seeds: None or one integer (or None) per image.
        files: None or one name (string or path) per image.
        batch_size: a positive integer.
        on_missing: ``"error"``, ``"skip"`` or ``"zero"``.
        on_invalid: ``"error"`` or ``"skip"``.
        cmc_ks: positive integer ranks.
        top_k: a non-negative integer.
        single_identity_groups: ``"error"`` or ``"skip"``.
        conditioning: None, or one entry per image: None, a non-negative int (a reference-split
            row) or an image source.
        flags: name -> value of arguments that must be booleans.
        background: ``"keep"`` or ``"remove"``.
        matting: None, or (with ``background="remove"``) a backend name, checkpoint, callable or
            :class:`~fp_rank.encoding.background.Matting`.

    Returns:
        The number of generated images.

    Raises:
        InputError: the first argument that is not acceptable, named with the value received.

    Example:
        >>> check_evaluate_arguments(generated=["a.png"], identities="x", gallery="g")
        1
    """
    n = _check_sequence(generated, "generated")

    if isinstance(identities, str):
        if not identities:
            raise InputError("identities is an empty string; give the identity label of the images")
    else:
        if _array_ndim(identities) not in (None, 1) or not isinstance(identities, Iterable) or not isinstance(
            identities, Sized
        ) or isinstance(identities, bytes):
            raise InputError(
                f"identities must be a list of identity labels (strings) or one string for all images, got "
                f"{type(identities).__name__} {_describe(identities)}"
            )
        if len(identities) != n:
            raise InputError(
                f"identities has {len(identities)} labels but there are {n} generated images; give one label per "
                "image (or a single string for all)"
            )
        for i, label in enumerate(identities):
            if not isinstance(label, str):
                raise InputError(
                    f"identity label #{i} is {_describe(label)} of type {type(label).__name__}; labels must be strings "
                    "that match the gallery's identity column exactly"
                )
            if not label:
                raise InputError(f"identity label #{i} is an empty string")

    from fp_rank.galleries.load import Gallery

    if not isinstance(gallery, (str, os.PathLike, Gallery)):
        raise InputError(
            f"gallery must be a folder, a Hub dataset id or a loaded fp_rank.Gallery, got {type(gallery).__name__} "
            f"{_describe(gallery)}"
        )
    if isinstance(gallery, str) and not gallery.strip():
        raise InputError("gallery is an empty string; give a gallery folder or Hub dataset id")
    for name, value in (
        ("gallery_config", gallery_config),
        ("gallery_revision", gallery_revision),
    ):
        if value is not None and not isinstance(value, str):
            raise InputError(f"{name} must be a string or None, got {type(value).__name__} {_describe(value)}")

    if encoder_revision is not None and not isinstance(encoder_revision, str):
        if not isinstance(encoder_revision, (list, tuple)) or not all(r is None or isinstance(r, str) for r in encoder_revision):
            raise InputError(
                f"encoder_revision must be a string, None, or a list with one string (or None) per encoder, got "
                f"{_describe(encoder_revision)}"
            )
    if check_flags_conflict(flags):
        raise InputError(
            "exclude_leaks=True needs check_leaks=True: without the check no copy is found, so nothing would be "
            "excluded"
        )
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

    if conditioning is not None:
        if _array_ndim(conditioning) not in (None, 4) or isinstance(conditioning, (str, bytes, dict)) or not isinstance(
            conditioning, Sized
        ):
            raise InputError(f"conditioning must be a list with one entry per generated image, got {_describe(conditioning)}")
        if len(conditioning) != n:
            raise InputError(
                f"conditioning has {len(conditioning)} entries but there are {n} generated images; give one per image "
                "(None where there is none)"
            )
        for i, item in enumerate(conditioning):
            if _is_int(item) and item < 0:
                raise InputError(f"conditioning[{i}] = {item} is negative; an int is a row of the reference split")
    if not _is_int(batch_size) or batch_size < 1:
        raise InputError(f"batch_size must be a positive integer, got {_describe(batch_size)}")
    if not isinstance(on_missing, str) or on_missing not in ON_MISSING:
        raise InputError(f"on_missing must be one of {list(ON_MISSING)}, got {_describe(on_missing)}")
    if not isinstance(on_invalid, str) or on_invalid not in ON_INVALID:
        raise InputError(f"on_invalid must be one of {list(ON_INVALID)}, got {_describe(on_invalid)}")
    if isinstance(cmc_ks, (str, bytes)) or not isinstance(cmc_ks, Iterable) or not isinstance(cmc_ks, Sized):
        raise InputError(f"cmc_ks must be a list of positive integer ranks, got {_describe(cmc_ks)}")
    for k in cmc_ks:
        if not _is_int(k) or k < 1:
            raise InputError(f"cmc_ks must hold positive integer ranks, got {_describe(k)} in {_describe(cmc_ks)}")
    if not isinstance(single_identity_groups, str) or single_identity_groups not in SINGLE_IDENTITY_GROUPS:
        raise InputError(
            f"single_identity_groups must be one of {list(SINGLE_IDENTITY_GROUPS)}, got {_describe(single_identity_groups)}"
        )
    if not _is_int(top_k) or top_k < 0:
        raise InputError(f"top_k must be a non-negative integer, got {_describe(top_k)}")
    for name, value in (flags or {}).items():
        if not isinstance(value, (bool, np.bool_)):
            raise InputError(f"{name} must be True or False, got {_describe(value)}")
    _check_background(background, matting)
    return n


def _check_background(background: Any, matting: Any) -> None:
    if not isinstance(background, str) or background not in BACKGROUND:
        raise InputError(f"background must be one of {list(BACKGROUND)}, got {_describe(background)}")
    if matting is None:
        return
    if background != "remove":
        raise InputError(
            f"matting={_describe(matting)} is given but background={background!r}; pass background='remove' to "
            "use it"
        )
    if not (callable(matting) or isinstance(matting, (str, os.PathLike)) or hasattr(matting, "apply")):
        raise InputError(
            "matting must be 'carvekit', a segmentation checkpoint (Hub id or folder), a callable PIL.Image -> "
            f"PIL.Image or a fp_rank.encoding.background.Matting, got {type(matting).__name__}"
        )


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


def check_flags_conflict(flags: Any) -> bool:
    """True when ``exclude_leaks`` is asked for while the leak check is off."""
    if not isinstance(flags, dict):
        return False
    return flags.get("exclude_leaks") is True and flags.get("check_leaks") is False
