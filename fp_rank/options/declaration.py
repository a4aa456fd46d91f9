"""The declaration: one :class:`~fp_rank.options.kinds.Option` per keyword of :func:`fp_rank.evaluate`,
and the views derived from it (grouping, the command line's spelling, the docs table)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from fp_rank.errors import InputError, Opt
from fp_rank.options.kinds import Option, Shorthand
from fp_rank.options.specs import (
    ModelChoice,
    cache_from_cli,
    check_background,
    check_cache,
    check_clip_t,
    check_device,
    check_encoder,
    check_judge,
    check_judge_prompt,
    check_max_calls,
    max_calls_from_cli,
    dtype_spelling,
    preprocessing_spelling,
)

#: Documentation groups, in the order the docs and ``--help`` list them.
GROUPS: dict[str, str] = {
    "gallery": "Gallery",
    "encoder": "Encoder",
    "scoring": "Scoring",
    "judge": "Judge",
    "output": "Output",
}


OPTIONS: tuple[Option, ...] = (
    Option("gallery_config", None, "gallery config: one group of the gallery, or 'all'", "gallery", "text",
           "str | None", flag="--config"),
    Option("gallery_revision", None, "Hub revision (branch, tag or commit) of the gallery", "gallery", "text",
           "str | None", flag="--revision"),
    Option("min_gallery_images", 2, "fewest gallery images an identity may have", "gallery", "int", "int",
           flag="--min-gallery-images", minimum=1),
    Option("on_duplicate", "error", "identical images inside the gallery or shared with its reference split: "
           "fail, or allow them", "gallery", "choice", "str", flag="--on-duplicate", choices=("error", "allow")),
    Option("encoder", None, "encoder: a registry alias, Hub id or folder (ID@REVISION pins the weights), or from "
           "Python a callable or fp_rank.Encoder; several (a list, or the flag repeated) each score the run. "
           "Default: the gallery card's recommended primary encoder", "encoder", "spec",
           "str | Encoder | Callable | Sequence[str | Encoder] | None", flag="--encoder", metavar="ENCODER",
           repeat=True, check=check_encoder, values="alias, Hub id, folder, `ID@REVISION`; a list"),
    Option("device", None, "torch device, e.g. cpu, cuda, cuda:1 (default: CUDA when available)", "encoder",
           "spec", "str | None", flag="--device", check=check_device, values="torch device name"),
    Option("dtype", None, "autocast dtype of the encoder (default float32; recorded in the report)", "encoder",
           "choice", "str | None", flag="--dtype", choices=("float32", "bfloat16", "float16"), check=dtype_spelling),
    Option("preprocessing", "processor", "model inputs exactly as the reference code makes them (the "
           "checkpoint's image processor; OpenCV for miewid), or fp-rank's faster torch reimplementation "
           "(within a documented tolerance; recorded in the report)", "encoder", "choice", "str",
           flag="--preprocessing", choices=("processor", "fast"), check=preprocessing_spelling),
    Option("batch_size", 32, "images per forward pass (memory is bounded by it, not by the image count)",
           "encoder", "int", "int", flag="--batch-size", minimum=1),
    Option("num_workers", 0, "worker processes decoding and preprocessing images while the model runs (0: in "
           "this process, one batch ahead); the numbers do not depend on it", "encoder", "int", "int",
           flag="--workers", minimum=0),
    Option("background", "keep", "keep the background, or remove it from every encoded image (gallery, "
           "reference, holdout, generated, conditioning) before the encoder, filling it with grey 130 as the "
           "reference code's --remove_background does: 'remove' uses carvekit with the reference's settings "
           "(pip install 'fp-rank[background]'); a transformers segmentation checkpoint (Hub id or folder) or, "
           "from Python, a callable PIL.Image -> PIL.Image names another matting backend", "encoder", "spec",
           "str | Callable | Matting", flag="--background", metavar="keep|remove|BACKEND", check=check_background,
           values="`keep`, `remove`, a matting checkpoint; a callable"),
    Option("trust_remote_code", False, "allow encoders that run their repository's code (miewid)", "encoder",
           "bool", "bool", flag="--trust-remote-code"),
    Option("cache", True, "embedding cache of the gallery, reference and holdout images and of the generated "
           "images: on (the default folder, $FP_RANK_CACHE or $HF_HOME/fp_rank), off, or a folder",
           "encoder", "spec", "bool | str | PathLike", flag="--cache", metavar="on|off|FOLDER", check=check_cache,
           from_cli=cache_from_cli, shorthands=(Shorthand("--no-cache", False, "the same as --cache off"),),
           values="True, False, a folder"),
    Option("on_missing", "error", "identity labels without gallery images: fail (listing close matches), leave "
           "those images out, or score them AP 0 in their group as the reference code does (counted either "
           "way)", "scoring", "choice", "str", flag="--on-missing", choices=("error", "skip", "zero")),
    Option("on_invalid", "error", "unreadable generated images: fail, or leave them out and list them",
           "scoring", "choice", "str", flag="--on-invalid", choices=("error", "skip")),
    Option("single_identity_groups", "error", "gallery groups with one identity (every query would score AP "
           "1): fail, or leave their queries out (counted)", "scoring", "choice", "str",
           flag="--single-identity-groups", choices=("error", "skip")),
    Option("leaks", "flag", "generated images that copy a gallery, reference or holdout image (exact or near "
           "copies): flag them in the report, leave them out of every score (counted), or do not check",
           "scoring", "choice", "str", flag="--leaks", choices=("flag", "exclude", "off")),
    Option("cmc_ks", (1, 5, 10), "ranks k of CMC@k and Recall@k", "scoring", "ints", "Sequence[int]",
           flag="--cmc-ks", minimum=1, metavar="K"),
    Option("top_k", 0, "keep each query's top-k gallery matches in its row (for figures)", "scoring", "int",
           "int", flag="--top-k", minimum=0),
    Option("ceilings", True, "also score the real images (holdout, reference) as queries: the real-image "
           "ceiling and baseline", "scoring", "bool", "bool", flag="--no-ceilings",
           off_help="skip the real-image references, holdout and baseline (holdout and reference images as queries)"),
    Option("gallery_draws", 0, "also redraw the gallery images N times from the gallery's holdout images (same "
           "identities, same sizes) and report how much each method's mAP, and each difference, moves with the draw",
           "scoring", "int", "int", flag="--gallery-draws", minimum=0, metavar="N"),
    Option("gallery_draw_seed", 0, "seed of the gallery redraws", "scoring", "int", "int", flag="--gallery-draw-seed",
           minimum=0, requires="gallery_draws"),
    Option("clip_t", None, "also score text alignment (CLIP-T) of every image with a prompt, with this CLIP "
           "checkpoint (alias such as clip-vit-b32, Hub id or folder; ID@REVISION pins it)", "scoring", "spec",
           "str | None", flag="--clip-t", metavar="MODEL", check=check_clip_t,
           values="alias, Hub id, folder, `ID@REVISION`"),
    Option("judge", None, "also score concept preservation with a vision-language judge (DreamBench++ style, "
           "0-4 reported / 4): openai:MODEL for an OpenAI-compatible endpoint (OPENAI_BASE_URL and OPENAI_API_KEY "
           "from the environment, never from here), or a transformers model's Hub id or folder (ID@REVISION pins it); "
           "from Python also a fp_rank.judging.Judge", "judge", "spec", "str | Judge | None", flag="--judge",
           metavar="openai:MODEL|MODEL", check=check_judge, values="`openai:MODEL`, Hub id, folder, `ID@REVISION`"),
    Option("judge_prompt", None, "folder with the judge's prompt: user.txt (and assistant.txt), or DreamBench++'s "
           "user_prompt_subject_full.txt (and gpt_prompt_subject_full.txt); default: fp-rank's own wording of the "
           "concept-preservation rubric", "judge", "spec", "str | PathLike | None", flag="--judge-prompt",
           metavar="FOLDER", check=check_judge_prompt, values="a folder", requires="judge"),
    Option("judge_max_calls", None, "the most judge calls this run may make (retries count); a run that needs more "
           "than this for the images not judged before is refused before any call", "judge", "spec", "int | None",
           flag="--judge-max-calls", metavar="N", check=check_max_calls, from_cli=max_calls_from_cli,
           values="integer >= 1 or None", requires="judge"),
    Option("judge_concurrency", 4, "judge requests in flight at once (a local model takes one at a time)", "judge",
           "int", "int", flag="--judge-concurrency", minimum=1, requires="judge"),
    Option("judge_timeout", 120, "seconds one judge call may take before it is cut off and retried", "judge", "int",
           "int", flag="--judge-timeout", minimum=1, requires="judge"),
    Option("progress", True, "show progress bars (ours, datasets' and transformers')", "output", "bool", "bool",
           flag="--no-progress", off_help="hide progress bars (ours, datasets' and transformers')"),
)

BY_NAME: dict[str, Option] = {o.name: o for o in OPTIONS}


def option(name: str) -> Option:
    """The declared option ``name``.

    Raises:
        InputError: no option has that name (the message lists them).
    """
    try:
        return BY_NAME[name]
    except KeyError:
        raise InputError(f"unknown option {name!r}; options: {', '.join(BY_NAME)}") from None


# -- older spellings, kept for one version ---------------------------------------------------------


@dataclass(frozen=True)
class Deprecated:
    """A keyword (and flag) of fp-rank 0.1 that still works, with a warning, until 0.3.

    Attributes:
        name: the old Python keyword.
        flag: the old ``fp-rank evaluate`` flag.
        instead: the option that replaces it.
        how: what to write instead, for the warning (text and :class:`~fp_rank.errors.Opt` parts).
        switch: the old flag took no value; it set the keyword to this.
    """

    name: str
    flag: str
    instead: str
    how: tuple[str | Opt, ...]
    switch: Any = None


DEPRECATED: tuple[Deprecated, ...] = (
    Deprecated("encoder_revision", "--encoder-revision", "encoder", ("write the revision after the id: ID@REVISION",)),
    Deprecated("clip_t_revision", "--clip-t-revision", "clip_t", ("write the revision after the id: ID@REVISION",)),
    Deprecated("cache_dir", "--cache-dir", "cache", ("give the folder as the cache value",)),
    Deprecated("check_leaks", "--no-leak-check", "leaks", (Opt("leaks", "off"), " turns the check off"), switch=False),
    Deprecated("exclude_leaks", "--exclude-leaks", "leaks", (Opt("leaks", "exclude"), " leaves copies out"), switch=True),
    Deprecated("matting", "--matting", "background", ("give the matting backend as the background value",)),
)
DEPRECATED_BY_NAME = {d.name: d for d in DEPRECATED}

#: The version that removes the older spellings.
REMOVED_IN = "0.3"


# -- derived views ------------------------------------------------------------------------------------


def grouped() -> list[tuple[str, list[Option]]]:
    """The options by documentation group, in declaration order."""
    return [(title, [o for o in OPTIONS if o.group == key]) for key, title in GROUPS.items()]


def cli_spelling(opt: Opt) -> str:
    """How ``fp-rank evaluate`` names an option in a message (``--on-invalid skip``, ``--leaks``).

    Example:
        >>> cli_spelling(Opt("on_invalid", "skip")), cli_spelling(Opt("batch_size")), cli_spelling(Opt("ceilings", False))
        ('--on-invalid skip', '--batch-size', '--no-ceilings')
    """
    from fp_rank.errors import NO_VALUE

    old = DEPRECATED_BY_NAME.get(opt.name)
    if old is not None:
        if opt.value is NO_VALUE:
            return old.flag
        if old.switch is not None:
            return old.flag if opt.value == old.switch else f"leave out {old.flag}"
        return f"{old.flag} {opt.value}"
    decl = BY_NAME.get(opt.name)
    if decl is None or decl.flag is None:
        return str(opt)
    if decl.kind == "bool":
        return decl.flag if opt.value is NO_VALUE or opt.value != decl.default else f"leave out {decl.flag}"
    if opt.value is NO_VALUE:
        return decl.flag
    value = opt.value.spec if isinstance(opt.value, ModelChoice) else opt.value
    if decl.kind == "ints" and isinstance(value, (list, tuple)):
        return f"{decl.flag} {' '.join(str(v) for v in value)}"
    return f"{decl.flag} {value}"


def markdown_table(options: Iterable[Option] = OPTIONS) -> str:
    """The options as a Markdown table: keyword, flag, default, accepted values, meaning."""
    lines = ["| keyword | `fp-rank evaluate` | default | values | meaning |", "|---|---|---|---|---|"]
    for o in options:
        flag = f"`{o.flag}`" if o.flag else "(Python only)"
        flag += "".join(f", `{s.flag}`" for s in o.shorthands)
        default = "None" if o.default is None else f"`{o.default!r}`"
        lines.append(f"| `{o.name}` | {flag} | {default} | {o.accepted()} | {o.help} |")
    return "\n".join(lines)
