"""Command line of the gallery builders: parses arguments, calls the public functions.

    python -m gallery_builders cub           --source CUB_200_2011/     --out galleries/cub
    python -m gallery_builders stanford-cars --source stanford-cars/    --out galleries/cars
    python -m gallery_builders wildlife-reid --source wildlifereid-10k/ --species "sea turtle" --out galleries/reid
    python -m gallery_builders synthetic     --out galleries/demo
    python -m gallery_builders validate galleries/cub
    python -m gallery_builders push galleries/cub --repo-id ORG/fp-rank-cub --tag v1.0

The build commands are the sources listed in :mod:`gallery_builders.registry`. Errors caused by
the input print one line on stderr and exit with status 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from fp_rank.errors import InputError
from gallery_builders.registry import builder_commands


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m gallery_builders``."""
    parser = argparse.ArgumentParser(
        prog="python -m gallery_builders",
        description="Build, validate and publish Finer-Personalization Rank gallery datasets.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for builder in builder_commands().values():
        builder.add_arguments(commands.add_parser(builder.name, help=builder.help))

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
    if args.command == "validate":
        from gallery_builders.push import validate

        report = validate(args.folder)
        return f"{report.folder} is valid: configs {', '.join(report.configs)}"
    if args.command == "push":
        from gallery_builders.push import push

        result = push(args.folder, args.repo_id, args.tag, token=args.token, private=args.private or None)
        return f"pushed {args.folder} to {result.repo_id} at {result.commit}, tagged {result.tag}"
    from fp_rank.galleries.build.sources import following_symlinks

    builder = builder_commands()[args.command]
    with following_symlinks(getattr(args, "follow_symlinks", False)):
        return f"wrote {builder.build(**builder.build_arguments(args))}"


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
