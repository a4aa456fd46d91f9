"""Helpers shared by the Space tests: image batches on disk, crafted files, a launched app."""

from __future__ import annotations

import socket
import struct
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import fp_rank
from fp_rank.demo.run import DEMO_ENCODER

__all__ = ["DEMO_ENCODER", "expected_report", "free_port", "make_space", "pick", "png_header_only", "running_app", "save_records"]


def pick(records: Iterable[dict[str, Any]], identity: str, method: str, count: int) -> list[dict[str, Any]]:
    """The first ``count`` demo records of one identity and method."""
    return [r for r in records if r["identity"] == identity and r["method"] == method][:count]


def save_records(records: Iterable[dict[str, Any]], folder: Path) -> list[Path]:
    """Save demo records as PNG files named after their ``file`` field (slashes become '_')."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for rec in records:
        path = folder / rec["file"].replace("/", "_")
        rec["image"].save(path)
        paths.append(path)
    return paths


def png_chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk with its CRC."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG signature and IHDR claiming ``width`` x ``height`` RGB pixels, with no pixel data.

    Reading its size needs only the header; decoding it would fail (there is no IDAT chunk).
    """
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IEND", b"")


def expected_report(
    paths: list[Path], identities: list[str] | str, gallery_dir: Path, methods: Any = None, **options: Any
) -> fp_rank.Report:
    """What :func:`fp_rank.evaluate` gives for these files directly (no app in between)."""
    return fp_rank.evaluate(
        [str(p) for p in paths],
        identities,
        gallery=str(gallery_dir),
        encoder=DEMO_ENCODER,
        methods=methods,
        files=[p.name for p in paths],
        progress=False,
        **options,
    )


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_space(gallery_dir: Path, work_root: Path, **kwargs: Any) -> Any:
    """A ScoringSpace on the test session's demo gallery and the demo encoder."""
    from space.service import ScoringSpace
    from space.settings import DEMO_GALLERY

    options: dict[str, Any] = {"n_boot": 200, "work_root": work_root}
    options.update(kwargs)
    return ScoringSpace({DEMO_GALLERY: str(gallery_dir)}, {DEMO_ENCODER: DEMO_ENCODER}, **options)


@contextmanager
def running_app(space: Any) -> Iterator[str]:
    """Launch the page on 127.0.0.1 (free port, not blocking); yields its URL; closes it after."""
    from space.page import build_app, launch

    demo = build_app(space)
    launch(demo, server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True)
    try:
        yield demo.local_url
    finally:
        demo.close()
