"""What an option is (:class:`Option`) and how each kind of value is checked."""

from __future__ import annotations

import numbers
from collections.abc import Callable, Iterable, Sized
from dataclasses import dataclass
from typing import Any, Literal

from fp_rank.errors import InputError, Opt, describe_value

#: How an option's values are checked and how the command line reads them.
Kind = Literal["bool", "int", "ints", "choice", "text", "spec"]



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
        requires: another option this one only applies with (given without it: an error).
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
    requires: str | None = None

    def validate(self, value: Any) -> Any:
        """``value`` checked against this option's kind, normalised.

        Raises:
            InputError: naming the option, the value received and what is accepted.
        """
        return CHECKS[self.kind](self, value)

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


def as_bool(name: str, value: Any) -> bool:
    if type(value).__name__ == "bool_" or isinstance(value, bool):
        return bool(value)
    raise InputError(Opt(name), f" must be True or False, got {describe_value(value)}")


def _bool(opt: Option, value: Any) -> bool:
    return as_bool(opt.name, value)


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
    if opt.check is not None:  # the accepted other spellings, e.g. "bf16" or torch.bfloat16 for "bfloat16"
        value = opt.check(value)
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


CHECKS: dict[str, Callable[[Option, Any], Any]] = {
    "bool": _bool, "int": _int, "ints": _ints, "choice": _choice, "text": _text, "spec": _spec,
}
