"""Matching a run's identity labels to a gallery's identities: the one rule, for the library, the CLI and the Space.

A label takes the gallery's spelling when it equals one gallery identity exactly, or, failing
that, exactly one gallery identity after Unicode NFC normalisation (macOS writes file names in
NFD) and with surrounding whitespace removed (on both sides: a gallery identity may itself carry
spaces). Anything else is unknown; the messages list the closest identities.
"""

from __future__ import annotations

import difflib
import unicodedata
from collections.abc import Collection, Sequence


def _key(label: str) -> str:
    return unicodedata.normalize("NFC", label).strip()


class IdentityMatcher:
    """The matching rule over one gallery's identities.

    Example:
        >>> match = IdentityMatcher(["finch", "jay "])
        >>> match("finch"), match(" finch"), match("jay"), match("crow")
        ('finch', 'finch', 'jay ', None)
    """

    def __init__(self, known: Collection[str]) -> None:
        self.known = set(known)
        self._by_key: dict[str, list[str]] = {}
        for ident in self.known:
            self._by_key.setdefault(_key(ident), []).append(ident)

    def __call__(self, label: str) -> str | None:
        """The gallery's spelling of ``label``, or None when no identity (or more than one) matches."""
        if label in self.known:
            return label
        found = self._by_key.get(_key(label), [])
        return found[0] if len(found) == 1 else None

    def resolve(self, labels: Sequence[str]) -> tuple[list[str], int]:
        """Every label in the gallery's spelling where it matches (others unchanged), and how many changed."""
        out = [self(label) or label for label in labels]
        return out, sum(a != b for a, b in zip(out, labels))

    def close_matches(self, label: str, n: int = 3) -> list[str]:
        """The gallery identities most like ``label`` (for "did you mean")."""
        return difflib.get_close_matches(label, sorted(self.known), n=n, cutoff=0.5)

    def unknown_message(self, labels: Sequence[str], gallery: str) -> str | None:
        """A message naming the labels that match no identity, with close matches (None when all match).

        Args:
            labels: the labels to check.
            gallery: how the message names the gallery (``gallery 'ORG/NAME' config 'finch'``).
        """
        unknown = sorted({str(x) for x in labels if self(str(x)) is None})
        if not unknown:
            return None
        parts = []
        for label in unknown[:5]:
            close = self.close_matches(label)
            parts.append(f"{label!r}" + (f" (did you mean {', '.join(map(repr, close))}?)" if close else ""))
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        return (
            f"{len(unknown)} identity label(s) are not in {gallery}: {'; '.join(parts)}{more}. Labels must match "
            f"exactly; the gallery has {len(self.known)} identities, e.g. {sorted(self.known)[:5]}"
        )
