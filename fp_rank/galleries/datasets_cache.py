"""The datasets cache folder of a local gallery: keyed by its data files' bytes, never stale.

A folder rebuilt in place with the same names, sizes and restored mtimes (``cp -p``,
``rsync -t``) is new content: the key hashes every data file (each file's sha256 is remembered
per path, size, mtime, ctime, inode and device within the process). An unwritable cache falls
back to a temporary folder with a warning.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import tempfile
from pathlib import Path

logger = logging.getLogger(__name__)


#: sha256 of files already read in this process, by (path, size, mtime, ctime, inode, device):
#: ctime changes on every write and cannot be set back by cp -p or rsync -t.
_FILE_DIGESTS: dict[tuple[str, int, int, int, int, int], str] = {}


def _file_digest(path: Path) -> str:
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)
    digest = _FILE_DIGESTS.get(key)
    if digest is None:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        digest = _FILE_DIGESTS[key] = h.hexdigest()
    return digest


#: errno values of a cache folder that cannot be written (read-only, no permission, full, quota).
_UNWRITABLE = {errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EDQUOT, errno.ENOTDIR}


def _temporary_cache(wanted: str, exc: OSError) -> str:
    getuid = getattr(os, "getuid", None)
    folder = Path(tempfile.gettempdir()) / f"fp-rank-datasets-{getuid() if getuid else 'user'}" / Path(wanted).name
    logger.warning(
        "the datasets cache %s cannot be written (%s); using %s for this run. Set HF_DATASETS_CACHE or HF_HOME to "
        "a writable folder to keep it", wanted, exc.strerror or exc, folder,
    )
    return str(folder)


def _writable_cache(wanted: str) -> str:
    """``wanted`` if a file can be created in it, else a temporary folder (with a warning)."""
    try:
        os.makedirs(wanted, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=wanted, prefix=".probe-")
        try:
            os.write(fd, b"0")
        finally:
            os.close(fd)
            os.unlink(probe)
    except OSError as exc:
        return _temporary_cache(wanted, exc)
    return wanted


def _local_cache_dir(folder: Path) -> str:
    """A ``datasets`` cache folder specific to the current bytes of a local gallery folder.

    ``datasets`` keys its Arrow cache of a local folder by path, not by content, so a gallery
    rebuilt in place would be served stale. Keying the cache folder by every file's name and the
    sha256 of its bytes (streamed; remembered within the process while the file's size, times
    and inode stay the same) makes a rebuilt folder load fresh, even when its names, sizes and
    modification times were restored (``cp -p``, ``rsync -t``).
    """
    import datasets

    digest = hashlib.sha256()
    for file in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(f"{file.relative_to(folder).as_posix()}\t{_file_digest(file)}\n".encode())
    return str(Path(datasets.config.HF_DATASETS_CACHE) / "fp_rank_local" / digest.hexdigest()[:24])
