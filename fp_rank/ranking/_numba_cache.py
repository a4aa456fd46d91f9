"""Numba's on-disk cache for the ranking kernel, keyed on every one of the kernel's source files.

Numba keys a cached function on the one file that defines it. The kernel's entry point
(:mod:`fp_rank.ranking._numba_kernels`) compiles in functions from other files (the counting loops
of :mod:`fp_rank.ranking._numba_counts`, the per-query maths of :mod:`fp_rank.ranking.scalar`), and
the cache files live in ``__pycache__``, which ``pip`` leaves in place on an upgrade: an upgrade that
changed only those files would load the old machine code, and with it old numbers. Here the key of
every function defined in a kernel file is the hash of all the kernel files together.

Where Numba's cache machinery is not as expected, or the user replaced its locators
(``NUMBA_CACHE_LOCATOR_CLASSES``), the kernel is compiled in every process instead (correct, slower
to start).
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import Any

#: The files whose functions make up the compiled kernel (all in this folder).
KERNEL_FILES = ("_numba_cache.py", "_numba_counts.py", "_numba_kernels.py", "scalar.py")
_HERE = Path(__file__).resolve().parent


@functools.cache
def sources_digest(folder: Path = _HERE) -> str:
    """The SHA-256 of the kernel files in ``folder`` (names and contents), hex."""
    digest = hashlib.sha256()
    for name in KERNEL_FILES:
        digest.update(name.encode() + b"\0" + (folder / name).read_bytes() + b"\0")
    return digest.hexdigest()


def _is_kernel_file(py_file: str) -> bool:
    path = Path(py_file).resolve()
    return path.parent == _HERE and path.name in KERNEL_FILES


def _kernel_locator(base: type) -> type:
    """``base`` (one of Numba's file-backed locators) for the kernel files only, keyed on all of them."""

    class KernelLocator(base):  # type: ignore[misc,valid-type]
        fp_rank_kernel = True

        def get_source_stamp(self) -> Any:
            return ("fp-rank ranking kernel", sources_digest())

        @classmethod
        def from_function(cls, py_func: Any, py_file: str) -> Any:
            if not _is_kernel_file(py_file):
                return None  # anyone else's function: Numba's own locators, unchanged
            return super().from_function(py_func, py_file)

    KernelLocator.__name__ = KernelLocator.__qualname__ = f"FpRankKernel{base.__name__}"
    return KernelLocator


def _numba_class(caching: Any, name: str) -> type:
    """One of Numba's locator classes (public names since Numba 0.61, with a leading ``_`` before)."""
    found = getattr(caching, name, None) or getattr(caching, f"_{name}")
    return found  # type: ignore[no-any-return]


def install() -> bool:
    """Put the kernel's locators first in Numba's list (once per process); False where that is not
    possible, and the kernel must then not be cached."""
    try:
        from numba.core import caching, config

        impl = getattr(caching, "CacheImpl", None) or caching._CacheImpl
        bases = tuple(_numba_class(caching, name) for name in ("UserProvidedCacheLocator", "InTreeCacheLocator",
                                                                 "UserWideCacheLocator"))
        classes = impl._locator_classes
        sources_digest()  # the kernel's files are readable (not, say, inside a frozen application's archive)
    except (ImportError, AttributeError, OSError):
        return False
    if getattr(config, "CACHE_LOCATOR_CLASSES", None):
        return False  # the user chose the locators; theirs would key on one file
    if not any(getattr(c, "fp_rank_kernel", False) for c in classes):
        classes[:0] = [_kernel_locator(base) for base in bases]
    return True
