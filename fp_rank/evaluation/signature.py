"""``fp_rank.evaluate``'s signature and the ``Args`` of its docstring, derived from the declarations.

The per-image keywords come from :data:`fp_rank.runs.PER_IMAGE`, every option from
:data:`fp_rank.options.OPTIONS`; nothing here restates a parameter. :func:`document` attaches
both to the function (``inspect.signature`` and ``help()`` show every keyword with its default).
"""

from __future__ import annotations

import inspect
import textwrap
from collections.abc import Callable
from typing import Any, TypeVar

from fp_rank.options import OPTIONS, grouped
from fp_rank.runs import PER_IMAGE

F = TypeVar("F", bound=Callable[..., Any])

_KW = inspect.Parameter.KEYWORD_ONLY


def parameters(fn: Callable[..., Any]) -> list[inspect.Parameter]:
    """``fn``'s explicit parameters (without ``**options``) followed by every declared option."""
    own = [p for p in inspect.signature(fn).parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    declared = {p.name for p in own}
    per_image = [inspect.Parameter(p.keyword, _KW, default=None, annotation=p.annotation) for p in PER_IMAGE]
    own = [p.replace(annotation=next(x.annotation for x in per_image if x.name == p.name)) if p.name in
           {x.keyword for x in PER_IMAGE} else p for p in own]
    options = [inspect.Parameter(o.name, _KW, default=o.default, annotation=o.annotation) for o in OPTIONS]
    return own + [p for p in per_image if p.name not in declared] + options


def args_section(indent: str = "        ") -> str:
    """The docstring ``Args`` entries of the per-image keywords and of every option (in group order)."""
    lines: list[str] = []

    def entry(name: str, text: str) -> None:
        lines.extend(textwrap.wrap(f"{name}: {text}.", width=100, initial_indent=indent,
                                   subsequent_indent=indent + "    "))

    for p in PER_IMAGE:
        entry(p.keyword, p.help)
    for _, options in grouped():
        for o in options:
            entry(o.name, o.sentence())
    return "\n".join(lines)


def document(fn: F) -> F:
    """Attach the derived signature to ``fn`` and its per-image and option ``Args`` to its docstring.

    The docstring's ``Returns:`` heading marks where the derived entries go.
    """
    fn.__signature__ = inspect.Signature(parameters(fn), return_annotation=inspect.signature(fn).return_annotation)  # type: ignore[attr-defined]
    doc = fn.__doc__ or ""
    head, sep, tail = doc.partition("\n    Returns:")
    fn.__doc__ = head.rstrip() + "\n" + args_section() + "\n" + sep + tail if sep else doc
    return fn
