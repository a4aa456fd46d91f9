"""The ``fp-rank`` command line. It parses arguments and calls the public library functions."""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from pathlib import Path
from typing import Any

from fp_rank.errors import FpRankError, InputError
from fp_rank.version import PROTOCOL_VERSION, __version__


def _write_outputs(report: Any, out: str | None) -> list[Path]:
    """``--out``: a .json file, or a folder in the output layout (:func:`fp_rank.views.outputs.write_outputs`)."""
    from fp_rank.views.outputs import write_outputs

    return write_outputs(report, out).paths if out else []


def _cmd_demo(args: argparse.Namespace) -> int:
    from fp_rank.demo.run import explain, run_demo
    from fp_rank.views.table import format_table

    report = run_demo(seed=args.seed, cache=not args.no_cache, progress=not args.no_progress)
    _maybe_statistics(report, args)
    print(f"fp-rank {__version__} demo (protocol {PROTOCOL_VERSION}): synthetic benchmark, seed {args.seed}")
    print(f"gallery: {report.metadata['gallery']['id']} (fingerprint {report.metadata['gallery']['fingerprint'][:12]}; "
          f"`--gallery {_demo_alias(args.seed)}` names it)")
    print(format_table(report))
    print(explain(report))
    for path in _write_outputs(report, args.out):
        print(f"wrote {path}")
    if args.export:
        from fp_rank.demo.run import export_generated

        manifest = export_generated(args.export, seed=args.seed)
        print(f"wrote {len(report.queries) // max(1, len(report.encoders))} generated images and {manifest}; score them with:")
        print(f"  fp-rank evaluate --gallery {_demo_alias(args.seed)} --generated {manifest} --encoder fp-rank-demo")
    return 0


#: ``--gallery demo`` (or ``demo:SEED``) names the synthetic demo gallery, built on first use.
DEMO_GALLERY_ALIAS = "demo"


def _demo_alias(seed: int) -> str:
    return DEMO_GALLERY_ALIAS if seed == 0 else f"{DEMO_GALLERY_ALIAS}:{seed}"


def _resolve_gallery(spec: str, progress: bool) -> str:
    """``demo`` / ``demo:SEED`` -> the demo gallery's folder (unless a folder of that name exists)."""
    name, _, seed = spec.partition(":")
    if name != DEMO_GALLERY_ALIAS or os.path.exists(spec) or (seed and not seed.isdigit()):
        return spec
    from fp_rank.demo.run import demo_gallery

    return str(demo_gallery(int(seed or 0), progress=progress))


def _maybe_statistics(report: Any, args: argparse.Namespace) -> None:
    from fp_rank.analysis import add_statistics

    n_boot = getattr(args, "bootstrap", 0)
    if n_boot:
        add_statistics(report, n_boot=n_boot, seed=getattr(args, "seed", 0))


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from fp_rank.encoding.options import check_device
    from fp_rank.evaluation import evaluate
    from fp_rank.galleries.load import load_gallery
    from fp_rank.distributed import is_main_process
    from fp_rank.runs import read_generated
    from fp_rank.views.table import format_table

    check_device(args.device)  # before any loading: an absent GPU is one line, exit 2

    gallery = load_gallery(
        _resolve_gallery(args.gallery, not args.no_progress), args.config, args.revision, min_gallery_images=args.min_gallery_images,
        on_duplicate=args.on_duplicate, progress=not args.no_progress,
    )
    run = read_generated(args.generated, known_identities=set(gallery.identities), method=args.method)
    if os.environ.get("RANK", "0") in ("0", ""):  # under a launcher, rank 0 alone speaks
        for line in run.describe():
            print(line, file=sys.stderr)
    encoders: Any = args.encoder if args.encoder else None
    if encoders is not None and len(encoders) == 1:
        encoders = encoders[0]
    report = evaluate(
        **run.as_kwargs(),
        gallery=gallery,
        encoder=encoders,
        encoder_revision=args.encoder_revision,
        device=args.device,
        dtype=args.dtype,
        batch_size=args.batch_size,
        num_workers=args.workers,
        cache=not args.no_cache,
        cache_dir=args.cache_dir,
        on_missing=args.on_missing,
        on_invalid=args.on_invalid,
        cmc_ks=args.cmc_ks,
        top_k=args.top_k,
        ceilings=not args.no_ceilings,
        progress=not args.no_progress,
        trust_remote_code=args.trust_remote_code,
        check_leaks=not args.no_leak_check,
        exclude_leaks=args.exclude_leaks,
        single_identity_groups=args.single_identity_groups,
        clip_t=args.clip_t,
        clip_t_revision=args.clip_t_revision,
        background=args.background,
        matting=args.matting,
        preprocessing=args.preprocessing,
    )
    if not is_main_process():  # torchrun / accelerate launch: rank 0 alone reports and writes
        return 0
    _maybe_statistics(report, args)
    print(format_table(report))
    missing = report.metadata.get("missing") or []
    if missing:
        labels = sorted({m["identity"] for m in missing})
        what = "scored AP 0" if args.on_missing == "zero" else "left out"
        print(f"--on-missing {args.on_missing}: {what} {len(missing)} image(s) whose identity has no gallery image: "
              f"{', '.join(labels[:10])}{' ...' if len(labels) > 10 else ''}", file=sys.stderr)
        for item in missing[:20]:
            print(f"  {item['file']} ({item['method']}, {item['identity']})", file=sys.stderr)
        if len(missing) > 20:
            print(f"  ... {len(missing) - 20} more in report.json (metadata.missing)", file=sys.stderr)
    if report.skipped:
        print(f"skipped {len(report.skipped)} unreadable image(s):", file=sys.stderr)
        for item in report.skipped:
            print(f"  {item['file']}: {item['reason']}", file=sys.stderr)
    for path in _write_outputs(report, args.out):
        print(f"wrote {path}")
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from fp_rank.analysis import compare
    from fp_rank.reporting.report import Report

    first = Report.load(args.reports[0])
    other = Report.load(args.reports[1]) if len(args.reports) == 2 else None
    if len(args.reports) > 2:
        raise InputError("compare takes one report (with --methods A B) or two reports")
    if args.methods:
        method_a, method_b = args.methods
    elif other is not None and len(first.methods) == 1 and len(other.methods) == 1:
        method_a, method_b = first.methods[0], other.methods[0]
    else:
        raise InputError(f"name the two methods with --methods A B; the report holds {first.methods}")
    result = compare(
        first, method_a, method_b, other=other, encoder=args.encoder, n_boot=args.bootstrap,
        n_permutations=args.permutations, seed=args.seed, interval=args.interval,
    )
    ci = result.ci
    print(f"{method_a} - {method_b}: mAP difference {result.difference:+.4f} "
          f"[{ci.low:+.4f}, {ci.high:+.4f}] ({ci.confidence:.0%} CI), "
          f"{format_p(result.p_value)} ({'exact' if result.exact else 'Monte Carlo'} paired permutation test over "
          f"{result.n_shared_identities} shared identities)")
    if result.only_in_a or result.only_in_b:
        print(f"identities only in {method_a}: {len(result.only_in_a)}, only in {method_b}: {len(result.only_in_b)} (left out)")
    for note in result.warnings:
        print(f"note: {note}")
    if args.out:
        import json

        Path(args.out).write_text(json.dumps(result.to_dict(), indent=2), encoding="utf-8")
        print(f"wrote {args.out}")
    return 0


def format_p(p: float) -> str:
    """A p-value as people read it: ``p < 1e-4`` below 0.0001, else four significant digits.

    Example:
        >>> format_p(9.999e-05), format_p(0.0312), format_p(1.0)
        ('p < 1e-4', 'p = 0.0312', 'p = 1')
    """
    return "p < 1e-4" if p < 1e-4 else f"p = {p:.4g}"


def _cmd_plan(args: argparse.Namespace) -> int:
    from fp_rank.analysis import plan as plan_comparison
    from fp_rank.reporting.report import Report

    plan = plan_comparison(
        Report.load(args.report), args.delta, power=args.power, alpha=args.alpha, methods=args.methods, encoder=args.encoder,
        identity_correlation=args.identity_correlation,
    )
    print(plan.summary())
    if args.out:
        import json

        Path(args.out).write_text(json.dumps(plan.to_dict(), indent=2), encoding="utf-8")
        print(f"wrote {args.out}")
    return 0


def _cmd_plot(args: argparse.Namespace) -> int:
    from fp_rank.analysis import add_statistics
    from fp_rank.reporting.report import Report
    from fp_rank.views.plots import plot

    report = Report.load(args.report)
    if not any(r.intervals for r in report.results) and args.bootstrap:
        add_statistics(report, n_boot=args.bootstrap, seed=args.seed)
    for path in plot(report, args.out):
        print(f"wrote {path}")
    return 0


def _cmd_encoders(args: argparse.Namespace) -> int:
    from fp_rank.encoding.registry import REGISTRY

    for alias in sorted(REGISTRY):
        spec = REGISTRY[alias]
        print(f"{alias:<14} {spec.hub_id:<34} {spec.pooling:<15} {spec.description}")
    return 0


def _cmd_cache(args: argparse.Namespace) -> int:
    from fp_rank.caching.store import EmbeddingCache

    cache = EmbeddingCache(args.cache_dir)
    if args.action == "clear":
        print(f"removed {cache.clear()} cache entries from {cache.directory}")
    else:
        info = cache.info()
        print(f"{info['directory']}: {info['entries']} entries, {info['bytes'] / 1e6:.1f} MB")
    return 0


def _cmd_install_metric(args: argparse.Namespace) -> int:
    from fp_rank.metric import install_evaluate_module

    path = install_evaluate_module()
    print(f"installed the evaluate module: evaluate.load('fp-rank') now resolves offline to {path}")
    return 0


_BOOTSTRAP_HELP = (
    "confidence intervals and diagnostics: 0 turns them off; the default interval is analytic "
    "(identity-clustered Student t), N is the replicate count of the bootstrap option"
)


def _cmd_build_space(args: argparse.Namespace) -> int:
    from fp_rank.hub.space_build import build_space, push_space

    repo_id = args.repo_id or Path(args.out).name
    build = build_space(args.out, repo_id=repo_id, datasets=args.dataset or (), requirement=args.requirement, overwrite=args.overwrite)
    print(f"wrote the Space for {repo_id} to {build.folder}: {', '.join(build.files)}")
    print(f"pre-flight offline: evaluate.load({build.load_call()!r})")
    if args.push:
        print(f"pushed: {push_space(build.folder, repo_id, private=args.private)}")
    return 0


def _cmd_export_results(args: argparse.Namespace) -> int:
    from fp_rank.hub.results import write_eval_results
    from fp_rank.reporting.report import Report

    report = Report.load(args.report)
    paths = write_eval_results(
        report, args.out, dataset_id=args.dataset_id, dataset_revision=args.dataset_revision,
        method=args.method, encoder=args.encoder, allow_demo=args.allow_demo,
    )
    for path in paths:
        print(f"wrote {path}")
    return 0


def _cmd_leaderboard(args: argparse.Namespace) -> int:
    from fp_rank.hub.leaderboard import build_leaderboard

    board = build_leaderboard(args.reports)
    if args.out:
        for path in board.write(args.out):
            print(f"wrote {path}")
    else:
        print(board.to_markdown(), end="")
    for path, reason in board.ignored:
        print(f"left out {path}: {reason}", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``fp-rank``."""
    parser = argparse.ArgumentParser(
        prog="fp-rank",
        description="Finer-Personalization Rank: score identity preservation of generated images by retrieval.",
    )
    parser.add_argument("--version", action="version", version=f"fp-rank {__version__} (protocol {PROTOCOL_VERSION})")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="score the built-in synthetic benchmark offline")
    demo.add_argument("--seed", type=int, default=0, help="seed of the synthetic world (default 0)")
    demo.add_argument("--out", help="write report.json/queries.csv/summary.md to this folder (or a .json file)")
    demo.add_argument("--no-cache", action="store_true", help="do not read or write the embedding cache")
    demo.add_argument("--no-progress", action="store_true", help="hide progress bars (ours, datasets' and transformers')")
    demo.add_argument("--export", metavar="DIR", help="also write the generated images as DIR/<method>/<identity>/NN.png with DIR/manifest.csv, for fp-rank evaluate")
    demo.add_argument("--bootstrap", type=int, default=1000, help=_BOOTSTRAP_HELP)
    demo.set_defaults(func=_cmd_demo)

    ev = sub.add_parser("evaluate", help="score a folder or manifest of generated images against a gallery")
    ev.add_argument("--gallery", required=True, help="gallery folder, Hub dataset id (org/name), or 'demo' for the synthetic demo gallery ('demo:SEED' for another seed)")
    ev.add_argument("--config", default=None, help="gallery config (a group, or 'all')")
    ev.add_argument("--revision", default=None, help="gallery Hub revision")
    ev.add_argument("--generated", required=True, help="<identity>/*.png, <method>/<identity>/*.png, or a CSV/JSONL manifest")
    ev.add_argument("--method", default=None, help="method name for the <identity>/*.png layout")
    ev.add_argument("--encoder", action="append", help="encoder alias, Hub id or folder; repeat for several")
    ev.add_argument("--encoder-revision", default=None, help="Hub revision (branch, tag or commit) of the encoder weights")
    ev.add_argument("--device", default=None, help="torch device, e.g. cpu, cuda, cuda:1 (default: cuda when available)")
    ev.add_argument("--dtype", default=None, choices=["float32", "bfloat16", "float16"], help="autocast dtype of the encoder (default float32; recorded in the report)")
    ev.add_argument("--preprocessing", default="processor", choices=["processor", "fast"], help="model inputs exactly as the reference code makes them (the checkpoint's image processor; OpenCV for miewid; default) or with fp-rank's faster torch reimplementation (within a documented tolerance, recorded in the report)")
    ev.add_argument("--batch-size", type=int, default=32, help="images per encoder batch (default 32)")
    ev.add_argument("--workers", type=int, default=0, help="worker processes decoding and preprocessing images while the model runs (default 0: in the main process, one batch ahead)")
    ev.add_argument("--cache-dir", default=None, help="embedding cache folder (default $FP_RANK_CACHE, else $HF_HOME/fp_rank)")
    ev.add_argument("--no-cache", action="store_true", help="do not read or write the embedding cache")
    ev.add_argument("--on-missing", default="error", choices=["error", "skip", "zero"], help="identity labels without gallery images: fail (default), leave those images out, or score them AP 0 in their group as the reference code does (counted either way)")
    ev.add_argument("--single-identity-groups", default="error", choices=["error", "skip"], help="gallery groups with one identity (AP would be 1): fail (default) or leave them out (counted)")
    ev.add_argument("--clip-t", default=None, metavar="MODEL", help="also score text alignment (CLIP-T) of images with a prompt, with this CLIP checkpoint (alias such as clip-vit-b32, Hub id or folder)")
    ev.add_argument("--clip-t-revision", default=None, help="Hub revision of the --clip-t checkpoint")
    ev.add_argument("--background", default="keep", choices=["keep", "remove"], help="remove the background of every encoded image (gallery, reference, holdout, generated, conditioning) before the encoder, filling it with grey 130 as the reference code's --remove_background does (default: keep)")
    ev.add_argument("--matting", default=None, metavar="BACKEND", help="matting backend for --background remove: carvekit (the default, the reference's settings; pip install 'fp-rank[background]') or a transformers segmentation checkpoint (Hub id or folder)")
    ev.add_argument("--cmc-ks", type=int, nargs="+", default=[1, 5, 10], help="ranks for CMC (default 1 5 10)")
    ev.add_argument("--top-k", type=int, default=0, help="store each query's top-k gallery matches in report.json")
    ev.add_argument("--no-ceilings", action="store_true", help="skip the real-image ceiling (holdout/reference as queries)")
    ev.add_argument("--on-invalid", default="error", choices=["error", "skip"], help="unreadable generated images: fail (default) or leave them out and list them")
    ev.add_argument("--min-gallery-images", type=int, default=2, help="fewest gallery images an identity may have (default 2)")
    ev.add_argument("--on-duplicate", default="error", choices=["error", "allow"], help="identical images inside the gallery or shared with the reference split")
    ev.add_argument("--no-leak-check", action="store_true", help="do not flag generated images that copy gallery/reference images")
    ev.add_argument("--exclude-leaks", action="store_true", help="leave flagged copies out of the scores (counted in the report)")
    ev.add_argument("--trust-remote-code", action="store_true", help="allow encoders that run repository code (miewid)")
    ev.add_argument("--bootstrap", type=int, default=1000, help=_BOOTSTRAP_HELP)
    ev.add_argument("--seed", type=int, default=0, help="seed of the bootstrap")
    ev.add_argument("--out", help="report .json file, or a folder for report.json/queries.csv/summary.md")
    ev.add_argument("--no-progress", action="store_true", help="hide progress bars (ours, datasets' and transformers')")
    ev.set_defaults(func=_cmd_evaluate)

    cmp_ = sub.add_parser("compare", help="paired comparison of two methods (one report with --methods, or two reports)")
    cmp_.add_argument("reports", nargs="+", help="report.json (or two report files)")
    cmp_.add_argument("--methods", nargs=2, metavar=("A", "B"), help="the two methods to compare (A - B)")
    cmp_.add_argument("--encoder", default=None, help="the encoder whose scores to compare (needed when the report has several)")
    cmp_.add_argument("--interval", default="t", choices=["t", "bootstrap"],
                      help="interval of the difference: paired Student t (default) or the hierarchical bootstrap")
    cmp_.add_argument("--bootstrap", type=int, default=1000, help="replicates of --interval bootstrap")
    cmp_.add_argument("--permutations", type=int, default=10000, help="sign-flip permutations for the p-value (exact when fewer sign vectors exist; default 10000)")
    cmp_.add_argument("--seed", type=int, default=0, help="seed of the bootstrap and permutations")
    cmp_.add_argument("--out", help="write the comparison as JSON")
    cmp_.set_defaults(func=_cmd_compare)

    plan = sub.add_parser("plan", help="from a pilot report: power, images per identity needed, detectable difference")
    plan.add_argument("report", help="report.json of the pilot run")
    plan.add_argument("--delta", type=float, default=None, help="mAP difference to detect, e.g. 0.02")
    plan.add_argument("--power", type=float, default=0.8, help="power wanted (default 0.8)")
    plan.add_argument("--alpha", type=float, default=0.05, help="two-sided level (default 0.05)")
    plan.add_argument("--methods", nargs="+", metavar="METHOD", help="one or two methods (default: the report's, if one or two)")
    plan.add_argument("--encoder", default=None, help="the encoder whose scores to plan with (needed when the report has several)")
    plan.add_argument("--identity-correlation", type=float, default=0.0,
                      help="with one method: assumed correlation of two methods' identity means (default 0, conservative)")
    plan.add_argument("--out", help="write the plan as JSON")
    plan.set_defaults(func=_cmd_plan)

    plot = sub.add_parser("plot", help="write PNG figures of a report")
    plot.add_argument("report", help="a report.json written by fp-rank evaluate or demo")
    plot.add_argument("--out", required=True, help="folder for the figures")
    plot.add_argument("--bootstrap", type=int, default=1000, help="replicates if the report has no CIs yet")
    plot.add_argument("--seed", type=int, default=0, help="seed of the bootstrap")
    plot.set_defaults(func=_cmd_plot)

    enc = sub.add_parser("encoders", help="list the registered encoder aliases")
    enc.set_defaults(func=_cmd_encoders)

    cache = sub.add_parser("cache", help="show or clear the embedding cache")
    cache.add_argument("action", choices=["info", "clear"], help="info: size of the cache; clear: remove its entries")
    cache.add_argument("--cache-dir", default=None, help="embedding cache folder (default $FP_RANK_CACHE, else $HF_HOME/fp_rank)")
    cache.set_defaults(func=_cmd_cache)

    inst = sub.add_parser("install-metric", help="make evaluate.load('fp-rank') work offline")
    inst.set_defaults(func=_cmd_install_metric)

    space = sub.add_parser("build-space", help="assemble the metric Space as the Hub serves it (evaluate.load('ORG/fp-rank'))")
    space.add_argument("out", help="Space folder; name it after the repository (.../fp-rank) so evaluate.load(OUT) finds the module")
    space.add_argument("--repo-id", default=None, help="NAME or ORG/NAME of the Space (default: the folder's name); --push needs ORG/NAME")
    space.add_argument("--dataset", action="append", help="Hub id of a published gallery, listed in the card (repeatable)")
    space.add_argument("--requirement", default=None, help="fp-rank line of requirements.txt (default: fp-rank[app]==<this version>)")
    space.add_argument("--overwrite", action="store_true", help="replace an earlier Space build in OUT")
    space.add_argument("--push", action="store_true", help="create the Space (Gradio SDK) and upload the folder (network, token)")
    space.add_argument("--private", action="store_true", help="with --push: create the Space private")
    space.set_defaults(func=_cmd_build_space)

    export = sub.add_parser("export-results", help="write a report's mAP as Hub .eval_results/*.yaml entries, per method")
    export.add_argument("report", help="report.json")
    export.add_argument("--out", required=True, help="folder: <method>/.eval_results/<dataset>_<encoder>.yaml")
    export.add_argument("--dataset-id", default=None, help="Hub id of the benchmark dataset (default: the report's gallery id)")
    export.add_argument("--dataset-revision", default=None, help="its revision, a commit SHA at best (default: the report's)")
    export.add_argument("--method", default=None, help="only this method")
    export.add_argument("--encoder", default=None, help="only this encoder")
    export.add_argument("--allow-demo", action="store_true", help="allow the demo encoder's results (tests only)")
    export.set_defaults(func=_cmd_export_results)

    board = sub.add_parser("leaderboard", help="rank methods across reports (Markdown and PNG)")
    board.add_argument("reports", nargs="+", help="report files, or folders searched for *.json")
    board.add_argument("--out", default=None, help="folder for leaderboard.md and the PNG figure(s); default: print Markdown")
    board.set_defaults(func=_cmd_leaderboard)
    return parser


#: Python arguments the CLI spells differently (booleans are negated flags or bare switches).
_SWITCHES = {
    ("check_leaks", "False"): "--no-leak-check",
    ("exclude_leaks", "True"): "--exclude-leaks",
    ("exclude_leaks", "False"): "leave out --exclude-leaks",
    ("trust_remote_code", "True"): "--trust-remote-code",
    ("ceilings", "False"): "--no-ceilings",
    ("cache", "False"): "--no-cache",
    ("progress", "False"): "--no-progress",
}
_RENAMED = {"gallery_config": "--config", "gallery_revision": "--revision", "methods": "--method", "clip_t_model": "--clip-t"}
_ARG_VALUE = re.compile(r"\b([a-z][a-z0-9_]*)=('([^']*)'|\"([^\"]*)\"|[A-Za-z0-9_.+-]+)")
_ARG_NAME = re.compile(r"\b([a-z][a-z0-9]*_[a-z0-9_]+)\b")
_CLI_HINT = re.compile(r" \(CLI: [^)]*\)| to load_gallery(?= to)")


def _flags(parser: argparse.ArgumentParser) -> dict[str, str]:
    """Python argument name -> the CLI's flag, from every sub-command's options."""
    flags: dict[str, str] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                for name, flag in _flags(sub).items():
                    flags.setdefault(name, flag)
        elif action.option_strings and action.dest not in ("help", "version"):
            flags.setdefault(action.dest, max(action.option_strings, key=len))
    return flags


def as_cli_message(message: str, parser: argparse.ArgumentParser | None = None) -> str:
    """An error message from the library, with Python arguments spelled as this CLI's flags.

    Example:
        >>> as_cli_message("pass on_invalid='skip' to score the rest; batch_size must be > 0")
        'pass --on-invalid skip to score the rest; --batch-size must be > 0'
    """
    flags = {**_flags(parser or build_parser()), **_RENAMED}

    def value(match: re.Match[str]) -> str:
        name, raw = match.group(1), match.group(2)
        plain = match.group(3) if match.group(3) is not None else match.group(4) if match.group(4) is not None else raw
        if (name, raw) in _SWITCHES:
            return _SWITCHES[(name, raw)]
        if name in flags and raw not in ("True", "False", "None"):
            return f"{flags[name]} {plain}"
        return match.group(0)

    text = _CLI_HINT.sub("", _ARG_VALUE.sub(value, message)).replace("pass leave out", "leave out")
    return _ARG_NAME.sub(lambda m: flags.get(m.group(1), m.group(1)) if m.group(1) in flags else m.group(0), text)


def _silence_progress_bars() -> None:
    """``--no-progress``: also the bars of datasets, huggingface_hub and transformers."""
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    os.environ["HF_DATASETS_DISABLE_PROGRESS_BARS"] = "1"
    if "datasets" in sys.modules:
        sys.modules["datasets"].disable_progress_bars()
    if "huggingface_hub" in sys.modules:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
    if "transformers" in sys.modules:
        sys.modules["transformers"].utils.logging.disable_progress_bar()


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``fp-rank`` console script."""
    from fp_rank.cpu_threads import prefer_passive_waiting

    prefer_passive_waiting()  # before torch loads: idle model threads must not spin on the decoding cores
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if getattr(args, "no_progress", False):
        _silence_progress_bars()
    try:
        return int(args.func(args) or 0)
    except FpRankError as exc:
        print(f"fp-rank: error: {as_cli_message(str(exc), parser)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("fp-rank: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
