"""Report figures render, count their elements and leave no global matplotlib state."""

from __future__ import annotations

import sys

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

from fp_rank.errors import InputError  # noqa: E402
from fp_rank.views.figures import (  # noqa: E402
    figure_confusion,
    figure_map_ci,
    figure_pairwise_vs_map,
    plot_confusion,
    plot_map_ci,
    plot_pairwise_vs_map,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
METHODS = ["DreamBooth", "IP-Adapter", "IP-Adapter Plus", "OminiControl", "FLUX Kontext"]
MAPS = [0.61, 0.42, 0.47, 0.33, 0.55]
LOWS = [0.55, 0.35, 0.41, 0.28, 0.50]
HIGHS = [0.67, 0.49, 0.53, 0.39, 0.60]
PAIRWISE = [0.71, 0.78, 0.80, 0.66, 0.74]


def _open_pyplot_figures() -> list[int]:
    import matplotlib.pyplot as plt

    return plt.get_fignums()


def _check_png(path, min_bytes=3000):
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert len(data) > min_bytes


def test_map_ci_elements():
    fig = figure_map_ci(METHODS, MAPS, LOWS, HIGHS, floor=0.2, ceiling=0.9, title="cub-wren")
    (axes,) = fig.axes
    assert len(axes.patches) == len(METHODS)
    heights = [bar.get_height() for bar in axes.patches]
    assert heights == pytest.approx(MAPS)
    errorbars = [c for c in axes.containers if type(c).__name__ == "ErrorbarContainer"]
    assert len(errorbars) == 1
    (segments,) = [col.get_segments() for col in errorbars[0].lines[2]]
    assert len(segments) == len(METHODS)
    # Each error bar spans [low, high].
    spans = np.array(sorted((s[:, 1].min(), s[:, 1].max()) for s in segments))
    np.testing.assert_allclose(spans, sorted(zip(LOWS, HIGHS)), atol=1e-12)
    dashed = [line for line in axes.lines if line.get_linestyle() == "--"]
    dotted = [line for line in axes.lines if line.get_linestyle() == ":"]
    assert len(dashed) == 1 and dashed[0].get_ydata()[0] == pytest.approx(0.2)
    assert len(dotted) == 1 and dotted[0].get_ydata()[0] == pytest.approx(0.9)
    assert [t.get_text() for t in axes.get_xticklabels()] == METHODS
    assert axes.get_title() == "cub-wren"


def test_map_ci_without_floor_or_ceiling_has_no_reference_lines():
    fig = figure_map_ci(["A"], [0.5], [0.4], [0.6])
    assert len(fig.axes[0].patches) == 1
    assert [line for line in fig.axes[0].lines if line.get_linestyle() in ("--", ":")] == []
    assert fig.axes[0].get_legend() is None


def test_map_ci_estimate_outside_interval_draws_no_negative_bar():
    fig = figure_map_ci(["A"], [0.5], [0.52], [0.6])
    assert len(fig.axes[0].patches) == 1


def test_pairwise_vs_map_elements():
    fig = figure_pairwise_vs_map(
        METHODS, PAIRWISE, MAPS, map_lows=LOWS, map_highs=HIGHS, floor=0.2, title="semantic"
    )
    axes = fig.axes[0]
    (points,) = axes.collections[-1:]
    offsets = np.asarray(points.get_offsets())
    assert offsets.shape == (len(METHODS), 2)
    assert offsets[:, 0].tolist() == pytest.approx(PAIRWISE)
    assert offsets[:, 1].tolist() == pytest.approx(MAPS)
    texts = [t.get_text() for t in axes.texts]
    assert sorted(t for t in texts if t in METHODS) == sorted(METHODS)
    errorbars = [c for c in axes.containers if type(c).__name__ == "ErrorbarContainer"]
    assert len(errorbars) == 1 and len(errorbars[0].lines[2][0].get_segments()) == len(METHODS)
    dashed = [line for line in axes.lines if line.get_linestyle() == "--"]
    assert len(dashed) == 1 and dashed[0].get_ydata()[0] == pytest.approx(0.2)


def test_pairwise_vs_map_draws_both_axes_at_the_same_scale():
    # A pairwise spread of 0.04 beside a mAP spread of 0.20 must look five times shorter.
    pairwise, maps = [0.72, 0.726, 0.76], [0.277, 0.288, 0.480]
    fig = figure_pairwise_vs_map(["drifting", "detail-loss", "faithful"], pairwise, maps, floor=0.257)
    axes = fig.axes[0]
    (x0, x1), (y0, y1) = axes.get_xlim(), axes.get_ylim()
    assert x1 - x0 == pytest.approx(y1 - y0)
    assert x1 - x0 >= 0.20  # wide enough for the mAP spread, so the 0.04 one is not stretched
    assert x0 <= min(pairwise) and max(pairwise) <= x1 and y0 <= 0.257 and max(maps) <= y1
    assert axes.get_aspect() == 1.0  # one unit is as long on x as on y
    texts = [t.get_text() for t in axes.texts]
    assert "pairwise spread 0.040" in texts and "mAP spread 0.203" in texts


def test_pairwise_vs_map_keeps_close_labels_apart():
    fig = figure_pairwise_vs_map(["a", "b"], [0.70, 0.701], [0.30, 0.301])
    labels = [t for t in fig.axes[0].texts if t.get_text() in ("a", "b")]
    heights = sorted(t.get_position()[1] for t in labels)
    span = np.diff(fig.axes[0].get_ylim())[0]
    assert heights[1] - heights[0] >= 0.04 * span


def test_pairwise_vs_map_keeps_the_map_window_inside_zero_to_one():
    fig = figure_pairwise_vs_map(["a", "b"], [0.1, 0.9], [0.02, 0.05])
    (y0, y1), (x0, x1) = fig.axes[0].get_ylim(), fig.axes[0].get_xlim()
    assert y0 == pytest.approx(0.0) and y1 - y0 == pytest.approx(x1 - x0)


def test_pairwise_vs_map_without_intervals():
    fig = figure_pairwise_vs_map(["A", "B"], [0.7, 0.8], [0.4, 0.3])
    axes = fig.axes[0]
    assert len(axes.collections) == 1
    assert len(axes.collections[0].get_offsets()) == 2
    assert len(fig.axes) == 1
    assert not [c for c in axes.containers if type(c).__name__ == "ErrorbarContainer"]


def test_confusion_elements():
    labels = ["wren_a", "wren_b", "wren_c", "wren_d"]
    matrix = np.array([[5, 1, 0, 0], [2, 3, 1, 0], [0, 0, 6, 0], [1, 1, 1, 3]])
    fig = figure_confusion(matrix, labels, title="DreamBooth")
    axes = fig.axes[0]
    (image,) = axes.images
    assert image.get_array().shape == (4, 4)
    assert np.asarray(image.get_array()).tolist() == matrix.tolist()
    assert [t.get_text() for t in axes.get_xticklabels()] == labels
    assert [t.get_text() for t in axes.get_yticklabels()] == labels
    assert len(axes.texts) == int(np.count_nonzero(matrix))  # one count per non-empty cell
    assert len(fig.axes) == 2  # heatmap and colour bar


def test_confusion_colour_bar_counts_are_whole_numbers():
    fig = figure_confusion([[1, 0, 0], [0, 1, 0], [0, 0, 0]], ["a", "b", "c"])
    bar = fig.axes[1]
    ticks = [t for t in bar.get_yticks() if 0 <= t <= 1]
    assert ticks == [0.0, 1.0]  # no 0.2, 0.4, ... for a count
    assert fig.axes[0].images[0].get_clim() == (0.0, 1.0)
    rows = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert rows == ["a", "b", "c (no queries)"]
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["a", "b", "c"]


def test_confusion_normalized_rows():
    fig = figure_confusion([[1, 3], [0, 0]], ["a", "b"], normalize=True)
    shown = np.asarray(fig.axes[0].images[0].get_array())
    assert shown.tolist() == [[0.25, 0.75], [0.0, 0.0]]


def test_plot_functions_write_pngs_and_leak_no_figures(tmp_path):
    before = _open_pyplot_figures()
    written = [
        plot_map_ci(METHODS, MAPS, LOWS, HIGHS, tmp_path / "map.png", floor=0.2),
        plot_pairwise_vs_map(METHODS, PAIRWISE, MAPS, str(tmp_path / "sub" / "scatter.png")),
        plot_confusion(np.eye(6, dtype=int) * 4, list("abcdef"), tmp_path / "confusion"),
    ]
    assert written == [
        tmp_path / "map.png",
        tmp_path / "sub" / "scatter.png",
        tmp_path / "confusion",
    ]
    for path in written:
        assert path.exists()
        _check_png(path)
    assert _open_pyplot_figures() == before


def test_other_formats_follow_the_suffix(tmp_path):
    path = plot_map_ci(["A"], [0.5], [0.4], [0.6], tmp_path / "map.pdf")
    assert path.read_bytes()[:4] == b"%PDF"


def test_unknown_suffix_is_refused_before_drawing(tmp_path):
    with pytest.raises(InputError, match="cannot write"):
        plot_map_ci(["A"], [0.5], [0.4], [0.6], tmp_path / "map.docx")
    assert not (tmp_path / "map.docx").exists()


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: figure_map_ci([], [], [], []), "methods is empty"),
        (lambda: figure_map_ci("AB", [0.1, 0.2], [0.0, 0.1], [0.2, 0.3]), "methods must be a"),
        (lambda: figure_map_ci(["A", "B"], [0.1], [0.0], [0.2]), "maps must hold one number"),
        (lambda: figure_map_ci(["A"], [float("nan")], [0.0], [0.2]), "maps must hold finite"),
        (lambda: figure_map_ci(["A"], [0.5], [0.6], [0.4]), r"lows\[0\] = 0.6 exceeds"),
        (lambda: figure_map_ci(["A"], [0.5], [0.4], [0.6], floor="low"), "floor must be"),
        (lambda: figure_pairwise_vs_map(["A"], [0.5], [0.4], map_lows=[0.3]), "given together"),
        (lambda: figure_pairwise_vs_map(["A"], [0.5, 0.1], [0.4]), "pairwise must hold one"),
        (lambda: figure_confusion([[1, 2]], ["a"]), "matrix must be square"),
        (lambda: figure_confusion([[1, 2], [3, 4]], ["a"]), "labels has 1 names"),
        (lambda: figure_confusion([[1, -2], [3, 4]], ["a", "b"]), "non-negative"),
    ],
)
def test_invalid_inputs(call, match):
    with pytest.raises(InputError, match=match):
        call()


def test_missing_matplotlib_names_the_extra(monkeypatch, tmp_path):
    for name in ("matplotlib", "matplotlib.figure", "matplotlib.backend_bases"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ImportError, match=r'pip install "fp-rank\[plots\]"'):
        figure_map_ci(["A"], [0.5], [0.4], [0.6])
    with pytest.raises(ImportError, match=r'pip install "fp-rank\[plots\]"'):
        plot_confusion([[1]], ["a"], tmp_path / "c.png")


def test_importing_the_module_does_not_import_matplotlib():
    import os
    import subprocess
    from pathlib import Path

    import fp_rank

    root = str(Path(fp_rank.__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    code = (
        "import sys, fp_rank.views.figures, fp_rank.views.markdown, fp_rank.stats; "
        "sys.exit(1 if 'matplotlib' in sys.modules else 0)"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env
    )
    assert completed.returncode == 0, completed.stderr


def test_report_plot_gives_every_identity_of_the_group_a_row_and_a_column(tmp_path):
    from fp_rank.views.plots import _full_confusion, _group_identities
    from fp_rank.reporting.report import Report

    rows = [
        # method A queried only a and b, and never retrieved c first; method B queried c
        {"method": "A", "encoder": "e", "group": "g", "identity": "a", "top1_identity": "a", "ap": 1.0},
        {"method": "A", "encoder": "e", "group": "g", "identity": "b", "top1_identity": "a", "ap": 0.5},
        {"method": "B", "encoder": "e", "group": "g", "identity": "c", "top1_identity": "c", "ap": 1.0},
        {"method": "B", "encoder": "e", "group": "h", "identity": "x", "top1_identity": "x", "ap": 1.0},
    ]
    report = Report.__new__(Report)
    report.queries = rows
    assert _group_identities(report) == {"g": ["a", "b", "c"], "h": ["x"]}
    matrix, labels = _full_confusion({"labels": ["a", "b"], "matrix": [[1, 0], [1, 0]]}, ["a", "b", "c"])
    assert labels == ["a", "b", "c"]
    assert matrix.tolist() == [[1, 0, 0], [1, 0, 0], [0, 0, 0]]
    fig = figure_confusion(matrix, labels)
    assert np.asarray(fig.axes[0].images[0].get_array()).shape == (3, 3)
