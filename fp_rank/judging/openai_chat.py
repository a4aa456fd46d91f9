"""A judge served by an OpenAI-compatible chat-completions endpoint (``--judge openai:MODEL``).

The endpoint and the key come from the environment, as the official client reads them:
``OPENAI_BASE_URL`` (default ``https://api.openai.com/v1``) and ``OPENAI_API_KEY``. Neither is
ever taken from the command line, and the key is never logged or written into a report (the
report records the endpoint's scheme, host and path only).

Each request sends the conversation of :mod:`fp_rank.judging.prompt` with the two images as
base64 JPEG data URLs (``detail: high``), the model, the temperature (1.0, as the reference
code) and a seed. Calls that fail for a passing reason (429, 408, 5xx, a timeout, a dropped
connection, a body that is not the API's JSON) are retried with exponential backoff and full
jitter, or after what a ``Retry-After`` header asks (capped at a minute); calls that can never work
(401/403: the key; 404: the model or path; other 4xx: the request) stop the run with the
server's own message.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import random
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from email.utils import parsedate_to_datetime
from typing import Any

from fp_rank.errors import Opt, printable
from fp_rank.judging.base import CallBudget, JudgeError, JudgeRequest, Unavailable, check_positive_seconds

DEFAULT_BASE_URL = "https://api.openai.com/v1"
#: HTTP statuses worth another try.
RETRY_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 529})
#: The longest wait a ``Retry-After`` header may impose, in seconds.
MAX_RETRY_AFTER = 60.0
_READ_BLOCK = 1 << 16
#: The largest reply body read, in bytes (a chat reply is a few kB).
MAX_BODY = 8 << 20


class OpenAIChatJudge:
    """A chat model behind an OpenAI-compatible endpoint.

    Args:
        model: the model name the endpoint serves (e.g. ``gpt-4o-2024-05-13``, the reference's).
        timeout: seconds one call may take, start to end (a server that stalls is cut off).
        concurrency: requests in flight at once.
        max_retries: further tries of a call that failed for a passing reason.
        backoff: first backoff in seconds (doubling, capped at ``max_backoff``, full jitter).
        temperature: sampling temperature sent with each request.

    Raises:
        JudgeError: the environment names no usable endpoint or key.
    """

    backend = "openai-chat"

    def __init__(self, model: str, *, timeout: float = 120.0, concurrency: int = 4, max_retries: int = 5,
                 backoff: float = 1.0, max_backoff: float = 30.0, temperature: float = 1.0) -> None:
        if not isinstance(model, str) or not model.strip() or any(c in model for c in "\r\n\x00"):
            raise JudgeError(Opt("judge"), f": openai:MODEL needs a model name, got {model!r}")
        self.model = model
        self.timeout = check_positive_seconds("judge_timeout", timeout)
        self.concurrency = int(concurrency)
        self.max_retries = int(max_retries)
        self.backoff, self.max_backoff = float(backoff), float(max_backoff)
        self.temperature = float(temperature)
        self._url, self.endpoint = _endpoint(os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL)
        key = os.environ.get("OPENAI_API_KEY") or ""
        if key and (not key.isascii() or not key.isprintable() or " " in key.strip()):
            raise JudgeError("OPENAI_API_KEY holds characters an HTTP header cannot carry (a space, a line break or a "
                             "non-ASCII letter); set it to the key alone")
        if not key and urllib.parse.urlsplit(self._url).hostname == "api.openai.com":
            raise JudgeError("the judge calls api.openai.com but OPENAI_API_KEY is not set; export it (or point "
                             "OPENAI_BASE_URL at another OpenAI-compatible server)")
        self._key = key.strip()

    def __repr__(self) -> str:  # never shows the key
        return f"OpenAIChatJudge({self.model!r}, endpoint={self.endpoint!r})"

    def identity(self) -> dict[str, Any]:
        return {"backend": self.backend, "model": self.model, "revision": None, "endpoint": self.endpoint,
                "temperature": self.temperature}

    def ask(self, request: JudgeRequest, budget: CallBudget) -> str:
        body = json.dumps(self._payload(request)).encode()
        last = ""
        for attempt in range(self.max_retries + 1):
            budget.take()
            try:
                return self._call(body)
            except _Retry as exc:
                last = str(exc)
                if attempt == self.max_retries:
                    break
                time.sleep(self._wait(attempt, exc.retry_after))
        raise Unavailable(f"{last} (after {self.max_retries + 1} tries)")

    # -- one call -----------------------------------------------------------------------------------
    def _payload(self, request: JudgeRequest) -> dict[str, Any]:
        def image(data: bytes) -> dict[str, Any]:
            url = "data:image/jpeg;base64," + base64.b64encode(data).decode("ascii")
            return {"type": "image_url", "image_url": {"url": url, "detail": "high"}}

        messages: list[dict[str, Any]] = [{"role": "user", "content": request.user}]
        if request.assistant is not None:
            messages.append({"role": "assistant", "content": request.assistant})
        messages.append({"role": "user", "content": [image(request.reference), image(request.generated)]})
        return {"model": self.model, "messages": messages, "temperature": self.temperature, "seed": request.seed}

    def _call(self, body: bytes) -> str:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        req = urllib.request.Request(self._url, data=body, headers=headers, method="POST")
        start = time.monotonic()
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                data = _read(resp, start + self.timeout)
        except urllib.error.HTTPError as exc:
            raise self._refusal(exc) from None
        except (TimeoutError, socket.timeout):
            raise _Retry(f"no reply within {self.timeout:g} s (judge_timeout)") from None
        except urllib.error.URLError as exc:
            reason = exc.reason
            if isinstance(reason, (TimeoutError, socket.timeout)):
                raise _Retry(f"no reply within {self.timeout:g} s (judge_timeout)") from None
            if isinstance(reason, (ConnectionResetError, ConnectionAbortedError)):
                raise _Retry(f"connection dropped ({reason})") from None
            raise JudgeError(f"cannot reach the judge at {self.endpoint}: {reason}; check OPENAI_BASE_URL") from None
        except (ConnectionError, http.client.HTTPException, OSError) as exc:
            raise _Retry(f"connection dropped ({type(exc).__name__})") from None
        return _content(data)

    def _refusal(self, exc: urllib.error.HTTPError) -> Exception:
        try:
            detail = _server_message(exc.read(_READ_BLOCK))
        except Exception:  # the body of an error is a courtesy; its absence changes nothing
            detail = ""
        said = f": {detail}" if detail else ""
        if exc.code in RETRY_STATUSES:
            return _Retry(f"HTTP {exc.code}{said}", _retry_after(exc.headers.get("Retry-After")))
        hint = {
            401: "the endpoint refused the key; check OPENAI_API_KEY",
            403: "the key may not use this model or endpoint; check OPENAI_API_KEY and the model name",
            404: "no such model or path; check the model name and that OPENAI_BASE_URL ends with the API root (/v1)",
        }.get(exc.code, "the endpoint refused the request")
        return JudgeError(f"the judge endpoint {self.endpoint} answered HTTP {exc.code}{said} ({hint})")

    def _wait(self, attempt: int, retry_after: float | None) -> float:
        """The server's ``Retry-After`` when it sent one, else exponential backoff with full jitter."""
        if retry_after is not None:
            return retry_after
        return random.uniform(0, min(self.max_backoff, self.backoff * 2**attempt))


class _Retry(Exception):
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def _endpoint(base: str) -> tuple[str, str]:
    """(chat-completions URL, the endpoint as recorded: scheme, host, port and path, no credentials)."""
    parts = urllib.parse.urlsplit(base.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise JudgeError(f"OPENAI_BASE_URL must be an http(s) URL such as {DEFAULT_BASE_URL}, got "
                         f"{printable(base[:80])!r}")
    host = parts.hostname + (f":{parts.port}" if parts.port else "")
    path = parts.path.rstrip("/")
    shown = f"{parts.scheme}://{host}{path}"
    netloc = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit((parts.scheme, netloc, path + "/chat/completions", parts.query, "")), shown


def _read(resp: Any, deadline: float) -> bytes:
    chunks, size = [], 0
    while True:
        if time.monotonic() > deadline:
            raise TimeoutError
        block = resp.read1(_READ_BLOCK) if hasattr(resp, "read1") else resp.read(_READ_BLOCK)
        if not block:
            return b"".join(chunks)
        size += len(block)
        if size > MAX_BODY:
            raise _Retry(f"the reply is larger than {MAX_BODY >> 20} MB")
        chunks.append(block)


def _content(data: bytes) -> str:
    """The first choice's message text (parts joined); a body that is not the API's JSON is retried."""
    try:
        message = json.loads(data)["choices"][0]["message"]
        content = message.get("content")
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        raise _Retry(f"the reply is not a chat completion ({printable(data[:80].decode('utf-8', 'replace'))!r})") from None
    if isinstance(content, list):
        content = "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return content if isinstance(content, str) else ""


def _server_message(data: bytes) -> str:
    text = data.decode("utf-8", "replace")
    try:
        error = json.loads(text).get("error")
        text = error.get("message", text) if isinstance(error, dict) else str(error or text)
    except (ValueError, AttributeError):
        pass
    return printable(" ".join(text.split()))[:300]


def _retry_after(value: str | None) -> float | None:
    """Seconds a ``Retry-After`` header asks for (a number or an HTTP date), capped; None if absent or unreadable."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER) if seconds == seconds else None


__all__ = ["DEFAULT_BASE_URL", "OpenAIChatJudge"]
