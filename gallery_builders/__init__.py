"""Gallery builders of the Finer-Personalization Rank benchmark: one adapter per source dataset.

Each source module turns a dataset, in its own on-disk layout, into a complete Hugging Face
dataset repository folder (Parquet shards with embedded images, one config per group plus
``all``, splits gallery / reference / holdout, ``manifest.jsonl`` and a dataset card whose YAML
defines the benchmark). All of them end in the library's writer,
:func:`fp_rank.galleries.build.writer.build_gallery`.

- :func:`gallery_builders.cub.build`: CUB-200-2011 (wren, tern, sparrow).
- :func:`gallery_builders.stanford_cars.build`: Stanford Cars (car), Hub copy or devkit.
- :func:`gallery_builders.wildlife_reid.build`: WildlifeReID-10k (one group per species).
- :func:`gallery_builders.synthetic.build`: the synthetic demo benchmark (:mod:`fp_rank.demo.gallery`).
- :func:`gallery_builders.push.validate` / :func:`gallery_builders.push.push`: offline
  pre-flight check, then upload and tag on the Hub.

Command line: ``python -m gallery_builders --help``; its build commands come from
:mod:`gallery_builders.registry`. Importing this package loads nothing heavy.
"""

from __future__ import annotations

from fp_rank.errors import BuilderError
from fp_rank.galleries.build.spec import BUILDER_VERSION

__all__ = ["BUILDER_VERSION", "BuilderError"]
