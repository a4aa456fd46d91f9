"""Command line of the gallery builders: parses arguments, calls the public functions.

    python -m gallery_builders cub           --source CUB_200_2011/     --out galleries/cub
    python -m gallery_builders stanford-cars --source stanford-cars/    --out galleries/cars
    python -m gallery_builders wildlife-reid --source wildlifereid-10k/ --species "sea turtle" --out galleries/reid
    python -m gallery_builders synthetic     --out galleries/demo
    python -m gallery_builders validate galleries/cub
    python -m gallery_builders push galleries/cub --repo-id ORG/fp-rank-cub --tag v1.0

Errors caused by the input print one line on stderr and exit with status 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from fp_rank.errors import InputError


def _add_build_options(parser: argparse.ArgumentParser, *, source: str | None, seed: int | None) -> None:
    if source is not None:
        parser.add_argument("--source", required=True, help=source)
    parser.add_argument("--out", required=True, help="output folder (must not exist unless --overwrite)")
    if seed is not None:
        parser.add_argument("--seed", type=int, default=seed, help=f"selection seed (default {seed}, the reference)")
    if source is not None:
        parser.add_argument(
            "--skip-corrupt",
            action="store_true",
            help="leave unreadable images out and list them in the card instead of failing",
        )
    parser.add_argument("--overwrite", action="store_true", help="replace --out once the new gallery is complete")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m gallery_builders``."""
    parser = argparse.ArgumentParser(
        prog="python -m gallery_builders",
        description="Build, validate and publish Finer-Personalization Rank gallery datasets.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    cub = commands.add_parser("cub", help="CUB-200-2011 gallery (wren, tern, sparrow)")
    _add_build_options(cub, source="the extracted CUB_200_2011/ folder", seed=101)

    cars = commands.add_parser("stanford-cars", help="Stanford Cars gallery (15 models)")
    _add_build_options(
        cars, source="the downloaded Hub copy (Donghyun99/Stanford-Cars) or the devkit folder", seed=None
    )

    reid = commands.add_parser("wildlife-reid", help="WildlifeReID-10k gallery (one group per species)")
    _add_build_options(reid, source="the wildlifereid-10k/ folder holding metadata.csv", seed=42)
    reid.add_argument("--species", nargs="+", metavar="SPECIES", help="species to include (default: all eligible)")
    reid.add_argument("--datasets", nargs="+", metavar="DATASET", help="source datasets to include (default: all)")

    synthetic = commands.add_parser("synthetic", help="the synthetic demo gallery")
    _add_build_options(synthetic, source=None, seed=0)

    validate = commands.add_parser("validate", help="offline pre-flight check of a gallery folder")
    validate.add_argument("folder")

    push = commands.add_parser("push", help="validate, upload to the Hub and tag")
    push.add_argument("folder")
    push.add_argument("--repo-id", required=True, help="ORG/name of the Hub dataset repository")
    push.add_argument("--tag", required=True, help="tag for the upload commit, e.g. v1.0")
    push.add_argument("--token", default=None, help="Hub token (default: the saved one)")
    push.add_argument("--private", action="store_true", help="create the repository as private")
    return parser


def run(args: argparse.Namespace) -> str:
    """Execute a parsed command; return the line to print on success."""
    progress = not getattr(args, "no_progress", True)
    if args.command == "cub":
        from gallery_builders import cub

        out = cub.build(
            args.source, args.out, seed=args.seed, skip_corrupt=args.skip_corrupt,
            progress=progress, overwrite=args.overwrite,
        )
    elif args.command == "stanford-cars":
        from gallery_builders import stanford_cars

        out = stanford_cars.build(
            args.source, args.out, skip_corrupt=args.skip_corrupt, progress=progress, overwrite=args.overwrite
        )
    elif args.command == "wildlife-reid":
        from gallery_builders import wildlife_reid

        out = wildlife_reid.build(
            args.source, args.out, species=args.species, datasets=args.datasets, seed=args.seed,
            skip_corrupt=args.skip_corrupt, progress=progress, overwrite=args.overwrite,
        )
    elif args.command == "synthetic":
        from gallery_builders import synthetic

        out = synthetic.build(args.out, seed=args.seed, progress=progress, overwrite=args.overwrite)
    elif args.command == "validate":
        from gallery_builders.push import validate

        report = validate(args.folder)
        return f"{report.folder} is valid: configs {', '.join(report.configs)}"
    elif args.command == "push":
        from gallery_builders.push import push

        result = push(args.folder, args.repo_id, args.tag, token=args.token, private=args.private or None)
        return f"pushed {args.folder} to {result.repo_id} at {result.commit}, tagged {result.tag}"
    else:  # argparse only lets the commands above through
        raise InputError(f"unknown command {args.command!r}")
    return f"wrote {out}"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (0 success, 2 bad input)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s: %(message)s")
    try:
        message = run(args)
    except InputError as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    print(message)
    return 0


if __name__ == "__main__":
    sys.exit(main())
