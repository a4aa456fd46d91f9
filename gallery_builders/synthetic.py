"""Synthetic demo gallery source: :mod:`fp_rank.demo.gallery`, registered for the command line.

The demo gallery is built by the library (``fp-rank demo`` needs it without this tool); this
module only declares ``python -m gallery_builders synthetic``.
"""

from __future__ import annotations

from fp_rank.demo.gallery import DEFAULT_SEED, build, build_from_records, png_bytes
from gallery_builders.registry import BuilderCommand

__all__ = ["COMMAND", "DEFAULT_SEED", "build", "build_from_records", "png_bytes"]

COMMAND = BuilderCommand(name="synthetic", help="the synthetic demo gallery", build=build, default_seed=DEFAULT_SEED)
