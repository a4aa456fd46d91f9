"""The README and docs: the generated card is current, links hold, examples use public names; and the\ndocstring examples of every module hold."""

from __future__ import annotations

import ast
import doctest
import importlib
import importlib.util
import pkgutil
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


README = (ROOT / "README.md").read_text(encoding="utf-8")
DOC_PAGES = sorted((ROOT / "docs").glob("*.md"))


def test_readme_card_is_generated_from_the_declarations() -> None:
    from fp_rank.views.card import with_card

    assert with_card(README) == README, "README.md's generated card is stale: run python -m fp_rank.views.card README.md"


def test_the_card_states_every_metric_option_value_and_rule() -> None:
    """Belt and braces beside the equality above: each declared fact, looked for by name in the README."""
    from fp_rank.options import OPTIONS
    from fp_rank.protocol import CITATION, METRICS, RULES
    from fp_rank.runs import PER_IMAGE
    from fp_rank.version import PROTOCOL_CHANGES, PROTOCOL_VERSION

    for m in METRICS:
        assert f"`{m.result_field}`" in README and m.description in README, m.key
    for o in OPTIONS:
        assert f"| `{o.name}` |" in README and o.help in README, o.name
        for choice in o.choices:
            assert f"`{choice}`" in README, (o.name, choice)
        if o.flag:
            assert f"`{o.flag}`" in README, o.flag
    for p in PER_IMAGE:
        assert f"`{p.keyword}`: {p.help}" in README, p.keyword
    for name, rule in RULES:
        assert f"**{name}**: {rule}" in README, name
    for version, change in PROTOCOL_CHANGES.items():
        assert f"{version}: {change}" in README, version
    assert f"protocol {PROTOCOL_VERSION}" in README and CITATION.strip() in README


def test_readme_is_short() -> None:
    assert len(README.splitlines()) <= 250


def test_links_point_at_files_that_exist() -> None:
    for page in [ROOT / "README.md", *DOC_PAGES]:
        for target in re.findall(r"\]\(([^)\s#]+)(?:#[^)]*)?\)", page.read_text(encoding="utf-8")):
            if re.match(r"^[a-z]+:", target):
                continue
            assert (page.parent / target).exists(), f"{page.relative_to(ROOT)} links to missing {target}"


def test_readme_examples_use_public_names_only() -> None:
    """The README's Python examples import fp_rank (and evaluate) and use the names fp_rank exports."""
    import fp_rank

    for block in re.findall(r"```python\n(.*?)```", README, flags=re.DOTALL):
        tree = ast.parse(block)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                assert node.module in ("fp_rank",), f"README imports from {node.module}"
            elif isinstance(node, ast.Import):
                assert all(a.name in ("fp_rank", "evaluate") for a in node.names), [a.name for a in node.names]
            elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "fp_rank":
                assert node.attr in fp_rank.__all__, f"README uses fp_rank.{node.attr}, which fp_rank does not export"


def test_requirements_repeat_nothing_from_pyproject() -> None:
    """requirements.txt (what a Space of this repository installs) names the package and its app extra only."""
    import tomllib

    lines = [line.strip() for line in (ROOT / "requirements.txt").read_text().splitlines()]
    assert [line for line in lines if line and not line.startswith("#")] == [".[app]"]
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert any(req.startswith("gradio") for req in extras["app"])


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
