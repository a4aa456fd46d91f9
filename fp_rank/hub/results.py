"""A report's scores in the Hub's evaluation-results format (``.eval_results/*.yaml``).

A benchmark dataset declares itself with an ``eval.yaml`` at its root (gallery builds write it:
:func:`fp_rank.galleries.build.card.render_eval_yaml`; one task per config, the task id being the
config name). A model repository - here, a personalization method - carries
``.eval_results/<file>.yaml``: a list of entries, each naming the dataset, the task, the dataset
revision and the value. The Hub shows them on the model page and on the dataset's leaderboard.

Each entry here is built with ``huggingface_hub.EvalResultEntry`` and written with
``eval_result_entries_to_yaml``; every file written is parsed back with
``parse_eval_result_entries`` and must give the same entries. Per method and encoder: one entry
for the config the report was scored on (``all``: the headline macro mAP) and, for ``all``, one
per group. The notes name the encoder (alias, Hub id and revision), the protocol version, the
fp-rank version and the gallery fingerprint, because mAP values are comparable only under the
same encoder and protocol. No date is written (the Hub uses the commit time), so the same
report gives the same bytes.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from fp_rank.errors import InputError
from fp_rank.file_access import write_atomic
from fp_rank.galleries.build.spec import safe_label
from fp_rank.galleries.schema import ALL_CONFIG
from fp_rank.hub.space_build import check_repo_id

if TYPE_CHECKING:
    from huggingface_hub import EvalResultEntry

    from fp_rank.reporting.report import MethodResult, Report

#: Folder of a model repository that holds its evaluation results.
EVAL_RESULTS_FOLDER = ".eval_results"


def to_eval_results(
    report: Report,
    *,
    dataset_id: str | None = None,
    dataset_revision: str | None = None,
    method: str | None = None,
    encoder: str | None = None,
    allow_demo: bool = False,
) -> dict[str, list[EvalResultEntry]]:
    """The report's mAP as Hub evaluation-result entries, per method.

    Args:
        report: An fp-rank report.
        dataset_id: Hub id of the benchmark dataset (default: the report's gallery id, which
            must then be a Hub id, not a local folder).
        dataset_revision: Revision of the dataset (default: the report's gallery revision);
            a commit SHA pins the exact images.
        method: Only this method (default: all).
        encoder: Only this encoder (default: all).
        allow_demo: Allow results of the demo encoder (refused by default: its numbers mean
            nothing about real images).

    Returns:
        Method -> its entries (per encoder: the scored config, then each group for ``all``).

    Raises:
        InputError: If no dataset id is known, ``method``/``encoder`` match nothing, a result
            uses the demo encoder without ``allow_demo``, or no finite value is left.
    """
    out: dict[str, list[EvalResultEntry]] = {}
    for result, entries in _result_entries(report, dataset_id, dataset_revision, method, encoder, allow_demo):
        out.setdefault(result.method, []).extend(entries)
    return out


def _result_entries(
    report: Report,
    dataset_id: str | None,
    dataset_revision: str | None,
    method: str | None,
    encoder: str | None,
    allow_demo: bool,
) -> list[tuple[MethodResult, list[EvalResultEntry]]]:
    gallery = report.metadata.get("gallery") or {}
    from_report = dataset_id is None
    dataset_id = dataset_id or gallery.get("id")
    recorded_local = gallery.get("source", "local folder" if gallery.get("revision") is None else "hub") != "hub"
    if not dataset_id or (from_report and recorded_local) or os.path.isdir(str(dataset_id)) or not _looks_like_hub_id(
        str(dataset_id)
    ):
        raise InputError(
            f"the report's gallery is {gallery.get('id')!r}, a local folder, not a Hub dataset id; pass dataset_id "
            "(CLI: --dataset-id ORG/NAME) naming the Hub dataset the gallery was pushed to"
        )
    check_repo_id(dataset_id, require_namespace=True)
    revision = dataset_revision if dataset_revision is not None else gallery.get("revision")
    config = gallery.get("config") or ALL_CONFIG
    results = [
        r for r in report.results
        if (method is None or r.method == method) and (encoder is None or r.encoder == encoder)
    ]
    if not results:
        raise InputError(
            f"no result for method={method!r}, encoder={encoder!r}; methods: {report.methods}, encoders: {report.encoders}"
        )
    encoders = {e.get("name"): e for e in report.metadata.get("encoders", [])}
    demo = [r.encoder for r in results if encoders.get(r.encoder, {}).get("is_demo")]
    if demo and not allow_demo:
        raise InputError(
            f"encoder {demo[0]!r} is the demo encoder: its scores mean nothing about real images and "
            "are not published; pass allow_demo=True (CLI: --allow-demo) for a test"
        )
    if not revision:
        raise InputError(
            f"the report records no revision of {dataset_id!r}: an entry without one does not say which images were "
            "scored; pass dataset_revision (CLI: --dataset-revision), the commit SHA the gallery was pushed as"
        )
    out: list[tuple[MethodResult, list[EvalResultEntry]]] = []
    for result in results:
        info = encoders.get(result.encoder, {"name": result.encoder})
        notes = _notes(info, report.metadata, gallery)
        out.append((result, _entries(result, config, dataset_id=dataset_id, revision=revision, notes=notes)))
    if not any(entries for _, entries in out):
        raise InputError("the selected results have no finite mAP to publish")
    _check_tasks(gallery.get("id"), [e.task_id for _, entries in out for e in entries])
    return out


def write_eval_results(
    report: Report,
    out: str | os.PathLike[str],
    *,
    dataset_id: str | None = None,
    dataset_revision: str | None = None,
    method: str | None = None,
    encoder: str | None = None,
    allow_demo: bool = False,
) -> list[Path]:
    """Write :func:`to_eval_results` as ``<out>/<method>/.eval_results/<dataset>_<encoder>.yaml``.

    Each ``<out>/<method>`` folder is laid out as that method's model repository (upload its
    ``.eval_results`` folder there). Every file is parsed back with
    ``huggingface_hub.parse_eval_result_entries`` before this returns.

    Args:
        report: An fp-rank report.
        out: Output folder.
        dataset_id, dataset_revision, method, encoder, allow_demo: As in :func:`to_eval_results`.

    Returns:
        The files written, sorted.

    Raises:
        InputError: As :func:`to_eval_results`; also if a written file does not parse back to
            the same entries.
    """
    from huggingface_hub import eval_result_entries_to_yaml

    root = Path(out)
    planned: dict[Path, tuple[str, list[EvalResultEntry]]] = {}
    for result, entries in _result_entries(report, dataset_id, dataset_revision, method, encoder, allow_demo):
        if not entries:
            continue
        dataset = entries[0].dataset_id.split("/")[-1]
        name = f"{safe_label(dataset, what='dataset')}_{safe_label(result.encoder, what='encoder')}.yaml"
        path = root / safe_label(result.method, what="method") / EVAL_RESULTS_FOLDER / name
        if path in planned:
            raise InputError(f"two results would be written to {path}: method and encoder names clash once made file-safe")
        text = yaml.safe_dump(eval_result_entries_to_yaml(entries), sort_keys=False, allow_unicode=True, width=100)
        planned[path] = (text, entries)
    written = []
    for path, (text, entries) in planned.items():  # every name checked above: nothing is written for a refused export
        write_atomic(path, text)
        if read_eval_results(path) != entries:
            raise InputError(f"internal error: {path} does not parse back to the entries written")
        written.append(path)
    return sorted(written)


def read_eval_results(path: str | os.PathLike[str]) -> list[EvalResultEntry]:
    """Parse one ``.eval_results/*.yaml`` file with ``huggingface_hub.parse_eval_result_entries``.

    Raises:
        InputError: If the file is missing, not YAML, or not a list of entries.
    """
    from huggingface_hub import parse_eval_result_entries

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"eval results file {os.fspath(path)!r} does not exist") from None
    except yaml.YAMLError as exc:
        raise InputError(f"eval results file {os.fspath(path)!r} is not valid YAML: {exc}") from None
    if not isinstance(data, list):
        raise InputError(f"eval results file {os.fspath(path)!r} must hold a YAML list of entries")
    try:
        return parse_eval_result_entries(data)
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise InputError(f"eval results file {os.fspath(path)!r} has an invalid entry: {exc!r}") from None


# --- helpers ---------------------------------------------------------------------------------


def _looks_like_hub_id(text: str) -> bool:
    return text.count("/") == 1 and not text.startswith((".", "/", "~")) and "\\" not in text


def _check_tasks(gallery_id: Any, task_ids: list[str]) -> None:
    """Where the report's gallery is a local folder with an ``eval.yaml``, its tasks must hold ``task_ids``."""
    from fp_rank.galleries.build.card import EVAL_FILE

    path = Path(str(gallery_id)) / EVAL_FILE if gallery_id else None
    if path is None or not path.is_file():
        return
    declared = {str(t.get("id")) for t in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("tasks", [])}
    unknown = sorted(set(task_ids) - declared)
    if unknown:
        raise InputError(
            f"tasks {unknown} are not declared in {path} (tasks: {sorted(declared)}); rebuild the gallery "
            "or score the report on one of its configs"
        )


def _entries(
    result: MethodResult, config: str, *, dataset_id: str, revision: str | None, notes: str
) -> list[EvalResultEntry]:
    from huggingface_hub import EvalResultEntry

    values: list[tuple[str, Any]] = [(config, result.map)]
    if config == ALL_CONFIG:
        values += sorted((result.per_group.get("map_per_group") or {}).items())
    entries = []
    for task_id, value in values:
        if value is None or not math.isfinite(float(value)):
            continue
        entries.append(
            EvalResultEntry(
                dataset_id=dataset_id, task_id=str(task_id), value=float(value), dataset_revision=revision, notes=notes,
            )
        )
    return entries


def _notes(encoder: Mapping[str, Any], metadata: Mapping[str, Any], gallery: Mapping[str, Any]) -> str:
    model = encoder.get("model_id")
    revision = encoder.get("revision")
    where = f" ({model}{'@' + str(revision) if revision else ''})" if model else ""
    parts = [
        f"mAP, encoder {encoder.get('name')}{where}",
        f"fp-rank protocol {metadata.get('protocol_version')}",
        f"fp-rank {metadata.get('fp_rank_version')}",
    ]
    if gallery.get("fingerprint"):
        parts.append(f"gallery fingerprint {str(gallery['fingerprint'])[:12]}")
    if encoder.get("is_demo"):
        parts.append("DEMO ENCODER")
    return "; ".join(parts)

