"""A judge served by an OpenAI-compatible chat-completions endpoint (``--judge openai:MODEL``).

The endpoint and the key come from the environment only, as the official client reads them:
``OPENAI_BASE_URL`` (default ``https://api.openai.com/v1``) and ``OPENAI_API_KEY``. The key is never
logged or reported, and is scrubbed from whatever a server says; the report records the endpoint's
scheme, host, port and path (of a query such as Azure's ``api-version``, a digest and the names).

Each request sends the conversation of :mod:`fp_rank.judging.prompt` with the two images as base64
JPEG data URLs (``detail: high``), the model, the temperature (1.0, as the reference code) and a seed.
Passing failures (429, 408, 5xx, a timeout, a dropped connection, a body that is not the API's JSON)
are retried after jittered exponential backoff or the server's ``Retry-After`` (at most a minute), in
waits a stopping run ends at once; 401/403 (the key), 404 (the model or path), other 4xx and redirects
(never followed: they would carry the key elsewhere) stop the run with the server's own message.
Requests go by :mod:`http.client` (through ``HTTP(S)_PROXY`` unless ``NO_PROXY`` names the host), and
a watchdog shuts the connection at ``timeout`` however slowly a server sends.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.client
import ipaddress
import json
import os
import random
import re
import socket
import ssl
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from email.message import Message
from email.utils import parsedate_to_datetime
from typing import Any

from fp_rank.errors import Opt, printable
from fp_rank.judging.base import CallBudget, JudgeError, JudgeRequest, Unavailable, check_positive_seconds

DEFAULT_BASE_URL = "https://api.openai.com/v1"
#: HTTP statuses worth another try.
RETRY_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 529})
#: The longest wait a ``Retry-After`` header may impose, in seconds.
MAX_RETRY_AFTER = 60.0
#: The largest reply body read, in bytes (a chat reply is a few kB); of an error's body, the first 64 kB.
MAX_BODY = 8 << 20
#: A key shorter than this is a placeholder (``EMPTY``, ``none``), not scrubbed from replies.
_MIN_SECRET = 6
_BEARER = re.compile(r"(?i)\bbearer\s+(?=[A-Za-z._~+/=-]*\d)[A-Za-z0-9._~+/=-]{12,}")  # a token holds a digit
_JSON_OBJECT = re.compile(rb"\s*\{")
_SAFE = "/%:@!$&'()*+,;=-._~"  # left as they are when a path or query is percent-encoded


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
        JudgeError: the environment names no usable endpoint, key or proxy.
    """

    backend = "openai-chat"
    #: ``ask`` takes one call from the budget per request it sends (retries included).
    counts_calls = True

    def __init__(self, model: str, *, timeout: float = 120.0, concurrency: int = 4, max_retries: int = 5,
                 backoff: float = 1.0, max_backoff: float = 30.0, temperature: float = 1.0) -> None:
        if not isinstance(model, str) or not model.strip() or any(c in model for c in "\r\n\x00"):
            raise JudgeError(Opt("judge"), f": openai:MODEL needs a model name, got {model!r}")
        self.model = model
        self.timeout = check_positive_seconds("judge_timeout", timeout)
        self.concurrency, self.max_retries = int(concurrency), int(max_retries)
        self.backoff, self.max_backoff = float(backoff), float(max_backoff)
        self.temperature = float(temperature)
        self._target = _parse_base_url(os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL)
        self.endpoint = self._target.endpoint
        key = os.environ.get("OPENAI_API_KEY") or ""
        if key and (not key.isascii() or not key.isprintable() or " " in key.strip()):
            raise JudgeError("OPENAI_API_KEY holds characters an HTTP header cannot carry (a space, a line break or a "
                             "non-ASCII letter); set it to the key alone")
        if not key and self._target.host == "api.openai.com":
            raise JudgeError("the judge calls api.openai.com but OPENAI_API_KEY is not set; export it (or point "
                             "OPENAI_BASE_URL at another OpenAI-compatible server)")
        self._key = key.strip()
        self._proxy = _proxy_for(self._target)
        self._tls = ssl.create_default_context() if self._target.scheme == "https" else None
        self._models: list[str] = []
        self._models_lock = threading.Lock()

    def __repr__(self) -> str:  # never shows the key
        return f"OpenAIChatJudge({self.model!r}, endpoint={self.endpoint!r})"

    def identity(self) -> dict[str, Any]:
        """What decides a judgement: fixed for the judge's life (it keys the judgement cache)."""
        out = {"backend": self.backend, "model": self.model, "revision": None, "endpoint": self.endpoint,
               "temperature": self.temperature}
        if query := self._target.query:  # its values may be secrets: a digest and the names only
            names = [printable(k) for k, _ in urllib.parse.parse_qsl(query, keep_blank_values=True)]
            out["query"] = {"sha256": hashlib.sha256(query.encode()).hexdigest(), "names": names}
        return out

    def served_models(self) -> list[str]:
        """The ``model`` each successful reply named (the model actually served), distinct, in the order seen."""
        with self._models_lock:
            return list(self._models)

    def preflight(self) -> None:
        """One ``GET {base}/models`` (not a judge call, bounded by ``timeout``), before any image is encoded.

        Raises:
            JudgeError: HTTP 401 (the key), a host that cannot be reached, a redirect; anything else (a 403 of
                a key without the model-list scope, a 404, a 5xx, a timeout) passes.
        """
        try:
            status, headers, data = self._exchange("GET", "/models", None)
        except _Retry:
            return
        if status == 401:
            raise self._refusal(status, headers, data)

    def ask(self, request: JudgeRequest, budget: CallBudget) -> str:
        """The reply's text to ``request``, after retries of passing failures.

        Raises:
            Stopped: the run is stopping (from ``budget``, unchanged).
            BudgetSpent: the call cap is reached.
            Unavailable: every try failed for a passing reason.
            JudgeError: the endpoint refused the request, redirected it, or cannot be reached.
        """
        body = json.dumps(self._payload(request)).encode()
        last = ""
        for attempt in range(self.max_retries + 1):
            budget.take()
            try:
                return self._call(body)
            except _Retry as exc:
                last = str(exc)
                if attempt < self.max_retries:
                    budget.wait(self._wait(attempt, exc.retry_after))
        raise Unavailable(f"{_scrub(last, self._key)} (after {self.max_retries + 1} tries)")

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
        status, headers, data = self._exchange("POST", "/chat/completions", body)
        if not 200 <= status < 300:
            raise self._refusal(status, headers, data)
        if len(data) > MAX_BODY:
            raise _Retry(f"the reply is larger than {MAX_BODY >> 20} MB")
        text, model = _content(data, self._key)
        with self._models_lock:
            if model and model not in self._models:
                self._models.append(model)
        return _scrub(text, self._key)

    def _exchange(self, method: str, suffix: str, body: bytes | None) -> tuple[int, Message, bytes]:
        """(status, headers, body) of one request to ``{base}{suffix}`` within ``timeout``; raises JudgeError
        (a redirect, a host that cannot be reached) or _Retry (no reply in time, a dropped connection)."""
        watch = _Watchdog(self.timeout)
        conn = self._connection(watch)
        status, connected = 0, False
        try:
            conn.connect()
            connected = True
            conn.request(method, self._target.url(suffix, absolute=self._proxy is not None and not self._tls),
                         body=body, headers=self._headers(body))
            resp = conn.getresponse()
            status, headers = resp.status, resp.headers
            if 300 <= status < 400:
                raise self._redirected(headers.get("Location"), suffix)
            if 200 <= status < 300:  # one byte more than allowed tells a body too large
                data = resp.read(MAX_BODY + 1)
            else:  # an error's body is a courtesy: its status says what happened, however the body ends
                try:
                    data = resp.read(1 << 16)
                except (OSError, http.client.HTTPException):
                    data = b""
        except (OSError, http.client.HTTPException, UnicodeError) as exc:
            raise self._failure(exc, connected, watch.close()) from None
        finally:
            expired = watch.close()
            conn.close()
        if expired and 200 <= status < 300:
            raise _Retry(f"no reply within {self.timeout:g} s (judge_timeout)")
        return status, headers, data

    def _connection(self, watch: _Watchdog) -> http.client.HTTPConnection:
        target, proxy = self._target, self._proxy
        host, port = proxy[:2] if proxy else (target.host, target.port)
        if self._tls is not None:
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                host, port, timeout=self.timeout, context=self._tls)
            if proxy:
                conn.set_tunnel(target.host, target.port, headers=proxy[2])
        else:
            conn = http.client.HTTPConnection(host, port, timeout=self.timeout)
        # every socket the connection opens (to the proxy or the host) is handed to the watchdog
        conn._create_connection = watch.create_connection  # type: ignore[attr-defined]
        return conn

    def _headers(self, body: bytes | None) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": "fp-rank"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        return {**headers, **(self._proxy[2] if self._proxy and not self._tls else {})}  # a plain proxy's login

    def _failure(self, exc: BaseException, connected: bool, expired: bool) -> Exception:
        """A timeout or a dropped connection is retried; an unreachable host (or a bad certificate) stops the run."""
        if expired or isinstance(exc, TimeoutError):
            return _Retry(f"no reply within {self.timeout:g} s (judge_timeout)")
        if connected or isinstance(exc, (ConnectionResetError, ConnectionAbortedError, http.client.HTTPException)):
            return _Retry(f"connection dropped ({type(exc).__name__})")
        via = " through the proxy {}:{}".format(*self._proxy[:2]) if self._proxy else ""
        reason = _scrub(printable(str(exc) or type(exc).__name__), self._key)[:200]
        return JudgeError(f"cannot reach the judge at {self.endpoint}{via}: {reason}; check OPENAI_BASE_URL")

    def _redirected(self, location: str | None, suffix: str) -> JudgeError:
        """The refusal of a redirect, naming where it pointed (the API root when it kept the suffix)."""
        try:
            if not location:
                raise ValueError("no Location")
            where = urllib.parse.urlsplit(urllib.parse.urljoin(self._target.url(suffix, absolute=True), location or ""))
            path = where.path[: -len(suffix)] if where.path.endswith(suffix) else where.path
            shown = f"{where.scheme}://{where.netloc.rpartition('@')[2]}{path}"
        except ValueError:
            shown = "an address that is not a URL (or none)"
        shown = _scrub(printable(shown), self._key)[:200]
        return JudgeError(f"the endpoint redirected to {shown}; set OPENAI_BASE_URL to the final URL (it is "
                          f"{self.endpoint} now; redirects are not followed, so the key goes nowhere else)")

    def _refusal(self, status: int, headers: Message, data: bytes) -> Exception:
        detail = _server_message(data, self._key)
        said = f": {detail}" if detail else ""
        if status in RETRY_STATUSES:
            return _Retry(f"HTTP {status}{said}", _retry_after(headers.get("Retry-After")))
        hint = {
            401: "the endpoint refused the key; check OPENAI_API_KEY",
            403: "the key may not use this model or endpoint; check OPENAI_API_KEY and the model name",
            404: "no such model or path; check the model name and that OPENAI_BASE_URL ends with the API root (/v1)",
        }.get(status, "the endpoint refused the request")
        return JudgeError(f"the judge endpoint {self.endpoint} answered HTTP {status}{said} ({hint})")

    def _wait(self, attempt: int, retry_after: float | None) -> float:
        """The server's ``Retry-After`` when it sent one, else exponential backoff with full jitter."""
        jittered = random.uniform(0, min(self.max_backoff, self.backoff * 2**attempt))
        return retry_after if retry_after is not None else jittered


class _Retry(Exception):
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class _Target:
    """The judge's address: ``host`` in ASCII (IPv6 unbracketed), ``path`` and ``query`` percent-encoded."""

    scheme: str
    host: str
    port: int
    hostport: str
    path: str
    query: str

    @property
    def endpoint(self) -> str:  # as recorded: no credentials, no query
        return f"{self.scheme}://{self.hostport}{self.path}"

    def url(self, suffix: str, *, absolute: bool) -> str:
        """The request target of ``{base}{suffix}`` (absolute: with scheme and host, as a proxy wants it)."""
        target = self.path + suffix + (f"?{self.query}" if self.query else "")
        return f"{self.scheme}://{self.hostport}{target}" if absolute else target


def _parse_base_url(base: str) -> _Target:
    """``OPENAI_BASE_URL`` as a :class:`_Target`; raises JudgeError naming the variable, the value (credentials
    left out) and what to write."""
    text = base.strip()
    shown = printable(re.sub(r"^([^/]*//)[^/?#]*@", r"\1", text)[:80])

    def refuse(problem: str) -> JudgeError:
        return JudgeError(f"OPENAI_BASE_URL {problem}, got {shown!r}; set it to the API root, such as "
                          f"{DEFAULT_BASE_URL} or http://localhost:8000/v1")

    if any(c.isspace() or not c.isprintable() for c in text):
        raise refuse("holds a space or a control character")
    try:
        parts = urllib.parse.urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise refuse(f"is not a usable URL ({exc})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise JudgeError(f"OPENAI_BASE_URL must be an http(s) URL such as {DEFAULT_BASE_URL}, got {shown!r}")
    if "@" in parts.netloc:
        raise refuse("holds credentials (user:password@): leave them out and put the key in OPENAI_API_KEY")
    if port == 0:
        raise refuse("names port 0")
    host = parts.hostname
    try:
        if ":" in host:
            ipaddress.IPv6Address(host.partition("%")[0])
        else:
            host = host.encode("idna").decode("ascii")
    except (ValueError, UnicodeError):
        raise refuse(f"has a host name that is not valid ({printable(parts.hostname)!r})") from None
    path = urllib.parse.quote(parts.path.rstrip("/"), safe=_SAFE)
    if path.endswith("/chat/completions"):
        raise refuse("names the chat-completions path, not the API root")
    hostport = (f"[{host}]" if ":" in host else host) + (f":{port}" if port is not None else "")
    return _Target(parts.scheme, host, port or (443 if parts.scheme == "https" else 80), hostport, path,
                   urllib.parse.quote(parts.query, safe=_SAFE + "?"))


def _proxy_for(target: _Target) -> tuple[str, int, dict[str, str]] | None:
    """(host, port, headers: Proxy-Authorization when it names a user) of the proxy ``HTTP(S)_PROXY`` names for
    ``target``; None: none, or ``NO_PROXY`` names its host. Raises JudgeError: the setting is not a URL."""
    proxy = urllib.request.getproxies().get(target.scheme)
    if not proxy or urllib.request.proxy_bypass(target.hostport):
        return None
    try:
        parts = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        port, parts = 0, urllib.parse.urlsplit("")
    if not parts.hostname or not port:
        raise JudgeError(f"{target.scheme.upper()}_PROXY (the judge's proxy) is not a URL such as http://proxy:3128")
    headers = {}
    if parts.username is not None:
        user = f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password or '')}"
        headers["Proxy-Authorization"] = "Basic " + base64.b64encode(user.encode()).decode("ascii")
    return parts.hostname, port, headers


class _Watchdog:
    """Shuts a call's sockets down at its deadline: no step (a proxy's CONNECT, the TLS handshake, the status
    line, headers, body) outlives ``timeout``. It shuts a duplicate of each socket, whose descriptor no other
    call can reuse before :meth:`close`."""

    def __init__(self, timeout: float) -> None:
        self.expired, self._closed = False, False
        self._socks: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(timeout, self._fire)
        self._timer.daemon = True
        self._timer.start()

    def create_connection(self, address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        sock = socket.create_connection(address, *args, **kwargs)
        with self._lock:
            if not self.expired and not self._closed:
                self._socks.append(sock.dup())
                return sock
        sock.close()
        raise TimeoutError("the deadline passed while connecting")

    def _fire(self) -> None:
        with self._lock:
            if self._closed:
                return
            self.expired = True
            for sock in self._socks:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> bool:
        """Stop watching (idempotent); whether the deadline passed."""
        self._timer.cancel()
        with self._lock:
            self._closed = True
            for sock in self._socks:
                sock.close()
            self._socks.clear()
            return self.expired


def _scrub(text: str, key: str) -> str:
    """``text`` without the key or any ``Bearer <token>`` (servers and proxies may echo the request's headers)."""
    if len(key) >= _MIN_SECRET:
        text = text.replace(key, "[OPENAI_API_KEY]")
    return _BEARER.sub("Bearer [hidden]", text)


def _content(data: bytes, key: str) -> tuple[str, str | None]:
    """(the first choice's message text, parts joined; the ``model`` the reply names). A body that is not
    a JSON object holding a chat completion is retried."""
    try:
        if not _JSON_OBJECT.match(data):
            raise ValueError("not a JSON object")
        reply = json.loads(data)
        content = reply["choices"][0]["message"].get("content")
    except (ValueError, KeyError, IndexError, TypeError, AttributeError, RecursionError):
        snippet = _scrub(data[:1024].decode("utf-8", "replace"), key)[:80]
        raise _Retry(f"the reply is not a chat completion ({printable(snippet)!r})") from None
    if isinstance(content, list):
        content = "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    model = reply.get("model")
    model = printable(_scrub(model, key))[:200] if isinstance(model, str) and model.strip() else None
    return (content if isinstance(content, str) else ""), model


def _server_message(data: bytes, key: str) -> str:
    """The message of an error body (the API's ``{"error": {"message": ...}}``, else its text), key scrubbed."""
    text = data.decode("utf-8", "replace")
    if _JSON_OBJECT.match(data):
        try:
            error = json.loads(text).get("error")
            text = error.get("message", text) if isinstance(error, dict) else str(error or text)
        except (ValueError, AttributeError, RecursionError):
            pass
    return printable(" ".join(_scrub(str(text), key).split()))[:300]


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
