"""Encoder options resolved before anything loads: device (an absent GPU is refused in one line),
autocast dtype, and how model inputs are made (``preprocessing``).
"""

from __future__ import annotations

from typing import Literal, get_args

import torch

from fp_rank.errors import InputError

#: How model inputs are made from the decoded images (``load_encoder(preprocessing=...)``).
#: ``"processor"``: the checkpoint's own preprocessing exactly as the reference code ran it
#: (transformers' image processor; OpenCV for MiewID). ``"fast"``: a torch reimplementation where
#: the backend has one (transformers processors of :mod:`fp_rank.encoding.fast_preprocess`, MiewID's
#: resize), faster and within a documented tolerance; elsewhere the same as ``"processor"``.
Preprocessing = Literal["processor", "fast"]

#: The accepted values of ``preprocessing``.
PREPROCESSING_OPTIONS: tuple[str, ...] = get_args(Preprocessing)

_DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
}


def _resolve_device(device: str | None) -> str:
    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    return check_device(device)


def check_device(device: str | None) -> str | None:
    """Refuse a device this machine does not have, before anything is loaded.

    Args:
        device: a torch device string (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``), or None
            (CUDA when available, else CPU).

    Returns:
        The device string (None stays None).

    Raises:
        InputError: not a torch device, or a CUDA/MPS device that is not available here; the
            message says what to pass instead.

    Example:
        >>> check_device("cpu")
        'cpu'
    """
    if device is None:
        return None
    if not isinstance(device, (str, torch.device)):
        raise InputError(f"device must be a string such as 'cpu' or 'cuda', got {type(device).__name__}")
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise InputError(f"device {device!r} is not a torch device (use 'cpu', 'cuda' or 'cuda:N')") from exc
    kind = parsed.type
    if kind == "cuda":
        if not torch.cuda.is_available():
            why = "this torch build has no CUDA support" if torch.version.cuda is None else "no CUDA GPU is visible"
            raise InputError(
                f"device {str(device)!r} was asked for, but CUDA is not available here ({why}); pass --device cpu "
                "(device='cpu') or leave the device unset"
            )
        count = torch.cuda.device_count()
        if parsed.index is not None and parsed.index >= count:
            raise InputError(
                f"device {str(device)!r} was asked for, but this machine has {count} CUDA device(s) "
                f"(cuda:0..cuda:{count - 1})"
            )
    elif kind == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise InputError(f"device {str(device)!r} was asked for, but MPS is not available here; pass --device cpu")
    elif kind != "cpu":
        backend = getattr(torch, kind, None)
        available = getattr(backend, "is_available", None)
        if not callable(available) or not available():
            raise InputError(f"device {str(device)!r} is not available on this machine; pass --device cpu")
    return str(device)


def _resolve_dtype(dtype: str | torch.dtype | None) -> str:
    if dtype is None:
        return "float32"
    if isinstance(dtype, torch.dtype):
        names = {torch.float32: "float32", torch.bfloat16: "bfloat16", torch.float16: "float16"}
        if dtype not in names:
            raise InputError(f"dtype {dtype} is not supported; use float32, bfloat16 or float16")
        return names[dtype]
    key = str(dtype).lower()
    if key not in _DTYPES:
        raise InputError(f"dtype {dtype!r} is not supported; use 'float32', 'bfloat16' or 'float16'")
    return {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}.get(key, key)


def resolve_preprocessing(preprocessing: str | None, fast_preprocess: bool | None = None) -> str:
    """The preprocessing option to apply, from ``preprocessing`` and the older ``fast_preprocess`` flag.

    Args:
        preprocessing: ``"processor"`` or ``"fast"``; None means the default (``"processor"``).
        fast_preprocess: the flag of fp-rank 0.1 (True = ``"fast"``, False = ``"processor"``);
            None when not given.

    Returns:
        ``"processor"`` or ``"fast"``.

    Raises:
        InputError: An unknown option, or a ``fast_preprocess`` contradicting ``preprocessing``.

    Example:
        >>> resolve_preprocessing(None), resolve_preprocessing("fast"), resolve_preprocessing(None, True)
        ('processor', 'fast', 'fast')
    """
    if preprocessing is not None and preprocessing not in PREPROCESSING_OPTIONS:
        raise InputError(
            f"preprocessing must be one of {', '.join(repr(o) for o in PREPROCESSING_OPTIONS)}, got {preprocessing!r}"
        )
    if fast_preprocess is None:
        return preprocessing or "processor"
    if not isinstance(fast_preprocess, bool):
        raise InputError(f"fast_preprocess must be True or False, got {fast_preprocess!r}")
    legacy = "fast" if fast_preprocess else "processor"
    if preprocessing is not None and preprocessing != legacy:
        raise InputError(
            f"fast_preprocess={fast_preprocess} contradicts preprocessing={preprocessing!r}; give preprocessing only"
        )
    return legacy
