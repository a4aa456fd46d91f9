"""A report's PNG figures: mAP with intervals per method, pairwise vs mAP, and drift confusion matrices."""

from __future__ import annotations

import logging
import math
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from fp_rank.analysis.statistics import drift
from fp_rank.file_access import cut_with_digest
from fp_rank.reporting.report import Report
from fp_rank.views.figures import plot_confusion, plot_map_ci, plot_pairwise_vs_map

logger = logging.getLogger(__name__)


def _slug(text: str, limit: int = 60) -> str:
    """A file-name part for a label; a long one is cut and ends in a digest (file names are short)."""
    return cut_with_digest(re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.") or "x", text, limit)


def _group_identities(report: Report) -> dict[str, list[str]]:
    """Every identity seen in each group: queried by any method or encoder, or retrieved first."""
    seen: dict[str, set[str]] = {}
    for row in report.queries:
        group = row.get("group")
        if group is None:
            continue
        names = seen.setdefault(str(group), set())
        for key in ("identity", "top1_identity"):
            if row.get(key) is not None:
                names.add(str(row[key]))
    return {group: sorted(names) for group, names in seen.items()}


def _full_confusion(conf: dict[str, Any], labels: list[str]) -> tuple[np.ndarray, list[str]]:
    """The stored matrix embedded in rows and columns for all of ``labels`` (absent ones: zeros)."""
    stored = [str(label) for label in conf["labels"]]
    full = sorted(set(labels) | set(stored))
    where = {name: i for i, name in enumerate(full)}
    matrix = np.zeros((len(full), len(full)), dtype=np.int64)
    if stored:
        index = np.asarray([where[name] for name in stored])
        matrix[np.ix_(index, index)] = np.asarray(conf["matrix"], dtype=np.int64)
    return matrix, full


def plot(report: Report, out_dir: str | os.PathLike[str]) -> list[Path]:
    """PNG figures: mAP with CIs per method, pairwise vs mAP, and drift confusion matrices.

    A drift matrix has a row and a column for every identity of its group that the report
    knows of (queried or retrieved first by any method), also those this method never queried
    or never retrieved first, so matrices of different methods line up.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    drift_data = report.extras.get("drift") or drift(report)
    group_identities = _group_identities(report)
    for encoder in report.encoders:
        scored = [r for r in report.results if r.encoder == encoder]
        unscored = [r.method for r in scored if r.map is None or not math.isfinite(r.map)]
        if unscored:
            logger.warning("not plotted under %s: %s (no scored query, so no mAP)", encoder, ", ".join(unscored))
        results = sorted((r for r in scored if r.method not in unscored), key=lambda r: -r.map)
        if not results:
            continue
        methods = [r.method for r in results]
        maps = [r.map for r in results]
        lows = [(r.intervals.get("map") or {}).get("low", r.map) for r in results]
        highs = [(r.intervals.get("map") or {}).get("high", r.map) for r in results]
        floor = float(np.mean([r.chance_map for r in results]))
        ceilings = [r.ceiling_map for r in results if r.ceiling_map is not None]
        ceiling = float(np.mean(ceilings)) if ceilings else None
        tag = _slug(encoder)
        written.append(
            plot_map_ci(methods, maps, lows, highs, out / f"map_ci_{tag}.png", floor=floor, ceiling=ceiling,
                        title=f"mAP per method ({encoder})")
        )
        written.append(
            plot_pairwise_vs_map(
                methods, [r.pairwise_similarity for r in results], maps, out / f"pairwise_vs_map_{tag}.png",
                map_lows=lows, map_highs=highs, floor=floor, title=f"Pairwise similarity vs identity mAP ({encoder})",
            )
        )
        for method, data in drift_data.get(encoder, {}).items():
            for group, conf in data["confusion"].items():
                matrix, labels = _full_confusion(conf, group_identities.get(group, []))
                written.append(
                    plot_confusion(
                        matrix, labels, out / f"drift_{tag}_{_slug(method)}_{_slug(group)}.png",
                        title=f"{method}, {group}: query identity -> top-1 identity",
                    )
                )
    return written
