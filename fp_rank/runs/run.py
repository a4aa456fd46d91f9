"""The generated images of a run: one :class:`GeneratedImage` each, held by a :class:`Run`.

This is the one model of a run. The library builds it from ``evaluate``'s lists
(:meth:`Run.from_arguments`), the CLI from a folder or manifest (:func:`fp_rank.runs.read_run`),
the ``evaluate`` module from ``compute()``'s columns and the Space from its uploads; every
per-image argument is checked here, once, before anything is loaded.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, overload

import numpy as np

from fp_rank.errors import InputError, check_label
from fp_rank.images.decode import describe_source

#: The method label of generated images given without one.
DEFAULT_METHOD = "generated"

#: File suffixes read as images when a run is discovered in folders.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")


@dataclass(frozen=True)
class GeneratedImage:
    """One generated image and what is known of it.

    Attributes:
        source: the image: a path, bytes, a PIL image, an array or a ``{'bytes', 'path'}`` dict.
        identity: the gallery identity it should show.
        method: the method that generated it.
        prompt: its prompt (None when unknown).
        seed: its generation seed (None when unknown).
        conditioning: the real image a zero-shot method was conditioned on: an image source, an
            int (a row of the gallery's reference split), or None (the pairwise baseline then
            uses the identity's reference images).
        file: how rows and messages name it (its path, else ``item #i``).
        line: where a manifest declared it (CSV: 2 is the first row under the header), else None.
    """

    source: Any
    identity: str
    method: str = DEFAULT_METHOD
    prompt: str | None = None
    seed: int | None = None
    conditioning: Any = None
    file: str = ""
    line: int | None = None


@dataclass(frozen=True)
class PerImage:
    """A per-image keyword of ``fp_rank.evaluate`` and the :class:`GeneratedImage` field it fills."""

    keyword: str
    field: str
    annotation: str
    help: str


#: ``fp_rank.evaluate``'s per-image keywords, declared once (signature, docs and the evaluate module).
PER_IMAGE: tuple[PerImage, ...] = (
    PerImage("methods", "method", "Sequence[str] | str | None", "method label per image (or one string for all); "
             f"default {DEFAULT_METHOD!r}. Several methods in one call share the gallery's encoding"),
    PerImage("prompts", "prompt", "Sequence[str | None] | None", "prompt per image (recorded; CLIP-T scores it)"),
    PerImage("seeds", "seed", "Sequence[int | None] | None", "generation seed per image (recorded)"),
    PerImage("files", "file", "Sequence[str] | None", "name per image for rows and messages (default: its path, or "
             "'item #i')"),
    PerImage("conditioning", "conditioning", "Sequence[Any] | None", "per image, the real image a zero-shot method "
             "was conditioned on (an image, or an int row of the gallery's reference split), or None; the pairwise "
             "baseline is then the cosine to it, else the mean cosine to the identity's reference images"),
)


@dataclass(frozen=True)
class Run(Sequence[GeneratedImage]):
    """The generated images of a run, in order, with what discovery found beside them.

    Attributes:
        images: the images.
        layout: how the run was read: ``"manifest"``, ``"<identity>/"``, ``"<method>/<identity>/"``
            or ``"arguments"``.
        not_images: files found beside the images that are not images (left out, listed).
    """

    images: tuple[GeneratedImage, ...]
    layout: str = "arguments"
    not_images: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        # labels reach terminals, Markdown, CSV and YAML: a control character in one is refused here, once
        for i, image in enumerate(self.images):
            where = image.file or f"item #{i}"
            check_label("identity label", image.identity, where)
            check_label("method label", image.method, where)
            if isinstance(image.prompt, str) and not image.prompt.strip():
                raise InputError(
                    f"the prompt of {where} is blank; give its prompt, or None when it is not known (a blank prompt "
                    "would be scored by CLIP-T as if it were one)"
                )

    @overload
    def __getitem__(self, i: int) -> GeneratedImage: ...

    @overload
    def __getitem__(self, i: slice) -> Sequence[GeneratedImage]: ...

    def __getitem__(self, i: Any) -> Any:
        return self.images[i]

    def __len__(self) -> int:
        return len(self.images)

    def __iter__(self) -> Iterator[GeneratedImage]:
        return iter(self.images)

    # columns, for the stages that work on arrays
    @property
    def sources(self) -> list[Any]:
        return [g.source for g in self.images]

    @property
    def identities(self) -> list[str]:
        return [g.identity for g in self.images]

    @property
    def methods(self) -> list[str]:
        return [g.method for g in self.images]

    @property
    def prompts(self) -> list[str | None]:
        return [g.prompt for g in self.images]

    @property
    def seeds(self) -> list[int | None]:
        return [g.seed for g in self.images]

    @property
    def conditioning(self) -> list[Any]:
        return [g.conditioning for g in self.images]

    @property
    def files(self) -> list[str]:
        return [g.file for g in self.images]

    def with_identities(self, identities: Sequence[str]) -> Run:
        """The same run with each image's identity label replaced (e.g. by the gallery's spelling)."""
        return replace(self, images=tuple(replace(g, identity=i) for g, i in zip(self.images, identities)))

    def count(self, mask: np.ndarray) -> dict[str, int]:
        """method -> how many images ``mask`` selects (every method of the run, zeros included)."""
        out = dict.fromkeys(self.methods, 0)
        for i in np.flatnonzero(mask):
            out[self.images[i].method] += 1
        return out

    def describe(self) -> list[str]:
        """What the run holds, as lines for a person: images per method and identity, files left out.

        Example:
            >>> run = Run(tuple(GeneratedImage(f, i, "m", file=f) for f, i in (("a/1.png", "a"), ("a/2.png", "a"),
            ...                                                                   ("b/1.png", "b"))),
            ...           layout="<identity>/", not_images=("a/notes.txt",))
            >>> print("\\n".join(run.describe()))
            found 3 image(s) (layout <identity>/): 1 method(s), 2 identities
              m: 3 image(s): a 2, b 1
            skipped 1 file(s) that are not images (.png, .jpg, .jpeg, .webp, .bmp, .gif, .tif, .tiff): a/notes.txt
        """
        per: dict[str, dict[str, int]] = {}
        for g in self.images:
            per.setdefault(g.method, {}).setdefault(g.identity, 0)
            per[g.method][g.identity] += 1
        lines = [
            f"found {len(self)} image(s) (layout {self.layout or '?'}): {len(per)} method(s), "
            f"{len(set(self.identities))} identities"
        ]
        for method, counts in per.items():
            if len(counts) > 1 and len(set(counts.values())) == 1:
                lines.append(f"  {method}: {sum(counts.values())} image(s), {len(counts)} identities x {next(iter(counts.values()))}")
                continue
            shown = ", ".join(f"{ident} {n}" for ident, n in list(counts.items())[:12])
            more = f", ... ({len(counts) - 12} more identities)" if len(counts) > 12 else ""
            lines.append(f"  {method}: {sum(counts.values())} image(s): {shown}{more}")
        if self.not_images:
            listed = ", ".join(self.not_images[:10]) + (f", ... ({len(self.not_images) - 10} more)" if len(self.not_images) > 10 else "")
            lines.append(f"skipped {len(self.not_images)} file(s) that are not images ({', '.join(IMAGE_SUFFIXES)}): {listed}")
        return lines

    @classmethod
    def from_arguments(
        cls, generated: Any, identities: Any, *, methods: Any = None, prompts: Any = None, seeds: Any = None,
        files: Any = None, conditioning: Any = None,
    ) -> Run:
        """A run from ``fp_rank.evaluate``'s lists, every argument checked first.

        Args:
            generated: the image sources (a sized sequence, or a 4-D ``(N, H, W, C)`` array).
            identities: one label per image, or one string for all.
            methods, prompts, seeds, files, conditioning: see :data:`PER_IMAGE`.

        Raises:
            InputError: the first argument that is not acceptable, named with the value received.

        Example:
            >>> run = Run.from_arguments(["a.png", "b.png"], "finch", methods="m", seeds=[1, None])
            >>> [(g.identity, g.method, g.seed, g.file) for g in run]
            [('finch', 'm', 1, 'a.png'), ('finch', 'm', None, 'b.png')]
        """
        from fp_rank.runs.arguments import check_per_image

        generated = positional(generated)
        n = check_per_image(generated, identities, methods=methods, prompts=prompts, seeds=seeds, files=files,
                            conditioning=conditioning)
        names = [str(f) for f in positional(files)] if files is not None else [
            describe_source(x, i) for i, x in enumerate(generated)
        ]
        labels = [identities] * n if isinstance(identities, str) else [str(x) for x in positional(identities)]
        columns = {
            "method": [str(m) for m in _broadcast(methods, n, DEFAULT_METHOD)],
            "prompt": _broadcast(prompts, n, None),
            "seed": _broadcast(seeds, n, None),
            "conditioning": [None] * n if conditioning is None else list(positional(conditioning)),
        }
        images = tuple(
            GeneratedImage(generated[i], labels[i], file=names[i], **{k: v[i] for k, v in columns.items()})
            for i in range(n)
        )
        return cls(images)


def _broadcast(values: Any, n: int, default: Any) -> list[Any]:
    if values is None:
        return [default] * n
    if isinstance(values, (str, int, np.integer)) and not isinstance(values, bool):
        return [values] * n
    return list(positional(values))


def positional(values: Any) -> Any:
    """A sequence indexable by position: pandas Series by ``tolist()``, a 4-D image batch as a list."""
    if hasattr(values, "iloc") and hasattr(values, "tolist"):
        return values.tolist()
    if isinstance(values, np.ndarray) and values.ndim == 4:
        return list(values)
    return values
