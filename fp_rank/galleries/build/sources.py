"""Reading a gallery source on disk: index paths, image readers and image checks.

Helpers a source adapter uses to turn the files of a dataset, in its own layout, into
:class:`~fp_rank.galleries.build.spec.Candidate` images.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import io
import os
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath

from PIL import Image as PILImage

from fp_rank.errors import BuilderError
from fp_rank.file_access import read_regular_raw


def relative_source_path(raw: str, *, listed_in: str) -> str:
    """Normalise a path listed in a source index file to a posix path inside the source root.

    Args:
        raw: The path as listed (``images/001.X/x.jpg``).
        listed_in: The index file that lists it, for the error message.

    Raises:
        BuilderError: If the path is empty, absolute or climbs out of the root with ``..``.
    """
    text = raw.strip().replace("\\", "/")
    path = PurePosixPath(text)
    if not text or path.is_absolute() or ".." in path.parts:
        raise BuilderError(
            f"{listed_in} lists the path {raw!r}; paths must be relative to the source folder "
            "and stay inside it"
        )
    return path.as_posix()


#: Whether source files may be symbolic links that lead out of the source folder (off: a link out
#: would embed, and push, files that are not part of the dataset).
_FOLLOW_SYMLINKS: contextvars.ContextVar[bool] = contextvars.ContextVar("fp_rank_follow_symlinks", default=False)


@contextlib.contextmanager
def following_symlinks(enabled: bool = True) -> Iterator[None]:
    """Within this block, builders read source files through links that leave the source folder.

    Example:
        >>> with following_symlinks():
        ...     pass  # cub.build("CUB_200_2011", "galleries/cub") would follow links out
    """
    token = _FOLLOW_SYMLINKS.set(bool(enabled))
    try:
        yield
    finally:
        _FOLLOW_SYMLINKS.reset(token)


def _read_file(path: Path) -> bytes:
    return read_regular_raw(path)  # a FIFO or device among the sources is refused, never read until it ends


def file_reader(path: Path, root: Path | None = None) -> Callable[[], bytes]:
    """A ``read`` callable for :class:`Candidate` that returns the bytes of ``path``.

    Args:
        path: The source file.
        root: The source folder. ``path``, with its links resolved, must lie inside it unless
            the build runs within :func:`following_symlinks` (``--follow-symlinks``).

    Raises:
        BuilderError: ``path`` leads out of ``root`` through a symbolic link.
    """
    if root is not None and not _FOLLOW_SYMLINKS.get():
        real, base = os.path.realpath(path), os.path.realpath(root)
        if os.path.commonpath([real, base]) != base:
            raise BuilderError(
                f"{path} is a link to {real}, outside the source folder {root}; such files are not "
                "read unless you pass --follow-symlinks (Python: within gallery_builders' "
                "following_symlinks())"
            )
    return functools.partial(_read_file, path)


def bytes_reader(data: bytes) -> Callable[[], bytes]:
    """A ``read`` callable for :class:`Candidate` whose bytes are already in memory."""
    return functools.partial(bytes, data)


def image_problem(data: bytes) -> str | None:
    """Decode ``data`` fully; return why it is not a readable image, or ``None`` if it is."""
    try:
        with PILImage.open(io.BytesIO(data)) as image:
            image.load()
    # Pillow raises many unrelated types for a broken file (OSError, SyntaxError, ValueError,
    # struct.error, DecompressionBombError...): every one of them means "unreadable".
    except Exception as exc:  # noqa: BLE001
        return f"{type(exc).__name__}: {exc}"
    return None


def require_file(path: Path, *, hint: str) -> Path:
    """Return ``path`` if it is a file, else raise BuilderError naming it and saying what to do."""
    if not path.is_file():
        raise BuilderError(f"missing file {path}: {hint}")
    return path
