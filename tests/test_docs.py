"""README is assembled from its parts, and the docstring examples of every module hold."""

from __future__ import annotations

import ast
import doctest
import importlib
import importlib.util
import pkgutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_readme_is_assembled_from_its_parts(tmp_path: Path) -> None:
    before = (ROOT / "README.md").read_text()
    spec = importlib.util.spec_from_file_location("assemble", ROOT / "docs" / "assemble_readme.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    parts = [(ROOT / p).read_text().strip("\n") for p in module.PARTS if (ROOT / p).exists()]
    assert before == "\n\n".join(parts) + "\n", "README.md is stale: run python docs/assemble_readme.py"


def test_readme_front_matter_declares_the_space() -> None:
    import yaml

    text = (ROOT / "README.md").read_text()
    meta = yaml.safe_load(text.split("---")[1])
    assert meta["sdk"] == "gradio" and meta["app_file"] == "app.py"
    assert {"evaluate", "metric"} <= set(meta["tags"])


def test_readme_set_up_commands_are_the_ci_ones() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "python -m pytest -q" in readme and "python -m pytest -q" in ci
    assert "pip install torch==2.13.0" in readme and "pip install -q torch==2.13.0" in ci


def _imports_gradio(module: str) -> bool:
    """Whether ``module`` imports gradio at its top level (Space pages are tested in test_app)."""
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
        return False
    tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
    for node in tree.body:
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        if any(name.split(".")[0] == "gradio" for name in names):
            return True
    return False


def _modules(package: str) -> list[str]:
    """Every module of ``package``, the package itself first, but those that need gradio."""
    root = importlib.import_module(package)
    names = [package] + [m.name for m in pkgutil.walk_packages(root.__path__, f"{package}.")]
    return [name for name in names if not _imports_gradio(name)]


DOCTESTED = _modules("fp_rank") + _modules("gallery_builders") + _modules("space")


def test_every_library_module_is_doctested() -> None:
    """No file escapes the walk (a folder without ``__init__.py`` would)."""
    for package in ("fp_rank", "gallery_builders", "space"):
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            assert module in DOCTESTED or _imports_gradio(module), f"{module} is not doctested"


@pytest.mark.parametrize("module", DOCTESTED)
def test_docstring_examples_run(module: str) -> None:
    mod = importlib.import_module(module)
    failures, _ = doctest.testmod(mod, optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    assert failures == 0
