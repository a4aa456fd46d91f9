"""The leakage guard: generated images that copy a real gallery, reference or holdout image."""

from fp_rank.checks.leakage import (
    DEFAULT_MAX_DISTANCE,
    DEFAULT_MAX_THUMB_DIFF,
    LeakIndex,
    find_leaks,
    gallery_leak_index,
    hamming_distance,
    perceptual_hash,
)

__all__ = [
    "DEFAULT_MAX_DISTANCE",
    "DEFAULT_MAX_THUMB_DIFF",
    "LeakIndex",
    "find_leaks",
    "gallery_leak_index",
    "hamming_distance",
    "perceptual_hash",
]
