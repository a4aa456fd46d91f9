"""The sub-commands that take saved reports (compare, plan, plot, export-results, leaderboard) and
those that set things up (encoders, cache, install-metric, build-space)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from fp_rank.errors import InputError
from fp_rank.file_access import check_output, write_atomic


def compare(args: argparse.Namespace) -> int:
    from fp_rank.analysis import compare as paired_comparison
    from fp_rank.reporting.report import Report

    if args.out:
        check_output(args.out, "file", "--out", inputs=args.reports)
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
    result = paired_comparison(
        first, method_a, method_b, other=other, encoder=args.encoder, n_boot=args.bootstrap,
        n_permutations=args.permutations, seed=args.seed, interval=args.interval, allow_mismatch=args.allow_mismatch,
    )
    ci = result.ci
    shown_ci = f"[{ci.low:+.4f}, {ci.high:+.4f}] ({ci.confidence:.0%} CI)" if ci.high > ci.low else "(no interval: see note)"
    print(f"{method_a} - {method_b}: mAP difference {result.difference:+.4f} {shown_ci}, "
          f"{format_p(result.p_value)} ({'exact' if result.exact else 'Monte Carlo'} paired permutation test over "
          f"{result.n_shared_identities} shared identities)")
    if result.only_in_a or result.only_in_b:
        print(f"identities only in {method_a}: {len(result.only_in_a)}, only in {method_b}: {len(result.only_in_b)} (left out)")
    for note in result.warnings:
        print(f"note: {note}")
    for name, values in ((result.comparability or {}).get("allowed_differences") or {}).items():
        print(f"note: the reports differ in {name} ({' vs '.join(map(repr, values))}), allowed by --allow-mismatch")
    if args.out:
        write_atomic(args.out, json.dumps(result.to_dict(), indent=2))
        print(f"wrote {args.out}")
    return 0


def format_p(p: float) -> str:
    """A p-value as people read it: ``p < 1e-4`` below 0.0001, else four significant digits.

    Example:
        >>> format_p(9.999e-05), format_p(0.0312), format_p(1.0)
        ('p < 1e-4', 'p = 0.0312', 'p = 1')
    """
    return "p < 1e-4" if p < 1e-4 else f"p = {p:.4g}"


def plan(args: argparse.Namespace) -> int:
    from fp_rank.analysis import plan as plan_comparison
    from fp_rank.reporting.report import Report

    if args.out:
        check_output(args.out, "file", "--out", inputs=[args.report])
    plan = plan_comparison(
        Report.load(args.report), args.delta, power=args.power, alpha=args.alpha, methods=args.methods, encoder=args.encoder,
        identity_correlation=args.identity_correlation,
    )
    print(plan.summary())
    if args.out:
        write_atomic(args.out, json.dumps(plan.to_dict(), indent=2))
        print(f"wrote {args.out}")
    return 0


def plot(args: argparse.Namespace) -> int:
    from fp_rank.analysis import add_statistics
    from fp_rank.reporting.report import Report
    from fp_rank.views.plots import plot as write_figures

    check_output(args.out, "folder", "--out")
    report = Report.load(args.report)
    if not any(r.intervals for r in report.results) and args.bootstrap:
        add_statistics(report, n_boot=args.bootstrap, seed=args.seed)
    for path in write_figures(report, args.out):
        print(f"wrote {path}")
    return 0


def encoders(args: argparse.Namespace) -> int:
    from fp_rank.encoding.registry import REGISTRY

    for alias in sorted(REGISTRY):
        spec = REGISTRY[alias]
        print(f"{alias:<14} {spec.hub_id:<34} {spec.pooling:<15} {spec.description}")
    return 0


def cache(args: argparse.Namespace) -> int:
    from fp_rank.caching.judgements import JudgementCache
    from fp_rank.caching.store import EmbeddingCache

    cache = EmbeddingCache(args.cache_dir)
    judgements = JudgementCache(args.cache_dir)
    if args.action == "clear":
        print(f"removed {cache.clear()} cache entries from {cache.directory}")
        print(f"removed {judgements.clear()} judgements from {judgements.directory}")
    else:
        info = cache.info()
        print(f"{info['directory']}: {info['entries']} entries, {info['bytes'] / 1e6:.1f} MB")
        info = judgements.info()
        print(f"{info['directory']}: {info['entries']} judgements, {info['bytes'] / 1e6:.1f} MB")
    return 0


def install_metric(args: argparse.Namespace) -> int:
    from fp_rank.metric import install_evaluate_module

    path = install_evaluate_module()
    print(f"installed the evaluate module: evaluate.load('fp-rank') now resolves offline to {path}")
    return 0


def build_space(args: argparse.Namespace) -> int:
    from fp_rank.hub import space_build

    check_output(args.out, "folder", "OUT")
    repo_id = args.repo_id or Path(args.out).name
    build = space_build.build_space(args.out, repo_id=repo_id, datasets=args.dataset or (), requirement=args.requirement, overwrite=args.overwrite)
    print(f"wrote the Space for {repo_id} to {build.folder}: {', '.join(build.files)}")
    print(f"pre-flight offline: evaluate.load({build.load_call()!r})")
    if args.push:
        print(f"pushed: {space_build.push_space(build.folder, repo_id, private=args.private)}")
    return 0


def export_results(args: argparse.Namespace) -> int:
    from fp_rank.hub.results import write_eval_results
    from fp_rank.reporting.report import Report

    check_output(args.out, "folder", "--out")
    report = Report.load(args.report)
    paths = write_eval_results(
        report, args.out, dataset_id=args.dataset_id, dataset_revision=args.dataset_revision,
        method=args.method, encoder=args.encoder, allow_demo=args.allow_demo,
    )
    for path in paths:
        print(f"wrote {path}")
    return 0


def leaderboard(args: argparse.Namespace) -> int:
    from fp_rank.hub.leaderboard import build_leaderboard

    if args.out:
        check_output(args.out, "folder", "--out")
    board = build_leaderboard(args.reports, allow_mismatch=args.allow_mismatch)
    if args.out:
        for path in board.write(args.out):
            print(f"wrote {path}")
    else:
        print(board.to_markdown(), end="")
    for path, reason in board.ignored:
        print(f"left out {path}: {reason}", file=sys.stderr)
    return 0


def agreement(args: argparse.Namespace) -> int:
    from fp_rank.analysis.agreement import agreement as rating_agreement
    from fp_rank.analysis.agreement import check_settings, read_ratings
    from fp_rank.reporting.report import Report

    settings = check_settings(args.bootstrap, args.confidence, args.seed, names=("--bootstrap", "--confidence", "--seed"))
    for path, flag in ((args.out, "--out"), (args.markdown, "--markdown")):
        if path:
            check_output(path, "file", flag, inputs=[args.report, args.ratings])
    if args.out and args.markdown and Path(args.out).resolve() == Path(args.markdown).resolve():
        raise InputError(f"--out and --markdown both name {args.out!r}; name two files (the Markdown would overwrite "
                         "the JSON)")
    ratings = read_ratings(args.ratings)  # a bad row is refused before the report is read
    result = rating_agreement(Report.load(args.report), ratings, **settings)
    print(result.summary())
    if args.out:
        write_atomic(args.out, json.dumps(result.to_dict(), indent=2, allow_nan=False))
        print(f"wrote {args.out}")
    if args.markdown:
        write_atomic(args.markdown, result.to_markdown())
        print(f"wrote {args.markdown}")
    return 0
