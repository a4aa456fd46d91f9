"""The error every gallery builder raises for a bad source, a bad argument or a bad gallery."""

from __future__ import annotations

from fp_rank.errors import InputError


class BuilderError(InputError):
    """A gallery could not be built, validated or pushed because of its input.

    Raised for a missing or malformed source file (the message names it), an unreadable image
    (unless ``skip_corrupt`` is set), a selection rule that the source cannot satisfy, an output
    folder that already exists, or a gallery folder that fails the pre-flight validation. It is an
    :class:`fp_rank.errors.InputError`, hence also a :class:`ValueError`.
    """
