"""The served judge's transport against loopback servers that misbehave: redirects, servers that trickle
their status line or an error body, a run that stops during a backoff, bodies nested too deep, base URLs
the transport cannot use, servers that echo the key, the recorded endpoint and query, the served model,
the preflight, proxies. Each test names the finding of the review it guards. No test reaches the network."""

from __future__ import annotations

import io
import json
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from PIL import Image

from fp_rank.judging import BUILT_IN, CallBudget, JudgeError, JudgeRequest
from fp_rank.judging.base import Stopped, Unavailable
from fp_rank.judging.openai_chat import OpenAIChatJudge
from tests.judge_server import ChatServer, Reply, completion

KEY = "sk-transport-test-0123456789abcdef"
PROXY_VARIABLES = ("http_proxy", "https_proxy", "no_proxy", "all_proxy")


@pytest.fixture(autouse=True)
def _no_proxy_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


def _request() -> JudgeRequest:
    jpeg = io.BytesIO()
    Image.new("RGB", (8, 8), (9, 0, 0)).save(jpeg, format="JPEG")
    return JudgeRequest(BUILT_IN.user, BUILT_IN.assistant, jpeg.getvalue(), jpeg.getvalue(), 7)


def _env(monkeypatch: pytest.MonkeyPatch, base_url: str, key: str = KEY) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", base_url)
    monkeypatch.setenv("OPENAI_API_KEY", key)


def _closed_port() -> int:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_reply(status: str, body: bytes = b"", headers: dict[str, str] | None = None) -> bytes:
    head = f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    return head.encode() + b"\r\n" + body


def trickle(conn: socket.socket, data: bytes, gap: float) -> None:
    for byte in data:
        conn.sendall(bytes([byte]))
        time.sleep(gap)


class RawServer:
    """A loopback TCP server: each connection's request (its head, as text) goes to ``handler(head, conn)``,
    which writes whatever bytes it likes. ``heads`` records every request head."""

    def __init__(self, handler: Callable[[str, socket.socket], None], host: str = "127.0.0.1") -> None:
        self.handler = handler
        self.heads: list[str] = []
        self._sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        self._sock.bind((host, 0))
        self._sock.listen(16)
        self._sock.settimeout(0.1)
        self._stop = threading.Event()
        self.port = self._sock.getsockname()[1]
        self.base_url = f"http://{f'[{host}]' if ':' in host else host}:{self.port}/v1"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.settimeout(10)
                data = b""
                while b"\r\n\r\n" not in data:
                    block = conn.recv(1 << 16)
                    if not block:
                        return
                    data += block
                head = data.partition(b"\r\n\r\n")[0].decode("latin-1")
                self.heads.append(head)
                self.handler(head, conn)
            except OSError:
                pass

    def __enter__(self) -> RawServer:
        threading.Thread(target=self._serve, daemon=True).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        time.sleep(0.15)
        self._sock.close()


def answer(status: str, body: bytes = b"", headers: dict[str, str] | None = None) -> Callable[[str, socket.socket], None]:
    return lambda head, conn: conn.sendall(http_reply(status, body, headers))


CHAT = json.dumps(completion("Score: 4")).encode()


# -- 1: redirects are refused, never followed ----------------------------------------------------------


@pytest.mark.parametrize("status", ["301 Moved Permanently", "302 Found", "307 Temporary Redirect", "308 Permanent Redirect"])
def test_a_redirect_is_refused_and_the_key_never_goes_to_its_target(monkeypatch: pytest.MonkeyPatch, status: str) -> None:
    with RawServer(answer("200 OK", CHAT)) as elsewhere:
        location = f"http://127.0.0.1:{elsewhere.port}/steal/chat/completions"
        with RawServer(answer(status, headers={"Location": location})) as server:
            _env(monkeypatch, server.base_url)
            judge = OpenAIChatJudge("m", timeout=2, backoff=0.01)
            with pytest.raises(JudgeError, match=f"the endpoint redirected to http://127.0.0.1:{elsewhere.port}/steal; "
                                                 "set OPENAI_BASE_URL to the final URL"):
                judge.ask(_request(), CallBudget(None))
            with pytest.raises(JudgeError, match="the endpoint redirected to"):
                judge.preflight()
    assert elsewhere.heads == []
    assert len(server.heads) == 2 and server.heads[0].startswith("POST /v1/chat/completions ")


# -- 2: judge_timeout is a deadline for every part of a call -------------------------------------------------


def test_trickled_headers_and_a_trickled_error_body_end_at_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    def headers(head: str, conn: socket.socket) -> None:
        trickle(conn, b"HTTP/1.1 200 OK\r\nX-Pad: " + b"a" * 60 + b"\r\n\r\n", 0.05)

    def error_body(head: str, conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 0\r\nContent-Length: 60000\r\n\r\n")
        trickle(conn, b"x" * 60, 0.05)

    for handler, expected in [(headers, "no reply within 0.5 s"), (error_body, "HTTP 429")]:
        with RawServer(handler) as server:
            _env(monkeypatch, server.base_url)
            start = time.monotonic()
            with pytest.raises(Unavailable, match=expected):
                OpenAIChatJudge("m", timeout=0.5, max_retries=1, backoff=0.01).ask(_request(), CallBudget(None))
            assert time.monotonic() - start < 2 * 0.5 + 0.6  # two calls of at most 0.5 s each, and a margin
            assert len(server.heads) == 2


def test_requests_go_through_the_proxy_the_environment_names_unless_no_proxy_names_the_host(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    port = _closed_port()
    with RawServer(answer("200 OK", CHAT)) as proxy:
        _env(monkeypatch, f"http://127.0.0.1:{port}/v1?api-version=1")
        monkeypatch.setenv("HTTP_PROXY", f"http://user:pw@127.0.0.1:{proxy.port}")
        assert OpenAIChatJudge("m", timeout=2).ask(_request(), CallBudget(None)) == "Score: 4"
        line, *fields = proxy.heads[0].split("\r\n")
        assert line == f"POST http://127.0.0.1:{port}/v1/chat/completions?api-version=1 HTTP/1.1"
        assert "Proxy-Authorization: Basic dXNlcjpwdw==" in fields and f"Host: 127.0.0.1:{port}" in fields
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        with pytest.raises(JudgeError, match="cannot reach the judge"):
            OpenAIChatJudge("m", timeout=2).ask(_request(), CallBudget(None))
    assert len(proxy.heads) == 1


# -- 3: a stopping run ends a backoff at once ----------------------------------------------------------------


def test_a_stopping_run_ends_the_backoff_at_once_and_stopped_comes_out_of_ask(monkeypatch: pytest.MonkeyPatch) -> None:
    with ChatServer(lambda body, n: Reply(status=429, headers={"Retry-After": "5"}, body=b"{}")) as server:
        _env(monkeypatch, server.base_url)
        budget = CallBudget(None)
        threading.Timer(0.3, budget.stop.set).start()
        start = time.monotonic()
        with pytest.raises(Stopped):
            OpenAIChatJudge("m", timeout=2, max_retries=3).ask(_request(), budget)
        assert time.monotonic() - start < 1.5
        with pytest.raises(Stopped):  # a stopped run makes no further call
            OpenAIChatJudge("m", timeout=2).ask(_request(), budget)
    assert len(server.requests) == 1


# -- 4: bodies nested too deep -------------------------------------------------------------------------------


@pytest.mark.parametrize("body", [b"[" * 200_000, b' {"choices": ' + b"[" * 200_000, b"\n\n42"])
def test_a_body_that_is_not_a_json_object_or_nests_too_deep_is_retried_not_a_crash(
    monkeypatch: pytest.MonkeyPatch, body: bytes
) -> None:
    replies = [Reply(body=body), Reply(status=500, headers={"Retry-After": "0"}, body=b'{"error": ' + body), Reply("Score: 2")]
    with ChatServer(lambda b, n: replies[n]) as server:
        _env(monkeypatch, server.base_url)
        judge = OpenAIChatJudge("m", timeout=5, max_retries=2, backoff=0.01)
        assert judge.ask(_request(), CallBudget(None)) == "Score: 2"
        with ChatServer(lambda b, n: Reply(body=body)) as bad:
            _env(monkeypatch, bad.base_url)
            with pytest.raises(Unavailable, match="the reply is not a chat completion"):
                OpenAIChatJudge("m", timeout=5, max_retries=0).ask(_request(), CallBudget(None))


# -- 5: base URLs the transport cannot use ---------------------------------------------------------------------


@pytest.mark.parametrize("url, words", [
    ("http://127.0.0.1:abc/v1", "Port could not be cast"), ("http://127.0.0.1:99999/v1", "out of range"),
    ("http://127.0.0.1:0/v1", "port 0"), ("http://[::1/v1", "Invalid IPv6"), ("http://a..b/v1", "host name"),
    ("http://[1::2::3]:80/v1", "not"), ("http://127.0.0.1:8000/v 1", "a space"),
    ("http://127.0.0.1:8000/v1\x1b[0m", "control character"), ("http://127.0.0.1:8000/v1/chat/completions", "API root"),
])
def test_a_base_url_the_transport_cannot_use_is_refused_when_the_judge_is_made(
    monkeypatch: pytest.MonkeyPatch, url: str, words: str
) -> None:
    _env(monkeypatch, url)
    with pytest.raises(JudgeError, match="OPENAI_BASE_URL") as err:
        OpenAIChatJudge("m")
    assert words in str(err.value) and "set it to the API root" in str(err.value)


# -- 6: a server that echoes the key ---------------------------------------------------------------------------


def test_the_key_and_bearer_tokens_are_scrubbed_from_every_message_and_reply(monkeypatch: pytest.MonkeyPatch) -> None:
    echo = f'{{"error": {{"message": "key {KEY} (Authorization: Bearer {KEY}; Bearer abcdefghijklmnop12) refused"}}}}'
    replies = [Reply(status=503, headers={"Retry-After": "0"}, body=echo.encode()),
               Reply(body=f"<html>{'x' * 30}{KEY}</html>".encode()), Reply(f"Score: 3 ({KEY}), the flag bearer extraordinaire"),
               Reply(status=401, body=echo.encode())]
    with ChatServer(lambda b, n: replies[min(n, 3)]) as server:
        _env(monkeypatch, server.base_url)
        judge = OpenAIChatJudge("m", timeout=2, max_retries=0)
        texts = []
        for _ in range(2):
            with pytest.raises(Unavailable) as unavailable:
                judge.ask(_request(), CallBudget(None))
            texts.append(str(unavailable.value))
        texts.append(judge.ask(_request(), CallBudget(None)))
        with pytest.raises(JudgeError) as refused:
            judge.ask(_request(), CallBudget(None))
        texts.append(str(refused.value))
    assert "HTTP 503: key [OPENAI_API_KEY]" in texts[0] and "Bearer [hidden]" in texts[0]
    assert texts[2] == "Score: 3 ([OPENAI_API_KEY]), the flag bearer extraordinaire" and "HTTP 401" in texts[3]
    for text in texts:
        assert KEY not in text and KEY[:24] not in text and "abcdefghijklmnop12" not in text


# -- 7: the recorded endpoint: IPv6, credentials, the query ------------------------------------------------------


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback here")
def test_an_ipv6_endpoint_is_recorded_in_brackets_and_reached(monkeypatch: pytest.MonkeyPatch) -> None:
    with RawServer(answer("200 OK", CHAT), host="::1") as server:
        _env(monkeypatch, server.base_url)
        judge = OpenAIChatJudge("m", timeout=2)
        assert judge.endpoint == f"http://[::1]:{server.port}/v1" == judge.identity()["endpoint"]
        assert judge.ask(_request(), CallBudget(None)) == "Score: 4"
    assert f"Host: [::1]:{server.port}" in server.heads[0].split("\r\n")


def test_credentials_in_the_url_are_refused_and_the_query_is_sent_and_digested(monkeypatch: pytest.MonkeyPatch) -> None:
    _env(monkeypatch, "http://user:hunter2secret@127.0.0.1:8000/v1")
    with pytest.raises(JudgeError, match="OPENAI_API_KEY") as err:
        OpenAIChatJudge("m")
    assert "hunter2secret" not in str(err.value)
    with ChatServer(lambda b, n: Reply("Score: 1")) as server:
        _env(monkeypatch, server.base_url + "/?api-version=2024-06-01&sig=s3cr3tvalue")
        judge = OpenAIChatJudge("m", timeout=2)
        assert judge.ask(_request(), CallBudget(None)) == "Score: 1"
        other = OpenAIChatJudge("m", timeout=2)
        _env(monkeypatch, server.base_url + "/?api-version=2024-07-01&sig=s3cr3tvalue")
        changed = OpenAIChatJudge("m", timeout=2)
    assert server.requests[0]["path"] == "/v1/chat/completions?api-version=2024-06-01&sig=s3cr3tvalue"
    identity = judge.identity()
    assert identity["endpoint"] == server.base_url and identity["query"]["names"] == ["api-version", "sig"]
    assert len(identity["query"]["sha256"]) == 64 and "s3cr3tvalue" not in json.dumps(identity)
    assert other.identity() == identity != changed.identity()


# -- 8: the model actually served ----------------------------------------------------------------------------


def test_the_served_models_are_recorded_distinct_in_order_and_stay_out_of_the_identity(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    def reply(name: str) -> Reply:
        return Reply(body=json.dumps({**completion("Score: 2"), "model": name}).encode())

    names = ["gpt-x-2024-08-06", "gpt-x-2024-11-20", "gpt-x-2024-08-06", ""]
    with ChatServer(lambda b, n: reply(names[n % 4])) as server:
        _env(monkeypatch, server.base_url)
        judge = OpenAIChatJudge("gpt-x", timeout=5)
        before = judge.identity()
        assert judge.served_models() == []
        for _ in range(3):
            judge.ask(_request(), CallBudget(None))
        assert judge.served_models() == names[:2]
        threads = [threading.Thread(target=judge.ask, args=(_request(), CallBudget(None))) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert judge.served_models() == names[:2] and judge.identity() == before


# -- 9: the preflight ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("status, refused", [
    ("401 Unauthorized", "check OPENAI_API_KEY"), ("403 Forbidden", None), ("200 OK", None),
    ("404 Not Found", None), ("500 Internal Server Error", None), ("503 Service Unavailable", None),
])
def test_the_preflight_refuses_a_refused_key_and_lets_anything_else_pass(  # 403: a key without the model-list scope
    monkeypatch: pytest.MonkeyPatch, status: str, refused: str | None
) -> None:
    body = b'{"error": {"message": "the server says no"}}'
    with RawServer(answer(status, body)) as server:
        _env(monkeypatch, server.base_url + "?api-version=1")
        judge = OpenAIChatJudge("m", timeout=2)
        if refused:
            with pytest.raises(JudgeError, match=f"HTTP {status[:3]}: the server says no .*{refused}"):
                judge.preflight()
        else:
            judge.preflight()
    assert OpenAIChatJudge.counts_calls is True
    line, *fields = server.heads[0].split("\r\n")
    assert line == "GET /v1/models?api-version=1 HTTP/1.1" and f"Authorization: Bearer {KEY}" in fields


def test_the_preflight_finds_an_unreachable_host_and_is_bounded_by_the_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    _env(monkeypatch, f"http://127.0.0.1:{_closed_port()}/v1")
    with pytest.raises(JudgeError, match="cannot reach the judge at http://127.0.0.1"):
        OpenAIChatJudge("m", timeout=2).preflight()
    with RawServer(lambda head, conn: trickle(conn, b"HTTP/1.1 401 Unauthorized\r\n" + b"X" * 80, 0.05)) as server:
        _env(monkeypatch, server.base_url)
        start = time.monotonic()
        OpenAIChatJudge("m", timeout=0.5).preflight()  # no reply in time: the calls will tell
        assert time.monotonic() - start < 1.2
    with ChatServer(lambda b, n: Reply("Score: 1")) as chat:  # a server without GET: 501, passes
        _env(monkeypatch, chat.base_url)
        OpenAIChatJudge("m", timeout=2).preflight()
    assert chat.requests == []
