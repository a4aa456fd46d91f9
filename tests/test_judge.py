"""The judge against an OpenAI-compatible chat API served on loopback (tests/judge_server.py):
well-formed replies, replies with two scores or none, 429s, 500s, timeouts, a stalling server,
refused keys, the cache, the call cap and concurrency. No test reaches the network."""

from __future__ import annotations

import base64
import io
import json
import logging
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

import fp_rank
from fp_rank.cli import main
from fp_rank.errors import InputError
from fp_rank.judging import BUILT_IN, CallBudget, JudgeError, JudgeRequest, load_prompt, read_score
from fp_rank.judging.openai_chat import OpenAIChatJudge
from fp_rank.judging.base import Unavailable
from tests.gallery_fixtures import png_bytes, simple_gallery
from tests.judge_server import ChatServer, Reply, images_of, pixel_judge

KEY = "sk-test-do-not-write-me-0123456789"


@pytest.fixture
def gallery(tmp_path: Path) -> Path:
    return simple_gallery(tmp_path / "gallery", n_ids=3, per_id=3)


def _generated(n_per_id: int = 2) -> tuple[list[bytes], list[str]]:
    images, ids = [], []
    for i in range(3):
        for k in range(n_per_id):
            images.append(png_bytes(1000 + 10 * i + k))
            ids.append(f"id{i}")
    return images, ids


def _env(monkeypatch: pytest.MonkeyPatch, server: ChatServer) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)


def _run(gallery: Path, **options: Any) -> fp_rank.Report:
    images, ids = _generated()
    options.setdefault("judge", "openai:test-judge")
    return fp_rank.evaluate(images, ids, gallery=str(gallery), encoder="fp-rank-demo", progress=False, **options)


def _request(seed: int = 0) -> JudgeRequest:
    jpeg = io.BytesIO()
    Image.new("RGB", (8, 8), (seed, 0, 0)).save(jpeg, format="JPEG")
    return JudgeRequest(BUILT_IN.user, BUILT_IN.assistant, jpeg.getvalue(), jpeg.getvalue(), seed)


# -- the reply parser ----------------------------------------------------------------------------------


@pytest.mark.parametrize("reply, score", [
    ("Score: 3", 3), ("score:0", 0), ("**Score:** 4", 4), ("Score: Good 2", 2), ("Score: [1]", 1),
    ("The images match well.\nScore: 4\n", 4), ("Score: **3**", 3), ("Score: Good (3)", 3), ("Score\uff1a2", 2),
    ("Score: 3/4", 3), ("Score: 1 out of 4", 1), ("Score: 3 - strong resemblance", 3),
])
def test_a_reply_with_one_score_in_range_is_read(reply: str, score: int) -> None:
    assert read_score(reply).score == score


@pytest.mark.parametrize("reply", [
    "Score: 3\nScore: 4", "Score: 3. Final score: 3", "Score: 5", "Score: -1", "Score: 2.5", "I would say 3",
    "Score: [Your Score]", "", None, "scores: 3", "underscore: 3", "Score: 4/10", "Score: 2/5", "Score: 1 out of 10",
    "Score: 2-3", "Score: 3 or 4", "Score: not 3", "Score: 1e1", "Score: 0x4", "Score: 3\u00bd", "Score: \uff13",
    "Score: \u0663", "Score: 3,5",
])
def test_a_reply_without_exactly_one_score_in_range_is_not_a_score(reply: str | None) -> None:
    reading = read_score(reply)
    assert reading.score is None and reading.problem


# -- the request a served judge receives --------------------------------------------------------------------


def test_well_formed_replies_score_every_image_and_the_request_follows_the_protocol(
    gallery: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    with ChatServer(lambda body, n: Reply("Score: 3")) as server:
        _env(monkeypatch, server)
        with caplog.at_level(logging.DEBUG):
            report = _run(gallery)
    assert len(server.requests) == 6
    first = server.requests[0]
    assert first["path"] == "/v1/chat/completions"
    assert first["headers"]["Authorization"] == f"Bearer {KEY}"
    body = first["body"]
    assert body["model"] == "test-judge" and body["temperature"] == 1.0 and isinstance(body["seed"], int)
    roles = [m["role"] for m in body["messages"]]
    assert roles == ["user", "assistant", "user"]
    assert body["messages"][0]["content"] == BUILT_IN.user and body["messages"][1]["content"] == BUILT_IN.assistant
    parts = body["messages"][2]["content"]
    assert [p["image_url"]["detail"] for p in parts] == ["high", "high"]
    reference, generated = images_of(body)
    assert reference.size == generated.size == (512, 512) and reference.format == "JPEG"
    assert all(q["judge"] == 0.75 and q["judge_score"] == 3 and q["judge_missing"] is None for q in report.queries)
    assert report.results[0].values["judge"] == pytest.approx(0.75)
    judge = report.metadata["judge"]
    assert judge["model"] == "test-judge" and judge["calls"] == 6 and judge["missing"]["count"] == 0
    assert judge["prompt"]["sha256"] == BUILT_IN.sha256 and judge["endpoint"] == server.base_url
    # the key is never written, in any output or log
    out = tmp_path / "out"
    from fp_rank.analysis import add_statistics
    from fp_rank.views.outputs import write_outputs

    add_statistics(report)
    write_outputs(report, str(out))
    for path in out.iterdir():
        assert KEY not in path.read_text()
    assert KEY not in caplog.text and KEY not in repr(report.metadata)
    assert "judge" in report.results[0].intervals


def test_the_reference_is_the_identitys_first_reference_image_or_the_conditioning_image(
    gallery: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[bytes] = []

    def responder(body: dict[str, Any], n: int) -> Reply:
        ref, _ = images_of(body)
        seen.append(np.asarray(ref).tobytes())
        return Reply("Score: 2")

    cond = png_bytes(777)
    images, ids = _generated(1)
    with ChatServer(responder) as server:
        _env(monkeypatch, server)
        report = fp_rank.evaluate(images, ids, gallery=str(gallery), encoder="fp-rank-demo", progress=False,
                                  judge="openai:j", conditioning=[cond, None, 5])
    refs = {q["index"]: q["judge_reference"] for q in report.queries}
    assert refs == {0: "conditioning image", 1: "reference image 2", 2: "conditioning: reference image 5"}
    assert len(set(seen)) == 3


# -- replies that hold no single score ---------------------------------------------------------------------


def test_two_scores_or_none_are_asked_again_and_then_counted_missing_never_filled_in(
    gallery: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: dict[str, int] = {}

    def responder(body: dict[str, Any], n: int) -> Reply:
        key = images_of(body)[1].tobytes()[:64].hex()
        asked[key] = asked.get(key, 0) + 1
        # the first generated image always gets two scores; the others need a third try
        if len(asked) == 1 or asked[key] > 2 and list(asked).index(key) == 0:
            return Reply("Score: 3\nScore: 4")
        return Reply("Score: 2" if asked[key] >= 3 else "The subject looks similar.")

    with ChatServer(responder) as server:
        _env(monkeypatch, server)
        report = _run(gallery, judge_concurrency=1)
    missing = [q for q in report.queries if q["judge"] is None]
    assert len(missing) == 1 and missing[0]["judge_missing"] == "unreadable_reply" and missing[0]["judge_score"] is None
    assert all(q["judge_score"] == 2 for q in report.queries if q["judge"] is not None)
    judge = report.metadata["judge"]
    assert judge["missing"]["count"] == 1 and judge["missing"]["by_reason"] == {"unreadable_reply": 1}
    assert judge["calls"] == 5 + 5 * 3  # five tries for the unreadable one, three for each other
    assert report.results[0].values["judge"] == pytest.approx(0.5)  # the missing one is left out, not scored 0


# -- failures of the endpoint -----------------------------------------------------------------------------


def test_429s_and_500s_are_retried_with_the_servers_retry_after(gallery: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def responder(body: dict[str, Any], n: int) -> Reply:
        if n % 3 == 0:
            return Reply(status=429, headers={"Retry-After": "0"}, body=b'{"error": {"message": "slow down"}}')
        if n % 3 == 1:
            return Reply(status=500, headers={"Retry-After": "0"}, body=b"oops")
        return Reply("Score: 4")

    with ChatServer(responder) as server:
        _env(monkeypatch, server)
        report = _run(gallery, judge_concurrency=1)
    assert [q["judge_score"] for q in report.queries] == [4] * 6
    assert report.metadata["judge"]["calls"] == 18 == len(server.requests)


def test_an_endpoint_that_keeps_failing_leaves_images_missing_and_counted(gallery: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with ChatServer(lambda body, n: Reply(status=503, headers={"Retry-After": "0"}, body=b"busy")) as server:
        _env(monkeypatch, server)
        report = _run(gallery)
    assert all(q["judge"] is None and q["judge_missing"] == "unavailable" for q in report.queries)
    assert report.metadata["judge"]["missing"]["by_reason"] == {"unavailable": 6}
    assert len(server.requests) == 6 * 6  # one call and five retries each
    assert report.results[0].values["judge"] != report.results[0].values["judge"]  # NaN: no value, not 0


def test_a_stalling_server_is_cut_off_at_the_timeout_and_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    def responder(body: dict[str, Any], n: int) -> Reply:
        return Reply("Score: 1", stall=3.0) if n == 0 else Reply("Score: 1")

    with ChatServer(responder) as server:
        _env(monkeypatch, server)
        judge = OpenAIChatJudge("m", timeout=0.5, backoff=0.01)
        assert judge.ask(_request(), CallBudget(None)) == "Score: 1"
    assert len(server.requests) == 2


def test_a_server_that_trickles_its_reply_is_cut_off_by_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    with ChatServer(lambda body, n: Reply("Score: 1", trickle=0.05)) as server:
        _env(monkeypatch, server)
        judge = OpenAIChatJudge("m", timeout=1.0, max_retries=1, backoff=0.01)
        with pytest.raises(Unavailable, match="no reply within 1 s"):
            judge.ask(_request(), CallBudget(None))
    assert len(server.requests) == 2


def test_a_body_that_is_not_a_chat_completion_is_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    with ChatServer(lambda body, n: Reply(body=b"<html>gateway</html>") if n == 0 else Reply("Score: 0")) as server:
        _env(monkeypatch, server)
        assert OpenAIChatJudge("m", backoff=0.01).ask(_request(), CallBudget(None)) == "Score: 0"


@pytest.mark.parametrize("status, words", [(401, "check OPENAI_API_KEY"), (404, "no such model"), (400, "refused the request")])
def test_a_refusal_stops_the_run_with_the_servers_message(
    gallery: Path, monkeypatch: pytest.MonkeyPatch, status: int, words: str
) -> None:
    body = json.dumps({"error": {"message": "the server says no"}}).encode()
    with ChatServer(lambda b, n: Reply(status=status, body=body)) as server:
        _env(monkeypatch, server)
        with pytest.raises(JudgeError, match=f"HTTP {status}: the server says no") as err:
            _run(gallery)
    assert words in str(err.value) and KEY not in str(err.value)


def test_an_unreachable_endpoint_and_a_missing_key_are_refused_before_any_image_is_encoded(
    gallery: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(JudgeError, match="OPENAI_API_KEY is not set"):
        _run(gallery)
    monkeypatch.setenv("OPENAI_BASE_URL", "ftp://example.org")
    with pytest.raises(JudgeError, match="OPENAI_BASE_URL must be an http"):
        _run(gallery)
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{port}/v1")
    with pytest.raises(JudgeError, match="cannot reach the judge"):
        _run(gallery)


# -- cache, call cap, concurrency ----------------------------------------------------------------------------


def test_judgements_are_cached_by_image_prompt_and_model(gallery: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with ChatServer(lambda body, n: Reply("Score: 2")) as server:
        _env(monkeypatch, server)
        _run(gallery)
        assert len(server.requests) == 6
        again = _run(gallery)
        assert len(server.requests) == 6 and again.metadata["judge"]["from_cache"] == 6
        assert again.metadata["judge"]["calls"] == 0 and [q["judge_score"] for q in again.queries] == [2] * 6
        _run(gallery, judge="openai:another-model")
        assert len(server.requests) == 12
        prompt = tmp_path / "prompt"
        prompt.mkdir()
        (prompt / "user.txt").write_text("Rate it from 0 to 4. Score: N")
        _run(gallery, judge_prompt=str(prompt))
        assert len(server.requests) == 18
        assert server.requests[-1]["body"]["messages"][0]["content"] == "Rate it from 0 to 4. Score: N"
        assert len(server.requests[-1]["body"]["messages"]) == 2  # no assistant.txt: no primer turn
        _run(gallery, cache=False)
        assert len(server.requests) == 24


def test_a_plan_over_the_call_cap_is_refused_before_any_call(gallery: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with ChatServer(lambda body, n: Reply("Score: 2")) as server:
        _env(monkeypatch, server)
        with pytest.raises(InputError, match="may need up to 6 calls") as err:
            _run(gallery, judge_max_calls=5)
        assert "judge_max_calls=5" in str(err.value)
        assert not server.requests
        report = _run(gallery, judge_max_calls=6)
    assert report.metadata["judge"]["calls"] == 6


def test_retries_past_the_call_cap_leave_the_rest_missing_and_counted(gallery: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with ChatServer(lambda body, n: Reply("no score here")) as server:
        _env(monkeypatch, server)
        report = _run(gallery, judge_max_calls=8, judge_concurrency=1)
    assert len(server.requests) == 8
    reasons = report.metadata["judge"]["missing"]["by_reason"]
    assert reasons == {"call_cap": 5, "unreadable_reply": 1}


def test_requests_in_flight_are_bounded_by_the_concurrency(gallery: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with ChatServer(lambda body, n: Reply("Score: 1", stall=0.2)) as server:
        _env(monkeypatch, server)
        _run(gallery, judge_concurrency=2)
    assert server.most_in_flight == 2


def test_judge_options_without_a_judge_are_refused(gallery: Path) -> None:
    with pytest.raises(InputError, match="judge_max_calls only applies with judge"):
        fp_rank.evaluate([png_bytes(1)], ["id0"], gallery=str(gallery), encoder="fp-rank-demo", judge_max_calls=3)


def test_prompt_folders(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="is not a folder"):
        load_prompt(tmp_path / "nope")
    with pytest.raises(InputError, match="holds neither user.txt"):
        load_prompt(tmp_path)
    (tmp_path / "user_prompt_subject_full.txt").write_text("Task: a score from 0 to 4.\n")
    (tmp_path / "gpt_prompt_subject_full.txt").write_text("Understood.\n")
    prompt = load_prompt(tmp_path)
    assert (prompt.user, prompt.assistant) == ("Task: a score from 0 to 4.", "Understood.") and prompt.sha256 != BUILT_IN.sha256
    (tmp_path / "user.txt").write_text("   \n")
    with pytest.raises(InputError, match="is empty"):
        load_prompt(tmp_path)


# -- the command line ----------------------------------------------------------------------------------------


def test_the_cli_reports_the_judge_beside_map(gallery: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "generated"
    images, ids = _generated()
    for k, (data, ident) in enumerate(zip(images, ids)):
        (folder / ident).mkdir(parents=True, exist_ok=True)
        (folder / ident / f"{k}.png").write_bytes(data)
    with ChatServer(pixel_judge) as server:
        _env(monkeypatch, server)
        code = main(["evaluate", "--gallery", str(gallery), "--generated", str(folder), "--encoder", "fp-rank-demo",
                     "--judge", "openai:pixel", "--judge-concurrency", "2", "--no-progress", "--bootstrap", "0",
                     "--out", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert code == 0 and " judge " in out.splitlines()[0] and "judge: pixel (openai-chat)" in out
    saved = json.loads((tmp_path / "out" / "report.json").read_text())
    assert saved["metadata"]["judge"]["images_judged"] == 6
    loaded = fp_rank.Report.load(tmp_path / "out" / "report.json")  # the report check accepts the judge's rows
    assert loaded.results[0].values["judge"] == pytest.approx(saved["results"][0]["judge"])
    assert main(["evaluate", "--gallery", str(gallery), "--generated", str(folder), "--encoder", "fp-rank-demo",
                 "--judge-max-calls", "3"]) == 2
    assert "--judge-max-calls only applies with --judge" in capsys.readouterr().err


def test_concurrent_budget_never_exceeds_its_limit() -> None:
    budget = CallBudget(50)
    taken = []

    def grab() -> None:
        for _ in range(20):
            try:
                budget.take()
                taken.append(1)
            except Exception:
                pass

    threads = [threading.Thread(target=grab) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert budget.made == len(taken) == 50


def test_images_are_sent_as_base64_jpeg() -> None:
    from fp_rank.judging.base import prepare_image

    data = prepare_image(png_bytes(3, size=40), "x.png")
    im = Image.open(io.BytesIO(data))
    assert im.format == "JPEG" and im.size == (512, 512)
    assert base64.b64decode(base64.b64encode(data)) == data


# -- judges from Python, the stop signal, prompts on another scale, coverage ------------------------------------


class _Constant:
    """A judge object from Python that always gives one score (and counts no calls itself)."""

    concurrency = 2

    def __init__(self, score: int, model: str = "constant") -> None:
        self.score, self.model = score, model

    def identity(self) -> dict:
        return {"backend": "python", "model": self.model, "temperature": 1.0}

    def ask(self, request: JudgeRequest, budget: CallBudget) -> str:
        return f"Score: {self.score}"


def test_two_python_judges_never_share_cached_judgements_and_each_ask_is_charged(gallery: Path) -> None:
    first = _run(gallery, judge=_Constant(0, "zero"))
    second = _run(gallery, judge=_Constant(4, "four"))
    assert [q["judge_score"] for q in first.queries] == [0] * 6 and [q["judge_score"] for q in second.queries] == [4] * 6
    assert second.metadata["judge"]["calls"] == 6 and second.metadata["judge"]["from_cache"] == 0
    with pytest.raises(InputError, match="more than judge_max_calls=5"):
        _run(gallery, judge=_Constant(2, "two"), judge_max_calls=5)


def test_a_python_judge_that_raises_or_has_no_identity_is_named(gallery: Path) -> None:
    class Raises(_Constant):
        def ask(self, request: JudgeRequest, budget: CallBudget) -> str:
            raise RuntimeError("boom")

    with pytest.raises(JudgeError, match="the judge 'constant' failed on item #[0-9]: RuntimeError: boom"):
        _run(gallery, judge=Raises(1), judge_concurrency=1)

    class Nameless(_Constant):
        def identity(self) -> dict:
            return {"model": "x"}

    with pytest.raises(InputError, match="non-empty strings 'backend' and 'model'"):
        _run(gallery, judge=Nameless(1))


def test_a_fatal_error_stops_the_other_calls_backoffs_at_once(gallery: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    def responder(body: dict[str, Any], n: int) -> Reply:
        if n == 0:
            return Reply(status=401, body=b'{"error": {"message": "bad key"}}', stall=0.3)
        return Reply(status=429, headers={"Retry-After": "30"}, body=b"slow down")

    with ChatServer(responder) as server:
        _env(monkeypatch, server)
        started = time.monotonic()
        with pytest.raises(JudgeError, match="HTTP 401"):
            _run(gallery, judge_concurrency=3)
        assert time.monotonic() - started < 15  # not the 30 s the other calls were told to wait


def test_a_prompt_on_another_scale_is_refused(tmp_path: Path) -> None:
    (tmp_path / "user.txt").write_text("Rate the likeness from 1 to 10. Score: N")
    with pytest.raises(InputError, match="must ask for an integer score from 0 to 4"):
        load_prompt(tmp_path)


def test_groups_without_any_judgement_are_named(gallery: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from tests.gallery_fixtures import write_gallery

    rows = [{"image": png_bytes(500 + 10 * n + k), "identity": f"{g}{k % 2}", "group": g}
            for n, g in enumerate(("x", "y")) for k in range(4)]
    refs = [{"image": png_bytes(600 + k), "identity": f"x{k}", "group": "x"} for k in range(2)]
    two_groups = write_gallery(tmp_path / "two", {"gallery": rows, "reference": refs})  # group y has no reference
    report = fp_rank.evaluate([png_bytes(700), png_bytes(701)], ["x0", "y0"], gallery=str(two_groups),
                              encoder="fp-rank-demo", progress=False, judge=_Constant(3))
    coverage = report.metadata["judge"]["coverage"]["generated"]
    assert coverage == {"groups": 2, "judged_groups": 1, "groups_without_judgements": ["y"]}
    assert "cover only some groups (generated: 1 of 2)" in fp_rank.format_table(report)
    assert report.metadata["judge"]["missing"]["by_reason"] == {"no_reference": 1}


def test_a_served_model_name_needs_its_prefix(gallery: Path) -> None:
    with pytest.raises(JudgeError, match="for a served model write openai:gpt-4o"):
        _run(gallery, judge="gpt-4o")
    with pytest.raises(JudgeError, match="in lower case, openai:gpt-4o"):
        _run(gallery, judge="OpenAI:gpt-4o")


def test_the_cache_command_counts_and_clears_judgements(gallery: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _run(gallery, judge=_Constant(1))
    assert main(["cache", "info"]) == 0
    assert ": 6 judgements" in capsys.readouterr().out
    assert main(["cache", "clear"]) == 0
    assert "removed 6 judgements" in capsys.readouterr().out
    again = _run(gallery, judge=_Constant(1))
    assert again.metadata["judge"]["from_cache"] == 0


def test_a_run_whose_judgements_are_all_cached_needs_no_endpoint(gallery: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with ChatServer(lambda body, n: Reply("Score: 2")) as server:
        _env(monkeypatch, server)
        _run(gallery)
    # the server is gone; the same question to the same judge is answered from the cache, with no call
    again = _run(gallery)
    assert again.metadata["judge"]["calls"] == 0 and again.metadata["judge"]["from_cache"] == 6
    with pytest.raises(JudgeError, match="cannot reach"):  # something left to ask: the preflight finds it gone
        _run(gallery, judge="openai:another")
