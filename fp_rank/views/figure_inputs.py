"""What every report figure shares: matplotlib imported on first use, inputs checked before anything is
drawn (names, numbers, intervals, the output path and its format) and the written file."""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fp_rank.errors import InputError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: Resolution of written raster figures.
DPI = 150

_INSTALL_HINT = 'plotting needs matplotlib: pip install "fp-rank[plots]"'


def _figure_class() -> type[Figure]:
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError(_INSTALL_HINT) from exc
    return Figure


def _check_path(path: str | os.PathLike[str]) -> tuple[Path, str]:
    """Return the output path and its format (PNG when it has no suffix)."""
    try:
        out = Path(path)
    except TypeError:
        raise InputError(f"path must be a str or os.PathLike; got {path!r}") from None
    file_format = out.suffix[1:].lower() if out.suffix else "png"
    try:
        from matplotlib.backend_bases import FigureCanvasBase
    except ImportError as exc:
        raise ImportError(_INSTALL_HINT) from exc
    supported = FigureCanvasBase.get_supported_filetypes()
    if file_format not in supported:
        raise InputError(
            f"path {str(out)!r} has suffix {out.suffix!r}, which matplotlib cannot write; "
            f"use .png (the default) or one of {sorted('.' + s for s in supported)}"
        )
    return out, file_format


def _save(figure: Figure, out: Path, file_format: str) -> Path:
    import io

    from fp_rank.file_access import write_atomic

    buffer = io.BytesIO()
    try:
        figure.savefig(buffer, format=file_format, dpi=DPI, bbox_inches="tight")
    finally:
        figure.clear()  # the figure was never registered with pyplot: nothing else to close
    return write_atomic(out, buffer.getvalue())  # replaces a link standing at ``out``, never writes through it


def _labels(name: str, labels: Any) -> list[str]:
    if isinstance(labels, (str, bytes)) or not isinstance(labels, Sequence):
        raise InputError(f"{name} must be a list of names; got {type(labels).__name__}")
    if not labels:
        raise InputError(f"{name} is empty; nothing to plot")
    return [str(label) for label in labels]


def _numbers(name: str, values: Any, length: int, length_of: str) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a list of numbers; got {values!r:.80}") from None
    if array.ndim != 1 or array.size != length:
        raise InputError(
            f"{name} must hold one number per entry of {length_of} ({length}); got shape "
            f"{array.shape}"
        )
    if not np.all(np.isfinite(array)):
        raise InputError(f"{name} must hold finite numbers; got {array.tolist()}")
    return array


def _optional_number(name: str, value: Any) -> float | None:
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not math.isfinite(float(value))
    ):
        raise InputError(f"{name} must be a finite number or None; got {value!r}")
    return float(value)


def _interval(centre: np.ndarray, lows: Any, highs: Any, prefix: str) -> np.ndarray:
    """Error bar lengths (2, n) from interval ends; checks ``low <= high``."""
    low = _numbers(f"{prefix}lows", lows, centre.size, "methods")
    high = _numbers(f"{prefix}highs", highs, centre.size, "methods")
    if np.any(low > high):
        bad = int(np.flatnonzero(low > high)[0])
        raise InputError(
            f"{prefix}lows[{bad}] = {low[bad]} exceeds {prefix}highs[{bad}] = {high[bad]}"
        )
    # A percentile interval may, in rare skewed cases, not contain the estimate: draw no bar
    # below (or above) the estimate rather than a negative length.
    return np.vstack([np.maximum(centre - low, 0.0), np.maximum(high - centre, 0.0)])


#: Colours of methods in figures (colour-blind-safe order, Okabe-Ito and Tableau tones).
METHOD_PALETTE = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#7c3aed", "#65a30d",
                  "#64748b", "#b45309")


def method_colours(methods: Sequence[str]) -> dict[str, str]:
    """A colour per method that depends on its name, not on its position, so runs agree.

    Each method takes the palette colour its name hashes to, or the next free one when another
    method of the same figure holds it (methods taken in sorted order, so the result does not
    depend on the order given).

    Example:
        >>> a = method_colours(["faithful", "drifting"])
        >>> b = method_colours(["drifting", "faithful", "detail-loss"])
        >>> a["faithful"] == b["faithful"] and a["drifting"] == b["drifting"]
        True
    """
    import hashlib

    taken: dict[str, str] = {}
    used: set[int] = set()
    for name in sorted(dict.fromkeys(methods)):
        slot = int(hashlib.sha256(name.encode("utf-8")).hexdigest()[:8], 16) % len(METHOD_PALETTE)
        for step in range(len(METHOD_PALETTE)):
            if (slot + step) % len(METHOD_PALETTE) not in used or len(used) >= len(METHOD_PALETTE):
                slot = (slot + step) % len(METHOD_PALETTE)
                break
        used.add(slot)
        taken[name] = METHOD_PALETTE[slot]
    return taken
