"""Reading files people name: regular files only, size-bounded, with one clear error.

A path may name a FIFO (a read blocks forever), a device such as ``/dev/zero`` (a read never
ends) or a folder. Everything fp-rank reads from a user-given path goes through
:func:`read_regular_bytes`, which opens without blocking, checks the opened file is a regular
file and stops at a size limit.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Sequence
from pathlib import Path

from fp_rank.errors import InputError

#: Largest JSON/CSV file fp-rank reads whole (a report of a million queries is ~600 MB).
MAX_TEXT_BYTES = 2 * 1024**3


#: Largest image file fp-rank reads (a 89-megapixel PNG is well under it).
MAX_IMAGE_BYTES = 1024**3


def read_regular_raw(path: str | os.PathLike[str], *, limit: int | None = MAX_IMAGE_BYTES) -> bytes:
    """The bytes of a regular file, opened without blocking; :class:`OSError` otherwise.

    The error's ``strerror`` says what the path is (``not a regular file (a FIFO)``, ``more than
    ... bytes``), for callers that turn it into their own message; a folder is an
    :class:`IsADirectoryError`. ``limit`` None reads any size.
    """
    shown = os.fspath(path)
    fd = os.open(shown, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError(errno.EISDIR, "not a regular file (a folder)", shown)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(errno.EINVAL, f"not a regular file ({_kind(info.st_mode)})", shown)
        if limit is not None and info.st_size > limit:
            raise OSError(errno.EFBIG, f"{info.st_size:,} bytes, more than the {limit:,} fp-rank reads", shown)
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read() if limit is None else handle.read(limit + 1)
    finally:
        os.close(fd)
    if limit is not None and len(data) > limit:
        raise OSError(errno.EFBIG, f"grew past the {limit:,} bytes fp-rank reads while it was read", shown)
    return data


def read_regular_bytes(path: str | os.PathLike[str], what: str, *, limit: int = MAX_TEXT_BYTES) -> bytes:
    """:func:`read_regular_raw` with one :class:`InputError` naming ``what`` and the path.

    Args:
        path: the file.
        what: what the file is, for the message (``"report file"``).
        limit: the largest size read.

    Raises:
        InputError: naming the path, when it does not exist, is a folder, a FIFO, a device or
            another non-regular file, is larger than ``limit``, or cannot be read.

    Example:
        >>> read_regular_bytes("/dev/null", "report file")
        Traceback (most recent call last):
        ...
        fp_rank.errors.InputError: report file '/dev/null' is not a regular file (a character device); name a file
    """
    shown = os.fspath(path)
    try:
        return read_regular_raw(path, limit=limit)
    except FileNotFoundError:
        raise InputError(f"{what} {shown!r} does not exist") from None
    except OSError as exc:
        reason = exc.strerror or str(exc)
        if reason.startswith("not a regular file"):
            raise InputError(f"{what} {shown!r} is {reason}; name a file") from None
        raise InputError(f"{what} {shown!r} cannot be read: {reason}") from None


def read_regular_text(path: str | os.PathLike[str], what: str, *, limit: int = MAX_TEXT_BYTES) -> str:
    """:func:`read_regular_bytes` decoded as UTF-8 (an undecodable file is an :class:`InputError`)."""
    data = read_regular_bytes(path, what, limit=limit)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{what} {os.fspath(path)!r} is not UTF-8 text (byte {exc.start})") from None


def is_regular_file(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a regular file (following links), without opening it."""
    try:
        return stat.S_ISREG(Path(path).stat().st_mode)
    except OSError:
        return False


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "a special file"


#: Longest file or folder name most file systems take (bytes).
NAME_MAX = 255


def cut_with_digest(name: str, source: str, limit: int) -> str:
    """``name`` (a file-safe form of ``source``) as it is, or cut to ``limit`` characters ending in
    8 hex digits of ``source``'s sha256, so that two long labels cut alike stay apart.

    Example:
        >>> cut_with_digest("short", "short", 10), len(cut_with_digest("x" * 300, "x" * 300, 60))
        ('short', 60)
    """
    if len(name) <= limit:
        return name
    import hashlib

    return f"{name[:limit - 9]}-{hashlib.sha256(source.encode('utf-8')).hexdigest()[:8]}"


def check_output(
    path: str | os.PathLike[str], kind: str, what: str, *, inputs: Sequence[str | os.PathLike[str]] = ()
) -> Path:
    """Check, before any work, that ``path`` can be written as a ``kind`` (``"file"`` or ``"folder"``).

    Refused with one line naming ``what`` (``--out``): an empty path, a name holding a control
    character (a trailing newline from a script), a part longer than the file system takes, a
    folder where a file is wanted or the reverse, a file standing where a parent folder must be,
    a parent folder that cannot be written, and one of the command's own ``inputs``.

    Example:
        >>> check_output("/dev/null/report.json", "file", "--out")
        Traceback (most recent call last):
        ...
        fp_rank.errors.InputError: --out '/dev/null/report.json': '/dev/null' is a file, not a folder to write into
    """
    from fp_rank.errors import control_characters

    text = os.fspath(path)
    if not text.strip():
        raise InputError(f"{what} is empty; name a {kind}")
    bad = control_characters(text)
    if bad:
        raise InputError(f"{what} {text!r} holds control character(s) {', '.join(bad)}; remove them")
    target = Path(text)
    for source in inputs:
        if os.path.realpath(source) == os.path.realpath(text):
            raise InputError(f"{what} {text!r} is also an input of this command; writing it would destroy that input")
    long = [part for part in target.parts if len(part.encode("utf-8", "surrogateescape")) > NAME_MAX]
    if long:
        raise InputError(f"{what}: the name {long[0][:40]!r}... is {len(long[0])} characters; file systems take at "
                         f"most {NAME_MAX} bytes per name")
    if target.exists():
        if kind == "file" and target.is_dir():
            raise InputError(f"{what} {text!r} is a folder; name a file (e.g. {text.rstrip('/')}/out.json)")
        if kind == "folder" and not target.is_dir():
            raise InputError(f"{what} {text!r} is a file; name a folder")
    parent = target.parent if kind == "file" or not target.exists() else target
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise InputError(f"{what} {text!r}: {str(parent)!r} is a file, not a folder to write into")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"{what} {text!r}: the folder {str(parent)!r} cannot be written")
    return target


def write_atomic(path: str | os.PathLike[str], data: bytes | str) -> Path:
    """Write ``data`` to ``path`` through a temporary file beside it and one rename.

    The rename replaces whatever stood at ``path``, a symbolic link included, instead of writing
    through it: an output folder holding a link to another file never changes that file. A
    reader never sees half a file.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    tmp = target.with_name(f".{target.name[:200]}.tmp-{os.getpid()}")
    try:
        try:
            handle = open(tmp, "xb")  # exclusive: never through a link planted at the temporary name
        except FileExistsError:  # left by a killed run of this process id
            tmp.unlink()
            handle = open(tmp, "xb")
        with handle:
            handle.write(payload)
        os.replace(tmp, target)
    finally:
        if tmp.exists() or tmp.is_symlink():
            tmp.unlink()
    return target
