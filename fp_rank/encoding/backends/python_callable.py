"""The ``callable`` backend: a user's Python function from RGB PIL images to an ``(n, d)`` array.

The function receives the decoded images of one batch as they are (no resizing) and runs on the
CPU. Its vectors are cached only when a ``revision`` names its version; without one fp-rank
cannot tell two versions of the function apart.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from fp_rank.encoding.backends import LoadRequest
from fp_rank.encoding.encoders import Encoder, normalise_rows, output_tensor
from fp_rank.errors import EncoderError, InputError


class CallableEncoder(Encoder):
    """An :class:`Encoder` whose model is a Python callable taking a list of RGB PIL images."""

    def __init__(self, fn: Callable[..., Any], *, label: str, revision: str | None, dtype: str) -> None:
        super().__init__(
            name=f"callable:{label}",
            model_id=f"callable:{label}",
            revision=revision,
            preprocessing={"callable": label},
            pooling="callable",
            preprocess=_as_is,
            forward=fn,
            device="cpu",
            dtype=dtype,
            cacheable=revision is not None,
            description="user-supplied Python callable",
        )

    def embed_tensor(self, pixel_values: Any) -> torch.Tensor:
        """A batch of RGB PIL images -> ``(B, D)`` unit vectors, naming the callable in errors.

        Raises:
            EncoderError: The callable raised, or returned something other than one vector per image.
        """
        images = pixel_values
        try:
            out = output_tensor(self._forward(images))
        except EncoderError as exc:  # unusable output: say whose
            raise EncoderError(f"encoder callable {self.name!r}: {exc}") from exc
        except InputError:
            raise
        except Exception as exc:  # the user's function failed: name it, keep its message
            raise EncoderError(f"encoder callable {self.name!r} raised {type(exc).__name__}: {exc}") from exc
        if out.ndim != 2 or out.shape[0] != len(images):
            raise EncoderError(
                f"encoder callable {self.name!r} returned shape {tuple(out.shape)} for {len(images)} images; "
                "expected (n_images, dim)"
            )
        return normalise_rows(out.float().cpu(), self.name)


def _as_is(images: list[Any]) -> list[Any]:
    return images


def load(request: LoadRequest) -> Encoder:
    """Wrap ``request.source`` (the callable); it is named ``request.name`` or its qualified name."""
    fn = request.source
    if not callable(fn):
        raise EncoderError(f"the callable backend needs a Python callable, got {type(fn).__name__}")
    label = request.name or getattr(fn, "__qualname__", None) or type(fn).__name__
    return CallableEncoder(fn, label=label, revision=request.revision, dtype=request.dtype)
