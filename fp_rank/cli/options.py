"""``fp-rank evaluate``'s option flags, derived from :data:`fp_rank.options.OPTIONS`.

Every option with a ``flag`` becomes one argparse argument (a bool whose default is True turns
off with its ``--no-...`` flag; a choice lists its values; a repeatable flag appends); every
shorthand and every older flag of :data:`fp_rank.options.DEPRECATED` is added beside it. The
parsed values go back to the library as keywords (:func:`given_options`), so the library's
single check applies to them.
"""

from __future__ import annotations

import argparse
from typing import Any

from fp_rank.options import DEPRECATED, GROUPS, OPTIONS, Option, option


def _help(o: Option) -> str:
    if o.kind == "bool":
        return o.off_help if o.default else o.help
    if o.kind == "spec" or o.default is None:
        return o.help
    return f"{o.help} (default {' '.join(map(str, o.default)) if o.kind == 'ints' else o.default})"


def add_option_flags(parser: argparse.ArgumentParser) -> None:
    """Add every declared option's flag, by documentation group, and the older flags."""
    for key, title in GROUPS.items():
        group = parser.add_argument_group(f"{title.lower()} options")
        for o in (o for o in OPTIONS if o.group == key and o.flag):
            _add(group, o)
    old = parser.add_argument_group("older flags (still accepted until fp-rank 0.3)")
    for d in DEPRECATED:
        new = option(d.instead)
        if d.switch is not None:
            old.add_argument(d.flag, dest=d.name, action="store_const", const=d.switch, default=argparse.SUPPRESS,
                             help=f"deprecated: use {new.flag}")
        else:
            old.add_argument(d.flag, dest=d.name, default=argparse.SUPPRESS, help=f"deprecated: use {new.flag}")


def _add(group: Any, o: Option) -> None:
    flag = o.flag
    assert flag is not None
    if o.kind == "bool":
        group.add_argument(flag, dest=o.name, action="store_false" if o.default else "store_true", help=_help(o))
    elif o.kind == "int":
        group.add_argument(flag, dest=o.name, type=int, default=o.default, help=_help(o))
    elif o.kind == "ints":
        group.add_argument(flag, dest=o.name, type=int, nargs="+", default=list(o.default), metavar=o.metavar,
                           help=_help(o))
    elif o.kind == "choice":
        group.add_argument(flag, dest=o.name, choices=list(o.choices), default=o.default, help=_help(o))
    else:
        group.add_argument(flag, dest=o.name, default=None if o.repeat else o.default, metavar=o.metavar,
                           action="append" if o.repeat else "store", help=_help(o))
    for short in o.shorthands:
        group.add_argument(short.flag, dest=o.name, action="store_const", const=short.value, help=short.help)


def given_options(args: argparse.Namespace) -> dict[str, Any]:
    """The option keywords of parsed arguments: every declared option, plus the older ones given."""
    out: dict[str, Any] = {}
    for o in OPTIONS:
        if o.flag is None or not hasattr(args, o.name):
            continue
        value = getattr(args, o.name)
        if o.from_cli is not None and isinstance(value, str):
            value = o.from_cli(value)
        if o.repeat and isinstance(value, list) and len(value) == 1:
            value = value[0]
        out[o.name] = value
    out.update({d.name: getattr(args, d.name) for d in DEPRECATED if hasattr(args, d.name)})
    return out
