"""Encoders: images in, L2-normalised embeddings out, with their identity recorded.

``load_encoder`` returns an :class:`Encoder` whatever the backbone. One loop (``Encoder.encode``)
decodes images lazily in batches, preprocesses, runs the model, pools, normalises and checks the
vectors; the backbones differ only in their ``preprocess`` and ``forward`` functions.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fp_rank.encoding.demo_descriptor import DESCRIPTOR_VERSION, INPUT_SIZE, demo_descriptor
from fp_rank.encoding.fast_preprocess import Prefetcher, fast_preprocessor
from fp_rank.encoding.images import DEFAULT_MAX_PIXELS, describe_source, iter_batches, to_rgb
from fp_rank.encoding.registry import POOLING_BY_MODEL_TYPE, REGISTRY, EncoderSpec, known_aliases
from fp_rank.errors import EncoderError, ImageDecodeError, InputError

logger = logging.getLogger(__name__)

_DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
}


@dataclass
class EncodeResult:
    """Embeddings of a list of images; rows of skipped images are absent."""

    embeddings: np.ndarray
    kept: np.ndarray  # indices into the input list, one per embedding row
    skipped: list[dict[str, str]] = field(default_factory=list)


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
        out = _to_tensor(out)
        if out.ndim != 2:
            raise EncoderError(
                f"encoder {self.name!r} returned a tensor of shape {tuple(out.shape)}; expected (batch, dim)"
            )
        if out.shape[0] != pixel_values.shape[0]:
            raise EncoderError(
                f"encoder {self.name!r} returned {out.shape[0]} embeddings for a batch of {pixel_values.shape[0]}"
            )
        out = out.float().cpu()
        return _normalise(out, self.name)

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

        def decode(pair: tuple[int, Any]) -> tuple[int, str, Any, ImageDecodeError | None]:
            i, item = pair
            label = names[i] if names is not None else describe_source(item, i)
            try:
                return i, label, to_rgb(item, name=label, max_pixels=max_pixels), None
            except ImageDecodeError as exc:
                return i, label, None, exc

        def prepared() -> Iterator[tuple[list[int], Any, list[dict[str, str]], int]]:
            # decode + preprocess one batch (runs in the prefetch thread)
            pool = ThreadPoolExecutor(workers, thread_name_prefix="fp-rank-decode") if workers > 1 else None
            try:
                for batch in iter_batches(items, batch_size):
                    images, idx, bad = [], [], []
                    for i, label, image, exc in pool.map(decode, batch) if pool is not None else map(decode, batch):
                        if exc is not None:
                            if on_invalid == "error":
                                raise exc
                            bad.append({"index": str(i), "file": label, "reason": exc.reason})
                        else:
                            images.append(image)
                            idx.append(i)
                    yield idx, (self.preprocess(images) if images else None), bad, len(batch)
            finally:
                if pool is not None:
                    pool.shutdown(wait=True, cancel_futures=True)

        try:
            on_cpu = not str(self.device).startswith("cuda")
            with Prefetcher(prepared(), depth=max(0, int(prefetch)), low_priority=on_cpu) as batches:
                for idx, pixels, bad, size in batches:
                    skipped.extend(bad)
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
        finally:
            if bar is not None:
                bar.close()
        if chunks:
            emb = torch.cat(chunks).numpy()
        else:
            emb = np.zeros((0, 0), dtype=np.float32)
        return EncodeResult(embeddings=emb, kept=np.asarray(kept, dtype=np.int64), skipped=skipped)


def _default_decode_workers(device: str) -> int:
    if not str(device).startswith("cuda"):
        return 1
    return max(1, min(8, (os.cpu_count() or 2) - 1))


def _progress(total: int, desc: str, enabled: bool) -> Any:
    if not enabled or total == 0:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="img", leave=False)


def _to_tensor(out: Any) -> torch.Tensor:
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


def _normalise(out: torch.Tensor, name: str) -> torch.Tensor:
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


def _resolve_device(device: str | None) -> str:
    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise InputError(f"device {device!r} is not a torch device (use 'cpu', 'cuda' or 'cuda:N')") from exc
    return str(device)


def _resolve_dtype(dtype: str | torch.dtype | None) -> str:
    if dtype is None:
        return "float32"
    if isinstance(dtype, torch.dtype):
        names = {torch.float32: "float32", torch.bfloat16: "bfloat16", torch.float16: "float16"}
        if dtype not in names:
            raise InputError(f"dtype {dtype} is not supported; use float32, bfloat16 or float16")
        return names[dtype]
    key = str(dtype).lower()
    if key not in _DTYPES:
        raise InputError(f"dtype {dtype!r} is not supported; use 'float32', 'bfloat16' or 'float16'")
    return {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}.get(key, key)


def folder_revision(path: Path) -> str:
    """Content hash of a local model folder (weights, configs, code): its 'revision'."""
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        if file.suffix not in (".safetensors", ".bin", ".json", ".py", ".pt", ".pth", ".txt", ".model"):
            continue
        digest.update(file.relative_to(path).as_posix().encode())
        with open(file, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return "sha256:" + digest.hexdigest()[:20]


def _pil_to_tensor(images: list[Any], size: int, mean: Sequence[float] | None, std: Sequence[float] | None) -> torch.Tensor:
    from PIL import Image

    arrays = [np.asarray(img.resize((size, size), Image.Resampling.BILINEAR), dtype=np.float32) for img in images]
    x = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2) / 255.0
    if mean is not None and std is not None:
        x = (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    return x.contiguous()


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
    fast_preprocess: bool = True,
) -> Encoder:
    """Load a backbone with its preprocessing.

    Args:
        name_or_path: a registry alias (see :func:`fp_rank.encoding.registry.known_aliases`), a Hub
            id or local folder loadable by ``AutoModel`` + ``AutoImageProcessor``, a callable mapping
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
        fast_preprocess: for transformers processors that
            :mod:`fp_rank.encoding.fast_preprocess` reproduces (DINOv2's, CLIP's, SigLIP's, ViT's),
            preprocess with torch instead of the processor's PIL/NumPy path: about 3x faster,
            tensors within a documented tolerance, recorded in ``Encoder.preprocessing`` (so the
            cache never mixes the two). False keeps the processor itself.

    Returns:
        An :class:`Encoder`.

    Raises:
        EncoderError: unknown alias, missing remote-code opt-in, unloadable model.
    """
    if isinstance(name_or_path, Encoder):
        return name_or_path
    dev = _resolve_device(device)
    dt = _resolve_dtype(dtype)
    if callable(name_or_path) and not isinstance(name_or_path, (str, os.PathLike)):
        return _callable_encoder(name_or_path, revision, dev, dt, name)
    key = os.fspath(name_or_path)
    spec = REGISTRY.get(key)
    if spec is not None:
        if spec.backend == "demo":
            return _demo_encoder(dev)
        target = os.fspath(source) if source is not None else spec.hub_id
        if spec.backend == "miewid":
            return _miewid_encoder(spec, target, revision, dev, dt, trust_remote_code, use_safetensors)
        if spec.backend == "open_clip":
            return _open_clip_encoder(spec, target, revision, dev, dt)
        return _transformers_encoder(
            key, target, revision, dev, dt, pooling or spec.pooling, trust_remote_code, use_safetensors, fast_preprocess
        )
    # "org/name" is a Hub id even though it holds a "/"; absolute, ./relative, deeper or existing
    # paths are folders.
    looks_like_path = (
        os.path.isabs(key)
        or key.startswith((".", "~"))
        or os.path.exists(key)
        or key.count("/") > 1
        or (os.sep != "/" and os.sep in key)
    )
    if looks_like_path and not os.path.isdir(key):
        raise EncoderError(f"encoder folder {key!r} does not exist")
    if not looks_like_path and key.count("/") != 1:
        raise EncoderError(
            f"unknown encoder {key!r}: use one of {known_aliases()}, a Hub id like 'org/model', a local "
            "model folder, or a Python callable"
        )
    return _transformers_encoder(key, key, revision, dev, dt, pooling, trust_remote_code, use_safetensors, fast_preprocess)


def _demo_encoder(device: str) -> Encoder:
    def preprocess(images: list[Any]) -> torch.Tensor:
        return _pil_to_tensor(images, INPUT_SIZE, None, None)

    spec = REGISTRY["fp-rank-demo"]
    return Encoder(
        name=spec.alias,
        model_id=spec.hub_id,
        revision=f"descriptor-v{DESCRIPTOR_VERSION}",
        preprocessing={"resize": [INPUT_SIZE, INPUT_SIZE], "resample": "bilinear", "scale": "1/255"},
        pooling="descriptor",
        preprocess=preprocess,
        forward=demo_descriptor,
        device="cpu",
        dtype="float32",
        is_demo=True,
        description=spec.description,
    )


def _callable_encoder(fn: Callable[..., Any], revision: str | None, device: str, dtype: str, name: str | None) -> Encoder:
    label = name or getattr(fn, "__qualname__", None) or type(fn).__name__

    def preprocess(images: list[Any]) -> Any:
        return images

    def forward(images: Any) -> torch.Tensor:
        out = fn(images)
        return _to_tensor(out)

    enc = Encoder(
        name=f"callable:{label}",
        model_id=f"callable:{label}",
        revision=revision,
        preprocessing={"callable": label},
        pooling="callable",
        preprocess=preprocess,
        forward=forward,
        device="cpu",
        dtype=dtype,
        cacheable=revision is not None,
        description="user-supplied Python callable",
    )
    enc.embed_tensor = _callable_embed(enc, fn)  # type: ignore[method-assign]
    return enc


def _callable_embed(enc: Encoder, fn: Callable[..., Any]) -> Callable[[Any], torch.Tensor]:
    def embed(images: Any) -> torch.Tensor:
        try:
            out = _to_tensor(fn(images))
        except EncoderError as exc:  # unusable output: say whose
            raise EncoderError(f"encoder callable {enc.name!r}: {exc}") from exc
        except InputError:
            raise
        except Exception as exc:  # the user's function failed: name it, keep its message
            raise EncoderError(f"encoder callable {enc.name!r} raised {type(exc).__name__}: {exc}") from exc
        if out.ndim != 2 or out.shape[0] != len(images):
            raise EncoderError(
                f"encoder callable {enc.name!r} returned shape {tuple(out.shape)} for {len(images)} images; "
                "expected (n_images, dim)"
            )
        return _normalise(out.float().cpu(), enc.name)

    return embed


def _remote_code_guard(repo: str, revision: str | None, trust_remote_code: bool) -> None:
    if not trust_remote_code:
        raise EncoderError(
            f"{repo!r} needs trust_remote_code=True: it runs Python code from that repository. Read the "
            "code first, pin a revision, then pass trust_remote_code=True (CLI: --trust-remote-code)"
        )
    if revision:
        where = f"revision {revision}"
    elif os.path.isdir(repo):
        where = "a local folder (its content hash is recorded as the revision)"
    else:
        where = "revision main (unpinned: pass a commit hash as revision to pin the code you read)"
    warnings.warn(f"trust_remote_code=True: running code from {repo!r} at {where}", UserWarning, stacklevel=3)


_PICKLE_WEIGHTS = (".bin", ".pt", ".pth", ".ckpt", ".pkl")


def _safetensors_refusal(target: str) -> EncoderError:
    return EncoderError(
        f"{target!r} has no safetensors weights, only pickled ones (e.g. pytorch_model.bin), and loading a "
        "pickle can run arbitrary code. fp-rank loads safetensors only by default: convert the checkpoint to "
        "safetensors, or, if you trust its source, pass use_safetensors=False"
    )


def _check_local_model_folder(target: str, trust_remote_code: bool, use_safetensors: bool) -> None:
    """Refuse, before loading, a local folder that would run its own code or unpickle its weights."""
    folder = Path(target)
    if not folder.is_dir():
        return
    config = folder / "config.json"
    if not trust_remote_code and config.is_file():
        try:
            auto_map = json.loads(config.read_text(encoding="utf-8")).get("auto_map")
        except (OSError, ValueError, AttributeError):
            auto_map = None
        if auto_map:
            _remote_code_guard(target, None, False)
    if use_safetensors:
        files = [p.name for p in folder.iterdir() if p.is_file()]
        if not any(f.endswith(".safetensors") for f in files) and any(f.endswith(_PICKLE_WEIGHTS) for f in files):
            raise _safetensors_refusal(target)


def _model_revision(model: Any, target: str, revision: str | None) -> str | None:
    if os.path.isdir(target):
        return folder_revision(Path(target))
    commit = getattr(getattr(model, "config", None), "_commit_hash", None)
    return commit or revision


def _load_pretrained(loader: Any, target: str, revision: str | None, what: str, **kwargs: Any) -> Any:
    try:
        return loader.from_pretrained(target, revision=revision, **kwargs)
    except (OSError, ValueError, KeyError, EnvironmentError) as exc:
        text = str(exc)
        if "trust_remote_code" in text and not kwargs.get("trust_remote_code"):
            _remote_code_guard(target, revision, False)
        if kwargs.get("use_safetensors") and isinstance(exc, OSError) and ".safetensors" in text:
            raise _safetensors_refusal(target) from exc
        offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False")
        hint = (
            " (offline mode: the files must already be in the Hugging Face cache for this revision)"
            if offline
            else ""
        )
        raise EncoderError(f"cannot load the {what} of {target!r} at revision {revision or 'main'}{hint}: {exc}") from exc


def _transformers_encoder(
    name: str,
    target: str,
    revision: str | None,
    device: str,
    dtype: str,
    pooling: str | None,
    trust_remote_code: bool,
    use_safetensors: bool,
    fast_preprocess: bool = True,
) -> Encoder:
    from transformers import AutoImageProcessor, AutoModel
    from transformers.utils import logging as hf_logging

    _check_local_model_folder(target, trust_remote_code, use_safetensors)
    if trust_remote_code:
        _remote_code_guard(target, revision, trust_remote_code)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        processor = _load_pretrained(
            AutoImageProcessor, target, revision, "image processor", trust_remote_code=trust_remote_code
        )
        model = _load_pretrained(
            AutoModel,
            target,
            revision,
            "model",
            trust_remote_code=trust_remote_code,
            use_safetensors=use_safetensors or None,
        )
    finally:
        hf_logging.set_verbosity(verbosity)
    model.eval().to(device)
    model_type = getattr(model.config, "model_type", "")
    rule = pooling or POOLING_BY_MODEL_TYPE.get(model_type)
    if rule is None:
        rule = "pooler" if "pooler" in type(model).forward.__code__.co_varnames or hasattr(model, "pooler") else "cls"
    if rule not in ("cls", "pooler", "mean", "image_features"):
        raise EncoderError(f"pooling {rule!r} is not one of 'cls', 'pooler', 'mean', 'image_features'")
    if rule == "image_features" and not hasattr(model, "get_image_features"):
        raise EncoderError(f"{target!r} ({model_type}) has no get_image_features; choose pooling='cls' or 'pooler'")

    prep = processor.to_dict() if hasattr(processor, "to_dict") else {"processor": type(processor).__name__}
    fast = fast_preprocessor(prep) if fast_preprocess else None

    def preprocess(images: list[Any]) -> torch.Tensor:
        if fast is not None:
            return fast(images)
        return processor(images=images, return_tensors="pt")["pixel_values"]

    def forward(x: torch.Tensor) -> torch.Tensor:
        if rule == "image_features":
            return _to_tensor(model.get_image_features(pixel_values=x))
        out = model(pixel_values=x)
        if rule == "pooler":
            if getattr(out, "pooler_output", None) is None:
                raise EncoderError(f"{target!r} has no pooler_output; choose pooling='cls' or 'mean'")
            return out.pooler_output
        hidden = out.last_hidden_state
        if hidden.ndim == 4:  # convolutional backbones: (B, C, H, W)
            return hidden.mean(dim=(2, 3))
        return hidden[:, 0] if rule == "cls" else hidden.mean(dim=1)

    prep = {k: v for k, v in prep.items() if not k.startswith("_") and k != "processor_class"}
    if fast is not None:
        prep["fast_preprocess"] = fast.describe()
    return Encoder(
        name=name,
        model_id=target,
        revision=_model_revision(model, target, revision),
        preprocessing={"processor": type(processor).__name__, **prep},
        pooling=rule,
        preprocess=preprocess,
        forward=forward,
        device=device,
        dtype=dtype,
        description=REGISTRY[name].description if name in REGISTRY else f"AutoModel {model_type}",
    )


def _miewid_encoder(
    spec: EncoderSpec,
    target: str,
    revision: str | None,
    device: str,
    dtype: str,
    trust_remote_code: bool,
    use_safetensors: bool,
) -> Encoder:
    from transformers import AutoModel

    _remote_code_guard(target, revision, trust_remote_code)
    _check_local_model_folder(target, True, use_safetensors)
    model = _load_pretrained(
        AutoModel, target, revision, "model", trust_remote_code=True, use_safetensors=use_safetensors or None
    )
    if not hasattr(model, "extract_feat"):
        raise EncoderError(f"{target!r} loaded as {type(model).__name__}, which has no extract_feat method")
    model.eval().to(device)
    size = int(spec.extra["size"])  # type: ignore[call-overload]
    mean, std = spec.extra["mean"], spec.extra["std"]

    def preprocess(images: list[Any]) -> torch.Tensor:
        return _pil_to_tensor(images, size, mean, std)  # type: ignore[arg-type]

    return Encoder(
        name=spec.alias,
        model_id=target,
        revision=_model_revision(model, target, revision),
        preprocessing={"resize": [size, size], "resample": "bilinear", "mean": list(mean), "std": list(std)},  # type: ignore[call-overload]
        pooling="extract_feat",
        preprocess=preprocess,
        forward=model.extract_feat,
        device=device,
        dtype=dtype,
        description=spec.description,
    )


def _open_clip_encoder(spec: EncoderSpec, target: str, revision: str | None, device: str, dtype: str) -> Encoder:
    try:
        import open_clip
    except ImportError as exc:
        raise EncoderError(
            f"encoder {spec.alias!r} needs open_clip: pip install 'fp-rank[open_clip]' (it requires torchvision)"
        ) from exc
    model_name = f"local-dir:{target}" if os.path.isdir(target) else f"hf-hub:{target}"
    if revision is not None and not os.path.isdir(target):
        model_name = f"{model_name}@{revision}"
    try:
        model, _, transform = open_clip.create_model_and_transforms(model_name)
    except Exception as exc:  # open_clip raises assorted errors for a missing/invalid model
        raise EncoderError(f"cannot load open_clip model {model_name!r}: {exc}") from exc
    model.eval().to(device)

    def preprocess(images: list[Any]) -> torch.Tensor:
        return torch.stack([transform(img) for img in images])

    def forward(x: torch.Tensor) -> torch.Tensor:
        return model.encode_image(x)

    return Encoder(
        name=spec.alias,
        model_id=target,
        revision=folder_revision(Path(target)) if os.path.isdir(target) else revision,
        preprocessing={"open_clip_transform": repr(transform)},
        pooling="open_clip",
        preprocess=preprocess,
        forward=forward,
        device=device,
        dtype=dtype,
        description=spec.description,
    )
