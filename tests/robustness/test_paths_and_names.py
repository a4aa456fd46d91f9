"""Paths, names and files a careless user or an attacker hands to every command.

Input classes: output paths of the wrong kind (a folder where a file goes, a file where a folder
goes, a file standing where a parent folder must be), checked before any work by every command
that writes; names with a trailing newline or longer than a file system takes; a FIFO or a device
named as a manifest, a generated image or a report; a person's own project folder given to
``build-space --overwrite``; conditioning that names no row, a missing file or a truncated one;
a report with a method that scored nothing; a gallery whose label column lost values (NaN) or
holds control characters; a typo of ``demo``; a local gallery path taken for a Hub id.
"""

from __future__ import annotations

import json
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import fp_rank
from fp_rank.cli import main
from fp_rank.errors import GalleryError, InputError
from fp_rank.reporting.report import Report
from tests.gallery_fixtures import png_bytes, write_gallery

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX only (FIFOs, devices)")


@contextmanager
def deadline(seconds: int) -> Iterator[None]:
    """Fail instead of hanging: a read that blocks (a FIFO) or never ends (/dev/zero) is a bug here."""
    if threading.current_thread() is not threading.main_thread():  # pragma: no cover - xdist workers
        yield
        return

    def _fail(*_: object) -> None:
        raise AssertionError(f"still running after {seconds} s: a read blocked or did not end")

    previous = signal.signal(signal.SIGALRM, _fail)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory, demo_generated: list[dict]) -> Path:
    """A small manifest run on disk (two methods, two identities of each group)."""
    folder = tmp_path_factory.mktemp("run")
    keep = [r for r in demo_generated if r["method"] in ("faithful", "drifting")][::10]
    lines = ["file,identity,method"]
    for k, r in enumerate(keep):
        name = f"{k:03d}.png"
        r["image"].save(folder / name)
        lines.append(f"{name},{r['identity']},{r['method']}")
    (folder / "manifest.csv").write_text("\n".join(lines) + "\n")
    return folder


@pytest.fixture(scope="module")
def saved_report(run_dir: Path, demo_gallery_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("saved") / "report.json"
    assert main(["evaluate", "--gallery", str(demo_gallery_dir), "--generated", str(run_dir / "manifest.csv"),
                 "--encoder", "fp-rank-demo", "--no-progress", "--out", str(out)]) == 0
    return out


# --------------------------------------------------------------------------- output paths


def test_evaluate_checks_out_before_loading_anything(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # the gallery does not exist: had anything been loaded first, the error would name it
    assert main(["evaluate", "--gallery", "no/such-gallery", "--generated", str(run_dir / "manifest.csv"),
                 "--out", "/etc/hostname/report.json"]) == 2
    assert "--out '/etc/hostname/report.json': '/etc/hostname' is a file" in capsys.readouterr().err
    assert main(["evaluate", "--gallery", "no/such-gallery", "--generated", str(run_dir / "manifest.csv"),
                 "--out", "results\n"]) == 2
    assert "holds control character(s) '\\n'" in capsys.readouterr().err


@pytest.mark.parametrize("command,out,message", [
    (["compare", "{r}", "--methods", "faithful", "drifting"], "{folder}", "is a folder; name a file"),
    (["plan", "{r}", "--methods", "faithful", "drifting"], "{folder}", "is a folder; name a file"),
    (["plot", "{r}"], "{file}", "is a file; name a folder"),
    (["leaderboard", "{r}"], "{file}", "is a file; name a folder"),
    (["export-results", "{r}", "--dataset-id", "org/x", "--dataset-revision", "abc", "--allow-demo"], "{file}",
     "is a file; name a folder"),
    (["compare", "{r}", "--methods", "faithful", "drifting"], "{file}/cmp.json", "is a file, not a folder"),
    (["plot", "{r}"], "x" * 300, "file systems take at most 255 bytes"),
])
def test_every_command_refuses_an_output_of_the_wrong_kind(saved_report: Path, tmp_path: Path, command: list[str],
                                                           out: str, message: str,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    a_file = tmp_path / "taken.txt"
    a_file.write_text("mine")
    fill = {"r": str(saved_report), "folder": str(tmp_path), "file": str(a_file)}
    argv = [part.format(**fill) for part in command] + ["--out", out.format(**fill)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert a_file.read_text() == "mine"


# --------------------------------------------------------------------------- files that are not files


def test_a_fifo_manifest_or_image_and_a_device_row_are_refused_without_hanging(
    run_dir: Path, demo_gallery_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fifo = tmp_path / "manifest.csv"
    os.mkfifo(fifo)
    with deadline(60):
        assert main(["evaluate", "--gallery", str(demo_gallery_dir), "--generated", str(fifo), "--no-progress"]) == 2
    assert "not a regular file (a FIFO)" in capsys.readouterr().err
    image_fifo = tmp_path / "jam.png"
    os.mkfifo(image_fifo)
    manifest = tmp_path / "devices.csv"
    identity = next(iter(fp_rank.load_gallery(str(demo_gallery_dir), progress=False).identities))
    for source in (str(image_fifo), "/dev/zero"):
        manifest.write_text(f"file,identity\n{source},{identity}\n")
        with deadline(120):
            assert main(["evaluate", "--gallery", str(demo_gallery_dir), "--generated", str(manifest),
                         "--encoder", "fp-rank-demo", "--no-progress", "--no-cache"]) == 2
        err = capsys.readouterr().err
        assert source in err and "not a regular file" in err


def test_long_and_odd_method_names_still_write_every_output(demo_gallery_dir: Path, demo_generated: list[dict],
                                                            tmp_path: Path) -> None:
    long_name = "method-" + "x" * 300
    recs = [r for r in demo_generated if r["method"] == "faithful"][::12]
    report = fp_rank.evaluate([r["image"] for r in recs], [r["identity"] for r in recs], methods=long_name,
                              gallery=str(demo_gallery_dir), encoder="fp-rank-demo", progress=False, cache=False)
    figures = fp_rank.plot(report, tmp_path / "figures")
    assert figures and all(len(p.name) <= 255 for p in figures)
    from fp_rank.hub.results import write_eval_results

    written = write_eval_results(report, tmp_path / "export", dataset_id="org/x", dataset_revision="abc",
                                 allow_demo=True)
    assert all(len(part) <= 255 for p in written for part in p.parts)


# --------------------------------------------------------------------------- build-space


def test_build_space_overwrite_never_touches_a_persons_project(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = tmp_path / "fp-rank"
    (project / ".git").mkdir(parents=True)
    (project / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (project / "app.py").write_text("import gradio  # mine\n")
    (project / "requirements.txt").write_text("gradio\n")
    (project / "data.csv").write_text("a,b\n")
    assert main(["build-space", str(project), "--overwrite"]) == 2
    assert "was not written by fp-rank build-space" in capsys.readouterr().err
    assert sorted(p.name for p in project.iterdir()) == [".git", "app.py", "data.csv", "requirements.txt"]
    assert (project / "app.py").read_text() == "import gradio  # mine\n"


def test_build_space_overwrites_its_own_build_and_keeps_the_rest(tmp_path: Path) -> None:
    from fp_rank.hub.space_build import BUILD_RECORD, build_space

    folder = tmp_path / "fp-rank"
    first = build_space(folder, repo_id="org/fp-rank")
    (folder / "notes.txt").write_text("my notes")
    again = build_space(folder, repo_id="org/fp-rank", overwrite=True)
    assert again.files == first.files and (folder / "notes.txt").read_text() == "my notes"
    assert set(json.loads((folder / BUILD_RECORD).read_text())["files"]) == set(first.files)
    (folder / "app.py").write_text("# edited by hand\n")
    with pytest.raises(InputError, match="app.py changed since fp-rank built the Space; nothing was replaced"):
        build_space(folder, repo_id="org/fp-rank", overwrite=True)
    assert (folder / "app.py").read_text() == "# edited by hand\n"


@pytest.mark.parametrize("repo_id", ["org/fp-rank\n", "org/" + "n" * 97, "org/fp rank"])
def test_build_space_refuses_names_the_hub_would_refuse(tmp_path: Path, repo_id: str) -> None:
    from fp_rank.hub.space_build import build_space

    with pytest.raises(InputError, match="cannot name a Hub repository"):
        build_space(tmp_path / "space", repo_id=repo_id)
    assert not (tmp_path / "space").exists()


# --------------------------------------------------------------------------- conditioning


def test_conditioning_is_checked_before_any_encoding(run_dir: Path, demo_gallery_dir: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    rows = (run_dir / "manifest.csv").read_text().splitlines()
    first = rows[1].split(",")
    truncated = tmp_path / "cut.png"
    truncated.write_bytes(png_bytes(3)[:60])
    for conditioning, expected in (
        ("missing.png", "file not found"),
        (str(truncated), "cut.png"),
    ):
        manifest = tmp_path / "m.csv"
        manifest.write_text(f"file,identity,method,conditioning\n{run_dir / first[0]},{first[1]},{first[2]},"
                            f"{conditioning}\n")
        assert main(["evaluate", "--gallery", str(demo_gallery_dir), "--generated", str(manifest),
                     "--encoder", "fp-rank-demo", "--no-progress", "--no-cache"]) == 2
        err = capsys.readouterr().err
        assert "its conditioning image cannot be used" in err and expected in err and first[0] in err
        assert "Encoding" not in err  # refused before any encoding


# --------------------------------------------------------------------------- reports and galleries


def test_plot_leaves_out_a_method_that_scored_nothing(saved_report: Path, tmp_path: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    data = json.loads(saved_report.read_text())
    dead = data["results"][0]["method"]
    data["queries"] = [q for q in data["queries"] if q["method"] != dead]
    for key in ("map", "map_micro", "minp", "pairwise_similarity", "normalised", "real_baseline_map", "ceiling_map",
                "chance_map"):
        data["results"][0][key] = None
    data["results"][0].update(cmc={}, recall={}, map_per_group={}, pairwise_per_group={}, map_per_identity={},
                              n_queries=0, n_tied=0, intervals={}, ceiling_split=None, ceiling_split_per_group={},
                              pairwise_rule=None)
    edited = tmp_path / "one_dead.json"
    edited.write_text(json.dumps(data))
    report = Report.load(edited)
    with caplog.at_level("WARNING"):
        figures = fp_rank.plot(report, tmp_path / "figures")
    assert figures and f"not plotted under fp-rank-demo: {dead}" in caplog.text


def _gallery_with_identities(folder: Path, identities: list) -> Path:
    """A gallery whose identity column is stored as numbers (what pandas makes of ids with a gap)."""
    import datasets

    rows = [{"image": png_bytes(k), "identity": f"id{k % 2}", "group": "g"} for k in range(4)]
    write_gallery(folder, {"gallery": rows, "reference": rows[:2]})
    features = datasets.Features({"image": datasets.Image(), "identity": datasets.Value("float64"),
                                  "group": datasets.Value("string")})
    for split, labels in (("gallery", identities), ("reference", [1.0, 2.0])):
        data = {"image": [{"bytes": png_bytes(k), "path": None} for k in range(len(labels))], "identity": labels,
                "group": ["g"] * len(labels)}
        datasets.Dataset.from_dict(data, features=features).to_parquet(
            str(folder / "data" / f"{split}-00000-of-00001.parquet"))
    return folder


def test_a_label_column_that_lost_values_is_refused_not_merged(tmp_path: Path) -> None:
    folder = _gallery_with_identities(tmp_path / "g", [1.0, 2.0, float("nan"), float("nan")])
    with pytest.raises(GalleryError, match=r"split 'gallery': row 2 has a missing value \(NaN\) as its 'identity'"):
        fp_rank.load_gallery(str(folder), progress=False)


def test_a_typo_of_demo_is_named(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", "--gallery", "dmeo", "--generated", str(run_dir / "manifest.csv")]) == 2
    assert "did you mean --gallery demo?" in capsys.readouterr().err


def test_a_local_gallery_path_is_not_published_as_a_hub_id(saved_report: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    data = json.loads(saved_report.read_text())
    data["metadata"]["gallery"]["id"] = "galleries/cub"  # what a run from another folder records
    moved = tmp_path / "moved.json"
    moved.write_text(json.dumps(data))
    assert main(["export-results", str(moved), "--out", str(tmp_path / "out"), "--allow-demo"]) == 2
    assert "a local folder, not a Hub dataset id" in capsys.readouterr().err
    assert main(["export-results", str(moved), "--out", str(tmp_path / "out"), "--allow-demo",
                 "--dataset-id", "org/cub"]) == 2
    assert "records no revision" in capsys.readouterr().err


# --------------------------------------------------------------------------- found by an adversarial pass


def test_a_forged_build_record_cannot_reach_outside_the_space(tmp_path: Path) -> None:
    import hashlib

    from fp_rank.hub.space_build import BUILD_RECORD, build_space

    folder = tmp_path / "space" / "fp-rank"
    build_space(folder, repo_id="org/fp-rank")
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    record = json.loads((folder / BUILD_RECORD).read_text())
    digest = hashlib.sha256(victim.read_bytes()).hexdigest()
    record["files"].update({"../../victim.txt": digest, str(victim): digest})
    (folder / BUILD_RECORD).write_text(json.dumps(record))
    with pytest.raises(InputError, match="outside the Space folder"):
        build_space(folder, repo_id="org/fp-rank", overwrite=True)
    assert victim.read_text() == "precious"


def test_build_space_neither_writes_through_links_nor_takes_unrecorded_files(tmp_path: Path) -> None:
    from fp_rank.hub.space_build import BUILD_RECORD, build_space

    folder = tmp_path / "fp-rank"
    build_space(folder, repo_id="org/fp-rank")
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (folder / "README.md").unlink()
    (folder / "README.md").symlink_to(victim)
    with pytest.raises(InputError, match="README.md changed since fp-rank built the Space"):
        build_space(folder, repo_id="org/fp-rank", overwrite=True)
    assert victim.read_text() == "precious"
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "app.py").write_text("my own app\n")
    (mine / BUILD_RECORD).write_text('{"files": {}}')
    with pytest.raises(InputError, match="app.py exist\\(s\\) and were not written by fp-rank"):
        build_space(mine, repo_id="org/mine", overwrite=True)
    assert (mine / "app.py").read_text() == "my own app\n"


def test_outputs_replace_links_instead_of_writing_through_them(saved_report: Path, tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    board = tmp_path / "board"
    board.mkdir()
    (board / "leaderboard.md").symlink_to(victim)
    figures = tmp_path / "figures"
    figures.mkdir()
    (figures / "map_ci_fp-rank-demo.png").symlink_to(victim)
    assert main(["leaderboard", str(saved_report), "--out", str(board)]) == 0
    assert main(["plot", str(saved_report), "--out", str(figures)]) == 0
    assert victim.read_text() == "precious"
    assert not (board / "leaderboard.md").is_symlink() and not (figures / "map_ci_fp-rank-demo.png").is_symlink()


def test_an_export_that_would_clash_writes_nothing(saved_report: Path, tmp_path: Path) -> None:
    data = json.loads(saved_report.read_text())
    for row in data["results"] + data["queries"]:
        row["method"] = {"faithful": "a/b", "drifting": "a_b"}.get(row["method"], row["method"])
    clash = tmp_path / "clash.json"
    clash.write_text(json.dumps(data))
    out = tmp_path / "export"
    assert main(["export-results", str(clash), "--out", str(out), "--dataset-id", "org/x", "--dataset-revision",
                 "abc", "--allow-demo"]) == 2
    assert not out.exists() or not any(out.rglob("*.yaml"))


@pytest.mark.parametrize("cell", ["1" * 5000, "reference:" + "1" * 5000])
def test_huge_numbers_in_a_manifest_are_one_line(tmp_path: Path, cell: str, demo_gallery_dir: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"file,identity,conditioning\na.png,x,{cell}\n")
    assert main(["evaluate", "--gallery", str(demo_gallery_dir), "--generated", str(manifest), "--no-progress"]) == 2
    assert "Traceback" not in capsys.readouterr().err
    jsonl = tmp_path / "m.jsonl"
    jsonl.write_text('{"file": "a.png", "identity": "x", "seed": ' + "1" * 5000 + "}\n")
    assert main(["evaluate", "--gallery", str(demo_gallery_dir), "--generated", str(jsonl), "--no-progress"]) == 2
    assert "line 1 is not valid JSON" in capsys.readouterr().err
