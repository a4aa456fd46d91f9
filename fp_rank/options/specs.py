"""The checks of the options whose values are not plain (models with revisions, devices, the
background, the cache)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from fp_rank.errors import InputError, Opt, describe_value
from fp_rank.hub_access import looks_like_path
from fp_rank.options.kinds import as_bool

@dataclass(frozen=True)
class ModelChoice:
    """A model named by an option: what to load and, for a Hub id, the revision written after ``@``.

    Attributes:
        spec: an alias, Hub id or folder; or (encoders) a callable or ``fp_rank.Encoder``.
        revision: the weights revision (``ID@REVISION``), None when not pinned.
    """

    spec: Any
    revision: str | None = None


class _Recommended:
    """The gallery card's recommended encoder, chosen when the gallery is loaded (see :data:`RECOMMENDED`)."""

    def __repr__(self) -> str:
        return "<the gallery card's recommended encoder>"


#: ``ModelChoice(RECOMMENDED, revision)``: the gallery card's recommended encoder at ``revision``
#: (what fp-rank 0.1's ``encoder_revision`` without ``encoder`` meant).
RECOMMENDED = _Recommended()


def split_revision(text: str) -> tuple[str, str | None]:
    """``"ID@REVISION"`` -> ``("ID", "REVISION")``; an existing path or a name without ``@`` is kept whole.

    Hub ids cannot hold ``@``, so the last ``@`` of a name that is not an existing path starts
    the revision (a branch, tag or commit).

    Example:
        >>> split_revision("facebook/dinov2-base@a1b2c3"), split_revision("dinov2-base")
        (('facebook/dinov2-base', 'a1b2c3'), ('dinov2-base', None))
    """
    if "@" not in text or os.path.exists(text):
        return text, None
    name, _, revision = text.rpartition("@")
    if not name or not revision:
        raise InputError(f"{text!r} is not NAME@REVISION: both parts must be non-empty")
    return name, revision


def _model(value: Any, name: str, *, objects: bool) -> ModelChoice:
    if isinstance(value, ModelChoice):
        return value
    if isinstance(value, os.PathLike):
        return ModelChoice(os.fspath(value))
    if isinstance(value, str):
        if not value.strip():
            raise InputError(Opt(name), " is an empty string; give an alias, a Hub id or a folder")
        return ModelChoice(*split_revision(value))
    if objects and (callable(value) or hasattr(value, "identity")):
        return ModelChoice(value)
    raise InputError(
        Opt(name), f" must be an alias, a Hub id or a folder{' (or a callable or fp_rank.Encoder)' if objects else ''}, "
        f"got {type(value).__name__} {describe_value(value)}"
    )


def check_encoder(value: Any) -> tuple[ModelChoice, ...] | None:
    """None (the gallery card's encoder), one encoder, or a non-empty list of them."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        if not value:
            raise InputError(Opt("encoder"), " is an empty list")
        return tuple(_model(v, "encoder", objects=True) for v in value)
    return (_model(value, "encoder", objects=True),)


def check_clip_t(value: Any) -> ModelChoice | None:
    return None if value is None else _model(value, "clip_t", objects=False)


def check_judge(value: Any) -> ModelChoice | None:
    """None, ``openai:MODEL``, a vision-language model's Hub id or folder (``ID@REVISION``), or a judge object."""
    if value is None or isinstance(value, ModelChoice):
        return value
    if isinstance(value, str) and value.startswith("openai:"):
        if not value[len("openai:"):].strip():
            raise InputError(Opt("judge"), " openai:MODEL needs the model's name after the colon, e.g. openai:gpt-4o")
        return ModelChoice(value)
    if isinstance(value, (str, os.PathLike)):
        return _model(value, "judge", objects=False)
    if hasattr(value, "ask") and hasattr(value, "identity"):
        return ModelChoice(value)
    raise InputError(
        Opt("judge"), f" must be openai:MODEL, a vision-language model's Hub id or folder, or an object with "
        f"identity() and ask(); got {type(value).__name__} {describe_value(value)}"
    )


def check_judge_prompt(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, (str, os.PathLike)) and os.fspath(value):
        return os.fspath(value)
    raise InputError(Opt("judge_prompt"), f" must be a folder, got {describe_value(value)}")


def check_max_calls(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(Opt("judge_max_calls"), f" must be a positive integer or None, got {describe_value(value)}")
    return int(value)


def max_calls_from_cli(text: str) -> Any:
    try:
        return int(text)
    except ValueError:
        return text  # refused, named, by check_max_calls


def check_device(value: Any) -> str | None:
    """A device name (its availability is checked when the encoder loads, before any gallery work)."""
    if value is None:
        return None
    if isinstance(value, str) or type(value).__name__ == "device":  # a str or a torch.device
        return str(value)
    raise InputError(Opt("device"), f" must be a string such as 'cpu' or 'cuda', got {type(value).__name__}")


#: The named values of ``background`` (any other string names a matting checkpoint).
BACKGROUND_WORDS = ("keep", "remove", "carvekit")


def check_background(value: Any) -> Any:
    """``"keep"``, ``"remove"`` (carvekit), a checkpoint (Hub id or folder), a callable or a ``Matting``."""
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, str):
        if value in BACKGROUND_WORDS or os.path.isdir(value) or (value.count("/") == 1 and not looks_like_path(value)):
            return value
        raise InputError(
            Opt("background"), f" must be one of {list(BACKGROUND_WORDS)}, a matting checkpoint (a Hub id ORG/NAME or "
            f"a folder) or, from Python, a callable; got {value!r}"
        )
    if callable(value) or hasattr(value, "apply"):
        return value
    raise InputError(
        Opt("background"), " must be 'keep', 'remove', a matting checkpoint (Hub id or folder), a callable "
        f"PIL.Image -> PIL.Image or a fp_rank.encoding.background.Matting, got {type(value).__name__}"
    )


#: Strings that read as a yes or a no: refused as cache folders (``cache="yes"`` means True to a person).
_BOOLEAN_WORDS = frozenset({"yes", "no", "true", "false", "on", "off", "0", "1", "none", "y", "n"})


def check_cache(value: Any) -> bool | str:
    """True (the default folder), False (off) or a folder."""
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return as_bool("cache", value)
    if isinstance(value, (str, os.PathLike)) and os.fspath(value):
        folder = os.fspath(value)
        if folder.strip().lower() in _BOOLEAN_WORDS:
            raise InputError(
                Opt("cache"), f" must be True or False, or a folder; {folder!r} reads as a yes or a no, not a folder "
                "(write ./" + folder + " for a folder of that name)"
            )
        return folder
    raise InputError(Opt("cache"), f" must be True or False, or a folder, got {describe_value(value)}")


def cache_from_cli(text: str) -> bool | str:
    return {"on": True, "off": False}.get(text, text)


#: Other spellings of the ``dtype`` choices that fp-rank 0.1 accepted (any letter case).
DTYPE_SPELLINGS = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


def dtype_spelling(value: Any) -> Any:
    """``dtype`` as the choice it names: ``"bf16"``, ``"BFloat16"`` or ``torch.bfloat16`` -> ``"bfloat16"``.

    Example:
        >>> dtype_spelling("BF16"), dtype_spelling("float16"), dtype_spelling(None)
        ('bfloat16', 'float16', None)
    """
    if type(value).__name__ == "dtype" and str(value).startswith("torch."):  # a torch.dtype, without importing torch
        value = str(value).removeprefix("torch.")
    if isinstance(value, str):
        key = value.lower()
        return DTYPE_SPELLINGS.get(key, key)
    return value


def preprocessing_spelling(value: Any) -> Any:
    """``preprocessing``: None means the default, as in fp-rank 0.1."""
    return "processor" if value is None else value

