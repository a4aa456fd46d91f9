"""Data-parallel encoding across processes launched by ``torchrun`` or ``accelerate launch``.

Encoding images is the only expensive step of an evaluation, so it is the only one sharded:

* **sharded**: the images to encode (gallery, reference and holdout splits on a cache miss, and
  the generated images). They are cut into the same batches a single process would use, and rank
  ``r`` of ``W`` encodes batches ``r, r + W, r + 2W, ...`` (:func:`shard_indices`); every model
  call therefore sees exactly the batch it would see in one process, so the embeddings are the same.
* **gathered**: the embeddings (and which images were skipped as unreadable) go to every rank
  with ``all_gather``, streamed in pieces of at most 16 MB per rank straight into their rows of
  the result, so a rank holds its own shard, the result and one piece per rank, never a padded
  or reordered copy of everything. Ranking, statistics and the report are cheap and run
  identically on every rank.
* **shared out**: per-image checks that are cheap to send but not to compute (content hashes for
  deduplication, the leakage check) run on a contiguous share of the images per rank; the small
  results are gathered (:func:`map_shards`).
* **cached**: each rank reads the embedding cache; the split is taken from the cache only if
  every rank found it (a collective check, so ranks never disagree about what to encode).
  Only rank 0 writes the real splits' entries and output files.
* **resumable**: the generated images are encoded in chunks of whole batches (the embed stage,
  :mod:`fp_rank.evaluation.embed`); rank ``r`` takes chunks ``r, r + W, ...``, writes each chunk's
  cache entry as soon as it is encoded and holds only its own chunks until the final gather, so a
  killed run restarts at the first chunk not yet stored, with identical numbers.
* **checked**: before encoding, the ranks compare the count and a digest of their generated
  images (:func:`verify_same_inputs`) and all fail with one clear message if they differ.

Launch (the process group is created from the launcher's environment on first use)::

    torchrun --nproc_per_node 8 -m fp_rank evaluate --gallery ... --generated ... --out out/
    accelerate launch --num_processes 8 -m fp_rank evaluate --gallery ... --generated ... --out out/

Nothing here runs when ``WORLD_SIZE`` is unset or 1: a plain process encodes everything itself.
This module holds the primitives only (who does what, and the gathers); it knows no encoder and
no cache: the embed stage wraps its encoding in them.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from fp_rank.errors import EncoderError, FpRankError, InputError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Context:
    """Where this process stands in a (possibly single-process) run.

    Attributes:
        rank: this process's rank (0 in a plain run).
        world_size: number of processes (1 in a plain run).
        local_rank: rank within this machine (selects the GPU).
        backend: the ``torch.distributed`` backend, or None in a plain run.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def is_main(self) -> bool:
        """True on the process that writes caches, files and messages (rank 0)."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        """True when work is shared between several processes."""
        return self.world_size > 1

    def describe(self) -> dict[str, Any]:
        """What a report records about the run's processes."""
        return {"world_size": self.world_size, "backend": self.backend}


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise InputError(f"environment variable {name}={value!r} is not an integer (set by torchrun/accelerate)") from None


def context() -> Context:
    """The current context: the initialised process group's, else a plain single process."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return Context(
            rank=dist.get_rank(),
            world_size=dist.get_world_size(),
            local_rank=_env_int("LOCAL_RANK", 0),
            backend=str(dist.get_backend()),
        )
    return Context()


def setup(device: str | None = None, backend: str | None = None) -> tuple[Context, str | None]:
    """Join the launcher's process group (if any) and pick this rank's device.

    Under ``torchrun``/``accelerate launch`` (``WORLD_SIZE`` > 1 in the environment) this
    initialises ``torch.distributed`` once per process: NCCL when this rank encodes on a CUDA
    device, gloo otherwise. Each rank then encodes on ``cuda:<LOCAL_RANK>`` when the device is
    CUDA without an index.

    Args:
        device: the device the caller asked for (None: CUDA when available, else CPU).
        backend: force a backend (``"gloo"`` or ``"nccl"``).

    Returns:
        The :class:`Context` and the device this rank should use (None keeps the default).

    Raises:
        InputError: the launcher's environment is inconsistent.
    """
    import torch.distributed as dist

    world_size = _env_int("WORLD_SIZE", 1)
    if world_size <= 1 or not dist.is_available():
        ctx = context()
        return ctx, _rank_device(device, ctx)
    if not dist.is_initialized():
        rank = _env_int("RANK", -1)
        if rank < 0 or rank >= world_size:
            raise InputError(f"RANK={rank} is not in 0..{world_size - 1}; launch with torchrun or accelerate launch")
        local_rank = _env_int("LOCAL_RANK", 0)
        wants_cuda = torch.cuda.is_available() and (device is None or str(device).startswith("cuda"))
        chosen = backend or ("nccl" if wants_cuda else "gloo")
        if chosen == "nccl":
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend=chosen)
        logger.info("joined process group: rank %d of %d (%s)", rank, world_size, chosen)
    ctx = context()
    return ctx, _rank_device(device, ctx)


def _rank_device(device: str | None, ctx: Context) -> str | None:
    if not ctx.active:
        return device
    if device is None and torch.cuda.is_available():
        return f"cuda:{ctx.local_rank}"
    if device is not None and str(device) == "cuda":
        return f"cuda:{ctx.local_rank}"
    return device


def is_main_process() -> bool:
    """True unless this process is a rank other than 0 of an initialised process group."""
    return context().is_main


def _collective_device(ctx: Context) -> torch.device:
    if ctx.backend == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_true(flag: bool) -> bool:
    """True when ``flag`` is True on every rank (a plain process returns ``flag``)."""
    ctx = context()
    if not ctx.active:
        return bool(flag)
    import torch.distributed as dist

    value = torch.tensor([1 if flag else 0], dtype=torch.int64, device=_collective_device(ctx))
    dist.all_reduce(value, op=dist.ReduceOp.MIN)
    return bool(value.item())


class Shard(Sequence[Any]):
    """The items of one rank, read lazily from the full list (no copy of the images)."""

    def __init__(self, items: Sequence[Any], indices: np.ndarray) -> None:
        self._items = items
        self.indices = indices

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self._items[int(j)] for j in self.indices[i]]
        return self._items[int(self.indices[i])]

    def __iter__(self) -> Iterator[Any]:
        for j in self.indices:
            yield self._items[int(j)]


def shard_indices(n: int, batch_size: int, rank: int, world_size: int) -> np.ndarray:
    """Indices encoded by ``rank``: whole batches ``rank, rank + W, ...`` of the single-process run.

    Example:
        >>> shard_indices(7, 2, 0, 2).tolist(), shard_indices(7, 2, 1, 2).tolist()
        ([0, 1, 4, 5], [2, 3, 6])
    """
    n_batches = math.ceil(n / batch_size) if n else 0
    mine = [np.arange(b * batch_size, min(n, (b + 1) * batch_size)) for b in range(rank, n_batches, world_size)]
    return np.concatenate(mine).astype(np.int64) if mine else np.zeros(0, dtype=np.int64)


def _error_record(exc: BaseException, rank: int) -> dict[str, Any]:
    """A picklable description of an exception, rebuilt by :func:`_rebuild_error` on other ranks."""
    return {
        "rank": rank,
        "kind": type(exc).__name__,
        "message": str(exc),
        "item": getattr(exc, "item", None),
        "reason": getattr(exc, "reason", None),
    }


def _rebuild_error(record: dict[str, Any]) -> BaseException:
    from fp_rank import errors

    kind, message = record["kind"], record["message"]
    if kind == "ImageDecodeError" and record["item"] is not None:
        return errors.ImageDecodeError(str(record["item"]), str(record["reason"]))
    cls = getattr(errors, kind, None)
    if isinstance(cls, type) and issubclass(cls, FpRankError) and kind != "ImageDecodeError":
        return cls(message)
    return RuntimeError(f"rank {record['rank']} failed while encoding: {kind}: {message}")


def map_shards(fn: Callable[[Sequence[Any]], Sequence[Any]], items: Sequence[Any]) -> list[Any]:
    """``list(fn(items))``, with each rank applying ``fn`` to a contiguous share of the items.

    For per-item work that is cheap to send but costly to compute (content hashes, leakage
    checks): every rank returns the full list, in input order. ``fn`` must return one small,
    picklable result per item. In a plain process this is ``list(fn(items))``.

    Args:
        fn: maps a sequence of items to one result per item.
        items: the items (indexable).

    Returns:
        One result per item, in order.
    """
    ctx = context()
    if not ctx.active:
        return list(fn(items))
    import torch.distributed as dist

    edges = np.linspace(0, len(items), ctx.world_size + 1).astype(np.int64)
    error: BaseException | None = None
    part: list[Any] = []
    try:
        part = list(fn(Shard(items, np.arange(edges[ctx.rank], edges[ctx.rank + 1]))))
    except Exception as exc:  # raised on every rank below
        error = exc
    gathered: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(gathered, {"error": _error_record(error, ctx.rank) if error else None, "part": part})
    if error is not None:
        raise error
    for entry in gathered:
        if entry["error"] is not None:
            raise _rebuild_error(entry["error"])
    return [x for entry in gathered for x in entry["part"]]


def sum_over_ranks(value: int) -> int:
    """``value`` summed over every rank (a plain process returns it)."""
    ctx = context()
    if not ctx.active:
        return int(value)
    import torch.distributed as dist

    totals: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(totals, int(value))
    return int(sum(totals))


def gather_encoded(
    kept: np.ndarray, embeddings: np.ndarray, skipped: list[dict[str, Any]], error: BaseException | None
) -> tuple[np.ndarray, np.ndarray, list[dict[str, Any]]]:
    """Every rank's encoded rows (indices already global) to every rank, in input order.

    Args:
        kept: this rank's item indices, one per row of ``embeddings``.
        embeddings: this rank's ``(n, D)`` rows.
        skipped: this rank's unreadable items (``{"index", ...}``, global indices).
        error: what this rank raised while encoding (None when it finished); an error on any
            rank is raised on every rank, so no rank waits for the others forever.

    Returns:
        ``(kept, embeddings, skipped)`` of all ranks, sorted by item index.
    """
    import torch.distributed as dist

    ctx = context()
    emb = np.ascontiguousarray(embeddings, dtype=np.float32) if error is None else np.zeros((0, 0), dtype=np.float32)
    if error is not None:
        kept, skipped = np.zeros(0, dtype=np.int64), []
    meta: list[Any] = [None] * ctx.world_size
    record = _error_record(error, ctx.rank) if error is not None else None
    dist.all_gather_object(meta, {"error": record, "kept": kept, "skipped": skipped, "shape": emb.shape})
    if error is not None:
        raise error
    for entry in meta:
        if entry["error"] is not None:
            raise _rebuild_error(entry["error"])
    dims = sorted({int(m["shape"][1]) for m in meta if m["shape"][0] > 0})
    if len(dims) > 1:
        raise EncoderError(f"the ranks produced embeddings of different sizes {dims}")
    dim = dims[0] if dims else 0
    longest = max(int(m["shape"][0]) for m in meta)
    all_kept = np.concatenate([m["kept"] for m in meta]).astype(np.int64)
    order = np.argsort(all_kept, kind="stable")
    if dim == 0 or longest == 0:
        all_emb = np.zeros((0, 0), dtype=np.float32)
    else:
        all_emb = _gather_rows(ctx, emb, [int(m["shape"][0]) for m in meta], order, dim, longest)
    all_skipped = sorted((s for m in meta for s in m["skipped"]), key=lambda s: int(s["index"]))
    return all_kept[order], all_emb, all_skipped


#: Float32 values per rank and round of the streamed gather (16 MB).
_GATHER_PIECE_ELEMENTS = 1 << 22


def _gather_rows(ctx: Context, emb: np.ndarray, counts: list[int], order: np.ndarray, dim: int,
                 longest: int) -> np.ndarray:
    """Every rank's embedding rows, in input order, streamed piece by piece into one array.

    Each round moves at most ``_GATHER_PIECE_ELEMENTS`` values per rank, written straight to
    their final rows: besides its own shard and the result, a rank holds one piece per rank
    (the full result is never held twice, nor a padded copy of it).
    """
    import torch.distributed as dist

    dest = np.empty(len(order), dtype=np.int64)
    dest[order] = np.arange(len(order))  # gathered row i (rank-major) goes to row dest[i]
    offsets = np.concatenate([[0], np.cumsum(counts)])
    out = np.empty((len(order), dim), dtype=np.float32)
    device = _collective_device(ctx)
    piece = max(1, _GATHER_PIECE_ELEMENTS // dim)
    send = torch.zeros((piece, dim), dtype=torch.float32, device=device)
    recv = [torch.empty_like(send) for _ in range(ctx.world_size)]
    for p0 in range(0, longest, piece):
        mine = max(0, min(piece, emb.shape[0] - p0))
        if mine:
            send[:mine] = torch.from_numpy(emb[p0 : p0 + mine]).to(device)
        dist.all_gather(recv, send)
        for r, buf in enumerate(recv):
            n_r = max(0, min(piece, counts[r] - p0))
            if n_r:
                out[dest[offsets[r] + p0 : offsets[r] + p0 + n_r]] = buf[:n_r].cpu().numpy()
    return out


def verify_same_inputs(what: str, count: int, fingerprint: str) -> None:
    """Fail on every rank, before any encoding, unless every rank holds the same inputs.

    Each rank reads its inputs itself (its own copy of the manifest, folder or list), so a rank
    that sees a different set would silently mix results. In a plain process this does nothing.

    Args:
        what: what the inputs are, for the message (e.g. "generated images").
        count: how many this rank holds.
        fingerprint: a digest of them (names, labels, ...), equal on every rank when they agree.

    Raises:
        InputError: the ranks disagree (on every rank, naming each rank's count and digest).
    """
    ctx = context()
    if not ctx.active:
        return
    import torch.distributed as dist

    seen: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(seen, (int(count), str(fingerprint)))
    if len(set(seen)) > 1:
        detail = ", ".join(f"rank {r}: {c} ({f[:12]})" for r, (c, f) in enumerate(seen))
        raise InputError(
            f"the ranks hold different {what} ({detail}); every rank must read the same inputs (same files, "
            "manifest and arguments, on a filesystem every rank sees)"
        )
