"""fp-rank 0.1's run type, kept until 0.3 for code that used :func:`~fp_rank.runs.read_generated`.

:class:`GeneratedRun` is the mutable record of lists that 0.1 returned (``files``, ``identities``,
``methods``, ``prompts``, ``seeds``, ``conditioning``; ``add`` and ``as_kwargs``). New code reads a
:class:`~fp_rank.runs.run.Run` with :func:`~fp_rank.runs.read_run` and passes it to ``evaluate``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fp_rank.runs.run import GeneratedImage, Run


@dataclass
class GeneratedRun:
    """Deprecated: the generated images of a run as parallel lists (fp-rank 0.1).

    Example:
        >>> run = GeneratedRun()
        >>> run.add("a/1.png", "a", "m"); run.add("b/1.png", "b", "m")
        >>> sorted(run.as_kwargs())[:3], len(run)
        (['conditioning', 'files', 'generated'], 2)
    """

    files: list[str] = field(default_factory=list)
    identities: list[str] = field(default_factory=list)
    methods: list[str] = field(default_factory=list)
    prompts: list[str | None] = field(default_factory=list)
    seeds: list[int | None] = field(default_factory=list)
    conditioning: list[str | int | None] = field(default_factory=list)
    layout: str = "arguments"
    not_images: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, run: Run) -> GeneratedRun:
        """The lists of a :class:`~fp_rank.runs.run.Run`."""
        out = cls(layout=run.layout, not_images=list(run.not_images))
        for g in run:
            out.add(g.file or str(g.source), g.identity, g.method, g.prompt, g.seed, g.conditioning)
        return out

    def __len__(self) -> int:
        return len(self.files)

    def add(self, file: str, identity: str, method: str, prompt: str | None = None, seed: int | None = None,
            conditioning: str | int | None = None) -> None:
        """Append one image and its labels."""
        self.files.append(file)
        self.identities.append(identity)
        self.methods.append(method)
        self.prompts.append(prompt)
        self.seeds.append(seed)
        self.conditioning.append(conditioning)

    def as_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for :func:`fp_rank.evaluate`."""
        return {
            "generated": self.files, "identities": self.identities, "methods": self.methods, "prompts": self.prompts,
            "seeds": self.seeds, "files": self.files,
            "conditioning": self.conditioning if any(c is not None for c in self.conditioning) else None,
        }

    def as_run(self) -> Run:
        """The same images as a :class:`~fp_rank.runs.run.Run`."""
        return Run(tuple(GeneratedImage(f, i, m, p, s, c, f) for f, i, m, p, s, c in zip(
            self.files, self.identities, self.methods, self.prompts, self.seeds, self.conditioning)),
            layout=self.layout, not_images=tuple(self.not_images))

    def describe(self) -> list[str]:
        """What discovery found, as lines for a person (see :meth:`Run.describe`)."""
        return self.as_run().describe()
