"""Reading the score out of a judge's reply, strictly.

A reply counts only when it holds exactly one ``Score: N`` with N an integer in 0..4. The word
may be in any letter case, wrapped in Markdown emphasis (``**Score:** 3``), and a rating word may
stand between the colon and the number (``Score: Good 3``), as the reference parser allows; the
number may sit in brackets (``Score: [3]``). Anything else (no score, two scores, 5, 3.5, -1)
is not a score: the caller asks again, and after the last attempt records the image as missing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from fp_rank.judging.prompt import SCALE_MAX

_SCORE = re.compile(
    r"(?<![A-Za-z])score[*_]*\s*:[*_]*\s*(?:[A-Za-z]+\s+)?\[?\s*(-?\d+(?:[.,]\d+)?)\s*\]?",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Reading:
    """What a reply says: the score, or why it is not one."""

    score: int | None
    problem: str | None = None


def read_score(reply: str | None) -> Reading:
    """The score of ``reply``, or the reason it has none.

    Example:
        >>> read_score("Score: 3"), read_score("**Score:** 4").score, read_score("score: Good 2").score
        (Reading(score=3, problem=None), 4, 2)
        >>> read_score("Score: 3. Score: 4").problem
        'two or more scores (3, 4)'
        >>> read_score("Score: 5").problem, read_score("Score: 2.5").problem, read_score("I think 3").problem
        ('5 is outside 0..4', '2.5 is not an integer', 'no "Score: N" in the reply')
    """
    if not isinstance(reply, str) or not reply.strip():
        return Reading(None, "empty reply")
    found = _SCORE.findall(reply)
    if not found:
        return Reading(None, 'no "Score: N" in the reply')
    if len(found) > 1:
        return Reading(None, f"two or more scores ({', '.join(found)})")
    text = found[0]
    if not re.fullmatch(r"-?\d+", text):
        return Reading(None, f"{text} is not an integer")
    value = int(text)
    if not 0 <= value <= SCALE_MAX:
        return Reading(None, f"{value} is outside 0..{SCALE_MAX}")
    return Reading(value)
