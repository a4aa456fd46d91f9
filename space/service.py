"""The scoring service of the Space: the scoring of one request.

:class:`ScoringSpace` adds :meth:`ScoringSpace.score` to :class:`~space.resources.SpaceResources`
(the allow-lists, the limits and what is loaded once per process); it turns one batch of uploads into an
:class:`Outcome` with :func:`fp_rank.evaluate`. Every request keeps its state in local variables
and its own temporary folder (removed when the request ends).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fp_rank
from fp_rank.demo.run import DEMO_ENCODER
from fp_rank.errors import FpRankError, InputError
from fp_rank.images.decode import decode_problem
from fp_rank.runs import DEFAULT_METHOD, GeneratedImage, IdentityMatcher, Run
from fp_rank.views.outputs import write_outputs
from space.resources import SpaceResources
from space.settings import (
    MAX_IDENTITY_CHARS,
    MAX_METHOD_CHARS,
    env_int,
    progress_enabled,
)
from space.uploads import (
    Problem,
    Upload,
    collect_uploads,
    inside,
    match_mapping,
    read_mapping,
    shorten,
)

ProgressFn = Callable[[float, str], None]


@dataclass
class Outcome:
    """Everything one request produced (nothing here is shared with other requests).

    Attributes:
        report: the fp-rank report, or None when nothing could be scored.
        error: why nothing was scored (None on success).
        problems: files not scored, with reasons (refused, unreadable, unlabelled).
        notes: other remarks for the page (unused mapping rows, ...).
        uploads: the scored images' names and paths, by the report's ``index``.
        gallery: the gallery the batch was ranked against.
        gallery_label: its label on the page.
        config: its config.
        encoder_label: the encoder's label on the page.
        is_demo_encoder: whether the demo descriptor was used.
        seconds: wall time of the request.
    """

    report: fp_rank.Report | None = None
    error: str | None = None
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    uploads: list[Upload] = field(default_factory=list)
    gallery: fp_rank.Gallery | None = None
    gallery_label: str = ""
    config: str | None = None
    encoder_label: str = ""
    is_demo_encoder: bool = False
    seconds: float = 0.0


class ScoringSpace(SpaceResources):
    """The Space's scoring service: :class:`~space.resources.SpaceResources` plus :meth:`score`.

    Args: as :class:`~space.resources.SpaceResources`.
    """

    @classmethod
    def from_env(cls) -> ScoringSpace:
        """A Space configured by the ``FP_RANK_SPACE_*`` environment variables."""
        return cls(
            top_k=env_int("FP_RANK_SPACE_TOP_K", 5),
            n_boot=env_int("FP_RANK_SPACE_BOOTSTRAP", 1000, minimum=0),
            max_strips=env_int("FP_RANK_SPACE_MAX_STRIPS", 100),
            clip_t=os.environ.get("FP_RANK_SPACE_CLIP_T", "").strip() or None,
        )

    def score(
        self,
        files: Sequence[str | os.PathLike[str]] | None,
        *,
        gallery: str,
        config: str | None = None,
        identity: str | None = None,
        method: str | None = None,
        mapping: str | os.PathLike[str] | None = None,
        encoder: str = DEMO_ENCODER,
        work_dir: str | os.PathLike[str],
        upload_root: str | os.PathLike[str] | None = None,
        progress: ProgressFn | None = None,
    ) -> Outcome:
        """Score one batch of uploads. Never raises for bad input: the outcome says what went wrong.

        Args:
            files: uploaded image files and ``.zip`` archives.
            gallery: a gallery label from the allow-list.
            config: the gallery config (default: its first).
            identity: the identity of every image not listed in ``mapping``.
            method: method label of those images (default :data:`fp_rank.runs.DEFAULT_METHOD`).
            mapping: a CSV ``file, identity[, method]``.
            encoder: an encoder label from the allow-list.
            work_dir: folder private to this request; archive members are extracted into its
                ``inputs`` sub-folder, which the caller removes once the strips are drawn.
            upload_root: the web server's upload folder; files (and the mapping CSV) outside it
                are refused.
            progress: called with (fraction, description) while working.

        Returns:
            An :class:`Outcome`.
        """
        start = time.perf_counter()
        out = Outcome(gallery_label=gallery, encoder_label=encoder)
        step = progress or (lambda fraction, desc: None)
        try:
            _check_text_arguments(gallery=gallery, config=config, identity=identity, method=method, encoder=encoder)
            out.gallery_label, out.encoder_label = shorten(gallery), shorten(encoder)
            self._score_into(
                out, files, gallery, config, identity, method, mapping, encoder, Path(work_dir), upload_root, step,
                bars=progress is not None and progress_enabled(),
            )
        except FpRankError as exc:
            out.error = self.scrub(str(exc))
            out.report = None
        out.problems = _bounded(
            [Problem(shorten(self.scrub(p.name)), shorten(self.scrub(p.reason), MAX_REASON_CHARS)) for p in out.problems],
            MAX_PROBLEMS_SHOWN,
        )
        out.notes = [shorten(self.scrub(n), MAX_REASON_CHARS) for n in out.notes]
        if out.report is not None:
            self._publish(out)
        out.seconds = time.perf_counter() - start
        return out

    def _publish(self, out: Outcome) -> None:
        """Make the report safe to show and download: no server path, bounded lists."""
        report = out.report
        assert report is not None
        report.metadata = self.scrub_value(report.metadata)
        cache = report.metadata.get("cache")
        if isinstance(cache, dict) and cache.get("directory"):
            cache["directory"] = "<server cache>"
        report.skipped = self.scrub_value(report.skipped)
        report.extras = self.scrub_value(report.extras)
        space = report.extras.get("space")
        if isinstance(space, dict):
            space["not_scored"] = [{"file": p.name, "reason": p.reason} for p in out.problems]
            space["notes"] = list(out.notes)

    def _score_into(
        self,
        out: Outcome,
        files: Sequence[str | os.PathLike[str]] | None,
        gallery: str,
        config: str | None,
        identity: str | None,
        method: str | None,
        mapping: str | os.PathLike[str] | None,
        encoder: str,
        work_dir: Path,
        upload_root: str | os.PathLike[str] | None,
        step: ProgressFn,
        *,
        bars: bool,
    ) -> None:
        self._check_gallery_label(gallery)
        if encoder not in self.encoders:
            raise InputError(f"unknown encoder {encoder!r}; choose one of {list(self.encoders)}")
        if not files:
            raise InputError("no images uploaded: add generated images (or a .zip of them), then press Score")
        step(0.02, "Checking the uploads")
        uploads, problems = collect_uploads(files, work_dir / "inputs", self.limits, upload_root=upload_root)
        out.problems.extend(problems)
        if mapping and upload_root is not None and not inside(mapping, upload_root):
            raise InputError("the mapping CSV was not uploaded through this page; refused")
        batch_method = (method or "").strip()[:MAX_METHOD_CHARS] or DEFAULT_METHOD
        rows = read_mapping(mapping, self.limits, method=batch_method) if mapping else {}
        matched, unused = match_mapping(uploads, rows) if rows else ({}, [])
        if unused:
            shown = ", ".join(shorten(u) for u in unused[:10]) + (f" and {len(unused) - 10} more" if len(unused) > 10 else "")
            out.notes.append(f"{len(unused)} row(s) of the mapping CSV name files that were not uploaded: {shown}")

        step(0.05, "Loading the gallery")
        config_arg = self._config_arg(gallery, config)
        gal = self.gallery(gallery, config_arg)
        out.gallery, out.config = gal, config_arg
        run, keep = _run_of(uploads, matched, gal, identity, batch_method, out.problems)

        step(0.1, "Loading the encoder")
        enc = self.encoder(encoder)
        out.is_demo_encoder = bool(getattr(enc, "is_demo", False))
        step(0.15, "Encoding and ranking")
        report = fp_rank.evaluate(
            run,
            gallery=gal,
            encoder=enc,
            batch_size=self.batch_size,
            on_invalid="skip",
            top_k=self.top_k,
            progress=bars,  # tqdm bars, tracked by the page's progress bar
            trust_remote_code=False,
            clip_t=self.clip_t if any(run.prompts) else None,
        )
        for skipped in report.skipped:
            out.problems.append(Problem(str(skipped.get("file")), str(skipped.get("reason"))))
        if self.n_boot > 0:
            step(0.85, "Computing confidence intervals")
            fp_rank.add_intervals(report, n_boot=self.n_boot, seed=0)
        report.extras["space"] = {
            "gallery_label": gallery,
            "encoder_label": encoder,
            "not_scored": [{"file": p.name, "reason": p.reason} for p in out.problems],
            "notes": list(out.notes),
            "limits": {
                "max_files": self.limits.max_files,
                "max_file_bytes": self.limits.max_file_bytes,
                "max_pixels": self.limits.max_pixels,
            },
        }
        out.uploads = keep
        out.report = report


#: Most refused files listed in a reply (then one line counts the rest).
MAX_PROBLEMS_SHOWN = 500
#: Longest reason or note shown in a reply.
MAX_REASON_CHARS = 1000


def _check_text_arguments(**values: Any) -> None:
    """Every choice the page sends must be a string (an API caller may send anything)."""
    for key, value in values.items():
        if value is not None and not isinstance(value, str):
            raise InputError(f"{key} must be a string, got a {type(value).__name__}")
        if key == "identity" and value is not None and len(value) > MAX_IDENTITY_CHARS:
            raise InputError(f"the identity is {len(value)} characters long; gallery identities have at most {MAX_IDENTITY_CHARS}")
        if key != "identity" and value is not None and len(value) > 4 * MAX_IDENTITY_CHARS:
            raise InputError(f"{key} is {len(value)} characters long; choose one from the page")


def _run_of(
    uploads: list[Upload], matched: dict[int, GeneratedImage], gal: fp_rank.Gallery, identity: str | None, method: str,
    problems: list[Problem],
) -> tuple[Run, list[Upload]]:
    """The run to score: each upload labelled by its mapping row, else by the batch's identity and method.

    Labels are matched to the gallery by the library's rule (:class:`fp_rank.runs.IdentityMatcher`);
    an upload that cannot be scored is listed in ``problems`` with the reason, and the rest go on.

    Raises:
        InputError: none of the uploads can be scored.
    """
    matcher = IdentityMatcher(gal.gallery.identities.tolist())
    batch_identity = (matcher(identity) or identity.strip()) if identity and identity.strip() else None
    by_name = {up.name: up for up in uploads}
    images: list[GeneratedImage] = []
    keep: list[Upload] = []
    unknown_reason: dict[str, str] = {}
    cond_problems: dict[str, str | None] = {}
    for i, up in enumerate(uploads):
        row = matched.get(i)
        label = (matcher(row.identity) or row.identity) if row else batch_identity
        if label is None:
            problems.append(Problem(up.name, "no identity: not in the mapping CSV and no identity chosen for the batch"))
            continue
        if label not in matcher.known:
            if label not in unknown_reason:
                unknown_reason[label] = _unknown_identity(gal, label)
            problems.append(Problem(up.name, unknown_reason[label]))
            continue
        cond = row.conditioning if row else None
        if isinstance(cond, str):  # another uploaded file: the real image this one was conditioned on
            if cond not in by_name:
                problems.append(Problem(up.name, f"its conditioning image {cond!r} was not uploaded"))
                continue
            cond = by_name[cond].path
            if cond not in cond_problems:
                cond_problems[cond] = decode_problem(cond, by_name[row.conditioning].name)
            if cond_problems[cond]:
                problems.append(Problem(up.name, f"its conditioning image cannot be read: {cond_problems[cond]}"))
                continue
        labels = {"method": row.method, "prompt": row.prompt, "seed": row.seed} if row else {"method": method}
        images.append(GeneratedImage(up.path, label, conditioning=cond, file=up.name, **labels))
        keep.append(up)
    if not keep:
        raise InputError("none of the uploaded files can be scored; the list below says why")
    return Run(tuple(images), layout="uploads"), keep


def _bounded(problems: list[Problem], limit: int) -> list[Problem]:
    if len(problems) <= limit:
        return problems
    return [*problems[:limit], Problem(f"{len(problems) - limit} more file(s)", "not listed (too many problems in one batch)")]


def _unknown_identity(gal: fp_rank.Gallery, label: str) -> str:
    """The library's message for a label that matches no identity (with close matches)."""
    try:
        gal.check_identities([shorten(label, MAX_IDENTITY_CHARS)])
    except InputError as exc:
        return str(exc)
    return f"identity {label!r} is not in the gallery"


def write_reports(outcome: Outcome, folder: Path) -> tuple[str | None, str | None]:
    """Write the report for download in the output layout of ``fp-rank evaluate --out``.

    Returns:
        The paths of ``report.json`` and of the per-image ``queries.csv`` (None without a report).
    """
    if outcome.report is None:
        return None, None
    written = write_outputs(outcome.report, folder)
    return str(written.report), str(written.queries)


#: What the sample button loads: a few identities, two simulated methods, four prompts each.
SAMPLE_IDENTITIES = ("finch_scarlet_crown", "finch_gold_cheek", "jay_azure_wing")
SAMPLE_METHODS = ("faithful", "drifting")
SAMPLE_PROMPTS = 4


def write_samples(folder: str | os.PathLike[str]) -> tuple[list[str], str]:
    """Write a few synthetic generated images and their mapping CSV; returns (image paths, CSV path)."""
    from fp_rank.demo.synthetic import generated_records

    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    paths: list[str] = []
    lines = ["file,identity,method,prompt"]
    for rec in generated_records(0, methods=SAMPLE_METHODS):
        if rec["identity"] not in SAMPLE_IDENTITIES or int(rec["file"].rsplit("/", 1)[-1][:2]) >= SAMPLE_PROMPTS:
            continue
        name = rec["file"].replace("/", "_")
        path = root / name
        rec["image"].save(path)
        paths.append(str(path))
        lines.append(f"{name},{rec['identity']},{rec['method']},{rec['prompt']}")
    csv_path = root / "sample-mapping.csv"
    csv_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return paths, str(csv_path)
