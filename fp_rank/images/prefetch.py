"""Preparing the next batches in a background thread while the model runs on the current one.

:class:`Prefetcher` runs an iterator (decode and preprocess, in
:meth:`fp_rank.encoding.Encoder.encode`) a bounded number of items ahead of its consumer, so
memory stays bounded by the batch size.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterator
from typing import Any, TypeVar

from fp_rank.errors import InputError

T = TypeVar("T")

_ITEM, _END, _ERROR = 0, 1, 2


class Prefetcher(Iterator[T]):
    """Run an iterator in a background thread, ``depth`` items ahead of the consumer.

    Decoding and preprocessing (Pillow and torch release the GIL) of the next batch then overlap
    with the model's forward pass on the current one. The queue is bounded, so at most
    ``depth + 2`` batches exist at once (one consumed, ``depth`` queued, one being prepared):
    memory stays bounded by the batch size. An exception raised while preparing a batch is
    re-raised in the consumer, at that batch. Use it as a context manager (or call
    :meth:`close`) so the thread stops when the consumer stops early.

    Args:
        source: the iterator to run ahead (consumed only by the background thread).
        depth: how many prepared items may wait; 0 runs everything in the caller's thread.
        low_priority: run the thread at a lower scheduling priority (Linux ``nice`` +10), so
            that when every core runs the model (CPU inference) its threads are not held up
            by the preparation of the next batch; it still runs whenever a core is free.

    Example:
        >>> with Prefetcher(iter(range(5)), depth=2) as items:
        ...     list(items)
        [0, 1, 2, 3, 4]
    """

    def __init__(self, source: Iterator[T], depth: int = 1, *, low_priority: bool = False) -> None:
        if depth < 0:
            raise InputError(f"prefetch depth must be >= 0, got {depth}")
        self._source = source
        self._depth = depth
        self._low_priority = low_priority
        self._done = False
        self._thread: threading.Thread | None = None
        if depth > 0:
            self._queue: queue.Queue[tuple[int, Any]] = queue.Queue(maxsize=depth)
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._work, name="fp-rank-prefetch", daemon=True)
            self._thread.start()

    def _put(self, entry: tuple[int, Any]) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(entry, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def _work(self) -> None:
        if self._low_priority:
            _lower_thread_priority()
        try:
            for item in self._source:
                if not self._put((_ITEM, item)):
                    return
        except BaseException as exc:  # handed to the consumer, who re-raises it
            self._put((_ERROR, exc))
            return
        finally:
            _close(self._source)  # runs the source's own clean-up, in the thread that ran it
        self._put((_END, None))

    def __iter__(self) -> Prefetcher[T]:
        return self

    def __next__(self) -> T:
        if self._done:
            raise StopIteration
        if self._thread is None:
            try:
                return next(self._source)
            except StopIteration:
                self._done = True
                raise
        kind, value = self._queue.get()
        if kind == _ITEM:
            return value  # type: ignore[no-any-return]
        self.close()
        if kind == _ERROR:
            raise value
        raise StopIteration

    def close(self) -> None:
        """Stop the background thread (waiting for the item it is preparing, if any)."""
        self._done = True
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
        elif self._depth == 0:
            _close(self._source)

    def __enter__(self) -> Prefetcher[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _close(source: Any) -> None:
    close = getattr(source, "close", None)
    if callable(close):
        close()


def _lower_thread_priority() -> None:
    """Nice +10 for the calling thread (Linux schedules threads separately); no-op elsewhere."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
    except (AttributeError, OSError):
        pass
