"""A judge's concept-preservation score beside mAP (DreamBench++ style).

A vision-language model looks at a generated image beside its identity's reference photo (the
conditioning image where the run names one) and rates, 0 to 4, how well the subject is
preserved; reports divide by 4. Two backends: an OpenAI-compatible chat endpoint
(``openai:MODEL``) and a local transformers model (a Hub id or folder). Any object with
``identity()``, ``ask(request, budget)`` and ``concurrency`` (:class:`~fp_rank.judging.base.Judge`)
works from Python.

* :mod:`~fp_rank.judging.prompt`: what the judge is asked (fp-rank's wording, or the user's files);
* :mod:`~fp_rank.judging.reply`: the strict reading of a reply;
* :mod:`~fp_rank.judging.openai_chat`, :mod:`~fp_rank.judging.local_vlm`: the backends;
* :mod:`~fp_rank.judging.run`: cache, call estimate and cap, concurrency, retries, missing judgements.
"""

from __future__ import annotations

from typing import Any

from fp_rank.judging.base import IMAGE_RULE, CallBudget, Judge, JudgeError, JudgeRequest
from fp_rank.judging.prompt import BUILT_IN, SCALE_MAX, JudgePrompt, load_prompt
from fp_rank.judging.reply import read_score
from fp_rank.judging.run import MISSING_REASONS, Judged, Pair, judge_pairs, plan_judgements

#: The prefix of a served judge's spec: ``openai:MODEL``.
OPENAI_PREFIX = "openai:"


def load_judge(spec: Any, *, revision: str | None = None, timeout: float = 120.0, concurrency: int = 4,
               device: str | None = None, trust_remote_code: bool = False) -> Judge:
    """The judge named by ``spec``: ``openai:MODEL``, a Hub id or folder of a vision-language model,
    or a :class:`Judge` object (returned as it is).

    Raises:
        JudgeError: the environment names no usable endpoint, or the model cannot be loaded.
    """
    if not isinstance(spec, str):
        return spec
    if spec.lower().startswith(OPENAI_PREFIX) and not spec.startswith(OPENAI_PREFIX):
        raise JudgeError(f"judge {spec!r}: write the served judge's prefix in lower case, {OPENAI_PREFIX}{spec[7:]}")
    if spec.startswith(OPENAI_PREFIX):
        from fp_rank.judging.openai_chat import OpenAIChatJudge

        return OpenAIChatJudge(spec[len(OPENAI_PREFIX):], timeout=timeout, concurrency=concurrency)
    import os

    if "/" not in spec and not os.path.exists(spec):
        raise JudgeError(f"judge {spec!r} is neither a folder nor a Hub id (ORG/NAME); for a served model write "
                         f"{OPENAI_PREFIX}{spec}")
    from fp_rank.judging.local_vlm import LocalVLMJudge

    return LocalVLMJudge(spec, revision=revision, device=device, trust_remote_code=trust_remote_code)


def check_judge_object(judge: Any) -> None:
    """Refuse a judge whose ``identity()`` cannot be recorded or keyed, or whose ``concurrency`` is not a
    positive integer (a Python object passed as ``judge=``), before any image is encoded.

    Raises:
        InputError: naming what is wrong.
    """
    import json

    from fp_rank.errors import InputError

    try:
        identity = judge.identity()
        json.dumps(identity, allow_nan=False)
    except Exception as exc:  # a judge object from Python: anything can fail
        raise InputError(f"the judge's identity() must return a JSON-serialisable dict ({type(exc).__name__}: {exc})") from None
    if not isinstance(identity, dict) or not all(isinstance(identity.get(k), str) and identity.get(k) for k in ("backend", "model")):
        raise InputError(f"the judge's identity() must be a dict with non-empty strings 'backend' and 'model' (they "
                         f"name it in the report and key its cached judgements); got {identity!r:.120}")
    concurrency = getattr(judge, "concurrency", 1)
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise InputError(f"the judge's concurrency must be a positive integer, got {concurrency!r}")


__all__ = [
    "BUILT_IN", "IMAGE_RULE", "check_judge_object", "MISSING_REASONS", "OPENAI_PREFIX", "SCALE_MAX", "CallBudget", "Judge", "JudgeError",
    "JudgePrompt", "JudgeRequest", "Judged", "Pair", "judge_pairs", "load_judge", "load_prompt", "plan_judgements",
    "read_score",
]
