"""The repository's own files that fp-rank ships: the Space's ``app.py`` and the ``evaluate`` module.

They are written once, at the repository root, where Hugging Face Spaces and
``evaluate.load("<checkout>/finer_personalization_rank.py")`` use them. A wheel carries those
very files in the package ``fp_rank.shipped`` (``pyproject.toml`` maps it to the root); an
editable install reads them from the checkout. No copy of them is kept anywhere else.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from fp_rank.errors import InputError

#: The repository's files that fp-rank ships.
SHIPPED = ("app.py", "finer_personalization_rank.py")


def repository_file(name: str) -> Path:
    """The path of one shipped file, in the installed package or the checkout.

    Raises:
        InputError: ``name`` is not a shipped file, or neither copy exists (a broken install).
    """
    if name not in SHIPPED:
        raise InputError(f"{name!r} is not a file fp-rank ships; shipped: {list(SHIPPED)}")
    try:
        installed = resources.files("fp_rank.shipped").joinpath(name)
        if installed.is_file():
            return Path(str(installed))
    except (ModuleNotFoundError, TypeError):  # pragma: no cover - the namespace package is absent
        pass
    checkout = Path(__file__).resolve().parents[1] / name
    if checkout.is_file():
        return checkout
    raise InputError(f"fp-rank's {name} is missing from this install; reinstall fp-rank")
