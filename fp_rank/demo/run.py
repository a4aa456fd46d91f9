"""``fp-rank demo``: the synthetic benchmark, scored end to end offline through the real code path.

The gallery is written by :mod:`fp_rank.demo.gallery` (through the writer that builds the real
galleries) into the cache folder, loaded back with :func:`fp_rank.load_gallery`, and three
simulated methods are scored with the demo encoder through :func:`fp_rank.evaluate`.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from fp_rank.caching.store import default_cache_dir
from fp_rank.demo import gallery as demo_source
from fp_rank.demo.synthetic import DEFAULT_SEED, generated_records
from fp_rank.errors import BuilderError, CacheError
from fp_rank.encoding.registry import DEMO_ENCODER
from fp_rank.evaluation import evaluate
from fp_rank.reporting.report import Report
from fp_rank.version import __version__

logger = logging.getLogger(__name__)


def demo_gallery(seed: int = DEFAULT_SEED, directory: str | os.PathLike[str] | None = None, progress: bool = False) -> Path:
    """Build (once) and return the folder of the synthetic demo gallery for ``seed``.

    The gallery is written to a hidden folder and renamed into place, so a concurrent first run
    that finishes first simply wins and its folder is used. When the cache folder cannot be
    written (read-only, full), the demo is built in a temporary folder instead, with a warning.

    Raises:
        CacheError: neither the cache folder nor a temporary folder can hold the demo gallery.
    """
    name = f"synthetic-seed{seed}-fp-rank{__version__}"
    root = Path(directory) if directory is not None else default_cache_dir() / "demo"
    try:
        return _build_once(root / name, seed, progress)
    except (OSError, BuilderError) as exc:
        fallback = Path(tempfile.gettempdir()) / f"fp-rank-demo-{_user_tag()}"
        logger.warning(
            "cannot write the demo gallery under %s (%s); building it in %s instead. Set FP_RANK_CACHE to a "
            "writable folder to keep it between runs", root, exc, fallback,
        )
        try:
            return _build_once(fallback / name, seed, progress)
        except (OSError, BuilderError) as again:
            raise CacheError(
                f"cannot write the demo gallery: {root} ({exc}) and {fallback} ({again}) are not writable or are "
                "full; free some space or set FP_RANK_CACHE to a writable folder"
            ) from None


def _user_tag() -> str:
    getuid = getattr(os, "getuid", None)
    return str(getuid()) if getuid is not None else "user"


def _build_once(out: Path, seed: int, progress: bool) -> Path:
    if (out / "README.md").exists():
        return out
    try:
        demo_source.build(out, seed=seed, progress=progress)
    except (OSError, BuilderError):
        if (out / "README.md").exists():  # another process built it first: use its folder
            return out
        raise
    return out


def run_demo(
    *,
    seed: int = DEFAULT_SEED,
    directory: str | os.PathLike[str] | None = None,
    cache: bool = True,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: bool = False,
    **kwargs: Any,
) -> Report:
    """Score the simulated methods of the synthetic benchmark; returns the report.

    Args:
        seed: seed of the synthetic world (gallery and generated images).
        directory: where to build the demo gallery (default: the cache folder).
        cache: use the embedding cache.
        cache_dir: embedding cache folder.
        progress: show progress bars.
        **kwargs: passed on to :func:`fp_rank.evaluate`.
    """
    folder = demo_gallery(seed, directory, progress)
    records = generated_records(seed)
    return evaluate(
        [r["image"] for r in records],
        [r["identity"] for r in records],
        gallery=str(folder),
        encoder=DEMO_ENCODER,
        methods=[r["method"] for r in records],
        prompts=[r["prompt"] for r in records],
        seeds=[r["seed"] for r in records],
        files=[r["file"] for r in records],
        cache=os.fspath(cache_dir) if cache and cache_dir is not None else cache,
        progress=progress,
        **kwargs,
    )


def explain(report: Report) -> str:
    """The demo's closing lines: what the numbers show."""
    by_map = sorted(report.results, key=lambda r: -r.map)
    best, worst = by_map[0], by_map[-1]
    pair_spread = max(r.pairwise_similarity for r in report.results) - min(r.pairwise_similarity for r in report.results)
    map_spread = best.map - worst.map
    return (
        f"Encoder: {report.encoders[0]} (a DEMO descriptor for synthetic images, not a real backbone).\n"
        f"Pairwise similarity spans {pair_spread:.3f} across methods "
        f"({pair_spread / max(best.pairwise_similarity, 1e-9):.1%} of its value); "
        f"mAP spans {map_spread:.3f} ({best.method} {best.map:.3f} vs {worst.method} {worst.map:.3f}, "
        f"chance {best.chance_map:.3f}).\n"
        "Every method keeps the overall look of the subject, so pairwise cosine barely separates them; "
        "only retrieval against a gallery of look-alike identities shows which kept the identifying details."
    )


#: Columns of the manifest :func:`export_generated` writes (those :func:`fp_rank.runs.read_manifest` reads).
EXPORT_COLUMNS = ("file", "identity", "method", "prompt", "seed", "conditioning")


def export_generated(directory: str | os.PathLike[str], seed: int = DEFAULT_SEED) -> Path:
    """Write the demo's generated images as files, with a manifest; returns the manifest's path.

    Images go to ``<directory>/<method>/<identity>/NN.png`` (NN: the prompt's number) and the
    manifest to ``<directory>/manifest.csv`` with columns :data:`EXPORT_COLUMNS` (paths relative
    to the manifest; ``conditioning`` is empty: the simulated methods are fine-tuned ones).
    ``fp-rank evaluate --gallery <demo gallery> --generated <directory>/manifest.csv --encoder
    fp-rank-demo`` then gives the demo's numbers (PNG is lossless).

    Example:
        >>> import csv, tempfile
        >>> manifest = export_generated(tempfile.mkdtemp())
        >>> rows = list(csv.DictReader(manifest.open(encoding="utf-8")))
        >>> len(rows), rows[0]["file"], (manifest.parent / rows[0]["file"]).is_file()
        (450, 'faithful/finch_scarlet_crown/00.png', True)
    """
    import csv

    from fp_rank.demo.gallery import png_bytes

    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for record in generated_records(seed):
        path = root / record["file"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png_bytes(record["image"]))
        rows.append({**{k: record.get(k) for k in EXPORT_COLUMNS}, "conditioning": ""})
    manifest = root / "manifest.csv"
    with manifest.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=EXPORT_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return manifest
