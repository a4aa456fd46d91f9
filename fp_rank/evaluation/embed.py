"""The embed stage: the only part of an evaluation that touches encoders, the cache and ranks.

Gallery, reference and holdout splits are encoded once per encoder (and cached by content);
each distinct generated image is encoded once per encoder, sharded across ranks when launched
with ``torchrun``/``accelerate``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fp_rank import distributed
from fp_rank.caching.store import EmbeddingCache, cache_key
from fp_rank.encoding.background import Matting, with_background_removal
from fp_rank.encoding.encoders import Encoder, EncodeResult, load_encoder
from fp_rank.encoding.images import content_hash
from fp_rank.errors import EncoderError, FpRankError, InputError
from fp_rank.galleries.load import Gallery, GallerySplit


@dataclass
class EmbedStats:
    """What the embed stage encoded and what it read from the cache (recorded in the report)."""

    encoded: int = 0
    from_cache: int = 0
    queries_encoded: int = 0
    queries_distinct: int | None = None


@dataclass
class Vectors:
    """One encoder's embeddings: real splits, and the generated images that could be read."""

    gallery: np.ndarray
    reference: np.ndarray
    holdout: np.ndarray | None
    queries: np.ndarray
    kept: np.ndarray  # indices of the generated images behind the rows of ``queries``
    skipped: list[dict[str, Any]] = field(default_factory=list)


def encoder_specs(encoder: Any, revision: Any, gallery: Gallery) -> list[tuple[Any, str | None]]:
    """(encoder spec, weights revision) pairs; no encoder means the gallery card's primary one."""
    if encoder is None:
        if gallery.recommended_encoder is None:
            raise InputError(
                f"no encoder given and gallery {gallery.id!r} names no recommended encoder; pass encoder=, e.g. "
                "'dinov2-base'"
            )
        specs = [gallery.recommended_encoder]
    elif isinstance(encoder, (list, tuple)):
        specs = list(encoder)
        if not specs:
            raise InputError("encoder is an empty list")
    else:
        specs = [encoder]
    if revision is None:
        return [(s, None) for s in specs]
    if isinstance(revision, str):
        if len(specs) > 1:
            raise InputError(
                f"encoder_revision={revision!r} is ambiguous with {len(specs)} encoders; give a list with one "
                "revision (or None) per encoder"
            )
        return [(specs[0], revision)]
    revisions = list(revision)
    if len(revisions) != len(specs):
        raise InputError(f"encoder_revision has {len(revisions)} entries for {len(specs)} encoders; give one per encoder")
    return list(zip(specs, revisions))


def load_encoders(
    specs: list[tuple[Any, str | None]], *, matting: Matting | None = None, **kwargs: Any
) -> Iterator[Encoder]:
    """Load each encoder in turn (one in memory at a time); refuse two with the same name.

    With ``matting``, every image each encoder sees has its background removed first (and the
    matting backend is part of the encoder's identity, hence of its cache key).
    """
    seen: set[str] = set()
    for spec, revision in specs:
        enc = load_encoder(spec, revision=revision, **kwargs)
        if matting is not None:
            enc = with_background_removal(enc, matting)
        if enc.name in seen:
            raise InputError(
                f"two encoders are both named {enc.name!r}; their results and cache entries would mix. Give each a "
                "distinct name, e.g. fp_rank.load_encoder(fn, name='my-encoder-v1', revision='v1')"
            )
        seen.add(enc.name)
        yield enc


class Embedder:
    """Embeds a gallery's splits and a run's generated images, encoder by encoder."""

    def __init__(
        self, gallery: Gallery, generated: Sequence[Any], names: list[str], *, cache: EmbeddingCache,
        batch_size: int, progress: bool, on_invalid: str,
    ) -> None:
        self.gallery, self.generated, self.names = gallery, generated, names
        self.cache, self.batch_size, self.progress, self.on_invalid = cache, batch_size, progress, on_invalid
        self.stats = EmbedStats()
        self._distinct: tuple[list[int], np.ndarray] | None = None

    def embed(self, enc: Encoder, *, holdout: bool) -> Vectors:
        """All embeddings one encoder needs; ``holdout`` also encodes the holdout split (ceilings)."""
        gal = self.gallery
        g_emb = self.split(enc, gal.gallery)
        r_emb = self.split(enc, gal.reference)
        if self._distinct is None:  # each distinct generated image is encoded once per encoder
            self._distinct = _distinct_images(self.generated)
            self.stats.queries_distinct = len(self._distinct[0])
        q = _encode_distinct(
            enc, self.generated, *self._distinct, self.names, batch_size=self.batch_size, progress=self.progress,
            on_invalid=self.on_invalid, desc=f"generated ({enc.name})",
        )
        self.stats.queries_encoded += len(self._distinct[0])
        if len(q.kept) == 0:
            raise InputError(
                f"none of the {len(self.generated)} generated images could be read; see the skipped list: {q.skipped[:3]}"
            )
        dims = {g_emb.shape[1], r_emb.shape[1], q.embeddings.shape[1]}
        if len(dims) != 1:
            raise EncoderError(f"encoder {enc.name!r} produced embeddings of different sizes {sorted(dims)}")
        h_emb = self.split(enc, gal.holdout) if holdout and gal.holdout is not None and len(gal.holdout) else None
        return Vectors(g_emb, r_emb, h_emb, q.embeddings, q.kept, [dict(s) for s in q.skipped])

    def conditioning(self, enc: Encoder, items: Sequence[Any], reference: np.ndarray) -> np.ndarray | None:
        """Per generated image, the embedding of the real image it was conditioned on (NaN row: none).

        An int is a row of the reference split (already embedded); any other item is an image
        source, encoded here (each distinct image once). None when no image has one.
        """
        if all(c is None for c in items):
            return None
        out = np.full((len(items), reference.shape[1]), np.nan)
        external = [i for i, c in enumerate(items) if c is not None and not _is_index(c)]
        for i, c in enumerate(items):
            if _is_index(c):
                out[i] = reference[int(c)]
        if external:
            sources = [items[i] for i in external]
            reps, inverse = _distinct_images(sources)
            res = _encode_distinct(
                enc, sources, reps, inverse, [f"conditioning[{i}]" for i in external], batch_size=self.batch_size,
                progress=self.progress, on_invalid="error", desc=f"conditioning ({enc.name})",
            )
            out[np.asarray(external)[res.kept]] = res.embeddings
        return out

    def split(self, enc: Encoder, split: GallerySplit) -> np.ndarray:
        """One real split's embeddings, from the cache when every rank has them."""
        key = cache_key(enc.identity(), split.fingerprint) if enc.cacheable else None
        if key is not None:
            hit = self.cache.get(key, len(split))
            if distributed.all_true(hit is not None):  # every rank must agree, or all encode
                self.stats.from_cache += len(split)
                return hit  # type: ignore[return-value]
        names = [f"{self.gallery.id}:{split.name}[{i}]" for i in range(len(split))]
        result = distributed.encode(
            enc, split.images, batch_size=self.batch_size, progress=self.progress, names=names,
            desc=f"{split.name} ({enc.name})",
        )
        self.stats.encoded += len(split)
        if key is not None and distributed.is_main_process():
            self.cache.put(key, result.embeddings, {"gallery": self.gallery.id, "split": split.name, "encoder": enc.name})
        return result.embeddings


def _is_index(item: Any) -> bool:
    return isinstance(item, (int, np.integer)) and not isinstance(item, (bool, np.bool_))


def _distinct_images(items: Sequence[Any]) -> tuple[list[int], np.ndarray]:
    """Deduplicate image sources by content (sha256 of their bytes, or of their decoded pixels).

    Returns:
        The positions of the first copy of each distinct image, and for every item the index of
        its copy among those. Items that cannot be hashed (unreadable files) count as distinct;
        the encoder reports them.
    """
    first: dict[str, int] = {}
    reps: list[int] = []
    inverse = np.empty(len(items), dtype=np.int64)
    digests = distributed.map_shards(lambda part: [_digest_or_none(item) for item in part], items)
    for i, digest in enumerate(digests):
        if digest is not None and digest in first:
            inverse[i] = first[digest]
            continue
        if digest is not None:
            first[digest] = len(reps)
        inverse[i] = len(reps)
        reps.append(i)
    return reps, inverse


def _digest_or_none(item: Any) -> str | None:
    try:
        return content_hash(item)
    except (FpRankError, OSError, TypeError, ValueError):
        return None


def _encode_distinct(
    encoder: Encoder, items: Sequence[Any], reps: list[int], inverse: np.ndarray, names: list[str], **kwargs: Any
) -> EncodeResult:
    """Encode each distinct image once (sharded across ranks when launched), then fan the rows out."""
    if len(reps) == len(items):
        return distributed.encode(encoder, items, names=names, **kwargs)  # type: ignore[no-any-return]
    res = distributed.encode(encoder, [items[i] for i in reps], names=[names[i] for i in reps], **kwargs)
    row_of = np.full(len(reps), -1, dtype=np.int64)
    row_of[res.kept] = np.arange(len(res.kept))
    rows = row_of[inverse]
    kept = np.flatnonzero(rows >= 0)
    reason = {int(s["index"]): s["reason"] for s in res.skipped}
    skipped = [
        {"index": str(int(i)), "file": names[int(i)], "reason": reason.get(int(inverse[i]), "unreadable")}
        for i in np.flatnonzero(rows < 0)
    ]
    emb = res.embeddings[rows[kept]] if len(kept) else res.embeddings
    return EncodeResult(embeddings=emb, kept=kept.astype(np.int64), skipped=skipped)
