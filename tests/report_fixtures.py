"""Metadata that follows the report schema, for tests that build small reports by hand and save them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def valid_metadata(encoders: Sequence[str] = ("enc",), **overrides: Any) -> dict[str, Any]:
    """The metadata fields the report schema requires, with neutral values (and ``overrides``)."""
    meta: dict[str, Any] = {
        "protocol_version": "1.0",
        "fp_rank_version": "0.1.0",
        "gallery": {"id": "toy", "config": "all", "revision": None, "fingerprint": "0" * 64, "splits": {}},
        "encoders": [
            {"name": name, "model_id": f"toy/{name}", "revision": None, "pooling": "cls", "preprocessing": {},
             "preprocessing_id": "0" * 16, "dtype": "float32", "is_demo": False}
            for name in encoders
        ],
        "cache": {"enabled": False, "gallery_images_encoded": 0, "gallery_images_from_cache": 0},
        "options": {},
    }
    meta.update(overrides)
    return meta
