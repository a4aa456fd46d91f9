"""What the Space owner decides: upload limits and the gallery and encoder allow-lists.

Everything here is read from ``FP_RANK_SPACE_*`` environment variables (see docs/space.md), never
from the page: its users pick from what these functions allow.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass

from fp_rank.demo.run import DEMO_ENCODER
from fp_rank.images.decode import DEFAULT_FORMATS, check_formats
from fp_rank.encoding.registry import REGISTRY
from fp_rank.errors import InputError

logger = logging.getLogger("fp_rank.space")

#: One megabyte, the only size unit the Space shows: 10^6 bytes (SI), never 2^20.
MB = 1_000_000

#: Label of the embedded demo gallery in the gallery allow-list.
DEMO_GALLERY = "demo (synthetic birds)"
#: Longest method label accepted from the page.
MAX_METHOD_CHARS = 80
#: Longest identity label accepted (gallery identities are short; a longer one is refused, not cut).
MAX_IDENTITY_CHARS = 200
#: Longest prompt kept from a mapping CSV (longer prompts are cut).
MAX_PROMPT_CHARS = 2000
#: Longest file name shown in a reply (archive members may carry 64 kB names).
MAX_NAME_CHARS = 200

#: A gallery folder or Hub id, or a function returning one (built on first use).
GallerySource = str | Callable[[], str]


def env_int(name: str, default: int, minimum: int = 1) -> int:
    """An owner setting that is a whole number: ``default`` when unset or blank.

    Raises:
        InputError: the variable is not a number, or is below ``minimum``.
    """
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    text = raw.strip()
    try:
        value = int(text)
    except ValueError:
        try:
            number = float(text)
        except ValueError:
            number = float("nan")
        if not math.isfinite(number) or number != int(number):
            raise InputError(
                f"environment variable {name}={raw!r} is not a whole number; unset it or give e.g. {default}"
            ) from None
        value = int(number)
    if value < minimum:
        raise InputError(f"environment variable {name}={raw!r} must be >= {minimum}")
    return value


def mb_text(n: int) -> str:
    """A byte count in megabytes of 10^6 bytes, for messages (``20 MB``, ``2.5 MB``, ``0.004 MB``)."""
    value = n / MB
    return f"{value:.3g} MB" if value < 1 else f"{value:,.1f}".removesuffix(".0") + " MB"


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
        max_archive_members: entries of one ``.zip`` of any kind (folders, junk and non-images
            included), read from its end record before the directory is parsed.
        formats: image formats decoded (PIL names), checked from each file's bytes.
    """

    max_files: int = 200
    max_file_bytes: int = 20 * MB
    max_pixels: int = 40_000_000
    max_archive_bytes: int = 200 * MB
    max_total_bytes: int = 500 * MB
    max_mapping_bytes: int = 1 * MB
    max_archive_members: int = 2000
    formats: tuple[str, ...] = DEFAULT_FORMATS

    @classmethod
    def from_env(cls) -> Limits:
        """Defaults, overridden by ``FP_RANK_SPACE_MAX_FILES``, ``..._MAX_FILE_MB``,
        ``..._MAX_MEGAPIXELS``, ``..._MAX_ARCHIVE_MB`` and ``..._MAX_TOTAL_MB``.

        Raises:
            InputError: a variable is set to something other than a positive number.
        """
        base = cls()
        return cls(
            max_files=env_int("FP_RANK_SPACE_MAX_FILES", base.max_files),
            max_file_bytes=env_int("FP_RANK_SPACE_MAX_FILE_MB", base.max_file_bytes // MB) * MB,
            max_pixels=env_int("FP_RANK_SPACE_MAX_MEGAPIXELS", base.max_pixels // 1_000_000) * 1_000_000,
            max_archive_bytes=env_int("FP_RANK_SPACE_MAX_ARCHIVE_MB", base.max_archive_bytes // MB) * MB,
            max_total_bytes=env_int("FP_RANK_SPACE_MAX_TOTAL_MB", base.max_total_bytes // MB) * MB,
            max_mapping_bytes=base.max_mapping_bytes,
            max_archive_members=env_int("FP_RANK_SPACE_MAX_ARCHIVE_MEMBERS", base.max_archive_members),
            formats=formats_from_env(),
        )

    def describe(self) -> str:
        """One line for the page."""
        return (
            f"Up to {self.max_files} images per batch, {mb_text(self.max_file_bytes)} and "
            f"{self.max_pixels / 1e6:g} megapixels per image, {mb_text(self.max_archive_bytes)} per .zip."
        )


def formats_from_env() -> tuple[str, ...]:
    """Decoded formats: ``FP_RANK_SPACE_FORMATS`` (comma-separated, a subset of the library's
    default list), else :data:`fp_rank.images.decode.DEFAULT_FORMATS`.

    Raises:
        InputError: a format outside the library's safe list, naming the variable.
    """
    raw = os.environ.get("FP_RANK_SPACE_FORMATS", "").strip()
    if not raw:
        return DEFAULT_FORMATS
    try:
        return check_formats(raw)
    except InputError as exc:
        raise InputError(f"environment variable FP_RANK_SPACE_FORMATS={raw!r}: {exc}") from None


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


def needs_remote_code(spec: str) -> bool:
    """Whether an encoder (registry alias, Hub id or folder) is a registered one that runs remote code."""
    entry = REGISTRY.get(spec)
    return entry is not None and entry.requires_remote_code


def encoders_from_env() -> dict[str, str]:
    """The encoder allow-list: the demo encoder plus ``FP_RANK_SPACE_ENCODERS``.

    ``FP_RANK_SPACE_ENCODERS`` is a comma-separated list of registry aliases
    (``dinov2-base,clip-vit-b32``), a JSON list of them, or a JSON object mapping a label to an alias, Hub id or model
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
    elif raw.startswith("["):
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise InputError(f"FP_RANK_SPACE_ENCODERS is not valid JSON ({exc}); give e.g. [\"dinov2-base\"]") from None
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise InputError('FP_RANK_SPACE_ENCODERS must be a JSON list of encoder names, e.g. ["dinov2-base"]')
        pairs = [(v.strip(), v.strip()) for v in value]
    else:
        pairs = [(a.strip(), a.strip()) for a in raw.split(",") if a.strip()]
    for label, spec in pairs:
        if needs_remote_code(spec):
            logger.warning("encoder %r needs trust_remote_code, which the Space never enables; left out", spec)
            continue
        out[label] = spec
    return out


def progress_enabled() -> bool:
    """Whether encoding shows tqdm bars (tracked by the page's progress bar): ``FP_RANK_SPACE_TQDM``."""
    return os.environ.get("FP_RANK_SPACE_TQDM", "1") not in ("0", "false", "False")
