"""A gallery's source before ``datasets`` reads it: the card's YAML (bounded), where its data files
lie (inside the folder), and whether a local path or a Hub id can be reached at all.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fp_rank.errors import GalleryError
from fp_rank.galleries.schema import (
    CARD_KEY,
)

logger = logging.getLogger(__name__)


#: Most YAML nodes a dataset card may hold (a 10,000-identity card has about 25,000).
MAX_CARD_NODES = 200_000


def parse_card_yaml(text: str, where: str) -> Any:
    """Parse a card's YAML front matter with bounded cost.

    Aliases (``*name``) are refused: a few hundred bytes of nested aliases expand to gigabytes
    (the "billion laughs" card). Cards written by fp-rank never use them. At most
    :data:`MAX_CARD_NODES` nodes are composed.

    Raises:
        GalleryError: invalid YAML, an alias, or too many nodes; the message names the card.
    """
    import yaml

    class _BoundedLoader(yaml.SafeLoader):
        nodes = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                mark = self.peek_event().start_mark
                raise GalleryError(
                    f"{where}: the dataset card's YAML uses an alias (line {mark.line + 1}); aliases can expand "
                    "a small card without bound and are not accepted. Write the values out"
                )
            _BoundedLoader.nodes += 1
            if _BoundedLoader.nodes > MAX_CARD_NODES:
                raise GalleryError(f"{where}: the dataset card's YAML holds more than {MAX_CARD_NODES} nodes")
            return super().compose_node(parent, index)

    try:
        return yaml.load(text, Loader=_BoundedLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise GalleryError(f"{where}: the dataset card has invalid YAML front matter: {exc}") from None


def _front_matter(text: str, where: str) -> dict[str, Any]:
    if not text.startswith("---"):
        return {}
    parts = text.split("---", 2)
    if len(parts) < 3:
        return {}
    meta = parse_card_yaml(parts[1], where) or {}
    return meta if isinstance(meta, dict) else {}


def _read_card(path_or_id: str, revision: str | None) -> tuple[dict[str, Any], str | None]:
    """The ``fp_rank`` block of the dataset card's YAML, and the resolved Hub commit (if any).

    A local card is checked before ``datasets`` reads the folder: its YAML is parsed with bounded
    cost and every data file it names must lie inside the folder.
    """
    commit = None
    where = f"gallery {path_or_id!r}"
    if os.path.isdir(path_or_id):
        readme = Path(path_or_id) / "README.md"
        if not readme.exists():
            return {}, None
        text = readme.read_text(encoding="utf-8")
    else:
        from huggingface_hub import hf_hub_download

        try:
            local = hf_hub_download(path_or_id, "README.md", repo_type="dataset", revision=revision)
        except Exception as exc:  # no card, offline without cache, ...: the card is optional
            logger.info("no dataset card for %s: %s", path_or_id, exc)
            return {}, None
        match = re.search(r"snapshots[/\\]([0-9a-f]{40})[/\\]", local)
        commit = match.group(1) if match else None
        text = Path(local).read_text(encoding="utf-8")
    meta = _front_matter(text, where)
    if os.path.isdir(path_or_id):
        _check_data_files(Path(path_or_id), meta, where)
    block = meta.get(CARD_KEY)
    return (block if isinstance(block, dict) else {}), commit


def _data_file_patterns(meta: dict[str, Any]) -> Iterator[str]:
    """Every path or glob a card's ``configs`` name (``data_dir``, ``data_files`` in any of the
    forms ``datasets`` accepts: a string, a list, ``{split: ...}`` or ``[{split, path}]``)."""

    def walk(value: Any) -> Iterator[str]:
        if isinstance(value, str):
            yield value
        elif isinstance(value, list):
            for v in value:
                yield from walk(v)
        elif isinstance(value, dict):
            if "path" in value:
                yield from walk(value["path"])
            else:
                for v in value.values():
                    yield from walk(v)

    configs = meta.get("configs")
    for config in configs if isinstance(configs, list) else []:
        if isinstance(config, dict):
            yield from walk(config.get("data_dir"))
            yield from walk(config.get("data_files"))


def _check_data_files(folder: Path, meta: dict[str, Any], where: str) -> None:
    """Refuse a card whose data files (or the files they resolve to) lie outside ``folder``."""
    import glob

    root = os.path.realpath(folder)
    for pattern in _data_file_patterns(meta):
        if "://" in pattern or os.path.isabs(pattern) or pattern.startswith("~"):
            outside = True
        else:
            joined = os.path.normpath(os.path.join(root, pattern))
            outside = os.path.commonpath([root, joined]) != root
            if not outside:
                for match in glob.glob(os.path.join(root, pattern), recursive=True):
                    if os.path.commonpath([root, os.path.realpath(match)]) != root:
                        outside = True
                        break
        if outside:
            raise GalleryError(
                f"{where}: the dataset card names the data file {pattern!r}, which lies outside the gallery folder; "
                "a gallery's data files must be inside its folder (relative paths, no '..', no links out)"
            )


def _check_source(source: str, revision: str | None) -> None:
    """Fail at once, in one line, for a local path that is not a folder or a Hub id that cannot be fetched."""
    from fp_rank.hub_access import hub_problem, looks_like_path

    if looks_like_path(source):
        if not os.path.isdir(source):
            raise GalleryError(
                f"cannot load gallery {source!r}: no such folder (a path is read as a local folder; "
                "build one with `python -m gallery_builders ... --out FOLDER`, or name a Hub dataset as 'org/name')"
            )
        return
    problem = hub_problem(source, "dataset", revision)
    if problem:
        offline = " (offline: a Hub gallery must already be in the cache at this revision)" if "offline" in problem else ""
        here = (
            f"there is no folder {source!r} in {os.getcwd()}, so it was read as a Hub dataset id: "
            if "/" in source else ""
        )
        raise GalleryError(f"cannot load gallery {source!r}{offline}: {here}{problem}")
