"""A new user's first hour: demo export, discovery messages, leak marks, CLI wording, offline failures, reprs."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter

import fp_rank
from fp_rank.cli import build_parser, format_p, main
from fp_rank.errors import EncoderError, GalleryError, InputError, Opt
from fp_rank.options import cli_spelling
from fp_rank.reporting.report import Report
from fp_rank.runs import read_run
from fp_rank.views.table import leak_note

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def demo_alias(_private_cache: Path, demo_gallery_dir: Path) -> Path:
    """``--gallery demo`` resolves to the session's demo gallery (no second build)."""
    from fp_rank.version import __version__

    link = _private_cache / "demo" / f"synthetic-seed0-fp-rank{__version__}"
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(demo_gallery_dir, target_is_directory=True)
    return link


# -- fp-rank demo --export ------------------------------------------------------------------
def test_exported_demo_scores_the_demo_numbers(demo_gallery_dir: Path, demo_generated: list[dict], tmp_path: Path) -> None:
    from fp_rank.demo.run import export_generated

    manifest = export_generated(tmp_path / "run")
    rows = list(csv.DictReader(manifest.open(encoding="utf-8")))
    assert list(rows[0]) == ["file", "identity", "method", "prompt", "seed", "conditioning"]
    assert len(rows) == len(demo_generated) and all((manifest.parent / r["file"]).is_file() for r in rows)
    direct = fp_rank.evaluate(
        [r["image"] for r in demo_generated], [r["identity"] for r in demo_generated], gallery=str(demo_gallery_dir),
        encoder="fp-rank-demo", methods=[r["method"] for r in demo_generated], progress=False,
    )
    run = read_run(manifest)
    from_files = fp_rank.evaluate(run, gallery=str(demo_gallery_dir), encoder="fp-rank-demo", progress=False)
    for a in direct.results:
        b = from_files.result(a.method)
        assert json.dumps(a.values, sort_keys=True) == json.dumps(b.values, sort_keys=True)  # NaN (no CLIP-T) too
        assert a.n_queries == b.n_queries == 150 and a.values["map"] > 0


def test_demo_cli_export_names_the_next_command(demo_alias: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "ex"
    assert main(["demo", "--export", str(out), "--bootstrap", "0", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert f"--gallery demo --generated {out / 'manifest.csv'} --encoder fp-rank-demo" in printed
    assert str(demo_alias) in printed  # where the demo gallery is
    demo_table = [line for line in printed.splitlines() if line.startswith("fp-rank-demo ")]
    assert main(["evaluate", "--gallery", "demo", "--generated", str(out / "manifest.csv"), "--encoder", "fp-rank-demo",
                 "--bootstrap", "0", "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert [line for line in captured.out.splitlines() if line.startswith("fp-rank-demo ")] == demo_table
    assert "found 450 image(s) (layout manifest): 3 method(s), 15 identities" in captured.err


# -- discovery ------------------------------------------------------------------------------
def _png(path: Path, colour: tuple[int, int, int] = (120, 60, 30)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (16, 16), colour).save(path)


def test_discovery_lists_what_it_found_and_skipped(tmp_path: Path) -> None:
    _png(tmp_path / "run" / "m1" / "finch_gold_cheek" / "a.png")
    _png(tmp_path / "run" / "m1" / "finch_gold_cheek" / "b.png")
    _png(tmp_path / "run" / "m2" / "jay_gold_cheek" / "a.png")
    (tmp_path / "run" / "m1" / "finch_gold_cheek" / "prompt.txt").write_text("x")
    (tmp_path / "run" / "README.md").write_text("x")
    run = read_run(tmp_path / "run")
    assert run.layout == "<method>/<identity>/"
    assert run.not_images == ("README.md", "m1/finch_gold_cheek/prompt.txt")
    text = "\n".join(run.describe())
    assert "found 3 image(s)" in text and "m1: 2 image(s)" in text and "finch_gold_cheek 2" in text
    assert "skipped 2 file(s) that are not images" in text and "prompt.txt" in text


def test_folders_deeper_than_the_layouts_are_named(tmp_path: Path) -> None:
    _png(tmp_path / "run" / "m1" / "finch_gold_cheek" / "seed0" / "a.png")
    with pytest.raises(InputError, match=r"m1/finch_gold_cheek/ holds sub-folders \(seed0\)"):
        read_run(tmp_path / "run")


def test_cli_prints_discovery_and_what_on_missing_dropped(demo_gallery_dir: Path, demo_generated: list[dict],
                                                          tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    run = tmp_path / "run"
    for k, rec in enumerate(r for r in demo_generated if r["method"] == "faithful"):
        if k < 4:
            path = run / rec["identity"] / f"{k}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            rec["image"].save(path)
    _png(run / "finch_nonexistent" / "x.png")
    assert main(["evaluate", "--gallery", str(demo_gallery_dir), "--generated", str(run), "--encoder", "fp-rank-demo",
                 "--on-missing", "skip", "--bootstrap", "0", "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "found 5 image(s) (layout <identity>/)" in err
    assert "--on-missing skip: left out 1 image(s) whose identity has no gallery image: finch_nonexistent" in err
    assert "x.png" in err


# -- leak marks -----------------------------------------------------------------------------
def _leaky_run(demo_gallery_dir: Path, demo_generated: list[dict], folder: Path) -> None:
    gallery = fp_rank.load_gallery(str(demo_gallery_dir), "finch", progress=False)
    ident = str(gallery.gallery.identities[0])
    copycat = folder / "copycat" / ident
    copycat.mkdir(parents=True)
    (copycat / "copy.png").write_bytes(gallery.gallery.images[0]["bytes"])
    Image.open(copycat / "copy.png").convert("RGB").resize((32, 32), Image.Resampling.LANCZOS).save(copycat / "half.png")
    honest = folder / "honest" / ident
    honest.mkdir(parents=True)
    for k, rec in enumerate([r for r in demo_generated if r["method"] == "faithful" and r["identity"] == ident][:3]):
        rec["image"].save(honest / f"gen{k}.png")
        rec["image"].save(copycat / f"gen{k}.png")


def test_tables_mark_copies_of_real_images(demo_gallery_dir: Path, demo_generated: list[dict], tmp_path: Path,
                                           capsys: pytest.CaptureFixture) -> None:
    _leaky_run(demo_gallery_dir, demo_generated, tmp_path / "run")
    out = tmp_path / "out"
    assert main(["evaluate", "--gallery", str(demo_gallery_dir), "--config", "finch", "--generated", str(tmp_path / "run"),
                 "--encoder", "fp-rank-demo", "--out", str(out), "--bootstrap", "0", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "copies" in printed.splitlines()[0]
    copy_line = next(line for line in printed.splitlines() if " copycat " in line)
    honest_line = next(line for line in printed.splitlines() if " honest " in line)
    assert copy_line.rstrip().endswith("⚠2") and honest_line.rstrip().endswith(" 0")
    assert "⚠ copies: 2 generated image(s)" in printed and "(copycat 2)" in printed and "--leaks exclude" in printed
    summary = (out / "summary.md").read_text(encoding="utf-8")
    assert "⚠2 |" in summary and "(copycat 2)" in summary
    report = Report.load(out / "report.json")
    assert report.leak_counts() == {"copycat": {"flagged": 2, "scored": 2, "excluded": 0},
                                    "honest": {"flagged": 0, "scored": 0, "excluded": 0}}
    assert main(["evaluate", "--gallery", str(demo_gallery_dir), "--config", "finch", "--generated", str(tmp_path / "run"),
                 "--encoder", "fp-rank-demo", "--exclude-leaks", "--out", str(tmp_path / "ex"), "--bootstrap", "0",
                 "--no-progress"]) == 0
    assert "2 of them were left out of the scores (--leaks exclude" in capsys.readouterr().out
    excluded = Report.load(tmp_path / "ex" / "report.json")
    assert excluded.leak_counts()["copycat"] == {"flagged": 2, "scored": 0, "excluded": 2}
    assert "2 of them were left out of the scores" in fp_rank.to_markdown(excluded)


def test_no_mark_without_copies(demo_gallery_dir: Path, demo_generated: list[dict]) -> None:
    recs = demo_generated[:20]
    report = fp_rank.evaluate([r["image"] for r in recs], [r["identity"] for r in recs], gallery=str(demo_gallery_dir),
                              encoder="fp-rank-demo", progress=False)
    assert "copies" not in fp_rank.format_table(report) and "⚠" not in fp_rank.to_markdown(report)
    assert leak_note(report) is None


# -- leak detector --------------------------------------------------------------------------
def _gray_noise(seed: int) -> Image.Image:
    base = np.random.default_rng(seed).normal(128, 40, (256, 256)).clip(0, 255).astype(np.uint8)
    return Image.fromarray(base).convert("RGB").filter(ImageFilter.GaussianBlur(0.7))


def test_guard_catches_resized_and_cropped_noise_textures_without_false_positives(demo_gallery_dir: Path) -> None:
    from fp_rank.checks.leakage import LeakIndex

    originals = [_gray_noise(s) for s in range(15)]
    index = LeakIndex()
    index.add("gallery", originals)
    for k, img in enumerate(originals):
        half = img.resize((128, 128), Image.Resampling.NEAREST)
        crop = img.crop((6, 6, 250, 250))
        for copy in (half, crop):
            found = index.match(copy)
            assert found is not None and found["index"] == k
    assert all(index.match(_gray_noise(100 + s)) is None for s in range(15))
    # distinct pictures of the demo gallery: reference and holdout photos against the gallery split
    gallery = fp_rank.load_gallery(str(demo_gallery_dir), progress=False)
    demo_index = LeakIndex()
    demo_index.add("gallery", gallery.gallery.images)
    others = list(gallery.reference.images) + list(gallery.holdout.images)
    assert sum(demo_index.match(item) is not None for item in others) == 0


# -- the CLI speaks CLI ---------------------------------------------------------------------
def test_errors_name_flags_not_python_arguments(demo_gallery_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    folder = tmp_path / "run" / "finch_gold_cheek"
    folder.mkdir(parents=True)
    (folder / "broken.png").write_bytes(b"not a png")
    assert main(["evaluate", "--gallery", str(demo_gallery_dir), "--generated", str(tmp_path / "run"),
                 "--encoder", "fp-rank-demo", "--bootstrap", "0", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "--on-invalid skip" in err and "on_invalid=" not in err


@pytest.mark.parametrize(
    "opt, cli",
    [
        (Opt("min_gallery_images", 1), "--min-gallery-images 1"),
        (Opt("trust_remote_code", True), "--trust-remote-code"),
        (Opt("ceilings", False), "--no-ceilings"),
        (Opt("ceilings", True), "leave out --no-ceilings"),
        (Opt("leaks", "exclude"), "--leaks exclude"),
        (Opt("cmc_ks", (1, 5)), "--cmc-ks 1 5"),
        (Opt("gallery_config"), "--config"),
        (Opt("exclude_leaks", True), "--exclude-leaks"),  # an older flag keeps its own spelling
        (Opt("check_leaks", False), "--no-leak-check"),  # ... and says which way it was set
        (Opt("check_leaks", True), "leave out --no-leak-check"),
        (Opt("batch_size", 0), "--batch-size 0"),
    ],
)
def test_the_cli_spells_every_option_as_its_flag(opt: Opt, cli: str) -> None:
    assert cli_spelling(opt) == cli


def test_contradictory_older_flags_are_named_as_given(demo_gallery_dir, tmp_path, capsys) -> None:
    assert main(["evaluate", "--gallery", str(demo_gallery_dir), "--generated", str(tmp_path), "--encoder", "fp-rank-demo",
                 "--no-leak-check", "--exclude-leaks", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "--exclude-leaks and --no-leak-check contradict each other" in err, err


def test_messages_are_rendered_not_rewritten() -> None:
    err = InputError("pass ", Opt("on_missing", "skip"), " or fix on_missing in your notes")  # plain text stays as is
    assert err.render(cli_spelling) == "pass --on-missing skip or fix on_missing in your notes"
    assert str(err) == "pass on_missing='skip' or fix on_missing in your notes"


def test_every_option_has_help() -> None:
    import argparse

    def check(parser: argparse.ArgumentParser, where: str) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    check(sub, f"{where} {name}")
            elif action.dest != "help":
                assert action.help, f"{where}: {action.option_strings or action.dest} has no help"

    check(build_parser(), "fp-rank")


def test_help_is_fast_and_imports_no_torch() -> None:
    code = ("import sys, time, contextlib, io\nt = time.perf_counter()\nfrom fp_rank.cli import main\n"
            "for argv in ([], ['demo'], ['evaluate'], ['compare'], ['plot'], ['encoders'], ['cache'], ['install-metric']):\n"
            "    with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
            "        main(argv + ['--help'])\n"
            "print('torch' in sys.modules, 'datasets' in sys.modules, time.perf_counter() - t)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True)
    torch_loaded, datasets_loaded, seconds = done.stdout.split()
    assert torch_loaded == "False" and datasets_loaded == "False"
    assert float(seconds) < 1.0


def test_p_values_read_as_people_write_them() -> None:
    assert format_p(9.999e-05) == "p < 1e-4"
    assert format_p(0.0001) == "p = 0.0001"
    assert format_p(0.04567) == "p = 0.04567"


def test_no_progress_silences_the_libraries_bars(monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets
    from huggingface_hub.utils import are_progress_bars_disabled, enable_progress_bars

    from fp_rank.cli import _silence_progress_bars

    monkeypatch.delenv("HF_HUB_DISABLE_PROGRESS_BARS", raising=False)
    monkeypatch.delenv("HF_DATASETS_DISABLE_PROGRESS_BARS", raising=False)
    try:
        _silence_progress_bars()
        assert datasets.utils.are_progress_bars_disabled() and are_progress_bars_disabled()
    finally:
        datasets.enable_progress_bars()
        enable_progress_bars()


# -- fast offline failures ------------------------------------------------------------------
@pytest.fixture()
def empty_hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr("datasets.config.HF_DATASETS_CACHE", str(tmp_path / "datasets"))
    return tmp_path


def test_offline_hub_ids_fail_in_one_line(empty_hub_cache: Path) -> None:
    import datasets  # noqa: F401  (the libraries' import time is not what is timed: the Hub look-ups are)
    import transformers.image_processing_utils  # noqa: F401

    started = time.perf_counter()
    with pytest.raises(EncoderError) as enc_err:
        fp_rank.load_encoder("dinov2-base")
    with pytest.raises(GalleryError) as gal_err:
        fp_rank.load_gallery("fp-rank/no-such-gallery")
    assert time.perf_counter() - started < 5
    assert "offline" in str(enc_err.value) and "hf download facebook/dinov2-base" in str(enc_err.value)
    assert "hf download --repo-type dataset fp-rank/no-such-gallery" in str(gal_err.value)
    assert "\n" not in str(enc_err.value) + str(gal_err.value)


def test_unreachable_hub_fails_fast(empty_hub_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there: refused at once
    monkeypatch.setenv("FP_RANK_HUB_TIMEOUT", "1")
    import datasets  # noqa: F401  (the libraries' import time is not what is timed: the Hub look-ups are)
    import transformers.image_processing_utils  # noqa: F401

    started = time.perf_counter()
    with pytest.raises(EncoderError, match=r"cannot be reached .*hf download facebook/dinov2-base"):
        fp_rank.load_encoder("dinov2-base")
    with pytest.raises(GalleryError, match="cannot be reached"):
        fp_rank.load_gallery("fp-rank/no-such-gallery")
    assert time.perf_counter() - started < 5


def test_mistyped_local_folders_are_no_such_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fp_rank.hub_access import looks_like_path

    (tmp_path / "galleries" / "demo").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    assert looks_like_path("galleries/dmeo") and not looks_like_path("facebook/dinov2-base")
    for spec in ("galleries/dmeo", "./dmeo", "~/no/such"):
        with pytest.raises(GalleryError, match="no such folder"):
            fp_rank.load_gallery(spec)
        with pytest.raises(EncoderError, match="no such folder"):
            fp_rank.load_encoder(spec)


# -- reprs ----------------------------------------------------------------------------------
def test_reprs_are_short(demo_gallery_dir: Path, demo_generated: list[dict]) -> None:
    gallery = fp_rank.load_gallery(str(demo_gallery_dir), progress=False)
    recs = demo_generated[:20]
    report = fp_rank.evaluate([r["image"] for r in recs], [r["identity"] for r in recs], gallery=gallery,
                              encoder="fp-rank-demo", progress=False)
    for obj in (gallery, gallery.gallery, gallery.gallery.images, report, report.results[0], fp_rank.load_encoder("fp-rank-demo")):
        assert len(repr(obj)) < 300, repr(obj)[:400]
    assert "15 identities" in repr(gallery) and "mAP" in repr(report)
