"""Checking one call's keywords: the older spellings translated (with a warning), then every option
checked by its declaration, into :class:`Options`."""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from typing import Any

from fp_rank.errors import FpRankDeprecationWarning, InputError, Opt, caller_stacklevel, describe_value
from fp_rank.options.declaration import BY_NAME, OPTIONS, REMOVED_IN, Deprecated
from fp_rank.options.declaration import DEPRECATED_BY_NAME as _DEPRECATED
from fp_rank.options.kinds import as_bool
from fp_rank.options.specs import RECOMMENDED, ModelChoice, check_clip_t, check_encoder



def _warn(old: Deprecated) -> None:
    warnings.warn(
        FpRankDeprecationWarning(
            Opt(old.name), f" is deprecated and will be removed in fp-rank {REMOVED_IN}; use ", Opt(old.instead), " (",
            *old.how, ")",
        ),
        stacklevel=caller_stacklevel(),
    )


def _conflict(old: str, old_value: Any, new: str, new_value: Any) -> InputError:
    return InputError(
        Opt(old, old_value), " (deprecated) and ", Opt(new, new_value), " say different things; give ", Opt(new),
        " only",
    )


def _translate(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Older keywords -> the options that replace them (each one given warns; None counts as not given).

    An older keyword that contradicts the option replacing it, given too, is refused.
    """
    old = {name: kwargs.pop(name) for name in list(kwargs) if name in _DEPRECATED}
    old = {name: value for name, value in old.items() if value is not None}
    for name in old:
        _warn(_DEPRECATED[name])
    if "check_leaks" in old or "exclude_leaks" in old:
        check = as_bool("check_leaks", old.get("check_leaks", True))
        exclude = as_bool("exclude_leaks", old.get("exclude_leaks", False))
        if exclude and not check:
            raise InputError(
                Opt("exclude_leaks", True), " and ", Opt("check_leaks", False), " contradict each other: without "
                "the check no copy is found, so nothing would be excluded",
            )
        leaks = "exclude" if exclude else "flag" if check else "off"
        given = kwargs.get("leaks", BY_NAME["leaks"].default)
        if given not in (BY_NAME["leaks"].default, leaks):
            name = "exclude_leaks" if "exclude_leaks" in old else "check_leaks"
            raise _conflict(name, old[name], "leaks", given)
        kwargs["leaks"] = leaks
    if "cache_dir" in old:
        _cache_dir(kwargs, old["cache_dir"])
    if "matting" in old:
        background = kwargs.get("background", "keep")
        if background != "remove":
            raise InputError(
                Opt("matting", old["matting"]), " is given but ", Opt("background", background), "; pass ",
                Opt("background", "remove"), " to use it",
            )
        kwargs["background"] = old["matting"]
    _revisions(kwargs, old)
    return kwargs


def _cache_dir(kwargs: dict[str, Any], folder: Any) -> None:
    """``cache_dir`` as the ``cache`` folder (with ``cache=False`` the cache stays off, as in 0.1)."""
    if not isinstance(folder, (str, os.PathLike)):
        raise InputError(Opt("cache_dir"), f" must be a folder (str or os.PathLike), got {describe_value(folder)}")
    cache = kwargs.get("cache", True)
    if cache is False:
        return
    if isinstance(cache, (str, os.PathLike)) and os.fspath(cache) != os.fspath(folder):
        raise _conflict("cache_dir", os.fspath(folder), "cache", os.fspath(cache))
    kwargs["cache"] = os.fspath(folder)


def _revision_of(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise InputError(Opt(name), f" must be a string, got {describe_value(value)}")
    return value


def _pinned(choice: ModelChoice, revision: str | None, name: str, option: str) -> ModelChoice:
    """``choice`` pinned to ``revision`` (refused when it already names another one after ``@``)."""
    if revision is None:
        return choice
    if choice.revision is not None and choice.revision != revision:
        raise _conflict(name, revision, option, f"{choice.spec}@{choice.revision}")
    return ModelChoice(choice.spec, revision)


def _revisions(kwargs: dict[str, Any], old: dict[str, Any]) -> None:
    """``encoder_revision`` / ``clip_t_revision`` written into the model choices."""
    if "clip_t_revision" in old:
        revision = _revision_of("clip_t_revision", old["clip_t_revision"])
        if kwargs.get("clip_t") is not None:
            kwargs["clip_t"] = _pinned(check_clip_t(kwargs["clip_t"]), revision, "clip_t_revision", "clip_t")  # type: ignore[arg-type]
    if "encoder_revision" not in old:
        return
    revision = old["encoder_revision"]
    choices = check_encoder(kwargs.get("encoder"))
    if choices is None:  # as in 0.1: the revision of the gallery card's recommended encoder
        kwargs["encoder"] = (ModelChoice(RECOMMENDED, _revision_of("encoder_revision", revision)),)
        return
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
    kwargs["encoder"] = tuple(_pinned(c, r, "encoder_revision", "encoder") for c, r in zip(choices, revisions))


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
        changed = {k: v for k, v in self._values.items() if v != BY_NAME[k].default}
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
    unknown = sorted(set(given) - set(BY_NAME))
    if unknown:
        raise InputError(f"unknown option(s) {unknown}; options: {', '.join(BY_NAME)}")
    values = {o.name: o.validate(given[o.name] if o.name in given else o.default) for o in OPTIONS}
    for o in OPTIONS:
        if o.requires is not None and values[o.name] != o.default and values[o.requires] == BY_NAME[o.requires].default:
            raise InputError(Opt(o.name), " only applies with ", Opt(o.requires), "; give both, or leave it out")
    return Options(values)
