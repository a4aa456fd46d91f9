"""Galleries: the identity-labelled datasets queries are ranked against.

:mod:`~fp_rank.galleries.schema` says what a gallery holds, :mod:`~fp_rank.galleries.load` reads
one, and :mod:`fp_rank.galleries.build` writes one (imported only by whoever builds galleries).
"""

from fp_rank.galleries import schema
from fp_rank.galleries.load import Gallery, GallerySplit, load_gallery

__all__ = ["Gallery", "GallerySplit", "load_gallery", "schema"]
