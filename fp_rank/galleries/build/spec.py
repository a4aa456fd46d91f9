"""What a gallery build is made of: its candidate images, its card content and its naming rules.

A source adapter (``gallery_builders.cub``...) lists :class:`Candidate` images and describes the
gallery in a :class:`GallerySpec`; :func:`fp_rank.galleries.build.writer.build_gallery` does the
rest. Labels and config names go through :func:`safe_label` and :func:`check_config_name`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from fp_rank.errors import BuilderError
from fp_rank.file_access import cut_with_digest
from fp_rank.galleries.schema import ALL_CONFIG

#: Version of the gallery writer and the builders' selection rules, written in every card; any
#: change that can move a selected image bumps it.
BUILDER_VERSION = "1.0.0"

#: Column types a source may add beside ``fp_rank.galleries.schema.BUILDER_COLUMNS``.
ExtraType = Literal["string", "int32"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_CONFIG_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True, eq=False)
class Candidate:
    """One real image that a builder's selection rule may place in a split.

    Attributes:
        source_path: Where the image lives in the source, posix and relative to the source root
            (``images/193.Bewick_Wren/x.jpg``), or ``<split>/<row>`` for a row of a Parquet
            source. Unique within one build.
        identity: Stable, filesystem-safe label (``Bewick_Wren``).
        identity_name: Readable name (``Bewick Wren``).
        group: Group (config) the identity belongs to.
        read: Returns the raw image bytes; raises ``OSError`` when the file cannot be read.
        file_name: Bare file name stored in the ``image`` column's ``path`` (or ``None``).
        extra: Values of the builder's extra columns.
    """

    source_path: str
    identity: str
    identity_name: str
    group: str
    read: Callable[[], bytes] = field(repr=False)
    file_name: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SourceInfo:
    """Where a gallery's images come from; printed in the dataset card.

    Attributes:
        name: Dataset name (``CUB-200-2011``).
        homepage: Project page.
        download: Where to get the files the builder reads, and which layout.
        license: Licence or terms of use of the images, in words.
        citation: BibTeX entry of the source.
        layout: The on-disk layout the builder read (one line).
        source_datasets: The card's ``source_datasets:`` (Hub convention: ``original``, or
            ``extended|<dataset>`` with the Hub id where the source is on the Hub); empty means
            ``extended|<name>``.
    """

    name: str
    homepage: str
    download: str
    license: str
    citation: str
    layout: str
    source_datasets: tuple[str, ...] = ()


@dataclass(frozen=True)
class GroupInfo:
    """One group (one config) of a gallery: its name, the noun its prompts use, and details.

    Attributes:
        name: Config name, filesystem-safe (``wren``, ``sea_turtle``).
        noun: The word put for ``{X}`` in the prompts (``wren``, ``sea turtle``).
        details: Extra definition fields written in the card (``cub_class_ids``...).
    """

    name: str
    noun: str
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class GallerySpec:
    """Everything about a gallery that is not the images: it becomes the dataset card.

    Attributes:
        builder: Builder name (``cub``).
        pretty_name: Title of the dataset card.
        seed: Seed of the selection rule (``None`` where the rule uses none).
        source: The source dataset.
        groups: The groups, in card order.
        prompts: Prompt templates with ``{X}`` standing for the group noun.
        prompt_notes: How the prompts are used, and their known quirks.
        recommended_encoders: ``{"primary": alias, "general": [...], "specialist": [...]}``
            plus an optional ``note``.
        selection: The selection procedure, in words precise enough to re-implement it.
        description: One paragraph on what the gallery is.
        limitations: Bias, risks and limitations paragraph.
        extra_columns: Builder-specific columns and their types, in column order.
        license_id: Hub licence id for the card's ``license:`` field.
        tags: Hub tags.
    """

    builder: str
    pretty_name: str
    seed: int | None
    source: SourceInfo
    groups: tuple[GroupInfo, ...]
    prompts: tuple[str, ...]
    prompt_notes: str
    recommended_encoders: Mapping[str, Any]
    selection: str
    description: str
    limitations: str
    extra_columns: Mapping[str, ExtraType] = field(default_factory=dict)
    license_id: str = "other"
    tags: tuple[str, ...] = ("fp-rank", "image-retrieval", "personalization", "fine-grained")


@dataclass(frozen=True)
class SelectionNotes:
    """What a builder reports about its final selection (written in the card).

    Attributes:
        groups: Per group, extra fields for the card's group entry (``cutoff`` ties...).
        text: A paragraph for the card's Source Data section ('' for none).
    """

    groups: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    text: str = ""


#: Longest label :func:`safe_label` returns (longer ones end in a digest of the full name).
MAX_LABEL_CHARS = 100


def safe_label(text: str, *, what: str = "label") -> str:
    """Turn a class or identity name into a filesystem-safe label.

    Runs of characters other than letters, digits, ``.``, ``_`` and ``-`` become one ``_``.

    Args:
        text: The name (``Ram C/V Cargo Van Minivan 2012``).
        what: What the name is, for the error message.

    Returns:
        The label (``Ram_C_V_Cargo_Van_Minivan_2012``).

    Raises:
        BuilderError: If nothing usable is left.

    Example:
        >>> safe_label("Acura RL Sedan 2012")
        'Acura_RL_Sedan_2012'
    """
    label = _UNSAFE.sub("_", text.strip()).strip("_.")
    if not label:
        raise BuilderError(f"{what} {text!r} has no letter or digit to build a label from")
    return cut_with_digest(label, text, MAX_LABEL_CHARS)  # file systems refuse names over 255 bytes


def group_slug(text: str) -> str:
    """Config name for a group noun: lower-case :func:`safe_label`.

    Example:
        >>> group_slug("sea turtle")
        'sea_turtle'
    """
    return safe_label(text, what="group").lower()


def check_config_name(name: str) -> str:
    """Return ``name`` if it can name a config and a data folder, else raise BuilderError."""
    if not _CONFIG_NAME.fullmatch(name) or name == ALL_CONFIG:
        raise BuilderError(
            f"group name {name!r} cannot name a config: use letters, digits, '_', '.', '-' "
            f"(starting with a letter or digit), and not {ALL_CONFIG!r}"
        )
    return name
