"""The on-disk gallery schema: what every gallery dataset (built or downloaded) must hold.

A gallery is a Hugging Face dataset repository (a local folder or a Hub id) of Parquet shards
declared by ``configs:`` in the dataset card's YAML. Each config (one per group, plus ``all``)
has the splits below; every row carries the columns below.
"""

from __future__ import annotations

#: Split of real, identity-labelled images that generated queries are ranked against.
GALLERY_SPLIT = "gallery"
#: Split of real images given to the personalization method (the subject photos).
REFERENCE_SPLIT = "reference"
#: Optional split of real images of the same identities in neither gallery nor reference.
HOLDOUT_SPLIT = "holdout"

REQUIRED_SPLITS = (GALLERY_SPLIT, REFERENCE_SPLIT)
OPTIONAL_SPLITS = (HOLDOUT_SPLIT,)
#: Every split, in the order galleries are written and listed.
ALL_SPLITS = REQUIRED_SPLITS + OPTIONAL_SPLITS

#: Columns every split must have.
REQUIRED_COLUMNS = ("image", "identity", "group")
#: Columns written by the builders (``identity_name``: readable name; ``source_path``: path
#: inside the raw source, relative to its root; ``sha256``: hex digest of the image bytes).
BUILDER_COLUMNS = ("image", "identity", "identity_name", "group", "source_path", "sha256")

#: Config name holding every group.
ALL_CONFIG = "all"

#: Per-image manifest written beside the dataset card (split, group, identity, source path, sha256).
MANIFEST_FILE = "manifest.jsonl"

#: Key of the benchmark definition block in the dataset card's YAML front matter.
CARD_KEY = "fp_rank"

#: Gallery-selection rules of a gallery variant (:mod:`fp_rank.galleries.build.variants`): the
#: protocol's random draw, or the image nearest each K-means centroid (the paper's ablation).
SELECTIONS = ("random", "kmeans")
#: The authors' K-means seed.
DEFAULT_SELECTION_SEED = 42
