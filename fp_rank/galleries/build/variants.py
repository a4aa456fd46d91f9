"""Gallery-selection variants: which of an identity's images form its gallery (the paper's ablation).

The protocol's gallery is a random draw. The authors also score every method against a
"kmeans" gallery: per identity, K-means over the embeddings of its images (K clusters,
``KMeans(n_clusters=K, random_state=seed, n_init="auto")``, seed 42 in their code), and the image
nearest each centroid; and against a random sample of the same size for comparison. A variant
re-chooses, per identity, K gallery images from its pool (the gallery and holdout images the
protocol's build selected); the images not chosen go to the holdout split, the reference split
is untouched. The card records the rule, K, the seed and the selection encoder, and every report
made with the gallery records them too (``metadata.gallery.gallery_selection``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from fp_rank.errors import BuilderError
from fp_rank.galleries.build.files import Row
from fp_rank.galleries.build.sampling import legacy_state, sample_like_pandas
from fp_rank.galleries.schema import DEFAULT_SELECTION_SEED, GALLERY_SPLIT, HOLDOUT_SPLIT, SELECTIONS


#: What a gallery without a variant records.
PROTOCOL_SELECTION: dict[str, Any] = {"rule": "random", "k": None, "note": "the protocol's random draw"}


@dataclass(frozen=True)
class GalleryVariant:
    """A gallery-selection rule applied after the protocol's build.

    Attributes:
        rule: ``"random"`` (K of the pool, drawn as pandas' ``sample`` does with ``seed``) or
            ``"kmeans"`` (the image nearest each of K centroids).
        k: gallery images per identity.
        seed: seed of the draw or of K-means.
        embed: for kmeans, image bytes -> embeddings (the selection encoder).
        encoder: for kmeans, the selection encoder's identity (recorded).
    """

    rule: Literal["random", "kmeans"]
    k: int
    seed: int = DEFAULT_SELECTION_SEED
    embed: Callable[[list[bytes]], np.ndarray] | None = field(default=None, compare=False)
    encoder: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.rule not in SELECTIONS:
            raise BuilderError(f"selection must be one of {list(SELECTIONS)}, got {self.rule!r}")
        if isinstance(self.k, bool) or not isinstance(self.k, int) or self.k < 1:
            raise BuilderError(f"the selection's K (gallery images per identity) must be a positive integer, got {self.k!r}")
        if self.rule == "kmeans" and self.embed is None:
            raise BuilderError("a kmeans selection needs a selection encoder (--selection-encoder)")

    def describe(self) -> dict[str, Any]:
        pool = "the gallery and holdout images the protocol's build selected for the identity"
        if self.rule == "random":
            how = f"{self.k} of them drawn at random (pandas-style draw, seed {self.seed})"
        else:
            how = (f"K-means with K = {self.k} over their embeddings (scikit-learn KMeans, random_state={self.seed}, "
                   "n_init='auto'); the image nearest each centroid (the next nearest unused one where two centroids "
                   "share their nearest image)")
        return {"rule": self.rule, "k": self.k, "seed": self.seed, "encoder": self.encoder,
                "note": f"per identity, pool: {pool}; gallery: {how}; the rest go to the holdout split"}


def apply_variant(rows: Sequence[Row], variant: GalleryVariant) -> list[Row]:
    """``rows`` with each identity's gallery re-chosen by ``variant`` from its gallery and holdout rows.

    Raises:
        BuilderError: an identity has fewer than K images in its pool.
    """
    pools: dict[str, list[int]] = {}
    for n, row in enumerate(rows):
        if row.split in (GALLERY_SPLIT, HOLDOUT_SPLIT):
            pools.setdefault(row.candidate.identity, []).append(n)
    short = {i: len(p) for i, p in pools.items() if len(p) < variant.k}
    if short:
        listed = ", ".join(f"{i} ({n})" for i, n in sorted(short.items())[:5])
        raise BuilderError(f"a gallery of {variant.k} images per identity needs {variant.k} images in each identity's "
                           f"pool; {len(short)} identities have fewer: {listed}. Choose a smaller K")
    split_of = {n: row.split for n, row in enumerate(rows)}
    for identity in sorted(pools):
        pool = pools[identity]
        chosen = set(_choose(rows, pool, variant, identity))
        for n in pool:
            split_of[n] = GALLERY_SPLIT if n in chosen else HOLDOUT_SPLIT
    return [replace(row, split=split_of[n]) if split_of[n] != row.split else row for n, row in enumerate(rows)]


def _choose(rows: Sequence[Row], pool: list[int], variant: GalleryVariant, identity: str) -> list[int]:
    if variant.rule == "random":
        return sample_like_pandas(legacy_state(variant.seed), pool, variant.k, what=f"identity {identity} (gallery)")
    try:
        from sklearn.cluster import KMeans
    except ImportError:
        raise BuilderError("a kmeans selection needs scikit-learn: pip install 'fp-rank[kmeans]'") from None
    assert variant.embed is not None
    emb = np.asarray(variant.embed([rows[n].data for n in pool]), dtype=np.float64)
    if emb.shape[0] != len(pool) or not np.isfinite(emb).all():
        raise BuilderError(f"the selection encoder gave unusable embeddings for identity {identity}")
    centres = KMeans(n_clusters=variant.k, random_state=variant.seed, n_init="auto").fit(emb).cluster_centers_
    picked: list[int] = []
    for centre in centres:
        order = np.argsort(((emb - centre) ** 2).sum(axis=1), kind="stable")
        picked.append(next(int(j) for j in order if int(j) not in picked))
    return [pool[j] for j in picked]
