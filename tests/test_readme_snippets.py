"""Every ```python and ```bash block of README.md and of the docs pages runs as written, in order, in one
temp folder (README first, then the pages in :data:`PAGES` order, as a reader meets them).

A block that cannot run offline (installs, Hub pushes, a live server, several processes) is
preceded by ``<!-- not run: reason -->``; the README puts a runnable version beside it. Python
blocks run with this interpreter, bash blocks through ``bash`` with ``fp-rank`` and ``python`` on
PATH. The demo gallery is the session's (tests/conftest.py), placed where ``--gallery demo`` and
``fp_rank.demo.run.demo_gallery()`` look for it, so nothing is built twice.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^```(\w*)\s*$")
NOT_RUN = re.compile(r"^<!--\s*not run:\s*(\S.*?)\s*-->$")


@dataclass(frozen=True)
class Block:
    language: str
    code: str
    line: int  # of the opening fence in README.md
    not_run: str | None  # the reason, for blocks marked not run


def readme_blocks(text: str) -> list[Block]:
    """The fenced blocks of a Markdown text (any language), with their not-run markers."""
    blocks: list[Block] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        start, language = i, match.group(1)
        j = i + 1
        while j < len(lines) and lines[j].strip() != "```":
            j += 1
        previous = next((lines[k].strip() for k in range(start - 1, -1, -1) if lines[k].strip()), "")
        marker = NOT_RUN.match(previous)
        blocks.append(Block(language, "\n".join(lines[start + 1 : j]) + "\n", start + 1, marker.group(1) if marker else None))
        i = j + 1
    return blocks


#: The documents whose blocks run, in order (a later page may use what an earlier one wrote).
PAGES = ("README.md", "docs/setup.md", "docs/encoders.md", "docs/reports.md", "docs/judge.md", "docs/publishing.md",
         "docs/galleries.md", "docs/space.md", "docs/bad_input.md", "docs/scaling.md")


def _blocks() -> list[tuple[str, Block]]:
    out = []
    for page in PAGES:
        out += [(page, b) for b in readme_blocks((ROOT / page).read_text(encoding="utf-8")) if b.language in ("python", "bash")]
    return out


PAGE_BLOCKS = _blocks()
BLOCKS = [b for _, b in PAGE_BLOCKS]


def test_every_docs_page_with_code_is_run() -> None:
    pages_with_code = {p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").glob("*.md") if "```python" in p.read_text()
                       or "```bash" in p.read_text()}
    assert pages_with_code <= set(PAGES), pages_with_code - set(PAGES)


def test_blocks_are_found_and_markers_give_reasons() -> None:
    assert len(BLOCKS) >= 10
    runnable = [b for b in BLOCKS if b.not_run is None]
    assert len(runnable) >= 8
    assert all(len(b.not_run) > 15 for b in BLOCKS if b.not_run is not None)
    # the undefined names and placeholder galleries of the old snippets are gone from runnable code
    for block in runnable:
        code = "\n".join(line.split("#", 1)[0] for line in block.code.splitlines())  # comments may name them
        assert not re.search(r"\b(generated_images|identity_labels|method_labels|images, identities)\b", code), block.line
        assert 'gallery="ORG/' not in code, block.line  # a placeholder gallery cannot be loaded


def test_marker_parser() -> None:
    text = "x\n<!-- not run: needs a token -->\n\n```bash\necho a\n```\n```python\nprint(1)\n```\n"
    assert readme_blocks(text) == [Block("bash", "echo a\n", 4, "needs a token"), Block("python", "print(1)\n", 7, None)]


@pytest.fixture()
def snippet_env(tmp_path: Path, demo_gallery_dir: Path) -> dict[str, str]:
    from fp_rank.version import __version__

    cache = tmp_path / "cache"
    (cache / "demo").mkdir(parents=True)
    (cache / "demo" / f"synthetic-seed0-fp-rank{__version__}").symlink_to(demo_gallery_dir, target_is_directory=True)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, line in (("python", f'exec "{sys.executable}" "$@"'), ("fp-rank", f'exec "{sys.executable}" -m fp_rank "$@"')):
        (bin_dir / name).write_text(f"#!/bin/sh\n{line}\n", encoding="utf-8")  # a symlink would lose the venv
        (bin_dir / name).chmod(0o755)
    shim = bin_dir / "fp-rank"
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p),
        "FP_RANK_CACHE": str(cache),
        "HF_MODULES_CACHE": str(tmp_path / "modules"),
        "HF_DATASETS_CACHE": str(tmp_path / "datasets"),
        "MPLBACKEND": "Agg",
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "HF_EVALUATE_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    # what the (not run) set-up command does besides installing: make evaluate.load("fp-rank") resolve
    subprocess.run([str(shim), "install-metric"], env=env, check=True, capture_output=True, cwd=tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    env["FP_RANK_SNIPPET_DIR"] = str(work)
    return env


def test_every_readme_block_runs(snippet_env: dict[str, str]) -> None:
    work = Path(snippet_env["FP_RANK_SNIPPET_DIR"])
    for number, (page, block) in enumerate((p, b) for p, b in PAGE_BLOCKS if b.not_run is None):
        script = work.parent / f"snippet_{number:02d}.{'py' if block.language == 'python' else 'sh'}"
        script.write_text(block.code, encoding="utf-8")
        command = [sys.executable, str(script)] if block.language == "python" else ["bash", "-euo", "pipefail", str(script)]
        started = time.perf_counter()
        done = subprocess.run(command, cwd=work, env=snippet_env, capture_output=True, text=True, timeout=300)
        print(f"{page} line {block.line}: {time.perf_counter() - started:.1f} s")
        assert done.returncode == 0, (
            f"{page} line {block.line} ({block.language}) exited {done.returncode}:\n{block.code}\n"
            f"--- stdout\n{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-3000:]}"
        )
    # the README's files are where it says
    assert (work / "demo-run" / "manifest.csv").is_file()
    assert (work / "out" / "report.json").is_file() and (work / "out" / "summary.md").is_file()
    assert (work / "galleries" / "demo" / "README.md").is_file()
