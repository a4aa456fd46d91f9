"""Benchmark facts the real galleries' cards carry: prompts and recommended encoders.

The prompt texts are the ten per dataset of the reference generation code
(OSU-MLB/Finer-Personalization-Rank), kept word for word, typos included, with ``{X}`` where that
code put the class noun. Methods that bind the subject to an identifier token put
``"<token> <noun>"`` for ``{X}``.
"""

from __future__ import annotations

from typing import Any

BIRD_PROMPTS: tuple[str, ...] = (
    "a photo of a {X} on a tree branch",
    "a {X} on the beach",
    "a photo of a {X} on a fence",
    "a {X} with a mountain in the backgorund",
    "a photo of a {X} perched on a rock inside a forest",
    "a {X} in a puddle",
    "a photo of a {X} flying in the sky",
    "a {X} perched with a mountain in the background",
    "a photo of a {X} perched with tall grass in the background",
    "a {X} flying over water",
)

CAR_PROMPTS: tuple[str, ...] = (
    "a photo of a {X} on a dirt road",
    "a {X} in front of a house",
    "a photo of a {X} driving down a dirt road with mountains in the distance",
    "a {X} driving down a mountain road while it is raining",
    "a photo of a {X} driving on a snowy road in the mountains",
    "a {X} in front of a mountain",
    "a photo of a {X} parked on a cliff overlooking the ocean",
    "a {X} driving fast on a racetrack",
    "a photo of a {X} parked on the beach in front of the sea",
    "a {X} parked inside a shipping crate",
)

REID_PROMPTS: tuple[str, ...] = (
    "a {X} in a grassy field",
    "a photo of a {X} on the beach",
    "a {X} on a cobblestone street",
    "a photo of a {X} with a mountain in the backgorund",
    "a {X} laying down on the beach",
    "a {X} in a puddle",
    "a {X} in the forest",
    "a photo of a {X} sitting down with a mountain in the background",
    "a {X} running with tall grass in the background",
    "a {X} walking on a dirt road",
)

_PROMPT_NOTE = (
    "{X} is the group noun (groups.<group>.noun); methods that learn an identifier token use "
    "'<token> <noun>' for {X}. Texts are those of the reference generation code, word for word "
    "(including the 'backgorund' typo), so generated sets stay comparable."
)
BIRD_PROMPT_NOTES = _PROMPT_NOTE
REID_PROMPT_NOTES = _PROMPT_NOTE
CAR_PROMPT_NOTES = _PROMPT_NOTE + (
    " With an identifier token the reference code's first car prompt reads "
    "'a photo of a {X} on a dirt road sided by cornfields'."
)

#: General-purpose encoders of the real galleries, the primary one first.
GENERAL_ENCODERS: tuple[str, ...] = ("dinov2-base", "clip-vit-b32")


def recommended_encoders(specialist: tuple[str, ...], note: str | None = None) -> dict[str, Any]:
    """Encoder block of a real gallery's card: DINOv2 primary, CLIP beside it, plus specialists."""
    block: dict[str, Any] = {
        "primary": GENERAL_ENCODERS[0],
        "general": list(GENERAL_ENCODERS),
        "specialist": list(specialist),
    }
    if note:
        block["note"] = note
    return block
