"""Background removal before encoding (``evaluate(..., background="remove")``).

A *matting backend* turns one RGB image into its foreground: either an RGBA image (alpha = how
much of each pixel is foreground) or a mask (mode ``L`` or ``1``, same size). fp-rank then
composites the foreground onto a flat fill colour and hands the RGB result to the encoder's own
preprocessing, for every image it encodes: gallery, reference and holdout splits, the generated
queries and the conditioning images alike.

Backends (:func:`load_matting`):

- any Python callable ``PIL.Image -> PIL.Image`` (RGBA, or an ``L``/``1`` mask);
- a local folder or Hub id of a segmentation checkpoint loadable by transformers
  (``AutoModelForSemanticSegmentation``, or ``AutoModelForImageSegmentation`` for remote-code
  matting models such as BiRefNet-style ones, with ``trust_remote_code``);
- ``"carvekit"``: the reference code's settings (carvekit ``HiInterface``, object type "object",
  Tracer-B7 segmentation + FBA matting, seg mask 640, matting mask 2048, trimap threshold 231,
  dilation 30, erosion 5 iterations, fp16 off). Needs ``pip install 'fp-rank[background]'``.

The fill colour defaults to grey (130, 130, 130): carvekit blends the foreground onto that grey
and the reference code then drops the alpha channel, so its encoders saw the subject on grey.
The backend's identity and the fill are part of the encoder identity, hence of the cache key.

Example:
    >>> from PIL import Image
    >>> matting = load_matting(lambda im: Image.new("L", im.size, 0), name="all-background", revision="1")
    >>> matting.apply(Image.new("RGB", (2, 2), (255, 0, 0)), "red.png").getpixel((0, 0))
    (130, 130, 130)
"""

from __future__ import annotations

import copy
import logging
import os
import threading
from collections.abc import Callable
from typing import Any, Literal

from PIL import Image

from fp_rank.errors import EncoderError, InputError

Background = Literal["keep", "remove"]

#: Options of ``evaluate(background=...)``.
BACKGROUND_OPTIONS = ("keep", "remove")


logger = logging.getLogger(__name__)

#: Colour the removed background is replaced with (the grey carvekit composites onto).
DEFAULT_FILL = (130, 130, 130)

#: The reference code's carvekit ``HiInterface`` settings (``evaluation/Evaluate.py``).
CARVEKIT_SETTINGS: dict[str, Any] = {
    "object_type": "object",
    "segmentation": "tracer_b7",
    "matting": "fba",
    "seg_mask_size": 640,
    "matting_mask_size": 2048,
    "trimap_prob_threshold": 231,
    "trimap_dilation": 30,
    "trimap_erosion_iters": 5,
    "fp16": False,
}

CARVEKIT_INSTALL = "pip install 'fp-rank[background]'  (installs carvekit; its weights download on first use)"

_MASK_MODES = ("L", "1")
_ALPHA_MODES = ("RGBA", "LA")


class Matting:
    """A matting backend with its identity: RGB image in, RGB image with the background filled.

    Attributes:
        name: How reports name the backend (``callable:<name>``, the model id, ``carvekit``).
        fill: RGB colour of the removed background.
        cacheable: Whether its output is defined by its identity (a callable needs a revision).
    """

    def __init__(
        self,
        fn: Callable[[Image.Image], Any],
        *,
        name: str,
        identity: dict[str, Any],
        fill: tuple[int, int, int] = DEFAULT_FILL,
        cacheable: bool = True,
    ) -> None:
        self._fn = fn
        self.name = name
        self.fill = _check_fill(fill)
        self.cacheable = cacheable
        self._identity = dict(identity)
        self._lock = threading.Lock()  # images of a batch decode in threads; models run one at a time
        #: Images whose matte held no foreground at all (each became a flat picture of :attr:`fill`).
        self.emptied: list[str] = []

    def __repr__(self) -> str:
        return f"Matting(name={self.name!r}, fill={self.fill})"

    def identity(self) -> dict[str, Any]:
        """What defines the output (recorded in the report, part of the encoder's cache key)."""
        return {**self._identity, "name": self.name, "fill": list(self.fill)}

    def apply(self, image: Image.Image, label: str) -> Image.Image:
        """Remove the background of one decoded RGB image.

        Args:
            image: The decoded RGB image.
            label: Names the image in error messages.

        Returns:
            An RGB image of the same size: foreground over :attr:`fill`.

        Raises:
            EncoderError: The backend raised, or returned something other than an RGBA image or an
                ``L``/``1`` mask of the image's size.
        """
        try:
            with self._lock:
                out = self._fn(image)
        except EncoderError:
            raise
        except Exception as exc:  # the backend's own failure: say whose and on what
            raise EncoderError(
                f"matting backend {self.name!r} raised {type(exc).__name__} on image {label}: {exc}"
            ) from exc
        result = composite(image, out, self.fill, label=label, backend=self.name)
        if _no_foreground(image, out):
            with self._lock:
                first = not self.emptied
                self.emptied.append(label)
            if first:
                logger.warning(
                    "matting backend %r found no foreground in %s: the image becomes a flat %s picture, which every "
                    "such image shares; the report counts them (metadata.options.background_removal)",
                    self.name, label, self.fill,
                )
        return result


def _no_foreground(image: Image.Image, matte: Any) -> bool:
    """Whether an (already validated) matte keeps nothing of the image."""
    alpha = matte.convert("L") if matte.mode in _MASK_MODES else matte.getchannel("A")
    return alpha.getextrema()[1] == 0


def composite(
    image: Image.Image, matte: Any, fill: tuple[int, int, int], *, label: str, backend: str
) -> Image.Image:
    """``matte`` (RGBA foreground, or an L/1 mask of ``image``) composited onto ``fill`` as RGB.

    An RGBA matte brings its own foreground colours; a mask keeps the image's colours.

    Raises:
        EncoderError: ``matte`` is not a PIL image of an accepted mode and of ``image``'s size.
    """
    if not isinstance(matte, Image.Image):
        raise EncoderError(
            f"matting backend {backend!r} returned {type(matte).__name__} for image {label}; expected a PIL "
            "image: RGBA (alpha = foreground) or an L/1 mask of the same size"
        )
    if matte.size != image.size:
        raise EncoderError(
            f"matting backend {backend!r} returned a {matte.size[0]}x{matte.size[1]} image for image {label} "
            f"of size {image.size[0]}x{image.size[1]}; the matte must have the image's size"
        )
    if matte.mode in _MASK_MODES:
        foreground, alpha = image.convert("RGB"), matte.convert("L")
    elif matte.mode in _ALPHA_MODES:
        foreground, alpha = matte.convert("RGB"), matte.getchannel("A")
    else:
        raise EncoderError(
            f"matting backend {backend!r} returned a {matte.mode} image for image {label}; expected RGBA "
            f"(alpha = foreground), LA, or a mask of mode {' or '.join(_MASK_MODES)}"
        )
    return Image.composite(foreground, Image.new("RGB", image.size, fill), alpha)


def load_matting(
    spec: str | os.PathLike[str] | Callable[[Image.Image], Any] | Matting | None,
    *,
    revision: str | None = None,
    name: str | None = None,
    device: str | None = None,
    trust_remote_code: bool = False,
    fill: tuple[int, int, int] = DEFAULT_FILL,
) -> Matting:
    """Load a matting backend.

    Args:
        spec: ``"carvekit"`` (also the default, ``None``: the reference's settings), a
            transformers segmentation checkpoint (Hub id or folder), a callable
            ``PIL.Image -> PIL.Image``, or a :class:`Matting` (returned as is).
        revision: Hub revision of a checkpoint; for a callable, the version that makes the
            encodings of its output cacheable (without it they are never cached).
        name: How to name a callable in reports.
        device: torch device of a model backend (default CUDA when available).
        trust_remote_code: allow a checkpoint's own code (remote-code matting models).
        fill: RGB colour of the removed background.

    Returns:
        A :class:`Matting`.

    Raises:
        EncoderError: carvekit is not installed, or the checkpoint cannot be loaded.
        InputError: ``spec`` or ``fill`` is of the wrong type.
    """
    if isinstance(spec, Matting):
        return spec
    if spec is None or (isinstance(spec, str) and spec == "carvekit"):
        return _carvekit(device, fill)
    if callable(spec) and not isinstance(spec, (str, os.PathLike)):
        label = name or getattr(spec, "__qualname__", None) or type(spec).__name__
        return Matting(
            spec, name=f"callable:{label}", identity={"backend": "callable", "revision": revision},
            fill=fill, cacheable=revision is not None,
        )
    if isinstance(spec, (str, os.PathLike)):
        return _transformers(os.fspath(spec), revision, device, trust_remote_code, fill)
    raise InputError(
        f"matting must be 'carvekit', a segmentation checkpoint (Hub id or folder), a callable "
        f"PIL.Image -> PIL.Image or a Matting, got {type(spec).__name__}"
    )


def with_background_removal(encoder: Any, matting: Matting) -> Any:
    """A copy of ``encoder`` whose every decoded image first goes through ``matting``.

    The copy shares the model; its ``preprocessing`` (hence ``identity()`` and the cache key)
    records the matting backend, and it is cacheable only if both are.
    """
    wrapped = copy.copy(encoder)
    wrapped.preprocessing = {**encoder.preprocessing, "background": matting.identity()}
    wrapped.cacheable = bool(encoder.cacheable and matting.cacheable)
    wrapped.image_hook = matting.apply
    wrapped.description = f"{encoder.description} (background removed by {matting.name})".strip()
    return wrapped


# --- backends --------------------------------------------------------------------------------


def _check_fill(fill: Any) -> tuple[int, int, int]:
    ok = (
        isinstance(fill, (tuple, list)) and len(fill) == 3
        and all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255 for v in fill)
    )
    if not ok:
        raise InputError(f"fill must be an (R, G, B) triple of ints in 0-255, got {fill!r}")
    return (int(fill[0]), int(fill[1]), int(fill[2]))


def _device(device: str | None) -> str:
    import torch

    return device or ("cuda" if torch.cuda.is_available() else "cpu")


def _carvekit(device: str | None, fill: tuple[int, int, int]) -> Matting:
    try:
        from carvekit.api.high import HiInterface  # type: ignore[import-not-found]
    except ImportError as exc:
        raise EncoderError(
            f"background removal with the 'carvekit' backend (the reference code's) needs carvekit, which is not "
            f"installed ({exc}). Install it with: {CARVEKIT_INSTALL}; or pass background= a segmentation checkpoint "
            "folder or a Python callable"
        ) from exc
    target = _device(device)
    settings = {k: v for k, v in CARVEKIT_SETTINGS.items() if k not in ("segmentation", "matting")}
    try:
        interface = HiInterface(batch_size_seg=1, batch_size_matting=1, device=target, **settings)
    except Exception as exc:  # weights missing offline, CUDA trouble...
        raise EncoderError(f"cannot start carvekit's HiInterface on {target}: {type(exc).__name__}: {exc}") from exc

    def matte(image: Image.Image) -> Image.Image:
        # carvekit blends onto (130, 130, 130) itself; its alpha channel is the matte.
        return interface([image])[0].getchannel("A")

    version = getattr(__import__("carvekit"), "__version__", None)
    return Matting(matte, name="carvekit", identity={"backend": "carvekit", "version": version, **CARVEKIT_SETTINGS},
                   fill=fill)


def _transformers(
    target: str, revision: str | None, device: str | None, trust_remote_code: bool, fill: tuple[int, int, int]
) -> Matting:
    import torch
    import torch.nn.functional as F
    from transformers import (
        AutoConfig,
        AutoImageProcessor,
        AutoModelForImageSegmentation,
        AutoModelForSemanticSegmentation,
    )
    from transformers.models.auto.modeling_auto import MODEL_FOR_SEMANTIC_SEGMENTATION_MAPPING_NAMES

    from fp_rank.encoding.backends._pretrained import load_pretrained, model_revision, remote_code_guard

    if os.path.sep in target or target.startswith(".") or os.path.isabs(target):
        if not os.path.isdir(target):
            raise EncoderError(f"matting checkpoint folder {target!r} does not exist")
    config = load_pretrained(AutoConfig, target, revision, "matting config", trust_remote_code=trust_remote_code)
    semantic = config.model_type in MODEL_FOR_SEMANTIC_SEGMENTATION_MAPPING_NAMES
    if not semantic:
        remote_code_guard(target, revision, trust_remote_code)
    auto = AutoModelForSemanticSegmentation if semantic else AutoModelForImageSegmentation
    model = load_pretrained(auto, target, revision, "matting model", trust_remote_code=trust_remote_code)
    processor = load_pretrained(AutoImageProcessor, target, revision, "matting image processor",
                                trust_remote_code=trust_remote_code)
    where = _device(device)
    model = model.to(where).eval()
    labels = {int(k): str(v).lower() for k, v in (getattr(config, "id2label", None) or {}).items()}
    background_index = next((k for k, v in labels.items() if v in ("background", "bg")), 0)

    @torch.inference_mode()
    def matte(image: Image.Image) -> Image.Image:
        pixels = processor(images=image, return_tensors="pt")["pixel_values"].to(where)
        out = model(pixel_values=pixels)
        logits = getattr(out, "logits", None)
        if logits is None:  # remote-code models return a tensor or a list of side outputs (last = final)
            logits = out[-1] if isinstance(out, (list, tuple)) else out
        if not isinstance(logits, torch.Tensor) or logits.ndim != 4:
            raise EncoderError(f"matting model {target!r} returned no (batch, classes, h, w) logits")
        logits = logits.float()
        if logits.shape[1] == 1:
            alpha = logits.sigmoid()
        else:
            alpha = 1.0 - logits.softmax(dim=1)[:, background_index : background_index + 1]
        alpha = F.interpolate(alpha, size=(image.height, image.width), mode="bilinear", align_corners=False)
        values = (alpha[0, 0].clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
        return Image.fromarray(values)

    return Matting(
        matte, name=target,
        identity={"backend": "transformers", "model_id": target, "revision": model_revision(model, target, revision),
                  "rule": "1 - softmax[background]" if config.num_labels > 1 else "sigmoid",
                  "background_index": background_index},
        fill=fill,
    )
