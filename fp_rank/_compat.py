"""Spellings of fp-rank 0.1 kept for one version: the ``Report`` methods that moved out of the report.

In 0.1 a report computed its own statistics, tables, figures and Hub entries. In 0.2 the report
is data plus its file forms; the work takes a report (``fp_rank.compare(report, ...)``). The old
methods below still work until fp-rank 0.3, each with a
:class:`~fp_rank.errors.FpRankDeprecationWarning` naming its replacement. They are attached here,
at the top of the package (imported by ``fp_rank/__init__.py``), so that no lower layer imports
a higher one.
"""

from __future__ import annotations

import importlib
import warnings
from typing import Any

from fp_rank.errors import FpRankDeprecationWarning
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
