"""Loading and validating gallery datasets (local folders and Hub ids through one code path)."""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from fp_rank.images.decode import content_fingerprint
from fp_rank.errors import GalleryError, InputError, check_label, control_characters
from fp_rank.galleries.card import _check_source, _read_card
from fp_rank.galleries.datasets_cache import (
    _UNWRITABLE,
    _local_cache_dir,
    _temporary_cache,
    _writable_cache,
)
from fp_rank.runs.labels import IdentityMatcher
from fp_rank.galleries.schema import (
    ALL_CONFIG,
    ALL_SPLITS,
    GALLERY_SPLIT,
    HOLDOUT_SPLIT,
    REFERENCE_SPLIT,
    REQUIRED_COLUMNS,
    REQUIRED_SPLITS,
)

logger = logging.getLogger(__name__)


class ImageColumn(Sequence[dict[str, Any]]):
    """A lazy view of a split's images as ``{'bytes', 'path'}`` dicts (nothing decoded, nothing
    held in memory beyond one read block)."""

    def __init__(self, dataset: Any, block: int = 64) -> None:
        self._ds = dataset
        self._block = block

    def __repr__(self) -> str:
        return f"ImageColumn({len(self)} images)"

    def __len__(self) -> int:
        return len(self._ds)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        return self._ds[int(index)]["image"]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for batch in self._ds.select_columns(["image"]).iter(batch_size=self._block):
            yield from batch["image"]


@dataclass
class GallerySplit:
    """One split of a gallery: lazily readable images plus their labels and content hashes."""

    name: str
    dataset: Any
    identities: np.ndarray
    groups: np.ndarray
    hashes: list[str]

    @property
    def images(self) -> ImageColumn:
        """The split's images, lazily (``{'bytes', 'path'}`` dicts)."""
        return ImageColumn(self.dataset)

    @property
    def fingerprint(self) -> str:
        """Content fingerprint: sha256 over the ordered image digests."""
        return content_fingerprint(self.hashes)

    def labels_fingerprint(self) -> str:
        """Fingerprint of images *and* their identity/group labels."""
        digest = hashlib.sha256()
        for h, i, g in zip(self.hashes, self.identities, self.groups):
            digest.update(f"{h}\t{i}\t{g}\n".encode())
        return digest.hexdigest()

    def __repr__(self) -> str:
        return f"GallerySplit({self.name!r}, {len(self)} images, {len(set(self.identities.tolist()))} identities)"

    def __len__(self) -> int:
        return len(self.identities)


@dataclass
class Gallery:
    """An identity-labelled gallery with its reference (and optional holdout) split."""

    id: str
    config: str | None
    revision: str | None
    splits: dict[str, GallerySplit]
    card: dict[str, Any] = field(default_factory=dict)
    checks: dict[str, Any] = field(default_factory=dict)
    local: bool = False

    @property
    def gallery(self) -> GallerySplit:
        return self.splits[GALLERY_SPLIT]

    @property
    def reference(self) -> GallerySplit:
        return self.splits[REFERENCE_SPLIT]

    @property
    def holdout(self) -> GallerySplit | None:
        return self.splits.get(HOLDOUT_SPLIT)

    @property
    def fingerprint(self) -> str:
        """Fingerprint of every split's images and labels: identifies the exact benchmark."""
        digest = hashlib.sha256()
        for name in sorted(self.splits):
            digest.update(f"{name}:{self.splits[name].labels_fingerprint()}\n".encode())
        return digest.hexdigest()

    @property
    def identity_to_group(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for split in self.splits.values():
            out.update(zip(split.identities.tolist(), split.groups.tolist()))
        return out

    @property
    def identities(self) -> list[str]:
        """Identities present in the gallery split, sorted."""
        return sorted(set(self.gallery.identities.tolist()))

    @property
    def groups(self) -> list[str]:
        return sorted(set(self.gallery.groups.tolist()))

    @property
    def identity_names(self) -> dict[str, str]:
        names = self.card.get("identities") or {}
        return {str(k): str(v) for k, v in names.items()} if isinstance(names, dict) else {}

    @property
    def recommended_encoder(self) -> str | None:
        """The primary encoder named by the dataset card, if any."""
        rec = self.card.get("recommended_encoders") or {}
        primary = rec.get("primary") if isinstance(rec, dict) else None
        return str(primary) if primary else None

    def __repr__(self) -> str:
        sizes = ", ".join(f"{name} {len(split)}" for name, split in self.splits.items())
        where = self.id + (f" [{self.config}]" if self.config else "") + (f" @{self.revision[:12]}" if self.revision else "")
        return (
            f"Gallery({where!r}: {len(self.groups)} group(s), {len(self.identities)} identities; {sizes}; "
            f"fingerprint {self.fingerprint[:12]})"
        )

    def describe(self) -> dict[str, Any]:
        """What a report records about the gallery."""
        return {
            "id": self.id,
            "config": self.config,
            "revision": self.revision,
            "fingerprint": self.fingerprint,
            "source": "local folder" if self.local else "hub",
            "splits": {name: len(split) for name, split in self.splits.items()},
            "groups": self.groups,
            "n_identities": len(self.identities),
            "protocol_version": self.card.get("protocol_version"),
            "builder": self.card.get("builder"),
            "builder_version": self.card.get("builder_version"),
            "gallery_selection": self.card.get("gallery_selection"),
            "checks": dict(self.checks),
        }

    def check_identities(self, labels: Sequence[str]) -> None:
        """Raise if any label matches no gallery identity (:class:`~fp_rank.runs.IdentityMatcher`), listing close matches."""
        where = f"gallery {self.id!r}" + (f" config {self.config!r}" if self.config else "")
        message = IdentityMatcher(self.gallery.identities.tolist()).unknown_message(labels, where)
        if message is not None:
            raise InputError(message)


def _split_from_dataset(name: str, ds: Any, where: str) -> GallerySplit:
    from datasets import Image as ImageFeature

    missing = [c for c in REQUIRED_COLUMNS if c not in ds.column_names]
    if missing:
        raise GalleryError(
            f"{where} split {name!r} lacks column(s) {missing}; it has {ds.column_names}. A gallery needs "
            f"columns {list(REQUIRED_COLUMNS)}"
        )
    feature = ds.features["image"]
    if not isinstance(feature, ImageFeature):
        raise GalleryError(f"{where} split {name!r}: column 'image' is {feature}, expected datasets.Image()")
    ds = ds.cast_column("image", ImageFeature(decode=False))
    identities = _label_column(ds["identity"], "identity", name, where)
    groups = _label_column(ds["group"], "group", name, where)
    hashes: list[str] = []
    stored = ds["sha256"] if "sha256" in ds.column_names else None
    for row, image in enumerate(ImageColumn(ds)):
        data = image.get("bytes") if image else None
        if data is None and image and image.get("path") and os.path.exists(image["path"]):
            data = Path(image["path"]).read_bytes()
        if not data:
            raise GalleryError(f"{where} split {name!r}: row {row} has no image bytes")
        digest = hashlib.sha256(data).hexdigest()
        if stored is not None and stored[row] and stored[row] != digest:
            raise GalleryError(
                f"{where} split {name!r}: row {row} image bytes do not match its sha256 column "
                "(corrupted or edited gallery); rebuild or re-download it"
            )
        hashes.append(digest)
    return GallerySplit(name=name, dataset=ds, identities=identities, groups=groups, hashes=hashes)


def _label_column(values: Any, column: str, split: str, where: str) -> np.ndarray:
    """A label column as strings: each row a non-empty string or an integer, without control characters.

    A float column is refused: it is what an integer column with a missing value becomes, and
    its NaN would read as one identity named ``'nan'`` (merging unrelated images).
    """
    values = list(values)
    gap = next((row for row, v in enumerate(values) if isinstance(v, (float, np.floating)) and v != v), None)
    if gap is not None:  # the missing value first: it is what turned the column into numbers
        raise GalleryError(
            f"{where} split {split!r}: row {gap} has a missing value (NaN) as its {column!r}; label columns hold "
            "strings (or integers): fill the missing labels and store the column as strings"
        )
    out = []
    for row, value in enumerate(values):
        if value is None or (isinstance(value, str) and not value):
            raise GalleryError(f"{where} split {split!r}: row {row} has an empty {column!r}")
        if isinstance(value, (float, np.floating)):
            raise GalleryError(
                f"{where} split {split!r}: row {row} has the number {value!r} as its {column!r}; label columns hold "
                "strings (or integers): store the column as strings"
            )
        if isinstance(value, bool) or not isinstance(value, (str, int, np.integer)):
            raise GalleryError(
                f"{where} split {split!r}: row {row} has a {type(value).__name__} as its {column!r}; label columns "
                "hold strings (or integers)"
            )
        out.append(str(value))
    for label in dict.fromkeys(out):  # each distinct label once; the row is looked up only for a bad one
        if control_characters(label):
            try:
                check_label(column, label, f"{where} split {split!r} row {out.index(label)}")
            except InputError as exc:
                raise GalleryError(str(exc)) from None
    return np.asarray(out, dtype=object)


def load_gallery(
    path_or_id: str | os.PathLike[str] | Gallery,
    config: str | None = None,
    revision: str | None = None,
    *,
    cache_dir: str | None = None,
    progress: bool = True,
    min_gallery_images: int = 2,
    on_duplicate: Literal["error", "allow"] = "error",
) -> Gallery:
    """Load a gallery through ``datasets.load_dataset`` and validate its schema.

    Args:
        path_or_id: a local dataset folder or a Hub dataset id (offline: it must be cached), or a
            :class:`Gallery` (returned as is).
        config: the config (a group name, or ``"all"``); default: the dataset's default config.
        revision: Hub revision (branch, tag or commit).
        cache_dir: ``datasets`` cache folder.
        progress: show ``datasets``' progress bars while preparing the splits.
        min_gallery_images: fewest gallery images an identity may have (default 2). With one
            image an identity's AP is just the reciprocal rank of that image, which is not the
            retrieval measure the protocol means; pass 1 to accept such identities anyway.
        on_duplicate: byte-identical images (same sha256) inside the gallery split, or shared
            between splits (a reference photo that is also a gallery item lets a copying method
            score a perfect AP): ``"error"`` (default) or ``"allow"`` (logged, and counted in
            ``Gallery.checks`` and the report metadata).

    Returns:
        A validated :class:`Gallery`.

    Raises:
        GalleryError: the dataset cannot be loaded or does not follow the schema, an identity has
            fewer than ``min_gallery_images`` gallery images, or (``on_duplicate="error"``) two rows
            hold the same image.
        InputError: a bad option value.
    """
    if isinstance(path_or_id, Gallery):
        return path_or_id
    if isinstance(min_gallery_images, bool) or not isinstance(min_gallery_images, int) or min_gallery_images < 1:
        raise InputError(f"min_gallery_images must be a positive integer, got {min_gallery_images!r}")
    if on_duplicate not in ("error", "allow"):
        raise InputError(f"on_duplicate must be 'error' or 'allow', got {on_duplicate!r}")
    if not isinstance(path_or_id, (str, os.PathLike)):
        raise InputError(
            f"gallery must be a folder, a Hub dataset id or a loaded Gallery, got {type(path_or_id).__name__}"
        )
    source = os.fspath(path_or_id)
    _check_source(source, revision)
    import datasets

    where = f"gallery {source!r}" + (f" config {config!r}" if config else "")
    card, commit = _read_card(source, revision)  # checked before datasets parses the card itself
    default_cache = os.path.isdir(source) and cache_dir is None
    if default_cache:
        cache_dir = _writable_cache(_local_cache_dir(Path(source)))
    from datasets import utils as ds_tqdm

    bars_were_disabled = ds_tqdm.are_progress_bars_disabled()
    if not progress:
        ds_tqdm.disable_progress_bars()
    try:
        try:
            dd = datasets.load_dataset(source, config, revision=revision, cache_dir=cache_dir)
        except OSError as exc:
            if not default_cache or exc.errno not in _UNWRITABLE or str(cache_dir).startswith(tempfile.gettempdir()):
                raise
            cache_dir = _temporary_cache(str(cache_dir), exc)
            dd = datasets.load_dataset(source, config, revision=revision, cache_dir=cache_dir)
    except ValueError as exc:
        msg = str(exc)
        if "config" in msg.lower():
            raise GalleryError(f"{where}: {msg}") from None
        raise GalleryError(f"cannot load {where}: {msg}") from None
    except Exception as exc:  # datasets raises many types (FileNotFoundError, DatasetNotFoundError, ...)
        offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False")
        hint = " (offline: a Hub gallery must already be in the cache at this revision)" if offline else ""
        raise GalleryError(f"cannot load {where}{hint}: {type(exc).__name__}: {exc}") from None
    finally:
        if not progress and not bars_were_disabled:
            ds_tqdm.enable_progress_bars()
    if not isinstance(dd, datasets.DatasetDict):
        raise GalleryError(f"{where}: expected a dataset with splits, got {type(dd).__name__}")
    missing = [s for s in REQUIRED_SPLITS if s not in dd]
    if missing:
        raise GalleryError(
            f"{where} lacks split(s) {missing}; it has {sorted(dd)}. A gallery needs splits {list(REQUIRED_SPLITS)}"
            f" (and optionally {HOLDOUT_SPLIT!r})"
        )
    splits = {name: _split_from_dataset(name, dd[name], where) for name in dd if name in ALL_SPLITS}
    gallery = Gallery(
        id=source,
        config=config or (ALL_CONFIG if card else None),
        revision=commit or revision,
        splits=splits,
        card=card,
        local=os.path.isdir(source),
    )
    _validate(gallery, where)
    _check_sizes(gallery, where, min_gallery_images)
    _check_duplicates(gallery, where, on_duplicate)
    return gallery


def _check_sizes(gallery: Gallery, where: str, min_gallery_images: int) -> None:
    idents, counts = np.unique(gallery.gallery.identities.astype(str), return_counts=True)
    small = [(str(i), int(c)) for i, c in zip(idents, counts) if c < min_gallery_images]
    gallery.checks["min_gallery_images"] = min_gallery_images
    gallery.checks["smallest_identity"] = int(counts.min()) if counts.size else 0
    if small:
        listed = ", ".join(f"{i!r} ({c})" for i, c in small[:5])
        more = f" and {len(small) - 5} more" if len(small) > 5 else ""
        raise GalleryError(
            f"{where}: {len(small)} identit{'y has' if len(small) == 1 else 'ies have'} fewer than "
            f"{min_gallery_images} gallery images: {listed}{more}. With a single relevant image AP is only a "
            "reciprocal rank; add gallery images, or pass min_gallery_images=1 to load_gallery to accept it"
        )


def _check_duplicates(gallery: Gallery, where: str, on_duplicate: str) -> None:
    seen: dict[str, tuple[str, int]] = {}
    dups: list[tuple[tuple[str, int], tuple[str, int]]] = []
    for name in ALL_SPLITS:
        split = gallery.splits.get(name)
        if split is None:
            continue
        for row, digest in enumerate(split.hashes):
            first = seen.setdefault(digest, (name, row))
            if first != (name, row):
                dups.append((first, (name, row)))
    gallery.checks["duplicates"] = len(dups)
    gallery.checks["on_duplicate"] = on_duplicate
    if not dups:
        return

    def label(ref: tuple[str, int]) -> str:
        split = gallery.splits[ref[0]]
        return f"{ref[0]}[{ref[1]}] ({split.identities[ref[1]]!r})"

    listed = "; ".join(f"{label(a)} = {label(b)}" for a, b in dups[:5])
    more = f" and {len(dups) - 5} more" if len(dups) > 5 else ""
    if on_duplicate == "allow":
        logger.warning("%s: %d duplicate image(s) allowed by on_duplicate='allow': %s%s", where, len(dups), listed, more)
        return
    raise GalleryError(
        f"{where}: {len(dups)} image(s) are byte-identical copies of another row: {listed}{more}. A duplicate "
        "inside the gallery counts twice in every ranking, and a reference photo that is also in the gallery "
        "lets a method that copies it score a perfect AP. Remove the copies, or pass on_duplicate='allow' to "
        "load_gallery for a source with known duplicates"
    )


def _validate(gallery: Gallery, where: str) -> None:
    mapping: dict[str, str] = {}
    for split in gallery.splits.values():
        for ident, group in zip(split.identities.tolist(), split.groups.tolist()):
            if mapping.setdefault(ident, group) != group:
                raise GalleryError(
                    f"{where}: identity {ident!r} is in two groups ({mapping[ident]!r} and {group!r}); an "
                    "identity must belong to exactly one group"
                )
    if len(gallery.gallery) == 0:
        raise GalleryError(f"{where}: the gallery split is empty")
    in_gallery = set(gallery.gallery.identities.tolist())
    no_gallery = sorted(set(gallery.reference.identities.tolist()) - in_gallery)
    if no_gallery:
        raise GalleryError(
            f"{where}: reference identities {no_gallery[:5]} have no image in the gallery split; every subject "
            "needs gallery images to be retrieved"
        )
