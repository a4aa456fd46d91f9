"""Integrity checks on evaluation inputs: input validation and the leakage guard."""

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
