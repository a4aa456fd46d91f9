"""The load stage: the gallery, the encoders (one in memory at a time) and the matting backend."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fp_rank.encoding.background import Matting, load_matting, with_background_removal
from fp_rank.encoding.encoders import Encoder
from fp_rank.encoding.load import load_encoder
from fp_rank.errors import InputError, Opt
from fp_rank.galleries.load import Gallery, load_gallery
from fp_rank.options import ModelChoice, Options, option
from fp_rank.options.specs import RECOMMENDED


def gallery_of(gallery: Any, opts: Options) -> Gallery:
    """The gallery named by ``gallery`` (a folder, a Hub id, or a loaded one returned as is).

    Raises:
        InputError: a loaded gallery with loading options that contradict how it was loaded (they
            would be ignored).
    """
    if isinstance(gallery, Gallery):
        _check_loaded(gallery, opts)
    return load_gallery(
        gallery, opts.gallery_config, opts.gallery_revision, progress=opts.progress,
        min_gallery_images=opts.min_gallery_images, on_duplicate=opts.on_duplicate,
    )


def _check_loaded(gallery: Gallery, opts: Options) -> None:
    asked = {"gallery_config": (opts.gallery_config, gallery.config), "gallery_revision": (opts.gallery_revision,
             gallery.revision), "min_gallery_images": (opts.min_gallery_images, gallery.checks.get("min_gallery_images")),
             "on_duplicate": (opts.on_duplicate, None)}
    for name, (value, loaded) in asked.items():
        if value in (option(name).default, loaded):
            continue
        raise InputError(
            Opt(name, value), f" applies when fp-rank loads the gallery, but gallery {gallery.id!r} is already loaded"
            + (f" (with {name}={loaded!r})" if loaded is not None else "") + "; pass it to fp_rank.load_gallery() "
            "instead, or pass the gallery's folder or Hub id",
        )


def encoder_choices(opts: Options, gallery: Gallery) -> tuple[ModelChoice, ...]:
    """The encoders asked for; none means the gallery card's recommended primary one."""
    if opts.encoder is not None and all(c.spec is not RECOMMENDED for c in opts.encoder):
        return opts.encoder  # type: ignore[no-any-return]
    if gallery.recommended_encoder is None:
        raise InputError(
            f"no encoder given and gallery {gallery.id!r} names no recommended encoder; pass ",
            Opt("encoder", "dinov2-base"), " (or another)",
        )
    if opts.encoder is not None:  # the recommended one at a revision (fp-rank 0.1's encoder_revision alone)
        return tuple(ModelChoice(gallery.recommended_encoder, c.revision) for c in opts.encoder)
    return (ModelChoice(gallery.recommended_encoder),)


def matting_of(opts: Options, device: str | None) -> Matting | None:
    """The matting backend of ``background`` (None when the background is kept)."""
    if not opts.removes_background:
        return None
    return load_matting(opts.matting, device=device, trust_remote_code=opts.trust_remote_code)


def encoders(
    choices: tuple[ModelChoice, ...], opts: Options, *, device: str | None, matting: Matting | None
) -> Iterator[Encoder]:
    """Load each encoder in turn (one in memory at a time); refuse two with the same name.

    With ``matting``, every image each encoder sees has its background removed first (and the
    matting backend is part of the encoder's identity, hence of its cache key).
    """
    seen: set[str] = set()
    for choice in choices:
        enc = load_encoder(
            choice.spec, revision=choice.revision, device=device, dtype=opts.dtype,
            trust_remote_code=opts.trust_remote_code, preprocessing=opts.preprocessing,
        )
        if matting is not None:
            enc = with_background_removal(enc, matting)
        if enc.name in seen:
            raise InputError(
                f"two encoders are both named {enc.name!r}; their results and cache entries would mix. Give each a "
                "distinct name, e.g. fp_rank.load_encoder(fn, name='my-encoder-v1', revision='v1')"
            )
        seen.add(enc.name)
        yield enc
