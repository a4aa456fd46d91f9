"""The judge stage: which real image each generated image is judged against, the call plan
checked before any encoding, and the judgements written into the rows and the report."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from fp_rank.galleries.load import Gallery
from fp_rank.options import Options
from fp_rank.runs import Run

logger = logging.getLogger(__name__)

#: How the reference image of a judgement is chosen (recorded in the report).
REFERENCE_RULE = ("the conditioning image where the run names one, else the first reference (fine-tuning) image of "
                  "the identity in the gallery's reference split")


@dataclass
class JudgeStage:
    """A loaded judge with its prompt, cache and the plan for every image it may judge."""

    judge: Any
    prompt: Any
    cache: Any
    plan: Any
    positions: dict[int, int]  # run index -> position in plan.pairs


def prepare(opts: Options, run: Run, gal: Gallery, candidates: np.ndarray, device: str | None) -> JudgeStage:
    """Load the judge and its prompt, and check the call cap, before any image is encoded.

    Args:
        candidates: run indices that may be scored (known identity, not left out).

    Raises:
        InputError: the prompt folder is unusable, or the plan needs more calls than ``judge_max_calls``.
        JudgeError: the judge cannot be loaded or reached.
    """
    from fp_rank.caching.judgements import JudgementCache
    from fp_rank.judging import check_judge_object, load_judge, load_prompt
    from fp_rank.judging.run import announce, attempts_for, check_call_cap, plan_judgements

    prompt = load_prompt(opts.judge_prompt)
    choice = opts.judge
    judge = load_judge(choice.spec, revision=choice.revision, timeout=opts.judge_timeout,
                       concurrency=opts.judge_concurrency, device=device, trust_remote_code=opts.trust_remote_code)
    check_judge_object(judge)
    cache = JudgementCache(opts.cache_dir, enabled=opts.cache is not False)
    pairs, positions = [], {}
    for i in candidates.tolist():
        pair = _pair(run, gal, int(i))
        if pair is not None:
            positions[int(i)] = len(pairs)
            pairs.append(pair)
    plan = plan_judgements(judge, pairs, prompt=prompt, cache=cache)
    check_call_cap(plan, opts.judge_max_calls)
    if plan.todo and hasattr(judge, "preflight"):  # with every judgement cached, no call is made: none is checked
        judge.preflight()  # a refused key or an unreachable host, found before any image is encoded
    announce(plan, attempts_for(judge.identity()), opts.progress)
    return JudgeStage(judge, prompt, cache, plan, positions)


def _pair(run: Run, gal: Gallery, i: int) -> Any:
    """The (generated, reference) pair of run image ``i``; None when its file cannot be read (the
    embed stage names it, or skips it under ``on_invalid='skip'``)."""
    from fp_rank.evaluation.embed import is_reference_index
    from fp_rank.images.decode import content_hash
    from fp_rank.judging.run import Pair

    image = run[i]
    try:
        generated_hash = content_hash(image.source)
    except (OSError, ValueError):
        return None
    cond = image.conditioning
    ref = gal.reference
    if cond is not None and is_reference_index(cond):
        j = int(cond)
        return Pair(image.file, image.source, ref.images[j], f"conditioning: reference image {j}", generated_hash,
                    ref.hashes[j])
    if cond is not None:
        return Pair(image.file, image.source, cond, "conditioning image", generated_hash)
    at = np.flatnonzero(ref.identities == image.identity)
    if not len(at):
        return Pair(image.file, image.source, None, None, generated_hash)
    j = int(at[0])
    return Pair(image.file, image.source, ref.images[j], f"reference image {j}", generated_hash, ref.hashes[j])


def add_judgements(stage: JudgeStage, rows: list[dict[str, Any]], opts: Options) -> dict[str, Any]:
    """Judge the images that have rows, write ``judge`` (score / 4), ``judge_score``, ``judge_reference`` and
    ``judge_missing`` into every row, and return the judge's record for the report."""
    from fp_rank.judging import IMAGE_RULE, MISSING_REASONS, SCALE_MAX, judge_pairs
    from fp_rank.judging.run import RETRYABLE, attempts_for

    scored = sorted({int(r["index"]) for r in rows if int(r["index"]) in stage.positions})
    plan = stage.plan.subset([stage.positions[i] for i in scored])
    judged = judge_pairs(stage.judge, plan, prompt=stage.prompt, cache=stage.cache, max_calls=opts.judge_max_calls,
                         progress=opts.progress)
    verdict = dict(zip(scored, judged.judgements))
    names = dict(zip(scored, (p.reference_name for p in plan.pairs)))
    for row in rows:
        j = verdict.get(int(row["index"]))
        score = None if j is None else j.score
        row["judge"] = None if score is None else score / SCALE_MAX
        row["judge_score"] = score
        row["judge_reference"] = names.get(int(row["index"]))
        row["judge_missing"] = "unreadable_image" if j is None else j.missing
    missing_files = [plan.pairs[n].name for n, j in enumerate(judged.judgements) if j.missing is not None]
    if missing_files:
        again = any(k in RETRYABLE for k in judged.missing)
        logger.warning(
            "judge: %d of %d images have no judgement (%s); they are left out of the judge score and counted in the "
            "report (judge.missing)%s",
            len(missing_files), len(scored), ", ".join(f"{k}: {v}" for k, v in judged.missing.items()),
            "; run again to ask again (judgements made are cached)" if again else "",
        )
    return {
        **stage.judge.identity(),
        "prompt": stage.prompt.identity(),
        "images": IMAGE_RULE,
        "scale": f"integer 0-{SCALE_MAX}, reported divided by {SCALE_MAX}",
        "reference_rule": REFERENCE_RULE,
        "max_attempts": attempts_for(stage.judge.identity()),
        "served_models": list(stage.judge.served_models()) if hasattr(stage.judge, "served_models") else None,
        "coverage": _coverage(rows),
        "images_judged": sum(j.score is not None for j in judged.judgements),
        "calls": judged.calls,
        "from_cache": judged.cached,
        "missing": {"count": len(missing_files), "by_reason": judged.missing, "files": missing_files[:20],
                    "reasons": {k: MISSING_REASONS[k] for k in judged.missing}},
    }


def _coverage(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per method (first encoder's rows): the groups it has images in, and those where no image was judged
    (its judge score then leaves them out while its mAP keeps them)."""
    first = rows[0]["encoder"] if rows else None
    groups: dict[str, set[str]] = {}
    judged: dict[str, set[str]] = {}
    for row in rows:
        if row["encoder"] != first or row.get("ap") is None:
            continue
        groups.setdefault(str(row["method"]), set()).add(str(row["group"]))
        if row.get("judge") is not None:
            judged.setdefault(str(row["method"]), set()).add(str(row["group"]))
    return {m: {"groups": len(g), "judged_groups": len(judged.get(m, set())),
                "groups_without_judgements": sorted(g - judged.get(m, set()))} for m, g in sorted(groups.items())}
