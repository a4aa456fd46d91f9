"""Every option of :func:`fp_rank.evaluate`, declared once.

:data:`OPTIONS` holds one :class:`Option` per keyword: its name, default, accepted values, help
text, documentation group and command-line flag. Everything else derives from it:

* :func:`resolve_options` checks a call's keywords (before anything is loaded) and returns the
  normalised :class:`Options`;
* ``fp_rank.evaluate``'s signature and the ``Args`` of its docstring (:mod:`fp_rank.evaluation.signature`);
* the ``fp-rank evaluate`` flags and how the CLI spells an option in messages (:mod:`fp_rank.cli.options`,
  :func:`cli_spelling`);
* the ``compute()`` keywords of the ``evaluate`` module and its description (:mod:`fp_rank.metric`);
* the options table of the metric card and ``docs/options.md`` (:func:`markdown_table`).

Options that only make sense together are one option: one leak policy (``leaks``), one cache
setting (``cache``), one background setting (``background``), and an encoder's weights revision
written into its name (``ID@REVISION``). The older keywords still work for one version with a
:class:`~fp_rank.errors.FpRankDeprecationWarning` (:data:`DEPRECATED`).

* :mod:`~fp_rank.options.kinds`: what an option is, how each kind of value is checked;
* :mod:`~fp_rank.options.specs`: the checks of richer values (models, devices, background, cache);
* :mod:`~fp_rank.options.declaration`: :data:`OPTIONS` and the views derived from it;
* :mod:`~fp_rank.options.resolve`: the older spellings and :func:`resolve_options`.

Nothing here imports torch: the declaration is read by ``fp-rank --help``.

Example:
    >>> opts = resolve_options({"leaks": "exclude", "cmc_ks": [5, 1]})
    >>> opts.leaks, opts.cmc_ks, opts.batch_size
    ('exclude', (1, 5), 32)
    >>> option("on_missing").choices
    ('error', 'skip', 'zero')
"""

from fp_rank.errors import describe_value
from fp_rank.options.declaration import (
    DEPRECATED,
    GROUPS,
    OPTIONS,
    REMOVED_IN,
    Deprecated,
    cli_spelling,
    grouped,
    markdown_table,
    option,
)
from fp_rank.options.kinds import Option, Shorthand
from fp_rank.options.resolve import Options, resolve_options
from fp_rank.options.specs import BACKGROUND_WORDS, ModelChoice, split_revision

__all__ = [
    "BACKGROUND_WORDS", "DEPRECATED", "GROUPS", "OPTIONS", "REMOVED_IN", "Deprecated", "ModelChoice", "Option", "Options",
    "Shorthand", "cli_spelling", "describe_value", "grouped", "markdown_table", "option", "resolve_options",
    "split_revision",
]
