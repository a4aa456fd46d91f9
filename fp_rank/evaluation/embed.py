"""The embed stage: every embedding an evaluation needs, one encoder at a time.

Its one job is to turn images into embeddings with :meth:`fp_rank.Encoder.encode`, which reads
one decode stream (:class:`fp_rank.images.stream.DecodeStream`). What else an image needs is
arranged *around* that call, never passed into it to be called back:

* **de-duplication**: each distinct generated image (by content) is encoded once and its row
  fanned out to every copy (:class:`Distinct`);
* **caching**: a real split, or a chunk of distinct generated images, is read from the embedding
  cache before anything is encoded and stored right after (a killed run resumes at its first
  chunk not stored);
* **sharding**: under ``torchrun``/``accelerate`` each rank encodes its share of batches or chunks
  and :func:`fp_rank.distributed.gather_encoded` brings the rows together;
* **the leakage guard** reads the same decode: its fingerprint is a *tap* of the stream, and the
  matching happens here afterwards, from the tapped fingerprints (decode once).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
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
from fp_rank.errors import EncoderError, FpRankError, InputError
from fp_rank.galleries.load import Gallery, GallerySplit
from fp_rank.images.decode import content_fingerprint, content_hash, source_bytes
from fp_rank.progress import progress_bar

#: The decode-stream tap of the leakage guard.
FINGERPRINT = "fingerprint"

#: Distinct generated images per cached chunk (rounded down to whole batches): a killed run loses
#: at most one chunk per rank. Each chunk's entry is keyed like a gallery split's (encoder
#: identity + content fingerprint of the chunk's images).
GENERATED_CHUNK = 4096


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


@dataclass(frozen=True)
class Distinct:
    """The distinct images of a list, by content (sha256 of their bytes, or of their decoded pixels).

    Attributes:
        reps: the position of the first copy of each distinct image.
        inverse: for every item, the index (into ``reps``) of its copy.
        content: per item, its content digest (None: it cannot be hashed; it counts as distinct
            and the encoder reports it).
        byte_digests: per item, the sha256 of its encoded bytes (None for an in-memory picture):
            the leakage guard's exact test.
    """

    reps: list[int]
    inverse: np.ndarray
    content: list[str | None]
    byte_digests: list[str | None]

    @classmethod
    def of(cls, items: Sequence[Any]) -> Distinct:
        """Hash every item (a contiguous share per rank under a launcher) and group the copies."""
        pairs = distributed.map_shards(lambda part: [_digests(item) for item in part], items)
        first: dict[str, int] = {}
        reps: list[int] = []
        inverse = np.empty(len(items), dtype=np.int64)
        for i, (digest, _) in enumerate(pairs):
            if digest is not None and digest in first:
                inverse[i] = first[digest]
                continue
            if digest is not None:
                first[digest] = len(reps)
            inverse[i] = len(reps)
            reps.append(i)
        return cls(reps, inverse, [p[0] for p in pairs], [p[1] for p in pairs])

    def fan_out(self, res: EncodeResult, names: Sequence[str]) -> EncodeResult:
        """Rows of the distinct images (``res``, indexed by position in ``reps``) -> one per item."""
        if len(self.reps) == len(self.inverse):
            return res
        row_of = np.full(len(self.reps), -1, dtype=np.int64)
        row_of[res.kept] = np.arange(len(res.kept))
        rows = row_of[self.inverse]
        kept = np.flatnonzero(rows >= 0)
        reason = {int(s["index"]): s["reason"] for s in res.skipped}
        skipped = [
            {"index": str(int(i)), "file": names[int(i)], "reason": reason.get(int(self.inverse[i]), "unreadable")}
            for i in np.flatnonzero(rows < 0)
        ]
        emb = res.embeddings[rows[kept]] if len(kept) else res.embeddings
        return EncodeResult(embeddings=emb, kept=kept.astype(np.int64), skipped=skipped, tapped=res.tapped)


class Embedder:
    """Embeds a gallery's splits and a run's generated images, encoder by encoder."""

    def __init__(
        self, gallery: Gallery, generated: Sequence[Any], names: list[str], *, cache: EmbeddingCache,
        batch_size: int, progress: bool, on_invalid: str, check_leaks: bool = False, num_workers: int = 0,
    ) -> None:
        self.gallery, self.generated, self.names = gallery, generated, names
        self.cache, self.batch_size, self.progress, self.on_invalid = cache, batch_size, progress, on_invalid
        self.check_leaks, self.num_workers = check_leaks, num_workers
        self.stats = EmbedStats()
        self._distinct: Distinct | None = None
        self._leak_index: LeakIndex | None = None
        self._leaks: list[dict[str, Any] | None] | None = None

    # -- what the pipeline asks for --------------------------------------------------------------
    def embed(self, enc: Encoder, *, holdout: bool) -> Vectors:
        """All embeddings one encoder needs; ``holdout`` also encodes the holdout split (ceilings).

        The first encoder's pass also takes the leakage guard's fingerprints of every image it
        decodes (taps of its decode stream), so the guard decodes nothing again.
        """
        gal = self.gallery
        taps = self._guard_taps()
        real_taps = taps if self._leak_index is None else None  # an index built earlier needs no fingerprints
        g_emb, g_prints = self.split(enc, gal.gallery, real_taps)
        r_emb, r_prints = self.split(enc, gal.reference, real_taps)
        if real_taps:
            self._leak_index = gallery_leak_index(gal, fingerprints={gal.gallery.name: g_prints, gal.reference.name: r_prints})
        q = self._generated(enc, taps)
        if len(q.kept) == 0:
            raise InputError(
                f"none of the {len(self.generated)} generated images could be read; see the skipped list: {q.skipped[:3]}"
            )
        dims = {g_emb.shape[1], r_emb.shape[1], q.embeddings.shape[1]}
        if len(dims) != 1:
            raise EncoderError(f"encoder {enc.name!r} produced embeddings of different sizes {sorted(dims)}")
        h_emb = self.split(enc, gal.holdout)[0] if holdout and gal.holdout is not None and len(gal.holdout) else None
        return Vectors(g_emb, r_emb, h_emb, q.embeddings, q.kept, [dict(s) for s in q.skipped])

    def leaks(self) -> list[dict[str, Any] | None]:
        """Per generated image: None, or the real image it copies (:mod:`fp_rank.checks.leakage`).

        Matched from the fingerprints taken during the first encoder's decode pass; decoded
        separately only under a distributed launcher, or when nothing was encoded yet.
        """
        if not self.check_leaks:
            return [None] * len(self.generated)
        if self._leaks is None:
            index = self._leak_index if self._leak_index is not None else gallery_leak_index(self.gallery)
            self._leaks = distributed.map_shards(lambda part: find_leaks(part, index), self.generated)
        return self._leaks

    def split(
        self, enc: Encoder, split: GallerySplit, taps: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[int, Any] | None]:
        """One real split's embeddings, from the cache when every rank has them.

        Returns:
            The embeddings, and (with ``taps``) the leak fingerprints of the images decoded to
            make them (None when they came from the cache).
        """
        key = cache_key(enc.identity(), split.fingerprint) if enc.cacheable else None
        if key is not None:
            hit = self.cache.get(key, len(split))
            if distributed.all_true(hit is not None):  # every rank must agree, or all encode
                self.stats.from_cache += len(split)
                return hit, None  # type: ignore[return-value]
        names = [f"{self.gallery.id}:{split.name}[{i}]" for i in range(len(split))]
        res = self._encode(enc, split.images, names, f"{split.name} ({enc.name})", taps, "error")
        self.stats.encoded += len(split)
        if key is not None and distributed.is_main_process():
            self.cache.put(key, res.embeddings, {"gallery": self.gallery.id, "split": split.name, "encoder": enc.name})
        return res.embeddings, res.tapped.get(FINGERPRINT) if taps else None

    def conditioning(self, enc: Encoder, items: Sequence[Any], reference: np.ndarray) -> np.ndarray | None:
        """Per generated image, the embedding of the real image it was conditioned on (NaN row: none).

        An int is a row of the reference split (already embedded); any other item is an image
        source, encoded here (each distinct image once). None when no image has one.
        """
        if all(c is None for c in items):
            return None
        out = np.full((len(items), reference.shape[1]), np.nan)
        external = [i for i, c in enumerate(items) if c is not None and not is_reference_index(c)]
        for i, c in enumerate(items):
            if is_reference_index(c):
                out[i] = reference[int(c)]
        if external:
            sources = [items[i] for i in external]
            names = [f"conditioning[{i}]" for i in external]
            distinct = Distinct.of(sources)
            res = self._encode(enc, [sources[i] for i in distinct.reps], [names[i] for i in distinct.reps],
                               f"conditioning ({enc.name})", None, "error")
            res = distinct.fan_out(res, names)
            out[np.asarray(external)[res.kept]] = res.embeddings
        return out

    # -- the wrappers around Encoder.encode --------------------------------------------------------
    def _encode(
        self, enc: Encoder, items: Sequence[Any], names: list[str], desc: str, taps: dict[str, Any] | None,
        on_invalid: str,
    ) -> EncodeResult:
        return encode_sharded(enc, items, names=names, desc=desc, taps=taps, on_invalid=on_invalid,
                              batch_size=self.batch_size, num_workers=self.num_workers, progress=self.progress)

    def _generated(self, enc: Encoder, taps: dict[str, Any] | None) -> EncodeResult:
        """Each distinct generated image once, in cached chunks (a killed run resumes), fanned out to every copy."""
        if self._distinct is None:
            distributed.verify_same_inputs("generated images", len(self.generated), _names_fingerprint(self.names))
            self._distinct = Distinct.of(self.generated)
            self.stats.queries_distinct = len(self._distinct.reps)
        distinct = self._distinct
        sources = [self.generated[i] for i in distinct.reps]
        names = [self.names[i] for i in distinct.reps]
        res, from_cache = self._chunks(enc, sources, names, [distinct.content[i] for i in distinct.reps], taps)
        self.stats.queries_encoded += len(sources) - from_cache
        self.stats.queries_from_cache += from_cache
        if taps and self._leaks is None:
            self._leaks = self._match_leaks(res.tapped.get(FINGERPRINT, {}))
        return distinct.fan_out(res, self.names)

    def _chunks(
        self, enc: Encoder, items: list[Any], names: list[str], digests: list[str | None], taps: dict[str, Any] | None,
    ) -> tuple[EncodeResult, int]:
        """Encode ``items`` in chunks of whole batches, each read from or written to the cache.

        Under a launcher rank ``r`` takes chunks ``r, r + W, ...`` and holds only its own until
        the final gather. Chunks are whole numbers of batches, so every model call sees the batch
        a run without chunks would see: the numbers do not depend on chunking or resuming.

        Returns:
            The result over all items and how many came from the cache (summed over ranks).
        """
        ctx = distributed.context()
        size = max(self.batch_size, (GENERATED_CHUNK // self.batch_size) * self.batch_size)
        n = len(items)
        bar = progress_bar(n, f"generated ({enc.name})", self.progress and ctx.is_main)
        parts: list[EncodeResult] = []
        from_cache = 0
        error: BaseException | None = None
        try:
            for c in range(ctx.rank, math.ceil(n / size) if n else 0, ctx.world_size):
                lo, hi = c * size, min(n, (c + 1) * size)
                part, cached = self._chunk(enc, items, names, digests, taps, lo, hi)
                from_cache += (hi - lo) if cached else 0
                parts.append(part)
                if bar is not None:
                    bar.update((hi - lo) * ctx.world_size)
        except Exception as exc:  # raised on every rank (in the gather), so no rank waits for the others
            if not ctx.active:
                raise
            error = exc
        finally:
            if bar is not None:
                bar.close()
        local = _concat(parts) if error is None else EncodeResult(np.zeros((0, 0)), np.zeros(0, np.int64))
        parts.clear()  # the shard is held once, in `local`, through the gather
        if not ctx.active:
            return local, from_cache
        kept, emb, skipped = distributed.gather_encoded(local.kept, local.embeddings, local.skipped, error)
        return EncodeResult(emb, kept, skipped, local.tapped), distributed.sum_over_ranks(from_cache)

    def _chunk(
        self, enc: Encoder, items: list[Any], names: list[str], digests: list[str | None], taps: dict[str, Any] | None,
        lo: int, hi: int,
    ) -> tuple[EncodeResult, bool]:
        """Chunk ``items[lo:hi]``: read from the cache (True), or encoded and stored (False)."""
        chunk = digests[lo:hi]
        key = None
        idx = np.arange(lo, hi, dtype=np.int64)
        if enc.cacheable and self.cache.enabled and all(d is not None for d in chunk):
            key = cache_key(enc.identity(), content_fingerprint(["generated-chunk", *chunk]))  # type: ignore[list-item]
            hit = self.cache.get(key, hi - lo)
            if hit is not None:
                return EncodeResult(hit, idx), True
        res = enc.encode(distributed.Shard(items, idx), names=names[lo:hi], progress=False, taps=taps,
                         batch_size=self.batch_size, on_invalid=self.on_invalid, num_workers=self.num_workers)
        res = EncodeResult(
            embeddings=res.embeddings, kept=res.kept + lo, skipped=[{**s, "index": str(int(s["index"]) + lo)} for s in res.skipped],
            tapped={name: {int(i) + lo: v for i, v in values.items()} for name, values in res.tapped.items()},
        )
        if key is not None and not res.skipped and len(res.kept) == hi - lo:
            self.cache.put(key, res.embeddings, {"split": "generated", "rows": [lo, hi], "encoder": enc.name})
        return res, False

    # -- the leakage guard ---------------------------------------------------------------------------
    def _guard_taps(self) -> dict[str, Any] | None:
        """The fingerprint tap, while the guard still needs fingerprints and one process does all the work."""
        if not self.check_leaks or self._leaks is not None or distributed.context().active:
            return None
        if self._leak_index is None:
            self._leak_index = cached_gallery_leak_index(self.gallery)
        return {FINGERPRINT: leak_fingerprint}

    def _match_leaks(self, prints: dict[int, Any]) -> list[dict[str, Any] | None]:
        """Leak matches of the distinct images (fingerprints tapped while encoding; the others, read
        from the cache, decoded here), one per generated image."""
        index, distinct = self._leak_index, self._distinct
        assert index is not None and distinct is not None
        per_rep = [
            index.match(self.generated[i], digest=distinct.byte_digests[i], fingerprint=prints.get(r))
            for r, i in enumerate(distinct.reps)
        ]
        return [per_rep[int(r)] for r in distinct.inverse]


def encode_sharded(
    enc: Encoder, items: Sequence[Any], *, batch_size: int, names: Sequence[str] | None = None, desc: str = "encoding",
    taps: dict[str, Any] | None = None, on_invalid: str = "error", num_workers: int = 0, progress: bool = True,
) -> EncodeResult:
    """``enc.encode(items)``; under a launcher, this rank's whole batches, then every rank's rows gathered.

    Every model call sees the batch a single process would see, so the embeddings do not depend
    on the number of ranks. Taps run only in a single process (a launcher's ranks decode their
    own shares; their tap values are not gathered).
    """
    names = list(names) if names is not None else None
    options = {"batch_size": batch_size, "on_invalid": on_invalid, "num_workers": num_workers, "desc": desc}
    ctx = distributed.context()
    if not ctx.active:
        return enc.encode(items, names=names, progress=progress, taps=taps, **options)
    idx = distributed.shard_indices(len(items), batch_size, ctx.rank, ctx.world_size)
    try:
        local = enc.encode(distributed.Shard(items, idx), names=[names[int(i)] for i in idx] if names else None,
                           progress=progress and ctx.is_main, **options)
    except Exception as exc:  # raised on every rank, so no rank waits forever for the others
        kept, emb, skipped = distributed.gather_encoded(np.zeros(0, np.int64), np.zeros((0, 0)), [], exc)
    else:
        kept, emb, skipped = distributed.gather_encoded(
            idx[local.kept], local.embeddings, [{**s, "index": str(int(idx[int(s["index"])]))} for s in local.skipped],
            None,
        )
    return EncodeResult(embeddings=emb, kept=kept, skipped=skipped)


def _concat(parts: list[EncodeResult]) -> EncodeResult:
    rows = [p.embeddings for p in parts if len(p.kept)]
    tapped: dict[str, dict[int, Any]] = {}
    for p in parts:
        for name, values in p.tapped.items():
            tapped.setdefault(name, {}).update(values)
    return EncodeResult(
        embeddings=np.concatenate(rows).astype(np.float32, copy=False) if rows else np.zeros((0, 0), dtype=np.float32),
        kept=np.concatenate([p.kept for p in parts]).astype(np.int64) if parts else np.zeros(0, dtype=np.int64),
        skipped=[s for p in parts for s in p.skipped], tapped=tapped,
    )


def _names_fingerprint(names: Sequence[str]) -> str:
    """Digest of the generated images' names, compared across ranks before anything is encoded."""
    digest = hashlib.sha256()
    for name in names:
        digest.update(str(name).encode("utf-8", "surrogatepass"))
        digest.update(b"\0")
    return digest.hexdigest()


def is_reference_index(item: Any) -> bool:
    """Whether a conditioning item names a row of the reference split (an int, not a bool)."""
    return isinstance(item, (int, np.integer)) and not isinstance(item, (bool, np.bool_))


def _digests(item: Any) -> tuple[str | None, str | None]:
    """(content digest as :func:`content_hash`, or None; sha256 of the encoded bytes, or None)."""
    try:
        data = source_bytes(item)
    except (FpRankError, OSError, TypeError, ValueError):
        return None, None
    if data is None:
        try:
            return content_hash(item), None
        except (FpRankError, OSError, TypeError, ValueError):
            return None, None
    digest = hashlib.sha256(data).hexdigest()
    return digest, digest if data else None
