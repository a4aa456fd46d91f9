"""The gallery sources ``python -m gallery_builders`` can build, one module each.

A source module (``gallery_builders.cub``...) reads one dataset in its own layout, hands its
images to :func:`fp_rank.galleries.build.writer.build_gallery`, and declares its sub-command in a
module attribute ``COMMAND`` (a :class:`BuilderCommand`). :data:`BUILDER_MODULES` lists those
modules; the command line builds its parser and dispatches from them. Adding a gallery source
is one new module plus one line in :data:`BUILDER_MODULES`.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fp_rank.galleries.schema import DEFAULT_SELECTION_SEED, SELECTIONS

#: The source modules, in ``--help`` order; each defines ``COMMAND``.
BUILDER_MODULES: tuple[str, ...] = (
    "gallery_builders.cub",
    "gallery_builders.stanford_cars",
    "gallery_builders.wildlife_reid",
    "gallery_builders.synthetic",
)


@dataclass(frozen=True)
class Option:
    """A command-line option of one source only, passed to its ``build`` under :attr:`dest`.

    Attributes:
        flag: The option (``--species``).
        help: Its help text.
        nargs: argparse ``nargs`` (``"+"`` for a list), or ``None`` for one value.
        metavar: Name of the value in ``--help``.
        switch: A flag without a value (``store_true``); ``build`` receives a bool.
    """

    flag: str
    help: str
    nargs: str | None = None
    metavar: str | None = None
    switch: bool = False

    @property
    def dest(self) -> str:
        """The keyword ``build`` receives the value under (``--species`` -> ``species``).

        Example:
            >>> Option("--skip-list", help="...").dest
            'skip_list'
        """
        return self.flag.lstrip("-").replace("-", "_")


@dataclass(frozen=True)
class BuilderCommand:
    """One sub-command of ``python -m gallery_builders``: how to build one gallery source.

    Every command takes ``--out``, ``--overwrite`` and ``--no-progress``; the fields below say
    which of the other options it takes. ``build`` is called with keywords only: ``out``,
    ``progress``, ``overwrite``, then ``source`` and ``skip_corrupt`` (with :attr:`source_help`),
    ``seed`` (with :attr:`default_seed`) and one keyword per entry of :attr:`options`.

    Attributes:
        name: The sub-command (``stanford-cars``).
        help: One line for ``--help``.
        build: The source's public build function; returns the output folder.
        source_help: What to pass as ``--source``; ``None`` for a source that reads no folder
            (then there is no ``--skip-corrupt`` either).
        default_seed: Default of ``--seed``; ``None`` when the selection uses no seed.
        options: The source's own options.
    """

    name: str
    help: str
    build: Callable[..., Path]
    source_help: str | None = None
    default_seed: int | None = None
    options: tuple[Option, ...] = ()

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Declare this command's options on its sub-parser."""
        if self.source_help is not None:
            parser.add_argument("--source", required=True, help=self.source_help)
        parser.add_argument("--out", required=True, help="output folder (must not exist unless --overwrite)")
        if self.default_seed is not None:
            parser.add_argument(
                "--seed",
                type=int,
                default=self.default_seed,
                help=f"selection seed (default {self.default_seed}, the reference)",
            )
        if self.source_help is not None:
            parser.add_argument(
                "--skip-corrupt",
                action="store_true",
                help="leave unreadable images out and list them in the card instead of failing",
            )
            parser.add_argument(
                "--follow-symlinks",
                action="store_true",
                help="read source images through symbolic links that lead out of --source (refused by default)",
            )
        parser.add_argument("--overwrite", action="store_true", help="replace --out once the new gallery is complete")
        parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
        variant = parser.add_argument_group("gallery-selection variant (the paper's ablation; default: the protocol's draw)")
        variant.add_argument("--selection", choices=SELECTIONS, default="random",
                             help="re-choose each identity's gallery from its gallery and holdout images: random (with "
                             "--selection-k) or kmeans (the image nearest each of K centroids of --selection-encoder's "
                             "embeddings)")
        variant.add_argument("--selection-k", type=int, default=None, metavar="K", help="gallery images per identity")
        variant.add_argument("--selection-seed", type=int, default=DEFAULT_SELECTION_SEED,
                             help=f"seed of the draw or of K-means (default {DEFAULT_SELECTION_SEED}, the authors')")
        variant.add_argument("--selection-encoder", default=None, metavar="ENC",
                             help="encoder of the kmeans selection: alias, Hub id or folder (ID@REVISION pins it)")
        for option in self.options:
            if option.switch:
                parser.add_argument(option.flag, action="store_true", help=option.help)
            else:
                parser.add_argument(option.flag, nargs=option.nargs, metavar=option.metavar, help=option.help)

    def build_arguments(self, args: argparse.Namespace) -> dict[str, Any]:
        """The keywords ``build`` is called with for the parsed ``args``."""
        kwargs: dict[str, Any] = {"out": args.out, "progress": not args.no_progress, "overwrite": args.overwrite}
        if self.source_help is not None:
            kwargs.update(source=args.source, skip_corrupt=args.skip_corrupt)
        if self.default_seed is not None:
            kwargs["seed"] = args.seed
        for option in self.options:
            kwargs[option.dest] = getattr(args, option.dest)
        variant = variant_from_arguments(args.selection, args.selection_k, args.selection_seed, args.selection_encoder,
                                         progress=not args.no_progress)
        if variant is not None:
            kwargs["variant"] = variant
        return kwargs


def variant_from_arguments(selection: str, k: int | None, seed: int, encoder: str | None, *,
                           progress: bool = True) -> Any:
    """The :class:`~fp_rank.galleries.build.variants.GalleryVariant` the ``--selection*`` flags ask for
    (None: the protocol's draw). A kmeans selection loads its encoder here, before any image is read.

    Raises:
        BuilderError: flags that do not go together, or an encoder that cannot be loaded.
    """
    from fp_rank.errors import BuilderError, FpRankError
    from fp_rank.galleries.build.variants import GalleryVariant

    if selection == "random" and k is None:
        if encoder is not None:
            raise BuilderError("--selection-encoder is for --selection kmeans")
        return None
    if k is None:
        raise BuilderError(f"--selection {selection} needs --selection-k K (gallery images per identity)")
    if selection == "random":
        if encoder is not None:
            raise BuilderError("--selection-encoder is for --selection kmeans")
        return GalleryVariant("random", k, seed)
    if encoder is None:
        raise BuilderError("--selection kmeans needs --selection-encoder ENC (the authors use miewid)")
    import fp_rank

    try:
        model = fp_rank.load_encoder(encoder)
    except FpRankError as exc:
        raise BuilderError(f"--selection-encoder {encoder}: {exc}") from None

    def embed(images: list[bytes]) -> Any:
        return model.encode(images, progress=False).embeddings

    return GalleryVariant("kmeans", k, seed, embed=embed, encoder=model.identity())


def builder_commands() -> dict[str, BuilderCommand]:
    """Import every module of :data:`BUILDER_MODULES`; return their commands by name, in order.

    Raises:
        ValueError: If a module has no ``COMMAND``, or two modules declare the same name.
    """
    commands: dict[str, BuilderCommand] = {}
    for module_name in BUILDER_MODULES:
        command = getattr(importlib.import_module(module_name), "COMMAND", None)
        if not isinstance(command, BuilderCommand):
            raise ValueError(f"gallery source module {module_name} defines no COMMAND = BuilderCommand(...)")
        if command.name in commands:
            raise ValueError(f"two gallery source modules declare the command {command.name!r}")
        commands[command.name] = command
    return commands
