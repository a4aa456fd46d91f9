"""A ranked leaderboard from a folder of reports: Markdown tables and PNG figures.

Reports are grouped into *boards*: one per gallery (id, config and content fingerprint) and
encoder, because mAP values are comparable only on the same gallery under the same encoder and
protocol. Within a board each method is a row, best mAP first, with the columns of
:func:`fp_rank.views.markdown.markdown_summary` (intervals where the report has them). A
method may appear once per board; two reports scoring it are an error, not a silent choice.

For the Hub's own view of a benchmark (results submitted by model repositories), see
:func:`hub_leaderboard`.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fp_rank.errors import InputError
from fp_rank.file_access import write_atomic
from fp_rank.views.table import summary_rows

logger = logging.getLogger(__name__)


@dataclass
class Board:
    """One leaderboard: methods scored on one gallery under one encoder.

    Attributes:
        gallery: Gallery id (Hub id or folder) of the reports.
        config: Gallery config scored.
        fingerprint: Gallery content fingerprint.
        encoder: Encoder name.
        protocol_version: fp-rank protocol version of the numbers.
        rows: One summary row per method (:meth:`fp_rank.Report.summary_rows` keys plus ``report``).
        ks: Ranks of the per-k metrics.
        key: The comparability key every report on the board shares
            (:func:`fp_rank.reporting.comparability.comparability_key`).
        allowed_differences: Key fields the reports differ on, allowed by ``allow_mismatch``
            (field -> the values seen).
    """

    gallery: str
    config: str
    fingerprint: str
    encoder: str
    protocol_version: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    ks: list[int] = field(default_factory=list)
    key: dict[str, Any] = field(default_factory=dict)
    allowed_differences: dict[str, list[Any]] = field(default_factory=dict)

    @property
    def title(self) -> str:
        return f"{self.gallery} ({self.config}), encoder {self.encoder}"

    def ranked(self) -> list[dict[str, Any]]:
        """Rows best mAP first (missing mAP last, ties by method name), each with its ``rank``.

        Tied mAP values share a rank (1, 1, 3).
        """
        def key(row: dict[str, Any]) -> tuple[bool, float, str]:
            value = row.get("map")
            missing = value is None or not math.isfinite(float(value))
            return (missing, 0.0 if missing else -float(value), str(row["method"]))

        out, previous, rank = [], None, 0
        for position, row in enumerate(sorted(self.rows, key=key), start=1):
            value = row.get("map")
            if value != previous:
                rank, previous = position, value
            out.append({**row, "rank": rank})
        return out


@dataclass
class Leaderboard:
    """Boards built from reports, and the files that could not be read as reports.

    Attributes:
        boards: The boards, sorted by gallery, config and encoder.
        ignored: ``(path, reason)`` of JSON files in the folders given that are not reports.
    """

    boards: list[Board]
    ignored: list[tuple[str, str]] = field(default_factory=list)

    def to_markdown(self, figures: Sequence[str | None] = ()) -> str:
        """The leaderboard as Markdown: one ranked table per board, its figure linked when given.

        ``figures[i]`` is the figure of ``boards[i]`` (``None``: none).
        """
        from fp_rank.views.markdown import markdown_caption, markdown_summary

        lines = ["# fp-rank leaderboard", ""]
        for index, board in enumerate(self.boards):
            lines += [f"## {board.title}", ""]
            if index < len(figures) and figures[index]:
                lines += [f"![mAP per method]({figures[index]})", ""]
            caption = markdown_caption(
                encoder=board.encoder, gallery=f"{board.gallery} ({board.config})",
                protocol_version=board.protocol_version, fingerprint=board.fingerprint,
            )
            lines.append(markdown_summary(board.ranked(), caption=caption, ks=board.ks or (1, 5, 10)).rstrip("\n"))
            sources = ", ".join(f"{r['method']}: `{r['report']}`" for r in board.ranked())
            lines += ["", f"Reports: {sources}.", ""]
            for name, values in board.allowed_differences.items():
                lines += [f"Not comparable on {name} ({' vs '.join(f'`{v}`' for v in values)}): ranked together by "
                          "explicit request (allow_mismatch).", ""]
        if self.ignored:
            lines += ["Files left out (not fp-rank reports):", ""]
            lines += [f"- `{path}`: {reason}" for path, reason in self.ignored]
            lines.append("")
        return "\n".join(lines)

    def write(self, out: str | os.PathLike[str]) -> list[Path]:
        """Write ``leaderboard.md`` and one PNG per board into ``out``; returns the paths."""
        from fp_rank.views.figures import plot_map_ci

        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        names = ["leaderboard.png"] if len(self.boards) == 1 else [f"leaderboard-{i + 1}.png" for i in range(len(self.boards))]
        written: list[Path | None] = []
        for board, name in zip(self.boards, names):
            rows = [r for r in board.ranked() if r.get("map") is not None and math.isfinite(float(r["map"]))]
            if not rows:
                written.append(None)
                continue
            maps = [float(r["map"]) for r in rows]
            lows = [float(r["map_low"]) if r.get("map_low") is not None else m for r, m in zip(rows, maps)]
            highs = [float(r["map_high"]) if r.get("map_high") is not None else m for r, m in zip(rows, maps)]
            written.append(plot_map_ci(
                [str(r["method"]) for r in rows], maps, lows, highs, folder / name,
                floor=_shared(rows, "floor"), ceiling=_shared(rows, "ceiling"), title=board.title,
            ))
        markdown = folder / "leaderboard.md"
        write_atomic(markdown, self.to_markdown([p.name if p else None for p in written]))
        return [markdown, *(p for p in written if p is not None)]


def report_files(paths: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """The report files named: files as given, folders searched for ``*.json`` (recursively, sorted).

    Raises:
        InputError: If a path does not exist, or nothing is found.
    """
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found += sorted(p for p in path.rglob("*.json") if p.is_file())
        elif path.is_file():
            found.append(path)
        else:
            raise InputError(f"report path {os.fspath(raw)!r} does not exist")
    if not found:
        raise InputError(f"no report files (*.json) under {[os.fspath(p) for p in paths]}")
    return list(dict.fromkeys(found))


def build_leaderboard(
    paths: Sequence[str | os.PathLike[str]], *, allow_mismatch: Sequence[str] | None = None
) -> Leaderboard:
    """Read reports (files, or folders searched for ``*.json``) and rank their methods per board.

    A file named on the command line must be a report; a JSON file found in a folder that is not
    one (a comparison, a config) is left out and listed in :attr:`Leaderboard.ignored`.

    Reports go on one board when they share the gallery, its config and fingerprint and the
    encoder's name; the reports of a board must then share the whole comparability key (encoder
    revision, preprocessing, dtype, protocol ...) unless ``allow_mismatch`` names the fields
    that may differ, which the board records and its Markdown states.

    Raises:
        InputError: If a named file is not a report, nothing is left, one method appears in
            two reports of the same board, or two reports of a board are not comparable.

    Example:
        >>> build_leaderboard(["no/such/folder"])
        Traceback (most recent call last):
        ...
        fp_rank.errors.InputError: report path 'no/such/folder' does not exist
    """
    from fp_rank.reporting.comparability import check_allowed, comparability_key, require_comparable
    from fp_rank.reporting.report import Report
    from fp_rank.views.presentation import gallery_display_name

    allowed = check_allowed(allow_mismatch)
    named = {Path(p) for p in paths if Path(p).is_file()}
    boards: dict[tuple[str, str, str, str], Board] = {}
    seen: dict[tuple[str, str, str, str, str], Path] = {}
    ignored: list[tuple[str, str]] = []
    for path in report_files(paths):
        try:
            report = Report.load(path)
        except InputError as exc:
            if path in named:
                raise
            ignored.append((path.as_posix(), str(exc)))
            logger.warning("leaving out %s: %s", path, exc)
            continue
        gallery = report.metadata.get("gallery") or {}
        gid, config, fp = gallery_display_name(gallery), str(gallery.get("config") or "all"), str(gallery.get("fingerprint") or "")
        for row in summary_rows(report):
            key = (fp or gid, config, fp, str(row["encoder"]))  # one board per gallery content, however it was named
            board = boards.setdefault(key, Board(
                gallery=gid, config=config, fingerprint=fp, encoder=str(row["encoder"]),
                protocol_version=str(report.metadata.get("protocol_version")), ks=report.ks,
                key=comparability_key(report, str(row["encoder"])),
            ))
            first = board.rows[0]["report"] if board.rows else path.as_posix()  # the board's first report
            if first != path.as_posix():
                checked = require_comparable(
                    [(first, board.key), (path.as_posix(), comparability_key(report, str(row["encoder"])))], allowed
                )
                for name, values in checked["allowed_differences"].items():
                    seen_values = board.allowed_differences.setdefault(name, [])
                    seen_values.extend(v for v in values if v not in seen_values)
            earlier = seen.setdefault((*key, str(row["method"])), path)
            if earlier != path:
                raise InputError(
                    f"method {row['method']!r} appears in {earlier} and {path} for {board.title}; keep one report per method"
                )
            board.rows.append({**row, "report": path.as_posix()})
    if not boards:
        raise InputError("none of the files given is an fp-rank report: " + "; ".join(f"{p}: {r}" for p, r in ignored))
    return Leaderboard(boards=[boards[k] for k in sorted(boards)], ignored=ignored)


def hub_leaderboard(dataset_id: str, *, api: Any = None, token: str | None = None) -> list[dict[str, Any]]:
    """The Hub's leaderboard of a benchmark dataset (``HfApi.get_dataset_leaderboard``), as rows.

    Needs network access. Each row: ``rank``, ``model_id``, ``value``, ``verified``, ``notes``,
    ``filename``.

    Example:
        >>> hub_leaderboard("ORG/fp-rank-cub")  # doctest: +SKIP
    """
    from fp_rank.hub.space_build import check_repo_id

    check_repo_id(dataset_id, require_namespace=True)
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi(token=token)
    entries = api.get_dataset_leaderboard(dataset_id)
    return [
        {"rank": e.rank, "model_id": e.model_id, "value": e.value, "verified": e.verified,
         "notes": getattr(e, "notes", None), "filename": e.filename}
        for e in entries
    ]


def _shared(rows: Sequence[dict[str, Any]], key: str) -> float | None:
    """The value of ``key`` when every row has the same finite one, else None."""
    values = {round(float(r[key]), 12) for r in rows if r.get(key) is not None and math.isfinite(float(r[key]))}
    if len(values) == 1 and all(r.get(key) is not None for r in rows):
        return values.pop()
    return None
