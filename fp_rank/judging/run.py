"""Judging a list of (generated, reference) pairs: cache, call estimate and cap, concurrency, retries.

:func:`judge_pairs` looks every pair up in the judgement cache first, says how many calls the
rest needs (and refuses, before any call, a run that needs more than ``max_calls``), then asks
the judge with at most ``judge.concurrency`` requests in flight. A reply without exactly one
score in range is asked again, up to ``max_attempts`` times (the reference code's 5); after that,
or when the endpoint stays unavailable or the call cap is reached, the image is recorded as
missing with its reason, and counted. Never a default score. Each judgement is cached as it
arrives, so a run that stops (Ctrl-C, a refused key, a crash) resumes where it was.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

from fp_rank.caching.judgements import JudgementCache
from fp_rank.errors import InputError, Opt, printable
from fp_rank.judging.base import (
    IMAGE_RULE,
    BudgetSpent,
    CallBudget,
    Judge,
    JudgeError,
    JudgeRequest,
    Stopped,
    Unavailable,
    prepare_image,
)
from fp_rank.judging.prompt import SCALE_MAX, JudgePrompt
from fp_rank.judging.reply import read_score
from fp_rank.progress import progress_bar
from fp_rank.version import PROTOCOL_VERSION

logger = logging.getLogger(__name__)

#: Replies asked for per image before it counts as missing (the reference code tries 5 times).
MAX_ATTEMPTS = 5

#: Why an image has no judgement (the report counts each).
MISSING_REASONS = {
    "no_reference": "no reference image: the identity has no reference photo and the run names no conditioning image",
    "unreadable_reply": f"no reply held exactly one score in 0..{SCALE_MAX}",
    "unavailable": "the endpoint kept failing (rate limit, server error or timeout) through every retry",
    "call_cap": "the call cap (judge_max_calls) was reached",
    "unreadable_image": "the generated image could not be read when the judge stage planned its calls",
    "stopped": "the run stopped before the image was judged",
}
#: Missing reasons that a later run may not repeat (the cache keeps what was judged).
RETRYABLE = ("unreadable_reply", "unavailable", "call_cap")


@dataclass(frozen=True)
class Pair:
    """One generated image and the real image it is judged against.

    Attributes:
        name: the generated image's name (its file), for messages.
        generated: its source; ``generated_hash`` its content sha256 (None: computed here).
        reference: the reference image's source (None: there is none); ``reference_hash`` likewise.
        reference_name: what the reference is, as the report records it.
    """

    name: str
    generated: Any
    reference: Any
    reference_name: str | None
    generated_hash: str | None = None
    reference_hash: str | None = None


@dataclass
class Judgement:
    """The judge's verdict on one pair: ``score`` (0..4) or the ``missing`` reason (a key of MISSING_REASONS)."""

    score: int | None
    missing: str | None = None
    cached: bool = False
    last_reply: str | None = None


@dataclass
class Judged:
    """Every pair's judgement, with what it took."""

    judgements: list[Judgement]
    calls: int
    cached: int
    missing: dict[str, int] = field(default_factory=dict)


def judgement_key(generated_hash: str, reference_hash: str, prompt: JudgePrompt, judge: dict[str, Any]) -> str:
    """sha256 over everything that decides a judgement (the key of :class:`~fp_rank.caching.judgements.JudgementCache`):
    both images' content, the prompt, the judge's whole identity, the image rule and the protocol."""
    text = json.dumps({"generated": generated_hash, "reference": reference_hash, "prompt": prompt.sha256,
                       "judge": judge, "images": IMAGE_RULE, "protocol": PROTOCOL_VERSION}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def attempts_for(identity: dict[str, Any]) -> int:
    """Replies asked for per image: one for a deterministic judge (temperature 0: it would only repeat
    itself), else :data:`MAX_ATTEMPTS`."""
    return 1 if identity.get("temperature") == 0 else MAX_ATTEMPTS


@dataclass
class Plan:
    """The pairs to judge, grouped by judgement key, and which keys the cache already holds."""

    pairs: list[Pair]
    keys: dict[str, list[int]]
    hits: dict[str, int]

    @property
    def todo(self) -> list[str]:
        return [k for k in self.keys if k not in self.hits]

    @property
    def cached(self) -> int:
        return sum(len(at) for k, at in self.keys.items() if k in self.hits)

    def subset(self, positions: Sequence[int]) -> Plan:
        """The plan of ``pairs[positions]`` (in that order)."""
        where = {p: n for n, p in enumerate(positions)}
        keys: dict[str, list[int]] = {}
        for key, at in self.keys.items():
            kept = [where[i] for i in at if i in where]
            if kept:
                keys[key] = kept
        return Plan([self.pairs[p] for p in positions], keys, {k: v for k, v in self.hits.items() if k in keys})


def plan_judgements(judge: Judge, pairs: Sequence[Pair], *, prompt: JudgePrompt, cache: JudgementCache) -> Plan:
    """Key every pair with a reference and look it up in the cache (no call is made)."""
    from fp_rank.images.decode import content_hash

    identity = judge.identity()
    keys: dict[str, list[int]] = {}
    for i, pair in enumerate(pairs):
        if pair.reference is None:
            continue
        key = judgement_key(pair.generated_hash or content_hash(pair.generated),
                            pair.reference_hash or content_hash(pair.reference), prompt, identity)
        keys.setdefault(key, []).append(i)
    hits = {}
    for key in keys:
        record = cache.get(key)
        if record is not None:
            hits[key] = int(record["score"])
    return Plan(list(pairs), keys, hits)


def check_call_cap(plan: Plan, max_calls: int | None) -> None:
    """Refuse, before any call, a plan that needs more calls than ``max_calls``.

    Raises:
        InputError: naming the calls needed and the cap.
    """
    todo = len(plan.todo)
    if max_calls is not None and todo > max_calls:
        raise InputError(
            f"the judge may need up to {todo} calls ({todo} image pairs not judged before), more than ",
            Opt("judge_max_calls", max_calls), "; raise the cap, or judge fewer images (judgements are cached, so a "
            "capped run resumes where it stopped)",
        )


def judge_pairs(
    judge: Judge,
    plan: Plan,
    *,
    prompt: JudgePrompt,
    cache: JudgementCache,
    max_calls: int | None = None,
    max_attempts: int | None = None,
    progress: bool = True,
) -> Judged:
    """Judge every pair of ``plan`` (see the module docstring); ``max_attempts`` defaults to :func:`attempts_for`.

    Raises:
        InputError: the pairs not yet cached need more calls than ``max_calls`` (before any call).
        JudgeError: the judge cannot work at all (judgements made so far stay cached).
    """
    check_call_cap(plan, max_calls)
    out = [Judgement(None, "no_reference") for _ in plan.pairs]
    for key, score in plan.hits.items():
        for i in plan.keys[key]:
            out[i] = Judgement(score, cached=True)
    todo = plan.todo
    max_attempts = max_attempts or attempts_for(judge.identity())
    budget = CallBudget(max_calls)
    if todo:
        _ask_all(judge, todo, plan.keys, plan.pairs, out, prompt, cache, budget, max_attempts, progress)
    missing = Counter(j.missing for j in out if j.missing is not None)
    return Judged(out, calls=budget.made, cached=plan.cached, missing=dict(sorted(missing.items())))


def announce(plan: Plan, attempts: int, progress: bool) -> None:
    """Say, before any image is encoded, how many calls the judge will make."""
    todo = len(plan.todo)
    text = (f"judge: {len(plan.pairs)} generated images, {len(plan.keys)} distinct pairs with a reference, {plan.cached} "
            f"images judged before (cache); up to {todo} calls to make (up to {attempts} each when a reply holds no "
            "single score, plus retries of failed calls; images left out later are not asked)")
    logger.info(text)
    if progress and todo:
        print(f"fp-rank: {text}", file=sys.stderr)


def _ask_all(judge: Judge, todo: list[str], keys: dict[str, list[int]], pairs: Sequence[Pair], out: list[Judgement],
             prompt: JudgePrompt, cache: JudgementCache, budget: CallBudget, attempts: int, progress: bool) -> None:
    bar = progress_bar(len(todo), "judge", progress)
    charged = not getattr(judge, "counts_calls", False)  # a judge that does not count its calls is charged per ask
    name = str(judge.identity().get("model"))

    def one(key: str) -> tuple[str, Judgement]:
        pair = pairs[keys[key][0]]
        reply = None
        try:
            reference = prepare_image(pair.reference, pair.reference_name or "reference image")
            generated = prepare_image(pair.generated, pair.name)
            for attempt in range(attempts):
                request = JudgeRequest(prompt.user, prompt.assistant, reference, generated,
                                       seed=int(key[:8], 16) % 100_000 + attempt)
                if charged:
                    budget.take()
                reply = judge.ask(request, budget)
                reading = read_score(reply)
                if reading.score is not None:
                    cache.put(key, reading.score, reply)
                    return key, Judgement(reading.score)
                logger.info("judge: reply %d for %s holds no single score (%s)", attempt + 1, pair.name, reading.problem)
        except BudgetSpent:
            return key, Judgement(None, "call_cap", last_reply=reply)
        except Stopped:
            return key, Judgement(None, "stopped")
        except Unavailable as exc:
            logger.info("judge: %s could not be judged: %s", pair.name, exc)
            return key, Judgement(None, "unavailable", last_reply=str(exc))
        except (JudgeError, InputError):
            raise
        except Exception as exc:  # a judge object from Python may raise anything: name the image and the judge
            raise JudgeError(f"the judge {name!r} failed on {pair.name}: {type(exc).__name__}: {exc}") from exc
        return key, Judgement(None, "unreadable_reply", last_reply=printable(str(reply))[:200])

    workers = max(1, int(getattr(judge, "concurrency", 1) or 1))
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fp-rank-judge")
    futures = [pool.submit(one, key) for key in todo]
    try:
        for future in as_completed(futures):
            key, verdict = future.result()  # a JudgeError of any call stops the run here
            for i in keys[key]:
                out[i] = Judgement(verdict.score, verdict.missing, False, verdict.last_reply)
            if bar is not None:
                bar.update(1)
    except BaseException:
        budget.stop.set()  # calls not started return at once, backoffs end; calls in flight finish and are cached
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    finally:
        pool.shutdown(wait=False)
        if bar is not None:
            bar.close()
