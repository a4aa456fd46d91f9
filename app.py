"""The fp-rank Gradio Space: upload generated images, see identity scores and the rankings behind them.

Run ``python app.py`` (offline is fine): the page opens on the embedded synthetic demo gallery
and the weight-free demo encoder. A person uploads generated images (files or a ``.zip``), picks
the gallery, its config and the identity of the batch (or uploads a CSV ``file,identity[,method]``),
picks an encoder and presses Score. Every generated image is a query ranked against the gallery
of its identity's group with :func:`fp_rank.evaluate`; the page shows the headline mAP, CMC@1, the
pairwise baseline and the chance floor, a per-image table, each query's top-k gallery matches
with hits and misses marked, a per-identity chart and the report files.

What the page accepts is decided by the Space owner, never by its users:

* galleries and encoders come from allow-lists (``FP_RANK_SPACE_GALLERIES``,
  ``FP_RANK_SPACE_ENCODERS``); ``trust_remote_code`` is never switched on;
* upload limits (files per batch, bytes per file, pixels per image, archive sizes) are checked
  before anything is decoded or extracted, and can be tightened with ``FP_RANK_SPACE_*`` variables.

Every request keeps its state in local variables and its own temporary folder (removed when the
request ends); only read-only resources (loaded galleries, encoders, thumbnails) are shared.
"""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import atexit  # noqa: E402
import base64  # noqa: E402
import csv  # noqa: E402
import difflib  # noqa: E402
import html  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import math  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import stat  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
import zipfile  # noqa: E402
from collections import OrderedDict  # noqa: E402
from collections.abc import Callable, Mapping, Sequence  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from functools import lru_cache  # noqa: E402
from pathlib import Path, PurePosixPath  # noqa: E402
from typing import Any  # noqa: E402

import gradio as gr  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image, ImageDraw, ImageFont, UnidentifiedImageError  # noqa: E402

import fp_rank  # noqa: E402
from fp_rank.encoding.images import to_rgb  # noqa: E402
from fp_rank.encoding.registry import REGISTRY  # noqa: E402
from fp_rank.errors import FpRankError, InputError  # noqa: E402
from fp_rank.inputs import IMAGE_SUFFIXES  # noqa: E402

logger = logging.getLogger("fp_rank.space")

MB = 1024 * 1024

#: Label of the embedded demo gallery in the gallery allow-list.
DEMO_GALLERY = "demo (synthetic birds)"
#: Registry alias of the weight-free demo encoder (always allowed).
DEMO_ENCODER = "fp-rank-demo"
#: Method label used when the page is not told one.
DEFAULT_METHOD = "generated"
#: Longest method label accepted from the page.
MAX_METHOD_CHARS = 80

ProgressFn = Callable[[float, str], None]
GallerySource = str | Callable[[], str]


# --------------------------------------------------------------------------------------------
# Settings chosen by the Space owner
# --------------------------------------------------------------------------------------------
def _env_int(name: str, default: int, minimum: int = 1) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(float(raw))
    except ValueError:
        raise InputError(f"environment variable {name}={raw!r} is not a number; unset it or give e.g. {default}") from None
    if value < minimum:
        raise InputError(f"environment variable {name}={raw!r} must be >= {minimum}")
    return value


@dataclass(frozen=True)
class Limits:
    """What one request may upload; every limit is checked before any image is decoded.

    Attributes:
        max_files: images per batch (plain files plus archive members).
        max_file_bytes: bytes per image file (archive members: once decompressed).
        max_pixels: width x height per image, read from the file header.
        max_archive_bytes: bytes per uploaded ``.zip``.
        max_total_bytes: bytes of all images of a batch together, archives decompressed.
        max_mapping_bytes: bytes of the mapping CSV.
    """

    max_files: int = 200
    max_file_bytes: int = 20 * MB
    max_pixels: int = 40_000_000
    max_archive_bytes: int = 200 * MB
    max_total_bytes: int = 500 * MB
    max_mapping_bytes: int = 1 * MB

    @classmethod
    def from_env(cls) -> Limits:
        """Defaults, overridden by ``FP_RANK_SPACE_MAX_FILES``, ``..._MAX_FILE_MB``,
        ``..._MAX_MEGAPIXELS``, ``..._MAX_ARCHIVE_MB`` and ``..._MAX_TOTAL_MB``.

        Raises:
            InputError: a variable is set to something other than a positive number.
        """
        base = cls()
        return cls(
            max_files=_env_int("FP_RANK_SPACE_MAX_FILES", base.max_files),
            max_file_bytes=_env_int("FP_RANK_SPACE_MAX_FILE_MB", base.max_file_bytes // MB) * MB,
            max_pixels=_env_int("FP_RANK_SPACE_MAX_MEGAPIXELS", base.max_pixels // 1_000_000) * 1_000_000,
            max_archive_bytes=_env_int("FP_RANK_SPACE_MAX_ARCHIVE_MB", base.max_archive_bytes // MB) * MB,
            max_total_bytes=_env_int("FP_RANK_SPACE_MAX_TOTAL_MB", base.max_total_bytes // MB) * MB,
            max_mapping_bytes=base.max_mapping_bytes,
        )

    def describe(self) -> str:
        """One line for the page."""
        return (
            f"Up to {self.max_files} images per batch, {_mb(self.max_file_bytes)} and "
            f"{self.max_pixels / 1e6:g} megapixels per image, {_mb(self.max_archive_bytes)} per .zip."
        )


def _mb(n: int) -> str:
    return f"{n / MB:g} MB"


def _demo_gallery_source() -> str:
    from fp_rank.demo.run import demo_gallery

    return str(demo_gallery())


def galleries_from_env() -> dict[str, GallerySource]:
    """The gallery allow-list: the embedded demo plus ``FP_RANK_SPACE_GALLERIES``.

    ``FP_RANK_SPACE_GALLERIES`` is a JSON object mapping a label shown on the page to a gallery
    folder or Hub dataset id, set by the Space owner.

    Raises:
        InputError: the variable is not a JSON object of strings.
    """
    out: dict[str, GallerySource] = {DEMO_GALLERY: _demo_gallery_source}
    raw = os.environ.get("FP_RANK_SPACE_GALLERIES", "").strip()
    if raw:
        out.update(_json_string_map("FP_RANK_SPACE_GALLERIES", raw, '{"CUB wrens": "org/fp-rank-cub"}'))
    return out


def _json_string_map(variable: str, raw: str, example: str) -> dict[str, str]:
    """Parse an owner setting that must be a JSON object of strings; InputError naming it otherwise."""
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InputError(f"{variable} is not valid JSON ({exc}); give an object such as {example}") from None
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise InputError(f"{variable} must be a JSON object of strings, e.g. {example}")
    return value


def encoders_from_env() -> dict[str, str]:
    """The encoder allow-list: the demo encoder plus ``FP_RANK_SPACE_ENCODERS``.

    ``FP_RANK_SPACE_ENCODERS`` is either a comma-separated list of registry aliases
    (``dinov2-base,clip-vit-b32``) or a JSON object mapping a label to an alias, Hub id or model
    folder. Encoders that need remote code (``miewid``) are left out: the page never trusts
    remote code.

    Raises:
        InputError: the variable is malformed.
    """
    out: dict[str, str] = {DEMO_ENCODER: DEMO_ENCODER}
    raw = os.environ.get("FP_RANK_SPACE_ENCODERS", "").strip()
    if not raw:
        return out
    if raw.startswith("{"):
        pairs = list(_json_string_map("FP_RANK_SPACE_ENCODERS", raw, '{"DINOv2": "dinov2-base"}').items())
    else:
        pairs = [(a.strip(), a.strip()) for a in raw.split(",") if a.strip()]
    for label, spec in pairs:
        entry = REGISTRY.get(spec)
        if entry is not None and entry.requires_remote_code:
            logger.warning("encoder %r needs trust_remote_code, which the Space never enables; left out", spec)
            continue
        out[label] = spec
    return out


# --------------------------------------------------------------------------------------------
# Reading one request's uploads
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Problem:
    """A file that was not scored, and why."""

    name: str
    reason: str


@dataclass(frozen=True)
class Upload:
    """One image ready to score: the name the person knows it by and where it lies on disk."""

    name: str
    path: str


@dataclass
class _Candidate:
    name: str
    size: int
    path: str | None = None
    archive: str | None = None
    member: zipfile.ZipInfo | None = None


class BatchRefused(InputError):
    """The whole batch breaks a limit (too many files, too many bytes); nothing is scored."""


_UNSAFE_MEMBER = re.compile(r"^(?:[A-Za-z]:|[\\/])")


def _unsafe_member(name: str) -> str | None:
    parts = re.split(r"[\\/]", name)
    if _UNSAFE_MEMBER.match(name) or ".." in parts:
        return "unsafe path in the archive (absolute or with '..'); not extracted"
    return None


def _is_junk(name: str) -> bool:
    base = PurePosixPath(name.replace("\\", "/")).name
    return name.startswith("__MACOSX/") or base.startswith(".") or base in ("Thumbs.db", "desktop.ini")


def _plan_archive(path: str, name: str, limits: Limits, problems: list[Problem]) -> list[_Candidate]:
    size = os.path.getsize(path)
    if size > limits.max_archive_bytes:
        problems.append(Problem(name, f"archive of {_mb(size)} exceeds the limit of {_mb(limits.max_archive_bytes)}"))
        return []
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        problems.append(Problem(name, f"not a readable .zip archive ({exc})"))
        return []
    with archive:
        members = [m for m in archive.infolist() if not m.is_dir() and not _is_junk(m.filename)]
    out: list[_Candidate] = []
    for member in members:
        shown = f"{name}/{member.filename}"
        unsafe = _unsafe_member(member.filename)
        mode = member.external_attr >> 16
        if unsafe:
            problems.append(Problem(shown, unsafe))
        elif stat.S_ISLNK(mode):
            problems.append(Problem(shown, "symbolic link in the archive; not extracted"))
        elif member.flag_bits & 0x1:
            problems.append(Problem(shown, "encrypted archive member; upload it unencrypted"))
        elif PurePosixPath(member.filename).suffix.lower() not in IMAGE_SUFFIXES:
            problems.append(Problem(shown, f"not an image file (expected one of {', '.join(IMAGE_SUFFIXES)})"))
        elif member.file_size > limits.max_file_bytes:
            problems.append(
                Problem(shown, f"{_mb(member.file_size)} once decompressed exceeds the limit of {_mb(limits.max_file_bytes)}")
            )
        else:
            out.append(_Candidate(name=member.filename, size=member.file_size, archive=path, member=member))
    return out


def _extract(candidate: _Candidate, dest: Path, limits: Limits) -> str:
    """Copy one archive member to ``dest`` (a name we chose), refusing it past the byte limit."""
    if candidate.archive is None or candidate.member is None:
        raise InputError(f"{candidate.name} is not an archive member")
    written = 0
    with zipfile.ZipFile(candidate.archive) as archive, archive.open(candidate.member) as src, open(dest, "wb") as dst:
        while True:
            block = src.read(1 << 16)
            if not block:
                break
            written += len(block)
            if written > limits.max_file_bytes:
                raise InputError(f"more than {_mb(limits.max_file_bytes)} once decompressed (the archive understates its size)")
            dst.write(block)
    return str(dest)


def _check_header(path: str, limits: Limits) -> str | None:
    """Read only the image header: refuse unknown formats and images over the pixel limit."""
    try:
        with Image.open(path) as img:
            width, height = img.size
    except UnidentifiedImageError:
        return "not a recognised image format"
    except Image.DecompressionBombError:
        return f"image dimensions exceed the limit of {limits.max_pixels / 1e6:g} megapixels"
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        return f"unreadable image header ({exc})"
    if width * height > limits.max_pixels:
        return (
            f"{width}x{height} = {width * height / 1e6:.1f} megapixels exceeds the limit of "
            f"{limits.max_pixels / 1e6:g} megapixels"
        )
    if width < 1 or height < 1:
        return f"image has no pixels ({width}x{height})"
    return None


def _unique(name: str, seen: set[str]) -> str:
    out, k = name, 2
    while out in seen:
        out = f"{name} #{k}"
        k += 1
    seen.add(out)
    return out


def inside(path: str | os.PathLike[str], root: str | os.PathLike[str]) -> bool:
    """Whether ``path`` (links resolved) lies inside the folder ``root``."""
    real, base = os.path.realpath(path), os.path.realpath(root)
    try:
        return os.path.commonpath([real, base]) == base
    except ValueError:  # different drives
        return False


def collect_uploads(
    paths: Sequence[str | os.PathLike[str]],
    work_dir: str | os.PathLike[str],
    limits: Limits,
    *,
    upload_root: str | os.PathLike[str] | None = None,
) -> tuple[list[Upload], list[Problem]]:
    """Turn uploaded files and ``.zip`` archives into images ready to score, within the limits.

    Counts and sizes are checked from file sizes and archive directories before anything is
    extracted; pixel counts from image headers before anything is decoded. Archive members are
    written under ``work_dir`` with names chosen here (never the member's own path).

    Args:
        paths: uploaded files (their base names are what the person sees).
        work_dir: a folder private to this request, for extracted archive members.
        limits: the limits to enforce.
        upload_root: when given, files outside this folder (the web server's upload folder) are
            refused: an API caller cannot make the Space read a file of the server by its path.

    Returns:
        The images to score (in upload order) and the files refused, each with its reason.

    Raises:
        BatchRefused: the batch holds more images or bytes than allowed.
    """
    problems: list[Problem] = []
    candidates: list[_Candidate] = []
    for raw in paths:
        path = os.fspath(raw)
        name = os.path.basename(path) or path
        if upload_root is not None and not inside(path, upload_root):
            problems.append(Problem(name, "not a file uploaded through this page; refused"))
            continue
        if not os.path.isfile(path):
            problems.append(Problem(name, "the upload did not arrive (no such file)"))
            continue
        if name.lower().endswith(".zip"):
            candidates.extend(_plan_archive(path, name, limits, problems))
            continue
        size = os.path.getsize(path)
        if size > limits.max_file_bytes:
            problems.append(Problem(name, f"file of {_mb(size)} exceeds the limit of {_mb(limits.max_file_bytes)}"))
        elif size == 0:
            problems.append(Problem(name, "the file is empty (0 bytes)"))
        else:
            candidates.append(_Candidate(name=name, size=size, path=path))
    if len(candidates) > limits.max_files:
        raise BatchRefused(
            f"this batch holds {len(candidates)} images; the limit is {limits.max_files} per batch. "
            "Split it into smaller batches."
        )
    total = sum(c.size for c in candidates)
    if total > limits.max_total_bytes:
        raise BatchRefused(
            f"this batch holds {_mb(total)} of images (archives decompressed); the limit is "
            f"{_mb(limits.max_total_bytes)}. Split it into smaller batches."
        )
    folder = Path(work_dir)
    folder.mkdir(parents=True, exist_ok=True)
    uploads: list[Upload] = []
    seen: set[str] = set()
    for i, cand in enumerate(candidates):
        shown = cand.name if cand.archive is None else f"{os.path.basename(cand.archive)}/{cand.name}"
        path = cand.path
        if cand.archive is not None:
            suffix = PurePosixPath(cand.name).suffix.lower()
            try:
                path = _extract(cand, folder / f"{i:05d}{suffix}", limits)
            except (InputError, zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError) as exc:
                problems.append(Problem(shown, f"cannot extract it: {exc}"))
                continue
        if path is None:
            problems.append(Problem(shown, "the upload did not arrive"))
            continue
        reason = _check_header(path, limits)
        if reason:
            problems.append(Problem(shown, reason))
            continue
        uploads.append(Upload(name=_unique(cand.name, seen), path=path))
    return uploads, problems


@dataclass(frozen=True)
class MappingRow:
    """One line of the mapping CSV."""

    identity: str
    method: str | None
    line: int


def read_mapping(path: str | os.PathLike[str], limits: Limits) -> dict[str, MappingRow]:
    """Read a mapping CSV with columns ``file, identity[, method]``.

    Args:
        path: the CSV file.
        limits: gives the largest CSV accepted.

    Returns:
        ``file`` (slashes normalised) -> its row.

    Raises:
        InputError: too large, not UTF-8, missing columns, empty cells or a file listed twice
            with different labels; the message names the line.
    """
    name = os.path.basename(os.fspath(path))
    size = os.path.getsize(path)
    if size > limits.max_mapping_bytes:
        raise InputError(f"mapping CSV {name} is {_mb(size)}; the limit is {_mb(limits.max_mapping_bytes)}")
    try:
        text = Path(path).read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"mapping CSV {name} is not UTF-8 text") from None
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None:
        raise InputError(f"mapping CSV {name} is empty; expected a header line 'file,identity[,method]'")
    columns = {c.strip().lower(): c for c in reader.fieldnames if c}
    missing = [c for c in ("file", "identity") if c not in columns]
    if missing:
        raise InputError(
            f"mapping CSV {name} lacks column(s) {missing}; its header is {reader.fieldnames}. "
            "Expected 'file,identity' and optionally 'method'"
        )
    out: dict[str, MappingRow] = {}
    for line_no, row in enumerate(reader, start=2):
        file = (row.get(columns["file"]) or "").strip().replace("\\", "/").removeprefix("./")
        identity = (row.get(columns["identity"]) or "").strip()
        method = (row.get(columns["method"]) or "").strip() if "method" in columns else ""
        if not file and not identity:
            continue
        if not file or not identity:
            raise InputError(f"mapping CSV {name} line {line_no}: both 'file' and 'identity' are needed, got {file!r}, {identity!r}")
        entry = MappingRow(identity=identity, method=method[:MAX_METHOD_CHARS] or None, line=line_no)
        previous = out.get(file)
        if previous is not None and (previous.identity, previous.method) != (entry.identity, entry.method):
            raise InputError(f"mapping CSV {name} line {line_no}: {file!r} is already mapped on line {previous.line}")
        out[file] = entry
    if not out:
        raise InputError(f"mapping CSV {name} lists no files")
    return out


def _match_mapping(uploads: Sequence[Upload], mapping: Mapping[str, MappingRow]) -> tuple[dict[int, MappingRow], list[str]]:
    """Rows for uploads: by exact name, else by base name when that is unambiguous."""
    by_base: dict[str, list[str]] = {}
    for key in mapping:
        by_base.setdefault(PurePosixPath(key).name, []).append(key)
    used: set[str] = set()
    found: dict[int, MappingRow] = {}
    for i, up in enumerate(uploads):
        name = re.sub(r" #\d+$", "", up.name)
        key = name if name in mapping else None
        if key is None:
            keys = by_base.get(PurePosixPath(name).name, [])
            key = keys[0] if len(keys) == 1 else None
        if key is not None:
            found[i] = mapping[key]
            used.add(key)
    unused = [k for k in mapping if k not in used]
    return found, unused


# --------------------------------------------------------------------------------------------
# Shared read-only resources and the scoring of one request
# --------------------------------------------------------------------------------------------
@dataclass
class Outcome:
    """Everything one request produced (nothing here is shared with other requests).

    Attributes:
        report: the fp-rank report, or None when nothing could be scored.
        error: why nothing was scored (None on success).
        problems: files not scored, with reasons (refused, unreadable, unlabelled).
        notes: other remarks for the page (unused mapping rows, ...).
        uploads: the scored images' names and paths, by the report's ``index``.
        gallery: the gallery the batch was ranked against.
        gallery_label: its label on the page.
        config: its config.
        encoder_label: the encoder's label on the page.
        is_demo_encoder: whether the demo descriptor was used.
        seconds: wall time of the request.
    """

    report: fp_rank.Report | None = None
    error: str | None = None
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    uploads: list[Upload] = field(default_factory=list)
    gallery: fp_rank.Gallery | None = None
    gallery_label: str = ""
    config: str | None = None
    encoder_label: str = ""
    is_demo_encoder: bool = False
    seconds: float = 0.0


class ScoringSpace:
    """The allow-lists, limits and shared read-only resources of one Space process.

    Galleries and encoders are loaded once per process (under a lock) and only read afterwards;
    everything a request computes lives in that request's local variables.

    Args:
        galleries: label -> gallery folder / Hub id, or a function returning one (built lazily).
        encoders: label -> registry alias, Hub id or model folder.
        limits: upload limits (default: :meth:`Limits.from_env`).
        top_k: gallery matches shown per query.
        n_boot: bootstrap replicates for confidence intervals (0: none).
        max_strips: most ranked strips rendered per request.
        batch_size: images per encoder forward pass.
        work_root: folder for per-request files (default: a fresh temporary folder).
        report_ttl_s: how long report downloads stay available.
    """

    def __init__(
        self,
        galleries: Mapping[str, GallerySource] | None = None,
        encoders: Mapping[str, str] | None = None,
        *,
        limits: Limits | None = None,
        top_k: int = 5,
        n_boot: int = 1000,
        max_strips: int = 100,
        batch_size: int = 16,
        work_root: str | os.PathLike[str] | None = None,
        report_ttl_s: float = 3600.0,
    ) -> None:
        self.galleries: dict[str, GallerySource] = dict(galleries) if galleries is not None else galleries_from_env()
        self.encoders: dict[str, str] = dict(encoders) if encoders is not None else encoders_from_env()
        if not self.galleries:
            raise InputError("the gallery allow-list is empty; the Space needs at least one gallery")
        if not self.encoders:
            raise InputError("the encoder allow-list is empty; the Space needs at least one encoder")
        for label, spec in self.encoders.items():
            entry = REGISTRY.get(spec)
            if entry is not None and entry.requires_remote_code:
                raise InputError(f"encoder {label!r} ({spec}) needs trust_remote_code, which the Space never enables")
        self.limits = limits or Limits.from_env()
        self.top_k = top_k
        self.n_boot = n_boot
        self.max_strips = max_strips
        self.batch_size = batch_size
        self.report_ttl_s = report_ttl_s
        self._work_root = Path(work_root) if work_root is not None else None
        self._lock = threading.Lock()
        self._key_locks: dict[tuple[Any, ...], threading.Lock] = {}
        self._sources: dict[str, str] = {}
        self._loaded: dict[tuple[str, str | None], fp_rank.Gallery] = {}
        self._encoders: dict[str, fp_rank.Encoder] = {}
        self._thumbs: OrderedDict[tuple[str, str | None, int], Image.Image] = OrderedDict()

    @classmethod
    def from_env(cls) -> ScoringSpace:
        """A Space configured by the ``FP_RANK_SPACE_*`` environment variables."""
        return cls(
            top_k=_env_int("FP_RANK_SPACE_TOP_K", 5),
            n_boot=_env_int("FP_RANK_SPACE_BOOTSTRAP", 1000, minimum=0),
            max_strips=_env_int("FP_RANK_SPACE_MAX_STRIPS", 100),
        )

    # -- shared resources ----------------------------------------------------------------
    def _key_lock(self, key: tuple[Any, ...]) -> threading.Lock:
        with self._lock:
            return self._key_locks.setdefault(key, threading.Lock())

    @property
    def work_root(self) -> Path:
        """Folder holding one sub-folder per request (created on first use, removed at exit)."""
        with self._lock:
            if self._work_root is None:
                self._work_root = Path(tempfile.mkdtemp(prefix="fp-rank-space-"))
                atexit.register(shutil.rmtree, self._work_root, True)
            self._work_root.mkdir(parents=True, exist_ok=True)
            return self._work_root

    def _check_gallery_label(self, label: str) -> None:
        if label not in self.galleries:
            raise InputError(f"unknown gallery {label!r}; choose one of {list(self.galleries)}")

    def gallery_source(self, label: str) -> str:
        """The folder or Hub id behind an allowed gallery label (building the demo on first use)."""
        self._check_gallery_label(label)
        with self._key_lock(("source", label)):
            if label not in self._sources:
                source = self.galleries[label]
                self._sources[label] = source() if callable(source) else source
            return self._sources[label]

    def gallery(self, label: str, config: str | None = None) -> fp_rank.Gallery:
        """An allowed gallery, loaded once per (label, config) and shared read-only."""
        source = self.gallery_source(label)
        key = (label, config)
        with self._key_lock(("gallery", *key)):
            if key not in self._loaded:
                self._loaded[key] = fp_rank.load_gallery(source, config)
            return self._loaded[key]

    def configs(self, label: str) -> list[str]:
        """Configs offered for a gallery: ``all`` and one per group (or its only config)."""
        gal = self.gallery(label)
        if gal.config == "all":
            return ["all", *[g for g in gal.groups if g != "all"]]
        return [gal.config or "default"]

    def _config_arg(self, label: str, config: str | None) -> str | None:
        configs = self.configs(label)
        if config in (None, ""):
            config = configs[0]
        if config not in configs:
            raise InputError(f"gallery {label!r} has no config {config!r}; choose one of {configs}")
        return None if config == "default" else config

    def identities(self, label: str, config: str | None = None) -> list[tuple[str, str]]:
        """``(shown name, identity)`` pairs of a gallery config, for the identity dropdown."""
        gal = self.gallery(label)
        names = gal.identity_names
        group_of = gal.identity_to_group
        wanted = self._config_arg(label, config)
        out = []
        for ident in gal.identities:
            if wanted not in (None, "all") and group_of.get(ident) != wanted:
                continue
            shown = names.get(ident)
            out.append((f"{shown} ({ident})" if shown and shown != ident else ident, ident))
        return sorted(out, key=lambda p: (group_of.get(p[1], ""), p[0]))

    def encoder(self, label: str) -> fp_rank.Encoder:
        """An allowed encoder, loaded once per process; remote code is never trusted."""
        if label not in self.encoders:
            raise InputError(f"unknown encoder {label!r}; choose one of {list(self.encoders)}")
        with self._key_lock(("encoder", label)):
            if label not in self._encoders:
                self._encoders[label] = fp_rank.load_encoder(self.encoders[label], trust_remote_code=False)
            return self._encoders[label]

    def thumbnail(self, label: str, config: str | None, gallery: fp_rank.Gallery, index: int, size: int) -> Image.Image:
        """A square thumbnail of one gallery image (cached; callers get their own copy)."""
        key = (label, config, index)
        with self._lock:
            hit = self._thumbs.get(key)
            if hit is not None:
                self._thumbs.move_to_end(key)
                return hit.copy()
        thumb = _square(to_rgb(gallery.gallery.images[index], name=f"{gallery.id}:gallery[{index}]"), size)
        with self._lock:
            self._thumbs[key] = thumb
            while len(self._thumbs) > 4096:
                self._thumbs.popitem(last=False)
        return thumb.copy()

    # -- one request ---------------------------------------------------------------------
    def new_request_dir(self) -> Path:
        """A fresh folder for one request; report folders older than the TTL are removed."""
        root = self.work_root
        now = time.time()
        for old in root.glob("req-*"):
            try:
                if now - old.stat().st_mtime > self.report_ttl_s:
                    shutil.rmtree(old, ignore_errors=True)
            except OSError:
                pass
        folder = root / f"req-{uuid.uuid4().hex}"
        folder.mkdir()
        return folder

    def score(
        self,
        files: Sequence[str | os.PathLike[str]] | None,
        *,
        gallery: str,
        config: str | None = None,
        identity: str | None = None,
        method: str | None = None,
        mapping: str | os.PathLike[str] | None = None,
        encoder: str = DEMO_ENCODER,
        work_dir: str | os.PathLike[str],
        upload_root: str | os.PathLike[str] | None = None,
        progress: ProgressFn | None = None,
    ) -> Outcome:
        """Score one batch of uploads. Never raises for bad input: the outcome says what went wrong.

        Args:
            files: uploaded image files and ``.zip`` archives.
            gallery: a gallery label from the allow-list.
            config: the gallery config (default: its first).
            identity: the identity of every image not listed in ``mapping``.
            method: method label of those images (default ``"generated"``).
            mapping: a CSV ``file, identity[, method]``.
            encoder: an encoder label from the allow-list.
            work_dir: folder private to this request; archive members are extracted into its
                ``inputs`` sub-folder, which the caller removes once the strips are drawn.
            upload_root: the web server's upload folder; files (and the mapping CSV) outside it
                are refused.
            progress: called with (fraction, description) while working.

        Returns:
            An :class:`Outcome`.
        """
        start = time.perf_counter()
        out = Outcome(gallery_label=gallery, encoder_label=encoder)
        step = progress or (lambda fraction, desc: None)
        try:
            self._score_into(
                out, files, gallery, config, identity, method, mapping, encoder, Path(work_dir), upload_root, step,
                bars=progress is not None and progress_enabled(),
            )
        except FpRankError as exc:
            out.error = str(exc)
            out.report = None
        out.seconds = time.perf_counter() - start
        return out

    def _score_into(
        self,
        out: Outcome,
        files: Sequence[str | os.PathLike[str]] | None,
        gallery: str,
        config: str | None,
        identity: str | None,
        method: str | None,
        mapping: str | os.PathLike[str] | None,
        encoder: str,
        work_dir: Path,
        upload_root: str | os.PathLike[str] | None,
        step: ProgressFn,
        *,
        bars: bool,
    ) -> None:
        self._check_gallery_label(gallery)
        if encoder not in self.encoders:
            raise InputError(f"unknown encoder {encoder!r}; choose one of {list(self.encoders)}")
        if not files:
            raise InputError("no images uploaded: add generated images (or a .zip of them), then press Score")
        step(0.02, "Checking the uploads")
        uploads, problems = collect_uploads(files, work_dir / "inputs", self.limits, upload_root=upload_root)
        out.problems.extend(problems)
        if mapping and upload_root is not None and not inside(mapping, upload_root):
            raise InputError("the mapping CSV was not uploaded through this page; refused")
        rows = read_mapping(mapping, self.limits) if mapping else {}
        matched, unused = _match_mapping(uploads, rows) if rows else ({}, [])
        if unused:
            shown = ", ".join(unused[:10]) + (f" and {len(unused) - 10} more" if len(unused) > 10 else "")
            out.notes.append(f"{len(unused)} row(s) of the mapping CSV name files that were not uploaded: {shown}")
        batch_identity = (identity or "").strip() or None
        batch_method = (method or "").strip()[:MAX_METHOD_CHARS] or DEFAULT_METHOD

        step(0.05, "Loading the gallery")
        config_arg = self._config_arg(gallery, config)
        gal = self.gallery(gallery, config_arg)
        out.gallery, out.config = gal, config_arg
        known = set(gal.gallery.identities.tolist())
        labels: list[str] = []
        methods: list[str] = []
        keep: list[Upload] = []
        unknown_reason: dict[str, str] = {}
        for i, up in enumerate(uploads):
            row = matched.get(i)
            label = row.identity if row else batch_identity
            if label is None:
                out.problems.append(Problem(up.name, "no identity: not in the mapping CSV and no identity chosen for the batch"))
                continue
            if label not in known:
                if label not in unknown_reason:
                    unknown_reason[label] = _unknown_identity(gal, label)
                out.problems.append(Problem(up.name, unknown_reason[label]))
                continue
            labels.append(label)
            methods.append(row.method if row and row.method else batch_method)
            keep.append(up)
        if not keep:
            raise InputError("none of the uploaded files can be scored; the list below says why")

        step(0.1, "Loading the encoder")
        enc = self.encoder(encoder)
        out.is_demo_encoder = bool(getattr(enc, "is_demo", False))
        step(0.15, "Encoding and ranking")
        report = fp_rank.evaluate(
            [u.path for u in keep],
            labels,
            gallery=gal,
            encoder=enc,
            methods=methods,
            files=[u.name for u in keep],
            batch_size=self.batch_size,
            on_invalid="skip",
            top_k=self.top_k,
            progress=bars,  # tqdm bars, tracked by the page's progress bar
            trust_remote_code=False,
        )
        for skipped in report.skipped:
            out.problems.append(Problem(str(skipped.get("file")), str(skipped.get("reason"))))
        add_intervals = getattr(report, "add_intervals", None)
        if callable(add_intervals) and self.n_boot > 0:
            step(0.85, "Bootstrapping confidence intervals")
            add_intervals(n_boot=self.n_boot, seed=0)
        report.extras["space"] = {
            "gallery_label": gallery,
            "encoder_label": encoder,
            "not_scored": [{"file": p.name, "reason": p.reason} for p in out.problems],
            "notes": list(out.notes),
            "limits": {
                "max_files": self.limits.max_files,
                "max_file_bytes": self.limits.max_file_bytes,
                "max_pixels": self.limits.max_pixels,
            },
        }
        out.uploads = keep
        out.report = report


def _unknown_identity(gal: fp_rank.Gallery, label: str) -> str:
    try:
        gal.check_identities([label])
    except InputError as exc:
        return str(exc)
    close = difflib.get_close_matches(label, gal.identities, n=3)
    return f"identity {label!r} is not in the gallery" + (f" (did you mean {close}?)" if close else "")


def progress_enabled() -> bool:
    """Whether encoding shows tqdm bars (tracked by the page's progress bar)."""
    return os.environ.get("FP_RANK_SPACE_TQDM", "1") not in ("0", "false", "False")


# --------------------------------------------------------------------------------------------
# Rendering: headline, table, ranked strips, chart
# --------------------------------------------------------------------------------------------
THUMB = 112
_BORDER = 5
_PAD = 12
_GAP = 10
_SEP = 26
HIT_COLOUR = (21, 128, 61)
MISS_COLOUR = (185, 28, 28)
QUERY_COLOUR = (51, 65, 85)
_TEXT = (31, 41, 55)
_MUTED = (100, 116, 139)


@lru_cache(maxsize=16)
def _font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        from matplotlib import font_manager

        path = font_manager.findfont(
            font_manager.FontProperties(family="DejaVu Sans", weight="bold" if bold else "normal"), fallback_to_default=True
        )
        return ImageFont.truetype(path, size)
    except (ImportError, OSError, ValueError):
        return ImageFont.load_default(size=size)


def _square(img: Image.Image, size: int) -> Image.Image:
    """Fit an image in a white square of ``size`` pixels, keeping its aspect ratio."""
    img = img.copy()
    img.thumbnail((size, size), Image.Resampling.LANCZOS if max(img.size) > size else Image.Resampling.BICUBIC)
    if max(img.size) < size:
        scale = size / max(img.size)
        img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))), Image.Resampling.BICUBIC)
    canvas = Image.new("RGB", (size, size), (255, 255, 255))
    canvas.paste(img, ((size - img.width) // 2, (size - img.height) // 2))
    return canvas


def _fit(draw: ImageDraw.ImageDraw, text: str, font: Any, width: int) -> str:
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


def _badge(draw: ImageDraw.ImageDraw, x: int, y: int, hit: bool) -> None:
    r = 12
    colour = HIT_COLOUR if hit else MISS_COLOUR
    draw.ellipse((x - r, y - r, x + r, y + r), fill=colour, outline=(255, 255, 255), width=2)
    draw.text((x, y), "✓" if hit else "✗", font=_font(15, True), fill=(255, 255, 255), anchor="mm")


def ranked_strip(
    query: Image.Image,
    matches: Sequence[dict[str, Any]],
    thumbs: Sequence[Image.Image],
    *,
    title: str,
    query_label: str,
    query_note: str,
    names: Mapping[str, str],
) -> Image.Image:
    """One picture per query: the generated image, then its top-k gallery matches in rank order.

    Hits (same identity) get a green frame, a ✓ badge and the word HIT; misses a red frame, a ✗
    badge and MISS, so the marking does not rely on colour alone.

    Args:
        query: the generated image.
        matches: its top-k rows (``identity``, ``score``, ``hit``) in rank order.
        thumbs: square thumbnails of those gallery images, same order.
        title: the line above the strip (file name and scores).
        query_label: the identity the query should show.
        query_note: the smaller line under the query (its method).
        names: identity -> display name.

    Returns:
        An RGB image.
    """
    cell = THUMB + 2 * _BORDER
    k = len(matches)
    width = 2 * _PAD + cell + _SEP + k * cell + max(0, k - 1) * _GAP
    title_h, label_h = 24, 54
    height = _PAD + title_h + cell + label_h + _PAD // 2
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    draw.text((_PAD, _PAD), _fit(draw, title, _font(15, True), width - 2 * _PAD), font=_font(15, True), fill=_TEXT)
    top = _PAD + title_h

    def cell_at(x: int, image: Image.Image, colour: tuple[int, int, int], lines: Sequence[tuple[str, Any, Any]]) -> None:
        draw.rectangle((x, top, x + cell - 1, top + cell - 1), fill=colour)
        canvas.paste(_square(image, THUMB), (x + _BORDER, top + _BORDER))
        y = top + cell + 4
        for text, font, fill in lines:
            draw.text((x, y), _fit(draw, text, font, cell), font=font, fill=fill)
            y += 17

    cell_at(
        _PAD,
        query,
        QUERY_COLOUR,
        [("QUERY", _font(13, True), QUERY_COLOUR), (query_label, _font(12), _TEXT), (query_note, _font(11), _MUTED)],
    )
    x0 = _PAD + cell + _SEP
    draw.line((x0 - _SEP // 2, top, x0 - _SEP // 2, top + cell), fill=(203, 213, 225), width=2)
    for rank, (match, thumb) in enumerate(zip(matches, thumbs), start=1):
        hit = bool(match["hit"])
        colour = HIT_COLOUR if hit else MISS_COLOUR
        x = x0 + (rank - 1) * (cell + _GAP)
        ident = str(match["identity"])
        cell_at(
            x,
            thumb,
            colour,
            [
                (f"#{rank} {'✓ HIT' if hit else '✗ MISS'}", _font(13, True), colour),
                (names.get(ident, ident), _font(12), _TEXT),
                (f"cosine {float(match['score']):.3f}", _font(11), _MUTED),
            ],
        )
        _badge(draw, x + cell - 16, top + 16, hit)
    return canvas


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "–"
    return f"{number:.{digits}f}" if math.isfinite(number) else "–"


def _rank_text(value: Any) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "–"
    if not math.isfinite(number):
        return "–"
    return str(int(number)) if abs(number - round(number)) < 1e-9 else f"{number:.2f}"


def _ci_text(intervals: Mapping[str, Any], key: str) -> str:
    ci = intervals.get(key) if isinstance(intervals, Mapping) else None
    if not isinstance(ci, Mapping) or ci.get("low") is None or ci.get("high") is None:
        return ""
    level = ci.get("confidence")
    level_text = f"{float(level) * 100:.0f}% CI" if isinstance(level, (int, float)) else "CI"
    return f"{level_text} {_fmt(ci['low'])}–{_fmt(ci['high'])}"


_CARD = (
    "flex:1 1 130px;min-width:120px;padding:12px 14px;border-radius:10px;"
    "background:{bg};border:1px solid {border};color:#111827"
)


def _card(title: str, value: str, sub: str, *, main: bool = False, klass: str = "", tip: str = "") -> str:
    bg, border = ("#eef2ff", "#6366f1") if main else ("#f8fafc", "#cbd5e1")
    size = "2.1em" if main else "1.5em"
    return (
        f'<div class="fp-card {klass}" title="{html.escape(tip)}" style="{_CARD.format(bg=bg, border=border)}">'
        f'<div style="font-size:0.85em;color:#475569;font-weight:600">{html.escape(title)}</div>'
        f'<div class="fp-value" style="font-size:{size};font-weight:700;line-height:1.25">{html.escape(value)}</div>'
        f'<div style="font-size:0.8em;color:#475569">{html.escape(sub) or "&nbsp;"}</div></div>'
    )


HEADLINE_PLACEHOLDER = (
    '<div style="padding:18px;border:1px dashed #94a3b8;border-radius:10px;color:#475569;background:#f8fafc">'
    "Upload generated images, choose their identity and press <b>Score</b>. The headline mAP, "
    "CMC@1, the pairwise baseline and the chance floor appear here.</div>"
)


def headline_html(outcome: Outcome) -> str:
    """The score cards: one row per (method, encoder) with mAP, CMC@1, pairwise, chance, ceiling."""
    report = outcome.report
    if report is None:
        return (
            '<div style="padding:18px;border:1px solid #ef4444;border-radius:10px;background:#fef2f2;color:#7f1d1d">'
            f"<b>Nothing was scored.</b> {html.escape(outcome.error or '')}</div>"
        )
    blocks = []
    for res in sorted(report.results, key=lambda r: (-r.map if math.isfinite(r.map) else 0.0, r.method)):
        ci = res.intervals or {}
        cards = [
            _card("mAP", _fmt(res.map), _ci_text(ci, "map") or "identity retrieval", main=True, klass="fp-map",
                  tip="Mean average precision of retrieving each image's own identity among look-alikes"),
            _card("CMC@1", _fmt(res.cmc.get(1)), _ci_text(ci, "cmc1") or "top match correct", klass="fp-cmc",
                  tip="Share of images whose best gallery match is their own identity"),
            _card("Pairwise cosine", _fmt(res.pairwise_similarity), _ci_text(ci, "pairwise") or "baseline", klass="fp-pairwise",
                  tip="DreamBench-style baseline: mean cosine to the identity's reference photos"),
            _card("Chance floor", _fmt(res.chance_map), "random ranking", klass="fp-chance",
                  tip="Expected mAP of a uniformly random ranking of the same gallery"),
        ]
        if res.ceiling_map is not None:
            cards.append(_card("Real-image ceiling", _fmt(res.ceiling_map), f"{res.ceiling_split} photos", klass="fp-ceiling",
                               tip="mAP of real photos used as queries against the same gallery"))
        title = f"{res.method} · {res.encoder} · {res.n_queries} image(s) scored"
        blocks.append(
            f'<div class="fp-method" style="margin-bottom:12px"><div style="font-weight:700;margin:2px 0 6px 2px">'
            f'{html.escape(title)}</div><div style="display:flex;gap:10px;flex-wrap:wrap">{"".join(cards)}</div></div>'
        )
    note = (
        '<div style="font-size:0.85em;color:#475569;margin-top:4px"><b>mAP</b>: how well each generated image '
        "retrieves real photos of its own identity among look-alikes (1 = all of them ranked first). Well above the "
        "<b>chance floor</b> means the identifying details survived. <b>CMC@1</b>: share of images whose best match "
        "is their own identity. <b>Pairwise cosine</b>: the usual DreamBench-style similarity to the reference photos, "
        "shown for comparison. <b>Real-image ceiling</b>: the same retrieval with real photos as queries.</div>"
    )
    if outcome.is_demo_encoder:
        note += (
            '<div style="font-size:0.85em;color:#92400e;background:#fffbeb;border:1px solid #f59e0b;'
            'border-radius:8px;padding:6px 10px;margin-top:6px"><b>Demo encoder:</b> a hand-made descriptor for '
            "the synthetic demo birds only; its scores of real photos mean nothing. Pick a real encoder for real "
            "images.</div>"
        )
    return f'<div id="fp-results">{"".join(blocks)}{note}</div>'


def _md_name(name: str) -> str:
    return "`" + name.replace("`", "'") + "`"


def status_markdown(outcome: Outcome) -> str:
    """The status line and the list of files that were not scored."""
    lines = []
    if outcome.report is None:
        lines.append(f"**Nothing was scored.** {outcome.error}")
    else:
        gallery = outcome.gallery_label + (f" / {outcome.config}" if outcome.config else "")
        lines.append(
            f"Scored **{len(outcome.report.queries)}** image(s) against gallery **{gallery}** with encoder "
            f"**{outcome.encoder_label}** in {outcome.seconds:.1f} s."
        )
    if outcome.problems:
        lines.append(f"\n**{len(outcome.problems)} file(s) not scored:**")
        lines.extend(f"- {_md_name(p.name)}: {p.reason}" for p in outcome.problems[:50])
        if len(outcome.problems) > 50:
            lines.append(f"- … and {len(outcome.problems) - 50} more (all are listed in the JSON report)")
    for note in outcome.notes:
        lines.append(f"\nNote: {note}")
    return "\n".join(lines)


TABLE_COLUMNS = ["file", "method", "identity", "AP", "first hit at rank", "top-1 identity", "top-1 correct", "pairwise cosine"]


def query_table(outcome: Outcome) -> Any:
    """The per-image table (a pandas DataFrame)."""
    import pandas as pd

    rows = []
    names = outcome.gallery.identity_names if outcome.gallery is not None else {}
    if outcome.report is not None:
        for q in outcome.report.queries:
            correct = q.get("top1_identity") == q.get("identity")
            top1 = str(q.get("top1_identity"))
            rows.append(
                [
                    q.get("file"),
                    q.get("method"),
                    q.get("identity_name") or q.get("identity"),
                    _fmt(q.get("ap")),
                    _rank_text(q.get("first_hit_rank")),
                    names.get(top1, top1),
                    "✓ yes" if correct else "✗ no",
                    _fmt(q.get("pairwise")),
                ]
            )
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


def identity_figure(outcome: Outcome) -> Any:
    """Bar chart of mAP per identity (one bar per method), with each identity's chance floor."""
    from matplotlib.figure import Figure

    report = outcome.report
    if report is None or not report.queries:
        return None
    names = outcome.gallery.identity_names if outcome.gallery is not None else {}
    idents = sorted({str(q["identity"]) for q in report.queries})
    methods = sorted({str(q["method"]) for q in report.queries})
    ap: dict[tuple[str, str], list[float]] = {}
    chance: dict[str, list[float]] = {}
    for q in report.queries:
        value = q.get("ap")
        if value is None or not math.isfinite(float(value)):
            continue
        ap.setdefault((str(q["identity"]), str(q["method"])), []).append(float(value))
        chance.setdefault(str(q["identity"]), []).append(float(q.get("chance_ap") or 0.0))
    height = max(2.6, 0.55 * len(idents) * max(1, len(methods)) ** 0.5 + 1.4)
    fig = Figure(figsize=(7.0, height), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    bar_h = 0.8 / len(methods)
    palette = ["#4f46e5", "#0891b2", "#d97706", "#db2777", "#65a30d", "#7c3aed"]
    for m_idx, method in enumerate(methods):
        ys = [i - 0.4 + bar_h * (m_idx + 0.5) for i in range(len(idents))]
        xs = [float(np.mean(ap[(ident, method)])) if (ident, method) in ap else np.nan for ident in idents]
        ax.barh(ys, xs, height=bar_h * 0.9, color=palette[m_idx % len(palette)], label=method)
        for y, x in zip(ys, xs):
            if math.isfinite(x):
                ax.text(min(x + 0.01, 0.93), y, f"{x:.2f}", va="center", fontsize=8)
    for i, ident in enumerate(idents):
        if ident in chance:
            c = float(np.mean(chance[ident]))
            ax.plot([c, c], [i - 0.45, i + 0.45], color="#111827", linestyle="--", linewidth=1.2,
                    label="chance floor" if i == 0 else None)
    ax.set_yticks(range(len(idents)))
    ax.set_yticklabels([names.get(i, i) for i in idents])
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("mAP of the identity's generated images")
    ax.set_title("mAP per identity (dashed: chance floor)")
    ax.legend(loc="lower right", fontsize=8, frameon=True)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig


@dataclass(frozen=True)
class Strip:
    """One query's ranked strip: the picture, its title and a sentence saying where the hits are."""

    image: Image.Image
    title: str
    caption: str
    hits: tuple[bool, ...]


def strips(outcome: Outcome, space: ScoringSpace) -> list[Strip]:
    """One ranked strip per query (at most ``space.max_strips``), in upload order."""
    report, gal = outcome.report, outcome.gallery
    if report is None or gal is None:
        return []
    names = gal.identity_names
    out = []
    for q in report.queries[: space.max_strips]:
        matches = q.get("top_k") or []
        upload = outcome.uploads[int(q["index"])]
        try:
            query_img = to_rgb(upload.path, name=upload.name)  # its header passed the pixel limit
        except FpRankError:
            continue
        thumbs = [space.thumbnail(outcome.gallery_label, outcome.config, gal, int(m["gallery_index"]), THUMB) for m in matches]
        ident = str(q["identity"])
        hits = tuple(bool(m["hit"]) for m in matches)
        ranks = [str(r) for r, hit in enumerate(hits, start=1) if hit]
        title = f"{upload.name}  ·  AP {_fmt(q.get('ap'))}  ·  first hit at rank {_rank_text(q.get('first_hit_rank'))}"
        image = ranked_strip(
            query_img,
            matches,
            thumbs,
            title=title,
            query_label=names.get(ident, ident),
            query_note=str(q.get("method") or ""),
            names=names,
        )
        if ranks:
            caption = f"Same identity (hit) at rank {', '.join(ranks)} of the top {len(matches)}."
        else:
            caption = f"No hit in the top {len(matches)}: every top match is a look-alike identity."
        out.append(Strip(image=image, title=title, caption=caption, hits=hits))
    return out


def strips_html(items: Sequence[Strip], total: int) -> str:
    """The ranked strips as one HTML block (inline WebP pictures; title and caption also as text).

    Args:
        items: strips from :func:`strips`.
        total: how many queries were scored (to say when only the first strips are drawn).
    """
    if not items:
        return '<div style="color:#475569;padding:8px">The ranked gallery matches of each image appear here.</div>'
    figures = []
    for strip in items:
        buf = io.BytesIO()
        strip.image.save(buf, format="WEBP", quality=90, method=4)
        data = base64.b64encode(buf.getvalue()).decode("ascii")
        alt = html.escape(f"{strip.title}. {strip.caption}")
        figures.append(
            '<figure class="fp-strip" style="margin:0;padding:6px;border:1px solid #e2e8f0;border-radius:8px;'
            f'background:#ffffff"><img src="data:image/webp;base64,{data}" alt="{alt}" '
            f'width="{strip.image.width}" height="{strip.image.height}" style="width:100%;height:auto;display:block">'
            f'<figcaption style="font-size:0.8em;color:#475569;margin-top:2px">{html.escape(strip.caption)}</figcaption>'
            "</figure>"
        )
    more = ""
    if total > len(items):
        more = (
            f'<div style="color:#475569;margin-top:6px">Showing the first {len(items)} of {total} images; every '
            "image's top matches are in the JSON report.</div>"
        )
    return (
        '<div class="fp-strip-grid" style="display:grid;grid-template-columns:repeat(auto-fill,minmax(560px,1fr));'
        f'gap:12px">{"".join(figures)}</div>{more}'
    )


def write_reports(outcome: Outcome, folder: Path) -> tuple[str | None, str | None]:
    """Write the JSON report and the per-image CSV for download; paths (None without a report)."""
    if outcome.report is None:
        return None, None
    folder.mkdir(parents=True, exist_ok=True)
    json_path = folder / "fp-rank-report.json"
    csv_path = folder / "fp-rank-per-image.csv"
    outcome.report.to_json(json_path)
    outcome.report.to_csv(csv_path)
    return str(json_path), str(csv_path)


# --------------------------------------------------------------------------------------------
# Sample images (so the page can be tried without files at hand)
# --------------------------------------------------------------------------------------------
SAMPLE_IDENTITIES = ("finch_scarlet_crown", "finch_gold_cheek", "jay_azure_wing")
SAMPLE_METHODS = ("faithful", "drifting")
SAMPLE_PROMPTS = 4


def write_samples(folder: str | os.PathLike[str]) -> tuple[list[str], str]:
    """Write a few synthetic generated images and their mapping CSV; returns (image paths, CSV path)."""
    from fp_rank.demo.synthetic import generated_records

    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    paths: list[str] = []
    lines = ["file,identity,method"]
    for rec in generated_records(0, methods=SAMPLE_METHODS):
        if rec["identity"] not in SAMPLE_IDENTITIES or int(rec["file"].rsplit("/", 1)[-1][:2]) >= SAMPLE_PROMPTS:
            continue
        name = rec["file"].replace("/", "_")
        path = root / name
        rec["image"].save(path)
        paths.append(str(path))
        lines.append(f"{name},{rec['identity']},{rec['method']}")
    csv_path = root / "sample-mapping.csv"
    csv_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return paths, str(csv_path)


# --------------------------------------------------------------------------------------------
# The page
# --------------------------------------------------------------------------------------------
INTRO = """
# fp-rank: does the generated image keep the subject's identity?

**Finer-Personalization Rank** ([arXiv 2512.19026](https://arxiv.org/abs/2512.19026)) scores a personalization
method by retrieval: every generated image is a query that ranks real photos of its subject among look-alike
identities (same group), and the ranking is scored by average precision. Upload generated images of a subject,
say who they show, and press **Score**.
"""

CSS = """
#fp-score { min-height: 48px; font-size: 1.1em; }
"""


def _file_paths(value: Any) -> list[str]:
    if value is None:
        return []
    items = value if isinstance(value, (list, tuple)) else [value]
    out = []
    for item in items:
        path = item if isinstance(item, (str, os.PathLike)) else getattr(item, "name", None) or (item.get("path") if isinstance(item, dict) else None)
        if path:
            out.append(os.fspath(path))
    return out


def build_app(space: ScoringSpace | None = None) -> gr.Blocks:
    """Build the Gradio Blocks page (nothing is launched).

    Args:
        space: allow-lists, limits and shared resources (default :meth:`ScoringSpace.from_env`).

    Returns:
        The ``gr.Blocks`` app; start it with :func:`launch`.
    """
    space = space or ScoringSpace.from_env()

    def on_gallery(label: str) -> tuple[Any, Any]:
        try:
            cfgs = space.configs(label)
            return gr.Dropdown(choices=cfgs, value=cfgs[0]), gr.Dropdown(choices=space.identities(label, cfgs[0]), value=None)
        except FpRankError as exc:
            raise gr.Error(str(exc)) from None

    def on_config(label: str, config: str) -> Any:
        try:
            return gr.Dropdown(choices=space.identities(label, config), value=None)
        except FpRankError as exc:
            raise gr.Error(str(exc)) from None

    def on_samples() -> tuple[Any, ...]:
        paths, csv_path = write_samples(space.work_root / "samples")
        return paths, csv_path, DEMO_GALLERY, "all", None

    def on_score(
        files: Any,
        gallery: str,
        config: str,
        identity: str | None,
        method: str | None,
        mapping: Any,
        encoder: str,
        progress: gr.Progress = gr.Progress(track_tqdm=True),  # noqa: B008 (Gradio's documented pattern)
    ) -> tuple[Any, ...]:
        request_dir = space.new_request_dir()
        try:
            mapping_paths = _file_paths(mapping)
            outcome = space.score(
                _file_paths(files),
                gallery=gallery,
                config=config,
                identity=identity,
                method=method,
                mapping=mapping_paths[0] if mapping_paths else None,
                encoder=encoder,
                work_dir=request_dir,
                upload_root=demo.GRADIO_CACHE,
                progress=lambda fraction, desc: progress(fraction, desc=desc),
            )
            progress(0.9, desc="Drawing the rankings")
            json_path, csv_path = write_reports(outcome, request_dir / "report")
            return (
                status_markdown(outcome),
                headline_html(outcome),
                json_path,
                csv_path,
                strips_html(strips(outcome, space), len(outcome.report.queries) if outcome.report else 0),
                query_table(outcome),
                identity_figure(outcome),
            )
        finally:
            shutil.rmtree(request_dir / "inputs", ignore_errors=True)

    # Loaded after the handlers are defined: gr.Progress(track_tqdm=True) patches tqdm, and bars
    # opened before the patch (the gallery load's) would otherwise fail when they are collected.
    gallery_labels = list(space.galleries)
    first = gallery_labels[0]
    configs = space.configs(first)
    identity_choices = space.identities(first, configs[0])
    encoder_labels = list(space.encoders)

    # Gradio keeps its own copy of each upload (shared by identical files, so not ours to delete
    # mid-flight); delete_cache clears copies older than 30 minutes every 5 minutes.
    with gr.Blocks(title="fp-rank: identity preservation", analytics_enabled=False, delete_cache=(300, 1800)) as demo:
        gr.Markdown(INTRO)
        with gr.Row(equal_height=False):
            with gr.Column(scale=2, min_width=320):
                files = gr.File(
                    label="Generated images (image files or a .zip)",
                    file_count="multiple",
                    file_types=["image", ".zip"],
                    elem_id="fp-files",
                    height=180,
                )
                with gr.Row():
                    gallery = gr.Dropdown(gallery_labels, value=first, label="Gallery", elem_id="fp-gallery")
                    config = gr.Dropdown(configs, value=configs[0], label="Config", allow_custom_value=True, elem_id="fp-config")
                identity = gr.Dropdown(
                    identity_choices,
                    value=None,
                    label="Identity shown in the batch",
                    info="Required unless every file is listed in a mapping CSV.",
                    allow_custom_value=True,
                    elem_id="fp-identity",
                )
                method = gr.Textbox(value=DEFAULT_METHOD, label="Method name", max_lines=1, elem_id="fp-method")
                mapping = gr.File(
                    label="Or a mapping CSV: file, identity[, method]", file_types=[".csv"], elem_id="fp-mapping", height=110
                )
                encoder = gr.Dropdown(encoder_labels, value=encoder_labels[0], label="Encoder", elem_id="fp-encoder")
                with gr.Row():
                    sample = gr.Button(
                        "Load sample images", variant="secondary", elem_id="fp-sample", visible=DEMO_GALLERY in space.galleries
                    )
                    score = gr.Button("Score", variant="primary", elem_id="fp-score")
                gr.Markdown(f"<small>{html.escape(space.limits.describe())} Uploaded files are deleted after scoring (the server's upload cache within the hour).</small>")
            with gr.Column(scale=3, min_width=420):
                headline = gr.HTML(HEADLINE_PLACEHOLDER, label="Scores", elem_id="fp-headline")
                status = gr.Markdown(label="Status", elem_id="fp-status")
                with gr.Row():
                    json_file = gr.DownloadButton("Download report (JSON)", elem_id="fp-json", size="md")
                    csv_file = gr.DownloadButton("Download per-image CSV", elem_id="fp-csv", size="md")
                chart = gr.Plot(label="mAP per identity", elem_id="fp-chart")
        gr.Markdown(
            f"### Top-{space.top_k} gallery matches of each generated image\n"
            "Each strip shows the generated image (QUERY), then the real gallery photos it ranked highest, best first. "
            "**✓ HIT** (green frame): same identity as the query. **✗ MISS** (red frame): a look-alike identity."
        )
        strip_view = gr.HTML(strips_html([], 0), label="Ranked strips", elem_id="fp-strips")
        table = gr.Dataframe(headers=TABLE_COLUMNS, label="Per image", interactive=False, elem_id="fp-table", wrap=True)

        gallery.change(on_gallery, gallery, [config, identity], api_visibility="private")
        config.change(on_config, [gallery, config], identity, api_visibility="private")
        sample.click(on_samples, None, [files, mapping, gallery, config, identity], api_visibility="private")
        score.click(
            on_score,
            [files, gallery, config, identity, method, mapping, encoder],
            [status, headline, json_file, csv_file, strip_view, table, chart],
            api_name="score",
            concurrency_limit=_env_int("FP_RANK_SPACE_CONCURRENCY", 2),
            scroll_to_output=True,
        )
    demo.space = space  # type: ignore[attr-defined]  # for tests and launch()
    return demo


def launch(demo: gr.Blocks | None = None, **kwargs: Any) -> Any:
    """Launch the page (server name from ``GRADIO_SERVER_NAME``, default 127.0.0.1).

    Args:
        demo: an app from :func:`build_app` (default: a new one).
        **kwargs: passed on to ``gr.Blocks.launch`` (e.g. ``server_port``, ``prevent_thread_lock``).

    Returns:
        What ``gr.Blocks.launch`` returns.
    """
    demo = demo or build_app()
    space: ScoringSpace = demo.space  # type: ignore[attr-defined]
    options: dict[str, Any] = {
        "server_name": os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        "max_file_size": max(space.limits.max_file_bytes, space.limits.max_archive_bytes, space.limits.max_mapping_bytes),
        "css": CSS,
        "ssr_mode": False,
        "show_error": False,
    }
    options.update(kwargs)
    return demo.launch(**options)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    launch()
