"""The fp-rank command line: folders, manifests, several methods, compare, plot, errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import fp_rank
from fp_rank.cli import main
from fp_rank.runs import read_run
from fp_rank.reporting.report import Report, validate_report


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory: pytest.TempPathFactory, demo_generated: list[dict]) -> Path:
    """runs/<method>/<identity>/<k>.png for two methods and the finch group."""
    root = tmp_path_factory.mktemp("runs") / "runs"
    for rec in demo_generated:
        if rec["method"] in ("faithful", "drifting") and rec["identity"].startswith("finch_"):
            path = root / rec["method"] / rec["identity"] / f"{Path(rec['file']).stem}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            rec["image"].save(path)
    return root


def test_method_identity_layout_scores_several_methods(run_folder: Path, demo_gallery_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "out"
    code = main(["evaluate", "--gallery", str(demo_gallery_dir), "--generated", str(run_folder), "--encoder", "fp-rank-demo",
                 "--out", str(out), "--bootstrap", "100", "--no-progress"])
    assert code == 0
    report = Report.load(out / "report.json")
    validate_report(json.loads((out / "report.json").read_text()))
    assert report.methods == ["drifting", "faithful"]
    assert report.metadata["cache"]["gallery_images_encoded"] == 300  # gallery + reference once for both methods
    assert (out / "queries.csv").exists() and "| faithful |" in (out / "summary.md").read_text()
    direct = fp_rank.evaluate(read_run(run_folder), gallery=str(demo_gallery_dir), encoder="fp-rank-demo", progress=False)
    assert report["faithful"].map == pytest.approx(direct["faithful"].map, abs=1e-12)
    assert "faithful" in capsys.readouterr().out

    assert main(["compare", str(out / "report.json"), "--methods", "faithful", "drifting", "--bootstrap", "100", "--permutations", "500"]) == 0
    assert "faithful - drifting: mAP difference +" in capsys.readouterr().out
    assert main(["plot", str(out / "report.json"), "--out", str(tmp_path / "figs")]) == 0
    assert len(list((tmp_path / "figs").glob("*.png"))) >= 4


def test_identity_layout_and_manifests(run_folder: Path, demo_gallery_dir: Path, tmp_path: Path) -> None:
    one = read_run(run_folder / "faithful", known_identities={"finch_gold_cheek", "finch_azure_wing"})
    assert set(one.methods) == {"faithful"} and len(one) == 50
    csv_path = tmp_path / "m.csv"
    lines = ["file,identity,method,prompt,seed"]
    for f, ident in zip(one.files[:6], one.identities[:6]):
        lines.append(f"{Path(f).relative_to(run_folder)},{ident},faithful,a finch on a branch,3")
    # manifest next to the run: relative paths resolve against its folder
    csv_path = run_folder / "manifest.csv"
    csv_path.write_text("\n".join(lines) + "\n")
    run = read_run(csv_path)
    assert run.seeds == [3] * 6 and run.prompts[0] == "a finch on a branch"
    jsonl = run_folder / "manifest.jsonl"
    jsonl.write_text("\n".join(json.dumps({"file": f, "identity": i}) for f, i in zip(run.files, run.identities)) + "\n")
    assert read_run(jsonl).files == run.files
    out = tmp_path / "r.json"
    assert main(["evaluate", "--gallery", str(demo_gallery_dir), "--generated", str(csv_path), "--out", str(out), "--bootstrap", "0", "--no-progress"]) == 0
    assert Report.load(out).single.n_queries == 6
    csv_path.unlink()
    jsonl.unlink()


def test_errors_exit_2_with_one_line(demo_gallery_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("file,identity\nnope.png,finch_gold_cheek\n")
    code = main(["evaluate", "--gallery", str(demo_gallery_dir), "--generated", str(bad), "--bootstrap", "0", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "nope.png" in err and "Traceback" not in err
    code = main(["evaluate", "--gallery", str(tmp_path / "nowhere"), "--generated", str(bad)])
    assert code == 2 and "cannot load" in capsys.readouterr().err
    bad.write_text("file,identity\nnope.png,finch_gold_cheks\n")
    code = main(["evaluate", "--gallery", str(demo_gallery_dir), "--generated", str(bad), "--bootstrap", "0"])
    assert code == 2 and "did you mean" in capsys.readouterr().err


def test_demo_command_in_a_fresh_process(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "fp_rank", "demo", "--no-progress", "--bootstrap", "200", "--out", str(tmp_path / "demo")],
        capture_output=True, text=True, timeout=600, env={**__import__("os").environ, "FP_RANK_CACHE": str(tmp_path / "cache")},
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "faithful" in out.stdout and "DEMO descriptor" in out.stdout
    report = Report.load(tmp_path / "demo" / "report.json")
    assert report["faithful"].map > report["drifting"].map
    assert report["faithful"].intervals["map"]["method"] == "logit_t"
    assert report.metadata["statistics"]["interval_method"] == "logit_t"


def test_encoders_listing(capsys: pytest.CaptureFixture) -> None:
    assert main(["encoders"]) == 0
    assert "dinov2-base" in capsys.readouterr().out


def test_leak_flags(demo_gallery_dir: Path, tmp_path: Path, demo_generated: list[dict]) -> None:
    gallery = fp_rank.load_gallery(str(demo_gallery_dir), "finch")
    run = tmp_path / "leaky" / "copycat" / str(gallery.gallery.identities[0])
    run.mkdir(parents=True)
    (run / "copy.png").write_bytes(gallery.gallery.images[0]["bytes"])  # a gallery photo passed off as generated
    finch = [r for r in demo_generated if r["method"] == "faithful" and r["identity"] == gallery.gallery.identities[0]][:3]
    for k, rec in enumerate(finch):
        rec["image"].save(run / f"gen{k}.png")
    flagged = tmp_path / "flagged.json"
    assert main(["evaluate", "--gallery", str(demo_gallery_dir), "--config", "finch", "--generated", str(tmp_path / "leaky"),
                 "--out", str(flagged), "--bootstrap", "0", "--no-progress"]) == 0
    report = Report.load(flagged)
    assert report.metadata["leakage"]["n_flagged"] == 1
    assert report.metadata["leakage"]["flagged"][0]["file"].endswith("copy.png")
    assert report.single.n_queries == 4
    excluded = tmp_path / "excluded.json"
    assert main(["evaluate", "--gallery", str(demo_gallery_dir), "--config", "finch", "--generated", str(tmp_path / "leaky"),
                 "--out", str(excluded), "--bootstrap", "0", "--no-progress", "--exclude-leaks"]) == 0
    assert Report.load(excluded).single.n_queries == 3
