"""Every option of :func:`fp_rank.evaluate`, declared once.

:data:`OPTIONS` holds one :class:`Option` per keyword: its name, default, accepted values, help
text, documentation group and command-line flag. Everything else derives from it:

* :func:`resolve_options` checks a call's keywords (before anything is loaded) and returns the
  normalised :class:`Options`;
* ``fp_rank.evaluate``'s signature and the ``Args`` of its docstring (:func:`parameters`,
  :func:`docstring_section`);
* the ``fp-rank evaluate`` flags and how the CLI spells an option in messages (:mod:`fp_rank.cli`);
* the ``compute()`` keywords of the ``evaluate`` module and its description (:mod:`fp_rank.metric`);
* the options table of the metric card and ``docs/options.md`` (:func:`markdown_table`).

Options that only make sense together are one option: one leak policy (``leaks``), one cache
setting (``cache``), one background setting (``background``), and an encoder's weights revision
written into its name (``ID@REVISION``). The older keywords still work for one version with a
:class:`~fp_rank.errors.FpRankDeprecationWarning` (:data:`DEPRECATED`).

Nothing here imports torch: the declaration is read by ``fp-rank --help``.

Example:
    >>> opts = resolve_options({"leaks": "exclude", "cmc_ks": [5, 1]})
    >>> opts.leaks, opts.cmc_ks, opts.batch_size
    ('exclude', (1, 5), 32)
    >>> option("on_missing").choices
    ('error', 'skip', 'zero')
"""

from __future__ import annotations

import numbers
import os
import warnings
from collections.abc import Callable, Iterable, Mapping, Sized
from dataclasses import dataclass
from typing import Any, Literal

from fp_rank.errors import FpRankDeprecationWarning, InputError, Opt
from fp_rank.hub_access import looks_like_path

#: How an option's values are checked and how the command line reads them.
Kind = Literal["bool", "int", "ints", "choice", "text", "spec"]

#: Documentation groups, in the order the docs and ``--help`` list them.
GROUPS: dict[str, str] = {
    "gallery": "Gallery",
    "encoder": "Encoder",
    "scoring": "Scoring",
    "output": "Output",
}


def describe_value(value: Any) -> str:
    """``repr(value)``, cut to 80 characters, for messages."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


@dataclass(frozen=True)
class Shorthand:
    """Another command-line flag that sets an option to a fixed value (``--no-cache`` = ``--cache off``)."""

    flag: str
    value: Any
    help: str


@dataclass(frozen=True)
class Option:
    """One keyword of :func:`fp_rank.evaluate`.

    Attributes:
        name: the Python keyword.
        default: its default value.
        help: one sentence for ``--help``, docstrings and the docs table.
        group: a key of :data:`GROUPS`.
        kind: how values are checked: ``bool``, ``int`` (>= ``minimum``), ``ints`` (a list of
            them), ``choice`` (one of ``choices``, or None when that is the default), ``text``
            (a string or None), ``spec`` (checked by ``check``).
        annotation: the type shown in the signature.
        flag: the ``fp-rank evaluate`` flag (None: Python only). For a bool whose default is
            True the flag turns it off (``--no-ceilings``), else on.
        choices: the accepted values of a ``choice``.
        minimum: the smallest accepted ``int``.
        metavar: the value's name in ``--help``.
        repeat: the flag may be given several times (a list).
        check: for ``spec``: takes the value, returns it normalised, raises :class:`InputError`.
        from_cli: turns the flag's text into the Python value (default: as typed).
        shorthands: other flags setting a fixed value.
        values: how the docs table states the accepted values (default: from the kind).
        off_help: for a bool whose default is True, the help of its flag (which turns it off).
    """

    name: str
    default: Any
    help: str
    group: str
    kind: Kind
    annotation: str
    flag: str | None = None
    choices: tuple[str, ...] = ()
    minimum: int | None = None
    metavar: str | None = None
    repeat: bool = False
    check: Callable[[Any], Any] | None = None
    from_cli: Callable[[str], Any] | None = None
    shorthands: tuple[Shorthand, ...] = ()
    values: str = ""
    off_help: str = ""

    def validate(self, value: Any) -> Any:
        """``value`` checked against this option's kind, normalised.

        Raises:
            InputError: naming the option, the value received and what is accepted.
        """
        return _CHECKS[self.kind](self, value)

    def sentence(self) -> str:
        """The help with the accepted choices and the default, for docstrings and the evaluate module."""
        choices = f"; one of {', '.join(repr(c) for c in self.choices)}" if self.choices else ""
        return self.help + choices + ("" if self.default is None else f"; default {self.default!r}")

    def accepted(self) -> str:
        """The accepted values, as the docs table states them."""
        if self.values:
            return self.values
        if self.kind == "choice":
            return ", ".join(f"`{c}`" for c in self.choices) + (" or None" if self.default is None else "")
        return {
            "bool": "True, False",
            "int": f"integer >= {self.minimum}",
            "ints": f"integers >= {self.minimum}",
            "text": "string or None",
        }.get(self.kind, "")


def _as_bool(name: str, value: Any) -> bool:
    if type(value).__name__ == "bool_" or isinstance(value, bool):
        return bool(value)
    raise InputError(Opt(name), f" must be True or False, got {describe_value(value)}")


def _bool(opt: Option, value: Any) -> bool:
    return _as_bool(opt.name, value)


def _is_int(value: Any) -> bool:
    """A Python or NumPy integer (NumPy's integers register as ``numbers.Integral``), not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _int(opt: Option, value: Any) -> int:
    low = opt.minimum if opt.minimum is not None else 0
    what = {0: "a non-negative integer", 1: "a positive integer"}.get(low, f"an integer >= {low}")
    if not _is_int(value) or int(value) < low:
        raise InputError(Opt(opt.name), f" must be {what}, got {describe_value(value)}")
    return int(value)


def _ints(opt: Option, value: Any) -> tuple[int, ...]:
    low = opt.minimum if opt.minimum is not None else 0
    what = {0: "non-negative integers", 1: "positive integers"}.get(low, f"integers >= {low}")
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable) or not isinstance(value, Sized):
        raise InputError(Opt(opt.name), f" must be a list of {what}, got {describe_value(value)}")
    for item in value:
        if not _is_int(item) or int(item) < low:
            raise InputError(Opt(opt.name), f" must hold {what}, got {describe_value(item)} in {describe_value(value)}")
    return tuple(sorted({int(item) for item in value}))


def _choice(opt: Option, value: Any) -> str | None:
    if value is None and opt.default is None:
        return None
    if not isinstance(value, str) or value not in opt.choices:
        raise InputError(Opt(opt.name), f" must be one of {list(opt.choices)}, got {describe_value(value)}")
    return value


def _text(opt: Option, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InputError(Opt(opt.name), f" must be a string or None, got {type(value).__name__} {describe_value(value)}")
    return value


def _spec(opt: Option, value: Any) -> Any:
    return opt.check(value) if opt.check is not None else value


_CHECKS: dict[str, Callable[[Option, Any], Any]] = {
    "bool": _bool, "int": _int, "ints": _ints, "choice": _choice, "text": _text, "spec": _spec,
}


# -- the spec checks ------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelChoice:
    """A model named by an option: what to load and, for a Hub id, the revision written after ``@``.

    Attributes:
        spec: an alias, Hub id or folder; or (encoders) a callable or ``fp_rank.Encoder``.
        revision: the weights revision (``ID@REVISION``), None when not pinned.
    """

    spec: Any
    revision: str | None = None


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


def _check_encoder(value: Any) -> tuple[ModelChoice, ...] | None:
    """None (the gallery card's encoder), one encoder, or a non-empty list of them."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        if not value:
            raise InputError(Opt("encoder"), " is an empty list")
        return tuple(_model(v, "encoder", objects=True) for v in value)
    return (_model(value, "encoder", objects=True),)


def _check_clip_t(value: Any) -> ModelChoice | None:
    return None if value is None else _model(value, "clip_t", objects=False)


def _check_device(value: Any) -> str | None:
    """A device name (its availability is checked when the encoder loads, before any gallery work)."""
    if value is None:
        return None
    if isinstance(value, str) or type(value).__name__ == "device":  # a str or a torch.device
        return str(value)
    raise InputError(Opt("device"), f" must be a string such as 'cpu' or 'cuda', got {type(value).__name__}")


#: The named values of ``background`` (any other string names a matting checkpoint).
BACKGROUND_WORDS = ("keep", "remove", "carvekit")


def _check_background(value: Any) -> Any:
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


def _check_cache(value: Any) -> bool | str:
    """True (the default folder), False (off) or a folder."""
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return _as_bool("cache", value)
    if isinstance(value, (str, os.PathLike)) and os.fspath(value):
        folder = os.fspath(value)
        if folder.strip().lower() in _BOOLEAN_WORDS:
            raise InputError(
                Opt("cache"), f" must be True or False, or a folder; {folder!r} reads as a yes or a no, not a folder "
                "(write ./" + folder + " for a folder of that name)"
            )
        return folder
    raise InputError(Opt("cache"), f" must be True or False, or a folder, got {describe_value(value)}")


def _cache_from_cli(text: str) -> bool | str:
    return {"on": True, "off": False}.get(text, text)


# -- the declaration ------------------------------------------------------------------------

OPTIONS: tuple[Option, ...] = (
    Option("gallery_config", None, "gallery config: one group of the gallery, or 'all'", "gallery", "text",
           "str | None", flag="--config"),
    Option("gallery_revision", None, "Hub revision (branch, tag or commit) of the gallery", "gallery", "text",
           "str | None", flag="--revision"),
    Option("min_gallery_images", 2, "fewest gallery images an identity may have", "gallery", "int", "int",
           flag="--min-gallery-images", minimum=1),
    Option("on_duplicate", "error", "identical images inside the gallery or shared with its reference split: "
           "fail, or allow them", "gallery", "choice", "str", flag="--on-duplicate", choices=("error", "allow")),
    Option("encoder", None, "encoder: a registry alias, Hub id or folder (ID@REVISION pins the weights), or from "
           "Python a callable or fp_rank.Encoder; several (a list, or the flag repeated) each score the run. "
           "Default: the gallery card's recommended primary encoder", "encoder", "spec",
           "str | Encoder | Callable | Sequence[str | Encoder] | None", flag="--encoder", metavar="ENCODER",
           repeat=True, check=_check_encoder, values="alias, Hub id, folder, `ID@REVISION`; a list"),
    Option("device", None, "torch device, e.g. cpu, cuda, cuda:1 (default: CUDA when available)", "encoder",
           "spec", "str | None", flag="--device", check=_check_device, values="torch device name"),
    Option("dtype", None, "autocast dtype of the encoder (default float32; recorded in the report)", "encoder",
           "choice", "str | None", flag="--dtype", choices=("float32", "bfloat16", "float16")),
    Option("preprocessing", "processor", "model inputs exactly as the reference code makes them (the "
           "checkpoint's image processor; OpenCV for miewid), or fp-rank's faster torch reimplementation "
           "(within a documented tolerance; recorded in the report)", "encoder", "choice", "str",
           flag="--preprocessing", choices=("processor", "fast")),
    Option("batch_size", 32, "images per forward pass (memory is bounded by it, not by the image count)",
           "encoder", "int", "int", flag="--batch-size", minimum=1),
    Option("num_workers", 0, "worker processes decoding and preprocessing images while the model runs (0: in "
           "this process, one batch ahead); the numbers do not depend on it", "encoder", "int", "int",
           flag="--workers", minimum=0),
    Option("background", "keep", "keep the background, or remove it from every encoded image (gallery, "
           "reference, holdout, generated, conditioning) before the encoder, filling it with grey 130 as the "
           "reference code's --remove_background does: 'remove' uses carvekit with the reference's settings "
           "(pip install 'fp-rank[background]'); a transformers segmentation checkpoint (Hub id or folder) or, "
           "from Python, a callable PIL.Image -> PIL.Image names another matting backend", "encoder", "spec",
           "str | Callable | Matting", flag="--background", metavar="keep|remove|BACKEND", check=_check_background,
           values="`keep`, `remove`, a matting checkpoint; a callable"),
    Option("trust_remote_code", False, "allow encoders that run their repository's code (miewid)", "encoder",
           "bool", "bool", flag="--trust-remote-code"),
    Option("cache", True, "embedding cache of the gallery, reference and holdout images and of the generated "
           "images: on (the default folder, $FP_RANK_CACHE or $HF_HOME/fp_rank), off, or a folder",
           "encoder", "spec", "bool | str | PathLike", flag="--cache", metavar="on|off|FOLDER", check=_check_cache,
           from_cli=_cache_from_cli, shorthands=(Shorthand("--no-cache", False, "the same as --cache off"),),
           values="True, False, a folder"),
    Option("on_missing", "error", "identity labels without gallery images: fail (listing close matches), leave "
           "those images out, or score them AP 0 in their group as the reference code does (counted either "
           "way)", "scoring", "choice", "str", flag="--on-missing", choices=("error", "skip", "zero")),
    Option("on_invalid", "error", "unreadable generated images: fail, or leave them out and list them",
           "scoring", "choice", "str", flag="--on-invalid", choices=("error", "skip")),
    Option("single_identity_groups", "error", "gallery groups with one identity (every query would score AP "
           "1): fail, or leave their queries out (counted)", "scoring", "choice", "str",
           flag="--single-identity-groups", choices=("error", "skip")),
    Option("leaks", "flag", "generated images that copy a gallery, reference or holdout image (exact or near "
           "copies): flag them in the report, leave them out of every score (counted), or do not check",
           "scoring", "choice", "str", flag="--leaks", choices=("flag", "exclude", "off")),
    Option("cmc_ks", (1, 5, 10), "ranks k of CMC@k and Recall@k", "scoring", "ints", "Sequence[int]",
           flag="--cmc-ks", minimum=1, metavar="K"),
    Option("top_k", 0, "keep each query's top-k gallery matches in its row (for figures)", "scoring", "int",
           "int", flag="--top-k", minimum=0),
    Option("ceilings", True, "also score the real images (holdout, reference) as queries: the real-image "
           "ceiling and baseline", "scoring", "bool", "bool", flag="--no-ceilings",
           off_help="skip the real-image ceiling and baseline (holdout and reference images as queries)"),
    Option("clip_t", None, "also score text alignment (CLIP-T) of every image with a prompt, with this CLIP "
           "checkpoint (alias such as clip-vit-b32, Hub id or folder; ID@REVISION pins it)", "scoring", "spec",
           "str | None", flag="--clip-t", metavar="MODEL", check=_check_clip_t,
           values="alias, Hub id, folder, `ID@REVISION`"),
    Option("progress", True, "show progress bars (ours, datasets' and transformers')", "output", "bool", "bool",
           flag="--no-progress", off_help="hide progress bars (ours, datasets' and transformers')"),
)

_BY_NAME: dict[str, Option] = {o.name: o for o in OPTIONS}


def option(name: str) -> Option:
    """The declared option ``name``.

    Raises:
        InputError: no option has that name (the message lists them).
    """
    try:
        return _BY_NAME[name]
    except KeyError:
        raise InputError(f"unknown option {name!r}; options: {', '.join(_BY_NAME)}") from None


# -- older spellings --------------------------------------------------------------------------


@dataclass(frozen=True)
class Deprecated:
    """A keyword (and flag) of fp-rank 0.1 that still works in 0.2 and goes in 0.3.

    Attributes:
        name: the old Python keyword.
        flag: the old ``fp-rank evaluate`` flag.
        instead: the option that replaces it.
        how: what to write instead, for the warning (text and :class:`~fp_rank.errors.Opt` parts).
        switch: the old flag took no value; it set the keyword to this.
    """

    name: str
    flag: str
    instead: str
    how: tuple[str | Opt, ...]
    switch: Any = None


DEPRECATED: tuple[Deprecated, ...] = (
    Deprecated("encoder_revision", "--encoder-revision", "encoder", ("write the revision after the id: ID@REVISION",)),
    Deprecated("clip_t_revision", "--clip-t-revision", "clip_t", ("write the revision after the id: ID@REVISION",)),
    Deprecated("cache_dir", "--cache-dir", "cache", ("give the folder as the cache value",)),
    Deprecated("check_leaks", "--no-leak-check", "leaks", (Opt("leaks", "off"), " turns the check off"), switch=False),
    Deprecated("exclude_leaks", "--exclude-leaks", "leaks", (Opt("leaks", "exclude"), " leaves copies out"), switch=True),
    Deprecated("matting", "--matting", "background", ("give the matting backend as the background value",)),
)
_DEPRECATED = {d.name: d for d in DEPRECATED}

#: The version that removes the older spellings.
REMOVED_IN = "0.3"


def _warn(old: Deprecated) -> None:
    warnings.warn(
        FpRankDeprecationWarning(
            Opt(old.name), f" is deprecated and will be removed in fp-rank {REMOVED_IN}; use ", Opt(old.instead), " (",
            *old.how, ")",
        ),
        stacklevel=4,
    )


def _translate(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Older keywords -> the options that replace them (each one warns)."""
    old = {name: kwargs.pop(name) for name in list(kwargs) if name in _DEPRECATED}
    for name in old:
        _warn(_DEPRECATED[name])
    if "check_leaks" in old or "exclude_leaks" in old:
        check = _as_bool("check_leaks", old.get("check_leaks", True))
        exclude = _as_bool("exclude_leaks", old.get("exclude_leaks", False))
        if exclude and not check:
            raise InputError(
                Opt("exclude_leaks", True), " needs ", Opt("check_leaks", True),
                ": without the check no copy is found, so nothing would be excluded",
            )
        kwargs["leaks"] = "exclude" if exclude else "flag" if check else "off"
    if "cache_dir" in old and old["cache_dir"] is not None and kwargs.get("cache", True) is not False:
        kwargs["cache"] = os.fspath(old["cache_dir"])
    if old.get("matting") is not None:
        background = kwargs.get("background", "keep")
        if background != "remove":
            raise InputError(
                Opt("matting", old["matting"]), " is given but ", Opt("background", background), "; pass ",
                Opt("background", "remove"), " to use it",
            )
        kwargs["background"] = old["matting"]
    _revisions(kwargs, old)
    return kwargs


def _revisions(kwargs: dict[str, Any], old: dict[str, Any]) -> None:
    """``encoder_revision`` / ``clip_t_revision`` written into the model choices."""
    clip_rev = old.get("clip_t_revision")
    if clip_rev is not None and kwargs.get("clip_t") is not None:
        kwargs["clip_t"] = ModelChoice(_check_clip_t(kwargs["clip_t"]).spec, str(clip_rev))  # type: ignore[union-attr]
    revision = old.get("encoder_revision")
    if revision is None:
        return
    choices = _check_encoder(kwargs.get("encoder"))
    if choices is None:
        raise InputError(Opt("encoder_revision"), " is given without an encoder")
    if isinstance(revision, str):
        if len(choices) > 1:
            raise InputError(
                Opt("encoder_revision", revision), f" is ambiguous with {len(choices)} encoders; write each "
                "revision after its encoder (ID@REVISION)"
            )
        revisions: list[Any] = [revision]
    elif isinstance(revision, (list, tuple)) and all(r is None or isinstance(r, str) for r in revision):
        revisions = list(revision)
    else:
        raise InputError(
            Opt("encoder_revision"), " must be a string, None, or a list with one string (or None) per encoder, "
            f"got {describe_value(revision)}"
        )
    if len(revisions) != len(choices):
        raise InputError(
            Opt("encoder_revision"), f" has {len(revisions)} entries for {len(choices)} encoders; give one per encoder"
        )
    kwargs["encoder"] = tuple(ModelChoice(c.spec, r if r is not None else c.revision) for c, r in zip(choices, revisions))


# -- the resolved options ---------------------------------------------------------------------


class Options(Mapping[str, Any]):
    """The options of one call, checked and normalised (read by attribute or as a mapping).

    ``encoder`` is None or a tuple of :class:`ModelChoice`; ``clip_t`` None or a
    :class:`ModelChoice`; ``cmc_ks`` a sorted tuple; ``cache`` True, False or a folder.
    """

    def __init__(self, values: dict[str, Any]) -> None:
        self._values = values

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["_values"][name]
        except KeyError:
            raise AttributeError(name) from None

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def __iter__(self) -> Any:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        changed = {k: v for k, v in self._values.items() if v != _BY_NAME[k].default}
        return f"Options({', '.join(f'{k}={v!r}' for k, v in changed.items())})"

    @property
    def cache_dir(self) -> str | None:
        """The cache folder asked for (None: the default one, or the cache is off)."""
        return self.cache if isinstance(self.cache, str) else None

    @property
    def removes_background(self) -> bool:
        return not (isinstance(self.background, str) and self.background == "keep")

    @property
    def matting(self) -> Any:
        """The matting backend of ``background`` (None: carvekit, the default; or the background is kept)."""
        if not self.removes_background or self.background in ("remove", "carvekit"):
            return None
        return self.background


def resolve_options(kwargs: Mapping[str, Any]) -> Options:
    """Check a call's keywords against :data:`OPTIONS` and fill in the defaults.

    Args:
        kwargs: option name -> value (older spellings of :data:`DEPRECATED` are translated, with
            a warning).

    Returns:
        The :class:`Options`.

    Raises:
        InputError: an unknown keyword (listing the options), or a value an option does not accept.
    """
    given = _translate(dict(kwargs))
    unknown = sorted(set(given) - set(_BY_NAME))
    if unknown:
        raise InputError(f"unknown option(s) {unknown}; options: {', '.join(_BY_NAME)}")
    return Options({o.name: o.validate(given[o.name] if o.name in given else o.default) for o in OPTIONS})


# -- derived views of the declaration -----------------------------------------------------------


def grouped() -> list[tuple[str, list[Option]]]:
    """The options by documentation group, in declaration order."""
    return [(title, [o for o in OPTIONS if o.group == key]) for key, title in GROUPS.items()]


def cli_spelling(opt: Opt) -> str:
    """How ``fp-rank evaluate`` names an option in a message (``--on-invalid skip``, ``--leaks``).

    Example:
        >>> cli_spelling(Opt("on_invalid", "skip")), cli_spelling(Opt("batch_size")), cli_spelling(Opt("ceilings", False))
        ('--on-invalid skip', '--batch-size', '--no-ceilings')
    """
    from fp_rank.errors import NO_VALUE

    old = _DEPRECATED.get(opt.name)
    if old is not None:
        return old.flag if old.switch is not None or opt.value is NO_VALUE else f"{old.flag} {opt.value}"
    decl = _BY_NAME.get(opt.name)
    if decl is None or decl.flag is None:
        return str(opt)
    if decl.kind == "bool":
        return decl.flag if opt.value is NO_VALUE or opt.value != decl.default else f"leave out {decl.flag}"
    if opt.value is NO_VALUE:
        return decl.flag
    value = opt.value.spec if isinstance(opt.value, ModelChoice) else opt.value
    if decl.kind == "ints" and isinstance(value, (list, tuple)):
        return f"{decl.flag} {' '.join(str(v) for v in value)}"
    return f"{decl.flag} {value}"


def markdown_table(options: Iterable[Option] = OPTIONS) -> str:
    """The options as a Markdown table: keyword, flag, default, accepted values, meaning."""
    lines = ["| keyword | `fp-rank evaluate` | default | values | meaning |", "|---|---|---|---|---|"]
    for o in options:
        flag = f"`{o.flag}`" if o.flag else "(Python only)"
        flag += "".join(f", `{s.flag}`" for s in o.shorthands)
        default = "None" if o.default is None else f"`{o.default!r}`"
        lines.append(f"| `{o.name}` | {flag} | {default} | {o.accepted()} | {o.help} |")
    return "\n".join(lines)
