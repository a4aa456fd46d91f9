"""Caching of gallery-side embeddings (safetensors files, atomic writes, one key function)."""

from fp_rank.caching.store import EmbeddingCache, cache_key, default_cache_dir
from fp_rank.images.decode import content_fingerprint

__all__ = ["EmbeddingCache", "cache_key", "content_fingerprint", "default_cache_dir"]
