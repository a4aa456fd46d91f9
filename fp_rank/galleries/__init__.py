"""Galleries: the identity-labelled datasets queries are ranked against.

:mod:`~fp_rank.galleries.schema` says what a gallery holds, :mod:`~fp_rank.galleries.load` reads
one, and :mod:`fp_rank.galleries.build` writes one (imported only by whoever builds galleries).
"""

from fp_rank._lazy import lazy_exports

__all__ = ["Gallery", "GallerySplit", "load_gallery", "schema"]

#: Loaded on first use: whoever needs only the schema (the gallery builders' help) loads no image library.
_EXPORTS = {"Gallery": "fp_rank.galleries.load", "GallerySplit": "fp_rank.galleries.load",
            "load_gallery": "fp_rank.galleries.load"}
_getattr, __dir__ = lazy_exports("fp_rank.galleries", _EXPORTS, globals())


def __getattr__(name: str) -> object:
    if name == "schema":
        import fp_rank.galleries.schema as schema

        return schema
    return _getattr(name)
