"""Pre-flight validation of a built gallery folder, and publication to the Hugging Face Hub.

:func:`validate` runs offline: the card parses with ``huggingface_hub.DatasetCard``, its
``configs`` resolve to files that exist, every config and split loads with
``datasets.load_dataset`` from the folder, the counts, identities, hashes and the manifest agree
with the card, and no image is in two splits. :func:`push` validates, then creates the dataset
repository, uploads the folder in one commit and tags that commit.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fp_rank.errors import BuilderError
from fp_rank.galleries.schema import (
    ALL_CONFIG,
    ALL_SPLITS,
    BUILDER_COLUMNS,
    CARD_KEY,
    MANIFEST_FILE,
    REQUIRED_SPLITS,
)

#: Keys the benchmark block of the card must hold.
REQUIRED_CARD_KEYS = (
    "protocol_version",
    "builder",
    "builder_version",
    "seed",
    "source",
    "groups",
    "identities",
    "prompts",
    "recommended_encoders",
    "counts",
    "duplicates",
    "skipped",
)
_MAX_LISTED = 10


@dataclass(frozen=True)
class ValidationReport:
    """What :func:`validate` checked.

    Attributes:
        folder: The gallery folder.
        configs: Config names, ``all`` first.
        rows: ``{config: {split: rows}}`` as loaded with ``datasets``.
        primary_encoder: The card's recommended primary encoder alias.
    """

    folder: Path
    configs: tuple[str, ...]
    rows: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    primary_encoder: str = ""


@dataclass(frozen=True)
class PushResult:
    """Where :func:`push` published the gallery."""

    repo_id: str
    tag: str
    commit: str
    url: str


def validate(folder: str | os.PathLike[str]) -> ValidationReport:
    """Check a gallery folder before publishing it; runs offline.

    Args:
        folder: A folder written by a gallery builder.

    Returns:
        A :class:`ValidationReport`.

    Raises:
        BuilderError: Listing every problem found (up to ten, then a count).

    Example:
        >>> from gallery_builders.push import validate
        >>> validate("galleries/cub").configs  # doctest: +SKIP
        ('all', 'wren', 'tern', 'sparrow')
    """
    root = Path(folder)
    metadata = _card_metadata(root)
    problems: list[str] = []
    benchmark = metadata.get(CARD_KEY)
    if not isinstance(benchmark, Mapping):
        raise BuilderError(f"{root / 'README.md'}: the card YAML has no '{CARD_KEY}:' block")
    problems += [f"card: '{CARD_KEY}' lacks '{key}'" for key in REQUIRED_CARD_KEYS if key not in benchmark]
    encoders = benchmark.get("recommended_encoders") or {}
    if not isinstance(encoders, Mapping) or not encoders.get("primary"):
        problems.append(f"card: '{CARD_KEY}.recommended_encoders' lacks 'primary'")
        encoders = {}
    configs = _configs(root, metadata, problems)
    groups = benchmark.get("groups") if isinstance(benchmark.get("groups"), Mapping) else {}
    for group in groups:
        if group not in configs:
            problems.append(f"card: group {group!r} has no config")
    if problems:
        _fail(root, problems)

    rows: dict[str, dict[str, int]] = {}
    images: dict[str, dict[str, list[dict[str, Any]]]] = {}
    with tempfile.TemporaryDirectory(prefix="fp-rank-validate-") as cache, _quiet_datasets():
        for config, splits in configs.items():
            for split in splits:
                loaded = _load_split(root, config, split, cache, problems)
                if loaded is None:
                    continue
                rows.setdefault(config, {})[split] = len(loaded)
                if config != ALL_CONFIG:
                    images.setdefault(config, {})[split] = loaded
    _check_content(benchmark, configs, rows, images, problems)
    _check_manifest(root, images, problems)
    if problems:
        _fail(root, problems)
    return ValidationReport(
        folder=root,
        configs=tuple(configs),
        rows={c: dict(s) for c, s in rows.items()},
        primary_encoder=str(encoders.get("primary", "")),
    )


def push(
    folder: str | os.PathLike[str],
    repo_id: str,
    tag: str,
    *,
    token: str | None = None,
    private: bool | None = None,
) -> PushResult:
    """Validate a gallery folder, upload it to a Hub dataset repository and tag the commit.

    Needs network access and a token with write access (``token`` or the one saved by
    ``hf auth login``). Shards under ``data/`` that the folder no longer has are deleted in the
    same commit, so the tagged revision holds exactly this gallery.

    Args:
        folder: A folder written by a gallery builder.
        repo_id: ``ORG/name`` of the dataset repository (created if missing).
        tag: Git tag to put on the upload commit (``v1.0``); it must not exist yet.
        token: Hub token; ``None`` uses the saved one.
        private: Visibility of a newly created repository (``None``: Hub default).

    Returns:
        A :class:`PushResult` with the commit id.

    Raises:
        BuilderError: If the folder fails :func:`validate`, or ``repo_id`` / ``tag`` is empty.

    Example:
        >>> from gallery_builders.push import push
        >>> push("galleries/cub", "ORG/fp-rank-cub", "v1.0")  # doctest: +SKIP
    """
    if "/" not in repo_id or not all(repo_id.split("/")):
        raise BuilderError(f"repo_id must look like 'ORG/name', got {repo_id!r}")
    if not tag.strip():
        raise BuilderError("tag must not be empty; use e.g. 'v1.0'")
    report = validate(folder)
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    api.create_repo(repo_id, repo_type="dataset", exist_ok=True, private=private)
    commit = api.upload_folder(
        repo_id=repo_id,
        folder_path=str(report.folder),
        repo_type="dataset",
        commit_message=f"fp-rank gallery {tag}",
        delete_patterns=["data/**"],
    )
    api.create_tag(repo_id, tag=tag, revision=commit.oid, repo_type="dataset", tag_message=f"fp-rank gallery {tag}")
    return PushResult(repo_id=repo_id, tag=tag, commit=commit.oid, url=str(commit.commit_url))


# --- helpers ---------------------------------------------------------------------------------


@contextlib.contextmanager
def _quiet_datasets() -> Iterator[None]:
    """Hide the progress bars ``datasets`` shows while preparing each split, then restore them."""
    import datasets

    was_disabled = datasets.is_progress_bar_enabled() is False
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if not was_disabled:
            datasets.enable_progress_bars()


def _fail(root: Path, problems: list[str]) -> None:
    shown = problems[:_MAX_LISTED]
    more = f"; and {len(problems) - _MAX_LISTED} more" if len(problems) > _MAX_LISTED else ""
    raise BuilderError(f"gallery folder {root} is not valid: " + "; ".join(shown) + more)


def _card_metadata(root: Path) -> dict[str, Any]:
    import yaml
    from huggingface_hub import DatasetCard

    if not root.is_dir():
        raise BuilderError(f"gallery folder {root} does not exist or is not a folder")
    readme = root / "README.md"
    if not readme.is_file():
        raise BuilderError(f"missing file {readme}: a gallery folder needs its dataset card; rebuild it")
    try:
        card = DatasetCard.load(readme)
    except (yaml.YAMLError, ValueError, TypeError, OSError) as exc:
        raise BuilderError(f"{readme}: the card does not parse with huggingface_hub.DatasetCard: {exc}") from exc
    metadata = card.data.to_dict()
    if not metadata:
        raise BuilderError(f"{readme}: the card has no YAML front matter")
    return metadata


def _configs(root: Path, metadata: Mapping[str, Any], problems: list[str]) -> dict[str, list[str]]:
    raw = metadata.get("configs")
    if not isinstance(raw, list) or not raw:
        problems.append("card: no 'configs:' list")
        return {}
    configs: dict[str, list[str]] = {}
    for entry in raw:
        name = entry.get("config_name") if isinstance(entry, Mapping) else None
        if not name:
            problems.append(f"card: config entry without config_name: {entry!r}")
            continue
        splits: list[str] = []
        for data_files in entry.get("data_files") or []:
            split = data_files.get("split") if isinstance(data_files, Mapping) else None
            if split not in ALL_SPLITS:
                problems.append(f"config {name!r}: unknown split {split!r} (expected one of {ALL_SPLITS})")
                continue
            paths = data_files.get("path")
            for pattern in [paths] if isinstance(paths, str) else list(paths or []):
                if not any(root.glob(pattern)):
                    problems.append(f"config {name!r} split {split!r}: no file matches {pattern}")
            splits.append(split)
        for split in REQUIRED_SPLITS:
            if split not in splits:
                problems.append(f"config {name!r} has no {split!r} split")
        configs[name] = splits
    if ALL_CONFIG not in configs:
        problems.append(f"card: no {ALL_CONFIG!r} config")
    elif not any(isinstance(e, Mapping) and e.get("config_name") == ALL_CONFIG and e.get("default") for e in raw):
        problems.append(f"card: config {ALL_CONFIG!r} is not marked default: true")
    order = [n for n in configs if n == ALL_CONFIG] + [n for n in configs if n != ALL_CONFIG]
    return {name: configs[name] for name in order}


def _load_split(
    root: Path, config: str, split: str, cache: str, problems: list[str]
) -> list[dict[str, Any]] | None:
    import datasets

    try:
        loaded = datasets.load_dataset(str(root), config, split=split, cache_dir=cache)
    except (ValueError, OSError, KeyError, TypeError) as exc:
        problems.append(f"config {config!r} split {split!r} does not load with datasets: {exc}")
        return None
    missing = [c for c in BUILDER_COLUMNS if c not in loaded.column_names]
    if missing:
        problems.append(f"config {config!r} split {split!r} lacks columns {missing}")
        return None
    if not isinstance(loaded.features["image"], datasets.Image):
        problems.append(f"config {config!r} split {split!r}: column 'image' is not an Image feature")
        return None
    raw = loaded.cast_column("image", datasets.Image(decode=False))
    return [
        {
            "bytes": (row["image"] or {}).get("bytes") or b"",
            "identity": row["identity"],
            "group": row["group"],
            "source_path": row["source_path"],
            "sha256": row["sha256"],
        }
        for row in raw
    ]


def _check_content(
    benchmark: Mapping[str, Any],
    configs: Mapping[str, list[str]],
    rows: Mapping[str, Mapping[str, int]],
    images: Mapping[str, Mapping[str, list[dict[str, Any]]]],
    problems: list[str],
) -> None:
    counts = benchmark.get("counts") or {}
    groups = benchmark.get("groups") or {}
    identities = benchmark.get("identities") or {}
    split_of_hash: dict[str, tuple[str, str]] = {}
    split_of_path: dict[str, tuple[str, str]] = {}
    for config, splits in images.items():
        expected = counts.get(config, {}) if isinstance(counts, Mapping) else {}
        per_identity: dict[str, set[str]] = defaultdict(set)
        for split, records in splits.items():
            if expected.get(split, 0) != len(records):
                problems.append(
                    f"config {config!r} split {split!r} has {len(records)} rows, the card says {expected.get(split, 0)}"
                )
            for record in records:
                where = (config, split)
                if hashlib.sha256(record["bytes"]).hexdigest() != record["sha256"]:
                    problems.append(f"{record['source_path']}: sha256 column does not match the image bytes")
                if record["group"] != config:
                    problems.append(f"{record['source_path']}: group {record['group']!r} in config {config!r}")
                if record["identity"] not in identities:
                    problems.append(f"{record['source_path']}: identity {record['identity']!r} not in the card")
                for seen, key in ((split_of_hash, record["sha256"]), (split_of_path, record["source_path"])):
                    if key in seen and seen[key] != where:
                        problems.append(f"{key} is in {seen[key]} and in {where}")
                    seen.setdefault(key, where)
                per_identity[record["identity"]].add(split)
        listed = set((groups.get(config) or {}).get("identities") or [])
        if listed != set(per_identity):
            problems.append(f"config {config!r}: identities in the data differ from the card's group list")
        for identity, present in sorted(per_identity.items()):
            for split in REQUIRED_SPLITS:
                if split not in present:
                    problems.append(f"identity {identity!r} has no {split!r} image")
    for split, total in (rows.get(ALL_CONFIG) or {}).items():
        expected_total = sum(len(images[c].get(split, ())) for c in images)
        if total != expected_total:
            problems.append(f"config {ALL_CONFIG!r} split {split!r} has {total} rows; the groups hold {expected_total}")
    if ALL_CONFIG in configs and set(configs[ALL_CONFIG]) != {s for c in images for s in images[c]}:
        problems.append(f"config {ALL_CONFIG!r} splits differ from the union of the group configs' splits")


def _check_manifest(root: Path, images: Mapping[str, Mapping[str, list[dict[str, Any]]]], problems: list[str]) -> None:
    path = root / MANIFEST_FILE
    if not path.is_file():
        problems.append(f"missing file {path}")
        return
    try:
        listed = {
            (e["split"], e["group"], e["identity"], e["source_path"], e["sha256"])
            for e in (json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
        }
    except (ValueError, KeyError, TypeError) as exc:
        problems.append(f"{path} is not a valid manifest: {exc}")
        return
    stored = {
        (split, r["group"], r["identity"], r["source_path"], r["sha256"])
        for splits in images.values()
        for split, records in splits.items()
        for r in records
    }
    if listed != stored:
        problems.append(
            f"{path} disagrees with the data: {len(listed - stored)} listed but not stored, "
            f"{len(stored - listed)} stored but not listed"
        )
