"""What every judge backend shares: the request, the call budget, the failures, the image rule."""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from fp_rank.errors import FpRankError, InputError, Opt

#: How both images are prepared before a judge sees them (the reference code's rule, DreamBench++'s size).
IMAGE_RULE = "8-bit RGB, resized to 512 x 512 (bicubic, aspect not kept), JPEG quality 75"
IMAGE_SIZE = (512, 512)
JPEG_QUALITY = 75


class JudgeError(FpRankError):
    """The judge cannot work at all (refused key, unknown model, unreachable host, a model that
    cannot load): the run stops; judgements already made stay cached."""


class Unavailable(Exception):
    """One call failed for a passing reason (rate limit, server error, timeout) after its retries."""


class BudgetSpent(Exception):
    """The call cap (``judge_max_calls``) is reached."""


@dataclass(frozen=True)
class JudgeRequest:
    """One question to the judge.

    Attributes:
        user: the first user turn (task and scale).
        assistant: the primer turn (None: none).
        reference: the reference image as JPEG bytes (:func:`prepare_image`).
        generated: the generated image as JPEG bytes.
        seed: the sampling seed sent with the request (derived from the cache key and the attempt).
    """

    user: str
    assistant: str | None
    reference: bytes
    generated: bytes
    seed: int


class Stopped(Exception):
    """The run is stopping (Ctrl-C, or a fatal error of another call): no further call or wait."""


class CallBudget:
    """Counts calls across threads and refuses the one past ``limit`` (None: no cap); carries the
    run's stop signal, which ends every further call and every backoff wait at once."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.made = 0
        self.stop = threading.Event()
        self._lock = threading.Lock()

    def take(self) -> None:
        """Count one call.

        Raises:
            Stopped: the run is stopping.
            BudgetSpent: ``limit`` calls were made already.
        """
        if self.stop.is_set():
            raise Stopped
        with self._lock:
            if self.limit is not None and self.made >= self.limit:
                raise BudgetSpent
            self.made += 1

    def wait(self, seconds: float) -> None:
        """Sleep ``seconds`` (a backoff), or less when the run stops.

        Raises:
            Stopped: the run stopped during the wait.
        """
        if self.stop.wait(max(0.0, seconds)):
            raise Stopped


@runtime_checkable
class Judge(Protocol):
    """A judge backend: ``ask`` sends one request and returns the reply's text.

    ``ask`` calls ``budget.take()`` before each call it makes (a retry is a call) and waits with
    ``budget.wait`` (so a stopping run ends it), raises :class:`Unavailable` when a call keeps
    failing for a passing reason, and :class:`JudgeError` when no call can succeed.
    ``concurrency`` is how many requests it may serve at once; ``counts_calls`` says that ``ask``
    takes from the budget itself (a judge without it is charged one call per ``ask``).
    """

    concurrency: int

    def identity(self) -> dict[str, Any]: ...

    def ask(self, request: JudgeRequest, budget: CallBudget) -> str: ...


def prepare_image(item: Any, name: str) -> bytes:
    """``item`` (any image source) as the judge sees it: :data:`IMAGE_RULE`, as JPEG bytes."""
    from PIL import Image

    from fp_rank.images.decode import to_rgb

    rgb = to_rgb(item, name=name).resize(IMAGE_SIZE, Image.Resampling.BICUBIC)
    out = io.BytesIO()
    rgb.save(out, format="JPEG", quality=JPEG_QUALITY)
    return out.getvalue()


def check_positive_seconds(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or value != value:
        raise InputError(Opt(name), f" must be a positive number of seconds, got {value!r}")
    return float(value)
