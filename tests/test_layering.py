"""Every import points down: the layers of fp_rank, space and gallery_builders, and no import circle.

:data:`LAYERS` lists the units from the bottom up. A module may import its own unit (a package,
or a top-level module) and any unit of a lower layer; never a higher layer, never another unit
of its own layer. Imports are read from the source at any depth (function-level and
``TYPE_CHECKING`` ones too), so a lazy import is no way around the rule.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Units of each layer, bottom first: what a newcomer reads as the architecture.
LAYERS: tuple[tuple[str, ...], ...] = (
    # the facts every part shares: errors, versions, the metric and option declarations
    ("fp_rank.errors", "fp_rank.version", "fp_rank._lazy", "fp_rank.cpu_threads", "fp_rank.hub_access",
     "fp_rank.progress"),
    ("fp_rank.protocol", "fp_rank.options", "fp_rank._files", "fp_rank.file_access"),
    # pure maths: arrays in, numbers out
    ("fp_rank.ranking", "fp_rank.stats"),
    # images in: decoding, digests, the decode stream
    ("fp_rank.images",),
    # data: runs of generated images, the embedding cache, the ranks of a launched run
    ("fp_rank.runs", "fp_rank.caching", "fp_rank.distributed"),
    ("fp_rank.galleries",),
    # models: encoders and the leakage guard
    ("fp_rank.encoding", "fp_rank.checks"),
    # the judge (a vision-language model's score beside mAP) and encoder training
    ("fp_rank.judging", "fp_rank.training"),
    # the report: data and its file forms
    ("fp_rank.reporting",),
    # the pipeline that makes a report
    ("fp_rank.evaluation",),
    # what takes a report: statistics, then what people see
    ("fp_rank.analysis",),
    ("fp_rank.views",),
    # products built on the library
    ("fp_rank.hub", "fp_rank.demo", "fp_rank.metric"),
    ("fp_rank.cli",),
    ("fp_rank._compat", "fp_rank.__main__"),
    ("fp_rank",),
    # the tools beside the library, inside-out
    ("gallery_builders.registry", "space.settings"),
    ("gallery_builders._benchmark", "space.uploads"),
    ("gallery_builders.cub", "gallery_builders.stanford_cars", "gallery_builders.wildlife_reid",
     "gallery_builders.synthetic", "gallery_builders.push", "space.resources"),
    ("gallery_builders", "gallery_builders.__main__", "space.service"),
    ("space.render",),
    ("space.page",),
    ("space", "app", "finer_personalization_rank"),
)

_LAYER_OF = {unit: level for level, units in enumerate(LAYERS) for unit in units}
#: Packages beside the library that use it and that it must never import.
TOOLS = ("gallery_builders", "benchmarks", "tests", "app", "space")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _sources() -> dict[str, Path]:
    found = {_module_name(p): p for package in ("fp_rank", "space", "gallery_builders") for p in (ROOT / package).rglob("*.py")}
    found.update({name: ROOT / f"{name}.py" for name in ("app", "finer_personalization_rank")})
    return found


SOURCES = _sources()


def _imported_modules(path: Path) -> list[tuple[int, str]]:
    """``(line, module)`` of every import in ``path``, at any depth (function-level ones too).

    ``from pkg import name`` counts as ``pkg.name`` when that is a module of the project (the
    package itself is then only its parent), else as ``pkg``.
    """
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}:{node.lineno}: relative import; the project imports by full name"
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                found.append((node.lineno, full if full in SOURCES else str(node.module)))
    return found


def unit_of(module: str) -> str | None:
    """The layer unit a module belongs to: the longest unit name that is it or contains it."""
    parts = module.split(".")
    for cut in range(len(parts), 0, -1):
        name = ".".join(parts[:cut])
        if name in _LAYER_OF:
            return name
    return None


def _internal(module: str) -> str | None:
    """The project module an import names (``pkg.mod.Name`` -> ``pkg.mod``), or None for a library outside."""
    parts = module.split(".")
    for cut in range(len(parts), 0, -1):
        name = ".".join(parts[:cut])
        if name in SOURCES:
            return name
    return None


def _edges() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for name, path in SOURCES.items():
        graph[name] = {target for _, imported in _imported_modules(path) if (target := _internal(imported)) and target != name}
    return graph


@pytest.mark.parametrize("name", sorted(SOURCES), ids=str)
def test_every_module_has_a_layer(name: str) -> None:
    assert unit_of(name) is not None, f"{name} belongs to no layer of tests/test_layering.py LAYERS"


def _wrong_way(name: str, path: Path) -> list[str]:
    """The imports of module ``name`` (source ``path``) that point sideways or upward."""
    unit = unit_of(name)
    bad = []
    for line, imported in _imported_modules(path):
        target = _internal(imported)
        if target is None:
            continue
        target_unit = unit_of(target)
        if target_unit is None or target_unit == unit:
            continue
        if _LAYER_OF[target_unit] >= _LAYER_OF[unit]:  # type: ignore[index]
            bad.append(f"line {line}: {imported} (layer {_LAYER_OF[target_unit]} {target_unit}, "
                       f"this is layer {_LAYER_OF[unit]} {unit})")  # type: ignore[index]
    return bad


@pytest.mark.parametrize("name", sorted(SOURCES), ids=str)
def test_imports_point_down(name: str) -> None:
    bad = _wrong_way(name, SOURCES[name])
    assert not bad, f"{name} imports sideways or upward: {bad}"


@pytest.mark.parametrize("path", sorted((ROOT / "fp_rank").rglob("*.py")), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_library_does_not_import_the_tools(path: Path) -> None:
    bad = [f"line {line}: {module}" for line, module in _imported_modules(path) if module.split(".")[0] in TOOLS]
    assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return circles


def test_no_import_circle() -> None:
    circles = _circles(_edges())
    assert not circles, f"import circles: {circles}"


def test_the_checks_catch_an_upward_import_a_sideways_one_and_a_circle(tmp_path: Path) -> None:
    """The checks themselves fail on the faults they exist for (each planted in a scratch file)."""
    upward = tmp_path / "report.py"
    upward.write_text("def f():\n    from fp_rank.views.table import format_table\n")
    assert _wrong_way("fp_rank.reporting.report", upward) == [
        f"line 2: fp_rank.views.table (layer {_LAYER_OF['fp_rank.views']} fp_rank.views, "
        f"this is layer {_LAYER_OF['fp_rank.reporting']} fp_rank.reporting)"
    ]
    sideways = tmp_path / "leaderboard.py"
    sideways.write_text("from fp_rank.demo import demo_gallery\nfrom fp_rank.ranking import rank_metrics\n")
    assert [b.split(" (")[0] for b in _wrong_way("fp_rank.hub.leaderboard", sideways)] == ["line 1: fp_rank.demo"]
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _circles({"a": {"b"}, "b": set()}) == []


def test_the_checks_see_function_level_imports(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from gallery_builders import synthetic\n    import gallery_builders.cub\n")
    assert _imported_modules(source) == [(2, "gallery_builders.synthetic"), (3, "gallery_builders.cub")]
    assert unit_of("fp_rank.views.table") == "fp_rank.views" and unit_of("fp_rank") == "fp_rank"
    assert _LAYER_OF["fp_rank.views"] > _LAYER_OF["fp_rank.reporting"] > _LAYER_OF["fp_rank.ranking"]
