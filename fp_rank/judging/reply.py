"""Reading the score out of a judge's reply, strictly.

A reply counts only when exactly one line holds ``Score: N`` with N an ASCII integer in 0..4,
and nothing on that line after N is another number. Around it the reader allows what judges
write: any letter case, Markdown emphasis (``**Score:** 3``, ``Score: **3**``), one of the
rubric's rating words before N (``Score: Good 3``, ``Score: Good (3)``), brackets (``Score: [3]``),
a full-width colon, the scale written after N (``3/4``, ``3 out of 4``) and words after it
(``Score: 3 - strong resemblance``). Anything else is not a score: no score, two scores, a score
out of range, another scale (``4/10``), a range (``2-3``), a decimal or exponent (``2.5``, ``1e1``),
non-ASCII digits. The caller asks again, and after the last attempt records the image as missing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from fp_rank.judging.prompt import SCALE_MAX

#: The rubric's rating words that may stand before the number (DreamBench++'s labels).
RATING_WORDS = ("very poor", "poor", "fair", "good", "excellent")

_LABEL = re.compile(r"(?<![A-Za-z])score[*_]*\s*[:\uff1a][*_]*\s*", re.IGNORECASE)
_NUMBER = re.compile(
    r"(?:(?P<word>" + "|".join(w.replace(" ", r"\s+") for w in RATING_WORDS) + r")\s*)?"
    r"[\[(]?\s*[*_]*(?P<n>-?[0-9]+)[*_]*\s*[\])]?",
    re.IGNORECASE,
)
_SCALE = re.compile(r"\s*(?:/\s*4|out\s+of\s+4)(?![0-9])", re.IGNORECASE)


@dataclass(frozen=True)
class Reading:
    """What a reply says: the score, or why it is not one."""

    score: int | None
    problem: str | None = None


def read_score(reply: str | None) -> Reading:
    """The score of ``reply``, or the reason it has none.

    Example:
        >>> read_score("Score: 3"), read_score("**Score:** 4").score, read_score("score: Good (2)").score
        (Reading(score=3, problem=None), 4, 2)
        >>> read_score("Score: 3\\nScore: 4").problem
        'two or more scores (3, 4)'
        >>> read_score("Score: 5").problem, read_score("Score: 4/10").problem, read_score("I think 3").problem
        ('5 is outside 0..4', "'4/10' has another number after the score", 'no "Score: N" in the reply')
    """
    if not isinstance(reply, str) or not reply.strip():
        return Reading(None, "empty reply")
    found: list[str] = []
    problems: list[str] = []
    for line in reply.splitlines():
        for label in _LABEL.finditer(line):
            rest = line[label.end():]
            match = _NUMBER.match(rest)
            if match is None:
                problems.append(f"no number after {line.strip()[:40]!r}")
                continue
            tail = rest[match.end():]
            scale = _SCALE.match(tail)
            tail = tail[scale.end():] if scale else tail
            if any(ch.isdigit() or ch.isnumeric() for ch in tail):
                problems.append(f"{rest.strip()[:20]!r} has another number after the score")
                continue
            found.append(match.group("n"))
    if len(found) > 1:
        return Reading(None, f"two or more scores ({', '.join(found)})")
    if problems:
        return Reading(None, problems[0])
    if not found:
        return Reading(None, 'no "Score: N" in the reply')
    value = int(found[0])
    if not 0 <= value <= SCALE_MAX:
        return Reading(None, f"{value} is outside 0..{SCALE_MAX}")
    return Reading(value)
