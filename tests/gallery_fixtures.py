"""Hand-made galleries in the on-disk layout (Parquet + card YAML ``configs:``), for edge cases."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from PIL import Image


def png_bytes(seed: int, size: int = 24) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def labelled_rows(spec: dict[str, int], seed0: int, group: str = "g") -> list[dict[str, Any]]:
    """Rows of distinct random PNGs: ``spec`` maps identity -> how many images, all in ``group``."""
    rows, seed = [], seed0
    for ident, count in spec.items():
        for _ in range(count):
            rows.append({"image": png_bytes(seed), "identity": ident, "group": group})
            seed += 1
    return rows


def write_gallery(
    folder: Path,
    splits: dict[str, list[dict[str, Any]]],
    *,
    card: dict[str, Any] | None = None,
    image_feature: bool = True,
) -> Path:
    """Write ``splits`` (split -> rows with ``image`` bytes, ``identity``, ``group``...) as a gallery folder."""
    import datasets

    folder.mkdir(parents=True, exist_ok=True)
    data_files = []
    for split, rows in splits.items():
        columns = sorted({k for row in rows for k in row})
        data = {c: [row.get(c) for row in rows] for c in columns}
        features = {}
        for c in columns:
            if c == "image" and image_feature:
                data[c] = [{"bytes": b, "path": None} for b in data[c]]
                features[c] = datasets.Image()
            elif c == "image":
                features[c] = datasets.Value("binary")
            else:
                features[c] = datasets.Value("string")
        ds = datasets.Dataset.from_dict(data, features=datasets.Features(features))
        path = folder / "data" / f"{split}-00000-of-00001.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        ds.to_parquet(str(path))
        data_files.append({"split": split, "path": f"data/{split}-*.parquet"})
    meta: dict[str, Any] = {"configs": [{"config_name": "all", "default": True, "data_files": data_files}]}
    if card is not None:
        meta["fp_rank"] = card
    (folder / "README.md").write_text("---\n" + yaml.safe_dump(meta, sort_keys=True) + "---\n\n# test gallery\n")
    return folder


def simple_gallery(folder: Path, *, n_ids: int = 3, per_id: int = 3, card: dict[str, Any] | None = None) -> Path:
    """A one-group gallery of random images: ``n_ids`` identities x ``per_id`` gallery + 2 reference."""
    gallery, reference = [], []
    seed = 0
    for i in range(n_ids):
        for _ in range(per_id):
            seed += 1
            gallery.append({"image": png_bytes(seed), "identity": f"id{i}", "group": "g"})
        for _ in range(2):
            seed += 1
            reference.append({"image": png_bytes(seed), "identity": f"id{i}", "group": "g"})
    return write_gallery(folder, {"gallery": gallery, "reference": reference}, card=card)
