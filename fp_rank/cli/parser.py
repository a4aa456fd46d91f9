"""The argument parser of ``fp-rank``: one sub-command per public job, each calling the library.

``fp-rank evaluate``'s option flags come from the option declaration
(:mod:`fp_rank.cli.options`); the other sub-commands' few arguments are written here.
"""

from __future__ import annotations

import argparse

from fp_rank.cli import commands, scoring, training
from fp_rank.cli.options import add_option_flags
from fp_rank.version import PROTOCOL_VERSION, __version__

_BOOTSTRAP_HELP = (
    "confidence intervals and diagnostics: 0 turns them off; the default interval is analytic "
    "(identity-clustered Student t), N is the replicate count of the bootstrap option"
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``fp-rank``."""
    parser = argparse.ArgumentParser(
        prog="fp-rank",
        description="Finer-Personalization Rank: score identity preservation of generated images by retrieval.",
    )
    parser.add_argument("--version", action="version", version=f"fp-rank {__version__} (protocol {PROTOCOL_VERSION})")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", required=True)
    _scoring(sub)
    _reports(sub)
    _setup(sub)
    return parser


def _scoring(sub: argparse._SubParsersAction) -> None:
    demo = sub.add_parser("demo", help="score the built-in synthetic benchmark offline")
    demo.add_argument("--seed", type=int, default=0, help="seed of the synthetic world (default 0)")
    demo.add_argument("--out", help="write report.json/queries.csv/summary.md to this folder (or a .json file)")
    demo.add_argument("--no-cache", action="store_true", help="do not read or write the embedding cache")
    demo.add_argument("--no-progress", action="store_true", help="hide progress bars (ours, datasets' and transformers')")
    demo.add_argument("--export", metavar="DIR", help="also write the generated images as DIR/<method>/<identity>/NN.png "
                      "with DIR/manifest.csv, for fp-rank evaluate")
    demo.add_argument("--bootstrap", type=int, default=1000, help=_BOOTSTRAP_HELP)
    demo.set_defaults(func=scoring.demo)

    ev = sub.add_parser("evaluate", help="score a folder or manifest of generated images against a gallery")
    ev.add_argument("--gallery", required=True, help="gallery folder, Hub dataset id (org/name), or 'demo' for the "
                    "synthetic demo gallery ('demo:SEED' for another seed)")
    ev.add_argument("--generated", required=True, help="<identity>/*.png, <method>/<identity>/*.png, or a CSV/JSONL "
                    "manifest (file, identity[, method, prompt, seed, conditioning])")
    ev.add_argument("--method", default=None, help="method name for the <identity>/*.png layout")
    ev.add_argument("--bootstrap", type=int, default=1000, help=_BOOTSTRAP_HELP)
    ev.add_argument("--seed", type=int, default=0, help="seed of the bootstrap")
    ev.add_argument("--out", help="report .json file, or a folder for report.json/queries.csv/summary.md")
    add_option_flags(ev)
    ev.set_defaults(func=scoring.evaluate)

    ab = sub.add_parser("ablate", help="score one run against several gallery variants of the same identities "
                        "(random vs kmeans galleries): mAP per variant, shifts, ranking changes")
    ab.add_argument("--generated", required=True, help="the run: a folder or manifest, as for evaluate")
    ab.add_argument("--galleries", required=True, nargs="+", metavar="GALLERY", help="two or more gallery variants "
                    "(folders or Hub ids), the first is the baseline")
    ab.add_argument("--names", nargs="+", metavar="NAME", help="a name per variant (default: folder names)")
    ab.add_argument("--method", default=None, help="method name for the <identity>/*.png layout")
    ab.add_argument("--bootstrap", type=int, default=2000, help="replicates of the ranking interval (default 2000)")
    ab.add_argument("--seed", type=int, default=0, help="seed of the intervals")
    ab.add_argument("--out", help="write the ablation as JSON")
    ab.add_argument("--markdown", help="write the ablation table as Markdown")
    add_option_flags(ab)
    ab.set_defaults(func=scoring.ablate)


def _reports(sub: argparse._SubParsersAction) -> None:
    cmp_ = sub.add_parser("compare", help="paired comparison of two methods (one report with --methods, or two reports)")
    cmp_.add_argument("reports", nargs="+", help="report.json (or two report files)")
    cmp_.add_argument("--methods", nargs=2, metavar=("A", "B"), help="the two methods to compare (A - B)")
    cmp_.add_argument("--encoder", default=None, help="the encoder whose scores to compare (needed when the report has several)")
    cmp_.add_argument("--interval", default="t", choices=["t", "bootstrap"],
                      help="interval of the difference: paired Student t (default) or the hierarchical bootstrap")
    cmp_.add_argument("--bootstrap", type=int, default=1000, help="replicates of --interval bootstrap")
    cmp_.add_argument("--permutations", type=int, default=10000, help="sign-flip permutations for the p-value (exact "
                      "when fewer sign vectors exist; default 10000)")
    cmp_.add_argument("--seed", type=int, default=0, help="seed of the bootstrap and permutations")
    cmp_.add_argument("--out", help="write the comparison as JSON")
    _allow_mismatch(cmp_)
    cmp_.set_defaults(func=commands.compare)

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
    plan.set_defaults(func=commands.plan)

    plot = sub.add_parser("plot", help="write PNG figures of a report")
    plot.add_argument("report", help="a report.json written by fp-rank evaluate or demo")
    plot.add_argument("--out", required=True, help="folder for the figures")
    plot.add_argument("--bootstrap", type=int, default=1000, help="replicates if the report has no CIs yet")
    plot.add_argument("--seed", type=int, default=0, help="seed of the bootstrap")
    plot.set_defaults(func=commands.plot)

    export = sub.add_parser("export-results", help="write a report's mAP as Hub .eval_results/*.yaml entries, per method")
    export.add_argument("report", help="report.json")
    export.add_argument("--out", required=True, help="folder: <method>/.eval_results/<dataset>_<encoder>.yaml")
    export.add_argument("--dataset-id", default=None, help="Hub id of the benchmark dataset (default: the report's gallery id)")
    export.add_argument("--dataset-revision", default=None, help="its revision, a commit SHA at best (default: the report's)")
    export.add_argument("--method", default=None, help="only this method")
    export.add_argument("--encoder", default=None, help="only this encoder")
    export.add_argument("--allow-demo", action="store_true", help="allow the demo encoder's results (tests only)")
    export.set_defaults(func=commands.export_results)

    board = sub.add_parser("leaderboard", help="rank methods across reports (Markdown and PNG)")
    board.add_argument("reports", nargs="+", help="report files, or folders searched for *.json")
    board.add_argument("--out", default=None, help="folder for leaderboard.md and the PNG figure(s); default: print Markdown")
    _allow_mismatch(board)
    board.set_defaults(func=commands.leaderboard)

    agree = sub.add_parser("agreement", help="how a report's scores agree with people's ratings of its images (CSV)")
    agree.add_argument("report", help="report.json")
    agree.add_argument("ratings", help="ratings CSV: file (or index), rating[, rater] per image; or file_a, file_b, "
                       "preferred (a, b or tie)[, rater] per pair")
    agree.add_argument("--bootstrap", type=int, default=2000,
                       help="bootstrap replicates of the intervals, 100 to 1,000,000 (default 2000)")
    agree.add_argument("--confidence", type=float, default=0.95,
                       help="coverage of the intervals, strictly between 0 and 1 (default 0.95)")
    agree.add_argument("--seed", type=int, default=0, help="seed of the bootstrap, an integer >= 0 (default 0)")
    agree.add_argument("--out", metavar="FILE.json", help="write the agreement as JSON")
    agree.add_argument("--markdown", metavar="FILE.md", help="write the table as Markdown")
    agree.set_defaults(func=commands.agreement)


def _allow_mismatch(parser: argparse.ArgumentParser) -> None:
    from fp_rank.reporting.comparability import KEY_FIELDS

    parser.add_argument(
        "--allow-mismatch", nargs="+", default=None, metavar="FIELD", choices=KEY_FIELDS,
        help="compare reports that differ in these comparability fields (recorded in the output); "
        f"fields: {', '.join(KEY_FIELDS)}",
    )


def _setup(sub: argparse._SubParsersAction) -> None:
    enc = sub.add_parser("encoders", help="list the registered encoder aliases")
    enc.set_defaults(func=commands.encoders)

    cache = sub.add_parser("cache", help="show or clear the embedding cache")
    cache.add_argument("action", choices=["info", "clear"], help="info: size of the cache; clear: remove its entries")
    cache.add_argument("--cache-dir", default=None, help="embedding cache folder (default $FP_RANK_CACHE, else $HF_HOME/fp_rank)")
    cache.set_defaults(func=commands.cache)

    training.add_parser(sub)

    inst = sub.add_parser("install-metric", help="make evaluate.load('fp-rank') work offline")
    inst.set_defaults(func=commands.install_metric)

    space = sub.add_parser("build-space", help="assemble the metric Space as the Hub serves it (evaluate.load('ORG/fp-rank'))")
    space.add_argument("out", help="Space folder; name it after the repository (.../fp-rank) so evaluate.load(OUT) finds the module")
    space.add_argument("--repo-id", default=None, help="NAME or ORG/NAME of the Space (default: the folder's name); --push needs ORG/NAME")
    space.add_argument("--dataset", action="append", help="Hub id of a published gallery, listed in the card (repeatable)")
    space.add_argument("--requirement", default=None, help="fp-rank line of requirements.txt (default: fp-rank[app]==<this version>)")
    space.add_argument("--overwrite", action="store_true", help="replace an earlier Space build in OUT")
    space.add_argument("--push", action="store_true", help="create the Space (Gradio SDK) and upload the folder (network, token)")
    space.add_argument("--private", action="store_true", help="with --push: create the Space private")
    space.set_defaults(func=commands.build_space)
