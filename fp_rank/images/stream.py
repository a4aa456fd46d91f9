"""The decode stream: image sources in, decoded batches out, in input order, memory bounded by the batch.

:class:`DecodeStream` is the one place images are decoded for encoding. Each image is decoded
once; what needs the decoded picture reads it there:

* a ``transform`` turns a batch's pictures into what its consumer takes (the encoder's model input,
  with background removal first when it applies);
* *taps* are small pure functions of one decoded picture (the leakage guard's fingerprint); their
  values come back with the stream (:attr:`DecodeStream.tapped`), so another reader of the pictures
  shares this decode instead of decoding again.

Batches are prepared one ahead in a background thread (or in worker processes, ``processes > 0``);
taps run in one extra thread beside the decoding. Nothing here knows what an encoder, a cache or
a rank is: those wrap the stream.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from fp_rank.cpu_threads import WAIT_POLICY, waits_passively
from fp_rank.errors import ImageDecodeError, InputError
from fp_rank.images.decode import DEFAULT_MAX_PIXELS, describe_source, iter_batches, to_rgb
from fp_rank.images.prefetch import Prefetcher

#: A tap: one decoded RGB picture -> a small, picklable value.
Tap = Callable[[Any], Any]
#: A transform: the decoded pictures of a batch and their labels -> what the consumer takes.
Transform = Callable[[list[Any], list[str]], Any]


@dataclass
class DecodedBatch:
    """One batch of the stream.

    Attributes:
        positions: the positions (in the stream's items) of the pictures that decoded.
        prepared: ``transform`` of those pictures (None when none decoded, or after an error
            under ``on_invalid="error"``); the pictures themselves when there is no transform.
        bad: the unreadable items: ``{"index", "file", "reason"}``.
        size: the number of items the batch covered.
        taps: tap name -> position -> value, for taps that ran where the batch was decoded.
    """

    positions: list[int]
    prepared: Any
    bad: list[dict[str, str]]
    size: int
    taps: dict[str, dict[int, Any]] = field(default_factory=dict)


def check_num_workers(num_workers: Any) -> int:
    """``num_workers`` as an int; InputError unless it is a whole number >= 0."""
    if isinstance(num_workers, bool) or not hasattr(num_workers, "__index__") or int(num_workers) < 0:
        raise InputError(f"num_workers must be an integer >= 0 (0: decode in this process), got {num_workers!r}")
    return int(num_workers)


class DecodeStream:
    """Decoded batches of ``items`` (see the module docstring).

    Args:
        items: image sources (paths, bytes, PIL images, arrays, ``{'bytes','path'}`` dicts).
        batch_size: items per batch.
        names: names of the items for messages (default: their paths or positions).
        transform: applied to each batch's decoded pictures (see :data:`Transform`).
        taps: name -> :data:`Tap`, run on every decoded picture, before the transform.
        on_invalid: ``"error"`` (a batch stops at its first unreadable item; the consumer raises)
            or ``"skip"`` (unreadable items are listed in ``bad`` and the rest go on).
        max_pixels: images larger than this are refused before decoding.
        threads: threads decoding the pictures of one batch (Pillow releases the GIL).
        prefetch: batches prepared ahead in a background thread (0: in the consumer's thread).
        processes: worker processes preparing whole batches (``torch.utils.data.DataLoader``);
            0 prepares them in this process. The batches do not depend on it.
        pin_memory: with processes, hand tensors over in pinned memory (for a CUDA consumer).
        low_priority: run the background thread at a lower priority (the consumer uses the cores).
    """

    def __init__(
        self, items: Sequence[Any], *, batch_size: int, names: Sequence[str] | None = None,
        transform: Transform | None = None, taps: Mapping[str, Tap] | None = None, on_invalid: str = "error",
        max_pixels: int = DEFAULT_MAX_PIXELS, threads: int = 1, prefetch: int = 1, processes: int = 0,
        pin_memory: bool = False, low_priority: bool = False,
    ) -> None:
        if on_invalid not in ("error", "skip"):
            raise InputError(f"on_invalid must be 'error' or 'skip', got {on_invalid!r}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise InputError(f"batch_size must be >= 1, got {batch_size!r}")
        self.items, self.batch_size, self.processes = items, batch_size, check_num_workers(processes)
        self.names = names
        self.threads, self.prefetch, self.pin_memory, self.low_priority = threads, prefetch, pin_memory, low_priority
        self.taps = dict(taps or {})
        #: tap name -> position -> value; complete once the stream has been read to its end.
        self.tapped: dict[str, dict[int, Any]] = {name: {} for name in self.taps}
        side = self.taps and self.processes == 0
        self._side = _SideWork(self.taps, 2 * batch_size) if side else None
        self._prepare = _BatchPreparer(transform, names, max_pixels, self.taps, on_invalid, self._side)

    def __len__(self) -> int:
        return len(self.items)

    def name_of(self, i: int) -> str:
        """How messages name item ``i``."""
        return self.names[i] if self.names is not None else describe_source(self.items[i], i)

    def __iter__(self) -> Iterator[DecodedBatch]:
        if self.processes > 0 and len(self.items):
            source: Iterator[DecodedBatch] = _worker_batches(self, self.processes)
            depth = 0  # the worker processes already run ahead
        else:
            source, depth = self._in_process(), max(0, int(self.prefetch))
        try:
            with Prefetcher(source, depth=depth, low_priority=self.low_priority) as batches:
                for batch in batches:
                    for name, values in batch.taps.items():
                        self.tapped[name].update(values)
                    yield batch
            if self._side is not None:
                for name, values in self._side.results().items():
                    self.tapped[name].update(values)
        finally:
            if self._side is not None:
                self._side.stop()

    def _in_process(self) -> Iterator[DecodedBatch]:
        pool = ThreadPoolExecutor(self.threads, thread_name_prefix="fp-rank-decode") if self.threads > 1 else None
        try:
            for batch in iter_batches(self.items, self.batch_size):
                yield self._prepare(batch, pool)
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)


class _BatchPreparer:
    """Decodes one batch ``[(i, source), ...]`` and applies the taps and the transform.

    Runs in the prefetch thread, or in worker processes (copied into them by ``fork``, or pickled
    when its parts allow). With a side thread, taps are handed to it; otherwise they run here and
    their values travel with the batch.
    """

    def __init__(
        self, transform: Transform | None, names: Sequence[str] | None, max_pixels: int, taps: Mapping[str, Tap],
        on_invalid: str, side: _SideWork | None,
    ) -> None:
        self.transform, self.names, self.max_pixels = transform, names, max_pixels
        self.taps, self.on_invalid, self.side = taps, on_invalid, side

    def decode(self, pair: tuple[int, Any]) -> tuple[int, str, Any, str | None]:
        i, item = pair
        label = self.names[i] if self.names is not None else describe_source(item, i)
        try:
            return i, label, to_rgb(item, name=label, max_pixels=self.max_pixels), None
        except ImageDecodeError as exc:
            return i, label, None, exc.reason

    def __call__(self, batch: list[tuple[int, Any]], pool: ThreadPoolExecutor | None = None) -> DecodedBatch:
        pictures, labels, positions, bad = [], [], [], []
        tapped: dict[str, dict[int, Any]] = {name: {} for name in self.taps} if self.side is None else {}
        for i, label, picture, reason in pool.map(self.decode, batch) if pool is not None else map(self.decode, batch):
            if reason is not None:
                bad.append({"index": str(i), "file": label, "reason": reason})
                if self.on_invalid == "error":
                    break
                continue
            if self.side is not None:
                self.side.submit(i, picture)
            else:
                for name, tap in self.taps.items():
                    tapped[name][i] = tap(picture)
            pictures.append(picture)
            labels.append(label)
            positions.append(i)
        stopped = bool(bad) and self.on_invalid == "error"
        if stopped or not pictures:
            prepared = None
        else:
            prepared = self.transform(pictures, labels) if self.transform is not None else pictures
        return DecodedBatch(positions, prepared, bad, len(batch), tapped)


class _SideWork:
    """Runs the taps in one extra thread, beside decoding and the consumer (Pillow releases the GIL).

    Pictures are handed over in groups of ``group`` (one task per group: less locking and fewer
    thread switches), and at most ``limit`` decoded pictures wait for the thread beyond the group
    being filled (the decoding thread waits beyond that), so memory stays bounded by the batch.
    """

    def __init__(self, taps: Mapping[str, Tap], limit: int, group: int = 16) -> None:
        self.taps, self.limit = dict(taps), max(1, limit)
        self.group = max(1, min(group, self.limit))
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="fp-rank-side")
        self.buffer: list[tuple[int, Any]] = []
        self.pending: list[tuple[int, Any]] = []  # (pictures in the task, future)
        self.waiting = 0
        self.done: dict[str, dict[int, Any]] = {name: {} for name in self.taps}

    def submit(self, i: int, picture: Any) -> None:
        self.buffer.append((i, picture))
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

    def _run(self, work: list[tuple[int, Any]]) -> dict[str, dict[int, Any]]:
        return {name: {i: tap(picture) for i, picture in work} for name, tap in self.taps.items()}

    def _collect(self, size: int, future: Any) -> None:
        for name, values in future.result().items():
            self.done[name].update(values)
        self.waiting -= size

    def results(self) -> dict[str, dict[int, Any]]:
        """Every value, once all are computed."""
        self._flush()
        for size, future in self.pending:
            self._collect(size, future)
        self.pending.clear()
        return self.done

    def stop(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


class _BatchDataset:
    """Map-style dataset of whole batches (what ``torch.utils.data.DataLoader`` workers run)."""

    def __init__(self, items: Sequence[Any], batch_size: int, prepare: _BatchPreparer) -> None:
        self.items, self.batch_size, self.prepare = items, batch_size, prepare

    def __len__(self) -> int:
        return -(-len(self.items) // self.batch_size)

    def __getitem__(self, b: int) -> DecodedBatch:
        lo = b * self.batch_size
        return self.prepare([(i, self.items[i]) for i in range(lo, min(len(self.items), lo + self.batch_size))])


def _worker_batches(stream: DecodeStream, processes: int) -> Iterator[DecodedBatch]:
    """Batches prepared in ``processes`` worker processes, in input order.

    Each worker prepares one batch at a time with one torch thread; with ``pin_memory`` the
    batches arrive in pinned memory so a copy to the GPU does not block. Batch composition, and
    so everything computed from it, is the same as in one process.
    """
    from torch.utils.data import DataLoader

    _hint_wait_policy(on_gpu=stream.pin_memory)
    loader = DataLoader(
        _BatchDataset(stream.items, stream.batch_size, stream._prepare), batch_size=None, shuffle=False,
        num_workers=processes, pin_memory=stream.pin_memory, prefetch_factor=2, collate_fn=_identity,
    )
    done = 0
    iterator = iter(loader)
    while True:
        try:
            batch = next(iterator)
        except StopIteration:
            return
        except RuntimeError as exc:
            if "DataLoader worker" not in str(exc):
                raise
            # a worker killed by a signal (a decoder crash, the memory limit) names no file: name the
            # batches it may have held, and the way to find the one
            first = done * stream.batch_size
            last = min(len(stream.items), (done + processes * 2) * stream.batch_size)
            names = [stream.names[i] if stream.names is not None else describe_source(stream.items[i], i)
                     for i in range(first, last)]
            shown = ", ".join(names[:8]) + (f", ... ({len(names)} files)" if len(names) > 8 else "")
            raise ImageDecodeError(
                names[0] if len(names) == 1 else f"one of {shown}",
                f"a decoding worker process died ({str(exc).splitlines()[0]}); rerun with num_workers=0 (CLI: "
                "--num-workers 0) to decode in this process and name the file",
            ) from None
        done += 1
        yield batch


_HINTED: list[bool] = []


def _hint_wait_policy(on_gpu: bool) -> None:
    """Once per process: where a CPU model's idle threads spin, say how to stop it (see :mod:`fp_rank.cpu_threads`)."""
    import torch

    if _HINTED or on_gpu or waits_passively() or torch.get_num_threads() < 2:
        return
    _HINTED.append(True)
    logging.getLogger(__name__).info(
        "worker processes decode on the cores that torch's idle threads keep busy while they wait; set %s=PASSIVE "
        "before importing torch (the fp-rank command does) for more images per second", WAIT_POLICY,
    )


def _identity(batch: Any) -> Any:
    return batch


def default_decode_threads(on_gpu: bool) -> int:
    """Threads decoding one batch: 1 when the model runs on the CPU (it uses the cores), more beside a GPU."""
    if not on_gpu:
        return 1
    return max(1, min(8, (os.cpu_count() or 2) - 1))
