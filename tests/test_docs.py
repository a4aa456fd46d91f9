"""README is assembled from its parts and its doctests/examples hold."""

from __future__ import annotations

import doctest
import importlib
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


@pytest.mark.parametrize(
    "module",
    ["fp_rank.ranking.metrics", "fp_rank.stats.bootstrap", "fp_rank.stats.paired", "fp_rank.stats.drift",
     "fp_rank.stats.agreement", "fp_rank.reporting.markdown", "fp_rank.stats.intervals",
     "fp_rank.stats.planning", "fp_rank.stats.simulation"],
)
def test_docstring_examples_run(module: str) -> None:
    mod = importlib.import_module(module)
    failures, _ = doctest.testmod(mod, optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    assert failures == 0
