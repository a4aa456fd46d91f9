"""The per-identity figure: mAP of each identity's generated images, one bar per method.

:func:`figure_map_per_identity` takes plain lists and numbers like the figures of
:mod:`fp_rank.views.figures`; :func:`identity_figure` reads a report's own fields into it
(``MethodResult.map_per_identity`` for the bars, the query rows' ``chance_ap`` for the floors).
The figure is built without pyplot, so no global figure state is created or kept.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from fp_rank.errors import InputError
from fp_rank.views.figure_inputs import _figure_class, _labels, method_colours

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from fp_rank.reporting.report import Report


def figure_map_per_identity(
    identities: Sequence[str],
    methods: Sequence[str],
    maps: Any,
    *,
    chance: Sequence[float] | None = None,
    names: Mapping[str, str] | None = None,
    title: str = "mAP per identity",
) -> Figure:
    """Horizontal bars of mAP per identity, one bar per method, with each identity's chance floor.

    Args:
        identities: identity ids, one row of bars each, top to bottom.
        methods: method names, one bar colour each.
        maps: ``(len(methods), len(identities))`` mAP values in 0..1; NaN where a method has no
            scored image of that identity (its bar is drawn empty).
        chance: chance-level mAP per identity, drawn as a dashed tick (NaN: none).
        names: identity -> label on the axis (default: the identity).
        title: figure title.

    Returns:
        The figure (one axes; ``axes.patches`` holds one bar per method and identity).

    Raises:
        ImportError: when matplotlib is not installed.
        InputError: on empty names, ``maps`` or ``chance`` of the wrong shape, or values outside
            0..1.

    Example:
        >>> fig = figure_map_per_identity(["a", "b"], ["m"], [[0.9, float("nan")]], chance=[0.2, 0.3])
        >>> len(fig.axes[0].patches)
        2
    """
    idents = _labels("identities", identities)
    labels = _labels("methods", methods)
    values = _fractions_or_nan("maps", maps, (len(labels), len(idents)))
    floors = _fractions_or_nan("chance", [math.nan] * len(idents) if chance is None else chance, (len(idents),))
    names = names or {}

    # narrow and large-lettered: the Space shows it about 330 px wide on a phone, where a 7-inch
    # figure's 8-point text shrank to 5 px
    height = max(2.8, 0.5 * len(idents) * len(labels) ** 0.5 + 1.9)
    figure = _figure_class()(figsize=(4.8, height), dpi=100, layout="constrained")  # keeps the legend inside
    axes = figure.add_subplot(1, 1, 1)
    bar_h = 0.8 / len(labels)
    colours = method_colours(labels)  # by name: the same method keeps its colour from run to run
    for m_idx, method in enumerate(labels):
        ys = [i - 0.4 + bar_h * (m_idx + 0.5) for i in range(len(idents))]
        axes.barh(ys, values[m_idx], height=bar_h * 0.9, color=colours[method], label=method)
        for y, x in zip(ys, values[m_idx]):
            if math.isfinite(x):
                axes.text(min(x + 0.01, 0.88), y, f"{x:.2f}", va="center", fontsize=10)
    drawn = False
    for i, floor in enumerate(floors):
        if math.isfinite(floor):
            axes.plot([floor, floor], [i - 0.45, i + 0.45], color="#111827", linestyle="--", linewidth=1.2,
                      label=None if drawn else "chance floor")
            drawn = True
    axes.set_yticks(range(len(idents)))
    axes.set_yticklabels([_short(names.get(i, i)) for i in idents], fontsize=11)
    axes.tick_params(axis="x", labelsize=10)
    axes.invert_yaxis()
    axes.set_xlim(0, 1)
    axes.set_xlabel("mAP of the identity's generated images", fontsize=10)
    if title:
        axes.set_title(title, fontsize=11)
    # below the axes, so it never covers a bar
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=2, fontsize=9, frameon=False)
    axes.grid(axis="x", alpha=0.3)
    return figure


def _short(label: str, limit: int = 22) -> str:
    """An axis label cut to ``limit`` characters (the full name is in the tables)."""
    return label if len(label) <= limit else label[: limit - 1] + "…"


def _fractions_or_nan(name: str, values: Any, shape: tuple[int, ...]) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{name} must hold numbers; got {values!r:.80}") from None
    if array.shape != shape:
        raise InputError(f"{name} must have shape {shape}; got {array.shape}")
    if not np.all(np.isnan(array) | ((array >= 0.0) & (array <= 1.0))):
        raise InputError(f"{name} must hold values in 0..1 (or NaN for none); got {array.tolist()}")
    return array


def identity_figure(report: Report, *, names: Mapping[str, str] | None = None) -> Figure | None:
    """:func:`figure_map_per_identity` of a report: each result's ``map_per_identity``.

    One bar per result (labelled by its method, and its encoder when the report has several);
    the chance floor of an identity is the mean ``chance_ap`` of its scored query rows.

    Args:
        report: a report from :func:`fp_rank.evaluate`.
        names: identity -> label on the axis.

    Returns:
        The figure, or None when no identity has a scored query.

    Raises:
        ImportError: when matplotlib is not installed.
    """
    results = sorted(report.results, key=lambda r: (r.method, r.encoder))
    idents = sorted({ident for r in results for ident in r.map_per_identity})
    if not idents:
        return None
    several = len({r.encoder for r in results}) > 1
    floors: dict[str, list[float]] = {}
    for row in report.queries:
        ap, floor = row.get("ap"), row.get("chance_ap")
        if ap is not None and floor is not None and math.isfinite(float(ap)):
            floors.setdefault(str(row["identity"]), []).append(float(floor))
    return figure_map_per_identity(
        idents,
        [f"{r.method} · {r.encoder}" if several else r.method for r in results],
        [[r.map_per_identity.get(ident, math.nan) for ident in idents] for r in results],
        chance=[float(np.mean(floors[i])) if i in floors else math.nan for i in idents],
        names=names,
    )
