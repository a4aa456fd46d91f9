"""Progress bars (tqdm), created only when they are wanted and there is something to count."""

from __future__ import annotations

from typing import Any


def progress_bar(total: int, desc: str, enabled: bool) -> Any:
    """A tqdm bar over ``total`` images, or None when disabled or empty."""
    if not enabled or total == 0:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="img", leave=False)
