"""The fp-rank exception family, and how messages name options.

Every error caused by what the caller passed in (arguments, images, galleries, encoders) is an
:class:`InputError`, which is also a :class:`ValueError`, so ``except ValueError`` keeps working.
Messages name the offending item and say what would be accepted.

A message that names an option holds it as an :class:`Opt` part, not as text: ``str(error)``
spells it as a Python keyword (``on_invalid='skip'``), and a front end renders the same error
with its own spelling (the CLI: ``--on-invalid skip``) through :meth:`FpRankError.render`. No
front end rewrites message text.

Example:
    >>> err = InputError("pass ", Opt("on_invalid", "skip"), " to score the rest")
    >>> str(err)
    "pass on_invalid='skip' to score the rest"
    >>> err.render(lambda opt: "--" + opt.name.replace("_", "-") + " " + str(opt.value))
    'pass --on-invalid skip to score the rest'
"""

from __future__ import annotations

import importlib
import os
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


class _NoValue:
    def __repr__(self) -> str:
        return "<no value>"


#: The value of an :class:`Opt` that names an option without a value.
NO_VALUE: Any = _NoValue()


@dataclass(frozen=True)
class Opt:
    """An option named inside a message, optionally with a value to pass.

    Attributes:
        name: the option's Python keyword (``on_invalid``).
        value: the value the message suggests or refers to (:data:`NO_VALUE`: the name alone).
    """

    name: str
    value: Any = NO_VALUE

    def __str__(self) -> str:
        return self.name if self.value is NO_VALUE else f"{self.name}={self.value!r}"


def describe_value(value: Any) -> str:
    """``repr(value)``, cut to 80 characters, for messages."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


#: Characters no label may hold: C0/C1 controls (newline, carriage return, the ESC of terminal
#: escapes ...), the bidirectional overrides that reorder what a reader sees, and the invisible
#: zero-width space, word joiner and byte-order mark (two labels that look the same must be the same).
_CONTROLS = frozenset(
    [chr(c) for c in range(0x20)] + ["\x7f"] + [chr(c) for c in range(0x80, 0xA0)]
    + ["\u200b", "\u200e", "\u200f", "\u2028", "\u2029", "\u2060", "\ufeff"] + [chr(c) for c in range(0x202A, 0x202F)]
    + [chr(c) for c in range(0x2066, 0x206A)]
)


def control_characters(text: str) -> list[str]:
    r"""The control characters in ``text``, as escapes (``['\r', '\x1b']``), in order of first use.

    Example:
        >>> control_characters("ok"), control_characters("a\rb\x1b[31m")
        ([], ["'\\r'", "'\\x1b'"])
    """
    return list(dict.fromkeys(repr(ch) for ch in text if ch in _CONTROLS))


def check_label(kind: str, label: str, where: str = "") -> str:
    r"""``label`` unchanged, or an :class:`InputError` when it holds a control character.

    Labels (identities, methods, encoder names) are printed in terminals, Markdown, CSV and
    YAML; a carriage return or terminal escape in one would rewrite the table around it.

    Example:
        >>> check_label("method", "dreambooth")
        'dreambooth'
        >>> check_label("method", "ok\rbad", "image #3")
        Traceback (most recent call last):
        ...
        fp_rank.errors.InputError: method 'ok\rbad' (image #3) holds control character(s) '\r'; labels are printed in tables and files: remove them
    """
    found = control_characters(label) if isinstance(label, str) else []
    if found:
        place = f" ({where})" if where else ""
        raise InputError(
            f"{kind} {label!r}{place} holds control character(s) {', '.join(found)}; labels are printed in tables "
            "and files: remove them"
        )
    return label


def printable(text: str) -> str:
    r"""``text`` with every control character written as its escape (for tables, pages and terminals).

    Example:
        >>> printable("a\rb")
        'a\\rb'
    """
    if not any(ch in _CONTROLS for ch in text):
        return text
    return "".join(repr(ch)[1:-1] if ch in _CONTROLS else ch for ch in text)


#: How a front end spells an :class:`Opt`.
Spelling = Callable[[Opt], str]


class _Message:
    """A message made of text and :class:`Opt` parts (mixed into the exception and warning classes)."""

    parts: tuple[str | Opt, ...]

    def _keep(self, parts: tuple[str | Opt, ...]) -> str:
        self.parts = parts
        return "".join(str(p) for p in parts)

    def render(self, spell: Spelling | None = None) -> str:
        """The message with every option spelled by ``spell`` (default: as Python keywords)."""
        return "".join(p if isinstance(p, str) else (spell(p) if spell else str(p)) for p in self.parts)


class FpRankError(_Message, Exception):
    """Base class of every error raised on purpose by fp-rank.

    Args:
        *parts: the message, as text and :class:`Opt` parts (one string is the common case).
    """

    def __init__(self, *parts: str | Opt) -> None:
        super().__init__(self._keep(parts))

    def __reduce__(self) -> tuple[Any, ...]:  # pickled with its parts (worker processes, ranks)
        return type(self), self.parts


class InputError(FpRankError, ValueError):
    """Bad input: wrong lengths, unknown identities, undecodable images, bad galleries."""


class ImageDecodeError(InputError):
    """An image could not be read. ``item`` names the file or the index in the input list."""

    def __init__(self, item: str, reason: str) -> None:
        self.item = item
        self.reason = reason
        super().__init__(
            f"cannot read image {item}: {reason}. Fix or remove this file, or pass ", Opt("on_invalid", "skip"),
            " to score the rest and list it in the report.",
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.item, self.reason)


class GalleryError(InputError):
    """A gallery dataset does not follow the schema (missing split, column, identity...)."""


class EncoderError(InputError):
    """An encoder could not be loaded, or produced unusable embeddings (NaN, inf, wrong shape)."""


class CacheError(FpRankError):
    """A cache entry is unreadable. Callers treat this as a miss and recompute."""


class BuilderError(InputError):
    """A gallery could not be built, validated or pushed because of its input.

    Raised for a missing or malformed source file (the message names it), an unreadable image
    (unless ``skip_corrupt`` is set), a selection rule that the source cannot satisfy, an output
    folder that already exists, or a gallery folder that fails the pre-flight validation.
    """


def caller_stacklevel() -> int:
    """The ``stacklevel`` that makes a warning raised inside fp-rank point at the first frame outside
    it and the import machinery (the user's call or import), however deep it is raised; call it
    where ``warnings.warn`` is called."""
    package = os.path.dirname(os.path.abspath(__file__)) + os.sep
    frame = sys._getframe(1)
    level = 1
    while frame is not None:
        file = frame.f_code.co_filename
        if "importlib" in file and "_bootstrap" in file:
            frame = frame.f_back  # type: ignore[assignment]  # the import machinery: warnings skips it too
        elif os.path.abspath(file).startswith(package):
            frame = frame.f_back  # type: ignore[assignment]
            level += 1
        else:
            break
    return level


def deprecated_name(module: str, name: str, moved: dict[str, tuple[str, str, str]]) -> Any:
    """A module's ``__getattr__`` for the names it had in fp-rank 0.1 (until 0.3).

    Args:
        module: the module's name.
        name: the attribute asked for.
        moved: old name -> (module it lives in now, its name there, what to use instead).

    Returns:
        The object, imported from where it lives now, after a :class:`FpRankDeprecationWarning`.

    Raises:
        AttributeError: ``name`` is not one of the old names.
    """
    if name not in moved:
        raise AttributeError(f"module {module!r} has no attribute {name!r}")
    where, attribute, instead = moved[name]
    warnings.warn(
        FpRankDeprecationWarning(f"{module}.{name} is deprecated and will be removed in fp-rank 0.3; use {instead}"),
        stacklevel=caller_stacklevel(),
    )
    value = getattr(importlib.import_module(where), attribute)
    setattr(sys.modules[module], name, value)  # warned once: ``from module import name`` asks twice
    return value


class FpRankDeprecationWarning(_Message, FutureWarning):
    """An fp-rank spelling that still works but will be removed (the message names its replacement).

    A :class:`FutureWarning`, so that it is shown by default; its parts spell options as
    :class:`FpRankError` does.
    """

    def __init__(self, *parts: str | Opt) -> None:
        super().__init__(self._keep(parts))
