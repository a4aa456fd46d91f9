"""``fp-rank demo`` and ``fp-rank evaluate``: they read the arguments, call the library, print and write."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from fp_rank.cli.options import given_options
from fp_rank.errors import InputError
from fp_rank.file_access import check_output
from fp_rank.version import PROTOCOL_VERSION, __version__

#: ``--gallery demo`` (or ``demo:SEED``) names the synthetic demo gallery, built on first use.
DEMO_GALLERY_ALIAS = "demo"


def demo(args: argparse.Namespace) -> int:
    from fp_rank.demo.run import explain, export_generated, run_demo
    from fp_rank.views.table import format_table

    _check_out(args.out)
    if args.export:
        check_output(args.export, "folder", "--export")
    report = run_demo(seed=args.seed, cache=not args.no_cache, progress=not args.no_progress)
    _statistics(report, args)
    print(f"fp-rank {__version__} demo (protocol {PROTOCOL_VERSION}): synthetic benchmark, seed {args.seed}")
    # the terminal is the user's own: it says where the demo gallery is (shared files name it by folder name)
    print(f"gallery: {report.metadata['gallery']['id']} (fingerprint {report.metadata['gallery']['fingerprint'][:12]}; "
          f"`--gallery {demo_alias(args.seed)}` names it)")
    print(format_table(report))
    print(explain(report))
    for path in _write_outputs(report, args.out):
        print(f"wrote {path}")
    if args.export:
        manifest = export_generated(args.export, seed=args.seed)
        print(f"wrote {len(report.queries) // max(1, len(report.encoders))} generated images and {manifest}; score them with:")
        print(f"  fp-rank evaluate --gallery {demo_alias(args.seed)} --generated {manifest} --encoder fp-rank-demo")
    return 0


def evaluate(args: argparse.Namespace) -> int:
    from fp_rank.distributed import is_main_process
    from fp_rank.encoding.options import check_device
    from fp_rank.evaluation import evaluate as evaluate_run
    from fp_rank.evaluation.load import gallery_of
    from fp_rank.options import resolve_options
    from fp_rank.runs import read_run
    from fp_rank.views.table import format_table

    opts = resolve_options(given_options(args))  # every option checked (and older flags translated) once
    _check_out(args.out)  # before any loading: a wrong --out costs nothing
    check_device(opts.device)  # before any loading: an absent GPU is one line, exit 2
    gallery = gallery_of(resolve_gallery(args.gallery, opts.progress), opts)
    run = read_run(args.generated, known_identities=set(gallery.identities), method=args.method)
    if os.environ.get("RANK", "0") in ("0", ""):  # under a launcher, rank 0 alone speaks
        for line in run.describe():
            print(line, file=sys.stderr)
    report = evaluate_run(run, gallery=gallery, **opts)
    if not is_main_process():  # torchrun / accelerate launch: rank 0 alone reports and writes
        return 0
    _statistics(report, args)
    print(format_table(report))
    _say_what_was_left_out(report, opts.on_missing)
    for path in _write_outputs(report, args.out):
        print(f"wrote {path}")
    return 0


def demo_alias(seed: int) -> str:
    return DEMO_GALLERY_ALIAS if seed == 0 else f"{DEMO_GALLERY_ALIAS}:{seed}"


def resolve_gallery(spec: str, progress: bool) -> str:
    """``demo`` / ``demo:SEED`` -> the demo gallery's folder (unless a folder of that name exists)."""
    name, _, seed = spec.partition(":")
    if name != DEMO_GALLERY_ALIAS and not os.path.exists(spec) and "/" not in spec and _close_to_demo(name):
        raise InputError(f"--gallery {spec!r} is neither a folder nor a Hub id (ORG/NAME); did you mean "
                         f"--gallery {DEMO_GALLERY_ALIAS}?")
    if name != DEMO_GALLERY_ALIAS or os.path.exists(spec) or (seed and not (seed.isascii() and seed.isdigit())):
        return spec
    from fp_rank.demo.run import demo_gallery

    return str(demo_gallery(int(seed or 0), progress=progress))


def _close_to_demo(name: str) -> bool:
    """A likely typo of ``demo`` (``dmeo``, ``Demo``, ``demo.``)."""
    import difflib

    return difflib.SequenceMatcher(None, name.lower(), DEMO_GALLERY_ALIAS).ratio() >= 0.75


def _statistics(report: Any, args: argparse.Namespace) -> None:
    from fp_rank.analysis import add_statistics

    if getattr(args, "bootstrap", 0):
        add_statistics(report, n_boot=args.bootstrap, seed=getattr(args, "seed", 0))


def _check_out(out: str | None) -> None:
    """``--out`` as :func:`_write_outputs` will use it (a .json file, else a folder), checked before any work."""
    if out:
        check_output(out, "file" if out.lower().endswith(".json") else "folder", "--out")


def _write_outputs(report: Any, out: str | None) -> list[Path]:
    """``--out``: a .json file, or a folder in the output layout (:func:`fp_rank.views.outputs.write_outputs`)."""
    from fp_rank.views.outputs import write_outputs

    return write_outputs(report, out).paths if out else []


def _say_what_was_left_out(report: Any, on_missing: str) -> None:
    missing = report.metadata.get("missing") or []
    if missing:
        labels = sorted({m["identity"] for m in missing})
        what = "scored AP 0" if on_missing == "zero" else "left out"
        print(f"--on-missing {on_missing}: {what} {len(missing)} image(s) whose identity has no gallery image: "
              f"{', '.join(labels[:10])}{' ...' if len(labels) > 10 else ''}", file=sys.stderr)
        for item in missing[:20]:
            print(f"  {item['file']} ({item['method']}, {item['identity']})", file=sys.stderr)
        if len(missing) > 20:
            print(f"  ... {len(missing) - 20} more in report.json (metadata.missing)", file=sys.stderr)
    if report.skipped:
        print(f"skipped {len(report.skipped)} unreadable image(s):", file=sys.stderr)
        for item in report.skipped:
            print(f"  {item['file']}: {item['reason']}", file=sys.stderr)


def ablate(args: argparse.Namespace) -> int:
    from fp_rank.analysis.ablation import ablate as run_ablation
    from fp_rank.options import resolve_options
    from fp_rank.runs import read_run

    opts = resolve_options(given_options(args))
    for flag, target in (("--out", args.out), ("--markdown", args.markdown)):
        if target:
            check_output(target, "file", flag)
    if args.names is not None and len(args.names) != len(args.galleries):
        raise InputError(f"--names gives {len(args.names)} name(s) for {len(args.galleries)} galleries; give one per gallery")
    galleries = [resolve_gallery(g, opts.progress) for g in args.galleries]
    run = read_run(args.generated, method=args.method)
    result = run_ablation(run, galleries, names=args.names, n_boot=args.bootstrap, seed=args.seed, **given_options(args))
    print(result.summary())
    if args.out:
        import json

        from fp_rank.file_access import write_atomic

        write_atomic(args.out, json.dumps(result.to_dict(), indent=2))
        print(f"wrote {args.out}")
    if args.markdown:
        from fp_rank.file_access import write_atomic

        write_atomic(args.markdown, result.to_markdown())
        print(f"wrote {args.markdown}")
    return 0
