"""A loopback HTTP server that speaks the OpenAI chat-completions API, for the judge's tests.

Each request is answered by a ``responder(body, n)`` (``n``: the 0-based request count) returning a
:class:`Reply`: a status, headers, a reply text (wrapped as a chat completion) or a raw body, and
optionally a stall before answering or while sending the body. The server records every request
(headers and JSON body) and the most requests it served at once.
"""

from __future__ import annotations

import base64
import io
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
from PIL import Image


@dataclass
class Reply:
    text: str | None = "Score: 3"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None  # sent as it is, instead of a chat completion of ``text``
    stall: float = 0.0  # seconds before the status line
    trickle: float = 0.0  # seconds between body bytes


Responder = Callable[[dict[str, Any], int], Reply]


class ChatServer:
    """``with ChatServer(responder) as server:`` serves on ``server.base_url`` (``http://127.0.0.1:PORT/v1``)."""

    def __init__(self, responder: Responder) -> None:
        self.responder = responder
        self.requests: list[dict[str, Any]] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 (the http.server API)
                with server._lock:
                    n = len(server.requests)
                    server.in_flight += 1
                    server.most_in_flight = max(server.most_in_flight, server.in_flight)
                try:
                    length = int(self.headers.get("Content-Length", 0))
                    body = json.loads(self.rfile.read(length))
                    with server._lock:
                        server.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                    reply = server.responder(body, n)
                    if reply.stall:
                        time.sleep(reply.stall)
                    payload = reply.body if reply.body is not None else json.dumps(completion(reply.text)).encode()
                    self.send_response(reply.status)
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    if reply.trickle:
                        for byte in payload:
                            self.wfile.write(bytes([byte]))
                            self.wfile.flush()
                            time.sleep(reply.trickle)
                    else:
                        self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                finally:
                    with server._lock:
                        server.in_flight -= 1

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def __enter__(self) -> ChatServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def completion(text: str | None) -> dict[str, Any]:
    return {"id": "chatcmpl-test", "object": "chat.completion", "model": "test",
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}]}


def images_of(body: dict[str, Any]) -> list[Image.Image]:
    """The images of a request (reference first), decoded from their data URLs."""
    parts = body["messages"][-1]["content"]
    out = []
    for part in parts:
        url = part["image_url"]["url"]
        header, _, data = url.partition(",")
        assert header == "data:image/jpeg;base64", header
        out.append(Image.open(io.BytesIO(base64.b64decode(data))))
    return out


def pixel_judge(body: dict[str, Any], n: int) -> Reply:
    """A judge that looks: 4 for near-identical 32 x 32 thumbnails, down to 0 as they differ (mean absolute
    difference of 0.25 of the range or more)."""
    ref, gen = (np.asarray(im.convert("RGB").resize((32, 32)), dtype=np.float64) / 255 for im in images_of(body))
    diff = float(np.abs(ref - gen).mean())
    return Reply(f"Score: {int(round(4 * max(0.0, 1 - diff / 0.25)))}")
