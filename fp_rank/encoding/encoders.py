"""Encoders: images in, L2-normalised embeddings out, with their identity recorded.

Options (device, dtype, preprocessing) are resolved in :mod:`fp_rank.encoding.options`; batches come
from :mod:`fp_rank.encoding.batches` (threads or worker processes).

``load_encoder`` returns an :class:`Encoder` whatever the backbone. One loop (``Encoder.encode``)
decodes images lazily in batches, preprocesses, runs the model, pools, normalises and checks the
vectors; the backbones differ only in their ``preprocess`` and ``forward`` functions, which the
backend modules of :mod:`fp_rank.encoding.backends` build.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from fp_rank.encoding.backends import LoadRequest, loader
from fp_rank.encoding.batches import (
    _BatchPreparer,
    _default_decode_workers,
    _progress,
    _SideWork,
    _worker_batches,
    check_num_workers,
)
from fp_rank.images.decode import (
    DEFAULT_MAX_PIXELS,
    describe_source,
    iter_batches,
)
from fp_rank.encoding.options import (
    _DTYPES,
    Preprocessing,
    _resolve_device,
    _resolve_dtype,
    resolve_preprocessing,
)
from fp_rank.images.prefetch import Prefetcher
from fp_rank.encoding.registry import REGISTRY, known_aliases
from fp_rank.errors import EncoderError, ImageDecodeError, InputError
from fp_rank.options import split_revision


@dataclass
class EncodeResult:
    """Embeddings of a list of images; rows of skipped images are absent."""

    embeddings: np.ndarray
    kept: np.ndarray  # indices into the input list, one per embedding row
    skipped: list[dict[str, str]] = field(default_factory=list)
    #: index -> what ``Encoder.encode(on_decoded=...)`` returned for that decoded image (None dropped).
    decoded: dict[int, Any] = field(default_factory=dict)


def _hash_json(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


class Encoder:
    """A backbone with its preprocessing, turning images into unit-norm embeddings.

    Attributes:
        name: what the caller asked for (alias, Hub id, folder or callable name).
        model_id: the Hub id or local folder the weights came from.
        revision: the weights' revision (Hub commit, or a content hash for local folders).
        preprocessing: a JSON-able description of the preprocessing (part of the cache key).
        pooling: the pooling rule.
        dtype: compute dtype name (``"float32"``, or ``"bfloat16"``/``"float16"`` under autocast).
        device: torch device string.
        is_demo: True for the weight-free demo descriptor.
    """

    def __init__(
        self,
        *,
        name: str,
        model_id: str,
        revision: str | None,
        preprocessing: dict[str, Any],
        pooling: str,
        preprocess: Callable[[list[Any]], torch.Tensor],
        forward: Callable[[torch.Tensor], torch.Tensor],
        device: str = "cpu",
        dtype: str = "float32",
        is_demo: bool = False,
        cacheable: bool = True,
        description: str = "",
    ) -> None:
        self.name = name
        self.model_id = model_id
        self.revision = revision
        self.preprocessing = preprocessing
        self.pooling = pooling
        self._preprocess = preprocess
        self._forward = forward
        self.device = device
        self.dtype = dtype
        self.is_demo = is_demo
        self.cacheable = cacheable
        self.description = description
        #: Applied to every decoded image with its label before preprocessing (background removal).
        self.image_hook: Callable[[Any, str], Any] | None = None

    def __repr__(self) -> str:
        return (
            f"Encoder(name={self.name!r}, model_id={self.model_id!r}, revision={self.revision!r}, "
            f"pooling={self.pooling!r}, device={self.device!r}, dtype={self.dtype!r})"
        )

    @property
    def preprocessing_id(self) -> str:
        """Short hash of the preprocessing description."""
        return _hash_json(self.preprocessing)

    def identity(self) -> dict[str, Any]:
        """Everything that defines this encoder's vectors (recorded in reports, part of cache keys)."""
        return {
            "name": self.name,
            "model_id": self.model_id,
            "revision": self.revision,
            "pooling": self.pooling,
            "preprocessing": self.preprocessing,
            "preprocessing_id": self.preprocessing_id,
            "dtype": self.dtype,
            "is_demo": self.is_demo,
            "device_type": "cuda" if str(self.device).startswith("cuda") else str(self.device).split(":")[0],
        }

    def preprocess(self, images: list[Any]) -> torch.Tensor:
        """RGB PIL images -> the model's input tensor."""
        return self._preprocess(images)

    @torch.inference_mode()
    def embed_tensor(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Model input tensor -> ``(B, D)`` float32 unit vectors on the CPU."""
        x = pixel_values.to(self.device)
        if self.dtype in ("bfloat16", "float16"):
            device_type = "cuda" if str(self.device).startswith("cuda") else "cpu"
            ctx: Any = torch.autocast(device_type=device_type, dtype=_DTYPES[self.dtype])
        else:
            ctx = contextlib.nullcontext()
        with ctx:
            out = self._forward(x)
        out = output_tensor(out)
        if out.ndim != 2:
            raise EncoderError(
                f"encoder {self.name!r} returned a tensor of shape {tuple(out.shape)}; expected (batch, dim)"
            )
        if out.shape[0] != pixel_values.shape[0]:
            raise EncoderError(
                f"encoder {self.name!r} returned {out.shape[0]} embeddings for a batch of {pixel_values.shape[0]}"
            )
        out = out.float().cpu()
        return normalise_rows(out, self.name)

    def embed_images(self, images: list[Any]) -> torch.Tensor:
        """Decoded RGB images -> ``(B, D)`` unit vectors."""
        return self.embed_tensor(self.preprocess(images))

    def encode(
        self,
        items: Sequence[Any],
        *,
        batch_size: int = 32,
        progress: bool = True,
        on_invalid: str = "error",
        names: Sequence[str] | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        desc: str = "encoding",
        prefetch: int = 1,
        decode_workers: int | None = None,
        on_decoded: Callable[[int, Any], Any] | None = None,
        num_workers: int = 0,
    ) -> EncodeResult:
        """Encode image sources lazily, ``batch_size`` decoded images in memory at a time.

        Args:
            items: image sources (paths, bytes, PIL images, arrays, ``{'bytes','path'}`` dicts).
            batch_size: images per forward pass.
            progress: show a tqdm progress bar.
            on_invalid: ``"error"`` raises on the first unreadable image (naming it);
                ``"skip"`` leaves it out and lists it in ``EncodeResult.skipped``.
            names: names of the items for messages (default: their paths or indices).
            max_pixels: images larger than this are refused before decoding.
            desc: progress-bar label.
            prefetch: batches decoded and preprocessed ahead in a background thread while the
                model runs (bounded, so memory stays bounded by ``batch_size``); 0 disables it.
            decode_workers: threads decoding the images of a batch (Pillow releases the GIL).
                Default: 1 on the CPU (the model uses the cores), ``min(8, cores - 1)`` when
                the model runs on a GPU and the cores are free to feed it. The result does not
                depend on it.
            on_decoded: called as ``on_decoded(i, rgb)`` with every decoded RGB image (where it
                was decoded: a thread or a worker process, before preprocessing), so that other
                per-image work (the leakage guard's fingerprints) shares this decode instead of
                decoding again; its return values come back in ``EncodeResult.decoded``.
            num_workers: worker processes decoding and preprocessing whole batches
                (``torch.utils.data.DataLoader``; pinned memory and non-blocking copies on
                CUDA). 0 (default): in this process, ``prefetch`` batches ahead. The embeddings
                do not depend on it.

        Returns:
            An :class:`EncodeResult` with float32 ``(n_kept, D)`` embeddings.

        Raises:
            ImageDecodeError: an image cannot be read (``on_invalid="error"``).
            EncoderError: the model returned NaN/inf or a wrong shape.
        """
        if on_invalid not in ("error", "skip"):
            raise InputError(f"on_invalid must be 'error' or 'skip', got {on_invalid!r}")
        n = len(items)
        chunks: list[torch.Tensor] = []
        kept: list[int] = []
        skipped: list[dict[str, str]] = []
        bar = _progress(n, desc, progress)

        workers = decode_workers if decode_workers is not None else _default_decode_workers(self.device)
        n_proc = check_num_workers(num_workers)
        decoded: dict[int, Any] = {}
        side = _SideWork(on_decoded, 2 * batch_size) if on_decoded is not None and n_proc == 0 else None
        batch_fn = _BatchPreparer(
            self.preprocess, names, max_pixels, side.submit if side else on_decoded, on_invalid, self.image_hook
        )

        def prepared() -> Iterator[tuple[list[int], Any, list[dict[str, str]], int, dict[int, Any]]]:
            # decode + preprocess one batch (runs in the prefetch thread)
            pool = ThreadPoolExecutor(workers, thread_name_prefix="fp-rank-decode") if workers > 1 else None
            try:
                for batch in iter_batches(items, batch_size):
                    yield batch_fn(batch, pool)
            finally:
                if pool is not None:
                    pool.shutdown(wait=True, cancel_futures=True)

        if n_proc > 0 and n > 0:
            source: Iterator[Any] = _worker_batches(items, batch_size, batch_fn, n_proc, self.device)
            depth = 0  # the worker processes already run ahead
        else:
            source, depth = prepared(), max(0, int(prefetch))
        try:
            on_cpu = not str(self.device).startswith("cuda")
            with Prefetcher(source, depth=depth, low_priority=on_cpu) as batches:
                for idx, pixels, bad, size, infos in batches:
                    if bad and on_invalid == "error":
                        raise ImageDecodeError(bad[0]["file"], bad[0]["reason"])
                    skipped.extend(bad)
                    decoded.update(infos)
                    if pixels is not None and str(self.device).startswith("cuda") and pixels.device.type == "cpu":
                        pixels = pixels.to(self.device, non_blocking=pixels.is_pinned())
                    if pixels is not None:
                        try:
                            chunks.append(self.embed_tensor(pixels))
                        except EncoderError as exc:
                            row = getattr(exc, "row", None)
                            if row is None or row >= len(idx):
                                raise
                            i = idx[row]
                            label = names[i] if names is not None else describe_source(items[i], i)
                            raise EncoderError(f"{exc} (image: {label})") from None
                        kept.extend(idx)
                    if bar is not None:
                        bar.update(size)
        except BaseException:
            if side is not None:
                side.pool.shutdown(wait=False, cancel_futures=True)
            raise
        finally:
            if bar is not None:
                bar.close()
        if chunks:
            emb = torch.cat(chunks).numpy()
        else:
            emb = np.zeros((0, 0), dtype=np.float32)
        if side is not None:
            decoded.update(side.results())
        return EncodeResult(embeddings=emb, kept=np.asarray(kept, dtype=np.int64), skipped=skipped, decoded=decoded)


def output_tensor(out: Any) -> torch.Tensor:
    """A model's (or callable's) output as a tensor of embeddings: a tensor, an array, or the
    ``image_embeds`` / ``pooler_output`` of a transformers output.

    Raises:
        EncoderError: If the output cannot be read as an array of numbers.
    """
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, np.ndarray):
        return torch.from_numpy(out)
    for attr in ("image_embeds", "pooler_output"):
        value = getattr(out, attr, None)
        if isinstance(value, torch.Tensor):
            return value
    if isinstance(out, (list, tuple)) and out and isinstance(out[0], torch.Tensor):
        return out[0]
    try:
        return torch.as_tensor(np.asarray(out, dtype=np.float32))
    except (TypeError, ValueError) as exc:
        raise EncoderError(f"encoder output of type {type(out).__name__} is not an array of embeddings") from exc


def normalise_rows(out: torch.Tensor, name: str) -> torch.Tensor:
    """``(B, D)`` embeddings divided by their norms; ``name`` names the encoder in errors.

    Raises:
        EncoderError: On a row holding NaN or inf, or an all-zero row; ``row`` is its index.

    Example:
        >>> normalise_rows(torch.tensor([[3.0, 4.0]]), "demo")
        tensor([[0.6000, 0.8000]])
    """
    if not torch.isfinite(out).all():
        bad = int((~torch.isfinite(out)).any(dim=1).nonzero()[0, 0])
        exc = EncoderError(
            f"encoder {name!r} produced NaN or inf in the embedding of batch row {bad}; try dtype='float32' "
            "or check the model weights"
        )
        exc.row = bad  # type: ignore[attr-defined]
        raise exc
    norms = out.norm(dim=1, keepdim=True)
    if (norms == 0).any():
        bad = int((norms[:, 0] == 0).nonzero()[0, 0])
        exc = EncoderError(f"encoder {name!r} produced an all-zero embedding (batch row {bad}); it cannot be normalised")
        exc.row = bad  # type: ignore[attr-defined]
        raise exc
    return out / norms


def load_encoder(
    name_or_path: str | os.PathLike[str] | Callable[..., Any] | Encoder,
    revision: str | None = None,
    device: str | None = None,
    dtype: str | torch.dtype | None = None,
    trust_remote_code: bool = False,
    *,
    source: str | os.PathLike[str] | None = None,
    pooling: str | None = None,
    use_safetensors: bool = True,
    name: str | None = None,
    preprocessing: Preprocessing | None = None,
    fast_preprocess: bool | None = None,
) -> Encoder:
    """Load a backbone with its preprocessing.

    Args:
        name_or_path: a registry alias (see :func:`fp_rank.encoding.registry.known_aliases`), a Hub
            id or local folder loadable by ``AutoModel`` + ``AutoImageProcessor`` (``ID@REVISION``
            pins the weights when ``revision`` is not given), a callable mapping
            a list of RGB PIL images to an ``(n, d)`` array, or an :class:`Encoder` (returned as is).
        revision: Hub revision (branch, tag or commit) of the weights; for a callable, the version
            string that makes its vectors cacheable (without it, callables are never cached).
        device: torch device; default CUDA when available, else CPU.
        dtype: ``"float32"`` (default), or ``"bfloat16"``/``"float16"`` autocast (opt-in, recorded).
        trust_remote_code: allow running the model repository's own Python code (needed by
            ``miewid``). Off unless the caller turns it on; a warning names the repository.
        source: where to load an alias's weights from instead of its Hub id (a local folder or a
            mirror id); the alias's preprocessing and pooling rules still apply.
        pooling: override the pooling rule of a generic model (``cls``, ``pooler``, ``mean``,
            ``image_features``).
        use_safetensors: only accept safetensors weights (default). Set False to allow pickled
            ``.bin`` checkpoints, which can run code when loaded.
        name: how to name a callable encoder in reports.
        preprocessing: how model inputs are made. ``"processor"`` (default): exactly as the
            checkpoint's reference preprocessing does it (transformers' image processor for
            DINOv2, CLIP, SigLIP and other ``AutoImageProcessor`` models; OpenCV ``INTER_LINEAR``
            for MiewID, which needs ``opencv-python-headless``). ``"fast"``: torch
            reimplementations where they exist (:mod:`fp_rank.encoding.fast_preprocess` for
            transformers processors, about 3x faster, normalised values within
            ``2 / (255 * std)``; a torch bilinear resize for MiewID, within 1 level); other
            backends keep their own preprocessing. The path taken is recorded in
            ``Encoder.preprocessing["mode"]``, which is part of the cache key.
        fast_preprocess: older spelling of ``preprocessing`` (True = ``"fast"``,
            False = ``"processor"``); still accepted.

    Returns:
        An :class:`Encoder`.

    Raises:
        EncoderError: unknown alias, unknown backend in the alias's registry entry, missing
            remote-code opt-in, unloadable model, OpenCV missing for MiewID's ``"processor"``
            preprocessing.
        InputError: an unknown ``preprocessing`` option.
    """
    mode = resolve_preprocessing(preprocessing, fast_preprocess)
    if isinstance(name_or_path, Encoder):
        return name_or_path
    request = functools.partial(
        LoadRequest,
        revision=revision,
        device=_resolve_device(device),
        dtype=_resolve_dtype(dtype),
        pooling=pooling,
        trust_remote_code=trust_remote_code,
        use_safetensors=use_safetensors,
        preprocessing=mode,
    )
    if callable(name_or_path) and not isinstance(name_or_path, (str, os.PathLike)):
        return loader("callable")(request(source=name_or_path, name=name, spec=None))
    key = os.fspath(name_or_path)
    if revision is None:
        key, revision = split_revision(key)  # "ID@REVISION"
        request = functools.partial(request, revision=revision)
    spec = REGISTRY.get(key)
    if spec is not None:
        target = os.fspath(source) if source is not None else spec.hub_id
        return loader(spec.backend)(request(source=target, name=key, spec=spec))
    # "org/name" is a Hub id even though it holds a "/"; absolute, ./relative, deeper or existing
    # paths are folders.
    from fp_rank.hub_access import looks_like_path

    is_path = looks_like_path(key)
    if is_path and not os.path.isdir(key):
        raise EncoderError(f"no such folder: encoder folder {key!r} does not exist (a path is read as a local model folder)")
    if not is_path and key.count("/") != 1:
        raise EncoderError(
            f"unknown encoder {key!r}: use one of {known_aliases()}, a Hub id like 'org/model', a local "
            "model folder, or a Python callable"
        )
    return loader("transformers")(request(source=key, name=key, spec=None))
