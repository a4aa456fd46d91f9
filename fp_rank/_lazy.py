"""Package attributes imported on first use (PEP 562), so that importing a package costs nothing.

Example:
    >>> getattr_, dir_ = lazy_exports("fp_rank", {"PROTOCOL_VERSION": "fp_rank.version"}, globals())
    >>> getattr_("PROTOCOL_VERSION") == __import__("fp_rank.version").version.PROTOCOL_VERSION
    True
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_exports(
    package: str, exports: dict[str, str], namespace: dict[str, Any]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A module's ``__getattr__`` and ``__dir__`` serving ``exports`` (name -> module) on first use.

    Args:
        package: the package's name, for the AttributeError of an unknown name.
        exports: public name -> the module that defines it.
        namespace: the package's ``globals()``; a resolved name is stored there.
    """

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(exports))

    return __getattr__, __dir__
