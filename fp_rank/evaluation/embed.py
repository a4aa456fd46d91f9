"""The embed stage: the only part of an evaluation that touches encoders, the cache and ranks.

Gallery, reference and holdout splits are encoded once per encoder (and cached by content);
each distinct generated image is encoded once per encoder, sharded across ranks when launched
with ``torchrun``/``accelerate``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fp_rank import distributed
from fp_rank.caching.store import EmbeddingCache, cache_key
from fp_rank.checks.leakage import (
    LeakIndex,
    cached_gallery_leak_index,
    find_leaks,
    gallery_leak_index,
    leak_fingerprint,
)
from fp_rank.encoding.encoders import Encoder, EncodeResult
from fp_rank.images.decode import content_fingerprint, content_hash, source_bytes
from fp_rank.errors import EncoderError, FpRankError, InputError
from fp_rank.galleries.load import Gallery, GallerySplit


@dataclass
class EmbedStats:
    """What the embed stage encoded and what it read from the cache (recorded in the report)."""

    encoded: int = 0
    from_cache: int = 0
    queries_encoded: int = 0
    queries_distinct: int | None = None
    queries_from_cache: int = 0


@dataclass
class Vectors:
    """One encoder's embeddings: real splits, and the generated images that could be read."""

    gallery: np.ndarray
    reference: np.ndarray
    holdout: np.ndarray | None
    queries: np.ndarray
    kept: np.ndarray  # indices of the generated images behind the rows of ``queries``
    skipped: list[dict[str, Any]] = field(default_factory=list)


class Embedder:
    """Embeds a gallery's splits and a run's generated images, encoder by encoder."""

    def __init__(
        self, gallery: Gallery, generated: Sequence[Any], names: list[str], *, cache: EmbeddingCache,
        batch_size: int, progress: bool, on_invalid: str, check_leaks: bool = False, num_workers: int = 0,
    ) -> None:
        self.gallery, self.generated, self.names = gallery, generated, names
        self.cache, self.batch_size, self.progress, self.on_invalid = cache, batch_size, progress, on_invalid
        self.check_leaks = check_leaks
        self.num_workers = num_workers
        self.leak_index: LeakIndex | None = None
        self.stats = EmbedStats()
        self._distinct: tuple[list[int], np.ndarray] | None = None
        self._byte_digests: list[str | None] = []
        self._content_digests: list[str | None] = []
        self._leaks: list[dict[str, Any] | None] | None = None

    def leaks(self) -> list[dict[str, Any] | None]:
        """Per generated image: None, or the real image it copies (:mod:`fp_rank.checks.leakage`).

        Computed inside the first encoder's decode pass (one decode and one hash per distinct
        generated image serve the encoder, the deduplication and the leakage guard); decoded
        separately only under a distributed launcher, or when nothing was encoded yet.
        """
        if not self.check_leaks:
            return [None] * len(self.generated)
        if self._leaks is None:
            index = self.leak_index if self.leak_index is not None else gallery_leak_index(self.gallery)
            self._leaks = distributed.map_shards(lambda part: find_leaks(part, index), self.generated)
        return self._leaks

    def embed(self, enc: Encoder, *, holdout: bool) -> Vectors:
        """All embeddings one encoder needs; ``holdout`` also encodes the holdout split (ceilings)."""
        gal = self.gallery
        fingerprints = self._index_fingerprints()
        g_emb = self.split(enc, gal.gallery, fingerprints)
        r_emb = self.split(enc, gal.reference, fingerprints)
        if self.check_leaks and self.leak_index is None and fingerprints is not None:
            # the leakage guard's index of the real images, from the fingerprints taken while they were
            # decoded for encoding (only splits read from the cache, and the holdout, are decoded again)
            self.leak_index = gallery_leak_index(gal, fingerprints=fingerprints)
        if self._distinct is None:  # each distinct generated image is encoded once per encoder
            distributed.verify_same_inputs("generated images", len(self.generated), _names_fingerprint(self.names))
            reps, inverse, pairs = _distinct_images(self.generated, with_byte_digests=True)
            self._distinct = (reps, inverse)
            self._content_digests = [p[0] for p in pairs]
            self._byte_digests = [p[1] for p in pairs]
            self.stats.queries_distinct = len(reps)
        hook = self._leak_hook()
        q = self._encode_generated(enc, hook)
        if hook is not None:
            self._leaks = self._fan_out_leaks({r: found[0] for r, found in q.decoded.items()})
        if len(q.kept) == 0:
            raise InputError(
                f"none of the {len(self.generated)} generated images could be read; see the skipped list: {q.skipped[:3]}"
            )
        dims = {g_emb.shape[1], r_emb.shape[1], q.embeddings.shape[1]}
        if len(dims) != 1:
            raise EncoderError(f"encoder {enc.name!r} produced embeddings of different sizes {sorted(dims)}")
        h_emb = self.split(enc, gal.holdout) if holdout and gal.holdout is not None and len(gal.holdout) else None
        return Vectors(g_emb, r_emb, h_emb, q.embeddings, q.kept, [dict(s) for s in q.skipped])

    def _index_fingerprints(self) -> dict[str, dict[int, tuple[int, np.ndarray]]] | None:
        """Where the real splits' leak fingerprints are collected while encoding; None: not wanted."""
        if not self.check_leaks or self.leak_index is not None or self._leaks is not None:
            return None
        self.leak_index = cached_gallery_leak_index(self.gallery)
        if self.leak_index is not None or distributed.context().active:
            return None
        return {}

    def _encode_generated(self, enc: Encoder, hook: Any) -> EncodeResult:
        """Each distinct generated image once, in cached chunks (a killed run resumes), fanned out to every copy."""
        reps, inverse = self._distinct  # type: ignore[misc]
        sources = [self.generated[i] for i in reps]
        digests = [self._content_digests[i] for i in reps]

        def key(lo: int, hi: int) -> str | None:
            chunk = digests[lo:hi]
            if not (enc.cacheable and self.cache.enabled) or any(d is None for d in chunk):
                return None
            return cache_key(enc.identity(), content_fingerprint(["generated-chunk", *chunk]))  # type: ignore[list-item]

        def cached(lo: int, hi: int) -> np.ndarray | None:
            k = key(lo, hi)
            return self.cache.get(k, hi - lo) if k is not None else None

        def store(lo: int, hi: int, res: EncodeResult) -> None:
            k = key(lo, hi)
            if k is not None and not res.skipped and len(res.kept) == hi - lo:
                self.cache.put(k, res.embeddings, {"split": "generated", "rows": [lo, hi], "encoder": enc.name})

        res, from_cache = distributed.encode_chunks(
            enc, sources, chunk_size=GENERATED_CHUNK, batch_size=self.batch_size, cached=cached, store=store,
            progress=self.progress, desc=f"generated ({enc.name})", names=[self.names[i] for i in reps],
            on_invalid=self.on_invalid, num_workers=self.num_workers, **({"on_decoded": hook} if hook else {}),
        )
        self.stats.queries_encoded += len(reps) - from_cache
        self.stats.queries_from_cache += from_cache
        return _fan_out(res, reps, inverse, self.names)

    def _leak_hook(self) -> Any:
        """The encoder's ``on_decoded`` callback: each decoded generated image's leak match, as ``(match,)``."""
        if self.leak_index is None or self._leaks is not None or distributed.context().active:
            return None  # no index yet (leaks() builds one), already done, or sharded
        index, reps, digests, generated = self.leak_index, self._distinct[0], self._byte_digests, self.generated  # type: ignore[index]

        def on_decoded(i: int, rgb: Any) -> tuple[dict[str, Any] | None]:
            item = reps[i]
            return (index.match(generated[item], digest=digests[item], rgb=rgb),)

        return on_decoded

    def _fan_out_leaks(self, found: dict[int, dict[str, Any] | None]) -> list[dict[str, Any] | None]:
        """Leak matches of the distinct images, one per generated image (undecoded ones checked here)."""
        index, (reps, inverse), digests = self.leak_index, self._distinct, self._byte_digests  # type: ignore[misc]
        per_rep = [
            found[r] if r in found else index.match(self.generated[i], digest=digests[i])  # type: ignore[union-attr]
            for r, i in enumerate(reps)
        ]
        return [per_rep[int(r)] for r in inverse]

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

    def split(
        self, enc: Encoder, split: GallerySplit, fingerprints: dict[str, dict[int, Any]] | None = None
    ) -> np.ndarray:
        """One real split's embeddings, from the cache when every rank has them.

        ``fingerprints``: when given and the split is encoded, each decoded image's
        :func:`~fp_rank.checks.leakage.leak_fingerprint` is stored in ``fingerprints[split.name]``.
        """
        key = cache_key(enc.identity(), split.fingerprint) if enc.cacheable else None
        if key is not None:
            hit = self.cache.get(key, len(split))
            if distributed.all_true(hit is not None):  # every rank must agree, or all encode
                self.stats.from_cache += len(split)
                return hit  # type: ignore[return-value]
        names = [f"{self.gallery.id}:{split.name}[{i}]" for i in range(len(split))]
        hook: dict[str, Any] = {"on_decoded": _fingerprint} if fingerprints is not None else {}
        result = distributed.encode(
            enc, split.images, batch_size=self.batch_size, progress=self.progress, names=names,
            desc=f"{split.name} ({enc.name})", num_workers=self.num_workers, **hook,
        )
        if fingerprints is not None:
            fingerprints[split.name] = result.decoded
        self.stats.encoded += len(split)
        if key is not None and distributed.is_main_process():
            self.cache.put(key, result.embeddings, {"gallery": self.gallery.id, "split": split.name, "encoder": enc.name})
        return result.embeddings


#: Distinct generated images per cached chunk (rounded down to whole batches): a killed run loses
#: at most one chunk per rank. Each chunk's entry is keyed like a gallery split's (encoder
#: identity + content fingerprint of the chunk's images).
GENERATED_CHUNK = 4096


def _names_fingerprint(names: Sequence[str]) -> str:
    """Digest of the generated images' names, compared across ranks before anything is encoded."""
    digest = hashlib.sha256()
    for name in names:
        digest.update(str(name).encode("utf-8", "surrogatepass"))
        digest.update(b"\0")
    return digest.hexdigest()


def _fingerprint(i: int, rgb: Any) -> Any:
    return leak_fingerprint(rgb)


def _is_index(item: Any) -> bool:
    return isinstance(item, (int, np.integer)) and not isinstance(item, (bool, np.bool_))


def _distinct_images(items: Sequence[Any], with_byte_digests: bool = False) -> Any:
    """Deduplicate image sources by content (sha256 of their bytes, or of their decoded pixels).

    Args:
        items: the image sources.
        with_byte_digests: also return, per item, ``(content digest, sha256 of its encoded bytes)``
            (None for an in-memory picture): the chunk cache's key and the leakage guard's exact
            test, so the bytes are hashed once.

    Returns:
        The positions of the first copy of each distinct image, and for every item the index of
        its copy among those (and the byte digests). Items that cannot be hashed (unreadable
        files) count as distinct; the encoder reports them.
    """
    first: dict[str, int] = {}
    reps: list[int] = []
    inverse = np.empty(len(items), dtype=np.int64)
    pairs = distributed.map_shards(lambda part: [_digests(item) for item in part], items)
    digests = [p[0] for p in pairs]
    for i, digest in enumerate(digests):
        if digest is not None and digest in first:
            inverse[i] = first[digest]
            continue
        if digest is not None:
            first[digest] = len(reps)
        inverse[i] = len(reps)
        reps.append(i)
    if with_byte_digests:
        return reps, inverse, pairs
    return reps, inverse


def _digests(item: Any) -> tuple[str | None, str | None]:
    """(content digest as :func:`content_hash`, or None; sha256 of the encoded bytes, or None)."""
    try:
        data = source_bytes(item)
    except (FpRankError, OSError, TypeError, ValueError):
        return None, None
    if data is None:
        return _digest_or_none(item), None
    digest = hashlib.sha256(data).hexdigest()
    return digest, digest if data else None


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
    return _fan_out(res, reps, inverse, names)


def _fan_out(res: EncodeResult, reps: list[int], inverse: np.ndarray, names: Sequence[str]) -> EncodeResult:
    """Rows of the distinct images (``res``, indexed by position in ``reps``) -> one per item."""
    if len(reps) == len(inverse):
        return res
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
    return EncodeResult(embeddings=emb, kept=kept.astype(np.int64), skipped=skipped, decoded=res.decoded)
