"""The fp-rank exception family.

Every error caused by what the caller passed in (arguments, images, galleries, encoders) is an
:class:`InputError`, which is also a :class:`ValueError`, so ``except ValueError`` keeps working.
Messages name the offending item and say what would be accepted.
"""

from __future__ import annotations


class FpRankError(Exception):
    """Base class of every error raised on purpose by fp-rank."""


class InputError(FpRankError, ValueError):
    """Bad input: wrong lengths, unknown identities, undecodable images, bad galleries."""


class ImageDecodeError(InputError):
    """An image could not be read. ``item`` names the file or the index in the input list."""

    def __init__(self, item: str, reason: str) -> None:
        self.item = item
        self.reason = reason
        super().__init__(
            f"cannot read image {item}: {reason}. Fix or remove this file, "
            "or pass on_invalid='skip' to score the rest and list it in the report."
        )


class GalleryError(InputError):
    """A gallery dataset does not follow the schema (missing split, column, identity...)."""


class EncoderError(InputError):
    """An encoder could not be loaded, or produced unusable embeddings (NaN, inf, wrong shape)."""


class CacheError(FpRankError):
    """A cache entry is unreadable. Callers treat this as a miss and recompute."""


class BuilderError(InputError):
    """A gallery could not be built, validated or pushed because of its input.

    Raised for a missing or malformed source file (the message names it), an unreadable image
    (unless ``skip_corrupt`` is set), a selection rule that the source cannot satisfy, an output
    folder that already exists, or a gallery folder that fails the pre-flight validation.
    """
