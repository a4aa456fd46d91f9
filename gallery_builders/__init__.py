"""Gallery builders of the Finer-Personalization Rank benchmark.

Each builder turns a source dataset, in its own on-disk layout, into a complete Hugging Face
dataset repository folder (Parquet shards with embedded images, one config per group plus
``all``, splits gallery / reference / holdout, ``manifest.jsonl`` and a dataset card whose YAML
defines the benchmark). All of them go through one writer, ``gallery_builders._writer``.

- :func:`gallery_builders.cub.build`: CUB-200-2011 (wren, tern, sparrow).
- :func:`gallery_builders.stanford_cars.build`: Stanford Cars (car), Hub copy or devkit.
- :func:`gallery_builders.wildlife_reid.build`: WildlifeReID-10k (one group per species).
- :func:`gallery_builders.synthetic.build`: the synthetic demo benchmark.
- :func:`gallery_builders.push.validate` / :func:`gallery_builders.push.push`: offline
  pre-flight check, then upload and tag on the Hub.

Command line: ``python -m gallery_builders --help``. Importing this package loads nothing heavy.
"""

from __future__ import annotations

from gallery_builders._benchmark import BUILDER_VERSION
from gallery_builders.errors import BuilderError

__all__ = ["BUILDER_VERSION", "BuilderError"]
