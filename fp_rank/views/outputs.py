"""The output layout of a report on disk, shared by ``fp-rank evaluate --out`` and the Space.

A folder holds ``report.json`` (everything, see :meth:`Report.to_json`), ``queries.csv`` (one row
per query, :meth:`Report.to_csv`) and ``summary.md`` (:func:`fp_rank.views.markdown.to_markdown`); a target
ending in ``.json`` is that one report file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from fp_rank.errors import InputError
from fp_rank.file_access import write_atomic
from fp_rank.reporting.report import Report
from fp_rank.views.markdown import to_markdown

#: File names inside an output folder.
REPORT_FILE = "report.json"
QUERIES_FILE = "queries.csv"
SUMMARY_FILE = "summary.md"


@dataclass(frozen=True)
class Outputs:
    """The files :func:`write_outputs` wrote.

    Attributes:
        report: the JSON report.
        queries: the per-query CSV (None when the target was a ``.json`` file).
        summary: the Markdown summary (None when the target was a ``.json`` file).
    """

    report: Path
    queries: Path | None = None
    summary: Path | None = None

    @property
    def paths(self) -> list[Path]:
        """Every file written, report first."""
        return [p for p in (self.report, self.queries, self.summary) if p is not None]


def write_outputs(report: Report, target: str | os.PathLike[str]) -> Outputs:
    """Write a report in the output layout.

    Args:
        report: the report to write.
        target: a folder (created if needed) for ``report.json``, ``queries.csv`` and
            ``summary.md``, or a path ending in ``.json`` for the report file alone.

    Returns:
        The :class:`Outputs` written.

    Raises:
        InputError: ``target`` is an existing file that does not end in ``.json``.

    Example:
        >>> import tempfile
        >>> from fp_rank.reporting.report import Report
        >>> folder = Path(tempfile.mkdtemp()) / "out"
        >>> written = write_outputs(Report(results=[], queries=[], metadata={}), folder / "r.json")
        >>> written.paths == [folder / "r.json"], written.queries
        (True, None)
    """
    out = Path(target)
    if out.suffix.lower() == ".json":
        report.to_json(out)
        return Outputs(report=out)
    _check_folder(out)
    out.mkdir(parents=True, exist_ok=True)
    json_path, csv_path, md_path = out / REPORT_FILE, out / QUERIES_FILE, out / SUMMARY_FILE
    report.to_json(json_path)
    report.to_csv(csv_path)
    write_atomic(md_path, to_markdown(report) + "\n")
    return Outputs(report=json_path, queries=csv_path, summary=md_path)


def _check_folder(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise InputError(
            f"output target {os.fspath(out)!r} is an existing file; give a folder for "
            f"{REPORT_FILE}/{QUERIES_FILE}/{SUMMARY_FILE} or a path ending in .json"
        )
