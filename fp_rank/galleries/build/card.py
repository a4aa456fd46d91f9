"""Render the dataset card (README.md) and the benchmark declaration (eval.yaml) of a built gallery.

The card's YAML carries ``configs:`` (one per group plus ``all``) and, under
``fp_rank.galleries.schema.CARD_KEY``, the benchmark definition that ``fp_rank.load_gallery``
reads. The prose follows the Hub dataset card template. ``eval.yaml`` declares the folder a Hub
benchmark: one task per config (task id = config name), scored by mAP under the card's primary
encoder; model repositories point at those tasks from their ``.eval_results/*.yaml``
(:mod:`fp_rank.hub.results`). Output is a pure function of the inputs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from fp_rank.galleries.build.spec import BUILDER_VERSION, GallerySpec
from fp_rank.galleries.schema import (
    ALL_CONFIG,
    ALL_SPLITS,
    CARD_KEY,
    GALLERY_SPLIT,
    HOLDOUT_SPLIT,
    MANIFEST_FILE,
    REFERENCE_SPLIT,
)
from fp_rank.protocol import CITATION
from fp_rank.version import PROTOCOL_VERSION

#: The benchmark paper; the Hub links arXiv abstract URLs found in a card.
PAPER_URL = "https://arxiv.org/abs/2512.19026"
#: Where the reference evaluation code lives.
REFERENCE_CODE_URL = "https://github.com/OSU-MLB/Finer-Personalization-Rank"
#: File name of the Hub benchmark declaration at the root of a gallery dataset repository.
EVAL_FILE = "eval.yaml"
#: ``evaluation_framework`` of the declaration: results come from the fp-rank library.
EVALUATION_FRAMEWORK = "fp-rank"

#: What each split is for, in the words every card uses.
SPLIT_DESCRIPTIONS: dict[str, str] = {
    GALLERY_SPLIT: "real images ranked against each generated query (positives: the query's "
    "identity; negatives: the other identities of the group)",
    REFERENCE_SPLIT: "real images given to the personalization method as the subject photos; "
    "also the real-image baseline queries of the reference code",
    HOLDOUT_SPLIT: "real images of the same identities in neither gallery nor reference, as "
    "queries for a real-image ceiling; absent for identities with none left",
}


class _CardDumper(yaml.SafeDumper):
    """Safe YAML dumper that writes multi-line strings as literal blocks, and never aliases
    (:func:`fp_rank.galleries.card.parse_card_yaml` refuses cards that use them)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


def _represent_list(dumper: yaml.SafeDumper, value: list[Any]) -> yaml.Node:
    numbers = bool(value) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=numbers)


_CardDumper.add_representer(str, _represent_str)
_CardDumper.add_representer(list, _represent_list)


def card_metadata(spec: GallerySpec, summary: Mapping[str, Any]) -> dict[str, Any]:
    """The YAML front matter as a plain dict (Hub fields, ``configs``, the benchmark block)."""
    groups: dict[str, Any] = {}
    for group in spec.groups:
        entry: dict[str, Any] = {"noun": group.noun, "identities": list(summary["group_identities"][group.name])}
        entry.update(group.details)
        entry.update(summary.get("group_notes", {}).get(group.name, {}))
        groups[group.name] = entry
    benchmark: dict[str, Any] = {
        "protocol_version": PROTOCOL_VERSION,
        "builder": spec.builder,
        "builder_version": BUILDER_VERSION,
        "seed": spec.seed,
        "source": {
            "name": spec.source.name,
            "homepage": spec.source.homepage,
            "download": spec.source.download,
            "layout": spec.source.layout,
            "license": spec.source.license,
            "citation": spec.source.citation,
        },
        "selection": spec.selection,
        "gallery_selection": summary.get("gallery_selection"),
        "groups": groups,
        "identities": dict(summary["identities"]),
        "prompts": list(spec.prompts),
        "prompt_notes": spec.prompt_notes,
        "recommended_encoders": dict(spec.recommended_encoders),
        "splits": {split: SPLIT_DESCRIPTIONS[split] for split in ALL_SPLITS},
        "counts": summary["counts"],
        "duplicates": list(summary["duplicates"]),
        "keep_duplicates": bool(summary.get("keep_duplicates", False)),
        "skipped": list(summary["skipped"]),
        "manifest": MANIFEST_FILE,
        "citation": CITATION.rstrip(),
    }
    return {
        "pretty_name": spec.pretty_name,
        "license": spec.license_id,
        "license_name": f"{spec.builder}-source-terms",
        "license_link": spec.source.homepage,
        "source_datasets": list(spec.source.source_datasets) or [f"extended|{spec.source.name}"],
        "task_categories": ["image-feature-extraction"],
        "tags": list(spec.tags),
        "size_categories": [_size_category(summary["total"])],
        "configs": summary["configs"],
        CARD_KEY: benchmark,
    }


def render_card(spec: GallerySpec, summary: Mapping[str, Any]) -> str:
    """The complete README.md text of a gallery folder."""
    metadata = card_metadata(spec, summary)
    front = yaml.dump(
        metadata, Dumper=_CardDumper, sort_keys=False, allow_unicode=True, width=100, default_flow_style=False
    )
    return f"---\n{front}---\n\n{_body(spec, summary)}"


def _duplicate_line(entry: Mapping[str, Any], kept: bool) -> str:
    twin = f"`{entry['duplicate_of']}` (in {entry.get('duplicate_of_split') or 'no split'})"
    if kept:
        return f"- `{entry['source_path']}` (in {entry.get('split')}) is identical to {twin}; both kept"
    return f"- `{entry['source_path']}` is identical to {twin}; left out"


def eval_metadata(spec: GallerySpec, summary: Mapping[str, Any]) -> dict[str, Any]:
    """The Hub benchmark declaration (``eval.yaml``) as a plain dict.

    One task per config: ``all`` (the headline, macro mean over groups) first, then each group;
    a task's id is its config name, and its split the ``gallery`` split its queries are ranked
    against. The ``fp_rank`` block names the metric, the encoder that makes it comparable and the
    protocol version.
    """
    names = [c["config_name"] for c in summary["configs"]]
    tasks = []
    for name in names:
        scope = "macro mean over the groups' mAP" if name == ALL_CONFIG else f"mAP of the {name} group"
        tasks.append({"id": name, "config": name, "split": GALLERY_SPLIT, "description": scope})
    primary = spec.recommended_encoders.get("primary")
    return {
        "name": spec.pretty_name,
        "description": (
            f"Finer-Personalization Rank benchmark ({PAPER_URL}): each image generated for an identity "
            "is a query against this gallery; the score is mean average precision of retrieving its "
            "identity."
        ),
        "evaluation_framework": EVALUATION_FRAMEWORK,
        "tasks": tasks,
        CARD_KEY: {
            "metric": "map",
            "metric_name": "mAP",
            "higher_is_better": True,
            "range": [0, 1],
            "encoder": primary,
            "protocol_version": PROTOCOL_VERSION,
            "builder": spec.builder,
            "builder_version": BUILDER_VERSION,
            "notes": "Values are comparable only under the same encoder, protocol version and "
            "dataset revision; .eval_results entries name the encoder in their notes.",
        },
    }


def render_eval_yaml(spec: GallerySpec, summary: Mapping[str, Any]) -> str:
    """The ``eval.yaml`` text of a gallery folder (sorted as declared, no timestamps)."""
    return yaml.dump(
        eval_metadata(spec, summary), Dumper=_CardDumper, sort_keys=False, allow_unicode=True, width=100,
        default_flow_style=False,
    )


def _size_category(total: int) -> str:
    if total < 1_000:
        return "n<1K"
    if total < 10_000:
        return "1K<n<10K"
    if total < 100_000:
        return "10K<n<100K"
    return "100K<n<1M"


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _body(spec: GallerySpec, summary: Mapping[str, Any]) -> str:
    """The card's Markdown under the front matter, section by section."""
    return "\n".join([
        _head(spec), _sources_and_uses(spec), _structure(spec, summary), _creation(spec, summary), _closing(spec),
    ])


def _head(spec: GallerySpec) -> str:
    """The title, what the benchmark is, and how to load it."""
    encoders = spec.recommended_encoders
    encoder_line = (
        f"primary `{encoders['primary']}`; general: {', '.join(f'`{e}`' for e in encoders['general']) or 'none'}; "
        f"specialist: {', '.join(f'`{e}`' for e in encoders['specialist']) or 'none'}."
    )
    if encoders.get("note"):
        encoder_line += f" {encoders['note']}"
    first_group = spec.groups[0].name
    return f"""# {spec.pretty_name}

{spec.description}

This folder is a complete Hugging Face dataset repository and the definition of one
Finer-Personalization Rank (FP-Rank) benchmark: protocol version {PROTOCOL_VERSION}, built by the
`{spec.builder}` builder of `gallery_builders` version {BUILDER_VERSION}
(seed {spec.seed if spec.seed is not None else "none"}). The YAML front matter of this card holds the
machine-readable definition under `{CARD_KEY}:`.

## Dataset Description

FP-Rank scores an image generated by a personalization method by using it as a query against an
identity-labelled gallery of real images that holds the subject and visually similar identities,
ranking the gallery by embedding similarity, and computing retrieval mAP. A query is ranked
only against the gallery of its own group.

- **Source:** [{spec.source.name}]({spec.source.homepage})
- **License of the images:** {spec.source.license}
- **Recommended encoders:** {encoder_line}

### How to use

```python
from datasets import load_dataset

gallery = load_dataset("path/or/hub-id", "{first_group}", split="gallery")
reference = load_dataset("path/or/hub-id", "{first_group}", split="reference")

import fp_rank

gallery = fp_rank.load_gallery("path/or/hub-id", "{first_group}")
```
"""


def _sources_and_uses(spec: GallerySpec) -> str:
    """Where the images come from, what each split is for, and the prompts."""
    prompts = "\n".join(f"{n}. {p}" for n, p in enumerate(spec.prompts, start=1))
    return f"""## Dataset Sources

- **Homepage:** {spec.source.homepage}
- **Download:** {spec.source.download}
- **Layout read:** {spec.source.layout}
- **Benchmark paper:** [Finer-Personalization Rank]({PAPER_URL}) (arXiv:2512.19026); reference
  code: {REFERENCE_CODE_URL}
- **Benchmark declaration:** `{EVAL_FILE}` (one task per config, scored by mAP under the primary
  encoder); models report results in their `.eval_results/` folder, pointing at this dataset, a
  task and a revision.

## Uses

- `reference`: give these photos of an identity to a personalization method, then generate one
  image per prompt below with the group noun for `{{X}}`.
- `gallery`: rank each generated image against the gallery of its group; the identity label of
  the generated image says which gallery images are relevant.
- `holdout`: real photos of the same identities, to measure the score real images reach.

Not intended for training classifiers evaluated on the same images, nor for identifying people
or the owners of vehicles or animals.

### Prompts

{prompts}

{spec.prompt_notes}
"""


def _structure(spec: GallerySpec, summary: Mapping[str, Any]) -> str:
    """Configs, splits, shards, and the counts per group and identity."""
    counts = summary["counts"]
    group_rows = [
        (
            f"`{g.name}`",
            g.noun,
            len(summary["group_identities"][g.name]),
            counts[g.name][GALLERY_SPLIT],
            counts[g.name][REFERENCE_SPLIT],
            counts[g.name][HOLDOUT_SPLIT],
        )
        for g in spec.groups
    ]
    group_of = {i: g for g, members in summary["group_identities"].items() for i in members}
    identity_rows = [
        (f"`{label}`", name, f"`{group_of[label]}`", *summary["identity_counts"][label].values())
        for label, name in summary["identities"].items()
    ]
    column_rows = [
        ("`image`", "image (bytes embedded)", "the photo"),
        ("`identity`", "string", "stable identity label; put it on your generated images"),
        ("`identity_name`", "string", "readable name of the identity"),
        ("`group`", "string", "the group (config) the identity belongs to"),
        ("`source_path`", "string", f"where the image is in the {spec.source.name} source"),
        ("`sha256`", "string", "SHA-256 of the image bytes"),
    ] + [(f"`{name}`", dtype, "source metadata") for name, dtype in spec.extra_columns.items()]
    return f"""## Dataset Structure

Configs: `all` (default; every group) and one per group. Splits: `gallery`, `reference` and,
where images remained, `holdout`. Shards: `data/<group>/<split>-00000-of-00001.parquet`.
`{MANIFEST_FILE}` lists split, group, identity, source path and SHA-256 of every image.

{_table(("group", "noun", "identities", "gallery", "reference", "holdout"), group_rows)}

{_table(("identity", "name", "group", "gallery", "reference", "holdout"), identity_rows)}

Columns:

{_table(("column", "type", "meaning"), column_rows)}
"""


def _creation(spec: GallerySpec, summary: Mapping[str, Any]) -> str:
    """How the images were selected, duplicates and skipped files, personal information."""
    duplicates = summary["duplicates"]
    skipped = summary["skipped"]
    keep_duplicates = bool(summary.get("keep_duplicates", False))
    dup_text = (
        "\n".join(_duplicate_line(d, keep_duplicates) for d in duplicates)
        if duplicates
        else "No byte-identical images were found among the images read."
    )
    if keep_duplicates:
        dup_text = (
            "Built with `--keep-duplicates` (`keep_duplicates=True`): byte-identical copies stay where the "
            "selection put them, as in the reference code, so a copy can sit in two splits or twice in one. "
            "Load such a gallery with `on_duplicate=\"allow\"` (CLI `--on-duplicate allow`).\n\n" + dup_text
        )
    disjoint = (
        "No source file is in two splits; byte-identical copies may be (see Duplicates)."
        if keep_duplicates
        else "No source file and no byte-identical image is in two splits."
    )
    notes = summary.get("selection_notes") or ""
    notes = f"\n\n{notes}" if notes else ""
    skip_text = (
        "\n".join(f"- `{s['source_path']}`: {s['reason']}" for s in skipped)
        if skipped
        else "No file was skipped."
    )
    return f"""## Dataset Creation

### Curation Rationale

The groups gather visually similar identities so that the gallery's negatives are hard: a
generated image scores well only if the details that tell its identity apart survived generation.

### Source Data

{spec.selection}{notes}

{disjoint} Images are stored byte for byte as
read from the source (not re-encoded). The same source and seed give byte-identical files.

### Duplicates

{dup_text}

### Skipped files

{skip_text}

### Personal and Sensitive Information

The images show the subjects of the groups ({", ".join(g.noun for g in spec.groups)}), not people,
but photos gathered from the web or by field cameras can show bystanders, licence plates, houses
or places. The images are stored byte for byte as read from the source, so any EXIF metadata
the source files carry (camera, time, and for some photos GPS position) is kept. Nothing was
detected, blurred or removed. Do not use these images to identify people, or the owners of vehicles or animals.
"""


def _closing(spec: GallerySpec) -> str:
    """Limitations, contact and citations."""
    return f"""## Bias, Risks, and Limitations

{spec.limitations}

Small galleries give noisy mAP: compare methods on the same gallery version, with confidence
intervals, and report the protocol and builder versions above.

## Dataset Card Contact

Questions, corrections and requests to remove an image: open a discussion in the Community tab
of this dataset repository. The protocol is the one of the benchmark paper ({PAPER_URL}); its
authors' code is at {REFERENCE_CODE_URL}.

## Citation

Source dataset:

```bibtex
{spec.source.citation}
```

Benchmark:

```bibtex
{CITATION.rstrip()}
```
"""
