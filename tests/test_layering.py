"""The library imports downward only: nothing in ``fp_rank`` imports the tools built on it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: Packages beside the library that use it and that it must never import.
TOOLS = ("gallery_builders", "benchmarks", "tests", "app", "space")


def _imported_modules(path: Path) -> list[tuple[int, str]]:
    """``(line, module)`` of every import in ``path``, at any depth (function-level ones too)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


@pytest.mark.parametrize("path", sorted((ROOT / "fp_rank").rglob("*.py")), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_library_does_not_import_the_tools(path: Path) -> None:
    bad = [f"line {line}: {module}" for line, module in _imported_modules(path) if module.split(".")[0] in TOOLS]
    assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


def test_the_check_sees_function_level_imports(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from gallery_builders import synthetic\n    import gallery_builders.cub\n")
    assert _imported_modules(source) == [(2, "gallery_builders"), (3, "gallery_builders.cub")]
