"""The leakage guard: generated images that are copies of real benchmark images.

A "generated" image that is a byte-identical or near-identical copy of a gallery image retrieves
its own identity at rank 1 and scores a trivially perfect AP; a copy of a reference image (the
subject photos the method was given) measures copying, not personalization. Both are flagged.

Two tests, both cheap (numpy and PIL, no model):

* **exact**: the sha256 of the encoded bytes matches a real image's sha256 (distance 0);
* **near-duplicate**: the 64-bit perceptual hash (pHash) of the decoded picture is within
  ``max_distance`` bits (Hamming distance, default :data:`DEFAULT_MAX_DISTANCE`) of a real
  image's hash, *and* the two pictures' 16x16 colour thumbnails differ by at most
  ``max_thumb_diff`` (mean absolute difference on a 0-255 scale, default
  :data:`DEFAULT_MAX_THUMB_DIFF`). The thumbnail check keeps flat, low-detail pictures (whose
  pHash bits are mostly noise) from matching each other.
* **near-duplicate, textured pictures**: same thumbnail test, and the Pearson correlation of the
  two pictures' 255 lowest non-DC DCT coefficients (of the same 32x32 luminance image) is at
  least ``min_texture_corr`` (default :data:`DEFAULT_MIN_TEXTURE_CORR`). On noise-like textures
  the low-frequency coefficients are small and the pHash's sign bits flip under a resize even
  though the coefficients still correlate strongly (distinct textures correlate near 0).

pHash: the picture is decoded with the package's conversion rule (:func:`~fp_rank.encoding.to_rgb`),
converted to 8-bit luminance, resized to 32x32 (box filter), transformed with a 2-D DCT-II; the
8x8 lowest frequencies give 64 bits, each set when its coefficient is above the median of the 63
non-DC ones. It survives re-encoding (PNG/JPEG/WebP), resizing, mild blur and small colour shifts;
it does not survive crops, flips or rotations, which are not "copies" in this sense.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from fp_rank.images.decode import source_bytes, to_rgb
from fp_rank.errors import ImageDecodeError, InputError

#: Near-duplicate threshold on the 64-bit pHash (bits that may differ). JPEG re-encoding at
#: quality 75 and 0.5x-2x resizing change a few bits; unrelated natural images differ by ~32.
DEFAULT_MAX_DISTANCE = 10

#: Largest mean absolute difference (0-255) between 16x16 RGB thumbnails of a near-duplicate.
#: Calibration on the synthetic demo gallery (64 px birds that differ only in small spots): copies
#: made by JPEG quality 50-90, WebP, resizing to 32-512 px or a 1 px Gaussian blur stay below 3.0;
#: the closest pair of *distinct* gallery images is at 5.1, the closest generated image at 8.3.
DEFAULT_MAX_THUMB_DIFF = 4.0

#: Smallest correlation of the 16x16 low-frequency DCT coefficients (DC left out) that marks a
#: near-duplicate when the pHash bits disagree (the second route, see the module docstring).
#: Measured: distinct noise textures correlate at most 0.25, their half-size copies (any filter
#: but nearest-neighbour on white noise) at least 0.87, 5% crops of noise at least 0.62.
DEFAULT_MIN_TEXTURE_CORR = 0.5

_HASH_SIZE = 8
_DCT_SIZE = 32
_THUMB = 16
_TEXTURE = 16


def _dct_matrix(n: int) -> np.ndarray:
    k = np.arange(n)[:, None]
    x = np.arange(n)[None, :]
    mat = np.cos(np.pi * (2 * x + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    mat[0] /= np.sqrt(2.0)
    return mat


_DCT = _dct_matrix(_DCT_SIZE)


def leak_fingerprint(rgb: Image.Image) -> tuple[int, np.ndarray, np.ndarray]:
    """What :class:`LeakIndex` keeps of a decoded real image, and compares a generated one by: its
    pHash, 16x16 thumbnail and texture vector (see the module docstring).

    Computed where the image is decoded (a tap of the encoder's decode stream), so that
    indexing a split needs no second decode. The one definition used for the real images and the
    generated ones alike; it runs once per
    generated image, so after the two Pillow resizes it takes a few small NumPy steps (the
    median by partition, the 64 bits packed at once). Cheaper resizes (one 32x32 colour picture
    for both the luminance and the thumbnail, or Pillow's ``reducing_gap``) were measured and
    dropped: they miss more cropped copies (``benchmarks/leak_guard.py``).
    """
    gray = rgb.convert("L").resize((_DCT_SIZE, _DCT_SIZE), Image.Resampling.BOX)
    dct = _DCT @ np.asarray(gray, dtype=np.float64) @ _DCT.T
    coeffs = dct[:_HASH_SIZE, :_HASH_SIZE].ravel()
    median = np.partition(coeffs[1:], 31)[31]  # the median of the 63 non-DC coefficients
    phash = int.from_bytes(np.packbits(coeffs > median, bitorder="little").tobytes(), "little")
    thumb = np.asarray(rgb.resize((_THUMB, _THUMB), Image.Resampling.BOX), dtype=np.uint8)
    vec = dct[:_TEXTURE, :_TEXTURE].ravel()[1:]
    vec = vec - vec.mean()
    norm = float(np.linalg.norm(vec))
    texture = (vec / norm if norm > 1e-9 else np.zeros_like(vec)).astype(np.float32)
    return phash, thumb, texture


def perceptual_hash(item: Any) -> int:
    """64-bit DCT perceptual hash of an image source (see the module docstring).

    Args:
        item: any image source accepted by :func:`fp_rank.encoding.to_rgb`.

    Returns:
        The hash as a Python int in ``[0, 2**64)``.

    Raises:
        ImageDecodeError: the image cannot be read.

    Example:
        >>> from PIL import Image
        >>> img = Image.linear_gradient("L").convert("RGB")
        >>> perceptual_hash(img) == perceptual_hash(img.resize((128, 128)))
        True
    """
    return leak_fingerprint(to_rgb(item))[0]


def hamming_distance(a: int, b: int) -> int:
    """Number of differing bits between two 64-bit hashes.

    Example:
        >>> hamming_distance(0b1011, 0b0001)
        2
    """
    return int(a ^ b).bit_count()


class _Unset:
    """Marks an argument the caller did not give (None is a meaningful digest: no bytes)."""


_UNSET = _Unset()


@dataclass(frozen=True)
class _Entry:
    split: str
    index: int


class LeakIndex:
    """Exact and perceptual hashes of the real images of a benchmark, searchable at once.

    Args:
        max_distance: near-duplicate threshold on the pHash Hamming distance (0-64).
        max_thumb_diff: near-duplicate threshold on the thumbnail difference (0-255).
        min_texture_corr: the second route's threshold on the low-frequency DCT correlation
            (above 1: the route is off).

    Raises:
        InputError: a threshold out of range.
    """

    def __init__(
        self,
        max_distance: int = DEFAULT_MAX_DISTANCE,
        max_thumb_diff: float = DEFAULT_MAX_THUMB_DIFF,
        min_texture_corr: float = DEFAULT_MIN_TEXTURE_CORR,
    ) -> None:
        if isinstance(max_distance, bool) or not isinstance(max_distance, (int, np.integer)) or not 0 <= max_distance <= 64:
            raise InputError(f"max_distance must be an integer in [0, 64], got {max_distance!r}")
        if not (isinstance(max_thumb_diff, (int, float)) and 0 <= float(max_thumb_diff) <= 255):
            raise InputError(f"max_thumb_diff must be a number in [0, 255], got {max_thumb_diff!r}")
        if not (isinstance(min_texture_corr, (int, float)) and -1 <= float(min_texture_corr) <= 1.0001):
            raise InputError(f"min_texture_corr must be a number in [-1, 1], got {min_texture_corr!r}")
        self.max_distance = int(max_distance)
        self.max_thumb_diff = float(max_thumb_diff)
        self.min_texture_corr = float(min_texture_corr)
        self._sha: dict[str, _Entry] = {}
        self._entries: list[_Entry] = []
        self._hashes: list[int] = []
        self._thumbs: list[np.ndarray] = []
        self._textures: list[np.ndarray] = []
        self._texture_array = np.zeros((0, _TEXTURE * _TEXTURE - 1), dtype=np.float32)
        self._mean_array = np.zeros((0, 3), dtype=np.float32)
        self._hash_array = np.zeros(0, dtype=np.uint64)
        self._thumb_array = np.zeros((0, _THUMB, _THUMB, 3), dtype=np.uint8)
        self.unreadable: list[tuple[str, int]] = []

    def __len__(self) -> int:
        return len(self._entries)

    def add(
        self, split: str, images: Iterable[Any], sha256: Sequence[str] | None = None,
        fingerprints: dict[int, tuple[int, np.ndarray, np.ndarray]] | None = None,
    ) -> None:
        """Index the images of one split (in order; ``index`` is the position in the split).

        Args:
            split: the split's name, recorded in matches.
            images: image sources.
            sha256: the images' known sha256 digests (computed from the bytes when omitted).
            fingerprints: :func:`leak_fingerprint` of images already decoded elsewhere, by
                position; the others are decoded here.
        """
        for index, item in enumerate(images):
            entry = _Entry(split, index)
            digest = sha256[index] if sha256 is not None else _sha256_or_none(item)
            if digest is not None:
                self._sha.setdefault(digest, entry)
            if fingerprints is not None and index in fingerprints:
                phash, thumb, texture = fingerprints[index]
            else:
                try:
                    rgb = to_rgb(item, name=f"{split}[{index}]")
                except ImageDecodeError:
                    self.unreadable.append((split, index))
                    continue
                phash, thumb, texture = leak_fingerprint(rgb)
            self._entries.append(entry)
            self._hashes.append(phash)
            self._thumbs.append(thumb)
            self._textures.append(texture)
        self._hash_array = np.asarray(self._hashes, dtype=np.uint64)
        if self._thumbs:
            self._thumb_array = np.stack(self._thumbs)
            self._texture_array = np.stack(self._textures)
            self._mean_array = self._thumb_array.reshape(len(self._thumbs), -1, 3).mean(axis=1, dtype=np.float32)

    def match(
        self, item: Any, *, digest: str | None | _Unset = _UNSET, rgb: Any = None,
        fingerprint: tuple[int, np.ndarray, np.ndarray] | None = None,
    ) -> dict[str, Any] | None:
        """The closest real image that ``item`` copies, or None.

        Args:
            item: the image source.
            digest: the sha256 of its encoded bytes (None: it has none), when the caller has
                already computed it; read from ``item`` otherwise.
            rgb: its decoded picture (:func:`~fp_rank.images.decode.to_rgb`), when the caller
                has already decoded it; decoded here otherwise.
            fingerprint: its :func:`leak_fingerprint`, when it was taken where the image was
                decoded (the encoder's decode stream); then nothing is decoded here.

        Returns:
            ``{"split", "index", "distance", "exact"}`` (``distance`` in pHash bits; 0 and
            ``exact=True`` for a byte-identical copy), or None when nothing is close enough or
            the item cannot be decoded (unreadable images are handled by ``on_invalid``).
        """
        if isinstance(digest, _Unset):
            digest = _sha256_or_none(item)
        if digest is not None and digest in self._sha:
            entry = self._sha[digest]
            return {"split": entry.split, "index": entry.index, "distance": 0, "exact": True}
        if not self._entries:
            return None
        if fingerprint is None:
            if rgb is None:
                try:
                    rgb = to_rgb(item)
                except ImageDecodeError:
                    return None
            fingerprint = leak_fingerprint(rgb)
        phash, thumb, texture = fingerprint
        dist = _popcount(self._hash_array ^ np.uint64(phash))
        # the mean colour bounds the thumbnail difference from below: a cheap first cut
        mean = thumb.reshape(-1, 3).mean(axis=0, dtype=np.float32)
        near = np.flatnonzero(np.abs(self._mean_array - mean).mean(axis=1) <= self.max_thumb_diff)
        if near.size == 0:
            return None
        # mean absolute difference, summed exactly in integers (a float sum's last bits depend on
        # the row's place in memory, and they break ties between identical copies)
        diffs = np.abs(self._thumb_array[near].astype(np.int32) - thumb.astype(np.int32)).sum(axis=(1, 2, 3)) / thumb.size
        similar = diffs <= self.max_thumb_diff
        near, diffs = near[similar], diffs[similar]
        if near.size == 0:
            return None
        corr = self._texture_array[near] @ texture
        ok = (dist[near] <= self.max_distance) | (corr >= self.min_texture_corr)
        if not ok.any():
            return None
        best = _closest(near[ok], dist, corr[ok], diffs[ok])
        entry = self._entries[int(best)]
        return {"split": entry.split, "index": entry.index, "distance": int(dist[best]), "exact": False}


#: Texture correlations closer than this are a tie (a float32 product's last bits depend on which
#: rows it ran over, so identical copies need not get identical values).
_CORR_TIE = 1e-5


def _closest(candidates: np.ndarray, dist: np.ndarray, corr: np.ndarray, diffs: np.ndarray) -> int:
    """The best match: closest hash, then highest texture correlation, then closest thumbnail,
    then the first indexed (so identical copies always report the same one)."""
    keep = dist[candidates] == dist[candidates].min()
    candidates, corr, diffs = candidates[keep], corr[keep], diffs[keep]
    keep = corr >= corr.max() - _CORR_TIE
    candidates, diffs = candidates[keep], diffs[keep]
    return int(candidates[diffs == diffs.min()].min())


def _popcount(values: np.ndarray) -> np.ndarray:
    """Set bits of each uint64 (``np.bitwise_count`` where NumPy has it, i.e. 2.0 and later)."""
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(np.asarray(values, dtype=np.uint64)).astype(np.int64)
    as_bytes = np.ascontiguousarray(values, dtype=np.uint64).view(np.uint8).reshape(-1, 8)
    return np.unpackbits(as_bytes, axis=1).sum(axis=1).astype(np.int64)


def _sha256_or_none(item: Any) -> str | None:
    try:
        data = source_bytes(item)
    except OSError:
        return None
    return hashlib.sha256(data).hexdigest() if data else None


def find_leaks(items: Sequence[Any], index: LeakIndex, *, workers: int | None = None) -> list[dict[str, Any] | None]:
    """:meth:`LeakIndex.match` for every item, in order (None where nothing matches).

    Args:
        items: image sources (the generated images).
        index: the real images' :class:`LeakIndex`.
        workers: decoding threads (PIL releases the GIL while decoding); default
            ``min(8, os.cpu_count())``. The result does not depend on it.

    Returns:
        One match dict or None per item.
    """
    n_workers = workers if workers is not None else min(8, os.cpu_count() or 1)
    if n_workers <= 1 or len(items) < 2:
        return [index.match(item) for item in items]
    with ThreadPoolExecutor(max_workers=n_workers) as pool:
        return list(pool.map(index.match, items))


_INDEX_CACHE: OrderedDict[tuple[str, int, float], LeakIndex] = OrderedDict()
_INDEX_CACHE_SIZE = 4
_INDEX_LOCK = threading.Lock()


def cached_gallery_leak_index(
    gallery: Any, max_distance: int = DEFAULT_MAX_DISTANCE, max_thumb_diff: float = DEFAULT_MAX_THUMB_DIFF
) -> LeakIndex | None:
    """The gallery's :class:`LeakIndex` if this process built it already, else None (nothing is built)."""
    key = (str(gallery.fingerprint), int(max_distance), float(max_thumb_diff))
    with _INDEX_LOCK:
        return _INDEX_CACHE.get(key)


def gallery_leak_index(
    gallery: Any, max_distance: int = DEFAULT_MAX_DISTANCE, max_thumb_diff: float = DEFAULT_MAX_THUMB_DIFF,
    fingerprints: dict[str, dict[int, tuple[int, np.ndarray, np.ndarray]]] | None = None,
) -> LeakIndex:
    """The :class:`LeakIndex` of every split of a gallery (gallery, reference, holdout).

    Kept in memory per gallery fingerprint (the last few galleries), so repeated evaluations
    against one gallery hash its images once per process.

    Args:
        gallery: a loaded :class:`fp_rank.Gallery`.
        max_distance: pHash threshold (bits).
        max_thumb_diff: thumbnail threshold (0-255).
        fingerprints: per split name, :func:`leak_fingerprint` of the images the caller has
            already decoded (see :meth:`LeakIndex.add`).

    Returns:
        The index.
    """
    key = (str(gallery.fingerprint), int(max_distance), float(max_thumb_diff))
    with _INDEX_LOCK:
        if key in _INDEX_CACHE:
            _INDEX_CACHE.move_to_end(key)
            return _INDEX_CACHE[key]
    index = LeakIndex(max_distance, max_thumb_diff)
    for name in sorted(gallery.splits):
        split = gallery.splits[name]
        index.add(name, split.images, split.hashes, (fingerprints or {}).get(name))
    with _INDEX_LOCK:
        _INDEX_CACHE[key] = index
        while len(_INDEX_CACHE) > _INDEX_CACHE_SIZE:
            _INDEX_CACHE.popitem(last=False)
    return index
