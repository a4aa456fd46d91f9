"""Encoders: images in, L2-normalised embeddings out, with their identity recorded.

Options (device, dtype, preprocessing) are resolved in :mod:`fp_rank.encoding.options`; the decoded
batches come from :class:`fp_rank.images.stream.DecodeStream` (threads or worker processes).

:func:`fp_rank.encoding.load.load_encoder` returns an :class:`Encoder` whatever the backbone. One
loop (``Encoder.embed_stream``) takes the decoded, preprocessed batches, runs the model, pools,
normalises and checks the vectors; the backbones differ only in their ``preprocess`` and
``forward`` functions, which the backend modules of :mod:`fp_rank.encoding.backends` build.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from fp_rank.images.decode import DEFAULT_MAX_PIXELS
from fp_rank.images.stream import DecodeStream, Tap, default_decode_threads
from fp_rank.progress import progress_bar
from fp_rank.encoding.options import _DTYPES
from fp_rank.errors import EncoderError, ImageDecodeError


@dataclass
class EncodeResult:
    """Embeddings of a list of images; rows of skipped images are absent."""

    embeddings: np.ndarray
    kept: np.ndarray  # indices into the input list, one per embedding row
    skipped: list[dict[str, str]] = field(default_factory=list)
    #: tap name -> index -> its value for that decoded image (``Encoder.encode(taps=...)``).
    tapped: dict[str, dict[int, Any]] = field(default_factory=dict)


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

    def prepare(self, pictures: list[Any], labels: list[str]) -> torch.Tensor:
        """Decoded RGB pictures (and their names, for messages) -> the model's input tensor.

        Background removal (when the encoder carries a matting backend) comes first, then the
        checkpoint's preprocessing: the decode stream's transform (:class:`fp_rank.images.stream.DecodeStream`).
        """
        if self.image_hook is not None:
            pictures = [self.image_hook(picture, label) for picture, label in zip(pictures, labels)]
        return self.preprocess(pictures)

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
        num_workers: int = 0,
        taps: Mapping[str, Tap] | None = None,
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
            num_workers: worker processes decoding and preprocessing whole batches
                (``torch.utils.data.DataLoader``; pinned memory and non-blocking copies on
                CUDA). 0 (default): in this process, ``prefetch`` batches ahead. The embeddings
                do not depend on it.
            taps: name -> function of one decoded RGB picture, computed where it is decoded (the
                leakage guard's fingerprint), so that other work shares this decode; the values
                come back in ``EncodeResult.tapped``.

        Returns:
            An :class:`EncodeResult` with float32 ``(n_kept, D)`` embeddings.

        Raises:
            ImageDecodeError: an image cannot be read (``on_invalid="error"``).
            EncoderError: the model returned NaN/inf or a wrong shape.
        """
        on_gpu = str(self.device).startswith("cuda")
        stream = DecodeStream(
            items, batch_size=batch_size, names=names, transform=self.prepare, taps=taps, on_invalid=on_invalid,
            max_pixels=max_pixels, threads=decode_workers if decode_workers is not None else default_decode_threads(on_gpu),
            prefetch=prefetch, processes=num_workers, pin_memory=on_gpu, low_priority=not on_gpu,
        )
        return self.embed_stream(stream, progress=progress, desc=desc, on_invalid=on_invalid)

    def embed_stream(
        self, stream: DecodeStream, *, progress: bool = True, desc: str = "encoding", on_invalid: str = "error"
    ) -> EncodeResult:
        """Embed every batch of a decode stream whose transform is :meth:`prepare`.

        Raises:
            ImageDecodeError: a batch holds an unreadable image and ``on_invalid="error"``.
            EncoderError: the model returned NaN/inf or a wrong shape (the image is named).
        """
        chunks: list[torch.Tensor] = []
        kept: list[int] = []
        skipped: list[dict[str, str]] = []
        bar = progress_bar(len(stream), desc, progress)
        try:
            with contextlib.closing(iter(stream)) as batches:
                for batch in batches:
                    if batch.bad and on_invalid == "error":
                        raise ImageDecodeError(batch.bad[0]["file"], batch.bad[0]["reason"])
                    skipped.extend(batch.bad)
                    if batch.prepared is not None:
                        chunks.append(self._embed_batch(batch.prepared, batch.positions, stream))
                        kept.extend(batch.positions)
                    if bar is not None:
                        bar.update(batch.size)
        finally:
            if bar is not None:
                bar.close()
        emb = torch.cat(chunks).numpy() if chunks else np.zeros((0, 0), dtype=np.float32)
        return EncodeResult(embeddings=emb, kept=np.asarray(kept, dtype=np.int64), skipped=skipped, tapped=stream.tapped)

    def _embed_batch(self, pixels: torch.Tensor, positions: list[int], stream: DecodeStream) -> torch.Tensor:
        if str(self.device).startswith("cuda") and pixels.device.type == "cpu":
            pixels = pixels.to(self.device, non_blocking=pixels.is_pinned())
        try:
            return self.embed_tensor(pixels)
        except EncoderError as exc:
            row = getattr(exc, "row", None)
            if row is None or row >= len(positions):
                raise
            i = positions[row]
            raise EncoderError(f"{exc} (image: {stream.name_of(i)})") from None


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
