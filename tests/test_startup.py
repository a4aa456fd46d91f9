"""``import fp_rank`` and ``fp-rank --help`` import no heavy dependency (a behaviour test, not a timing test)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "transformers", "datasets", "evaluate", "matplotlib", "PIL", "scipy", "pandas", "numba")


def _loaded_after(code: str) -> list[str]:
    probe = f"{code}\nimport sys, json\nprint(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_fp_rank_loads_no_heavy_module() -> None:
    assert _loaded_after("import fp_rank") == []


def test_help_loads_no_heavy_module() -> None:
    code = "import fp_rank.cli\ntry:\n    fp_rank.cli.main(['--help'])\nexcept SystemExit:\n    pass"
    assert _loaded_after(code) == []


def test_lazy_names_resolve() -> None:
    code = (
        "import fp_rank\nfrom fp_rank import rank_metrics, evaluate, Encoder, Report\n"
        "assert fp_rank.rank_metrics is rank_metrics\nassert set(fp_rank.__all__) <= set(dir(fp_rank))"
    )
    assert "torch" in _loaded_after(code)


def test_unknown_attribute_is_an_attribute_error() -> None:
    import fp_rank

    try:
        fp_rank.no_such_name  # noqa: B018
    except AttributeError as err:
        assert "no_such_name" in str(err)
    else:  # pragma: no cover
        raise AssertionError("expected AttributeError")


@pytest.mark.parametrize(
    "argv",
    [
        ["-m", "fp_rank", "--help"],
        ["-m", "fp_rank", "encoders"],
        ["-m", "fp_rank", "cache", "info"],
        ["-m", "fp_rank", "evaluate", "--help"],
        ["-m", "gallery_builders", "--help"],
        ["-m", "gallery_builders", "cub", "--help"],
    ],
    ids=" ".join,
)
def test_light_commands_import_neither_torch_nor_transformers(argv: list[str], tmp_path: Path) -> None:
    """Listing, help and cache commands load no model library (their time is in benchmarks/, not here)."""
    module, *args = argv[1:]
    code = (
        "import sys, runpy, contextlib, io\n"
        f"sys.argv = ['x', *{args!r}]\n"
        "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
        f"    runpy.run_module({module!r}, run_name='__main__')\n"
        "print(json.dumps(sorted(m for m in ('torch', 'transformers', 'datasets') if m in sys.modules)))"
    )
    env = {**__import__("os").environ, "FP_RANK_CACHE": str(tmp_path / "cache")}
    out = subprocess.run([sys.executable, "-c", "import json\n" + code], cwd=ROOT, capture_output=True, text=True,
                         check=True, env=env)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
