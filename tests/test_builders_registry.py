"""Gallery sources are a registry: the command line is built from the modules it lists."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gallery_builders import registry
from gallery_builders.__main__ import build_parser, main

FAKE_SOURCE = '''
import json
from pathlib import Path

from gallery_builders.registry import BuilderCommand, Option


def build(source, out, *, seed, skip_corrupt, progress, overwrite, flavour):
    Path(out).mkdir()
    arguments = dict(source=source, seed=seed, skip_corrupt=skip_corrupt, progress=progress,
                     overwrite=overwrite, flavour=flavour)
    (Path(out) / "arguments.json").write_text(json.dumps(arguments))
    return Path(out)


COMMAND = BuilderCommand(
    name="fake-birds", help="a fake source", build=build, source_help="the fake folder", default_seed=7,
    options=(Option("--flavour", help="which fake"),),
)
'''


def test_every_listed_module_declares_its_command() -> None:
    commands = registry.builder_commands()
    assert list(commands) == ["cub", "stanford-cars", "wildlife-reid", "synthetic"]
    help_lines = build_parser().format_help().splitlines()
    listed = [line.split()[0] for line in help_lines if line.startswith("    ") and line[4] != " "]
    assert listed == [*commands, "validate", "push"]


def test_a_new_source_is_one_module_and_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "fake_birds_source.py").write_text(FAKE_SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "BUILDER_MODULES", (*registry.BUILDER_MODULES, "fake_birds_source"))
    out = tmp_path / "out"
    status = main(["fake-birds", "--source", "src", "--out", str(out), "--flavour", "sour", "--no-progress"])
    assert status == 0 and capsys.readouterr().out == f"wrote {out}\n"
    assert json.loads((out / "arguments.json").read_text()) == {
        "source": "src", "seed": 7, "skip_corrupt": False, "progress": False, "overwrite": False, "flavour": "sour",
    }


def test_broken_registrations_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "no_command_source.py").write_text("X = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "BUILDER_MODULES", ("no_command_source",))
    with pytest.raises(ValueError, match="no_command_source defines no COMMAND"):
        registry.builder_commands()
    monkeypatch.setattr(registry, "BUILDER_MODULES", ("gallery_builders.cub", "gallery_builders.cub"))
    with pytest.raises(ValueError, match="two gallery source modules declare the command 'cub'"):
        registry.builder_commands()
