"""How ``Encoder.encode`` gets its batches: decoding and preprocessing in the calling thread, a
prefetch thread, or DataLoader worker processes (``num_workers``), and side work (leak
fingerprints) on the decoded images without decoding them twice.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch

from fp_rank.cpu_threads import WAIT_POLICY, waits_passively
from fp_rank.images.decode import (
    describe_source,
    to_rgb,
)
from fp_rank.errors import ImageDecodeError, InputError


class _SideWork:
    """Runs ``on_decoded`` in one extra thread, beside decoding and the model (Pillow releases the GIL).

    Images are handed over in groups of ``group`` (one task per group, not per image: less
    locking and fewer thread switches; never more than ``limit``), and at most ``limit`` decoded
    images wait for the thread beyond the group being filled (the decoding thread waits beyond
    that), so memory stays bounded by the batch size.
    """

    def __init__(self, fn: Callable[[int, Any], Any], limit: int, group: int = 16) -> None:
        self.fn, self.limit = fn, max(1, limit)
        self.group = max(1, min(group, self.limit))
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="fp-rank-side")
        self.buffer: list[tuple[int, Any]] = []
        self.pending: list[tuple[int, Any]] = []  # (images in the task, future)
        self.waiting = 0
        self.done: dict[int, Any] = {}

    def submit(self, i: int, rgb: Any) -> None:
        self.buffer.append((i, rgb))
        if len(self.buffer) >= self.group:
            self._flush()

    def _flush(self) -> None:
        if not self.buffer:
            return
        work, self.buffer = self.buffer, []
        self.pending.append((len(work), self.pool.submit(self._run, work)))
        self.waiting += len(work)
        while self.waiting > self.limit and self.pending:
            self._collect(*self.pending.pop(0))

    def _run(self, work: list[tuple[int, Any]]) -> dict[int, Any]:
        found = {}
        for i, rgb in work:
            value = self.fn(i, rgb)
            if value is not None:
                found[i] = value
        return found

    def _collect(self, size: int, future: Any) -> None:
        self.done.update(future.result())
        self.waiting -= size

    def results(self) -> dict[int, Any]:
        """Every value, once all are computed (the thread then stops)."""
        try:
            self._flush()
            for size, future in self.pending:
                self._collect(size, future)
            self.pending.clear()
        finally:
            self.pool.shutdown(wait=True, cancel_futures=True)
        return self.done


def check_num_workers(num_workers: int) -> int:
    """``num_workers`` as an int; InputError unless it is a whole number >= 0."""
    if isinstance(num_workers, bool) or not isinstance(num_workers, (int, np.integer)) or num_workers < 0:
        raise InputError(f"num_workers must be an integer >= 0 (0: decode in this process), got {num_workers!r}")
    return int(num_workers)


class _BatchPreparer:
    """Decodes and preprocesses one batch: ``[(i, source), ...]`` -> what the encoding loop consumes.

    Runs in the prefetch thread, or in worker processes (``num_workers > 0``: it is then copied
    into them by ``fork``, or pickled when the preprocessing allows). Unreadable images come back
    as ``{"index", "file", "reason"}`` entries (the caller raises or skips); ``on_decoded``'s
    return values come back by index.
    """

    def __init__(
        self, preprocess: Callable[[list[Any]], torch.Tensor], names: Sequence[str] | None, max_pixels: int,
        on_decoded: Callable[[int, Any], Any] | None, on_invalid: str,
        image_hook: Callable[[Any, str], Any] | None = None,
    ) -> None:
        self.preprocess, self.names, self.max_pixels = preprocess, names, max_pixels
        self.on_decoded, self.on_invalid, self.image_hook = on_decoded, on_invalid, image_hook

    def decode(self, pair: tuple[int, Any]) -> tuple[int, str, Any, str | None]:
        i, item = pair
        label = self.names[i] if self.names is not None else describe_source(item, i)
        try:
            return i, label, to_rgb(item, name=label, max_pixels=self.max_pixels), None
        except ImageDecodeError as exc:
            return i, label, None, exc.reason

    def __call__(
        self, batch: list[tuple[int, Any]], pool: ThreadPoolExecutor | None = None
    ) -> tuple[list[int], Any, list[dict[str, str]], int, dict[int, Any]]:
        images, idx, bad, infos = [], [], [], {}
        for i, label, image, reason in pool.map(self.decode, batch) if pool is not None else map(self.decode, batch):
            if reason is not None:
                bad.append({"index": str(i), "file": label, "reason": reason})
                if self.on_invalid == "error":
                    break
                continue
            if self.on_decoded is not None:  # sees the picture as decoded (before any background removal)
                info = self.on_decoded(i, image)
                if info is not None:
                    infos[i] = info
            images.append(image if self.image_hook is None else self.image_hook(image, label))
            idx.append(i)
        pixels = self.preprocess(images) if images and not (bad and self.on_invalid == "error") else None
        return idx, pixels, bad, len(batch), infos


class _BatchDataset:
    """Map-style dataset of whole batches (what ``torch.utils.data.DataLoader`` workers run)."""

    def __init__(self, items: Sequence[Any], batch_size: int, prepare: _BatchPreparer) -> None:
        if batch_size < 1:
            raise InputError(f"batch_size must be >= 1, got {batch_size}")
        self.items, self.batch_size, self.prepare = items, batch_size, prepare

    def __len__(self) -> int:
        return -(-len(self.items) // self.batch_size)

    def __getitem__(self, b: int) -> Any:
        lo = b * self.batch_size
        return self.prepare([(i, self.items[i]) for i in range(lo, min(len(self.items), lo + self.batch_size))])


def _worker_batches(
    items: Sequence[Any], batch_size: int, prepare: _BatchPreparer, num_workers: int, device: str
) -> Iterator[Any]:
    """Batches decoded and preprocessed in ``num_workers`` processes, in input order.

    Each worker runs one batch at a time with one torch thread; on CUDA the batches arrive in
    pinned memory so the copy to the GPU does not block. Batch composition, and so every
    embedding, is the same as in one process.
    """
    from torch.utils.data import DataLoader

    _hint_wait_policy(device)
    loader = DataLoader(
        _BatchDataset(items, batch_size, prepare), batch_size=None, shuffle=False, num_workers=num_workers,
        pin_memory=str(device).startswith("cuda"), prefetch_factor=2, collate_fn=_identity,
    )
    yield from loader


_HINTED: list[bool] = []


def _hint_wait_policy(device: str) -> None:
    """Once per process: where the model's idle CPU threads spin, say how to stop it (see :mod:`fp_rank.cpu_threads`)."""
    if _HINTED or str(device).startswith("cuda") or waits_passively() or torch.get_num_threads() < 2:
        return
    _HINTED.append(True)
    logging.getLogger(__name__).info(
        "worker processes decode on the cores that torch's idle threads keep busy while they wait; set %s=PASSIVE "
        "before importing torch (the fp-rank command does) for more images per second", WAIT_POLICY,
    )


def _identity(batch: Any) -> Any:
    return batch


def _default_decode_workers(device: str) -> int:
    if not str(device).startswith("cuda"):
        return 1
    return max(1, min(8, (os.cpu_count() or 2) - 1))


def _progress(total: int, desc: str, enabled: bool) -> Any:
    if not enabled or total == 0:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="img", leave=False)
