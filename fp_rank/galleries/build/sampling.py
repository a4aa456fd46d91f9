"""The random draw of the reference code, reproduced without pandas.

The reference code samples with pandas: ``DataFrame.sample(n=k, random_state=rs)`` draws
``rs.choice(len(frame), size=k, replace=False)`` (a prefix of a legacy NumPy permutation) and
takes the rows at those positions, in that order. ``DataFrame.groupby(col).sample(...)`` does the
same once per group, groups in sorted key order, sharing one ``RandomState``. NumPy keeps the
legacy ``RandomState`` stream fixed across versions, so the draw is reproducible everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import numpy as np

from fp_rank.errors import BuilderError

T = TypeVar("T")


def legacy_state(seed: int) -> np.random.RandomState:
    """A legacy NumPy ``RandomState`` seeded like ``pandas`` does for ``random_state=seed``."""
    return np.random.RandomState(seed)


def sample_like_pandas(state: np.random.RandomState, items: Sequence[T], k: int, *, what: str) -> list[T]:
    """Draw ``k`` of ``items`` without replacement, exactly as ``DataFrame.sample(n=k)`` does.

    Args:
        state: The shared random state (advanced by the draw).
        items: The population, in frame order.
        k: How many to draw.
        what: Names the population in the error message.

    Returns:
        The drawn items, in draw order.

    Raises:
        BuilderError: If ``k`` exceeds the population.

    Example:
        >>> sample_like_pandas(legacy_state(0), ["a", "b", "c"], 2, what="letters")
        ['c', 'b']
    """
    if k > len(items):
        raise BuilderError(f"{what}: cannot draw {k} images from {len(items)}")
    positions = state.choice(len(items), size=k, replace=False)
    return [items[int(p)] for p in positions]
