"""The declared parts of the metric card, written from the declarations themselves.

The README (which is also the Space's card) holds these sections between two markers; nothing in
them is typed by hand:

* **Inputs**: the per-image keywords (:data:`fp_rank.runs.PER_IMAGE`) and every option
  (:data:`fp_rank.options.OPTIONS`) with its flag, default and values;
* **Output values**: every metric of :data:`fp_rank.protocol.METRICS`;
* **Definitions we pin**: :data:`fp_rank.protocol.RULES` and the protocol versions
  (:data:`fp_rank.version.PROTOCOL_CHANGES`);
* **Citation**: :data:`fp_rank.protocol.CITATION`.

``python -m fp_rank.views.card README.md`` rewrites them; ``--check`` says whether they are current
(``tests/test_readme.py`` runs the check).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fp_rank.errors import printable
from fp_rank.options import GROUPS, OPTIONS
from fp_rank.protocol import CITATION, METRICS, RULES, Metric
from fp_rank.runs import PER_IMAGE
from fp_rank.version import PROTOCOL_CHANGES, PROTOCOL_VERSION

BEGIN = "<!-- BEGIN GENERATED CARD: python -m fp_rank.views.card README.md -->"
END = "<!-- END GENERATED CARD -->"


def _cell(text: str) -> str:
    return printable(text.replace("|", "\\|").replace("\n", " "))


def inputs_section() -> str:
    """The card's Inputs: the images and labels, then every option by group."""
    lines = [
        "### Inputs",
        "",
        "- **predictions** / `generated`: the generated images (paths, bytes, PIL images, arrays), or a `Run` "
        "(`fp_rank.read_run`); **references** / `identities`: one gallery identity label per image (or one string "
        "for all); **gallery**: a gallery folder or Hub dataset id (required).",
        *[f"- `{p.keyword}`: {p.help}." for p in PER_IMAGE],
        "",
        "Options (the same keywords in `fp_rank.evaluate` and `compute()`; the flag of `fp-rank evaluate`):",
        "",
        "| option | flag | default | values | meaning |",
        "|---|---|---|---|---|",
    ]
    for key in GROUPS:
        for o in (o for o in OPTIONS if o.group == key):
            flag = f"`{o.flag}`" + "".join(f", `{s.flag}`" for s in o.shorthands) if o.flag else "(Python only)"
            default = "None" if o.default is None else f"`{o.default!r}`"
            lines.append(f"| `{o.name}` | {flag} | {default} | {_cell(o.accepted())} | {_cell(o.help)} |")
    return "\n".join(lines)


def _range(m: Metric) -> str:
    if m.lower is None or m.upper is None:
        return "unbounded"
    return f"{round(m.lower):g} to {round(m.upper):g}"


def outputs_section() -> str:
    """The card's Output values: one row per declared metric, then the counts."""
    lines = [
        "### Output values",
        "",
        "| `compute()` key | report field | meaning | range |",
        "|---|---|---|---|",
    ]
    for m in METRICS:
        key = f"`{m.key}@k` (each k of `cmc_ks`)" if m.per_k else f"`{m.result_field}`"
        extra = f", `{m.per_group_field}`" if m.per_group_field else ""
        note = " Computed on request." if m.optional else ""
        lines.append(f"| {key}{extra} | `{m.result_field}` | {_cell(m.description)}{note} | {_range(m)} |")
    lines += [
        "| `map_micro`, `n_queries`, `n_tied` | same | mean AP over all queries; queries scored; queries with ties; "
        "every report also counts what each policy touched (`n_missing`, `n_skipped`, `n_excluded`) and records "
        "the protocol and package versions, the encoder (id, weights revision, pooling, preprocessing, dtype) and "
        "the gallery (id, config, revision, content fingerprint) | |",
    ]
    return "\n".join(lines)


def definitions_section() -> str:
    """The card's Definitions we pin: every rule, then what each protocol version changed."""
    lines = [f"### Definitions we pin (protocol {PROTOCOL_VERSION})", ""]
    lines += [f"- **{name}**: {rule}" for name, rule in RULES]
    versions = "; ".join(f"{version}: {change}" for version, change in PROTOCOL_CHANGES.items())
    lines.append(f"- **Protocol versions** (every report keeps the one it was made under): {versions}.")
    return "\n".join(lines)


def citation_section() -> str:
    return "\n".join(["### Citation", "", "```bibtex", CITATION.rstrip("\n"), "```"])


def generated_card() -> str:
    """Every generated section, between the markers."""
    parts = [inputs_section(), outputs_section(), definitions_section(), citation_section()]
    return "\n".join([BEGIN, "", "\n\n".join(parts), "", END])


def with_card(text: str) -> str:
    """``text`` (a README) with its generated block replaced by the current one.

    Raises:
        ValueError: the markers are missing or out of order.
    """
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"the README has no generated card between {BEGIN!r} and {END!r}")
    return text[:start] + generated_card() + text[end + len(END):]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fp_rank.views.card", description=__doc__.splitlines()[0])
    parser.add_argument("readme", help="the README holding the markers")
    parser.add_argument("--check", action="store_true", help="exit 1 when the generated sections are stale")
    args = parser.parse_args(argv)
    path = Path(args.readme)
    text = path.read_text(encoding="utf-8")
    fresh = with_card(text)
    if args.check:
        if fresh != text:
            print(f"{path}: the generated card is stale; run python -m fp_rank.views.card {path}", file=sys.stderr)
            return 1
        return 0
    path.write_text(fresh, encoding="utf-8")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
