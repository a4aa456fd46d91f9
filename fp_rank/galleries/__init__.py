"""Galleries: the identity-labelled datasets queries are ranked against (schema, loading)."""

from fp_rank.galleries.load import Gallery, GallerySplit, load_gallery
from fp_rank.galleries import schema

__all__ = ["Gallery", "GallerySplit", "load_gallery", "schema"]
