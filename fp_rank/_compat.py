"""Spellings of fp-rank 0.1 kept for one version: the ``Report`` methods that moved out of the report,
and the modules that moved (importing an old path gives the new module's names, with a warning).

In 0.1 a report computed its own statistics, tables, figures and Hub entries. Now the report
is data plus its file forms; the work takes a report (``fp_rank.compare(report, ...)``). The old
methods below still work until fp-rank 0.3, each with a
:class:`~fp_rank.errors.FpRankDeprecationWarning` naming its replacement. They are attached here,
at the top of the package (imported by ``fp_rank/__init__.py``), so that no lower layer imports
a higher one.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import types
import warnings
from typing import Any

from fp_rank.errors import FpRankDeprecationWarning, caller_stacklevel
from fp_rank.reporting.report import Report

#: Report method -> (module, function) that replaces it; the function takes the report first.
MOVED: dict[str, tuple[str, str]] = {
    "add_intervals": ("fp_rank.analysis", "add_intervals"),
    "add_statistics": ("fp_rank.analysis", "add_statistics"),
    "compare": ("fp_rank.analysis", "compare"),
    "plan": ("fp_rank.analysis", "plan"),
    "drift": ("fp_rank.analysis", "drift"),
    "summary_rows": ("fp_rank.views.table", "summary_rows"),
    "format_table": ("fp_rank.views.table", "format_table"),
    "leak_note": ("fp_rank.views.table", "leak_note"),
    "to_markdown": ("fp_rank.views.markdown", "to_markdown"),
    "plot": ("fp_rank.views.plots", "plot"),
    "to_eval_results": ("fp_rank.hub.results", "to_eval_results"),
}
#: 0.1's positional parameters of the moved methods (the functions take them as keywords).
_POSITIONAL: dict[str, tuple[str, ...]] = {
    "add_intervals": ("n_boot", "confidence", "seed", "interval"),
    "add_statistics": ("n_boot", "confidence", "seed", "interval"),
    "drift": ("k",),
    "to_eval_results": ("dataset_id", "dataset_revision"),
}
_SHORT = {"fp_rank.analysis": "fp_rank", "fp_rank.views.table": "fp_rank", "fp_rank.views.markdown": "fp_rank",
          "fp_rank.views.plots": "fp_rank", "fp_rank.hub.results": "fp_rank.hub.results"}


def _moved(name: str) -> Any:
    module, function = MOVED[name]
    positional = _POSITIONAL.get(name, ())

    def method(self: Report, *args: Any, **kwargs: Any) -> Any:
        warnings.warn(
            FpRankDeprecationWarning(
                f"Report.{name}() is deprecated and will be removed in fp-rank 0.3; use "
                f"{_SHORT[module]}.{function}(report, ...)"
            ),
            stacklevel=2,
        )
        target = getattr(importlib.import_module(module), function)
        if name in ("compare", "plan"):  # their leading positional arguments stay positional
            return target(self, *args, **kwargs)
        kwargs.update(zip(positional, args))
        return target(self, **kwargs)

    method.__name__ = name
    method.__doc__ = f"Deprecated: use ``{_SHORT[module]}.{function}(report, ...)``."
    return method


for _name in MOVED:
    setattr(Report, _name, _moved(_name))


#: Module of fp-rank 0.1 -> the modules its public names live in now.
MOVED_MODULES: dict[str, tuple[str, ...]] = {
    "fp_rank.encoding.images": ("fp_rank.images.decode",),
    "fp_rank.encoding.prefetch": ("fp_rank.images.prefetch",),
    "fp_rank.encoding.batches": ("fp_rank.images.stream",),
    "fp_rank.evaluation.queries": ("fp_rank.runs.run", "fp_rank.evaluation.check"),
    "fp_rank.evaluation.summarise": ("fp_rank.reporting.aggregate",),
    "fp_rank.ranking.kernel": ("fp_rank.ranking.result",),
    "fp_rank.reporting.analysis": ("fp_rank.analysis.statistics", "fp_rank.views.markdown", "fp_rank.views.plots"),
    "fp_rank.reporting.figures": ("fp_rank.views.figures", "fp_rank.views.figure_inputs"),
    "fp_rank.reporting.identity_figure": ("fp_rank.views.identity_figure",),
    "fp_rank.reporting.markdown": ("fp_rank.views.markdown", "fp_rank.views.table"),
    "fp_rank.reporting.outputs": ("fp_rank.views.outputs",),
    "fp_rank.reporting.strips": ("fp_rank.views.strips",),
}


class _MovedModule(types.ModuleType):
    """An old module path: each name is looked up, on first use, in the modules it moved to."""

    def __init__(self, name: str, targets: tuple[str, ...]) -> None:
        super().__init__(name, f"Moved to {', '.join(targets)} (this path is kept until fp-rank 0.3).")
        self.__targets = targets

    def __getattr__(self, attribute: str) -> Any:
        if attribute.startswith("__"):
            raise AttributeError(attribute)
        for target in self.__targets:
            module = importlib.import_module(target)
            if hasattr(module, attribute):
                return getattr(module, attribute)
        raise AttributeError(
            f"module {self.__name__!r} (moved to {', '.join(self.__targets)}) has no attribute {attribute!r}"
        )


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves the paths of :data:`MOVED_MODULES` (asked only for names no file provides)."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname not in MOVED_MODULES:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: Any) -> types.ModuleType:
        targets = MOVED_MODULES[spec.name]
        warnings.warn(
            FpRankDeprecationWarning(
                f"module {spec.name} is deprecated and will be removed in fp-rank 0.3; import from "
                f"{' or '.join(targets)}"
            ),
            stacklevel=caller_stacklevel(),
        )
        return _MovedModule(spec.name, targets)

    def exec_module(self, module: types.ModuleType) -> None:
        return None


if not any(isinstance(finder, _MovedModules) for finder in sys.meta_path):
    sys.meta_path.append(_MovedModules())

