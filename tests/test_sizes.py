"""Size limits a newcomer can read: no module over 450 lines, no function over 80 lines of code.

A function's lines are those of its definition, nested functions included, less its docstring;
blank lines and comments count (a limit on lines of code that excluded them would invite packing).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAX_MODULE_LINES = 450
MAX_FUNCTION_LINES = 80
SOURCES = sorted(
    [p for package in ("fp_rank", "space", "gallery_builders") for p in (ROOT / package).rglob("*.py")]
    + [ROOT / "app.py", ROOT / "finer_personalization_rank.py"]
)


def function_lines(source: str) -> dict[str, int]:
    """``{qualified name: lines}`` of every function in ``source``, docstrings left out."""
    sizes: dict[str, int] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = f"{prefix}{child.name}"
                lines = child.end_lineno - child.lineno + 1  # type: ignore[operator]
                first = child.body[0]
                if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                    lines -= first.end_lineno - first.lineno + 1  # type: ignore[operator]
                sizes[name] = lines
                visit(child, f"{name}.")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")
            else:
                visit(child, prefix)

    visit(ast.parse(source), "")
    return sizes


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_module_and_function_sizes(path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    n_lines = len(source.splitlines())
    assert n_lines <= MAX_MODULE_LINES, f"{path.relative_to(ROOT)} has {n_lines} lines (at most {MAX_MODULE_LINES})"
    long = {name: n for name, n in function_lines(source).items() if n > MAX_FUNCTION_LINES}
    assert not long, f"{path.relative_to(ROOT)}: functions over {MAX_FUNCTION_LINES} lines: {long}"


def test_function_lines_leave_out_the_docstring_and_count_nested_functions() -> None:
    source = 'def f():\n    """Doc.\n\n    More.\n    """\n    x = 1\n\n    def g():\n        return x\n    return g\n'
    assert function_lines(source) == {"f": 6, "f.g": 2}
    assert function_lines("class A:\n    def m(self):\n        pass\n") == {"A.m": 2}
