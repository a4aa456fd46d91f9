"""Report figures: mAP with intervals, pairwise similarity versus mAP, drift confusion matrix.

Every ``figure_*`` function takes plain lists and numbers and returns a
``matplotlib.figure.Figure`` built without pyplot, so no global figure state is created or kept.
Every ``plot_*`` function draws the same figure, writes it to the path given (PNG unless the
suffix names another format matplotlib writes, such as ``.pdf`` or ``.svg``) and returns that
path. matplotlib is an optional dependency (``pip install "fp-rank[plots]"``) imported only when a
figure is drawn.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fp_rank.errors import InputError
from fp_rank.views.figure_inputs import (
    _check_path,
    _figure_class,
    _interval,
    _labels,
    _numbers,
    _optional_number,
    _save,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

def figure_map_ci(
    methods: Sequence[str],
    maps: Sequence[float],
    lows: Sequence[float],
    highs: Sequence[float],
    *,
    floor: float | None = None,
    ceiling: float | None = None,
    title: str = "",
) -> Figure:
    """Bar chart of mAP per method with confidence-interval error bars.

    Bars are drawn in the order given. An optional chance floor and real-image ceiling are drawn
    as horizontal dashed and dotted lines.

    Args:
        methods: method names, one bar each.
        maps: mAP per method (fractions in 0..1).
        lows: lower interval end per method.
        highs: upper interval end per method.
        floor: chance-level mAP, drawn as a dashed line when given.
        ceiling: real-image mAP, drawn as a dotted line when given.
        title: figure title.

    Returns:
        The figure (one axes; ``axes.patches`` holds one bar per method).

    Raises:
        ImportError: when matplotlib is not installed.
        InputError: on empty or mismatched inputs, non-finite numbers or ``low > high``.

    Example:
        >>> fig = figure_map_ci(["A", "B"], [0.8, 0.5], [0.7, 0.4], [0.9, 0.6], floor=0.2)
        >>> len(fig.axes[0].patches)
        2
    """
    names = _labels("methods", methods)
    centre = _numbers("maps", maps, len(names), "methods")
    errors = _interval(centre, lows, highs, "")
    floor = _optional_number("floor", floor)
    ceiling = _optional_number("ceiling", ceiling)

    figure = _figure_class()(figsize=(max(4.0, 0.8 * len(names) + 1.5), 3.6))
    axes = figure.add_subplot()
    positions = np.arange(len(names))
    axes.bar(positions, centre, width=0.6, color="#4c72b0", zorder=2)
    axes.errorbar(
        positions, centre, yerr=errors, fmt="none", ecolor="black", capsize=4, zorder=3
    )
    if floor is not None:
        axes.axhline(floor, color="grey", linestyle="--", linewidth=1, label="chance floor")
    if ceiling is not None:
        axes.axhline(ceiling, color="grey", linestyle=":", linewidth=1, label="real holdout images")
    if floor is not None or ceiling is not None:
        axes.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small", frameon=False)
    if len(names) > 4:
        axes.set_xticks(positions, names, rotation=30, ha="right")
    else:
        axes.set_xticks(positions, names)
    axes.set_ylabel("mAP")
    top = max(1.0, float(np.max(centre + errors[1])), ceiling or 0.0)
    axes.set_ylim(0.0, top * 1.02)
    axes.grid(axis="y", alpha=0.3, zorder=0)
    if title:
        axes.set_title(title)
    return figure


def _common_window(x_extent: tuple[float, float], y_extent: tuple[float, float]) -> tuple[float, float, float]:
    """One span for both axes (room for labels included) and the two lower limits.

    The span covers the wider of the two extents, so a spread of 0.04 and one of 0.20 are drawn
    at their true relative lengths. The mAP window starts at 0 or above and, where it fits, ends at 1 or below.
    """
    span = max(x_extent[1] - x_extent[0], y_extent[1] - y_extent[0], 0.05) * 1.3
    x_low = (x_extent[0] + x_extent[1] - span) / 2
    y_low = (y_extent[0] + y_extent[1] - span) / 2
    if span <= 1.0 and y_extent[1] <= 1.0:
        y_low = min(y_low, 1.0 - span)
    if y_extent[0] >= 0.0:
        y_low = max(y_low, 0.0)  # no room is spent below a mAP of 0
    return span, x_low, y_low


def _label_heights(y: np.ndarray, gap: float) -> np.ndarray:
    """Label heights at least ``gap`` apart, each as close to its point as that allows."""
    order = np.argsort(y, kind="stable")
    placed = y.astype(np.float64).copy()
    for previous, current in zip(order[:-1], order[1:]):
        placed[current] = max(placed[current], placed[previous] + gap)
    # centre the stack again on the points it came from
    shift = float(np.mean(placed - y))
    return placed - shift / 2


def figure_pairwise_vs_map(
    methods: Sequence[str],
    pairwise: Sequence[float],
    maps: Sequence[float],
    *,
    map_lows: Sequence[float] | None = None,
    map_highs: Sequence[float] | None = None,
    floor: float | None = None,
    title: str = "",
) -> Figure:
    """Scatter of pairwise similarity (x) against mAP (y), one labelled point per method.

    The "semantic versus identity" picture: methods far to the right but low have images that
    look like the subject overall yet lose the details that identify it. Both axes are drawn at
    the same scale (one unit is as long on x as on y, over the same span), so how far apart the
    methods lie on each axis can be compared by eye; the spread across methods on each axis is
    drawn as a bracket and written out.

    Args:
        methods: method names, one point each.
        pairwise: pairwise cosine baseline per method (x).
        maps: mAP per method (y).
        map_lows: lower mAP interval end per method; vertical error bars when given with
            ``map_highs``.
        map_highs: upper mAP interval end per method.
        floor: chance-level mAP, drawn as a horizontal dashed line when given.
        title: figure title.

    Returns:
        The figure (one axes; ``axes.collections[-1]`` holds one offset per method; the axes
        limits have equal spans).

    Raises:
        ImportError: when matplotlib is not installed.
        InputError: on empty or mismatched inputs, non-finite numbers, only one of
            ``map_lows`` / ``map_highs`` given, or ``low > high``.

    Example:
        >>> fig = figure_pairwise_vs_map(["A", "B", "C"], [0.7, 0.8, 0.6], [0.5, 0.3, 0.4])
        >>> len(fig.axes[0].collections[-1].get_offsets())
        3
        >>> x0, x1 = fig.axes[0].get_xlim(); y0, y1 = fig.axes[0].get_ylim()
        >>> bool(abs((x1 - x0) - (y1 - y0)) < 1e-9)
        True
    """
    names = _labels("methods", methods)
    x = _numbers("pairwise", pairwise, len(names), "methods")
    y = _numbers("maps", maps, len(names), "methods")
    if (map_lows is None) != (map_highs is None):
        raise InputError("map_lows and map_highs must be given together (or both left None)")
    errors = None if map_lows is None else _interval(y, map_lows, map_highs, "map_")
    floor = _optional_number("floor", floor)

    y_values = [y] if errors is None else [y - errors[0], y + errors[1]]
    y_lo = min(float(np.min(v)) for v in y_values)
    y_hi = max(float(np.max(v)) for v in y_values)
    if floor is not None:
        y_lo, y_hi = min(y_lo, floor), max(y_hi, floor)
    span, x_low, y_low = _common_window((float(x.min()), float(x.max())), (y_lo, y_hi))

    figure = _figure_class()(figsize=(5.6, 5.6))
    axes = figure.add_subplot()
    if errors is not None:
        axes.errorbar(x, y, yerr=errors, fmt="none", ecolor="grey", capsize=3, zorder=1)
    # Spread brackets along the bottom (pairwise) and the left (mAP) edges.
    x_spread, y_spread = float(x.max() - x.min()), float(y.max() - y.min())
    bracket = {"color": "#4c72b0", "linewidth": 2.5, "solid_capstyle": "butt", "zorder": 1}
    edge_x, edge_y = x_low + 0.04 * span, y_low + 0.05 * span
    axes.plot([x.min(), x.max()], [edge_y, edge_y], **bracket)
    axes.plot([edge_x, edge_x], [y.min(), y.max()], **bracket)
    axes.annotate(
        f"pairwise spread {x_spread:.3f}", (float(x.max()), edge_y), xytext=(6, 0),
        textcoords="offset points", va="center", fontsize="small", color="#4c72b0",
    )
    axes.annotate(
        f"mAP spread {y_spread:.3f}", (edge_x, float(y.max())), xytext=(0, 6),
        textcoords="offset points", ha="left", fontsize="small", color="#4c72b0",
    )
    points = axes.scatter(x, y, s=40, color="#c44e52", zorder=3)
    heights = _label_heights(y, 0.045 * span)
    for name, x_value, y_value, label_y in zip(names, x, y, heights):
        axes.annotate(
            name, (x_value, y_value), xytext=(x_value + 0.03 * span, label_y), textcoords="data",
            va="center", fontsize="small",
            arrowprops={"arrowstyle": "-", "color": "grey", "linewidth": 0.6, "shrinkA": 0, "shrinkB": 3},
        )
    if floor is not None:
        axes.axhline(floor, color="grey", linestyle="--", linewidth=1, label="chance floor")
        axes.legend(loc="upper left", fontsize="small", frameon=False)
    axes.set_xlim(x_low, x_low + span)
    axes.set_ylim(y_low, y_low + span)
    axes.set_aspect("equal", adjustable="box")
    axes.set_xlabel("pairwise cosine similarity (generated vs reference)")
    axes.set_ylabel("mAP (identity retrieval)")
    axes.text(
        1.0, -0.16, "both axes at the same scale", transform=axes.transAxes, ha="right",
        fontsize="x-small", color="grey",
    )
    axes.grid(alpha=0.3)
    if title:
        axes.set_title(title)
    del points  # the last collection: one offset per method
    return figure


def figure_confusion(
    matrix: Any,
    labels: Sequence[str],
    *,
    title: str = "",
    normalize: bool = False,
) -> Figure:
    """Heatmap of a drift confusion matrix (rows: query identity, columns: top-1 identity).

    Every label gets its row and column, also an identity that was never queried (its row is
    empty and its tick says "(no queries)") or never retrieved first (an empty column). Counts
    are shown as whole numbers, on the cells and on the colour bar.

    Args:
        matrix: square counts, as returned by :func:`fp_rank.stats.confusion_matrix`.
        labels: identity names for rows and columns.
        title: figure title.
        normalize: show each row as shares of its queries instead of counts.

    Returns:
        The figure (first axes holds one image of shape ``(len(labels), len(labels))``).

    Raises:
        ImportError: when matplotlib is not installed.
        InputError: when ``matrix`` is not square, does not match ``labels``, or holds negative
            or non-finite numbers.

    Example:
        >>> fig = figure_confusion([[3, 1], [0, 4]], ["a", "b"])
        >>> fig.axes[0].images[0].get_array().shape
        (2, 2)
    """
    names = _labels("labels", labels)
    try:
        counts = np.asarray(matrix, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"matrix must be a square array of counts; got {matrix!r:.80}") from None
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1]:
        raise InputError(f"matrix must be square; got shape {counts.shape}")
    if counts.shape[0] != len(names):
        raise InputError(
            f"matrix is {counts.shape[0]}x{counts.shape[1]} but labels has {len(names)} names"
        )
    if not np.all(np.isfinite(counts)) or np.any(counts < 0):
        raise InputError("matrix must hold finite, non-negative counts")
    shown = counts
    if normalize:
        totals = counts.sum(axis=1, keepdims=True)
        shown = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)

    n = len(names)
    side = min(12.0, max(4.0, 0.45 * n + 2.0))
    figure = _figure_class()(figsize=(side + 1.0, side))
    axes = figure.add_subplot()
    peak = float(shown.max()) if shown.size else 0.0
    top = max(peak, 1.0) if not normalize else 1.0
    image = axes.imshow(shown, cmap="Blues", vmin=0.0, vmax=top, interpolation="nearest")
    label = "share of the row's queries" if normalize else "queries (count)"
    bar = figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04, label=label)
    if not normalize:
        from matplotlib.ticker import MaxNLocator

        bar.locator = MaxNLocator(integer=True)  # counts are whole numbers: no 0.5 ticks
        bar.update_ticks()
    positions = np.arange(n)
    axes.set_xticks(positions, names, rotation=90, fontsize="small")
    queried = counts.sum(axis=1) > 0
    axes.set_yticks(
        positions, [name if queried[i] else f"{name} (no queries)" for i, name in enumerate(names)],
        fontsize="small",
    )
    axes.set_xlabel("identity of the top-1 gallery image")
    axes.set_ylabel("query identity")
    if n <= 25:
        for row in range(n):
            for col in range(n):
                value = shown[row, col]
                if value == 0:
                    continue
                text = f"{value:.2f}" if normalize else f"{int(round(value))}"
                colour = "white" if value > 0.6 * peak else "black"
                axes.text(
                    col, row, text, ha="center", va="center", fontsize="x-small", color=colour
                )
    if title:
        axes.set_title(title)
    return figure


def plot_map_ci(
    methods: Sequence[str],
    maps: Sequence[float],
    lows: Sequence[float],
    highs: Sequence[float],
    path: str | os.PathLike[str],
    *,
    floor: float | None = None,
    ceiling: float | None = None,
    title: str = "",
) -> Path:
    """Write :func:`figure_map_ci` to ``path`` (PNG by default) and return the path.

    Raises:
        ImportError: when matplotlib is not installed.
        InputError: as :func:`figure_map_ci`, or when the suffix of ``path`` is not a format
            matplotlib writes.
    """
    out, file_format = _check_path(path)
    figure = figure_map_ci(methods, maps, lows, highs, floor=floor, ceiling=ceiling, title=title)
    return _save(figure, out, file_format)


def plot_pairwise_vs_map(
    methods: Sequence[str],
    pairwise: Sequence[float],
    maps: Sequence[float],
    path: str | os.PathLike[str],
    *,
    map_lows: Sequence[float] | None = None,
    map_highs: Sequence[float] | None = None,
    floor: float | None = None,
    title: str = "",
) -> Path:
    """Write :func:`figure_pairwise_vs_map` to ``path`` (PNG by default) and return the path.

    Raises:
        ImportError: when matplotlib is not installed.
        InputError: as :func:`figure_pairwise_vs_map`, or when the suffix of ``path`` is not a
            format matplotlib writes.
    """
    out, file_format = _check_path(path)
    figure = figure_pairwise_vs_map(
        methods, pairwise, maps, map_lows=map_lows, map_highs=map_highs, floor=floor, title=title
    )
    return _save(figure, out, file_format)


def plot_confusion(
    matrix: Any,
    labels: Sequence[str],
    path: str | os.PathLike[str],
    *,
    title: str = "",
    normalize: bool = False,
) -> Path:
    """Write :func:`figure_confusion` to ``path`` (PNG by default) and return the path.

    Raises:
        ImportError: when matplotlib is not installed.
        InputError: as :func:`figure_confusion`, or when the suffix of ``path`` is not a format
            matplotlib writes.
    """
    out, file_format = _check_path(path)
    figure = figure_confusion(matrix, labels, title=title, normalize=normalize)
    return _save(figure, out, file_format)
