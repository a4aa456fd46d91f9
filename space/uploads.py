"""Reading one request's uploads: planning, zip extraction, header checks, the mapping CSV.

Counts and sizes are checked from file sizes and archive directories before anything is
extracted, pixel counts from image headers before anything is decoded, and archive members are
written under names chosen here. A file that breaks a rule is listed as a :class:`Problem` and the
rest of the batch goes on; a batch over the count or total-size limit is refused whole
(:class:`BatchRefused`).
"""

from __future__ import annotations

import dataclasses
import os
import re
import stat
import struct
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from fp_rank.images.decode import read_header
from fp_rank.errors import ImageDecodeError, InputError
from fp_rank.runs import DEFAULT_METHOD, IMAGE_SUFFIXES, GeneratedImage, read_manifest
from space.settings import MAX_IDENTITY_CHARS, MAX_METHOD_CHARS, MAX_NAME_CHARS, MAX_PROMPT_CHARS, Limits, mb_text


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


def shorten(text: str, limit: int = MAX_NAME_CHARS) -> str:
    """``text`` cut to ``limit`` characters (with an ellipsis and the full length), for replies."""
    return text if len(text) <= limit else f"{text[: limit - 1]}… ({len(text)} characters)"


def archive_entries(path: str) -> int | None:
    """The entry count an archive's end record declares, read from its last bytes only (the
    central directory, which may list 100,000 members, is not parsed). None if there is no end
    record (then ``zipfile`` cannot open it either)."""
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        tail_len = min(size, 22 + 65535)
        fh.seek(size - tail_len)
        tail = fh.read(tail_len)
        at = tail.rfind(b"PK\x05\x06")
        if at < 0 or len(tail) - at < 22:
            return None
        entries = struct.unpack("<H", tail[at + 10 : at + 12])[0]
        if entries != 0xFFFF or at < 20 or tail[at - 20 : at - 16] != b"PK\x06\x07":
            return entries
        (offset,) = struct.unpack("<Q", tail[at - 12 : at - 4])  # the zip64 end record
        if offset + 40 > size:
            return None
        fh.seek(offset)
        record = fh.read(40)
        if record[:4] != b"PK\x06\x06":
            return None
        return int(struct.unpack("<Q", record[32:40])[0])


def _plan_archive(path: str, name: str, limits: Limits, problems: list[Problem]) -> list[_Candidate]:
    size = os.path.getsize(path)
    if size > limits.max_archive_bytes:
        problems.append(Problem(name, f"archive of {mb_text(size)} exceeds the limit of {mb_text(limits.max_archive_bytes)}"))
        return []
    declared = archive_entries(path)
    if declared is not None and declared > limits.max_archive_members:
        raise BatchRefused(
            f"archive {name} lists {declared} entries; the limit is {limits.max_archive_members} per archive "
            "(folders and non-image files included). Split it into smaller archives."
        )
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        problems.append(Problem(name, f"not a readable .zip archive ({exc})"))
        return []
    with archive:
        listed = archive.infolist()
        if len(listed) > limits.max_archive_members:  # an end record that understates the directory
            raise BatchRefused(
                f"archive {name} lists {len(listed)} entries; the limit is {limits.max_archive_members} per archive"
            )
        declared_bytes = sum(m.file_size for m in listed)
        if declared_bytes > limits.max_total_bytes:
            raise BatchRefused(
                f"archive {name} holds {mb_text(declared_bytes)} once decompressed (all members); the limit is "
                f"{mb_text(limits.max_total_bytes)}. Split it into smaller batches."
            )
        members = [m for m in listed if not m.is_dir() and not _is_junk(m.filename)]
    out: list[_Candidate] = []
    not_images: list[str] = []
    for member in members:
        shown = shorten(f"{name}/{member.filename}")
        unsafe = _unsafe_member(member.filename)
        mode = member.external_attr >> 16
        if unsafe:
            problems.append(Problem(shown, unsafe))
        elif stat.S_ISLNK(mode):
            problems.append(Problem(shown, "symbolic link in the archive; not extracted"))
        elif member.flag_bits & 0x1:
            problems.append(Problem(shown, "encrypted archive member; upload it unencrypted"))
        elif PurePosixPath(member.filename).suffix.lower() not in IMAGE_SUFFIXES:
            not_images.append(shown)
        elif member.file_size > limits.max_file_bytes:
            problems.append(
                Problem(shown, f"{mb_text(member.file_size)} once decompressed exceeds the limit of {mb_text(limits.max_file_bytes)}")
            )
        else:
            out.append(_Candidate(name=shorten(member.filename), size=member.file_size, archive=path, member=member))
    if len(not_images) == 1:
        problems.append(Problem(not_images[0], f"not an image file (expected one of {', '.join(IMAGE_SUFFIXES)})"))
    elif not_images:  # one line for all of them: the reply stays the size of the limits, not of the archive
        listed_names = ", ".join(n.split("/", 1)[-1] for n in not_images[:5])
        more = f" and {len(not_images) - 5} more" if len(not_images) > 5 else ""
        problems.append(Problem(f"{shorten(name)} ({len(not_images)} members)", f"not image files ({listed_names}{more}); "
                                f"expected one of {', '.join(IMAGE_SUFFIXES)}"))
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
                raise InputError(f"more than {mb_text(limits.max_file_bytes)} once decompressed (the archive understates its size)")
            dst.write(block)
    return str(dest)


def _check_header(path: str, limits: Limits) -> str | None:
    """Read only the image header: refuse formats outside the allow-list and images over the pixel limit."""
    try:
        _, width, height = read_header(path, os.path.basename(path), max_pixels=2**62, formats=limits.formats)
    except ImageDecodeError as exc:
        if "decompression-bomb" in exc.reason:
            return f"image dimensions exceed the limit of {limits.max_pixels / 1e6:g} megapixels"
        return exc.reason
    except OSError as exc:
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
        if not isinstance(raw, (str, os.PathLike)):
            raise InputError(f"uploaded files must be file paths, got a {type(raw).__name__}")
        path = os.fspath(raw)
        name = shorten(os.path.basename(path) or path)
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
            problems.append(Problem(name, f"file of {mb_text(size)} exceeds the limit of {mb_text(limits.max_file_bytes)}"))
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
            f"this batch holds {mb_text(total)} of images (archives decompressed); the limit is "
            f"{mb_text(limits.max_total_bytes)}. Split it into smaller batches."
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



def read_mapping(
    path: str | os.PathLike[str], limits: Limits, *, method: str = DEFAULT_METHOD
) -> dict[str, GeneratedImage]:
    """Read an uploaded mapping CSV ``file, identity[, method, prompt, seed, conditioning]``.

    The rows are read by :func:`fp_rank.runs.read_manifest` (the CLI's manifest reader); here the
    file's size is checked first, method labels are cut to :data:`MAX_METHOD_CHARS`, and each
    file may be listed once (twice only with the same labels).

    Args:
        path: the CSV file.
        limits: gives the largest CSV accepted.
        method: the method of rows that name none (the batch's).

    Returns:
        ``file`` (slashes normalised) -> its row.

    Raises:
        InputError: too large, not UTF-8, missing columns, empty cells or a file listed twice
            with different labels; the message names the line.
    """
    name = os.path.basename(os.fspath(path))
    size = os.path.getsize(path)
    if size > limits.max_mapping_bytes:
        raise InputError(f"mapping CSV {name} is {mb_text(size)}; the limit is {mb_text(limits.max_mapping_bytes)}")
    out: dict[str, GeneratedImage] = {}
    for row in read_manifest(path, file_format="csv", name=f"mapping CSV {name}", default_method=method):
        if len(row.identity) > MAX_IDENTITY_CHARS:
            raise InputError(
                f"mapping CSV {name} line {row.line}: the identity is {len(row.identity)} characters long; gallery "
                f"identities have at most {MAX_IDENTITY_CHARS}"
            )
        entry = dataclasses.replace(
            row, method=row.method[:MAX_METHOD_CHARS] or method,
            prompt=row.prompt[:MAX_PROMPT_CHARS] if isinstance(row.prompt, str) else row.prompt,
        )
        previous = out.get(entry.file)
        if previous is not None and (previous.identity, previous.method) != (entry.identity, entry.method):
            raise InputError(f"mapping CSV {name} line {entry.line}: {entry.file!r} is already mapped on line {previous.line}")
        out[entry.file] = entry
    return out


def match_mapping(
    uploads: Sequence[Upload], mapping: Mapping[str, GeneratedImage]
) -> tuple[dict[int, GeneratedImage], list[str]]:
    """Rows for uploads: by exact name, else by base name when that is unambiguous.

    Returns:
        upload position -> its row, and the mapped files that match no upload.
    """
    by_base: dict[str, list[str]] = {}
    for key in mapping:
        by_base.setdefault(PurePosixPath(key).name, []).append(key)
    used: set[str] = set()
    found: dict[int, GeneratedImage] = {}
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
