"""A gallery's files on disk: the Parquet shards, the manifest, and the staged folder they are written into.

``datasets`` and ``pyarrow`` are imported when shards are written, so that reading the builders'
commands (``python -m gallery_builders --help``) loads neither.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fp_rank.errors import BuilderError
from fp_rank.galleries.build.spec import Candidate, GallerySpec
from fp_rank.galleries.schema import BUILDER_COLUMNS, MANIFEST_FILE

#: Rows per Parquet row group (small groups keep the Hub viewer fast on image columns).
ROW_GROUP_SIZE = 100


@dataclass(frozen=True)
class Row:
    """One image of the built gallery."""

    candidate: Candidate
    split: str
    data: bytes
    sha256: str


def data_file(group: str, split: str) -> str:
    """Path of one group's shard of one split, relative to the gallery folder."""
    return f"data/{group}/{split}-00000-of-00001.parquet"


def features_for(spec: GallerySpec) -> Any:
    """The ``datasets`` features of every shard of a gallery built from ``spec``."""
    from datasets import Features, Image, Value

    columns: dict[str, Any] = {}
    for name in BUILDER_COLUMNS:
        columns[name] = Image() if name == "image" else Value("string")
    for name, dtype in spec.extra_columns.items():
        if name in columns:
            raise BuilderError(f"extra column {name!r} clashes with a schema column")
        columns[name] = Value(dtype)
    return Features(columns)


def write_shards(folder: Path, spec: GallerySpec, shards: Mapping[tuple[str, str], Sequence[Row]]) -> None:
    """One Parquet file per (group, split), images embedded, in the gallery schema."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    features = features_for(spec)
    schema = features.arrow_schema
    for (group, split), rows in shards.items():
        columns: dict[str, list[Any]] = {
            "image": [{"bytes": r.data, "path": r.candidate.file_name} for r in rows],
            "identity": [r.candidate.identity for r in rows],
            "identity_name": [r.candidate.identity_name for r in rows],
            "group": [r.candidate.group for r in rows],
            "source_path": [r.candidate.source_path for r in rows],
            "sha256": [r.sha256 for r in rows],
        }
        for name in spec.extra_columns:
            columns[name] = [r.candidate.extra.get(name) for r in rows]
        table = pa.Table.from_pydict(columns, schema=schema)
        path = folder / data_file(group, split)
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, path, compression="snappy", row_group_size=ROW_GROUP_SIZE)


def write_manifest(folder: Path, rows: Sequence[Row]) -> None:
    """``manifest.jsonl``: every image's split, group, identity, source path and sha256, sorted."""
    entries = sorted(
        (r.split, r.candidate.group, r.candidate.identity, r.candidate.source_path, r.sha256) for r in rows
    )
    lines = [
        json.dumps(
            {"split": s, "group": g, "identity": i, "source_path": p, "sha256": h},
            ensure_ascii=False,
        )
        for s, g, i, p, h in entries
    ]
    (folder / MANIFEST_FILE).write_text("".join(line + "\n" for line in lines), encoding="utf-8", newline="\n")


@contextlib.contextmanager
def staged_folder(out: Path, *, overwrite: bool) -> Iterator[Path]:
    """Yield a hidden sibling folder; on success rename it to ``out``, on failure delete it."""
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        yield staging
        staging.chmod(0o755)
        if out.exists():
            check_output(out, overwrite=overwrite)
            retired = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            retired.rmdir()
            out.rename(retired)
            staging.rename(out)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            staging.rename(out)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def check_output(out: Path, *, overwrite: bool) -> None:
    if out.exists() and not overwrite:
        raise BuilderError(
            f"output folder {out} already exists; choose another --out or pass --overwrite "
            "(overwrite=True) to replace it once the new gallery is complete"
        )
    if out.exists() and not out.is_dir():
        raise BuilderError(f"output path {out} is a file, not a folder")
