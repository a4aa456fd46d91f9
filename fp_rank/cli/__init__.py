"""The ``fp-rank`` command line. It parses arguments and calls the public library functions.

* :mod:`~fp_rank.cli.parser`: the sub-commands and their arguments;
* :mod:`~fp_rank.cli.options`: ``fp-rank evaluate``'s option flags, derived from the declaration;
* :mod:`~fp_rank.cli.scoring`: ``demo`` and ``evaluate``; :mod:`~fp_rank.cli.commands`: the rest.

Errors and deprecation warnings from the library name options the way this command line spells
them (:func:`fp_rank.options.cli_spelling`): ``--on-invalid skip``, not ``on_invalid='skip'``.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from typing import Any

from fp_rank.cli.commands import format_p
from fp_rank.cli.parser import build_parser
from fp_rank.errors import FpRankDeprecationWarning, FpRankError
from fp_rank.options import cli_spelling

__all__ = ["build_parser", "format_p", "main"]


def _silence_progress_bars() -> None:
    """``--no-progress``: also the bars of datasets, huggingface_hub and transformers."""
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    os.environ["HF_DATASETS_DISABLE_PROGRESS_BARS"] = "1"
    if "datasets" in sys.modules:
        sys.modules["datasets"].disable_progress_bars()
    if "huggingface_hub" in sys.modules:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
    if "transformers" in sys.modules:
        sys.modules["transformers"].utils.logging.disable_progress_bar()


def _show_warning(message: Any, category: type[Warning], filename: str, lineno: int, file: Any = None,
                  line: str | None = None) -> None:
    """fp-rank's deprecation warnings in the command line's words, one line each; others as Python shows them."""
    if isinstance(message, FpRankDeprecationWarning):
        print(f"fp-rank: warning: {message.render(cli_spelling)}", file=sys.stderr)
        return
    _PYTHON_SHOWWARNING(message, category, filename, lineno, file, line)


_PYTHON_SHOWWARNING = warnings.showwarning


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``fp-rank`` console script."""
    from fp_rank.cpu_threads import prefer_passive_waiting

    prefer_passive_waiting()  # before torch loads: idle model threads must not spin on the decoding cores
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if getattr(args, "no_progress", False) or getattr(args, "progress", True) is False:
        _silence_progress_bars()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default", FpRankDeprecationWarning)  # each older flag said once, as one line
            warnings.showwarning = _show_warning
            return int(args.func(args) or 0)
    except FpRankError as exc:
        print(f"fp-rank: error: {exc.render(cli_spelling)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("fp-rank: interrupted", file=sys.stderr)
        return 130
