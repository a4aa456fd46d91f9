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
    if spec.startswith(OPENAI_PREFIX):
        from fp_rank.judging.openai_chat import OpenAIChatJudge

        return OpenAIChatJudge(spec[len(OPENAI_PREFIX):], timeout=timeout, concurrency=concurrency)
    from fp_rank.judging.local_vlm import LocalVLMJudge

    return LocalVLMJudge(spec, revision=revision, device=device, trust_remote_code=trust_remote_code)


__all__ = [
    "BUILT_IN", "IMAGE_RULE", "MISSING_REASONS", "OPENAI_PREFIX", "SCALE_MAX", "CallBudget", "Judge", "JudgeError",
    "JudgePrompt", "JudgeRequest", "Judged", "Pair", "judge_pairs", "load_judge", "load_prompt", "plan_judgements",
    "read_score",
]
