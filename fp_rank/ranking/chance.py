"""The chance floor: the exact expected AP of a uniformly random ranking, in O(1) memory."""

from __future__ import annotations

from typing import Any

import numpy as np

from fp_rank.errors import InputError


def chance_average_precision(n_relevant: Any, n_gallery: Any) -> Any:
    """Exact expected AP of a uniformly random ranking.

    ``E[AP] = (H_N + (R - 1) / (N - 1) * (N - H_N)) / N`` with ``H_N`` the N-th harmonic number
    (and 1 when ``N == 1``). Works elementwise on arrays.

    Args:
        n_relevant: number of relevant gallery items ``R`` (>= 1), scalar or array.
        n_gallery: gallery size ``N`` (>= R), scalar or array.

    Returns:
        A float, or a float64 array of the broadcast shape.

    Raises:
        InputError: when ``R < 1`` or ``N < R``.

    Example:
        >>> round(chance_average_precision(1, 2), 6)
        0.75
        >>> chance_average_precision(3, 3)
        1.0
    """
    r = _count_array(n_relevant, "n_relevant")
    n = _count_array(n_gallery, "n_gallery")
    if np.any(r < 1) or np.any(n < r):
        raise InputError(
            f"chance_average_precision needs 1 <= n_relevant <= n_gallery, got n_relevant={n_relevant!r}, "
            f"n_gallery={n_gallery!r}"
        )
    r, n = np.broadcast_arrays(r, n)
    h_n = harmonic_number(n)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = (h_n + np.where(n > 1, (r - 1) / np.maximum(n - 1, 1), 0.0) * (n - h_n)) / n
    out = np.where(n == 1, 1.0, out)
    if out.ndim == 0:
        return float(out)
    return out


def _count_array(value: Any, name: str) -> np.ndarray:
    """Counts as float64, refusing anything that is not a finite whole number."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a whole number (or an array of them), got {value!r}") from None
    if not np.all(np.isfinite(arr)) or np.any(arr != np.floor(arr)):
        raise InputError(f"{name} must be a whole number (or an array of them), got {value!r}")
    return arr


#: Largest N whose harmonic number comes from the exact cumulative table; beyond it, digamma.
_HARMONIC_TABLE_MAX = 1 << 16


def harmonic_number(n: Any) -> np.ndarray:
    """``H_n = 1 + 1/2 + ... + 1/n`` elementwise (``H_0 = 0``), in O(1) memory for any n.

    Up to :data:`_HARMONIC_TABLE_MAX` it sums the terms; beyond, ``H_n = digamma(n + 1) + gamma``
    (relative error below 1e-15), so a gallery of 2**40 items needs no table.

    Example:
        >>> float(harmonic_number(3))
        1.8333333333333333
        >>> bool(abs(harmonic_number(2**40) - (40 * np.log(2) + np.euler_gamma)) < 1e-9)
        True
    """
    from scipy.special import digamma

    n = np.asarray(n, dtype=np.float64)
    small = n <= _HARMONIC_TABLE_MAX
    out = np.asarray(digamma(np.where(small, 1.0, n) + 1.0) + np.euler_gamma, dtype=np.float64)
    if small.any():
        table = _harmonic_table(int(n[small].max()) if n.ndim else int(n))
        out = np.where(small, table[np.where(small, n, 0).astype(np.int64)], out)
    return out


def _harmonic_table(n: int) -> np.ndarray:
    """``table[k] = H_k`` for ``k = 0..n`` (``H_0 = 0``), float64."""
    table = np.zeros(n + 1, dtype=np.float64)
    if n:
        table[1:] = np.cumsum(1.0 / np.arange(1, n + 1, dtype=np.float64))
    return table
