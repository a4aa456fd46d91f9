"""Runs of generated images: the one type that models them, and how they are read from disk.

* :mod:`~fp_rank.runs.run`: :class:`GeneratedImage` and :class:`Run` (from ``evaluate``'s lists,
  with every per-image argument checked in :mod:`~fp_rank.runs.arguments`);
* :mod:`~fp_rank.runs.folders`: :func:`read_run`, a folder or manifest on disk (the CLI);
* :mod:`~fp_rank.runs.manifest`: :func:`read_manifest`, CSV/JSONL manifests (the CLI and the Space);
* :mod:`~fp_rank.runs.labels`: :class:`IdentityMatcher`, the rule matching labels to a gallery.
"""

from fp_rank.errors import deprecated_name
from fp_rank.runs.folders import read_generated, read_run
from fp_rank.runs.labels import IdentityMatcher
from fp_rank.runs.manifest import MANIFEST_COLUMNS, read_manifest
from fp_rank.runs.run import (
    DEFAULT_METHOD,
    IMAGE_SUFFIXES,
    PER_IMAGE,
    GeneratedImage,
    Run,
)

_DEPRECATED = {"GeneratedRun": ("fp_rank.runs.legacy", "GeneratedRun", "fp_rank.Run (from fp_rank.read_run)"),
               "ManifestRow": ("fp_rank.runs.run", "GeneratedImage", "fp_rank.GeneratedImage"),
               "ManifestFormat": ("fp_rank.runs.manifest", "ManifestFormat", "fp_rank.runs.manifest.ManifestFormat")}


def __getattr__(name: str) -> object:
    """fp-rank 0.1's names of this module, until 0.3 (each warns, naming its replacement)."""
    return deprecated_name(__name__, name, _DEPRECATED)


__all__ = [
    "DEFAULT_METHOD", "IMAGE_SUFFIXES", "MANIFEST_COLUMNS", "PER_IMAGE", "GeneratedImage", "IdentityMatcher", "Run",
    "read_generated", "read_manifest", "read_run",
]
